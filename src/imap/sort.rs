//! SORT and THREAD (RFC 5256, with DISPLAYFROM/DISPLAYTO of RFC 5957), without I/O: the
//! header facts each message is sorted on ([`SortFields`], computed once per message and
//! cached in [`super::meta`]), the ordering of a search result by sort criteria, and the
//! ORDEREDSUBJECT and REFERENCES threading algorithms with their `(1 2 (3)(4))` rendering.
//!
//! Strings compare by the `i;ascii-casemap` collation (RFC 5256 §2.3): ASCII letters
//! uppercased, octet by octet; the keys are stored uppercased. Ties go to the lower message
//! number, as do equal sent dates in threads.

use super::command::{SortCriterion, SortKey};
use crate::mail::decode::decode_header;
use crate::mail::envelope::{parse_addresses, raw_fields};
use crate::mail::search::parse_date;
use crate::mail::subject::base_subject;
use std::cmp::Ordering;
use std::collections::HashMap;

/// What SORT and THREAD need of one message's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortFields {
    /// The Date field as Unix time (UTC); None when missing or not a date.
    pub date: Option<u64>,
    /// The base subject, uppercased (SORT SUBJECT, THREAD's subject grouping).
    pub subject: Vec<u8>,
    /// The subject showed a reply or forward (`Re:`, `Fwd:`, `(fwd)`…).
    pub reply: bool,
    /// addr-mailbox (the local part) of the first From/To/Cc address, uppercased.
    pub from: Vec<u8>,
    pub to: Vec<u8>,
    pub cc: Vec<u8>,
    /// Display name of the first From/To address, else its address (RFC 5957), uppercased.
    pub display_from: Vec<u8>,
    pub display_to: Vec<u8>,
    /// Message-ID, without the angle brackets.
    pub message_id: Option<Vec<u8>>,
    /// The References message ids in order, else the first of In-Reply-To.
    pub references: Vec<Vec<u8>>,
}

impl SortFields {
    /// The facts of a header block.
    pub fn from_header(block: &[u8]) -> SortFields {
        let mut f = SortFields::default();
        let mut references: Option<Vec<Vec<u8>>> = None;
        let mut in_reply_to: Option<Vec<Vec<u8>>> = None;
        let mut seen = [false; 7];
        for (name, value) in raw_fields(block) {
            let first = |i: usize, seen: &mut [bool; 7]| !std::mem::replace(&mut seen[i], true);
            if name.eq_ignore_ascii_case(b"date") && first(0, &mut seen) {
                f.date = parse_date(value).map(|(t, _)| t);
            } else if name.eq_ignore_ascii_case(b"subject") && first(1, &mut seen) {
                let (s, reply) = base_subject(value);
                f.subject = s.into_bytes().to_ascii_uppercase();
                f.reply = reply;
            } else if name.eq_ignore_ascii_case(b"from") && first(2, &mut seen) {
                (f.from, f.display_from) = first_address(value);
            } else if name.eq_ignore_ascii_case(b"to") && first(3, &mut seen) {
                (f.to, f.display_to) = first_address(value);
            } else if name.eq_ignore_ascii_case(b"cc") && first(4, &mut seen) {
                f.cc = first_address(value).0;
            } else if name.eq_ignore_ascii_case(b"message-id") && first(5, &mut seen) {
                f.message_id = message_ids(value).into_iter().next();
            } else if name.eq_ignore_ascii_case(b"references") && references.is_none() {
                references = Some(message_ids(value));
            } else if name.eq_ignore_ascii_case(b"in-reply-to") && first(6, &mut seen) {
                in_reply_to = Some(message_ids(value));
            }
        }
        f.references = match references {
            Some(mut r) if !r.is_empty() => {
                // The nearest ancestors are last; a longer chain is someone's trick, and each
                // id costs THREAD a walk up the tree.
                r.drain(..r.len().saturating_sub(MAX_REFERENCES));
                r
            }
            _ => in_reply_to
                .and_then(|v| v.into_iter().next())
                .into_iter()
                .collect(),
        };
        f
    }

