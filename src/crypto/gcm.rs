//! Streaming AES-256-GCM decryption of objects written by the AWS S3 encryption client
//! (what SES stores when its receipt rule has a KMS key): the object body is the ciphertext
//! followed by the 16-byte GCM tag, the IV is 12 bytes, there is no AAD, and the 32-byte
//! data key comes from KMS.
//!
//! [`Decryptor`] wraps the object body's reader and yields plaintext as it goes, in constant
//! memory, so a 40 MB message never sits in memory whole. Because the plaintext comes out
//! before the tag has been checked, it is unauthenticated until `read` returns `Ok(0)`:
//! callers write it somewhere private and publish it only after that.
//!
//! The mode is NIST SP 800-38D with a 96-bit IV: H = E(K, 0^128), J0 = IV || 0^31 || 1,
//! keystream E(K, inc32(J0)), E(K, inc32(inc32(J0))), ..., and tag = E(K, J0) XOR
//! GHASH_H(C zero-padded to a block || 0^64 || bitlen(C) as 64 bits). AES is the `aes`
//! crate's block cipher, GHASH the `ghash` crate's; the counter mode is written here.

use std::fmt;
use std::io::{self, Read};

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;

/// Length of the GCM tag at the end of the object.
const TAG_LEN: usize = 16;
/// AES blocks of keystream made per `encrypt_blocks` call (and ciphertext blocks per GHASH
/// call): enough for the pipelined AES-NI/ARMv8 paths and the 8-block fixslice one.
const KS_BLOCKS: usize = 32;
const KS_BYTES: usize = KS_BLOCKS * 16;
/// Ciphertext buffered from the inner reader, the held-back tag candidate included.
const BUF_LEN: usize = 16 * 1024;

/// Why a GCM object failed to decrypt. It reaches the caller as the inner error of an
/// [`io::Error`] of kind [`io::ErrorKind::InvalidData`]; get it back with
/// `err.get_ref().and_then(|e| e.downcast_ref::<GcmError>())`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcmError {
    /// The tag does not match: wrong key or IV, or the ciphertext or tag was altered.
    TagMismatch,
    /// The object has fewer than 16 bytes in all, so not even a tag.
    Truncated,
}

impl fmt::Display for GcmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcmError::TagMismatch => {
                f.write_str("AES-GCM tag mismatch: wrong key or altered object")
            }
            GcmError::Truncated => f.write_str("AES-GCM object shorter than its 16-byte tag"),
        }
    }
}

impl std::error::Error for GcmError {}

enum State {
    /// Still reading ciphertext.
    Reading,
    /// The tag verified; every later read is `Ok(0)`.
    Verified,
    /// Decryption failed; every later read repeats the error, never `Ok(0)`.
    Failed(GcmError),
}

/// A reader of the plaintext of an AES-256-GCM object (ciphertext || 16-byte tag) read from
/// `inner`.
///
/// `read` returns plaintext as it is decrypted, always holding back the last 16 bytes seen
/// from `inner`, which may be the tag. At the end of `inner` it checks the tag in constant
/// time: `Ok(0)` (for a non-empty buffer) means the tag verified and all the plaintext
/// returned so far is authentic; a bad or missing tag is an `InvalidData` error carrying a
/// [`GcmError`], and it is returned again on every later call. An error from `inner` is passed
/// through unchanged, and reading may go on after one that is transient (`Interrupted`).
pub struct Decryptor<R: Read> {
    inner: R,
    cipher: Aes256,
    ghash: GHash,
    /// E(K, J0), which masks the GHASH output to give the tag.
    tag_mask: [u8; 16],
    iv: [u8; 12],
    /// Counter of the next keystream block to make (J0's is 1, so the first is 2).
    counter: u32,
    /// Keystream made but not used yet: `keystream[ks_pos..]`.
    keystream: [u8; KS_BYTES],
    ks_pos: usize,
    /// Ciphertext read from `inner` and not yet decrypted: `buf[start..end]`, whose last
    /// (up to) 16 bytes are held back as the possible tag.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Ciphertext hashed but short of a whole GHASH block: `partial[..partial_len]`.
    partial: [u8; 16],
    partial_len: usize,
    plaintext_len: u64,
    state: State,
}

