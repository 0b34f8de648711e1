//! The grammar: one framed command's bytes into a [`Command`] borrowing them (RFC 3501 /
//! RFC 9051 and the extensions s3imap speaks). See the [module documentation](super).

use std::borrow::Cow;

use memchr::memchr;

use super::super::command::{
    AppendHead, AppendMessage, AppendMessageHead, Command, CommandKind, Date, DateTime, FetchArgs,
    FetchAttr, Flag, ListArgs, ListReturn, ListSelect, LiteralHead, Mailbox, Partial, Qresync,
    SearchArgs, SearchKey, SearchReturn, Section, SectionText, SelectParams, SeqBound, SeqRange,
    SequenceArg, SequenceSet, SortArgs, SortCriterion, SortKey, SpecialUse, StatusItem, StoreArgs,
    StoreMode, ThreadAlgorithm, ThreadArgs, month_from_name,
};
use super::framer::MAX_LITERAL_DIGITS;
use super::lines::is_base64;
use super::*;
// ---------------------------------------------------------------------------------------
// The grammar
// ---------------------------------------------------------------------------------------

/// Internal error: input ran out (only meaningful for partial input), or a real error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum E {
    Incomplete,
    Bad(ParseErrorKind),
}

impl E {
    pub(super) fn kind(self) -> ParseErrorKind {
        match self {
            E::Incomplete => ParseErrorKind::Truncated,
            E::Bad(k) => k,
        }
    }
}

impl From<ParseErrorKind> for E {
    fn from(k: ParseErrorKind) -> Self {
        E::Bad(k)
    }
}

pub(super) type R<T> = Result<T, E>;
use ParseErrorKind as K;

