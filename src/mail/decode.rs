//! Turning message text into searchable UTF-8: RFC 2047 encoded words in header values,
//! streaming quoted-printable and base64 decoders, charsets, and a case-insensitive substring
//! [`Finder`] that works across chunk boundaries.
//!
//! Charsets: UTF-8; US-ASCII (8-bit bytes that are not UTF-8 read as windows-1252, as
//! mislabelled mail usually is); ISO-8859-1 and windows-1252 (both through the windows-1252
//! table, as browsers do); ISO-8859-15 — these by hand, on the hot path; every other label the
//! WHATWG Encoding Standard knows (ISO-8859-x, KOI8, Shift_JIS, EUC-JP, ISO-2022-JP, GBK,
//! gb18030, Big5, EUC-KR, UTF-16…) through `encoding_rs`. An unknown label is read as UTF-8
//! with U+FFFD for bytes that are not (ASCII is always kept). Decoders never fail: garbage
//! is replaced or passed on.
//!
//! Case folding is `char::to_lowercase` per character (ASCII fast path): it covers ASCII,
//! Latin-1, Latin Extended-A/B, Greek and Cyrillic; it is not full Unicode case folding
//! (`ß` does not match `ss`, no normalisation of combining marks).

use memchr::memmem;

/// A character set this module can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    UsAscii,
    /// ISO-8859-1 and windows-1252 (decoded with the windows-1252 table).
    Windows1252,
    Latin9,
    /// Any other charset the Encoding Standard has.
    Other(&'static encoding_rs::Encoding),
    /// Not known: UTF-8 where valid, U+FFFD elsewhere.
    Unknown,
}

impl Charset {
    /// The charset a MIME label names (case-insensitive, with common aliases).
    pub fn from_label(label: &[u8]) -> Charset {
        let l = label.trim_ascii().to_ascii_lowercase();
        match l.as_slice() {
            b"utf-8" | b"utf8" | b"unicode-1-1-utf-8" => Charset::Utf8,
            b"us-ascii" | b"ascii" | b"ansi_x3.4-1968" | b"iso646-us" | b"us" => Charset::UsAscii,
            b"iso-8859-1" | b"iso8859-1" | b"iso_8859-1" | b"latin1" | b"latin-1" | b"l1"
            | b"windows-1252" | b"cp1252" | b"x-cp1252" | b"cp819" | b"ibm819" => {
                Charset::Windows1252
            }
            b"iso-8859-15" | b"iso8859-15" | b"iso_8859-15" | b"latin9" | b"latin-9" | b"l9" => {
                Charset::Latin9
            }
            _ => match encoding_rs::Encoding::for_label_no_replacement(&l) {
                Some(e) if e == encoding_rs::UTF_8 => Charset::Utf8,
                Some(e) if e == encoding_rs::WINDOWS_1252 => Charset::Windows1252,
                Some(e) => Charset::Other(e),
                None => Charset::Unknown,
            },
        }
    }
}

/// windows-1252 0x80..=0x9F (undefined positions map to the C1 control of the same value).
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
];

fn cp1252(b: u8) -> char {
    match b {
        0x80..=0x9F => {
            char::from_u32(CP1252_HIGH[(b - 0x80) as usize] as u32).unwrap_or('\u{FFFD}')
        }
        _ => b as char,
    }
}

fn latin9(b: u8) -> char {
    match b {
        0xA4 => '€',
        0xA6 => 'Š',
        0xA8 => 'š',
        0xB4 => 'Ž',
        0xB8 => 'ž',
        0xBC => 'Œ',
        0xBD => 'œ',
        0xBE => 'Ÿ',
        _ => b as char,
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut b = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

/// Converts a charset's bytes to UTF-8, chunk by chunk (a multi-byte UTF-8 sequence may be
/// split across chunks).
pub struct CharsetDecoder {
    charset: Charset,
    carry: Vec<u8>,
    /// The decoder of an [`Charset::Other`] charset (it keeps its own partial sequences).
    other: Option<Box<encoding_rs::Decoder>>,
}

impl std::fmt::Debug for CharsetDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CharsetDecoder")
            .field("charset", &self.charset)
            .finish()
    }
}

impl Clone for CharsetDecoder {
    /// A fresh decoder of the same charset (partial input is not carried over).
    fn clone(&self) -> Self {
        CharsetDecoder::new(self.charset)
    }
}

