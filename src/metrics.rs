//! The process's counters, and their Prometheus text (`/metrics`, [`crate::http`]): logins,
//! commands by name and result, bytes in and out, sync passes and messages, S3 requests by
//! outcome with their latency. One registry per process ([`get`]): the IMAP server, the sync
//! and the S3 client count into it without being handed anything. Counting is an atomic add
//! or, for labelled counters, a short lock; nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram's buckets.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: counts per bucket (not cumulative), their sum and count.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// Requests by (service, outcome): their count and latencies.
type Requests = BTreeMap<(&'static str, &'static str), (u64, Histogram)>;

/// What a finished login was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Login {
    Ok,
    Failed,
    Blocked,
    Unavailable,
}

impl Login {
    fn label(self) -> &'static str {
        match self {
            Login::Ok => "ok",
            Login::Failed => "failed",
            Login::Blocked => "blocked",
            Login::Unavailable => "unavailable",
        }
    }
}

/// How a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    No,
    Bad,
}

impl Answer {
    fn label(self) -> &'static str {
        match self {
            Answer::No => "no",
            Answer::Bad => "bad",
        }
    }
}

/// Every counter of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    logins: Mutex<BTreeMap<Login, u64>>,
    commands: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<BTreeMap<(&'static str, Answer), u64>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    sync_ok: AtomicU64,
    sync_failed: AtomicU64,
    delivered: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    /// Unix seconds of the last sync pass that succeeded (0: none yet).
    last_sync_ok: AtomicU64,
    ledger_entries: AtomicU64,
    events_ok: AtomicU64,
    events_failed: AtomicU64,
    events_messages: AtomicU64,
    /// Unix seconds of the last events-queue poll that was answered (0: none yet).
    last_events_ok: AtomicU64,
    /// By outcome (`2xx`, `4xx`, `5xx`, `error`).
    requests: Mutex<Requests>,
}

static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();