    /// Bytes this keeps (for the cache's budget).
    pub fn weight(&self) -> usize {
        std::mem::size_of::<SortFields>()
            + self.subject.len()
            + self.from.len()
            + self.to.len()
            + self.cc.len()
            + self.display_from.len()
            + self.display_to.len()
            + self.message_id.as_ref().map_or(0, Vec::len)
            + self.references.iter().map(|r| r.len() + 24).sum::<usize>()
    }
}

/// (addr-mailbox, display name or address) of the first address of an address field.
fn first_address(value: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let Some(a) = parse_addresses(value)
        .into_iter()
        .find(|a| a.mailbox.is_some())
    else {
        return (Vec::new(), Vec::new());
    };
    let mailbox = a.mailbox.clone().unwrap_or_default();
    let name = a
        .name
        .as_deref()
        .map(decode_header)
        .filter(|n| !n.trim().is_empty());
    let display = match name {
        Some(n) => n.into_bytes(),
        None => {
            let mut s = mailbox.clone();
            if let Some(d) = &a.domain {
                s.push(b'@');
                s.extend_from_slice(d);
            }
            s
        }
    };
    (mailbox.to_ascii_uppercase(), display.to_ascii_uppercase())
}

/// The `<…>` message ids of a field, brackets and white space removed.
fn message_ids(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = memchr::memchr(b'<', rest) {
        let Some(close) = memchr::memchr(b'>', &rest[open..]) else {
            break;
        };
        let id: Vec<u8> = rest[open + 1..open + close]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if !id.is_empty() {
            out.push(id);
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// The References ids THREAD follows per message: the last ones, its nearest ancestors
/// (mail clients trim the list long before this).
pub const MAX_REFERENCES: usize = 100;

/// A message of a search result with what SORT and THREAD need, as the mailbox gives it.
#[derive(Debug, Clone)]
pub struct Fact {
    pub uid: u32,
    /// Its message number in the session's view.
    pub seq: u32,
    /// INTERNALDATE, Unix time.
    pub arrival: u64,
    /// RFC822.SIZE.
    pub size: u64,
    pub fields: std::sync::Arc<SortFields>,
}

impl Fact {
    /// As SORT and THREAD see it, named by UID or by message number.
    pub fn msg(&self, by_uid: bool) -> Msg<'_> {
        Msg {
            id: if by_uid { self.uid } else { self.seq },
            seq: self.seq,
            arrival: self.arrival,
            size: self.size,
            fields: &self.fields,
        }
    }
}

/// One message of a search result, as SORT and THREAD see it.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// What the answer names it by (UID for UID SORT/THREAD, else the message number).
    pub id: u32,
    /// Its message number (ties).
    pub seq: u32,
    /// INTERNALDATE, Unix time.
    pub arrival: u64,
    /// RFC822.SIZE.
    pub size: u64,
    pub fields: &'a SortFields,
}

impl Msg<'_> {
    /// The sent date: the Date field, else INTERNALDATE (RFC 5256 §3, DATE).
    fn sent(&self) -> u64 {
        self.fields.date.unwrap_or(self.arrival)
    }
}

fn by_key(a: &Msg<'_>, b: &Msg<'_>, key: SortKey) -> Ordering {
    let (x, y) = (a.fields, b.fields);
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Cc => x.cc.cmp(&y.cc),
        SortKey::Date => a.sent().cmp(&b.sent()),
        SortKey::From => x.from.cmp(&y.from),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => x.subject.cmp(&y.subject),
        SortKey::To => x.to.cmp(&y.to),
        SortKey::DisplayFrom => x.display_from.cmp(&y.display_from),
        SortKey::DisplayTo => x.display_to.cmp(&y.display_to),
    }
}

