//! AWS Signature Version 4 (being written).