impl CharsetDecoder {
    pub fn new(charset: Charset) -> Self {
        CharsetDecoder {
            charset,
            carry: Vec::new(),
            other: match charset {
                Charset::Other(e) => Some(Box::new(e.new_decoder_without_bom_handling())),
                _ => None,
            },
        }
    }

    fn other_into(&mut self, input: &[u8], last: bool, out: &mut Vec<u8>) {
        let Some(d) = self.other.as_mut() else { return };
        let mut rest = input;
        loop {
            let room = d
                .max_utf8_buffer_length(rest.len())
                .unwrap_or(rest.len() * 3 + 16)
                .max(16);
            let start = out.len();
            out.resize(start + room, 0);
            let (result, read, written, _) = d.decode_to_utf8(rest, &mut out[start..], last);
            out.truncate(start + written);
            rest = &rest[read..];
            if result == encoding_rs::CoderResult::InputEmpty {
                return;
            }
        }
    }

    /// Appends the UTF-8 form of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self.charset {
            Charset::Other(_) => self.other_into(input, false, out),
            Charset::Windows1252 | Charset::Latin9 => {
                let map = if self.charset == Charset::Latin9 {
                    latin9
                } else {
                    cp1252
                };
                for &b in input {
                    if b < 0x80 {
                        out.push(b);
                    } else {
                        push_char(out, map(b));
                    }
                }
            }
            Charset::Utf8 | Charset::Unknown | Charset::UsAscii => {
                let fallback_cp1252 = self.charset == Charset::UsAscii;
                if self.carry.is_empty() {
                    utf8_into(input, out, &mut self.carry, fallback_cp1252);
                } else {
                    let mut tmp = std::mem::take(&mut self.carry);
                    tmp.extend_from_slice(input);
                    utf8_into(&tmp, out, &mut self.carry, fallback_cp1252);
                }
            }
        }
    }

    /// Flushes an incomplete trailing sequence (as U+FFFD or windows-1252).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if matches!(self.charset, Charset::Other(_)) {
            self.other_into(&[], true, out);
            return;
        }
        let fallback = self.charset == Charset::UsAscii;
        for b in std::mem::take(&mut self.carry) {
            push_char(out, if fallback { cp1252(b) } else { '\u{FFFD}' });
        }
    }
}

fn utf8_into(mut input: &[u8], out: &mut Vec<u8>, carry: &mut Vec<u8>, fallback_cp1252: bool) {
    loop {
        match std::str::from_utf8(input) {
            Ok(s) => {
                out.extend_from_slice(s.as_bytes());
                return;
            }
            Err(e) => {
                let v = e.valid_up_to();
                out.extend_from_slice(&input[..v]);
                match e.error_len() {
                    None => {
                        carry.extend_from_slice(&input[v..]);
                        return;
                    }
                    Some(n) => {
                        for &b in &input[v..v + n] {
                            push_char(
                                out,
                                if fallback_cp1252 {
                                    cp1252(b)
                                } else {
                                    '\u{FFFD}'
                                },
                            );
                        }
                        input = &input[v + n..];
                    }
                }
            }
        }
    }
}

/// Converts `input` in `charset` to UTF-8 in one go.
pub fn to_utf8(charset: Charset, input: &[u8]) -> String {
    let mut d = CharsetDecoder::new(charset);
    let mut out = Vec::with_capacity(input.len());
    d.feed(input, &mut out);
    d.finish(&mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Streaming quoted-printable decoder (RFC 2045 §6.7): `=XX` escapes, soft line breaks
/// (`=` then optional blanks then a line break). Malformed escapes pass through as written.
#[derive(Debug, Clone, Default)]
pub struct QpDecoder {
    /// Bytes after an `=` not decided yet (`=`, `=X`, or `=` plus blanks / CR).
    pending: Vec<u8>,
}

impl QpDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            if !self.pending.is_empty() {
                let b = input[i];
                i += 1;
                self.pending.push(b);
                self.settle(out);
                continue;
            }
            match memchr::memchr(b'=', &input[i..]) {
                None => {
                    out.extend_from_slice(&input[i..]);
                    return;
                }
                Some(k) => {
                    out.extend_from_slice(&input[i..i + k]);
                    self.pending.push(b'=');
                    i += k + 1;
                }
            }
        }
    }

    /// Decides what `pending` (starting with `=`) means, if it can yet.
    fn settle(&mut self, out: &mut Vec<u8>) {
        let p = &self.pending;
        let second = p[1];
        if let Some(h) = hex(second) {
            if p.len() < 3 {
                return;
            }
            match hex(p[2]) {
                Some(l) => {
                    out.push(h << 4 | l);
                    self.pending.clear();
                }
                None => self.flush_literal(out),
            }
            return;
        }
        match *p.last().unwrap_or(&0) {
            b'\n'
                if p[1..p.len() - 1]
                    .iter()
                    .all(|&c| matches!(c, b' ' | b'\t' | b'\r')) =>
            {
                self.pending.clear(); // soft line break
            }
            b' ' | b'\t' | b'\r' if p.len() < 80 => {}
            _ => self.flush_literal(out),
        }
    }

    fn flush_literal(&mut self, out: &mut Vec<u8>) {
        // Emit the '=' as is and re-scan what followed it.
        let rest = std::mem::take(&mut self.pending);
        out.push(b'=');
        self.feed(&rest[1..], out);
    }

    /// End of input: whatever is pending is emitted as written.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let rest = std::mem::take(&mut self.pending);
        out.extend_from_slice(&rest);
    }
}

