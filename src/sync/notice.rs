//! What an events-queue message says, sans I/O: the objects to deliver and, from SES, their
//! envelope recipients.
//!
//! Three shapes are read, each alone or inside SNS's envelope (`{"Type":"Notification",
//! "Message":"<the JSON as a string>"}`; without it when the subscription has raw message
//! delivery on):
//! - SES's receipt notification (`"notificationType":"Received"`), whose
//!   `receipt.action` names the bucket and key of an S3 action and whose `receipt.recipients`
//!   are the envelope recipients the rule matched: Bcc recipients included, which no header
//!   records;
//! - S3's event notification (`{"Records":[{"eventName":"ObjectCreated:Put","s3":{...}}]}`),
//!   for S3 wired to SQS (or SNS) directly; it names no recipients;
//! - the test messages S3 and SNS send when the wiring is set up, which are ignored.

use serde_json::Value;
use std::fmt;

/// One object to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub bucket: String,
    pub key: String,
    /// SES's envelope recipients; `None` for an S3 event (route on the header).
    pub recipients: Option<Vec<String>>,
}

/// A message understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Notices(Vec<Notice>),
    /// Understood, with nothing to deliver; the reason is for the log.
    Ignore(Ignored),
}

/// Messages that are understood and carry no mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// S3's `s3:TestEvent`, sent when the notification is configured.
    S3TestEvent,
    /// SNS's subscription confirmation or unsubscribe message.
    SnsControl,
    /// An S3 event that is not an object creation (a delete, a restore).
    NotACreation,
    /// An SES notification of another kind, or whose action did not write to S3.
    NotS3Action,
    /// SES's `AMAZON_SES_SETUP_NOTIFICATION` object, written when a rule is created.
    SetupObject,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ignored::S3TestEvent => "S3's test event",
            Ignored::SnsControl => "an SNS subscription message",
            Ignored::NotACreation => "an S3 event other than an object creation",
            Ignored::NotS3Action => "an SES notification whose action is not S3",
            Ignored::SetupObject => "SES's setup notification object",
        })
    }
}

/// A message that is none of the shapes above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeError {
    NotJson,
    /// JSON, but not SES's, S3's or SNS's; `what` says what was missing.
    Unknown {
        what: &'static str,
    },
}

impl fmt::Display for NoticeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoticeError::NotJson => f.write_str("the message body is not JSON"),
            NoticeError::Unknown { what } => write!(
                f,
                "not an SES, S3 or SNS notification ({what}); is the queue subscribed to the \
                 SES rule's SNS topic?"
            ),
        }
    }
}

impl std::error::Error for NoticeError {}

/// Reads one SQS message body.
pub fn parse(body: &str) -> Result<Parsed, NoticeError> {
    let v: Value = serde_json::from_str(body).map_err(|_| NoticeError::NotJson)?;
    parse_value(&v, true)
}

fn parse_value(v: &Value, outer: bool) -> Result<Parsed, NoticeError> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    // SNS's envelope.
    if outer && let Some(t) = s(v, "Type") {
        return match t.as_str() {
            "Notification" => {
                let inner = s(v, "Message").ok_or(NoticeError::Unknown {
                    what: "an SNS notification without Message",
                })?;
                let inner: Value =
                    serde_json::from_str(&inner).map_err(|_| NoticeError::Unknown {
                        what: "an SNS notification whose Message is not JSON",
                    })?;
                parse_value(&inner, false)
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                Ok(Parsed::Ignore(Ignored::SnsControl))
            }
            _ => Err(NoticeError::Unknown {
                what: "an SNS message of an unknown Type",
            }),
        };
    }
    if v.get("notificationType").is_some() {
        return ses(v);
    }
    if let Some(records) = v.get("Records") {
        return s3_event(records);
    }
    if s(v, "Event").as_deref() == Some("s3:TestEvent") {
        return Ok(Parsed::Ignore(Ignored::S3TestEvent));
    }
    Err(NoticeError::Unknown {
        what: "neither notificationType nor Records",
    })
}

fn is_setup_object(key: &str) -> bool {
    key.rsplit('/').next() == Some(super::SES_SETUP_NOTIFICATION)
}

