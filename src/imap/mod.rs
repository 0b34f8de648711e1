//! IMAP4rev1/IMAP4rev2: the sans-I/O command parser (and, later, the session and server).

pub mod parser;
