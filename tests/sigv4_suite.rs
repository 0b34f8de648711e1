//! The AWS SigV4 test suite (tests/data/aws-sigv4, Apache-2.0, see the LICENSE there)
//! and AWS's documented S3 examples, run against `s3imap::s3::sigv4`.

use std::fs;
use std::path::{Path, PathBuf};

use s3imap::s3::sigv4::{
    AmzDate, Credentials, EMPTY_SHA256, Options, Request, Scope, authorization, canonical_request,
    sha256_hex, signature, string_to_sign,
};

/// One parsed `request.txt`: method, request-target path, raw query pairs, headers
/// (continuation lines kept, joined with '\n'), body.
struct RawRequest {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("query decodes to UTF-8")
}

fn parse_request(raw: &[u8]) -> RawRequest {
    let text = String::from_utf8(raw.to_vec()).expect("request.txt is UTF-8");
    let text = text.replace("\r\n", "\n");
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h.to_string(), b.as_bytes().to_vec()),
        None => (text.trim_end_matches('\n').to_string(), Vec::new()),
    };
    let mut lines = head.split('\n');
    let request_line = lines.next().expect("request line");
    // The target may contain spaces ("/example space/"): cut at the first space and
    // at the last " HTTP/".
    let (method, rest) = request_line.split_once(' ').expect("method");
    let target = &rest[..rest.rfind(" HTTP/").expect("HTTP version")];
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (n, v) = line.split_once(':').expect("header has a colon");
            headers.push((n.to_string(), v.to_string()));
        }
    }
    RawRequest {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
        body,
    }
}

/// The string value of `"key": "..."` in the small context.json (no nesting needed:
/// keys are unique across the document).
fn json_str(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c => out.push(c), // \" \\ \/
            },
            c => out.push(c),
        }
    }
    None
}

fn json_bool(json: &str, key: &str) -> Option<bool> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with("true") {
        Some(true)
    } else if rest.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

/// Signs one case directory and returns a list of mismatches (empty when it passes).
fn run_case(dir: &Path) -> Vec<String> {
    let ctx = read(dir, "context.json");
    let req = parse_request(&fs::read(dir.join("request.txt")).expect("request.txt"));
    let creds = Credentials {
        access_key_id: json_str(&ctx, "access_key_id").expect("access_key_id"),
        secret_access_key: json_str(&ctx, "secret_access_key").expect("secret_access_key"),
        session_token: json_str(&ctx, "token"),
    };
    let region = json_str(&ctx, "region").expect("region");
    let service = json_str(&ctx, "service").expect("service");
    let date = AmzDate::parse_iso8601(&json_str(&ctx, "timestamp").expect("timestamp"))
        .expect("timestamp parses");
    let normalize = json_bool(&ctx, "normalize").expect("normalize");
    let sign_body = json_bool(&ctx, "sign_body").expect("sign_body");
    let omit_token = json_bool(&ctx, "omit_session_token").unwrap_or(false);

    // What the signer of the suite adds to the request before signing: X-Amz-Date
    // always; X-Amz-Security-Token unless the case adds it after signing
    // (omit_session_token, post-sts-header-after); X-Amz-Content-Sha256 when
    // sign_body. The payload hash in the canonical request is the body's SHA-256 in
    // every case (sign_body only decides whether it is also sent as a header).
    let amz = date.amz();
    let payload_hash = sha256_hex(&req.body);
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    headers.push(("X-Amz-Date", &amz));
    if let (Some(token), false) = (creds.session_token.as_deref(), omit_token) {
        headers.push(("X-Amz-Security-Token", token));
    }
    if sign_body {
        headers.push(("X-Amz-Content-Sha256", &payload_hash));
    }
    let query: Vec<(&str, &str)> = req
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // The request-line path goes in verbatim. normalize=true cases get the generic
    // rules (dot segments removed, then encoded once more); normalize=false cases are
    // signed S3-style as given, where the only raw byte a client could not send
    // (the space of get-space-unnormalized) is percent-encoded.
    let request = Request {
        method: &req.method,
        path: &req.path,
        query: &query,
        headers: &headers,
        payload_hash: &payload_hash,
    };
    let scope = Scope {
        region: &region,
        service: &service,
    };
    let opts = Options {
        normalize_path: normalize,
    };

    let mut failures = Vec::new();
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let mut check = |what: &str, got: &str, want: &str| {
        if got != want {
            failures.push(format!("{name}: {what}\n--- got\n{got}\n--- want\n{want}"));
        }
    };
    let creq = canonical_request(&request, &opts);
    check(
        "canonical request",
        &creq,
        &read(dir, "header-canonical-request.txt"),
    );
    let sts = string_to_sign(&date, &scope, &creq);
    check(
        "string to sign",
        &sts,
        &read(dir, "header-string-to-sign.txt"),
    );
    let sig = signature(&creds, &date, &scope, &request, &opts);
    check(
        "signature",
        &sig,
        read(dir, "header-signature.txt").trim_end(),
    );
    let signed_request = read(dir, "header-signed-request.txt");
    let want_auth = signed_request
        .lines()
        .find_map(|l| l.strip_prefix("Authorization:"))
        .expect("signed request has Authorization");
    let auth = authorization(&creds, &date, &scope, &request, &opts);
    check("authorization", &auth, want_auth);
    failures
}

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-sigv4");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn aws_sigv4_suite_header_signing() {
    let dirs = case_dirs();
    assert!(dirs.len() > 30, "only {} cases found", dirs.len());
    let failures: Vec<String> = dirs.iter().flat_map(|d| run_case(d)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}

// AWS S3 API reference, "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk (AWS Signature Version 4)", examples.

fn s3_example(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    extra: &[(&str, &str)],
    payload_hash: &str,
) -> (String, String) {
    let creds = Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let date = AmzDate::parse_iso8601("20130524T000000Z").expect("date");
    let amz = date.amz();
    let mut headers: Vec<(&str, &str)> = vec![
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", &amz),
        ("x-amz-content-sha256", payload_hash),
    ];
    headers.extend_from_slice(extra);
    let req = Request {
        method,
        path,
        query,
        headers: &headers,
        payload_hash,
    };
    let scope = Scope {
        region: "us-east-1",
        service: "s3",
    };
    let opts = Options {
        normalize_path: false,
    };
    (
        signature(&creds, &date, &scope, &req, &opts),
        authorization(&creds, &date, &scope, &req, &opts),
    )
}

#[test]
fn s3_doc_get_object() {
    let (sig, auth) = s3_example(
        "GET",
        "/test.txt",
        &[],
        &[("Range", "bytes=0-9")],
        EMPTY_SHA256,
    );
    assert_eq!(
        sig,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn s3_doc_put_object() {
    let body_hash = sha256_hex(b"Welcome to Amazon S3.");
    assert_eq!(
        body_hash,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
    let (sig, auth) = s3_example(
        "PUT",
        "/test%24file.text",
        &[],
        &[
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ],
        &body_hash,
    );
    assert_eq!(
        sig,
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
    assert!(
        auth.contains(
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
        )
    );
}

#[test]
fn s3_doc_get_bucket_lifecycle() {
    let (sig, _) = s3_example("GET", "/", &[("lifecycle", "")], &[], EMPTY_SHA256);
    assert_eq!(
        sig,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    );
}

#[test]
fn s3_doc_list_objects() {
    let (sig, _) = s3_example(
        "GET",
        "/",
        &[("max-keys", "2"), ("prefix", "J")],
        &[],
        EMPTY_SHA256,
    );
    assert_eq!(
        sig,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    );
}
