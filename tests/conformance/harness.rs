//! The conformance scripts' language and its runner: a script (`tests/conformance/*.imap`) is
//! parsed into steps, then played against one IMAP server over real sockets, comparing what
//! the server answers with what the script expects. The same script is played against
//! s3imap and against Dovecot 2.3 (tests/conformance.rs); passing on both is what shows that
//! an expectation is the RFC's and not ours.
//!
//! # The format
//! ```text
//! # comment (also: the first comment lines say what the script checks)
//! connections 2                          sessions, each logged in as the script's user
//! login no                               sessions start unauthenticated
//! seed INBOX mail/plain.eml (\Seen) "01-Jan-2026 10:00:00 +0000"
//!                                        a message file put in the Maildir before the servers
//!                                        start (path under tests/data/ or tests/conformance/)
//! folder Work/Projects                   a folder that exists before the servers start
//! differs RFC 3501 §7.1.3: why           required before any [s3imap]/[dovecot] line
//! only s3imap                            for an extension Dovecot 2.3 lacks (needs `differs`)
//!
//! 1> a1 SELECT INBOX                     session 1 sends "a1 SELECT INBOX", reads until "a1 …"
//! 1< * 3 EXISTS                          expected untagged responses, in any order
//! 1< **                                  any further untagged responses are fine
//! 1< a1 OK [READ-WRITE]                  the tagged answer (its text is never compared)
//! 2>> c IDLE                             sends a line and does not wait
//! 2< + idling                            then each `2<` line is the next line session 2 reads
//! 1<[s3imap] …  /  1<[dovecot] …          an answer one server gives (see `differs`)
//! ```
//! In expected lines: `?` is any one token, `?name` any token (the same every time it appears),
//! `...` any number of tokens; a client line may send a captured token back as `{?name}`;
//! atoms compare case-insensitively; a quoted string and a literal (or literal8, `~{n}`)
//! with the same content are equal; FETCH and STATUS items compare as an unordered set of
//! name/value pairs, flag lists (FLAGS, PERMANENTFLAGS) and LIST/LSUB attributes as sets; a status response's human-readable text is not
//! compared, and without a `[code]` in the expectation any code is accepted. Unexpected
//! untagged responses (not matched and no `**`) fail the step.
//!
//! Client lines may carry literals: `{lit:TEXT}` (TEXT with `\r`, `\n`, `\\` escapes) and
//! `{msg:FILE}` are sent as synchronizing literals (`{n}`, then exactly one `+` is expected before
//! the data), `{lit+:TEXT}` and `{msg+:FILE}` as non-synchronizing ones (`{n+}`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PASSWORD: &str = "conformance-pw";

/// One message put into a Maildir before the servers start.
#[derive(Debug, Clone)]
pub struct Seed {
    pub mailbox: String,
    pub file: PathBuf,
    pub flags: Vec<String>,
    /// INTERNALDATE as Unix seconds.
    pub date: Option<i64>,
}

/// What one expected line applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Both,
    S3imap,
    Dovecot,
}

#[derive(Debug, Clone)]
pub struct Expect {
    pub only: Only,
    pub text: String,
    pub line_no: usize,
}

#[derive(Debug, Clone)]
pub enum Step {
    /// Send a tagged command, read up to its tagged answer, compare the block.
    Command {
        conn: usize,
        line: String,
        tag: String,
        expect: Vec<Expect>,
        line_no: usize,
    },
    /// Send a line without waiting.
    Send {
        conn: usize,
        line: String,
        line_no: usize,
    },
    /// Read the next line of a session and compare it.
    Read { conn: usize, expect: Expect },
}

#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub user: String,
    pub connections: usize,
    pub login: bool,
    pub seeds: Vec<Seed>,
    pub folders: Vec<String>,
    pub differs: Vec<String>,
    /// Played against this server only (an extension the other lacks).
    pub only: Option<Only>,
    pub steps: Vec<Step>,
    /// Expected lines in all (the count of scripted exchanges).
    pub exchanges: usize,
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn message_path(rel: &str) -> PathBuf {
    let t = tests_dir();
    let a = t.join("data").join(rel);
    if a.exists() {
        return a;
    }
    t.join("conformance").join(rel)
}

