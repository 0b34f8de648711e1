//! The IMAP session state machine (RFC 3501 §3 / RFC 9051 §3): not authenticated →
//! authenticated → selected → logout. Commands in, responses out: it writes into an
//! [`Output`] and returns a [`Step`] telling the server what to do next (wait for the next
//! command, resume a long FETCH after writing, upgrade to TLS, verify a password off the
//! executor, close). It touches the mail store (files), never a socket, so it is unit-tested
//! without one.

//!
//! The commands live in one module per family: [`auth`] (LOGIN, AUTHENTICATE),
//! [`mailboxes`] (SELECT, CREATE, LIST, STATUS, ...), [`messages`] (FETCH, STORE, SEARCH,
//! COPY, MOVE, EXPUNGE, ...), [`append`] (APPEND, streamed); [`special_use`] keeps the
//! special-use folders and [`error`] the typed failures every command returns.

mod append;
mod auth;
pub mod error;
mod mailboxes;
mod messages;
mod special_use;

pub use special_use::SPECIAL_FOLDERS;

use super::command::{Command, CommandKind, FetchAttr, ListArgs};
use super::mailbox::Selected;
use super::response::Output;
use crate::auth::users::UserDb;
use error::{Code, Failure};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What every session shares.
pub struct Context {
    pub mail_root: PathBuf,
    pub users: UserDb,
    /// Failed logins counted per address and user: their delays and blocks.
    pub throttle: crate::auth::throttle::Throttle,
    /// Allow LOGIN / AUTHENTICATE PLAIN without TLS (inside a VPN or tailnet).
    pub plaintext_auth: bool,
    /// Largest message APPEND accepts (advertised as APPENDLIMIT).
    pub append_limit: u64,
    /// Simultaneous sessions one user may have (clients open several; Thunderbird ~5).
    pub max_user_connections: usize,
    /// The open mailboxes, one shared state each ([`super::registry`]); the in-process sync
    /// tells it of deliveries, which wakes that mailbox's IDLE sessions.
    pub mailboxes: super::registry::Registry,
    /// App passwords ([`crate::auth::tokens`]) and what a password may be (`--auth`).
    pub tokens: crate::auth::tokens::TokenStore,
    pub auth_mode: crate::auth::login::AuthMode,
    /// Logged-in sessions per user.
    sessions: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Context {
    pub fn new(
        mail_root: PathBuf,
        users: UserDb,
        plaintext_auth: bool,
        max_user_connections: usize,
    ) -> Context {
        Context {
            tokens: crate::auth::tokens::TokenStore::new(mail_root.join(".s3imap/tokens")),
            auth_mode: crate::auth::login::AuthMode::Both,
            mail_root,
            users,
            throttle: crate::auth::throttle::Throttle::new(Default::default()),
            plaintext_auth,
            append_limit: 64 << 20,
            max_user_connections,
            mailboxes: super::registry::Registry::new(),
            sessions: Default::default(),
        }
    }

    /// Checks a login's password or app password (blocking: see [`crate::auth::login`]).
    pub fn authenticate(&self, user: &str, password: &[u8]) -> crate::auth::users::AuthResult {
        crate::auth::login::check(&self.users, &self.tokens, self.auth_mode, user, password)
    }

    /// Counts a session for `user`; false when the user has too many already.
    pub(super) fn enter(&self, user: &str) -> bool {
        let Ok(mut m) = self.sessions.lock() else {
            return true;
        };
        let n = m.entry(user.to_string()).or_default();
        if *n >= self.max_user_connections {
            return false;
        }
        *n += 1;
        true
    }

    pub(super) fn leave(&self, user: &str) {
        if let Ok(mut m) = self.sessions.lock()
            && let Some(n) = m.get_mut(user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(user);
            }
        }
    }
}

