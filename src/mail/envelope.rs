//! IMAP ENVELOPE and BODY / BODYSTRUCTURE values (RFC 3501 §7.4.2, RFC 9051), built from
//! header blocks and the [`Part`] tree of [`mime`](super::mime). Output matches Dovecot 2.3's
//! byte for byte (checked against fixtures taken from Dovecot):
//!
//! * strings are quoted unless they hold CR, LF, 8-bit bytes or more than four `"`/`\`, in
//!   which case they are literals (`{n}\r\n...`); Subject and display names are cleaned "for
//!   humans" first (folding removed, runs of white space collapsed, trimmed) and become
//!   literals whenever that changed anything or they hold `"`, `\` or 8-bit bytes;
//! * Date, In-Reply-To, Message-ID and the Content-ID/-Description/-MD5/-Location values are
//!   sent as written (folding line breaks removed, trailing white space kept); RFC 2047
//!   encoded words are left encoded;
//! * the last Date/Subject/From/... field of a header wins; Sender and Reply-To default to
//!   From; groups are `(NIL NIL "name" NIL)` ... `(NIL NIL NIL NIL)`; broken addresses get
//!   `MISSING_MAILBOX` / `MISSING_DOMAIN`;
//! * type and subtype keep the case of the message; text parts without a charset get
//!   `("charset" "us-ascii")`; RFC 2231 continuations are merged but not decoded; without
//!   MIME-Version and Content-Type every Content-* field is ignored.

use super::lex::Lexer;
use super::mime::{Class, Part};

/// The fields of a header block with their values as Dovecot sees them: the text after the
/// colon with leading blanks dropped, folding line breaks kept, the final line break removed.
pub fn raw_fields(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut rest = block;
    while !rest.is_empty() {
        let mut end = 0;
        loop {
            match memchr::memchr(b'\n', &rest[end..]) {
                Some(i) => {
                    end += i + 1;
                    if end < rest.len() && matches!(rest[end], b' ' | b'\t') {
                        continue;
                    }
                }
                None => end = rest.len(),
            }
            break;
        }
        let field = &rest[..end];
        rest = &rest[end..];
        let Some(colon) = memchr::memchr(b':', field) else {
            continue;
        };
        let mut name = &field[..colon];
        while let [n @ .., b' ' | b'\t'] = name {
            name = n;
        }
        if name.is_empty() || name.contains(&b'\n') {
            continue;
        }
        let mut v = &field[colon + 1..];
        while let [b' ' | b'\t', r @ ..] = v {
            v = r;
        }
        let v = v.strip_suffix(b"\n").unwrap_or(v);
        let v = v.strip_suffix(b"\r").unwrap_or(v);
        out.push((name, v));
    }
    out
}

fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// An IMAP string: quoted when possible, else a literal (Dovecot's rule).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let mut escapes = 0;
    for &c in s {
        match c {
            b'"' | b'\\' => {
                escapes += 1;
                if escapes > 4 {
                    return literal(out, s);
                }
            }
            b'\r' | b'\n' | 0 => return literal(out, s),
            c if c >= 0x80 => return literal(out, s),
            _ => {}
        }
    }
    out.push(b'"');
    for &c in s {
        if matches!(c, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
}

/// `NIL` or an IMAP string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string(out, s),
    }
}

/// Like [`nstring`] with CR and LF removed first.
pub fn nstring_nolf(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) if s.iter().any(|&c| c == b'\r' || c == b'\n') => {
            let v: Vec<u8> = s
                .iter()
                .copied()
                .filter(|&c| c != b'\r' && c != b'\n')
                .collect();
            string(out, &v)
        }
        _ => nstring(out, s),
    }
}

