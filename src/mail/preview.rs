//! PREVIEW (RFC 8970): a plain-text snippet of a message, at most [`MAX_CHARS`] characters,
//! from its first text/plain part (else its first text/html one, tags and entities taken
//! out): transfer encoding and charset undone, quoted lines (`>`) left out, white space
//! collapsed. Non-text messages have an empty preview. As Dovecot 2.3 computes it.

use super::binary::{Decoder, transfer_of};
use super::decode::{Charset, CharsetDecoder};
use super::mime::Part;
use super::search::content_info;
use std::io::{self, Read, Seek};

/// The most characters a preview has (RFC 8970 allows up to 256; Dovecot sends 200).
pub const MAX_CHARS: usize = 200;
/// Decoded bytes of the part looked at, at most (a preview needs the beginning only).
const READ_AT_MOST: u64 = 32 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Html,
}

/// The first leaf of `kind` (depth first), with the embedded messages' parts too.
fn first_of(p: &Part, want: Kind) -> Option<&Part> {
    if let Some(m) = p.message() {
        return first_of(m, want);
    }
    if p.is_multipart() {
        return p.children().iter().find_map(|c| first_of(c, want));
    }
    let info = content_info(p);
    let kind = match info.media.as_slice() {
        b"" if p.is_text() => Kind::Plain,
        b"text/plain" => Kind::Plain,
        b"text/html" => Kind::Html,
        _ => return None,
    };
    (kind == want).then_some(p)
}

/// The preview of the message `root` (scanned from `file`).
pub fn preview<R: Read + Seek>(root: &Part, mut file: R) -> io::Result<String> {
    let (part, kind) = match first_of(root, Kind::Plain) {
        Some(p) => (p, Kind::Plain),
        None => match first_of(root, Kind::Html) {
            Some(p) => (p, Kind::Html),
            None => return Ok(String::new()),
        },
    };
    let Ok(cte) = transfer_of(part) else {
        return Ok(String::new());
    };
    let info = content_info(part);
    let charset = info
        .charset
        .as_deref()
        .map_or(Charset::UsAscii, Charset::from_label);
    let mut raw = Vec::new();
    root.open(&mut file, &part.body_range(), 0, Some(READ_AT_MOST * 2))?
        .read_to_end(&mut raw)?;
    let mut decoded = Vec::new();
    let mut d = Decoder::new(cte);
    d.feed(&raw, &mut decoded);
    d.finish(&mut decoded);
    decoded.truncate(READ_AT_MOST as usize);
    let mut utf8 = Vec::new();
    let mut cs = CharsetDecoder::new(charset);
    cs.feed(&decoded, &mut utf8);
    cs.finish(&mut utf8);
    let text = String::from_utf8_lossy(&utf8);
    let text = match kind {
        Kind::Plain => unquoted(&text),
        Kind::Html => html_text(&text),
    };
    Ok(snippet(&text))
}

/// The text without its quoted lines.
fn unquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if !line.starts_with('>') {
            out.push_str(line);
            out.push(' ');
        }
    }
    out
}

/// The text of an HTML body: tags out (and what is inside `<style>`, `<script>` and
/// `<head>`), the common entities decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<&str> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&entities(&rest[..lt]));
        }
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match skip_until {
            Some(end) if tag.starts_with('/') && name == end => skip_until = None,
            Some(_) => {}
            None if !tag.starts_with('/')
                && !tag.ends_with('/')
                && matches!(name.as_str(), "style" | "script" | "head" | "title") =>
            {
                skip_until = Some(match name.as_str() {
                    "style" => "style",
                    "script" => "script",
                    "title" => "title",
                    _ => "head",
                });
            }
            None => out.push(' '),
        }
        rest = &rest[lt + gt + 1..];
    }
    if skip_until.is_none() {
        out.push_str(&entities(rest));
    }
    out
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;` and numeric references decoded.
fn entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name.strip_prefix('#').and_then(|n| {
                    let v = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => n.parse().ok(),
                    };
                    v.and_then(char::from_u32)
                }),
            }?;
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// White space collapsed, at most [`MAX_CHARS`] characters, no space at either end.
fn snippet(text: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for w in text.split_whitespace() {
        for (i, c) in std::iter::once(' ').chain(w.chars()).enumerate() {
            if i == 0 && out.is_empty() {
                continue;
            }
            if n == MAX_CHARS {
                return out.trim_end().to_string();
            }
            out.push(c);
            n += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::mime::scan;
    use std::io::Cursor;

    fn pv(m: &str) -> String {
        let root = scan(Cursor::new(m.as_bytes())).unwrap();
        preview(&root, Cursor::new(m.as_bytes())).unwrap()
    }

    #[test]
    fn previews_as_dovecot_makes_them() {
        assert_eq!(
            pv(
                "Subject: p1\r\n\r\nHello   world,\r\n\r\nthis is   a   test.\r\n> quoted line\r\nafter quote\r\n"
            ),
            "Hello world, this is a test. after quote"
        );
        assert_eq!(
            pv(
                "Subject: p2\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
                Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                Caf=C3=A9 au lait, s'il vous pla=C3=AEt\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b--\r\n"
            ),
            "Café au lait, s'il vous plaît"
        );
        assert_eq!(
            pv(
                "Subject: p3\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<html><head><style>x{}</style></head>\
                <body><p>Hi <b>there</b> &amp; you</p></body></html>\r\n"
            ),
            "Hi there & you"
        );
        assert_eq!(
            pv("Subject: p4\r\nMIME-Version: 1.0\r\nContent-Type: application/pdf\r\n\r\nAAAA\r\n"),
            ""
        );
        let long = pv(&format!("Subject: p5\r\n\r\n{}\r\n", "word ".repeat(100)));
        assert_eq!(long, ["word"; 40].join(" "));
        assert_eq!(pv("Subject: p6\r\n\r\n\r\n"), "");
    }
}
