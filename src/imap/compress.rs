//! COMPRESS=DEFLATE (RFC 4978), sans-I/O: raw deflate (RFC 1951) of everything the server
//! sends and inflate of everything the client sends, once `COMPRESS DEFLATE` succeeded.
//!
//! Built to keep an idle compressed session small (a Pi serves hundreds of IDLE sessions):
//! - Sending: each write-out ([`Deflate::flush`]) ends with a *full* flush, which empties the
//!   compressor and resets its dictionary, so nothing later refers back to it. A compressor
//!   (about 300 KiB in miniz_oxide) is therefore only needed while a batch is being written;
//!   it comes from a pool shared by all connections and goes back after the flush. The price is
//!   that a batch cannot refer to earlier ones (a few bytes on small answers).
//! - Receiving: the client's stream may refer to its last 32 KiB, so those bytes are kept
//!   ([`Inflate`]'s history, only as much as the client ever sent). The decompressor with its
//!   Huffman tables exists only while the client is inside a deflate block; at a block
//!   boundary (where every client's sync flush leaves it) only a few bits of state remain.

use miniz_oxide::DataFormat;
use miniz_oxide::deflate::CompressionLevel;
use miniz_oxide::deflate::core::{CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY,
    TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{BlockBoundaryState, DecompressorOxide, decompress};
use std::fmt;
use std::sync::Mutex;

/// How far back deflate may refer (RFC 1951 §3.2.5).
const WINDOW: usize = 32 * 1024;
/// Compressors kept for reuse; more are freed after use.
const POOL_SIZE: usize = 4;
/// Inflated bytes handed out per call at most (a small input can inflate 1000-fold; the rest
/// waits in [`Inflate::pending`] until the framer wants more).
const INFLATE_CHUNK: usize = 256 * 1024;
/// The compression level: 6, zlib's default (what Dovecot's imap_zlib uses too).
const LEVEL: CompressionLevel = CompressionLevel::DefaultLevel;

static POOL: Mutex<Vec<Box<CompressorOxide>>> = Mutex::new(Vec::new());

fn take_compressor() -> Box<CompressorOxide> {
    let pooled = POOL.lock().ok().and_then(|mut p| p.pop());
    match pooled {
        Some(mut c) => {
            c.reset();
            c
        }
        None => Box::new(CompressorOxide::with_format_and_level(
            DataFormat::Raw,
            LEVEL,
        )),
    }
}

fn give_back(c: Box<CompressorOxide>) {
    if let Ok(mut p) = POOL.lock()
        && p.len() < POOL_SIZE
    {
        p.push(c);
    }
}

/// The sending half: what the server writes, deflated.
#[derive(Default)]
pub struct Deflate {
    active: Option<Box<CompressorOxide>>,
}

impl fmt::Debug for Deflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflate")
            .field("active", &self.active.is_some())
            .finish()
    }
}

impl Deflate {
    pub fn new() -> Deflate {
        Deflate::default()
    }

    fn run(&mut self, data: &[u8], flush: TDEFLFlush, out: &mut Vec<u8>) {
        let c = self.active.get_or_insert_with(take_compressor);
        let mut rest = data;
        loop {
            let (status, used) = compress_to_output(c, rest, flush, |b| {
                out.extend_from_slice(b);
                true
            });
            rest = &rest[used..];
            // Our callback never refuses output, so the compressor cannot fail; stop on
            // anything but progress all the same.
            if rest.is_empty() || status != TDEFLStatus::Okay || used == 0 {
                return;
            }
        }
    }

    /// Deflates `data`, appending to `out` whatever the compressor emits already.
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if !data.is_empty() {
            self.run(data, TDEFLFlush::None, out);
        }
    }

    /// Ends a write-out: everything written so far is in `out`, byte-aligned, and what comes
    /// next does not depend on it; the compressor goes back to the pool.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if self.active.is_none() {
            return;
        }
        self.run(&[], TDEFLFlush::Full, out);
        if let Some(c) = self.active.take() {
            give_back(c);
        }
    }
}

