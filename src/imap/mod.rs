//! IMAP4rev1 (RFC 3501) with the extensions s3imap speaks, as small modules:
//!
//! * [`command`]: the typed commands and their helper types (sequence sets, dates, flags).
//! * [`parser`]: the framer that finds command boundaries in a byte stream, the grammar that
//!   turns one command into a [`command::Command`], and the SASL/IDLE lines.
//! * [`session`]: the state machine (commands in, responses and a next step out); [`mailbox`]:
//!   the selected mailbox as one session sees it; [`list`]: LIST/LSUB answers; [`sort`]:
//!   SORT and THREAD orderings.
//! * [`registry`]: the shared state of each open mailbox; [`meta`]: cached MIME trees.
//! * [`response`]: response encoding and output chunks; [`server`]: sockets, TLS, the pool;
//!   [`admission`]: connection slots per address and before/after login;
//!   [`compress`]: COMPRESS=DEFLATE's two halves, without I/O.
//!   [`tls`]: the certificate files, re-read when they change.

pub mod admission;
pub mod command;
pub mod compress;
pub mod list;
pub mod mailbox;
pub mod meta;
pub mod parser;
pub mod registry;
pub mod response;
pub mod server;
pub mod session;
pub mod sort;
pub mod tls;

pub use command::{Command, CommandKind, Mailbox, SequenceSet, is_inbox};
pub use parser::{
    FrameEvent, Framer, Limits, Needed, ParseError, ParseErrorKind, Parsed, parse_command,
};
