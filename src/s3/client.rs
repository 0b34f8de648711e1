//! The S3 client: ListObjectsV2 pages, GetObject as a stream, DeleteObject and CopyObject,
//! signed with [`super::sigv4`] and sent with a ureq agent that keeps connections alive.
//!
//! Requests are retried on throttling, 5xx answers and network errors with capped exponential
//! backoff and full jitter. Every other failure becomes an [`S3Error`] whose message says what
//! to change (bucket name, credentials, region, clock, endpoint). Credentials never appear in
//! an error or a log line.

use super::sigv4::{self, AmzDate, Credentials, Options, Request, Scope};
use super::xml::{self, ListPage};
use std::fmt;
use std::io::Read;
use std::time::Duration;

/// Why an `AWS_ENDPOINT_URL` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointError {
    /// Not `http://` or `https://`.
    Scheme,
    /// More than scheme, host and port.
    NotBare,
}

impl std::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EndpointError::Scheme => "not an http:// or https:// URL (e.g. http://127.0.0.1:8333)",
            EndpointError::NotBare => {
                "give only scheme, host and port (e.g. https://minio.local:9000); a path, query \
                 or user name is not supported"
            }
        })
    }
}

/// Where requests go and how buckets are addressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The authority as sent in the Host header (`127.0.0.1:8333`, `s3.eu-west-1.amazonaws.com`).
    pub authority: String,
    /// Path-style (`/bucket/key`, for S3-compatible servers) or virtual-hosted (`bucket.host/key`).
    pub path_style: bool,
}

impl Endpoint {
    /// AWS's own endpoint for `region`: virtual-hosted unless the bucket name has dots (which
    /// would not match the TLS certificate), as the AWS SDKs do.
    pub fn aws(region: &str, bucket: &str) -> Endpoint {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let host = format!("s3.{region}.{suffix}");
        if bucket.contains('.') {
            Endpoint {
                scheme: "https",
                authority: host,
                path_style: true,
            }
        } else {
            Endpoint {
                scheme: "https",
                authority: format!("{bucket}.{host}"),
                path_style: false,
            }
        }
    }

    /// An S3-compatible endpoint from `AWS_ENDPOINT_URL` (`http://127.0.0.1:8333`), path-style.
    pub fn parse_url(url: &str) -> Result<Endpoint, EndpointError> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            ("http", r)
        } else if let Some(r) = url.strip_prefix("https://") {
            ("https", r)
        } else {
            return Err(EndpointError::Scheme);
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(EndpointError::NotBare);
        }
        // Drop a default port so the Host header matches what servers expect to sign.
        let authority = match (scheme, authority.rsplit_once(':')) {
            ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h.to_string(),
            _ => authority.to_string(),
        };
        Ok(Endpoint {
            scheme,
            authority,
            path_style: true,
        })
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// How often and how patiently to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter backoff before retry number `attempt` (1-based): uniform in [0, min(cap, base·2^attempt)].
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        exp.mul_f64(jitter())
    }
}