pub(super) fn is_atom_char(c: u8) -> bool {
    matches!(c, 0x21..=0x7e) && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

pub(super) fn is_astring_char(c: u8) -> bool {
    is_atom_char(c) || c == b']'
}

pub(super) fn is_list_char(c: u8) -> bool {
    is_atom_char(c) || matches!(c, b'%' | b'*' | b']')
}

pub(super) fn is_tag_char(c: u8) -> bool {
    is_astring_char(c) && c != b'+'
}

/// A keyword upper-cased on the stack for matching; longer words match nothing.
pub(super) struct Upper {
    buf: [u8; 24],
    len: usize,
}

impl Upper {
    fn new(word: &[u8]) -> Upper {
        let mut buf = [0u8; 24];
        let len = if word.len() <= buf.len() {
            word.len()
        } else {
            0
        };
        for (d, s) in buf.iter_mut().zip(word.iter()).take(len) {
            *d = s.to_ascii_uppercase();
        }
        Upper { buf, len }
    }

    fn get(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

pub(super) struct P<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
    max_literal: u64,
}

impl<'a> P<'a> {
    fn new(buf: &'a [u8], limits: &Limits) -> Self {
        P {
            buf,
            pos: 0,
            depth: 0,
            max_depth: limits.max_depth.min(DEPTH_CAP),
            max_literal: limits.max_literal,
        }
    }

    fn peek(&self) -> R<u8> {
        self.buf.get(self.pos).copied().ok_or(E::Incomplete)
    }

    fn at_eol(&self) -> R<bool> {
        Ok(matches!(self.peek()?, b'\r' | b'\n'))
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// The error for an unexpected byte where `what` should start.
    fn unexpected(&self, what: &'static str) -> E {
        match self.buf.get(self.pos) {
            None => E::Incomplete,
            Some(0) => E::Bad(K::Nul),
            Some(c) if *c >= 0x80 => E::Bad(K::EightBit),
            Some(b'\r' | b'\n') => E::Bad(K::MissingArgument(what)),
            Some(_) => E::Bad(K::Expected(what)),
        }
    }

    fn byte(&mut self, b: u8, what: &'static str) -> R<()> {
        if self.peek()? == b {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn sp(&mut self, next: &'static str) -> R<()> {
        match self.peek()? {
            b' ' => {
                self.pos += 1;
                Ok(())
            }
            b'\r' | b'\n' => Err(E::Bad(K::MissingArgument(next))),
            0 => Err(E::Bad(K::Nul)),
            c if c >= 0x80 => Err(E::Bad(K::EightBit)),
            _ => Err(E::Bad(K::ExpectedSpace(next))),
        }
    }

    fn open_paren(&mut self, what: &'static str) -> R<()> {
        self.byte(b'(', what)
    }

    fn close_paren(&mut self) -> R<()> {
        match self.peek()? {
            b')' => {
                self.pos += 1;
                Ok(())
            }
            b'\r' | b'\n' => Err(E::Bad(K::UnbalancedParens)),
            _ => Err(self.unexpected("')'")),
        }
    }

    fn eol(&mut self) -> R<()> {
        match self.peek()? {
            b'\n' => {
                self.pos += 1;
                Ok(())
            }
            b'\r' => match self.buf.get(self.pos + 1) {
                None => Err(E::Incomplete),
                Some(b'\n') => {
                    self.pos += 2;
                    Ok(())
                }
                Some(_) => Err(E::Bad(K::BadCharacter)),
            },
            b')' => Err(E::Bad(K::UnbalancedParens)),
            0 => Err(E::Bad(K::Nul)),
            c if c >= 0x80 => Err(E::Bad(K::EightBit)),
            _ => Err(E::Bad(K::ExtraArguments)),
        }
    }

    /// A run of bytes satisfying `ok`; checks the byte that ends it for NUL / 8-bit.
    fn run(&mut self, ok: fn(u8) -> bool, what: &'static str) -> R<&'a [u8]> {
        let rest = self.rest();
        let n = rest.iter().take_while(|&&c| ok(c)).count();
        match rest.get(n) {
            None => return Err(E::Incomplete),
            Some(0) => return Err(E::Bad(K::Nul)),
            Some(c) if *c >= 0x80 => return Err(E::Bad(K::EightBit)),
            Some(_) => {}
        }
        if n == 0 {
            return Err(self.unexpected(what));
        }
        let start = self.pos;
        self.pos += n;
        Ok(self.buf.get(start..self.pos).unwrap_or_default())
    }

    fn atom(&mut self, what: &'static str) -> R<&'a str> {
        let bytes = self.run(is_atom_char, what)?;
        std::str::from_utf8(bytes).map_err(|_| E::Bad(K::EightBit))
    }

    /// The atom at the cursor, without moving (empty if none).
    fn peek_word(&self) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().take_while(|&&c| is_atom_char(c)).count();
        rest.get(..n).unwrap_or_default()
    }

    /// Consume `kw` (any case) if the next atom is exactly it.
    fn eat_keyword(&mut self, kw: &[u8]) -> bool {
        let w = self.peek_word();
        if w.eq_ignore_ascii_case(kw) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn number64(&mut self, what: &'static str) -> R<u64> {
        let rest = self.rest();
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == rest.len() {
            return Err(E::Incomplete);
        }
        if n == 0 {
            return Err(self.unexpected(what));
        }
        let mut v: u64 = 0;
        for &d in rest.get(..n).unwrap_or_default() {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .ok_or(E::Bad(K::NumberTooBig))?;
        }
        self.pos += n;
        Ok(v)
    }

    fn number(&mut self, what: &'static str) -> R<u32> {
        let v = self.number64(what)?;
        u32::try_from(v).map_err(|_| E::Bad(K::NumberTooBig))
    }

    fn quoted(&mut self) -> R<Cow<'a, [u8]>> {
        self.byte(b'"', "quoted string")?;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        let mut seg = start;
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    let tail = self.buf.get(seg..self.pos).unwrap_or_default();
                    self.pos += 1;
                    return Ok(match owned {
                        Some(mut v) => {
                            v.extend_from_slice(tail);
                            Cow::Owned(v)
                        }
                        None => Cow::Borrowed(tail),
                    });
                }
                b'\\' => {
                    let esc = *self.buf.get(self.pos + 1).ok_or(E::Incomplete)?;
                    if esc != b'"' && esc != b'\\' {
                        return Err(E::Bad(K::BadEscape));
                    }
                    let v = owned.get_or_insert_with(Vec::new);
                    v.extend_from_slice(self.buf.get(seg..self.pos).unwrap_or_default());
                    v.push(esc);
                    self.pos += 2;
                    seg = self.pos;
                }
                b'\r' | b'\n' => return Err(E::Bad(K::UnterminatedQuoted)),
                0 => return Err(E::Bad(K::Nul)),
                _ => self.pos += 1,
            }
        }
    }

    /// `{n}` / `{n+}` (and `~{...}` when `allow8`) and its line end.
    fn literal_head(&mut self, allow8: bool) -> R<LiteralHead> {
        let binary = self.peek()? == b'~';
        if binary {
            if !allow8 {
                return Err(self.unexpected("string"));
            }
            self.pos += 1;
        }
        self.byte(b'{', "literal")?;
        let digits = self
            .rest()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits > MAX_LITERAL_DIGITS {
            return Err(E::Bad(K::BadLiteral));
        }
        let len = match self.number64("literal length") {
            Ok(n) => n,
            Err(E::Bad(K::NumberTooBig)) => {
                return Err(E::Bad(K::LiteralTooBig {
                    len: u64::MAX,
                    max: self.max_literal,
                }));
            }
            Err(E::Bad(_)) => return Err(E::Bad(K::BadLiteral)),
            Err(e) => return Err(e),
        };
        let sync = self.peek()? != b'+';
        if !sync {
            self.pos += 1;
        }
        if self.peek()? != b'}' {
            return Err(E::Bad(K::BadLiteral));
        }
        self.pos += 1;
        match self.peek()? {
            b'\r' | b'\n' => self.eol().map_err(|e| match e {
                E::Incomplete => E::Incomplete,
                E::Bad(_) => E::Bad(K::BadLiteral),
            })?,
            _ => return Err(E::Bad(K::BadLiteral)),
        }
        Ok(LiteralHead { len, sync, binary })
    }

    fn literal_body(&mut self, head: LiteralHead) -> R<&'a [u8]> {
        let too_big = E::Bad(K::LiteralTooBig {
            len: head.len,
            max: self.max_literal,
        });
        if head.len > self.max_literal {
            return Err(too_big);
        }
        // A length past the address space can only ever be "not here yet".
        let end = usize::try_from(head.len)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .ok_or(E::Incomplete)?;
        let body = self.buf.get(self.pos..end).ok_or(E::Incomplete)?;
        if !head.binary && memchr(0, body).is_some() {
            return Err(E::Bad(K::Nul));
        }
        self.pos = end;
        Ok(body)
    }

    fn literal(&mut self) -> R<&'a [u8]> {
        let head = self.literal_head(false)?;
        self.literal_body(head)
    }

    /// string = quoted / literal
    fn string(&mut self, what: &'static str) -> R<Cow<'a, [u8]>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => Ok(Cow::Borrowed(self.literal()?)),
            _ => Err(self.unexpected(what)),
        }
    }

    /// astring = 1*ASTRING-CHAR / string
    fn astring(&mut self, what: &'static str) -> R<Cow<'a, [u8]>> {
        match self.peek()? {
            b'"' | b'{' => self.string(what),
            _ => Ok(Cow::Borrowed(self.run(is_astring_char, what)?)),
        }
    }

    /// nstring = string / NIL
    fn nstring(&mut self, what: &'static str) -> R<Option<Cow<'a, [u8]>>> {
        match self.peek()? {
            b'"' | b'{' => Ok(Some(self.string(what)?)),
            _ => {
                let w = self.atom(what)?;
                if w.eq_ignore_ascii_case("NIL") {
                    Ok(None)
                } else {
                    Err(E::Bad(K::Expected(what)))
                }
            }
        }
    }

    fn mailbox(&mut self) -> R<Mailbox<'a>> {
        Ok(Mailbox(self.astring("mailbox name")?))
    }

    /// list-mailbox = 1*list-char / string
    fn list_mailbox(&mut self) -> R<Cow<'a, [u8]>> {
        match self.peek()? {
            b'"' | b'{' => self.string("mailbox pattern"),
            _ => Ok(Cow::Borrowed(self.run(is_list_char, "mailbox pattern")?)),
        }
    }

    fn tag(&mut self) -> Result<&'a str, ParseErrorKind> {
        let rest = self.rest();
        let n = rest.iter().take_while(|&&c| is_tag_char(c)).count();
        match rest.get(n) {
            _ if rest.first().is_some_and(|&c| c == b'\r' || c == b'\n') => {
                return Err(K::EmptyLine);
            }
            Some(b' ' | b'\r' | b'\n') if n > 0 => {}
            Some(0) => return Err(K::Nul),
            None => return Err(K::Truncated),
            _ => return Err(K::BadTag),
        }
        let tag = rest.get(..n).unwrap_or_default();
        self.pos += n;
        std::str::from_utf8(tag).map_err(|_| K::BadTag)
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(E::Bad(K::TooDeep {
                max: self.max_depth,
            }));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ----- sequence sets -----

    fn seq_number(&mut self) -> R<SeqBound> {
        match self.peek()? {
            b'*' => {
                self.pos += 1;
                Ok(SeqBound::Star)
            }
            b'0' => {
                let n = self.number64("sequence number")?;
                Err(E::Bad(if n == 0 {
                    K::SequenceZero
                } else {
                    K::InvalidSequenceSet
                }))
            }
            b'1'..=b'9' => Ok(SeqBound::Num(self.number("sequence number")?)),
            b'\r' | b'\n' => Err(E::Bad(K::MissingArgument("sequence set"))),
            _ => Err(E::Bad(K::InvalidSequenceSet)),
        }
    }

    fn sequence_set(&mut self) -> R<SequenceSet> {
        let mut ranges = Vec::new();
        loop {
            let from = self.seq_number()?;
            let to = if self.peek()? == b':' {
                self.pos += 1;
                self.seq_number()?
            } else {
                from
            };
            ranges.push(SeqRange { from, to });
            if self.peek()? == b',' {
                self.pos += 1;
                continue;
            }
            break;
        }
        match self.peek()? {
            b' ' | b'\r' | b'\n' | b')' => {}
            _ => return Err(E::Bad(K::InvalidSequenceSet)),
        }
        SequenceSet::new(ranges).ok_or(E::Bad(K::SequenceZero))
    }

    fn sequence_arg(&mut self) -> R<SequenceArg> {
        if self.peek()? == b'$' {
            self.pos += 1;
            return match self.peek()? {
                b' ' | b'\r' | b'\n' | b')' => Ok(SequenceArg::Saved),
                _ => Err(E::Bad(K::InvalidSequenceSet)),
            };
        }
        Ok(SequenceArg::Set(self.sequence_set()?))
    }

    // ----- dates -----

    fn digits(&mut self, min: usize, max: usize, err: ParseErrorKind) -> R<u32> {
        let rest = self.rest();
        let n = rest
            .iter()
            .take(max + 1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == rest.len() {
            return Err(E::Incomplete);
        }
        if n < min || n > max {
            return Err(E::Bad(err));
        }
        let v = rest
            .get(..n)
            .unwrap_or_default()
            .iter()
            .fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
        self.pos += n;
        Ok(v)
    }

    fn expect(&mut self, b: u8, err: ParseErrorKind) -> R<()> {
        if self.peek()? == b {
            self.pos += 1;
            Ok(())
        } else {
            Err(E::Bad(err))
        }
    }

    fn month(&mut self, err: ParseErrorKind) -> R<u8> {
        let rest = self.rest();
        let Some(m) = rest.get(..3) else {
            return Err(if rest.iter().all(u8::is_ascii_alphabetic) {
                E::Incomplete
            } else {
                E::Bad(err)
            });
        };
        let m = month_from_name(m).ok_or(E::Bad(err))?;
        self.pos += 3;
        Ok(m)
    }

    /// date = date-text / DQUOTE date-text DQUOTE; date-text = d[d]-Mon-yyyy
    fn date(&mut self) -> R<Date> {
        let quoted = self.peek()? == b'"';
        if quoted {
            self.pos += 1;
        }
        let err = K::InvalidDate;
        let day = self.digits(1, 2, err)?;
        self.expect(b'-', err)?;
        let month = self.month(err)?;
        self.expect(b'-', err)?;
        let year = self.digits(4, 4, err)?;
        if quoted {
            self.expect(b'"', err)?;
        }
        let date = Date::new(year as u16, month, day as u8).ok_or(E::Bad(err))?;
        Ok(date)
    }

    /// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    fn date_time(&mut self) -> R<DateTime> {
        let err = K::InvalidDateTime;
        self.expect(b'"', err)?;
        let day = if self.peek()? == b' ' {
            self.pos += 1;
            self.digits(1, 1, err)?
        } else {
            self.digits(2, 2, err)?
        };
        self.expect(b'-', err)?;
        let month = self.month(err)?;
        self.expect(b'-', err)?;
        let year = self.digits(4, 4, err)?;
        self.expect(b' ', err)?;
        let hour = self.digits(2, 2, err)?;
        self.expect(b':', err)?;
        let minute = self.digits(2, 2, err)?;
        self.expect(b':', err)?;
        let second = self.digits(2, 2, err)?;
        self.expect(b' ', err)?;
        let sign: i16 = match self.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(E::Bad(err)),
        };
        self.pos += 1;
        let zone = self.digits(4, 4, err)?;
        self.expect(b'"', err)?;
        let (zh, zm) = (zone / 100, zone % 100);
        if hour > 23 || minute > 59 || second > 60 || zm > 59 {
            return Err(E::Bad(err));
        }
        let date = Date::new(year as u16, month, day as u8).ok_or(E::Bad(err))?;
        Ok(DateTime {
            date,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            offset_minutes: sign * (zh * 60 + zm) as i16,
        })
    }

    // ----- flags -----

    fn flag(&mut self) -> R<Flag<'a>> {
        if self.peek()? == b'\\' {
            let start = self.pos;
            self.pos += 1;
            if self.peek()? == b'*' {
                return Err(E::Bad(K::FlagNotAllowed));
            }
            let name = match self.atom("flag") {
                Ok(n) => n,
                Err(E::Bad(K::Expected(_))) => return Err(E::Bad(K::InvalidFlag)),
                Err(e) => return Err(e),
            };
            let flag = match Upper::new(name.as_bytes()).get() {
                b"SEEN" => Flag::Seen,
                b"ANSWERED" => Flag::Answered,
                b"FLAGGED" => Flag::Flagged,
                b"DELETED" => Flag::Deleted,
                b"DRAFT" => Flag::Draft,
                b"RECENT" => return Err(E::Bad(K::FlagNotAllowed)),
                _ => {
                    let raw = self.buf.get(start..self.pos).unwrap_or_default();
                    Flag::Extension(std::str::from_utf8(raw).map_err(|_| E::Bad(K::InvalidFlag))?)
                }
            };
            return Ok(flag);
        }
        match self.atom("flag") {
            Ok(k) => Ok(Flag::Keyword(k)),
            Err(E::Bad(K::Expected(_))) => Err(E::Bad(K::InvalidFlag)),
            Err(e) => Err(e),
        }
    }

    fn flag_list(&mut self) -> R<Vec<Flag<'a>>> {
        self.open_paren("flag list")?;
        let mut flags = Vec::new();
        if self.peek()? == b')' {
            self.pos += 1;
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            match self.peek()? {
                b' ' => self.pos += 1,
                _ => {
                    self.close_paren()?;
                    return Ok(flags);
                }
            }
        }
    }

    // ----- commands -----

    fn command(&mut self) -> R<CommandKind<'a>> {
        let name = match self.peek()? {
            b'\r' | b'\n' => return Err(E::Bad(K::MissingCommand)),
            _ => self.atom("command name")?,
        };
        let up = Upper::new(name.as_bytes());
        let kind = match up.get() {
            b"CAPABILITY" => CommandKind::Capability,
            b"NOOP" => CommandKind::Noop,
            b"LOGOUT" => CommandKind::Logout,
            b"STARTTLS" => CommandKind::StartTls,
            b"NAMESPACE" => CommandKind::Namespace,
            b"CHECK" => CommandKind::Check,
            b"CLOSE" => CommandKind::Close,
            b"UNSELECT" => CommandKind::Unselect,
            b"EXPUNGE" => CommandKind::Expunge,
            b"IDLE" => CommandKind::Idle,
            b"AUTHENTICATE" => self.authenticate()?,
            b"LOGIN" => {
                self.sp("user name")?;
                let username = self.astring("user name")?;
                self.sp("password")?;
                let password = self.astring("password")?;
                CommandKind::Login { username, password }
            }
            b"ID" => self.id()?,
            b"COMPRESS" => {
                self.sp("compression mechanism")?;
                CommandKind::Compress(self.atom("compression mechanism")?)
            }
            b"ENABLE" => {
                let mut caps = Vec::new();
                loop {
                    self.sp("capability")?;
                    caps.push(self.atom("capability")?);
                    if self.peek()? != b' ' {
                        break;
                    }
                }
                CommandKind::Enable(caps)
            }
            b"SELECT" | b"EXAMINE" => {
                self.sp("mailbox name")?;
                let mailbox = self.mailbox()?;
                let params = self.select_params()?;
                if up.get() == b"SELECT" {
                    CommandKind::Select { mailbox, params }
                } else {
                    CommandKind::Examine { mailbox, params }
                }
            }
            b"CREATE" => self.create()?,
            b"DELETE" => CommandKind::Delete {
                mailbox: self.sp_mailbox()?,
            },
            b"SUBSCRIBE" => CommandKind::Subscribe {
                mailbox: self.sp_mailbox()?,
            },
            b"UNSUBSCRIBE" => CommandKind::Unsubscribe {
                mailbox: self.sp_mailbox()?,
            },
            b"RENAME" => {
                let from = self.sp_mailbox()?;
                let to = self.sp_mailbox()?;
                CommandKind::Rename { from, to }
            }
            b"LIST" => self.list()?,
            b"LSUB" => {
                let reference = self.sp_mailbox()?;
                self.sp("mailbox pattern")?;
                let pattern = self.list_mailbox()?;
                CommandKind::Lsub { reference, pattern }
            }
            b"STATUS" => {
                let mailbox = self.sp_mailbox()?;
                self.sp("status items")?;
                let items = self.status_items()?;
                CommandKind::Status { mailbox, items }
            }
            b"APPEND" => self.append()?,
            b"SEARCH" => CommandKind::Search(self.search(false)?),
            b"SORT" => CommandKind::Sort(self.sort(false)?),
            b"THREAD" => CommandKind::Thread(self.thread(false)?),
            b"FETCH" => CommandKind::Fetch(self.fetch(false)?),
            b"STORE" => CommandKind::Store(self.store(false)?),
            b"COPY" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                CommandKind::Copy {
                    uid: false,
                    set,
                    mailbox,
                }
            }
            b"MOVE" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                CommandKind::Move {
                    uid: false,
                    set,
                    mailbox,
                }
            }
            b"UID" => self.uid()?,
            _ => return Err(E::Bad(K::UnknownCommand)),
        };
        self.eol()?;
        Ok(kind)
    }

    fn sp_mailbox(&mut self) -> R<Mailbox<'a>> {
        self.sp("mailbox name")?;
        self.mailbox()
    }

    fn set_and_mailbox(&mut self) -> R<(SequenceArg, Mailbox<'a>)> {
        self.sp("sequence set")?;
        let set = self.sequence_arg()?;
        let mailbox = self.sp_mailbox()?;
        Ok((set, mailbox))
    }

    fn uid(&mut self) -> R<CommandKind<'a>> {
        self.sp("UID command")?;
        let name = self.atom("UID command")?;
        Ok(match Upper::new(name.as_bytes()).get() {
            b"FETCH" => CommandKind::Fetch(self.fetch(true)?),
            b"SEARCH" => CommandKind::Search(self.search(true)?),
            b"SORT" => CommandKind::Sort(self.sort(true)?),
            b"THREAD" => CommandKind::Thread(self.thread(true)?),
            b"STORE" => CommandKind::Store(self.store(true)?),
            b"COPY" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                CommandKind::Copy {
                    uid: true,
                    set,
                    mailbox,
                }
            }
            b"MOVE" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                CommandKind::Move {
                    uid: true,
                    set,
                    mailbox,
                }
            }
            b"EXPUNGE" => {
                self.sp("sequence set")?;
                CommandKind::UidExpunge(self.sequence_arg()?)
            }
            _ => return Err(E::Bad(K::UnknownCommand)),
        })
    }

    fn authenticate(&mut self) -> R<CommandKind<'a>> {
        self.sp("authentication mechanism")?;
        let mechanism = self.atom("authentication mechanism")?;
        let mut initial_response = None;
        if self.peek()? == b' ' {
            self.pos += 1;
            let rest = self.rest();
            let n = rest
                .iter()
                .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
                .count();
            if n == rest.len() {
                return Err(E::Incomplete);
            }
            let text = rest.get(..n).unwrap_or_default();
            if text.is_empty() {
                return Err(self.unexpected("initial response"));
            }
            let data: &'a [u8] = if text == b"=" {
                b""
            } else if is_base64(text) {
                text
            } else {
                return Err(E::Bad(K::InvalidBase64));
            };
            self.pos += n;
            initial_response = Some(data);
        }
        Ok(CommandKind::Authenticate {
            mechanism,
            initial_response,
        })
    }

    fn id(&mut self) -> R<CommandKind<'a>> {
        self.sp("ID parameter list")?;
        if self.peek()? != b'(' {
            let w = self.atom("ID parameter list")?;
            if w.eq_ignore_ascii_case("NIL") {
                return Ok(CommandKind::Id(None));
            }
            return Err(E::Bad(K::Expected("ID parameter list")));
        }
        self.pos += 1;
        let mut params = Vec::new();
        if self.peek()? == b')' {
            self.pos += 1;
            return Ok(CommandKind::Id(Some(params)));
        }
        loop {
            let key = self.string("ID field name")?;
            self.sp("ID field value")?;
            let value = self.nstring("ID field value")?;
            params.push((key, value));
            match self.peek()? {
                b' ' => self.pos += 1,
                _ => {
                    self.close_paren()?;
                    return Ok(CommandKind::Id(Some(params)));
                }
            }
        }
    }

    fn select_params(&mut self) -> R<SelectParams> {
        let mut params = SelectParams::default();
        if self.peek()? != b' ' {
            return Ok(params);
        }
        self.pos += 1;
        self.open_paren("SELECT parameters")?;
        loop {
            let name = self.atom("SELECT parameter")?;
            match Upper::new(name.as_bytes()).get() {
                b"CONDSTORE" => params.condstore = true,
                b"QRESYNC" => {
                    self.sp("QRESYNC parameters")?;
                    params.qresync = Some(self.qresync()?);
                }
                _ => return Err(E::Bad(K::UnknownOption("SELECT parameter"))),
            }
            match self.peek()? {
                b' ' => self.pos += 1,
                _ => {
                    self.close_paren()?;
                    return Ok(params);
                }
            }
        }
    }

    /// `(uidvalidity modseq [known-uids [(seq-set uid-set)]])`.
    fn qresync(&mut self) -> R<Qresync> {
        self.open_paren("QRESYNC parameters")?;
        let uid_validity = self.number("UIDVALIDITY")?;
        if uid_validity == 0 {
            return Err(E::Bad(K::Expected("non-zero UIDVALIDITY")));
        }
        self.sp("mod-sequence")?;
        let modseq = self.number64("mod-sequence")?;
        if modseq == 0 {
            return Err(E::Bad(K::Expected("non-zero mod-sequence")));
        }
        let mut q = Qresync {
            uid_validity,
            modseq,
            known_uids: None,
            seq_match: None,
        };
        if self.peek()? == b' ' {
            self.pos += 1;
            if self.peek()? != b'(' {
                q.known_uids = Some(self.sequence_set()?);
                if self.peek()? == b' ' {
                    self.pos += 1;
                } else {
                    self.close_paren()?;
                    return Ok(q);
                }
            }
            self.open_paren("sequence match data")?;
            let seqs = self.sequence_set()?;
            self.sp("UID set")?;
            let uids = self.sequence_set()?;
            self.close_paren()?;
            q.seq_match = Some((seqs, uids));
        }
        self.close_paren()?;
        Ok(q)
    }

    fn create(&mut self) -> R<CommandKind<'a>> {
        let mailbox = self.sp_mailbox()?;
        let mut special_use = Vec::new();
        if self.peek()? == b' ' {
            self.pos += 1;
            self.open_paren("CREATE parameters")?;
            loop {
                let name = self.atom("CREATE parameter")?;
                if !name.eq_ignore_ascii_case("USE") {
                    return Err(E::Bad(K::UnknownOption("CREATE parameter")));
                }
                self.sp("special-use list")?;
                self.open_paren("special-use list")?;
                if self.peek()? != b')' {
                    loop {
                        special_use.push(self.special_use()?);
                        if self.peek()? == b' ' {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.close_paren()?;
                match self.peek()? {
                    b' ' => self.pos += 1,
                    _ => {
                        self.close_paren()?;
                        break;
                    }
                }
            }
        }
        Ok(CommandKind::Create {
            mailbox,
            special_use,
        })
    }

    fn special_use(&mut self) -> R<SpecialUse<'a>> {
        let start = self.pos;
        self.byte(b'\\', "special-use attribute")?;
        let name = self.atom("special-use attribute")?;
        Ok(match Upper::new(name.as_bytes()).get() {
            b"ALL" => SpecialUse::All,
            b"ARCHIVE" => SpecialUse::Archive,
            b"DRAFTS" => SpecialUse::Drafts,
            b"FLAGGED" => SpecialUse::Flagged,
            b"JUNK" => SpecialUse::Junk,
            b"SENT" => SpecialUse::Sent,
            b"TRASH" => SpecialUse::Trash,
            _ => {
                let raw = self.buf.get(start..self.pos).unwrap_or_default();
                SpecialUse::Other(std::str::from_utf8(raw).map_err(|_| E::Bad(K::EightBit))?)
            }
        })
    }

    fn list(&mut self) -> R<CommandKind<'a>> {
        self.sp("reference name")?;
        let mut extended = false;
        let mut select = ListSelect::default();
        if self.peek()? == b'(' {
            extended = true;
            self.pos += 1;
            if self.peek()? != b')' {
                loop {
                    let opt = self.atom("LIST selection option")?;
                    match Upper::new(opt.as_bytes()).get() {
                        b"SUBSCRIBED" => select.subscribed = true,
                        b"REMOTE" => select.remote = true,
                        b"RECURSIVEMATCH" => select.recursive_match = true,
                        b"SPECIAL-USE" => select.special_use = true,
                        _ => return Err(E::Bad(K::UnknownOption("LIST selection option"))),
                    }
                    if self.peek()? == b' ' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.close_paren()?;
            self.sp("reference name")?;
            if select.recursive_match && !(select.subscribed || select.special_use) {
                return Err(E::Bad(K::Invalid(
                    "RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE",
                )));
            }
        }
        let reference = self.mailbox()?;
        self.sp("mailbox pattern")?;
        let mut patterns = Vec::new();
        if self.peek()? == b'(' {
            extended = true;
            self.pos += 1;
            loop {
                patterns.push(self.list_mailbox()?);
                if self.peek()? == b' ' {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            self.close_paren()?;
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut returns = ListReturn::default();
        if self.peek()? == b' ' {
            self.pos += 1;
            if !self.eat_keyword(b"RETURN") {
                return Err(self.unexpected("RETURN"));
            }
            extended = true;
            self.sp("LIST return options")?;
            self.open_paren("LIST return options")?;
            if self.peek()? != b')' {
                loop {
                    let opt = self.atom("LIST return option")?;
                    match Upper::new(opt.as_bytes()).get() {
                        b"SUBSCRIBED" => returns.subscribed = true,
                        b"CHILDREN" => returns.children = true,
                        b"SPECIAL-USE" => returns.special_use = true,
                        b"STATUS" => {
                            self.sp("status items")?;
                            returns.status = Some(self.status_items()?);
                        }
                        _ => return Err(E::Bad(K::UnknownOption("LIST return option"))),
                    }
                    if self.peek()? == b' ' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.close_paren()?;
        }
        Ok(CommandKind::List(ListArgs {
            select,
            reference,
            patterns,
            returns,
            extended,
        }))
    }

    fn status_items(&mut self) -> R<Vec<StatusItem>> {
        self.open_paren("status items")?;
        let mut items = Vec::new();
        loop {
            let w = self.atom("status item")?;
            items.push(match Upper::new(w.as_bytes()).get() {
                b"MESSAGES" => StatusItem::Messages,
                b"RECENT" => StatusItem::Recent,
                b"UIDNEXT" => StatusItem::UidNext,
                b"UIDVALIDITY" => StatusItem::UidValidity,
                b"UNSEEN" => StatusItem::Unseen,
                b"SIZE" => StatusItem::Size,
                b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                b"DELETED" => StatusItem::Deleted,
                _ => return Err(E::Bad(K::UnknownStatusItem)),
            });
            if self.peek()? == b' ' {
                self.pos += 1;
            } else {
                self.close_paren()?;
                return Ok(items);
            }
        }
    }

    fn append(&mut self) -> R<CommandKind<'a>> {
        let mailbox = self.sp_mailbox()?;
        let mut messages = Vec::new();
        loop {
            let head = self.append_message_head()?;
            let data = self.literal_body(head.literal)?;
            if head.utf8 {
                self.close_paren()?;
            }
            messages.push(AppendMessage {
                flags: head.flags,
                date: head.date,
                data,
                binary: head.literal.binary,
            });
            if self.peek()? != b' ' {
                break;
            }
        }
        Ok(CommandKind::Append { mailbox, messages })
    }

    /// SP [flag-list SP] [date-time SP] literal-announcement
    fn append_message_head(&mut self) -> R<AppendMessageHead<'a>> {
        self.sp("message literal")?;
        let mut flags = Vec::new();
        let mut date = None;
        if self.peek()? == b'(' {
            flags = self.flag_list()?;
            self.sp("message literal")?;
        }
        if self.peek()? == b'"' {
            date = Some(self.date_time()?);
            self.sp("message literal")?;
        }
        // RFC 6855 §4: `UTF8 (~{n}...)`, a message with UTF-8 headers.
        let utf8 = self.eat_keyword(b"UTF8");
        if utf8 {
            self.sp("UTF8 (")?;
            self.byte(b'(', "UTF8 (")?;
            if self.peek()? != b'~' {
                return Err(self.unexpected("a literal8 (~{n}) inside UTF8 (...)"));
            }
        }
        let literal = match self.peek()? {
            b'{' | b'~' => self.literal_head(true)?,
            _ => return Err(self.unexpected("message literal")),
        };
        Ok(AppendMessageHead {
            flags,
            date,
            literal,
            utf8,
        })
    }

    fn search(&mut self, uid: bool) -> R<SearchArgs<'a>> {
        self.sp("search criteria")?;
        let returns = self.search_returns()?;
        let mut charset = None;
        if self.eat_keyword(b"CHARSET") {
            self.sp("charset")?;
            charset = Some(self.charset()?);
            self.sp("search criteria")?;
        }
        let keys = self.search_keys()?;
        Ok(SearchArgs {
            uid,
            charset,
            returns,
            keys,
        })
    }

    /// `SORT [RETURN (...)] (criteria) charset keys` (RFC 5256, RFC 5267).
    fn sort(&mut self, uid: bool) -> R<SortArgs<'a>> {
        self.sp("sort criteria")?;
        let returns = self.search_returns()?;
        self.open_paren("sort criteria")?;
        let mut criteria = Vec::new();
        loop {
            let mut w = self.atom("sort key")?;
            let reverse = w.eq_ignore_ascii_case("REVERSE");
            if reverse {
                self.sp("sort key")?;
                w = self.atom("sort key")?;
            }
            let key = match Upper::new(w.as_bytes()).get() {
                b"ARRIVAL" => SortKey::Arrival,
                b"CC" => SortKey::Cc,
                b"DATE" => SortKey::Date,
                b"FROM" => SortKey::From,
                b"SIZE" => SortKey::Size,
                b"SUBJECT" => SortKey::Subject,
                b"TO" => SortKey::To,
                b"DISPLAYFROM" => SortKey::DisplayFrom,
                b"DISPLAYTO" => SortKey::DisplayTo,
                _ => return Err(E::Bad(K::UnknownOption("sort key"))),
            };
            criteria.push(SortCriterion { reverse, key });
            if self.peek()? == b' ' {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.close_paren()?;
        self.sp("charset")?;
        let charset = self.charset()?;
        self.sp("search criteria")?;
        let keys = self.search_keys()?;
        Ok(SortArgs {
            uid,
            returns,
            criteria,
            charset,
            keys,
        })
    }

    /// `THREAD algorithm charset keys` (RFC 5256).
    fn thread(&mut self, uid: bool) -> R<ThreadArgs<'a>> {
        self.sp("threading algorithm")?;
        let w = self.atom("threading algorithm")?;
        let algorithm = match Upper::new(w.as_bytes()).get() {
            b"ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            b"REFERENCES" => ThreadAlgorithm::References,
            _ => return Err(E::Bad(K::UnknownOption("threading algorithm"))),
        };
        self.sp("charset")?;
        let charset = self.charset()?;
        self.sp("search criteria")?;
        let keys = self.search_keys()?;
        Ok(ThreadArgs {
            uid,
            algorithm,
            charset,
            keys,
        })
    }

    /// A charset name (an astring, ASCII).
    fn charset(&mut self) -> R<Cow<'a, str>> {
        let cs = self.astring("charset")?;
        let cs = match cs {
            Cow::Borrowed(b) => {
                Cow::Borrowed(std::str::from_utf8(b).map_err(|_| E::Bad(K::EightBit))?)
            }
            Cow::Owned(v) => Cow::Owned(String::from_utf8(v).map_err(|_| E::Bad(K::EightBit))?),
        };
        if !cs.is_ascii() {
            return Err(E::Bad(K::EightBit));
        }
        Ok(cs)
    }

    /// One or more search keys separated by spaces.
    fn search_keys(&mut self) -> R<Vec<SearchKey<'a>>> {
        let mut keys = Vec::new();
        loop {
            keys.push(self.search_key()?);
            if self.peek()? == b' ' {
                self.pos += 1;
            } else {
                return Ok(keys);
            }
        }
    }

    /// `RETURN (...) ` of ESEARCH / ESORT, if there.
    fn search_returns(&mut self) -> R<Option<Vec<SearchReturn>>> {
        let mut returns = None;
        if self.eat_keyword(b"RETURN") {
            self.sp("search return options")?;
            self.open_paren("search return options")?;
            let mut opts = Vec::new();
            if self.peek()? != b')' {
                loop {
                    let w = self.atom("search return option")?;
                    opts.push(match Upper::new(w.as_bytes()).get() {
                        b"MIN" => SearchReturn::Min,
                        b"MAX" => SearchReturn::Max,
                        b"ALL" => SearchReturn::All,
                        b"COUNT" => SearchReturn::Count,
                        b"SAVE" => SearchReturn::Save,
                        _ => return Err(E::Bad(K::UnknownOption("search return option"))),
                    });
                    if self.peek()? == b' ' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.close_paren()?;
            returns = Some(opts);
            self.sp("search criteria")?;
        }
        Ok(returns)
    }

    fn search_key(&mut self) -> R<SearchKey<'a>> {
        let c = self.peek()?;
        if c == b'(' {
            self.enter()?;
            self.pos += 1;
            let mut keys = vec![self.search_key()?];
            loop {
                match self.peek()? {
                    b' ' => {
                        self.pos += 1;
                        keys.push(self.search_key()?);
                    }
                    _ => {
                        self.close_paren()?;
                        break;
                    }
                }
            }
            self.leave();
            return Ok(SearchKey::And(keys));
        }
        if c.is_ascii_digit() || c == b'*' || c == b'$' {
            return Ok(SearchKey::SequenceSet(self.sequence_arg()?));
        }
        let word = self.atom("search key")?;
        let astr = |p: &mut Self| -> R<Cow<'a, [u8]>> {
            p.sp("search string")?;
            p.astring("search string")
        };
        let date = |p: &mut Self| -> R<Date> {
            p.sp("date")?;
            p.date()
        };
        Ok(match Upper::new(word.as_bytes()).get() {
            b"ALL" => SearchKey::All,
            b"ANSWERED" => SearchKey::Answered,
            b"DELETED" => SearchKey::Deleted,
            b"DRAFT" => SearchKey::Draft,
            b"FLAGGED" => SearchKey::Flagged,
            b"NEW" => SearchKey::New,
            b"OLD" => SearchKey::Old,
            b"RECENT" => SearchKey::Recent,
            b"SEEN" => SearchKey::Seen,
            b"UNANSWERED" => SearchKey::Unanswered,
            b"UNDELETED" => SearchKey::Undeleted,
            b"UNDRAFT" => SearchKey::Undraft,
            b"UNFLAGGED" => SearchKey::Unflagged,
            b"UNSEEN" => SearchKey::Unseen,
            b"BCC" => SearchKey::Bcc(astr(self)?),
            b"BODY" => SearchKey::Body(astr(self)?),
            b"CC" => SearchKey::Cc(astr(self)?),
            b"FROM" => SearchKey::From(astr(self)?),
            b"SUBJECT" => SearchKey::Subject(astr(self)?),
            b"TEXT" => SearchKey::Text(astr(self)?),
            b"TO" => SearchKey::To(astr(self)?),
            b"BEFORE" => SearchKey::Before(date(self)?),
            b"ON" => SearchKey::On(date(self)?),
            b"SINCE" => SearchKey::Since(date(self)?),
            b"SENTBEFORE" => SearchKey::SentBefore(date(self)?),
            b"SENTON" => SearchKey::SentOn(date(self)?),
            b"SENTSINCE" => SearchKey::SentSince(date(self)?),
            b"SAVEDBEFORE" => SearchKey::SavedBefore(date(self)?),
            b"SAVEDON" => SearchKey::SavedOn(date(self)?),
            b"SAVEDSINCE" => SearchKey::SavedSince(date(self)?),
            b"SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
            b"HEADER" => {
                self.sp("header field name")?;
                let field = self.astring("header field name")?;
                SearchKey::Header(field, astr(self)?)
            }
            b"KEYWORD" => {
                self.sp("keyword")?;
                SearchKey::Keyword(self.atom("keyword")?)
            }
            b"UNKEYWORD" => {
                self.sp("keyword")?;
                SearchKey::Unkeyword(self.atom("keyword")?)
            }
            b"LARGER" => {
                self.sp("size")?;
                SearchKey::Larger(self.number64("size")?)
            }
            b"SMALLER" => {
                self.sp("size")?;
                SearchKey::Smaller(self.number64("size")?)
            }
            b"OLDER" => {
                self.sp("interval")?;
                SearchKey::Older(self.number64("interval")?)
            }
            b"YOUNGER" => {
                self.sp("interval")?;
                SearchKey::Younger(self.number64("interval")?)
            }
            b"UID" => {
                self.sp("UID set")?;
                SearchKey::Uid(self.sequence_arg()?)
            }
            b"MODSEQ" => {
                self.sp("mod-sequence")?;
                if self.peek()? == b'"' {
                    self.quoted()?;
                    self.sp("entry type")?;
                    let t = self.atom("entry type")?;
                    if !["priv", "shared", "all"]
                        .iter()
                        .any(|k| t.eq_ignore_ascii_case(k))
                    {
                        return Err(E::Bad(K::Expected("entry type (priv, shared or all)")));
                    }
                    self.sp("mod-sequence")?;
                }
                SearchKey::ModSeq(self.number64("mod-sequence")?)
            }
            b"NOT" => {
                self.sp("search key")?;
                self.enter()?;
                let k = self.search_key()?;
                self.leave();
                SearchKey::Not(Box::new(k))
            }
            b"OR" => {
                self.sp("search key")?;
                self.enter()?;
                let a = self.search_key()?;
                self.sp("search key")?;
                let b = self.search_key()?;
                self.leave();
                SearchKey::Or(Box::new(a), Box::new(b))
            }
            _ => return Err(E::Bad(K::UnknownSearchKey)),
        })
    }

    fn fetch(&mut self, uid: bool) -> R<FetchArgs<'a>> {
        self.sp("sequence set")?;
        let set = self.sequence_arg()?;
        self.sp("fetch attributes")?;
        let mut attrs = Vec::new();
        if self.peek()? == b'(' {
            self.pos += 1;
            loop {
                attrs.push(self.fetch_att()?);
                if self.peek()? == b' ' {
                    self.pos += 1;
                } else {
                    self.close_paren()?;
                    break;
                }
            }
        } else {
            let w = self.peek_name();
            let macro_attrs: Option<&[FetchAttr<'static>]> = match Upper::new(w).get() {
                b"ALL" => Some(&[
                    FetchAttr::Flags,
                    FetchAttr::InternalDate,
                    FetchAttr::Rfc822Size,
                    FetchAttr::Envelope,
                ]),
                b"FAST" => Some(&[
                    FetchAttr::Flags,
                    FetchAttr::InternalDate,
                    FetchAttr::Rfc822Size,
                ]),
                b"FULL" => Some(&[
                    FetchAttr::Flags,
                    FetchAttr::InternalDate,
                    FetchAttr::Rfc822Size,
                    FetchAttr::Envelope,
                    FetchAttr::Body,
                ]),
                _ => None,
            };
            match macro_attrs {
                Some(list) => {
                    self.pos += w.len();
                    attrs.extend_from_slice(list);
                }
                None => attrs.push(self.fetch_att()?),
            }
        }
        let mut changed_since = None;
        let mut vanished = false;
        if self.peek()? == b' ' {
            self.pos += 1;
            self.open_paren("FETCH modifiers")?;
            loop {
                let w = self.atom("FETCH modifier")?;
                match Upper::new(w.as_bytes()).get() {
                    b"CHANGEDSINCE" => {
                        self.sp("mod-sequence")?;
                        changed_since = Some(self.number64("mod-sequence")?);
                    }
                    b"VANISHED" => vanished = true,
                    _ => return Err(E::Bad(K::UnknownOption("FETCH modifier"))),
                }
                if self.peek()? == b' ' {
                    self.pos += 1;
                } else {
                    self.close_paren()?;
                    break;
                }
            }
        }
        Ok(FetchArgs {
            uid,
            set,
            attrs,
            changed_since,
            vanished,
        })
    }

    /// A FETCH item name: letters, digits and dots.
    fn peek_name(&self) -> &'a [u8] {
        let rest = self.rest();
        let n = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'.')
            .count();
        rest.get(..n).unwrap_or_default()
    }

    fn fetch_att(&mut self) -> R<FetchAttr<'a>> {
        let name = self.peek_name();
        if name.is_empty() {
            return Err(self.unexpected("fetch attribute"));
        }
        if name.len() == self.rest().len() {
            return Err(E::Incomplete);
        }
        self.pos += name.len();
        let at_bracket = self.peek()? == b'[';
        Ok(match Upper::new(name).get() {
            b"ENVELOPE" => FetchAttr::Envelope,
            b"FLAGS" => FetchAttr::Flags,
            b"INTERNALDATE" => FetchAttr::InternalDate,
            b"RFC822" => FetchAttr::Rfc822,
            b"RFC822.HEADER" => FetchAttr::Rfc822Header,
            b"RFC822.SIZE" => FetchAttr::Rfc822Size,
            b"RFC822.TEXT" => FetchAttr::Rfc822Text,
            b"BODYSTRUCTURE" => FetchAttr::BodyStructure,
            b"UID" => FetchAttr::Uid,
            b"MODSEQ" => FetchAttr::ModSeq,
            b"SAVEDATE" => FetchAttr::SaveDate,
            b"PREVIEW" => {
                // `PREVIEW (LAZY)` may answer NIL when not at hand; ours always is. (A ` (`
                // after a lone PREVIEW may also open the FETCH modifiers.)
                if self
                    .rest()
                    .get(..7)
                    .is_some_and(|r| r.eq_ignore_ascii_case(b" (LAZY)"))
                {
                    self.pos += 7;
                }
                FetchAttr::Preview
            }
            b"BODY" if !at_bracket => FetchAttr::Body,
            b"BODY" | b"BODY.PEEK" => {
                let peek = name.len() > 4;
                let section = self.section()?;
                let partial = self.partial()?;
                FetchAttr::BodySection {
                    peek,
                    section,
                    partial,
                }
            }
            b"BINARY" | b"BINARY.PEEK" => {
                let peek = name.len() > 6;
                let part = self.binary_section()?;
                let partial = self.partial()?;
                FetchAttr::Binary {
                    peek,
                    part,
                    partial,
                }
            }
            b"BINARY.SIZE" => FetchAttr::BinarySize {
                part: self.binary_section()?,
            },
            _ => return Err(E::Bad(K::UnknownFetchAttribute)),
        })
    }

    fn part_number(&mut self) -> R<u32> {
        match self.number("part number") {
            Ok(0) | Err(E::Bad(_)) => Err(E::Bad(K::InvalidSection)),
            other => other,
        }
    }

    fn section(&mut self) -> R<Section<'a>> {
        self.expect(b'[', K::InvalidSection)?;
        let mut section = Section::default();
        if self.peek()?.is_ascii_digit() {
            loop {
                section.part.push(self.part_number()?);
                if self.peek()? != b'.' {
                    break;
                }
                self.pos += 1;
                if !self.peek()?.is_ascii_digit() {
                    section.text = Some(self.section_text(true)?);
                    break;
                }
            }
        } else if self.peek()? != b']' {
            section.text = Some(self.section_text(false)?);
        }
        self.expect(b']', K::InvalidSection)?;
        Ok(section)
    }

    fn section_text(&mut self, after_part: bool) -> R<SectionText<'a>> {
        let name = self.peek_name();
        if name.len() == self.rest().len() {
            return Err(E::Incomplete);
        }
        self.pos += name.len();
        Ok(match Upper::new(name).get() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if after_part => SectionText::Mime,
            b"HEADER.FIELDS" => SectionText::HeaderFields(self.header_list()?),
            b"HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(self.header_list()?),
            _ => return Err(E::Bad(K::InvalidSection)),
        })
    }

    fn header_list(&mut self) -> R<Vec<Cow<'a, [u8]>>> {
        self.sp("header field list")?;
        self.open_paren("header field list")?;
        let mut names = Vec::new();
        loop {
            names.push(self.astring("header field name")?);
            if self.peek()? == b' ' {
                self.pos += 1;
            } else {
                self.close_paren()?;
                return Ok(names);
            }
        }
    }

    fn binary_section(&mut self) -> R<Vec<u32>> {
        self.expect(b'[', K::InvalidSection)?;
        let mut part = Vec::new();
        if self.peek()? != b']' {
            loop {
                part.push(self.part_number()?);
                if self.peek()? == b'.' {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect(b']', K::InvalidSection)?;
        Ok(part)
    }

    fn partial(&mut self) -> R<Option<Partial>> {
        if self.peek()? != b'<' {
            return Ok(None);
        }
        self.pos += 1;
        let bad = |e: E| match e {
            E::Incomplete => E::Incomplete,
            E::Bad(_) => E::Bad(K::InvalidSection),
        };
        let offset = self.number64("partial offset").map_err(bad)?;
        self.expect(b'.', K::InvalidSection)?;
        let length = self.number64("partial length").map_err(bad)?;
        self.expect(b'>', K::InvalidSection)?;
        if length == 0 {
            return Err(E::Bad(K::InvalidSection));
        }
        Ok(Some(Partial { offset, length }))
    }

    fn store(&mut self, uid: bool) -> R<StoreArgs<'a>> {
        self.sp("sequence set")?;
        let set = self.sequence_arg()?;
        self.sp("flags item")?;
        let mut unchanged_since = None;
        if self.peek()? == b'(' {
            self.pos += 1;
            if !self.eat_keyword(b"UNCHANGEDSINCE") {
                return Err(E::Bad(K::UnknownOption("STORE modifier")));
            }
            self.sp("mod-sequence")?;
            unchanged_since = Some(self.number64("mod-sequence")?);
            self.close_paren()?;
            self.sp("flags item")?;
        }
        let item = self.atom("flags item")?;
        let (mode, silent) = match Upper::new(item.as_bytes()).get() {
            b"FLAGS" => (StoreMode::Replace, false),
            b"FLAGS.SILENT" => (StoreMode::Replace, true),
            b"+FLAGS" => (StoreMode::Add, false),
            b"+FLAGS.SILENT" => (StoreMode::Add, true),
            b"-FLAGS" => (StoreMode::Remove, false),
            b"-FLAGS.SILENT" => (StoreMode::Remove, true),
            _ => return Err(E::Bad(K::Expected("FLAGS, +FLAGS or -FLAGS"))),
        };
        self.sp("flags")?;
        let flags = if self.peek()? == b'(' {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.peek()? == b' ' {
                self.pos += 1;
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(StoreArgs {
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        })
    }
}

/// Parse one complete frame (a whole command ending in its line end).
pub(super) fn parse_frame<'a>(
    frame: &'a [u8],
    limits: &Limits,
) -> Result<Command<'a>, (Option<&'a str>, ParseErrorKind)> {
    let mut p = P::new(frame, limits);
    let tag = p.tag().map_err(|k| (None, k))?;
    let result = (|| {
        if p.peek()? == b' ' {
            p.pos += 1;
        } else {
            return Err(E::Bad(K::MissingCommand));
        }
        let kind = p.command()?;
        if p.pos != frame.len() {
            return Err(E::Bad(K::ExtraArguments));
        }
        Ok(kind)
    })();
    match result {
        Ok(kind) => Ok(Command { tag, kind }),
        Err(e) => Err((Some(tag), e.kind())),
    }
}

/// `tag SP APPEND SP mailbox SP [flags SP] [date-time SP] {n}CRLF`, ending exactly there.
pub(super) fn append_head<'a>(piece: &'a [u8], limits: &Limits) -> R<AppendHead<'a>> {
    let mut p = P::new(piece, limits);
    let tag = p.tag().map_err(|k| match k {
        K::Truncated => E::Incomplete,
        k => E::Bad(k),
    })?;
    p.sp("command name")?;
    if !p.eat_keyword(b"APPEND") {
        return Err(E::Bad(K::Expected("APPEND")));
    }
    let mailbox = p.sp_mailbox()?;
    let message = p.append_message_head()?;
    if p.pos != piece.len() {
        return Err(E::Bad(K::ExtraArguments));
    }
    Ok(AppendHead {
        tag,
        mailbox,
        message,
    })
}

