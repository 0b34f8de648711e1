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

use std::fmt;

use super::command::Command;

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

mod framer;
mod grammar;
mod lines;
#[cfg(test)]
mod tests;

use framer::{FState, extract_tag};
pub use framer::{FrameEvent, Framer};
use grammar::parse_frame;
pub use grammar::{reparse_append_head, reparse_append_next};
pub use lines::{
    AuthResponse, LineError, decode_base64, parse_authenticate_response, parse_done_line,
};
