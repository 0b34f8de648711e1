//! IMAP command values: what [`parser`](super::parser) produces from the wire.
//!
//! This module owns the typed form of every client command of RFC 3501 / RFC 9051 plus the
//! extensions the server advertises (LITERAL+, SASL-IR, ID, ENABLE, NAMESPACE, UNSELECT,
//! MOVE, IDLE, UIDPLUS, CONDSTORE, ESEARCH, SEARCHRES, LIST-EXTENDED, LIST-STATUS,
//! SPECIAL-USE, CREATE-SPECIAL-USE, MULTIAPPEND, BINARY), and the small helpers that go
//! with the values (sequence-set resolution, INBOX matching, date arithmetic).
//!
//! Values borrow the read buffer wherever the wire form can be used as is: atoms are
//! `&'a str` (always ASCII), strings are `Cow<'a, [u8]>` (owned only when a quoted string
//! had escapes). Mailbox names and search strings stay raw bytes: mailbox names are modified
//! UTF-7 on the wire ([`Mailbox::decode`]), search strings are in the command's CHARSET.

use std::borrow::Cow;
use std::fmt;
use std::ops::RangeInclusive;

use crate::utf7::{self, Utf7Error};

/// One tagged client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// The client's tag (ASCII, never empty, never contains `+`).
    pub tag: &'a str,
    /// The command and its arguments.
    pub kind: CommandKind<'a>,
}

