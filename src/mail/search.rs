//! IMAP SEARCH over message files: BODY / TEXT substring search in one streaming pass,
//! header field search (HEADER, FROM, TO, CC, BCC, SUBJECT) and RFC 5322 Date parsing for
//! SENTBEFORE / SENTON / SENTSINCE.
//!
//! Body search runs the [`mime`](super::mime) scanner (without size counting) and decodes
//! only `text/*` and `message/*` leaf parts (transfer encoding, then charset, then case
//! folding, see [`decode`](super::decode)); other parts (attachments) are skipped without
//! decoding: only their lines starting with `--` are looked at. A match never spans two
//! parts or two header fields. `text_contains` also searches every header block (the
//! message's, MIME part headers, embedded messages'), RFC 2047-decoded; `body_contains`
//! searches no header block at all, as Dovecot does. HTML is searched as its decoded source.

use std::io::{self, Read};

use super::decode::{Base64Decoder, Charset, CharsetDecoder, Finder, QpDecoder, decode_header};
use super::envelope::raw_fields;
use super::lex::Lexer;
use super::mime::{Class, Part, Scanner, Sink};
use crate::time::{days_from_civil, from_civil};

/// True when `needle` occurs (case-insensitively) in the decoded text of a body part.
pub fn body_contains<R: Read>(reader: R, needle: &str) -> io::Result<bool> {
    search(reader, needle, false)
}

/// True when `needle` occurs in a decoded header field or in the decoded text of a part.
pub fn text_contains<R: Read>(reader: R, needle: &str) -> io::Result<bool> {
    search(reader, needle, true)
}

fn search<R: Read>(mut reader: R, needle: &str, headers: bool) -> io::Result<bool> {
    let mut sink = SearchSink::new(needle, headers);
    if needle.is_empty() {
        return Ok(true);
    }
    let mut scanner = Scanner::with_sizes(false);
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        scanner.feed_with(&buf[..n], &mut sink);
        if sink.found {
            return Ok(true);
        }
    }
    let _ = scanner.finish_with(&mut sink);
    sink.end_part();
    Ok(sink.found)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cte {
    Identity,
    Base64,
    Qp,
}

struct SearchSink {
    finder: Finder,
    headers: bool,
    found: bool,
    active: Option<usize>,
    cte: Cte,
    qp: QpDecoder,
    b64: Base64Decoder,
    cs: CharsetDecoder,
    raw: Vec<u8>,
    utf8: Vec<u8>,
}

impl SearchSink {
    fn new(needle: &str, headers: bool) -> Self {
        SearchSink {
            finder: Finder::new(needle),
            headers,
            found: false,
            active: None,
            cte: Cte::Identity,
            qp: QpDecoder::new(),
            b64: Base64Decoder::new(),
            cs: CharsetDecoder::new(Charset::UsAscii),
            raw: Vec::new(),
            utf8: Vec::new(),
        }
    }

    /// Flushes the decoders of the part being searched.
    fn end_part(&mut self) {
        if self.active.take().is_none() || self.found {
            return;
        }
        self.raw.clear();
        match self.cte {
            Cte::Qp => self.qp.finish(&mut self.raw),
            Cte::Base64 => self.b64.finish(&mut self.raw),
            Cte::Identity => {}
        }
        self.utf8.clear();
        self.cs.feed(&self.raw, &mut self.utf8);
        self.cs.finish(&mut self.utf8);
        if self.finder.feed(&self.utf8) {
            self.found = true;
        }
    }
}

