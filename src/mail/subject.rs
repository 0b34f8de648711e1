//! The base subject of RFC 5256 §2.1 (what SORT SUBJECT and THREAD compare): encoded words
//! decoded, white space collapsed, `Re:`/`Fwd:` leaders, `[list]` blobs, `(fwd)` trailers and
//! `[fwd: …]` wrappers taken off; and whether any of that marked the message as a reply or
//! forward (THREAD=REFERENCES §2.2 step 5 merges such messages under the original).

use super::decode::decode_header;

/// The base subject, and whether the subject showed a reply or forward.
pub fn base_subject(raw: &[u8]) -> (String, bool) {
    // (1) Encoded words to UTF-8, tabs and folding to spaces, runs of spaces to one.
    let decoded = decode_header(raw);
    let mut s = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        let c = if c == '\t' || c == '\r' || c == '\n' {
            ' '
        } else {
            c
        };
        if c == ' ' && s.ends_with(' ') {
            continue;
        }
        s.push(c);
    }
    let mut s = s.as_str();
    let mut reply = false;
    loop {
        // (2) Trailers: "(fwd)" and white space, repeatedly.
        loop {
            if let Some(t) = s.strip_suffix(' ') {
                s = t;
            } else if s.len() >= 5
                && s.is_char_boundary(s.len() - 5)
                && s[s.len() - 5..].eq_ignore_ascii_case("(fwd)")
            {
                s = &s[..s.len() - 5];
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders and blobs, until none is left.
        loop {
            let before = s.len();
            s = s.trim_start_matches(' ');
            if let Some(rest) = refwd_leader(s) {
                s = rest;
                reply = true;
            }
            if let Some(rest) = blob(s)
                && !rest.trim_start_matches(' ').is_empty()
            {
                s = rest;
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: …]" around the whole subject.
        if s.len() >= 6
            && s.is_char_boundary(5)
            && s[..5].eq_ignore_ascii_case("[fwd:")
            && s.ends_with(']')
        {
            s = &s[5..s.len() - 1];
            reply = true;
            continue;
        }
        break;
    }
    (s.to_string(), reply)
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: the rest after it.
fn blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    if rest.as_bytes()[end] != b']' {
        return None;
    }
    Some(rest[end + 1..].trim_start_matches(' '))
}

/// `*subj-blob subj-refwd` with `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`:
/// the rest after it.
fn refwd_leader(s: &str) -> Option<&str> {
    let mut t = s;
    while let Some(rest) = blob(t) {
        t = rest;
    }
    let lower = |n: usize| t.get(..n).map(str::to_ascii_lowercase);
    let word = if lower(3).as_deref() == Some("fwd") {
        3
    } else if matches!(lower(2).as_deref(), Some("re") | Some("fw")) {
        2
    } else {
        return None;
    };
    let mut rest = t[word..].trim_start_matches(' ');
    if let Some(r) = blob(rest) {
        rest = r;
    }
    rest.strip_prefix(':')
}

#[cfg(test)]
mod tests {
    use super::base_subject;

    #[test]
    fn rfc_5256_base_subjects() {
        for (raw, base, reply) in [
            ("Hello", "Hello", false),
            ("Re: Hello", "Hello", true),
            ("RE: re: Fwd: Hello", "Hello", true),
            ("Re[2]: Hello", "Hello", true),
            ("[list] Re: Hello", "Hello", true),
            ("[list] Hello", "Hello", false),
            ("[list]", "[list]", false),
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd)  ", "Hello", true),
            ("[Fwd: Re: Hello]", "Hello", true),
            ("Fw: [Fwd: Hello]", "Hello", true),
            ("  Hello \t  world ", "Hello world", false),
            ("=?utf-8?Q?Re:_Gr=C3=BC=C3=9Fe?=", "Grüße", true),
            ("Re: [a] [b] Re: deep", "deep", true),
            ("Reply to all", "Reply to all", false),
            ("Fwd:", "", true),
            ("", "", false),
        ] {
            assert_eq!(
                base_subject(raw.as_bytes()),
                (base.to_string(), reply),
                "{raw:?}"
            );
        }
    }
}