/// Orders `msgs` by `criteria` (each maybe REVERSE), then by message number.
pub fn sort(msgs: &mut [Msg<'_>], criteria: &[SortCriterion]) {
    // One numeric key (the common DATE / ARRIVAL / SIZE): sorted on a flat copy of it.
    if let [c] = criteria
        && matches!(c.key, SortKey::Arrival | SortKey::Date | SortKey::Size)
    {
        let key = |m: &Msg<'_>| match c.key {
            SortKey::Arrival => m.arrival,
            SortKey::Date => m.sent(),
            _ => m.size,
        };
        let mut keyed: Vec<(u64, u32, usize)> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| (key(m), m.seq, i))
            .collect();
        if c.reverse {
            keyed.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        } else {
            keyed.sort_unstable();
        }
        let sorted: Vec<Msg<'_>> = keyed.iter().map(|&(_, _, i)| msgs[i]).collect();
        msgs.copy_from_slice(&sorted);
        return;
    }
    msgs.sort_by(|a, b| {
        for c in criteria {
            let o = by_key(a, b, c.key);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.seq.cmp(&b.seq)
    });
}

/// A thread: a message (None: a placeholder for one not in the result) and its replies.
/// A thread can be as deep as a mailbox is long, so nothing here recurses over its depth:
/// not building, rendering or dropping it.
#[derive(Debug, PartialEq, Eq)]
pub struct Thread {
    pub id: Option<u32>,
    pub children: Vec<Thread>,
}

