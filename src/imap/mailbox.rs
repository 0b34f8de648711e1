//! The selected state: one open Maildir as this session sees it. Keeps the session's own
//! sequence-number view (RFC 3501 §7.4.1: a message leaves it only when its EXPUNGE is
//! announced, and EXPUNGE is never announced during FETCH, STORE or SEARCH), reports what
//! changed on disk, and carries out FETCH, STORE, SEARCH, EXPUNGE and COPY/MOVE over the
//! store in [`crate::maildir::store`].

use super::command::{FetchAttr, Flag, SearchKey, SectionText, SequenceArg, StoreArgs, StoreMode};
use super::meta;
use super::response::{self, Chunk, Output};
use crate::mail::{header, mime, search};
use crate::maildir::store::{FlagOp, Flags, Mailbox, StoreError};
use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

pub struct Selected {
    pub mailbox: Mailbox,
    /// The IMAP name, for messages.
    pub name: String,
    pub readonly: bool,
    /// UIDs in sequence-number order, as the client knows them.
    view: Vec<u32>,
    /// Expunged on disk, not yet announced.
    pending_expunge: Vec<u32>,
    /// `SEARCH RETURN (SAVE)` result.
    pub saved: Vec<u32>,
    /// The keywords the client was told of (FLAGS / PERMANENTFLAGS), in the mailbox's order.
    told_keywords: Vec<String>,
    /// The RECENT count the client was told last.
    told_recent: usize,
}

/// An error a command answers with `NO`.
pub type CmdResult = Result<(), String>;

/// Why one message of a FETCH got no answer.
#[derive(Debug)]
enum FetchError {
    /// Expunged by another session or process meanwhile: left out of the answer (RFC 9051
    /// §6.4.5 allows it), the command still OK.
    Gone,
    /// The command ends with NO and this text (with its response code).
    No(String),
}

impl From<StoreError> for FetchError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchMessage { .. } => FetchError::Gone,
            e => FetchError::No(store_err(e)),
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
            FetchError::No(format!("[SERVERBUG] reading the message: {e}"))
        }
    }

    fn into_io(self) -> std::io::Error {
        match self {
            FetchError::Gone => std::io::Error::from(std::io::ErrorKind::NotFound),
            FetchError::No(s) => std::io::Error::other(s),
        }
    }
}

/// The RFC 5530 response code a client can act on for a store error.
pub fn store_code(e: &StoreError) -> &'static str {
    use crate::maildir::uidlist::LockError;
    match e {
        StoreError::Lock(LockError::Timeout { .. }) => "INUSE",
        StoreError::NoSuchMailbox { .. } => "TRYCREATE",
        StoreError::ReadOnly { .. } => "READ-ONLY",
        StoreError::UidsExhausted { .. } => "LIMIT",
        StoreError::Io { err, .. }
            if matches!(
                err.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            "OVERQUOTA"
        }
        _ => "SERVERBUG",
    }
}

/// A store error as the text of a NO: its response code, then what happened.
pub fn store_err(e: StoreError) -> String {
    let code = store_code(&e);
    if code == "SERVERBUG" || code == "INUSE" {
        crate::warn!("imap", "mailbox error: {e}");
    }
    format!("[{code}] {e}")
}

impl Selected {
    pub fn open(path: PathBuf, name: String, readonly: bool) -> Result<Selected, StoreError> {
        let mailbox = Mailbox::open(&path, readonly)?;
        let view = mailbox.messages().iter().map(|m| m.uid()).collect();
        Ok(Selected {
            mailbox,
            name,
            readonly,
            view,
            pending_expunge: Vec::new(),
            saved: Vec::new(),
            told_keywords: Vec::new(),
            told_recent: 0,
        })
    }

