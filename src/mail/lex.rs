//! RFC 822 / MIME lexical tokens over `&[u8]`: comments and white space, atoms, MIME tokens,
//! quoted strings, phrases, domains, `type/subtype` and `;param=value` lists (with RFC 2231
//! continuations merged, values left encoded). The grammar follows what Dovecot accepts, so
//! that ENVELOPE and BODYSTRUCTURE built on it match Dovecot's for the same (even broken) mail.
//!
//! Every parser returns [`Step`]: `Ok(true)` when data follows, `Ok(false)` at the end of the
//! input, `Err(Broken)` for malformed input (the position is then somewhere inside it).

/// Malformed input (an unterminated comment or quoted string, a missing token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken;

/// `Ok(true)`: more data follows; `Ok(false)`: at the end.
pub type Step = Result<bool, Broken>;

/// A MIME parameter: (attribute as written, value unquoted).
pub type Param = (Vec<u8>, Vec<u8>);

/// atext: 1 = symbol, 2 = alphanumeric or 8-bit, 4 = atext that is a MIME tspecial (`/ = ?`).
const fn atext_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c >= 0x80 || c.is_ascii_alphanumeric() {
            2
        } else if matches!(c, b'/' | b'=' | b'?') {
            4
        } else if matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        ) {
            1
        } else {
            0
        };
        i += 1;
    }
    t
}
static ATEXT: [u8; 256] = atext_table();

/// True for RFC 5322 atext (8-bit bytes count as atext, as Dovecot treats them).
pub fn is_atext(c: u8) -> bool {
    ATEXT[c as usize] != 0
}

/// atext that is not a MIME tspecial.
fn is_token_char(c: u8) -> bool {
    matches!(ATEXT[c as usize], 1 | 2)
}

/// A cursor over one header value.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    pub data: &'a [u8],
    pub pos: usize,
    /// The text of the last comment skipped, when tracking is on.
    pub last_comment: Option<Vec<u8>>,
}

