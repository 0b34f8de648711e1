//! The selected state's commands (RFC 3501 §6.4 and extensions): CHECK, CLOSE, UNSELECT,
//! EXPUNGE and UID EXPUNGE (UIDPLUS), FETCH (answered in batches, see [`Session::resume`]),
//! STORE, SEARCH with ESEARCH's RETURN and SEARCHRES's SAVE, COPY and MOVE (with COPYUID).
//! The work on the mailbox is [`Selected`]'s; this module maps commands onto it and words
//! the answers.

use super::error::{Code, Failure};
use super::mailboxes::folder_name;
use super::{PendingFetch, Session, Step, ok};
use crate::imap::command::{
    CommandKind, FetchAttr, Flag, Mailbox as MailboxArg, SearchArgs, SearchKey, SearchReturn,
    Section, SectionText, SequenceArg, SortArgs, ThreadAlgorithm, ThreadArgs,
};
use crate::imap::mailbox::Selected;
use crate::imap::response::{self, Output};
use crate::imap::sort;
use crate::maildir::folders;
use crate::maildir::store;
use std::borrow::Cow;

/// How a selected-state command ended, when it did not fail.
enum Outcome {
    /// Report the changes the client may hear now, then the tagged OK (with this code).
    Completed(Option<String>),
    /// The command wrote its own answer (or is still answering): do this next.
    Answered(Step),
}

impl Session {
    /// Runs a command that needs a selected mailbox.
    pub(super) fn selected_cmd(
        &mut self,
        tag: &str,
        kind: CommandKind<'_>,
        out: &mut Output,
    ) -> Step {
        let name = kind.name();
        // RFC 3501 §7.4.1: no EXPUNGE during FETCH, STORE or SEARCH (the UID forms may).
        let expunges = !matches!(
            &kind,
            CommandKind::Fetch(a) if !a.uid
        ) && !matches!(&kind, CommandKind::Store(a) if !a.uid)
            && !matches!(&kind, CommandKind::Search(a) if !a.uid)
            && !matches!(&kind, CommandKind::Sort(a) if !a.uid)
            && !matches!(&kind, CommandKind::Thread(a) if !a.uid);
        match self.on_selected(tag, kind, out) {
            Ok(Outcome::Completed(code)) => {
                self.sync_selected(out, expunges);
                self.tagged_ok(out, tag, code, &format!("{name} completed"));
                Step::Done
            }
            Ok(Outcome::Answered(step)) => step,
            Err(f) => {
                f.answer(out, tag);
                Step::Done
            }
        }
    }

