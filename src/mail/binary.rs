//! BINARY (RFC 3516)'s view of a message, without I/O of its own: a part's
//! Content-Transfer-Encoding ([`transfer_of`]), a streaming [`Decoder`] that undoes it, the
//! decoded size ([`measure`]), and the whole-message conversion of `BINARY[]` on a MIME
//! message ([`convert`]): every leaf decoded and its encoding field rewritten to `binary`, as
//! Dovecot answers it, planned as stretches of the file to stream (never the message in
//! memory).

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
}

impl From<io::Error> for ConvertError {
    fn from(e: io::Error) -> Self {
        ConvertError::Io(e)
    }
}

/// One stretch of a converted message, in order.
#[derive(Debug)]
pub enum Piece {
    /// Bytes of the file as they are (CRLF-normalised).
    Raw(RawRange),
    /// A leaf's content with its encoding undone: `size` octets.
    Decoded {
        range: RawRange,
        transfer: Transfer,
        size: u64,
    },
    /// Made here: a header with its encoding field rewritten.
    Bytes(Vec<u8>),
}

impl Piece {
    /// Octets this stretch gives.
    pub fn len(&self) -> u64 {
        match self {
            Piece::Raw(r) => r.len(),
            Piece::Decoded { size, .. } => *size,
            Piece::Bytes(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `BINARY[]` of a message (or of a multipart or message part, `part` within `root`): the
/// message with every leaf's encoding undone and its Content-Transfer-Encoding field saying
/// `binary`; boundaries, preambles and unencoded parts as they are. `with_header`: false for
/// a multipart part's `BINARY[n]`, which is its body. Reads each encoded leaf once to learn
/// its decoded size; what it returns is streamed from the file.
pub fn convert<F: Read + Seek>(
    root: &Part,
    part: &Part,
    file: &mut F,
    with_header: bool,
) -> Result<Vec<Piece>, ConvertError> {
    let mut out = Vec::new();
    convert_into(root, part, file, &mut out, with_header)?;
    out.retain(|p| !p.is_empty());
    Ok(out)
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

/// The empty range at the end of `r`.
fn end_of(r: &RawRange) -> RawRange {
    RawRange {
        start: r.end,
        end: r.end,
        crlf_start: r.crlf_end,
        crlf_end: r.crlf_end,
    }
}

fn convert_into<F: Read + Seek>(
    root: &Part,
    part: &Part,
    file: &mut F,
    out: &mut Vec<Piece>,
    with_header: bool,
) -> Result<(), ConvertError> {
    let t = transfer_of(part).map_err(ConvertError::Unknown)?;
    let header = part.header_range();
    if !with_header {
    } else if t == Transfer::Identity {
        out.push(Piece::Raw(header));
    } else {
        // The header with its encoding field now saying what the content is.
        let mut h = Vec::new();
        root.open(&mut *file, &header, 0, None)?
            .read_to_end(&mut h)?;
        out.push(Piece::Bytes(rewrite_cte(&h)));
    }
    let body = part.body_range();
    if let Some(inner) = part.message() {
        let inner_full = inner.full_range();
        out.push(Piece::Raw(between(
            body.start,
            body.crlf_start,
            &inner_full,
        )));
        convert_into(root, inner, file, out, true)?;
        out.push(Piece::Raw(between(
            inner_full.end,
            inner_full.crlf_end,
            &end_of(&body),
        )));
        return Ok(());
    }
    let kids = part.children();
    if kids.is_empty() {
        if t == Transfer::Identity {
            out.push(Piece::Raw(body));
        } else {
            let r = root.open(&mut *file, &body, 0, None)?;
            let (size, _) = measure(r, t)?;
            out.push(Piece::Decoded {
                range: body,
                transfer: t,
                size,
            });
        }
        return Ok(());
    }
    // Preamble and the first boundary, each part, what lies between them, the closing
    // boundary and the epilogue.
    let (mut at_raw, mut at_crlf) = (body.start, body.crlf_start);
    for k in kids {
        let f = k.full_range();
        out.push(Piece::Raw(between(at_raw, at_crlf, &f)));
        convert_into(root, k, file, out, true)?;
        (at_raw, at_crlf) = (f.end, f.crlf_end);
    }
    out.push(Piece::Raw(between(at_raw, at_crlf, &end_of(&body))));
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

    /// What the pieces stream, in memory.
    fn materialize(root: &Part, pieces: &[Piece], msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Raw(r) => {
                    root.open(Cursor::new(msg), r, 0, None)
                        .unwrap()
                        .read_to_end(&mut out)
                        .unwrap();
                }
                Piece::Decoded {
                    range,
                    transfer,
                    size,
                } => {
                    let mut raw = Vec::new();
                    root.open(Cursor::new(msg), range, 0, None)
                        .unwrap()
                        .read_to_end(&mut raw)
                        .unwrap();
                    let before = out.len();
                    let mut d = Decoder::new(*transfer);
                    d.feed(&raw, &mut out);
                    d.finish(&mut out);
                    assert_eq!((out.len() - before) as u64, *size);
                }
                Piece::Bytes(b) => out.extend_from_slice(b),
            }
        }
        out
    }

    #[test]
    fn a_multipart_part_converts_without_its_own_header() {
        let m: &[u8] = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n\
--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n\
--i\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--i--\r\n\
--o--\r\n";
        let root = scan(Cursor::new(m)).unwrap();
        let part = root.section(&[2]).unwrap();
        let pieces = convert(&root, part, &mut Cursor::new(m), false).unwrap();
        let got = materialize(&root, &pieces, m);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "--i\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhi\r\n--i--"
        );
    }

    #[test]
    fn a_whole_message_converts_to_binary() {
        let root = scan(Cursor::new(MSG)).unwrap();
        let pieces = convert(&root, &root, &mut Cursor::new(MSG), true).unwrap();
        assert!(pieces.iter().any(|p| matches!(p, Piece::Decoded { .. })));
        let got = materialize(&root, &pieces, MSG);
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
            convert(&root, &root, &mut Cursor::new(&m[..]), true),
            Err(ConvertError::Unknown(_))
        ));
    }
}
