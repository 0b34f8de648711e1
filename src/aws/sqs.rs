//! The events queue: SQS ReceiveMessage (long poll), DeleteMessage and
//! ChangeMessageVisibility over the AWS JSON protocol, for one queue URL.

use super::json::{AwsError, JsonClient, region_of_host};
use crate::s3::client::{Endpoint, RetryPolicy};
use crate::s3::sigv4::Credentials;
use serde_json::json;
use std::fmt;
use std::time::Duration;

/// SQS's longest long poll, which is also the cheapest: ~4,300 requests a day at idle.
pub const LONG_POLL: Duration = Duration::from_secs(20);

/// How long a received message stays hidden from other receivers: longer than a delivery can
/// wait for the sync lock ([`crate::sync::LOCK_PATIENCE`]) plus the delivery itself.
pub const RECEIVE_VISIBILITY: Duration = Duration::from_secs(900);

/// SQS refuses a visibility timeout that ends more than 12 h after the message was received;
/// a little under it leaves room for the time since.
const MAX_VISIBILITY: u64 = 42_000;

/// A queue URL that is not `http(s)://host[:port]/account/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadQueueUrl;

impl fmt::Display for BadQueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "expected the queue URL as SQS shows it, \
             e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/mail-events",
        )
    }
}

impl std::error::Error for BadQueueUrl {}

/// Where a queue is: its endpoint, its region when the host names one, and the URL itself.
#[derive(Debug, Clone)]
pub struct QueueUrl {
    pub url: String,
    pub endpoint: Endpoint,
    pub region: Option<String>,
}

impl QueueUrl {
    pub fn parse(url: &str) -> Result<QueueUrl, BadQueueUrl> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or(BadQueueUrl)?;
        let (authority, path) = rest.split_once('/').ok_or(BadQueueUrl)?;
        let mut parts = path.trim_end_matches('/').split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(n), None) if !a.is_empty() && !n.is_empty() => {}
            _ => return Err(BadQueueUrl),
        }
        let scheme_len = url.len() - rest.len();
        let endpoint = Endpoint::parse_url(&format!("{}{authority}", &url[..scheme_len]))
            .map_err(|_| BadQueueUrl)?;
        Ok(QueueUrl {
            url: url.trim_end_matches('/').to_string(),
            region: region_of_host(authority),
            endpoint,
        })
    }
}

/// One message taken from the queue (invisible to others until deleted or its visibility
/// timeout ends).
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

pub struct Queue {
    client: JsonClient,
    url: String,
}

