//! The IMAP server around [`super::session::Session`]: a smol executor, one task per
//! connection, small buffers, timeouts, a connection limit, TLS (implicit and STARTTLS) with
//! rustls, streamed APPEND literals, file-backed FETCH bodies, and a clean shutdown on
//! SIGTERM/SIGINT (`* BYE`, then exit).
//!
//! Everything protocol-shaped happens in the session and the parser; this module only moves
//! bytes between sockets, files and those two.

use super::compress::{Deflate, Inflate, InflateError};
use super::parser::{
    AuthResponse, FrameEvent, Framer, Limits, ParseErrorKind, Parsed, parse_authenticate_response,
    parse_command, parse_done_line, reparse_append_head, reparse_append_next,
};
use super::response::{Chunk, Output};
use super::session::{Context, Session, Step};
use futures_rustls::TlsAcceptor;
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::{Async, Timer};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskCx, Poll};
use std::time::Duration;

/// How the server listens and how patient it is.
#[derive(Clone)]
pub struct ServerConfig {
    /// Plaintext listener (STARTTLS offered when `tls` is set).
    pub listen: Option<SocketAddr>,
    /// Implicit-TLS listener (993).
    pub tls_listen: Option<SocketAddr>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Connection slots, in all and per address ([`super::admission`]).
    pub admission: super::admission::Limits,
    /// Before login: how long a client may stay silent.
    pub login_timeout: Duration,
    /// Before login: how long after connecting it must have logged in, however many bytes it
    /// sends meanwhile (a slowloris is closed at this).
    pub login_deadline: Duration,
    /// After login (RFC 3501 asks for at least 30 minutes).
    pub idle_timeout: Duration,
    pub limits: Limits,
    /// Executor threads.
    pub threads: usize,
    /// Password checks run at most this many at once.
    pub auth_workers: usize,
    /// Send systemd's `WATCHDOG=1` this often, from the executor ([`crate::notify`]).
    pub watchdog: Option<Duration>,
    /// The health and metrics endpoint ([`crate::http`]).
    pub http_listen: Option<SocketAddr>,
    /// The in-process sync's interval, when it runs (for `/readyz`).
    pub sync_every: Option<Duration>,
    /// An events queue feeds the in-process sync (for `/readyz`).
    pub events: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: None,
            tls_listen: None,
            tls: None,
            admission: super::admission::Limits::default(),
            login_timeout: Duration::from_secs(30),
            login_deadline: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30 * 60),
            limits: Limits::default(),
            threads: 2,
            auth_workers: 1,
            watchdog: None,
            http_listen: None,
            sync_every: None,
            events: false,
        }
    }
}

/// Shared between the accept loops and the connections.
struct Shared {
    cfg: ServerConfig,
    ctx: Arc<Context>,
    connections: AtomicUsize,
    admission: Arc<super::admission::Admission>,
    /// Turns at checking a password ([`ServerConfig::auth_workers`]).
    auth_pool: smol::lock::Semaphore,
    stopping: AtomicBool,
    /// Closed on shutdown: every connection's `recv` then returns at once.
    stop: smol::channel::Receiver<()>,
}

