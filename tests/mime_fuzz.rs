//! Garbage and mutated messages through the scanner, section fetches, ENVELOPE /
//! BODYSTRUCTURE and search: nothing panics, and the recorded offsets stay consistent with
//! the file (CRLF-normalised positions, streamed lengths, partial fetches) whatever the
//! chunking.

use std::io::{Cursor, Read};
use std::path::Path;

use s3imap::mail::envelope::{bodystructure, envelope};
use s3imap::mail::mime::{Part, RawRange, Scanner, SectionData, Spec};
use s3imap::mail::search::{body_contains, header_contains, parse_date, text_contains};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn samples() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mail");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"--",
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b"--b--\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"=?utf-8?b?w6k=?=",
        b"\"",
        b"(",
        b"\xff\xc3",
        b"\0",
    ];
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 => {
                let p = PIECES[rng.below(PIECES.len())];
                v.splice(at..at, p.iter().copied());
            }
            1 if at < v.len() => {
                let n = rng.below(40).min(v.len() - at);
                v.drain(at..at + n);
            }
            2 if at < v.len() => v[at] = rng.next() as u8,
            _ => v.truncate(at),
        }
    }
    v
}

/// norm[i] = CRLF-normalised offset of raw offset i.
fn norm_offsets(file: &[u8]) -> Vec<u64> {
    let mut out = Vec::with_capacity(file.len() + 1);
    let mut n = 0u64;
    for i in 0..file.len() {
        out.push(n);
        n += 1;
        if file[i] == b'\n' && (i == 0 || file[i - 1] != b'\r') {
            n += 1;
        }
    }
    out.push(n);
    out
}