const B64_INVALID: u8 = 0xFF;
const B64_PAD: u8 = 0xFE;

const fn b64_table() -> [u8; 256] {
    let mut t = [B64_INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t[b'=' as usize] = B64_PAD;
    t
}
static B64: [u8; 256] = b64_table();

/// Streaming base64 decoder: characters outside the alphabet (line breaks, garbage) are
/// skipped; `=` ends a quantum early; data after padding is decoded as a new stream.
#[derive(Debug, Clone, Default)]
pub struct Base64Decoder {
    acc: u32,
    n: u8,
}

impl Base64Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / 4 * 3 + 3);
        for &c in input {
            let v = B64[c as usize];
            if v < 64 {
                self.acc = self.acc << 6 | v as u32;
                self.n += 1;
                if self.n == 4 {
                    out.extend_from_slice(&[
                        (self.acc >> 16) as u8,
                        (self.acc >> 8) as u8,
                        self.acc as u8,
                    ]);
                    self.acc = 0;
                    self.n = 0;
                }
            } else if v == B64_PAD {
                self.finish(out);
            }
        }
    }

    /// Emits the bytes of an incomplete final quantum.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.n {
            2 => out.push((self.acc >> 4) as u8),
            3 => out.extend_from_slice(&[(self.acc >> 10) as u8, (self.acc >> 2) as u8]),
            _ => {}
        }
        self.acc = 0;
        self.n = 0;
    }
}

/// Decodes RFC 2047 encoded words (`=?charset?B?...?=`, `=?charset?Q?...?=`) in a header
/// value to UTF-8. White space between adjacent encoded words is dropped; folding line
/// breaks are removed; raw 8-bit text is read as UTF-8, else windows-1252. Malformed words
/// are kept as written.
pub fn decode_header(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    let mut last_was_word = false;
    let mut raw_start = 0;
    let flush_raw = |out: &mut Vec<u8>, raw: &[u8]| {
        let mut d = CharsetDecoder::new(Charset::UsAscii);
        let cleaned: Vec<u8> = raw
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        d.feed(&cleaned, out);
        d.finish(out);
    };
    while i < value.len() {
        if value[i] == b'='
            && value.get(i + 1) == Some(&b'?')
            && let Some((end, decoded)) = encoded_word(&value[i..])
        {
            // Text before this word (unless it is only white space between two words).
            let between = &value[raw_start..i];
            let only_ws = between
                .iter()
                .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            if !(last_was_word && only_ws) {
                flush_raw(&mut out, between);
            }
            out.extend_from_slice(&decoded);
            i += end;
            raw_start = i;
            last_was_word = true;
            continue;
        }
        if !matches!(value[i], b' ' | b'\t' | b'\r' | b'\n') {
            last_was_word = false;
        }
        i += 1;
    }
    flush_raw(&mut out, &value[raw_start..]);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Parses one encoded word at the start of `s`: (its length, the decoded UTF-8).
fn encoded_word(s: &[u8]) -> Option<(usize, Vec<u8>)> {
    // =?charset?E?text?=
    let rest = &s[2..];
    let q1 = rest.iter().take(80).position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    if charset.is_empty() || charset.iter().any(|&b| b <= b' ' || b >= 0x7f) {
        return None;
    }
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = memmem::find(&rest[text_start..], b"?=")?;
    let text = &rest[text_start..text_start + text_len];
    if text
        .iter()
        .any(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return None;
    }
    let charset = match charset.iter().position(|&b| b == b'*') {
        Some(p) => &charset[..p], // RFC 2231 language suffix
        None => charset,
    };
    let mut raw = Vec::with_capacity(text.len());
    match enc {
        b'B' | b'b' => {
            let mut d = Base64Decoder::new();
            d.feed(text, &mut raw);
            d.finish(&mut raw);
        }
        b'Q' | b'q' => {
            let mut j = 0;
            while j < text.len() {
                match text[j] {
                    b'_' => raw.push(b' '),
                    b'=' if j + 2 < text.len() => match (hex(text[j + 1]), hex(text[j + 2])) {
                        (Some(h), Some(l)) => {
                            raw.push(h << 4 | l);
                            j += 2;
                        }
                        _ => raw.push(b'='),
                    },
                    b => raw.push(b),
                }
                j += 1;
            }
        }
        _ => return None,
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut d = CharsetDecoder::new(Charset::from_label(charset));
    d.feed(&raw, &mut out);
    d.finish(&mut out);
    Some((2 + text_start + text_len + 2, out))
}

/// Appends the case-folded form of UTF-8 `s` to `out`.
pub fn fold_into(s: &str, out: &mut Vec<u8>) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
        return;
    }
    for c in s.chars() {
        if c.is_ascii() {
            out.push((c as u8).to_ascii_lowercase());
        } else {
            for l in c.to_lowercase() {
                push_char(out, l);
            }
        }
    }
}

