//! The IMAP session state machine (RFC 3501 §3 / RFC 9051 §3): not authenticated →
//! authenticated → selected → logout. Commands in, responses out: it writes into an
//! [`Output`] and returns a [`Step`] telling the server what to do next (wait for the next
//! command, resume a long FETCH after writing, upgrade to TLS, verify a password off the
//! executor, close). It touches the mail store (files), never a socket, so it is unit-tested
//! without one.

use super::command::{
    AppendHead, AppendMessageHead, Command, CommandKind, FetchAttr, Flag, ListArgs,
    Mailbox as MailboxArg, SearchReturn, Section, SectionText, SequenceArg, StatusItem,
};
use super::mailbox::Selected;
use super::parser::decode_base64;
use super::response::{self, Output};
use crate::auth::users::{AuthResult, UserDb};
use crate::maildir::folders;
use crate::maildir::store::{self, Flags, Mailbox};
use crate::utf7;
use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What every session shares.
pub struct Context {
    pub mail_root: PathBuf,
    pub users: UserDb,
    /// How long a failed login keeps the client waiting.
    pub login_failure_delay: Duration,
    /// Allow LOGIN / AUTHENTICATE PLAIN without TLS (inside a VPN or tailnet).
    pub plaintext_auth: bool,
    /// Largest message APPEND accepts (advertised as APPENDLIMIT).
    pub append_limit: u64,
    /// Simultaneous sessions one user may have (clients open several; Thunderbird ~5).
    pub max_user_connections: usize,
    /// The open mailboxes, one shared state each ([`super::registry`]); the in-process sync
    /// tells it of deliveries, which wakes that mailbox's IDLE sessions.
    pub mailboxes: super::registry::Registry,
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
            mail_root,
            users,
            login_failure_delay: Duration::from_secs(2),
            plaintext_auth,
            append_limit: 64 << 20,
            max_user_connections,
            mailboxes: super::registry::Registry::new(),
            sessions: Default::default(),
        }
    }

    /// Counts a session for `user`; false when the user has too many already.
    fn enter(&self, user: &str) -> bool {
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

    fn leave(&self, user: &str) {
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
    pub dir: PathBuf,
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

/// An APPEND being received.
struct Append {
    tag: String,
    dir: PathBuf,
    /// The message being written, straight into the target's `tmp/` (written once).
    incoming: Option<crate::maildir::Incoming>,
    flags: Flags,
    keywords: Vec<String>,
    date: Option<SystemTime>,
    /// (UIDVALIDITY, UIDs) of the messages stored so far.
    done: Vec<u32>,
    validity: u32,
    failed: Option<String>,
}

pub struct Session {
    ctx: Arc<Context>,
    state: State,
    selected: Option<Selected>,
    tls: bool,
    starttls_offered: bool,
    peer: SocketAddr,
    /// ENABLE'd extensions.
    enabled: Vec<&'static str>,
    /// UTF8=ACCEPT is enabled (RFC 6855): mailbox names travel as UTF-8, not modified UTF-7.
    utf8: bool,
    pending: Option<PendingFetch>,
    append: Option<Append>,
}

/// Folders every user has, created at first login, with their SPECIAL-USE attribute.
pub const SPECIAL_FOLDERS: [(&str, &str); 5] = [
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

impl Session {
    pub fn new(ctx: Arc<Context>, tls: bool, starttls_offered: bool, peer: SocketAddr) -> Session {
        Session {
            ctx,
            state: State::NotAuthenticated,
            selected: None,
            tls,
            starttls_offered,
            peer,
            enabled: Vec::new(),
            utf8: false,
            pending: None,
            append: None,
        }
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
        let mut c = String::from("IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE");
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
                     LIST-STATUS ESEARCH SEARCHRES UTF8=ACCEPT",
                );
                c.push_str(&format!(" APPENDLIMIT={}", self.ctx.append_limit));
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
        let step = self.execute_inner(cmd, out);
        self.log_failures(name, out);
        step
    }

    /// Logs the NO/BAD answers in `out` (debug level).
    pub fn log_failures(&self, command: &str, out: &mut Output) {
        for f in out.take_failures() {
            crate::debug!("imap", "{}: {command}: {f}", self.peer);
        }
    }

    fn execute_inner(&mut self, cmd: Command<'_>, out: &mut Output) -> Step {
        let tag = cmd.tag;
        use CommandKind as K;
        match cmd.kind {
            K::Capability => {
                out.put(format!("* CAPABILITY {}\r\n", self.capabilities()).as_bytes());
                ok(out, tag, "CAPABILITY completed");
                Step::Done
            }
            K::Noop => {
                // NOOP is how clients poll: look at the disk now, report what changed.
                if let Some(sel) = self.selected.as_mut() {
                    sel.poll();
                }
                self.sync_selected(out, true);
                ok(out, tag, "NOOP completed");
                Step::Done
            }
            K::Logout => {
                out.put(b"* BYE Logging out\r\n");
                ok(out, tag, "LOGOUT completed");
                if let State::Authenticated(u) = &self.state {
                    self.ctx.leave(&u.name);
                }
                self.state = State::Logout;
                Step::Logout
            }
            K::Id(_) => {
                out.put(b"* ID (\"name\" \"s3imap\" \"version\" \"");
                out.put(env!("CARGO_PKG_VERSION").as_bytes());
                out.put(b"\")\r\n");
                ok(out, tag, "ID completed");
                Step::Done
            }
            K::StartTls => {
                if !self.starttls_offered || self.tls {
                    bad(out, tag, "STARTTLS is not available here");
                    return Step::Done;
                }
                if !matches!(self.state, State::NotAuthenticated) {
                    bad(out, tag, "STARTTLS only before login");
                    return Step::Done;
                }
                ok(out, tag, "Begin TLS negotiation now");
                Step::StartTls
            }
            K::Login { username, password } => {
                if !matches!(self.state, State::NotAuthenticated) {
                    bad(out, tag, "Already logged in");
                    return Step::Done;
                }
                if !self.auth_allowed() {
                    no(out, tag, "[PRIVACYREQUIRED] Use STARTTLS or port 993 first");
                    return Step::Done;
                }
                Step::Login(LoginRequest {
                    tag: tag.to_string(),
                    user: String::from_utf8_lossy(&username).into_owned(),
                    password: password.into_owned(),
                    sasl: false,
                })
            }
            K::Authenticate {
                mechanism,
                initial_response,
            } => {
                if !matches!(self.state, State::NotAuthenticated) {
                    bad(out, tag, "Already logged in");
                    return Step::Done;
                }
                if !mechanism.eq_ignore_ascii_case("PLAIN") {
                    no(out, tag, "Unsupported authentication mechanism (use PLAIN)");
                    return Step::Done;
                }
                if !self.auth_allowed() {
                    no(out, tag, "[PRIVACYREQUIRED] Use STARTTLS or port 993 first");
                    return Step::Done;
                }
                match initial_response {
                    Some(ir) => plain_login(tag, ir, out),
                    // The server asks for the response with an empty challenge.
                    None => Step::SaslChallenge(tag.to_string()),
                }
            }
            K::Enable(caps) => {
                if !self.is_authenticated() {
                    bad(out, tag, "ENABLE needs a login first");
                    return Step::Done;
                }
                let mut on = Vec::new();
                for c in caps {
                    if c.eq_ignore_ascii_case("UTF8=ACCEPT")
                        && !self.enabled.contains(&"UTF8=ACCEPT")
                    {
                        self.enabled.push("UTF8=ACCEPT");
                        self.utf8 = true;
                        on.push("UTF8=ACCEPT");
                    }
                }
                out.put(
                    format!(
                        "* ENABLED{}{}\r\n",
                        if on.is_empty() { "" } else { " " },
                        on.join(" ")
                    )
                    .as_bytes(),
                );
                ok(out, tag, "ENABLE completed");
                Step::Done
            }
            K::Namespace => {
                if !self.is_authenticated() {
                    bad(out, tag, "Log in first");
                    return Step::Done;
                }
                out.put(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                ok(out, tag, "NAMESPACE completed");
                Step::Done
            }
            other => {
                let State::Authenticated(user) = &self.state else {
                    bad(out, tag, &format!("{} needs a login first", other.name()));
                    return Step::Done;
                };
                let user = user.clone();
                self.authenticated(tag, other, &user, out)
            }
        }
    }

    /// Commands of the authenticated and selected states.
    fn authenticated(
        &mut self,
        tag: &str,
        kind: CommandKind<'_>,
        user: &User,
        out: &mut Output,
    ) -> Step {
        use CommandKind as K;
        let name = kind.name();
        let utf8 = self.utf8;
        let result: Result<Step, String> = match kind {
            K::Select { mailbox, .. } | K::Examine { mailbox, .. } if true => {
                let readonly = name == "EXAMINE";
                return match self.select(user, &mailbox, readonly, tag, out) {
                    Ok(()) => Step::Done,
                    Err(e) => {
                        no(out, tag, &e);
                        Step::Done
                    }
                };
            }
            K::List(args) => self.list(user, &args, false, out).map(|()| Step::Done),
            K::Lsub { reference, pattern } => {
                let args = ListArgs {
                    select: Default::default(),
                    reference,
                    patterns: vec![pattern],
                    returns: Default::default(),
                    extended: false,
                };
                self.list(user, &args, true, out).map(|()| Step::Done)
            }
            K::Status { mailbox, items } => self
                .status(user, &mailbox, &items, out)
                .map(|()| Step::Done),
            K::Create {
                mailbox,
                special_use,
            } => folder_name(&mailbox, utf8).and_then(|n| {
                if folders::is_inbox(&n) {
                    return Err("[ALREADYEXISTS] INBOX always exists".into());
                }
                let mut uses = Vec::new();
                for u in &special_use {
                    uses.push(special_use_name(u).ok_or_else(|| {
                        "[USEATTR] Only \\Archive \\Drafts \\Junk \\Sent \\Trash can be given"
                            .to_string()
                    })?);
                }
                folders::create(&user.dir, &n).map_err(folder_err)?;
                for u in uses {
                    set_special_use(&user.dir, u, Some(&n)).map_err(|e| e.to_string())?;
                }
                Ok(Step::Done)
            }),
            K::Delete { mailbox } => folder_name(&mailbox, utf8).and_then(|n| {
                if self.selected.as_ref().is_some_and(|s| s.name == n) {
                    self.selected = None;
                }
                folders::delete(&user.dir, &n).map_err(folder_err)?;
                for (attr, folder) in special_uses(&user.dir) {
                    if folder == n {
                        let _ = set_special_use(&user.dir, &attr, None);
                    }
                }
                Ok(Step::Done)
            }),
            K::Rename { from, to } => folder_name(&from, utf8).and_then(|f| {
                let t = folder_name(&to, utf8)?;
                folders::rename(&user.dir, &f, &t).map_err(folder_err)?;
                for (attr, folder) in special_uses(&user.dir) {
                    if folder == f {
                        let _ = set_special_use(&user.dir, &attr, Some(&t));
                    }
                }
                Ok(Step::Done)
            }),
            K::Subscribe { mailbox } | K::Unsubscribe { mailbox } if true => {
                let on = matches!(name, "SUBSCRIBE");
                folder_name(&mailbox, utf8).and_then(|n| {
                    folders::set_subscribed(&user.dir, &n, on).map_err(folder_err)?;
                    Ok(Step::Done)
                })
            }
            K::Append { .. } => Err("APPEND arrives streamed".into()),
            K::Idle => {
                if let Some(sel) = self.selected.as_mut() {
                    sel.poll();
                    sel.sync(out, true);
                }
                return Step::Idle(tag.to_string());
            }
            other => return self.selected_cmd(tag, other, out),
        };
        match result {
            Ok(Step::Done) => {
                self.sync_selected(out, true);
                ok(out, tag, &format!("{name} completed"));
                Step::Done
            }
            Ok(step) => step,
            Err(e) => {
                no(out, tag, &e);
                Step::Done
            }
        }
    }

    /// SELECT / EXAMINE; writes the tagged OK itself (with READ-WRITE / READ-ONLY).
    fn select(
        &mut self,
        user: &User,
        mailbox: &MailboxArg<'_>,
        readonly: bool,
        tag: &str,
        out: &mut Output,
    ) -> Result<(), String> {
        if self.selected.take().is_some() {
            // RFC 7162 §3.2.11 / RFC 9051 §7.1: the previous mailbox is closed first.
            out.put(b"* OK [CLOSED] Previous mailbox closed\r\n");
        }
        let name = folder_name(mailbox, self.utf8)?;
        let path = folders::folder_path(&user.dir, &name).map_err(folder_err)?;
        let opened = self
            .ctx
            .mailboxes
            .open(&path)
            .and_then(|shared| Selected::open(shared, name, readonly));
        let mut sel = opened.map_err(|e| match e {
            store::StoreError::NoSuchMailbox { .. } => "[NONEXISTENT] No such mailbox".to_string(),
            e => e.to_string(),
        })?;
        sel.select_responses(out);
        self.selected = Some(sel);
        ok(
            out,
            tag,
            if readonly {
                "[READ-ONLY] EXAMINE completed"
            } else {
                "[READ-WRITE] SELECT completed"
            },
        );
        Ok(())
    }

    /// Reports changes in the selected mailbox.
    fn sync_selected(&mut self, out: &mut Output, expunges: bool) {
        if let Some(sel) = self.selected.as_mut()
            && !sel.sync(out, expunges)
        {
            self.selected = None;
        }
    }

    fn list(
        &mut self,
        user: &User,
        args: &ListArgs<'_>,
        lsub: bool,
        out: &mut Output,
    ) -> Result<(), String> {
        let decode = |raw: &[u8]| {
            if self.utf8 {
                String::from_utf8_lossy(raw).into_owned()
            } else {
                utf7::decode(raw).unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
            }
        };
        let reference = decode(args.reference.as_bytes());
        let subscribed = folders::subscriptions(&user.dir).unwrap_or_default();
        let all = folders::list(&user.dir).map_err(folder_err)?;
        let entries = folders::tree(&all);
        let special = special_uses(&user.dir);
        let cmd = if lsub { "LSUB" } else { "LIST" };
        let mut patterns = Vec::new();
        for pat in &args.patterns {
            let pat = decode(pat);
            if pat.is_empty() && !lsub {
                // The hierarchy delimiter and root (RFC 3501 §6.3.8).
                out.put(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
                continue;
            }
            patterns.push(format!("{reference}{pat}"));
        }
        let have = super::list::Have {
            entries: &entries,
            subscribed: &subscribed,
            special: &special,
        };
        for l in super::list::answer(args, &patterns, lsub, &have) {
            let mut line = format!("* {cmd} ({}) \"/\" ", l.attrs.join(" ")).into_bytes();
            response::astring(&mut line, &wire_name(&l.name, self.utf8));
            if l.childinfo_subscribed {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            line.extend_from_slice(b"\r\n");
            out.put(&line);
            if let Some(items) = &args.returns.status
                && l.selectable
            {
                let m = MailboxArg(Cow::Owned(wire_name(&l.name, self.utf8)));
                let _ = self.status(user, &m, items, out);
            }
        }
        Ok(())
    }

    fn status(
        &mut self,
        user: &User,
        mailbox: &MailboxArg<'_>,
        items: &[StatusItem],
        out: &mut Output,
    ) -> Result<(), String> {
        let name = folder_name(mailbox, self.utf8)?;
        let path = folders::folder_path(&user.dir, &name).map_err(folder_err)?;
        let st = Mailbox::status_of(&path).map_err(|e| match e {
            store::StoreError::NoSuchMailbox { .. } => "[NONEXISTENT] No such mailbox".to_string(),
            e => e.to_string(),
        })?;
        let mut parts = Vec::new();
        for it in items {
            parts.push(match it {
                StatusItem::Messages => format!("MESSAGES {}", st.messages),
                StatusItem::Recent => format!("RECENT {}", st.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", st.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", st.uid_validity),
                StatusItem::Unseen => format!("UNSEEN {}", st.unseen),
                StatusItem::Size => format!("SIZE {}", st.size),
                StatusItem::Deleted => continue,
                StatusItem::HighestModSeq => continue,
            });
        }
        let mut line = b"* STATUS ".to_vec();
        response::astring(&mut line, &wire_name(&name, self.utf8));
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        out.put(&line);
        Ok(())
    }

    /// Commands that need a selected mailbox.
    fn selected_cmd(&mut self, tag: &str, kind: CommandKind<'_>, out: &mut Output) -> Step {
        use CommandKind as K;
        let name = kind.name();
        let Some(sel) = self.selected.as_mut() else {
            bad(
                out,
                tag,
                &format!("{name} needs a selected mailbox (SELECT first)"),
            );
            return Step::Done;
        };
        let mut ok_code: Option<String> = None;
        let r: Result<(), String> = match kind {
            K::Check => {
                sel.poll();
                Ok(())
            }
            K::Noop => Ok(()),
            K::Close | K::Unselect => {
                if matches!(kind, K::Close) && !sel.readonly {
                    // CLOSE expunges silently.
                    let mut sink = Output::new();
                    let _ = sel.expunge(None, &mut sink);
                }
                self.selected = None;
                ok(out, tag, &format!("{name} completed"));
                return Step::Done;
            }
            K::Expunge => sel.expunge(None, out),
            K::UidExpunge(set) => {
                let uids = sel.resolve(&set, true);
                sel.expunge(Some(&uids), out)
            }
            K::Fetch(args) => {
                if !args.uid && sel.out_of_range(&args.set) {
                    bad(out, tag, "Invalid message sequence number");
                    return Step::Done;
                }
                let uids = sel.resolve(&args.set, args.uid);
                let attrs: Vec<FetchAttr<'static>> = args.attrs.iter().map(own_attr).collect();
                // Changes to flags may be reported now; expunges wait (RFC 3501 §7.4.1).
                sel.sync(out, false);
                self.pending = Some(PendingFetch {
                    tag: tag.to_string(),
                    uids,
                    next: 0,
                    attrs,
                    uid: args.uid,
                });
                return self.resume(out);
            }
            K::Store(args) => {
                if let Some(f) = unknown_system_flag(&args.flags) {
                    bad(out, tag, &format!("Invalid system flag {f}"));
                    return Step::Done;
                }
                if !args.uid && sel.out_of_range(&args.set) {
                    bad(out, tag, "Invalid message sequence number");
                    return Step::Done;
                }
                let uids = sel.resolve(&args.set, args.uid);
                sel.store(&uids, &args, args.uid, out)
            }
            K::Search(args) => {
                if let Some(cs) = &args.charset
                    && !cs.eq_ignore_ascii_case("UTF-8")
                    && !cs.eq_ignore_ascii_case("US-ASCII")
                {
                    no(
                        out,
                        tag,
                        "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset",
                    );
                    return Step::Done;
                }
                match sel.search(&args.keys) {
                    Ok(uids) => {
                        let mut as_num = |u: u32| {
                            if args.uid {
                                Some(u as usize)
                            } else {
                                sel.seq(u)
                            }
                        };
                        let nums: Vec<usize> = uids.iter().filter_map(|&u| as_num(u)).collect();
                        match &args.returns {
                            None => {
                                let mut line = String::from("* SEARCH");
                                for n in &nums {
                                    line.push(' ');
                                    line.push_str(&n.to_string());
                                }
                                line.push_str("\r\n");
                                out.put(line.as_bytes());
                            }
                            Some(ret) => {
                                let ret: Vec<SearchReturn> = if ret.is_empty() {
                                    vec![SearchReturn::All]
                                } else {
                                    ret.clone()
                                };
                                if ret.contains(&SearchReturn::Save) {
                                    // RFC 5182 §2.4: with MIN/MAX (and no ALL/COUNT), only
                                    // those are saved.
                                    let has = |r: SearchReturn| ret.contains(&r);
                                    sel.saved = if (has(SearchReturn::Min)
                                        || has(SearchReturn::Max))
                                        && !has(SearchReturn::All)
                                        && !has(SearchReturn::Count)
                                    {
                                        let mut v = Vec::new();
                                        if has(SearchReturn::Min) {
                                            v.extend(uids.first());
                                        }
                                        if has(SearchReturn::Max) {
                                            v.extend(uids.last());
                                        }
                                        v.dedup();
                                        v
                                    } else {
                                        uids.clone()
                                    };
                                    if ret.len() == 1 {
                                        // SAVE alone: no ESEARCH response (RFC 5182 §2.4).
                                        return self.finish_selected(tag, name, None, out);
                                    }
                                }
                                let mut line = format!(
                                    "* ESEARCH (TAG \"{tag}\"){}",
                                    if args.uid { " UID" } else { "" }
                                );
                                if !nums.is_empty() {
                                    if ret.contains(&SearchReturn::Min) {
                                        line.push_str(&format!(" MIN {}", nums[0]));
                                    }
                                    if ret.contains(&SearchReturn::Max) {
                                        line.push_str(&format!(" MAX {}", nums[nums.len() - 1]));
                                    }
                                    if ret.contains(&SearchReturn::All) {
                                        line.push_str(&format!(" ALL {}", compress(&nums)));
                                    }
                                }
                                if ret.contains(&SearchReturn::Count) {
                                    line.push_str(&format!(" COUNT {}", nums.len()));
                                }
                                line.push_str("\r\n");
                                out.put(line.as_bytes());
                            }
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            K::Copy { uid, set, mailbox } | K::Move { uid, set, mailbox } if true => {
                let is_move = name.contains("MOVE");
                let user = match &self.state {
                    State::Authenticated(u) => u.clone(),
                    _ => unreachable!("selected implies authenticated"),
                };
                let utf8 = self.utf8;
                let sel = self.selected.as_mut().expect("checked above");
                match folder_name(&mailbox, utf8).and_then(|dest| {
                    let r = copy_or_move(sel, &user, &set, uid, &dest, is_move, out);
                    // Sessions that have the target open look at once.
                    if let Ok(path) = folders::folder_path(&user.dir, &dest) {
                        self.ctx.mailboxes.changed(&path);
                    }
                    r
                }) {
                    Ok(code) => {
                        ok_code = code;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            other => {
                bad(out, tag, &format!("{} is not supported", other.name()));
                return Step::Done;
            }
        };
        match r {
            Ok(()) => return self.finish_selected(tag, name, ok_code, out),
            Err(e) => no(out, tag, &e),
        }
        Step::Done
    }

    /// The end of a selected-state command that succeeded: changes the client may hear now,
    /// then the tagged OK (with `code`).
    fn finish_selected(
        &mut self,
        tag: &str,
        name: &str,
        code: Option<String>,
        out: &mut Output,
    ) -> Step {
        let expunges = !matches!(name, "FETCH" | "STORE" | "SEARCH");
        self.sync_selected(out, expunges);
        match code {
            Some(code) => ok(out, tag, &format!("[{code}] {name} completed")),
            None => ok(out, tag, &format!("{name} completed")),
        }
        Step::Done
    }

    /// Continues a long answer (after [`Step::More`]).
    pub fn resume(&mut self, out: &mut Output) -> Step {
        let Some(mut p) = self.pending.take() else {
            return Step::Done;
        };
        let Some(sel) = self.selected.as_mut() else {
            no(out, &p.tag, "The mailbox is gone");
            return Step::Done;
        };
        while p.next < p.uids.len() {
            let uid = p.uids[p.next];
            p.next += 1;
            if let Err(e) = sel.fetch_one(uid, &p.attrs, p.uid, out) {
                no(out, &p.tag, &e);
                return Step::Done;
            }
            if out.is_full() {
                self.pending = Some(p);
                return Step::More;
            }
        }
        ok(
            out,
            &p.tag,
            if p.uid {
                "UID FETCH completed"
            } else {
                "FETCH completed"
            },
        );
        Step::Done
    }

    /// A listener woken when the selected mailbox changes (IDLE waits on it as well as on the
    /// socket and its tick): another session's change, a delivery of the sync.
    pub fn idle_listener(&self) -> Option<event_listener::EventListener> {
        self.selected.as_ref().map(Selected::listen)
    }

    /// Whether an IDLE tick could report anything now (in memory; no I/O). The server skips the
    /// tick (and the thread it would take) otherwise.
    pub fn idle_tick_due(&self) -> bool {
        self.selected.as_ref().is_some_and(Selected::worth_a_look)
    }

    /// While IDLE: reports changes (called every second or so).
    pub fn idle_tick(&mut self, out: &mut Output) {
        self.sync_selected(out, true);
    }

    /// IDLE ended with DONE.
    pub fn idle_done(&mut self, tag: &str, out: &mut Output) {
        self.sync_selected(out, true);
        ok(out, tag, "IDLE terminated");
    }

    /// The client's answer to the empty AUTHENTICATE PLAIN challenge (base64, already checked
    /// by the parser), or None when it cancelled with `*`.
    pub fn sasl_response(&mut self, tag: &str, response: Option<&[u8]>, out: &mut Output) -> Step {
        match response {
            Some(r) => plain_login(tag, r, out),
            None => {
                bad(out, tag, "AUTHENTICATE cancelled");
                Step::Done
            }
        }
    }

    /// The password check's verdict.
    pub fn login_done(&mut self, req: LoginRequest, result: AuthResult, out: &mut Output) -> Step {
        match result {
            AuthResult::Ok(user) => {
                if !self.ctx.enter(&user.name) {
                    crate::warn!(
                        "imap",
                        "{}: {} has {} sessions already; refused",
                        self.peer,
                        user.name,
                        self.ctx.max_user_connections
                    );
                    no(
                        out,
                        &req.tag,
                        "[LIMIT] Too many connections for this user; close some clients",
                    );
                    return Step::Done;
                }
                let dir = match crate::maildir::user_dir(&self.ctx.mail_root, &user.name) {
                    Ok(d) => d,
                    Err(why) => {
                        // The users file refuses such names already; never a path outside.
                        crate::warn!("imap", "{}: {:?}: {why}", self.peer, user.name);
                        no(out, &req.tag, "[UNAVAILABLE] This account cannot be served");
                        self.ctx.leave(&user.name);
                        return Step::Done;
                    }
                };
                crate::info!("imap", "{}: {} logged in", self.peer, user.name);
                if let Err(e) = ensure_special_folders(&dir) {
                    crate::warn!("imap", "{}: preparing {}: {e}", self.peer, dir.display());
                }
                self.state = State::Authenticated(User {
                    name: user.name,
                    dir,
                });
                ok(
                    out,
                    &req.tag,
                    &format!("[CAPABILITY {}] Logged in", self.capabilities()),
                );
            }
            AuthResult::BadCredentials => {
                crate::info!("imap", "{}: failed login for {:?}", self.peer, req.user);
                no(
                    out,
                    &req.tag,
                    "[AUTHENTICATIONFAILED] Authentication failed",
                );
            }
            AuthResult::Unavailable(why) => {
                crate::warn!(
                    "imap",
                    "{}: cannot check the password of {:?}: {why}",
                    self.peer,
                    req.user
                );
                no(
                    out,
                    &req.tag,
                    "[UNAVAILABLE] Authentication is unavailable right now",
                );
            }
        }
        Step::Done
    }

    /// TLS is up after STARTTLS.
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    /// APPEND announced a message; false refuses it (the answer is in `out`).
    pub fn append_start(&mut self, head: &AppendHead<'_>, out: &mut Output) -> bool {
        let State::Authenticated(user) = &self.state else {
            bad(out, head.tag, "APPEND needs a login first");
            return false;
        };
        let dir = match folder_name(&head.mailbox, self.utf8)
            .and_then(|n| folders::folder_path(&user.dir, &n).map_err(folder_err))
        {
            Ok(d) => d,
            Err(e) => {
                no(out, head.tag, &e);
                return false;
            }
        };
        if !dir.join("cur").is_dir() {
            no(out, head.tag, "[TRYCREATE] No such mailbox");
            return false;
        }
        self.append = Some(Append {
            tag: head.tag.to_string(),
            dir,
            incoming: None,
            flags: Flags::default(),
            keywords: Vec::new(),
            date: None,
            done: Vec::new(),
            validity: 0,
            failed: None,
        });
        self.append_next(&head.message, out)
    }

    /// The next message of an APPEND (the first one too).
    pub fn append_next(&mut self, m: &AppendMessageHead<'_>, out: &mut Output) -> bool {
        let limit = self.ctx.append_limit;
        let Some(a) = self.append.as_mut() else {
            return false;
        };
        if m.utf8 && !self.utf8 {
            // RFC 6855 §4: the UTF8 data extension only after ENABLE UTF8=ACCEPT.
            bad(
                out,
                &a.tag,
                "APPEND UTF8 (...) needs ENABLE UTF8=ACCEPT first",
            );
            self.append = None;
            return false;
        }
        if let Some(f) = unknown_system_flag(&m.flags) {
            // Refused before the literal: no `+` for it (the framer skips it).
            bad(out, &a.tag, &format!("Invalid system flag {f}"));
            self.append = None;
            return false;
        }
        if m.literal.len > limit {
            no(
                out,
                &a.tag,
                &format!("[TOOBIG] Messages are limited to {limit} bytes"),
            );
            self.append = None;
            return false;
        }
        a.flags = Flags::default();
        a.keywords.clear();
        for f in &m.flags {
            match f {
                Flag::Seen => a.flags.insert(Flags::SEEN),
                Flag::Answered => a.flags.insert(Flags::ANSWERED),
                Flag::Flagged => a.flags.insert(Flags::FLAGGED),
                Flag::Deleted => a.flags.insert(Flags::DELETED),
                Flag::Draft => a.flags.insert(Flags::DRAFT),
                Flag::Keyword(k) => a.keywords.push(k.to_string()),
                Flag::Extension(_) => {}
            }
        }
        a.date = m.date.map(|d| {
            let t = d.unix_time().max(0) as u64;
            UNIX_EPOCH + Duration::from_secs(t)
        });
        match crate::maildir::Incoming::create(&a.dir, &store::unique_name()) {
            Ok(f) => {
                // The `+` for a synchronizing literal is the framer's (FrameEvent::Continuation,
                // once the head is consumed): exactly one per literal.
                a.incoming = Some(f);
                true
            }
            Err(e) => {
                let e = store::StoreError::Io {
                    path: a.dir.join("tmp"),
                    err: e,
                };
                no(out, &a.tag, &super::mailbox::store_err(e));
                self.append = None;
                false
            }
        }
    }

    /// Bytes of the message being appended.
    pub fn append_data(&mut self, data: &[u8]) {
        if let Some(a) = self.append.as_mut()
            && let Some(f) = a.incoming.as_mut()
            && a.failed.is_none()
            && let Err(e) = f.write(data)
        {
            let path = f.path().to_path_buf();
            a.failed = Some(super::mailbox::store_err(store::StoreError::Io {
                path,
                err: e,
            }));
        }
    }

    /// One message's literal is complete: store it.
    fn store_spooled(&mut self) {
        let Some(a) = self.append.as_mut() else {
            return;
        };
        let Some(incoming) = a.incoming.take() else {
            return;
        };
        if a.failed.is_none() {
            let kws: Vec<&str> = a.keywords.iter().map(String::as_str).collect();
            let tmp = incoming.path().to_path_buf();
            let r = incoming
                .finish(a.date)
                .map_err(|err| store::StoreError::Io { path: tmp, err })
                .and_then(|durable| match self.ctx.mailboxes.get(&a.dir) {
                    // Open in this process: through its shared table, which takes the message
                    // in at once.
                    Some(shared) => shared.lock(false)?.store_durable(&durable, a.flags, &kws),
                    None => store::store_durable(
                        &a.dir,
                        &durable,
                        a.flags,
                        &kws,
                        crate::maildir::uidlist::LockOptions::DOVECOT,
                    ),
                })
                .map_err(super::mailbox::store_err);
            match r {
                Ok((uid, validity)) => {
                    a.done.push(uid);
                    a.validity = validity;
                    // Stored into the selected mailbox: this session learns of it first, so
                    // it is \Recent here (as in Dovecot).
                    if let Some(sel) = self.selected.as_mut()
                        && sel.dir() == a.dir
                    {
                        sel.claim_recent(uid);
                    }
                    // Sessions that have it selected look at once.
                    self.ctx.mailboxes.notify(&a.dir);
                }
                Err(e) => a.failed = Some(e),
            }
        }
    }

    /// The APPEND command ended.
    pub fn append_done(&mut self, out: &mut Output) {
        self.store_spooled();
        let Some(a) = self.append.take() else { return };
        match a.failed {
            Some(e) => no(out, &a.tag, &e),
            None => {
                self.sync_selected(out, true);
                let uids: Vec<usize> = a.done.iter().map(|&u| u as usize).collect();
                ok(
                    out,
                    &a.tag,
                    &format!(
                        "[APPENDUID {} {}] APPEND completed",
                        a.validity,
                        compress(&uids)
                    ),
                );
            }
        }
    }

    /// Called by the server before `append_next` for MULTIAPPEND's following messages.
    pub fn append_message_end(&mut self) {
        self.store_spooled();
    }
}

/// A `\Name` flag that is none of RFC 3501's system flags (the grammar's flag-extension,
/// reserved for future RFCs): nothing can store it.
fn unknown_system_flag<'a>(flags: &[Flag<'a>]) -> Option<&'a str> {
    flags.iter().find_map(|f| match f {
        Flag::Extension(e) => Some(*e),
        _ => None,
    })
}

/// A folder error as the text of a NO, with the response code a client acts on (RFC 5530).
fn folder_err(e: folders::FolderError) -> String {
    use folders::FolderError as F;
    let code = match &e {
        F::AlreadyExists { .. } => "[ALREADYEXISTS] ",
        F::NoSuchFolder { .. } => "[NONEXISTENT] ",
        F::InboxNotDeletable | F::IntoItself { .. } | F::InvalidName { .. } => "[CANNOT] ",
        F::Lock(_) => "[INUSE] ",
        F::Store(_) | F::Io { .. } => "[SERVERBUG] ",
    };
    if code == "[SERVERBUG] " {
        crate::warn!("imap", "folder operation failed: {e}");
    }
    format!("{code}{e}")
}

/// A folder name as the client gets it: UTF-8 after ENABLE UTF8=ACCEPT, else modified UTF-7.
fn wire_name(name: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        name.as_bytes().to_vec()
    } else {
        utf7::encode(name).into_bytes()
    }
}

/// The folder name of a mailbox argument (decoded, INBOX canonical).
fn folder_name(m: &MailboxArg<'_>, utf8: bool) -> Result<String, String> {
    let raw = m.as_bytes();
    let name = if utf8 {
        // RFC 6855 §3: after ENABLE UTF8=ACCEPT names are UTF-8 ("&" is just a character).
        String::from_utf8(raw.to_vec())
            .map_err(|_| "[CANNOT] Bad mailbox name: not UTF-8".to_string())?
    } else {
        utf7::decode(raw).map_err(|e| format!("[CANNOT] Bad mailbox name: {e}"))?
    };
    folders::normalize(&name).map_err(folder_err)
}

/// `1,2,3,5,7:9` from ascending numbers.
fn compress(nums: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn copy_or_move(
    sel: &mut Selected,
    user: &User,
    set: &SequenceArg,
    uid: bool,
    name: &str,
    is_move: bool,
    out: &mut Output,
) -> Result<Option<String>, String> {
    let dest = folders::folder_path(&user.dir, name).map_err(folder_err)?;
    if !dest.join("cur").is_dir() {
        return Err("[TRYCREATE] No such mailbox".into());
    }
    if is_move && sel.readonly {
        return Err("[READ-ONLY] The mailbox is read-only".into());
    }
    let uids = sel.resolve(set, uid);
    let mut from = Vec::new();
    let mut to = Vec::new();
    let mut validity = 0;
    for u in &uids {
        match sel.copy_to(*u, &dest) {
            Ok((new, v)) => {
                from.push(*u as usize);
                to.push(new as usize);
                validity = v;
            }
            Err(store::StoreError::NoSuchMessage { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if from.is_empty() {
        return Ok(None);
    }
    let code = format!("COPYUID {validity} {} {}", compress(&from), compress(&to));
    if is_move {
        // RFC 6851: COPYUID in an untagged OK before the EXPUNGEs.
        out.put(format!("* OK [{code}] Moved\r\n").as_bytes());
        let mut moved: Vec<u32> = from.iter().map(|&u| u as u32).collect();
        moved.sort_unstable();
        sel.remove_moved(&moved, out)?;
        Ok(None)
    } else {
        // RFC 4315: COPYUID in the tagged OK.
        Ok(Some(code))
    }
}

/// A FETCH attribute that outlives the read buffer.
fn own_attr(a: &FetchAttr<'_>) -> FetchAttr<'static> {
    match a {
        FetchAttr::BodySection {
            peek,
            section,
            partial,
        } => FetchAttr::BodySection {
            peek: *peek,
            section: Section {
                part: section.part.clone(),
                text: section.text.as_ref().map(|t| match t {
                    SectionText::Header => SectionText::Header,
                    SectionText::Text => SectionText::Text,
                    SectionText::Mime => SectionText::Mime,
                    SectionText::HeaderFields(v) => SectionText::HeaderFields(
                        v.iter().map(|c| Cow::Owned(c.to_vec())).collect(),
                    ),
                    SectionText::HeaderFieldsNot(v) => SectionText::HeaderFieldsNot(
                        v.iter().map(|c| Cow::Owned(c.to_vec())).collect(),
                    ),
                }),
            },
            partial: *partial,
        },
        FetchAttr::Envelope => FetchAttr::Envelope,
        FetchAttr::Flags => FetchAttr::Flags,
        FetchAttr::InternalDate => FetchAttr::InternalDate,
        FetchAttr::Rfc822 => FetchAttr::Rfc822,
        FetchAttr::Rfc822Header => FetchAttr::Rfc822Header,
        FetchAttr::Rfc822Size => FetchAttr::Rfc822Size,
        FetchAttr::Rfc822Text => FetchAttr::Rfc822Text,
        FetchAttr::Body => FetchAttr::Body,
        FetchAttr::BodyStructure => FetchAttr::BodyStructure,
        FetchAttr::Uid => FetchAttr::Uid,
        FetchAttr::ModSeq => FetchAttr::ModSeq,
        FetchAttr::Binary {
            peek,
            part,
            partial,
        } => FetchAttr::Binary {
            peek: *peek,
            part: part.clone(),
            partial: *partial,
        },
        FetchAttr::BinarySize { part } => FetchAttr::BinarySize { part: part.clone() },
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let State::Authenticated(u) = &self.state {
            self.ctx.leave(&u.name);
        }
    }
}

/// Where a user's own special-use choices are kept (`CREATE name (USE (\\Sent))`): lines
/// `\\Attr<TAB>folder`. Attributes not named there fall back to [`SPECIAL_FOLDERS`].
const SPECIAL_USE_FILE: &str = "s3imap-special-use";

fn special_use_name(u: &super::command::SpecialUse<'_>) -> Option<&'static str> {
    use super::command::SpecialUse as U;
    Some(match u {
        U::Archive => "\\Archive",
        U::Drafts => "\\Drafts",
        U::Junk => "\\Junk",
        U::Sent => "\\Sent",
        U::Trash => "\\Trash",
        U::All | U::Flagged | U::Other(_) => return None,
    })
}

/// The user's special-use folders: (attribute, folder name), defaults overridden by choices.
fn special_uses(user_dir: &std::path::Path) -> Vec<(String, String)> {
    let mut map: Vec<(String, String)> = SPECIAL_FOLDERS
        .iter()
        .map(|(f, a)| (a.to_string(), f.to_string()))
        .collect();
    if let Ok(text) = std::fs::read_to_string(user_dir.join(SPECIAL_USE_FILE)) {
        for line in text.lines() {
            if let Some((attr, folder)) = line.split_once('\t') {
                map.retain(|(a, _)| a != attr);
                if !folder.is_empty() {
                    map.push((attr.to_string(), folder.to_string()));
                }
            }
        }
    }
    map
}

/// Gives `attr` to `folder` (None: to no folder), replacing whatever had it. Atomic.
fn set_special_use(
    user_dir: &std::path::Path,
    attr: &str,
    folder: Option<&str>,
) -> std::io::Result<()> {
    let path = user_dir.join(SPECIAL_USE_FILE);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut text: String = old
        .lines()
        .filter(|l| l.split_once('\t').is_none_or(|(a, _)| a != attr))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("{attr}\t{}\n", folder.unwrap_or("")));
    let tmp = user_dir.join(format!("{SPECIAL_USE_FILE}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

/// INBOX and the special-use folders, created (and subscribed) when missing.
fn ensure_special_folders(dir: &std::path::Path) -> Result<(), folders::FolderError> {
    folders::ensure_inbox(dir)?;
    // A user who never subscribed to anything starts with INBOX subscribed (clients that
    // show subscribed folders only would hide it otherwise).
    if !dir.join(folders::SUBSCRIPTIONS).exists() {
        folders::set_subscribed(dir, "INBOX", true)?;
    }
    for (name, _) in SPECIAL_FOLDERS {
        if !folders::folder_path(dir, name)?.join("cur").is_dir() {
            folders::create(dir, name)?;
            folders::set_subscribed(dir, name, true)?;
        }
    }
    Ok(())
}

/// The password check a PLAIN response asks for, or BAD for a malformed one.
fn plain_login(tag: &str, b64: &[u8], out: &mut Output) -> Step {
    match sasl_plain(b64) {
        Some((user, password)) => Step::Login(LoginRequest {
            tag: tag.to_string(),
            user,
            password,
            sasl: true,
        }),
        None => {
            // RFC 4616: a malformed message fails the authentication (as Dovecot answers).
            no(out, tag, "[AUTHENTICATIONFAILED] Malformed PLAIN response");
            Step::Done
        }
    }
}

/// `authzid NUL authcid NUL password`, base64; only an empty or identical authzid is accepted.
fn sasl_plain(b64: &[u8]) -> Option<(String, Vec<u8>)> {
    let raw = decode_base64(b64)?;
    let mut parts = raw.split(|&b| b == 0);
    let authz = parts.next()?;
    let authc = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() || (!authz.is_empty() && authz != authc) {
        return None;
    }
    Some((String::from_utf8(authc.to_vec()).ok()?, pass.to_vec()))
}

fn ok(out: &mut Output, tag: &str, text: &str) {
    out.put(format!("{tag} OK {text}\r\n").as_bytes());
}

fn no(out: &mut Output, tag: &str, text: &str) {
    out.put(format!("{tag} NO {text}\r\n").as_bytes());
    out.note_failure(format!("{tag} NO {text}"));
}

fn bad(out: &mut Output, tag: &str, text: &str) {
    out.put(format!("{tag} BAD {text}\r\n").as_bytes());
    out.note_failure(format!("{tag} BAD {text}"));
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
                    let r = self.s.ctx.users.authenticate(&req.user, &req.password);
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