impl Sink for SearchSink {
    fn header_done(&mut self, id: usize, part: &Part) {
        self.end_part();
        if self.found {
            return;
        }
        if self.headers {
            for (name, value) in raw_fields(part.header()) {
                self.finder.reset();
                let mut line = name.to_vec();
                line.extend_from_slice(b": ");
                line.extend_from_slice(decode_header(value).as_bytes());
                if self.finder.feed(&line) {
                    self.found = true;
                    return;
                }
            }
        }
        if part.class() != Class::Leaf {
            return;
        }
        let info = content_info(part);
        if !(part.is_text() || info.message_type) {
            return;
        }
        self.active = Some(id);
        self.finder.reset();
        self.cte = match info.cte.as_deref().map(|c| c.to_ascii_lowercase()) {
            Some(c) if c == b"base64" => Cte::Base64,
            Some(c) if c == b"quoted-printable" => Cte::Qp,
            _ => Cte::Identity,
        };
        self.qp = QpDecoder::new();
        self.b64 = Base64Decoder::new();
        let charset = info
            .charset
            .as_deref()
            .map_or(Charset::UsAscii, Charset::from_label);
        self.cs = CharsetDecoder::new(charset);
    }

    fn body(&mut self, id: usize, data: &[u8]) {
        if self.found || self.active != Some(id) || data.is_empty() {
            return;
        }
        self.utf8.clear();
        match self.cte {
            Cte::Identity => self.cs.feed(data, &mut self.utf8),
            Cte::Qp | Cte::Base64 => {
                self.raw.clear();
                if self.cte == Cte::Qp {
                    self.qp.feed(data, &mut self.raw);
                } else {
                    self.b64.feed(data, &mut self.raw);
                }
                self.cs.feed(&self.raw, &mut self.utf8);
            }
        }
        if self.finder.feed(&self.utf8) {
            self.found = true;
        }
    }
}

/// What the Content-* fields of a part say (for a part that is not MIME, nothing).
pub(crate) struct ContentInfo {
    pub(crate) message_type: bool,
    /// `type/subtype`, lowercased; empty when there is no usable Content-Type.
    pub(crate) media: Vec<u8>,
    pub(crate) charset: Option<Vec<u8>>,
    pub(crate) cte: Option<Vec<u8>>,
}

pub(crate) fn content_info(part: &Part) -> ContentInfo {
    let mut info = ContentInfo {
        message_type: false,
        media: Vec::new(),
        charset: None,
        cte: None,
    };
    if !part.is_mime() {
        return info;
    }
    let mut seen_type = false;
    for (name, value) in raw_fields(part.header()) {
        if name.eq_ignore_ascii_case(b"content-type") && !seen_type {
            seen_type = true;
            let mut lx = Lexer::new(value);
            let mut t = Vec::new();
            let r = lx.content_type(&mut t);
            info.message_type = t.len() >= 8 && t[..8].eq_ignore_ascii_case(b"message/");
            if r.is_ok() {
                info.media = t.to_ascii_lowercase();
                info.charset = lx
                    .params()
                    .into_iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(b"charset"))
                    .map(|(_, v)| v);
            }
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") && info.cte.is_none() {
            let mut lx = Lexer::new(value);
            let mut t = Vec::new();
            if lx.skip_lwsp().is_ok() && lx.mime_token(&mut t).is_ok() {
                info.cte = Some(t);
            }
        }
    }
    info
}

/// SEARCH HEADER / FROM / TO / CC / BCC / SUBJECT: whether a `field` of the header block
/// contains `needle` once RFC 2047-decoded (case-insensitive). An empty needle matches any
/// message that has the field.
pub fn header_contains(header_block: &[u8], field: &str, needle: &str) -> bool {
    let mut f = Finder::new(needle);
    for (name, value) in raw_fields(header_block) {
        if !name.eq_ignore_ascii_case(field.as_bytes()) {
            continue;
        }
        if needle.is_empty() {
            return true;
        }
        f.reset();
        if f.feed(decode_header(value).as_bytes()) {
            return true;
        }
    }
    false
}