/// A password to check, handed to the server to verify on a blocking thread.
pub struct LoginRequest {
    pub tag: String,
    pub user: String,
    pub password: Vec<u8>,
    /// AUTHENTICATE (true) or LOGIN: only the wording of answers differs.
    pub sasl: bool,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("tag", &self.tag)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What the server must do after a command.
#[derive(Debug)]
pub enum Step {
    /// Write the output, read the next command.
    Done,
    /// Write the output, then call [`Session::resume`]: a long answer is under way.
    More,
    /// Write the output, then close the connection.
    Logout,
    /// Write the output (the tagged OK), then start a TLS handshake.
    StartTls,
    /// Write the output (the tagged OK), then deflate everything both ways (RFC 4978).
    Compress,
    /// Verify a password (slow), then call [`Session::login_done`].
    Login(LoginRequest),
    /// Send `+ idling`, then call [`Session::idle_tick`] now and then and
    /// [`Session::idle_done`] when the client sends DONE.
    Idle(String),
    /// AUTHENTICATE without an initial response: send an empty challenge (`+ `), read one
    /// response line, and hand it to [`Session::sasl_response`].
    SaslChallenge(String),
}

/// The logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// The user's mail directory (`<mail-root>/<name>`).
    pub dir: crate::maildir::UserDir,
    /// Logged in with a read-only app password: every change is `NO [NOPERM]`.
    pub read_only: bool,
    /// The id of the app password it logged in with (checked again while the session lasts).
    pub token: Option<String>,
}

enum State {
    NotAuthenticated,
    Authenticated(User),
    Logout,
}

/// A FETCH being answered across several writes.
struct PendingFetch {
    tag: String,
    uids: Vec<u32>,
    next: usize,
    attrs: Vec<FetchAttr<'static>>,
    uid: bool,
}

pub struct Session {
    ctx: Arc<Context>,
    state: State,
    selected: Option<Selected>,
    tls: bool,
    starttls_offered: bool,
    /// COMPRESS DEFLATE is on (RFC 4978).
    compressed: bool,
    peer: SocketAddr,
    /// ENABLE'd extensions.
    enabled: Vec<&'static str>,
    /// UTF8=ACCEPT is enabled (RFC 6855): mailbox names travel as UTF-8, not modified UTF-7.
    utf8: bool,
    /// CONDSTORE is enabled (RFC 7162 §3.1): by ENABLE, or by the first command that uses it.
    condstore: bool,
    /// QRESYNC is enabled (RFC 7162 §3.2), which enables CONDSTORE too.
    qresync: bool,
    /// IMAP4rev2 is enabled (RFC 9051): its rules from then on, UTF-8 mailbox names included.
    rev2: bool,
    pending: Option<PendingFetch>,
    append: Option<append::Append>,
    /// When the app password this session logged in with was last found still valid.
    token_checked: std::time::Instant,
}

/// How often a session logged in with an app password checks that it still counts.
const TOKEN_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

impl Session {
    pub fn new(ctx: Arc<Context>, tls: bool, starttls_offered: bool, peer: SocketAddr) -> Session {
        Session {
            ctx,
            state: State::NotAuthenticated,
            selected: None,
            tls,
            starttls_offered,
            compressed: false,
            peer,
            enabled: Vec::new(),
            utf8: false,
            condstore: false,
            qresync: false,
            rev2: false,
            pending: None,
            append: None,
            token_checked: std::time::Instant::now(),
        }
    }

    fn token_check_due(&self) -> bool {
        matches!(
            &self.state,
            State::Authenticated(User { token: Some(_), .. })
        ) && self.token_checked.elapsed() >= TOKEN_RECHECK
    }

