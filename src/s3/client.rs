//! S3 HTTP client (being written).
