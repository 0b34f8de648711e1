//! The selected state: this session's view of one mailbox whose messages live in the shared
//! table of [`super::registry`]. The view is small (no copy of the message table): the highest
//! UID the client was told of (EXISTS), the modseq up to which it was told of changes, the
//! expunges it has not been told of yet (those messages keep their sequence numbers until their
//! EXPUNGE is sent, which never happens during FETCH, STORE or SEARCH: RFC 3501 §7.4.1), the
//! messages that are `\Recent` for it, the keywords and RECENT count it was told. Sequence
//! numbers are computed from the shared table and those expunges. It carries out FETCH, STORE,
//! SEARCH, EXPUNGE and COPY/MOVE on the shared table, which numbers each change; the other
//! sessions turn the changes into their own untagged responses.

use super::command::{FetchAttr, Flag, SearchKey, SectionText, SequenceArg, StoreArgs, StoreMode};
use super::meta;
use super::registry::{Guard, Shared};
use super::response::{self, Chunk, Output};
use super::session::error::{Code, Failure};
use super::sort::{Fact, SortFields};
use crate::mail::binary::Transfer;
use crate::mail::{header, mime, search};
use crate::maildir::store::{FlagOp, Flags, Mailbox, StoreError};
use std::fmt::Write as _;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub struct Selected {
    shared: Arc<Shared>,
    /// The IMAP name, for messages.
    pub name: String,
    pub readonly: bool,
    uid_validity: u32,
    /// The highest UID the client was told of: the view is the shared table's messages up to
    /// it, plus [`Selected::pending`].
    max_uid: u32,
    /// Flag changes up to this modseq were told.
    told: u64,
    /// Expunges up to this modseq are in `pending` (or were told).
    absorbed: u64,
    /// Modseqs of this session's own changes, already told as it made them.
    own: Vec<u64>,
    /// Expunged in the shared table, not yet told: still in the view, ascending.
    pending: Vec<u32>,
    /// UIDs that are `\Recent` for this session.
    recent: Vec<Range<u32>>,
    /// `SEARCH RETURN (SAVE)` result.
    pub saved: Vec<u32>,
    /// The keywords the client was told of (FLAGS / PERMANENTFLAGS), in the mailbox's order.
    told_keywords: Vec<String>,
    /// The RECENT count the client was told last.
    told_recent: usize,
    /// CONDSTORE is enabled (RFC 7162 §3.1): FETCH responses about flag changes carry MODSEQ.
    pub condstore: bool,
    /// QRESYNC is enabled (RFC 7162 §3.2): expunges are told as VANISHED, and untagged FETCH
    /// responses carry UID.
    pub qresync: bool,
    /// IMAP4rev2 is enabled (RFC 9051): no `\Recent` and no RECENT or UNSEEN responses, a
    /// LIST response in SELECT, UID in every unsolicited FETCH.
    pub rev2: bool,
    /// A VANISHED was sent since the last tagged answer: that answer says HIGHESTMODSEQ, the
    /// one number the client cannot work out from VANISHED alone.
    vanished_told: bool,
}

/// What a command that fails answers.
pub type CmdResult = Result<(), Failure>;

/// Why one message of a FETCH got no answer.
#[derive(Debug)]
enum FetchError {
    /// Expunged by another session or process meanwhile: left out of the answer (RFC 9051
    /// §6.4.5 allows it), the command still OK.
    Gone,
    /// The command ends with this.
    No(Failure),
}

impl From<StoreError> for FetchError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchMessage { .. } => FetchError::Gone,
            e => FetchError::No(e.into()),
        }
    }
}

impl FetchError {
    /// A read of the message file failed: it vanished, or something worse.
    fn io(e: std::io::Error) -> FetchError {
        if e.kind() == std::io::ErrorKind::NotFound {
            FetchError::Gone
        } else {
            crate::warn!("imap", "reading a message: {e}");
            FetchError::No(Failure::no(
                Code::ServerBug,
                format!("reading the message: {e}"),
            ))
        }
    }

    fn into_io(self) -> std::io::Error {
        match self {
            FetchError::Gone => std::io::Error::from(std::io::ErrorKind::NotFound),
            FetchError::No(f) => std::io::Error::other(f.to_string()),
        }
    }
}

fn add_range(v: &mut Vec<Range<u32>>, r: Range<u32>) {
    if r.is_empty() {
        return;
    }
    if let Some(last) = v.last_mut()
        && last.end >= r.start
    {
        last.end = last.end.max(r.end);
    } else {
        v.push(r);
    }
}

impl Selected {
    /// Opens the view of a shared mailbox (SELECT / EXAMINE): every message is in it, and
    /// those no session was told of yet are `\\Recent` here (a read-write session claims
    /// them; a read-only one does not, RFC 3501 §6.3.2).
    pub fn open(shared: Arc<Shared>, name: String, readonly: bool) -> Result<Selected, StoreError> {
        Selected::open_for(shared, name, readonly, false)
    }

    /// [`Selected::open`] for an IMAP4rev2 session (`rev2`): it has no `\Recent`, so it
    /// leaves the messages recent for a rev1 session to claim.
    pub fn open_for(
        shared: Arc<Shared>,
        name: String,
        readonly: bool,
        rev2: bool,
    ) -> Result<Selected, StoreError> {
        let sh = Arc::clone(&shared);
        let mb = sh.lock(true)?;
        let mut s = Selected {
            shared: Arc::clone(&shared),
            name,
            readonly,
            uid_validity: mb.uid_validity(),
            max_uid: 0,
            told: mb.highest_modseq(),
            absorbed: mb.highest_modseq(),
            own: Vec::new(),
            pending: Vec::new(),
            recent: Vec::new(),
            saved: Vec::new(),
            told_keywords: Vec::new(),
            told_recent: 0,
            condstore: false,
            qresync: false,
            rev2,
            vanished_told: false,
        };
        let last = mb.messages().last().map(|m| m.uid()).unwrap_or(0);
        s.grow_to(&mb, last);
        Ok(s)
    }

    /// The Maildir of the selected mailbox.
    pub fn dir(&self) -> &Path {
        self.shared.path()
    }

    /// Whether a [`Selected::sync`] now could have anything to tell (no I/O: see
    /// [`Shared::worth_a_look`]).
    pub fn worth_a_look(&self) -> bool {
        self.shared.worth_a_look(self.told.max(self.absorbed))
    }

    /// A listener woken when the mailbox changes (IDLE).
    pub fn listen(&self) -> event_listener::EventListener {
        self.shared.listen()
    }

    /// The view grows to `last`: the new messages no session was told of are `\\Recent` here.
    fn grow_to(&mut self, mb: &Mailbox, last: u32) {
        if last <= self.max_uid {
            return;
        }
        let from = self.max_uid + 1;
        let dir = mb.dir();
        let first = if self.readonly || self.rev2 {
            crate::maildir::state::first_recent(dir)
        } else {
            crate::maildir::state::claim_recent(dir, last.saturating_add(1))
        };
        match first {
            Ok(first) => add_range(&mut self.recent, first.max(from)..last.saturating_add(1)),
            Err(e) => crate::warn!("imap", "{}: {e}; no message is \\Recent", dir.display()),
        }
        self.max_uid = last;
    }

    /// A message this session stored into the selected mailbox (APPEND): it learns of it
    /// first, so the message is `\\Recent` here (as in Dovecot).
    pub fn claim_recent(&mut self, uid: u32) {
        if self.readonly || self.rev2 {
            return;
        }
        match crate::maildir::state::claim_recent(self.dir(), uid.saturating_add(1)) {
            Ok(old) if old <= uid => add_range(&mut self.recent, old..uid + 1),
            Ok(_) => {}
            Err(e) => crate::warn!("imap", "{}: {e}", self.dir().display()),
        }
    }

    /// COPY of message `uid` to the Maildir `dest`: (new UID, `dest`'s UIDVALIDITY).
    pub fn copy_to(&self, uid: u32, dest: &Path) -> Result<(u32, u32), StoreError> {
        let sh = Arc::clone(&self.shared);
        let mut mb = sh.lock(false)?;
        mb.copy_to(uid, dest)
    }

    /// Notes expunges of messages in the view that the client has not been told of: they stay
    /// in the view, under their numbers, until their EXPUNGE is sent. Every command looks at
    /// the view through this first.
    fn absorb(&mut self, mb: &Mailbox) {
        if mb.highest_modseq() == self.absorbed {
            return;
        }
        for &(ms, uid) in mb.expunged_since(self.absorbed) {
            if uid <= self.max_uid
                && !self.own.contains(&ms)
                && let Err(i) = self.pending.binary_search(&uid)
            {
                self.pending.insert(i, uid);
            }
        }
        self.absorbed = mb.highest_modseq();
    }