impl Queue {
    /// `region` is used when the URL's host names none (a test server).
    pub fn new(
        url: &QueueUrl,
        region: &str,
        credentials: Credentials,
        retry: RetryPolicy,
    ) -> Queue {
        let region = url.region.clone().unwrap_or_else(|| region.to_string());
        Queue {
            client: JsonClient::new(
                url.endpoint.clone(),
                region,
                credentials,
                retry,
                ("sqs", "AmazonSQS", "application/x-amz-json-1.0"),
                LONG_POLL + Duration::from_secs(20),
            ),
            url: url.url.clone(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Up to 10 messages, waiting up to `wait` (at most 20 s) for the first.
    pub fn receive(&self, wait: Duration) -> Result<Vec<Message>, AwsError> {
        self.receive_with(10, wait.min(LONG_POLL), RECEIVE_VISIBILITY)
    }

    /// ReceiveMessage: up to `max` messages, hidden from other receivers for `hidden`.
    fn receive_with(
        &self,
        max: u32,
        wait: Duration,
        hidden: Duration,
    ) -> Result<Vec<Message>, AwsError> {
        let v = self.client.call(
            "ReceiveMessage",
            &json!({
                "QueueUrl": self.url,
                "MaxNumberOfMessages": max,
                "WaitTimeSeconds": wait.as_secs(),
                "VisibilityTimeout": hidden.as_secs(),
                "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
                "AttributeNames": ["ApproximateReceiveCount"],
            }),
        )?;
        let bad = |detail: &str| AwsError::BadResponse {
            service: "sqs",
            detail: detail.to_string(),
        };
        let Some(list) = v.get("Messages") else {
            return Ok(Vec::new());
        };
        let list = list
            .as_array()
            .ok_or_else(|| bad("Messages is not a list"))?;
        let mut out = Vec::with_capacity(list.len());
        for m in list {
            let s = |k: &str| m.get(k).and_then(|x| x.as_str());
            let (Some(id), Some(handle)) = (s("MessageId"), s("ReceiptHandle")) else {
                return Err(bad("a message without MessageId or ReceiptHandle"));
            };
            let receive_count = m
                .get("Attributes")
                .and_then(|a| a.get("ApproximateReceiveCount"))
                .and_then(|c| c.as_str())
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            out.push(Message {
                id: id.to_string(),
                receipt_handle: handle.to_string(),
                body: s("Body").unwrap_or_default().to_string(),
                receive_count,
            });
        }
        Ok(out)
    }

    /// The queue's attributes (GetQueueAttributes): whether it is there and readable.
    pub fn attributes(&self) -> Result<serde_json::Map<String, serde_json::Value>, AwsError> {
        let v = self.client.call(
            "GetQueueAttributes",
            &json!({"QueueUrl": self.url, "AttributeNames": ["All"]}),
        )?;
        Ok(v.get("Attributes")
            .and_then(|a| a.as_object())
            .cloned()
            .unwrap_or_default())
    }

    /// One waiting message, left visible to the server (`s3imap check`; it counts as a receive
    /// towards the redrive policy's maxReceiveCount).
    pub fn peek(&self) -> Result<Option<Message>, AwsError> {
        Ok(self
            .receive_with(1, Duration::ZERO, Duration::ZERO)?
            .into_iter()
            .next())
    }

    /// Removes a handled message for good.
    pub fn delete(&self, m: &Message) -> Result<(), AwsError> {
        self.client
            .call(
                "DeleteMessage",
                &json!({"QueueUrl": self.url, "ReceiptHandle": m.receipt_handle}),
            )
            .map(drop)
    }

    /// Hides a message that failed for `secs` before it is received again (a back-off; the
    /// queue's redrive policy moves it aside after its maxReceiveCount).
    pub fn postpone(&self, m: &Message, secs: u64) -> Result<(), AwsError> {
        self.client
            .call(
                "ChangeMessageVisibility",
                &json!({
                    "QueueUrl": self.url,
                    "ReceiptHandle": m.receipt_handle,
                    "VisibilityTimeout": secs.min(MAX_VISIBILITY),
                }),
            )
            .map(drop)
    }
}

/// The back-off for a message received `count` times that failed again: 30 s doubling, at
/// most a little under 12 h (SQS's limit, counted from the receive).
pub fn backoff_secs(count: u32) -> u64 {
    30u64
        .saturating_mul(1u64 << count.saturating_sub(1).min(16))
        .min(MAX_VISIBILITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls() {
        let q = QueueUrl::parse("https://sqs.eu-west-1.amazonaws.com/123456789012/mail").unwrap();
        assert_eq!(q.region.as_deref(), Some("eu-west-1"));
        assert_eq!(q.endpoint.authority, "sqs.eu-west-1.amazonaws.com");
        let q = QueueUrl::parse("http://127.0.0.1:5000/123456789012/mail").unwrap();
        assert_eq!(q.region, None);
        assert_eq!(q.endpoint.base_url(), "http://127.0.0.1:5000");
        assert!(QueueUrl::parse("sqs.eu-west-1.amazonaws.com/1/mail").is_err());
        assert!(QueueUrl::parse("https://sqs.eu-west-1.amazonaws.com/mail").is_err());
        assert!(QueueUrl::parse("https://h/1/mail/extra").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_secs(1), 30);
        assert_eq!(backoff_secs(2), 60);
        assert_eq!(backoff_secs(12), MAX_VISIBILITY);
        assert_eq!(backoff_secs(40), MAX_VISIBILITY);
    }
}