/// A parse error with the script's line.
fn perr(name: &str, n: usize, msg: &str) -> String {
    format!("{name}:{n}: {msg}")
}

/// Splits `"quoted" atom (a b)` into words, keeping quoted strings and parentheses whole.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if b[i] == b'(' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'(' {
                    depth += 1;
                } else if b[i] == b')' {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                i += 1;
            }
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
        }
        out.push(s[start..i.min(b.len())].to_string());
    }
    out
}

/// `01-Jan-2026 10:00:00 +0000` → Unix seconds.
fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim_matches('"');
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut d = date.split('-');
    let day: i64 = d.next()?.trim().parse().ok()?;
    let mon = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(d.next().unwrap_or("")))? as i64
        + 1;
    let year: i64 = d.next()?.parse().ok()?;
    let mut t = time.split(':').map(|x| x.parse::<i64>());
    let (h, mi, se) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zh: i64 = zone.get(1..3)?.parse().ok()?;
    let zm: i64 = zone.get(3..5)?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mon <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mon + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - sign * (zh * 3600 + zm * 60))
}

impl Script {
    pub fn parse(name: &str, text: &str) -> Result<Script, String> {
        let mut s = Script {
            name: name.to_string(),
            user: format!("{name}@conf.test"),
            connections: 1,
            login: true,
            seeds: Vec::new(),
            folders: Vec::new(),
            differs: Vec::new(),
            only: None,
            steps: Vec::new(),
            exchanges: 0,
        };
        let mut ordered = [false; 10];
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim_end();
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let digits: String = line.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
                match word {
                    "connections" => {
                        s.connections = rest
                            .trim()
                            .parse()
                            .map_err(|_| perr(name, n, "connections N"))?
                    }
                    "login" => s.login = rest.trim() != "no",
                    "differs" => s.differs.push(rest.trim().to_string()),
                    "only" => {
                        s.only = Some(match rest.trim() {
                            "s3imap" => Only::S3imap,
                            "dovecot" => Only::Dovecot,
                            _ => return Err(perr(name, n, "only s3imap|dovecot")),
                        });
                        if s.differs.is_empty() {
                            return Err(perr(
                                name,
                                n,
                                "`only` needs a `differs RFC …: why` line first",
                            ));
                        }
                    }
                    "folder" => s.folders.push(rest.trim().to_string()),
                    "seed" => {
                        let w = words(rest);
                        if w.len() < 2 {
                            return Err(perr(name, n, "seed MAILBOX FILE [(flags)] [\"date\"]"));
                        }
                        let file = message_path(&w[1]);
                        if !file.exists() {
                            return Err(perr(name, n, &format!("no file {}", file.display())));
                        }
                        let mut seed = Seed {
                            mailbox: w[0].trim_matches('"').to_string(),
                            file,
                            flags: Vec::new(),
                            date: None,
                        };
                        for x in &w[2..] {
                            if x.starts_with('(') {
                                seed.flags = x
                                    .trim_matches(|c| c == '(' || c == ')')
                                    .split_whitespace()
                                    .map(str::to_string)
                                    .collect();
                            } else {
                                seed.date = Some(
                                    parse_date(x).ok_or_else(|| perr(name, n, "bad seed date"))?,
                                );
                            }
                        }
                        s.seeds.push(seed);
                    }
                    _ => return Err(perr(name, n, &format!("unknown directive {word:?}"))),
                }
                continue;
            }
            let conn: usize = digits.parse().unwrap();
            if conn == 0 || conn > 9 {
                return Err(perr(name, n, "sessions are numbered 1 to 9"));
            }
            let rest = &line[digits.len()..];
            if let Some(cmd) = rest.strip_prefix(">> ") {
                ordered[conn] = true;
                s.steps.push(Step::Send {
                    conn,
                    line: cmd.to_string(),
                    line_no: n,
                });
            } else if let Some(cmd) = rest.strip_prefix("> ") {
                ordered[conn] = false;
                let tag = cmd.split(' ').next().unwrap_or("").to_string();
                s.steps.push(Step::Command {
                    conn,
                    line: cmd.to_string(),
                    tag,
                    expect: Vec::new(),
                    line_no: n,
                });
            } else if let Some(r) = rest.strip_prefix('<') {
                let (only, text) = if let Some(t) = r.strip_prefix("[s3imap] ") {
                    (Only::S3imap, t)
                } else if let Some(t) = r.strip_prefix("[dovecot] ") {
                    (Only::Dovecot, t)
                } else if let Some(t) = r.strip_prefix(' ') {
                    (Only::Both, t)
                } else {
                    return Err(perr(name, n, "expected `N< line`"));
                };
                if only != Only::Both && s.differs.is_empty() {
                    return Err(perr(
                        name,
                        n,
                        "a server-specific answer needs a `differs RFC …: why` line first",
                    ));
                }
                let e = Expect {
                    only,
                    text: text.to_string(),
                    line_no: n,
                };
                s.exchanges += 1;
                if ordered[conn] {
                    s.steps.push(Step::Read { conn, expect: e });
                    continue;
                }
                let target = s.steps.iter_mut().rev().find_map(|st| match st {
                    Step::Command {
                        conn: c, expect, ..
                    } if *c == conn => Some(expect),
                    _ => None,
                });
                match target {
                    Some(v) => v.push(e),
                    None => {
                        return Err(perr(
                            name,
                            n,
                            "an answer before any command of this session",
                        ));
                    }
                }
            } else {
                return Err(perr(
                    name,
                    n,
                    "expected `N> cmd`, `N>> line` or `N< answer`",
                ));
            }
        }
        for st in &s.steps {
            if let Step::Command {
                expect,
                tag,
                line_no,
                ..
            } = st
            {
                let tagged = expect
                    .iter()
                    .filter(|e| e.text.split(' ').next() == Some(tag.as_str()))
                    .count();
                if tagged == 0 {
                    return Err(perr(name, *line_no, "no tagged answer expected"));
                }
            }
            if let Step::Command { conn, line_no, .. } | Step::Send { conn, line_no, .. } = st
                && *conn > s.connections
            {
                return Err(perr(name, *line_no, "session beyond `connections`"));
            }
        }
        Ok(s)
    }
}