impl<'a> Lexer<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Lexer {
            data,
            pos: 0,
            last_comment: None,
        }
    }

    /// Like [`Lexer::new`], remembering the text of the last comment skipped.
    pub fn with_comments(data: &'a [u8]) -> Self {
        Lexer {
            data,
            pos: 0,
            last_comment: Some(Vec::new()),
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The current byte (0 at the end, which no grammar rule accepts).
    pub fn peek(&self) -> u8 {
        self.data.get(self.pos).copied().unwrap_or(0)
    }

    fn more(&self) -> Step {
        Ok(!self.at_end())
    }

    /// Skips a `( ... )` comment (nested, with quoted pairs); the cursor is at `(`.
    pub fn skip_comment(&mut self) -> Step {
        if let Some(c) = &mut self.last_comment {
            c.clear();
        }
        self.pos += 1;
        let mut start = self.pos;
        let mut level = 1;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        if let Some(c) = &mut self.last_comment {
                            c.extend_from_slice(&self.data[start..self.pos]);
                        }
                        self.pos += 1;
                        return self.more();
                    }
                }
                b'\\' => {
                    if let Some(c) = &mut self.last_comment {
                        c.extend_from_slice(&self.data[start..self.pos]);
                    }
                    start = self.pos + 1;
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        return Err(Broken);
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(Broken)
    }

    /// Skips white space (including CR and LF) and comments.
    pub fn skip_lwsp(&mut self) -> Step {
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    self.skip_comment()?;
                }
                _ => break,
            }
        }
        self.more()
    }

    /// `1*atext`, then white space and comments.
    pub fn atom(&mut self, out: &mut Vec<u8>) -> Step {
        if !is_atext(self.peek()) || self.at_end() {
            return Err(Broken);
        }
        let start = self.pos;
        while self.pos < self.data.len() && is_atext(self.data[self.pos]) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            return Ok(false);
        }
        self.skip_lwsp()
    }

    /// `dot-atom` (white space allowed around the dots, as RFC 822 did).
    pub fn dot_atom(&mut self, out: &mut Vec<u8>) -> Step {
        if self.at_end() || !is_atext(self.peek()) {
            return Err(Broken);
        }
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < self.data.len() {
            if is_atext(self.data[self.pos]) {
                self.pos += 1;
                continue;
            }
            out.extend_from_slice(&self.data[start..self.pos]);
            if !self.skip_lwsp()? {
                return Ok(false);
            }
            if self.peek() != b'.' {
                return Ok(true);
            }
            self.pos += 1;
            out.push(b'.');
            if !self.skip_lwsp()? {
                return Ok(false);
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        Ok(false)
    }

    /// A MIME token (may be empty), then white space and comments.
    pub fn mime_token(&mut self, out: &mut Vec<u8>) -> Step {
        let start = self.pos;
        while self.pos < self.data.len()
            && (is_token_char(self.data[self.pos]) || self.data[self.pos] == b'.')
        {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            return Ok(false);
        }
        self.skip_lwsp()
    }

    /// A quoted string, unescaped, folding removed; the cursor is at `"`.
    pub fn quoted_string(&mut self, out: &mut Vec<u8>) -> Step {
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b'"' => {
                    out.extend_from_slice(&self.data[start..self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && self.data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    out.extend_from_slice(&self.data[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        return Err(Broken);
                    }
                    out.extend_from_slice(&self.data[start..self.pos - 1]);
                    start = self.pos;
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(Broken)
    }

    fn atom_or_dot(&mut self, out: &mut Vec<u8>) -> Step {
        let start = self.pos;
        while self.pos < self.data.len()
            && (is_atext(self.data[self.pos]) || self.data[self.pos] == b'.')
        {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            return Ok(false);
        }
        self.skip_lwsp()
    }

    /// `phrase` (words joined by one space; dots allowed as obs-phrase does).
    pub fn phrase(&mut self, out: &mut Vec<u8>) -> Step {
        if self.at_end() {
            return Ok(false);
        }
        if self.peek() == b'.' {
            return Err(Broken);
        }
        loop {
            let more = if self.peek() == b'"' {
                self.quoted_string(out)?
            } else {
                self.atom_or_dot(out)?
            };
            if !more {
                return Ok(false);
            }
            let c = self.peek();
            if !is_atext(c) && c != b'"' && c != b'.' {
                break;
            }
            out.push(b' ');
        }
        self.skip_lwsp()
    }

    fn domain_literal(&mut self, out: &mut Vec<u8>) -> Step {
        let start = self.pos;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        break;
                    }
                }
                b']' => {
                    self.pos += 1;
                    out.extend_from_slice(&self.data[start..self.pos]);
                    return self.skip_lwsp();
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(Broken)
    }

    /// `@domain`; the cursor is at `@`.
    pub fn domain(&mut self, out: &mut Vec<u8>) -> Step {
        if self.peek() != b'@' {
            return Err(Broken);
        }
        self.pos += 1;
        if !self.skip_lwsp()? {
            return Err(Broken);
        }
        if self.peek() == b'[' {
            self.domain_literal(out)
        } else {
            self.dot_atom(out)
        }
    }

    /// `type "/" subtype` into `out` as written (`type/subtype`); `Err` when incomplete, with
    /// `out` holding what was read (Dovecot keeps a broken type too).
    pub fn content_type(&mut self, out: &mut Vec<u8>) -> Step {
        if !self.skip_lwsp()? {
            return Err(Broken);
        }
        if !self.mime_token(out)? {
            return Err(Broken);
        }
        if self.peek() != b'/' {
            return Err(Broken);
        }
        self.pos += 1;
        if !self.skip_lwsp()? {
            return Err(Broken);
        }
        out.push(b'/');
        self.mime_token(out)
    }

    /// One `; attribute = value`. `Ok(None)` at the end of input.
    fn content_param(&mut self) -> Result<Option<Param>, Broken> {
        if self.at_end() {
            return Ok(None);
        }
        if self.peek() != b';' {
            return Err(Broken);
        }
        self.pos += 1;
        if !self.skip_lwsp()? {
            return Err(Broken);
        }
        let mut key = Vec::new();
        if !self.mime_token(&mut key)? || key.is_empty() {
            return Err(Broken);
        }
        if self.peek() != b'=' {
            return Err(Broken);
        }
        self.pos += 1;
        let mut value = Vec::new();
        let r = match self.skip_lwsp() {
            Ok(false) | Err(_) => Ok(false), // no value
            Ok(true) if self.peek() == b'"' => self.quoted_string(&mut value),
            Ok(true) if self.peek() == b'=' => {
                // Broken input such as name==?utf-8?b?...?=: take it up to white space or ';'.
                while self.pos < self.data.len()
                    && !matches!(self.data[self.pos], b';' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    value.push(self.data[self.pos]);
                    self.pos += 1;
                }
                Ok(true)
            }
            Ok(true) => self.mime_token(&mut value),
        };
        match r {
            Err(_) => Err(Broken),
            Ok(_) => Ok(Some((key, value))),
        }
    }

    /// All `;param=value` pairs, in order, with RFC 2231 `name*0`, `name*1*` … continuations
    /// merged into `name` (or `name*` when any piece is extended; values stay encoded) and
    /// appended after the plain ones, as Dovecot does. Broken pairs are skipped.
    pub fn params(&mut self) -> Vec<Param> {
        struct Piece {
            key: Vec<u8>,
            value: Vec<u8>,
            idx: u32,
            extended: bool,
        }
        let mut out = Vec::new();
        let mut pieces: Vec<Piece> = Vec::new();
        let mut idx = 0u32;
        let mut guard = 0usize;
        loop {
            guard += 1;
            if guard > 10_000 {
                break;
            }
            match self.content_param() {
                Ok(None) => break,
                Err(_) => {
                    if self.at_end() {
                        break;
                    }
                    self.pos += 1;
                    continue;
                }
                Ok(Some((key, value))) => {
                    if let Some(star) = key.iter().position(|&b| b == b'*') {
                        let mut p = star + 1;
                        if p < key.len() {
                            idx = 0;
                            while p < key.len() && key[p].is_ascii_digit() {
                                idx = idx.wrapping_mul(10).wrapping_add((key[p] - b'0') as u32);
                                p += 1;
                            }
                        }
                        let extended = p < key.len() && key[p] == b'*';
                        if extended {
                            p += 1;
                        }
                        if p == key.len() {
                            pieces.push(Piece {
                                key: key[..star].to_vec(),
                                value,
                                idx,
                                extended,
                            });
                            continue;
                        }
                    }
                    out.push((key, value));
                }
            }
        }
        if pieces.is_empty() {
            return out;
        }
        pieces.sort_by(|a, b| a.key.cmp(&b.key).then(a.idx.cmp(&b.idx)));
        let mut i = 0;
        while i < pieces.len() {
            let mut j = i;
            let mut ok = true;
            let mut have_ext = false;
            let mut next_idx = 0u32;
            while j < pieces.len() && pieces[j].key.eq_ignore_ascii_case(&pieces[i].key) {
                if pieces[j].idx != next_idx {
                    ok = false;
                }
                have_ext |= pieces[j].extended;
                next_idx = next_idx.wrapping_add(1);
                j += 1;
            }
            if !ok {
                for p in &pieces[i..j] {
                    let mut k = p.key.clone();
                    k.extend_from_slice(format!("*{}", p.idx).as_bytes());
                    if p.extended {
                        k.push(b'*');
                    }
                    out.push((k, p.value.clone()));
                }
            } else {
                let mut v = Vec::new();
                if !pieces[i].extended && have_ext {
                    v.extend_from_slice(b"''");
                }
                for p in &pieces[i..j] {
                    if !p.extended && have_ext {
                        for &b in &p.value {
                            if b == b'%' {
                                v.extend_from_slice(b"%25");
                            } else {
                                v.push(b);
                            }
                        }
                    } else {
                        v.extend_from_slice(&p.value);
                    }
                }
                let mut k = pieces[i].key.clone();
                if have_ext {
                    k.push(b'*');
                }
                out.push((k, v));
            }
            i = j;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_params() {
        let mut l = Lexer::new(b"text/plain; charset=\"utf-8\" (c); format=flowed");
        let mut t = Vec::new();
        assert_eq!(l.content_type(&mut t), Ok(true));
        assert_eq!(t, b"text/plain");
        assert_eq!(
            l.params(),
            vec![
                (b"charset".to_vec(), b"utf-8".to_vec()),
                (b"format".to_vec(), b"flowed".to_vec())
            ]
        );
        let mut l = Lexer::new(b" Text / HTML ");
        let mut t = Vec::new();
        assert_eq!(l.content_type(&mut t), Ok(false));
        assert_eq!(t, b"Text/HTML");
        let mut l = Lexer::new(b"text");
        let mut t = Vec::new();
        assert!(l.content_type(&mut t).is_err());
        assert_eq!(t, b"text");
    }

    #[test]
    fn rfc2231_continuations_merge() {
        let mut l =
            Lexer::new(b"; title*1*=%20b; title*0*=us-ascii'en'a; x=1; name*0=\"a%\"; name*1=b");
        assert_eq!(
            l.params(),
            vec![
                (b"x".to_vec(), b"1".to_vec()),
                (b"name".to_vec(), b"a%b".to_vec()),
                (b"title*".to_vec(), b"us-ascii'en'a%20b".to_vec()),
            ]
        );
        let mut l = Lexer::new(b"; a*0=x; a*2=y");
        assert_eq!(
            l.params(),
            vec![
                (b"a*0".to_vec(), b"x".to_vec()),
                (b"a*2".to_vec(), b"y".to_vec())
            ]
        );
    }

    #[test]
    fn phrases_and_comments() {
        let mut l = Lexer::new(b"\"Doe, \\\"J\\\"\" Jr. <x@y>");
        let mut o = Vec::new();
        assert_eq!(l.phrase(&mut o), Ok(true));
        assert_eq!(o, b"Doe, \"J\" Jr.");
        assert_eq!(l.peek(), b'<');
        let mut l = Lexer::with_comments(b"(Bob (the) builder) x");
        assert_eq!(l.skip_lwsp(), Ok(true));
        assert_eq!(l.last_comment.as_deref(), Some(&b"Bob (the) builder"[..]));
        assert!(Lexer::new(b"(open").skip_lwsp().is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u32;
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let mut v = Vec::new();
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let a = b"\\\"();=*0'%a/ \r\n@[]<>:,.";
                v.push(a[(seed >> 16) as usize % a.len()]);
            }
            let mut l = Lexer::new(&v);
            let mut o = Vec::new();
            let _ = l.content_type(&mut o);
            let _ = l.params();
            let mut l = Lexer::with_comments(&v);
            let _ = l.phrase(&mut o);
            let _ = l.domain(&mut o);
        }
    }
}