    fn on_selected(
        &mut self,
        tag: &str,
        kind: CommandKind<'_>,
        out: &mut Output,
    ) -> Result<Outcome, Failure> {
        use CommandKind as K;
        let name = kind.name();
        if self.selected.is_none() {
            return Err(Failure::bad(format!(
                "{name} needs a selected mailbox (SELECT first)"
            )));
        }
        // RFC 7162 §3.1: these commands turn CONDSTORE on.
        let enables = match &kind {
            K::Fetch(a) => {
                a.changed_since.is_some() || a.attrs.iter().any(|f| matches!(f, FetchAttr::ModSeq))
            }
            K::Store(a) => a.unchanged_since.is_some(),
            K::Search(a) => a.keys.iter().any(SearchKey::uses_modseq),
            K::Sort(a) => a.keys.iter().any(SearchKey::uses_modseq),
            _ => false,
        };
        if enables {
            self.enable_condstore(out);
        }
        let qresync = self.qresync;
        let Some(sel) = self.selected.as_mut() else {
            return Err(Failure::bad("SELECT first"));
        };
        match kind {
            K::Check => sel.poll(),
            K::Close => {
                if !sel.readonly {
                    // CLOSE expunges silently.
                    let mut sink = Output::new();
                    let _ = sel.expunge(None, &mut sink);
                }
                self.selected = None;
                ok(out, tag, "CLOSE completed");
                return Ok(Outcome::Answered(Step::Done));
            }
            K::Unselect => {
                self.selected = None;
                ok(out, tag, "UNSELECT completed");
                return Ok(Outcome::Answered(Step::Done));
            }
            K::Expunge => sel.expunge(None, out)?,
            K::UidExpunge(set) => {
                let uids = sel.resolve(&set, true);
                sel.expunge(Some(&uids), out)?;
            }
            K::Fetch(args) => {
                if !args.uid && sel.out_of_range(&args.set) {
                    return Err(Failure::bad("Invalid message sequence number"));
                }
                if args.vanished && !(args.uid && args.changed_since.is_some() && qresync) {
                    // RFC 7162 §3.2.6.
                    return Err(Failure::bad(
                        "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC",
                    ));
                }
                let mut uids = sel.resolve(&args.set, args.uid);
                let mut attrs: Vec<FetchAttr<'static>> = args.attrs.iter().map(own_attr).collect();
                // RFC 7162 §3.2.6: VANISHED (EARLIER) comes before any FETCH. The expunges
                // this session has not been told of are not in it: they follow as VANISHED.
                if let Some(since) = args.changed_since
                    && args.vanished
                    && let SequenceArg::Set(set) = &args.set
                {
                    let gone = sel.vanished_since(since, Some(set));
                    if !gone.is_empty() {
                        let set = response::number_set(gone.iter().map(|&u| u64::from(u)));
                        out.put(format!("* VANISHED (EARLIER) {set}\r\n").as_bytes());
                    }
                }
                // Changes to flags may be reported now; expunges only in UID FETCH (RFC 3501
                // §7.4.1: the numbers FETCH was given must keep their meaning).
                sel.sync(out, args.uid);
                if let Some(since) = args.changed_since {
                    // RFC 7162 §3.1.4: only what changed after `since`, with its MODSEQ.
                    uids.retain(|&u| sel.modseq_of(u) > since);
                    if !attrs.contains(&FetchAttr::ModSeq) {
                        attrs.push(FetchAttr::ModSeq);
                    }
                }
                self.pending = Some(PendingFetch {
                    tag: tag.to_string(),
                    uids,
                    next: 0,
                    attrs,
                    uid: args.uid,
                });
                return Ok(Outcome::Answered(self.resume(out)));
            }
            K::Store(args) => {
                if let Some(f) = unknown_system_flag(&args.flags) {
                    return Err(Failure::bad(format!("Invalid system flag {f}")));
                }
                if !args.uid && sel.out_of_range(&args.set) {
                    return Err(Failure::bad("Invalid message sequence number"));
                }
                let uids = sel.resolve(&args.set, args.uid);
                let modified = sel.store(&uids, &args, args.uid, out)?;
                if !modified.is_empty() {
                    // RFC 7162 §3.1.3: what was left alone, as UIDs for UID STORE.
                    let nums: Vec<usize> = if args.uid {
                        modified.iter().map(|&u| u as usize).collect()
                    } else {
                        modified.iter().filter_map(|&u| sel.seq(u)).collect()
                    };
                    return Ok(Outcome::Completed(Some(format!(
                        "MODIFIED {}",
                        compress(&nums)
                    ))));
                }
            }
            K::Search(args) => search(sel, tag, &args, self.rev2, out)?,
            K::Sort(args) => sort(sel, tag, &args, out)?,
            K::Thread(args) => thread(sel, &args, out)?,
            K::Copy { uid, set, mailbox } => {
                return self
                    .copy_or_move(&set, uid, &mailbox, false, out)
                    .map(Outcome::Completed);
            }
            K::Move { uid, set, mailbox } => {
                return self
                    .copy_or_move(&set, uid, &mailbox, true, out)
                    .map(Outcome::Completed);
            }
            other => {
                return Err(Failure::bad(format!("{} is not valid here", other.name())));
            }
        }
        Ok(Outcome::Completed(None))
    }