// ---- response tokens --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Tok>),
    Code(Vec<Tok>),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Atom(a) => a.clone(),
            Tok::Str(s) => format!("{:?}", String::from_utf8_lossy(s)),
            Tok::List(v) => format!(
                "({})",
                v.iter().map(Tok::text).collect::<Vec<_>>().join(" ")
            ),
            Tok::Code(v) => format!(
                "[{}]",
                v.iter().map(Tok::text).collect::<Vec<_>>().join(" ")
            ),
        }
    }
}

/// Decodes `\r`, `\n`, `\t`, `\\` in a script's literal text.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        if b == b'\\' {
            match it.next() {
                Some(b'r') => out.push(b'\r'),
                Some(b'n') => out.push(b'\n'),
                Some(b't') => out.push(b'\t'),
                Some(c) => out.push(c),
                None => out.push(b'\\'),
            }
        } else {
            out.push(b);
        }
    }
    out
}

struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    /// Expected lines: `{lit:…}` / `{msg:…}` are strings there too.
    script: bool,
}

impl Lexer<'_> {
    fn skip_sp(&mut self) {
        while self.i < self.b.len() && self.b[self.i] == b' ' {
            self.i += 1;
        }
    }

    fn list(&mut self, close: u8) -> Vec<Tok> {
        let mut v = Vec::new();
        loop {
            self.skip_sp();
            if self.i >= self.b.len() {
                return v;
            }
            if self.b[self.i] == close {
                self.i += 1;
                return v;
            }
            match self.tok() {
                Some(t) => v.push(t),
                None => return v,
            }
        }
    }

    fn tok(&mut self) -> Option<Tok> {
        self.skip_sp();
        let b = self.b;
        let c = *b.get(self.i)?;
        match c {
            b'(' => {
                self.i += 1;
                Some(Tok::List(self.list(b')')))
            }
            b'[' => {
                self.i += 1;
                Some(Tok::Code(self.list(b']')))
            }
            b'"' => {
                self.i += 1;
                let mut s = Vec::new();
                while self.i < b.len() && b[self.i] != b'"' {
                    if b[self.i] == b'\\' && self.i + 1 < b.len() {
                        self.i += 1;
                    }
                    s.push(b[self.i]);
                    self.i += 1;
                }
                self.i += 1;
                Some(Tok::Str(s))
            }
            // A literal8 (`~{n}`, RFC 3516) is a string like any literal.
            b'~' if b.get(self.i + 1) == Some(&b'{') => {
                self.i += 1;
                self.tok()
            }
            b'{' => {
                let rest = &b[self.i..];
                let end = rest.iter().position(|&x| x == b'}')?;
                let inner = String::from_utf8_lossy(&rest[1..end]).into_owned();
                if self.script
                    && let Some((kind, arg)) = inner.split_once(':')
                {
                    self.i += end + 1;
                    let data = match kind.trim_end_matches('+') {
                        "lit" => unescape(arg),
                        _ => std::fs::read(message_path(arg)).unwrap_or_default(),
                    };
                    return Some(Tok::Str(data));
                }
                let n: usize = inner.trim_end_matches('+').parse().ok()?;
                // `{n}\r\n` then n octets.
                let mut j = self.i + end + 1;
                if b.get(j) == Some(&b'\r') {
                    j += 1;
                }
                if b.get(j) == Some(&b'\n') {
                    j += 1;
                }
                let data = b.get(j..j + n).unwrap_or(&b[j.min(b.len())..]).to_vec();
                self.i = (j + n).min(b.len());
                Some(Tok::Str(data))
            }
            _ => {
                let start = self.i;
                let mut depth = 0i32;
                while self.i < b.len() {
                    let x = b[self.i];
                    if depth == 0 && (x == b' ' || x == b')' || x == b']' || x == b'(') {
                        // `BODY[HEADER.FIELDS (A B)]`: parentheses inside brackets are the atom's.
                        break;
                    }
                    if x == b'[' {
                        if self.i == start {
                            break;
                        }
                        depth += 1;
                    } else if x == b']' {
                        depth -= 1;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    self.i += 1;
                    return None;
                }
                let raw = String::from_utf8_lossy(&b[start..self.i]).into_owned();
                // Normalise the spacing inside `BODY[HEADER.FIELDS (A  B)]`.
                Some(Tok::Atom(
                    raw.split_whitespace().collect::<Vec<_>>().join(" "),
                ))
            }
        }
    }
}