/// The process's registry.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(Metrics::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn login(&self, l: Login) {
        *lock(&self.logins).entry(l).or_default() += 1;
    }

    /// A command received (by its name).
    pub fn command(&self, name: &'static str) {
        *lock(&self.commands).entry(name).or_default() += 1;
    }

    /// A command answered NO or BAD.
    pub fn failure(&self, name: &'static str, a: Answer) {
        *lock(&self.failures).entry((name, a)).or_default() += 1;
    }

    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A sync pass ended: its counts if it ran, `now` (Unix seconds) when it succeeded.
    pub fn sync_pass(&self, ok: Option<(u64, u64, u64)>, now: u64) {
        match ok {
            Some((delivered, skipped, failed)) => {
                self.sync_ok.fetch_add(1, Ordering::Relaxed);
                self.delivered.fetch_add(delivered, Ordering::Relaxed);
                self.skipped.fetch_add(skipped, Ordering::Relaxed);
                self.failed.fetch_add(failed, Ordering::Relaxed);
                self.last_sync_ok.store(now, Ordering::Relaxed);
            }
            None => {
                self.sync_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Objects delivered (or failed) outside a sync pass, by the events path.
    pub fn delivered(&self, delivered: u64, failed: u64) {
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.failed.fetch_add(failed, Ordering::Relaxed);
    }

    /// One events-queue poll: answered with `messages` (`None`: it failed) at `now`.
    pub fn events_poll(&self, messages: Option<u64>, now: u64) {
        match messages {
            Some(n) => {
                self.events_ok.fetch_add(1, Ordering::Relaxed);
                self.events_messages.fetch_add(n, Ordering::Relaxed);
                self.last_events_ok.store(now, Ordering::Relaxed);
            }
            None => {
                self.events_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Unix seconds of the last events-queue poll that was answered, if any.
    pub fn last_events_ok(&self) -> Option<u64> {
        Some(self.last_events_ok.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// Unix seconds of the last successful sync pass, if any.
    pub fn last_sync_ok(&self) -> Option<u64> {
        Some(self.last_sync_ok.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    pub fn ledger_entries(&self, n: usize) {
        self.ledger_entries.store(n as u64, Ordering::Relaxed);
    }

    /// One request to `service` (`s3`) answered `status` (None: no answer) after `took`.
    pub fn request(&self, service: &'static str, status: Option<u16>, took: Duration) {
        let outcome = match status {
            Some(200..=299) => "2xx",
            Some(300..=499) => "4xx",
            Some(_) => "5xx",
            None => "error",
        };
        let mut m = lock(&self.requests);
        let e = m.entry((service, outcome)).or_default();
        e.0 += 1;
        e.1.observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition of everything, with the sessions now
    /// (`unauthenticated`, `authenticated`) given by the server.
    pub fn render(&self, sessions: (usize, usize)) -> String {
        let mut s = String::new();
        let head = |s: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut s,
            "s3imap_sessions",
            "gauge",
            "IMAP connections by state.",
        );
        let _ = writeln!(
            s,
            "s3imap_sessions{{state=\"unauthenticated\"}} {}",
            sessions.0
        );
        let _ = writeln!(
            s,
            "s3imap_sessions{{state=\"authenticated\"}} {}",
            sessions.1
        );
        head(
            &mut s,
            "s3imap_logins_total",
            "counter",
            "Logins by result.",
        );
        let logins = lock(&self.logins).clone();
        for l in [Login::Ok, Login::Failed, Login::Blocked, Login::Unavailable] {
            let n = logins.get(&l).copied().unwrap_or(0);
            let _ = writeln!(s, "s3imap_logins_total{{result=\"{}\"}} {n}", l.label());
        }
        head(
            &mut s,
            "s3imap_commands_total",
            "counter",
            "IMAP commands received, by name.",
        );
        for (name, n) in lock(&self.commands).iter() {
            let _ = writeln!(s, "s3imap_commands_total{{command=\"{name}\"}} {n}");
        }
        head(
            &mut s,
            "s3imap_command_failures_total",
            "counter",
            "IMAP commands answered NO or BAD, by name.",
        );
        for ((name, a), n) in lock(&self.failures).iter() {
            let _ = writeln!(
                s,
                "s3imap_command_failures_total{{command=\"{name}\",result=\"{}\"}} {n}",
                a.label()
            );
        }
        for (name, help, v) in [
            (
                "s3imap_received_bytes_total",
                "Bytes read from IMAP clients.",
                &self.bytes_in,
            ),
            (
                "s3imap_sent_bytes_total",
                "Bytes written to IMAP clients.",
                &self.bytes_out,
            ),
        ] {
            head(&mut s, name, "counter", help);
            let _ = writeln!(s, "{name} {}", v.load(Ordering::Relaxed));
        }
        head(
            &mut s,
            "s3imap_sync_passes_total",
            "counter",
            "Sync passes by result.",
        );
        let _ = writeln!(
            s,
            "s3imap_sync_passes_total{{result=\"ok\"}} {}\ns3imap_sync_passes_total{{result=\"failed\"}} {}",
            self.sync_ok.load(Ordering::Relaxed),
            self.sync_failed.load(Ordering::Relaxed)
        );
        head(
            &mut s,
            "s3imap_sync_messages_total",
            "counter",
            "Objects the sync handled, by outcome.",
        );
        for (o, v) in [
            ("delivered", &self.delivered),
            ("skipped", &self.skipped),
            ("failed", &self.failed),
        ] {
            let _ = writeln!(
                s,
                "s3imap_sync_messages_total{{outcome=\"{o}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        head(
            &mut s,
            "s3imap_sync_last_success_timestamp_seconds",
            "gauge",
            "When the last sync pass succeeded (0: none yet).",
        );
        let _ = writeln!(
            s,
            "s3imap_sync_last_success_timestamp_seconds {}",
            self.last_sync_ok.load(Ordering::Relaxed)
        );
        head(
            &mut s,
            "s3imap_events_polls_total",
            "counter",
            "Events-queue long polls by result.",
        );
        let _ = writeln!(
            s,
            "s3imap_events_polls_total{{result=\"ok\"}} {}\ns3imap_events_polls_total{{result=\"failed\"}} {}",
            self.events_ok.load(Ordering::Relaxed),
            self.events_failed.load(Ordering::Relaxed)
        );
        head(
            &mut s,
            "s3imap_events_messages_total",
            "counter",
            "Messages received from the events queue.",
        );
        let _ = writeln!(
            s,
            "s3imap_events_messages_total {}",
            self.events_messages.load(Ordering::Relaxed)
        );
        head(
            &mut s,
            "s3imap_ledger_entries",
            "gauge",
            "Objects the sync ledger holds.",
        );
        let _ = writeln!(
            s,
            "s3imap_ledger_entries {}",
            self.ledger_entries.load(Ordering::Relaxed)
        );
        let requests = lock(&self.requests).clone();
        head(
            &mut s,
            "s3imap_requests_total",
            "counter",
            "Requests to AWS services by outcome.",
        );
        for ((svc, outcome), (n, _)) in &requests {
            let _ = writeln!(
                s,
                "s3imap_requests_total{{service=\"{svc}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        head(
            &mut s,
            "s3imap_request_duration_seconds",
            "histogram",
            "Latency of requests to AWS services.",
        );
        let mut by_service: BTreeMap<&str, Histogram> = BTreeMap::new();
        for ((svc, _), (_, h)) in &requests {
            let t = by_service.entry(svc).or_default();
            for (a, b) in t.buckets.iter_mut().zip(h.buckets) {
                *a += b;
            }
            t.sum += h.sum;
            t.count += h.count;
        }
        for (svc, h) in by_service {
            let mut cum = 0;
            for (b, n) in BUCKETS.iter().zip(h.buckets) {
                cum += n;
                let _ = writeln!(
                    s,
                    "s3imap_request_duration_seconds_bucket{{service=\"{svc}\",le=\"{b}\"}} {cum}"
                );
            }
            let _ = writeln!(
                s,
                "s3imap_request_duration_seconds_bucket{{service=\"{svc}\",le=\"+Inf\"}} {}\n\
                 s3imap_request_duration_seconds_sum{{service=\"{svc}\"}} {}\n\
                 s3imap_request_duration_seconds_count{{service=\"{svc}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.login(Login::Ok);
        m.login(Login::Failed);
        m.login(Login::Failed);
        m.command("SELECT");
        m.command("FETCH");
        m.failure("FETCH", Answer::Bad);
        m.sync_pass(Some((3, 1, 0)), 1_700_000_000);
        m.request("s3", Some(200), Duration::from_millis(30));
        m.request("s3", Some(503), Duration::from_secs(20));
        let t = m.render((2, 5));
        for line in [
            "s3imap_sessions{state=\"authenticated\"} 5",
            "s3imap_logins_total{result=\"failed\"} 2",
            "s3imap_commands_total{command=\"SELECT\"} 1",
            "s3imap_command_failures_total{command=\"FETCH\",result=\"bad\"} 1",
            "s3imap_sync_messages_total{outcome=\"delivered\"} 3",
            "s3imap_sync_last_success_timestamp_seconds 1700000000",
            "s3imap_requests_total{service=\"s3\",outcome=\"5xx\"} 1",
            "s3imap_request_duration_seconds_bucket{service=\"s3\",le=\"0.05\"} 1",
            "s3imap_request_duration_seconds_bucket{service=\"s3\",le=\"10\"} 1",
            "s3imap_request_duration_seconds_bucket{service=\"s3\",le=\"+Inf\"} 2",
            "s3imap_request_duration_seconds_count{service=\"s3\"} 2",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing in\n{t}");
        }
    }
}
