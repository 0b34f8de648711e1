//! RFC 5322 / MIME messages over `&[u8]`, no I/O: header fields and addresses, the MIME
//! structure found in one streaming pass and the byte ranges of IMAP sections, ENVELOPE and
//! BODYSTRUCTURE in IMAP syntax, RFC 2047 / transfer-encoding / charset decoding, and the
//! streaming text search behind IMAP SEARCH, the base subject of SORT and THREAD.

pub mod address;
pub mod binary;
pub mod decode;
pub mod envelope;
pub mod header;
pub mod lex;
pub mod mime;
pub mod preview;
pub mod search;
pub mod subject;