/// [`FrameEvent::AppendStart`]'s head again, from a copy of the bytes the framer reported
/// (`buf[..len]`): the server hands it to a thread that may block on the file system.
pub fn reparse_append_head<'a>(piece: &'a [u8], limits: &Limits) -> Option<AppendHead<'a>> {
    append_head(piece, limits).ok()
}

/// [`FrameEvent::AppendNext`]'s message head again, from a copy of `buf[..len]`; `close`: the
/// message before it was a `UTF8 (~{n}` one.
pub fn reparse_append_next<'a>(
    piece: &'a [u8],
    limits: &Limits,
    close: bool,
) -> Option<AppendMessageHead<'a>> {
    append_next(piece, limits, close).ok().flatten()
}

/// After a streamed message: a line end (`None`), or the next message's head. `close`: the
/// message was a `UTF8 (~{n}` one, whose `)` comes first.
pub(super) fn append_next<'a>(
    piece: &'a [u8],
    limits: &Limits,
    close: bool,
) -> R<Option<AppendMessageHead<'a>>> {
    let mut p = P::new(piece, limits);
    if close {
        p.close_paren()?;
    }
    if p.at_eol()? {
        p.eol()?;
        return if p.pos == piece.len() {
            Ok(None)
        } else {
            Err(E::Bad(K::ExtraArguments))
        };
    }
    let head = p.append_message_head()?;
    if p.pos != piece.len() {
        return Err(E::Bad(K::ExtraArguments));
    }
    Ok(Some(head))
}
