//! Cryptography that s3imap does itself rather than through TLS or the password schemes:
//! decrypting what the AWS S3 encryption client (SES with a KMS key) wrote.

pub mod gcm;