/// A uniform number in [0, 1) from a per-thread xorshift generator seeded by the clock.
fn jitter() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9e37_79b9_7f4a_7c15);
            let local = 0u8;
            (t ^ (&local as *const u8 as u64).rotate_left(32)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Everything that can go wrong talking to S3, each with what to do about it.
#[derive(Debug)]
pub enum S3Error {
    /// The endpoint could not be reached at all.
    Unreachable {
        endpoint: String,
        detail: String,
    },
    /// The connection broke or timed out mid-request.
    Network {
        detail: String,
    },
    NoSuchBucket {
        bucket: String,
    },
    NoSuchKey {
        key: String,
    },
    /// Unknown access key, or a signature the server computed differently (wrong secret).
    BadCredentials {
        code: String,
    },
    AccessDenied {
        bucket: String,
        message: String,
    },
    /// The local clock is too far from the server's.
    ClockSkew {
        server_time: Option<String>,
    },
    /// The bucket lives in another region than the one we signed for.
    WrongRegion {
        region: Option<String>,
        ours: String,
    },
    /// Any other answer that is not a success.
    Http {
        status: u16,
        code: String,
        message: String,
    },
    /// A body that should have been S3 XML and was not.
    BadResponse {
        detail: String,
    },
}

impl S3Error {
    /// Worth another try: throttling, server errors, broken connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            S3Error::Network { .. } | S3Error::Unreachable { .. } => true,
            S3Error::Http { status, code, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || matches!(
                        code.as_str(),
                        "SlowDown"
                            | "Throttling"
                            | "ThrottlingException"
                            | "RequestTimeout"
                            | "InternalError"
                            | "ServiceUnavailable"
                    )
            }
            _ => false,
        }
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::Unreachable { endpoint, detail } => write!(
                f,
                "cannot reach the S3 endpoint {endpoint} ({detail}); check AWS_ENDPOINT_URL, \
                 the network and that the server is running"
            ),
            S3Error::Network { detail } => write!(f, "network error talking to S3: {detail}"),
            S3Error::NoSuchBucket { bucket } => write!(
                f,
                "bucket {bucket:?} does not exist; check --bucket / S3IMAP_BUCKET and the region"
            ),
            S3Error::NoSuchKey { key } => write!(f, "object {key:?} is gone from the bucket"),
            S3Error::BadCredentials { code } => write!(
                f,
                "S3 rejected the credentials ({code}); check AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (or their _FILE variants)"
            ),
            S3Error::AccessDenied { bucket, message } => write!(
                f,
                "access denied to bucket {bucket:?} ({message}); the credentials need \
                 s3:ListBucket and s3:GetObject (and s3:DeleteObject/s3:PutObject for --after)"
            ),
            S3Error::ClockSkew { server_time } => match server_time {
                Some(t) => write!(
                    f,
                    "the local clock is off: S3's time is {t}, ours is {}; fix the clock (NTP) and retry",
                    crate::log::utc_timestamp(AmzDate::now().unix())
                ),
                None => write!(
                    f,
                    "the local clock is too far from S3's; fix the clock (NTP) and retry"
                ),
            },
            S3Error::WrongRegion { region, ours } => match region {
                Some(r) => write!(
                    f,
                    "the bucket is in region {r}, not {ours}; set AWS_REGION={r}"
                ),
                None => write!(
                    f,
                    "the bucket is not in region {ours}; set AWS_REGION to the bucket's region"
                ),
            },
            S3Error::Http {
                status,
                code,
                message,
            } => {
                if code.is_empty() {
                    write!(f, "S3 answered HTTP {status}")
                } else {
                    write!(f, "S3 answered HTTP {status} {code}: {message}")
                }
            }
            S3Error::BadResponse { detail } => write!(f, "unexpected answer from S3: {detail}"),
        }
    }
}

impl std::error::Error for S3Error {}

/// What the client needs to know.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: Endpoint,
    pub region: String,
    pub bucket: String,
    pub credentials: Credentials,
    pub retry: RetryPolicy,
}

/// A GetObject answer: the body as a stream, its announced length and its user metadata.
pub struct Object {
    pub reader: Box<dyn Read + Send>,
    pub content_length: Option<u64>,
    /// `x-amz-meta-*` headers, names lowercased without the prefix (the encryption
    /// envelope of a client-side-encrypted object is there).
    pub meta: Vec<(String, String)>,
}

/// A HeadObject answer: what the listing would say of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Without its quotes, as the listing gives it.
    pub etag: String,
    pub size: u64,
    /// Unix seconds of `Last-Modified`.
    pub last_modified: Option<u64>,
    /// As in [`Object::meta`].
    pub meta: Vec<(String, String)>,
}

fn header<'a>(resp: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn user_metadata(resp: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    resp.headers()
        .iter()
        .filter_map(|(n, v)| {
            let rest = n.as_str().strip_prefix("x-amz-meta-")?;
            Some((rest.to_ascii_lowercase(), v.to_str().ok()?.to_string()))
        })
        .collect()
}

/// A connection-pooling, signing S3 client for one bucket. Cheap to share between threads.
pub struct Client {
    agent: ureq::Agent,
    cfg: ClientConfig,
}

