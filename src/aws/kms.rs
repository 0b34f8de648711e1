//! Client-side-encrypted objects (what SES writes when its S3 action has a KMS key): the
//! envelope read from the object's metadata, sans I/O ([`Envelope::from_metadata`]), and the
//! KMS Decrypt call that unwraps its data key ([`Kms::data_key`]). The body is then
//! AES-256-GCM, decrypted as it streams by [`crate::crypto::gcm`].
//!
//! The metadata, as the S3 encryption client writes it (`x-amz-meta-` stripped):
//! `x-amz-key-v2` (the KMS-encrypted data key, base64), `x-amz-iv` (12 bytes, base64),
//! `x-amz-cek-alg: AES/GCM/NoPadding`, `x-amz-wrap-alg: kms` or `kms+context`,
//! `x-amz-matdesc` (the KMS encryption context, JSON), `x-amz-tag-len: 128` and
//! `x-amz-unencrypted-content-length`.

use super::json::{AwsError, JsonClient};
use crate::s3::client::{Endpoint, RetryPolicy};
use crate::s3::sigv4::Credentials;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// What is needed to decrypt one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The data key as KMS encrypted it.
    pub wrapped_key: Vec<u8>,
    pub iv: [u8; 12],
    /// The KMS encryption context (`x-amz-matdesc`), passed back to Decrypt as it is.
    pub context: serde_json::Map<String, serde_json::Value>,
    /// The plaintext's length, when the writer recorded it.
    pub plaintext_len: Option<u64>,
}

/// Metadata that says "encrypted" but not in a way this server can decrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// A content cipher other than AES/GCM/NoPadding (e.g. the legacy AES/CBC).
    Cipher(String),
    /// A key wrapping other than KMS (a client-held key SES never uses).
    Wrap(String),
    /// A field missing or malformed.
    Field {
        name: &'static str,
        why: &'static str,
    },
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Cipher(c) => write!(
                f,
                "the object is encrypted with {c:?}; only AES/GCM/NoPadding (what SES uses) \
                 is supported"
            ),
            EnvelopeError::Wrap(w) => write!(
                f,
                "the object's data key is wrapped by {w:?}; only KMS (what SES uses) is supported"
            ),
            EnvelopeError::Field { name, why } => {
                write!(f, "the object's encryption metadata {name} is {why}")
            }
        }
    }
}

impl std::error::Error for EnvelopeError {}

impl Envelope {
    /// `meta`: the object's user metadata, names lowercased without `x-amz-meta-`.
    /// `Ok(None)`: not client-side encrypted.
    pub fn from_metadata(meta: &[(String, String)]) -> Result<Option<Envelope>, EnvelopeError> {
        let get = |k: &str| meta.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(key) = get("x-amz-key-v2") else {
            if get("x-amz-key").is_some() {
                return Err(EnvelopeError::Cipher("AES/CBC/PKCS5Padding".into()));
            }
            return Ok(None);
        };
        let field = |name, why| EnvelopeError::Field { name, why };
        match get("x-amz-cek-alg") {
            Some("AES/GCM/NoPadding") => {}
            Some(other) => return Err(EnvelopeError::Cipher(other.into())),
            None => return Err(field("x-amz-cek-alg", "missing")),
        }
        match get("x-amz-wrap-alg") {
            Some("kms") | Some("kms+context") => {}
            Some(other) => return Err(EnvelopeError::Wrap(other.into())),
            None => return Err(field("x-amz-wrap-alg", "missing")),
        }
        if let Some(t) = get("x-amz-tag-len")
            && t != "128"
        {
            return Err(field("x-amz-tag-len", "not 128"));
        }
        let wrapped_key = B64
            .decode(key.trim())
            .map_err(|_| field("x-amz-key-v2", "not base64"))?;
        let iv = B64
            .decode(get("x-amz-iv").ok_or(field("x-amz-iv", "missing"))?.trim())
            .map_err(|_| field("x-amz-iv", "not base64"))?;
        let iv: [u8; 12] = iv
            .try_into()
            .map_err(|_| field("x-amz-iv", "not 12 bytes"))?;
        let context = match get("x-amz-matdesc") {
            None => serde_json::Map::new(),
            Some(m) => match serde_json::from_str::<serde_json::Value>(m) {
                Ok(serde_json::Value::Object(o)) if o.values().all(|v| v.is_string()) => o,
                _ => return Err(field("x-amz-matdesc", "not a JSON object of strings")),
            },
        };
        let plaintext_len = match get("x-amz-unencrypted-content-length") {
            None => None,
            Some(l) => Some(
                l.trim()
                    .parse()
                    .map_err(|_| field("x-amz-unencrypted-content-length", "not a number"))?,
            ),
        };
        Ok(Some(Envelope {
            wrapped_key,
            iv,
            context,
            plaintext_len,
        }))
    }
}

