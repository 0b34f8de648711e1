//! Lines that are not commands: IDLE's `DONE` and the responses of an AUTHENTICATE
//! exchange (base64 by the base64 crate, or `*`). See the [module documentation](super).

use std::fmt;

use memchr::memchr;

use super::*;
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
pub(super) const MAX_DONE_LINE: usize = 1024;

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

/// Strict RFC 4648 base64 with canonical padding and zero padding bits (empty is valid).
pub(super) fn is_base64(text: &[u8]) -> bool {
    decode_base64(text).is_some()
}

/// Decode strict, padded base64 (SASL data); `None` if malformed. The base64 crate's standard
/// engine: canonical padding required, trailing bits must be zero.
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