    fn is_recent(&self, uid: u32) -> bool {
        self.recent.iter().any(|r| r.contains(&uid))
    }

    // ---- the view --------------------------------------------------------------------------

    /// Live messages of the view with a UID below `uid`.
    fn live_below(&self, mb: &Mailbox, uid: u32) -> usize {
        let msgs = mb.messages();
        msgs.partition_point(|m| m.uid() < uid.min(self.max_uid.saturating_add(1)))
    }

    /// Messages in the view (what EXISTS says).
    fn len(&self, mb: &Mailbox) -> usize {
        self.live_below(mb, self.max_uid.saturating_add(1)) + self.pending.len()
    }

    fn in_view(&self, mb: &Mailbox, uid: u32) -> bool {
        uid <= self.max_uid
            && (mb.message(uid).is_some() || self.pending.binary_search(&uid).is_ok())
    }

    /// The sequence number of `uid` in this session's view.
    fn seq_of(&self, mb: &Mailbox, uid: u32) -> Option<usize> {
        if !self.in_view(mb, uid) {
            return None;
        }
        Some(self.live_below(mb, uid) + self.pending.partition_point(|&p| p < uid) + 1)
    }

    /// The view's UIDs in sequence order (built for one command: the view keeps no copy).
    fn uids(&self, mb: &Mailbox) -> Vec<u32> {
        let live = mb
            .messages()
            .iter()
            .map(|m| m.uid())
            .take_while(|&u| u <= self.max_uid);
        if self.pending.is_empty() {
            return live.collect();
        }
        let mut v: Vec<u32> = live.chain(self.pending.iter().copied()).collect();
        v.sort_unstable();
        v
    }

    // ---- telling the client -----------------------------------------------------------------

    fn keyword_names(mb: &Mailbox) -> Vec<String> {
        mb.keywords().iter().map(|(_, n)| n.to_string()).collect()
    }