const SERVICE: &str = "s3";

impl Client {
    pub fn new(cfg: ClientConfig) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .max_idle_connections(128)
            .max_idle_connections_per_host(128)
            // Small buffers: one per worker connection; bodies stream through the caller's.
            .input_buffer_size(16 * 1024)
            .output_buffer_size(8 * 1024)
            .user_agent(concat!("s3imap/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client { agent, cfg }
    }

    pub fn bucket(&self) -> &str {
        &self.cfg.bucket
    }

    /// The wire path for `key` (None: the bucket itself).
    fn path(&self, key: Option<&str>) -> String {
        let mut p = String::from("/");
        if self.cfg.endpoint.path_style {
            p.push_str(&sigv4::uri_encode(&self.cfg.bucket, true));
            if key.is_some() {
                p.push('/');
            }
        }
        if let Some(k) = key {
            p.push_str(&sigv4::uri_encode(k, false));
        }
        p
    }

    /// Signs and sends one bodiless request; returns the raw response whatever its status.
    fn send(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, S3Error> {
        let path = self.path(key);
        let qs = sigv4::canonical_query_string(query);
        let date = AmzDate::now();
        let amz = date.amz();
        let mut headers: Vec<(&str, &str)> = vec![
            ("host", &self.cfg.endpoint.authority),
            ("x-amz-date", &amz),
            ("x-amz-content-sha256", sigv4::EMPTY_SHA256),
        ];
        if let Some(t) = &self.cfg.credentials.session_token {
            headers.push(("x-amz-security-token", t));
        }
        headers.extend_from_slice(extra);
        let req = Request {
            method,
            path: &path,
            query,
            headers: &headers,
            payload_hash: sigv4::EMPTY_SHA256,
        };
        let scope = Scope {
            region: &self.cfg.region,
            service: SERVICE,
        };
        let auth = sigv4::authorization(
            &self.cfg.credentials,
            &date,
            &scope,
            &req,
            &Options {
                normalize_path: false,
            },
        );
        let mut url = self.cfg.endpoint.base_url();
        url.push_str(&path);
        if !qs.is_empty() {
            url.push('?');
            url.push_str(&qs);
        }
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        builder = builder.header("authorization", auth);
        let request = builder.body(()).map_err(|e| S3Error::BadResponse {
            detail: format!("cannot build a request for {url}: {e}"),
        })?;
        let started = std::time::Instant::now();
        let r = self.agent.run(request);
        crate::metrics::get().request(
            "s3",
            r.as_ref().ok().map(|resp| resp.status().as_u16()),
            started.elapsed(),
        );
        r.map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, e: ureq::Error) -> S3Error {
        let endpoint = self.cfg.endpoint.base_url();
        match e {
            ureq::Error::Io(io) if is_connect_error(&io) => S3Error::Unreachable {
                endpoint,
                detail: io.to_string(),
            },
            ureq::Error::HostNotFound => S3Error::Unreachable {
                endpoint,
                detail: "host not found".into(),
            },
            ureq::Error::ConnectionFailed => S3Error::Unreachable {
                endpoint,
                detail: "connection failed".into(),
            },
            other => S3Error::Network {
                detail: other.to_string(),
            },
        }
    }

    /// Turns a non-2xx response into the most useful error.
    fn error_from(&self, resp: ureq::http::Response<ureq::Body>, key: Option<&str>) -> S3Error {
        let status = resp.status().as_u16();
        let region_header = resp
            .headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let date_header = resp
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_small(resp.into_body());
        let parsed = xml::parse_error(&body);
        let (code, message) = match &parsed {
            Some(e) => (e.code.clone(), e.message.clone()),
            None => (String::new(), String::new()),
        };
        self.classify(
            status,
            code,
            message,
            parsed,
            region_header,
            date_header,
            key,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn classify(
        &self,
        status: u16,
        code: String,
        message: String,
        parsed: Option<xml::S3Error>,
        region_header: Option<String>,
        date_header: Option<String>,
        key: Option<&str>,
    ) -> S3Error {
        let bucket = self.cfg.bucket.clone();
        match code.as_str() {
            "NoSuchBucket" => S3Error::NoSuchBucket { bucket },
            "NoSuchKey" => S3Error::NoSuchKey {
                key: key.unwrap_or_default().to_string(),
            },
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "TokenRefreshRequired" => S3Error::BadCredentials { code },
            "RequestTimeTooSkewed" => S3Error::ClockSkew {
                server_time: parsed.and_then(|p| p.server_time).or(date_header),
            },
            "AuthorizationHeaderMalformed" | "PermanentRedirect" | "IncorrectEndpoint" => {
                S3Error::WrongRegion {
                    region: parsed.and_then(|p| p.region).or(region_header),
                    ours: self.cfg.region.clone(),
                }
            }
            "AccessDenied" => S3Error::AccessDenied { bucket, message },
            _ if status == 301 || (status == 400 && region_header.is_some()) => {
                S3Error::WrongRegion {
                    region: region_header,
                    ours: self.cfg.region.clone(),
                }
            }
            _ if status == 404 && key.is_some() => S3Error::NoSuchKey {
                key: key.unwrap_or_default().to_string(),
            },
            _ if status == 403 && code.is_empty() => S3Error::AccessDenied {
                bucket,
                message: "HTTP 403".into(),
            },
            _ => S3Error::Http {
                status,
                code,
                message,
            },
        }
    }

    /// Runs `op` with the retry policy; `what` names it in the log.
    pub fn retrying<T>(
        &self,
        what: &str,
        mut op: impl FnMut() -> Result<T, S3Error>,
    ) -> Result<T, S3Error> {
        let mut attempt = 0;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt + 1 < self.cfg.retry.attempts => {
                    attempt += 1;
                    let d = self.cfg.retry.delay(attempt);
                    crate::warn!(
                        "s3",
                        "{what}: {e}; retry {attempt}/{} in {} ms",
                        self.cfg.retry.attempts - 1,
                        d.as_millis()
                    );
                    std::thread::sleep(d);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One ListObjectsV2 page (up to 1000 keys) under `prefix`, after `token`.
    pub fn list_page(&self, prefix: &str, token: Option<&str>) -> Result<ListPage, S3Error> {
        self.list_keys(prefix, token, "1000")
    }

    /// A one-key ListObjectsV2 under `prefix`: whether the credentials, region and bucket
    /// work (`s3imap check`).
    pub fn probe(&self, prefix: &str) -> Result<ListPage, S3Error> {
        self.list_keys(prefix, None, "1")
    }

    fn list_keys(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: &str,
    ) -> Result<ListPage, S3Error> {
        self.retrying("ListObjectsV2", || {
            let mut q: Vec<(&str, &str)> = vec![("list-type", "2"), ("max-keys", max_keys)];
            if !prefix.is_empty() {
                q.push(("prefix", prefix));
            }
            if let Some(t) = token {
                q.push(("continuation-token", t));
            }
            let resp = self.send("GET", None, &q, &[])?;
            if !resp.status().is_success() {
                return Err(self.error_from(resp, None));
            }
            let mut body = Vec::new();
            resp.into_body()
                .into_with_config()
                .limit(64 << 20)
                .reader()
                .read_to_end(&mut body)
                .map_err(|e| S3Error::Network {
                    detail: e.to_string(),
                })?;
            xml::parse_list_objects_v2(&body).map_err(|e| S3Error::BadResponse {
                detail: e.to_string(),
            })
        })
    }

    /// GetObject: the body as a stream. Only the request is retried here; a stream that
    /// breaks later is the caller's to retry.
    pub fn get(&self, key: &str) -> Result<Object, S3Error> {
        self.retrying("GetObject", || {
            let resp = self.send("GET", Some(key), &[], &[])?;
            if !resp.status().is_success() {
                return Err(self.error_from(resp, Some(key)));
            }
            let content_length = header(&resp, "content-length").and_then(|v| v.parse().ok());
            let meta = user_metadata(&resp);
            let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
            Ok(Object {
                reader: Box::new(reader),
                content_length,
                meta,
            })
        })
    }

    /// HeadObject: the ETag, size and time a notification does not carry.
    pub fn head(&self, key: &str) -> Result<Head, S3Error> {
        self.retrying("HeadObject", || {
            let resp = self.send("HEAD", Some(key), &[], &[])?;
            if !resp.status().is_success() {
                // A HEAD answer has no body to read a code from.
                return Err(match resp.status().as_u16() {
                    404 => S3Error::NoSuchKey { key: key.into() },
                    _ => self.error_from(resp, Some(key)),
                });
            }
            let etag = header(&resp, "etag")
                .map(|e| e.trim().trim_matches('"').to_string())
                .unwrap_or_default();
            let size = header(&resp, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let last_modified = header(&resp, "last-modified").and_then(sigv4::parse_http_date);
            Ok(Head {
                etag,
                size,
                last_modified,
                meta: user_metadata(&resp),
            })
        })
    }

    /// DeleteObject; a key that is already gone counts as deleted.
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.retrying("DeleteObject", || {
            let resp = self.send("DELETE", Some(key), &[], &[])?;
            if resp.status().is_success() || resp.status().as_u16() == 404 {
                let _ = read_small(resp.into_body());
                return Ok(());
            }
            Err(self.error_from(resp, Some(key)))
        })
    }

    /// CopyObject within the bucket. S3 may answer 200 with an `<Error>` body; that is an error.
    pub fn copy(&self, from: &str, to: &str) -> Result<(), S3Error> {
        let source = format!(
            "/{}/{}",
            sigv4::uri_encode(&self.cfg.bucket, true),
            sigv4::uri_encode(from, false)
        );
        self.retrying("CopyObject", || {
            let resp = self.send("PUT", Some(to), &[], &[("x-amz-copy-source", &source)])?;
            if !resp.status().is_success() {
                return Err(self.error_from(resp, Some(from)));
            }
            let body = read_small(resp.into_body());
            if let Some(e) = xml::parse_error(&body) {
                return Err(self.classify(
                    200,
                    e.code.clone(),
                    e.message.clone(),
                    Some(e),
                    None,
                    None,
                    Some(from),
                ));
            }
            Ok(())
        })
    }
}

/// Reads at most 1 MiB of an error or control body.
fn read_small(body: ureq::Body) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = body
        .into_with_config()
        .limit(1 << 20)
        .reader()
        .read_to_end(&mut v);
    v
}

/// A connection that could not be made at all (vs one that broke).
pub fn is_connect_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | AddrNotAvailable | NetworkUnreachable | HostUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse_url("http://127.0.0.1:8333/").unwrap();
        assert_eq!(e.authority, "127.0.0.1:8333");
        assert!(e.path_style);
        assert_eq!(Endpoint::parse_url("https://h:443").unwrap().authority, "h");
        assert!(Endpoint::parse_url("ftp://h").is_err());
        assert!(Endpoint::parse_url("http://h/base").is_err());
        let a = Endpoint::aws("eu-west-1", "mail");
        assert_eq!(a.authority, "mail.s3.eu-west-1.amazonaws.com");
        assert!(!a.path_style);
        assert!(Endpoint::aws("us-east-1", "a.b").path_style);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            let d = p.delay(attempt);
            assert!(d <= p.cap, "{d:?}");
        }
        let spread: std::collections::HashSet<u128> =
            (0..20).map(|_| p.delay(3).as_micros()).collect();
        assert!(spread.len() > 10, "jitter should vary: {spread:?}");
    }

    #[test]
    fn retryable_errors() {
        let http = |status, code: &str| S3Error::Http {
            status,
            code: code.into(),
            message: String::new(),
        };
        assert!(http(503, "SlowDown").is_retryable());
        assert!(http(500, "").is_retryable());
        assert!(http(400, "RequestTimeout").is_retryable());
        assert!(!http(400, "InvalidArgument").is_retryable());
        assert!(!S3Error::BadCredentials { code: "x".into() }.is_retryable());
        assert!(!S3Error::NoSuchBucket { bucket: "b".into() }.is_retryable());
    }
}