/// A command and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind<'a> {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// `AUTHENTICATE mech [initial-response]` (SASL-IR). The response is the undecoded
    /// base64 text; `=` (an empty initial response) is `Some(b"")`.
    Authenticate {
        mechanism: &'a str,
        initial_response: Option<&'a [u8]>,
    },
    Login {
        username: Cow<'a, [u8]>,
        password: Cow<'a, [u8]>,
    },
    /// `ID NIL` is `Id(None)`; otherwise the field/value pairs (value `NIL` is `None`).
    Id(Option<Vec<IdParam<'a>>>),
    /// `ENABLE cap...` (capability names as sent).
    Enable(Vec<&'a str>),
    /// `COMPRESS mechanism` (RFC 4978), the mechanism as sent.
    Compress(&'a str),
    Sort(SortArgs<'a>),
    Thread(ThreadArgs<'a>),
    Namespace,
    Select {
        mailbox: Mailbox<'a>,
        params: SelectParams,
    },
    Examine {
        mailbox: Mailbox<'a>,
        params: SelectParams,
    },
    /// `CREATE mailbox [(USE (\Drafts ...))]`.
    Create {
        mailbox: Mailbox<'a>,
        special_use: Vec<SpecialUse<'a>>,
    },
    Delete {
        mailbox: Mailbox<'a>,
    },
    Rename {
        from: Mailbox<'a>,
        to: Mailbox<'a>,
    },
    Subscribe {
        mailbox: Mailbox<'a>,
    },
    Unsubscribe {
        mailbox: Mailbox<'a>,
    },
    List(ListArgs<'a>),
    Lsub {
        reference: Mailbox<'a>,
        pattern: Cow<'a, [u8]>,
    },
    Status {
        mailbox: Mailbox<'a>,
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox 1*([flags] [date-time] literal)`; more than one message is MULTIAPPEND.
    /// Only produced by [`parse_command`](super::parser::parse_command) on a whole buffer;
    /// a server driving a [`Framer`](super::parser::Framer) streams APPEND instead.
    Append {
        mailbox: Mailbox<'a>,
        messages: Vec<AppendMessage<'a>>,
    },
    Check,
    Close,
    Unselect,
    Expunge,
    /// `UID EXPUNGE set` (UIDPLUS).
    UidExpunge(SequenceArg),
    Search(SearchArgs<'a>),
    Fetch(FetchArgs<'a>),
    Store(StoreArgs<'a>),
    Copy {
        uid: bool,
        set: SequenceArg,
        mailbox: Mailbox<'a>,
    },
    Move {
        uid: bool,
        set: SequenceArg,
        mailbox: Mailbox<'a>,
    },
    /// `IDLE`; the server answers `+ idling` and then reads lines with
    /// [`parse_done_line`](super::parser::parse_done_line).
    Idle,
}

impl CommandKind<'_> {
    /// Whether the command changes mail or folders (what a read-only session may not do).
    /// FETCH setting `\Seen` is not here: a read-only session's mailbox is opened read-only.
    pub fn changes(&self) -> bool {
        use CommandKind as K;
        matches!(
            self,
            K::Create { .. }
                | K::Delete { .. }
                | K::Rename { .. }
                | K::Subscribe { .. }
                | K::Unsubscribe { .. }
                | K::Append { .. }
                | K::Expunge
                | K::UidExpunge(_)
                | K::Store(_)
                | K::Copy { .. }
                | K::Move { .. }
        )
    }

    /// The command's name as the RFC spells it (`"UID FETCH"` for UID forms).
    pub fn name(&self) -> &'static str {
        use CommandKind as K;
        match self {
            K::Capability => "CAPABILITY",
            K::Noop => "NOOP",
            K::Logout => "LOGOUT",
            K::StartTls => "STARTTLS",
            K::Authenticate { .. } => "AUTHENTICATE",
            K::Login { .. } => "LOGIN",
            K::Id(_) => "ID",
            K::Enable(_) => "ENABLE",
            K::Compress(_) => "COMPRESS",
            K::Sort(a) if a.uid => "UID SORT",
            K::Sort(_) => "SORT",
            K::Thread(a) if a.uid => "UID THREAD",
            K::Thread(_) => "THREAD",
            K::Namespace => "NAMESPACE",
            K::Select { .. } => "SELECT",
            K::Examine { .. } => "EXAMINE",
            K::Create { .. } => "CREATE",
            K::Delete { .. } => "DELETE",
            K::Rename { .. } => "RENAME",
            K::Subscribe { .. } => "SUBSCRIBE",
            K::Unsubscribe { .. } => "UNSUBSCRIBE",
            K::List(_) => "LIST",
            K::Lsub { .. } => "LSUB",
            K::Status { .. } => "STATUS",
            K::Append { .. } => "APPEND",
            K::Check => "CHECK",
            K::Close => "CLOSE",
            K::Unselect => "UNSELECT",
            K::Expunge => "EXPUNGE",
            K::UidExpunge(_) => "UID EXPUNGE",
            K::Search(a) if a.uid => "UID SEARCH",
            K::Search(_) => "SEARCH",
            K::Fetch(a) if a.uid => "UID FETCH",
            K::Fetch(_) => "FETCH",
            K::Store(a) if a.uid => "UID STORE",
            K::Store(_) => "STORE",
            K::Copy { uid: true, .. } => "UID COPY",
            K::Copy { .. } => "COPY",
            K::Move { uid: true, .. } => "UID MOVE",
            K::Move { .. } => "MOVE",
            K::Idle => "IDLE",
        }
    }
}

/// One `ID` field and its value (`NIL` is `None`).
pub type IdParam<'a> = (Cow<'a, [u8]>, Option<Cow<'a, [u8]>>);

/// A mailbox name as sent: raw bytes, modified UTF-7 on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox<'a>(pub Cow<'a, [u8]>);

impl<'a> Mailbox<'a> {
    /// The raw wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True when this names INBOX (matched case-insensitively, RFC 3501 §5.1).
    pub fn is_inbox(&self) -> bool {
        is_inbox(&self.0)
    }

    /// Decode the modified UTF-7 name; any case of INBOX comes back as `"INBOX"`.
    pub fn decode(&self) -> Result<String, Utf7Error> {
        if self.is_inbox() {
            return Ok("INBOX".to_owned());
        }
        utf7::decode(&self.0)
    }

    /// Detach from the read buffer.
    pub fn into_owned(self) -> Mailbox<'static> {
        Mailbox(Cow::Owned(self.0.into_owned()))
    }
}

/// True when `name` is INBOX in any letter case (the only case-insensitive mailbox name).
pub fn is_inbox(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"INBOX")
}

/// Parameters of SELECT / EXAMINE (RFC 4466 syntax).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    /// `(CONDSTORE)` was given (RFC 7162 §3.1.8).
    pub condstore: bool,
    /// `(QRESYNC (...))` was given (RFC 7162 §3.2.5).
    pub qresync: Option<Qresync>,
}

/// `QRESYNC (uidvalidity modseq [known-uids [(seq-set uid-set)]])`: what the client knew
/// when it last had the mailbox open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    pub modseq: u64,
    /// The UIDs the client knows (all, when absent).
    pub known_uids: Option<SequenceSet>,
    /// Message numbers and the UIDs they had (the server may use it to narrow VANISHED; a
    /// server that remembers every expunge, as this one does, has no need of it).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// A special-use attribute (RFC 6154) in `CREATE ... (USE (...))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialUse<'a> {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    /// Any other `\Name` (with the backslash), for the server to refuse with
    /// `NO [USEATTR]` if it does not support it.
    Other(&'a str),
}

/// `LIST` arguments, basic or extended (RFC 5258, RFC 5819, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListArgs<'a> {
    pub select: ListSelect,
    pub reference: Mailbox<'a>,
    /// One or more patterns (may contain `*` and `%`), raw modified UTF-7.
    pub patterns: Vec<Cow<'a, [u8]>>,
    pub returns: ListReturn,
    /// True when any LIST-EXTENDED syntax was used (selection options, a parenthesised
    /// pattern list, or RETURN): the response then follows RFC 5258 rules.
    pub extended: bool,
}

/// LIST selection options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// LIST return options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    /// `RETURN (STATUS (...))` (RFC 5819).
    pub status: Option<Vec<StatusItem>>,
}

/// A STATUS data item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    /// RFC 8438 / RFC 9051.
    Size,
    /// RFC 7162.
    HighestModSeq,
    /// RFC 9051.
    Deleted,
}

/// One message of an APPEND parsed from a whole buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage<'a> {
    pub flags: Vec<Flag<'a>>,
    pub date: Option<DateTime>,
    /// The message bytes (the literal's body).
    pub data: &'a [u8],
    /// The literal was `~{n}` (literal8, APPEND with BINARY): it may contain NUL.
    pub binary: bool,
}

/// The head of a streamed APPEND: everything up to the first message literal's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendHead<'a> {
    pub tag: &'a str,
    pub mailbox: Mailbox<'a>,
    pub message: AppendMessageHead<'a>,
}

/// The options of one streamed APPEND message and its literal announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessageHead<'a> {
    pub flags: Vec<Flag<'a>>,
    pub date: Option<DateTime>,
    pub literal: LiteralHead,
    /// Sent as `UTF8 (~{n}...)` (RFC 6855 §4): a `)` follows the literal.
    pub utf8: bool,
}

/// A literal announcement: `{n}`, `{n+}`, `~{n}` or `~{n+}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralHead {
    /// The announced length in bytes.
    pub len: u64,
    /// Synchronizing (`{n}`): the client waits for a `+` continuation before sending it.
    pub sync: bool,
    /// literal8 (`~{n}`): may contain NUL.
    pub binary: bool,
}