    /// Continues a long answer (after [`Step::More`]).
    pub fn resume(&mut self, out: &mut Output) -> Step {
        let Some(mut p) = self.pending.take() else {
            return Step::Done;
        };
        let Some(sel) = self.selected.as_mut() else {
            Failure::no(Code::NonExistent, "The mailbox is gone").answer(out, &p.tag);
            return Step::Done;
        };
        while p.next < p.uids.len() {
            let uid = p.uids[p.next];
            p.next += 1;
            if let Err(f) = sel.fetch_one(uid, &p.attrs, p.uid, out) {
                f.answer(out, &p.tag);
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

    /// COPY / MOVE (RFC 4315 COPYUID, RFC 6851): the tagged OK's code, if it has one.
    fn copy_or_move(
        &mut self,
        set: &SequenceArg,
        uid: bool,
        mailbox: &MailboxArg<'_>,
        is_move: bool,
        out: &mut Output,
    ) -> Result<Option<String>, Failure> {
        let user_dir = self
            .user()
            .map(|u| u.dir.clone())
            .ok_or_else(|| Failure::bad("Log in first"))?;
        let name = folder_name(mailbox, self.utf8)?;
        let dest = folders::folder_path(&user_dir, &name)?;
        let Some(sel) = self.selected.as_mut() else {
            return Err(Failure::bad("SELECT first"));
        };
        let r = copy_into(sel, set, uid, &dest, is_move, out);
        // Sessions that have the target open look at once.
        self.ctx.mailboxes.changed(&dest);
        r
    }
}

fn copy_into(
    sel: &mut Selected,
    set: &SequenceArg,
    uid: bool,
    dest: &std::path::Path,
    is_move: bool,
    out: &mut Output,
) -> Result<Option<String>, Failure> {
    if !dest.join("cur").is_dir() {
        return Err(Failure::no(Code::TryCreate, "No such mailbox"));
    }
    if is_move && sel.readonly {
        return Err(Failure::no(Code::ReadOnly, "The mailbox is read-only"));
    }
    let uids = sel.resolve(set, uid);
    let mut from = Vec::new();
    let mut to = Vec::new();
    let mut validity = 0;
    for u in &uids {
        match sel.copy_to(*u, dest) {
            Ok((new, v)) => {
                from.push(*u as usize);
                to.push(new as usize);
                validity = v;
            }
            // Expunged meanwhile: nothing to copy.
            Err(store::StoreError::NoSuchMessage { .. }) => {}
            Err(e) => return Err(e.into()),
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

/// The search strings' charset is one we have.
fn check_charset(cs: Option<&str>) -> Result<(), Failure> {
    match cs {
        Some(cs) if !cs.eq_ignore_ascii_case("UTF-8") && !cs.eq_ignore_ascii_case("US-ASCII") => {
            Err(Failure::no(Code::BadCharset, "Unsupported charset"))
        }
        _ => Ok(()),
    }
}

/// SORT (RFC 5256): `* SORT` in the criteria's order, or ESEARCH for RETURN (ESORT,
/// RFC 5267: MIN and MAX the first and last in that order, ALL in that order).
fn sort(
    sel: &mut Selected,
    tag: &str,
    args: &SortArgs<'_>,
    out: &mut Output,
) -> Result<(), Failure> {
    check_charset(Some(&args.charset))?;
    let uids = sel.search(&args.keys)?;
    let facts = sel.sort_facts(&uids)?;
    let mut msgs: Vec<sort::Msg<'_>> = facts.iter().map(|f| f.msg(args.uid)).collect();
    sort::sort(&mut msgs, &args.criteria);
    let ids: Vec<u32> = msgs.iter().map(|m| m.id).collect();
    // RFC 7162 §3.1.5: by MODSEQ, the highest modseq of what was found.
    let highest = if args.keys.iter().any(SearchKey::uses_modseq) {
        facts.iter().map(|f| sel.modseq_of(f.uid)).max()
    } else {
        None
    };
    let Some(ret) = &args.returns else {
        out.put(number_list("SORT", &ids, highest).as_bytes());
        return Ok(());
    };
    let all = ret.is_empty() || ret.contains(&SearchReturn::All);
    let mut line = format!(
        "* ESEARCH (TAG \"{tag}\"){}",
        if args.uid { " UID" } else { "" }
    );
    if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
        if ret.contains(&SearchReturn::Min) {
            line.push_str(&format!(" MIN {first}"));
        }
        if ret.contains(&SearchReturn::Max) {
            line.push_str(&format!(" MAX {last}"));
        }
        if all {
            line.push_str(&format!(" ALL {}", in_order_set(&ids)));
        }
    }
    if ret.contains(&SearchReturn::Count) {
        line.push_str(&format!(" COUNT {}", ids.len()));
    }
    if let Some(h) = highest {
        line.push_str(&format!(" MODSEQ {h}"));
    }
    line.push_str("\r\n");
    out.put(line.as_bytes());
    Ok(())
}

/// A sequence set in the given order: runs only where numbers follow one another upwards.
fn in_order_set(ids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if ids[i] == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{}", ids[i]));
        }
        i += 1;
    }
    out
}

/// THREAD (RFC 5256): `* THREAD (…)(…)`.
fn thread(sel: &mut Selected, args: &ThreadArgs<'_>, out: &mut Output) -> Result<(), Failure> {
    check_charset(Some(&args.charset))?;
    let uids = sel.search(&args.keys)?;
    let facts = sel.sort_facts(&uids)?;
    let msgs: Vec<sort::Msg<'_>> = facts.iter().map(|f| f.msg(args.uid)).collect();
    let threads = match args.algorithm {
        ThreadAlgorithm::OrderedSubject => sort::ordered_subject(&msgs),
        ThreadAlgorithm::References => sort::references(&msgs),
    };
    let body = sort::render(&threads);
    let line = if body.is_empty() {
        "* THREAD\r\n".to_string()
    } else {
        format!("* THREAD {body}\r\n")
    };
    out.put(line.as_bytes());
    Ok(())
}

/// SEARCH: the untagged SEARCH, or ESEARCH for RETURN (RFC 4731), and SAVE (RFC 5182).
/// In IMAP4rev2 (`rev2`) the answer is always ESEARCH, ALL without RETURN (RFC 9051 §6.4.4).
fn search(
    sel: &mut Selected,
    tag: &str,
    args: &SearchArgs<'_>,
    rev2: bool,
    out: &mut Output,
) -> Result<(), Failure> {
    check_charset(args.charset.as_deref())?;
    let uids = sel.search(&args.keys)?;
    // RFC 7162 §3.1.5: a search by MODSEQ says the highest modseq of what it found.
    let highest = if args.keys.iter().any(SearchKey::uses_modseq) {
        uids.iter().map(|&u| sel.modseq_of(u)).max()
    } else {
        None
    };
    let nums: Vec<usize> = if args.uid {
        uids.iter().map(|&u| u as usize).collect()
    } else {
        sel.seqs(&uids)
    };
    let all = vec![SearchReturn::All];
    let returns = match &args.returns {
        None if rev2 => Some(&all),
        r => r.as_ref(),
    };
    let Some(ret) = returns else {
        out.put(number_list("SEARCH", &nums, highest).as_bytes());
        return Ok(());
    };
    let ret: Vec<SearchReturn> = if ret.is_empty() {
        vec![SearchReturn::All]
    } else {
        ret.clone()
    };
    let has = |r: SearchReturn| ret.contains(&r);
    if has(SearchReturn::Save) {
        // RFC 5182 §2.4: with MIN/MAX (and no ALL/COUNT), only those are saved.
        sel.saved = if (has(SearchReturn::Min) || has(SearchReturn::Max))
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
            return Ok(());
        }
    }
    let mut line = format!(
        "* ESEARCH (TAG \"{tag}\"){}",
        if args.uid { " UID" } else { "" }
    );
    if let (Some(first), Some(last)) = (nums.first(), nums.last()) {
        if has(SearchReturn::Min) {
            line.push_str(&format!(" MIN {first}"));
        }
        if has(SearchReturn::Max) {
            line.push_str(&format!(" MAX {last}"));
        }
        if has(SearchReturn::All) {
            line.push_str(&format!(" ALL {}", compress(&nums)));
        }
    }
    if has(SearchReturn::Count) {
        line.push_str(&format!(" COUNT {}", nums.len()));
    }
    if let Some(h) = highest {
        line.push_str(&format!(" MODSEQ {h}"));
    }
    line.push_str("\r\n");
    out.put(line.as_bytes());
    Ok(())
}

/// A `\Name` flag that is none of RFC 3501's system flags (the grammar's flag-extension,
/// reserved for future RFCs): nothing can store it.
pub(super) fn unknown_system_flag<'a>(flags: &[Flag<'a>]) -> Option<&'a str> {
    flags.iter().find_map(|f| match f {
        Flag::Extension(e) => Some(*e),
        _ => None,
    })
}

/// `* SEARCH 2 5 9 (MODSEQ n)` / `* SORT …`: the plain answer of SEARCH and SORT.
fn number_list(name: &str, nums: &[impl std::fmt::Display], highest: Option<u64>) -> String {
    let mut line = format!("* {name}");
    for n in nums {
        line.push_str(&format!(" {n}"));
    }
    if let Some(h) = highest {
        line.push_str(&format!(" (MODSEQ {h})"));
    }
    line.push_str("\r\n");
    line
}

/// `1,2,3,5,7:9` from ascending numbers ([`response::number_set`]).
pub(super) fn compress(nums: &[usize]) -> String {
    response::number_set(nums.iter().map(|&n| n as u64))
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
        FetchAttr::Preview => FetchAttr::Preview,
        FetchAttr::SaveDate => FetchAttr::SaveDate,
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
