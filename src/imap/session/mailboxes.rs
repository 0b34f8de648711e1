//! The commands on mailboxes as wholes (RFC 3501 §6.3): SELECT and EXAMINE, CREATE (with
//! RFC 6154's USE), DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB (answers by
//! [`crate::imap::list`]) with RFC 5819's RETURN (STATUS), and STATUS; mailbox names as the
//! client sends and gets them (modified UTF-7, or UTF-8 after ENABLE UTF8=ACCEPT).

use super::error::{Code, Failure};
use super::special_use::{self, set_special_use, special_use_name, special_uses};
use super::{Session, User, ok};
use crate::imap::command::{ListArgs, Mailbox as MailboxArg, SelectParams, SpecialUse, StatusItem};
use crate::imap::mailbox::Selected;
use crate::imap::response::{self, Output};
use crate::maildir::folders;
use crate::maildir::store::{self, Mailbox};
use crate::utf7;
use std::borrow::Cow;

/// A folder name as the client gets it: UTF-8 after ENABLE UTF8=ACCEPT, else modified UTF-7.
pub(super) fn wire_name(name: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        name.as_bytes().to_vec()
    } else {
        utf7::encode(name).into_bytes()
    }
}

/// The folder name of a mailbox argument (decoded, INBOX canonical).
pub(super) fn folder_name(m: &MailboxArg<'_>, utf8: bool) -> Result<String, Failure> {
    let raw = m.as_bytes();
    let name = if utf8 {
        // RFC 6855 §3: after ENABLE UTF8=ACCEPT names are UTF-8 ("&" is just a character).
        String::from_utf8(raw.to_vec())
            .map_err(|_| Failure::no(Code::Cannot, "Bad mailbox name: not UTF-8"))?
    } else {
        utf7::decode(raw)
            .map_err(|e| Failure::no(Code::Cannot, format!("Bad mailbox name: {e}")))?
    };
    Ok(folders::normalize(&name)?)
}