impl<R: Read> Decryptor<R> {
    /// A decryptor of the object read from `inner` under the data key `key` (32 bytes) and
    /// the IV `iv` (12 bytes).
    pub fn new(inner: R, key: &[u8; 32], iv: &[u8; 12]) -> Decryptor<R> {
        let cipher = Aes256::new(&(*key).into());
        let mut h = aes::Block::default();
        cipher.encrypt_block(&mut h);
        let mut j0 = aes::Block::default();
        j0[..12].copy_from_slice(iv);
        j0[12..].copy_from_slice(&1u32.to_be_bytes());
        cipher.encrypt_block(&mut j0);
        Decryptor {
            inner,
            ghash: GHash::new(&h),
            cipher,
            tag_mask: j0.into(),
            iv: *iv,
            counter: 2,
            keystream: [0; KS_BYTES],
            ks_pos: KS_BYTES,
            buf: vec![0; BUF_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
            partial: [0; 16],
            partial_len: 0,
            plaintext_len: 0,
            state: State::Reading,
        }
    }

    /// Bytes of plaintext returned by `read` so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Makes the next `KS_BLOCKS` blocks of keystream (inc32 wraps, as SP 800-38D says).
    fn refill_keystream(&mut self) {
        let mut blocks = [aes::Block::default(); KS_BLOCKS];
        for block in &mut blocks {
            block[..12].copy_from_slice(&self.iv);
            block[12..].copy_from_slice(&self.counter.to_be_bytes());
            self.counter = self.counter.wrapping_add(1);
        }
        self.cipher.encrypt_blocks(&mut blocks);
        for (chunk, block) in self.keystream.chunks_exact_mut(16).zip(&blocks) {
            chunk.copy_from_slice(block);
        }
        self.ks_pos = 0;
    }

    /// Feeds ciphertext to GHASH in whole blocks, keeping a trailing partial block for later.
    fn hash(&mut self, mut ct: &[u8]) {
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(ct.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&ct[..take]);
            self.partial_len += take;
            ct = &ct[take..];
            if self.partial_len < 16 {
                return;
            }
            self.ghash.update(&[self.partial.into()]);
            self.partial_len = 0;
        }
        let mut blocks = [ghash::Block::default(); KS_BLOCKS];
        while ct.len() >= 16 {
            let n = (ct.len() / 16).min(KS_BLOCKS);
            for (block, chunk) in blocks.iter_mut().zip(ct.chunks_exact(16)) {
                block.copy_from_slice(chunk);
            }
            self.ghash.update(&blocks[..n]);
            ct = &ct[n * 16..];
        }
        self.partial[..ct.len()].copy_from_slice(ct);
        self.partial_len = ct.len();
    }

    /// Hashes and decrypts `buf[start..start + n]` into `out[..n]`.
    fn decrypt(&mut self, out: &mut [u8], n: usize) {
        let (start, end) = (self.start, self.start + n);
        let buf = std::mem::take(&mut self.buf);
        let ct = &buf[start..end];
        self.hash(ct);
        let mut done = 0;
        while done < n {
            if self.ks_pos == KS_BYTES {
                self.refill_keystream();
            }
            let take = (n - done).min(KS_BYTES - self.ks_pos);
            let ks = &self.keystream[self.ks_pos..self.ks_pos + take];
            for ((o, c), k) in out[done..done + take]
                .iter_mut()
                .zip(&ct[done..done + take])
                .zip(ks)
            {
                *o = c ^ k;
            }
            self.ks_pos += take;
            done += take;
        }
        self.buf = buf;
        self.start = end;
        self.plaintext_len += n as u64;
    }

