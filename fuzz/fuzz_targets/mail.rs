//! Arbitrary bytes as a message from the internet (SES stores whatever a sender wrote): the
//! streaming MIME scanner, ENVELOPE/BODYSTRUCTURE, section fetches, header decoding, search
//! and the sync's routing must never panic, and the scanner's result must not depend on how
//! the message is split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3imap::mail::decode::decode_header;
use s3imap::mail::envelope::{bodystructure, envelope};
use s3imap::mail::mime::{Scanner, Spec};
use s3imap::mail::search::{body_contains, header_contains, parse_date, text_contains};
use s3imap::sync::route::{Directory, Folders, route};
use std::io::{Cursor, Read};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the read size, the next few a search needle; the rest is the message.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let (needle, file) = rest.split_at(rest.len().min(3));
    let needle = String::from_utf8_lossy(needle).into_owned();

    let mut s = Scanner::new();
    for c in file.chunks(1 + usize::from(chunk)) {
        s.feed(c);
    }
    let root = s.finish();
    let mut s = Scanner::new();
    s.feed(file);
    let whole = s.finish();
    assert_eq!(format!("{root:?}"), format!("{whole:?}"), "chunking changed the result");
    assert_eq!(root.full_range().end as usize, file.len());

    let _ = envelope(root.header());
    let _ = bodystructure(&root, true);
    let _ = bodystructure(&root, false);
    for path in [&[][..], &[1], &[1, 1], &[2], &[1, 2, 1]] {
        for spec in [Spec::Body, Spec::Header, Spec::Text, Spec::Mime] {
            if let Some(d) = root.fetch(path, spec) {
                let _ = d.len();
            }
        }
        if let Some(p) = root.section(path) {
            let r = p.body_range();
            assert!(r.start <= r.end && r.end as usize <= file.len());
            let mut rd = root.open(Cursor::new(file), &r, 1, Some(40)).unwrap();
            let mut out = Vec::new();
            rd.read_to_end(&mut out).unwrap();
            assert!(out.len() <= 40);
        }
    }
    for (name, value) in s3imap::mail::envelope::raw_fields(root.header()) {
        let _ = decode_header(value);
        let _ = parse_date(value);
        let _ = header_contains(root.header(), &String::from_utf8_lossy(name), &needle);
    }
    let _ = body_contains(Cursor::new(file), &needle).unwrap();
    let _ = text_contains(Cursor::new(file), &needle).unwrap();

    let dir = Directory::new(
        Some(["a@example.com".to_string(), "b@example.com".to_string()]),
        None,
    );
    if let Ok(r) = route(root.header(), &dir, &Folders::default()) {
        assert!(!r.recipients.is_empty());
    }
});
