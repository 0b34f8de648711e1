//! SEARCH BODY / TEXT / SUBJECT / FROM / TO / CC / BCC / HEADER / SENT* over the sample
//! messages in tests/data/mail, compared with the matches Dovecot 2.3.19 reported for the same
//! files and keys (`search.dovecot.txt`: key, needle, matching samples; tab-separated).

use std::path::Path;

use s3imap::mail::envelope::raw_fields;
use s3imap::mail::mime::scan;
use s3imap::mail::search::{body_contains, header_contains, sent_day, text_contains};
use s3imap::time::days_from_civil;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/mail")
            .join(name),
    )
    .unwrap()
}

fn search_date(s: &str) -> u64 {
    let mut it = s.split('-');
    let d: u64 = it.next().unwrap().parse().unwrap();
    let month = it.next().unwrap();
    let m = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|x| *x == month)
    .unwrap() as u64
        + 1;
    let y: u64 = it.next().unwrap().parse().unwrap();
    days_from_civil(y, m, d)
}

fn matches(key: &str, needle: &str, file: &[u8]) -> bool {
    let header = scan(file).unwrap().header().to_vec();
    let date = || {
        raw_fields(&header)
            .into_iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"date"))
            .and_then(|(_, v)| sent_day(v))
    };
    match key {
        "BODY" => body_contains(file, needle).unwrap(),
        "TEXT" => text_contains(file, needle).unwrap(),
        "SUBJECT" | "FROM" | "TO" | "CC" | "BCC" => header_contains(&header, key, needle),
        "SENTON" => date() == Some(search_date(needle)),
        "SENTBEFORE" => date().is_some_and(|d| d < search_date(needle)),
        "SENTSINCE" => date().is_some_and(|d| d >= search_date(needle)),
        k => match k.strip_prefix("HEADER ") {
            Some(field) => header_contains(&header, field, needle),
            None => panic!("unknown key {k}"),
        },
    }
}

#[test]
fn search_matches_dovecot() {
    let expected = String::from_utf8(data("search.dovecot.txt")).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mail");
    let mut samples: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let n = p.file_name()?.to_str()?.strip_suffix(".eml")?.to_string();
            Some((n, std::fs::read(&p).unwrap()))
        })
        .collect();
    samples.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in expected.lines() {
        let mut f = line.split('\t');
        let (key, needle, want) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or(""));
        let ours: Vec<&str> = samples
            .iter()
            .filter(|(_, file)| matches(key, needle, file))
            .map(|(n, _)| n.as_str())
            .collect();
        if ours.join(",") != want {
            failures.push(format!(
                "{key} {needle:?}: ours [{}] dovecot [{want}]",
                ours.join(",")
            ));
        }
        checked += 1;
    }
    assert!(checked > 80);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
