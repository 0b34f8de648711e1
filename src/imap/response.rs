//! Writing IMAP responses: strings as quoted or literal, flag lists, dates, and the buffer of
//! response chunks a session hands to the server — bytes, or a file range to stream.
//!
//! Pure: nothing here touches a socket or reads a file.

use std::fs::File;
use std::sync::Arc;

/// A piece of the output: bytes, or bytes of a file that the server streams without holding
/// them in memory.
#[derive(Debug, Clone)]
pub enum Chunk {
    Bytes(Vec<u8>),
    File {
        /// The message's file, opened when the answer was built: another session renaming
        /// or unlinking it meanwhile does not change what is streamed.
        file: Arc<File>,
        /// Raw byte offset in the file.
        offset: u64,
        /// Raw bytes to read from `offset`.
        len: u64,
        /// Turn bare LF into CRLF while streaming.
        crlf: bool,
        /// Bytes of the (converted, then decoded) stream to skip first and then to send:
        /// `<partial>`.
        skip: u64,
        take: u64,
        /// The transfer encoding to undo after the CRLF conversion (BINARY, RFC 3516).
        decode: crate::mail::binary::Transfer,
    },
}

/// Response output of one command: chunks in order. Bytes are coalesced.
#[derive(Debug, Default)]
pub struct Output {
    chunks: Vec<Chunk>,
    buffered: usize,
    /// Tagged NO/BAD answers written since the last [`Output::take_failures`], for the log.
    failures: Vec<(crate::metrics::Answer, String)>,
}

/// Above this many buffered bytes a long command yields so the server can write.
pub const FLUSH_AT: usize = 64 * 1024;

impl Output {
    pub fn new() -> Output {
        Output::default()
    }

    /// Appends bytes.
    pub fn put(&mut self, b: &[u8]) {
        self.buffered += b.len();
        if let Some(Chunk::Bytes(v)) = self.chunks.last_mut() {
            v.extend_from_slice(b);
        } else {
            self.chunks.push(Chunk::Bytes(b.to_vec()));
        }
    }

    /// Appends a file range to stream. Its length counts towards [`Output::is_full`], so a
    /// FETCH of many bodies is written as it goes rather than queued whole.
    pub fn file(&mut self, chunk: Chunk) {
        if let Chunk::File { take, .. } = &chunk {
            self.buffered += usize::try_from(*take).unwrap_or(usize::MAX);
        }
        self.chunks.push(chunk);
    }

    /// Notes a tagged NO or BAD (`"a1 NO [TRYCREATE] No such mailbox"`) for the log.
    pub fn note_failure(&mut self, answer: crate::metrics::Answer, line: String) {
        self.failures.push((answer, line));
    }

    /// The failures noted so far, taken.
    pub fn take_failures(&mut self) -> Vec<(crate::metrics::Answer, String)> {
        std::mem::take(&mut self.failures)
    }

    /// True when enough is buffered that the server should write before more work.
    pub fn is_full(&self) -> bool {
        self.buffered >= FLUSH_AT
    }

    /// Takes the chunks out, leaving the output empty.
    pub fn take(&mut self) -> Vec<Chunk> {
        self.buffered = 0;
        std::mem::take(&mut self.chunks)
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Everything as bytes (tests; file chunks are written as `<file ...>` markers).
    pub fn to_bytes_for_test(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for c in &self.chunks {
            match c {
                Chunk::Bytes(b) => v.extend_from_slice(b),
                Chunk::File { offset, take, .. } => {
                    v.extend_from_slice(format!("<file {offset}+{take}>").as_bytes())
                }
            }
        }
        v
    }
}

/// Appends `s` as an IMAP string: quoted when it is short printable ASCII without `"`-hard
/// characters, otherwise a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024 && s.iter().all(|&b| (0x20..0x7f).contains(&b));
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// `{n}\r\n` followed by the bytes.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// A string, or NIL for None.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// An astring for mailbox names: an atom when possible, else quoted/literal.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && s.iter().all(|&b| {
            (0x21..0x7f).contains(&b)
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        });
    if atom {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `"28-Nov-2026 18:33:03 +0000"` for a Unix time (UTC).
pub fn internal_date(unix: u64) -> String {
    let (y, m, d) = crate::time::civil_from_days(unix / 86_400);
    let s = unix % 86_400;
    format!(
        "\"{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000\"",
        MONTHS[(m as usize).clamp(1, 12) - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A sequence set from ascending numbers: `1,2,3,5,7,8,9` as `1:3,5,7:9`.
pub fn number_set(nums: impl IntoIterator<Item = u64>) -> String {
    let mut out = String::new();
    let mut run: Option<(u64, u64)> = None;
    let flush = |out: &mut String, (a, b): (u64, u64)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b {
            out.push_str(&a.to_string());
        } else {
            out.push_str(&format!("{a}:{b}"));
        }
    };
    for n in nums {
        run = match run {
            Some((a, b)) if n == b + 1 => Some((a, n)),
            Some(r) => {
                flush(&mut out, r);
                Some((n, n))
            }
            None => Some((n, n)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: fn(&mut Vec<u8>, &[u8]), v: &[u8]) -> String {
        let mut o = Vec::new();
        f(&mut o, v);
        String::from_utf8_lossy(&o).into_owned()
    }

    #[test]
    fn strings() {
        assert_eq!(s(string, b"hi there"), "\"hi there\"");
        assert_eq!(s(string, b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(s(string, b"line\r\nbreak"), "{11}\r\nline\r\nbreak");
        assert_eq!(s(string, "é".as_bytes()), "{2}\r\né");
        assert_eq!(s(astring, b"INBOX"), "INBOX");
        assert_eq!(s(astring, b"My Folder"), "\"My Folder\"");
        assert_eq!(s(astring, b""), "\"\"");
        let mut o = Vec::new();
        nstring(&mut o, None);
        assert_eq!(o, b"NIL");
    }

    #[test]
    fn dates() {
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(
            internal_date(1_795_891_702),
            "\"28-Nov-2026 18:48:22 +0000\""
        );
    }

    #[test]
    fn output_coalesces_and_flags_fullness() {
        let mut o = Output::new();
        o.put(b"* 1 EXISTS\r\n");
        o.put(b"* 0 RECENT\r\n");
        let chunks = o.take();
        assert!(
            matches!(&chunks[..], [Chunk::Bytes(b)] if b == b"* 1 EXISTS\r\n* 0 RECENT\r\n"),
            "{chunks:?}"
        );
        o.put(&vec![b'x'; FLUSH_AT]);
        assert!(o.is_full());
        o.take();
        assert!(!o.is_full() && o.is_empty());
    }

    #[test]
    fn number_sets_are_runs() {
        assert_eq!(number_set([]), "");
        assert_eq!(number_set([4]), "4");
        assert_eq!(number_set([1, 2, 3, 5, 7, 8, 9]), "1:3,5,7:9");
        assert_eq!(number_set([3, 5]), "3,5");
    }
}
