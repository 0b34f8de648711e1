//! The framer: where commands, literals and streamed APPEND messages begin and end in the
//! read buffer, with the limits and resynchronisation after errors. See the
//! [module documentation](super).

use std::borrow::Cow;

use memchr::memchr;

use super::super::command::{AppendHead, AppendMessageHead, LiteralHead};
use super::ParseErrorKind as K;
use super::grammar::{E, append_head, append_next, is_tag_char};
use super::*;
// ---------------------------------------------------------------------------------------
// The framer
// ---------------------------------------------------------------------------------------

/// What the server must do next; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// Everything buffered has been examined: read more, append, poll again.
    NeedMore,
    /// Send `+ Ready for literal data` now, then poll again.
    Continuation { literal_len: u64 },
    /// `buf[..len]` is one whole command: give it to [`parse_command`], then remove it.
    Command { len: usize },
    /// The command at the front is refused: answer `tag BAD <kind>` (or `NO [TOOBIG]` for
    /// `LiteralTooBig`); `tag` is `None` if unreadable. Keep polling: `Skip` events follow.
    /// Mid-APPEND the server has already seen the tag, but it is repeated here.
    Error {
        tag: Option<Cow<'a, str>>,
        kind: ParseErrorKind,
    },
    /// Remove `len` bytes: they belong to a refused command.
    Skip { len: usize },
    /// An APPEND's first message is announced; `buf[..len]` is the command text up to and
    /// including the literal announcement, already parsed into `head`. Remove `len` bytes.
    /// To refuse the message, answer and call [`Framer::reject_literal`] before polling.
    AppendStart { len: usize, head: AppendHead<'a> },
    /// A further message of the same APPEND (MULTIAPPEND); same contract as `AppendStart`.
    AppendNext {
        len: usize,
        message: AppendMessageHead<'a>,
    },
    /// The next bytes of the current APPEND message: store them, remove `data.len()` bytes.
    AppendData { data: &'a [u8] },
    /// The APPEND command ends here: remove `len` bytes (the line end) and answer.
    AppendDone { len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FState {
    /// Scanning command text for LF.
    Line,
    /// Inside a literal kept in the buffer.
    Literal { remaining: u64 },
    /// Inside a streamed APPEND message.
    Stream {
        len: u64,
        remaining: u64,
        sync: bool,
        binary: bool,
        continued: bool,
    },
    /// Discarding a refused command: first `literal` bytes, then through the line end.
    Discard { literal: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppendPhase {
    Unknown,
    No,
    Head,
    Streaming,
}

/// How many literal announcements per command are checked by parsing the text before them.
pub(super) const MAX_PRECHECKS: u8 = 4;

/// Bytes kept at the front while discarding a long line, so that a literal announcement
/// split across reads is still recognised (`~{` + 20 digits + `+}` + CR is 25).
pub(super) const DISCARD_KEEP: usize = 32;

/// Finds command boundaries in a growing buffer in O(new bytes) per call; see the
/// [module documentation](self) for the protocol.
#[derive(Debug, Clone)]
pub struct Framer {
    limits: Limits,
    pub(super) stream_append: bool,
    pub(super) state: FState,
    /// Bytes of the buffer already examined.
    pos: usize,
    /// Start of the current line piece (after the last literal body).
    line_start: usize,
    /// Command text so far, literal bodies excluded.
    text_len: usize,
    /// Literal bytes this command keeps in the buffer.
    inline_literals: u64,
    append: AppendPhase,
    /// Literal announcements of this command already checked by parsing the text before
    /// them (see [`MAX_PRECHECKS`]).
    prechecks: u8,
    /// The tag of a streamed APPEND, whose first line is no longer buffered.
    tag: String,
    /// The streamed message was a `UTF8 (~{n}` one: its `)` follows the literal.
    utf8_close: bool,
}

impl Framer {
    /// A framer at the start of a command, streaming APPEND messages.
    pub fn new(limits: Limits) -> Self {
        Framer {
            limits,
            stream_append: true,
            state: FState::Line,
            pos: 0,
            line_start: 0,
            text_len: 0,
            inline_literals: 0,
            append: AppendPhase::Unknown,
            prechecks: 0,
            tag: String::new(),
            utf8_close: false,
        }
    }

    /// Whether APPEND messages are streamed (`AppendStart`/`AppendData`/...), the default,
    /// or kept in the buffer and reported as one `Command`.
    pub fn set_stream_append(&mut self, on: bool) {
        self.stream_append = on;
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Change the limits (e.g. after login). Call between commands ([`Framer::is_idle`]);
    /// they apply from the next `poll`.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// True between commands: nothing of a next command has been examined yet.
    pub fn is_idle(&self) -> bool {
        self.state == FState::Line && self.pos == 0 && self.text_len == 0
    }

    /// Refuse the APPEND message just announced by `AppendStart` / `AppendNext` (call before
    /// the next `poll`, after answering `NO`). A synchronizing literal then ends the command
    /// (the client waits for a `+` that never comes); a non-synchronizing one is skipped
    /// together with the rest of the command. Does nothing in any other state.
    pub fn reject_literal(&mut self) {
        if let FState::Stream {
            remaining,
            sync,
            continued,
            ..
        } = self.state
        {
            if sync && !continued {
                self.reset();
            } else {
                self.state = FState::Discard { literal: remaining };
                self.pos = 0;
                self.line_start = 0;
            }
        }
    }

    fn reset(&mut self) {
        self.state = FState::Line;
        self.pos = 0;
        self.line_start = 0;
        self.text_len = 0;
        self.inline_literals = 0;
        self.append = AppendPhase::Unknown;
        self.prechecks = 0;
        self.tag.clear();
        self.utf8_close = false;
    }

    /// Examine the buffer (the whole of it, starting at the current command) and say what
    /// to do next.
    pub fn poll<'a>(&mut self, buf: &'a [u8]) -> FrameEvent<'a> {
        if self.pos > buf.len() {
            // The caller removed more than it was told to; start over where we are.
            self.pos = buf.len();
        }
        self.line_start = self.line_start.min(self.pos);
        loop {
            match self.state {
                FState::Line => {
                    if let Some(ev) = self.scan_line(buf) {
                        return ev;
                    }
                }
                FState::Literal { remaining } => {
                    let avail = (buf.len() - self.pos) as u64;
                    if avail >= remaining {
                        // remaining <= avail, which fits in usize.
                        self.pos += remaining as usize;
                        self.line_start = self.pos;
                        self.state = FState::Line;
                    } else {
                        self.pos = buf.len();
                        self.state = FState::Literal {
                            remaining: remaining - avail,
                        };
                        return FrameEvent::NeedMore;
                    }
                }
                FState::Stream {
                    len,
                    remaining,
                    sync,
                    binary,
                    continued,
                } => {
                    if sync && !continued {
                        self.state = FState::Stream {
                            len,
                            remaining,
                            sync,
                            binary,
                            continued: true,
                        };
                        if buf.is_empty() {
                            return FrameEvent::Continuation { literal_len: len };
                        }
                    }
                    if remaining == 0 {
                        self.state = FState::Line;
                        self.pos = 0;
                        self.line_start = 0;
                        continue;
                    }
                    if buf.is_empty() {
                        return FrameEvent::NeedMore;
                    }
                    let n = buf
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let data = buf.get(..n).unwrap_or_default();
                    if !binary && memchr(0, data).is_some() {
                        self.state = FState::Discard { literal: remaining };
                        self.pos = 0;
                        return FrameEvent::Error {
                            tag: Some(Cow::Owned(self.tag.clone())),
                            kind: ParseErrorKind::Nul,
                        };
                    }
                    self.state = FState::Stream {
                        len,
                        remaining: remaining - n as u64,
                        sync,
                        binary,
                        continued: true,
                    };
                    return FrameEvent::AppendData { data };
                }
                FState::Discard { literal } => return self.discard(buf, literal),
            }
        }
    }

    fn discard<'a>(&mut self, buf: &'a [u8], literal: u64) -> FrameEvent<'a> {
        if literal > 0 {
            let n = buf
                .len()
                .min(usize::try_from(literal).unwrap_or(usize::MAX));
            if n == 0 {
                return FrameEvent::NeedMore;
            }
            self.state = FState::Discard {
                literal: literal - n as u64,
            };
            self.pos = 0;
            return FrameEvent::Skip { len: n };
        }
        let rest = buf.get(self.pos..).unwrap_or_default();
        match memchr(b'\n', rest) {
            Some(off) => {
                let lf = self.pos + off;
                let ann = announcement(buf.get(..lf).unwrap_or_default());
                self.reset();
                if let Some(head) = ann
                    && !head.sync
                {
                    self.state = FState::Discard { literal: head.len };
                }
                FrameEvent::Skip { len: lf + 1 }
            }
            None if buf.len() > DISCARD_KEEP => {
                self.pos = DISCARD_KEEP;
                FrameEvent::Skip {
                    len: buf.len() - DISCARD_KEEP,
                }
            }
            None => {
                self.pos = buf.len();
                FrameEvent::NeedMore
            }
        }
    }

    fn error_tag<'a>(&self, buf: &'a [u8]) -> Option<Cow<'a, str>> {
        if self.append == AppendPhase::Streaming {
            Some(Cow::Owned(self.tag.clone()))
        } else {
            // Only within the first max_line bytes, so that the answer does not depend on
            // how much of an over-long line happens to be buffered.
            let head = buf.get(..self.limits.max_line).unwrap_or(buf);
            extract_tag(head).map(Cow::Borrowed)
        }
    }

    /// Refuse the current command; `at` is where discarding resumes scanning (the LF of the
    /// offending line, or the end of the buffer).
    fn fail<'a>(&mut self, buf: &'a [u8], at: usize, kind: ParseErrorKind) -> FrameEvent<'a> {
        let tag = self.error_tag(buf);
        self.pos = at;
        self.state = FState::Discard { literal: 0 };
        FrameEvent::Error { tag, kind }
    }

    fn start_stream(&mut self, lit: LiteralHead) {
        self.state = FState::Stream {
            len: lit.len,
            remaining: lit.len,
            sync: lit.sync,
            binary: lit.binary,
            continued: false,
        };
        self.pos = 0;
        self.line_start = 0;
    }

    /// Scan for the end of the current line piece; `None` means "state changed, go on".
    fn scan_line<'a>(&mut self, buf: &'a [u8]) -> Option<FrameEvent<'a>> {
        let rest = buf.get(self.pos..).unwrap_or_default();
        let found = memchr(b'\n', rest);
        let scanned = found.map_or(rest.len(), |o| o + 1);
        let text_len = self.text_len.saturating_add(scanned);
        if text_len > self.limits.max_line {
            let at = found.map_or(buf.len(), |o| self.pos + o);
            let max = self.limits.max_line;
            return Some(self.fail(buf, at, ParseErrorKind::LineTooLong { max }));
        }
        self.text_len = text_len;
        let Some(off) = found else {
            self.pos = buf.len();
            return Some(FrameEvent::NeedMore);
        };
        let lf = self.pos + off;
        self.pos = lf + 1;
        let line = buf.get(self.line_start..lf).unwrap_or_default();
        let Some(head) = announcement(line) else {
            let len = self.pos;
            if self.append == AppendPhase::Streaming {
                let piece = buf.get(..len).unwrap_or_default();
                return Some(match append_next(piece, &self.limits, self.utf8_close) {
                    Ok(None) => {
                        self.reset();
                        FrameEvent::AppendDone { len }
                    }
                    Ok(Some(_)) => self.fail(buf, lf, ParseErrorKind::ExtraArguments),
                    Err(e) => self.fail(buf, lf, e.kind()),
                });
            }
            self.reset();
            return Some(FrameEvent::Command { len });
        };
        let max = self.limits.max_literal;
        let too_big = ParseErrorKind::LiteralTooBig { len: head.len, max };
        if self.append == AppendPhase::Streaming {
            if head.len > max {
                return Some(self.fail(buf, lf, too_big));
            }
            let piece = buf.get(..self.pos).unwrap_or_default();
            return Some(match append_next(piece, &self.limits, self.utf8_close) {
                Ok(Some(message)) => {
                    let len = self.pos;
                    self.utf8_close = message.utf8;
                    self.start_stream(message.literal);
                    FrameEvent::AppendNext { len, message }
                }
                Ok(None) => self.fail(buf, lf, ParseErrorKind::ExtraArguments),
                Err(e) => self.fail(buf, lf, e.kind()),
            });
        }
        if self.stream_append && self.append != AppendPhase::No {
            if self.append == AppendPhase::Unknown {
                // This is the first literal, so the current piece is the first line.
                self.append = if is_append(buf.get(..self.pos).unwrap_or_default()) {
                    AppendPhase::Head
                } else {
                    AppendPhase::No
                };
            }
            if self.append == AppendPhase::Head {
                let piece = buf.get(..self.pos).unwrap_or_default();
                match append_head(piece, &self.limits) {
                    Ok(head) => {
                        if head.message.literal.len > max {
                            return Some(self.fail(buf, lf, too_big));
                        }
                        let len = self.pos;
                        self.tag.clear();
                        self.tag.push_str(head.tag);
                        self.append = AppendPhase::Streaming;
                        self.utf8_close = head.message.utf8;
                        self.start_stream(head.message.literal);
                        return Some(FrameEvent::AppendStart { len, head });
                    }
                    // A literal inside the head (the mailbox name): keep it in the buffer.
                    Err(E::Incomplete) => {}
                    Err(E::Bad(kind)) => return Some(self.fail(buf, lf, kind)),
                }
            }
        }
        // Refuse a command that is already wrong before its literal (an unknown command, a
        // bad argument) instead of inviting or buffering the literal. The parser only says
        // "incomplete" when it runs out of input, so a prefix error is the error the whole
        // command would get. Bounded per command to keep framing linear.
        if self.prechecks < MAX_PRECHECKS {
            self.prechecks += 1;
            let piece = buf.get(..self.pos).unwrap_or_default();
            if let Err((_, kind)) = parse_frame(piece, &self.limits)
                && kind != K::Truncated
            {
                return Some(self.fail(buf, lf, kind));
            }
        }
        let total = self.inline_literals.saturating_add(head.len);
        if head.len > max || total > max {
            let kind = ParseErrorKind::LiteralTooBig { len: total, max };
            return Some(self.fail(buf, lf, kind));
        }
        self.inline_literals = total;
        self.state = FState::Literal {
            remaining: head.len,
        };
        if head.sync && buf.len() == self.pos {
            return Some(FrameEvent::Continuation {
                literal_len: head.len,
            });
        }
        None
    }
}