    /// Ends the session (BYE, true) when its app password was revoked or expired since the
    /// last look (blocking: reads the token list; at most every [`TOKEN_RECHECK`]).
    fn token_gone(&mut self, out: &mut Output) -> bool {
        if !self.token_check_due() {
            return false;
        }
        self.token_checked = std::time::Instant::now();
        let State::Authenticated(User {
            token: Some(id),
            name,
            ..
        }) = &self.state
        else {
            return false;
        };
        if self.ctx.tokens.still_valid(id) {
            return false;
        }
        crate::info!(
            "imap",
            "{}: {name}: app password {id} revoked or expired; session ended",
            self.peer
        );
        out.put(b"* BYE [UNAVAILABLE] This app password was revoked or has expired\r\n");
        self.ctx.leave(name);
        self.state = State::Logout;
        self.selected = None;
        true
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated(_))
    }

    /// The user, once logged in.
    pub fn user(&self) -> Option<&User> {
        match &self.state {
            State::Authenticated(u) => Some(u),
            _ => None,
        }
    }

    fn auth_allowed(&self) -> bool {
        self.tls || self.ctx.plaintext_auth
    }

    /// The capability list for the current state.
    pub fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE");
        match self.state {
            State::NotAuthenticated => {
                if self.starttls_offered && !self.tls {
                    c.push_str(" STARTTLS");
                }
                if self.auth_allowed() {
                    c.push_str(" AUTH=PLAIN");
                } else {
                    c.push_str(" LOGINDISABLED");
                }
            }
            _ => {
                c.push_str(
                    " NAMESPACE UNSELECT CHILDREN UIDPLUS MOVE SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED \
                     LIST-STATUS ESEARCH SEARCHRES UTF8=ACCEPT CONDSTORE QRESYNC STATUS=SIZE WITHIN SORT SORT=DISPLAY ESORT BINARY MULTIAPPEND PREVIEW SAVEDATE \
                     THREAD=ORDEREDSUBJECT THREAD=REFERENCES",
                );
                c.push_str(&format!(" APPENDLIMIT={}", self.ctx.append_limit));
                if !self.compressed {
                    c.push_str(" COMPRESS=DEFLATE");
                }
            }
        }
        c
    }

    /// The greeting line.
    pub fn greeting(&self, out: &mut Output) {
        out.put(format!("* OK [CAPABILITY {}] s3imap ready\r\n", self.capabilities()).as_bytes());
    }

    /// Runs one command. A NO or BAD it answers is logged at debug level with the connection,
    /// the tag and the command's name (never its arguments: they may hold a password).
    pub fn execute(&mut self, cmd: Command<'_>, out: &mut Output) -> Step {
        let name = cmd.kind.name();
        crate::metrics::get().command(name);
        if self.token_gone(out) {
            return Step::Logout;
        }
        let step = self.execute_inner(cmd, out);
        self.log_failures(name, out);
        step
    }

    /// Logs the NO/BAD answers in `out` (debug level).
    pub fn log_failures(&self, command: &'static str, out: &mut Output) {
        for (answer, f) in out.take_failures() {
            crate::metrics::get().failure(command, answer);
            crate::debug!("imap", "{}: {command}: {f}", self.peer);
        }
    }

    fn execute_inner(&mut self, cmd: Command<'_>, out: &mut Output) -> Step {
        let tag = cmd.tag;
        self.run(tag, cmd.kind, out).unwrap_or_else(|f| {
            f.answer(out, tag);
            Step::Done
        })
    }

    /// The commands of any state; the others go on to [`Session::authenticated`].
    fn run(&mut self, tag: &str, kind: CommandKind<'_>, out: &mut Output) -> Result<Step, Failure> {
        use CommandKind as K;
        match kind {
            K::Capability => {
                out.put(format!("* CAPABILITY {}\r\n", self.capabilities()).as_bytes());
                ok(out, tag, "CAPABILITY completed");
            }
            K::Noop => {
                // NOOP is how clients poll: look at the disk now, report what changed.
                if let Some(sel) = self.selected.as_mut() {
                    sel.poll();
                }
                self.sync_selected(out, true);
                self.tagged_ok(out, tag, None, "NOOP completed");
            }
            K::Logout => {
                out.put(b"* BYE Logging out\r\n");
                ok(out, tag, "LOGOUT completed");
                if let State::Authenticated(u) = &self.state {
                    self.ctx.leave(&u.name);
                }
                self.state = State::Logout;
                return Ok(Step::Logout);
            }
            K::Id(_) => {
                out.put(b"* ID (\"name\" \"s3imap\" \"version\" \"");
                out.put(env!("CARGO_PKG_VERSION").as_bytes());
                out.put(b"\")\r\n");
                ok(out, tag, "ID completed");
            }
            K::StartTls => {
                if !self.starttls_offered || self.tls {
                    return Err(Failure::bad("STARTTLS is not available here"));
                }
                if !matches!(self.state, State::NotAuthenticated) {
                    return Err(Failure::bad("STARTTLS only before login"));
                }
                ok(out, tag, "Begin TLS negotiation now");
                return Ok(Step::StartTls);
            }
            K::Login { username, password } => {
                return self.login(tag, &username, password.into_owned());
            }
            K::Authenticate {
                mechanism,
                initial_response,
            } => return self.authenticate(tag, mechanism, initial_response),
            K::Enable(caps) => {
                self.logged_in("ENABLE")?;
                let mut on = Vec::new();
                for c in caps {
                    let Some(name) = ["UTF8=ACCEPT", "CONDSTORE", "QRESYNC", "IMAP4rev2"]
                        .into_iter()
                        .find(|n| c.eq_ignore_ascii_case(n))
                    else {
                        continue;
                    };
                    if self.enabled.contains(&name) {
                        continue;
                    }
                    self.enabled.push(name);
                    on.push(name);
                    match name {
                        "UTF8=ACCEPT" => self.utf8 = true,
                        "IMAP4rev2" => {
                            // RFC 9051 §5.1: mailbox names are UTF-8 from now on.
                            self.rev2 = true;
                            self.utf8 = true;
                            if let Some(sel) = self.selected.as_mut() {
                                sel.rev2 = true;
                            }
                        }
                        "QRESYNC" => {
                            self.qresync = true;
                            if let Some(sel) = self.selected.as_mut() {
                                sel.qresync = true;
                            }
                            self.enable_condstore(out);
                        }
                        _ => self.enable_condstore(out),
                    }
                }
                let mut line = String::from("* ENABLED");
                for c in on {
                    line.push(' ');
                    line.push_str(c);
                }
                line.push_str("\r\n");
                out.put(line.as_bytes());
                ok(out, tag, "ENABLE completed");
            }
            K::Compress(mechanism) => {
                self.logged_in("COMPRESS")?;
                if self.compressed {
                    return Err(Failure::no(
                        Code::CompressionActive,
                        "Compression is already on",
                    ));
                }
                if !mechanism.eq_ignore_ascii_case("DEFLATE") {
                    return Err(Failure::bad(format!(
                        "Unknown compression mechanism {mechanism}"
                    )));
                }
                self.compressed = true;
                ok(out, tag, "DEFLATE active");
                return Ok(Step::Compress);
            }
            K::Namespace => {
                self.logged_in("NAMESPACE")?;
                out.put(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                ok(out, tag, "NAMESPACE completed");
            }
            other => {
                let user = self.logged_in(other.name())?.clone();
                return self.authenticated(tag, other, &user, out);
            }
        }
        Ok(Step::Done)
    }

    /// The user, or BAD for `command` before login.
    fn logged_in(&self, command: &str) -> Result<&User, Failure> {
        self.user()
            .ok_or_else(|| Failure::bad(format!("{command} needs a login first")))
    }

    /// Commands of the authenticated and selected states.
    fn authenticated(
        &mut self,
        tag: &str,
        kind: CommandKind<'_>,
        user: &User,
        out: &mut Output,
    ) -> Result<Step, Failure> {
        use CommandKind as K;
        let name = kind.name();
        if user.read_only && kind.changes() {
            return Err(Failure::no(Code::NoPerm, "This app password is read-only"));
        }
        match kind {
            K::Select { mailbox, params } => {
                // A read-only session's SELECT is an EXAMINE: reading sets no \Seen.
                self.select(user, &mailbox, &params, user.read_only, tag, out)?;
                return Ok(Step::Done);
            }
            K::Examine { mailbox, params } => {
                self.select(user, &mailbox, &params, true, tag, out)?;
                return Ok(Step::Done);
            }
            K::List(args) => self.list(user, &args, false, out)?,
            K::Lsub { reference, pattern } => {
                let args = ListArgs {
                    select: Default::default(),
                    reference,
                    patterns: vec![pattern],
                    returns: Default::default(),
                    extended: false,
                };
                self.list(user, &args, true, out)?;
            }
            K::Status { mailbox, items } => self.status(user, &mailbox, &items, out)?,
            K::Create {
                mailbox,
                special_use,
            } => self.create(user, &mailbox, &special_use)?,
            K::Delete { mailbox } => self.delete(user, &mailbox)?,
            K::Rename { from, to } => self.rename(user, &from, &to)?,
            K::Subscribe { mailbox } => self.subscribe(user, &mailbox, true)?,
            K::Unsubscribe { mailbox } => self.subscribe(user, &mailbox, false)?,
            K::Append { .. } => {
                // The server streams APPEND (append_start/data/done); a whole one here is ours.
                return Err(Failure::no(Code::ServerBug, "APPEND must be streamed"));
            }
            K::Idle => {
                if let Some(sel) = self.selected.as_mut() {
                    sel.poll();
                    sel.sync(out, true);
                }
                return Ok(Step::Idle(tag.to_string()));
            }
            other => return Ok(self.selected_cmd(tag, other, out)),
        }
        self.sync_selected(out, true);
        self.tagged_ok(out, tag, None, &format!("{name} completed"));
        Ok(Step::Done)
    }

    /// CONDSTORE is on from now (RFC 7162 §3.1). Turned on with a mailbox selected, the
    /// client hears its HIGHESTMODSEQ now (as Dovecot tells it).
    fn enable_condstore(&mut self, out: &mut Output) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(sel) = self.selected.as_mut() {
            sel.condstore = true;
            out.put(
                format!("* OK [HIGHESTMODSEQ {}] Highest\r\n", sel.highest_modseq()).as_bytes(),
            );
        }
    }

    /// The tagged OK of a command that may have told expunges: after VANISHED it carries the
    /// new HIGHESTMODSEQ (RFC 7162 §3.2.10), untagged when the answer has a code of its own.
    fn tagged_ok(&mut self, out: &mut Output, tag: &str, code: Option<String>, text: &str) {
        let highest = self
            .selected
            .as_mut()
            .and_then(Selected::take_vanished_code);
        match (code, highest) {
            (Some(c), Some(h)) => {
                out.put(format!("* OK [{h}] Highest\r\n").as_bytes());
                ok(out, tag, &format!("[{c}] {text}"));
            }
            (Some(c), None) | (None, Some(c)) => ok(out, tag, &format!("[{c}] {text}")),
            (None, None) => ok(out, tag, text),
        }
    }

    /// Reports changes in the selected mailbox.
    fn sync_selected(&mut self, out: &mut Output, expunges: bool) {
        if let Some(sel) = self.selected.as_mut()
            && !sel.sync(out, expunges)
        {
            self.selected = None;
        }
    }

    /// A listener woken when the selected mailbox changes (IDLE waits on it as well as on the
    /// socket and its tick): another session's change, a delivery of the sync.
    pub fn idle_listener(&self) -> Option<event_listener::EventListener> {
        self.selected.as_ref().map(Selected::listen)
    }

    /// Whether an IDLE tick could report anything now (in memory; no I/O). The server skips the
    /// tick (and the thread it would take) otherwise.
    pub fn idle_tick_due(&self) -> bool {
        self.selected.as_ref().is_some_and(Selected::worth_a_look) || self.token_check_due()
    }

    /// While IDLE: reports changes (called every second or so); false when the session
    /// ended (its app password was revoked: BYE is in `out`).
    pub fn idle_tick(&mut self, out: &mut Output) -> bool {
        if self.token_gone(out) {
            return false;
        }
        self.sync_selected(out, true);
        true
    }

    /// IDLE ended with DONE.
    pub fn idle_done(&mut self, tag: &str, out: &mut Output) {
        self.sync_selected(out, true);
        self.tagged_ok(out, tag, None, "IDLE terminated");
    }

    /// TLS is up after STARTTLS.
    pub fn tls_started(&mut self) {
        self.tls = true;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let State::Authenticated(u) = &self.state {
            self.ctx.leave(&u.name);
        }
    }
}

