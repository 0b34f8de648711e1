//! IMAP modified UTF-7 (RFC 3501 §5.1.3), the encoding of mailbox names on the wire and, in
//! Dovecot's Maildir++ layout, on disk: both the IMAP layer and `maildir::folders` use it.
//!
//! This module owns the conversion between Rust strings and the modified UTF-7 bytes that
//! clients send and receive: printable US-ASCII stands for itself (`&` is written `&-`), and
//! everything else is UTF-16BE in a modified base64 (alphabet `A-Za-z0-9+,`, no padding)
//! between `&` and `-`.
//!
//! [`decode`] is strict: it accepts only the canonical encoding that [`encode`] produces, so a
//! name has exactly one wire form. It rejects bytes outside printable ASCII, unterminated
//! shifts, characters outside the base64 alphabet, non-zero padding bits, unpaired UTF-16
//! surrogates, printable ASCII hidden in a shift, empty shifts other than `&-`, and two
//! shifts back to back (`&...-&...-`, which must be one shift).

use std::fmt;

/// Why a mailbox name is not canonical modified UTF-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf7Error {
    /// A byte outside printable US-ASCII (0x20..=0x7E) appeared in the name.
    NonAscii {
        /// Offset of the byte in the input.
        at: usize,
    },
    /// A `&` shift was not closed by `-`.
    Unterminated {
        /// Offset of the `&` that opened the shift.
        at: usize,
    },
    /// A character outside the modified base64 alphabet appeared inside a shift.
    BadBase64 {
        /// Offset of the offending byte.
        at: usize,
    },
    /// The shift decodes, but not to the one canonical encoding (left-over bits, printable
    /// ASCII encoded, an empty shift, or two adjacent shifts).
    NonCanonical {
        /// Offset of the `&` that opened the shift.
        at: usize,
    },
    /// The shift decodes to UTF-16 with an unpaired surrogate.
    BadUtf16 {
        /// Offset of the `&` that opened the shift.
        at: usize,
    },
}

impl fmt::Display for Utf7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Utf7Error::NonAscii { at } => write!(
                f,
                "mailbox name is not modified UTF-7: non-ASCII or control byte at offset {at}"
            ),
            Utf7Error::Unterminated { at } => write!(
                f,
                "mailbox name is not modified UTF-7: '&' at offset {at} is not closed by '-'"
            ),
            Utf7Error::BadBase64 { at } => write!(
                f,
                "mailbox name is not modified UTF-7: invalid base64 character at offset {at}"
            ),
            Utf7Error::NonCanonical { at } => write!(
                f,
                "mailbox name is not canonical modified UTF-7 (shift at offset {at})"
            ),
            Utf7Error::BadUtf16 { at } => write!(
                f,
                "mailbox name is not modified UTF-7: unpaired UTF-16 surrogate in shift at offset {at}"
            ),
        }
    }
}

impl std::error::Error for Utf7Error {}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

