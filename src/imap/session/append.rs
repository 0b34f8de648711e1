//! APPEND and MULTIAPPEND (RFC 3501 §6.3.11, RFC 3502), streamed: the server hands the head,
//! then the literal's bytes as they arrive, then the end. Each message is written straight
//! into the target's `tmp/` and made durable there; when the command ends well they are all
//! stored, through the shared mailbox when it is open here (so sessions that have it
//! selected hear of it at once), a MULTIAPPEND's messages under one lock of it; when any
//! message fails none is stored (RFC 3502 §6). The tagged OK carries APPENDUID (RFC 4315). A limit (APPENDLIMIT, RFC 7889), a bad flag or UTF8 data without ENABLE
//! refuse the message before its literal is read.

use super::error::{Code, Failure};
use super::mailboxes::folder_name;
use super::messages::{compress, unknown_system_flag};
use super::{Session, State, ok};
use crate::imap::command::{AppendHead, AppendMessageHead, Flag};
use crate::imap::response::Output;
use crate::maildir::MaildirPath;
use crate::maildir::folders;
use crate::maildir::store::{self, Flags};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An APPEND being received.
pub(super) struct Append {
    tag: String,
    dir: MaildirPath,
    /// The message being written, straight into the target's `tmp/` (written once).
    incoming: Option<crate::maildir::Incoming>,
    flags: Flags,
    keywords: Vec<String>,
    date: Option<SystemTime>,
    /// The messages received whole (durable in `tmp/`, removed if the command fails).
    ready: Vec<(crate::maildir::Durable, Flags, Vec<String>)>,
    /// Why the command fails (answered at its end: the literal is read to its end first).
    failed: Option<Failure>,
}

impl Session {
    /// APPEND announced a message; false refuses it (the answer is in `out`).
    pub fn append_start(&mut self, head: &AppendHead<'_>, out: &mut Output) -> bool {
        match self.append_target(head) {
            Ok(dir) => {
                self.append = Some(Append {
                    tag: head.tag.to_string(),
                    dir,
                    incoming: None,
                    flags: Flags::default(),
                    keywords: Vec::new(),
                    date: None,
                    ready: Vec::new(),
                    failed: None,
                });
                self.append_next(&head.message, out)
            }
            Err(f) => {
                f.answer(out, head.tag);
                false
            }
        }
    }

    fn append_target(&self, head: &AppendHead<'_>) -> Result<MaildirPath, Failure> {
        let State::Authenticated(user) = &self.state else {
            return Err(Failure::bad("APPEND needs a login first"));
        };
        if user.read_only {
            return Err(Failure::no(Code::NoPerm, "This app password is read-only"));
        }
        let name = folder_name(&head.mailbox, self.utf8)?;
        let dir = folders::folder_path(&user.dir, &name)?;
        if !dir.join("cur").is_dir() {
            return Err(Failure::no(Code::TryCreate, "No such mailbox"));
        }
        Ok(dir)
    }