/// A string meant for display (Subject, names): CR/LF removed, tabs and runs of blanks
/// collapsed to one space, leading and trailing blanks dropped, NUL shown as 0x80. Sent
/// quoted only when none of that changed anything and it holds no `"`, `\` or 8-bit byte.
pub fn string_for_humans(out: &mut Vec<u8>, src: &[u8]) {
    let mut modify = false;
    let mut last_lwsp = true;
    let mut ws_prefix = true;
    for &c in src {
        match c {
            0 => {
                last_lwsp = false;
                modify = true;
            }
            b'\t' | b' ' => {
                if c == b'\t' || last_lwsp {
                    modify = true;
                }
                last_lwsp = true;
            }
            b'\r' | b'\n' => modify = true,
            b'"' | b'\\' => {
                modify = true;
                last_lwsp = false;
            }
            c => {
                if c >= 0x80 {
                    modify = true;
                }
                last_lwsp = false;
            }
        }
        if !last_lwsp {
            ws_prefix = false;
        }
    }
    if last_lwsp && !src.is_empty() && !ws_prefix {
        modify = true;
    }
    if !modify {
        out.push(b'"');
        out.extend_from_slice(src);
        out.push(b'"');
        return;
    }
    let mut clean = Vec::with_capacity(src.len());
    let mut last_lwsp = true;
    for &c in src {
        match c {
            0 => {
                clean.push(0x80);
                last_lwsp = false;
            }
            b'\t' | b' ' => {
                if !last_lwsp {
                    clean.push(b' ');
                }
                last_lwsp = true;
            }
            b'\r' | b'\n' => {}
            c => {
                clean.push(c);
                last_lwsp = false;
            }
        }
    }
    if clean.last() == Some(&b' ') {
        clean.pop();
    }
    if clean.is_empty() {
        out.extend_from_slice(b"\"\"");
    } else {
        literal(out, &clean);
    }
}

/// One element of an address list as IMAP sends it. A group is an element with only
/// `mailbox` (the group name) followed by its members and an element with nothing set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub domain: Option<Vec<u8>>,
}

struct AddrParser<'a> {
    lx: Lexer<'a>,
    addr: Address,
    invalid: bool,
    out: Vec<Address>,
    s: Vec<u8>,
}

