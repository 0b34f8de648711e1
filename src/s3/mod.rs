//! S3: SigV4 signing, the ListObjectsV2/GetObject/DeleteObject/CopyObject client and
//! the XML it reads.

pub mod client;
pub mod sigv4;
pub mod xml;
