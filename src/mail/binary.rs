//! BINARY (RFC 3516)'s view of a message, without I/O of its own: a part's
//! Content-Transfer-Encoding ([`transfer_of`]), a streaming [`Decoder`] that undoes it, the
//! decoded size ([`measure`]), and the whole-message conversion of `BINARY[]` on a MIME
//! message ([`convert`]): every leaf decoded and its encoding field rewritten to `binary`, as
//! Dovecot answers it.

use super::decode::{Base64Decoder, QpDecoder};
use super::envelope::raw_fields;
use super::mime::{Part, RawRange};
use std::io::{self, Read, Seek};

/// How a part's content is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// 7bit, 8bit, binary, or none given: the content as it is.
    Identity,
    Base64,
    QuotedPrintable,
}

/// An encoding this server cannot undo (RFC 3516 §4.3: `NO [UNKNOWN-CTE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCte;

impl std::fmt::Display for UnknownCte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unknown Content-Transfer-Encoding")
    }
}

impl std::error::Error for UnknownCte {}

/// The Content-Transfer-Encoding of a part (only MIME parts have one).
pub fn transfer_of(part: &Part) -> Result<Transfer, UnknownCte> {
    if !part.is_mime() {
        return Ok(Transfer::Identity);
    }
    let Some((_, v)) = raw_fields(part.header())
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-transfer-encoding"))
    else {
        return Ok(Transfer::Identity);
    };
    let v = v.trim_ascii().to_ascii_lowercase();
    match v.as_slice() {
        b"7bit" | b"8bit" | b"binary" | b"" => Ok(Transfer::Identity),
        b"base64" => Ok(Transfer::Base64),
        b"quoted-printable" => Ok(Transfer::QuotedPrintable),
        _ => Err(UnknownCte),
    }
}

/// Undoes a transfer encoding, chunk by chunk (of CRLF-normalised input).
#[derive(Debug)]
pub enum Decoder {
    Identity,
    Base64(Base64Decoder),
    QuotedPrintable(QpDecoder),
}

impl Decoder {
    pub fn new(t: Transfer) -> Decoder {
        match t {
            Transfer::Identity => Decoder::Identity,
            Transfer::Base64 => Decoder::Base64(Base64Decoder::new()),
            Transfer::QuotedPrintable => Decoder::QuotedPrintable(QpDecoder::new()),
        }
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Decoder::Identity => out.extend_from_slice(input),
            Decoder::Base64(d) => d.feed(input, out),
            Decoder::QuotedPrintable(d) => d.feed(input, out),
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Decoder::Identity => {}
            Decoder::Base64(d) => d.finish(out),
            Decoder::QuotedPrintable(d) => d.finish(out),
        }
    }
}

/// The decoded size of what `r` yields (CRLF-normalised content), and whether it holds a NUL
/// (then it must go as a literal8).
pub fn measure(mut r: impl Read, t: Transfer) -> io::Result<(u64, bool)> {
    let mut d = Decoder::new(t);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    let (mut size, mut nul) = (0u64, false);
    loop {
        let n = r.read(&mut buf)?;
        out.clear();
        if n == 0 {
            d.finish(&mut out);
        } else {
            d.feed(&buf[..n], &mut out);
        }
        size += out.len() as u64;
        nul |= memchr::memchr(0, &out).is_some();
        if n == 0 {
            return Ok((size, nul));
        }
    }
}

/// Why a conversion failed.
#[derive(Debug)]
pub enum ConvertError {
    Unknown(UnknownCte),
    Io(io::Error),
    /// Larger than the caller's limit.
    TooBig,
}

impl From<io::Error> for ConvertError {
    fn from(e: io::Error) -> Self {
        ConvertError::Io(e)
    }
}

/// `BINARY[]` of a message (or of a multipart or message part, `part` within `root`): the
/// message with every leaf's encoding undone and its Content-Transfer-Encoding field saying
/// `binary`; boundaries, preambles and unencoded parts as they are. At most `limit` bytes.
pub fn convert<F: Read + Seek>(
    root: &Part,
    part: &Part,
    file: &mut F,
    limit: u64,
) -> Result<Vec<u8>, ConvertError> {
    let mut out = Vec::new();
    convert_into(root, part, file, &mut out, limit)?;
    Ok(out)
}

fn raw_into<F: Read + Seek>(
    root: &Part,
    file: &mut F,
    range: &RawRange,
    out: &mut Vec<u8>,
    limit: u64,
) -> Result<(), ConvertError> {
    if out.len() as u64 + range.len() > limit {
        return Err(ConvertError::TooBig);
    }
    root.open(&mut *file, range, 0, None)?.read_to_end(out)?;
    Ok(())
}