/// The case-folded form of `s`.
pub fn fold(s: &str) -> String {
    let mut v = Vec::with_capacity(s.len());
    fold_into(s, &mut v);
    String::from_utf8(v).unwrap_or_default()
}

/// Case-insensitive substring search over a stream of UTF-8 chunks: a match may span chunk
/// boundaries (and multi-byte characters may be split across them).
pub struct Finder {
    needle: Vec<u8>,
    finder: memmem::Finder<'static>,
    /// The folded text kept from earlier chunks (the last `needle.len() - 1` bytes).
    buf: Vec<u8>,
    utf8: CharsetDecoder,
    scratch: Vec<u8>,
    found: bool,
}

impl Finder {
    pub fn new(needle: &str) -> Self {
        let folded = fold(needle).into_bytes();
        Finder {
            finder: memmem::Finder::new(&folded).into_owned(),
            found: folded.is_empty(),
            needle: folded,
            buf: Vec::new(),
            utf8: CharsetDecoder::new(Charset::Unknown),
            scratch: Vec::new(),
        }
    }

    /// Feeds UTF-8 text (invalid bytes count as U+FFFD). True once the needle was seen.
    pub fn feed(&mut self, text: &[u8]) -> bool {
        if self.found {
            return true;
        }
        self.scratch.clear();
        self.utf8.feed(text, &mut self.scratch);
        let s = std::str::from_utf8(&self.scratch).unwrap_or("");
        let keep = self.buf.len();
        fold_into(s, &mut self.buf);
        if self.buf.len() > keep && self.finder.find(&self.buf).is_some() {
            self.found = true;
            return true;
        }
        let tail = self.needle.len().saturating_sub(1);
        if self.buf.len() > tail {
            let cut = self.buf.len() - tail;
            self.buf.drain(..cut);
        }
        false
    }

    /// Whether the needle has been seen.
    pub fn is_match(&self) -> bool {
        self.found
    }