fn normalised(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..file.len() {
        if file[i] == b'\n' && (i == 0 || file[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(file[i]);
    }
    out
}

fn check_range(r: &RawRange, norm: &[u64], len: usize) {
    assert!(r.start <= r.end && r.end as usize <= len, "{r:?}");
    assert_eq!(r.crlf_start, norm[r.start as usize], "{r:?}");
    assert_eq!(r.crlf_end, norm[r.end as usize], "{r:?}");
}

fn check_part(p: &Part, norm: &[u64], len: usize, depth: usize) {
    assert!(depth < 80);
    check_range(&p.header_range(), norm, len);
    check_range(&p.body_range(), norm, len);
    for c in p.children() {
        assert!(c.header_range().start >= p.body_range().start);
        assert!(c.body_range().end <= p.body_range().end);
        check_part(c, norm, len, depth + 1);
    }
    if let Some(m) = p.message() {
        assert_eq!(m.header_range().start, p.body_range().start);
        check_part(m, norm, len, depth + 1);
    }
}

fn read_range(root: &Part, file: &[u8], r: &RawRange, origin: u64, count: Option<u64>) -> Vec<u8> {
    let mut rd = root.open(Cursor::new(file), r, origin, count).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 7]; // tiny reads exercise the reader's state
    loop {
        let n = rd.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn exercise(rng: &mut Rng, file: &[u8]) {
    let chunk = 1 + rng.below(100);
    let mut s = Scanner::new();
    for c in file.chunks(chunk) {
        s.feed(c);
    }
    let root = s.finish();
    let mut s = Scanner::new();
    s.feed(file);
    let whole = s.finish();
    assert_eq!(
        format!("{root:?}"),
        format!("{whole:?}"),
        "chunking changed the result"
    );
    let norm = norm_offsets(file);
    let nfile = normalised(file);
    assert_eq!(root.full_range().end as usize, file.len());
    check_part(&root, &norm, file.len(), 0);
    let _ = envelope(root.header());
    let _ = bodystructure(&root, true);
    let _ = bodystructure(&root, false);
    let names: [&[u8]; 2] = [b"subject", b"from"];
    for _ in 0..8 {
        let path: Vec<u32> = (0..rng.below(4)).map(|_| 1 + rng.below(3) as u32).collect();
        let spec = match rng.below(6) {
            0 => Spec::Body,
            1 => Spec::Header,
            2 => Spec::Text,
            3 => Spec::Mime,
            4 => Spec::HeaderFields(&names),
            _ => Spec::HeaderFieldsNot(&names),
        };
        match root.fetch(&path, spec) {
            Some(SectionData::Range(r)) => {
                let want = &nfile[r.crlf_start as usize..r.crlf_end as usize];
                let origin = rng.below(want.len() + 2) as u64;
                let count = if rng.below(2) == 0 {
                    None
                } else {
                    Some(rng.below(want.len() + 2) as u64)
                };
                let got = read_range(&root, file, &r, origin, count);
                let s = (origin as usize).min(want.len());
                let e = count.map_or(want.len(), |c| (s + c as usize).min(want.len()));
                assert_eq!(got, &want[s..e], "{path:?} {spec:?} <{origin}.{count:?}>");
                assert_eq!(got.len() as u64, r.partial_len(origin, count));
            }
            Some(SectionData::Bytes(b)) => assert!(b.ends_with(b"\r\n")),
            None => {}
        }
    }
    let _ = body_contains(file, "é").unwrap();
    let _ = text_contains(file, "subject").unwrap();
    let _ = header_contains(root.header(), "from", "a");
    let _ = parse_date(file);
}

#[test]
fn mutated_samples_keep_invariants() {
    let mut rng = Rng(0x5eed);
    let samples = samples();
    for base in &samples {
        exercise(&mut rng, base);
        for _ in 0..60 {
            let m = mutate(&mut rng, base);
            exercise(&mut rng, &m);
        }
    }
}

#[test]
fn random_garbage_keeps_invariants() {
    let mut rng = Rng(42);
    let alphabet = b"--b\r\n\n:;= \"Content-Type: multipart/mixed; boundary=b message/rfc822 x";
    for _ in 0..1500 {
        let len = rng.below(400);
        let v: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        exercise(&mut rng, &v);
    }
}

#[test]
fn large_lf_file_partial_fetch_reads_little() {
    // A 6 MB bare-LF message: a partial fetch near the end must not read from the start.
    let mut msg = b"Subject: big\n\n".to_vec();
    let mut i = 0u64;
    while msg.len() < 6_000_000 {
        msg.extend_from_slice(format!("line {i} of a long bare-LF body\n").as_bytes());
        i += 1;
    }
    let root = s3imap::mail::mime::scan(&msg[..]).unwrap();
    let range = root.full_range();
    let nfile = normalised(&msg);
    assert_eq!(range.len() as usize, nfile.len());
    struct Counting<'a> {
        inner: Cursor<&'a [u8]>,
        read: u64,
    }
    impl Read for Counting<'_> {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(b)?;
            self.read += n as u64;
            Ok(n)
        }
    }
    impl std::io::Seek for Counting<'_> {
        fn seek(&mut self, p: std::io::SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(p)
        }
    }
    let origin = nfile.len() as u64 - 5000;
    let src = Counting {
        inner: Cursor::new(&msg),
        read: 0,
    };
    let mut rd = root.open(src, &range, origin, Some(1000)).unwrap();
    let mut out = Vec::new();
    rd.read_to_end(&mut out).unwrap();
    assert_eq!(out, &nfile[origin as usize..origin as usize + 1000]);
    // Only about one checkpoint interval (plus one buffer) was read, not the 6 MB before it.
    let read = rd.into_inner().read;
    assert!(
        read <= s3imap::mail::mime::CHECKPOINT_SPACING + 64 * 1024,
        "read {read} bytes"
    );
    // A CRLF file needs no slack at all: the seek is exact.
    let crlf: Vec<u8> = normalised(&msg);
    let root = s3imap::mail::mime::scan(&crlf[..]).unwrap();
    let src = Counting {
        inner: Cursor::new(&crlf),
        read: 0,
    };
    let mut rd = root
        .open(src, &root.full_range(), origin, Some(1000))
        .unwrap();
    let mut out = Vec::new();
    rd.read_to_end(&mut out).unwrap();
    assert_eq!(out, &crlf[origin as usize..origin as usize + 1000]);
    assert!(rd.into_inner().read <= 1000);
}