impl AddrParser<'_> {
    fn data(&self) -> u8 {
        self.lx.peek()
    }

    fn more(&self) -> bool {
        !self.lx.at_end()
    }

    fn add(&mut self) {
        self.out.push(std::mem::take(&mut self.addr));
        self.invalid = false;
    }

    fn add_fixed(&mut self) {
        if self.addr.mailbox.is_none() {
            self.addr.mailbox = Some(b"MISSING_MAILBOX".to_vec());
        }
        if self.addr.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.addr.domain = Some(b"MISSING_DOMAIN".to_vec());
        }
        self.add();
    }

    /// Returns -1 / 0 / 1 like Dovecot's parsers.
    fn local_part(&mut self) -> i32 {
        self.s.clear();
        let r = if self.data() == b'"' {
            self.lx.quoted_string(&mut self.s)
        } else {
            self.lx.dot_atom(&mut self.s)
        };
        match r {
            Err(_) => -1,
            Ok(more) => {
                self.addr.mailbox = Some(self.s.clone());
                i32::from(more)
            }
        }
    }

    fn domain(&mut self) -> i32 {
        self.s.clear();
        match self.lx.domain(&mut self.s) {
            Err(_) => -1,
            Ok(more) => {
                self.addr.domain = Some(self.s.clone());
                i32::from(more)
            }
        }
    }

    fn domain_list(&mut self) -> i32 {
        self.s.clear();
        loop {
            if !self.more() {
                return 0;
            }
            if self.data() != b'@' {
                break;
            }
            if !self.s.is_empty() {
                self.s.push(b',');
            }
            self.s.push(b'@');
            let mut d = std::mem::take(&mut self.s);
            let r = self.lx.domain(&mut d);
            self.s = d;
            match r {
                Err(_) => return -1,
                Ok(false) => return 0,
                Ok(true) => {}
            }
            while matches!(self.lx.skip_lwsp(), Ok(true)) && self.data() == b',' {
                self.lx.pos += 1;
            }
        }
        self.addr.route = Some(self.s.clone());
        1
    }

    fn angle_addr(&mut self) -> i32 {
        self.lx.pos += 1; // '<'
        if !matches!(self.lx.skip_lwsp(), Ok(true)) {
            return -1;
        }
        if self.data() == b'@' {
            if self.domain_list() > 0 && self.data() == b':' {
                self.lx.pos += 1;
            } else {
                self.addr.route = Some(b"INVALID_ROUTE".to_vec());
                if !self.more() {
                    return -1;
                }
            }
            if !matches!(self.lx.skip_lwsp(), Ok(true)) {
                return -1;
            }
        }
        if self.data() != b'>' {
            if self.local_part() <= 0 {
                return -1;
            }
            if self.data() == b'@' && self.domain() <= 0 {
                return -1;
            }
        }
        if self.data() != b'>' {
            return -1;
        }
        self.lx.pos += 1;
        match self.lx.skip_lwsp() {
            Err(_) => -1,
            Ok(m) => i32::from(m),
        }
    }

    fn name_addr(&mut self) -> i32 {
        self.s.clear();
        let mut s = std::mem::take(&mut self.s);
        let r = self.lx.phrase(&mut s);
        self.s = s;
        if !matches!(r, Ok(true)) || self.data() != b'<' {
            return -1;
        }
        self.addr.name = if self.s.is_empty() {
            None
        } else {
            Some(self.s.clone())
        };
        if self.angle_addr() < 0 {
            self.addr.domain = Some(b"SYNTAX_ERROR".to_vec());
            self.invalid = true;
        }
        i32::from(self.more())
    }

    fn addr_spec(&mut self) -> i32 {
        let mut ret2 = -2;
        if let Some(c) = &mut self.lx.last_comment {
            c.clear();
        }
        if !self.more() {
            self.invalid = true;
            return 0;
        }
        let quoted = self.data() == b'"';
        let mut ret = self.local_part();
        if ret <= 0 {
            self.invalid = true;
        }
        if ret != 0 && self.more() && self.data() == b'@' {
            ret2 = self.domain();
            if ret2 <= 0 {
                ret = ret2;
            }
        }
        let comment = self.lx.last_comment.clone().unwrap_or_default();
        if !comment.is_empty() {
            self.addr.name = Some(comment);
        } else if ret2 == -2 {
            self.s.push(b' ');
            let before = self.s.len();
            let mut s = std::mem::take(&mut self.s);
            let _ = self.lx.phrase(&mut s);
            self.s = s;
            if self.s.len() != before {
                self.addr.mailbox = None;
                self.addr.name = Some(self.s.clone());
            } else if !quoted {
                self.addr.domain = Some(Vec::new());
            }
            self.invalid = true;
            ret = -1;
        }
        ret
    }

    fn mailbox(&mut self) -> i32 {
        let start = self.lx.pos;
        let mut ret = self.name_addr();
        if ret < 0 {
            self.lx.pos = start;
            self.addr = Address::default();
            self.invalid = false;
            ret = self.addr_spec();
            if self.invalid
                && self.addr.name.is_none()
                && self.addr.mailbox.is_some()
                && self.addr.domain.is_none()
            {
                self.addr.name = self.addr.mailbox.take();
            }
        }
        self.add_fixed();
        ret
    }

    fn group(&mut self) -> i32 {
        self.s.clear();
        let mut s = std::mem::take(&mut self.s);
        let r = self.lx.phrase(&mut s);
        self.s = s;
        if !matches!(r, Ok(true)) || self.data() != b':' {
            return -1;
        }
        self.lx.pos += 1;
        let mut ret = match self.lx.skip_lwsp() {
            Err(_) => -1,
            Ok(m) => i32::from(m),
        };
        self.addr.mailbox = Some(self.s.clone());
        self.add();
        if ret > 0 && self.data() != b';' {
            loop {
                let _ = self.mailbox();
                if !self.more() || self.data() != b',' {
                    break;
                }
                self.lx.pos += 1;
                if !matches!(self.lx.skip_lwsp(), Ok(true)) {
                    ret = -1;
                    break;
                }
            }
        }
        if ret >= 0 {
            if !self.more() || self.data() != b';' {
                ret = -1;
            } else {
                self.lx.pos += 1;
                ret = match self.lx.skip_lwsp() {
                    Err(_) => -1,
                    Ok(m) => i32::from(m),
                };
            }
        }
        self.add();
        if ret == 0 { 0 } else { 1 }
    }

    fn address(&mut self) -> i32 {
        let start = self.lx.pos;
        let ret = self.group();
        if ret < 0 {
            self.lx.pos = start;
            self.addr = Address::default();
            return self.mailbox();
        }
        ret
    }
}