/// Tokens of one response (or expected) line. Status responses stop after their code.
pub fn tokens(line: &[u8], script: bool) -> Vec<Tok> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut lx = Lexer {
        b: line,
        i: 0,
        script,
    };
    let mut v = Vec::new();
    while let Some(t) = lx.tok() {
        v.push(t);
        let status = |t: &Tok| {
            matches!(t, Tok::Atom(a) if ["OK", "NO", "BAD", "BYE", "PREAUTH"]
                .iter().any(|s| a.eq_ignore_ascii_case(s)))
        };
        if v.len() == 1 && matches!(&v[0], Tok::Atom(a) if a == "+") {
            return v;
        }
        if v.len() == 2 && status(&v[1]) {
            lx.skip_sp();
            if lx.b.get(lx.i) == Some(&b'[') {
                lx.i += 1;
                v.push(Tok::Code(lx.list(b']')));
            }
            return v;
        }
    }
    v
}

// ---- matching ----------------------------------------------------------------------------------

/// Captured `?name` values of one script run.
pub type Captures = HashMap<String, String>;

/// Lists compared as sets: flags, and mailbox attributes after LIST / LSUB.
fn is_flag_list_name(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Atom(a)) if ["FLAGS", "PERMANENTFLAGS", "LIST", "LSUB"]
        .iter().any(|n| a.eq_ignore_ascii_case(n)))
}