fn is_printable(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Encode a mailbox name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut units: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if is_printable(ch as u32) {
            flush_shift(&mut out, &mut units);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush_shift(&mut out, &mut units);
    out
}

fn flush_shift(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &u in units.iter() {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
    units.clear();
}

/// Decode a modified UTF-7 mailbox name, accepting only its canonical form.
pub fn decode(input: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    // End offset of the previous shift (the byte after its '-'), to reject "&..-&..-".
    let mut prev_shift_end: Option<usize> = None;
    while let Some(&b) = input.get(i) {
        if b != b'&' {
            if !is_printable(u32::from(b)) {
                return Err(Utf7Error::NonAscii { at: i });
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let start = i;
        let body_start = i + 1;
        let Some(rel_end) = input
            .get(body_start..)
            .and_then(|rest| rest.iter().position(|&c| c == b'-'))
        else {
            return Err(Utf7Error::Unterminated { at: start });
        };
        let body_end = body_start + rel_end;
        let body = input.get(body_start..body_end).unwrap_or_default();
        i = body_end + 1;
        if body.is_empty() {
            out.push('&');
            continue;
        }
        if prev_shift_end == Some(start) {
            return Err(Utf7Error::NonCanonical { at: start });
        }
        prev_shift_end = Some(i);
        decode_shift(body, body_start, start, &mut out)?;
    }
    Ok(out)
}

fn decode_shift(
    body: &[u8],
    body_start: usize,
    at: usize,
    out: &mut String,
) -> Result<(), Utf7Error> {
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut units: Vec<u16> = Vec::with_capacity(body.len() * 6 / 16);
    for (k, &c) in body.iter().enumerate() {
        let Some(v) = b64_value(c) else {
            return Err(Utf7Error::BadBase64 { at: body_start + k });
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // Canonical: fewer than 6 left-over bits, all zero.
    if bits >= 6 || acc != 0 {
        return Err(Utf7Error::NonCanonical { at });
    }
    for r in char::decode_utf16(units.iter().copied()) {
        let ch = r.map_err(|_| Utf7Error::BadUtf16 { at })?;
        if is_printable(ch as u32) {
            return Err(Utf7Error::NonCanonical { at });
        }
        out.push(ch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str, wire: &str) {
        assert_eq!(encode(s), wire, "encode {s:?}");
        assert_eq!(decode(wire.as_bytes()).as_deref(), Ok(s), "decode {wire:?}");
    }

    #[test]
    fn ascii_passes_through() {
        roundtrip("INBOX", "INBOX");
        roundtrip("Sent Items/2024", "Sent Items/2024");
        roundtrip("", "");
        roundtrip("~peter/mail", "~peter/mail");
    }

    #[test]
    fn ampersand() {
        roundtrip("&", "&-");
        roundtrip("Tom & Jerry", "Tom &- Jerry");
        roundtrip("&&", "&-&-");
    }

    #[test]
    fn latin() {
        roundtrip("Été", "&AMk-t&AOk-");
        roundtrip("Entwürfe", "Entw&APw-rfe");
        roundtrip("Gelöschte Elemente", "Gel&APY-schte Elemente");
    }

    #[test]
    fn rfc_example_japanese() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語"
        roundtrip("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        roundtrip("受信トレイ", "&U9dP4TDIMOwwpA-");
    }

    #[test]
    fn emoji_surrogate_pairs() {
        roundtrip("📧", "&2D3c5w-");
        roundtrip("Mail 📧 box 🎉!", "Mail &2D3c5w- box &2DzfiQ-!");
        roundtrip("📧🎉", "&2D3c59g834k-");
    }

    #[test]
    fn control_chars_are_encoded() {
        roundtrip("a\tb", "a&AAk-b");
        roundtrip("\u{7f}", "&AH8-");
    }

    #[test]
    fn rejects_unterminated() {
        assert_eq!(decode(b"&AMk"), Err(Utf7Error::Unterminated { at: 0 }));
        assert_eq!(decode(b"abc&"), Err(Utf7Error::Unterminated { at: 3 }));
    }

    #[test]
    fn rejects_bad_base64() {
        assert_eq!(decode(b"&AM=k-"), Err(Utf7Error::BadBase64 { at: 3 }));
        assert_eq!(decode(b"&AM/k-"), Err(Utf7Error::BadBase64 { at: 3 }));
        assert_eq!(decode(b"& -"), Err(Utf7Error::BadBase64 { at: 1 }));
    }

    #[test]
    fn rejects_non_canonical() {
        // Encoded printable ASCII ("A" = U+0041).
        assert_eq!(decode(b"&AEE-"), Err(Utf7Error::NonCanonical { at: 0 }));
        // Non-zero padding bits: "&AMl-" carries a set low bit.
        assert_eq!(decode(b"&AMl-"), Err(Utf7Error::NonCanonical { at: 0 }));
        // Too many characters (a whole extra sextet).
        assert_eq!(decode(b"&AMkA-"), Err(Utf7Error::NonCanonical { at: 0 }));
        // Two adjacent shifts must be one.
        assert_eq!(
            decode(b"&AMk-&AOk-"),
            Err(Utf7Error::NonCanonical { at: 5 })
        );
        assert_eq!(decode(b"&AMkA6Q-").as_deref(), Ok("Éé"));
        // Incomplete UTF-16 unit.
        assert_eq!(decode(b"&AM-"), Err(Utf7Error::NonCanonical { at: 0 }));
    }

    #[test]
    fn rejects_bad_surrogates() {
        // Lone high surrogate U+D83D.
        assert_eq!(decode(b"&2D0-"), Err(Utf7Error::BadUtf16 { at: 0 }));
        // Lone low surrogate U+DCE7.
        assert_eq!(decode(b"&3Oc-"), Err(Utf7Error::BadUtf16 { at: 0 }));
    }

    #[test]
    fn rejects_raw_non_ascii() {
        assert_eq!(decode("Été".as_bytes()), Err(Utf7Error::NonAscii { at: 0 }));
        assert_eq!(decode(b"a\x00b"), Err(Utf7Error::NonAscii { at: 1 }));
        assert_eq!(decode(b"a\tb"), Err(Utf7Error::NonAscii { at: 1 }));
    }

    #[test]
    fn exhaustive_bmp_roundtrip() {
        for c in (0u32..0x1_0000).step_by(7).filter_map(char::from_u32) {
            let s: String = [c, 'x', c, c].iter().collect();
            let wire = encode(&s);
            assert_eq!(decode(wire.as_bytes()).as_deref(), Ok(s.as_str()), "{wire}");
        }
    }
}
