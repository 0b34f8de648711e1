//! The sans-I/O IMAP command parser: bytes in, [`Command`] values out.
//!
//! This module owns the client side of the wire grammar (RFC 3501 / RFC 9051 and the
//! extensions listed in [`command`](super::command)): finding where a command ends in a byte
//! stream ([`Framer`]), turning one complete command into a [`Command`] ([`parse_command`]),
//! and the two non-command lines a client can send — IDLE's `DONE` ([`parse_done_line`]) and
//! SASL responses ([`parse_authenticate_response`]). It never does I/O, never panics on any
//! input, and never copies except to unescape a quoted string.
//!
//! # Two layers: framing, then parsing
//!
//! A command is one line, except that a literal (`{n}`, `{n+}`, `~{n}`) at the end of a line
//! makes the next `n` bytes part of the command and the line continue after them. The
//! [`Framer`] finds command boundaries in O(new bytes) per call: it remembers how far it has
//! scanned, looks for LF with `memchr`, checks each line end for a literal announcement and
//! skips literal bodies by arithmetic, so a 50 MB literal arriving in 4 KiB reads costs
//! nothing per read. Only when a whole command is buffered does the server run the full
//! grammar, [`parse_command`], over it — once.
//!
//! The framer works on the server's read buffer, always passed whole (`&buf`) and always
//! starting at the current command; it never owns bytes. Events that name a length tell the
//! server to remove that many bytes from the front of the buffer before the next `poll`:
//!
//! | event | server action |
//! |---|---|
//! | `NeedMore` | read from the socket, append to the buffer, poll again |
//! | `Continuation` | send `+ Ready for literal data`, poll again |
//! | `Command { len }` | `parse_command(&buf[..len])`, run it, drop `len` |
//! | `Error { tag, kind }` | answer `tag BAD <kind>` (`tag NO [TOOBIG] <kind>` for `LiteralTooBig`), poll again: `Skip` events follow |
//! | `Skip { len }` | drop `len` (resynchronising after an error) |
//! | `AppendStart { len, head }` / `AppendNext { len, message }` | open a spool for one APPEND message; drop `len` (or refuse: answer `NO`, call [`Framer::reject_literal`]) |
//! | `AppendData { data }` | write `data` to the spool, drop `data.len()` |
//! | `AppendDone { len }` | commit the messages, answer `OK`, drop `len` |
//!
//! ```text
//! let mut framer = Framer::new(limits);
//! loop {
//!     match framer.poll(&buf) {
//!         FrameEvent::NeedMore => read_more(&mut buf)?,               // append to buf
//!         FrameEvent::Continuation { .. } => write(b"+ Ready for literal data\r\n")?,
//!         FrameEvent::Command { len } => {
//!             match parse_command(&buf[..len], &limits) {
//!                 Ok(Parsed::Complete { command, .. }) => run(command)?,
//!                 Err(e) => bad(e.tag, e.kind)?,                       // e.skip == len
//!                 Ok(Parsed::Incomplete(_)) => unreachable!("frames are complete"),
//!             }
//!             buf.drain(..len);
//!         }
//!         FrameEvent::Error { tag, kind } => bad(tag.as_deref(), kind)?, // Skips follow
//!         FrameEvent::Skip { len } => drop(buf.drain(..len)),
//!         FrameEvent::AppendStart { len, head } => { open_spool(&head)?; buf.drain(..len); }
//!         FrameEvent::AppendNext { len, message } => { next_spool(&message)?; buf.drain(..len); }
//!         FrameEvent::AppendData { data } => { let n = data.len(); spool(data)?; buf.drain(..n); }
//!         FrameEvent::AppendDone { len } => { commit_append()?; buf.drain(..len); }
//!     }
//! }
//! ```
//!
//! After `IDLE` and `AUTHENTICATE` (answered with `+`), the server reads the next line from
//! the same buffer with [`parse_done_line`] / [`parse_authenticate_response`] instead of
//! polling; the framer is idle between commands, so nothing is lost.
//!
//! ## Literals, limits and resynchronisation
//!
//! * A synchronizing literal `{n}` yields one `Continuation` when its announcement is the
//!   last thing buffered (the client is waiting); a non-synchronizing `{n+}` (LITERAL+) never
//!   does.
//! * Before accepting a literal the framer parses the command text in front of it (for the
//!   first four literals of a command): an unknown command or a bad argument is refused with
//!   `Error` right away, with no `+` and without buffering the literal.
//! * [`Limits::max_line`] bounds the command text, literal bodies excluded. Beyond it the
//!   framer reports [`ParseErrorKind::LineTooLong`] and then skips to the end of the line.
//! * [`Limits::max_literal`] bounds each literal and also the sum of literal bytes one
//!   command keeps in the buffer (streamed APPEND messages are not kept, so each may be up to
//!   the limit). A too-big synchronizing literal is refused without `+`: the client stops
//!   there, and only the announcing line is skipped. A too-big non-synchronizing literal is
//!   already on its way: its bytes and the rest of the line are skipped.
//! * Skipping follows literal announcements at the ends of the skipped lines, so the bytes of
//!   a non-synchronizing literal are never mistaken for a command.
//!
//! ## APPEND is streamed
//!
//! With streaming on (the default, [`Framer::set_stream_append`]), an APPEND message literal
//! is not buffered: the framer parses the command text up to the literal announcement and
//! reports [`FrameEvent::AppendStart`] with the tag, mailbox, flags, date and literal length
//! (so the server can refuse with `NO [TRYCREATE]` or `NO [TOOBIG]` before sending `+`), then
//! hands the message over in [`FrameEvent::AppendData`] chunks as they arrive, then either
//! `AppendNext` (MULTIAPPEND: another message) or `AppendDone`. A message in a plain
//! `{n}` literal may not contain NUL (`Error` with [`ParseErrorKind::Nul`] mid-stream);
//! `~{n}` (literal8, APPEND with BINARY) may.
//!
//! ## One-shot parsing
//!
//! [`parse_command`] also accepts an incomplete buffer and says what is missing
//! ([`Needed`]); it frames from scratch each time, so re-calling it after every read of a
//! large literal rescans: use [`Needed::Literal`] to wait until enough bytes are there, or use
//! the framer.
//!
//! ## Lexical choices
//!
//! * Lines end with CRLF; a bare LF is accepted as well (telnet/netcat users and some test
//!   tools send it), everywhere a CRLF is allowed, including after a literal announcement. A
//!   CR not followed by LF is an error.
//! * Keywords (command names, FETCH items, SEARCH keys, options) are case-insensitive.
//! * Quoted strings accept UTF-8 (RFC 9051 `utf8-quoted`) and only the escapes `\"` and
//!   `\\`; CR, LF and NUL end them with an error.
//! * Atoms are printable ASCII without `( ) { SP % * " \ ]`; astrings also allow `]`; a
//!   byte with the high bit set in an atom is an error (send a literal or a quoted string).
//! * NUL is an error everywhere except inside a literal8.

use std::borrow::Cow;
use std::fmt;

use memchr::memchr;

use super::command::{
    AppendHead, AppendMessage, AppendMessageHead, Command, CommandKind, Date, DateTime, FetchArgs,
    FetchAttr, Flag, ListArgs, ListReturn, ListSelect, LiteralHead, Mailbox, Partial, SearchArgs,
    SearchKey, SearchReturn, Section, SectionText, SelectParams, SeqBound, SeqRange, SequenceArg,
    SequenceSet, SpecialUse, StatusItem, StoreArgs, StoreMode, month_from_name,
};

/// Resource limits for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of command text, literal bodies excluded (default 64 KiB).
    pub max_line: usize,
    /// Bytes of one literal, and of all literal bodies one command keeps in the buffer
    /// (default 64 MiB; the server passes its APPENDLIMIT).
    pub max_literal: u64,
    /// Nesting of SEARCH parentheses / NOT / OR (default 64; values above 256 act as 256).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// The hard cap on [`Limits::max_depth`], to keep recursion within any thread's stack.
const DEPTH_CAP: usize = 256;

/// Result of [`parse_command`] on a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// One whole command was parsed from the front of the buffer; it spans `consumed` bytes.
    Complete {
        command: Command<'a>,
        consumed: usize,
    },
    /// Feed more bytes and call again with the same (grown) buffer.
    Incomplete(Needed),
}

/// What [`parse_command`] is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// No complete line yet.
    More,
    /// A synchronizing literal was announced at the very end of the buffer: the server must
    /// send `+ Ready` (once; the client sends nothing until then) and read on.
    Continuation { literal_len: u64 },
    /// A literal is arriving and `remaining` of its bytes are still missing; calling again
    /// before they are all there only reports a smaller `remaining`.
    Literal { remaining: u64 },
}

