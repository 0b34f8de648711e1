//! `s3imap user add|passwd|del`: edits the Dovecot passwd-file the servers read, hashing the
//! password as `doveadm pw` would. The password comes from standard input (its first line), or,
//! on a terminal, is asked for twice with echo off (`stty -echo`). It is never printed or logged.
//!
//! Exit codes: 0 done; 1 refused or failed (user exists / is missing, file unreadable, broken or
//! not writable); 2 bad input (user name, scheme, empty or mismatched password).

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::auth::passwd::{self, EditError, NewFields};
use crate::auth::scheme::{self, Scheme};
use crate::config::{self, Env};
use argh::FromArgs;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the users are unless --users or S3IMAP_USERS says otherwise.
pub const DEFAULT_USERS: &str = "/etc/s3imap/users";

/// Manage the IMAP users in the Dovecot passwd-file: add, passwd, del.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "user")]
pub struct UserCmd {
    #[argh(subcommand)]
    pub action: UserAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum UserAction {
    Add(AddCmd),
    Passwd(PasswdCmd),
    Del(DelCmd),
}

/// Add a user. The password is the first line of standard input, or is asked for twice on a
/// terminal.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct AddCmd {
    /// the user's email address, e.g. alice@example.com
    #[argh(positional)]
    pub user: String,
    /// the Dovecot passwd-file (default /etc/s3imap/users) [env S3IMAP_USERS]
    #[argh(option)]
    pub users: Option<String>,
    /// SHA512-CRYPT (default), SHA256-CRYPT, BLF-CRYPT, ARGON2ID or ARGON2I (Argon2 needs 32-64
    /// MiB of memory per login)
    #[argh(option)]
    pub scheme: Option<String>,
    /// the uid field (empty by default: Dovecot's mail_uid applies)
    #[argh(option)]
    pub uid: Option<u32>,
    /// the gid field (empty by default)
    #[argh(option)]
    pub gid: Option<u32>,
    /// the home field (empty by default: s3imap uses <mail root>/<user>)
    #[argh(option)]
    pub home: Option<String>,
}

/// Set a new password for an existing user (read like `add` reads it).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "passwd")]
pub struct PasswdCmd {
    /// the user's email address
    #[argh(positional)]
    pub user: String,
    /// the Dovecot passwd-file (default /etc/s3imap/users) [env S3IMAP_USERS]
    #[argh(option)]
    pub users: Option<String>,
    /// SHA512-CRYPT (default), SHA256-CRYPT, BLF-CRYPT, ARGON2ID or ARGON2I
    #[argh(option)]
    pub scheme: Option<String>,
}

/// Remove a user from the passwd-file (the Maildir is kept) and revoke their app passwords.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "del")]
pub struct DelCmd {
    /// the user's email address
    #[argh(positional)]
    pub user: String,
    /// the Dovecot passwd-file (default /etc/s3imap/users) [env S3IMAP_USERS]
    #[argh(option)]
    pub users: Option<String>,
    /// the app password directory (default <mail root>/.s3imap/tokens) [env S3IMAP_TOKEN_DIR]
    #[argh(option)]
    pub token_dir: Option<String>,
    /// the mail root (default /var/mail/vmail) [env S3IMAP_MAIL_ROOT]
    #[argh(option)]
    pub mail_root: Option<String>,
}

/// Runs `s3imap user …`; returns the exit code.
pub fn run(cmd: UserCmd) -> i32 {
    let env = Env::process();
    let result = match cmd.action {
        UserAction::Add(c) => add(c, &env),
        UserAction::Passwd(c) => passwd_cmd(c, &env),
        UserAction::Del(c) => del(c, &env),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(Failure { code, message }) => {
            crate::error!("user", "{message}");
            code
        }
    }
}

/// Why a command stopped, and its exit code.
struct Failure {
    code: i32,
    message: String,
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: message.to_string(),
    }
}

fn failed(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_FAILED,
        message: message.to_string(),
    }
}

impl From<EditError> for Failure {
    fn from(e: EditError) -> Failure {
        match e {
            EditError::BadUser { .. } | EditError::BadField { .. } => usage(e),
            _ => failed(e),
        }
    }
}