fn tok_eq(e: &Tok, a: &Tok, caps: &mut Captures) -> bool {
    match (e, a) {
        (Tok::Atom(x), _) if x == "?" => true,
        (Tok::Atom(x), _) if x.len() > 1 && x.starts_with('?') => {
            let val = a.text();
            match caps.get(x) {
                Some(v) => *v == val,
                None => {
                    caps.insert(x.clone(), val);
                    true
                }
            }
        }
        (Tok::Atom(x), Tok::Atom(y)) => x.eq_ignore_ascii_case(y),
        (Tok::Atom(x), Tok::Str(y)) | (Tok::Str(y), Tok::Atom(x)) => x.as_bytes() == y.as_slice(),
        (Tok::Str(x), Tok::Str(y)) => x == y,
        (Tok::List(x), Tok::List(y)) => seq_eq(x, y, caps),
        (Tok::Code(x), Tok::Code(y)) => seq_eq(x, y, caps),
        _ => false,
    }
}

/// Sequences with `...` (zero or more tokens); a list after FLAGS or PERMANENTFLAGS is a set,
/// and `* n FETCH (…)` items are unordered name/value pairs.
fn seq_eq(e: &[Tok], a: &[Tok], caps: &mut Captures) -> bool {
    if e.len() == 4
        && a.len() == 4
        && matches!(&e[2], Tok::Atom(x) if x.eq_ignore_ascii_case("FETCH"))
        && matches!(&a[2], Tok::Atom(x) if x.eq_ignore_ascii_case("FETCH"))
        && let (Tok::List(ei), Tok::List(ai)) = (&e[3], &a[3])
    {
        return tok_eq(&e[0], &a[0], caps) && tok_eq(&e[1], &a[1], caps) && fetch_eq(ei, ai, caps);
    }
    // `* STATUS name (…)`: items are unordered pairs as well.
    if e.len() == 4
        && a.len() == 4
        && matches!(&e[1], Tok::Atom(x) if x.eq_ignore_ascii_case("STATUS"))
        && matches!(&a[1], Tok::Atom(x) if x.eq_ignore_ascii_case("STATUS"))
        && let (Tok::List(ei), Tok::List(ai)) = (&e[3], &a[3])
    {
        return tok_eq(&e[2], &a[2], caps) && fetch_eq(ei, ai, caps);
    }
    seq_eq_from(e, a, caps, None)
}

fn seq_eq_from(e: &[Tok], a: &[Tok], caps: &mut Captures, prev: Option<&Tok>) -> bool {
    match e.first() {
        None => a.is_empty(),
        Some(Tok::Atom(x)) if x == "..." => (0..=a.len()).any(|k| {
            let mut c = caps.clone();
            if seq_eq_from(&e[1..], &a[k..], &mut c, None) {
                *caps = c;
                true
            } else {
                false
            }
        }),
        Some(first) => {
            let Some(af) = a.first() else { return false };
            let mut c = caps.clone();
            let ok = match (first, af) {
                (Tok::List(el), Tok::List(al)) if is_flag_list_name(prev) => set_eq(el, al, &mut c),
                _ => tok_eq(first, af, &mut c),
            };
            if ok && seq_eq_from(&e[1..], &a[1..], &mut c, Some(first)) {
                *caps = c;
                true
            } else {
                false
            }
        }
    }
}

/// A list compared as a set (order free); `...` in the expectation allows extra members.
fn set_eq(e: &[Tok], a: &[Tok], caps: &mut Captures) -> bool {
    let open = e.iter().any(|t| matches!(t, Tok::Atom(x) if x == "..."));
    let mut used = vec![false; a.len()];
    for et in e
        .iter()
        .filter(|t| !matches!(t, Tok::Atom(x) if x == "..."))
    {
        let hit = (0..a.len()).find(|&i| !used[i] && tok_eq(et, &a[i], caps));
        match hit {
            Some(i) => used[i] = true,
            None => return false,
        }
    }
    open || used.iter().all(|&u| u)
}