/// Parses an address-list header value the way Dovecot does for ENVELOPE (including its
/// placeholders for broken addresses). Empty for a value with no address.
pub fn parse_addresses(value: &[u8]) -> Vec<Address> {
    let mut p = AddrParser {
        lx: Lexer::with_comments(value),
        addr: Address::default(),
        invalid: false,
        out: Vec::new(),
        s: Vec::new(),
    };
    if !matches!(p.lx.skip_lwsp(), Ok(true)) {
        return Vec::new();
    }
    let mut guard = 0;
    loop {
        guard += 1;
        if guard > 100_000 {
            break;
        }
        if p.address() == 0 {
            break;
        }
        if !p.more() || p.data() != b',' {
            break;
        }
        p.lx.pos += 1;
        match p.lx.skip_lwsp() {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                p.add_fixed();
                break;
            }
        }
    }
    p.out
}

fn write_addresses(out: &mut Vec<u8>, list: Option<&[Address]>) {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for a in list {
        out.push(b'(');
        match &a.name {
            None => out.extend_from_slice(b"NIL"),
            Some(n) => string_for_humans(out, n),
        }
        out.push(b' ');
        nstring(out, a.route.as_deref());
        out.push(b' ');
        nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        nstring(out, a.domain.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// The ENVELOPE of a message (or embedded message) header block, parenthesised.
pub fn envelope(header_block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'(');
    write_envelope(&mut out, header_block);
    out.push(b')');
    out
}

fn write_envelope(out: &mut Vec<u8>, block: &[u8]) {
    let mut date = None;
    let mut subject = None;
    let mut in_reply_to = None;
    let mut message_id = None;
    let mut addrs: [Option<Vec<Address>>; 6] = Default::default();
    for (name, value) in raw_fields(block) {
        let lower = name.to_ascii_lowercase();
        match lower.as_slice() {
            b"date" => date = Some(value),
            b"subject" => subject = Some(value),
            b"in-reply-to" => in_reply_to = Some(value),
            b"message-id" => message_id = Some(value),
            b"from" => addrs[0] = Some(parse_addresses(value)),
            b"sender" => addrs[1] = Some(parse_addresses(value)),
            b"reply-to" => addrs[2] = Some(parse_addresses(value)),
            b"to" => addrs[3] = Some(parse_addresses(value)),
            b"cc" => addrs[4] = Some(parse_addresses(value)),
            b"bcc" => addrs[5] = Some(parse_addresses(value)),
            _ => {}
        }
    }
    nstring_nolf(out, date);
    out.push(b' ');
    match subject {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string_for_humans(out, s),
    }
    let from = addrs[0].as_deref().filter(|l| !l.is_empty());
    for (i, a) in addrs.iter().enumerate() {
        out.push(b' ');
        let list = a.as_deref().filter(|l| !l.is_empty());
        let list = if (i == 1 || i == 2) && list.is_none() {
            from
        } else {
            list
        };
        write_addresses(out, list);
    }
    out.push(b' ');
    nstring_nolf(out, in_reply_to);
    out.push(b' ');
    nstring_nolf(out, message_id);
}

/// The Content-* data of one part, as Dovecot's message_part_data holds it.
#[derive(Debug, Default)]
struct ContentData<'a> {
    ctype: Option<Vec<u8>>,
    subtype: Option<Vec<u8>>,
    params: Vec<(Vec<u8>, Vec<u8>)>,
    cte: Option<Vec<u8>>,
    id: Option<&'a [u8]>,
    description: Option<&'a [u8]>,
    md5: Option<&'a [u8]>,
    location: Option<&'a [u8]>,
    disposition: Option<Vec<u8>>,
    disposition_params: Vec<(Vec<u8>, Vec<u8>)>,
    language: Option<Vec<Vec<u8>>>,
}

fn content_data(part: &Part) -> ContentData<'_> {
    let mut d = ContentData::default();
    if !part.is_mime() {
        return d;
    }
    for (name, value) in raw_fields(part.header()) {
        if name.len() < 8 || !name[..8].eq_ignore_ascii_case(b"content-") {
            continue;
        }
        let n = name[8..].to_ascii_lowercase();
        match n.as_slice() {
            b"id" if d.id.is_none() => d.id = Some(value),
            b"md5" if d.md5.is_none() => d.md5 = Some(value),
            b"description" if d.description.is_none() => d.description = Some(value),
            b"location" if d.location.is_none() => d.location = Some(value),
            b"type" if d.ctype.is_none() => {
                let mut lx = Lexer::new(value);
                let mut t = Vec::new();
                let r = lx.content_type(&mut t);
                match t.iter().position(|&b| b == b'/') {
                    Some(i) => {
                        d.subtype = Some(t[i + 1..].to_vec());
                        t.truncate(i);
                    }
                    None => d.subtype = None,
                }
                d.ctype = Some(t);
                if r.is_ok() {
                    d.params = lx.params();
                }
            }
            b"transfer-encoding" if d.cte.is_none() => {
                let mut lx = Lexer::new(value);
                let mut t = Vec::new();
                if lx.skip_lwsp().is_ok()
                    && lx.mime_token(&mut t).is_ok()
                    && lx.skip_lwsp() == Ok(false)
                    && !t.is_empty()
                {
                    d.cte = Some(t);
                }
            }
            b"disposition" if d.disposition_params.is_empty() => {
                let mut lx = Lexer::new(value);
                let mut t = Vec::new();
                if lx.skip_lwsp().is_ok() && lx.mime_token(&mut t).is_ok() {
                    d.disposition = Some(t);
                    d.disposition_params = lx.params();
                }
            }
            b"language" if d.language.is_none() => {
                let mut lx = Lexer::new(value);
                let mut langs = Vec::new();
                let _ = lx.skip_lwsp();
                loop {
                    let mut t = Vec::new();
                    if lx.atom(&mut t).is_err() {
                        break;
                    }
                    langs.push(t);
                    if lx.peek() != b',' || lx.at_end() {
                        break;
                    }
                    lx.pos += 1;
                    let _ = lx.skip_lwsp();
                }
                if !langs.is_empty() {
                    d.language = Some(langs);
                }
            }
            _ => {}
        }
    }
    d
}

fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)], default_charset: bool) {
    if !default_charset && params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    let mut seen_charset = false;
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if k.eq_ignore_ascii_case(b"charset") {
            seen_charset = true;
        }
        string(out, k);
        out.push(b' ');
        string(out, v);
    }
    if default_charset && !seen_charset {
        if !params.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}

fn write_common(out: &mut Vec<u8>, d: &ContentData<'_>) {
    out.push(b' ');
    match &d.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some(disp) => {
            out.push(b'(');
            string(out, disp);
            out.push(b' ');
            write_params(out, &d.disposition_params, false);
            out.push(b')');
        }
    }
    out.push(b' ');
    match &d.language {
        None => out.extend_from_slice(b"NIL"),
        Some(langs) => {
            out.push(b'(');
            for (i, l) in langs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, l);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring_nolf(out, d.location);
}

const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0";

fn write_part(out: &mut Vec<u8>, part: &Part, ext: bool) {
    let d = content_data(part);
    if part.is_multipart() {
        if part.children().is_empty() {
            out.extend_from_slice(EMPTY_BODY);
            if ext {
                out.extend_from_slice(b" NIL NIL NIL NIL");
            }
            out.push(b')');
        }
        for c in part.children() {
            out.push(b'(');
            write_part(out, c, ext);
            out.push(b')');
        }
        out.push(b' ');
        string(out, d.subtype.as_deref().unwrap_or(b""));
        if ext {
            out.push(b' ');
            write_params(out, &d.params, false);
            write_common(out, &d);
        }
        return;
    }
    let text;
    if part.class() == Class::Message {
        out.extend_from_slice(b"\"message\" \"rfc822\"");
        text = false;
    } else if let Some(t) = &d.ctype {
        text = t.eq_ignore_ascii_case(b"text");
        string(out, t);
        out.push(b' ');
        string(out, d.subtype.as_deref().unwrap_or(b""));
    } else {
        text = true;
        out.extend_from_slice(b"\"text\" \"plain\"");
    }
    out.push(b' ');
    write_params(out, &d.params, text);
    out.push(b' ');
    nstring_nolf(out, d.id);
    out.push(b' ');
    nstring_nolf(out, d.description);
    out.push(b' ');
    match &d.cte {
        Some(c) => string(out, c),
        None => out.extend_from_slice(b"\"7bit\""),
    }
    out.extend_from_slice(format!(" {}", part.body_size()).as_bytes());
    if text {
        out.extend_from_slice(format!(" {}", part.body_lines()).as_bytes());
    } else if let Some(m) = part.message() {
        out.extend_from_slice(b" (");
        write_envelope(out, m.header());
        out.extend_from_slice(b") (");
        write_part(out, m, ext);
        out.extend_from_slice(format!(") {}", part.body_lines()).as_bytes());
    }
    if ext {
        out.push(b' ');
        nstring_nolf(out, d.md5);
        write_common(out, &d);
    }
}

