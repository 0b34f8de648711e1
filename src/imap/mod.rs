//! IMAP4rev1 / IMAP4rev2: the sans-I/O command parser (and, later, the session and server).
//!
//! * [`command`]: the typed commands and their helper types (sequence sets, dates, flags).
//! * [`parser`]: the [`Framer`] that finds command boundaries in a byte
//!   stream and [`parse_command`] that turns one command into a value.
//! * [`utf7`]: modified UTF-7 for mailbox names.

pub mod command;
pub mod list;
pub mod mailbox;
pub mod meta;
pub mod parser;
pub mod registry;
pub mod response;
pub mod server;
pub mod session;
pub mod utf7;

pub use command::{Command, CommandKind, Mailbox, SequenceSet, is_inbox};
pub use parser::{
    FrameEvent, Framer, Limits, Needed, ParseError, ParseErrorKind, Parsed, parse_command,
};
