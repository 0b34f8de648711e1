//! One signed AWS JSON-protocol call: `POST /` with `X-Amz-Target: <Service>.<Operation>`, a
//! JSON body, and a JSON answer or a JSON error (`__type`, `message`). Shared by SQS and KMS.

use crate::s3::client::{Endpoint, RetryPolicy};
use crate::s3::sigv4::{self, AmzDate, Credentials, Options, Request, Scope};
use std::fmt;
use std::io::Read;
use std::time::{Duration, Instant};

/// What a JSON-protocol call can end in, each with what to do about it.
#[derive(Debug)]
pub enum AwsError {
    /// The endpoint could not be reached at all.
    Unreachable { endpoint: String, detail: String },
    /// The connection broke or timed out mid-request.
    Network { detail: String },
    /// Unknown access key, or a signature the service computed differently.
    BadCredentials { service: &'static str, code: String },
    /// The credentials work but may not do this (IAM policy, key policy).
    AccessDenied {
        service: &'static str,
        message: String,
    },
    /// The queue or key named does not exist (in this region or account).
    NotFound {
        service: &'static str,
        code: String,
        message: String,
    },
    /// The ciphertext, its context or the key refused the decryption (KMS).
    InvalidCiphertext { message: String },
    /// Any other answer that is not a success.
    Http {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// A body that should have been the service's JSON and was not.
    BadResponse {
        service: &'static str,
        detail: String,
    },
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsError::Unreachable { endpoint, detail } => {
                write!(f, "cannot reach {endpoint}: {detail}")
            }
            AwsError::Network { detail } => write!(f, "network error: {detail}"),
            AwsError::BadCredentials { service, code } => write!(
                f,
                "{service} refused the credentials ({code}): check AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY"
            ),
            AwsError::AccessDenied { service, message } => write!(
                f,
                "{service} denied access ({message}): the IAM policy must allow it"
            ),
            AwsError::NotFound {
                service,
                code,
                message,
            } => write!(f, "{service}: {code}: {message}"),
            AwsError::InvalidCiphertext { message } => write!(
                f,
                "KMS would not decrypt the object's data key (InvalidCiphertextException: \
                 {message}): the key or its encryption context does not match"
            ),
            AwsError::Http {
                service,
                status,
                code,
                message,
            } => write!(f, "{service} answered HTTP {status} {code}: {message}"),
            AwsError::BadResponse { service, detail } => {
                write!(f, "{service} sent an answer that makes no sense: {detail}")
            }
        }
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    /// Worth another try: throttling, server errors, broken connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            AwsError::Network { .. } | AwsError::Unreachable { .. } => true,
            AwsError::Http { status, code, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || code.contains("Throttl")
                    || code.contains("RequestThrottled")
                    || code.contains("ServiceUnavailable")
            }
            _ => false,
        }
    }
}

/// A signing JSON-protocol client for one service at one endpoint.
pub struct JsonClient {
    agent: ureq::Agent,
    endpoint: Endpoint,
    region: String,
    credentials: Credentials,
    retry: RetryPolicy,
    /// SigV4's service name (`sqs`, `kms`).
    service: &'static str,
    /// `X-Amz-Target` prefix (`AmazonSQS`, `TrentService`).
    target: &'static str,
    /// `application/x-amz-json-1.0` or `-1.1`.
    content_type: &'static str,
}