/// The client's stream is not valid deflate (or it ended it, which RFC 4978 never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    Corrupt,
    Ended,
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::Corrupt => f.write_str("the compressed stream is corrupt"),
            InflateError::Ended => f.write_str("the client ended the compressed stream"),
        }
    }
}

impl std::error::Error for InflateError {}

/// The receiving half: what the client sends, inflated.
#[derive(Default)]
pub struct Inflate {
    /// Inside a block: the decompressor; at a block boundary `None`, and `boundary` holds what
    /// is left of its state.
    inside: Option<Box<DecompressorOxide>>,
    boundary: BlockBoundaryState,
    /// The last (at most 32 KiB) inflated bytes: back-references reach into them.
    history: Vec<u8>,
    /// Compressed input not yet inflated (an output chunk was full).
    pending: Vec<u8>,
    /// The last call stopped with output still inside the decompressor.
    more_output: bool,
    /// Deflate blocks in a row that held nothing (a client's flush makes one or two; a
    /// stream of nothing else is an attack on the CPU).
    empty_run: u32,
    ended: bool,
}

/// Empty blocks in a row that make the stream count as corrupt.
const MAX_EMPTY_RUN: u32 = 64;

impl fmt::Debug for Inflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflate")
            .field("inside_block", &self.inside.is_some())
            .field("history", &self.history.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Inflate {
    pub fn new() -> Inflate {
        Inflate::default()
    }

    /// Compressed bytes wait that [`Inflate::inflate`] (with no new input) would turn out.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.more_output
    }

    /// Inflates `input` (after what is pending), appending at most about
    /// [`INFLATE_CHUNK`] bytes to `out`; the rest of the input waits for the next call.
    pub fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
        if self.ended {
            return if input.is_empty() && self.pending.is_empty() {
                Ok(())
            } else {
                Err(InflateError::Ended)
            };
        }
        let mut src = std::mem::take(&mut self.pending);
        src.extend_from_slice(input);
        let mut d = self.inside.take().unwrap_or_else(|| {
            Box::new(DecompressorOxide::from_block_boundary_state(&self.boundary))
        });
        // The history, then room for what comes: back-references look into the history.
        let start = self.history.len();
        let mut buf = std::mem::take(&mut self.history);
        let mut len = start;
        let mut at = 0;
        let flags = TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
            | TINFL_FLAG_HAS_MORE_INPUT
            | TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY;
        self.more_output = false;
        loop {
            if buf.len() < len + 16 * 1024 {
                buf.resize(len + 32 * 1024, 0);
            }
            let (status, used, produced) = decompress(&mut d, &src[at..], &mut buf, len, flags);
            len += produced;
            at += used;
            if status == TINFLStatus::BlockBoundary && produced == 0 {
                self.empty_run += 1;
                if self.empty_run > MAX_EMPTY_RUN {
                    return Err(InflateError::Corrupt);
                }
            } else if produced > 0 {
                self.empty_run = 0;
            }
            match status {
                TINFLStatus::BlockBoundary if at == src.len() => break,
                TINFLStatus::BlockBoundary => {}
                TINFLStatus::HasMoreOutput => self.more_output = true,
                TINFLStatus::NeedsMoreInput => break,
                TINFLStatus::Done => {
                    self.ended = true;
                    break;
                }
                _ => return Err(InflateError::Corrupt),
            }
            if len - start >= INFLATE_CHUNK {
                break;
            }
            self.more_output = false;
        }
        buf.truncate(len);
        self.pending = src[at..].to_vec();
        out.extend_from_slice(&buf[start..]);
        let keep = buf.len().min(WINDOW);
        self.history = buf[buf.len() - keep..].to_vec();
        match d.block_boundary_state() {
            Some(st) if self.pending.is_empty() => self.boundary = st,
            _ => self.inside = Some(d),
        }
        if self.ended && !self.pending.is_empty() {
            return Err(InflateError::Ended);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::inflate::decompress_to_vec;

    /// What a client does: one raw deflate stream, sync-flushed after every command.
    fn client_stream(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut c = CompressorOxide::with_format_and_level(DataFormat::Raw, LEVEL);
        pieces
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                let (_, used) = compress_to_output(&mut c, p, TDEFLFlush::Sync, |b| {
                    out.extend_from_slice(b);
                    true
                });
                assert_eq!(used, p.len());
                out
            })
            .collect()
    }

    #[test]
    fn what_we_send_is_one_raw_deflate_stream() {
        let mut d = Deflate::new();
        let mut wire = Vec::new();
        let mut plain = Vec::new();
        for i in 0..50 {
            let line = format!("* {i} FETCH (UID {i} FLAGS (\\Seen) RFC822.SIZE 1234)\r\n");
            d.write(line.as_bytes(), &mut wire);
            plain.extend_from_slice(line.as_bytes());
            if i % 7 == 0 {
                d.flush(&mut wire);
                // Byte-aligned and complete at every flush: a client can inflate it all.
                assert_eq!(
                    inflate_all(&wire),
                    plain,
                    "after flush {i} the client has everything"
                );
            }
        }
        d.flush(&mut wire);
        assert_eq!(inflate_all(&wire), plain);
        // Flushed every 7 lines, each batch on its own dictionary: still well under half.
        assert!(
            wire.len() * 2 < plain.len(),
            "{} of {}",
            wire.len(),
            plain.len()
        );
    }

    /// A client's inflater (streaming, no end of stream expected).
    fn inflate_all(wire: &[u8]) -> Vec<u8> {
        // An empty final stored block ends the stream for the reference decoder.
        let mut w = wire.to_vec();
        w.extend_from_slice(&[0x03, 0x00]);
        decompress_to_vec(&w).expect("valid raw deflate")
    }

    #[test]
    fn what_the_client_sends_is_inflated_across_reads_and_back_references() {
        let cmds: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("a{i} UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = cmds.iter().map(Vec::as_slice).collect();
        let wire = client_stream(&refs);
        let mut inf = Inflate::new();
        let mut got = Vec::new();
        for (i, w) in wire.iter().enumerate() {
            // Split each flush across two reads, at an odd place.
            let cut = w.len() / 3;
            inf.inflate(&w[..cut], &mut got).unwrap();
            inf.inflate(&w[cut..], &mut got).unwrap();
            assert_eq!(got, cmds[..=i].concat());
            assert!(
                inf.inside.is_none(),
                "a sync flush leaves the client at a block boundary"
            );
        }
        assert!(inf.history.len() <= WINDOW);
    }

    #[test]
    fn a_bomb_comes_out_in_chunks_and_garbage_is_an_error() {
        let big = vec![b'a'; 4 << 20];
        let wire = client_stream(&[&big]);
        assert!(wire[0].len() < 64 * 1024);
        let mut inf = Inflate::new();
        let mut got = Vec::new();
        inf.inflate(&wire[0], &mut got).unwrap();
        assert!(got.len() <= INFLATE_CHUNK + 16 * 1024, "{}", got.len());
        while inf.has_pending() {
            let before = got.len();
            inf.inflate(&[], &mut got).unwrap();
            assert!(got.len() - before <= INFLATE_CHUNK + 16 * 1024);
        }
        assert_eq!(got, big);

        let mut inf = Inflate::new();
        assert_eq!(
            inf.inflate(&[0xff; 64], &mut Vec::new()),
            Err(InflateError::Corrupt)
        );

        // A stream of nothing but empty blocks (each a sync flush) is refused, not spun on.
        let flushes: Vec<&[u8]> = vec![b""; 200];
        let wire = client_stream(&flushes).concat();
        let mut inf = Inflate::new();
        assert_eq!(
            inf.inflate(&wire, &mut Vec::new()),
            Err(InflateError::Corrupt)
        );
    }
}
