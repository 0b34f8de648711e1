//! mail (being written).