impl JsonClient {
    pub fn new(
        endpoint: Endpoint,
        region: String,
        credentials: Credentials,
        retry: RetryPolicy,
        (service, target, content_type): (&'static str, &'static str, &'static str),
        recv_timeout: Duration,
    ) -> JsonClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(recv_timeout))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .max_idle_connections(4)
            .user_agent(concat!("s3imap/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        JsonClient {
            agent,
            endpoint,
            region,
            credentials,
            retry,
            service,
            target,
            content_type,
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Calls `operation` with `body`, retrying what is worth retrying.
    pub fn call(
        &self,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, AwsError> {
        let bytes = body.to_string().into_bytes();
        let mut attempt = 0;
        loop {
            match self.call_once(operation, &bytes) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt + 1 < self.retry.attempts => {
                    attempt += 1;
                    let d = self.retry.delay(attempt);
                    crate::warn!(
                        self.service,
                        "{operation}: {e}; retry {attempt}/{} in {} ms",
                        self.retry.attempts - 1,
                        d.as_millis()
                    );
                    std::thread::sleep(d);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn call_once(&self, operation: &str, body: &[u8]) -> Result<serde_json::Value, AwsError> {
        let date = AmzDate::now();
        let amz = date.amz();
        let hash = sigv4::sha256_hex(body);
        let target = format!("{}.{operation}", self.target);
        let mut headers: Vec<(&str, &str)> = vec![
            ("host", &self.endpoint.authority),
            ("x-amz-date", &amz),
            ("content-type", self.content_type),
            ("x-amz-target", &target),
        ];
        if let Some(t) = &self.credentials.session_token {
            headers.push(("x-amz-security-token", t));
        }
        let req = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: &hash,
        };
        let scope = Scope {
            region: &self.region,
            service: self.service,
        };
        let auth = sigv4::authorization(
            &self.credentials,
            &date,
            &scope,
            &req,
            &Options {
                normalize_path: true,
            },
        );
        let mut url = self.endpoint.base_url();
        url.push('/');
        let mut builder = ureq::http::Request::builder().method("POST").uri(&url);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        builder = builder.header("authorization", auth);
        let request = builder
            .body(body.to_vec())
            .map_err(|e| AwsError::BadResponse {
                service: self.service,
                detail: format!("cannot build a request for {url}: {e}"),
            })?;
        let started = Instant::now();
        let r = self.agent.run(request);
        crate::metrics::get().request(
            self.service,
            r.as_ref().ok().map(|resp| resp.status().as_u16()),
            started.elapsed(),
        );
        let resp = r.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let mut text = Vec::new();
        resp.into_body()
            .into_with_config()
            .limit(4 << 20)
            .reader()
            .read_to_end(&mut text)
            .map_err(|e| AwsError::Network {
                detail: e.to_string(),
            })?;
        let value: Option<serde_json::Value> = if text.is_empty() {
            Some(serde_json::Value::Object(Default::default()))
        } else {
            serde_json::from_slice(&text).ok()
        };
        if (200..300).contains(&status) {
            return value.ok_or_else(|| AwsError::BadResponse {
                service: self.service,
                detail: format!("not JSON: {}", shown(&text)),
            });
        }
        Err(self.classify(status, value.as_ref(), &text))
    }

    fn classify(&self, status: u16, v: Option<&serde_json::Value>, raw: &[u8]) -> AwsError {
        let field = |k: &str| {
            v.and_then(|v| v.get(k))
                .and_then(|x| x.as_str())
                .map(str::to_string)
        };
        // `__type` is `com.amazonaws.sqs#QueueDoesNotExist` or `AccessDeniedException`.
        let code = field("__type")
            .map(|t| t.rsplit('#').next().unwrap_or(&t).to_string())
            .unwrap_or_default();
        let message = field("message")
            .or_else(|| field("Message"))
            .unwrap_or_else(|| shown(raw));
        let service = self.service;
        match code.as_str() {
            "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "ExpiredToken"
            | "ExpiredTokenException" => AwsError::BadCredentials { service, code },
            "AccessDenied" | "AccessDeniedException" => AwsError::AccessDenied { service, message },
            "QueueDoesNotExist"
            | "AWS.SimpleQueueService.NonExistentQueue"
            | "NotFoundException" => AwsError::NotFound {
                service,
                code,
                message,
            },
            "InvalidCiphertextException" | "IncorrectKeyException" => {
                AwsError::InvalidCiphertext { message }
            }
            _ if status == 403 => AwsError::AccessDenied { service, message },
            _ => AwsError::Http {
                service,
                status,
                code,
                message,
            },
        }
    }

    fn transport_error(&self, e: ureq::Error) -> AwsError {
        let endpoint = self.endpoint.base_url();
        match e {
            ureq::Error::Io(io) if crate::s3::client::is_connect_error(&io) => {
                AwsError::Unreachable {
                    endpoint,
                    detail: io.to_string(),
                }
            }
            ureq::Error::HostNotFound => AwsError::Unreachable {
                endpoint,
                detail: "host not found".into(),
            },
            ureq::Error::ConnectionFailed => AwsError::Unreachable {
                endpoint,
                detail: "connection failed".into(),
            },
            other => AwsError::Network {
                detail: other.to_string(),
            },
        }
    }
}

/// The first 200 bytes of a body, printable.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(200)]).into_owned()
}

/// The region in an AWS host name (`sqs.eu-west-1.amazonaws.com`,
/// `eu-west-1.queue.amazonaws.com`), if it names one.
pub fn region_of_host(host: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    if !host.ends_with(".amazonaws.com") && !host.ends_with(".amazonaws.com.cn") {
        return None;
    }
    match labels.as_slice() {
        [svc, region, ..] if (*svc == "sqs" || *svc == "kms") && region.contains('-') => {
            Some(region.to_string())
        }
        [region, "queue", ..] if region.contains('-') => Some(region.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_hosts() {
        assert_eq!(
            region_of_host("sqs.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_host("us-east-2.queue.amazonaws.com").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region_of_host("127.0.0.1:5000"), None);
        assert_eq!(region_of_host("queue.amazonaws.com"), None);
    }
}