/// Binds the listeners first (so errors surface before anything runs), then serves until
/// SIGTERM or SIGINT. `ready` is called with the bound addresses (plain, tls).
pub fn run(
    cfg: ServerConfig,
    ctx: Arc<Context>,
    ready: impl FnOnce(Option<SocketAddr>, Option<SocketAddr>),
) -> io::Result<()> {
    let bind = |a: Option<SocketAddr>| -> io::Result<Option<Async<TcpListener>>> {
        match a {
            None => Ok(None),
            Some(a) => Async::<TcpListener>::bind(a)
                .map(Some)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {a}: {e}"))),
        }
    };
    let plain = bind(cfg.listen)?;
    let tls = bind(cfg.tls_listen)?;
    let http = bind(cfg.http_listen)?;
    if let Some(a) = http.as_ref().and_then(|l| l.get_ref().local_addr().ok()) {
        crate::info!(
            "http",
            "health and metrics on http://{a}/ (healthz, readyz, metrics)"
        );
    }
    if tls.is_some() && cfg.tls.is_none() {
        return Err(io::Error::other(
            "a TLS listener needs a certificate and key",
        ));
    }
    let local =
        |l: &Option<Async<TcpListener>>| l.as_ref().and_then(|l| l.get_ref().local_addr().ok());
    ready(local(&plain), local(&tls));
    let threads = cfg.threads.max(1);
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let admission = super::admission::Admission::new(cfg.admission);
    let cfg_auth_workers = cfg.auth_workers.max(1);
    let shared = Arc::new(Shared {
        cfg,
        ctx,
        connections: AtomicUsize::new(0),
        admission,
        auth_pool: smol::lock::Semaphore::new(cfg_auth_workers),
        stopping: AtomicBool::new(false),
        stop: stop_rx,
    });
    let ex = Arc::new(smol::Executor::new());
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let mut workers = Vec::new();
    for i in 1..threads {
        let ex = Arc::clone(&ex);
        let done = done_rx.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("imap-{i}"))
                .spawn(move || smol::block_on(ex.run(done.recv())))?,
        );
    }
    let result = smol::block_on(ex.run(async {
        if let Some(l) = plain {
            ex.spawn(accept_loop(Arc::clone(&ex), Arc::clone(&shared), l, false))
                .detach();
        }
        if let Some(l) = tls {
            ex.spawn(accept_loop(Arc::clone(&ex), Arc::clone(&shared), l, true))
                .detach();
        }
        if let Some(l) = http {
            let ctx = Arc::clone(&shared.ctx);
            let admission = Arc::clone(&shared.admission);
            let health = Arc::new(crate::http::Health {
                mail_root: ctx.mail_root.clone(),
                users: Arc::new(move || ctx.users.unavailable()),
                sync_every: shared.cfg.sync_every,
                events: shared.cfg.events,
                sessions: Box::new(move || {
                    let (all, unauth) = admission.counts();
                    (unauth, all.saturating_sub(unauth))
                }),
            });
            ex.spawn(crate::http::serve(Arc::clone(&ex), l, health))
                .detach();
        }
        if let Some(every) = shared.cfg.watchdog {
            // On the executor: if it wedges, the pings stop and systemd restarts us.
            ex.spawn(async move {
                loop {
                    crate::notify::notify("WATCHDOG=1");
                    Timer::after(every).await;
                }
            })
            .detach();
        }
        wait_for_signal().await?;
        crate::notify::notify("STOPPING=1");
        crate::info!(
            "imap",
            "shutting down: closing {} connections",
            shared.connections.load(Ordering::Relaxed)
        );
        shared.stopping.store(true, Ordering::SeqCst);
        drop(stop_tx);
        // Give sessions a moment to say BYE.
        for _ in 0..50 {
            if shared.connections.load(Ordering::SeqCst) == 0 {
                break;
            }
            Timer::after(Duration::from_millis(100)).await;
        }
        Ok::<(), io::Error>(())
    }));
    drop(done_tx);
    for w in workers {
        let _ = w.join();
    }
    result
}

async fn wait_for_signal() -> io::Result<()> {
    use async_signal::{Signal, Signals};
    use smol::stream::StreamExt;
    let mut signals = Signals::new([Signal::Term, Signal::Int])?;
    if let Some(sig) = signals.next().await {
        crate::info!("imap", "received {:?}", sig?);
    }
    Ok(())
}

async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    shared: Arc<Shared>,
    listener: Async<TcpListener>,
    implicit_tls: bool,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                crate::warn!("imap", "accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let shared2 = Arc::clone(&shared);
        ex.spawn(async move {
            let _guard = ConnGuard(&shared2.connections);
            let ticket = match shared2.admission.admit(peer.ip()) {
                Ok(t) => t,
                Err(why) => {
                    crate::debug!("imap", "{peer}: refused: {why}");
                    let mut s = stream;
                    let _ = s.write_all(format!("* BYE {why}\r\n").as_bytes()).await;
                    return;
                }
            };
            let _ = stream.get_ref().set_nodelay(true);
            let conn = if implicit_tls {
                let acceptor = TlsAcceptor::from(shared2.cfg.tls.clone().expect("checked at bind"));
                match acceptor
                    .accept(stream)
                    .or(async {
                        Timer::after(Duration::from_secs(30)).await;
                        Err(io::ErrorKind::TimedOut.into())
                    })
                    .await
                {
                    Ok(t) => Stream::Tls(Box::new(t)),
                    Err(e) => {
                        crate::debug!("imap", "{peer}: TLS handshake failed: {e}");
                        return;
                    }
                }
            } else {
                Stream::Plain(stream)
            };
            let mut c = Connection::new(Arc::clone(&shared2), conn, peer, ticket);
            if let Err(e) = c.serve().await {
                crate::debug!("imap", "{peer}: connection ended: {e}");
            }
        })
        .detach();
    }
}

