//! The MIME structure of a message file, found in one streaming pass, and the byte ranges IMAP
//! `FETCH BODY[section]<partial>` needs from it.
//!
//! [`Scanner`] is fed the raw file (CRLF or bare LF, any chunking) and records for the message
//! and every part, recursively: the raw offsets of its header block and body, the same offsets
//! as they would be with every bare LF turned into CRLF (what IMAP counts), the body's line
//! count, and a bounded copy of its header block. `multipart/*` bodies are split on their
//! boundary, `message/rfc822` bodies are parsed as an embedded message. Memory is
//! O(parts + header bytes) plus one small checkpoint per [`CHECKPOINT_SPACING`] bytes of file;
//! the body itself is never held.
//!
//! The parsing rules follow Dovecot's message parser (so sizes and BODYSTRUCTURE agree with
//! Dovecot's for the same file): a boundary line matches when it starts with `--boundary`
//! (the longest matching active boundary wins), the line break before it belongs to the
//! delimiter, `--boundary--` closes the multipart, Content-* fields count only with a
//! MIME-Version or Content-Type field (or inside a multipart), and parts without a
//! Content-Type are text/plain (message/rfc822 inside multipart/digest).
//!
//! [`Part::section`] resolves IMAP part numbers, [`Part::fetch`] turns a section into a raw
//! byte range (or, for `HEADER.FIELDS`, the selected bytes), and [`Part::open`] streams a
//! range CRLF-normalised, seeking close to a `<partial>` origin without reading from the start.

use std::io::{self, Read, Seek, SeekFrom};

use memchr::{memchr, memmem};

use super::header;
use super::lex::Lexer;

/// Parts nested deeper than this are not split (a multipart or message/rfc822 there is a leaf).
pub const MAX_DEPTH: u32 = 32;
/// At most this many parts are recorded; later delimiter lines are body text.
pub const MAX_PARTS: usize = 10_000;
/// Boundaries are compared on at most this many bytes (longer ones are truncated, as Dovecot
/// does; matching is by prefix anyway).
pub const BOUNDARY_MAX: usize = 80;
/// Bytes of a line needed to decide whether it is a delimiter line.
const LINE_NEED: usize = BOUNDARY_MAX + 4;
/// Header bytes kept for a message (the root or an embedded message/rfc822).
pub const MESSAGE_HEADER_CAP: usize = 64 * 1024;
/// Header bytes kept for a MIME part header.
pub const MIME_HEADER_CAP: usize = 16 * 1024;
/// Header bytes kept for all parts together before the per-part cap drops to 1 KiB.
pub const HEADER_BUDGET: usize = 4 * 1024 * 1024;
const OVER_BUDGET_CAP: usize = 1024;
/// A CRLF checkpoint is recorded at the first line start after every this many bytes.
pub const CHECKPOINT_SPACING: u64 = 256 * 1024;

/// How a part's body is structured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Class {
    /// Not split further (text, attachments, or anything nested too deep).
    #[default]
    Leaf,
    /// `multipart/*` with a boundary: [`Part::children`] are its parts.
    Multipart,
    /// `message/rfc822` (or a part defaulted to it in a digest): [`Part::message`] is the
    /// embedded message.
    Message,
}

/// A raw byte range of the file plus the same range's positions after CRLF normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawRange {
    pub start: u64,
    pub end: u64,
    pub crlf_start: u64,
    pub crlf_end: u64,
}

impl RawRange {
    /// Length in octets as IMAP counts it (bare LF = 2).
    pub fn len(&self) -> u64 {
        self.crlf_end - self.crlf_start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of octets a `<origin.count>` partial fetch of this range returns
    /// (`count` None = to the end).
    pub fn partial_len(&self, origin: u64, count: Option<u64>) -> u64 {
        let rest = self.len().saturating_sub(origin);
        count.map_or(rest, |c| c.min(rest))
    }
}

/// A CRLF checkpoint: a line start `raw` whose normalised offset is `crlf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub raw: u64,
    pub crlf: u64,
}

/// One node of the MIME tree: the message itself, a MIME part, or an embedded message.
#[derive(Debug, Clone, Default)]
pub struct Part {
    header_start: u64,
    body_start: u64,
    body_end: u64,
    header_start_crlf: u64,
    body_start_crlf: u64,
    body_end_crlf: u64,
    body_lines: u64,
    header: Vec<u8>,
    header_truncated: bool,
    class: Class,
    text: bool,
    mime: bool,
    digest: bool,
    children: Vec<Part>,
    index: Vec<Checkpoint>,
}

/// What of a part a `BODY[...]` section asks for (RFC 3501 §6.4.5). Field names compare
/// case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec<'a> {
    /// No text specifier: the whole message (empty path) or the part's body.
    Body,
    Header,
    HeaderFields(&'a [&'a [u8]]),
    HeaderFieldsNot(&'a [&'a [u8]]),
    Text,
    Mime,
}

/// Where the bytes of a section come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionData {
    /// Stream this range of the file with [`Part::open`] (CRLF-normalised).
    Range(RawRange),
    /// These bytes, already CRLF-terminated (HEADER.FIELDS and .NOT).
    Bytes(Vec<u8>),
}