    /// `* FLAGS (…)` and `* OK [PERMANENTFLAGS (…)]` with the mailbox's keywords.
    fn flags_lines(&self, s: &mut String, keywords: &[String]) {
        let mut kw = String::new();
        for name in keywords {
            kw.push(' ');
            kw.push_str(name);
        }
        let _ = write!(
            s,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw})\r\n\
             * OK [PERMANENTFLAGS ({})] {}\r\n",
            if self.readonly {
                String::new()
            } else {
                format!("\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw} \\*")
            },
            if self.readonly {
                "Read-only mailbox"
            } else {
                "Flags permitted"
            },
        );
    }

    /// Tells the client of keywords new to the mailbox (RFC 3501 §7.2.6: FLAGS, with
    /// PERMANENTFLAGS), before any FETCH that carries them.
    fn announce_keywords(&mut self, mb: &Mailbox, out: &mut Output) {
        let now = Selected::keyword_names(mb);
        if now != self.told_keywords {
            let mut s = String::new();
            self.flags_lines(&mut s, &now);
            out.put(s.as_bytes());
            self.told_keywords = now;
        }
    }

    /// Messages of the view that are `\\Recent` for this session.
    fn recent_count(&self, mb: &Mailbox) -> usize {
        self.recent
            .iter()
            .map(|r| {
                let hi = r.end.min(self.max_uid.saturating_add(1));
                if hi <= r.start {
                    return 0;
                }
                self.live_below(mb, hi) - self.live_below(mb, r.start)
                    + self
                        .pending
                        .iter()
                        .filter(|&&p| p >= r.start && p < hi)
                        .count()
            })
            .sum()
    }

    /// `* n RECENT` when the number of recent messages in the view changed.
    fn report_recent(&mut self, mb: &Mailbox, out: &mut Output) {
        if self.rev2 {
            return;
        }
        let n = self.recent_count(mb);
        if n != self.told_recent {
            out.put(format!("* {n} RECENT\r\n").as_bytes());
            self.told_recent = n;
        }
    }

    pub fn exists(&mut self) -> u32 {
        let sh = Arc::clone(&self.shared);
        let Ok(mb) = sh.lock(false) else { return 0 };
        self.absorb(&mb);
        self.len(&mb) as u32
    }

    /// The SELECT/EXAMINE untagged responses.
    pub fn select_responses(&mut self, out: &mut Output) {
        let sh = Arc::clone(&self.shared);
        let Ok(mb) = sh.lock(false) else {
            return;
        };
        // Another session may have expunged since the view opened: that message keeps its
        // number until this client is told.
        self.absorb(&mb);
        let recent = self.recent_count(&mb);
        let unseen = mb
            .messages()
            .iter()
            .take_while(|m| m.uid() <= self.max_uid)
            .position(|m| !m.flags().contains(Flags::SEEN))
            .map(|i| i + 1);
        let keywords = Selected::keyword_names(&mb);
        let mut s = String::new();
        self.flags_lines(&mut s, &keywords);
        let _ = write!(s, "* {} EXISTS\r\n", self.len(&mb));
        // IMAP4rev2 (RFC 9051 §6.3.2) has neither RECENT nor the UNSEEN code.
        if !self.rev2 {
            let _ = write!(s, "* {recent} RECENT\r\n");
            if let Some(u) = unseen {
                let _ = write!(s, "* OK [UNSEEN {u}] First unseen\r\n");
            }
        }
        let _ = write!(
            s,
            "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n",
            mb.uid_validity(),
            mb.uid_next()
        );
        if self.condstore {
            let _ = write!(
                s,
                "* OK [HIGHESTMODSEQ {}] Highest\r\n",
                self.known_modseq(&mb)
            );
        }
        out.put(s.as_bytes());
        self.told_keywords = keywords;
        self.told_recent = recent;
    }

    /// The client polls (NOOP, IDLE's start, CHECK): the next look at the shared table reads
    /// the disk, however recently another session did.
    pub fn poll(&self) {
        if let Err(e) = self.shared.lock(true) {
            crate::warn!("imap", "refreshing {}: {e}", self.name);
        }
    }

    /// Tells the client what changed in the mailbox since its last look (by any session or
    /// program). `expunges`: EXPUNGE responses may be sent now. Returns false when the mailbox
    /// became unusable (UIDVALIDITY changed).
    pub fn sync(&mut self, out: &mut Output, expunges: bool) -> bool {
        let sh = Arc::clone(&self.shared);
        let mb = match sh.lock(false) {
            Ok(mb) => mb,
            Err(e) => {
                crate::warn!("imap", "refreshing {}: {e}", self.name);
                return true;
            }
        };
        self.sync_with(&mb, out, expunges)
    }

    fn sync_with(&mut self, mb: &Guard<'_>, out: &mut Output, expunges: bool) -> bool {
        if mb.uid_validity() != self.uid_validity {
            out.put(b"* BYE [UNAVAILABLE] The mailbox was rebuilt by another program\r\n");
            return false;
        }
        self.absorb(mb);
        if mb.highest_modseq() != self.told {
            self.announce_keywords(mb, out);
            let mut told: Vec<u32> = Vec::new();
            for uid in mb.changed_since(self.told) {
                if uid > self.max_uid || told.contains(&uid) {
                    continue;
                }
                let Some(m) = mb.message(uid) else { continue };
                if self.own.contains(&m.modseq()) {
                    continue;
                }
                told.push(uid);
                if let Some(seq) = self.seq_of(mb, uid) {
                    let mut line = format!("* {seq} FETCH (");
                    self.write_ids(mb, &mut line, uid, false);
                    line.push_str("FLAGS ");
                    self.write_flags(mb, &mut line, uid);
                    line.push_str(")\r\n");
                    out.put(line.as_bytes());
                }
            }
            self.told = mb.highest_modseq();
            self.own.clear();
        }
        if expunges {
            self.announce_expunges(mb, out);
        }
        let last = mb.messages().last().map(|m| m.uid()).unwrap_or(0);
        let grew = last > self.max_uid;
        if grew {
            self.grow_to(mb, last);
            out.put(format!("* {} EXISTS\r\n", self.len(mb)).as_bytes());
        }
        if expunges || grew {
            self.report_recent(mb, out);
        }
        true
    }

    fn announce_expunges(&mut self, mb: &Mailbox, out: &mut Output) {
        if self.qresync {
            // RFC 7162 §3.2.10: one VANISHED for them all, by UID.
            let gone = std::mem::take(&mut self.pending);
            if !gone.is_empty() {
                out.put(
                    format!(
                        "* VANISHED {}\r\n",
                        response::number_set(gone.iter().map(|&u| u64::from(u)))
                    )
                    .as_bytes(),
                );
                self.vanished_told = true;
            }
            return;
        }
        for uid in std::mem::take(&mut self.pending) {
            // Its number now: the live messages below it, the pending ones below it are gone.
            let seq = self.live_below(mb, uid) + 1;
            out.put(format!("* {seq} EXPUNGE\r\n").as_bytes());
        }
    }

    /// The UIDs a set names, in ascending order (sequence numbers or UIDs).
    pub fn resolve(&mut self, set: &SequenceArg, uid: bool) -> Vec<u32> {
        let sh = Arc::clone(&self.shared);
        let Ok(mb) = sh.lock(false) else {
            return Vec::new();
        };
        self.absorb(&mb);
        let view = self.uids(&mb);
        match set {
            SequenceArg::Saved => self
                .saved
                .iter()
                .copied()
                .filter(|u| view.binary_search(u).is_ok())
                .collect(),
            SequenceArg::Set(s) => {
                if uid {
                    let max = view.last().copied().unwrap_or(0);
                    let mut v: Vec<u32> = Vec::new();
                    for r in s.resolve(max.max(1)) {
                        let lo = view.partition_point(|&u| u < *r.start());
                        let hi = view.partition_point(|&u| u <= *r.end());
                        v.extend_from_slice(&view[lo..hi]);
                    }
                    // `n:*` with n above every UID still means the last message.
                    if v.is_empty()
                        && let Some(&last) = view.last()
                        && s.ranges().iter().any(|r| {
                            matches!(r.to, super::command::SeqBound::Star)
                                || matches!(r.from, super::command::SeqBound::Star)
                        })
                    {
                        v.push(last);
                    }
                    v.dedup();
                    v
                } else {
                    let max = view.len() as u32;
                    s.iter(max)
                        .filter_map(|seq| view.get(seq as usize - 1).copied())
                        .collect()
                }
            }
        }
    }

    /// True when a sequence set names a message number beyond EXISTS (a client error).
    pub fn out_of_range(&mut self, set: &SequenceArg) -> bool {
        match set {
            SequenceArg::Set(s) => s
                .max_explicit()
                .is_some_and(|m| m as usize > self.exists() as usize),
            SequenceArg::Saved => false,
        }
    }

    /// `UID u ` (QRESYNC, or asked for) and `MODSEQ (m) ` (CONDSTORE) at the start of an
    /// untagged FETCH about a flag change (RFC 7162 §3.1.4.1, §3.2.4).
    fn write_ids(&self, mb: &Mailbox, s: &mut String, uid: u32, uid_cmd: bool) {
        if uid_cmd || self.qresync || self.rev2 {
            let _ = write!(s, "UID {uid} ");
        }
        if self.condstore
            && let Some(m) = mb.message(uid)
        {
            let _ = write!(s, "MODSEQ ({}) ", m.modseq().max(1));
        }
    }

    /// The tagged answer's `HIGHESTMODSEQ` code, once after VANISHED was sent (RFC 7162
    /// §3.2.10: the client learns the modseq of the expunges from it).
    pub fn take_vanished_code(&mut self) -> Option<String> {
        if !std::mem::take(&mut self.vanished_told) {
            return None;
        }
        let sh = Arc::clone(&self.shared);
        let mb = sh.lock(false).ok()?;
        Some(format!("HIGHESTMODSEQ {}", self.known_modseq(&mb)))
    }

    /// The HIGHESTMODSEQ this client may be told (the tagged OK of a CONDSTORE enabling
    /// command).
    pub fn highest_modseq(&self) -> u64 {
        let sh = Arc::clone(&self.shared);
        sh.lock(false).map(|mb| self.known_modseq(&mb)).unwrap_or(1)
    }

    /// The highest modseq up to which this client has heard of every change: a client that
    /// keeps it and resyncs from it later (CHANGEDSINCE, QRESYNC) misses nothing. Below the
    /// first change of another session it was not told yet (a flag change after its last
    /// look, an expunge still pending or not yet seen); its own changes it heard as it made
    /// them.
    fn known_modseq(&self, mb: &Mailbox) -> u64 {
        let mut known = mb.highest_modseq();
        for uid in mb.changed_since(self.told) {
            if let Some(m) = mb.message(uid)
                && !self.own.contains(&m.modseq())
            {
                known = known.min(m.modseq().saturating_sub(1));
            }
        }
        for &(ms, uid) in mb.expunged_since(self.told.min(self.absorbed)) {
            let untold = ms > self.absorbed || self.pending.binary_search(&uid).is_ok();
            if untold && !self.own.contains(&ms) {
                known = known.min(ms - 1);
            }
        }
        known.max(1)
    }

    /// UIDs of `set` (with `*` the highest UID ever given) expunged after `since`: what
    /// `VANISHED (EARLIER)` tells (RFC 7162 §3.2.5.1, §3.2.6). Every expunge is remembered
    /// with its modseq, so the answer is exact.
    pub fn vanished_since(
        &self,
        since: u64,
        set: Option<&super::command::SequenceSet>,
    ) -> Vec<u32> {
        let sh = Arc::clone(&self.shared);
        let Ok(mb) = sh.lock(false) else {
            return Vec::new();
        };
        let max = mb.uid_next().saturating_sub(1).max(1);
        let mut v: Vec<u32> = mb
            .expunged_since(since)
            .iter()
            .map(|&(_, uid)| uid)
            .filter(|&uid| set.is_none_or(|s| s.contains(uid, max)))
            // Still in this view (its expunge not told yet): the client hears of it later.
            .filter(|uid| self.pending.binary_search(uid).is_err())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The second half of `SELECT … (QRESYNC (…))` (RFC 7162 §3.2.5.1), as
    /// `UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED)` would answer: the UIDs
    /// expunged since, then the messages changed since with UID, FLAGS and MODSEQ. With a
    /// UIDVALIDITY that no longer holds, nothing (the client starts afresh).
    pub fn resync(&mut self, q: &super::command::Qresync, out: &mut Output) {
        if q.uid_validity != self.uid_validity {
            return;
        }
        if let Ok(mb) = Arc::clone(&self.shared).lock(false) {
            self.absorb(&mb);
        }
        let known = q.known_uids.as_ref();
        let gone = self.vanished_since(q.modseq, known);
        if !gone.is_empty() {
            out.put(
                format!(
                    "* VANISHED (EARLIER) {}\r\n",
                    response::number_set(gone.iter().map(|&u| u64::from(u)))
                )
                .as_bytes(),
            );
        }
        let sh = Arc::clone(&self.shared);
        let Ok(mb) = sh.lock(false) else { return };
        let max = mb.uid_next().saturating_sub(1).max(1);
        let changed: Vec<u32> = mb
            .messages()
            .iter()
            .take_while(|m| m.uid() <= self.max_uid)
            .filter(|m| m.modseq() > q.modseq)
            .map(|m| m.uid())
            .filter(|&uid| known.is_none_or(|s| s.contains(uid, max)))
            .collect();
        for uid in changed {
            let Some(seq) = self.seq_of(&mb, uid) else {
                continue;
            };
            let mut line = format!("* {seq} FETCH (");
            self.write_ids(&mb, &mut line, uid, true);
            line.push_str("FLAGS ");
            self.write_flags(&mb, &mut line, uid);
            line.push_str(")\r\n");
            out.put(line.as_bytes());
        }
    }

    /// The modseq of message `uid` (0 when it is gone).
    pub fn modseq_of(&self, uid: u32) -> u64 {
        let sh = Arc::clone(&self.shared);
        sh.lock(false)
            .ok()
            .and_then(|mb| mb.message(uid).map(|m| m.modseq().max(1)))
            .unwrap_or(0)
    }

    fn write_flags(&self, mb: &Mailbox, s: &mut String, uid: u32) {
        s.push('(');
        let mut first = true;
        if let Some(m) = mb.message(uid) {
            for name in m.flags().imap_names() {
                if !first {
                    s.push(' ');
                }
                s.push_str(name);
                first = false;
            }
            if self.is_recent(uid) && !self.rev2 {
                if !first {
                    s.push(' ');
                }
                s.push_str("\\Recent");
                first = false;
            }
            for k in mb.keyword_names(uid) {
                if !first {
                    s.push(' ');
                }
                s.push_str(k);
                first = false;
            }
        }
        s.push(')');
    }

    /// FETCH for one message; false when the message is gone (expunged by another session or
    /// process meanwhile: it is left out of the answer, as RFC 9051 allows for UID FETCH).
    pub fn fetch_one(
        &mut self,
        uid: u32,
        attrs: &[FetchAttr<'_>],
        uid_cmd: bool,
        out: &mut Output,
    ) -> Result<bool, Failure> {
        let sh = Arc::clone(&self.shared);
        let mut mb = sh.lock(false).map_err(Failure::from)?;
        self.absorb(&mb);
        match self.fetch_one_inner(&mut mb, uid, attrs, uid_cmd, out) {
            Ok(b) => Ok(b),
            Err(FetchError::Gone) => Ok(false),
            Err(FetchError::No(s)) => Err(s),
        }
    }

    fn fetch_one_inner(
        &mut self,
        mb: &mut Mailbox,
        uid: u32,
        attrs: &[FetchAttr<'_>],
        uid_cmd: bool,
        out: &mut Output,
    ) -> Result<bool, FetchError> {
        let Some(seq) = self.seq_of(mb, uid) else {
            return Ok(false);
        };
        let Some(msg) = mb.message(uid) else {
            return Ok(false);
        };
        let unique = crate::maildir::unique_part(msg.name()).to_string();
        let dir = mb.dir().to_path_buf();
        let mut set_seen = false;
        let mut want_flags = false;
        let mut has_uid = false;
        for a in attrs {
            match a {
                FetchAttr::BodySection { peek: false, .. }
                | FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::Binary { peek: false, .. } => set_seen = true,
                FetchAttr::Flags => want_flags = true,
                FetchAttr::Uid => has_uid = true,
                _ => {}
            }
        }
        if set_seen && !self.readonly && !msg.flags().contains(Flags::SEEN) {
            match mb.change_flags(uid, FlagOp::Add, Flags::SEEN, &[]) {
                Ok(_) => {
                    // Told in this FETCH's FLAGS: not again as a change.
                    want_flags = true;
                    if let Some(m) = mb.message(uid) {
                        self.own.push(m.modseq());
                    }
                    self.shared.notify();
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut items: Vec<u8> = Vec::with_capacity(256);
        let mut first = true;
        let sep = |items: &mut Vec<u8>, first: &mut bool| {
            if !*first {
                items.push(b' ');
            }
            *first = false;
        };
        // UID FETCH answers with UID; so does every FETCH once QRESYNC is on (RFC 7162 §3.2.4).
        if (uid_cmd || self.qresync) && !has_uid {
            sep(&mut items, &mut first);
            items.extend_from_slice(format!("UID {uid}").as_bytes());
        }
        // The FETCH changed the flags (\Seen): with CONDSTORE its answer says the new modseq
        // (RFC 7162 §3.1.4.1), asked for or not.
        if want_flags
            && set_seen
            && self.condstore
            && !attrs.iter().any(|a| matches!(a, FetchAttr::ModSeq))
        {
            sep(&mut items, &mut first);
            let ms = mb.message(uid).map(|m| m.modseq()).unwrap_or(0).max(1);
            items.extend_from_slice(format!("MODSEQ ({ms})").as_bytes());
        }
        // The chunks of this response: bytes with file ranges between them.
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut tree: Option<std::sync::Arc<mime::Part>> = None;
        // The message's file, opened once: the ranges streamed from it stay this message's
        // even if another session renames (flags) or unlinks (expunge) it meanwhile.
        let mut file: Option<std::sync::Arc<std::fs::File>> = None;
        let open = |mb: &mut Mailbox,
                    file: &mut Option<std::sync::Arc<std::fs::File>>|
         -> Result<std::sync::Arc<std::fs::File>, FetchError> {
            if let Some(f) = file {
                return Ok(f.clone());
            }
            let f = std::sync::Arc::new(mb.open_file(uid)?);
            *file = Some(f.clone());
            Ok(f)
        };
        let load_tree = |mb: &mut Mailbox,
                         file: &mut Option<std::sync::Arc<std::fs::File>>,
                         tree: &mut Option<std::sync::Arc<mime::Part>>|
         -> Result<std::sync::Arc<mime::Part>, FetchError> {
            if let Some(t) = tree {
                return Ok(t.clone());
            }
            // Freshly opened, so read from its start (streaming later uses positioned reads).
            let f = open(mb, file)?;
            let t = meta::tree(&dir, &unique, &*f).map_err(FetchError::io)?;
            *tree = Some(t.clone());
            Ok(t)
        };
        for a in attrs {
            match a {
                FetchAttr::Uid => {
                    sep(&mut items, &mut first);
                    items.extend_from_slice(format!("UID {uid}").as_bytes());
                }
                FetchAttr::Flags => {}
                FetchAttr::InternalDate => {
                    let t = mb
                        .internal_date(uid)
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    sep(&mut items, &mut first);
                    items.extend_from_slice(b"INTERNALDATE ");
                    items.extend_from_slice(response::internal_date(t).as_bytes());
                }
                FetchAttr::Rfc822Size => {
                    let n = mb.vsize(uid)?;
                    sep(&mut items, &mut first);
                    items.extend_from_slice(format!("RFC822.SIZE {n}").as_bytes());
                }
                FetchAttr::Envelope | FetchAttr::BodyStructure | FetchAttr::Body => {
                    let mb = &mut *mb;
                    let r = meta::rendered(&dir, &unique, || {
                        load_tree(mb, &mut file, &mut tree).map_err(FetchError::into_io)
                    })
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => FetchError::Gone,
                        _ => FetchError::No(Failure::no(Code::ServerBug, e.to_string())),
                    })?;
                    sep(&mut items, &mut first);
                    let (name, val) = match a {
                        FetchAttr::Envelope => ("ENVELOPE ", &r.envelope),
                        FetchAttr::BodyStructure => ("BODYSTRUCTURE ", &r.bodystructure),
                        _ => ("BODY ", &r.body),
                    };
                    items.extend_from_slice(name.as_bytes());
                    items.extend_from_slice(val);
                }
                FetchAttr::SaveDate => {
                    sep(&mut items, &mut first);
                    items.extend_from_slice(b"SAVEDATE ");
                    match crate::maildir::save_time(&unique) {
                        Some(t) => items.extend_from_slice(response::internal_date(t).as_bytes()),
                        None => items.extend_from_slice(b"NIL"),
                    }
                }
                FetchAttr::Preview => {
                    let mb = &mut *mb;
                    let p = meta::preview(&dir, &unique, || {
                        let t = load_tree(mb, &mut file, &mut tree).map_err(FetchError::into_io)?;
                        let f = open(mb, &mut file).map_err(FetchError::into_io)?;
                        crate::mail::preview::preview(&t, &*f)
                    })
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => FetchError::Gone,
                        _ => FetchError::No(Failure::no(Code::ServerBug, e.to_string())),
                    })?;
                    sep(&mut items, &mut first);
                    items.extend_from_slice(b"PREVIEW ");
                    crate::mail::envelope::string(&mut items, p.as_bytes());
                }
                FetchAttr::ModSeq => {
                    let ms = mb.message(uid).map(|m| m.modseq()).unwrap_or(0).max(1);
                    sep(&mut items, &mut first);
                    items.extend_from_slice(format!("MODSEQ ({ms})").as_bytes());
                }
                FetchAttr::Rfc822
                | FetchAttr::Rfc822Header
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { .. } => {
                    let (label, part, spec_text, partial): (
                        String,
                        Vec<u32>,
                        Option<&SectionText<'_>>,
                        Option<super::command::Partial>,
                    ) = match a {
                        FetchAttr::Rfc822 => ("RFC822".into(), vec![], None, None),
                        FetchAttr::Rfc822Header => (
                            "RFC822.HEADER".into(),
                            vec![],
                            Some(&SectionText::Header),
                            None,
                        ),
                        FetchAttr::Rfc822Text => {
                            ("RFC822.TEXT".into(), vec![], Some(&SectionText::Text), None)
                        }
                        FetchAttr::BodySection {
                            section, partial, ..
                        } => (
                            section_label(
                                &section.part,
                                section.text.as_ref(),
                                partial.map(|p| p.offset),
                            ),
                            section.part.clone(),
                            section.text.as_ref(),
                            *partial,
                        ),
                        _ => unreachable!("matched above"),
                    };
                    let t = load_tree(mb, &mut file, &mut tree)?;
                    let names_owned: Vec<Vec<u8>>;
                    let names: Vec<&[u8]>;
                    let spec = match spec_text {
                        None => mime::Spec::Body,
                        Some(SectionText::Header) => mime::Spec::Header,
                        Some(SectionText::Text) => mime::Spec::Text,
                        Some(SectionText::Mime) => mime::Spec::Mime,
                        Some(SectionText::HeaderFields(v))
                        | Some(SectionText::HeaderFieldsNot(v)) => {
                            names_owned = v.iter().map(|c| c.to_vec()).collect();
                            names = names_owned.iter().map(Vec::as_slice).collect();
                            if matches!(spec_text, Some(SectionText::HeaderFields(_))) {
                                mime::Spec::HeaderFields(&names)
                            } else {
                                mime::Spec::HeaderFieldsNot(&names)
                            }
                        }
                    };
                    sep(&mut items, &mut first);
                    items.extend_from_slice(label.as_bytes());
                    items.push(b' ');
                    match t.fetch(&part, spec) {
                        None => items.extend_from_slice(b"{0}\r\n"),
                        Some(mime::SectionData::Bytes(b)) => {
                            let (off, len) = clip(b.len() as u64, partial);
                            items.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
                            items.extend_from_slice(&b[off as usize..(off + len) as usize]);
                        }
                        Some(mime::SectionData::Range(r)) => {
                            let (off, len) = clip(r.len(), partial);
                            items.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
                            chunks.push(Chunk::Bytes(std::mem::take(&mut items)));
                            chunks.push(Chunk::File {
                                file: open(mb, &mut file)?,
                                offset: r.start,
                                len: r.end - r.start,
                                crlf: true,
                                skip: off,
                                take: len,
                                decode: Transfer::Identity,
                            });
                        }
                    }
                }
                FetchAttr::Binary { part, partial, .. } => {
                    let t = load_tree(mb, &mut file, &mut tree)?;
                    let f = open(mb, &mut file)?;
                    let label = binary_label("BINARY", part, partial.map(|p| p.offset));
                    sep(&mut items, &mut first);
                    items.extend_from_slice(label.as_bytes());
                    items.push(b' ');
                    match binary_content(&t, part, &f)? {
                        BinaryContent::Missing => items.extend_from_slice(b"{0}\r\n"),
                        BinaryContent::Pieces { pieces, size } => {
                            let (off, len) = clip(size, *partial);
                            items.extend_from_slice(format!("~{{{len}}}\r\n").as_bytes());
                            stream_pieces(&pieces, &f, off, len, &mut items, &mut chunks);
                        }
                        BinaryContent::Stream {
                            range,
                            decode,
                            size,
                            lit8,
                        } => {
                            let (off, len) = clip(size, *partial);
                            items.extend_from_slice(
                                format!("{}{{{len}}}\r\n", if lit8 { "~" } else { "" }).as_bytes(),
                            );
                            chunks.push(Chunk::Bytes(std::mem::take(&mut items)));
                            chunks.push(Chunk::File {
                                file: f,
                                offset: range.start,
                                len: range.end - range.start,
                                crlf: true,
                                skip: off,
                                take: len,
                                decode,
                            });
                        }
                    }
                }
                FetchAttr::BinarySize { part } => {
                    let t = load_tree(mb, &mut file, &mut tree)?;
                    let f = open(mb, &mut file)?;
                    let size = match binary_content(&t, part, &f)? {
                        BinaryContent::Missing => 0,
                        BinaryContent::Pieces { size, .. } => size,
                        BinaryContent::Stream { size, .. } => size,
                    };
                    sep(&mut items, &mut first);
                    items.extend_from_slice(
                        format!("{} {size}", binary_label("BINARY.SIZE", part, None)).as_bytes(),
                    );
                }
            }
        }
        if want_flags {
            let mut s = String::new();
            self.write_flags(mb, &mut s, uid);
            let mut f = b"FLAGS ".to_vec();
            f.extend_from_slice(s.as_bytes());
            // FLAGS goes first so that it is never after a streamed literal.
            let mut head = format!("* {seq} FETCH (").into_bytes();
            head.extend_from_slice(&f);
            let rest_nonempty = !chunks.is_empty() || !items.is_empty();
            if rest_nonempty {
                head.push(b' ');
            }
            out.put(&head);
        } else {
            out.put(format!("* {seq} FETCH (").as_bytes());
        }
        for c in chunks {
            match c {
                Chunk::Bytes(b) => out.put(&b),
                f => out.file(f),
            }
        }
        out.put(&items);
        out.put(b")\r\n");
        Ok(true)
    }

    /// STORE over `uids`; returns the UIDs left unchanged because they were modified after
    /// `UNCHANGEDSINCE` (RFC 7162 §3.1.3: the client hears them in `[MODIFIED …]`).
    pub fn store(
        &mut self,
        uids: &[u32],
        args: &StoreArgs<'_>,
        uid_cmd: bool,
        out: &mut Output,
    ) -> Result<Vec<u32>, Failure> {
        if self.readonly {
            return Err(Failure::no(Code::ReadOnly, "The mailbox is read-only"));
        }
        let mut add = Flags::default();
        let mut kw: Vec<&str> = Vec::new();
        for f in &args.flags {
            match f {
                Flag::Seen => add.insert(Flags::SEEN),
                Flag::Answered => add.insert(Flags::ANSWERED),
                Flag::Flagged => add.insert(Flags::FLAGGED),
                Flag::Deleted => add.insert(Flags::DELETED),
                Flag::Draft => add.insert(Flags::DRAFT),
                Flag::Keyword(k) => kw.push(k),
                Flag::Extension(_) => {}
            }
        }
        let op = match args.mode {
            StoreMode::Replace => FlagOp::Replace,
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
        };
        let sh = Arc::clone(&self.shared);
        let mut mb = sh.lock(false).map_err(Failure::from)?;
        self.absorb(&mb);
        let mut changed = false;
        let mut modified = Vec::new();
        for &uid in uids {
            let Some(m) = mb.message(uid) else {
                continue;
            };
            // Changed after the client's UNCHANGEDSINCE (checked and applied under the one
            // lock of the shared table, so no other session slips in between).
            if args.unchanged_since.is_some_and(|n| m.modseq().max(1) > n) {
                modified.push(uid);
                continue;
            }
            // Did another session change it since this one last looked? Then the client must
            // hear the merged flags even after a .SILENT store.
            let unseen_change = m.modseq() > self.told && !self.own.contains(&m.modseq());
            // Applied to the flags the message has now (another session may have changed them).
            match mb.change_flags(uid, op, add, &kw) {
                Ok(c) => changed |= c,
                Err(StoreError::NoSuchMessage { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            // A keyword new to the mailbox is announced before the FETCH that carries it.
            self.announce_keywords(&mb, out);
            let Some(modseq) = mb.message(uid).map(|m| m.modseq()) else {
                continue;
            };
            // With CONDSTORE the new modseq is told even after .SILENT (RFC 7162 §3.1.3 for
            // UNCHANGEDSINCE; Dovecot does so for every STORE once CONDSTORE is on).
            if (!args.silent || self.condstore)
                && let Some(seq) = self.seq_of(&mb, uid)
            {
                let mut s = format!("* {seq} FETCH (");
                self.write_ids(&mb, &mut s, uid, uid_cmd);
                if !args.silent || unseen_change {
                    s.push_str("FLAGS ");
                    self.write_flags(&mb, &mut s, uid);
                } else if s.ends_with(' ') {
                    s.pop();
                }
                s.push_str(")\r\n");
                out.put(s.as_bytes());
                self.own.push(modseq);
            } else if !unseen_change {
                self.own.push(modseq);
            }
        }
        if changed {
            sh.notify();
        }
        Ok(modified)
    }

    /// EXPUNGE (all \Deleted) or UID EXPUNGE (those of `only`), announcing every removal.
    pub fn expunge(&mut self, only: Option<&[u32]>, out: &mut Output) -> CmdResult {
        self.remove(only, true, out)
    }

    /// MOVE's second half: removes exactly `uids` (copied already), whatever their flags:
    /// the move never shows a `\Deleted` flag to anyone (RFC 6851 §3.3).
    pub fn remove_moved(&mut self, uids: &[u32], out: &mut Output) -> CmdResult {
        self.remove(Some(uids), false, out)
    }

    fn remove(&mut self, only: Option<&[u32]>, deleted: bool, out: &mut Output) -> CmdResult {
        if self.readonly {
            return Err(Failure::no(Code::ReadOnly, "The mailbox is read-only"));
        }
        let sh = Arc::clone(&self.shared);
        let mut mb = sh.lock(false).map_err(Failure::from)?;
        self.absorb(&mb);
        let doomed: Vec<u32> = mb
            .messages()
            .iter()
            .filter(|m| m.uid() <= self.max_uid && (!deleted || m.flags().contains(Flags::DELETED)))
            .map(|m| m.uid())
            .filter(|u| only.is_none_or(|o| o.binary_search(u).is_ok()))
            .collect();
        let before = mb.highest_modseq();
        mb.expunge(&doomed).map_err(Failure::from)?;
        // Told right here, not again as changes.
        let numbered: Vec<(u64, u32)> = mb.expunged_since(before).to_vec();
        for (ms, u) in numbered {
            self.own.push(ms);
            if let Err(i) = self.pending.binary_search(&u) {
                self.pending.insert(i, u);
            }
        }
        self.announce_expunges(&mb, out);
        self.report_recent(&mb, out);
        if !doomed.is_empty() {
            sh.notify();
        }
        Ok(())
    }

    /// Evaluates SEARCH keys; returns matching UIDs in ascending order.
    pub fn search(&mut self, keys: &[SearchKey<'_>]) -> Result<Vec<u32>, Failure> {
        let sh = Arc::clone(&self.shared);
        let mut mb = sh.lock(false).map_err(Failure::from)?;
        self.absorb(&mb);
        let mut hits = Vec::new();
        let uids = self.uids(&mb);
        if matches!(keys, [SearchKey::All]) {
            // Every live message of the view (those expunged meanwhile are not found).
            return Ok(uids
                .into_iter()
                .filter(|&u| mb.message(u).is_some())
                .collect());
        }
        let n = uids.len() as u32;
        for (i, &uid) in uids.iter().enumerate() {
            if mb.message(uid).is_none() {
                continue;
            }
            let mut ctx = MsgCtx {
                uid,
                seq: i as u32 + 1,
                view_len: n,
                header: None,
            };
            if keys
                .iter()
                .all(|k| self.matches(&mut mb, k, &mut ctx).unwrap_or(false))
            {
                hits.push(uid);
            }
        }
        Ok(hits)
    }

    fn header_of(mb: &mut Mailbox, ctx: &mut MsgCtx) -> Vec<u8> {
        if let Some(h) = &ctx.header {
            return h.clone();
        }
        let h = mb
            .open_file(ctx.uid)
            .map(|f| read_header(f).unwrap_or_default())
            .unwrap_or_default();
        ctx.header = Some(h.clone());
        h
    }

    /// The messages `uids` (a search result, ascending) as SORT and THREAD see them. Header
    /// facts not cached yet are read from the files, several at a time (a cold SORT of a big
    /// mailbox is bound by file reads, on NFS most of all). Messages gone meanwhile are left
    /// out.
    pub fn sort_facts(&mut self, uids: &[u32]) -> Result<Vec<Fact>, Failure> {
        let sh = Arc::clone(&self.shared);
        let mut mb = sh.lock(false).map_err(Failure::from)?;
        self.absorb(&mb);
        let dir = mb.dir().to_path_buf();
        // Message numbers in one pass over the view (both ascending).
        let view = self.uids(&mb);
        let mut at = 0;
        let mut rows: Vec<(u32, u32)> = Vec::with_capacity(uids.len());
        for &uid in uids {
            while at < view.len() && view[at] < uid {
                at += 1;
            }
            if at == view.len() || view[at] != uid {
                continue;
            }
            rows.push((uid, at as u32 + 1));
        }
        let found: Vec<u32> = rows.iter().map(|r| r.0).collect();
        let validity = mb.uid_validity();
        let mut fields = meta::sort_fields_cached(&dir, validity, &found);
        let missing: Vec<usize> = (0..rows.len()).filter(|&i| fields[i].is_none()).collect();
        if !missing.is_empty() {
            let paths: Vec<std::path::PathBuf> = missing
                .iter()
                .map(|&i| mb.path(rows[i].0).unwrap_or_default())
                .collect();
            let read = read_headers_parallel(paths.iter().map(std::path::PathBuf::as_path));
            let mut fresh = Vec::with_capacity(missing.len());
            for (&i, r) in missing.iter().zip(read) {
                match r {
                    Ok(h) => {
                        let f = Arc::new(SortFields::from_header(&h));
                        fresh.push((rows[i].0, Arc::clone(&f)));
                        fields[i] = Some(f);
                    }
                    // Renamed (flags) or expunged by another program meanwhile: the
                    // mailbox finds where it is now, or that it is gone.
                    Err(_) => match mb.open_file(rows[i].0).map(read_header) {
                        Ok(Ok(h)) => fields[i] = Some(Arc::new(SortFields::from_header(&h))),
                        Ok(Err(e)) => {
                            return Err(Failure::no(
                                Code::ServerBug,
                                format!("reading a message: {e}"),
                            ));
                        }
                        Err(_) => {}
                    },
                }
            }
            meta::keep_sort_fields(&dir, validity, fresh);
        }
        let mut out = Vec::with_capacity(rows.len());
        for ((uid, seq), f) in rows.into_iter().zip(fields) {
            let Some(fields) = f else { continue };
            let (arrival, size) = match mb.date_and_vsize(uid) {
                Ok((t, n)) => (t.max(0) as u64, n),
                Err(StoreError::NoSuchMessage { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            out.push(Fact {
                uid,
                seq,
                arrival,
                size,
                fields,
            });
        }
        Ok(out)
    }

    /// Message numbers of `uids` (ascending; those no longer in the view left out).
    pub fn seqs(&mut self, uids: &[u32]) -> Vec<usize> {
        let sh = Arc::clone(&self.shared);
        let Ok(mb) = sh.lock(false) else {
            return Vec::new();
        };
        self.absorb(&mb);
        let view = self.uids(&mb);
        let mut at = 0;
        let mut out = Vec::with_capacity(uids.len());
        for &uid in uids {
            while at < view.len() && view[at] < uid {
                at += 1;
            }
            if at < view.len() && view[at] == uid {
                out.push(at + 1);
            }
        }
        out
    }

    fn matches(
        &self,
        mb: &mut Mailbox,
        key: &SearchKey<'_>,
        ctx: &mut MsgCtx,
    ) -> Result<bool, Failure> {
        use SearchKey as K;
        let uid = ctx.uid;
        let Some(m) = mb.message(uid) else {
            return Ok(false);
        };
        let flags = m.flags();
        let recent = self.is_recent(uid);
        let has = |f: Flags| flags.contains(f);
        Ok(match key {
            K::All => true,
            K::Answered => has(Flags::ANSWERED),
            K::Deleted => has(Flags::DELETED),
            K::Draft => has(Flags::DRAFT),
            K::Flagged => has(Flags::FLAGGED),
            K::Seen => has(Flags::SEEN),
            K::Unanswered => !has(Flags::ANSWERED),
            K::Undeleted => !has(Flags::DELETED),
            K::Undraft => !has(Flags::DRAFT),
            K::Unflagged => !has(Flags::FLAGGED),
            K::Unseen => !has(Flags::SEEN),
            K::Recent => recent,
            K::New => recent && !has(Flags::SEEN),
            K::Old => !recent,
            K::Keyword(k) => mb
                .keyword_names(uid)
                .iter()
                .any(|n| n.eq_ignore_ascii_case(k)),
            K::Unkeyword(k) => !mb
                .keyword_names(uid)
                .iter()
                .any(|n| n.eq_ignore_ascii_case(k)),
            K::Larger(n) => mb.vsize(uid).map_err(Failure::from)? > *n,
            K::Smaller(n) => mb.vsize(uid).map_err(Failure::from)? < *n,
            K::Older(n) | K::Younger(n) => {
                // RFC 5032: against INTERNALDATE, to the second.
                let t = mb
                    .internal_date(uid)
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let now = std::time::SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let age = now.saturating_sub(t);
                match key {
                    K::Older(_) => age > *n,
                    _ => age <= *n,
                }
            }
            K::SaveDateSupported => true,
            K::SavedBefore(d) | K::SavedOn(d) | K::SavedSince(d) => {
                let Some(t) = crate::maildir::save_time(crate::maildir::unique_part(m.name()))
                else {
                    return Ok(false);
                };
                let day = (t as i64).div_euclid(86_400);
                let want = d.days_since_epoch();
                match key {
                    K::SavedBefore(_) => day < want,
                    K::SavedOn(_) => day == want,
                    _ => day >= want,
                }
            }
            K::Before(d) | K::On(d) | K::Since(d) => {
                let t = mb
                    .internal_date(uid)
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let day = t.div_euclid(86_400);
                let want = d.days_since_epoch();
                match key {
                    K::Before(_) => day < want,
                    K::On(_) => day == want,
                    _ => day >= want,
                }
            }
            K::SentBefore(d) | K::SentOn(d) | K::SentSince(d) => {
                let h = Selected::header_of(mb, ctx);
                let date = crate::mail::envelope::raw_fields(&h)
                    .into_iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(b"date"))
                    .and_then(|(_, v)| search::sent_day(v));
                let Some(day) = date else { return Ok(false) };
                let day = day as i64;
                let want = d.days_since_epoch();
                match key {
                    K::SentBefore(_) => day < want,
                    K::SentOn(_) => day == want,
                    _ => day >= want,
                }
            }
            K::From(s) | K::To(s) | K::Cc(s) | K::Bcc(s) | K::Subject(s) => {
                let field = match key {
                    K::From(_) => "from",
                    K::To(_) => "to",
                    K::Cc(_) => "cc",
                    K::Bcc(_) => "bcc",
                    _ => "subject",
                };
                let h = Selected::header_of(mb, ctx);
                let needle = String::from_utf8_lossy(s);
                if field == "subject" {
                    search::header_contains(&h, field, &needle)
                } else {
                    search::address_contains(&h, field, &needle)
                }
            }
            K::Header(name, s) => {
                let h = Selected::header_of(mb, ctx);
                search::header_contains(
                    &h,
                    &String::from_utf8_lossy(name),
                    &String::from_utf8_lossy(s),
                )
            }
            K::Body(s) | K::Text(s) => {
                let f = mb.open_file(uid).map_err(Failure::from)?;
                let needle = String::from_utf8_lossy(s);
                let r = std::io::BufReader::with_capacity(64 * 1024, f);
                let found = if matches!(key, K::Body(_)) {
                    search::body_contains(r, &needle)
                } else {
                    search::text_contains(r, &needle)
                };
                found.map_err(|e| {
                    Failure::no(Code::ServerBug, format!("reading the message: {e}"))
                })?
            }
            K::Uid(set) => match set {
                SequenceArg::Saved => self.saved.contains(&uid),
                SequenceArg::Set(s) => {
                    let max = mb.messages().last().map(|m| m.uid()).unwrap_or(0);
                    s.contains(uid, max.max(self.max_uid))
                }
            },
            K::SequenceSet(set) => match set {
                SequenceArg::Saved => self.saved.contains(&uid),
                SequenceArg::Set(s) => s.contains(ctx.seq, ctx.view_len),
            },
            K::Not(k) => !self.matches(mb, k, ctx)?,
            K::Or(a, b) => self.matches(mb, a, ctx)? || self.matches(mb, b, ctx)?,
            K::And(v) => {
                for k in v {
                    if !self.matches(mb, k, ctx)? {
                        return Ok(false);
                    }
                }
                true
            }
            K::ModSeq(n) => m.modseq().max(1) >= *n,
        })
    }

    /// Sequence number of the first message of `uids` that still exists (for responses).
    pub fn seq(&mut self, uid: u32) -> Option<usize> {
        let sh = Arc::clone(&self.shared);
        let mb = sh.lock(false).ok()?;
        self.absorb(&mb);
        self.seq_of(&mb, uid)
    }
}

/// What `BINARY[part]` sends.
enum BinaryContent {
    /// No such part: an empty string (as Dovecot answers).
    Missing,
    /// Converted (`BINARY[]` of a MIME message): stretches of the file, raw or decoded, and
    /// rewritten headers; always a literal8.
    Pieces {
        pieces: Vec<crate::mail::binary::Piece>,
        size: u64,
    },
    /// A leaf's body streamed from the file with its encoding undone on the way.
    Stream {
        range: crate::mail::mime::RawRange,
        decode: Transfer,
        size: u64,
        lit8: bool,
    },
}

/// The content of `BINARY[part]` (RFC 3516): a leaf's body decoded; the whole message as it
/// is when nothing in it is encoded, else converted ([`crate::mail::binary::convert`]).
fn binary_content(
    root: &mime::Part,
    path: &[u32],
    file: &std::fs::File,
) -> Result<BinaryContent, FetchError> {
    use crate::mail::binary::{self, ConvertError};
    let unknown = || {
        FetchError::No(Failure::no(
            Code::UnknownCte,
            "Unknown Content-Transfer-Encoding",
        ))
    };
    let Some(part) = root.section(path) else {
        return Ok(BinaryContent::Missing);
    };
    let leaf = part.children().is_empty() && part.message().is_none();
    if leaf && !path.is_empty() {
        let decode = binary::transfer_of(part).map_err(|_| unknown())?;
        let range = part.body_range();
        let r = root.open(file, &range, 0, None).map_err(FetchError::io)?;
        let (size, nul) = binary::measure(r, decode).map_err(FetchError::io)?;
        return Ok(BinaryContent::Stream {
            range,
            decode,
            size,
            lit8: nul || decode != Transfer::Identity,
        });
    }
    // A whole message (or a multipart or message part): as it is if nothing in it is encoded.
    fn plain(p: &mime::Part) -> Result<bool, binary::UnknownCte> {
        if binary::transfer_of(p)? != Transfer::Identity {
            return Ok(false);
        }
        if let Some(m) = p.message() {
            return plain(m);
        }
        for c in p.children() {
            if !plain(c)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
    let unchanged = plain(part).map_err(|_| unknown())?;
    let range = if path.is_empty() {
        part.full_range()
    } else {
        part.body_range()
    };
    if unchanged {
        let r = root.open(file, &range, 0, None).map_err(FetchError::io)?;
        let (size, nul) = binary::measure(r, Transfer::Identity).map_err(FetchError::io)?;
        return Ok(BinaryContent::Stream {
            range,
            decode: Transfer::Identity,
            size,
            lit8: nul,
        });
    }
    let mut f = file;
    // BINARY[n] of a message/rfc822 part is the message in it, header and all; of a
    // multipart part, its body.
    let (target, with_header) = match part.message() {
        _ if path.is_empty() => (root, true),
        Some(inner) => (inner, true),
        None => (part, false),
    };
    match binary::convert(root, target, &mut f, with_header) {
        Ok(pieces) => Ok(BinaryContent::Pieces {
            size: pieces.iter().map(binary::Piece::len).sum(),
            pieces,
        }),
        Err(ConvertError::Unknown(_)) => Err(unknown()),
        Err(ConvertError::Io(e)) => Err(FetchError::io(e)),
    }
}

/// The octets `off..off + len` of a converted message: what falls in made bytes goes into
/// `items`, stretches of the file become chunks streamed from it (decoded on the way).
fn stream_pieces(
    pieces: &[crate::mail::binary::Piece],
    file: &Arc<std::fs::File>,
    off: u64,
    len: u64,
    items: &mut Vec<u8>,
    chunks: &mut Vec<Chunk>,
) {
    use crate::mail::binary::Piece;
    let (want_start, want_end) = (off, off + len);
    let mut at = 0u64;
    for p in pieces {
        let (start, end) = (at, at + p.len());
        at = end;
        let (lo, hi) = (start.max(want_start), end.min(want_end));
        if lo >= hi {
            continue;
        }
        let (skip, take) = (lo - start, hi - lo);
        let (range, decode) = match p {
            Piece::Bytes(b) => {
                items.extend_from_slice(&b[skip as usize..(skip + take) as usize]);
                continue;
            }
            Piece::Raw(r) => (r, Transfer::Identity),
            Piece::Decoded {
                range, transfer, ..
            } => (range, *transfer),
        };
        chunks.push(Chunk::Bytes(std::mem::take(items)));
        chunks.push(Chunk::File {
            file: Arc::clone(file),
            offset: range.start,
            len: range.end - range.start,
            crlf: true,
            skip,
            take,
            decode,
        });
    }
}

/// `BINARY[1.2]<origin>` / `BINARY.SIZE[1.2]`.
fn binary_label(name: &str, part: &[u32], origin: Option<u64>) -> String {
    let nums: Vec<String> = part.iter().map(u32::to_string).collect();
    let mut s = format!("{name}[{}]", nums.join("."));
    if let Some(o) = origin {
        let _ = write!(s, "<{o}>");
    }
    s
}

/// The header blocks of the files at `paths`, read by up to eight threads at once (the
/// caller is on the blocking pool already; the reads are what a cold SORT waits for).
fn read_headers_parallel<'a>(
    paths: impl Iterator<Item = &'a std::path::Path>,
) -> Vec<std::io::Result<Vec<u8>>> {
    let paths: Vec<&std::path::Path> = paths.collect();
    let workers = paths.len().div_ceil(64).clamp(1, 8);
    if workers == 1 {
        return paths
            .iter()
            .map(|p| std::fs::File::open(p).and_then(read_header))
            .collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<std::io::Result<Vec<u8>>>> = (0..paths.len()).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut out);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = paths.get(i) else { return };
                    let r = std::fs::File::open(p).and_then(read_header);
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                }
            });
        }
    });
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(std::io::Error::other("not read"))))
        .collect()
}