struct ConnGuard<'a>(&'a AtomicUsize);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A plaintext or TLS connection.
enum Stream {
    Plain(Async<TcpStream>),
    Tls(Box<futures_rustls::server::TlsStream<Async<TcpStream>>>),
    /// Only during a STARTTLS handshake.
    Closed,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskCx<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Ok(0)),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskCx<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// The connection as the session's bytes see it: the stream, deflated both ways after
/// COMPRESS DEFLATE (RFC 4978; [`super::compress`]).
struct Wire {
    stream: Stream,
    z: Option<Box<Compressed>>,
}

struct Compressed {
    deflate: Deflate,
    inflate: Inflate,
    /// Deflated bytes on their way to the stream.
    out: Vec<u8>,
}

impl Wire {
    async fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self.z.as_deref_mut() {
            None => {
                crate::metrics::get().bytes_out(b.len());
                self.stream.write_all(b).await
            }
            Some(z) => {
                z.deflate.write(b, &mut z.out);
                if z.out.len() >= 64 * 1024 {
                    crate::metrics::get().bytes_out(z.out.len());
                    self.stream.write_all(&z.out).await?;
                    z.out.clear();
                }
                Ok(())
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if let Some(z) = self.z.as_deref_mut() {
            z.deflate.flush(&mut z.out);
            crate::metrics::get().bytes_out(z.out.len());
            self.stream.write_all(&z.out).await?;
            z.out = Vec::new();
        }
        self.stream.flush().await
    }

    /// Reads what the client sent into `buf` (appended; inflated when compressed); 0 at EOF.
    /// Cancel-safe: `buf` changes only after a read completed (a timeout may drop this future
    /// while it waits).
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let old = buf.len();
        let mut raw = [0u8; READ_CHUNK];
        let Some(z) = self.z.as_deref_mut() else {
            let n = self.stream.read(&mut raw).await?;
            crate::metrics::get().bytes_in(n);
            buf.extend_from_slice(&raw[..n]);
            return Ok(n);
        };
        let bad = |e: InflateError| io::Error::new(io::ErrorKind::InvalidData, e);
        loop {
            if z.inflate.has_pending() {
                z.inflate.inflate(&[], buf).map_err(bad)?;
            } else {
                let n = self.stream.read(&mut raw).await?;
                crate::metrics::get().bytes_in(n);
                if n == 0 {
                    return Ok(0);
                }
                z.inflate.inflate(&raw[..n], buf).map_err(bad)?;
            }
            // Part of a deflate block may inflate to nothing yet: read on, letting the other
            // tasks of this thread run in between.
            if buf.len() > old {
                return Ok(buf.len() - old);
            }
            smol::future::yield_now().await;
        }
    }

    async fn close(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.stream.close().await
    }
}

/// What ended a wait for input.
enum Input {
    Read(usize),
    TimedOut,
    Shutdown,
}

struct Connection {
    shared: Arc<Shared>,
    wire: Wire,
    peer: SocketAddr,
    buf: Vec<u8>,
    /// The session; `None` only while it runs on the blocking pool ([`Connection::blocking`]).
    session: Option<Session>,
    out: Output,
    /// The command being answered, for the log of its failures.
    current: &'static str,
    /// The last APPEND message was `UTF8 (~{n}`: its `)` comes before the next one.
    append_utf8: bool,
    /// This connection's slot ([`super::admission`]), moved to the logged-in count at login.
    ticket: super::admission::Ticket,
    /// When it connected (the login deadline counts from here).
    connected: std::time::Instant,
}

const READ_CHUNK: usize = 4096;
/// Longest command line and literal before login (a login needs far less).
const PRE_LOGIN_MAX: usize = 8 * 1024;
/// How often an IDLE session looks for changes.
const IDLE_TICK: Duration = Duration::from_secs(1);

impl Connection {
    fn new(
        shared: Arc<Shared>,
        stream: Stream,
        peer: SocketAddr,
        ticket: super::admission::Ticket,
    ) -> Connection {
        let tls = matches!(stream, Stream::Tls(_));
        let session = Session::new(
            Arc::clone(&shared.ctx),
            tls,
            shared.cfg.tls.is_some() && !tls,
            peer,
        );
        Connection {
            shared,
            wire: Wire { stream, z: None },
            peer,
            buf: Vec::new(),
            session: Some(session),
            out: Output::new(),
            current: "",
            append_utf8: false,
            ticket,
            connected: std::time::Instant::now(),
        }
    }

