//! The command line: argh subcommands mapped onto library calls. No logic of its own beyond
//! exit codes and the summary line.

pub mod check;
pub mod serve;
pub mod token;
pub mod user;

use crate::config::{self, Env, SyncFlags};
use crate::sync::{self, Syncer};
use argh::FromArgs;
use std::time::Duration;

/// s3imap: mail that Amazon SES stores in S3, synced into Maildirs (and served over IMAP).
#[derive(FromArgs, Debug)]
pub struct Cli {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Check(check::CheckCmd),
    Serve(Box<serve::ServeCmd>),
    Sync(SyncCmd),
    Token(token::TokenCmd),
    User(user::UserCmd),
}

/// Deliver new messages from the S3 bucket into the recipients' Maildirs, exactly once.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sync")]
pub struct SyncCmd {
    /// run one pass, print a summary and exit (the default); non-zero exit if anything failed
    #[argh(switch)]
    pub once: bool,
    /// keep running, one pass every DURATION (e.g. 60s, 5m) [env S3IMAP_INTERVAL]
    #[argh(option)]
    pub interval: Option<String>,
    /// the S3 bucket SES writes to [env S3IMAP_BUCKET]
    #[argh(option)]
    pub bucket: Option<String>,
    /// only objects under this key prefix, e.g. inbound/ [env S3IMAP_PREFIX]
    #[argh(option)]
    pub prefix: Option<String>,
    /// the mail root holding <address>/ Maildirs (default /var/mail/vmail) [env S3IMAP_MAIL_ROOT]
    #[argh(option)]
    pub mail_root: Option<String>,
    /// the Dovecot passwd-file; its user names are the local addresses [env S3IMAP_USERS]
    #[argh(option)]
    pub users: Option<String>,
    /// deliver mail for no known user to this address [env S3IMAP_CATCH_ALL]
    #[argh(option)]
    pub catch_all: Option<String>,
    /// after delivery: keep, delete or move:<prefix> (default keep) [env S3IMAP_AFTER]
    #[argh(option)]
    pub after: Option<String>,
    /// folder for X-SES-Spam-Verdict: FAIL (default Junk) [env S3IMAP_JUNK_FOLDER]
    #[argh(option)]
    pub junk_folder: Option<String>,
    /// folder for X-SES-Virus-Verdict: FAIL (default Quarantine) [env S3IMAP_QUARANTINE_FOLDER]
    #[argh(option)]
    pub quarantine_folder: Option<String>,
    /// parallel downloads (default 32) [env S3IMAP_WORKERS]
    #[argh(option)]
    pub workers: Option<String>,
    /// migrating from `aws s3 sync`: a message a recipient's Maildir holds already (same Message-ID and size, or same header block and size) is recorded as delivered, not copied again
    #[argh(switch)]
    pub adopt: bool,
}

/// Exit codes.
pub const EXIT_OK: i32 = 0;
/// Some objects failed (the summary says how many).
pub const EXIT_FAILED: i32 = 1;
/// The configuration is wrong; nothing was done.
pub const EXIT_USAGE: i32 = 2;
/// Another sync holds the lock; nothing was done.
pub const EXIT_BUSY: i32 = 75;

/// Parses the command line and runs; returns the process exit code.
pub fn main() -> i32 {
    crate::log::init_from_env();
    let cli: Cli = argh::from_env();
    match cli.command {
        Command::Check(c) => check::run(c, &Env::process()),
        Command::Serve(c) => serve::run(*c, &Env::process()),
        Command::Sync(c) => run_sync(c, &Env::process()),
        Command::Token(c) => token::run(c),
        Command::User(c) => user::run(c),
    }
}

fn run_sync(c: SyncCmd, env: &Env) -> i32 {
    let flags = SyncFlags {
        bucket: c.bucket,
        prefix: c.prefix,
        mail_root: c.mail_root,
        users: c.users,
        catch_all: c.catch_all,
        after: c.after,
        junk_folder: c.junk_folder,
        quarantine_folder: c.quarantine_folder,
        workers: c.workers,
    };
    let interval = match config::flag_or_env(&c.interval, env, "S3IMAP_INTERVAL") {
        Ok(i) => i,
        Err(e) => return usage(e),
    };
    if c.once && c.interval.is_some() {
        return usage("--once and --interval exclude each other; pick one");
    }
    let interval = match interval.filter(|_| !c.once) {
        Some(s) => match config::parse_duration(&s) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => return usage("--interval must be at least 1s"),
            Err(e) => return usage(format!("--interval {s:?}: {e}")),
        },
        None => None,
    };
    let mut cfg = match config::sync_config(&flags, env) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    cfg.progress_line = interval.is_none() && sync::stderr_is_terminal();
    cfg.adopt = c.adopt;
    let syncer = Syncer::new(cfg);
    match interval {
        None => once(&syncer),
        Some(every) => loop {
            let _ = once(&syncer);
            std::thread::sleep(every);
        },
    }
}

/// One pass with its summary line; returns the exit code for `--once`.
fn once(syncer: &Syncer) -> i32 {
    match syncer.run_once() {
        Ok(sum) => {
            let line = format!("sync: {sum}");
            if sum.failed > 0 {
                crate::warn!("sync", "{line}");
                EXIT_FAILED
            } else {
                crate::info!("sync", "{line}");
                EXIT_OK
            }
        }
        Err(e) if e.is_busy() => {
            crate::warn!("sync", "{e}");
            EXIT_BUSY
        }
        Err(e) => {
            crate::error!("sync", "sync failed: {e}");
            EXIT_FAILED
        }
    }
}

fn usage(e: impl std::fmt::Display) -> i32 {
    crate::error!("config", "{e}");
    EXIT_USAGE
}
