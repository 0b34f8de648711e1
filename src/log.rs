//! Plain, greppable log lines on stderr: `<UTC time> <LEVEL> <target>: <message>`.
//!
//! The level comes from `S3IMAP_LOG` (`error`, `warn`, `info` — the default —, `debug`).
//! Nothing here ever formats a secret: callers log keys, paths and counts, never credentials.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How loud a line is; lower is more important.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the level from `S3IMAP_LOG`; an unknown value keeps `info` and says so.
pub fn init_from_env() {
    let Ok(v) = std::env::var("S3IMAP_LOG") else {
        return;
    };
    let level = match v.to_ascii_lowercase().as_str() {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "info" | "" => Level::Info,
        "debug" | "trace" => Level::Debug,
        other => {
            log(
                Level::Warn,
                "log",
                format_args!(
                    "S3IMAP_LOG={other:?} is not one of error, warn, info, debug; using info"
                ),
            );
            Level::Info
        }
    };
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// True when lines at `level` are printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes one line (use the `error!`/`warn!`/`info!`/`debug!` macros).
pub fn log(level: Level, target: &str, args: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let name = match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let line = format!("{} {name} {target}: {args}\n", utc_timestamp(now));
    // One write call per line keeps lines whole when threads log at once.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub use crate::time::utc_timestamp;

#[macro_export]
macro_rules! error { ($t:expr, $($a:tt)*) => { $crate::log::log($crate::log::Level::Error, $t, format_args!($($a)*)) } }
#[macro_export]
macro_rules! warn { ($t:expr, $($a:tt)*) => { $crate::log::log($crate::log::Level::Warn, $t, format_args!($($a)*)) } }
#[macro_export]
macro_rules! info { ($t:expr, $($a:tt)*) => { $crate::log::log($crate::log::Level::Info, $t, format_args!($($a)*)) } }
#[macro_export]
macro_rules! debug { ($t:expr, $($a:tt)*) => { $crate::log::log($crate::log::Level::Debug, $t, format_args!($($a)*)) } }