/// BODYSTRUCTURE (`extensible`) or BODY of a part (normally the root), parenthesised.
pub fn bodystructure(part: &Part, extensible: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'(');
    write_part(&mut out, part, extensible);
    out.push(b')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(h: &str) -> String {
        String::from_utf8(envelope(h.as_bytes())).unwrap()
    }

    #[test]
    fn quoting_rules() {
        let mut o = Vec::new();
        string(&mut o, b"a\"b\\c");
        assert_eq!(o, b"\"a\\\"b\\\\c\"");
        let mut o = Vec::new();
        string(&mut o, b"\"\"\"\"\"");
        assert_eq!(o, b"{5}\r\n\"\"\"\"\"");
        let mut o = Vec::new();
        string(&mut o, "é".as_bytes());
        assert_eq!(o, b"{2}\r\n\xc3\xa9");
        let mut o = Vec::new();
        string_for_humans(&mut o, b"  a \t b\r\n c  ");
        assert_eq!(o, b"{5}\r\na b c");
        let mut o = Vec::new();
        string_for_humans(&mut o, b"plain words");
        assert_eq!(o, b"\"plain words\"");
        let mut o = Vec::new();
        string_for_humans(&mut o, b" \t ");
        assert_eq!(o, b"\"\"");
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            env("From: A <a@b.c>\r\nSubject: hi\r\nTo: x@y.z\r\n"),
            "(NIL \"hi\" ((\"A\" NIL \"a\" \"b.c\")) ((\"A\" NIL \"a\" \"b.c\")) \
             ((\"A\" NIL \"a\" \"b.c\")) ((NIL NIL \"x\" \"y.z\")) NIL NIL NIL NIL)"
        );
        assert_eq!(
            env("To: undisclosed-recipients:;\n"),
            "(NIL NIL NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
             NIL NIL NIL NIL)"
        );
        assert_eq!(env(""), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    }

    #[test]
    fn addresses() {
        let a = parse_addresses(b"bob@b.org (Bob B), \"Doe, J\" <j@d>, John Smith, broken@");
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].name.as_deref(), Some(&b"Bob B"[..]));
        assert_eq!(a[1].name.as_deref(), Some(&b"Doe, J"[..]));
        assert_eq!(a[2].name.as_deref(), Some(&b"John Smith"[..]));
        assert_eq!(a[2].mailbox.as_deref(), Some(&b"MISSING_MAILBOX"[..]));
        assert_eq!(a[3].domain.as_deref(), Some(&b"MISSING_DOMAIN"[..]));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 99u32;
        let alphabet = b"<>@,;:\"\\() .abc=?\r\n\t[]\xc3";
        for _ in 0..5000 {
            let len = (seed % 50) as usize;
            let mut v = Vec::new();
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                v.push(alphabet[(seed >> 16) as usize % alphabet.len()]);
            }
            let _ = parse_addresses(&v);
            let mut h = b"From: ".to_vec();
            h.extend_from_slice(&v);
            h.extend_from_slice(b"\r\nContent-Type: ");
            h.extend_from_slice(&v);
            let _ = envelope(&h);
            let part = super::super::mime::scan(&h[..]).unwrap();
            let _ = bodystructure(&part, true);
        }
    }
}