/// A message flag as a client may send it (STORE, APPEND, SEARCH KEYWORD is separate).
/// `\Recent` and `\*` are refused by the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag<'a> {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// A keyword atom such as `$Forwarded` or `NonJunk`, as sent.
    Keyword(&'a str),
    /// Another `\Name` (flag-extension), with the backslash.
    Extension(&'a str),
}

impl Flag<'_> {
    /// The flag as it is written on the wire (`\Seen`, `$Forwarded`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Keyword(k) => k,
            Flag::Extension(e) => e,
        }
    }
}

impl fmt::Display for Flag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message set argument: a sequence set or `$` (SEARCHRES, RFC 5182: the result of the
/// last `SEARCH ... RETURN (SAVE)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceArg {
    Set(SequenceSet),
    Saved,
}

/// One end of a sequence range: a non-zero number or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqBound {
    Num(u32),
    Star,
}

impl SeqBound {
    /// The value, with `*` standing for `max`.
    pub fn resolve(self, max: u32) -> u32 {
        match self {
            SeqBound::Num(n) => n,
            SeqBound::Star => max,
        }
    }
}

/// `a`, or `a:b` (in either order); a single number has `from == to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub from: SeqBound,
    pub to: SeqBound,
}

impl SeqRange {
    /// The range as `lo..=hi` with `*` standing for `max` (unclamped).
    pub fn bounds(&self, max: u32) -> RangeInclusive<u32> {
        let a = self.from.resolve(max);
        let b = self.to.resolve(max);
        a.min(b)..=a.max(b)
    }
}

/// A non-empty sequence set (`1,3:5,7:*`) of message numbers or UIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet {
    ranges: Vec<SeqRange>,
}