    fn session(&self) -> &Session {
        self.session
            .as_ref()
            .expect("the session is back from the pool")
    }

    /// Runs `f` on the session on the blocking thread pool: everything a session does may touch
    /// the file system (an NFS volume, a lock held by Dovecot), which must never stall the
    /// executor threads and with them every other connection.
    async fn blocking<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Session, &mut Output) -> R + Send + 'static,
    ) -> R {
        let mut session = self.session.take().expect("one pool job at a time");
        let mut out = std::mem::take(&mut self.out);
        let (session, out, r) = smol::unblock(move || {
            let r = f(&mut session, &mut out);
            (session, out, r)
        })
        .await;
        self.session = Some(session);
        self.out = out;
        r
    }

    async fn serve(&mut self) -> io::Result<()> {
        // Before login a command is a login (or CAPABILITY, STARTTLS…): small lines and
        // literals only, so a client that never logs in cannot make the server hold 64 MiB.
        let full = self.shared.cfg.limits;
        let mut framer = Framer::new(Limits {
            max_line: full.max_line.min(PRE_LOGIN_MAX),
            max_literal: full.max_literal.min(PRE_LOGIN_MAX as u64),
            max_depth: full.max_depth,
        });
        let (mut logged_in, mut raised) = (false, false);
        let s = self.session.as_ref().expect("new connection");
        s.greeting(&mut self.out);
        self.flush().await?;
        loop {
            if !logged_in && self.past_login_deadline() {
                // Checked here too: a client that keeps commands coming never waits for input.
                crate::info!(
                    "imap",
                    "{}: closed: no login within {:?} of connecting",
                    self.peer,
                    self.shared.cfg.login_deadline
                );
                self.out.put(b"* BYE Login took too long\r\n");
                self.flush().await?;
                return Ok(());
            }
            if logged_in && !raised && framer.is_idle() {
                framer.set_limits(full);
                raised = true;
            }
            let event = framer.poll(&self.buf);
            match event {
                FrameEvent::NeedMore => match self.read_more(self.timeout()).await? {
                    Input::Read(0) => return Ok(()),
                    Input::Read(_) => {}
                    Input::TimedOut => {
                        if self.past_login_deadline() {
                            crate::info!(
                                "imap",
                                "{}: closed: no login within {:?} of connecting",
                                self.peer,
                                self.shared.cfg.login_deadline
                            );
                            self.out.put(b"* BYE Login took too long\r\n");
                        } else {
                            self.out.put(b"* BYE Autologout; idle for too long\r\n");
                        }
                        self.flush().await?;
                        return Ok(());
                    }
                    Input::Shutdown => {
                        self.out.put(b"* BYE Server shutting down\r\n");
                        self.flush().await?;
                        return Ok(());
                    }
                },
                FrameEvent::Continuation { .. } => {
                    self.out.put(b"+ Ready for literal data\r\n");
                    self.flush().await?;
                }
                FrameEvent::Error { tag, kind } => {
                    let tag = tag.map(|t| t.into_owned()).unwrap_or_else(|| "*".into());
                    let (answer, line) = match kind {
                        ParseErrorKind::LiteralTooBig { .. } => (
                            crate::metrics::Answer::No,
                            format!("{tag} NO [TOOBIG] {kind}"),
                        ),
                        _ => (crate::metrics::Answer::Bad, format!("{tag} BAD {kind}")),
                    };
                    self.out.put(format!("{line}\r\n").as_bytes());
                    self.current = "(unparsed)";
                    self.out.note_failure(answer, line);
                    self.flush().await?;
                }
                FrameEvent::Skip { len } => {
                    self.buf.drain(..len);
                }
                FrameEvent::Command { len } => {
                    // Parsed and run on the pool, from a copy of the command's bytes (the read
                    // buffer stays here).
                    let bytes = self.buf[..len].to_vec();
                    self.buf.drain(..len);
                    let limits = self.shared.cfg.limits;
                    let (name, step) = self
                        .blocking(move |session, out| match parse_command(&bytes, &limits) {
                            Ok(Parsed::Complete { command, .. }) => {
                                let name = command.kind.name();
                                (name, session.execute(command, out))
                            }
                            Ok(Parsed::Incomplete(_)) => {
                                out.put(b"* BAD Incomplete command\r\n");
                                ("(unparsed)", Step::Done)
                            }
                            Err(e) => {
                                let tag =
                                    e.tag.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
                                let line = format!("{tag} BAD {}", e.kind);
                                out.put(format!("{line}\r\n").as_bytes());
                                out.note_failure(crate::metrics::Answer::Bad, line);
                                ("(unparsed)", Step::Done)
                            }
                        })
                        .await;
                    self.current = name;
                    if self.buf.capacity() > 64 * 1024 && self.buf.len() < READ_CHUNK {
                        self.buf.shrink_to(READ_CHUNK);
                    }
                    let open = self.run_step(step).await?;
                    if !logged_in && self.session.as_ref().is_some_and(Session::is_authenticated) {
                        logged_in = true;
                        self.ticket.logged_in();
                    }
                    if !open {
                        return Ok(());
                    }
                }
                FrameEvent::AppendStart { len, head } => {
                    self.current = "APPEND";
                    self.append_utf8 = head.message.utf8;
                    let piece = self.buf[..len].to_vec();
                    self.buf.drain(..len);
                    let limits = self.shared.cfg.limits;
                    let accepted = self
                        .blocking(
                            move |session, out| match reparse_append_head(&piece, &limits) {
                                Some(head) => session.append_start(&head, out),
                                None => false,
                            },
                        )
                        .await;
                    if !accepted {
                        framer.reject_literal();
                    }
                    self.flush().await?;
                }
                FrameEvent::AppendNext { len, message } => {
                    let close = std::mem::replace(&mut self.append_utf8, message.utf8);
                    let piece = self.buf[..len].to_vec();
                    self.buf.drain(..len);
                    let limits = self.shared.cfg.limits;
                    let accepted = self
                        .blocking(move |session, out| {
                            session.append_message_end();
                            match reparse_append_next(&piece, &limits, close) {
                                Some(m) => session.append_next(&m, out),
                                None => false,
                            }
                        })
                        .await;
                    if !accepted {
                        framer.reject_literal();
                    }
                    self.flush().await?;
                }
                FrameEvent::AppendData { data } => {
                    let data = data.to_vec();
                    let n = data.len();
                    self.buf.drain(..n);
                    self.blocking(move |session, _| session.append_data(&data))
                        .await;
                }
                FrameEvent::AppendDone { len } => {
                    self.buf.drain(..len);
                    self.blocking(|session, out| session.append_done(out)).await;
                    self.flush().await?;
                }
            }
        }
    }

    /// Carries out what the session asked for; false when the connection must close.
    async fn run_step(&mut self, mut step: Step) -> io::Result<bool> {
        loop {
            match step {
                Step::Done => {
                    self.flush().await?;
                    return Ok(true);
                }
                Step::More => {
                    self.flush().await?;
                    step = self.stream_answer().await?;
                }
                Step::Logout => {
                    self.flush().await?;
                    let _ = self.wire.close().await;
                    return Ok(false);
                }
                Step::StartTls => {
                    self.flush().await?;
                    // Anything the client pipelined after STARTTLS is discarded (RFC 3501 §6.2.1).
                    self.buf.clear();
                    let Some(cfg) = self.shared.cfg.tls.clone() else {
                        return Ok(false);
                    };
                    let Stream::Plain(tcp) =
                        std::mem::replace(&mut self.wire.stream, Stream::Closed)
                    else {
                        return Ok(false);
                    };
                    // Bounded like any wait before login (a client that sends STARTTLS and then
                    // nothing must not keep its slot).
                    let handshake = TlsAcceptor::from(cfg).accept(tcp).or(async {
                        Timer::after(self.timeout()).await;
                        Err(io::ErrorKind::TimedOut.into())
                    });
                    match handshake.await {
                        Ok(t) => {
                            self.wire.stream = Stream::Tls(Box::new(t));
                            if let Some(s) = self.session.as_mut() {
                                s.tls_started();
                            }
                            return Ok(true);
                        }
                        Err(e) => {
                            crate::debug!("imap", "{}: STARTTLS handshake failed: {e}", self.peer);
                            return Ok(false);
                        }
                    }
                }
                Step::Compress => {
                    // The tagged OK goes out as it is; everything after it is deflated.
                    self.flush().await?;
                    let mut z = Box::new(Compressed {
                        deflate: Deflate::new(),
                        inflate: Inflate::new(),
                        out: Vec::new(),
                    });
                    // What the client sent after COMPRESS in the same packet is deflated.
                    let early = std::mem::take(&mut self.buf);
                    if let Err(e) = z.inflate.inflate(&early, &mut self.buf) {
                        crate::debug!("imap", "{}: COMPRESS: {e}", self.peer);
                        return Ok(false);
                    }
                    self.wire.z = Some(z);
                    return Ok(true);
                }
                Step::SaslChallenge(tag) => {
                    self.out.put(b"+ \r\n");
                    self.flush().await?;
                    step = loop {
                        match parse_authenticate_response(&self.buf, &self.shared.cfg.limits) {
                            Some(Ok((resp, n))) => {
                                let data = match resp {
                                    AuthResponse::Data(d) => Some(d.to_vec()),
                                    AuthResponse::Cancel => None,
                                };
                                self.buf.drain(..n);
                                let s = self.session.as_mut().expect("not on the pool");
                                break s.sasl_response(&tag, data.as_deref(), &mut self.out);
                            }
                            Some(Err(e)) => {
                                self.buf.drain(..e.skip.min(self.buf.len()));
                                {
                                    let line = format!("{tag} BAD {}", e.kind);
                                    self.out.put(format!("{line}\r\n").as_bytes());
                                    self.out.note_failure(crate::metrics::Answer::Bad, line);
                                }
                                break Step::Done;
                            }
                            None => match self.read_more(self.timeout()).await? {
                                Input::Read(0) | Input::TimedOut | Input::Shutdown => {
                                    return Ok(false);
                                }
                                Input::Read(_) => {}
                            },
                        }
                    };
                }
                Step::Idle(tag) => {
                    self.out.put(b"+ idling\r\n");
                    self.flush().await?;
                    return self.idle(&tag).await;
                }
                Step::Login(req) => {
                    use crate::auth::throttle::Verdict;
                    use crate::auth::users::AuthResult;
                    self.flush().await?;
                    let ip = self.peer.ip();
                    let throttle = &self.shared.ctx.throttle;
                    let result = match throttle.check(ip, std::time::Instant::now()) {
                        Verdict::Blocked(_) => AuthResult::Blocked,
                        Verdict::Check => {
                            // At most `auth_workers` password checks at once: a memory-hard
                            // scheme (ARGON2ID: 64 MiB each) must not multiply by the number
                            // of guessing connections. Waiting for a turn ends with the login
                            // deadline.
                            let wait = self
                                .shared
                                .cfg
                                .login_deadline
                                .saturating_sub(self.connected.elapsed());
                            let turn = async { Some(self.shared.auth_pool.acquire().await) }
                                .or(async {
                                    Timer::after(wait).await;
                                    None
                                })
                                .await;
                            match turn {
                                Some(_turn) => {
                                    let ctx = Arc::clone(&self.shared.ctx);
                                    let user = req.user.clone();
                                    let password = req.password.clone();
                                    smol::unblock(move || ctx.authenticate(&user, &password)).await
                                }
                                None => AuthResult::Unavailable(
                                    "every password check is busy; waited until the login deadline"
                                        .into(),
                                ),
                            }
                        }
                    };
                    crate::metrics::get().login(match &result {
                        AuthResult::Ok(_) => crate::metrics::Login::Ok,
                        AuthResult::BadCredentials => crate::metrics::Login::Failed,
                        AuthResult::Blocked => crate::metrics::Login::Blocked,
                        AuthResult::Unavailable(_) => crate::metrics::Login::Unavailable,
                    });
                    match &result {
                        AuthResult::Ok(_) => throttle.succeeded(ip, &req.user),
                        AuthResult::BadCredentials | AuthResult::Blocked => {
                            // A failed login costs the client time, more with each failure.
                            let now = std::time::Instant::now();
                            Timer::after(throttle.failed(ip, &req.user, now)).await;
                        }
                        AuthResult::Unavailable(_) => {}
                    }
                    // Login prepares the user's folders: the pool too.
                    step = self
                        .blocking(move |session, out| session.login_done(req, result, out))
                        .await;
                }
            }
        }
    }

    /// A long answer (FETCH of many messages): the session produces it on the blocking pool,
    /// one bounded batch at a time, while this task writes the batches out, so production
    /// and writing overlap and no batch waits for a thread of its own. At most two batches
    /// are in flight (the session's memory bound stays [`super::response::FLUSH_AT`] each).
    async fn stream_answer(&mut self) -> io::Result<Step> {
        let (tx, rx) = smol::channel::bounded::<Output>(2);
        let mut session = self.session.take().expect("not on the pool");
        let current = self.current;
        let job = smol::unblock(move || {
            loop {
                let mut out = Output::new();
                let step = session.resume(&mut out);
                session.log_failures(current, &mut out);
                let more = matches!(step, Step::More);
                if tx.send_blocking(out).is_err() || !more {
                    return (session, step);
                }
            }
        });
        let mut written = Ok(());
        while let Ok(out) = rx.recv().await {
            if written.is_ok() {
                self.out = out;
                written = self.flush().await;
            }
            if written.is_err() {
                // The client is gone: stop the producer (its next send fails).
                drop(rx);
                break;
            }
        }
        let (session, step) = job.await;
        self.session = Some(session);
        written.map(|()| step)
    }

    /// IDLE: report changes every second until DONE (or the idle timeout, or shutdown).
    async fn idle(&mut self, tag: &str) -> io::Result<bool> {
        let started = std::time::Instant::now();
        loop {
            match parse_done_line(&self.buf) {
                Some(Ok(n)) => {
                    self.buf.drain(..n);
                    let tag2 = tag.to_string();
                    self.blocking(move |session, out| session.idle_done(&tag2, out))
                        .await;
                    self.flush().await?;
                    return Ok(true);
                }
                Some(Err(e)) => {
                    self.buf.drain(..e.skip.min(self.buf.len()));
                    {
                        let line = format!("{tag} BAD {}", e.kind);
                        self.out.put(format!("{line}\r\n").as_bytes());
                        self.out.note_failure(crate::metrics::Answer::Bad, line);
                    }
                    self.flush().await?;
                    return Ok(true);
                }
                None => {}
            }
            // A change of the selected mailbox (a delivery of the in-process sync, another
            // session's STORE/APPEND/EXPUNGE) ends the wait early; the tick finds what other
            // programs did.
            let wake = self.session().idle_listener();
            let input = self
                .read_more_or(IDLE_TICK, async {
                    match wake {
                        Some(l) => l.await,
                        None => std::future::pending::<()>().await,
                    }
                })
                .await?;
            match input {
                Input::Read(0) => return Ok(false),
                Input::Read(_) => {}
                Input::TimedOut => {
                    if started.elapsed() > self.shared.cfg.idle_timeout {
                        self.out.put(b"* BYE Autologout; idle for too long\r\n");
                        self.flush().await?;
                        return Ok(false);
                    }
                    // Most ticks of most sessions have nothing to look at: only those that do
                    // take a thread of the blocking pool.
                    if self.session().idle_tick_due()
                        && !self.blocking(|session, out| session.idle_tick(out)).await
                    {
                        self.flush().await?;
                        return Ok(false);
                    }
                    self.flush().await?;
                }
                Input::Shutdown => {
                    self.out.put(b"* BYE Server shutting down\r\n");
                    self.flush().await?;
                    return Ok(false);
                }
            }
        }
    }

    /// How long the next wait for the client may take: the idle limit after login; before
    /// it the shorter idle limit, and never past the login deadline.
    fn timeout(&self) -> Duration {
        if self.session().is_authenticated() {
            self.shared.cfg.idle_timeout
        } else {
            let left = self
                .shared
                .cfg
                .login_deadline
                .saturating_sub(self.connected.elapsed());
            self.shared.cfg.login_timeout.min(left)
        }
    }

    fn past_login_deadline(&self) -> bool {
        !self.session().is_authenticated()
            && self.connected.elapsed() >= self.shared.cfg.login_deadline
    }

    /// Reads at least one byte (or EOF) into the buffer, or gives up after `timeout`.
    async fn read_more(&mut self, timeout: Duration) -> io::Result<Input> {
        self.read_more_or(timeout, std::future::pending::<()>())
            .await
    }

    /// [`Connection::read_more`], also ending (as a timeout) when `wake` completes.
    async fn read_more_or(
        &mut self,
        timeout: Duration,
        wake: impl std::future::Future<Output = ()>,
    ) -> io::Result<Input> {
        let stop = self.shared.stop.clone();
        let wire = &mut self.wire;
        let buf = &mut self.buf;
        async { wire.read_into(buf).await.map(Input::Read) }
            .or(async {
                Timer::after(timeout).await;
                Ok(Input::TimedOut)
            })
            .or(async {
                wake.await;
                Ok(Input::TimedOut)
            })
            .or(async {
                let _ = stop.recv().await;
                Ok(Input::Shutdown)
            })
            .await
    }

    /// Writes out everything the session produced.
    async fn flush(&mut self) -> io::Result<()> {
        // NO/BAD answers of the parts that run outside `Session::execute` (FETCH resumed,
        // APPEND, AUTHENTICATE, framing errors), logged at debug level.
        if let Some(s) = self.session.as_ref() {
            s.log_failures(self.current, &mut self.out);
        }
        let chunks = self.out.take();
        if chunks.is_empty() {
            return Ok(());
        }
        for c in chunks {
            match c {
                Chunk::Bytes(b) => self.wire.write_all(&b).await?,
                Chunk::File {
                    file,
                    offset,
                    len,
                    crlf,
                    skip,
                    take,
                    decode,
                } => {
                    let span = Span {
                        offset,
                        len,
                        crlf,
                        skip,
                        take,
                    };
                    stream_file(&mut self.wire, &file, span, decode).await?
                }
            }
        }
        self.wire.flush().await
    }
}

