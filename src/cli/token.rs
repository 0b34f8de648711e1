//! `s3imap token issue|list|revoke`: app passwords ([`crate::auth::tokens`]). `issue` prints
//! the token once, to paste into a client as its password; nothing else ever shows it.
//!
//! Exit codes: 0 done; 1 failed (unreadable or corrupt token files, unknown id); 2 bad input
//! (unknown user, bad name or duration).

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::auth::tokens::{TokenError, TokenStore};
use crate::auth::users::UserDb;
use crate::config::{self, Env};
use argh::FromArgs;
use std::path::PathBuf;

/// Manage app passwords (PASETO tokens): issue, list, revoke.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct TokenCmd {
    #[argh(subcommand)]
    pub action: TokenAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TokenAction {
    Issue(IssueCmd),
    List(ListCmd),
    Revoke(RevokeCmd),
}

/// Issue an app password for a user and print it (once).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "issue")]
pub struct IssueCmd {
    /// the user's email address, as in the users file
    #[argh(positional)]
    pub address: String,
    /// what the token is for, e.g. phone (shown by list)
    #[argh(option)]
    pub name: String,
    /// how long it is valid, e.g. 90d or 12h (default: until revoked)
    #[argh(option)]
    pub expires: Option<String>,
    /// its sessions may read mail but change nothing
    #[argh(switch)]
    pub read_only: bool,
    /// the Dovecot passwd-file (default /etc/s3imap/users) [env S3IMAP_USERS]
    #[argh(option)]
    pub users: Option<String>,
    /// the token directory (default <mail root>/.s3imap/tokens) [env S3IMAP_TOKEN_DIR]
    #[argh(option)]
    pub token_dir: Option<String>,
    /// the mail root (default /var/mail/vmail) [env S3IMAP_MAIL_ROOT]
    #[argh(option)]
    pub mail_root: Option<String>,
}

/// List app passwords: id, address, name, created, expires, last used, scope.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// only this user's
    #[argh(positional)]
    pub address: Option<String>,
    /// the token directory (default <mail root>/.s3imap/tokens) [env S3IMAP_TOKEN_DIR]
    #[argh(option)]
    pub token_dir: Option<String>,
    /// the mail root (default /var/mail/vmail) [env S3IMAP_MAIL_ROOT]
    #[argh(option)]
    pub mail_root: Option<String>,
}

/// Revoke an app password by its id, or every one of a user with --all ADDRESS.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "revoke")]
pub struct RevokeCmd {
    /// the token's id (from list)
    #[argh(positional)]
    pub id: Option<String>,
    /// revoke every token of this address
    #[argh(option)]
    pub all: Option<String>,
    /// the token directory (default <mail root>/.s3imap/tokens) [env S3IMAP_TOKEN_DIR]
    #[argh(option)]
    pub token_dir: Option<String>,
    /// the mail root (default /var/mail/vmail) [env S3IMAP_MAIL_ROOT]
    #[argh(option)]
    pub mail_root: Option<String>,
}

/// The token directory: `--token-dir`, `S3IMAP_TOKEN_DIR`, else under the mail root.
pub fn token_dir(
    flag: &Option<String>,
    mail_root: &Option<String>,
    env: &Env,
) -> Result<PathBuf, config::ConfigError> {
    match config::flag_or_env(flag, env, "S3IMAP_TOKEN_DIR")? {
        Some(d) => Ok(PathBuf::from(d)),
        None => Ok(config::mail_root(mail_root, env)?.join(".s3imap/tokens")),
    }
}

fn exit(code: i32, e: impl std::fmt::Display) -> i32 {
    crate::error!("token", "{e}");
    code
}

fn failed(e: TokenError) -> i32 {
    let code = match e {
        TokenError::BadName => EXIT_USAGE,
        _ => EXIT_FAILED,
    };
    exit(code, e)
}

fn when(t: Option<u64>) -> String {
    t.map_or_else(|| "-".into(), crate::time::utc_timestamp)
}

/// Runs `s3imap token …`; returns the exit code.
pub fn run(cmd: TokenCmd) -> i32 {
    let env = Env::process();
    match cmd.action {
        TokenAction::Issue(c) => issue(c, &env),
        TokenAction::List(c) => list(c, &env),
        TokenAction::Revoke(c) => revoke(c, &env),
    }
}

fn issue(c: IssueCmd, env: &Env) -> i32 {
    let dir = match token_dir(&c.token_dir, &c.mail_root, env) {
        Ok(d) => d,
        Err(e) => return exit(EXIT_USAGE, e),
    };
    let users = match config::flag_or_env(&c.users, env, "S3IMAP_USERS") {
        Ok(u) => PathBuf::from(u.unwrap_or_else(|| super::user::DEFAULT_USERS.into())),
        Err(e) => return exit(EXIT_USAGE, e),
    };
    let user = match UserDb::open(&users).map(|db| db.lookup(&c.address)) {
        Ok(Some(u)) => u,
        Ok(None) => {
            return exit(
                EXIT_USAGE,
                format!("{:?} is not in {}", c.address, users.display()),
            );
        }
        Err(e) => return exit(EXIT_FAILED, e),
    };
    let expires = match c.expires.as_deref().map(config::parse_duration) {
        None => None,
        Some(Ok(d)) if d.as_secs() > 0 => Some(d.as_secs()),
        Some(_) => {
            return exit(
                EXIT_USAGE,
                "--expires: a duration such as 90d or 12h (more than 0s)",
            );
        }
    };
    match TokenStore::new(dir).issue(&user.name, &c.name, expires, c.read_only) {
        Ok((token, r)) => {
            eprintln!(
                "token {} for {} ({}{}, expires {}); paste it into the client as its password:",
                r.id,
                r.address,
                r.name,
                if r.read_only { ", read-only" } else { "" },
                when(r.expires)
            );
            println!("{token}");
            EXIT_OK
        }
        Err(e) => failed(e),
    }
}

fn list(c: ListCmd, env: &Env) -> i32 {
    let dir = match token_dir(&c.token_dir, &c.mail_root, env) {
        Ok(d) => d,
        Err(e) => return exit(EXIT_USAGE, e),
    };
    let store = TokenStore::new(dir);
    let records = match store.records() {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let used = store.last_used();
    println!("ID\tADDRESS\tNAME\tCREATED\tEXPIRES\tLAST USED\tSCOPE");
    for r in records {
        if c.address
            .as_ref()
            .is_some_and(|a| !a.eq_ignore_ascii_case(&r.address))
        {
            continue;
        }
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.id,
            r.address,
            r.name,
            crate::time::utc_timestamp(r.created),
            when(r.expires),
            when(used.get(&r.id).copied()),
            if r.read_only { "read-only" } else { "full" }
        );
    }
    EXIT_OK
}

fn revoke(c: RevokeCmd, env: &Env) -> i32 {
    let dir = match token_dir(&c.token_dir, &c.mail_root, env) {
        Ok(d) => d,
        Err(e) => return exit(EXIT_USAGE, e),
    };
    let store = TokenStore::new(dir);
    match (&c.id, &c.all) {
        (Some(id), None) => match store.revoke(id) {
            Ok(r) => {
                eprintln!("revoked token {} of {} ({})", r.id, r.address, r.name);
                EXIT_OK
            }
            Err(e) => failed(e),
        },
        (None, Some(address)) => match store.revoke_all(address) {
            Ok(n) => {
                eprintln!("revoked {n} token(s) of {address}");
                EXIT_OK
            }
            Err(e) => failed(e),
        },
        _ => exit(EXIT_USAGE, "give a token id, or --all ADDRESS"),
    }
}