impl SectionData {
    /// Length in octets as sent to the client.
    pub fn len(&self) -> u64 {
        match self {
            SectionData::Range(r) => r.len(),
            SectionData::Bytes(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Part {
    /// The captured header block (raw line endings, no final blank line), possibly truncated
    /// (see [`Part::header_truncated`]). For MIME parts it holds the part's MIME header.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// True when the header block was longer than the capture cap (the copy then ends at the
    /// last whole line that fit).
    pub fn header_truncated(&self) -> bool {
        self.header_truncated
    }

    /// The header block including the blank line that ends it.
    pub fn header_range(&self) -> RawRange {
        RawRange {
            start: self.header_start,
            end: self.body_start,
            crlf_start: self.header_start_crlf,
            crlf_end: self.body_start_crlf,
        }
    }

    /// The body (for a MIME part: up to, not including, the line break before the next
    /// delimiter).
    pub fn body_range(&self) -> RawRange {
        RawRange {
            start: self.body_start,
            end: self.body_end,
            crlf_start: self.body_start_crlf,
            crlf_end: self.body_end_crlf,
        }
    }

    /// Header and body together (for the root: the whole message).
    pub fn full_range(&self) -> RawRange {
        RawRange {
            start: self.header_start,
            end: self.body_end,
            crlf_start: self.header_start_crlf,
            crlf_end: self.body_end_crlf,
        }
    }

    /// Header size in octets, CRLF-normalised.
    pub fn header_size(&self) -> u64 {
        self.body_start_crlf - self.header_start_crlf
    }

    /// Body size in octets, CRLF-normalised (BODYSTRUCTURE's body-fld-octets).
    pub fn body_size(&self) -> u64 {
        self.body_end_crlf - self.body_start_crlf
    }

    /// Lines in the body (LF count; BODYSTRUCTURE's body-fld-lines).
    pub fn body_lines(&self) -> u64 {
        self.body_lines
    }

    pub fn class(&self) -> Class {
        self.class
    }

    pub fn is_multipart(&self) -> bool {
        self.class == Class::Multipart
    }

    pub fn is_message(&self) -> bool {
        self.class == Class::Message
    }

    /// Dovecot's TEXT flag: a `text` type, or no usable Content-Type (text/plain by default).
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// Whether the Content-* fields of this part apply (MIME-Version or Content-Type present,
    /// or the part is inside a multipart). Without it every Content-* field is ignored.
    pub fn is_mime(&self) -> bool {
        self.mime
    }

    /// `multipart/digest` (children without Content-Type are message/rfc822).
    pub fn is_digest(&self) -> bool {
        self.digest
    }

    /// The parts of a multipart (empty otherwise).
    pub fn children(&self) -> &[Part] {
        if self.class == Class::Multipart {
            &self.children
        } else {
            &[]
        }
    }

    /// The embedded message of a message/rfc822 part.
    pub fn message(&self) -> Option<&Part> {
        if self.class == Class::Message {
            self.children.first()
        } else {
            None
        }
    }

    /// The CRLF checkpoints of the file (held by the root part only).
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.index
    }

    /// The part an IMAP part number names (`[]` = the message itself), RFC 3501 §6.4.5, as
    /// Dovecot resolves it: numbers index the parts of a multipart; a message/rfc822 part's
    /// numbers continue in its embedded message; a non-multipart message or part has a part 1,
    /// itself, once (`1` of a text/plain message is its body, `1.1` does not exist; `2.1` of a
    /// text/plain part 2 is part 2, `2.1.1` does not exist). Call on the root.
    pub fn section(&self, path: &[u32]) -> Option<&Part> {
        let mut cur = self;
        let mut in_message = true;
        let mut self_step = false;
        for &n in path {
            if n == 0 {
                return None;
            }
            if !in_message && cur.class == Class::Message {
                cur = cur.children.first()?;
                self_step = false;
            }
            if cur.class == Class::Multipart {
                cur = cur.children.get(n as usize - 1)?;
                self_step = false;
            } else if n == 1 && !self_step {
                self_step = true;
            } else {
                return None;
            }
            in_message = false;
        }
        Some(cur)
    }

    /// The data of `BODY[path.spec]`. Call on the root. None when the section does not exist
    /// (a part number out of range, MIME without a part number, HEADER/TEXT of a part that is
    /// not message/rfc822).
    pub fn fetch(&self, path: &[u32], spec: Spec<'_>) -> Option<SectionData> {
        let part = self.section(path)?;
        let message = if path.is_empty() {
            Some(self)
        } else {
            part.message()
        };
        Some(match spec {
            Spec::Body if path.is_empty() => SectionData::Range(self.full_range()),
            Spec::Body => SectionData::Range(part.body_range()),
            Spec::Mime if path.is_empty() => return None,
            Spec::Mime => SectionData::Range(part.header_range()),
            Spec::Header => SectionData::Range(message?.header_range()),
            Spec::Text => SectionData::Range(message?.body_range()),
            Spec::HeaderFields(names) => {
                SectionData::Bytes(header_fields(&message?.header, names, false))
            }
            Spec::HeaderFieldsNot(names) => {
                SectionData::Bytes(header_fields(&message?.header, names, true))
            }
        })
    }

    /// Where to start reading so that the CRLF-normalised stream of `range` is at `origin`:
    /// `(raw offset, normalised bytes to drop first, raw bytes known to hold no bare LF)`.
    fn seek_point(&self, range: &RawRange, origin: u64) -> (u64, u64, u64) {
        let target = range.crlf_start.saturating_add(origin).min(range.crlf_end);
        let mut best = Checkpoint {
            raw: range.start,
            crlf: range.crlf_start,
        };
        let mut next = Checkpoint {
            raw: range.end,
            crlf: range.crlf_end,
        };
        let i = self.index.partition_point(|c| c.raw <= range.start);
        for c in &self.index[i..] {
            if c.raw >= range.end {
                break;
            }
            if c.crlf <= target {
                best = *c;
            } else {
                next = *c;
                break;
            }
        }
        let delta = target - best.crlf;
        if next.raw - best.raw == next.crlf - best.crlf {
            // No bare LF between the two known points: raw and normalised offsets move together.
            (best.raw + delta, 0, next.raw - best.raw - delta)
        } else {
            (best.raw, delta, 0)
        }
    }

    /// Opens `range` of the message file for streaming, CRLF-normalised, starting at the
    /// normalised `origin` and yielding at most `count` octets (a `<origin.count>` partial).
    /// Call on the root. Seeks near the origin using the CRLF checkpoints, so a partial fetch
    /// reads at most [`CHECKPOINT_SPACING`] bytes more than it returns (none in CRLF files).
    pub fn open<R: Read + Seek>(
        &self,
        mut file: R,
        range: &RawRange,
        origin: u64,
        count: Option<u64>,
    ) -> io::Result<CrlfReader<R>> {
        let want = range.partial_len(origin, count);
        let (raw, skip, passthrough) = self.seek_point(range, origin);
        file.seek(SeekFrom::Start(raw))?;
        let mut r = CrlfReader::new(file);
        r.raw_left = range.end.saturating_sub(raw);
        r.skip = skip;
        r.out_left = want;
        r.passthrough = passthrough;
        Ok(r)
    }
}

/// The selected (or, with `not`, the other) fields of a header block, as written (folded
/// lines kept), each line CRLF-terminated, followed by the empty line IMAP wants.
pub fn header_fields(block: &[u8], names: &[&[u8]], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = block;
    while !rest.is_empty() {
        let mut end = 0;
        loop {
            match memchr(b'\n', &rest[end..]) {
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
        let first_line = &field[..memchr(b'\n', field).unwrap_or(field.len())];
        let name = match memchr(b':', first_line) {
            Some(c) => &first_line[..c],
            None => first_line,
        };
        let name = trim_ws(name);
        if name.is_empty() {
            continue;
        }
        let hit = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if hit != not {
            push_crlf(&mut out, field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn trim_ws(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r'))
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t' | b'\r'))
        .map_or(s, |e| e + 1);
    &b[s..e.max(s)]
}

/// Appends `text` with every line ending (LF, CRLF, or none at the end) as CRLF.
fn push_crlf(out: &mut Vec<u8>, text: &[u8]) {
    for line in text.split_inclusive(|&b| b == b'\n') {
        let l = line.strip_suffix(b"\n").unwrap_or(line);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
}

/// Streams bytes converting every bare LF to CRLF. Built by [`Part::open`] for a range (with
/// a start offset and a length limit), or by [`CrlfReader::new`] for a whole stream.
pub struct CrlfReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    raw_left: u64,
    passthrough: u64,
    skip: u64,
    out_left: u64,
    prev_cr: bool,
    pending_lf: bool,
}

impl<R: Read> CrlfReader<R> {
    /// Converts all of `inner`.
    pub fn new(inner: R) -> Self {
        CrlfReader {
            inner,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            raw_left: u64::MAX,
            passthrough: 0,
            skip: 0,
            out_left: u64::MAX,
            prev_cr: false,
            pending_lf: false,
        }
    }

    /// Octets still to come (`u64::MAX` for a reader made with [`CrlfReader::new`]).
    pub fn remaining(&self) -> u64 {
        self.out_left
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Drops up to `skip` bytes of `data`, then copies what fits into `out[*n..]` (at most
/// `out_left`). Returns how many bytes of `data` were used.
fn put(skip: &mut u64, out_left: &mut u64, out: &mut [u8], n: &mut usize, data: &[u8]) -> usize {
    let dropped = (*skip).min(data.len() as u64) as usize;
    *skip -= dropped as u64;
    let room = ((out.len() - *n) as u64).min(*out_left) as usize;
    let c = (data.len() - dropped).min(room);
    out[*n..*n + c].copy_from_slice(&data[dropped..dropped + c]);
    *n += c;
    *out_left -= c as u64;
    dropped + c
}

impl<R: Read> Read for CrlfReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() && self.out_left > 0 {
            if self.pending_lf {
                if put(&mut self.skip, &mut self.out_left, out, &mut n, b"\n") == 1 {
                    self.pending_lf = false;
                }
                continue;
            }
            if self.pos == self.len {
                if self.raw_left == 0 || n > 0 {
                    break; // hand back what we have before reading the source again
                }
                // Each raw byte gives at least one output byte: never read more than needed.
                let want = (self.buf.len() as u64)
                    .min(self.raw_left)
                    .min(self.out_left.saturating_add(self.skip))
                    as usize;
                let got = loop {
                    match self.inner.read(&mut self.buf[..want]) {
                        Ok(g) => break g,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                if got == 0 {
                    self.raw_left = 0;
                    break;
                }
                self.raw_left -= got as u64;
                self.pos = 0;
                self.len = got;
            }
            let avail = &self.buf[self.pos..self.len];
            let run = if self.passthrough > 0 {
                (self.passthrough.min(avail.len() as u64)) as usize
            } else {
                memchr(b'\n', avail).unwrap_or(avail.len())
            };
            if run > 0 {
                let used = put(
                    &mut self.skip,
                    &mut self.out_left,
                    out,
                    &mut n,
                    &avail[..run],
                );
                if used > 0 {
                    self.prev_cr = avail[used - 1] == b'\r';
                }
                self.pos += used;
                self.passthrough = self.passthrough.saturating_sub(used as u64);
                continue;
            }
            // At an LF outside the pass-through region.
            let lf: &[u8] = if self.prev_cr { b"\n" } else { b"\r" };
            if put(&mut self.skip, &mut self.out_left, out, &mut n, lf) == 1 {
                self.pos += 1;
                self.pending_lf = !self.prev_cr;
                self.prev_cr = false;
            }
        }
        Ok(n)
    }
}

/// Receives what the scanner finds while it runs (used by SEARCH to decode text parts on
/// the fly; the structure scan itself needs none).
pub(crate) trait Sink {
    /// The header block of part `id` is complete (`part` has its header, class and flags).
    fn header_done(&mut self, _id: usize, _part: &Part) {}
    /// Body bytes of part `id` (for a MIME part this may include the line break that belongs
    /// to the next delimiter).
    fn body(&mut self, _id: usize, _data: &[u8]) {}
}

struct NoSink;
impl Sink for NoSink {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    NewPart(usize),
    Epilogue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Body,
    SkipLine(After),
}

struct Node {
    part: Part,
    depth: u32,
    kids: Vec<usize>,
    lf_body_start: u64,
    message_header: bool,
    in_digest: bool,
    boundary: Option<Vec<u8>>,
}

struct Bound {
    text: Vec<u8>,
    node: usize,
}

enum Line {
    NeedMore,
    No,
    Yes(usize, bool),
}

struct Counter {
    on: bool,
    upto: u64,
    lf: u64,
    bare: u64,
    prev_cr: bool,
    next_cp: u64,
    cps: Vec<Checkpoint>,
}

impl Counter {
    fn advance(&mut self, data: &[u8], base: u64, to: u64) {
        if !self.on || to <= self.upto {
            return;
        }
        let s = (self.upto - base) as usize;
        let e = ((to - base) as usize).min(data.len());
        if e <= s {
            return;
        }
        let seg = &data[s..e];
        for p in memchr::memchr_iter(b'\n', seg) {
            self.lf += 1;
            let cr = if p > 0 {
                seg[p - 1] == b'\r'
            } else {
                self.prev_cr
            };
            if !cr {
                self.bare += 1;
            }
            let abs = self.upto + p as u64 + 1;
            if abs >= self.next_cp {
                self.cps.push(Checkpoint {
                    raw: abs,
                    crlf: abs + self.bare,
                });
                self.next_cp = abs + CHECKPOINT_SPACING;
            }
        }
        self.prev_cr = seg[seg.len() - 1] == b'\r';
        self.upto = base + e as u64;
    }
}

/// The streaming structure scanner. Feed the whole file, then [`Scanner::finish`].
pub struct Scanner {
    nodes: Vec<Node>,
    stack: Vec<usize>,
    bounds: Vec<Bound>,
    state: State,
    /// Absolute offset of the next byte to be fed.
    pos: u64,
    at_line_start: bool,
    carry: Vec<u8>,
    carry_at: u64,
    prev_cr: bool,
    last_break_crlf: bool,
    hdr_prev_break: u8,
    counter: Counter,
    budget_used: usize,
    eof: bool,
    finder: memmem::Finder<'static>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Self {
        Self::with_sizes(true)
    }

    /// `sizes` false skips the line and size counting (for SEARCH, which needs none).
    pub(crate) fn with_sizes(sizes: bool) -> Self {
        let root = Node {
            part: Part::default(),
            depth: 0,
            kids: Vec::new(),
            lf_body_start: 0,
            message_header: true,
            in_digest: false,
            boundary: None,
        };
        Scanner {
            nodes: vec![root],
            stack: vec![0],
            bounds: Vec::new(),
            state: State::Header,
            pos: 0,
            at_line_start: true,
            carry: Vec::new(),
            carry_at: 0,
            prev_cr: false,
            last_break_crlf: false,
            hdr_prev_break: 0,
            counter: Counter {
                on: sizes,
                upto: 0,
                lf: 0,
                bare: 0,
                prev_cr: false,
                next_cp: CHECKPOINT_SPACING,
                cps: Vec::new(),
            },
            budget_used: 0,
            eof: false,
            finder: memmem::Finder::new(b"\n--").into_owned(),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.feed_with(chunk, &mut NoSink);
    }

    pub(crate) fn feed_with<S: Sink>(&mut self, chunk: &[u8], sink: &mut S) {
        let mut k = 0;
        while k < chunk.len() {
            if !self.carry.is_empty() {
                let m = LINE_NEED.min(chunk.len() - k);
                let mut tmp = std::mem::take(&mut self.carry);
                let at = self.carry_at;
                tmp.extend_from_slice(&chunk[k..k + m]);
                self.prev_cr = false; // a carry always starts a line
                self.process(&tmp, at, sink);
                self.counter.advance(&tmp, at, at + tmp.len() as u64);
                k += m;
                if self.carry.is_empty() {
                    tmp.clear();
                    self.carry = tmp;
                    self.carry.clear();
                }
            } else {
                let base = self.pos + k as u64;
                let data = &chunk[k..];
                self.process(data, base, sink);
                self.counter.advance(data, base, base + data.len() as u64);
                k = chunk.len();
            }
        }
        self.pos += chunk.len() as u64;
    }

    /// Ends the scan at end of file and returns the message's root part.
    pub fn finish(self) -> Part {
        self.finish_with(&mut NoSink)
    }

    pub(crate) fn finish_with<S: Sink>(mut self, sink: &mut S) -> Part {
        self.eof = true;
        if !self.carry.is_empty() {
            let tmp = std::mem::take(&mut self.carry);
            let at = self.carry_at;
            self.prev_cr = false;
            self.process(&tmp, at, sink);
            self.counter.advance(&tmp, at, at + tmp.len() as u64);
        }
        let end = self.pos;
        let (crlf, lf) = (end + self.counter.bare, self.counter.lf);
        while let Some(id) = self.stack.pop() {
            if self.state == State::Header {
                // Only the innermost part can be in its header: it runs to the end of the
                // file and the body is empty.
                let n = &mut self.nodes[id];
                n.part.body_start = end;
                n.part.body_start_crlf = crlf;
                n.lf_body_start = lf;
                self.finalize_header(id);
                sink.header_done(id, &self.nodes[id].part);
                self.state = State::Body;
            }
            self.close(id, end, crlf, lf);
        }
        let mut nodes: Vec<Option<Node>> = self.nodes.into_iter().map(Some).collect();
        let mut root = build(&mut nodes, 0);
        root.index = self.counter.cps;
        root
    }

    fn close(&mut self, id: usize, end: u64, crlf: u64, lf: u64) {
        let node = &mut self.nodes[id];
        let p = &mut node.part;
        if end > p.body_start {
            p.body_end = end;
            p.body_end_crlf = crlf.max(p.body_start_crlf);
            p.body_lines = lf.saturating_sub(node.lf_body_start);
        } else {
            p.body_end = p.body_start;
            p.body_end_crlf = p.body_start_crlf;
            p.body_lines = 0;
        }
    }

    fn mark(&mut self, data: &[u8], base: u64, at: u64) -> (u64, u64) {
        self.counter.advance(data, base, at);
        (at + self.counter.bare, self.counter.lf)
    }

    fn top(&self) -> usize {
        *self.stack.last().unwrap_or(&0)
    }

    fn process<S: Sink>(&mut self, data: &[u8], base: u64, sink: &mut S) {
        let mut i = 0;
        while i < data.len() {
            i = match self.state {
                State::Header => self.header_step(data, base, i, sink),
                State::Body => self.body_step(data, base, i, sink),
                State::SkipLine(after) => match memchr(b'\n', &data[i..]) {
                    Some(k) => {
                        let next = i + k + 1;
                        let crlf = if i + k > 0 {
                            data[i + k - 1] == b'\r'
                        } else {
                            self.prev_cr
                        };
                        self.last_break_crlf = crlf;
                        self.at_line_start = true;
                        self.after_boundary_line(after, data, base, next, sink);
                        next
                    }
                    None => data.len(),
                },
            };
        }
        if let Some(&b) = data.last() {
            self.prev_cr = b == b'\r';
        }
    }

    fn stash(&mut self, data: &[u8], base: u64, i: usize) -> usize {
        self.at_line_start = true;
        if i < data.len() {
            self.carry.clear();
            self.carry.extend_from_slice(&data[i..]);
            self.carry_at = base + i as u64;
        }
        data.len()
    }

    fn check_line(&self, data: &[u8], i: usize) -> Line {
        let avail = &data[i..];
        if avail.len() < 2 {
            return if self.eof { Line::No } else { Line::NeedMore };
        }
        if avail[0] != b'-' || avail[1] != b'-' {
            return Line::No;
        }
        let rest = &avail[2..];
        let lf = memchr(b'\n', rest);
        if lf.is_none() && avail.len() < LINE_NEED && !self.eof {
            return Line::NeedMore;
        }
        let find = match lf {
            Some(p) => {
                let mut f = p;
                if f > 0 && rest[f - 1] == b'\r' {
                    f -= 1;
                }
                if f > 2 && rest[f - 1] == b'-' && rest[f - 2] == b'-' {
                    f -= 2;
                }
                f
            }
            None => rest.len().min(LINE_NEED),
        };
        let mut best: Option<usize> = None;
        for (bi, b) in self.bounds.iter().enumerate().rev() {
            let l = b.text.len();
            if l <= find
                && rest.starts_with(&b.text)
                && best.is_none_or(|x| self.bounds[x].text.len() < l)
            {
                best = Some(bi);
                if l == find {
                    break;
                }
            }
        }
        match best {
            None => Line::No,
            Some(bi) => {
                let l = self.bounds[bi].text.len();
                let close = rest.len() >= l + 2 && &rest[l..l + 2] == b"--";
                if !close && self.nodes.len() >= MAX_PARTS {
                    Line::No
                } else {
                    Line::Yes(bi, close)
                }
            }
        }
    }

    fn header_step<S: Sink>(
        &mut self,
        data: &[u8],
        base: u64,
        mut i: usize,
        sink: &mut S,
    ) -> usize {
        if self.at_line_start {
            let c = data[i];
            if c == b'\n' || (c == b'\r' && data.get(i + 1) == Some(&b'\n')) {
                let n = if c == b'\n' { 1 } else { 2 };
                self.at_line_start = true;
                self.last_break_crlf = n == 2;
                let body = base + (i + n) as u64;
                self.header_done(data, base, body, sink);
                return i + n;
            }
            if c == b'\r' && i + 1 == data.len() && !self.eof {
                return self.stash(data, base, i);
            }
            if c == b'-' && !self.bounds.is_empty() {
                match self.check_line(data, i) {
                    Line::NeedMore => return self.stash(data, base, i),
                    Line::Yes(b, close) => {
                        self.boundary(b, close, data, base, i, sink);
                        return i;
                    }
                    Line::No => {}
                }
            }
            self.at_line_start = false;
        }
        match memchr(b'\n', &data[i..]) {
            Some(k) => {
                let end = i + k + 1;
                self.capture(&data[i..end]);
                let crlf = if i + k > 0 {
                    data[i + k - 1] == b'\r'
                } else {
                    self.prev_cr
                };
                self.hdr_prev_break = if crlf { 2 } else { 1 };
                self.last_break_crlf = crlf;
                self.at_line_start = true;
                end
            }
            None => {
                self.capture(&data[i..]);
                i = data.len();
                i
            }
        }
    }

    fn body_step<S: Sink>(&mut self, data: &[u8], base: u64, i: usize, sink: &mut S) -> usize {
        let top = self.top();
        if self.bounds.is_empty() {
            sink.body(top, &data[i..]);
            return data.len();
        }
        let emit_from = i;
        let mut j = i;
        loop {
            if self.at_line_start {
                match self.check_line(data, j) {
                    Line::NeedMore => {
                        sink.body(top, &data[emit_from..j]);
                        return self.stash(data, base, j);
                    }
                    Line::Yes(b, close) => {
                        sink.body(top, &data[emit_from..j]);
                        self.boundary(b, close, data, base, j, sink);
                        return j;
                    }
                    Line::No => self.at_line_start = false,
                }
            }
            match self.finder.find(&data[j..]) {
                Some(k) => {
                    let lf = j + k;
                    self.last_break_crlf = if lf > 0 {
                        data[lf - 1] == b'\r'
                    } else {
                        self.prev_cr
                    };
                    j = lf + 1;
                    self.at_line_start = true;
                }
                None => {
                    let n = data.len();
                    if n > j && data[n - 1] == b'\n' {
                        self.last_break_crlf = if n >= 2 {
                            data[n - 2] == b'\r'
                        } else {
                            self.prev_cr
                        };
                        self.at_line_start = true;
                    } else if n >= j + 2 && data[n - 2] == b'\n' && data[n - 1] == b'-' {
                        self.last_break_crlf = if n >= 3 {
                            data[n - 3] == b'\r'
                        } else {
                            self.prev_cr
                        };
                        sink.body(top, &data[emit_from..n - 1]);
                        return self.stash(data, base, n - 1);
                    }
                    sink.body(top, &data[emit_from..n]);
                    return n;
                }
            }
        }
    }

    /// A delimiter line of `bounds[b]` starts at `data[i]`.
    fn boundary<S: Sink>(
        &mut self,
        b: usize,
        close: bool,
        data: &[u8],
        base: u64,
        i: usize,
        sink: &mut S,
    ) {
        let at = base + i as u64;
        let (crlf_at, lf_at) = self.mark(data, base, at);
        let owner = self.bounds[b].node;
        let brk: u64 = if self.last_break_crlf { 2 } else { 1 };
        while let Some(&id) = self.stack.last() {
            if id == owner {
                break;
            }
            self.stack.pop();
            if self.state == State::Header {
                // The header is cut short by the delimiter; its last line break belongs to it.
                let hb = self.hdr_prev_break as u64;
                let (end, crlf, lf) = if hb > 0 {
                    (at - hb, crlf_at.saturating_sub(2), lf_at.saturating_sub(1))
                } else {
                    (at, crlf_at, lf_at)
                };
                let node = &mut self.nodes[id];
                node.part.body_start = end;
                node.part.body_start_crlf = crlf;
                node.lf_body_start = lf;
                self.finalize_header(id);
                sink.header_done(id, &self.nodes[id].part);
                self.state = State::Body;
                self.close(id, end, crlf, lf);
            } else if at > self.nodes[id].part.body_start {
                self.close(
                    id,
                    at - brk,
                    crlf_at.saturating_sub(2),
                    lf_at.saturating_sub(1),
                );
            } else {
                self.close(id, at, crlf_at, lf_at);
            }
        }
        if self.stack.is_empty() {
            self.stack.push(owner);
        }
        if close {
            self.bounds.truncate(b);
        } else {
            self.bounds.truncate(b + 1);
        }
        self.at_line_start = false;
        self.state = State::SkipLine(if close {
            After::Epilogue
        } else {
            After::NewPart(owner)
        });
    }

    fn after_boundary_line<S: Sink>(
        &mut self,
        after: After,
        data: &[u8],
        base: u64,
        next: usize,
        _sink: &mut S,
    ) {
        match after {
            After::Epilogue => self.state = State::Body,
            After::NewPart(m) => {
                let at = base + next as u64;
                let (crlf, _) = self.mark(data, base, at);
                let id = self.new_node(m, at, crlf, false);
                self.nodes[m].kids.push(id);
                self.stack.push(id);
                self.state = State::Header;
                self.hdr_prev_break = 0;
            }
        }
    }

    fn new_node(&mut self, parent: usize, at: u64, crlf: u64, message_header: bool) -> usize {
        let p = &self.nodes[parent];
        let node = Node {
            part: Part {
                header_start: at,
                header_start_crlf: crlf,
                body_start: at,
                body_start_crlf: crlf,
                body_end: at,
                body_end_crlf: crlf,
                mime: !message_header,
                ..Part::default()
            },
            depth: p.depth + 1,
            kids: Vec::new(),
            lf_body_start: 0,
            message_header,
            in_digest: p.part.digest && p.part.class == Class::Multipart,
            boundary: None,
        };
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn capture(&mut self, bytes: &[u8]) {
        let id = self.top();
        let over = self.budget_used >= HEADER_BUDGET;
        let node = &mut self.nodes[id];
        let cap = if over {
            OVER_BUDGET_CAP
        } else if node.message_header {
            MESSAGE_HEADER_CAP
        } else {
            MIME_HEADER_CAP
        };
        let h = &mut node.part.header;
        if h.len() >= cap {
            node.part.header_truncated = true;
            return;
        }
        let take = bytes.len().min(cap - h.len());
        if take < bytes.len() {
            node.part.header_truncated = true;
        }
        h.extend_from_slice(&bytes[..take]);
        self.budget_used += take;
    }

    /// The blank line ending the current header was found; the body starts at `body`.
    fn header_done<S: Sink>(&mut self, data: &[u8], base: u64, body: u64, sink: &mut S) {
        let (crlf, lf) = self.mark(data, base, body);
        let id = self.top();
        {
            let node = &mut self.nodes[id];
            node.part.body_start = body;
            node.part.body_start_crlf = crlf;
            node.part.body_end = body;
            node.part.body_end_crlf = crlf;
            node.lf_body_start = lf;
        }
        self.finalize_header(id);
        sink.header_done(id, &self.nodes[id].part);
        self.state = State::Body;
        let depth = self.nodes[id].depth;
        match self.nodes[id].part.class {
            Class::Multipart => {
                if let Some(text) = self.nodes[id].boundary.take() {
                    self.bounds.push(Bound { text, node: id });
                }
            }
            Class::Message => {
                if depth < MAX_DEPTH && self.nodes.len() < MAX_PARTS {
                    let child = self.new_node(id, body, crlf, true);
                    self.nodes[id].kids.push(child);
                    self.stack.push(child);
                    self.state = State::Header;
                    self.hdr_prev_break = 0;
                } else {
                    self.nodes[id].part.class = Class::Leaf;
                }
            }
            Class::Leaf => {}
        }
    }

    /// Classifies a part from its header block (Dovecot's rules, see the module docs).
    fn finalize_header(&mut self, id: usize) {
        let node = &mut self.nodes[id];
        let part = &mut node.part;
        if part.header_truncated {
            match part.header.iter().rposition(|&b| b == b'\n') {
                Some(p) => part.header.truncate(p + 1),
                None => part.header.clear(),
            }
        }
        let mut mime = part.mime;
        let mut ctype: Option<Vec<u8>> = None;
        for f in header::fields(&part.header) {
            if f.is("mime-version") {
                mime = true;
            } else if f.is("content-type") && ctype.is_none() {
                mime = true;
                ctype = Some(f.value.into_owned());
            }
        }
        let mut class = Class::Leaf;
        let mut text = false;
        let mut digest = false;
        let mut boundary = None;
        if let Some(v) = &ctype {
            let mut lx = Lexer::new(v);
            let mut t = Vec::new();
            let r = lx.content_type(&mut t);
            if t.eq_ignore_ascii_case(b"message/rfc822") {
                class = Class::Message;
            } else if t.len() >= 4
                && t[..4].eq_ignore_ascii_case(b"text")
                && (t.len() == 4 || t[4] == b'/')
            {
                text = true;
            } else if t.len() >= 10 && t[..10].eq_ignore_ascii_case(b"multipart/") {
                class = Class::Multipart;
                digest = t[10..].eq_ignore_ascii_case(b"digest");
                if r.is_ok() {
                    for (k, v) in lx.params() {
                        if k.eq_ignore_ascii_case(b"boundary") {
                            let mut v = v;
                            v.truncate(BOUNDARY_MAX);
                            boundary = Some(v);
                            break;
                        }
                    }
                }
            }
        }
        if !mime {
            class = Class::Leaf;
            text = false;
            digest = false;
            boundary = None;
        }
        if ctype.is_none() || !mime {
            if node.in_digest {
                class = Class::Message;
            } else {
                text = true;
            }
        }
        if class == Class::Multipart && node.depth >= MAX_DEPTH {
            // Too deep: the body is one opaque leaf.
            class = Class::Leaf;
            digest = false;
            boundary = None;
        }
        // A multipart without a boundary stays a multipart with no parts (Dovecot reports
        // one empty text/plain part for it).
        part.class = class;
        part.text = text;
        part.mime = mime;
        part.digest = digest;
        node.boundary = boundary;
    }
}

fn build(nodes: &mut [Option<Node>], id: usize) -> Part {
    let Some(node) = nodes[id].take() else {
        return Part::default();
    };
    let mut part = node.part;
    part.children = node.kids.iter().map(|&k| build(nodes, k)).collect();
    if part.class == Class::Message && part.children.is_empty() {
        part.class = Class::Leaf;
    }
    part
}

/// Scans a whole message from a reader (64 KiB at a time).
pub fn scan<R: Read>(mut r: R) -> io::Result<Part> {
    let mut s = Scanner::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.feed(&buf[..n]);
    }
    Ok(s.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_chunked(msg: &[u8], chunk: usize) -> Part {
        let mut s = Scanner::new();
        for c in msg.chunks(chunk.max(1)) {
            s.feed(c);
        }
        s.finish()
    }

    const MIXED: &[u8] = b"From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\npreamble\r\n--xyz\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n--xyz  \r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--xyz--\r\nepilogue\r\n";

    #[test]
    fn splits_a_multipart() {
        let root = scan_chunked(MIXED, 1 << 20);
        assert!(root.is_multipart());
        assert_eq!(root.children().len(), 2);
        let p1 = &root.children()[0];
        let r = p1.body_range();
        assert_eq!(&MIXED[r.start as usize..r.end as usize], b"hello\r\nworld");
        assert_eq!(p1.body_size(), 12);
        assert_eq!(p1.body_lines(), 1);
        assert!(p1.is_text());
        let p2 = &root.children()[1];
        let r = p2.body_range();
        assert_eq!(&MIXED[r.start as usize..r.end as usize], b"AAAA");
        let h = p2.header_range();
        assert!(MIXED[h.start as usize..h.end as usize].starts_with(b"Content-Type: app"));
        assert!(MIXED[h.start as usize..h.end as usize].ends_with(b"base64\r\n\r\n"));
        assert_eq!(root.body_range().end, MIXED.len() as u64);
    }

    #[test]
    fn every_chunking_gives_the_same_structure() {
        let whole = format!("{:?}", scan_chunked(MIXED, 1 << 20));
        for n in 1..40 {
            assert_eq!(format!("{:?}", scan_chunked(MIXED, n)), whole, "chunk {n}");
        }
    }

    #[test]
    fn bare_lf_counts_as_crlf() {
        let lf: Vec<u8> = MIXED
            .iter()
            .copied()
            .filter(|&b| b != b'\r')
            .collect::<Vec<_>>();
        let a = scan_chunked(MIXED, 7);
        let b = scan_chunked(&lf, 7);
        assert_eq!(a.full_range().len(), b.full_range().len());
        assert_eq!(b.full_range().end, lf.len() as u64);
        for (x, y) in a.children().iter().zip(b.children()) {
            assert_eq!(x.body_size(), y.body_size());
            assert_eq!(x.body_lines(), y.body_lines());
            assert_eq!(x.header_size(), y.header_size());
        }
    }

    #[test]
    fn sections() {
        let root = scan_chunked(MIXED, 5);
        assert!(root.section(&[3]).is_none());
        assert!(root.section(&[0]).is_none());
        assert!(std::ptr::eq(
            root.section(&[2]).unwrap(),
            &root.children()[1]
        ));
        assert!(root.section(&[1, 1]).is_some()); // part 1 of a leaf part is itself
        assert!(root.section(&[1, 1, 1]).is_none()); // once
        assert!(root.fetch(&[1], Spec::Header).is_none());
        assert!(root.fetch(&[], Spec::Mime).is_none());
        let Some(SectionData::Bytes(b)) = root.fetch(&[], Spec::HeaderFields(&[b"FROM"])) else {
            panic!()
        };
        assert_eq!(b, b"From: a@b\r\n\r\n");
    }

    #[test]
    fn partial_reads_seek() {
        let mut msg = b"Subject: x\n\n".to_vec();
        for i in 0..100_000 {
            msg.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let root = scan_chunked(&msg, 4096);
        assert!(root.checkpoints().len() > 2);
        let norm: Vec<u8> = msg
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        let range = root.full_range();
        assert_eq!(range.len(), norm.len() as u64);
        for &(o, c) in &[
            (0u64, 1000u64),
            (700_000, 33),
            (norm.len() as u64 - 5, 100),
            (12, 1),
        ] {
            let mut r = root
                .open(io::Cursor::new(&msg), &range, o, Some(c))
                .unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            let e = ((o + c) as usize).min(norm.len());
            assert_eq!(out, &norm[o as usize..e], "origin {o}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 1u64;
        let alphabet =
            b"--xyz\r\n:;=\" Content-Type: multipart/mixed; boundary=x message/rfc822 \n\n";
        for round in 0..3000 {
            let len = (seed % 300) as usize;
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                v.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let root = scan_chunked(&v, 1 + round % 13);
            let whole = scan_chunked(&v, 1 << 20);
            assert_eq!(format!("{root:?}"), format!("{whole:?}"));
            let r = root.full_range();
            assert!(r.end <= v.len() as u64);
            let _ = root.fetch(&[1, 1], Spec::Text);
        }
    }
}