impl SequenceSet {
    /// Build a set from ranges; `None` if empty or if any number is 0.
    pub fn new(ranges: Vec<SeqRange>) -> Option<Self> {
        let zero = |b: SeqBound| b == SeqBound::Num(0);
        if ranges.is_empty() || ranges.iter().any(|r| zero(r.from) || zero(r.to)) {
            return None;
        }
        Some(SequenceSet { ranges })
    }

    /// The ranges as sent.
    pub fn ranges(&self) -> &[SeqRange] {
        &self.ranges
    }

    /// Whether `n` is in the set, with `*` standing for `max`.
    pub fn contains(&self, n: u32, max: u32) -> bool {
        self.ranges.iter().any(|r| r.bounds(max).contains(&n))
    }

    /// The largest explicit number in the set (ignoring `*`), to check message sequence
    /// numbers against the mailbox size.
    pub fn max_explicit(&self) -> Option<u32> {
        self.ranges
            .iter()
            .flat_map(|r| [r.from, r.to])
            .filter_map(|b| match b {
                SeqBound::Num(n) => Some(n),
                SeqBound::Star => None,
            })
            .max()
    }

    /// The set as sorted, merged, non-overlapping ranges clamped to `1..=max` (`*` = `max`;
    /// so `5:*` with `max = 3` yields `3..=3`, as RFC 9051 asks for UIDs).
    pub fn resolve(&self, max: u32) -> Vec<RangeInclusive<u32>> {
        let mut v: Vec<(u32, u32)> = self
            .ranges
            .iter()
            .filter_map(|r| {
                let b = r.bounds(max);
                let lo = (*b.start()).max(1);
                let hi = (*b.end()).min(max);
                (lo <= hi).then_some((lo, hi))
            })
            .collect();
        v.sort_unstable();
        let mut out: Vec<RangeInclusive<u32>> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            if let Some(last) = out.last_mut()
                && u64::from(lo) <= u64::from(*last.end()) + 1
            {
                if hi > *last.end() {
                    *last = *last.start()..=hi;
                }
                continue;
            }
            out.push(lo..=hi);
        }
        out
    }

    /// Every number in the set within `1..=max`, ascending, each once.
    pub fn iter(&self, max: u32) -> impl Iterator<Item = u32> + use<> {
        self.resolve(max).into_iter().flatten()
    }
}

/// SEARCH / UID SEARCH arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchArgs<'a> {
    pub uid: bool,
    /// `CHARSET x`, as sent; strings in `keys` are in this charset (raw bytes).
    pub charset: Option<Cow<'a, str>>,
    /// `RETURN (...)` (ESEARCH, RFC 4731); `RETURN ()` is `Some(vec![])`, meaning ALL.
    pub returns: Option<Vec<SearchReturn>>,
    /// The criteria; all must match.
    pub keys: Vec<SearchKey<'a>>,
}

/// SORT / UID SORT arguments (RFC 5256; RETURN is ESORT, RFC 5267).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortArgs<'a> {
    pub uid: bool,
    /// `RETURN (...)`: answer with ESEARCH (MIN/MAX/ALL/COUNT in sort order).
    pub returns: Option<Vec<SearchReturn>>,
    pub criteria: Vec<SortCriterion>,
    /// The charset of the search strings (required by SORT's grammar).
    pub charset: Cow<'a, str>,
    pub keys: Vec<SearchKey<'a>>,
}

/// One sort criterion: a key, maybe REVERSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// What SORT orders by (RFC 5256 §3; DISPLAYFROM/DISPLAYTO RFC 5957).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// THREAD / UID THREAD arguments (RFC 5256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadArgs<'a> {
    pub uid: bool,
    pub algorithm: ThreadAlgorithm,
    pub charset: Cow<'a, str>,
    pub keys: Vec<SearchKey<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// An ESEARCH return option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    /// SEARCHRES (RFC 5182).
    Save,
}