    /// At the end of `inner`: checks the held-back tag.
    fn finish(&mut self) -> Result<(), GcmError> {
        let held = &self.buf[self.start..self.end];
        if held.len() < TAG_LEN {
            // Never more than 16 bytes are held back, and never fewer once 16 have been seen.
            return Err(GcmError::Truncated);
        }
        let mut ghash = self.ghash.clone();
        if self.partial_len > 0 {
            ghash.update_padded(&self.partial[..self.partial_len]);
        }
        let mut lengths = [0u8; 16];
        // [0..8] is the AAD's bit length: there is none.
        lengths[8..].copy_from_slice(&(self.plaintext_len * 8).to_be_bytes());
        ghash.update(&[lengths.into()]);
        let mut tag: [u8; 16] = ghash.finalize().into();
        for (t, m) in tag.iter_mut().zip(&self.tag_mask) {
            *t ^= m;
        }
        if bool::from(tag.ct_eq(held)) {
            Ok(())
        } else {
            Err(GcmError::TagMismatch)
        }
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Reading => {}
                State::Verified => return Ok(0),
                State::Failed(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if out.is_empty() {
                return Ok(0);
            }
            let ready = (self.end - self.start).saturating_sub(TAG_LEN);
            if ready > 0 {
                let n = ready.min(out.len());
                self.decrypt(out, n);
                return Ok(n);
            }
            // At most the 16 held-back bytes are left: move them to the front, read more.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let got = self.inner.read(&mut self.buf[self.end..])?;
            if got == 0 {
                self.state = match self.finish() {
                    Ok(()) => State::Verified,
                    Err(e) => State::Failed(e),
                };
            }
            self.end += got;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    fn random<const N: usize>() -> [u8; N] {
        let mut b = [0; N];
        getrandom::getrandom(&mut b).unwrap();
        b
    }

    fn random_vec(len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        getrandom::getrandom(&mut v).unwrap();
        v
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// ciphertext || tag, as the S3 encryption client writes it, made by ring.
    fn seal(key: &[u8; 32], iv: &[u8; 12], plaintext: &[u8]) -> Vec<u8> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut data = plaintext.to_vec();
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*iv), Aad::empty(), &mut data)
            .unwrap();
        data.extend_from_slice(tag.as_ref());
        data
    }