/// FETCH items: name/value pairs in any order; `...` allows other items.
fn fetch_eq(e: &[Tok], a: &[Tok], caps: &mut Captures) -> bool {
    let open = e.iter().any(|t| matches!(t, Tok::Atom(x) if x == "..."));
    let pairs = |v: &[Tok]| -> Vec<(Tok, Option<Tok>)> {
        let v: Vec<&Tok> = v
            .iter()
            .filter(|t| !matches!(t, Tok::Atom(x) if x == "..."))
            .collect();
        v.chunks(2)
            .map(|c| (c[0].clone(), c.get(1).map(|t| (*t).clone())))
            .collect()
    };
    let (ep, ap) = (pairs(e), pairs(a));
    let mut used = vec![false; ap.len()];
    for (en, ev) in &ep {
        let flags = matches!(en, Tok::Atom(x) if x.eq_ignore_ascii_case("FLAGS"));
        let hit = (0..ap.len()).find(|&i| {
            if used[i] {
                return false;
            }
            let (an, av) = &ap[i];
            let mut c = caps.clone();
            let ok = tok_eq(en, an, &mut c)
                && match (ev, av) {
                    (Some(Tok::List(el)), Some(Tok::List(al))) if flags => set_eq(el, al, &mut c),
                    (Some(x), Some(y)) => tok_eq(x, y, &mut c),
                    (None, None) => true,
                    _ => false,
                };
            if ok {
                *caps = c;
            }
            ok
        });
        match hit {
            Some(i) => used[i] = true,
            None => return false,
        }
    }
    open || used.iter().all(|&u| u)
}

/// Whether an actual line matches an expected one.
pub fn line_matches(expect: &str, actual: &[u8], caps: &mut Captures) -> bool {
    let e = tokens(expect.as_bytes(), true);
    let mut a = tokens(actual, false);
    // A status response expected without a `[code]` accepts any code.
    if e.len() == 2 && a.len() == 3 && matches!(a[2], Tok::Code(_)) {
        a.pop();
    }
    let mut c = caps.clone();
    if seq_eq(&e, &a, &mut c) {
        *caps = c;
        return true;
    }
    false
}

// ---- playing a script --------------------------------------------------------------------------

pub struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> Result<Conn, String> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut c = Conn { s, buf: Vec::new() };
        let g = c.line()?;
        if !g.starts_with(b"* OK") {
            return Err(format!("greeting: {}", String::from_utf8_lossy(&g)));
        }
        Ok(c)
    }

    pub fn send(&mut self, b: &[u8]) -> Result<(), String> {
        self.s.write_all(b).map_err(|e| format!("send: {e}"))
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut tmp = [0u8; 16384];
        match self.s.read(&mut tmp) {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(())
            }
            Err(e) => Err(format!("no answer within 30 s ({e})")),
        }
    }

    /// One response line, with the literals it carries.
    pub fn line(&mut self) -> Result<Vec<u8>, String> {
        let mut scanned = 0;
        loop {
            if let Some(p) = self.buf[scanned..].windows(2).position(|w| w == b"\r\n") {
                let end = scanned + p + 2;
                // `{n}\r\n` at the end of the line: n more octets, then the line goes on.
                let head = &self.buf[..end - 2];
                if head.ends_with(b"}")
                    && let Some(open) = head.iter().rposition(|&b| b == b'{')
                    && let Ok(n) = std::str::from_utf8(&head[open + 1..head.len() - 1])
                        .unwrap_or("")
                        .parse::<usize>()
                {
                    while self.buf.len() < end + n {
                        self.fill()?;
                    }
                    scanned = end + n;
                    continue;
                }
                return Ok(self.buf.drain(..end).collect());
            }
            scanned = self.buf.len().saturating_sub(1);
            self.fill()?;
        }
    }
}

