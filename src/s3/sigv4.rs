//! AWS Signature Version 4 for the S3 client: credentials, UTC timestamps, URI encoding,
//! the canonical request, the string to sign, the derived signing key and the
//! `Authorization` header. Pure functions on `hmac` + `sha2`; nothing here does I/O
//! except [`AmzDate::now`] reading the system clock.

use crate::time::{civil_from_days, from_civil};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name that opens the string to sign and the `Authorization` header.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The payload hash S3 accepts when the body is not hashed (sent over TLS).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Hex SHA-256 of the empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An access key pair, plus the session token of temporary (STS) credentials.
///
/// `Debug` shows the key id only; the secret and the token print as `<redacted>`.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A UTC instant with one-second resolution, as used in `x-amz-date` and the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AmzDate {
    secs: u64,
}

impl AmzDate {
    /// The instant `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: u64) -> AmzDate {
        AmzDate { secs }
    }

    /// The current system time (1970-01-01 if the clock is set before the epoch).
    pub fn now() -> AmzDate {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        AmzDate { secs }
    }

    /// Parses `2015-08-30T12:36:00Z` (optionally with fractional seconds, which are
    /// dropped: `2009-10-12T17:50:30.000Z`) and the basic form `20150830T123600Z`.
    /// Only UTC (`Z`) and instants from 1970 on are accepted.
    pub fn parse_iso8601(s: &str) -> Option<AmzDate> {
        let b = s.as_bytes();
        let (date, rest) = if b.get(4) == Some(&b'-') {
            // Extended: YYYY-MM-DDTHH:MM:SS[.fff]Z
            if b.len() < 20 || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
                return None;
            }
            let fields = [
                digits(&b[0..4])?,
                digits(&b[5..7])?,
                digits(&b[8..10])?,
                digits(&b[11..13])?,
                digits(&b[14..16])?,
                digits(&b[17..19])?,
            ];
            (fields, &b[19..])
        } else {
            // Basic: YYYYMMDDTHHMMSSZ
            if b.len() < 16 || b[8] != b'T' {
                return None;
            }
            let fields = [
                digits(&b[0..4])?,
                digits(&b[4..6])?,
                digits(&b[6..8])?,
                digits(&b[9..11])?,
                digits(&b[11..13])?,
                digits(&b[13..15])?,
            ];
            (fields, &b[15..])
        };
        let rest = match rest.strip_prefix(b".") {
            Some(frac) => {
                let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                &frac[n..]
            }
            None => rest,
        };
        if rest != b"Z" {
            return None;
        }
        let [year, month, day, hour, minute, second] = date;
        from_civil(year, month, day, hour, minute, second).map(AmzDate::from_unix)
    }

    /// `20150830T123600Z`, the `x-amz-date` form.
    pub fn amz(&self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }

    /// `20150830`, the date of the credential scope.
    pub fn date(&self) -> String {
        let (y, mo, d, ..) = self.civil();
        format!("{y:04}{mo:02}{d:02}")
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> u64 {
        self.secs
    }

    /// (year, month, day, hour, minute, second) in UTC.
    fn civil(&self) -> (u64, u64, u64, u64, u64, u64) {
        let days = self.secs / 86_400;
        let rem = self.secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
    }
}

/// Parses an RFC 7231 IMF-fixdate (`Sun, 30 Aug 2015 12:36:00 GMT`, the form of the
/// HTTP `Date` header) into Unix seconds. The weekday name is checked for spelling
/// only, not against the date.
pub fn parse_http_date(s: &str) -> Option<u64> {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let b = s.trim().as_bytes();
    // "Sun, 30 Aug 2015 12:36:00 GMT" is exactly 29 bytes.
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
        || !DAYS.contains(&&b[0..3])
    {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as u64 + 1;
    from_civil(
        digits(&b[12..16])?,
        month,
        digits(&b[5..7])?,
        digits(&b[17..19])?,
        digits(&b[20..22])?,
        digits(&b[23..25])?,
    )
}

/// ASCII decimal digits to a number; `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~')
}

fn push_pct(out: &mut String, c: u8) {
    out.push('%');
    out.push(char::from(HEX_UPPER[usize::from(c >> 4)]));
    out.push(char::from(HEX_UPPER[usize::from(c & 15)]));
}

