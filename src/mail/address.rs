//! Email addresses in header fields: the addr-specs of an address list (To, Cc), the
//! recipient named by a `Received: ... for <addr>;` clause, and normalisation for matching.

/// The addr-specs (`local@domain`) in an RFC 5322 address list, in order. Display names,
/// comments, quoted strings and group syntax are skipped; anything without an `@` is not an
/// address and is left out.
pub fn address_list(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut token = Vec::new();
    let mut angle: Option<Vec<u8>> = None;
    let flush = |token: &mut Vec<u8>, out: &mut Vec<String>| {
        if let Some(a) = addr_spec(token) {
            out.push(a);
        }
        token.clear();
    };
    while i < value.len() {
        let c = value[i];
        match c {
            b'"' => {
                // Quoted string: part of a display name, or a quoted local part.
                let start = i;
                i += 1;
                while i < value.len() && value[i] != b'"' {
                    if value[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let q = &value[start..(i + 1).min(value.len())];
                match &mut angle {
                    Some(a) => a.extend_from_slice(q),
                    None => token.extend_from_slice(q),
                }
            }
            b'(' => {
                let mut depth = 1;
                i += 1;
                while i < value.len() && depth > 0 {
                    match value[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'<' => {
                token.clear();
                angle = Some(Vec::new());
            }
            b'>' => {
                if let Some(a) = angle.take() {
                    // Drop an obsolete route (`@a,@b:`).
                    let a = match a.iter().rposition(|&b| b == b':') {
                        Some(p) if a.first() == Some(&b'@') => a[p + 1..].to_vec(),
                        _ => a,
                    };
                    if let Some(s) = addr_spec(&a) {
                        out.push(s);
                    }
                    token.clear();
                }
            }
            b',' | b';' if angle.is_none() => flush(&mut token, &mut out),
            b':' if angle.is_none() => token.clear(), // group display name
            b' ' | b'\t' | b'\r' | b'\n' if angle.is_none() => {
                // White space ends a bare addr-spec candidate only if it already holds one;
                // "John Doe" words accumulate but are discarded at the next separator.
                if token.contains(&b'@') {
                    flush(&mut token, &mut out);
                } else {
                    token.clear();
                }
            }
            _ => match &mut angle {
                Some(a) => {
                    if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                        a.push(c)
                    }
                }
                None => token.push(c),
            },
        }
        i += 1;
    }
    flush(&mut token, &mut out);
    out
}

/// The recipient of a `Received:` field's `for <addr>` (or `for addr;`) clause.
pub fn received_for(value: &[u8]) -> Option<String> {
    let lower: Vec<u8> = value.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&lower[from..], b"for ") {
        let at = from + p;
        from = at + 4;
        // "for" must be a word on its own.
        if at > 0 && !matches!(lower[at - 1], b' ' | b'\t') {
            continue;
        }
        let rest = &value[at + 4..];
        let rest = trim_start(rest);
        let cand: &[u8] = if let Some(r) = rest.strip_prefix(b"<") {
            let end = r.iter().position(|&b| b == b'>')?;
            &r[..end]
        } else {
            let end = rest
                .iter()
                .position(|&b| matches!(b, b';' | b' ' | b'\t'))
                .unwrap_or(rest.len());
            &rest[..end]
        };
        if let Some(a) = addr_spec(cand) {
            return Some(a);
        }
    }
    None
}

fn trim_start(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(b.len());
    &b[s..]
}

/// `local@domain` if `b` is one (UTF-8, one `@` outside quotes, non-empty parts); the domain
/// is lower-cased, the local part kept as written.
fn addr_spec(b: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(b).ok()?.trim();
    let at = s.rfind('@')?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.is_empty() || domain.is_empty() || domain.contains(['@', ' ', '<', '>']) {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// The form used to compare addresses: lower-case throughout (mailbox names are
/// case-insensitive in practice, and Dovecot's passwd-file lookups usually are too).
pub fn normalise(addr: &str) -> String {
    addr.trim().to_lowercase()
}

/// `user+tag@domain` → `user@domain` (the recipient delimiter `+`), if there is a tag.
pub fn without_subaddress(addr: &str) -> Option<String> {
    let at = addr.rfind('@')?;
    let plus = addr[..at].find('+')?;
    Some(format!("{}{}", &addr[..plus], &addr[at..]))
}

/// Refuses an address that could not safely be a directory name under the mail root.
pub fn check_address(a: &str) -> Result<(), &'static str> {
    if a.is_empty() || a.len() > 254 {
        return Err("an address must be 1 to 254 bytes long");
    }
    if a.starts_with('.') {
        return Err("an address must not start with '.'");
    }
    if a.contains(['/', '\\']) {
        return Err("an address must not contain '/' or '\\'");
    }
    if a.chars().any(|c| c.is_control()) {
        return Err("an address must not contain control characters");
    }
    if !a.contains('@') {
        return Err("an address needs an '@'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists() {
        assert_eq!(
            address_list(b"\"Doe, John\" <John@Example.COM>, bob@b.org (Bob), Team: c@d.e, f@g.h;"),
            vec!["John@example.com", "bob@b.org", "c@d.e", "f@g.h"]
        );
        assert_eq!(
            address_list(b"undisclosed-recipients:;"),
            Vec::<String>::new()
        );
        assert_eq!(
            address_list(b"Alice Example <alice@example.com>"),
            vec!["alice@example.com"]
        );
        assert_eq!(address_list(b"<@route.example:x@y.z>"), vec!["x@y.z"]);
        assert_eq!(address_list(b"a@b.c\r\n\t, d@e.f"), vec!["a@b.c", "d@e.f"]);
        assert_eq!(
            address_list(b"\"quoted local\"@x.y"),
            vec!["\"quoted local\"@x.y"]
        );
    }

    #[test]
    fn received_for_clause() {
        let v = b"from mail-wr1.google.com (mail-wr1.google.com [209.85.221.41]) by \
                  inbound-smtp.us-east-1.amazonaws.com with SMTP id abc for alice@example.com; \
                  Sat, 28 Nov 2026 10:00:00 +0000 (UTC)";
        assert_eq!(received_for(v).as_deref(), Some("alice@example.com"));
        assert_eq!(
            received_for(b"by mx with ESMTPS id 1 for <Bob@Example.com>; Mon").as_deref(),
            Some("Bob@example.com")
        );
        assert_eq!(received_for(b"from a by b with SMTP id x; Mon"), None);
        assert_eq!(received_for(b"from before (x) by b; Mon"), None);
    }

    #[test]
    fn subaddress() {
        assert_eq!(without_subaddress("a+tag@b.c").as_deref(), Some("a@b.c"));
        assert_eq!(without_subaddress("a@b.c"), None);
    }
}
