//! S3 XML bodies (being written).