fn ses(v: &Value) -> Result<Parsed, NoticeError> {
    if v.get("notificationType").and_then(Value::as_str) != Some("Received") {
        return Ok(Parsed::Ignore(Ignored::NotS3Action));
    }
    let receipt = v.get("receipt").ok_or(NoticeError::Unknown {
        what: "an SES notification without receipt",
    })?;
    let action = receipt.get("action").ok_or(NoticeError::Unknown {
        what: "an SES notification without receipt.action",
    })?;
    if action.get("type").and_then(Value::as_str) != Some("S3") {
        return Ok(Parsed::Ignore(Ignored::NotS3Action));
    }
    let field = |k: &str, what| {
        action
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or(NoticeError::Unknown { what })
    };
    let bucket = field("bucketName", "an S3 action without bucketName")?;
    let key = field("objectKey", "an S3 action without objectKey")?;
    if is_setup_object(&key) {
        return Ok(Parsed::Ignore(Ignored::SetupObject));
    }
    let recipients: Vec<String> = receipt
        .get("recipients")
        .and_then(Value::as_array)
        .ok_or(NoticeError::Unknown {
            what: "an SES notification without receipt.recipients",
        })?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    Ok(Parsed::Notices(vec![Notice {
        bucket,
        key,
        recipients: Some(recipients),
    }]))
}