impl Drop for Thread {
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.children);
        while let Some(mut t) = stack.pop() {
            stack.append(&mut t.children);
        }
    }
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 §3): messages grouped by base subject, each group in
/// sent-date order with the first as the parent of the rest, groups ordered by their first
/// message's sent date.
pub fn ordered_subject(msgs: &[Msg<'_>]) -> Vec<Thread> {
    let mut order: Vec<&Msg<'_>> = msgs.iter().collect();
    order.sort_by(|a, b| {
        a.fields
            .subject
            .cmp(&b.fields.subject)
            .then(a.sent().cmp(&b.sent()))
            .then(a.seq.cmp(&b.seq))
    });
    let mut groups: Vec<Vec<&Msg<'_>>> = Vec::new();
    for m in order {
        match groups.last_mut() {
            Some(g) if g[0].fields.subject == m.fields.subject => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    groups.sort_by(|a, b| a[0].sent().cmp(&b[0].sent()).then(a[0].seq.cmp(&b[0].seq)));
    groups
        .into_iter()
        .map(|g| Thread {
            id: Some(g[0].id),
            children: g[1..]
                .iter()
                .map(|m| Thread {
                    id: Some(m.id),
                    children: Vec::new(),
                })
                .collect(),
        })
        .collect()
}

/// A container of the REFERENCES algorithm: a message of the result (index into `msgs`) or a
/// placeholder for one only referred to.
#[derive(Debug, Default)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Arena<'m, 'a> {
    nodes: Vec<Node>,
    msgs: &'m [Msg<'a>],
}

impl Arena<'_, '_> {
    fn new_node(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node {
            msg,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: usize, mut b: usize) -> bool {
        // Without children `a` is no one's ancestor: a reply to the end of a long chain is
        // not a walk up the whole chain.
        if self.nodes[a].children.is_empty() {
            return a == b;
        }
        loop {
            if a == b {
                return true;
            }
            match self.nodes[b].parent {
                Some(p) => b = p,
                None => return false,
            }
        }
    }

    fn unlink(&mut self, c: usize) {
        if let Some(p) = self.nodes[c].parent.take() {
            self.nodes[p].children.retain(|&x| x != c);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    fn msg(&self, n: usize) -> Option<&Msg<'_>> {
        self.nodes[n].msg.map(|i| &self.msgs[i])
    }

    /// The sent date and number a node sorts by: its message's, or (a placeholder) its first
    /// child's.
    fn date_key(&self, n: usize) -> (u64, u32) {
        match self.msg(n) {
            Some(m) => (m.sent(), m.seq),
            None => self.nodes[n]
                .children
                .first()
                .map_or((0, 0), |&c| self.date_key(c)),
        }
    }

    /// `n` and everything under it, each node before its children.
    fn preorder(&self, n: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![n];
        while let Some(k) = stack.pop() {
            out.push(k);
            stack.extend(self.nodes[k].children.iter().rev());
        }
        out
    }

    /// Every set of siblings under `n` by sent date (children first: a placeholder sorts by
    /// its first child).
    fn sort_children(&mut self, n: usize) {
        for k in self.preorder(n).into_iter().rev() {
            let mut kids = std::mem::take(&mut self.nodes[k].children);
            kids.sort_by_key(|&c| self.date_key(c));
            self.nodes[k].children = kids;
        }
    }

    /// The subject a root is grouped by: its message's, or its first child's.
    fn subject(&self, n: usize) -> Option<(&[u8], bool)> {
        match self.msg(n) {
            Some(m) => Some((&m.fields.subject, m.fields.reply)),
            None => self.nodes[n]
                .children
                .first()
                .and_then(|&c| self.msg(c))
                .map(|m| (m.fields.subject.as_slice(), m.fields.reply)),
        }
    }

    fn to_thread(&self, n: usize) -> Thread {
        // Built from the leaves up: each node's children are done before it.
        let mut done: HashMap<usize, Thread> = HashMap::new();
        for k in self.preorder(n).into_iter().rev() {
            let children = self.nodes[k]
                .children
                .iter()
                .filter_map(|c| done.remove(c))
                .collect();
            let id = self.msg(k).map(|m| m.id);
            done.insert(k, Thread { id, children });
        }
        done.remove(&n).unwrap_or(Thread {
            id: None,
            children: Vec::new(),
        })
    }
}

/// THREAD=REFERENCES (RFC 5256 §3, the algorithm of its §2.2 after Jamie Zawinski's).
pub fn references(msgs: &[Msg<'_>]) -> Vec<Thread> {
    let mut a = Arena {
        nodes: Vec::with_capacity(msgs.len() * 2),
        msgs,
    };
    let mut by_id: HashMap<&[u8], usize> = HashMap::new();
    // (1) Containers by Message-ID, linked along References.
    for (i, m) in msgs.iter().enumerate() {
        let own = match m.fields.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                // A placeholder for it: now it has its message.
                Some(&n) if a.nodes[n].msg.is_none() => {
                    a.nodes[n].msg = Some(i);
                    n
                }
                // A second message with the same id is a message of its own.
                Some(_) => a.new_node(Some(i)),
                None => {
                    let n = a.new_node(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => a.new_node(Some(i)),
        };
        let mut prev: Option<usize> = None;
        for r in &m.fields.references {
            let n = match by_id.get(r.as_slice()) {
                Some(&n) => n,
                None => {
                    let n = a.new_node(None);
                    by_id.insert(r, n);
                    n
                }
            };
            if let Some(p) = prev
                && a.nodes[n].parent.is_none()
                && !a.is_ancestor(n, p)
            {
                a.link(p, n);
            }
            prev = Some(n);
        }
        // (1B) The message's parent is its last reference, whatever was guessed before.
        match prev {
            Some(p) if !a.is_ancestor(own, p) => a.link(p, own),
            Some(_) => {}
            None => a.unlink(own),
        }
    }
    // (2) The root set.
    let roots: Vec<usize> = (0..a.nodes.len())
        .filter(|&n| a.nodes[n].parent.is_none())
        .collect();
    // (3) Placeholders pruned: without children gone, with children replaced by them (at the
    // root only when there is just one).
    // Leaves first; each node's place among its parent's children becomes what is left of it.
    let mut roots = {
        let mut kept: Vec<Vec<usize>> = vec![Vec::new(); a.nodes.len()];
        let mut out = Vec::new();
        for &r in &roots {
            for k in a.preorder(r).into_iter().rev() {
                let mut grand = Vec::new();
                for c in std::mem::take(&mut a.nodes[k].children) {
                    grand.append(&mut kept[c]);
                }
                let at_root = k == r;
                let keep = if a.nodes[k].msg.is_some() {
                    a.nodes[k].children = grand;
                    vec![k]
                } else if grand.is_empty() {
                    Vec::new()
                } else if !at_root || grand.len() == 1 {
                    grand
                } else {
                    a.nodes[k].children = grand;
                    vec![k]
                };
                if at_root {
                    out.extend(keep);
                } else {
                    kept[k] = keep;
                }
            }
        }
        out
    };
    for &r in &roots {
        a.nodes[r].parent = None;
        for k in a.preorder(r) {
            for c in a.nodes[k].children.clone() {
                a.nodes[c].parent = Some(k);
            }
        }
    }
    // (4) Roots by sent date (placeholders by their first child's, children sorted first).
    for &r in &roots {
        a.sort_children(r);
    }
    roots.sort_by_key(|&r| a.date_key(r));
    // (5) Roots with the same base subject merged.
    let mut table: HashMap<Vec<u8>, usize> = HashMap::new();
    for &r in &roots {
        let Some((subj, reply)) = a.subject(r) else {
            continue;
        };
        if subj.is_empty() {
            continue;
        }
        match table.get(subj) {
            None => {
                table.insert(subj.to_vec(), r);
            }
            Some(&t) => {
                let t_dummy = a.nodes[t].msg.is_none();
                let t_reply = a.subject(t).is_some_and(|(_, rp)| rp);
                let r_dummy = a.nodes[r].msg.is_none();
                if (r_dummy && !t_dummy) || (t_reply && !reply) {
                    table.insert(subj.to_vec(), r);
                }
            }
        }
    }
    // A root whose place a new placeholder took (it is now that placeholder's child).
    let mut replaced: HashMap<usize, usize> = HashMap::new();
    let mut out_roots: Vec<usize> = Vec::new();
    for &r in &roots {
        if let Some(&d) = replaced.get(&r) {
            out_roots.push(d);
            continue;
        }
        let Some((subj, reply)) = a.subject(r).map(|(s, rp)| (s.to_vec(), rp)) else {
            out_roots.push(r);
            continue;
        };
        let t = match table.get(&subj) {
            Some(&t) if !subj.is_empty() && t != r => t,
            _ => {
                out_roots.push(r);
                continue;
            }
        };
        let (t_dummy, r_dummy) = (a.nodes[t].msg.is_none(), a.nodes[r].msg.is_none());
        let t_reply = a.subject(t).is_some_and(|(_, rp)| rp);
        if t_dummy && r_dummy {
            // Both placeholders: the children of both become siblings.
            for c in std::mem::take(&mut a.nodes[r].children) {
                a.nodes[c].parent = None;
                a.link(t, c);
            }
        } else if t_dummy || (!r_dummy && reply && !t_reply) {
            a.link(t, r);
        } else if r_dummy {
            // The message in the table joins this placeholder, beside its replies; the
            // placeholder takes the message's place among the roots.
            match out_roots.iter().position(|&x| x == t) {
                Some(pos) => out_roots[pos] = r,
                None => {
                    replaced.insert(t, r);
                }
            }
            a.link(r, t);
            table.insert(subj, r);
        } else {
            // Neither is the original of the other: both under a new placeholder, which
            // takes the table's container's place.
            let d = a.new_node(None);
            match out_roots.iter().position(|&x| x == t) {
                Some(pos) => out_roots[pos] = d,
                None => {
                    replaced.insert(t, d);
                }
            }
            a.link(d, t);
            a.link(d, r);
            table.insert(subj, d);
        }
    }
    // (6) Every set of siblings by sent date, the threads too.
    for &r in &out_roots {
        a.sort_children(r);
    }
    out_roots.sort_by_key(|&r| a.date_key(r));
    out_roots.iter().map(|&r| a.to_thread(r)).collect()
}

/// The THREAD response's body: `(1 2 (3)(4))(5)`.
pub fn render(threads: &[Thread]) -> String {
    enum Step<'t> {
        Members(&'t Thread),
        Open,
        Close,
    }
    let mut out = String::new();
    let mut stack: Vec<Step<'_>> = Vec::new();
    for t in threads {
        out.push('(');
        stack.push(Step::Close);
        stack.push(Step::Members(t));
        while let Some(step) = stack.pop() {
            let t = match step {
                Step::Open => {
                    out.push('(');
                    continue;
                }
                Step::Close => {
                    out.push(')');
                    continue;
                }
                Step::Members(t) => t,
            };
            if let Some(id) = t.id {
                out.push_str(&id.to_string());
                if !t.children.is_empty() {
                    out.push(' ');
                }
            }
            match t.children.as_slice() {
                [] => {}
                [one] => stack.push(Step::Members(one)),
                many => {
                    for c in many.iter().rev() {
                        stack.push(Step::Close);
                        stack.push(Step::Members(c));
                        stack.push(Step::Open);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(h: &str) -> SortFields {
        SortFields::from_header(h.replace('\n', "\r\n").as_bytes())
    }

    #[test]
    fn header_facts() {
        let f = fields(
            "From: =?utf-8?Q?J=C3=B6rg?= <joerg@example.org>\nTo: bob@example.com, x@y\n\
             Cc: Carol <carol@c.example>\nSubject: Re: [list] Plans\nDate: Tue, 1 Dec 2026 10:00:00 +0100\n\
             Message-ID: <a1@ex>\nReferences: <r1@ex>\n <r2@ex>\nIn-Reply-To: <r2@ex>\n\n",
        );
        assert_eq!(f.from, b"JOERG");
        assert_eq!(f.display_from, "JöRG".as_bytes());
        assert_eq!(f.to, b"BOB");
        assert_eq!(f.display_to, b"BOB@EXAMPLE.COM");
        assert_eq!(f.cc, b"CAROL");
        assert_eq!(f.subject, b"PLANS");
        assert!(f.reply);
        assert_eq!(f.date, Some(1_796_115_600));
        assert_eq!(f.message_id.as_deref(), Some(&b"a1@ex"[..]));
        assert_eq!(f.references, [b"r1@ex".to_vec(), b"r2@ex".to_vec()]);
        let f = fields("In-Reply-To: <p@ex> <q@ex>\nSubject: x\n\n");
        assert_eq!(f.references, [b"p@ex".to_vec()]);
        assert_eq!(f.date, None);
    }

    fn msgs(fs: &[SortFields]) -> Vec<Msg<'_>> {
        fs.iter()
            .enumerate()
            .map(|(i, f)| Msg {
                id: i as u32 + 1,
                seq: i as u32 + 1,
                arrival: 1_000_000 - i as u64,
                size: (i as u64 * 7) % 5,
                fields: f,
            })
            .collect()
    }

    #[test]
    fn sort_by_criteria_with_ties_by_number() {
        let fs = [
            fields("Subject: b\nFrom: z@x\nDate: Tue, 1 Dec 2026 10:00:00 +0000\n\n"),
            fields("Subject: Re: a\nFrom: y@x\nDate: Tue, 1 Dec 2026 09:00:00 +0000\n\n"),
            fields("Subject: A\nFrom: y@x\n\n"),
        ];
        let crit = |key, reverse| SortCriterion { key, reverse };
        let ids = |m: &[Msg<'_>]| m.iter().map(|m| m.id).collect::<Vec<_>>();
        let mut m = msgs(&fs);
        sort(&mut m, &[crit(SortKey::Subject, false)]);
        assert_eq!(ids(&m), [2, 3, 1], "base subjects A, A, B; tie by number");
        sort(
            &mut m,
            &[crit(SortKey::From, false), crit(SortKey::Subject, true)],
        );
        assert_eq!(ids(&m), [2, 3, 1]);
        sort(&mut m, &[crit(SortKey::Arrival, false)]);
        assert_eq!(ids(&m), [3, 2, 1]);
        // No Date: INTERNALDATE (here 999,998, long before 2026).
        sort(&mut m, &[crit(SortKey::Date, true)]);
        assert_eq!(ids(&m), [1, 2, 3]);
    }

    #[test]
    fn ordered_subject_threads() {
        let fs = [
            fields("Subject: one\nDate: Tue, 1 Dec 2026 10:00:00 +0000\n\n"),
            fields("Subject: two\nDate: Tue, 1 Dec 2026 09:00:00 +0000\n\n"),
            fields("Subject: Re: one\nDate: Tue, 1 Dec 2026 11:00:00 +0000\n\n"),
            fields("Subject: Re: one\nDate: Tue, 1 Dec 2026 12:00:00 +0000\n\n"),
        ];
        assert_eq!(render(&ordered_subject(&msgs(&fs))), "(2)(1 (3)(4))");
    }

    #[test]
    fn references_threads() {
        let fs = [
            fields("Message-ID: <1@x>\nSubject: start\nDate: Tue, 1 Dec 2026 10:00:00 +0000\n\n"),
            fields(
                "Message-ID: <2@x>\nReferences: <1@x>\nSubject: Re: start\nDate: Tue, 1 Dec 2026 11:00:00 +0000\n\n",
            ),
            fields(
                "Message-ID: <3@x>\nReferences: <1@x> <2@x>\nSubject: Re: start\nDate: Tue, 1 Dec 2026 12:00:00 +0000\n\n",
            ),
            fields(
                "Message-ID: <4@x>\nReferences: <1@x>\nSubject: Re: start\nDate: Tue, 1 Dec 2026 11:30:00 +0000\n\n",
            ),
            // A reply to a message not here: the placeholder is pruned.
            fields(
                "Message-ID: <5@x>\nReferences: <gone@x>\nSubject: other\nDate: Tue, 1 Dec 2026 09:00:00 +0000\n\n",
            ),
            // Same base subject as 5, no references: merged under 5 as a reply.
            fields(
                "Message-ID: <6@x>\nSubject: Re: other\nDate: Tue, 1 Dec 2026 13:00:00 +0000\n\n",
            ),
            // Loops and self-references are ignored.
            fields(
                "Message-ID: <7@x>\nReferences: <7@x> <8@x>\nSubject: loop\nDate: Tue, 1 Dec 2026 14:00:00 +0000\n\n",
            ),
            fields(
                "Message-ID: <8@x>\nReferences: <7@x>\nSubject: Re: loop\nDate: Tue, 1 Dec 2026 15:00:00 +0000\n\n",
            ),
        ];
        let t = references(&msgs(&fs));
        assert_eq!(render(&t), "(5 6)(1 (2 3)(4))(7 8)");
    }

    #[test]
    fn two_originals_with_one_subject_go_under_a_placeholder() {
        let fs = [
            fields("Message-ID: <1@x>\nSubject: same\nDate: Tue, 1 Dec 2026 10:00:00 +0000\n\n"),
            fields("Message-ID: <2@x>\nSubject: same\nDate: Tue, 1 Dec 2026 11:00:00 +0000\n\n"),
            fields("Message-ID: <3@x>\nSubject: else\nDate: Tue, 1 Dec 2026 10:30:00 +0000\n\n"),
        ];
        assert_eq!(render(&references(&msgs(&fs))), "((1)(2))(3)");
    }

    #[test]
    fn a_chain_as_long_as_the_mailbox_threads_without_recursion() {
        let n = 50_000;
        let fs: Vec<SortFields> = (1..=n)
            .map(|i| {
                fields(&format!(
                    "Message-ID: <{i}@x>\nIn-Reply-To: <{}@x>\nSubject: Re: chain\n\
                     Date: Tue, 1 Dec 2026 10:00:00 +0000\n\n",
                    i - 1
                ))
            })
            .collect();
        let t = references(&msgs(&fs));
        let text = render(&t);
        assert!(text.starts_with("(1 2 3 4 "), "{}", &text[..40]);
        assert!(text.ends_with(&format!(" {} {n})", n - 1)));
        assert_eq!(text.matches('(').count(), 1);
        drop(t);
    }

    #[test]
    fn a_huge_references_field_keeps_its_nearest_ancestors() {
        let refs: String = (0..40_000).map(|i| format!("<r{i}@x> ")).collect();
        let f = fields(&format!(
            "Message-ID: <m@x>\nReferences: {refs}\nSubject: x\n\n"
        ));
        assert_eq!(f.references.len(), MAX_REFERENCES);
        assert_eq!(f.references.last().unwrap(), b"r39999@x");
        let t = references(&msgs(&[f]));
        assert_eq!(render(&t), "(1)");
    }
}
