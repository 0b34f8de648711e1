//! The header block of a message: where it ends, and its fields in order, unfolded.

use memchr::memchr;

/// The offset just past the blank line that ends the header block (`\r\n\r\n` or `\n\n`),
/// or None if `buf` does not contain the whole block yet. A message that starts with a blank
/// line has an empty header block.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    while line_start < buf.len() {
        let nl = line_start + memchr(b'\n', &buf[line_start..])?;
        let line = &buf[line_start..nl];
        if line.is_empty() || line == b"\r" {
            return Some(nl + 1);
        }
        line_start = nl + 1;
    }
    None
}

/// One header field: its name as written and its value with folding removed (CRLF + WSP → WSP),
/// surrounding white space trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: std::borrow::Cow<'a, [u8]>,
}

impl Field<'_> {
    /// Case-insensitive name comparison.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// Iterates the fields of a header block (`block` may include or omit the final blank line).
/// Lines that are not fields (no colon, or a bad name) are skipped, as mail readers do.
pub fn fields(block: &[u8]) -> Fields<'_> {
    Fields { rest: block }
}

/// Iterator returned by [`fields`].
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            // One logical field: a line plus its continuation lines.
            let mut end = 0;
            loop {
                match memchr(b'\n', &self.rest[end..]) {
                    Some(i) => {
                        end += i + 1;
                        if end < self.rest.len() && matches!(self.rest[end], b' ' | b'\t') {
                            continue;
                        }
                    }
                    None => end = self.rest.len(),
                }
                break;
            }
            let raw = &self.rest[..end];
            self.rest = &self.rest[end..];
            let trimmed = trim_crlf(raw);
            if trimmed.is_empty() {
                // The blank line that ends the block.
                self.rest = &[];
                return None;
            }
            let Some(colon) = memchr(b':', trimmed) else {
                continue;
            };
            let name = trim_end_ws(&trimmed[..colon]);
            if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
                continue;
            }
            let value = unfold(&trimmed[colon + 1..]);
            return Some(Field { name, value });
        }
    }
}

/// True when `buf` starts like a message: its first line is a header field (or the mbox
/// `From ` line some tools prepend). Used to turn away objects that are not mail at all.
pub fn looks_like_message(buf: &[u8]) -> bool {
    let first = match memchr(b'\n', buf) {
        Some(i) => &buf[..i],
        None => buf,
    };
    if first.starts_with(b"From ") {
        return true;
    }
    match memchr(b':', first) {
        Some(c) if c > 0 => first[..c].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

fn trim_crlf(b: &[u8]) -> &[u8] {
    let mut e = b.len();
    while e > 0 && matches!(b[e - 1], b'\r' | b'\n') {
        e -= 1;
    }
    &b[..e]
}

fn trim_end_ws(b: &[u8]) -> &[u8] {
    let mut e = b.len();
    while e > 0 && matches!(b[e - 1], b' ' | b'\t') {
        e -= 1;
    }
    &b[..e]
}

fn unfold(v: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut s = 0;
    let mut e = v.len();
    while s < e && matches!(v[s], b' ' | b'\t' | b'\r' | b'\n') {
        s += 1;
    }
    while e > s && matches!(v[e - 1], b' ' | b'\t' | b'\r' | b'\n') {
        e -= 1;
    }
    let v = &v[s..e];
    if memchr(b'\n', v).is_none() {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(
        v.iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_the_header_block() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), Some(8));
        assert_eq!(header_end(b"A: b\n\nbody"), Some(6));
        assert_eq!(header_end(b"\r\nbody"), Some(2));
        assert_eq!(header_end(b"A: b\r\nB: c\r\n"), None);
        assert_eq!(header_end(b""), None);
    }

    #[test]
    fn unfolds_fields_in_order() {
        let h =
            b"Received: from a\r\n\tby b; Mon\r\nTo: x@y\r\nbad line\r\nX: \r\n\r\nBody: no\r\n";
        let f: Vec<_> = fields(h).collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, b"Received");
        assert_eq!(&*f[0].value, b"from a\tby b; Mon");
        assert!(f[1].is("to"));
        assert_eq!(&*f[1].value, b"x@y");
        assert_eq!(&*f[2].value, b"");
    }

    #[test]
    fn recognises_messages() {
        assert!(looks_like_message(b"Return-Path: <a@b>\r\n"));
        assert!(looks_like_message(b"From a@b Mon Jan 1\n"));
        assert!(!looks_like_message(b"\x89PNG\r\n"));
        assert!(!looks_like_message(b": no name\r\n"));
        assert!(!looks_like_message(b"hello world\r\n"));
        assert!(!looks_like_message(b""));
    }
}
