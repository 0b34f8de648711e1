//! IMAP command parser (being written).
