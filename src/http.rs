//! The health and metrics endpoint (`--http-listen`): a small HTTP/1.1 responder for three
//! GET paths, one request per connection.
//! - `/healthz`: 200 while the process serves (the executor answers).
//! - `/readyz`: 200 when the mail root takes a write, the users file is loaded, and (with
//!   the in-process sync) the last sync pass succeeded within three intervals; else 503 with
//!   the reasons, one per line.
//! - `/metrics`: the Prometheus text of [`crate::metrics`].
//!
//! Bounded as a public port must be: 16 requests at once, 4 KiB of request head, 5 s to send
//! it; anything else is 404, 405 or 400. The file system checks run on the blocking pool.

use smol::Async;
use smol::Timer;
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Requests answered at once; more wait in the listen queue.
const MAX_AT_ONCE: usize = 16;
/// The longest request head read.
const MAX_HEAD: usize = 4096;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoint looks at.
pub struct Health {
    pub mail_root: PathBuf,
    pub users: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    /// The in-process sync's interval, when it runs.
    pub sync_every: Option<Duration>,
    /// Whether an events queue feeds the sync: a queue answering its long polls is ready.
    pub events: bool,
    /// Sessions now: (not logged in, logged in).
    pub sessions: Box<dyn Fn() -> (usize, usize) + Send + Sync>,
}

/// A parsed request line: its method and path.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

/// The request line of a request head (sans-I/O), or None when it is not HTTP/1.x.
pub fn request_line(head: &[u8]) -> Option<RequestLine<'_>> {
    let end = memchr::memchr(b'\n', head)?;
    let line = std::str::from_utf8(&head[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    Some(RequestLine { method, path })
}

/// The reasons the server is not ready (empty: ready). Blocking: writes to the mail root.
pub fn not_ready(h: &Health, now_unix: u64) -> Vec<String> {
    let mut why = Vec::new();
    let state = h.mail_root.join(".s3imap");
    let probe = state.join(format!("ready-probe-{}", std::process::id()));
    let wrote = std::fs::create_dir_all(&state)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = wrote {
        why.push(format!(
            "the mail root takes no writes: {}: {e}",
            probe.display()
        ));
    }
    if let Some(reason) = (h.users)() {
        why.push(format!("the users file: {reason}"));
    }
    let events_live = h.events
        && crate::metrics::get()
            .last_events_ok()
            .is_some_and(|t| now_unix.saturating_sub(t) <= 3 * 20 + 5);
    if let Some(every) = h.sync_every.filter(|_| !events_live) {
        let limit = every.as_secs().saturating_mul(3).max(3);
        match crate::metrics::get().last_sync_ok() {
            Some(t) if now_unix.saturating_sub(t) <= limit => {}
            Some(t) => why.push(format!(
                "the last sync pass that succeeded was {} s ago (more than 3 intervals)",
                now_unix.saturating_sub(t)
            )),
            None => why.push("no sync pass has succeeded yet".into()),
        }
    }
    why
}

fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The answer to one request head.
async fn answer(h: &Arc<Health>, head: &[u8]) -> Vec<u8> {
    let Some(req) = request_line(head) else {
        return response("400 Bad Request", "text/plain", "bad request\n");
    };
    if req.method != "GET" && req.method != "HEAD" {
        return response("405 Method Not Allowed", "text/plain", "GET only\n");
    }
    let mut out = match req.path {
        "/healthz" => response("200 OK", "text/plain", "ok\n"),
        "/readyz" => {
            let h2 = Arc::clone(h);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let why = smol::unblock(move || not_ready(&h2, now)).await;
            if why.is_empty() {
                response("200 OK", "text/plain", "ready\n")
            } else {
                let body: String = why.iter().map(|w| format!("{w}\n")).collect();
                response("503 Service Unavailable", "text/plain", &body)
            }
        }
        "/metrics" => response(
            "200 OK",
            "text/plain; version=0.0.4",
            &crate::metrics::get().render((h.sessions)()),
        ),
        _ => response("404 Not Found", "text/plain", "not found\n"),
    };
    if req.method == "HEAD"
        && let Some(end) = memchr::memmem::find(&out, b"\r\n\r\n")
    {
        out.truncate(end + 4);
    }
    out
}

async fn one(h: Arc<Health>, mut s: Async<TcpStream>) {
    let mut head = Vec::with_capacity(512);
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(false);
            }
            head.extend_from_slice(&buf[..n]);
            if memchr::memmem::find(&head, b"\r\n\r\n").is_some()
                || memchr::memmem::find(&head, b"\n\n").is_some()
            {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(true);
            }
        }
    }
    .or(async {
        Timer::after(READ_TIMEOUT).await;
        Ok::<bool, std::io::Error>(false)
    })
    .await;
    if !matches!(read, Ok(true)) {
        return;
    }
    let out = if head.len() > MAX_HEAD {
        response(
            "431 Request Header Fields Too Large",
            "text/plain",
            "too large\n",
        )
    } else {
        answer(&h, &head).await
    };
    let _ = s.write_all(&out).await;
    let _ = s.flush().await;
}

/// Serves the endpoint on `listener` until the executor stops.
pub async fn serve(ex: Arc<smol::Executor<'static>>, listener: Async<TcpListener>, h: Arc<Health>) {
    let slots = Arc::new(smol::lock::Semaphore::new(MAX_AT_ONCE));
    loop {
        let turn = slots.acquire_arc().await;
        let (s, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                crate::warn!("http", "accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let h = Arc::clone(&h);
        ex.spawn(async move {
            one(h, s).await;
            drop(turn);
        })
        .detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /readyz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(RequestLine {
                method: "GET",
                path: "/readyz"
            })
        );
        assert_eq!(request_line(b"GET /\r\n\r\n"), None);
        assert_eq!(request_line(b"\x16\x03\x01 binary\n"), None);
    }
}