/// AWS `UriEncode`: keeps `A-Z a-z 0-9 - _ . ~`, percent-encodes every other UTF-8
/// byte as `%XX` (uppercase hex). `/` is kept unless `encode_slash`.
pub fn uri_encode(input: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() * 3 / 2);
    for &c in input.as_bytes() {
        if is_unreserved(c) || (c == b'/' && !encode_slash) {
            out.push(char::from(c));
        } else {
            push_pct(&mut out, c);
        }
    }
    out
}

/// The canonical query string from raw (not yet encoded) pairs: each side
/// [`uri_encode`]d with `/` encoded, sorted by encoded key then encoded value, joined
/// as `k=v&k=v`. A pair with an empty value still gets its `=` (`prefix=`). The
/// client sends this same string as the URL query, so the two cannot disagree.
pub fn canonical_query_string(params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(b & 15)]));
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (long ones are hashed first), so this never
    // fails; the zero fallback only keeps the function total and could at worst
    // produce a signature the server rejects.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// One request to sign.
pub struct Request<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The path exactly as sent on the wire, already percent-encoded. For S3:
    /// `"/" + bucket + "/" + uri_encode(key, false)`.
    pub path: &'a str,
    /// Raw (unencoded) query pairs; see [`canonical_query_string`].
    pub query: &'a [(&'a str, &'a str)],
    /// Every header to sign: names in any case, raw values. Include `host`,
    /// `x-amz-date`, `x-amz-content-sha256` and, with temporary credentials,
    /// `x-amz-security-token`. Repeated names are joined with `,` in order.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// The credential scope beyond the date: region and service (`s3`).
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// Canonicalisation switches.
pub struct Options {
    /// `false` for S3: the path is signed as given (single encoding, `.`/`..` and
    /// `//` kept). `true` for the other AWS services: dot segments removed, repeated
    /// slashes collapsed, then every segment encoded once more (so `%20` becomes
    /// `%2520`), as the generic SigV4 rules require.
    pub normalize_path: bool,
}

/// The canonical URI.
fn canonical_uri(path: &str, opts: &Options) -> String {
    if opts.normalize_path {
        uri_encode(&remove_dot_segments(path), false)
    } else if path.is_empty() {
        "/".to_string()
    } else {
        wire_path(path)
    }
}

/// The path as given, except for bytes that cannot appear in an HTTP request target
/// (space, controls, non-ASCII, `"#<>?[\]^`{|}`), which are percent-encoded the way
/// any client must before sending them. An already-encoded path comes back unchanged.
fn wire_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &c in path.as_bytes() {
        let keep = is_unreserved(c)
            || matches!(
                c,
                b'/' | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(char::from(c));
        } else {
            push_pct(&mut out, c);
        }
    }
    out
}

/// RFC 3986 dot-segment removal plus collapsing of empty segments; always absolute,
/// trailing slash kept (`//example//` → `/example/`, `/a/b/..` → `/a/`).
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in path.split('/') {
        trailing_slash = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    out
}

/// Canonical headers block (`name:value\n` per distinct name) and the signed
/// headers list (`host;x-amz-date`).
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            let value = v.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            (n.trim().to_ascii_lowercase(), value)
        })
        .collect();
    // Stable: values of a repeated header keep their order.
    hs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut block = String::new();
    let mut signed = String::new();
    let mut prev: Option<&str> = None;
    for (name, value) in &hs {
        if prev == Some(name.as_str()) {
            block.pop(); // the '\n' of the previous line
            block.push(',');
        } else {
            if prev.is_some() {
                signed.push(';');
            }
            signed.push_str(name);
            block.push_str(name);
            block.push(':');
        }
        block.push_str(value);
        block.push('\n');
        prev = Some(name);
    }
    (block, signed)
}

/// Canonical request and signed headers list together, so the signature and the
/// `Authorization` header are built from one pass.
fn canonicalize(req: &Request, opts: &Options) -> (String, String) {
    let (headers, signed) = canonical_headers(req.headers);
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path, opts),
        canonical_query_string(req.query),
        headers,
        signed,
        req.payload_hash
    );
    (creq, signed)
}

/// The canonical request: method, URI, query, headers, signed headers, payload hash.
pub fn canonical_request(req: &Request, opts: &Options) -> String {
    canonicalize(req, opts).0
}

fn scope_string(date: &AmzDate, scope: &Scope) -> String {
    format!(
        "{}/{}/{}/aws4_request",
        date.date(),
        scope.region,
        scope.service
    )
}