/// The stretch of raw file from the end of `a` to the start of `b`.
fn between(a_end_raw: u64, a_end_crlf: u64, b: &RawRange) -> RawRange {
    RawRange {
        start: a_end_raw,
        end: b.start,
        crlf_start: a_end_crlf,
        crlf_end: b.crlf_start,
    }
}

fn convert_into<F: Read + Seek>(
    root: &Part,
    part: &Part,
    file: &mut F,
    out: &mut Vec<u8>,
    limit: u64,
) -> Result<(), ConvertError> {
    let t = transfer_of(part).map_err(ConvertError::Unknown)?;
    let header = part.header_range();
    if t == Transfer::Identity {
        raw_into(root, file, &header, out, limit)?;
    } else {
        // The header with its encoding field now saying what the content is.
        let mut h = Vec::new();
        raw_into(root, file, &header, &mut h, limit)?;
        out.extend_from_slice(&rewrite_cte(&h));
    }
    let body = part.body_range();
    if let Some(inner) = part.message() {
        let inner_full = inner.full_range();
        raw_into(
            root,
            file,
            &between(body.start, body.crlf_start, &inner_full),
            out,
            limit,
        )?;
        convert_into(root, inner, file, out, limit)?;
        let end = inner.full_range();
        raw_into(
            root,
            file,
            &between(
                end.end,
                end.crlf_end,
                &RawRange {
                    start: body.end,
                    end: body.end,
                    crlf_start: body.crlf_end,
                    crlf_end: body.crlf_end,
                },
            ),
            out,
            limit,
        )?;
        return Ok(());
    }
    let kids = part.children();
    if kids.is_empty() {
        let mut d = Decoder::new(t);
        let mut r = root.open(&mut *file, &body, 0, None)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                d.finish(out);
                break;
            }
            d.feed(&buf[..n], out);
            if out.len() as u64 > limit {
                return Err(ConvertError::TooBig);
            }
        }
        return Ok(());
    }
    // Preamble and the first boundary, each part, what lies between them, the closing
    // boundary and the epilogue.
    let (mut at_raw, mut at_crlf) = (body.start, body.crlf_start);
    for k in kids {
        let f = k.full_range();
        raw_into(root, file, &between(at_raw, at_crlf, &f), out, limit)?;
        convert_into(root, k, file, out, limit)?;
        (at_raw, at_crlf) = (f.end, f.crlf_end);
    }
    let end = RawRange {
        start: body.end,
        end: body.end,
        crlf_start: body.crlf_end,
        crlf_end: body.crlf_end,
    };
    raw_into(root, file, &between(at_raw, at_crlf, &end), out, limit)?;
    Ok(())
}

/// A header block with the value of its Content-Transfer-Encoding field replaced by
/// `binary` (folded continuation lines of that field dropped).
fn rewrite_cte(h: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(h.len());
    let mut lines = h.split_inclusive(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_cte = line.iter().position(|&b| b == b':').is_some_and(|c| {
            line[..c]
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-transfer-encoding")
        });
        if !is_cte {
            out.extend_from_slice(line);
            continue;
        }
        out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
        while lines
            .peek()
            .is_some_and(|l| matches!(l.first(), Some(b' ' | b'\t')))
        {
            lines.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::mime::scan;
    use std::io::Cursor;

    const MSG: &[u8] = b"From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 so=\r\nft\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nas is\r\n--b--\r\nepilogue\r\n";

    #[test]
    fn parts_decode_and_measure() {
        let root = scan(Cursor::new(MSG)).unwrap();
        let p1 = root.section(&[1]).unwrap();
        assert_eq!(transfer_of(p1), Ok(Transfer::QuotedPrintable));
        let r = root
            .open(Cursor::new(MSG), &p1.body_range(), 0, None)
            .unwrap();
        assert_eq!(measure(r, Transfer::QuotedPrintable).unwrap(), (10, false));
        let p2 = root.section(&[2]).unwrap();
        let r = root
            .open(Cursor::new(MSG), &p2.body_range(), 0, None)
            .unwrap();
        assert_eq!(measure(r, Transfer::Base64).unwrap(), (4, true));
        assert_eq!(
            transfer_of(root.section(&[3]).unwrap()),
            Ok(Transfer::Identity)
        );
    }

    #[test]
    fn a_whole_message_converts_to_binary() {
        let root = scan(Cursor::new(MSG)).unwrap();
        let got = convert(&root, &root, &mut Cursor::new(MSG), 1 << 20).unwrap();
        let want: &[u8] = b"From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nCaf\xc3\xa9 soft\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\xff\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nas is\r\n--b--\r\nepilogue\r\n";
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_encodings_are_refused() {
        let m = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
        let root = scan(Cursor::new(&m[..])).unwrap();
        assert_eq!(transfer_of(&root), Err(UnknownCte));
        assert!(matches!(
            convert(&root, &root, &mut Cursor::new(&m[..]), 1 << 20),
            Err(ConvertError::Unknown(_))
        ));
    }
}
