//! maildir (being written).