fn users_path(flag: &Option<String>, env: &Env) -> Result<PathBuf, Failure> {
    let v = config::flag_or_env(flag, env, "S3IMAP_USERS").map_err(usage)?;
    Ok(PathBuf::from(
        v.unwrap_or_else(|| DEFAULT_USERS.to_string()),
    ))
}

fn pick_scheme(flag: &Option<String>) -> Result<Scheme, Failure> {
    let Some(name) = flag else {
        return Ok(scheme::DEFAULT_SCHEME);
    };
    match Scheme::from_name(name) {
        Ok(s) if Scheme::RECOMMENDED.contains(&s) => Ok(s),
        _ => Err(usage(format!(
            "--scheme {name:?}: use one of {}",
            scheme::names(&Scheme::RECOMMENDED)
        ))),
    }
}

fn check_user(user: &str) -> Result<(), Failure> {
    passwd::check_user(user).map_err(|problem| EditError::BadUser {
        user: user.to_string(),
        problem,
    })?;
    Ok(())
}

/// Whether `user` is in the file now (a missing file has no users). Checked before asking for
/// a password; the edit itself checks again under its lock.
fn exists(path: &Path, user: &str) -> Result<Option<String>, Failure> {
    match passwd::load(path) {
        Ok(entries) => Ok(entries
            .into_iter()
            .find(|e| e.user.eq_ignore_ascii_case(user))
            .map(|e| e.user)),
        Err(passwd::LoadError::Io { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(failed(e)),
    }
}

fn add(c: AddCmd, env: &Env) -> Result<(), Failure> {
    let path = users_path(&c.users, env)?;
    let scheme = pick_scheme(&c.scheme)?;
    check_user(&c.user)?;
    if let Some(existing) = exists(&path, &c.user)? {
        return Err(EditError::Exists {
            path,
            user: existing,
        }
        .into());
    }
    let fields = NewFields {
        uid: c.uid,
        gid: c.gid,
        home: c.home,
    };
    let field = hashed(scheme, &c.user)?;
    passwd::add_user(&path, &c.user, &field, &fields)?;
    crate::info!("user", "added {} to {} ({scheme})", c.user, path.display());
    Ok(())
}

fn passwd_cmd(c: PasswdCmd, env: &Env) -> Result<(), Failure> {
    let path = users_path(&c.users, env)?;
    let scheme = pick_scheme(&c.scheme)?;
    check_user(&c.user)?;
    let Some(name) = exists(&path, &c.user)? else {
        return Err(EditError::Missing { path, user: c.user }.into());
    };
    let field = hashed(scheme, &name)?;
    passwd::change_password(&path, &c.user, &field)?;
    crate::info!(
        "user",
        "changed the password of {name} in {} ({scheme})",
        path.display()
    );
    Ok(())
}

fn del(c: DelCmd, env: &Env) -> Result<(), Failure> {
    let path = users_path(&c.users, env)?;
    check_user(&c.user)?;
    let tokens = super::token::token_dir(&c.token_dir, &c.mail_root, env).map_err(usage)?;
    passwd::remove_user(&path, &c.user)?;
    crate::info!(
        "user",
        "removed {} from {}; their mail is kept",
        c.user,
        path.display()
    );
    // A user added again later under this address (maybe someone else) gets none of them.
    match crate::auth::tokens::TokenStore::new(tokens).revoke_all(&c.user) {
        Ok(0) => {}
        Ok(n) => crate::info!("user", "revoked {n} app password(s) of {}", c.user),
        Err(e) => {
            return Err(failed(format!(
                "revoking the app passwords of {}: {e}",
                c.user
            )));
        }
    }
    Ok(())
}

/// Reads the password and hashes it; the plain password is wiped before returning.
fn hashed(scheme: Scheme, user: &str) -> Result<String, Failure> {
    let password = read_password(user)?;
    if scheme.memory_bytes() > 0 {
        crate::info!(
            "user",
            "{scheme} uses {} MiB of memory for every login check",
            scheme.memory_bytes() >> 20
        );
    }
    scheme::hash(scheme, &password.0).map_err(failed)
}

/// A password in memory: no Debug, wiped on drop.
struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        scheme::wipe(&mut self.0);
    }
}