/// One search criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey<'a> {
    All,
    Answered,
    Bcc(Cow<'a, [u8]>),
    Before(Date),
    Body(Cow<'a, [u8]>),
    Cc(Cow<'a, [u8]>),
    Deleted,
    Draft,
    Flagged,
    From(Cow<'a, [u8]>),
    Header(Cow<'a, [u8]>, Cow<'a, [u8]>),
    Keyword(&'a str),
    Larger(u64),
    New,
    Not(Box<SearchKey<'a>>),
    Old,
    On(Date),
    Or(Box<SearchKey<'a>>, Box<SearchKey<'a>>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    /// `SAVEDBEFORE`/`SAVEDON`/`SAVEDSINCE` (RFC 8514): by the day the message was saved.
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    /// `SAVEDATESUPPORTED` (RFC 8514): every message of a mailbox that keeps save dates.
    SaveDateSupported,
    Smaller(u64),
    /// `OLDER n` (RFC 5032 WITHIN): INTERNALDATE more than n seconds ago.
    Older(u64),
    /// `YOUNGER n` (RFC 5032 WITHIN): INTERNALDATE at most n seconds ago.
    Younger(u64),
    Subject(Cow<'a, [u8]>),
    Text(Cow<'a, [u8]>),
    To(Cow<'a, [u8]>),
    Uid(SequenceArg),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(&'a str),
    Unseen,
    /// A bare sequence set: message sequence numbers.
    SequenceSet(SequenceArg),
    /// A parenthesised list: all must match.
    And(Vec<SearchKey<'a>>),
    /// `MODSEQ [entry-name entry-type] n` (CONDSTORE); the entry is accepted and ignored.
    ModSeq(u64),
}

/// FETCH / UID FETCH arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchArgs<'a> {
    pub uid: bool,
    pub set: SequenceArg,
    /// The attributes, with ALL / FAST / FULL expanded. UID FETCH does not add UID here; the
    /// server must include it in responses anyway.
    pub attrs: Vec<FetchAttr<'a>>,
    /// `(CHANGEDSINCE n)` (CONDSTORE).
    pub changed_since: Option<u64>,
    /// `(VANISHED)` (QRESYNC), only meaningful with CHANGEDSINCE on UID FETCH.
    pub vanished: bool,
}

/// A FETCH data item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr<'a> {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    /// `PREVIEW` / `PREVIEW (LAZY)` (RFC 8970): a text snippet of the message.
    Preview,
    /// `SAVEDATE` (RFC 8514): when the message was saved into this mailbox.
    SaveDate,
    /// `BODY[section]<partial>` or, with `peek`, `BODY.PEEK[...]`.
    BodySection {
        peek: bool,
        section: Section<'a>,
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]` (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize {
        part: Vec<u32>,
    },
}

/// A body section: part numbers (empty = the whole message) and what of that part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section<'a> {
    pub part: Vec<u32>,
    pub text: Option<SectionText<'a>>,
}

/// The text specifier of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText<'a> {
    Header,
    /// `HEADER.FIELDS (names)`, names as sent (compare case-insensitively).
    HeaderFields(Vec<Cow<'a, [u8]>>),
    /// `HEADER.FIELDS.NOT (names)`.
    HeaderFieldsNot(Vec<Cow<'a, [u8]>>),
    Text,
    /// `MIME` (only after a part number).
    Mime,
}

/// `<offset.length>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub offset: u64,
    pub length: u64,
}

/// STORE / UID STORE arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreArgs<'a> {
    pub uid: bool,
    pub set: SequenceArg,
    pub mode: StoreMode,
    /// `.SILENT`: no untagged FETCH responses.
    pub silent: bool,
    pub flags: Vec<Flag<'a>>,
    /// `(UNCHANGEDSINCE n)` (CONDSTORE).
    pub unchanged_since: Option<u64>,
}

/// `FLAGS`, `+FLAGS` or `-FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The three-letter month name IMAP uses (1 = "Jan").
pub fn month_name(month: u8) -> &'static str {
    MONTHS
        .get(usize::from(month).wrapping_sub(1))
        .copied()
        .unwrap_or("???")
}

/// Month number (1..=12) of a three-letter English month name, any case.
pub fn month_from_name(name: &[u8]) -> Option<u8> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .and_then(|i| u8::try_from(i + 1).ok())
}

pub fn days_in_month(year: u16, month: u8) -> u8 {
    if !(1..=12).contains(&month) {
        return 0;
    }
    crate::time::days_in_month(u64::from(year), u64::from(month)) as u8
}

/// A calendar date (SEARCH dates, `d-Mon-yyyy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// A valid date, or `None`.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        (day >= 1 && day <= days_in_month(year, month)).then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(&self) -> i64 {
        crate::time::days_from_civil_signed(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        )
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{:04}",
            self.day,
            month_name(self.month),
            self.year
        )
    }
}

/// An APPEND date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// The zone as minutes east of UTC (`+0200` is 120, `-0430` is -270).
    pub offset_minutes: i16,
}

impl DateTime {
    /// Seconds since the Unix epoch (UTC).
    pub fn unix_time(&self) -> i64 {
        self.date.days_since_epoch() * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset_minutes) * 60
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let off = self.offset_minutes.unsigned_abs();
        write!(
            f,
            "{:02}-{}-{:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
            self.date.day,
            month_name(self.date.month),
            self.date.year,
            self.hour,
            self.minute,
            self.second,
            off / 60,
            off % 60
        )
    }
}

impl SearchKey<'_> {
    /// Whether the key (or one inside it) is `MODSEQ` (a CONDSTORE enabling search, RFC 7162
    /// §3.1.5).
    pub fn uses_modseq(&self) -> bool {
        match self {
            SearchKey::ModSeq(_) => true,
            SearchKey::Not(k) => k.uses_modseq(),
            SearchKey::Or(a, b) => a.uses_modseq() || b.uses_modseq(),
            SearchKey::And(v) => v.iter().any(SearchKey::uses_modseq),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(SeqBound, SeqBound)]) -> SequenceSet {
        SequenceSet::new(
            ranges
                .iter()
                .map(|&(from, to)| SeqRange { from, to })
                .collect(),
        )
        .unwrap()
    }
    use SeqBound::{Num, Star};

    #[test]
    fn sequence_set_resolution() {
        let s = set(&[
            (Num(7), Star),
            (Num(1), Num(1)),
            (Num(3), Num(2)),
            (Num(2), Num(4)),
        ]);
        assert_eq!(s.resolve(10), vec![1..=4, 7..=10]);
        assert_eq!(s.iter(8).collect::<Vec<_>>(), vec![1, 2, 3, 4, 7, 8]);
        assert!(s.contains(9, 10));
        assert!(!s.contains(5, 10));
        assert_eq!(s.max_explicit(), Some(7));
        // `7:*` with max 5 is 5:7, clamped to 5.
        assert_eq!(s.resolve(5), vec![1..=5]);
        // Empty mailbox: nothing.
        assert_eq!(s.resolve(0), Vec::<RangeInclusive<u32>>::new());
        let star = set(&[(Star, Star)]);
        assert_eq!(star.resolve(0), Vec::<RangeInclusive<u32>>::new());
        assert_eq!(star.resolve(42), vec![42..=42]);
        let big = set(&[(Num(u32::MAX), Num(1))]);
        assert_eq!(big.resolve(u32::MAX), vec![1..=u32::MAX]);
        assert!(SequenceSet::new(vec![]).is_none());
        assert!(
            SequenceSet::new(vec![SeqRange {
                from: Num(0),
                to: Num(1)
            }])
            .is_none()
        );
    }

    #[test]
    fn adjacent_ranges_merge() {
        let s = set(&[(Num(5), Num(6)), (Num(1), Num(4)), (Num(8), Num(8))]);
        assert_eq!(s.resolve(100), vec![1..=6, 8..=8]);
    }

    #[test]
    fn inbox_is_case_insensitive() {
        assert!(is_inbox(b"INBOX"));
        assert!(is_inbox(b"inbox"));
        assert!(is_inbox(b"InBoX"));
        assert!(!is_inbox(b"INBOX.Sent"));
        let m = Mailbox(Cow::Borrowed(b"iNbOx"));
        assert_eq!(m.decode().unwrap(), "INBOX");
        let m = Mailbox(Cow::Borrowed(b"&AMk-t&AOk-"));
        assert_eq!(m.decode().unwrap(), "Été");
    }

    #[test]
    fn dates() {
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(Date::new(2000, 3, 1).unwrap().days_since_epoch(), 11_017);
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2000, 2, 29).is_some());
        assert!(Date::new(2024, 13, 1).is_none());
        let dt = DateTime {
            date: Date::new(2024, 1, 17).unwrap(),
            hour: 10,
            minute: 4,
            second: 5,
            offset_minutes: 120,
        };
        assert_eq!(dt.unix_time(), 1_705_485_845 - 7200);
        assert_eq!(dt.to_string(), "17-Jan-2024 10:04:05 +0200");
        assert_eq!(Date::new(2024, 1, 7).unwrap().to_string(), "7-Jan-2024");
        assert_eq!(month_from_name(b"dEc"), Some(12));
        assert_eq!(month_from_name(b"Dez"), None);
    }
}