/// SEARCH FROM / TO / CC / BCC: like [`header_contains`], and also against each address as
/// the ENVELOPE parses it, `name <mailbox@domain>` with the name decoded, so that comments
/// and folding inside an address (`<user (c)@ (c) domain.org>`) do not hide it.
pub fn address_contains(header_block: &[u8], field: &str, needle: &str) -> bool {
    if header_contains(header_block, field, needle) {
        return true;
    }
    let mut f = Finder::new(needle);
    for (name, value) in raw_fields(header_block) {
        if !name.eq_ignore_ascii_case(field.as_bytes()) {
            continue;
        }
        for a in crate::mail::envelope::parse_addresses(value) {
            let mut text = String::new();
            if let Some(n) = &a.name {
                text.push_str(&decode_header(n));
                text.push(' ');
            }
            text.push('<');
            text.push_str(&String::from_utf8_lossy(
                a.mailbox.as_deref().unwrap_or_default(),
            ));
            if let Some(d) = &a.domain {
                text.push('@');
                text.push_str(&String::from_utf8_lossy(d));
            }
            text.push('>');
            f.reset();
            if f.feed(text.as_bytes()) {
                return true;
            }
        }
    }
    false
}

/// The parts of an RFC 5322 date: (year, month, day, hour, minute, second, zone minutes).
fn date_parts(value: &[u8]) -> Option<(u64, u64, u64, u64, u64, u64, i32)> {
    // Comments out, then tokens split on white space and commas.
    let mut clean = Vec::with_capacity(value.len());
    let mut depth = 0u32;
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\\' if depth > 0 => i += 1,
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            c if depth == 0 => clean.push(c),
            _ => {}
        }
        i += 1;
    }
    let text = String::from_utf8_lossy(&clean);
    let mut toks = text
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|t| !t.is_empty());
    let mut t = toks.next()?;
    if t.starts_with(|c: char| c.is_ascii_alphabetic()) {
        t = toks.next()?; // day of week
    }
    let day: u64 = t.parse().ok()?;
    let month_tok = toks.next()?.to_ascii_lowercase();
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS
        .iter()
        .position(|m| month_tok.len() >= 3 && month_tok.starts_with(m))? as u64
        + 1;
    let ytok = toks.next()?;
    let mut year: u64 = ytok.parse().ok()?;
    match ytok.len() {
        1 | 2 if year < 50 => year += 2000,
        1..=3 => year += 1900,
        _ => {}
    }
    let time = toks.next()?;
    let mut hms = time.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let mi: u64 = hms.next()?.parse().ok()?;
    let s: u64 = match hms.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if hms.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let zone = match toks.next() {
        None => 0,
        Some(z) if z.starts_with(['+', '-']) && z.len() == 5 => {
            let n: i32 = z[1..].parse().ok()?;
            let (zh, zm) = (n / 100, n % 100);
            if zm > 59 {
                return None;
            }
            let m = zh * 60 + zm;
            if z.starts_with('-') { -m } else { m }
        }
        Some(z) => match z.to_ascii_uppercase().as_str() {
            "EDT" => -4 * 60,
            "EST" | "CDT" => -5 * 60,
            "CST" | "MDT" => -6 * 60,
            "MST" | "PDT" => -7 * 60,
            "PST" => -8 * 60,
            _ => 0, // UT, GMT, Z, military zones (RFC 5322: treat as -0000), unknown
        },
    };
    Some((year, month, day, h, mi, s.min(59), zone))
}

/// Parses an RFC 5322 Date field value, obsolete forms included (two- and three-digit
/// years, named zones such as GMT/EST/PDT, missing seconds, comments, no day of week).
/// Returns (Unix time UTC, the zone's offset in minutes); None for dates before 1970 or
/// values that are not dates.
pub fn parse_date(value: &[u8]) -> Option<(u64, i32)> {
    let (y, mo, d, h, mi, s, zone) = date_parts(value)?;
    let local = from_civil(y, mo, d, h, mi, s)? as i64;
    let utc = local - zone as i64 * 60;
    u64::try_from(utc).ok().map(|u| (u, zone))
}