/// What of a file [`stream_file`] sends: `len` raw bytes from `offset`, bare LF turned into
/// CRLF if `crlf`, and of that stream (decoded) `skip` bytes skipped and `take` sent.
struct Span {
    offset: u64,
    len: u64,
    crlf: bool,
    skip: u64,
    take: u64,
}

/// Streams a [`Span`] of a message file, undoing `decode` (BINARY) after the CRLF
/// conversion. A file that shrank meanwhile is padded with spaces so the announced literal
/// length still holds (the client sees a damaged message rather than a broken protocol).
async fn stream_file(
    w: &mut Wire,
    file: &Arc<std::fs::File>,
    span: Span,
    decode: crate::mail::binary::Transfer,
) -> io::Result<()> {
    let Span {
        mut offset,
        len,
        crlf,
        mut skip,
        mut take,
    } = span;
    let mut decoder = crate::mail::binary::Decoder::new(decode);
    let identity = decode == crate::mail::binary::Transfer::Identity;
    let mut raw = vec![0u8; 64 * 1024];
    let mut conv: Vec<u8> = Vec::with_capacity(if crlf { 64 * 1024 } else { 0 });
    let mut decoded: Vec<u8> = Vec::new();
    let mut left = len;
    let mut prev_cr = false;
    let mut finished = false;
    while take > 0 && !finished {
        let want = (raw.len() as u64).min(left) as usize;
        // Positioned reads (the file is shared, its cursor is not ours), on the blocking pool:
        // a slow file system must not stall the executor.
        let n = if want > 0 {
            let f = Arc::clone(file);
            let mut chunk = std::mem::take(&mut raw);
            let (chunk, r) = smol::unblock(move || {
                let r = std::os::unix::fs::FileExt::read_at(&*f, &mut chunk[..want], offset);
                (chunk, r)
            })
            .await;
            raw = chunk;
            r?
        } else {
            0
        };
        offset += n as u64;
        left -= n as u64;
        let data: &[u8] = if crlf {
            conv.clear();
            for &b in &raw[..n] {
                if b == b'\n' && !prev_cr {
                    conv.push(b'\r');
                }
                prev_cr = b == b'\r';
                conv.push(b);
            }
            &conv
        } else {
            &raw[..n]
        };
        let data: &[u8] = if identity {
            data
        } else {
            decoded.clear();
            if n == 0 {
                decoder.finish(&mut decoded);
            } else {
                decoder.feed(data, &mut decoded);
            }
            &decoded
        };
        if n == 0 {
            finished = true;
        }
        let mut d = data;
        if skip > 0 {
            let s = skip.min(d.len() as u64) as usize;
            d = &d[s..];
            skip -= s as u64;
        }
        let t = take.min(d.len() as u64) as usize;
        if t > 0 {
            w.write_all(&d[..t]).await?;
            take -= t as u64;
        }
    }
    // Shorter than when the answer was built (truncated by another program): pad what is
    // still owed, as the literal's length was already sent.
    while take > 0 {
        let pad = vec![b' '; take.min(64 * 1024) as usize];
        w.write_all(&pad).await?;
        take -= pad.len() as u64;
    }
    Ok(())
}