    /// Forgets the text seen so far (a new part begins; matches do not span parts).
    pub fn reset(&mut self) {
        self.found = self.needle.is_empty();
        self.buf.clear();
        self.utf8 = CharsetDecoder::new(Charset::Unknown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(chunks: &[&[u8]]) -> Vec<u8> {
        let mut d = QpDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn quoted_printable() {
        let text = b"Gr=C3=BC=C3=9Fe =\r\nM=C3=BCnchen=20 =3D ok =ZZ end=";
        let want = "Grüße München  = ok =ZZ end=".as_bytes();
        assert_eq!(qp(&[text]), want);
        for i in 0..text.len() {
            assert_eq!(qp(&[&text[..i], &text[i..]]), want, "split at {i}");
        }
        assert_eq!(qp(&[b"soft =  \nbreak"]), b"soft break");
        assert_eq!(qp(&[b"a=\n"]), b"a");
    }

    #[test]
    fn base64() {
        let enc = b"SGVs\r\nbG8g\nd29y bGQ=\r\nISE=";
        let mut out = Vec::new();
        let mut d = Base64Decoder::new();
        for b in enc.chunks(3) {
            d.feed(b, &mut out);
        }
        d.finish(&mut out);
        assert_eq!(out, b"Hello world!!");
    }

    #[test]
    fn charsets() {
        assert_eq!(
            to_utf8(Charset::Windows1252, b"caf\xe9 \x80 \x93x\x94"),
            "café € “x”"
        );
        assert_eq!(to_utf8(Charset::Latin9, b"\xa4uro"), "€uro");
        assert_eq!(
            to_utf8(Charset::UsAscii, b"caf\xe9 / caf\xc3\xa9"),
            "café / café"
        );
        assert_eq!(to_utf8(Charset::Unknown, b"ok \xff"), "ok \u{FFFD}");
        assert_eq!(Charset::from_label(b" ISO-8859-1 "), Charset::Windows1252);
        let mut d = CharsetDecoder::new(Charset::Utf8);
        let mut out = Vec::new();
        for b in "Zoë 🙂".as_bytes().chunks(1) {
            d.feed(b, &mut out);
        }
        d.finish(&mut out);
        assert_eq!(out, "Zoë 🙂".as_bytes());
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            decode_header(b"=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>"),
            "André Pirard <PIRARD@vm1.ulg.ac.be>"
        );
        assert_eq!(decode_header(b"=?UTF-8?B?8J+SoSBJZGVlbjog?= =?ISO-8859-15?Q?=A4uro_Pr=E4mie?=\r\n =?utf-8?q?_f=C3=BCr_alle?="), "💡 Ideen: €uro Prämie für alle");
        assert_eq!(decode_header(b"a =?utf-8*en?q?b?= c"), "a b c");
        assert_eq!(decode_header(b"=?bogus"), "=?bogus");
        assert_eq!(decode_header(b"=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
        assert_eq!(decode_header("Smörgåsbord".as_bytes()), "Smörgåsbord");
    }

    #[test]
    fn finder_across_chunks() {
        let hay = "Ünïcode HAYSTACK with a Needle in it".as_bytes();
        for i in 0..hay.len() {
            let mut f = Finder::new("NEEDLE IN");
            let a = f.feed(&hay[..i]);
            let b = f.feed(&hay[i..]);
            assert!(a || b, "split at {i}");
        }
        let mut f = Finder::new("ünïCODE");
        assert!(f.feed(hay));
        let mut f = Finder::new("absent");
        assert!(!f.feed(hay));
        f.reset();
        assert!(!f.is_match());
        assert!(Finder::new("").is_match());
        assert_eq!(fold("ÀÉÎ ŁŚŹ Σ"), "àéî łśź σ");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 5u32;
        for _ in 0..3000 {
            let len = (seed % 64) as usize;
            let mut v = Vec::new();
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let a = b"=?Qqb_B\r\n \xc3\xa9\xff0aF9+/";
                v.push(a[(seed >> 16) as usize % a.len()]);
            }
            let _ = decode_header(&v);
            let _ = qp(&[&v]);
            let mut d = Base64Decoder::new();
            let mut out = Vec::new();
            d.feed(&v, &mut out);
            let mut f = Finder::new("é=");
            let _ = f.feed(&v);
            for cs in [
                Charset::Utf8,
                Charset::UsAscii,
                Charset::Latin9,
                Charset::Unknown,
            ] {
                let _ = to_utf8(cs, &v);
            }
        }
    }
}

#[cfg(test)]
mod charset_tests {
    use super::*;

    #[test]
    fn cjk_and_greek_encoded_words_decode() {
        for (raw, want) in [
            ("=?gb2312?B?w/fM7CBpbmNpZGVudA==?=", "明天 incident"),
            ("=?utf-8?Q?=E6=98=8E=E5=A4=A9_incident?=", "明天 incident"),
            ("=?euc-kr?Q?=B3=BB=C0=CF_be?=", "내일 be"),
            ("=?iso-8859-7?B?w+Xp4SBiZQ==?=", "Γεια be"),
            ("=?iso-2022-jp?B?GyRCSnM5cBsoQiBvZmZpY2U=?=", "報告 office"),
            ("=?shift_jis?Q?=96=BE=93=FA_build?=", "明日 build"),
            ("=?big5?B?s/inaSBvZmZpY2U=?=", "報告 office"),
        ] {
            assert_eq!(decode_header(raw.as_bytes()), want, "{raw}");
        }
    }

    #[test]
    fn a_multibyte_sequence_split_across_chunks_decodes() {
        let mut d = CharsetDecoder::new(Charset::from_label(b"Shift_JIS"));
        let mut out = Vec::new();
        for b in [0x96u8, 0xBE, 0x93, 0xFA] {
            d.feed(&[b], &mut out);
        }
        d.finish(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "明日");
    }
}
