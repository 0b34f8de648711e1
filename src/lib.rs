//! s3imap: mail that Amazon SES wrote into S3, synced into Maildirs and served over IMAP.
//!
//! The crate is a library with a thin binary (`src/main.rs`) on top. Each module owns one
//! job; see ARCHITECTURE.md for the map and the data path.

pub mod auth;
pub mod aws;
pub mod check;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod http;
pub mod imap;
pub mod log;
pub mod mail;
pub mod maildir;
pub mod metrics;
pub mod notify;
pub mod s3;
pub mod sync;
pub mod time;
pub mod utf7;