/// A KMS client for Decrypt.
pub struct Kms {
    client: JsonClient,
}

impl Kms {
    pub fn new(
        endpoint: Endpoint,
        region: String,
        credentials: Credentials,
        retry: RetryPolicy,
    ) -> Kms {
        Kms {
            client: JsonClient::new(
                endpoint,
                region,
                credentials,
                retry,
                ("kms", "TrentService", "application/x-amz-json-1.1"),
                Duration::from_secs(30),
            ),
        }
    }

    /// AWS's KMS endpoint for `region`.
    pub fn aws_endpoint(region: &str) -> Endpoint {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Endpoint {
            scheme: "https",
            authority: format!("kms.{region}.{suffix}"),
            path_style: true,
        }
    }

    /// Unwraps the envelope's data key (KMS Decrypt with its encryption context).
    pub fn data_key(&self, env: &Envelope) -> Result<Zeroizing<[u8; 32]>, AwsError> {
        let v = self.client.call(
            "Decrypt",
            &json!({
                "CiphertextBlob": B64.encode(&env.wrapped_key),
                "EncryptionContext": env.context,
            }),
        )?;
        let plain =
            v.get("Plaintext")
                .and_then(|p| p.as_str())
                .ok_or_else(|| AwsError::BadResponse {
                    service: "kms",
                    detail: "Decrypt answered without Plaintext".into(),
                })?;
        let bytes = Zeroizing::new(B64.decode(plain).map_err(|_| AwsError::BadResponse {
            service: "kms",
            detail: "Plaintext is not base64".into(),
        })?);
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(AwsError::BadResponse {
                service: "kms",
                detail: "the data key is not 32 bytes (AES-256)".into(),
            });
        }
        key.copy_from_slice(&bytes);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The metadata of an object SES stored with a KMS key (values from a real one's shape).
    fn ses() -> Vec<(String, String)> {
        meta(&[
            ("x-amz-key-v2", "AQIDAHh4"),
            ("x-amz-iv", "AAECAwQFBgcICQoL"),
            ("x-amz-cek-alg", "AES/GCM/NoPadding"),
            ("x-amz-wrap-alg", "kms"),
            (
                "x-amz-matdesc",
                r#"{"aws:ses:message-id":"m1","aws:ses:rule-name":"r","aws:ses:source-account":"1","kms_cmk_id":"arn:aws:kms:eu-west-1:1:alias/aws/ses"}"#,
            ),
            ("x-amz-tag-len", "128"),
            ("x-amz-unencrypted-content-length", "1234"),
        ])
    }

    #[test]
    fn ses_envelope() {
        let e = Envelope::from_metadata(&ses()).unwrap().unwrap();
        assert_eq!(e.iv, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(e.wrapped_key, vec![1, 2, 3, 0, 120, 120]);
        assert_eq!(e.context["aws:ses:rule-name"], "r");
        assert_eq!(e.plaintext_len, Some(1234));
    }

    #[test]
    fn plain_objects_and_refusals() {
        assert_eq!(Envelope::from_metadata(&[]), Ok(None));
        let with = |k: &str, v: &str| {
            let mut m = ses();
            m.retain(|(n, _)| n != k);
            if !v.is_empty() {
                m.push((k.to_string(), v.to_string()));
            }
            Envelope::from_metadata(&m)
        };
        assert!(matches!(
            with("x-amz-cek-alg", "AES/CBC/PKCS5Padding"),
            Err(EnvelopeError::Cipher(_))
        ));
        assert!(matches!(
            with("x-amz-wrap-alg", "AESWrap"),
            Err(EnvelopeError::Wrap(_))
        ));
        assert!(matches!(
            with("x-amz-iv", "AAEC"),
            Err(EnvelopeError::Field {
                name: "x-amz-iv",
                ..
            })
        ));
        assert!(matches!(
            with("x-amz-matdesc", "[1]"),
            Err(EnvelopeError::Field { .. })
        ));
        assert!(with("x-amz-tag-len", "96").is_err());
        let v1 = meta(&[("x-amz-key", "AAAA")]);
        assert!(matches!(
            Envelope::from_metadata(&v1),
            Err(EnvelopeError::Cipher(_))
        ));
    }
}