    /// A reader that returns at most `chunk` bytes per call.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Reads `dec` to the end with an `out`-byte buffer: the plaintext, then `Ok(())` only if
    /// a read returned `Ok(0)`, or the first error (no `Ok(0)` having come before it).
    fn drain<R: Read>(dec: &mut Decryptor<R>, out: usize) -> (Vec<u8>, Result<(), io::Error>) {
        let mut plain = Vec::new();
        let mut buf = vec![0; out];
        loop {
            match dec.read(&mut buf) {
                Ok(0) => return (plain, Ok(())),
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) => return (plain, Err(e)),
            }
        }
    }

    fn gcm_error(err: &io::Error) -> GcmError {
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        *err.get_ref()
            .and_then(|e| e.downcast_ref::<GcmError>())
            .expect("a GcmError inside")
    }

    const LENGTHS: [usize; 8] = [0, 1, 15, 16, 17, 4095, 4096, 100_000];
    const CHUNKS: [usize; 3] = [1, 7, 8192];

    #[test]
    fn round_trips_against_ring() {
        for len in LENGTHS {
            for chunk in CHUNKS {
                for out in [1, 13, 65536] {
                    let (key, iv) = (random::<32>(), random::<12>());
                    let plaintext = random_vec(len);
                    let object = seal(&key, &iv, &plaintext);
                    let mut dec = Decryptor::new(
                        Chunked {
                            data: &object,
                            chunk,
                        },
                        &key,
                        &iv,
                    );
                    let (plain, end) = drain(&mut dec, out);
                    end.unwrap_or_else(|e| panic!("len {len} chunk {chunk} out {out}: {e}"));
                    assert!(plain == plaintext, "len {len} chunk {chunk} out {out}");
                    assert_eq!(dec.plaintext_len(), len as u64);
                    // Verified stays verified.
                    assert_eq!(dec.read(&mut [0; 16]).unwrap(), 0);
                }
            }
        }
    }

    fn assert_mismatch(object: &[u8], key: &[u8; 32], iv: &[u8; 12], what: &str) {
        for chunk in CHUNKS {
            let mut dec = Decryptor::new(
                Chunked {
                    data: object,
                    chunk,
                },
                key,
                iv,
            );
            let (plain, end) = drain(&mut dec, 8192);
            let err = end.expect_err(what);
            assert_eq!(gcm_error(&err), GcmError::TagMismatch, "{what}");
            assert!(
                plain.len() == object.len() - TAG_LEN,
                "{what}: all but the tag was read"
            );
            // The failure is sticky: never an Ok(0) after it.
            let again = dec.read(&mut [0; 16]).expect_err("still failing");
            assert_eq!(gcm_error(&again), GcmError::TagMismatch);
        }
    }

    #[test]
    fn flipped_ciphertext_bit_is_tag_mismatch() {
        for len in LENGTHS.into_iter().filter(|&l| l > 0) {
            let (key, iv) = (random::<32>(), random::<12>());
            let mut object = seal(&key, &iv, &random_vec(len));
            for pos in [0, len / 2, len - 1] {
                object[pos] ^= 0x10;
                assert_mismatch(
                    &object,
                    &key,
                    &iv,
                    &format!("len {len}, byte {pos} flipped"),
                );
                object[pos] ^= 0x10;
            }
        }
    }

    #[test]
    fn flipped_tag_bit_is_tag_mismatch() {
        for len in LENGTHS {
            let (key, iv) = (random::<32>(), random::<12>());
            let mut object = seal(&key, &iv, &random_vec(len));
            for pos in [len, len + TAG_LEN - 1] {
                object[pos] ^= 0x01;
                assert_mismatch(
                    &object,
                    &key,
                    &iv,
                    &format!("len {len}, tag byte {pos} flipped"),
                );
                object[pos] ^= 0x01;
            }
        }
    }

    #[test]
    fn wrong_key_or_iv_is_tag_mismatch() {
        let (key, iv) = (random::<32>(), random::<12>());
        let object = seal(&key, &iv, &random_vec(1000));
        let mut other_key = key;
        other_key[31] ^= 1;
        assert_mismatch(&object, &other_key, &iv, "wrong key");
        let mut other_iv = iv;
        other_iv[0] ^= 1;
        assert_mismatch(&object, &key, &other_iv, "wrong IV");
    }

    #[test]
    fn fewer_than_16_bytes_is_truncated() {
        let (key, iv) = (random::<32>(), random::<12>());
        for len in [0, 1, 8, 15] {
            let object = random_vec(len);
            let mut dec = Decryptor::new(
                Chunked {
                    data: &object,
                    chunk: 1,
                },
                &key,
                &iv,
            );
            let (plain, end) = drain(&mut dec, 8192);
            assert!(plain.is_empty());
            assert_eq!(
                gcm_error(&end.expect_err("truncated")),
                GcmError::Truncated,
                "len {len}"
            );
            assert_eq!(
                gcm_error(&dec.read(&mut [0; 1]).unwrap_err()),
                GcmError::Truncated
            );
        }
    }

    /// A reader that returns its data and then fails instead of reaching EOF.
    struct FailsAtEnd<'a>(Chunked<'a>);

    impl Read for FailsAtEnd<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn streams_before_eof_and_passes_inner_errors_through() {
        let (key, iv) = (random::<32>(), random::<12>());
        let plaintext = random_vec(100_000);
        let object = seal(&key, &iv, &plaintext);
        let inner = FailsAtEnd(Chunked {
            data: &object,
            chunk: 8192,
        });
        let mut dec = Decryptor::new(inner, &key, &iv);
        let (plain, end) = drain(&mut dec, 4096);
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        // Everything but the held-back tag came out before the end was known.
        assert!(plain == plaintext);
        assert_eq!(dec.plaintext_len(), 100_000);
    }

    /// Test Case 15 of McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)":
    /// AES-256, 96-bit IV, 64 bytes of plaintext, no AAD.
    #[test]
    fn gcm_spec_test_case_15() {
        let key: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let iv: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let p = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
        ));
        let c = hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
        ));
        let t = hex("b094dac5d93471bdec1a502270e3cc6c");
        let object = [c, t].concat();
        // The published vector is what ring makes too.
        assert_eq!(seal(&key, &iv, &p), object);
        for chunk in CHUNKS {
            let mut dec = Decryptor::new(
                Chunked {
                    data: &object,
                    chunk,
                },
                &key,
                &iv,
            );
            let (plain, end) = drain(&mut dec, 8192);
            end.unwrap();
            assert_eq!(plain, p);
        }
    }

    /// Decrypt throughput; run with
    /// `cargo test --release --lib crypto::gcm -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput_32_mib() {
        let (key, iv) = (random::<32>(), random::<12>());
        let object = seal(&key, &iv, &random_vec(32 << 20));
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let mut dec = Decryptor::new(object.as_slice(), &key, &iv);
            let copied = io::copy(&mut dec, &mut io::sink()).unwrap();
            best = best.min(started.elapsed().as_secs_f64());
            assert_eq!(copied, 32 << 20);
        }
        eprintln!(
            "AES-256-GCM decrypt, 32 MiB: best of 5 {:.1} ms, {:.0} MiB/s",
            best * 1e3,
            32.0 / best
        );
    }
}