/// Longest literal length accepted, in digits (u64::MAX has 20); a longer run of digits
/// is not an announcement for the framer and a `BadLiteral` for the parser, so the two
/// agree, and the framer's look-back stays within [`DISCARD_KEEP`].
pub(super) const MAX_LITERAL_DIGITS: usize = 20;

/// The literal announcement ending a line (CR/LF already removed or not), if any.
pub(super) fn announcement(line: &[u8]) -> Option<LiteralHead> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let (line, sync) = match line.strip_suffix(b"+") {
        Some(l) => (l, false),
        None => (line, true),
    };
    let ndigits = line
        .iter()
        .rev()
        .take(MAX_LITERAL_DIGITS + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if ndigits == 0 || ndigits > MAX_LITERAL_DIGITS {
        return None;
    }
    let (rest, digits) = line.split_at(line.len() - ndigits);
    let rest = rest.strip_suffix(b"{")?;
    let binary = rest.ends_with(b"~");
    let len = digits.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some(LiteralHead { len, sync, binary })
}

/// Does the command's first line (`line`, through its LF) start with `tag SP APPEND SP`?
pub(super) fn is_append(line: &[u8]) -> bool {
    let Some(sp) = memchr(b' ', line) else {
        return false;
    };
    line.get(sp + 1..sp + 8)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND "))
}

/// The tag at the front of the buffer, if it is a valid tag followed by SP or a line end.
pub(super) fn extract_tag(buf: &[u8]) -> Option<&str> {
    let n = buf.iter().take_while(|&&c| is_tag_char(c)).count();
    if n == 0 || !matches!(buf.get(n), Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    std::str::from_utf8(buf.get(..n)?).ok()
}