fn s3_event(records: &Value) -> Result<Parsed, NoticeError> {
    let records = records.as_array().ok_or(NoticeError::Unknown {
        what: "Records is not a list",
    })?;
    let mut out = Vec::new();
    for r in records {
        let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        if !name.starts_with("ObjectCreated:") {
            continue;
        }
        let s3 = r.get("s3").ok_or(NoticeError::Unknown {
            what: "an S3 event record without s3",
        })?;
        let get = |path: [&str; 2]| {
            s3.get(path[0])
                .and_then(|o| o.get(path[1]))
                .and_then(Value::as_str)
        };
        let (Some(bucket), Some(key)) = (get(["bucket", "name"]), get(["object", "key"])) else {
            return Err(NoticeError::Unknown {
                what: "an S3 event record without bucket.name or object.key",
            });
        };
        // S3 event keys are URL-encoded as a form is: `+` for a space.
        let key = crate::s3::xml::url_decode(key).map_err(|_| NoticeError::Unknown {
            what: "an S3 event key that is not URL-encoded UTF-8",
        })?;
        if is_setup_object(&key) || key.ends_with('/') {
            continue;
        }
        out.push(Notice {
            bucket: bucket.to_string(),
            key,
            recipients: None,
        });
    }
    if out.is_empty() {
        return Ok(Parsed::Ignore(Ignored::NotACreation));
    }
    Ok(Parsed::Notices(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SES's "Received" notification for an S3 action, as the SES developer guide's
    /// "Examples of notifications for Amazon SES email receiving" shows it (shortened headers).
    pub const SES_RECEIVED: &str = r#"{
      "notificationType": "Received",
      "mail": {
        "timestamp": "2015-09-11T20:32:33.936Z",
        "source": "61967230-7A45-4A9D-BEC9-87CBCF2211C9@example.com",
        "messageId": "d6iitobk75ur44p8kdnnp7g2n800",
        "destination": ["recipient@example.com"],
        "headersTruncated": false,
        "headers": [{"name": "Return-Path", "value": "<0000014fbe1c09cf-7cb9f704-7531-4e53-89a1-5fa9744f5eb6-000000@amazonses.com>"}],
        "commonHeaders": {"returnPath": "0000014fbe1c09cf@amazonses.com", "from": ["sender@example.com"], "date": "Fri, 11 Sep 2015 20:32:32 +0000", "to": ["recipient@example.com"], "messageId": "<61967230@example.com>", "subject": "Example subject"}
      },
      "receipt": {
        "timestamp": "2015-09-11T20:32:33.936Z",
        "processingTimeMillis": 222,
        "recipients": ["recipient@example.com", "bcc@example.com"],
        "spamVerdict": {"status": "PASS"},
        "virusVerdict": {"status": "PASS"},
        "spfVerdict": {"status": "PASS"},
        "dkimVerdict": {"status": "PASS"},
        "dmarcVerdict": {"status": "PASS"},
        "action": {
          "type": "S3",
          "topicArn": "arn:aws:sns:us-east-1:012345678912:example-topic",
          "bucketName": "amzn-s3-demo-bucket",
          "objectKeyPrefix": "email",
          "objectKey": "email/fc8p6fe9ensfa61hm7s6uqeupkb5o2g1cm2ofs01"
        }
      }
    }"#;

    fn sns(inner: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:012345678912:example-topic",
            "Subject": "Amazon SES Email Receipt Notification",
            "Message": inner,
            "Timestamp": "2015-09-11T20:32:34.001Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://example.com/cert.pem",
            "UnsubscribeURL": "https://example.com/unsubscribe"
        })
        .to_string()
    }

    fn ses_notice() -> Parsed {
        Parsed::Notices(vec![Notice {
            bucket: "amzn-s3-demo-bucket".into(),
            key: "email/fc8p6fe9ensfa61hm7s6uqeupkb5o2g1cm2ofs01".into(),
            recipients: Some(vec![
                "recipient@example.com".into(),
                "bcc@example.com".into(),
            ]),
        }])
    }

    #[test]
    fn ses_in_sns_and_raw() {
        assert_eq!(parse(&sns(SES_RECEIVED)), Ok(ses_notice()));
        assert_eq!(parse(SES_RECEIVED), Ok(ses_notice()));
    }

    #[test]
    fn s3_events() {
        let ev = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3",
          "awsRegion":"us-west-2","eventTime":"1970-01-01T00:00:00.000Z",
          "eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0",
          "configurationId":"mail","bucket":{"name":"mybucket","arn":"arn:aws:s3:::mybucket"},
          "object":{"key":"inbox/a+b%C3%A9%2Bc","size":1024,
          "eTag":"d41d8cd98f00b204e9800998ecf8427e","sequencer":"0055AED6DCD90281E5"}}},
          {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"mybucket"},
          "object":{"key":"gone"}}}]}"#;
        let want = Parsed::Notices(vec![Notice {
            bucket: "mybucket".into(),
            key: "inbox/a bé+c".into(),
            recipients: None,
        }]);
        assert_eq!(parse(ev), Ok(want.clone()));
        assert_eq!(parse(&sns(ev)), Ok(want));
        let only_delete = r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{}}]}"#;
        assert_eq!(
            parse(only_delete),
            Ok(Parsed::Ignore(Ignored::NotACreation))
        );
    }

    #[test]
    fn ignored_and_refused() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent",
            "Time":"2014-10-13T15:57:02.089Z","Bucket":"mybucket",
            "RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        assert_eq!(parse(test_event), Ok(Parsed::Ignore(Ignored::S3TestEvent)));
        let confirm = r#"{"Type":"SubscriptionConfirmation","Message":"You have chosen..."}"#;
        assert_eq!(parse(confirm), Ok(Parsed::Ignore(Ignored::SnsControl)));
        let setup = SES_RECEIVED.replace(
            "email/fc8p6fe9ensfa61hm7s6uqeupkb5o2g1cm2ofs01",
            "email/AMAZON_SES_SETUP_NOTIFICATION",
        );
        assert_eq!(parse(&setup), Ok(Parsed::Ignore(Ignored::SetupObject)));
        let bounce = SES_RECEIVED.replace("\"type\": \"S3\"", "\"type\": \"Lambda\"");
        assert_eq!(parse(&bounce), Ok(Parsed::Ignore(Ignored::NotS3Action)));
        assert_eq!(parse("hello"), Err(NoticeError::NotJson));
        assert!(matches!(parse("{}"), Err(NoticeError::Unknown { .. })));
        assert!(matches!(
            parse(r#"{"Type":"Notification","Message":"not json"}"#),
            Err(NoticeError::Unknown { .. })
        ));
        let no_recipients = SES_RECEIVED.replace("\"recipients\"", "\"recipientz\"");
        assert!(matches!(
            parse(&no_recipients),
            Err(NoticeError::Unknown { .. })
        ));
    }
}