/// Expands a client line's `{lit:…}` / `{msg:…}` literals and sends it; for synchronizing ones
/// waits for exactly one `+` per literal. A tagged answer instead of the `+` (the server
/// refused the command before its literal, RFC 3501 §7.5) ends the sending: it is returned.
fn send_command(c: &mut Conn, line: &str) -> Result<Option<Vec<u8>>, String> {
    let tag = line.split(' ').next().unwrap_or("").to_string();
    let mut rest = line;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let Some(open) = rest.find("{lit").or_else(|| rest.find("{msg")) else {
            out.extend_from_slice(rest.as_bytes());
            out.extend_from_slice(b"\r\n");
            return c.send(&out).map(|()| None);
        };
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or("unclosed literal")?;
        let inner = &rest[open + 1..close];
        let (kind, arg) = inner.split_once(':').ok_or("literal without ':'")?;
        let data = if kind.starts_with("lit") {
            unescape(arg)
        } else {
            std::fs::read(message_path(arg)).map_err(|e| format!("{arg}: {e}"))?
        };
        out.extend_from_slice(&rest.as_bytes()[..open]);
        if kind.ends_with('+') {
            out.extend_from_slice(format!("{{{}+}}\r\n", data.len()).as_bytes());
            out.extend_from_slice(&data);
        } else {
            out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
            c.send(&std::mem::take(&mut out))?;
            let l = c.line()?;
            if l.starts_with(format!("{tag} ").as_bytes()) {
                return Ok(Some(l));
            }
            if !l.starts_with(b"+") {
                return Err(format!(
                    "expected one `+` continuation for the literal, got {:?}",
                    String::from_utf8_lossy(&l)
                ));
            }
            out.extend_from_slice(&data);
        }
        rest = &rest[close + 1..];
    }
}

fn show(l: &[u8]) -> String {
    let s = String::from_utf8_lossy(l);
    let s = s.trim_end();
    if s.len() > 300 {
        format!("{}…", &s[..300])
    } else {
        s.to_string()
    }
}

