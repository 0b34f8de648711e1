//! Throughput of SEARCH BODY/TEXT and of the structure scan over a corpus dominated by base64
//! attachments. Ignored by default; run in release:
//! `cargo test --release --test mime_bench -- --ignored --nocapture`

use std::time::Instant;

use s3imap::mail::mime::scan;
use s3imap::mail::search::{body_contains, text_contains};

fn b64_lines(n: usize, seed: &mut u64) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(n + n / 76 * 2);
    let mut col = 0;
    for _ in 0..n {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        out.push(A[(*seed >> 58) as usize]);
        col += 1;
        if col == 76 {
            out.extend_from_slice(b"\r\n");
            col = 0;
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn corpus() -> Vec<Vec<u8>> {
    let mut seed = 1u64;
    let mut msgs = Vec::new();
    for i in 0..40 {
        let mut m = format!(
            "From: Sender {i} <s{i}@example.com>\r\nTo: bob@example.org\r\nSubject: Report {i}\r\n\
             Date: Tue, 3 Mar 2026 10:15:00 +0100\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"==b{i}\"\r\n\r\n--==b{i}\r\n\
             Content-Type: multipart/alternative; boundary=\"==a{i}\"\r\n\r\n--==a{i}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        .into_bytes();
        for l in 0..60 {
            m.extend_from_slice(
                format!("Line {l} of the message text, caf=C3=A9 au lait, nothing to see.\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(format!("--==a{i}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n").as_bytes());
        m.extend_from_slice(&b64_lines(8_000, &mut seed));
        m.extend_from_slice(format!("--==a{i}--\r\n\r\n--==b{i}\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=r.pdf\r\n\r\n").as_bytes());
        m.extend_from_slice(&b64_lines(2_000_000, &mut seed));
        m.extend_from_slice(format!("--==b{i}\r\nContent-Type: image/jpeg; name=p.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n").as_bytes());
        m.extend_from_slice(&b64_lines(500_000, &mut seed));
        m.extend_from_slice(format!("--==b{i}--\r\n").as_bytes());
        msgs.push(m);
    }
    msgs
}

fn measure(name: &str, msgs: &[Vec<u8>], f: impl Fn(&[u8]) -> bool) -> f64 {
    let total: usize = msgs.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for m in msgs {
            assert!(!f(m));
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mbs = total as f64 / best / 1e6;
    println!(
        "{name}: {:.0} MB in {:.3} s = {mbs:.0} MB/s",
        total as f64 / 1e6,
        best
    );
    mbs
}

#[test]
#[ignore]
fn search_throughput() {
    let msgs = corpus();
    let body = measure("body_contains (absent needle)", &msgs, |m| {
        body_contains(m, "purple elephant").unwrap()
    });
    measure("text_contains (absent needle)", &msgs, |m| {
        text_contains(m, "purple elephant").unwrap()
    });
    measure("mime::scan (structure + sizes)", &msgs, |m| {
        scan(m).unwrap().children().is_empty()
    });
    assert!(body_contains(&msgs[0][..], "CAFÉ AU LAIT").unwrap());
    if !cfg!(debug_assertions) {
        assert!(body > 300.0, "body search at {body:.0} MB/s");
    }
}
