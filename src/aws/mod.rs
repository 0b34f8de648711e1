//! The AWS services beside S3 that the sync talks to over the AWS JSON protocol: SQS (the
//! events queue SES notifications arrive on) and KMS (the data keys of client-side-encrypted
//! objects). Signed with our SigV4 ([`crate::s3::sigv4`]).

pub mod json;
pub mod kms;
pub mod sqs;