    fn keyword_names(&self) -> Vec<String> {
        self.mailbox
            .keywords()
            .iter()
            .map(|(_, n)| n.to_string())
            .collect()
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
    fn announce_keywords(&mut self, out: &mut Output) {
        let now = self.keyword_names();
        if now != self.told_keywords {
            let mut s = String::new();
            self.flags_lines(&mut s, &now);
            out.put(s.as_bytes());
            self.told_keywords = now;
        }
    }

    /// `* n RECENT` when the number of recent messages in the view changed.
    fn report_recent(&mut self, out: &mut Output) {
        let n = self.recent();
        if n != self.told_recent {
            out.put(format!("* {n} RECENT\r\n").as_bytes());
            self.told_recent = n;
        }
    }

    /// Messages that are \\Recent for this session.
    fn recent(&self) -> usize {
        self.view
            .iter()
            .filter(|&&u| self.mailbox.message(u).is_some_and(|m| m.is_recent()))
            .count()
    }

    pub fn exists(&self) -> u32 {
        self.view.len() as u32
    }

    /// The SELECT/EXAMINE untagged responses.
    pub fn select_responses(&mut self, out: &mut Output) {
        let recent = self.recent();
        let unseen = self
            .view
            .iter()
            .position(|&u| {
                self.mailbox
                    .message(u)
                    .is_some_and(|m| !m.flags().contains(Flags::SEEN))
            })
            .map(|i| i + 1);
        let keywords = self.keyword_names();
        let mut s = String::new();
        self.flags_lines(&mut s, &keywords);
        let _ = write!(s, "* {} EXISTS\r\n* {recent} RECENT\r\n", self.exists());
        if let Some(u) = unseen {
            let _ = write!(s, "* OK [UNSEEN {u}] First unseen\r\n");
        }
        let _ = write!(
            s,
            "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n",
            self.mailbox.uid_validity(),
            self.mailbox.uid_next()
        );
        out.put(s.as_bytes());
        self.told_keywords = keywords;
        self.told_recent = recent;
    }

    /// Looks at the disk and tells the client what changed. `expunges`: EXPUNGE responses
    /// may be sent now. Returns false when the mailbox became unusable (UIDVALIDITY changed).
    pub fn sync(&mut self, out: &mut Output, expunges: bool) -> bool {
        let changes = match self.mailbox.refresh() {
            Ok(c) => c,
            Err(e) => {
                crate::warn!("imap", "refreshing {}: {e}", self.name);
                return true;
            }
        };
        if changes.uid_validity_changed {
            out.put(b"* BYE [UNAVAILABLE] The mailbox was rebuilt by another program\r\n");
            return false;
        }
        for e in &changes.expunged {
            if self.view.contains(&e.uid) && !self.pending_expunge.contains(&e.uid) {
                self.pending_expunge.push(e.uid);
            }
        }
        self.announce_keywords(out);
        for uid in &changes.flags {
            if let Some(seq) = self.seq_of(*uid)
                && !self.pending_expunge.contains(uid)
            {
                let mut line = format!("* {seq} FETCH (FLAGS ");
                self.write_flags(&mut line, *uid);
                line.push_str(")\r\n");
                out.put(line.as_bytes());
            }
        }
        if expunges {
            self.announce_expunges(out);
        }
        let before = self.view.len();
        let max = self.view.last().copied().unwrap_or(0);
        for uid in changes.new {
            if uid > max && self.mailbox.message(uid).is_some() {
                self.view.push(uid);
            }
        }
        if self.view.len() != before {
            out.put(format!("* {} EXISTS\r\n", self.view.len()).as_bytes());
        }
        if expunges || self.view.len() != before {
            self.report_recent(out);
        }
        true
    }

    fn announce_expunges(&mut self, out: &mut Output) {
        for uid in std::mem::take(&mut self.pending_expunge) {
            if let Some(i) = self.view.iter().position(|&u| u == uid) {
                self.view.remove(i);
                out.put(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
            }
        }
    }

    fn seq_of(&self, uid: u32) -> Option<usize> {
        // The view is ascending by UID.
        self.view.binary_search(&uid).ok().map(|i| i + 1)
    }

    /// The UIDs a set names, in ascending order (sequence numbers or UIDs).
    pub fn resolve(&self, set: &SequenceArg, uid: bool) -> Vec<u32> {
        match set {
            SequenceArg::Saved => self
                .saved
                .iter()
                .copied()
                .filter(|u| self.view.binary_search(u).is_ok())
                .collect(),
            SequenceArg::Set(s) => {
                if uid {
                    let max = self.view.last().copied().unwrap_or(0);
                    let mut v: Vec<u32> = Vec::new();
                    for r in s.resolve(max.max(1)) {
                        let lo = self.view.partition_point(|&u| u < *r.start());
                        let hi = self.view.partition_point(|&u| u <= *r.end());
                        v.extend_from_slice(&self.view[lo..hi]);
                    }
                    // `n:*` with n above every UID still means the last message.
                    if v.is_empty()
                        && let Some(&last) = self.view.last()
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
                    let max = self.view.len() as u32;
                    s.iter(max)
                        .filter_map(|seq| self.view.get(seq as usize - 1).copied())
                        .collect()
                }
            }
        }
    }

    /// True when a sequence set names a message number beyond EXISTS (a client error).
    pub fn out_of_range(&self, set: &SequenceArg) -> bool {
        match set {
            SequenceArg::Set(s) => s
                .max_explicit()
                .is_some_and(|m| m as usize > self.view.len()),
            SequenceArg::Saved => false,
        }
    }

    fn write_flags(&self, s: &mut String, uid: u32) {
        s.push('(');
        let mut first = true;
        if let Some(m) = self.mailbox.message(uid) {
            for name in m.flags().imap_names() {
                if !first {
                    s.push(' ');
                }
                s.push_str(name);
                first = false;
            }
            if m.is_recent() {
                if !first {
                    s.push(' ');
                }
                s.push_str("\\Recent");
                first = false;
            }
            for k in self.mailbox.keyword_names(uid) {
                if !first {
                    s.push(' ');
                }
                s.push_str(k);
                first = false;
            }
        }
        s.push(')');
    }

    /// FETCH for one message; false when the message is gone (expunged meanwhile).
    /// FETCH for one message; false when the message is gone (expunged by another session or
    /// process meanwhile: it is left out of the answer, as RFC 9051 allows for UID FETCH).
    pub fn fetch_one(
        &mut self,
        uid: u32,
        attrs: &[FetchAttr<'_>],
        uid_cmd: bool,
        out: &mut Output,
    ) -> Result<bool, String> {
        match self.fetch_one_inner(uid, attrs, uid_cmd, out) {
            Ok(b) => Ok(b),
            Err(FetchError::Gone) => Ok(false),
            Err(FetchError::No(s)) => Err(s),
        }
    }

    fn fetch_one_inner(
        &mut self,
        uid: u32,
        attrs: &[FetchAttr<'_>],
        uid_cmd: bool,
        out: &mut Output,
    ) -> Result<bool, FetchError> {
        let Some(seq) = self.seq_of(uid) else {
            return Ok(false);
        };
        let Some(msg) = self.mailbox.message(uid) else {
            return Ok(false);
        };
        let unique = crate::maildir::unique_part(msg.name()).to_string();
        let dir = self.mailbox.dir().to_path_buf();
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
            match self
                .mailbox
                .change_flags(uid, FlagOp::Add, Flags::SEEN, &[])
            {
                Ok(_) => {
                    want_flags = true;
                    self.mailbox.flags_reported(uid);
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
        if uid_cmd && !has_uid {
            sep(&mut items, &mut first);
            items.extend_from_slice(format!("UID {uid}").as_bytes());
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
                    let t = self
                        .mailbox
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
                    let n = self.mailbox.vsize(uid)?;
                    sep(&mut items, &mut first);
                    items.extend_from_slice(format!("RFC822.SIZE {n}").as_bytes());
                }
                FetchAttr::Envelope | FetchAttr::BodyStructure | FetchAttr::Body => {
                    let mb = &mut self.mailbox;
                    let r = meta::rendered(&dir, &unique, || {
                        load_tree(mb, &mut file, &mut tree).map_err(FetchError::into_io)
                    })
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => FetchError::Gone,
                        _ => FetchError::No(e.to_string()),
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
                FetchAttr::ModSeq => {}
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
                    let t = load_tree(&mut self.mailbox, &mut file, &mut tree)?;
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
                                file: open(&mut self.mailbox, &mut file)?,
                                offset: r.start,
                                len: r.end - r.start,
                                crlf: true,
                                skip: off,
                                take: len,
                            });
                        }
                    }
                }
                FetchAttr::Binary { .. } | FetchAttr::BinarySize { .. } => {
                    return Err(FetchError::No("BINARY is not supported".into()));
                }
            }
        }
        if want_flags {
            let mut s = String::new();
            self.write_flags(&mut s, uid);
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

    /// STORE over `uids`; returns the UIDs that were not changed because they were modified
    /// since (never, without CONDSTORE) — always empty here.
    pub fn store(
        &mut self,
        uids: &[u32],
        args: &StoreArgs<'_>,
        uid_cmd: bool,
        out: &mut Output,
    ) -> CmdResult {
        if self.readonly {
            return Err("[READ-ONLY] The mailbox is read-only".into());
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
        for &uid in uids {
            if self.mailbox.message(uid).is_none() {
                continue;
            }
            // Applied to the flags the message has now (another session may have changed them).
            match self.mailbox.change_flags(uid, op, add, &kw) {
                Ok(_) => {}
                Err(StoreError::NoSuchMessage { .. }) => continue,
                Err(e) => return Err(store_err(e)),
            }
            // A keyword new to the mailbox is announced before the FETCH that carries it.
            self.announce_keywords(out);
            if !args.silent
                && let Some(seq) = self.seq_of(uid)
                && self.mailbox.message(uid).is_some()
            {
                let mut s = format!("* {seq} FETCH (");
                if uid_cmd {
                    let _ = write!(s, "UID {uid} ");
                }
                s.push_str("FLAGS ");
                self.write_flags(&mut s, uid);
                s.push_str(")\r\n");
                out.put(s.as_bytes());
                self.mailbox.flags_reported(uid);
            }
        }
        Ok(())
    }

    /// EXPUNGE (all \Deleted) or UID EXPUNGE (those of `only`), announcing every removal.
    pub fn expunge(&mut self, only: Option<&[u32]>, out: &mut Output) -> CmdResult {
        if self.readonly {
            return Err("[READ-ONLY] The mailbox is read-only".into());
        }
        let doomed: Vec<u32> = self
            .view
            .iter()
            .copied()
            .filter(|u| only.is_none_or(|o| o.binary_search(u).is_ok()))
            .filter(|&u| {
                self.mailbox
                    .message(u)
                    .is_some_and(|m| m.flags().contains(Flags::DELETED))
            })
            .collect();
        self.mailbox.expunge(&doomed).map_err(store_err)?;
        for u in doomed {
            if !self.pending_expunge.contains(&u) {
                self.pending_expunge.push(u);
            }
        }
        self.announce_expunges(out);
        self.report_recent(out);
        Ok(())
    }

    /// Evaluates SEARCH keys; returns matching UIDs in ascending order.
    pub fn search(&mut self, keys: &[SearchKey<'_>]) -> Result<Vec<u32>, String> {
        let mut hits = Vec::new();
        let uids = self.view.clone();
        for (i, &uid) in uids.iter().enumerate() {
            if self.mailbox.message(uid).is_none() {
                continue;
            }
            let mut ctx = MsgCtx {
                uid,
                seq: i as u32 + 1,
                header: None,
            };
            if keys
                .iter()
                .all(|k| self.matches(k, &mut ctx).unwrap_or(false))
            {
                hits.push(uid);
            }
        }
        Ok(hits)
    }

    fn header_of(&mut self, ctx: &mut MsgCtx) -> Vec<u8> {
        if let Some(h) = &ctx.header {
            return h.clone();
        }
        let mut h = Vec::new();
        if let Ok(f) = self.mailbox.open_file(ctx.uid) {
            let mut r = std::io::BufReader::new(f);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = r.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                h.extend_from_slice(&buf[..n]);
                if let Some(end) = header::header_end(&h) {
                    h.truncate(end);
                    break;
                }
                if h.len() > 256 * 1024 {
                    break;
                }
            }
        }
        ctx.header = Some(h.clone());
        h
    }

    fn matches(&mut self, key: &SearchKey<'_>, ctx: &mut MsgCtx) -> Result<bool, String> {
        use SearchKey as K;
        let uid = ctx.uid;
        let Some(m) = self.mailbox.message(uid) else {
            return Ok(false);
        };
        let flags = m.flags();
        let recent = m.is_recent();
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
            K::Keyword(k) => self
                .mailbox
                .keyword_names(uid)
                .iter()
                .any(|n| n.eq_ignore_ascii_case(k)),
            K::Unkeyword(k) => !self
                .mailbox
                .keyword_names(uid)
                .iter()
                .any(|n| n.eq_ignore_ascii_case(k)),
            K::Larger(n) => self.mailbox.vsize(uid).map_err(store_err)? > *n,
            K::Smaller(n) => self.mailbox.vsize(uid).map_err(store_err)? < *n,
            K::Before(d) | K::On(d) | K::Since(d) => {
                let t = self
                    .mailbox
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
                let h = self.header_of(ctx);
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
                let h = self.header_of(ctx);
                let needle = String::from_utf8_lossy(s);
                if field == "subject" {
                    search::header_contains(&h, field, &needle)
                } else {
                    search::address_contains(&h, field, &needle)
                }
            }
            K::Header(name, s) => {
                let h = self.header_of(ctx);
                search::header_contains(
                    &h,
                    &String::from_utf8_lossy(name),
                    &String::from_utf8_lossy(s),
                )
            }
            K::Body(s) | K::Text(s) => {
                let f = self.mailbox.open_file(uid).map_err(store_err)?;
                let needle = String::from_utf8_lossy(s);
                let r = std::io::BufReader::with_capacity(64 * 1024, f);
                let found = if matches!(key, K::Body(_)) {
                    search::body_contains(r, &needle)
                } else {
                    search::text_contains(r, &needle)
                };
                found.map_err(|e| format!("reading the message: {e}"))?
            }
            K::Uid(set) => self.resolve(set, true).binary_search(&uid).is_ok(),
            K::SequenceSet(set) => match set {
                SequenceArg::Saved => self.saved.contains(&uid),
                SequenceArg::Set(s) => s.contains(ctx.seq, self.view.len() as u32),
            },
            K::Not(k) => !self.matches(k, ctx)?,
            K::Or(a, b) => self.matches(a, ctx)? || self.matches(b, ctx)?,
            K::And(v) => {
                for k in v {
                    if !self.matches(k, ctx)? {
                        return Ok(false);
                    }
                }
                true
            }
            K::ModSeq(_) => true,
        })
    }

    /// Sequence number of the first message of `uids` that still exists (for responses).
    pub fn seq(&self, uid: u32) -> Option<usize> {
        self.seq_of(uid)
    }
}

struct MsgCtx {
    uid: u32,
    seq: u32,
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
        let text = store_err(e);
        assert!(text.starts_with("[INUSE] "), "{text}");
        assert!(
            std::fs::read_dir(d.join("tmp")).unwrap().next().is_none(),
            "nothing left in tmp/"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