fn read_password(user: &str) -> Result<Secret, Failure> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt(&format!("New password for {user}: "))?;
        let again = prompt("Repeat it: ")?;
        if !scheme::ct_eq(&first.0, &again.0) {
            return Err(usage("the two passwords differ; nothing was changed"));
        }
        first
    } else {
        let mut line = Secret(Vec::new());
        stdin
            .lock()
            .read_until(b'\n', &mut line.0)
            .map_err(|e| failed(format!("cannot read the password from standard input: {e}")))?;
        trim_line_end(&mut line.0);
        line
    };
    if password.0.is_empty() {
        return Err(usage(
            "the password is empty: give it as the first line of standard input",
        ));
    }
    Ok(password)
}

fn trim_line_end(v: &mut Vec<u8>) {
    if v.last() == Some(&b'\n') {
        v.pop();
    }
    if v.last() == Some(&b'\r') {
        v.pop();
    }
}

/// Asks on stderr and reads one line from the terminal with echo turned off.
fn prompt(question: &str) -> Result<Secret, Failure> {
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    if !stty("-echo") {
        eprintln!();
        return Err(failed(
            "cannot turn off the terminal's echo (stty failed); pipe the password on standard input instead",
        ));
    }
    let mut line = Secret(Vec::new());
    let read = std::io::stdin().lock().read_until(b'\n', &mut line.0);
    let restored = stty("echo");
    eprintln!();
    read.map_err(|e| failed(format!("cannot read the password: {e}")))?;
    if !restored {
        crate::warn!(
            "user",
            "could not turn the terminal's echo back on: run `stty echo`"
        );
    }
    trim_line_end(&mut line.0);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<UserCmd, argh::EarlyExit> {
        UserCmd::from_args(&["user"], args)
    }

    #[test]
    fn parses_the_three_actions_with_their_options() {
        let c = parse(&["add", "a@x", "--users", "/tmp/u", "--scheme", "blf-crypt"]).unwrap();
        let UserAction::Add(a) = c.action else {
            panic!()
        };
        assert_eq!(a.user, "a@x");
        assert_eq!(a.users.as_deref(), Some("/tmp/u"));
        assert_eq!(pick_scheme(&a.scheme).ok(), Some(Scheme::BlfCrypt));
        assert!(matches!(
            parse(&["passwd", "a@x"]).unwrap().action,
            UserAction::Passwd(_)
        ));
        assert!(matches!(
            parse(&["del", "a@x", "--users", "f"]).unwrap().action,
            UserAction::Del(_)
        ));
        assert!(parse(&["del", "--scheme", "PLAIN", "a@x"]).is_err());
        assert!(parse(&["add"]).is_err());
    }

    #[test]
    fn default_scheme_is_sha512_crypt_and_weak_ones_are_refused() {
        assert_eq!(pick_scheme(&None).ok(), Some(Scheme::Sha512Crypt));
        for weak in ["PLAIN", "SHA512", "MD5-CRYPT", "nonsense"] {
            let e = pick_scheme(&Some(weak.into())).err().unwrap();
            assert_eq!(e.code, EXIT_USAGE);
            assert!(e.message.contains("SHA512-CRYPT"), "{}", e.message);
        }
    }

    #[test]
    fn users_file_comes_from_flag_then_env_then_default() {
        let env = Env::from_pairs([("S3IMAP_USERS", "/env/users")]);
        let none = Env::from_pairs([]);
        let p = |flag: Option<&str>, env: &Env| {
            users_path(&flag.map(str::to_string), env).ok().unwrap()
        };
        assert_eq!(p(Some("/flag"), &env), PathBuf::from("/flag"));
        assert_eq!(p(None, &env), PathBuf::from("/env/users"));
        assert_eq!(p(None, &none), PathBuf::from(DEFAULT_USERS));
    }

    #[test]
    fn line_ends_are_trimmed_once() {
        for (raw, want) in [
            (&b"pw\n"[..], &b"pw"[..]),
            (b"pw\r\n", b"pw"),
            (b"pw", b"pw"),
            (b" pw \n", b" pw "),
        ] {
            let mut v = raw.to_vec();
            trim_line_end(&mut v);
            assert_eq!(v, want);
        }
    }
}