/// The day (days since 1970-01-01) of a Date field value in the message's own zone, i.e.
/// the calendar date as written: what SENTBEFORE / SENTON / SENTSINCE compare (RFC 3501
/// says to disregard time and timezone). Compare with `time::days_from_civil(y, m, d)` of
/// the SEARCH date.
pub fn sent_day(value: &[u8]) -> Option<u64> {
    let (y, mo, d, h, mi, s, _) = date_parts(value)?;
    from_civil(y, mo, d, h, mi, s)?;
    Some(days_from_civil(y, mo, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: =?ISO-8859-1?Q?Andr=E9?= <a@b.c>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me br=FBl=E9e\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nc2VjcmV0IGluIGF0dGFjaG1lbnQ=\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+QmFzZTY0IEhUTUw8L2I+\r\n--b--\r\n";

    #[test]
    fn body_search_decodes_text_parts_only() {
        assert!(body_contains(MSG, "CRÈME BRÛLÉE").unwrap());
        assert!(body_contains(MSG, "base64 html").unwrap());
        assert!(!body_contains(MSG, "secret").unwrap()); // inside an attachment
        assert!(!body_contains(MSG, "grüße").unwrap()); // header only
        assert!(text_contains(MSG, "grüße").unwrap());
        assert!(text_contains(MSG, "andré").unwrap());
        assert!(text_contains(MSG, "octet-stream").unwrap()); // MIME header
        assert!(!body_contains(MSG, "crème\r\n--b").unwrap()); // never across parts
        assert!(body_contains(MSG, "").unwrap());
        for n in 1..20 {
            let r = ChunkReader(MSG, n);
            assert!(body_contains(r, "brûlée").unwrap(), "chunks of {n}");
        }
    }

    struct ChunkReader<'a>(&'a [u8], usize);
    impl Read for ChunkReader<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn header_search() {
        let h = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus\r\n =?utf-8?q?M=C3=BCnchen?=\r\nX-Empty:\r\n";
        assert!(header_contains(h, "subject", "GRÜßE"));
        assert!(header_contains(h, "SUBJECT", "aus münchen"));
        assert!(header_contains(h, "x-empty", ""));
        assert!(!header_contains(h, "cc", ""));
        assert!(!header_contains(h, "subject", "berlin"));
    }

    #[test]
    fn dates() {
        let t = |s: &str| parse_date(s.as_bytes());
        assert_eq!(
            t("Tue, 3 Mar 2026 10:15:00 +0100"),
            Some((1_772_529_300, 60))
        );
        assert_eq!(t("3 Mar 2026 09:15 GMT"), Some((1_772_529_300, 0)));
        assert_eq!(
            t("Mon, 9 Mar 2026 09:00 -0800 (PST)"),
            t("Mon, 9 Mar 2026 17:00:00 +0000").map(|(u, _)| (u, -480))
        );
        assert_eq!(
            t("16 Mar 26 10:00 EST"),
            t("16 Mar 2026 15:00 +0000").map(|(u, _)| (u, -300))
        );
        assert_eq!(t("Fri, 13 Feb 99 23:59:60 PDT").map(|x| x.1), Some(-420));
        assert_eq!(
            t("(c) Sun , 08 Mar 2026 22:10:00 +0900 (JST)").map(|x| x.1),
            Some(540)
        );
        assert_eq!(t("not a date"), None);
        assert_eq!(t("31 Feb 2026 10:00 +0000"), None);
        assert_eq!(t("1 Jan 1970 00:30 +0100"), None);
        assert_eq!(
            sent_day(b"Tue, 3 Mar 2026 00:30:00 +0100"),
            Some(days_from_civil(2026, 3, 3))
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 11u32;
        let alphabet =
            b"--b\r\nContent-Type: text/plain; charset=utf-8 base64 =?q?= ()0123:+ Mar\xc3";
        for _ in 0..2000 {
            let len = (seed % 200) as usize;
            let mut v = Vec::new();
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                v.push(alphabet[(seed >> 16) as usize % alphabet.len()]);
            }
            let _ = text_contains(&v[..], "plain");
            let _ = body_contains(&v[..], "é");
            let _ = header_contains(&v, "content-type", "x");
            let _ = parse_date(&v);
        }
    }
}