/// `AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(date: &AmzDate, scope: &Scope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        date.amz(),
        scope_string(date, scope),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The derived key `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
/// "aws4_request")`. It depends only on the secret, the day and the scope, so a caller
/// may keep it for the day and use [`signature_with_key`].
pub fn signing_key(secret: &str, date: &AmzDate, scope: &Scope) -> [u8; 32] {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac_sha256(k_secret.as_bytes(), date.date().as_bytes());
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// Hex signature of a string to sign under an already derived [`signing_key`].
pub fn signature_with_key(key: &[u8; 32], string_to_sign: &str) -> String {
    hex(&hmac_sha256(key, string_to_sign.as_bytes()))
}

/// The hex signature of `req`.
pub fn signature(
    creds: &Credentials,
    date: &AmzDate,
    scope: &Scope,
    req: &Request,
    opts: &Options,
) -> String {
    let creq = canonical_request(req, opts);
    let key = signing_key(&creds.secret_access_key, date, scope);
    signature_with_key(&key, &string_to_sign(date, scope, &creq))
}

/// The full `Authorization` header value:
/// `AWS4-HMAC-SHA256 Credential=<key id>/<scope>, SignedHeaders=<list>, Signature=<hex>`.
pub fn authorization(
    creds: &Credentials,
    date: &AmzDate,
    scope: &Scope,
    req: &Request,
    opts: &Options,
) -> String {
    let (creq, signed) = canonicalize(req, opts);
    let key = signing_key(&creds.secret_access_key, date, scope);
    let sig = signature_with_key(&key, &string_to_sign(date, scope, &creq));
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={sig}",
        creds.access_key_id,
        scope_string(date, scope)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encode_rules() {
        assert_eq!(uri_encode("a b", true), "a%20b");
        assert_eq!(uri_encode("a+b=c", true), "a%2Bb%3Dc");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(uri_encode("a/b", false), "a/b");
        assert_eq!(uri_encode("é", false), "%C3%A9");
        assert_eq!(uri_encode("-_.~AZaz09", true), "-_.~AZaz09");
        assert_eq!(uri_encode("$%*?#&", false), "%24%25%2A%3F%23%26");
        assert_eq!(uri_encode("", true), "");
    }

    #[test]
    fn query_string_sorted_and_encoded() {
        assert_eq!(
            canonical_query_string(&[("prefix", ""), ("list-type", "2")]),
            "list-type=2&prefix="
        );
        assert_eq!(
            canonical_query_string(&[
                ("prefix", "inbox/a b+c"),
                ("continuation-token", "1/x=="),
                ("list-type", "2"),
                ("max-keys", "1000"),
            ]),
            "continuation-token=1%2Fx%3D%3D&list-type=2&max-keys=1000&prefix=inbox%2Fa%20b%2Bc"
        );
        // Same key: ordered by value; uppercase sorts before lowercase (byte order).
        assert_eq!(
            canonical_query_string(&[("a", "2"), ("B", "x"), ("a", "1")]),
            "B=x&a=1&a=2"
        );
        assert_eq!(canonical_query_string(&[]), "");
    }

    #[test]
    fn amz_date_round_trips() {
        let d = AmzDate::from_unix(1_440_938_160);
        assert_eq!(d.amz(), "20150830T123600Z");
        assert_eq!(d.date(), "20150830");
        for s in ["20150830T123600Z", "2015-08-30T12:36:00Z"] {
            assert_eq!(AmzDate::parse_iso8601(s), Some(d), "{s}");
        }
        assert_eq!(AmzDate::from_unix(0).amz(), "19700101T000000Z");
        let cases = [
            ("20000229T000000Z", 951_782_400),
            ("20000301T000000Z", 951_868_800),
            ("19991231T235959Z", 946_684_799),
            ("20240229T120000Z", 1_709_208_000),
            ("21000301T000000Z", 4_107_542_400),
            ("20380119T031408Z", 2_147_483_648),
        ];
        for (s, secs) in cases {
            let d = AmzDate::parse_iso8601(s).expect(s);
            assert_eq!(d.unix(), secs, "{s}");
            assert_eq!(AmzDate::from_unix(secs).amz(), s);
        }
        // Every day of 1970..2500 survives a round trip.
        let mut secs = 0;
        while secs < 16_725_225_600 {
            let d = AmzDate::from_unix(secs);
            assert_eq!(AmzDate::parse_iso8601(&d.amz()), Some(d));
            secs += 86_400 + 3_661;
        }
    }

    #[test]
    fn iso8601_accepts_fraction_rejects_garbage() {
        assert_eq!(
            AmzDate::parse_iso8601("2009-10-12T17:50:30.000Z").map(|d| d.unix()),
            Some(1_255_369_830)
        );
        assert_eq!(
            AmzDate::parse_iso8601("2009-10-12T17:50:30.123456789Z").map(|d| d.unix()),
            Some(1_255_369_830)
        );
        for bad in [
            "",
            "2015",
            "2015-08-30",
            "2015-08-30T12:36:00",
            "2015-08-30T12:36:00+01:00",
            "2015-08-30T12:36:00.Z",
            "2015-08-30 12:36:00Z",
            "2015-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2015-13-01T00:00:00Z",
            "2015-00-01T00:00:00Z",
            "2015-08-32T00:00:00Z",
            "2015-08-30T24:00:00Z",
            "2015-08-30T12:60:00Z",
            "2015-08-30T12:36:60Z",
            "1969-12-31T23:59:59Z",
            "20150830T123600ZZ",
            "2015083OT123600Z",
            "+015-08-30T12:36:00Z",
            "2015-08-30T12:36:00Zé",
            "éééééééééééééééé",
        ] {
            assert_eq!(AmzDate::parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn far_future_does_not_panic() {
        let d = AmzDate::from_unix(u64::MAX);
        assert!(d.amz().ends_with('Z'));
        assert_eq!(d.unix(), u64::MAX);
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(1_440_938_160)
        );
        assert_eq!(
            parse_http_date("Fri, 24 May 2013 00:00:00 GMT"),
            Some(1_369_353_600)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 23:59:59 GMT"),
            Some(951_868_799)
        );
        for bad in [
            "",
            "Sun, 30 Aug 2015 12:36:00 UTC",
            "Sunday, 30-Aug-15 12:36:00 GMT",
            "Sun Aug 30 12:36:00 2015",
            "Sun, 30 Foo 2015 12:36:00 GMT",
            "Xyz, 30 Aug 2015 12:36:00 GMT",
            "Sun, 31 Sep 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36:0x GMT",
            "Sun, 30 Aug 2015 12:36:00 GMTé",
            "ééééééééééééééé",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("SESSIONTOKENVALUE".into()),
        };
        let s = format!("{c:?} {c:#?}");
        assert!(s.contains("AKIDEXAMPLE"));
        assert!(s.contains("<redacted>"));
        assert!(!s.contains("wJalr"), "{s}");
        assert!(!s.contains("SESSIONTOKEN"), "{s}");
    }

    #[test]
    fn canonical_headers_fold_and_join() {
        let (block, signed) = canonical_headers(&[
            ("X-B", "  two\n   lines  "),
            ("Host", "h"),
            ("x-b", "\tsecond  value "),
        ]);
        assert_eq!(block, "host:h\nx-b:two lines,second value\n");
        assert_eq!(signed, "host;x-b");
    }

    #[test]
    fn s3_path_is_signed_as_sent() {
        let opts = Options {
            normalize_path: false,
        };
        for p in ["/b/a%20b/..//c", "/b/x%2By%3D", "/", "/b/~a_b-c.d"] {
            assert_eq!(canonical_uri(p, &opts), p);
        }
        assert_eq!(canonical_uri("", &opts), "/");
        // Bytes no client may send raw are encoded rather than signed raw.
        assert_eq!(canonical_uri("/a b/é", &opts), "/a%20b/%C3%A9");
    }

    #[test]
    fn generic_path_is_normalized_and_encoded_again() {
        let opts = Options {
            normalize_path: true,
        };
        assert_eq!(canonical_uri("/a%20b", &opts), "/a%2520b");
        assert_eq!(canonical_uri("/a/b/../c/./d/", &opts), "/a/c/d/");
        assert_eq!(canonical_uri("/a/b/..", &opts), "/a/");
        assert_eq!(canonical_uri("/../..", &opts), "/");
        assert_eq!(canonical_uri("", &opts), "/");
    }

    #[test]
    fn signing_key_matches_aws_docs() {
        // AWS General Reference, "Examples of how to derive a signing key".
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &AmzDate::parse_iso8601("20120215T000000Z").expect("date"),
            &Scope {
                region: "us-east-1",
                service: "iam",
            },
        );
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    }
}