/// The header block of a message file (at most 256 KiB of it).
fn read_header(f: std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut r = std::io::BufReader::new(f);
    let mut h = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h);
        }
        h.extend_from_slice(&buf[..n]);
        if let Some(end) = header::header_end(&h) {
            h.truncate(end);
            return Ok(h);
        }
        if h.len() > 256 * 1024 {
            return Ok(h);
        }
    }
}

struct MsgCtx {
    uid: u32,
    seq: u32,
    view_len: u32,
    header: Option<Vec<u8>>,
}

/// `<origin.count>` applied to a length: (bytes to skip, bytes to send).
fn clip(len: u64, partial: Option<super::command::Partial>) -> (u64, u64) {
    match partial {
        None => (0, len),
        Some(p) => {
            let off = p.offset.min(len);
            (off, p.length.min(len - off))
        }
    }
}

/// How a FETCH response names a section: `BODY[1.2.HEADER.FIELDS (A B)]<0>`.
fn section_label(part: &[u32], text: Option<&SectionText<'_>>, origin: Option<u64>) -> String {
    let mut s = String::from("BODY[");
    let nums: Vec<String> = part.iter().map(u32::to_string).collect();
    s.push_str(&nums.join("."));
    if let Some(t) = text {
        if !part.is_empty() {
            s.push('.');
        }
        match t {
            SectionText::Header => s.push_str("HEADER"),
            SectionText::Text => s.push_str("TEXT"),
            SectionText::Mime => s.push_str("MIME"),
            SectionText::HeaderFields(v) | SectionText::HeaderFieldsNot(v) => {
                s.push_str(if matches!(t, SectionText::HeaderFields(_)) {
                    "HEADER.FIELDS ("
                } else {
                    "HEADER.FIELDS.NOT ("
                });
                let names: Vec<String> = v
                    .iter()
                    .map(|n| String::from_utf8_lossy(n).to_uppercase())
                    .collect();
                s.push_str(&names.join(" "));
                s.push(')');
            }
        }
    }
    s.push(']');
    if let Some(o) = origin {
        let _ = write!(s, "<{o}>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::uidlist::LockOptions;
    use std::time::Duration;

    fn scratch(name: &str, messages: usize) -> crate::maildir::MaildirPath {
        let root = std::env::temp_dir().join(format!("s3imap-view-{name}-{}", std::process::id()));
        let d = crate::maildir::user_dir(&root, "u@example.org")
            .unwrap()
            .inbox();
        let _ = std::fs::remove_dir_all(&root);
        crate::maildir::create(&d, false).unwrap();
        for i in 0..messages {
            std::fs::write(
                d.join("new").join(format!("17000000{i:02}.M{i}.h")),
                format!("Subject: {i}\r\n\r\nbody\r\n"),
            )
            .unwrap();
        }
        d
    }

    fn text(out: &mut Output) -> String {
        let s = String::from_utf8_lossy(&out.to_bytes_for_test()).into_owned();
        *out = Output::new();
        s
    }

    fn set(s: &str) -> SequenceArg {
        match crate::imap::parser::parse_command(
            format!("x FETCH {s} FLAGS\r\n").as_bytes(),
            &Default::default(),
        ) {
            Ok(crate::imap::parser::Parsed::Complete { command, .. }) => match command.kind {
                crate::imap::command::CommandKind::Fetch(f) => f.set.clone(),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        }
    }

    /// STORE +FLAGS.SILENT of \Deleted (`d`) or \Flagged.
    fn args(f: &str) -> StoreArgs<'static> {
        StoreArgs {
            uid: false,
            set: set("1"),
            mode: StoreMode::Add,
            silent: true,
            flags: vec![if f == "d" {
                Flag::Deleted
            } else {
                Flag::Flagged
            }],
            unchanged_since: None,
        }
    }

    #[test]
    fn sessions_share_one_table_and_keep_their_own_views() {
        let d = scratch("share", 3);
        let reg = crate::imap::registry::Registry::new();
        let mut a = Selected::open(reg.open(&d).unwrap(), "INBOX".into(), false).unwrap();
        let mut b = Selected::open(reg.open(&d).unwrap(), "INBOX".into(), false).unwrap();
        assert_eq!(reg.open_count(), 1, "one shared state for both sessions");
        let mut out = Output::new();
        // \Recent: the first session to learn of the messages owns them.
        a.select_responses(&mut out);
        assert!(text(&mut out).contains("* 3 RECENT"));
        b.select_responses(&mut out);
        assert!(text(&mut out).contains("* 0 RECENT"));
        // A's expunge reaches B at a sync that allows it, not before: B's numbers stay.
        a.store(&[1], &args("d"), false, &mut out).unwrap();
        a.expunge(None, &mut out).unwrap();
        assert!(text(&mut out).contains("* 1 EXPUNGE"));
        assert_eq!(
            b.resolve(&set("1:*"), false),
            vec![1, 2, 3],
            "B still numbers 3"
        );
        b.sync(&mut out, false);
        assert!(
            !text(&mut out).contains("EXPUNGE"),
            "not during FETCH/STORE/SEARCH"
        );
        b.store(&[2], &args("f"), false, &mut out).unwrap();
        b.sync(&mut out, true);
        let t = text(&mut out);
        assert!(t.contains("* 1 EXPUNGE"), "{t}");
        // A hears B's flag change; the message is number 1 for A now.
        a.sync(&mut out, true);
        let t = text(&mut out);
        assert!(t.contains("* 1 FETCH (FLAGS (\\Flagged \\Recent))"), "{t}");
        drop(a);
        drop(b);
        assert_eq!(
            reg.open_count(),
            1,
            "kept a while for a reconnecting client"
        );
        reg.forget_closed();
        assert_eq!(reg.open_count(), 0, "dropped with its last session");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_expunge_between_open_and_select_keeps_the_number_until_told() {
        let d = scratch("select-race", 3);
        let reg = crate::imap::registry::Registry::new();
        let mut out = Output::new();
        let mut a = Selected::open(reg.open(&d).unwrap(), "INBOX".into(), false).unwrap();
        a.condstore = true;
        a.select_responses(&mut out);
        let mut b = Selected::open(reg.open(&d).unwrap(), "INBOX".into(), false).unwrap();
        b.condstore = true;
        let at_open = b.highest_modseq();
        // A expunges message 1 after B's view opened, before B's SELECT answered.
        a.store(&[1], &args("d"), false, &mut out).unwrap();
        a.expunge(None, &mut out).unwrap();
        text(&mut out);
        b.select_responses(&mut out);
        let t = text(&mut out);
        assert!(t.contains("* 3 EXISTS"), "{t}");
        let said: u64 = t
            .split("[HIGHESTMODSEQ ")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(b.resolve(&set("1:*"), false), vec![1, 2, 3]);
        b.sync(&mut out, true);
        assert!(text(&mut out).contains("* 1 EXPUNGE"));
        // Not a HIGHESTMODSEQ that covers the expunge B was not told of.
        assert!(said >= at_open && said < b.highest_modseq(), "{t}");
        // A flag change by A: B's HIGHESTMODSEQ stays below it until B hears of it.
        let before = b.highest_modseq();
        a.store(&[2], &args("f"), false, &mut out).unwrap();
        assert_eq!(b.highest_modseq(), before);
        b.sync(&mut out, false);
        assert!(text(&mut out).contains("FETCH"));
        assert!(b.highest_modseq() > before);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_lock_that_stays_held_is_no_inuse() {
        let d = std::env::temp_dir().join(format!("s3imap-inuse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        crate::maildir::create(&d, false).unwrap();
        std::fs::write(d.join("dovecot-uidlist.lock"), b"held by dovecot").unwrap();
        let quick = LockOptions {
            timeout: Duration::from_millis(200),
            stale: Duration::from_secs(120),
        };
        let e = crate::maildir::store::append_to(
            &d,
            &b"Subject: x\r\n\r\ny\r\n"[..],
            Default::default(),
            &[],
            None,
            quick,
        )
        .unwrap_err();
        assert_eq!(Failure::from(e).code(), Some(Code::InUse));
        assert!(
            std::fs::read_dir(d.join("tmp")).unwrap().next().is_none(),
            "nothing left in tmp/"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
