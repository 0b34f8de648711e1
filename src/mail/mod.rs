//! RFC 5322 messages over `&[u8]`: header fields and addresses. Pure, no I/O.
//!
//! The IMAP server builds ENVELOPE and BODYSTRUCTURE on top of this later; the sync uses it to
//! find recipients and SES verdicts in a message's header block.

pub mod address;
pub mod header;