impl Session {
    /// SELECT / EXAMINE; writes the tagged OK itself (with READ-WRITE / READ-ONLY). With
    /// `(QRESYNC (…))` it then tells what the client missed since it last had the mailbox
    /// (RFC 7162 §3.2.5).
    pub(super) fn select(
        &mut self,
        user: &User,
        mailbox: &MailboxArg<'_>,
        params: &SelectParams,
        readonly: bool,
        tag: &str,
        out: &mut Output,
    ) -> Result<(), Failure> {
        if params.qresync.is_some() && !self.qresync {
            // RFC 7162 §3.2.5: only after ENABLE QRESYNC.
            return Err(Failure::bad(
                "QRESYNC must be enabled first (ENABLE QRESYNC)",
            ));
        }
        if params.condstore {
            self.condstore = true;
        }
        if self.selected.take().is_some() {
            // RFC 7162 §3.2.11 / RFC 9051 §7.1: the previous mailbox is closed first.
            out.put(b"* OK [CLOSED] Previous mailbox closed\r\n");
        }
        let name = folder_name(mailbox, self.utf8)?;
        let path = folders::folder_path(&user.dir, &name)?;
        let opened = self
            .ctx
            .mailboxes
            .open(&path)
            .and_then(|shared| Selected::open_for(shared, name, readonly, self.rev2));
        let mut sel = opened.map_err(|e| match e {
            store::StoreError::NoSuchMailbox { .. } => {
                Failure::no(Code::NonExistent, "No such mailbox")
            }
            e => e.into(),
        })?;
        sel.condstore = self.condstore;
        sel.qresync = self.qresync;
        sel.rev2 = self.rev2;
        sel.select_responses(out);
        if self.rev2 {
            // RFC 9051 §6.3.2: the mailbox's name as LIST gives it.
            let mut line = b"* LIST () \"/\" ".to_vec();
            response::astring(&mut line, &wire_name(&sel.name, true));
            line.extend_from_slice(b"\r\n");
            out.put(&line);
        }
        if let Some(q) = &params.qresync {
            sel.resync(q, out);
        }
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

    pub(super) fn create(
        &mut self,
        user: &User,
        mailbox: &MailboxArg<'_>,
        special_use: &[SpecialUse<'_>],
    ) -> Result<(), Failure> {
        let n = folder_name(mailbox, self.utf8)?;
        if folders::is_inbox(&n) {
            return Err(Failure::no(Code::AlreadyExists, "INBOX always exists"));
        }
        let mut uses = Vec::new();
        for u in special_use {
            uses.push(special_use_name(u).ok_or_else(|| {
                Failure::no(
                    Code::UseAttr,
                    "Only \\Archive \\Drafts \\Junk \\Sent \\Trash can be given",
                )
            })?);
        }
        folders::create(&user.dir, &n)?;
        for u in uses {
            set_special_use(&user.dir, u, Some(&n))
                .map_err(|e| Failure::no(Code::ServerBug, e.to_string()))?;
        }
        Ok(())
    }

    pub(super) fn delete(&mut self, user: &User, mailbox: &MailboxArg<'_>) -> Result<(), Failure> {
        let n = folder_name(mailbox, self.utf8)?;
        if self.selected.as_ref().is_some_and(|s| s.name == n) {
            self.selected = None;
        }
        folders::delete(&user.dir, &n)?;
        special_use::follow(&user.dir, &n, None);
        Ok(())
    }

    pub(super) fn rename(
        &mut self,
        user: &User,
        from: &MailboxArg<'_>,
        to: &MailboxArg<'_>,
    ) -> Result<(), Failure> {
        let f = folder_name(from, self.utf8)?;
        let t = folder_name(to, self.utf8)?;
        folders::rename(&user.dir, &f, &t)?;
        special_use::follow(&user.dir, &f, Some(&t));
        Ok(())
    }

    pub(super) fn subscribe(
        &mut self,
        user: &User,
        mailbox: &MailboxArg<'_>,
        on: bool,
    ) -> Result<(), Failure> {
        let n = folder_name(mailbox, self.utf8)?;
        folders::set_subscribed(&user.dir, &n, on)?;
        Ok(())
    }

    pub(super) fn list(
        &mut self,
        user: &User,
        args: &ListArgs<'_>,
        lsub: bool,
        out: &mut Output,
    ) -> Result<(), Failure> {
        let decode = |raw: &[u8]| {
            if self.utf8 {
                String::from_utf8_lossy(raw).into_owned()
            } else {
                utf7::decode(raw).unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
            }
        };
        let reference = decode(args.reference.as_bytes());
        let subscribed = folders::subscriptions(&user.dir).unwrap_or_default();
        let all = folders::list(&user.dir)?;
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
        let have = crate::imap::list::Have {
            entries: &entries,
            subscribed: &subscribed,
            special: &special,
        };
        for l in crate::imap::list::answer(args, &patterns, lsub, &have) {
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

    pub(super) fn status(
        &mut self,
        user: &User,
        mailbox: &MailboxArg<'_>,
        items: &[StatusItem],
        out: &mut Output,
    ) -> Result<(), Failure> {
        let name = folder_name(mailbox, self.utf8)?;
        let path = folders::folder_path(&user.dir, &name)?;
        let highest = if items.contains(&StatusItem::HighestModSeq) {
            // RFC 7162 §3.1.6 (a CONDSTORE enabling command). The modseqs are numbered when
            // the mailbox is opened (changes made by other programs too), so open it.
            self.enable_condstore(out);
            let shared = self.ctx.mailboxes.open(&path).map_err(|e| match e {
                store::StoreError::NoSuchMailbox { .. } => {
                    Failure::no(Code::NonExistent, "No such mailbox")
                }
                e => e.into(),
            })?;
            Some(
                shared
                    .lock(false)
                    .map_err(Failure::from)?
                    .highest_modseq()
                    .max(1),
            )
        } else {
            None
        };
        let st = Mailbox::status_of(&path).map_err(|e| match e {
            store::StoreError::NoSuchMailbox { .. } => {
                Failure::no(Code::NonExistent, "No such mailbox")
            }
            e => e.into(),
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
                StatusItem::Deleted => format!("DELETED {}", st.deleted),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", highest.unwrap_or(1)),
            });
        }
        let mut line = b"* STATUS ".to_vec();
        response::astring(&mut line, &wire_name(&name, self.utf8));
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        out.put(&line);
        Ok(())
    }
}
