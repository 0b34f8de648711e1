//! log (being written).