/// Why a command was rejected. Every kind becomes `tag BAD <Display>` (with `*` if there is
/// no readable tag), except [`ParseErrorKind::LiteralTooBig`], which servers usually answer
/// with `tag NO [TOOBIG] <Display>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The line was empty.
    EmptyLine,
    /// The line does not start with a valid tag followed by a space.
    BadTag,
    /// A tag but no command name.
    MissingCommand,
    /// The command name is not one this server knows.
    UnknownCommand,
    /// An argument is missing at the end of the line.
    MissingArgument(&'static str),
    /// Something else was found where this was expected.
    Expected(&'static str),
    /// A space was expected before this argument.
    ExpectedSpace(&'static str),
    /// Text after the last argument.
    ExtraArguments,
    /// A `(` without its `)` or a stray `)`.
    UnbalancedParens,
    /// A malformed sequence set.
    InvalidSequenceSet,
    /// A sequence number or UID of 0.
    SequenceZero,
    /// A number larger than the grammar allows (u32 for numbers, u64 for number64).
    NumberTooBig,
    /// A malformed SEARCH date.
    InvalidDate,
    /// A malformed APPEND date-time.
    InvalidDateTime,
    /// A backslash in a quoted string not followed by `"` or `\`.
    BadEscape,
    /// A quoted string runs into the end of the line.
    UnterminatedQuoted,
    /// A byte with the high bit set where only ASCII is allowed.
    EightBit,
    /// A NUL byte.
    Nul,
    /// A control character (or a lone CR) where it is not allowed.
    BadCharacter,
    /// SEARCH criteria nested deeper than the limit.
    TooDeep { max: usize },
    /// The command text is longer than the limit.
    LineTooLong { max: usize },
    /// A literal (or the sum of a command's literals) is larger than the limit.
    LiteralTooBig { len: u64, max: u64 },
    /// A malformed literal announcement.
    BadLiteral,
    /// A malformed flag.
    InvalidFlag,
    /// `\Recent` or `\*` where a client may not set flags to them.
    FlagNotAllowed,
    /// Not a FETCH data item.
    UnknownFetchAttribute,
    /// A malformed `[section]` or `<partial>`.
    InvalidSection,
    /// Not a SEARCH key.
    UnknownSearchKey,
    /// Not a STATUS data item.
    UnknownStatusItem,
    /// An unknown option or parameter of the named kind.
    UnknownOption(&'static str),
    /// Malformed base64.
    InvalidBase64,
    /// A syntactically valid but unacceptable combination.
    Invalid(&'static str),
    /// A DONE line was expected (IDLE).
    ExpectedDone,
    /// The input ended inside the construct (only from functions given partial input).
    Truncated,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseErrorKind as K;
        match self {
            K::EmptyLine => f.write_str("Empty command line"),
            K::BadTag => f.write_str("Missing or invalid tag"),
            K::MissingCommand => f.write_str("Missing command name"),
            K::UnknownCommand => f.write_str("Unknown command"),
            K::MissingArgument(what) => write!(f, "Missing argument: expected {what}"),
            K::Expected(what) => write!(f, "Syntax error: expected {what}"),
            K::ExpectedSpace(what) => write!(f, "Syntax error: expected a space before {what}"),
            K::ExtraArguments => f.write_str("Unexpected extra arguments"),
            K::UnbalancedParens => f.write_str("Unbalanced parentheses"),
            K::InvalidSequenceSet => f.write_str("Invalid sequence set"),
            K::SequenceZero => f.write_str("Invalid sequence set: 0 is not a valid number"),
            K::NumberTooBig => f.write_str("Number out of range"),
            K::InvalidDate => f.write_str("Invalid date (expected d-Mon-yyyy)"),
            K::InvalidDateTime => {
                f.write_str("Invalid date-time (expected \"dd-Mon-yyyy hh:mm:ss +zzzz\")")
            }
            K::BadEscape => {
                f.write_str("Invalid escape in quoted string (only \\\" and \\\\ are allowed)")
            }
            K::UnterminatedQuoted => f.write_str("Quoted string not terminated before end of line"),
            K::EightBit => f.write_str("8-bit character not allowed here (use a literal)"),
            K::Nul => f.write_str("NUL character not allowed"),
            K::BadCharacter => f.write_str("Control character not allowed"),
            K::TooDeep { max } => write!(f, "Search criteria nested too deeply (limit {max})"),
            K::LineTooLong { max } => write!(f, "Command line too long (limit {max} bytes)"),
            K::LiteralTooBig { len, max } => {
                write!(f, "Literal of {len} bytes exceeds the limit of {max} bytes")
            }
            K::BadLiteral => f.write_str("Invalid literal (expected {n} or {n+} and a line end)"),
            K::InvalidFlag => f.write_str("Invalid flag"),
            K::FlagNotAllowed => f.write_str("The \\Recent and \\* flags cannot be set by clients"),
            K::UnknownFetchAttribute => f.write_str("Unknown FETCH attribute"),
            K::InvalidSection => f.write_str("Invalid body section or partial range"),
            K::UnknownSearchKey => f.write_str("Unknown SEARCH key"),
            K::UnknownStatusItem => f.write_str("Unknown STATUS item"),
            K::UnknownOption(what) => write!(f, "Unknown {what}"),
            K::InvalidBase64 => f.write_str("Invalid base64"),
            K::Invalid(why) => write!(f, "Invalid arguments: {why}"),
            K::ExpectedDone => f.write_str("Expected DONE"),
            K::Truncated => f.write_str("Command is incomplete"),
        }
    }
}

impl std::error::Error for ParseErrorKind {}

/// A rejected command.
#[derive(Debug, Clone)]
pub struct ParseError<'a> {
    /// The command's tag, when one could be read (answer `tag BAD ...`, else `* BAD ...`).
    pub tag: Option<&'a str>,
    pub kind: ParseErrorKind,
    /// Bytes to remove from the front of the buffer to get past the offending command.
    pub skip: usize,
    /// `Some` when the offending command has not fully arrived (only for `LineTooLong` and
    /// `LiteralTooBig`): after removing `skip` bytes, drive this framer; it reports `Skip`
    /// events up to the end of the command (following non-synchronizing literals) and then
    /// frames the next command.
    pub resync: Option<Box<Framer>>,
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for ParseError<'_> {}

/// Parse one command from the front of `buf`.
///
/// Returns [`Parsed::Complete`] with the number of bytes the command spans, or
/// [`Parsed::Incomplete`] with what is missing, or a [`ParseError`] that says how many bytes
/// to discard. Given the `len` bytes of a [`FrameEvent::Command`], it returns `Complete`
/// with `consumed == len`, or an error with `skip == len`.
pub fn parse_command<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ParseError<'a>> {
    let mut framer = Framer::new(*limits);
    framer.stream_append = false;
    match framer.poll(buf) {
        FrameEvent::Command { len } => {
            let frame = buf.get(..len).unwrap_or(buf);
            match parse_frame(frame, limits) {
                Ok(command) => Ok(Parsed::Complete {
                    command,
                    consumed: len,
                }),
                Err((tag, kind)) => Err(ParseError {
                    tag,
                    kind,
                    skip: len,
                    resync: None,
                }),
            }
        }
        FrameEvent::NeedMore => Ok(Parsed::Incomplete(match framer.state {
            FState::Literal { remaining } => Needed::Literal { remaining },
            _ => Needed::More,
        })),
        FrameEvent::Continuation { literal_len } => {
            Ok(Parsed::Incomplete(Needed::Continuation { literal_len }))
        }
        FrameEvent::Error { kind, .. } => {
            // Work out how much of the refused command is here, as a server would.
            let tag = extract_tag(buf.get(..limits.max_line).unwrap_or(buf));
            let mut skip = 0usize;
            loop {
                let rest = buf.get(skip..).unwrap_or_default();
                match framer.poll(rest) {
                    FrameEvent::Skip { len } => {
                        skip += len;
                        if framer.is_idle() {
                            return Err(ParseError {
                                tag,
                                kind,
                                skip,
                                resync: None,
                            });
                        }
                    }
                    _ => {
                        return Err(ParseError {
                            tag,
                            kind,
                            skip,
                            resync: Some(Box::new(framer)),
                        });
                    }
                }
            }
        }
        // Not produced with APPEND streaming off, nor as a first event.
        FrameEvent::Skip { .. }
        | FrameEvent::AppendStart { .. }
        | FrameEvent::AppendNext { .. }
        | FrameEvent::AppendData { .. }
        | FrameEvent::AppendDone { .. } => Err(ParseError {
            tag: extract_tag(buf),
            kind: ParseErrorKind::Truncated,
            skip: buf.len(),
            resync: None,
        }),
    }
}

/// An error on a non-command line (IDLE's DONE, a SASL response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineError {
    pub kind: ParseErrorKind,
    /// Bytes to remove from the front of the buffer: the offending line, or everything
    /// buffered if the line is too long and still has no end.
    pub skip: usize,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for LineError {}

/// Longest line [`parse_done_line`] waits for before giving up on it.
const MAX_DONE_LINE: usize = 1024;

/// While IDLE: look for the `DONE` line (any case, CRLF or LF) at the front of `buf`.
///
/// `None`: no complete line yet. `Some(Ok(n))`: DONE, `n` bytes long — end IDLE with
/// `tag OK`. `Some(Err(e))`: any other line (`ExpectedDone`), or more than 1 KiB without a
/// line end (`LineTooLong`); answer `tag BAD`, leave IDLE and remove `e.skip` bytes.
pub fn parse_done_line(buf: &[u8]) -> Option<Result<usize, LineError>> {
    let Some(lf) = memchr(b'\n', buf) else {
        return (buf.len() > MAX_DONE_LINE).then_some(Err(LineError {
            kind: ParseErrorKind::LineTooLong { max: MAX_DONE_LINE },
            skip: buf.len(),
        }));
    };
    let line = buf.get(..lf).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.eq_ignore_ascii_case(b"DONE") {
        Some(Ok(lf + 1))
    } else {
        Some(Err(LineError {
            kind: ParseErrorKind::ExpectedDone,
            skip: lf + 1,
        }))
    }
}

/// A client's answer to an AUTHENTICATE challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResponse<'a> {
    /// Base64 text, validated but not decoded ([`decode_base64`]); empty for an empty line.
    Data(&'a [u8]),
    /// `*`: the client cancels; answer `tag BAD`.
    Cancel,
}

/// During AUTHENTICATE: parse one response line from the front of `buf`.
///
/// `None`: no complete line yet. `Some(Ok((response, n)))`: the line was `n` bytes.
/// `Some(Err(e))`: not base64 (`InvalidBase64`) or longer than `limits.max_line`
/// (`LineTooLong`); fail the authentication with `tag BAD` and remove `e.skip` bytes.
pub fn parse_authenticate_response<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Option<Result<(AuthResponse<'a>, usize), LineError>> {
    let too_long = ParseErrorKind::LineTooLong {
        max: limits.max_line,
    };
    let Some(lf) = memchr(b'\n', buf) else {
        return (buf.len() > limits.max_line).then_some(Err(LineError {
            kind: too_long,
            skip: buf.len(),
        }));
    };
    let n = lf + 1;
    if n > limits.max_line {
        return Some(Err(LineError {
            kind: too_long,
            skip: n,
        }));
    }
    let line = buf.get(..lf).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line == b"*" {
        return Some(Ok((AuthResponse::Cancel, n)));
    }
    if !is_base64(line) {
        return Some(Err(LineError {
            kind: ParseErrorKind::InvalidBase64,
            skip: n,
        }));
    }
    Some(Ok((AuthResponse::Data(line), n)))
}

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Strict RFC 4648 base64 with padding (empty is valid).
fn is_base64(text: &[u8]) -> bool {
    if !text.len().is_multiple_of(4) {
        return false;
    }
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    body.iter().all(|&c| b64_value(c).is_some())
}

/// Decode strict, padded base64 (SASL data); `None` if malformed.
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    if !is_base64(text) {
        return None;
    }
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in body {
        acc = (acc << 6) | b64_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Canonical: the padding bits must be zero.
    (acc == 0).then_some(out)
}

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
enum FState {
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
enum AppendPhase {
    Unknown,
    No,
    Head,
    Streaming,
}

/// How many literal announcements per command are checked by parsing the text before them.
const MAX_PRECHECKS: u8 = 4;

/// Bytes kept at the front while discarding a long line, so that a literal announcement
/// split across reads is still recognised (`~{` + 20 digits + `+}` + CR is 25).
const DISCARD_KEEP: usize = 32;

/// Finds command boundaries in a growing buffer in O(new bytes) per call; see the
/// [module documentation](self) for the protocol.
#[derive(Debug, Clone)]
pub struct Framer {
    limits: Limits,
    stream_append: bool,
    state: FState,
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
const MAX_LITERAL_DIGITS: usize = 20;

/// The literal announcement ending a line (CR/LF already removed or not), if any.
fn announcement(line: &[u8]) -> Option<LiteralHead> {
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
fn is_append(line: &[u8]) -> bool {
    let Some(sp) = memchr(b' ', line) else {
        return false;
    };
    line.get(sp + 1..sp + 8)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND "))
}

/// The tag at the front of the buffer, if it is a valid tag followed by SP or a line end.
fn extract_tag(buf: &[u8]) -> Option<&str> {
    let n = buf.iter().take_while(|&&c| is_tag_char(c)).count();
    if n == 0 || !matches!(buf.get(n), Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    std::str::from_utf8(buf.get(..n)?).ok()
}

// ---------------------------------------------------------------------------------------
// The grammar
// ---------------------------------------------------------------------------------------

/// Internal error: input ran out (only meaningful for partial input), or a real error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    Incomplete,
    Bad(ParseErrorKind),
}

impl E {
    fn kind(self) -> ParseErrorKind {
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

type R<T> = Result<T, E>;
use ParseErrorKind as K;

fn is_atom_char(c: u8) -> bool {
    matches!(c, 0x21..=0x7e) && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(c: u8) -> bool {
    is_atom_char(c) || c == b']'
}

fn is_list_char(c: u8) -> bool {
    is_atom_char(c) || matches!(c, b'%' | b'*' | b']')
}

fn is_tag_char(c: u8) -> bool {
    is_astring_char(c) && c != b'+'
}

/// A keyword upper-cased on the stack for matching; longer words match nothing.
struct Upper {
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

struct P<'a> {
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
                    self.qresync()?;
                    params.qresync = true;
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

    /// `(uidvalidity modseq [known-uids [(seq-set uid-set)]])`, checked and ignored.
    fn qresync(&mut self) -> R<()> {
        self.open_paren("QRESYNC parameters")?;
        let v = self.number("UIDVALIDITY")?;
        if v == 0 {
            return Err(E::Bad(K::Expected("non-zero UIDVALIDITY")));
        }
        self.sp("mod-sequence")?;
        self.number64("mod-sequence")?;
        if self.peek()? == b' ' {
            self.pos += 1;
            if self.peek()? != b'(' {
                self.sequence_set()?;
                if self.peek()? == b' ' {
                    self.pos += 1;
                } else {
                    return self.close_paren();
                }
            }
            self.open_paren("sequence match data")?;
            self.sequence_set()?;
            self.sp("UID set")?;
            self.sequence_set()?;
            self.close_paren()?;
        }
        self.close_paren()
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
        let mut charset = None;
        if self.eat_keyword(b"CHARSET") {
            self.sp("charset")?;
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
            charset = Some(cs);
            self.sp("search criteria")?;
        }
        let mut keys = Vec::new();
        loop {
            keys.push(self.search_key()?);
            if self.peek()? == b' ' {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(SearchArgs {
            uid,
            charset,
            returns,
            keys,
        })
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
fn parse_frame<'a>(
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
fn append_head<'a>(piece: &'a [u8], limits: &Limits) -> R<AppendHead<'a>> {
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
fn append_next<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::command::*;

    fn lim() -> Limits {
        Limits::default()
    }

    fn show(input: &[u8]) -> String {
        String::from_utf8_lossy(input).into_owned()
    }

    fn ok(input: &[u8]) -> Command<'_> {
        match parse_command(input, &lim()) {
            Ok(Parsed::Complete { command, consumed }) => {
                assert_eq!(consumed, input.len(), "{}", show(input));
                command
            }
            other => panic!("{:?}: {other:?}", show(input)),
        }
    }

    fn kind(input: &[u8]) -> CommandKind<'_> {
        ok(input).kind
    }

    /// A rejected complete command: (tag, kind); checks that `skip` covers it all.
    fn bad(input: &[u8]) -> (Option<&str>, ParseErrorKind) {
        match parse_command(input, &lim()) {
            Err(e) => {
                assert_eq!(e.skip, input.len(), "{}", show(input));
                assert!(e.resync.is_none());
                (e.tag, e.kind)
            }
            other => panic!("{:?}: expected an error, got {other:?}", show(input)),
        }
    }

    fn b(s: &str) -> Cow<'_, [u8]> {
        Cow::Borrowed(s.as_bytes())
    }

    fn mbox(s: &str) -> Mailbox<'_> {
        Mailbox(b(s))
    }

    fn n(x: u32) -> SeqBound {
        SeqBound::Num(x)
    }

    fn one(x: u32) -> (SeqBound, SeqBound) {
        (n(x), n(x))
    }

    fn seq(r: &[(SeqBound, SeqBound)]) -> SequenceArg {
        let ranges = r.iter().map(|&(from, to)| SeqRange { from, to }).collect();
        SequenceArg::Set(SequenceSet::new(ranges).unwrap())
    }

    fn fetch(input: &[u8]) -> FetchArgs<'_> {
        match kind(input) {
            CommandKind::Fetch(f) => f,
            other => panic!("{other:?}"),
        }
    }

    fn search(input: &[u8]) -> SearchArgs<'_> {
        match kind(input) {
            CommandKind::Search(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn keys(input: &[u8]) -> Vec<SearchKey<'_>> {
        search(input).keys
    }

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date::new(y, m, d).unwrap()
    }

    fn header_fields(names: &str) -> Vec<Cow<'_, [u8]>> {
        names.split(' ').map(b).collect()
    }

    // ----- simple commands and lexical rules -----

    #[test]
    fn argumentless_commands() {
        let cases: &[(&[u8], CommandKind<'static>)] = &[
            (b"a CAPABILITY\r\n", CommandKind::Capability),
            (b"a NOOP\r\n", CommandKind::Noop),
            (b"a LOGOUT\r\n", CommandKind::Logout),
            (b"a STARTTLS\r\n", CommandKind::StartTls),
            (b"a NAMESPACE\r\n", CommandKind::Namespace),
            (b"a CHECK\r\n", CommandKind::Check),
            (b"a CLOSE\r\n", CommandKind::Close),
            (b"a UNSELECT\r\n", CommandKind::Unselect),
            (b"a EXPUNGE\r\n", CommandKind::Expunge),
            (b"a IDLE\r\n", CommandKind::Idle),
        ];
        for (input, expected) in cases {
            assert_eq!(&kind(input), expected);
            assert_eq!(ok(input).tag, "a");
        }
    }

    #[test]
    fn keywords_are_case_insensitive_and_bare_lf_is_accepted() {
        assert_eq!(kind(b"x1 noop\r\n"), CommandKind::Noop);
        assert_eq!(kind(b"x1 NoOp\n"), CommandKind::Noop);
        assert_eq!(kind(b"x1 capability\n"), CommandKind::Capability);
        let c = ok(b"A.b-c_9]x noop\n");
        assert_eq!(c.tag, "A.b-c_9]x");
        assert_eq!(
            bad(b"a NOOP\rx\r\n"),
            (Some("a"), ParseErrorKind::BadCharacter)
        );
    }

    #[test]
    fn command_names() {
        assert_eq!(kind(b"a uid fetch 1 flags\r\n").name(), "UID FETCH");
        assert_eq!(kind(b"a fetch 1 flags\r\n").name(), "FETCH");
        assert_eq!(kind(b"a UID MOVE 1 x\r\n").name(), "UID MOVE");
    }

    #[test]
    fn login_forms() {
        assert_eq!(
            kind(b"a LOGIN alice s3cret\r\n"),
            CommandKind::Login {
                username: b("alice"),
                password: b("s3cret")
            }
        );
        // Quoted with escapes: owned; without: borrowed.
        let CommandKind::Login { username, password } =
            kind(b"a LOGIN \"al ice\" \"p\\\"w\\\\d\"\r\n")
        else {
            panic!()
        };
        assert!(matches!(username, Cow::Borrowed(b"al ice")));
        assert!(matches!(&password, Cow::Owned(v) if v == b"p\"w\\d"));
        // Literals, synchronizing and not, carrying 8-bit; ']' is an astring char.
        assert_eq!(
            kind(b"a LOGIN {5}\r\nj\xc3\xbcrg {3+}\r\np w\r\n"),
            CommandKind::Login {
                username: Cow::Borrowed(b"j\xc3\xbcrg"),
                password: b("p w")
            }
        );
        assert_eq!(
            kind(b"a login user]x \"\"\r\n"),
            CommandKind::Login {
                username: b("user]x"),
                password: b("")
            }
        );
        assert_eq!(
            bad(b"a LOGIN alice\r\n"),
            (Some("a"), ParseErrorKind::MissingArgument("password"))
        );
        assert_eq!(
            bad(b"a LOGIN alice pw extra\r\n"),
            (Some("a"), ParseErrorKind::ExtraArguments)
        );
    }

    #[test]
    fn authenticate_forms() {
        assert_eq!(
            kind(b"a AUTHENTICATE PLAIN\r\n"),
            CommandKind::Authenticate {
                mechanism: "PLAIN",
                initial_response: None
            }
        );
        assert_eq!(
            kind(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
            CommandKind::Authenticate {
                mechanism: "PLAIN",
                initial_response: Some(b"AGFsaWNlAHNlY3JldA==")
            }
        );
        assert_eq!(
            kind(b"a authenticate xoauth2 =\r\n"),
            CommandKind::Authenticate {
                mechanism: "xoauth2",
                initial_response: Some(b"")
            }
        );
        assert_eq!(
            bad(b"a AUTHENTICATE PLAIN AGFsaWNl=AHN\r\n"),
            (Some("a"), ParseErrorKind::InvalidBase64)
        );
        assert_eq!(
            bad(b"a AUTHENTICATE PLAIN abc\r\n"),
            (Some("a"), ParseErrorKind::InvalidBase64)
        );
    }

    #[test]
    fn id_forms() {
        assert_eq!(kind(b"a ID NIL\r\n"), CommandKind::Id(None));
        assert_eq!(kind(b"a ID ()\r\n"), CommandKind::Id(Some(vec![])));
        let ios = b"a ID (\"name\" \"iPhone Mail\" \"version\" \"19E258\" \"os\" \"iOS\" \"os-version\" \"15.4.1 (19E258)\")\r\n";
        assert_eq!(
            kind(ios),
            CommandKind::Id(Some(vec![
                (b("name"), Some(b("iPhone Mail"))),
                (b("version"), Some(b("19E258"))),
                (b("os"), Some(b("iOS"))),
                (b("os-version"), Some(b("15.4.1 (19E258)"))),
            ]))
        );
        assert_eq!(
            kind(b"a ID (\"name\" NIL {7}\r\nvendor\xff \"x\")\r\n"),
            CommandKind::Id(Some(vec![
                (b("name"), None),
                (Cow::Borrowed(&b"vendor\xff"[..]), Some(b("x"))),
            ]))
        );
        assert_eq!(
            bad(b"a ID (name \"x\")\r\n"),
            (Some("a"), ParseErrorKind::Expected("ID field name"))
        );
        assert_eq!(
            bad(b"a ID (\"name\" \"x\"\r\n"),
            (Some("a"), ParseErrorKind::UnbalancedParens)
        );
        assert_eq!(
            bad(b"a ID (\"name\")\r\n"),
            (Some("a"), ParseErrorKind::ExpectedSpace("ID field value"))
        );
    }

    #[test]
    fn enable_forms() {
        assert_eq!(
            kind(b"a ENABLE CONDSTORE\r\n"),
            CommandKind::Enable(vec!["CONDSTORE"])
        );
        assert_eq!(
            kind(b"a ENABLE QRESYNC IMAP4rev2 UTF8=ACCEPT\r\n"),
            CommandKind::Enable(vec!["QRESYNC", "IMAP4rev2", "UTF8=ACCEPT"])
        );
        assert_eq!(
            bad(b"a ENABLE\r\n"),
            (Some("a"), ParseErrorKind::MissingArgument("capability"))
        );
    }

    #[test]
    fn select_examine() {
        assert_eq!(
            kind(b"a SELECT INBOX\r\n"),
            CommandKind::Select {
                mailbox: mbox("INBOX"),
                params: SelectParams::default()
            }
        );
        assert_eq!(
            kind(b"a examine \"Sent Items\" (CONDSTORE)\r\n"),
            CommandKind::Examine {
                mailbox: mbox("Sent Items"),
                params: SelectParams {
                    condstore: true,
                    qresync: false
                }
            }
        );
        for q in [
            &b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"[..],
            b"a SELECT INBOX (QRESYNC (67890007 90060115194045000))\r\n",
            b"a SELECT INBOX (CONDSTORE QRESYNC (1 2 1:9 (1,5 10,50)))\r\n",
            b"a SELECT INBOX (QRESYNC (1 2 (1 10)))\r\n",
        ] {
            let CommandKind::Select { params, .. } = kind(q) else {
                panic!()
            };
            assert!(params.qresync, "{}", show(q));
        }
        assert_eq!(
            bad(b"a SELECT INBOX (FOO)\r\n"),
            (Some("a"), ParseErrorKind::UnknownOption("SELECT parameter"))
        );
        assert_eq!(
            bad(b"a SELECT INBOX (CONDSTORE\r\n"),
            (Some("a"), ParseErrorKind::UnbalancedParens)
        );
        assert_eq!(
            bad(b"a SELECT\r\n"),
            (Some("a"), ParseErrorKind::MissingArgument("mailbox name"))
        );
        let CommandKind::Select { mailbox, .. } = kind(b"a select inbox\r\n") else {
            panic!()
        };
        assert!(mailbox.is_inbox());
        assert_eq!(mailbox.decode().unwrap(), "INBOX");
    }

    #[test]
    fn mailbox_management() {
        assert_eq!(
            kind(b"a CREATE Drafts (USE (\\Drafts))\r\n"),
            CommandKind::Create {
                mailbox: mbox("Drafts"),
                special_use: vec![SpecialUse::Drafts]
            }
        );
        assert_eq!(
            kind(b"a CREATE x (USE (\\All \\Archive \\Flagged \\Junk \\Sent \\Trash \\Important))\r\n"),
            CommandKind::Create {
                mailbox: mbox("x"),
                special_use: vec![
                    SpecialUse::All,
                    SpecialUse::Archive,
                    SpecialUse::Flagged,
                    SpecialUse::Junk,
                    SpecialUse::Sent,
                    SpecialUse::Trash,
                    SpecialUse::Other("\\Important")
                ]
            }
        );
        assert_eq!(
            kind(b"a CREATE &AMk-t&AOk-\r\n"),
            CommandKind::Create {
                mailbox: mbox("&AMk-t&AOk-"),
                special_use: vec![]
            }
        );
        assert_eq!(
            bad(b"a CREATE x (FOO (\\Drafts))\r\n"),
            (Some("a"), ParseErrorKind::UnknownOption("CREATE parameter"))
        );
        assert_eq!(
            kind(b"a DELETE \"Old\"\r\n"),
            CommandKind::Delete {
                mailbox: mbox("Old")
            }
        );
        assert_eq!(
            kind(b"a RENAME a b\r\n"),
            CommandKind::Rename {
                from: mbox("a"),
                to: mbox("b")
            }
        );
        assert_eq!(
            kind(b"a SUBSCRIBE x\r\n"),
            CommandKind::Subscribe { mailbox: mbox("x") }
        );
        assert_eq!(
            kind(b"a UNSUBSCRIBE {1}\r\nx\r\n"),
            CommandKind::Unsubscribe { mailbox: mbox("x") }
        );
        assert_eq!(
            bad(b"a RENAME a\r\n"),
            (Some("a"), ParseErrorKind::MissingArgument("mailbox name"))
        );
    }

    #[test]
    fn list_basic_and_extended() {
        assert_eq!(
            kind(b"a LIST \"\" *\r\n"),
            CommandKind::List(ListArgs {
                select: ListSelect::default(),
                reference: mbox(""),
                patterns: vec![b("*")],
                returns: ListReturn::default(),
                extended: false,
            })
        );
        assert_eq!(
            kind(b"a list \"\" INBOX.%]\r\n"),
            CommandKind::List(ListArgs {
                select: ListSelect::default(),
                reference: mbox(""),
                patterns: vec![b("INBOX.%]")],
                returns: ListReturn::default(),
                extended: false,
            })
        );
        assert_eq!(
            kind(
                b"a LIST (SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE) \"\" (\"INBOX\" \"Sent/%\" *) RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n"
            ),
            CommandKind::List(ListArgs {
                select: ListSelect {
                    subscribed: true,
                    remote: true,
                    recursive_match: true,
                    special_use: true
                },
                reference: mbox(""),
                patterns: vec![b("INBOX"), b("Sent/%"), b("*")],
                returns: ListReturn {
                    subscribed: true,
                    children: true,
                    special_use: true,
                    status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                },
                extended: true,
            })
        );
        let CommandKind::List(l) = kind(b"a LIST () \"\" % RETURN ()\r\n") else {
            panic!()
        };
        assert!(l.extended);
        assert_eq!(l.returns, ListReturn::default());
        assert_eq!(
            bad(b"a LIST (RECURSIVEMATCH) \"\" *\r\n"),
            (
                Some("a"),
                ParseErrorKind::Invalid("RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE")
            )
        );
        assert_eq!(
            bad(b"a LIST (BOGUS) \"\" *\r\n"),
            (
                Some("a"),
                ParseErrorKind::UnknownOption("LIST selection option")
            )
        );
        assert_eq!(
            bad(b"a LIST \"\" * RETURN (BOGUS)\r\n"),
            (
                Some("a"),
                ParseErrorKind::UnknownOption("LIST return option")
            )
        );
        assert_eq!(
            bad(b"a LIST \"\" * FOO\r\n"),
            (Some("a"), ParseErrorKind::Expected("RETURN"))
        );
        assert_eq!(
            bad(b"a LIST \"\"\r\n"),
            (
                Some("a"),
                ParseErrorKind::MissingArgument("mailbox pattern")
            )
        );
        assert_eq!(
            kind(b"a LSUB \"\" \"*\"\r\n"),
            CommandKind::Lsub {
                reference: mbox(""),
                pattern: b("*")
            }
        );
    }

    #[test]
    fn status_items() {
        assert_eq!(
            kind(
                b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ DELETED)\r\n"
            ),
            CommandKind::Status {
                mailbox: mbox("INBOX"),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::Recent,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::Size,
                    StatusItem::HighestModSeq,
                    StatusItem::Deleted
                ]
            }
        );
        assert_eq!(
            bad(b"a STATUS INBOX (MESSAGES FOO)\r\n"),
            (Some("a"), ParseErrorKind::UnknownStatusItem)
        );
        assert_eq!(
            bad(b"a STATUS INBOX ()\r\n"),
            (Some("a"), ParseErrorKind::Expected("status item"))
        );
        assert_eq!(
            bad(b"a STATUS INBOX MESSAGES\r\n"),
            (Some("a"), ParseErrorKind::Expected("status items"))
        );
    }

    #[test]
    fn append_forms() {
        assert_eq!(
            kind(b"a APPEND INBOX {5}\r\nhello\r\n"),
            CommandKind::Append {
                mailbox: mbox("INBOX"),
                messages: vec![AppendMessage {
                    flags: vec![],
                    date: None,
                    data: b"hello",
                    binary: false
                }]
            }
        );
        let dt = DateTime {
            date: date(2024, 1, 7),
            hour: 9,
            minute: 5,
            second: 59,
            offset_minutes: -270,
        };
        assert_eq!(
            kind(b"a APPEND Drafts (\\Seen \\Draft $Forwarded) \" 7-Jan-2024 09:05:59 -0430\" {2+}\r\nhi\r\n"),
            CommandKind::Append {
                mailbox: mbox("Drafts"),
                messages: vec![AppendMessage {
                    flags: vec![Flag::Seen, Flag::Draft, Flag::Keyword("$Forwarded")],
                    date: Some(dt),
                    data: b"hi",
                    binary: false
                }]
            }
        );
        assert_eq!(
            kind(b"a APPEND x \"07-Jan-2024 09:05:59 -0430\" {0}\r\n\r\n"),
            CommandKind::Append {
                mailbox: mbox("x"),
                messages: vec![AppendMessage {
                    flags: vec![],
                    date: Some(dt),
                    data: b"",
                    binary: false
                }]
            }
        );
        // MULTIAPPEND, literal8 with NUL.
        let CommandKind::Append { messages, .. } =
            kind(b"a APPEND x {1}\r\nA (\\Flagged) ~{3}\r\nB\x00C () {1+}\r\nD\r\n")
        else {
            panic!()
        };
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1].data, b"B\x00C");
        assert!(messages[1].binary);
        assert_eq!(messages[1].flags, vec![Flag::Flagged]);
        assert_eq!(messages[2].data, b"D");
        // Errors (those before the literal are reported at the announcing line).
        assert_eq!(
            bad(b"a APPEND x {3}\r\nB\x00C\r\n"),
            (Some("a"), ParseErrorKind::Nul)
        );
        assert_eq!(
            bad(b"a APPEND x (\\Recent) {1}\r\n"),
            (Some("a"), ParseErrorKind::FlagNotAllowed)
        );
        assert_eq!(
            bad(b"a APPEND x (\\*) {1}\r\n"),
            (Some("a"), ParseErrorKind::FlagNotAllowed)
        );
        assert_eq!(
            bad(b"a APPEND x \"32-Jan-2024 09:05:59 +0000\" {1}\r\n"),
            (Some("a"), ParseErrorKind::InvalidDateTime)
        );
        assert_eq!(
            bad(b"a APPEND x \"7-Jan-2024 09:05:59 +0000\" {1}\r\n"),
            (Some("a"), ParseErrorKind::InvalidDateTime)
        );
        assert_eq!(
            bad(b"a APPEND x \"07-Jan-2024 24:05:59 +0000\" {1}\r\n"),
            (Some("a"), ParseErrorKind::InvalidDateTime)
        );
        assert_eq!(
            bad(b"a APPEND x \"07-Jan-2024 09:05:59 +0060\" {1}\r\n"),
            (Some("a"), ParseErrorKind::InvalidDateTime)
        );
        assert_eq!(
            bad(b"a APPEND x\r\n"),
            (
                Some("a"),
                ParseErrorKind::MissingArgument("message literal")
            )
        );
        assert_eq!(
            bad(b"a APPEND x \"hello\"\r\n"),
            (Some("a"), ParseErrorKind::InvalidDateTime)
        );
        assert_eq!(
            bad(b"a APPEND x {1}\r\nxy\r\n"),
            (Some("a"), ParseErrorKind::ExtraArguments)
        );
        assert_eq!(
            bad(b"a LOGIN ~{1}\r\n"),
            (Some("a"), ParseErrorKind::ExpectedSpace("password"))
        );
    }

    #[test]
    fn mbsync_append_sample() {
        let mut msg = b"a001 APPEND \"INBOX\" (\\Seen) {123+}\r\n".to_vec();
        let body = [b'm'; 123];
        msg.extend_from_slice(&body);
        msg.extend_from_slice(b"\r\n");
        let CommandKind::Append { mailbox, messages } = kind(&msg) else {
            panic!()
        };
        assert!(mailbox.is_inbox());
        assert_eq!(messages[0].flags, vec![Flag::Seen]);
        assert_eq!(messages[0].data, &body[..]);
    }

    #[test]
    fn expunge_copy_move() {
        assert_eq!(
            kind(b"a UID EXPUNGE 3000:3002,4000\r\n"),
            CommandKind::UidExpunge(seq(&[(n(3000), n(3002)), one(4000)]))
        );
        assert_eq!(
            kind(b"a COPY 2:4 MEETING\r\n"),
            CommandKind::Copy {
                uid: false,
                set: seq(&[(n(2), n(4))]),
                mailbox: mbox("MEETING")
            }
        );
        assert_eq!(
            kind(b"a uid copy 1:* \"Trash\"\r\n"),
            CommandKind::Copy {
                uid: true,
                set: seq(&[(n(1), SeqBound::Star)]),
                mailbox: mbox("Trash")
            }
        );
        assert_eq!(
            kind(b"a MOVE $ Archive\r\n"),
            CommandKind::Move {
                uid: false,
                set: SequenceArg::Saved,
                mailbox: mbox("Archive")
            }
        );
        assert_eq!(
            kind(b"a UID MOVE 42 Archive\r\n"),
            CommandKind::Move {
                uid: true,
                set: seq(&[one(42)]),
                mailbox: mbox("Archive")
            }
        );
        assert_eq!(
            bad(b"a UID FROB 1\r\n"),
            (Some("a"), ParseErrorKind::UnknownCommand)
        );
        assert_eq!(
            bad(b"a COPY 1\r\n"),
            (Some("a"), ParseErrorKind::MissingArgument("mailbox name"))
        );
    }

    // ----- sequence sets -----

    #[test]
    fn sequence_sets() {
        assert_eq!(
            kind(b"a UID EXPUNGE 1,3:5,7:*,*:9,*,4294967295\r\n"),
            CommandKind::UidExpunge(seq(&[
                one(1),
                (n(3), n(5)),
                (n(7), SeqBound::Star),
                (SeqBound::Star, n(9)),
                (SeqBound::Star, SeqBound::Star),
                one(u32::MAX)
            ]))
        );
        let bads: &[(&[u8], ParseErrorKind)] = &[
            (b"a UID EXPUNGE 0\r\n", ParseErrorKind::SequenceZero),
            (b"a UID EXPUNGE 1:0\r\n", ParseErrorKind::SequenceZero),
            (b"a UID EXPUNGE 01\r\n", ParseErrorKind::InvalidSequenceSet),
            (
                b"a UID EXPUNGE 4294967296\r\n",
                ParseErrorKind::NumberTooBig,
            ),
            (
                b"a UID EXPUNGE 99999999999999999999999\r\n",
                ParseErrorKind::NumberTooBig,
            ),
            (
                b"a UID EXPUNGE 1:\r\n",
                ParseErrorKind::MissingArgument("sequence set"),
            ),
            (
                b"a UID EXPUNGE 1,,2\r\n",
                ParseErrorKind::InvalidSequenceSet,
            ),
            (
                b"a UID EXPUNGE 1:2x\r\n",
                ParseErrorKind::InvalidSequenceSet,
            ),
            (b"a UID EXPUNGE -1\r\n", ParseErrorKind::InvalidSequenceSet),
            (b"a UID EXPUNGE 1,$\r\n", ParseErrorKind::InvalidSequenceSet),
            (b"a UID EXPUNGE $1\r\n", ParseErrorKind::InvalidSequenceSet),
            (
                b"a FETCH 1:*(FLAGS)\r\n",
                ParseErrorKind::InvalidSequenceSet,
            ),
        ];
        for (input, expected) in bads {
            assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
        }
    }

    // ----- FETCH -----

    #[test]
    fn fetch_macros_and_single_items() {
        let f = fetch(b"a FETCH 1 ALL\r\n");
        assert_eq!(
            f.attrs,
            vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope
            ]
        );
        assert_eq!(
            fetch(b"a FETCH 1 fast\r\n").attrs,
            vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size
            ]
        );
        assert_eq!(
            fetch(b"a FETCH 1 FULL\r\n").attrs,
            vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
                FetchAttr::Body
            ]
        );
        assert_eq!(fetch(b"a FETCH 1 uid\r\n").attrs, vec![FetchAttr::Uid]);
        assert_eq!(
            fetch(b"a FETCH 1 BODY[]\r\n").attrs,
            vec![FetchAttr::BodySection {
                peek: false,
                section: Section::default(),
                partial: None
            }]
        );
        assert_eq!(
            bad(b"a FETCH 1 (ALL)\r\n"),
            (Some("a"), ParseErrorKind::UnknownFetchAttribute)
        );
        assert_eq!(
            bad(b"a FETCH 1 ALLX\r\n"),
            (Some("a"), ParseErrorKind::UnknownFetchAttribute)
        );
    }

    #[test]
    fn fetch_every_attribute() {
        let f = fetch(
            b"a FETCH 1:3 (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID MODSEQ BODY[] BODY.PEEK[1.2.3] BODY[HEADER]<0.1024> BODY[TEXT] BODY[2.MIME] BODY[1.HEADER.FIELDS.NOT (Received)] body.peek[header.fields (From \"To\")]<10.20> BODY[3.TEXT] BINARY[1.2] BINARY.PEEK[]<5.6> BINARY.SIZE[4] BINARY.SIZE[])\r\n",
        );
        let sec = |part: Vec<u32>, text: Option<SectionText<'static>>| Section { part, text };
        assert_eq!(
            f.attrs,
            vec![
                FetchAttr::Envelope,
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822,
                FetchAttr::Rfc822Header,
                FetchAttr::Rfc822Size,
                FetchAttr::Rfc822Text,
                FetchAttr::Body,
                FetchAttr::BodyStructure,
                FetchAttr::Uid,
                FetchAttr::ModSeq,
                FetchAttr::BodySection {
                    peek: false,
                    section: sec(vec![], None),
                    partial: None
                },
                FetchAttr::BodySection {
                    peek: true,
                    section: sec(vec![1, 2, 3], None),
                    partial: None
                },
                FetchAttr::BodySection {
                    peek: false,
                    section: sec(vec![], Some(SectionText::Header)),
                    partial: Some(Partial {
                        offset: 0,
                        length: 1024
                    })
                },
                FetchAttr::BodySection {
                    peek: false,
                    section: sec(vec![], Some(SectionText::Text)),
                    partial: None
                },
                FetchAttr::BodySection {
                    peek: false,
                    section: sec(vec![2], Some(SectionText::Mime)),
                    partial: None
                },
                FetchAttr::BodySection {
                    peek: false,
                    section: sec(
                        vec![1],
                        Some(SectionText::HeaderFieldsNot(vec![b("Received")]))
                    ),
                    partial: None
                },
                FetchAttr::BodySection {
                    peek: true,
                    section: sec(
                        vec![],
                        Some(SectionText::HeaderFields(header_fields("From To")))
                    ),
                    partial: Some(Partial {
                        offset: 10,
                        length: 20
                    })
                },
                FetchAttr::BodySection {
                    peek: false,
                    section: sec(vec![3], Some(SectionText::Text)),
                    partial: None
                },
                FetchAttr::Binary {
                    peek: false,
                    part: vec![1, 2],
                    partial: None
                },
                FetchAttr::Binary {
                    peek: true,
                    part: vec![],
                    partial: Some(Partial {
                        offset: 5,
                        length: 6
                    })
                },
                FetchAttr::BinarySize { part: vec![4] },
                FetchAttr::BinarySize { part: vec![] },
            ]
        );
        assert_eq!(f.set, seq(&[(n(1), n(3))]));
        assert!(!f.uid);
    }

    #[test]
    fn fetch_modifiers() {
        let f = fetch(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n");
        assert!(f.uid);
        assert_eq!(f.changed_since, Some(12345));
        assert!(f.vanished);
        let f = fetch(b"a FETCH 1 FLAGS (changedsince 18446744073709551615)\r\n");
        assert_eq!(f.changed_since, Some(u64::MAX));
        assert_eq!(
            bad(b"a FETCH 1 FLAGS (FOO)\r\n"),
            (Some("a"), ParseErrorKind::UnknownOption("FETCH modifier"))
        );
    }

    #[test]
    fn fetch_errors() {
        let bads: &[(&[u8], ParseErrorKind)] = &[
            (b"a FETCH 1 (FLAGS\r\n", ParseErrorKind::UnbalancedParens),
            (b"a FETCH 1 FLAGS)\r\n", ParseErrorKind::UnbalancedParens),
            (b"a FETCH 1 (FLAGS))\r\n", ParseErrorKind::UnbalancedParens),
            (
                b"a FETCH 1 ()\r\n",
                ParseErrorKind::Expected("fetch attribute"),
            ),
            (b"a FETCH 1 FOO\r\n", ParseErrorKind::UnknownFetchAttribute),
            (b"a FETCH 1 BODY[MIME]\r\n", ParseErrorKind::InvalidSection),
            (b"a FETCH 1 BODY.PEEK\r\n", ParseErrorKind::InvalidSection),
            (b"a FETCH 1 BODY[0]\r\n", ParseErrorKind::InvalidSection),
            (b"a FETCH 1 BODY[1.]\r\n", ParseErrorKind::InvalidSection),
            (b"a FETCH 1 BODY[1\r\n", ParseErrorKind::InvalidSection),
            (
                b"a FETCH 1 BODY[HEADER.FIELDS]\r\n",
                ParseErrorKind::ExpectedSpace("header field list"),
            ),
            (
                b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
                ParseErrorKind::Expected("header field name"),
            ),
            (b"a FETCH 1 BODY[]<0.0>\r\n", ParseErrorKind::InvalidSection),
            (b"a FETCH 1 BODY[]<5>\r\n", ParseErrorKind::InvalidSection),
            (b"a FETCH 1 BODY[]<x.1>\r\n", ParseErrorKind::InvalidSection),
            (
                b"a FETCH 1 BINARY[TEXT]\r\n",
                ParseErrorKind::InvalidSection,
            ),
            (
                b"a FETCH 1 BINARY.SIZE[1]<0.1>\r\n",
                ParseErrorKind::ExtraArguments,
            ),
            (
                b"a FETCH 1\r\n",
                ParseErrorKind::MissingArgument("fetch attributes"),
            ),
            (
                b"a FETCH\r\n",
                ParseErrorKind::MissingArgument("sequence set"),
            ),
            (
                b"a FETCH 1 FLAGS extra\r\n",
                ParseErrorKind::Expected("FETCH modifiers"),
            ),
        ];
        for (input, expected) in bads {
            assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
        }
    }

    // ----- STORE -----

    #[test]
    fn store_forms() {
        let st = |input: &'static [u8]| match kind(input) {
            CommandKind::Store(s) => s,
            other => panic!("{other:?}"),
        };
        let s = st(b"a STORE 2:4 +FLAGS (\\Deleted)\r\n");
        assert_eq!(
            s,
            StoreArgs {
                uid: false,
                set: seq(&[(n(2), n(4))]),
                mode: StoreMode::Add,
                silent: false,
                flags: vec![Flag::Deleted],
                unchanged_since: None
            }
        );
        let s = st(b"a UID STORE 1 -flags.silent \\Seen $Junk \\Foo\r\n");
        assert_eq!(s.mode, StoreMode::Remove);
        assert!(s.silent && s.uid);
        assert_eq!(
            s.flags,
            vec![Flag::Seen, Flag::Keyword("$Junk"), Flag::Extension("\\Foo")]
        );
        let s = st(b"a STORE 1 (UNCHANGEDSINCE 320162338) FLAGS.SILENT ()\r\n");
        assert_eq!(s.mode, StoreMode::Replace);
        assert_eq!(s.unchanged_since, Some(320_162_338));
        assert!(s.flags.is_empty());
        let s = st(b"a STORE 1 FLAGS (\\answered \\FLAGGED \\Draft)\r\n");
        assert_eq!(s.flags, vec![Flag::Answered, Flag::Flagged, Flag::Draft]);
        let bads: &[(&[u8], ParseErrorKind)] = &[
            (
                b"a STORE 1 +FLAGS (\\Recent)\r\n",
                ParseErrorKind::FlagNotAllowed,
            ),
            (b"a STORE 1 +FLAGS \\*\r\n", ParseErrorKind::FlagNotAllowed),
            (b"a STORE 1 +FLAGS (\\)\r\n", ParseErrorKind::InvalidFlag),
            (b"a STORE 1 +FLAGS (\"x\")\r\n", ParseErrorKind::InvalidFlag),
            (
                b"a STORE 1 *FLAGS (\\Seen)\r\n",
                ParseErrorKind::Expected("flags item"),
            ),
            (
                b"a STORE 1 FLAGZ (\\Seen)\r\n",
                ParseErrorKind::Expected("FLAGS, +FLAGS or -FLAGS"),
            ),
            (
                b"a STORE 1 FLAGS\r\n",
                ParseErrorKind::MissingArgument("flags"),
            ),
            (
                b"a STORE 1 FLAGS (\\Seen\r\n",
                ParseErrorKind::UnbalancedParens,
            ),
            (
                b"a STORE 1 (FOO 1) FLAGS ()\r\n",
                ParseErrorKind::UnknownOption("STORE modifier"),
            ),
            (
                b"a STORE 1 FLAGS (caf\xc3\xa9)\r\n",
                ParseErrorKind::EightBit,
            ),
        ];
        for (input, expected) in bads {
            assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
        }
    }

    // ----- SEARCH -----

    #[test]
    fn search_every_key() {
        let k = keys(
            b"a SEARCH ALL ANSWERED BCC x BEFORE 1-Feb-2024 BODY \"y z\" CC {2}\r\ncc DELETED DRAFT FLAGGED FROM f HEADER X-Spam yes KEYWORD $Junk LARGER 100 NEW NOT SEEN OLD ON \"29-Feb-2024\" OR SEEN UNSEEN RECENT SEEN SENTBEFORE 1-Jan-2024 SENTON 02-Jan-2024 SENTSINCE 3-Jan-2024 SINCE 4-Jan-2024 SMALLER 5000 SUBJECT s TEXT t TO to UID 1:5 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD NonJunk UNSEEN 2,4:* (FLAGGED SEEN) MODSEQ 620162338 MODSEQ \"/flags/\\\\draft\" all 620162338\r\n",
        );
        let s = |x: &'static str| b(x);
        assert_eq!(
            k,
            vec![
                SearchKey::All,
                SearchKey::Answered,
                SearchKey::Bcc(s("x")),
                SearchKey::Before(date(2024, 2, 1)),
                SearchKey::Body(s("y z")),
                SearchKey::Cc(s("cc")),
                SearchKey::Deleted,
                SearchKey::Draft,
                SearchKey::Flagged,
                SearchKey::From(s("f")),
                SearchKey::Header(s("X-Spam"), s("yes")),
                SearchKey::Keyword("$Junk"),
                SearchKey::Larger(100),
                SearchKey::New,
                SearchKey::Not(Box::new(SearchKey::Seen)),
                SearchKey::Old,
                SearchKey::On(date(2024, 2, 29)),
                SearchKey::Or(Box::new(SearchKey::Seen), Box::new(SearchKey::Unseen)),
                SearchKey::Recent,
                SearchKey::Seen,
                SearchKey::SentBefore(date(2024, 1, 1)),
                SearchKey::SentOn(date(2024, 1, 2)),
                SearchKey::SentSince(date(2024, 1, 3)),
                SearchKey::Since(date(2024, 1, 4)),
                SearchKey::Smaller(5000),
                SearchKey::Subject(s("s")),
                SearchKey::Text(s("t")),
                SearchKey::To(s("to")),
                SearchKey::Uid(seq(&[(n(1), n(5))])),
                SearchKey::Unanswered,
                SearchKey::Undeleted,
                SearchKey::Undraft,
                SearchKey::Unflagged,
                SearchKey::Unkeyword("NonJunk"),
                SearchKey::Unseen,
                SearchKey::SequenceSet(seq(&[one(2), (n(4), SeqBound::Star)])),
                SearchKey::And(vec![SearchKey::Flagged, SearchKey::Seen]),
                SearchKey::ModSeq(620_162_338),
                SearchKey::ModSeq(620_162_338),
            ]
        );
    }

    #[test]
    fn search_charset_return_and_nesting() {
        let s = search(
            b"a UID SEARCH RETURN (MIN MAX ALL COUNT SAVE) CHARSET UTF-8 OR (FROM {7}\r\nJ\xc3\xbcrgen) NOT (OR SUBJECT x (TO y)) $\r\n",
        );
        assert!(s.uid);
        assert_eq!(s.charset.as_deref(), Some("UTF-8"));
        assert_eq!(
            s.returns,
            Some(vec![
                SearchReturn::Min,
                SearchReturn::Max,
                SearchReturn::All,
                SearchReturn::Count,
                SearchReturn::Save
            ])
        );
        assert_eq!(
            s.keys,
            vec![
                SearchKey::Or(
                    Box::new(SearchKey::And(vec![SearchKey::From(Cow::Borrowed(
                        b"J\xc3\xbcrgen"
                    ))])),
                    Box::new(SearchKey::Not(Box::new(SearchKey::And(vec![
                        SearchKey::Or(
                            Box::new(SearchKey::Subject(b("x"))),
                            Box::new(SearchKey::And(vec![SearchKey::To(b("y"))]))
                        )
                    ]))))
                ),
                SearchKey::SequenceSet(SequenceArg::Saved),
            ]
        );
        let s = search(b"a SEARCH RETURN () charset \"us-ascii\" 1\r\n");
        assert_eq!(s.returns, Some(vec![]));
        assert_eq!(s.charset.as_deref(), Some("us-ascii"));
        // UTF-8 in a quoted string (RFC 9051 utf8-quoted).
        assert_eq!(
            keys(b"a SEARCH SUBJECT \"caf\xc3\xa9\"\r\n"),
            vec![SearchKey::Subject(Cow::Borrowed(b"caf\xc3\xa9"))]
        );
    }

    #[test]
    fn search_depth_limit() {
        let nested = |depth: usize, open: &str, close: &str| {
            let mut s = b"a SEARCH ".to_vec();
            s.extend(open.repeat(depth).as_bytes());
            s.extend(b"ALL");
            s.extend(close.repeat(depth).as_bytes());
            s.extend(b"\r\n");
            s
        };
        let too_deep = ParseErrorKind::TooDeep { max: 64 };
        for (open, close) in [("(", ")"), ("NOT ", ""), ("OR ALL ", "")] {
            let okay = nested(64, open, close);
            assert!(matches!(
                parse_command(&okay, &lim()),
                Ok(Parsed::Complete { .. })
            ));
            assert_eq!(bad(&nested(65, open, close)), (Some("a"), too_deep));
        }
        // Far deeper than any stack would take: an error, not a crash.
        assert_eq!(bad(&nested(30_000, "(", ")")), (Some("a"), too_deep));
        assert_eq!(bad(&nested(15_000, "NOT ", "")), (Some("a"), too_deep));
        // A huge max_depth is capped.
        let limits = Limits {
            max_depth: usize::MAX,
            ..lim()
        };
        let deep = nested(5000, "(", ")");
        let e = parse_command(&deep, &limits).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::TooDeep { max: DEPTH_CAP });
    }

    #[test]
    fn search_errors() {
        let bads: &[(&[u8], ParseErrorKind)] = &[
            (
                b"a SEARCH\r\n",
                ParseErrorKind::MissingArgument("search criteria"),
            ),
            (b"a SEARCH FOO\r\n", ParseErrorKind::UnknownSearchKey),
            (b"a SEARCH (SEEN\r\n", ParseErrorKind::UnbalancedParens),
            (b"a SEARCH SEEN)\r\n", ParseErrorKind::UnbalancedParens),
            (b"a SEARCH ()\r\n", ParseErrorKind::Expected("search key")),
            (
                b"a SEARCH OR SEEN\r\n",
                ParseErrorKind::MissingArgument("search key"),
            ),
            (
                b"a SEARCH NOT\r\n",
                ParseErrorKind::MissingArgument("search key"),
            ),
            (
                b"a SEARCH BEFORE 31-Feb-2024\r\n",
                ParseErrorKind::InvalidDate,
            ),
            (
                b"a SEARCH BEFORE 1-Foo-2024\r\n",
                ParseErrorKind::InvalidDate,
            ),
            (b"a SEARCH BEFORE 1-Jan-24\r\n", ParseErrorKind::InvalidDate),
            (
                b"a SEARCH BEFORE 123-Jan-2024\r\n",
                ParseErrorKind::InvalidDate,
            ),
            (
                b"a SEARCH BEFORE \"1-Jan-2024\r\n",
                ParseErrorKind::InvalidDate,
            ),
            (b"a SEARCH BEFORE 1-J\r\n", ParseErrorKind::InvalidDate),
            (
                b"a SEARCH SINCE\r\n",
                ParseErrorKind::MissingArgument("date"),
            ),
            (b"a SEARCH LARGER x\r\n", ParseErrorKind::Expected("size")),
            (
                b"a SEARCH LARGER 99999999999999999999\r\n",
                ParseErrorKind::NumberTooBig,
            ),
            (
                b"a SEARCH KEYWORD \\Seen\r\n",
                ParseErrorKind::Expected("keyword"),
            ),
            (b"a SEARCH UID 0\r\n", ParseErrorKind::SequenceZero),
            (b"a SEARCH SUBJECT \"a\\nb\"\r\n", ParseErrorKind::BadEscape),
            (
                b"a SEARCH SUBJECT \"abc\r\n",
                ParseErrorKind::UnterminatedQuoted,
            ),
            (
                b"a SEARCH SUBJECT caf\xc3\xa9\r\n",
                ParseErrorKind::EightBit,
            ),
            (
                b"a SEARCH MODSEQ \"/flags/x\" bogus 1\r\n",
                ParseErrorKind::Expected("entry type (priv, shared or all)"),
            ),
            (
                b"a SEARCH CHARSET \xc3\xa9 ALL\r\n",
                ParseErrorKind::EightBit,
            ),
            (
                b"a SEARCH RETURN (BOGUS) ALL\r\n",
                ParseErrorKind::UnknownOption("search return option"),
            ),
        ];
        for (input, expected) in bads {
            assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
        }
    }

    // ----- malformed input in general -----

    #[test]
    fn malformed_commands() {
        let bads: &[(&[u8], Option<&str>, ParseErrorKind)] = &[
            (b"\r\n", None, ParseErrorKind::EmptyLine),
            (b"\n", None, ParseErrorKind::EmptyLine),
            (b" NOOP\r\n", None, ParseErrorKind::BadTag),
            (b"+ NOOP\r\n", None, ParseErrorKind::BadTag),
            (b"a+b NOOP\r\n", None, ParseErrorKind::BadTag),
            (b"* NOOP\r\n", None, ParseErrorKind::BadTag),
            (b"t\xc3\xa9 NOOP\r\n", None, ParseErrorKind::BadTag),
            (b"a\x00 NOOP\r\n", None, ParseErrorKind::Nul),
            (b"a\r\n", Some("a"), ParseErrorKind::MissingCommand),
            (b"a \r\n", Some("a"), ParseErrorKind::MissingCommand),
            (
                b"a  NOOP\r\n",
                Some("a"),
                ParseErrorKind::Expected("command name"),
            ),
            (b"a FROB\r\n", Some("a"), ParseErrorKind::UnknownCommand),
            (
                b"a9 XLIST \"\" *\r\n",
                Some("a9"),
                ParseErrorKind::UnknownCommand,
            ),
            (b"a N\xc3\x96OP\r\n", Some("a"), ParseErrorKind::EightBit),
            (b"a NO\x00OP\r\n", Some("a"), ParseErrorKind::Nul),
            (b"a NOOP \r\n", Some("a"), ParseErrorKind::ExtraArguments),
            (b"a NOOP x\r\n", Some("a"), ParseErrorKind::ExtraArguments),
            (b"a LOGIN \"a\x00b\" c\r\n", Some("a"), ParseErrorKind::Nul),
            (
                b"a LOGIN {3}\r\na\x00b c\r\n",
                Some("a"),
                ParseErrorKind::Nul,
            ),
            (b"a LOGIN a\x00 b\r\n", Some("a"), ParseErrorKind::Nul),
            (
                b"a LOGIN \"a\\x\" b\r\n",
                Some("a"),
                ParseErrorKind::BadEscape,
            ),
            (
                b"a LOGIN \"a\" \"b\"c\r\n",
                Some("a"),
                ParseErrorKind::ExtraArguments,
            ),
            (
                b"a LOGIN \"a\"\"b\"\r\n",
                Some("a"),
                ParseErrorKind::ExpectedSpace("password"),
            ),
            (b"a LOGIN {x}\r\n", Some("a"), ParseErrorKind::BadLiteral),
            (b"a LOGIN {}\r\n", Some("a"), ParseErrorKind::BadLiteral),
            (b"a LOGIN {1}x\r\n", Some("a"), ParseErrorKind::BadLiteral),
            (b"a LOGIN {1-}\r\n", Some("a"), ParseErrorKind::BadLiteral),
            (
                b"a LOGIN us\x01er pw\r\n",
                Some("a"),
                ParseErrorKind::ExpectedSpace("password"),
            ),
            (
                b"a SELECT (INBOX)\r\n",
                Some("a"),
                ParseErrorKind::Expected("mailbox name"),
            ),
        ];
        for (input, tag, expected) in bads {
            assert_eq!(bad(input), (*tag, *expected), "{}", show(input));
        }
    }

    #[test]
    fn error_messages_are_actionable() {
        let kinds = [
            ParseErrorKind::EmptyLine,
            ParseErrorKind::MissingArgument("mailbox name"),
            ParseErrorKind::Expected("flag list"),
            ParseErrorKind::LineTooLong { max: 10 },
            ParseErrorKind::LiteralTooBig { len: 5, max: 4 },
            ParseErrorKind::TooDeep { max: 64 },
            ParseErrorKind::BadLiteral,
        ];
        let msgs: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        assert_eq!(msgs[1], "Missing argument: expected mailbox name");
        assert_eq!(msgs[3], "Command line too long (limit 10 bytes)");
        assert_eq!(msgs[4], "Literal of 5 bytes exceeds the limit of 4 bytes");
        assert!(msgs.iter().all(|m| !m.is_empty() && !m.contains('\n')));
    }

    // ----- real clients -----

    #[test]
    fn real_client_samples() {
        let f = fetch(b"1 UID fetch 1:* (FLAGS)\r\n");
        assert!(f.uid);
        assert_eq!(f.set, seq(&[(n(1), SeqBound::Star)]));
        assert_eq!(f.attrs, vec![FetchAttr::Flags]);

        let f = fetch(b"5 uid fetch 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n");
        assert_eq!(
            f.attrs,
            vec![
                FetchAttr::Uid,
                FetchAttr::Rfc822Size,
                FetchAttr::Flags,
                FetchAttr::BodySection {
                    peek: true,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(header_fields(
                            "From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To"
                        )))
                    },
                    partial: None
                }
            ]
        );

        let f = fetch(b"a0003 UID FETCH 1:5 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL)])\r\n");
        assert_eq!(f.set, seq(&[(n(1), n(5))]));
        assert_eq!(f.attrs.len(), 5);
        assert_eq!(
            f.attrs[4],
            FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(header_fields(
                        "DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL"
                    )))
                },
                partial: None
            }
        );

        let f = fetch(b"7 UID FETCH 1:* (UID FLAGS)\r\n");
        assert_eq!(f.attrs, vec![FetchAttr::Uid, FetchAttr::Flags]);

        // Thunderbird's other staples.
        for line in [
            &b"2 capability\r\n"[..],
            b"3 authenticate PLAIN\r\n",
            b"4 namespace\r\n",
            b"6 list (subscribed) \"\" \"*\" return (special-use)\r\n",
            b"8 select \"INBOX\" (CONDSTORE)\r\n",
            b"9 UID fetch 418:* (FLAGS) (CHANGEDSINCE 4)\r\n",
            b"10 UID STORE 418 +FLAGS (\\Seen)\r\n",
            b"11 IDLE\r\n",
            b"12 UID MOVE 418 \"Trash\"\r\n",
            b"13 getquotaroot \"INBOX\"\r\n",
            b"A3 STATUS \"Archive/2023\" (UIDNEXT MESSAGES UNSEEN RECENT)\r\n",
            b"a0007 UID SEARCH UID 1:* NOT DELETED\r\n",
        ] {
            match parse_command(line, &lim()) {
                Ok(Parsed::Complete { consumed, .. }) => assert_eq!(consumed, line.len()),
                Err(e) if e.kind == ParseErrorKind::UnknownCommand => {
                    assert!(line.starts_with(b"13 "), "{}", show(line));
                }
                other => panic!("{}: {other:?}", show(line)),
            }
        }
    }

    // ----- incremental feeding -----

    /// What a server sees, with literal continuations counted separately and APPEND data
    /// merged, so that different splittings can be compared.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Cmd(Result<String, (Option<String>, ParseErrorKind)>),
        Err(Option<String>, ParseErrorKind),
        Start(String, Vec<u8>, LiteralHead),
        Next(LiteralHead),
        Data(Vec<u8>),
        Done,
    }

    #[derive(Debug, Default)]
    struct Run {
        events: Vec<Ev>,
        continuations: usize,
        leftover: Vec<u8>,
    }

    fn drive_with(framer: &mut Framer, chunks: &[&[u8]], reject_append: bool) -> Run {
        let mut run = Run::default();
        let mut buf: Vec<u8> = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                let limits = *framer.limits();
                match framer.poll(&buf) {
                    FrameEvent::NeedMore => break,
                    FrameEvent::Continuation { .. } => run.continuations += 1,
                    FrameEvent::Command { len } => {
                        let r = match parse_command(&buf[..len], &limits) {
                            Ok(Parsed::Complete { command, consumed }) => {
                                assert_eq!(consumed, len);
                                Ok(format!("{command:?}"))
                            }
                            Ok(Parsed::Incomplete(n)) => panic!("framed but incomplete: {n:?}"),
                            Err(e) => {
                                assert_eq!(e.skip, len);
                                assert_ne!(e.kind, ParseErrorKind::Truncated);
                                Err((e.tag.map(str::to_owned), e.kind))
                            }
                        };
                        run.events.push(Ev::Cmd(r));
                        buf.drain(..len);
                    }
                    FrameEvent::Error { tag, kind } => {
                        run.events.push(Ev::Err(tag.map(|t| t.into_owned()), kind));
                    }
                    FrameEvent::Skip { len } => {
                        assert!(len > 0 && len <= buf.len());
                        buf.drain(..len);
                    }
                    FrameEvent::AppendStart { len, head } => {
                        run.events.push(Ev::Start(
                            head.tag.to_owned(),
                            head.mailbox.as_bytes().to_vec(),
                            head.message.literal,
                        ));
                        buf.drain(..len);
                        if reject_append {
                            framer.reject_literal();
                        }
                    }
                    FrameEvent::AppendNext { len, message } => {
                        run.events.push(Ev::Next(message.literal));
                        buf.drain(..len);
                    }
                    FrameEvent::AppendData { data } => {
                        assert!(!data.is_empty());
                        let n = data.len();
                        match run.events.last_mut() {
                            Some(Ev::Data(d)) => d.extend_from_slice(data),
                            _ => run.events.push(Ev::Data(data.to_vec())),
                        }
                        buf.drain(..n);
                    }
                    FrameEvent::AppendDone { len } => {
                        run.events.push(Ev::Done);
                        buf.drain(..len);
                    }
                }
            }
        }
        run.leftover = buf;
        run
    }

    fn drive(framer: &mut Framer, chunks: &[&[u8]]) -> Run {
        drive_with(framer, chunks, false)
    }

    fn samples() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = [
            &b"a NOOP\r\n"[..],
            b"1 UID fetch 1:* (FLAGS)\r\n",
            b"5 uid fetch 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n",
            b"a ID (\"name\" \"iPhone Mail\" \"version\" \"19E258\")\r\n",
            b"a LOGIN {5}\r\nalice {6+}\r\nsecret\r\n",
            b"a LOGIN \"al\\\"ice\" {0}\r\n\r\n",
            b"a SEARCH CHARSET UTF-8 OR (FROM {7}\r\nJ\xc3\xbcrgen) NOT SUBJECT \"x\" 1:4\n",
            b"a APPEND INBOX (\\Seen) \"17-Jan-2024 10:04:05 +0200\" {11}\r\nhello world\r\n",
            b"a001 APPEND \"INBOX\" (\\Seen) {12+}\r\nhello\r\nworld\r\n",
            b"a APPEND {5}\r\nINBOX {3}\r\nabc (\\Flagged) ~{4}\r\nx\x00\ny\r\n",
            b"a FROB {3}\r\nabc\r\n",
            b"a LOGIN \"unterminated\r\n",
            b"a APPEND INBOX (\\Recent) {5}\r\n",
        ]
        .iter()
        .map(|s| s.to_vec())
        .collect();
        // Broader grammar, so that every form is also checked split at every byte.
        for line in [
            &b"a FETCH 1:3 (ENVELOPE BODY[1.2.HEADER.FIELDS.NOT (Received)]<0.10> BINARY.PEEK[1]<5.6> BINARY.SIZE[2] MODSEQ) (CHANGEDSINCE 7)\r\n"[..],
            b"a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (NOT SEEN) HEADER X-A {2+}\r\nyy SINCE \"1-Feb-2024\" UID 1:5,7 MODSEQ \"/flags/x\" all 5\r\n",
            b"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"Sent/%\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
            b"a UID STORE 1:* (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen $Forwarded)\r\n",
            b"a CREATE {6}\r\nDrafts (USE (\\Drafts))\r\n",
            b"a SELECT INBOX (CONDSTORE QRESYNC (1 2 1:9 (1,5 10,50)))\r\n",
            b"a STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ)\r\n",
            b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
            b"a APPEND x (\\Seen) {1+}\r\nA ~{2}\r\nB\x00 \" 7-Jan-2024 09:05:59 -0430\" {0}\r\n\r\n",
        ] {
            v.push(line.to_vec());
        }
        // Two commands pipelined.
        v.push(b"a NOOP\r\nb UID FETCH 1 (FLAGS)\r\n".to_vec());
        v
    }

    #[test]
    fn framer_every_split_gives_the_same_result() {
        for sample in samples() {
            let whole = drive(&mut Framer::new(lim()), &[&sample]);
            assert!(whole.leftover.is_empty(), "{}", show(&sample));
            assert!(!whole.events.is_empty());
            for k in 1..sample.len() {
                let (a, b2) = sample.split_at(k);
                let split = drive(&mut Framer::new(lim()), &[a, b2]);
                assert_eq!(split.events, whole.events, "{} split at {k}", show(&sample));
                assert!(split.leftover.is_empty());
            }
            let bytes: Vec<&[u8]> = sample.chunks(1).collect();
            let trickle = drive(&mut Framer::new(lim()), &bytes);
            assert_eq!(
                trickle.events,
                whole.events,
                "{} byte by byte",
                show(&sample)
            );
            // Without APPEND streaming, the same commands come out as one Command each.
            let mut plain = Framer::new(lim());
            plain.set_stream_append(false);
            let p = drive(&mut plain, &bytes);
            assert!(
                p.events
                    .iter()
                    .all(|e| matches!(e, Ev::Cmd(_) | Ev::Err(..)))
            );
        }
    }

    #[test]
    fn samples_parse_cleanly_except_the_bad_ones() {
        for sample in samples() {
            let run = drive(&mut Framer::new(lim()), &[&sample]);
            let failed = run
                .events
                .iter()
                .any(|e| matches!(e, Ev::Err(..) | Ev::Cmd(Err(_))));
            let meant_bad = [&b"FROB"[..], b"unterminated", b"Recent"]
                .iter()
                .any(|w| sample.windows(w.len()).any(|x| x == *w));
            assert_eq!(failed, meant_bad, "{}: {:?}", show(&sample), run.events);
        }
    }

    #[test]
    fn parse_command_every_prefix_is_incomplete() {
        for sample in samples() {
            let full = parse_command(&sample, &lim()).map(|p| format!("{p:?}"));
            let full = full.map_err(|e| (e.tag, e.kind, e.skip));
            for k in 0..sample.len() {
                let prefix = &sample[..k];
                match parse_command(prefix, &lim()) {
                    Ok(Parsed::Incomplete(needed)) => {
                        if let Needed::Continuation { .. } = needed {
                            // Only right after a synchronizing announcement.
                            assert!(prefix.ends_with(b"}\r\n") || prefix.ends_with(b"}\n"));
                        }
                    }
                    // A complete first command of a pipelined pair.
                    Ok(Parsed::Complete { consumed, .. }) => {
                        assert!(consumed <= k && sample[..consumed].ends_with(b"\n"));
                    }
                    Err(e) => {
                        // Errors are only reported once the offending line is complete.
                        assert_eq!(Err((e.tag, e.kind, e.skip)), full, "{}", show(prefix));
                    }
                }
            }
        }
    }

    #[test]
    fn literal_trickling_in_one_byte_at_a_time() {
        let mut input = b"a LOGIN {20}\r\n".to_vec();
        input.extend_from_slice(b"abcdefghijklmnopqrst");
        input.extend_from_slice(b" pw\r\nb NOOP\r\n");
        let mut framer = Framer::new(lim());
        let mut buf = Vec::new();
        let mut events = Vec::new();
        for &byte in &input {
            buf.push(byte);
            loop {
                match framer.poll(&buf) {
                    FrameEvent::NeedMore => break,
                    FrameEvent::Continuation { literal_len } => {
                        assert_eq!(buf.len(), 14, "continuation right after the announcement");
                        events.push(format!("+{literal_len}"));
                    }
                    FrameEvent::Command { len } => {
                        let c = ok(&buf[..len]).kind.name();
                        events.push(c.to_owned());
                        buf.drain(..len);
                    }
                    other => panic!("{other:?}"),
                }
            }
            // While the literal arrives, parse_command says exactly how much is missing.
            if (15..34).contains(&buf.len()) && buf.starts_with(b"a LOGIN") {
                assert_eq!(
                    parse_command(&buf, &lim()).unwrap(),
                    Parsed::Incomplete(Needed::Literal {
                        remaining: 34 - buf.len() as u64
                    })
                );
            }
        }
        assert_eq!(events, vec!["+20", "LOGIN", "NOOP"]);
        assert!(buf.is_empty());
        assert_eq!(
            parse_command(b"a LOGIN {20}\r\n", &lim()).unwrap(),
            Parsed::Incomplete(Needed::Continuation { literal_len: 20 })
        );
        assert_eq!(
            parse_command(b"a LOGIN {20+}\r\n", &lim()).unwrap(),
            Parsed::Incomplete(Needed::Literal { remaining: 20 })
        );
        assert_eq!(
            parse_command(b"a LOGIN {2", &lim()).unwrap(),
            Parsed::Incomplete(Needed::More)
        );
    }

    #[test]
    fn framer_cost_is_linear_in_new_bytes() {
        // A 4 MiB literal in 1 KiB reads, and a 60 KiB line in 1-byte reads: each poll only
        // looks at what is new (this would take minutes if it rescanned).
        let mut framer = Framer::new(lim());
        let mut buf = b"a SEARCH TEXT {4194304+}\r\n".to_vec();
        assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
        let chunk = [b'x'; 1024];
        for _ in 0..4096 {
            buf.extend_from_slice(&chunk);
            assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
        }
        buf.extend_from_slice(b"\r\n");
        let FrameEvent::Command { len } = framer.poll(&buf) else {
            panic!()
        };
        assert_eq!(len, buf.len());
        let mut framer = Framer::new(lim());
        let mut buf = b"a SEARCH SUBJECT ".to_vec();
        for _ in 0..60_000 {
            buf.push(b'y');
            assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(framer.poll(&buf), FrameEvent::Command { len: buf.len() });
    }

    // ----- limits -----

    fn small() -> Limits {
        Limits {
            max_line: 40,
            max_literal: 10,
            max_depth: 64,
        }
    }

    #[test]
    fn line_too_long_is_skipped_to_its_end() {
        let mut input = b"a SEARCH SUBJECT ".to_vec();
        input.extend_from_slice(&[b'z'; 100]);
        input.extend_from_slice(b"\r\nb NOOP\r\n");
        let expected = vec![
            Ev::Err(Some("a".into()), ParseErrorKind::LineTooLong { max: 40 }),
            Ev::Cmd(Ok(format!("{:?}", ok(b"b NOOP\r\n")))),
        ];
        for k in 1..input.len() {
            let (x, y) = input.split_at(k);
            let run = drive(&mut Framer::new(small()), &[x, y]);
            assert_eq!(run.events, expected, "split at {k}");
            assert!(run.leftover.is_empty());
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(drive(&mut Framer::new(small()), &bytes).events, expected);
        // Standalone: the whole line is here, so skip covers it.
        let e = parse_command(&input, &small()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::LineTooLong { max: 40 });
        assert_eq!(e.tag, Some("a"));
        assert_eq!(e.skip, input.len() - 8);
        assert!(e.resync.is_none());
        // Standalone, line end not here yet: skip what is here, resume with the framer.
        let e = parse_command(&input[..90], &small()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::LineTooLong { max: 40 });
        assert!(e.skip <= 90);
        let mut resync = *e.resync.unwrap();
        let rest = drive(&mut resync, &[&input[e.skip..]]);
        assert_eq!(rest.events, expected[1..]);
    }

    #[test]
    fn long_line_skipping_follows_non_sync_literals() {
        // The discarded line announces a non-synchronizing literal whose bytes contain what
        // looks like a command: it must be skipped, as must the rest of that line.
        let mut input = b"a SEARCH SUBJECT ".to_vec();
        input.extend_from_slice(&[b'z'; 100]);
        input.extend_from_slice(b" BODY {12+}\r\nc LOGOUT\r\nxx NOT SEEN\r\nb NOOP\r\n");
        let expected = vec![
            Ev::Err(Some("a".into()), ParseErrorKind::LineTooLong { max: 40 }),
            Ev::Cmd(Ok(format!("{:?}", ok(b"b NOOP\r\n")))),
        ];
        for k in 1..input.len() {
            let (x, y) = input.split_at(k);
            assert_eq!(
                drive(&mut Framer::new(small()), &[x, y]).events,
                expected,
                "split at {k}"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(drive(&mut Framer::new(small()), &bytes).events, expected);
    }

    #[test]
    fn too_big_synchronizing_literal_gets_no_continuation() {
        let input = b"a LOGIN {11}\r\nb NOOP\r\n";
        let run = drive(&mut Framer::new(small()), &[&input[..14]]);
        assert_eq!(run.continuations, 0);
        assert_eq!(
            run.events,
            vec![Ev::Err(
                Some("a".into()),
                ParseErrorKind::LiteralTooBig { len: 11, max: 10 }
            )]
        );
        assert!(run.leftover.is_empty(), "the announcing line is skipped");
        let run = drive(&mut Framer::new(small()), &[input]);
        assert_eq!(run.events.len(), 2);
        assert_eq!(
            run.events[1],
            Ev::Cmd(Ok(format!("{:?}", ok(b"b NOOP\r\n"))))
        );
        let e = parse_command(input, &small()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::LiteralTooBig { len: 11, max: 10 });
        assert_eq!((e.tag, e.skip), (Some("a"), 14));
        assert!(e.resync.is_none());
    }

    #[test]
    fn too_big_non_synchronizing_literal_is_skipped() {
        let input = b"a LOGIN {11+}\r\nb NOOP\r\nxxx pw\r\nc NOOP\r\n";
        let expected = vec![
            Ev::Err(
                Some("a".into()),
                ParseErrorKind::LiteralTooBig { len: 11, max: 10 },
            ),
            Ev::Cmd(Ok(format!("{:?}", ok(b"c NOOP\r\n")))),
        ];
        for k in 1..input.len() {
            let (x, y) = input.split_at(k);
            assert_eq!(
                drive(&mut Framer::new(small()), &[x, y]).events,
                expected,
                "split at {k}"
            );
        }
        let e = parse_command(input, &small()).unwrap_err();
        assert_eq!(e.skip, input.len() - 8);
        assert!(e.resync.is_none());
        // Literal still arriving: skip what is here, the framer knows the rest.
        let e = parse_command(&input[..20], &small()).unwrap_err();
        assert_eq!(e.skip, 20);
        let mut resync = *e.resync.unwrap();
        assert_eq!(drive(&mut resync, &[&input[20..]]).events, expected[1..]);
        // The sum of a command's literals counts too.
        let e = parse_command(b"a LOGIN {6}\r\nabcdef {6}\r\n", &small()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::LiteralTooBig { len: 12, max: 10 });
    }

    #[test]
    fn huge_literal_lengths() {
        let e = parse_command(b"a LOGIN {99999999999999999999}\r\n", &lim()).unwrap_err();
        assert_eq!(
            e.kind,
            ParseErrorKind::LiteralTooBig {
                len: u64::MAX,
                max: lim().max_literal
            }
        );
        let limits = Limits {
            max_literal: u64::MAX,
            ..lim()
        };
        // More than 20 digits is not a literal at all.
        let e = parse_command(b"a LOGIN {000000000000000000001}\r\nx y\r\n", &lim()).unwrap_err();
        assert_eq!((e.kind, e.skip), (ParseErrorKind::BadLiteral, 33));
        // Accepted by the limit, but the bytes never come.
        assert_eq!(
            parse_command(b"a LOGIN {18446744073709551615+}\r\nab", &limits).unwrap(),
            Parsed::Incomplete(Needed::Literal {
                remaining: u64::MAX - 2
            })
        );
    }

    #[test]
    fn bad_command_is_refused_before_its_literal() {
        // No '+' for a command that is already wrong; the client stops at its line.
        let run = drive(&mut Framer::new(lim()), &[b"a FROB {5}\r\n"]);
        assert_eq!(run.continuations, 0);
        assert_eq!(
            run.events,
            vec![Ev::Err(Some("a".into()), ParseErrorKind::UnknownCommand)]
        );
        assert!(run.leftover.is_empty());
        let run = drive(&mut Framer::new(lim()), &[b"a SELECT INBOX (BOGUS {5}\r\n"]);
        assert_eq!(run.continuations, 0);
        assert_eq!(
            run.events,
            vec![Ev::Err(
                Some("a".into()),
                ParseErrorKind::UnknownOption("SELECT parameter")
            )]
        );
        // A non-synchronizing literal of a bad command is skipped, not buffered.
        let input = b"a FROB {5+}\r\nhello more\r\nb NOOP\r\n";
        let run = drive(&mut Framer::new(lim()), &[input]);
        assert_eq!(run.events.len(), 2);
        assert!(matches!(&run.events[1], Ev::Cmd(Ok(c)) if c.contains("Noop")));
        let e = parse_command(b"a FROB {5}\r\n", &lim()).unwrap_err();
        assert_eq!(
            (e.tag, e.kind, e.skip),
            (Some("a"), ParseErrorKind::UnknownCommand, 12)
        );
        // A good command still gets its continuation.
        let run = drive(&mut Framer::new(lim()), &[b"a LOGIN {5}\r\n"]);
        assert_eq!((run.continuations, run.events.len()), (1, 0));
    }

    // ----- APPEND streaming -----

    #[test]
    fn append_is_streamed() {
        let input = b"a APPEND INBOX (\\Seen) \"17-Jan-2024 10:04:05 +0200\" {11}\r\nhello world\r\nb NOOP\r\n";
        let announce = input.windows(3).position(|w| w == b"}\r\n").unwrap() + 3;
        let mut framer = Framer::new(lim());
        let mut buf = input[..announce].to_vec();
        let FrameEvent::AppendStart { len, head } = framer.poll(&buf) else {
            panic!()
        };
        assert_eq!(len, announce);
        assert_eq!(head.tag, "a");
        assert!(head.mailbox.is_inbox());
        assert_eq!(head.message.flags, vec![Flag::Seen]);
        assert_eq!(
            head.message.date.unwrap().to_string(),
            "17-Jan-2024 10:04:05 +0200"
        );
        assert_eq!(
            head.message.literal,
            LiteralHead {
                len: 11,
                sync: true,
                binary: false
            }
        );
        buf.drain(..len);
        assert_eq!(
            framer.poll(&buf),
            FrameEvent::Continuation { literal_len: 11 }
        );
        assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
        buf.extend_from_slice(&input[announce..announce + 5]);
        assert_eq!(framer.poll(&buf), FrameEvent::AppendData { data: b"hello" });
        buf.drain(..5);
        assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
        buf.extend_from_slice(&input[announce + 5..]);
        assert_eq!(
            framer.poll(&buf),
            FrameEvent::AppendData { data: b" world" }
        );
        buf.drain(..6);
        assert_eq!(framer.poll(&buf), FrameEvent::AppendDone { len: 2 });
        buf.drain(..2);
        assert_eq!(framer.poll(&buf), FrameEvent::Command { len: 8 });
    }

    #[test]
    fn multiappend_and_mailbox_literal() {
        let input = b"a APPEND {5}\r\nINBOX {3+}\r\nabc (\\Flagged) ~{4}\r\nx\x00\ny\r\n";
        let run = drive(&mut Framer::new(lim()), &[input]);
        let lit = |len, sync, binary| LiteralHead { len, sync, binary };
        assert_eq!(
            run.events,
            vec![
                Ev::Start("a".into(), b"INBOX".to_vec(), lit(3, false, false)),
                Ev::Data(b"abc".to_vec()),
                Ev::Next(lit(4, true, true)),
                Ev::Data(b"x\x00\ny".to_vec()),
                Ev::Done,
            ]
        );
        // Byte by byte the client waits twice: for the mailbox literal and the second message.
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let run = drive(&mut Framer::new(lim()), &bytes);
        assert_eq!(run.continuations, 2);
    }

    #[test]
    fn append_utf8_data_extension() {
        // RFC 6855 §4: `UTF8 (~{n}...)`, streamed and whole, with the `)` after each literal.
        let input = b"a APPEND INBOX UTF8 (~{3+}\r\n\xc3\xa4x) (\\Seen) UTF8 (~{2}\r\nyz)\r\n";
        let run = drive(&mut Framer::new(lim()), &[input]);
        let lit = |len, sync, binary| LiteralHead { len, sync, binary };
        assert_eq!(
            run.events,
            vec![
                Ev::Start("a".into(), b"INBOX".to_vec(), lit(3, false, true)),
                Ev::Data(b"\xc3\xa4x".to_vec()),
                Ev::Next(lit(2, true, true)),
                Ev::Data(b"yz".to_vec()),
                Ev::Done,
            ]
        );
        let CommandKind::Append { messages, .. } = kind(input) else {
            panic!()
        };
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].data, b"yz");
        // The closing parenthesis is required, and UTF8 takes only a literal8.
        assert!(parse_command(b"a APPEND INBOX UTF8 (~{2+}\r\nyz\r\n", &lim()).is_err());
        assert!(parse_command(b"a APPEND INBOX UTF8 ({2+}\r\nyz)\r\n", &lim()).is_err());
    }

    #[test]
    fn append_refused_before_continuation() {
        // Synchronizing: no '+', the command ends with its line.
        let input = b"a APPEND Nope {5}\r\nb NOOP\r\n";
        let run = drive_with(&mut Framer::new(lim()), &[input], true);
        assert_eq!(run.continuations, 0);
        assert_eq!(run.events.len(), 2);
        assert!(matches!(&run.events[1], Ev::Cmd(Ok(c)) if c.contains("Noop")));
        // Non-synchronizing: the bytes are coming anyway and are skipped, rest of line too.
        let input = b"a APPEND Nope {5+}\r\nhello (\\Seen) {3+}\r\nabc\r\nb NOOP\r\n";
        for k in 1..input.len() {
            let (x, y) = input.split_at(k);
            let run = drive_with(&mut Framer::new(lim()), &[x, y], true);
            assert_eq!(run.events.len(), 2, "split at {k}");
            assert!(matches!(&run.events[1], Ev::Cmd(Ok(c)) if c.contains("Noop")));
        }
    }

    #[test]
    fn append_errors() {
        // Too big for the limit: refused with the tag, no '+'.
        let run = drive(
            &mut Framer::new(small()),
            &[b"a APPEND x {11}\r\nb NOOP\r\n"],
        );
        assert_eq!(run.continuations, 0);
        assert_eq!(
            run.events[0],
            Ev::Err(
                Some("a".into()),
                ParseErrorKind::LiteralTooBig { len: 11, max: 10 }
            )
        );
        assert!(matches!(&run.events[1], Ev::Cmd(Ok(_))));
        // A bad head is refused before the message is sent.
        let run = drive(&mut Framer::new(lim()), &[b"a APPEND x (\\Recent) {5}\r\n"]);
        assert_eq!(run.continuations, 0);
        assert_eq!(
            run.events,
            vec![Ev::Err(Some("a".into()), ParseErrorKind::FlagNotAllowed)]
        );
        assert!(run.leftover.is_empty());
        // NUL in a plain literal stops the stream; the rest of the command is skipped.
        let run = drive(
            &mut Framer::new(lim()),
            &[
                b"a APPEND x {5+}\r\nhe",
                b"\x00lo (\\Seen) {1+}\r\nz\r\nb NOOP\r\n",
            ],
        );
        assert_eq!(run.events.len(), 4, "{:?}", run.events);
        assert_eq!(run.events[1], Ev::Data(b"he".to_vec()));
        assert_eq!(
            run.events[2],
            Ev::Err(Some("a".into()), ParseErrorKind::Nul)
        );
        assert!(matches!(&run.events[3], Ev::Cmd(Ok(c)) if c.contains("Noop")));
        // Garbage after the message: the tag is still known.
        let run = drive(
            &mut Framer::new(lim()),
            &[b"tag7 APPEND x {1+}\r\nx junk\r\n"],
        );
        assert!(matches!(
            run.events.last(),
            Some(Ev::Err(Some(t), _)) if t == "tag7"
        ));
        assert!(run.leftover.is_empty());
        // Without a message at all it is an ordinary (bad) command.
        let run = drive(&mut Framer::new(lim()), &[b"a APPEND x\r\n"]);
        assert!(matches!(
            &run.events[0],
            Ev::Cmd(Err((Some(_), ParseErrorKind::MissingArgument(_))))
        ));
    }

    // ----- IDLE and AUTHENTICATE lines -----

    #[test]
    fn done_line() {
        assert_eq!(parse_done_line(b"DONE\r\n"), Some(Ok(6)));
        assert_eq!(parse_done_line(b"done\na NOOP\r\n"), Some(Ok(5)));
        assert_eq!(parse_done_line(b"DON"), None);
        assert_eq!(parse_done_line(b""), None);
        assert_eq!(
            parse_done_line(b"DONE x\r\n"),
            Some(Err(LineError {
                kind: ParseErrorKind::ExpectedDone,
                skip: 8
            }))
        );
        assert_eq!(
            parse_done_line(&[b'x'; 2000]),
            Some(Err(LineError {
                kind: ParseErrorKind::LineTooLong { max: 1024 },
                skip: 2000
            }))
        );
    }

    #[test]
    fn authenticate_response_lines() {
        assert_eq!(
            parse_authenticate_response(b"AGFsaWNlAHNlY3JldA==\r\n", &lim()),
            Some(Ok((AuthResponse::Data(b"AGFsaWNlAHNlY3JldA=="), 22)))
        );
        assert_eq!(
            parse_authenticate_response(b"*\r\nb NOOP\r\n", &lim()),
            Some(Ok((AuthResponse::Cancel, 3)))
        );
        assert_eq!(
            parse_authenticate_response(b"\n", &lim()),
            Some(Ok((AuthResponse::Data(b""), 1)))
        );
        assert_eq!(parse_authenticate_response(b"AGFs", &lim()), None);
        assert_eq!(
            parse_authenticate_response(b"not base64!\r\n", &lim()),
            Some(Err(LineError {
                kind: ParseErrorKind::InvalidBase64,
                skip: 13
            }))
        );
        let limits = Limits {
            max_line: 8,
            ..lim()
        };
        assert_eq!(
            parse_authenticate_response(b"QUJDREVGR0g=\r\n", &limits),
            Some(Err(LineError {
                kind: ParseErrorKind::LineTooLong { max: 8 },
                skip: 14
            }))
        );
        assert_eq!(
            decode_base64(b"AGFsaWNlAHNlY3JldA==").as_deref(),
            Some(&b"\0alice\0secret"[..])
        );
        assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64(b"QUJD").as_deref(), Some(&b"ABC"[..]));
        assert_eq!(decode_base64(b"QUI=").as_deref(), Some(&b"AB"[..]));
        assert_eq!(decode_base64(b"QUJ="), None, "non-zero padding bits");
        assert_eq!(decode_base64(b"QU=I"), None);
        assert_eq!(decode_base64(b"QUI"), None);
        assert_eq!(decode_base64(b"Q==="), None);
    }

    // ----- split-invariance edge cases (the fuzz target's whole-vs-chunked check) -----

    fn assert_split_invariant(input: &[u8], limits: Limits) -> Vec<Ev> {
        let whole = drive(&mut Framer::new(limits), &[input]).events;
        for k in 1..input.len() {
            let (x, y) = input.split_at(k);
            let split = drive(&mut Framer::new(limits), &[x, y]).events;
            assert_eq!(split, whole, "{} split at {k}", show(input));
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(drive(&mut Framer::new(limits), &bytes).events, whole);
        whole
    }

    #[test]
    fn split_invariance_edge_cases() {
        // A discarded line ending in a 25-digit "announcement": too long to be a literal,
        // whether or not its start is still buffered.
        let mut input = b"a SEARCH SUBJECT ".to_vec();
        input.extend_from_slice(&[b'z'; 60]);
        input.extend_from_slice(b" {0000000000000000000000012+}\r\nb NOOP\r\n");
        let events = assert_split_invariant(&input, small());
        assert_eq!(events.len(), 2);
        // " APPEND " inside a literal body must not make the command an APPEND.
        let events = assert_split_invariant(b"x{3}\r\n APPEND y {1}\r\nz\r\n", small());
        assert!(events.iter().all(|e| !matches!(e, Ev::Start(..))));
        // A tag longer than max_line: unreadable however much of the line is buffered.
        let mut input = vec![b't'; 45];
        input.extend_from_slice(b" NOOP\r\nb NOOP\r\n");
        let events = assert_split_invariant(&input, small());
        assert_eq!(
            events[0],
            Ev::Err(None, ParseErrorKind::LineTooLong { max: 40 })
        );
    }

    #[test]
    fn framer_survives_contract_violations() {
        let mut framer = Framer::new(lim());
        assert_eq!(framer.poll(b"a NOOP"), FrameEvent::NeedMore);
        // The caller shrank the buffer behind our back: no panic.
        assert_eq!(framer.poll(b"a"), FrameEvent::NeedMore);
        assert_eq!(framer.poll(b""), FrameEvent::NeedMore);
        framer.reject_literal();
        assert!(matches!(framer.poll(b"\r\n"), FrameEvent::Command { .. }));
    }
}