/// A client line with `{?name}` replaced by the token `?name` matched earlier (a modseq the
/// server chose, say).
fn fill(line: &str, caps: &Captures) -> String {
    let mut out = line.to_string();
    for (k, v) in caps {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Plays `script` against the server on `port`; `server` picks the `[s3imap]`/`[dovecot]`
/// lines. Returns the first mismatch, described.
pub fn play(script: &Script, port: u16, server: Only) -> Result<(), String> {
    let applies = |e: &Expect| e.only == Only::Both || e.only == server;
    let mut conns = Vec::new();
    for i in 0..script.connections {
        let mut c = Conn::connect(port)?;
        if script.login {
            c.send(format!("L{i} LOGIN \"{}\" \"{PASSWORD}\"\r\n", script.user).as_bytes())?;
            loop {
                let l = c.line()?;
                if l.starts_with(format!("L{i} ").as_bytes()) {
                    if !l.starts_with(format!("L{i} OK").as_bytes()) {
                        return Err(format!("login: {}", show(&l)));
                    }
                    break;
                }
            }
        }
        conns.push(c);
    }
    let mut caps = Captures::new();
    for st in &script.steps {
        match st {
            Step::Send { conn, line, .. } => {
                send_command(&mut conns[conn - 1], &fill(line, &caps))?;
            }
            Step::Read { conn, expect } => {
                if !applies(expect) {
                    continue;
                }
                let l = conns[conn - 1]
                    .line()
                    .map_err(|e| format!("line {}: {e}", expect.line_no))?;
                if !line_matches(&expect.text, &l, &mut caps) {
                    return Err(format!(
                        "line {}: session {conn} expected\n      {}\n    got\n      {}",
                        expect.line_no,
                        expect.text,
                        show(&l)
                    ));
                }
            }
            Step::Command {
                conn,
                line,
                tag,
                expect,
                line_no,
            } => {
                let c = &mut conns[conn - 1];
                let line = &fill(line, &caps);
                let early =
                    send_command(c, line).map_err(|e| format!("line {line_no}: {line}: {e}"))?;
                let mut got: Vec<Vec<u8>> = Vec::new();
                if let Some(l) = early {
                    got.push(l);
                }
                while got
                    .last()
                    .is_none_or(|l| !l.starts_with(format!("{tag} ").as_bytes()))
                {
                    let l = c.line().map_err(|e| {
                        format!(
                            "line {line_no}: {line}: {e}; so far:\n{}",
                            got.iter().map(|l| show(l)).collect::<Vec<_>>().join("\n")
                        )
                    })?;
                    got.push(l);
                }
                let exp: Vec<&Expect> = expect.iter().filter(|e| applies(e)).collect();
                let any_more = exp.iter().any(|e| e.text.trim() == "**");
                let mut used = vec![false; got.len()];
                let mut problems = Vec::new();
                for e in exp.iter().filter(|e| e.text.trim() != "**") {
                    let tagged = e.text.split(' ').next() == Some(tag.as_str());
                    let hit = (0..got.len()).find(|&i| {
                        !used[i]
                            && (i == got.len() - 1) == tagged
                            && line_matches(&e.text, &got[i], &mut caps)
                    });
                    match hit {
                        Some(i) => used[i] = true,
                        None => problems.push(format!("missing (line {}): {}", e.line_no, e.text)),
                    }
                }
                if !any_more {
                    for (i, g) in got.iter().enumerate() {
                        if !used[i] && i != got.len() - 1 {
                            problems.push(format!("unexpected: {}", show(g)));
                        }
                    }
                }
                if !problems.is_empty() {
                    return Err(format!(
                        "line {line_no}: session {conn}: {line}\n    {}\n    the server said:\n{}",
                        problems.join("\n    "),
                        got.iter()
                            .map(|l| format!("      {}", show(l)))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
        }
    }
    for mut c in conns {
        let _ = c.send(b"Z LOGOUT\r\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(e: &str, a: &str) -> bool {
        line_matches(e, a.as_bytes(), &mut Captures::new())
    }

    #[test]
    fn matcher() {
        assert!(m(
            "* 1 FETCH (FLAGS (\\Seen \\Answered) UID 4)",
            "* 1 FETCH (UID 4 FLAGS (\\Answered \\Seen))\r\n"
        ));
        assert!(!m(
            "* 1 FETCH (FLAGS (\\Seen))",
            "* 1 FETCH (FLAGS (\\Seen \\Answered))\r\n"
        ));
        assert!(m(
            "a OK [READ-WRITE]",
            "a OK [READ-WRITE] Select completed (0.001 secs).\r\n"
        ));
        assert!(!m("a OK [READ-ONLY]", "a OK [READ-WRITE] done\r\n"));
        assert!(m("a OK", "a OK [READ-WRITE] done\r\n"));
        assert!(m("* OK [UIDVALIDITY ?]", "* OK [UIDVALIDITY 17] x\r\n"));
        assert!(m(
            "* CAPABILITY ... IDLE ...",
            "* CAPABILITY IMAP4rev1 IDLE NAMESPACE\r\n"
        ));
        assert!(!m(
            "* CAPABILITY ... CONDSTORE ...",
            "* CAPABILITY IMAP4rev1 IDLE\r\n"
        ));
        assert!(m(
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
        ));
        assert!(m(
            "* 1 FETCH (BODY[] {lit:ab\\r\\n})",
            "* 1 FETCH (BODY[] {4}\r\nab\r\n)\r\n"
        ));
        assert!(m(
            "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] ?)",
            "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {2}\r\n\r\n)\r\n"
        ));
        assert!(m(
            "* FLAGS (\\Seen \\Draft ...)",
            "* FLAGS (\\Draft $x \\Seen)\r\n"
        ));
        assert!(m(
            "* 2 FETCH (FLAGS ($Forwarded \\Seen))",
            "* 2 FETCH (FLAGS (\\Seen $Forwarded))\r\n"
        ));
        assert!(m(
            "* OK [PERMANENTFLAGS (\\* \\Seen ...)]",
            "* OK [PERMANENTFLAGS (\\Seen \\Draft \\*)] ok\r\n"
        ));
        let mut c = Captures::new();
        assert!(line_matches(
            "* OK [UIDVALIDITY ?uv]",
            b"* OK [UIDVALIDITY 5] x\r\n",
            &mut c
        ));
        assert!(!line_matches(
            "a OK [APPENDUID ?uv 1]",
            b"a OK [APPENDUID 6 1] x\r\n",
            &mut c
        ));
        assert!(line_matches(
            "a OK [APPENDUID ?uv 1]",
            b"a OK [APPENDUID 5 1] x\r\n",
            &mut c
        ));
    }
}