/// The tagged OK.
fn ok(out: &mut Output, tag: &str, text: &str) {
    out.put(format!("{tag} OK {text}\r\n").as_bytes());
}

#[cfg(test)]
mod tests {
    //! The state machine without a socket: commands parsed from bytes, answers read from the
    //! output, a real Maildir in a scratch directory.
    use super::*;
    use crate::imap::parser::{Limits, Parsed, parse_command};

    struct T {
        dir: PathBuf,
        s: Session,
    }

    impl T {
        fn new(name: &str) -> T {
            let dir =
                std::env::temp_dir().join(format!("s3imap-session-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("mail/a@b.c/new")).unwrap();
            for sub in ["cur", "tmp"] {
                std::fs::create_dir_all(dir.join("mail/a@b.c").join(sub)).unwrap();
            }
            std::fs::write(dir.join("users"), "a@b.c:{PLAIN}pw\n").unwrap();
            std::fs::write(
                dir.join("mail/a@b.c/new/1700000000.S3Iab.s3imap"),
                "From: x@y.z\nSubject: hi\n\nline one\nline two\n",
            )
            .unwrap();
            let ctx = Arc::new(Context::new(
                dir.join("mail"),
                UserDb::open(dir.join("users")).unwrap(),
                true,
                2,
            ));
            let s = Session::new(ctx, false, false, "127.0.0.1:1".parse().unwrap());
            T { dir, s }
        }

        /// Runs one command line; returns the answer and the step.
        fn run(&mut self, line: &str) -> (String, Step) {
            let buf = format!("{line}\r\n").into_bytes();
            let mut out = Output::new();
            let step = match parse_command(&buf, &Limits::default()) {
                Ok(Parsed::Complete { command, .. }) => self.s.execute(command, &mut out),
                other => panic!("{line}: {other:?}"),
            };
            let step = match step {
                Step::Login(req) => {
                    let r = self.s.ctx.authenticate(&req.user, &req.password);
                    self.s.login_done(req, r, &mut out)
                }
                other => other,
            };
            (
                String::from_utf8_lossy(&out.to_bytes_for_test()).into_owned(),
                step,
            )
        }
    }

    impl Drop for T {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn states_and_a_fetch() {
        let mut t = T::new("states");
        let (r, _) = t.run("1 SELECT INBOX");
        assert!(r.starts_with("1 BAD"), "{r}");
        let (r, _) = t.run("2 LOGIN a@b.c wrong");
        assert!(r.contains("2 NO [AUTHENTICATIONFAILED]"), "{r}");
        let (r, _) = t.run("3 LOGIN A@B.C pw");
        assert!(
            r.contains("3 OK [CAPABILITY"),
            "user names match case-insensitively: {r}"
        );
        let (r, _) = t.run("4 SELECT INBOX");
        assert!(
            r.contains("* 1 EXISTS") && r.contains("4 OK [READ-WRITE]"),
            "{r}"
        );
        // RFC822.SIZE counts bare LF as CRLF; the body is streamed from the file.
        let (r, step) = t.run("5 FETCH 1 (RFC822.SIZE BODY[])");
        assert!(matches!(step, Step::Done));
        assert!(r.contains("RFC822.SIZE 48"), "{r}");
        assert!(r.contains("BODY[] {48}\r\n<file "), "{r}");
        assert!(
            r.contains("FLAGS (\\Seen \\Recent)"),
            "BODY[] sets \\Seen: {r}"
        );
        let (r, _) = t.run("6 STORE 1 +FLAGS.SILENT (\\Deleted)");
        assert!(!r.contains("FETCH") && r.contains("6 OK"), "{r}");
        let (r, _) = t.run("6b STATUS INBOX (DELETED MESSAGES)");
        assert!(r.contains("* STATUS INBOX (DELETED 1 MESSAGES 1)"), "{r}");
        let (r, _) = t.run("7 EXPUNGE");
        assert!(r.contains("* 1 EXPUNGE\r\n* 0 RECENT\r\n7 OK"), "{r}");
        let (r, step) = t.run("8 LOGOUT");
        assert!(
            r.starts_with("* BYE") && matches!(step, Step::Logout),
            "{r}"
        );
    }

    #[test]
    fn a_message_expunged_under_a_fetch_is_left_out_without_an_error() {
        let mut t = T::new("gone");
        t.run("1 LOGIN a@b.c pw");
        t.run("2 SELECT INBOX");
        // Another program removes the file: the session still has the message in its view.
        for e in std::fs::read_dir(t.dir.join("mail/a@b.c/cur")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        for (i, items) in ["ENVELOPE", "BODY.PEEK[]", "BODYSTRUCTURE", "RFC822.SIZE"]
            .iter()
            .enumerate()
        {
            let (r, _) = t.run(&format!("f{i} FETCH 1 ({items})"));
            assert!(!r.contains('\0'), "a NUL on the wire: {r:?}");
            assert!(
                r.ends_with(&format!("f{i} OK FETCH completed\r\n")),
                "{items}: {r:?}"
            );
            assert!(!r.contains("FETCH ("), "{items}: {r:?}");
        }
    }

    #[test]
    fn per_user_session_limit() {
        let mut t = T::new("limit");
        let ctx = Arc::clone(&t.s.ctx);
        let peer = "127.0.0.1:2".parse().unwrap();
        let mut others: Vec<Session> = (0..2)
            .map(|_| Session::new(Arc::clone(&ctx), false, false, peer))
            .collect();
        let mut out = Output::new();
        for s in &mut others {
            let r = ctx.users.authenticate("a@b.c", b"pw");
            let req = LoginRequest {
                tag: "x".into(),
                user: "a@b.c".into(),
                password: b"pw".to_vec(),
                sasl: false,
            };
            s.login_done(req, r, &mut out);
        }
        let (r, _) = t.run("1 LOGIN a@b.c pw");
        assert!(r.contains("1 NO [LIMIT]"), "{r}");
        others.pop();
        let (r, _) = t.run("2 LOGIN a@b.c pw");
        assert!(r.contains("2 OK"), "a closed session frees its place: {r}");
    }

    #[test]
    fn create_special_use_moves_the_attribute() {
        let mut t = T::new("createuse");
        t.run("1 LOGIN a@b.c pw");
        let (r, _) = t.run("2 CREATE \"Sent Items\" (USE (\\Sent))");
        assert!(r.contains("2 OK"), "{r}");
        let (r, _) = t.run("3 LIST \"\" *");
        assert!(
            r.contains("(\\HasNoChildren \\Sent) \"/\" \"Sent Items\""),
            "{r}"
        );
        assert!(
            r.contains("(\\HasNoChildren) \"/\" Sent\r\n"),
            "the default loses it: {r}"
        );
        let (r, _) = t.run("4 RENAME \"Sent Items\" Outbox");
        assert!(r.contains("4 OK"), "{r}");
        let (r, _) = t.run("5 LIST (SPECIAL-USE) \"\" *");
        assert!(r.contains("\\Sent) \"/\" Outbox"), "{r}");
        let (r, _) = t.run("6 CREATE Stars (USE (\\Flagged))");
        assert!(r.contains("6 NO [USEATTR]"), "{r}");
    }

    #[test]
    fn special_use_folders_appear_at_first_login() {
        let mut t = T::new("special");
        t.run("1 LOGIN a@b.c pw");
        let (r, _) = t.run("2 LIST \"\" *");
        for (name, attr) in SPECIAL_FOLDERS {
            assert!(
                r.contains(&format!("{attr}) \"/\" {name}\r\n")),
                "{name}: {r}"
            );
        }
        let (r, _) = t.run("3 LIST (SPECIAL-USE) \"\" *");
        assert!(!r.contains(" INBOX\r\n"), "{r}");
        let (r, _) = t.run("4 STATUS Sent (MESSAGES UIDNEXT)");
        assert!(r.contains("* STATUS Sent (MESSAGES 0 UIDNEXT 1)"), "{r}");
    }

    #[test]
    fn long_fetches_yield_and_resume() {
        let mut t = T::new("resume");
        let big = "x".repeat(70 * 1024);
        for i in 0..4 {
            std::fs::write(
                t.dir
                    .join(format!("mail/a@b.c/new/17000000{i}0.S3Ix{i}.s3imap")),
                format!("Subject: {i}\r\nX-Pad: {big}\r\n\r\nbody\r\n"),
            )
            .unwrap();
        }
        t.run("1 LOGIN a@b.c pw");
        t.run("2 SELECT INBOX");
        let (r, step) = t.run("3 FETCH 1:* (BODY.PEEK[HEADER])");
        assert!(
            matches!(step, Step::More),
            "a 280 KiB answer yields: {}",
            r.len()
        );
        let mut out = Output::new();
        let mut rounds = 1;
        let mut step = t.s.resume(&mut out);
        while matches!(step, Step::More) {
            rounds += 1;
            step = t.s.resume(&mut out);
        }
        let rest = String::from_utf8_lossy(&out.to_bytes_for_test()).into_owned();
        assert!(rest.ends_with("3 OK FETCH completed\r\n"), "{rest}");
        assert!(rounds >= 2, "{rounds}");
    }
}