    /// The next message of an APPEND (the first one too); false refuses it and ends the
    /// command (the answer is in `out`).
    pub fn append_next(&mut self, m: &AppendMessageHead<'_>, out: &mut Output) -> bool {
        let (limit, utf8) = (self.ctx.append_limit, self.utf8);
        let Some(a) = self.append.as_mut() else {
            return false;
        };
        match begin_message(a, m, limit, utf8) {
            Ok(()) => true,
            Err(f) => {
                f.answer(out, &a.tag);
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
            && let Err(err) = f.write(data)
        {
            let path = f.path().to_path_buf();
            a.failed = Some(store::StoreError::Io { path, err }.into());
        }
    }

    /// Called by the server before `append_next` for MULTIAPPEND's following messages.
    pub fn append_message_end(&mut self) {
        self.store_spooled();
    }

    /// The APPEND command ended: every message is stored, or (one failed) none.
    pub fn append_done(&mut self, out: &mut Output) {
        self.store_spooled();
        let Some(a) = self.append.take() else { return };
        if let Some(f) = a.failed {
            // The messages received whole go with `a.ready` (their tmp/ files removed).
            f.answer(out, &a.tag);
            return;
        }
        match self.commit(&a) {
            Ok((uids, validity)) => {
                for &uid in &uids {
                    // Stored into the selected mailbox: this session learns of it first, so
                    // it is \Recent here (as in Dovecot).
                    if let Some(sel) = self.selected.as_mut()
                        && sel.dir() == &*a.dir
                    {
                        sel.claim_recent(uid);
                    }
                }
                // Sessions that have it selected look at once.
                self.ctx.mailboxes.notify(&a.dir);
                self.sync_selected(out, true);
                let uids: Vec<usize> = uids.iter().map(|&u| u as usize).collect();
                ok(
                    out,
                    &a.tag,
                    &format!(
                        "[APPENDUID {validity} {}] APPEND completed",
                        compress(&uids)
                    ),
                );
            }
            Err(f) => f.answer(out, &a.tag),
        }
    }

    /// Stores the messages of a whole APPEND: (their UIDs, UIDVALIDITY). A single message goes
    /// through the shared table if the mailbox is open here, else straight into the Maildir;
    /// several go in under one lock of the shared table, and if one cannot be stored the ones
    /// before it are expunged again, so no session sees part of a MULTIAPPEND.
    fn commit(&self, a: &Append) -> Result<(Vec<u32>, u32), Failure> {
        if let [(durable, flags, keywords)] = a.ready.as_slice() {
            let k: Vec<&str> = keywords.iter().map(String::as_str).collect();
            let (uid, validity) = match self.ctx.mailboxes.get(&a.dir) {
                Some(shared) => {
                    let s = shared.lock(false)?.store_durable(durable, *flags, &k)?;
                    (s.uid, s.validity)
                }
                None => store::store_durable(
                    &a.dir,
                    durable,
                    *flags,
                    &k,
                    crate::maildir::uidlist::LockOptions::DOVECOT,
                )?,
            };
            return Ok((vec![uid], validity));
        }
        let shared = self.ctx.mailboxes.open(&a.dir)?;
        let mut g = shared.lock(false)?;
        let mut stored = Vec::with_capacity(a.ready.len());
        for (durable, flags, keywords) in &a.ready {
            let k: Vec<&str> = keywords.iter().map(String::as_str).collect();
            match g.store_durable(durable, *flags, &k) {
                Ok(s) => stored.push(s),
                Err(e) => {
                    if let Err(undo) = g.withdraw(&stored) {
                        crate::warn!(
                            "imap",
                            "{}: undoing a failed MULTIAPPEND: {undo}",
                            a.dir.display()
                        );
                    }
                    return Err(e.into());
                }
            }
        }
        let validity = stored.last().map_or(0, |s| s.validity);
        Ok((stored.iter().map(|s| s.uid).collect(), validity))
    }

    /// One message's literal is complete: make it durable in `tmp/` (stored at the end).
    fn store_spooled(&mut self) {
        let Some(a) = self.append.as_mut() else {
            return;
        };
        let Some(incoming) = a.incoming.take() else {
            return;
        };
        if a.failed.is_some() {
            return;
        }
        let tmp = incoming.path().to_path_buf();
        match incoming.finish(a.date) {
            Ok(d) => a.ready.push((d, a.flags, std::mem::take(&mut a.keywords))),
            Err(err) => a.failed = Some(store::StoreError::Io { path: tmp, err }.into()),
        }
    }
}

/// Checks a message's head and opens its file in `tmp/`.
fn begin_message(
    a: &mut Append,
    m: &AppendMessageHead<'_>,
    limit: u64,
    utf8_enabled: bool,
) -> Result<(), Failure> {
    if m.utf8 && !utf8_enabled {
        // RFC 6855 §4: the UTF8 data extension only after ENABLE UTF8=ACCEPT.
        return Err(Failure::bad(
            "APPEND UTF8 (...) needs ENABLE UTF8=ACCEPT first",
        ));
    }
    if let Some(f) = unknown_system_flag(&m.flags) {
        // Refused before the literal: no `+` for it (the framer skips it).
        return Err(Failure::bad(format!("Invalid system flag {f}")));
    }
    if m.literal.len > limit {
        return Err(Failure::no(
            Code::TooBig,
            format!("Messages are limited to {limit} bytes"),
        ));
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
    // The `+` for a synchronizing literal is the framer's (FrameEvent::Continuation, once the
    // head is consumed): exactly one per literal.
    let f = crate::maildir::Incoming::create(&a.dir, &store::unique_name()).map_err(|err| {
        Failure::from(store::StoreError::Io {
            path: a.dir.join("tmp"),
            err,
        })
    })?;
    a.incoming = Some(f);
    Ok(())
}
