//! Content encryption, format version 1 (SPEC §6).
//!
//! A sealed blob is a 48-byte header followed by the plaintext in segments of
//! [`SEGMENT_SIZE`] bytes, each sealed with AES-256-GCM under the per-version
//! data key:
//!
//! ```text
//! header  = "ARTF" | version (1) | segment size (u32 BE) | nonce prefix (7) | commitment (32)
//! segment = AES-256-GCM(key, nonce = prefix | index (u32 BE) | last flag (1), aad = header)
//! ```
//!
//! The commitment is HMAC-SHA256 of a fixed label under the data key, so a
//! wrong key is rejected before any segment is decrypted. The header is the
//! AAD of every segment and the nonce binds each segment to its index and to
//! whether it is the final one, so changed bytes, truncation (also exactly at a
//! segment boundary), and reordered, duplicated or appended segments all fail.
//! The empty plaintext is one empty final segment; a plaintext whose length is
//! a non-zero multiple of the segment size ends with a full final segment.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use hmac::digest::KeyInit as MacKeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Plaintext bytes per segment when sealing.
pub const SEGMENT_SIZE: usize = 64 * 1024;
/// Length of the header that starts every sealed blob.
pub const HEADER_LEN: usize = 48;
/// Length of the AES-GCM tag after each segment.
pub const TAG_LEN: usize = 16;
/// Length of a data key (AES-256).
pub const KEY_LEN: usize = 32;

const MAGIC: &[u8; 4] = b"ARTF";
const FORMAT_VERSION: u8 = 1;
const PREFIX_LEN: usize = 7;
const COMMITMENT_LABEL: &[u8] = b"artifact-store key commitment v1";
/// Largest segment size an opener accepts from a header.
const MAX_SEGMENT_SIZE: usize = 16 * 1024 * 1024;

const SEG_SIZE_AT: usize = 5;
const PREFIX_AT: usize = 9;
const COMMITMENT_AT: usize = PREFIX_AT + PREFIX_LEN;

/// Why sealed content was rejected. Neither variant carries detail: callers
/// answer both with a 500 and no plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The bytes do not have the shape of format version 1 (or an API was misused).
    #[error("ciphertext is malformed")]
    Malformed,
    /// A key commitment or tag did not verify: wrong key or changed bytes.
    #[error("ciphertext failed authentication")]
    Integrity,
}

/// Length of the sealed form of `plaintext_len` bytes (header + segments + tags).
///
/// Saturates at `u64::MAX` for lengths no store could hold.
pub fn sealed_len(plaintext_len: u64) -> u64 {
    sealed_len_with(plaintext_len, SEGMENT_SIZE as u64).unwrap_or(u64::MAX)
}

/// Number of segments for a plaintext length (>= 1).
pub fn segment_count(plaintext_len: u64) -> u64 {
    segment_count_with(plaintext_len, SEGMENT_SIZE as u64)
}

fn segment_count_with(plaintext_len: u64, segment_size: u64) -> u64 {
    plaintext_len.div_ceil(segment_size).max(1)
}

fn sealed_len_with(plaintext_len: u64, segment_size: u64) -> Option<u64> {
    segment_count_with(plaintext_len, segment_size)
        .checked_mul(TAG_LEN as u64)?
        .checked_add(plaintext_len)?
        .checked_add(HEADER_LEN as u64)
}

/// One-shot: seal with a fresh random nonce prefix.
///
/// # Panics
///
/// If the operating system's random number generator fails (see
/// [`Sealer::new`]), or if AES-GCM refuses a segment, which it only does for
/// messages over 64 GiB and a segment is at most 16 MiB.
pub fn seal(key: &[u8; KEY_LEN], plaintext: &[u8]) -> Vec<u8> {
    let (sealer, header) = Sealer::new(key);
    match seal_with(sealer, header, plaintext) {
        Ok(sealed) => sealed,
        Err(err) => panic!("sealing a well-formed plaintext failed: {err}"),
    }
}

fn seal_with(
    mut sealer: Sealer,
    header: [u8; HEADER_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let segment_size = sealer.segment_size;
    let count = plaintext.len().div_ceil(segment_size).max(1);
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + count * TAG_LEN);
    out.extend_from_slice(&header);
    // `chunks` yields nothing for an empty slice; the empty plaintext is one empty final segment.
    let mut segments = plaintext.chunks(segment_size).peekable();
    if segments.peek().is_none() {
        sealer.push_segment(&[], true, &mut out)?;
    }
    while let Some(plain) = segments.next() {
        let last = segments.peek().is_none();
        sealer.push_segment(plain, last, &mut out)?;
    }
    Ok(out)
}

/// One-shot open; verifies everything and returns the whole plaintext or an error.
pub fn open(key: &[u8; KEY_LEN], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (header, body) = sealed
        .split_at_checked(HEADER_LEN)
        .ok_or(CryptoError::Malformed)?;
    let opener = Opener::new(key, header)?;
    let chunk = opener.segment_size + TAG_LEN;
    let count = body.len().div_ceil(chunk);
    let tail = body.len() % chunk;
    let tail_ok = match tail {
        0 => count > 0,
        // An empty final segment only exists for the empty plaintext.
        TAG_LEN => count == 1,
        n => n > TAG_LEN,
    };
    if !tail_ok {
        return Err(CryptoError::Malformed);
    }
    let mut plaintext = Vec::with_capacity(body.len() - count * TAG_LEN);
    for (i, segment) in body.chunks(chunk).enumerate() {
        let index = u32::try_from(i).map_err(|_| CryptoError::Malformed)?;
        opener.open_segment_into(index, segment, i + 1 == count, &mut plaintext)?;
    }
    Ok(plaintext)
}

/// Open only the segments covering plaintext bytes `start..=end` (inclusive),
/// returning exactly those bytes.
///
/// `plaintext_len` is the length recorded in metadata; the sealed length must
/// equal `sealed_len(plaintext_len)` (computed with the header's segment size),
/// else [`CryptoError::Integrity`]. Requires `start <= end < plaintext_len`,
/// else [`CryptoError::Malformed`]. Besides the header, only the segments in
/// the range and the final segment (which pins where the content ends) are
/// authenticated; the others are not read.
pub fn open_range(
    key: &[u8; KEY_LEN],
    sealed: &[u8],
    plaintext_len: u64,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, CryptoError> {
    if start > end || end >= plaintext_len {
        return Err(CryptoError::Malformed);
    }
    let header = sealed.get(..HEADER_LEN).ok_or(CryptoError::Malformed)?;
    let opener = Opener::new(key, header)?;
    let segment_size = opener.segment_size as u64;
    let expected = sealed_len_with(plaintext_len, segment_size).ok_or(CryptoError::Malformed)?;
    if sealed.len() as u64 != expected {
        return Err(CryptoError::Integrity);
    }
    // The length check bounds every offset below by `sealed.len()`, so they fit in usize.
    let to_usize = |n: u64| usize::try_from(n).map_err(|_| CryptoError::Malformed);
    let chunk = segment_size + TAG_LEN as u64;
    let last_index = segment_count_with(plaintext_len, segment_size) - 1;
    let open_at = |i: u64, out: &mut Vec<u8>| -> Result<(), CryptoError> {
        let from = HEADER_LEN as u64 + i * chunk;
        let to = (from + chunk).min(expected);
        let segment = sealed
            .get(to_usize(from)?..to_usize(to)?)
            .ok_or(CryptoError::Malformed)?;
        let index = u32::try_from(i).map_err(|_| CryptoError::Malformed)?;
        opener.open_segment_into(index, segment, i == last_index, out)
    };
    let (first, last) = (start / segment_size, end / segment_size);
    if last != last_index {
        // The final segment proves the content ends where the metadata says it does.
        open_at(last_index, &mut Vec::new())?;
    }
    let covered = ((last - first + 1) * segment_size).min(plaintext_len - first * segment_size);
    let mut plaintext = Vec::with_capacity(to_usize(covered)?);
    for i in first..=last {
        open_at(i, &mut plaintext)?;
    }
    let skip = to_usize(start - first * segment_size)?;
    let take = to_usize(end - start + 1)?;
    if skip
        .checked_add(take)
        .is_none_or(|stop| stop > plaintext.len())
    {
        return Err(CryptoError::Malformed);
    }
    plaintext.truncate(skip + take);
    plaintext.drain(..skip);
    Ok(plaintext)
}

/// Streaming sealer for constant-memory use (S3 multipart, ZIP bundles).
///
/// Write the header from [`Sealer::new`] first, then the output of
/// [`Sealer::seal_segment`] for each segment in order. Every segment but the
/// last must be exactly [`SEGMENT_SIZE`] bytes; the last one is non-empty
/// unless it is also the first (empty plaintext), so a caller that does not
/// know the length in advance holds one segment back until it sees the end.
pub struct Sealer {
    cipher: LessSafeKey,
    header: [u8; HEADER_LEN],
    segment_size: usize,
    next_index: u32,
    finished: bool,
}

impl Sealer {
    /// Returns the sealer and the 48-byte header to write first.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails: there is no
    /// safe way to continue without a fresh nonce prefix.
    pub fn new(key: &[u8; KEY_LEN]) -> (Sealer, [u8; HEADER_LEN]) {
        let mut prefix = [0u8; PREFIX_LEN];
        if let Err(err) = getrandom::fill(&mut prefix) {
            panic!("operating system random number generator failed: {err}");
        }
        Self::with_params(key, prefix, SEGMENT_SIZE)
    }

    fn with_params(
        key: &[u8; KEY_LEN],
        prefix: [u8; PREFIX_LEN],
        segment_size: usize,
    ) -> (Sealer, [u8; HEADER_LEN]) {
        let mut header = [0u8; HEADER_LEN];
        header[..SEG_SIZE_AT].copy_from_slice(&header_start());
        let size = u32::try_from(segment_size).unwrap_or(u32::MAX);
        header[SEG_SIZE_AT..PREFIX_AT].copy_from_slice(&size.to_be_bytes());
        header[PREFIX_AT..COMMITMENT_AT].copy_from_slice(&prefix);
        header[COMMITMENT_AT..].copy_from_slice(&commitment(key));
        let sealer = Sealer {
            cipher: cipher(key),
            header,
            segment_size,
            next_index: 0,
            finished: false,
        };
        (sealer, header)
    }

    /// Seal the next segment; returns its ciphertext and tag.
    ///
    /// `plain.len()` must be [`SEGMENT_SIZE`] unless `last`; an empty `last`
    /// segment is only allowed as the first one; nothing may follow `last`.
    /// A rejected call returns [`CryptoError::Malformed`] and changes nothing.
    pub fn seal_segment(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(plain.len() + TAG_LEN);
        self.push_segment(plain, last, &mut out)?;
        Ok(out)
    }

    /// Seals the segment held in `buf` where it is: on success `buf` holds
    /// its ciphertext followed by the tag (no copy of the segment is made);
    /// on error it is unchanged. Same rules as [`Sealer::seal_segment`].
    pub fn seal_in_place(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), CryptoError> {
        self.seal_tail(buf, 0, last)
    }

    /// Appends the sealed segment (ciphertext ‖ tag) to `out`.
    fn push_segment(
        &mut self,
        plain: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let start = out.len();
        out.extend_from_slice(plain);
        let sealed = self.seal_tail(out, start, last);
        if sealed.is_err() {
            out.truncate(start);
        }
        sealed
    }

    /// Encrypts `buf[start..]` (one segment's plaintext) in place and appends its tag.
    fn seal_tail(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        last: bool,
    ) -> Result<(), CryptoError> {
        let plain = buf.get_mut(start..).ok_or(CryptoError::Malformed)?;
        let size_ok = if last {
            plain.len() <= self.segment_size && (!plain.is_empty() || self.next_index == 0)
        } else {
            plain.len() == self.segment_size && self.next_index < u32::MAX
        };
        if self.finished || !size_ok {
            return Err(CryptoError::Malformed);
        }
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                nonce(&self.header, self.next_index, last),
                Aad::from(&self.header),
                plain,
            )
            .map_err(|_| CryptoError::Malformed)?;
        buf.extend_from_slice(tag.as_ref());
        self.next_index = self.next_index.saturating_add(1);
        self.finished = last;
        Ok(())
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("next_index", &self.next_index)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Streaming opener: created from the header bytes; opens segments in order.
pub struct Opener {
    cipher: LessSafeKey,
    header: [u8; HEADER_LEN],
    segment_size: usize,
}

impl Opener {
    /// Checks magic, version, segment size (1..=16 MiB) and the key commitment.
    ///
    /// `header` must be exactly [`HEADER_LEN`] bytes.
    pub fn new(key: &[u8; KEY_LEN], header: &[u8]) -> Result<Opener, CryptoError> {
        let header: [u8; HEADER_LEN] = header.try_into().map_err(|_| CryptoError::Malformed)?;
        if header[..SEG_SIZE_AT] != header_start() {
            return Err(CryptoError::Malformed);
        }
        let mut size = [0u8; 4];
        size.copy_from_slice(&header[SEG_SIZE_AT..PREFIX_AT]);
        let segment_size = usize::try_from(u32::from_be_bytes(size))
            .ok()
            .filter(|n| (1..=MAX_SEGMENT_SIZE).contains(n))
            .ok_or(CryptoError::Malformed)?;
        let committed = header[COMMITMENT_AT..].ct_eq(&commitment(key));
        if !bool::from(committed) {
            return Err(CryptoError::Integrity);
        }
        Ok(Opener {
            cipher: cipher(key),
            header,
            segment_size,
        })
    }

    /// Plaintext bytes per segment, as recorded in the header.
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// Opens segment `index` (ciphertext and tag). `last` says whether the
    /// caller expects it to be the final segment; a wrong index or flag fails
    /// authentication.
    pub fn open_segment(
        &self,
        index: u32,
        sealed_segment: &[u8],
        last: bool,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut plain = Vec::new();
        self.open_segment_into(index, sealed_segment, last, &mut plain)?;
        Ok(plain)
    }

    /// Like [`Opener::open_segment`], appending the plaintext to `out`: the
    /// ciphertext is decrypted straight into `out` (no copy). On error `out`
    /// is left as it was: no unauthenticated byte stays in it.
    pub fn open_segment_into(
        &self,
        index: u32,
        sealed_segment: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let full = self.segment_size + TAG_LEN;
        let len = sealed_segment.len();
        let len_ok = if last {
            len <= full && (len > TAG_LEN || (len == TAG_LEN && index == 0))
        } else {
            len == full
        };
        if !len_ok {
            return Err(CryptoError::Malformed);
        }
        let (ciphertext, tag) = sealed_segment.split_at(len - TAG_LEN);
        let start = out.len();
        out.resize(start + ciphertext.len(), 0);
        let opened = self.cipher.open_separate_gather(
            nonce(&self.header, index, last),
            Aad::from(&self.header),
            ciphertext,
            tag,
            &mut out[start..],
        );
        if opened.is_err() {
            // The output may hold unauthenticated plaintext: wipe, then drop it.
            out[start..].fill(0);
            out.truncate(start);
            return Err(CryptoError::Integrity);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("segment_size", &self.segment_size)
            .finish_non_exhaustive()
    }
}

/// The AEAD under a data key: AWS-LC's AES-256-GCM (the assembly OpenSSL
/// and BoringSSL use, VAES/AVX-512 where the CPU has it). AWS-LC wipes the
/// key schedule when the sealer or opener holding it is dropped.
fn cipher(key: &[u8; KEY_LEN]) -> LessSafeKey {
    match UnboundKey::new(&AES_256_GCM, key) {
        Ok(key) => LessSafeKey::new(key),
        // Only a key of the wrong length is refused, and `key` is 32 bytes.
        Err(_) => unreachable!("AES-256-GCM accepts every 32-byte key"),
    }
}

/// Magic and format version: the first five header bytes.
fn header_start() -> [u8; SEG_SIZE_AT] {
    let [a, b, c, d] = *MAGIC;
    [a, b, c, d, FORMAT_VERSION]
}

/// HMAC-SHA256(key = data key, message = the commitment label).
fn commitment(key: &[u8; KEY_LEN]) -> [u8; 32] {
    // HMAC zero-pads keys shorter than the hash block, so padding here gives the
    // same MAC as keying with the 32 bytes, through the infallible constructor.
    let mut block = zeroize::Zeroizing::new([0u8; 64]);
    block[..KEY_LEN].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as MacKeyInit>::new(&(*block).into());
    mac.update(COMMITMENT_LABEL);
    mac.finalize().into_bytes().into()
}

/// Nonce = prefix (7) ‖ segment index (u32 BE) ‖ last-segment flag (1).
fn nonce(header: &[u8; HEADER_LEN], index: u32, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[..PREFIX_LEN].copy_from_slice(&header[PREFIX_AT..COMMITMENT_AT]);
    nonce[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&index.to_be_bytes());
    nonce[PREFIX_LEN + 4] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    const KEY: [u8; KEY_LEN] = {
        let mut key = [0u8; KEY_LEN];
        let mut i = 0;
        while i < KEY_LEN {
            key[i] = i as u8;
            i += 1;
        }
        key
    };
    const PREFIX: [u8; PREFIX_LEN] = [1, 2, 3, 4, 5, 6, 7];
    const CHUNK: usize = SEGMENT_SIZE + TAG_LEN;

    /// Seals with a fixed nonce prefix and the given segment size.
    fn seal_fixed(plaintext: &[u8], segment_size: usize) -> Vec<u8> {
        let (sealer, header) = Sealer::with_params(&KEY, PREFIX, segment_size);
        seal_with(sealer, header, plaintext).expect("seal")
    }

    /// A plaintext whose segments all differ, so a swapped segment changes the bytes.
    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    /// Offset of segment `index` of a default-size sealed blob.
    fn at(index: usize) -> usize {
        HEADER_LEN + index * CHUNK
    }

    fn three_segments() -> (Vec<u8>, Vec<u8>) {
        let plain = plaintext(2 * SEGMENT_SIZE + 1000);
        let sealed = seal(&KEY, &plain);
        assert_eq!(sealed.len(), at(2) + 1000 + TAG_LEN);
        (plain, sealed)
    }

    #[test]
    fn round_trips_and_sealed_len() {
        for len in [
            0,
            1,
            SEGMENT_SIZE - 1,
            SEGMENT_SIZE,
            SEGMENT_SIZE + 1,
            2 * SEGMENT_SIZE,
            3 * SEGMENT_SIZE + 5,
        ] {
            let plain = plaintext(len);
            let sealed = seal(&KEY, &plain);
            assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
            assert_ne!(&sealed[HEADER_LEN..], &plain[..], "len {len}");
            assert_eq!(open(&KEY, &sealed).as_deref(), Ok(&plain[..]), "len {len}");
        }
    }

    #[test]
    fn segment_count_and_sealed_len_values() {
        let seg = SEGMENT_SIZE as u64;
        assert_eq!(segment_count(0), 1);
        assert_eq!(segment_count(1), 1);
        assert_eq!(segment_count(seg), 1);
        assert_eq!(segment_count(seg + 1), 2);
        assert_eq!(segment_count(2 * seg), 2);
        assert_eq!(segment_count(3 * seg + 5), 4);
        assert_eq!(sealed_len(0), 64);
        assert_eq!(sealed_len(1), 65);
        assert_eq!(sealed_len(seg), 48 + seg + 16);
        assert_eq!(sealed_len(seg + 1), 48 + seg + 1 + 32);
        assert_eq!(sealed_len(u64::MAX), u64::MAX);
    }

    #[test]
    fn known_answer_short_message() {
        let message = b"hello, artifact store";
        let sealed = seal_fixed(message, SEGMENT_SIZE);

        assert_eq!(&sealed[0..4], b"ARTF");
        assert_eq!(sealed[4], 1);
        assert_eq!(&sealed[5..9], &[0x00, 0x01, 0x00, 0x00]);
        assert_eq!(&sealed[9..16], &PREFIX);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&KEY).expect("hmac key");
        mac.update(b"artifact-store key commitment v1");
        assert_eq!(&sealed[16..48], &mac.finalize().into_bytes()[..]);

        // RustCrypto's aes-gcm, an implementation independent of AWS-LC.
        use aes_gcm::aead::{AeadInOut, KeyInit};
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&KEY).expect("aes key");
        let nonce: aes_gcm::Nonce<_> = [1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 1].into();
        let mut segment = message.to_vec();
        let tag = cipher
            .encrypt_inout_detached(&nonce, &sealed[..HEADER_LEN], segment.as_mut_slice().into())
            .expect("encrypt");
        segment.extend_from_slice(&tag);
        assert_eq!(&sealed[HEADER_LEN..], &segment[..]);

        // Computed independently with Python's hmac and `cryptography` AESGCM.
        let expected = "41525446010001000001020304050607\
            b7c8a54857d788d5225a81d493496ab02884f53f9eec3b81d25d51a72ce5b908\
            10ac3868a5d17fbefa935129cb47ee57bad2231c38\
            6661e4b58f35027955f57086afa454d4";
        assert_eq!(hex::encode(&sealed), expected);
        assert_eq!(open(&KEY, &sealed).as_deref(), Ok(&message[..]));
    }

    #[test]
    fn known_answer_index_and_last_flag() {
        // Three segments of 16 bytes (test-only size) pin the nonce index and last flag.
        let message = b"segments are bound to index and last flag";
        let sealed = seal_fixed(message, 16);
        let expected = "41525446010000001001020304050607\
            b7c8a54857d788d5225a81d493496ab02884f53f9eec3b81d25d51a72ce5b908\
            653ea6c0c66b31ed20b0f5cfe482b9ec908bf9335517e7a8ef60fdc4bd8d3826\
            2c7ec2777c97ecf3cb8811cc1aef22bf3d3334062de48f931ce570865fc053ff\
            b6cf1936ff0a654cb05cfc5da964e9669544c67a029a0c16d0";
        assert_eq!(hex::encode(&sealed), expected);
        // The opener takes the segment size from the header.
        assert_eq!(open(&KEY, &sealed).as_deref(), Ok(&message[..]));
    }

    #[test]
    fn each_seal_draws_a_fresh_prefix() {
        let plain = plaintext(100);
        let a = seal(&KEY, &plain);
        let b = seal(&KEY, &plain);
        assert_ne!(&a[PREFIX_AT..COMMITMENT_AT], &b[PREFIX_AT..COMMITMENT_AT]);
        assert_eq!(&a[COMMITMENT_AT..HEADER_LEN], &b[COMMITMENT_AT..HEADER_LEN]);
        assert_eq!(open(&KEY, &a).as_deref(), Ok(&plain[..]));
        assert_eq!(open(&KEY, &b).as_deref(), Ok(&plain[..]));
    }

    #[test]
    fn streaming_matches_one_shot() {
        let plain = plaintext(2 * SEGMENT_SIZE + 7);
        let (mut sealer, header) = Sealer::with_params(&KEY, PREFIX, SEGMENT_SIZE);
        let mut streamed = header.to_vec();
        let segments: Vec<&[u8]> = plain.chunks(SEGMENT_SIZE).collect();
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            streamed.extend(sealer.seal_segment(segment, last).expect("segment"));
        }
        assert_eq!(streamed, seal_fixed(&plain, SEGMENT_SIZE));

        let opener = Opener::new(&KEY, &streamed[..HEADER_LEN]).expect("header");
        assert_eq!(opener.segment_size(), SEGMENT_SIZE);
        let mut opened = Vec::new();
        for (i, segment) in streamed[HEADER_LEN..].chunks(CHUNK).enumerate() {
            opened.extend(
                opener
                    .open_segment(i as u32, segment, i == 2)
                    .expect("open"),
            );
        }
        assert_eq!(opened, plain);
    }

    #[test]
    fn in_place_sealing_and_appending_opens_match_the_copying_forms() {
        let plain = plaintext(2 * SEGMENT_SIZE + 7);
        let (mut sealer, header) = Sealer::with_params(&KEY, PREFIX, SEGMENT_SIZE);
        let mut sealed = header.to_vec();
        for (i, segment) in plain.chunks(SEGMENT_SIZE).enumerate() {
            let mut buf = segment.to_vec();
            sealer.seal_in_place(&mut buf, i == 2).expect("seal");
            assert_eq!(buf.len(), segment.len() + TAG_LEN);
            sealed.extend_from_slice(&buf);
        }
        assert_eq!(sealed, seal_fixed(&plain, SEGMENT_SIZE));
        // A rejected call leaves the buffer as it was.
        let mut buf = b"more".to_vec();
        assert_eq!(
            sealer.seal_in_place(&mut buf, true),
            Err(CryptoError::Malformed)
        );
        assert_eq!(buf, b"more");

        let opener = Opener::new(&KEY, &sealed[..HEADER_LEN]).expect("header");
        let mut out = b"prefix".to_vec();
        let first = &sealed[at(0)..at(1)];
        opener
            .open_segment_into(0, first, false, &mut out)
            .expect("open");
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(&out[6..], &plain[..SEGMENT_SIZE]);
        // A failed open appends nothing: no unauthenticated byte is left behind.
        let before = out.clone();
        let mut bad = first.to_vec();
        bad[10] ^= 0x01;
        assert_eq!(
            opener.open_segment_into(0, &bad, false, &mut out),
            Err(CryptoError::Integrity)
        );
        assert_eq!(
            opener.open_segment_into(1, first, false, &mut out),
            Err(CryptoError::Integrity)
        );
        assert_eq!(
            opener.open_segment_into(0, &first[1..], false, &mut out),
            Err(CryptoError::Malformed)
        );
        assert_eq!(out, before);
    }

    #[test]
    fn sealer_rejects_misuse_without_changing_state() {
        let full = plaintext(SEGMENT_SIZE);
        let (mut sealer, header) = Sealer::new(&KEY);
        assert_eq!(
            sealer.seal_segment(&full[1..], false),
            Err(CryptoError::Malformed)
        );
        assert_eq!(sealer.seal_segment(&[], false), Err(CryptoError::Malformed));
        let mut too_big = full.clone();
        too_big.push(0);
        assert_eq!(
            sealer.seal_segment(&too_big, true),
            Err(CryptoError::Malformed)
        );

        let mut sealed = header.to_vec();
        sealed.extend(sealer.seal_segment(&full, false).expect("first"));
        // No extra empty final segment after a full one.
        assert_eq!(sealer.seal_segment(&[], true), Err(CryptoError::Malformed));
        sealed.extend(sealer.seal_segment(b"tail", true).expect("last"));
        assert_eq!(
            sealer.seal_segment(b"more", true),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            sealer.seal_segment(&full, false),
            Err(CryptoError::Malformed)
        );

        let mut expected = full;
        expected.extend_from_slice(b"tail");
        assert_eq!(open(&KEY, &sealed), Ok(expected));
    }

    #[test]
    fn opener_checks_header() {
        let (_, header) = Sealer::with_params(&KEY, PREFIX, SEGMENT_SIZE);
        assert!(Opener::new(&KEY, &header).is_ok());

        let mut bad = header;
        bad[0] = b'X';
        assert_eq!(Opener::new(&KEY, &bad).err(), Some(CryptoError::Malformed));
        for version in [0, 2, 255] {
            let mut bad = header;
            bad[4] = version;
            assert_eq!(Opener::new(&KEY, &bad).err(), Some(CryptoError::Malformed));
        }
        assert_eq!(
            Opener::new(&KEY, &header[..47]).err(),
            Some(CryptoError::Malformed)
        );
        assert_eq!(
            Opener::new(&KEY, &[0; 49]).err(),
            Some(CryptoError::Malformed)
        );

        for (size, ok) in [
            (0, false),
            (1, true),
            (MAX_SEGMENT_SIZE, true),
            (MAX_SEGMENT_SIZE + 1, false),
            (u32::MAX as usize, false),
        ] {
            let mut header = header;
            header[5..9].copy_from_slice(&(size as u32).to_be_bytes());
            let opener = Opener::new(&KEY, &header);
            assert_eq!(opener.is_ok(), ok, "segment size {size}");
            if let Ok(opener) = opener {
                assert_eq!(opener.segment_size(), size);
            } else {
                assert_eq!(opener.err(), Some(CryptoError::Malformed));
            }
        }

        for i in COMMITMENT_AT..HEADER_LEN {
            let mut bad = header;
            bad[i] ^= 0x01;
            assert_eq!(Opener::new(&KEY, &bad).err(), Some(CryptoError::Integrity));
        }
        let mut other_key = KEY;
        other_key[31] ^= 0x80;
        assert_eq!(
            Opener::new(&other_key, &header).err(),
            Some(CryptoError::Integrity)
        );
    }

    #[test]
    fn opener_binds_index_and_last_flag() {
        let (_, sealed) = three_segments();
        let opener = Opener::new(&KEY, &sealed[..HEADER_LEN]).expect("header");
        let first = &sealed[at(0)..at(1)];
        let last = &sealed[at(2)..];
        assert!(opener.open_segment(0, first, false).is_ok());
        assert_eq!(
            opener.open_segment(1, first, false),
            Err(CryptoError::Integrity)
        );
        assert_eq!(
            opener.open_segment(0, first, true),
            Err(CryptoError::Integrity)
        );
        assert!(opener.open_segment(2, last, true).is_ok());
        assert_eq!(
            opener.open_segment(2, last, false),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            opener.open_segment(1, last, true),
            Err(CryptoError::Integrity)
        );
        assert_eq!(
            opener.open_segment(2, &last[..15], true),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            opener.open_segment(2, &last[..16], true),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            opener.open_segment(0, &first[1..], false),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn every_flipped_byte_of_a_small_message_fails() {
        let sealed = seal(&KEY, &plaintext(100));
        assert_eq!(sealed.len(), HEADER_LEN + 100 + TAG_LEN);
        for i in 0..sealed.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut bad = sealed.clone();
                bad[i] ^= mask;
                assert!(open(&KEY, &bad).is_err(), "byte {i} mask {mask:#x}");
            }
        }
    }

    #[test]
    fn flipped_bytes_in_header_segments_and_tags_fail() {
        let (_, sealed) = three_segments();
        let end = sealed.len();
        let mut positions: Vec<usize> = (0..HEADER_LEN).collect();
        for (start, stop) in [(at(0), at(1)), (at(1), at(2)), (at(2), end)] {
            let tag = stop - TAG_LEN;
            // First, middle and last ciphertext byte, and every tag byte.
            positions.extend([start, (start + tag) / 2, tag - 1]);
            positions.extend(tag..stop);
        }
        for i in positions {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&KEY, &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn truncation_anywhere_near_a_boundary_fails() {
        let (_, sealed) = three_segments();
        let end = sealed.len();
        let mut cuts = vec![0, 1, HEADER_LEN - 1, end - 1];
        for boundary in [HEADER_LEN, at(1), at(2)] {
            cuts.extend([boundary - 1, boundary, boundary + 1]);
        }
        cuts.extend([end - TAG_LEN, end - TAG_LEN - 1, end - TAG_LEN + 1]);
        for cut in cuts {
            assert!(open(&KEY, &sealed[..cut]).is_err(), "cut at {cut}");
        }
        // Dropping the final segment leaves whole segments: only the last flag catches it.
        assert_eq!(open(&KEY, &sealed[..at(2)]), Err(CryptoError::Integrity));
        assert_eq!(open(&KEY, &sealed[..at(1)]), Err(CryptoError::Integrity));
    }

    #[test]
    fn reordered_duplicated_and_appended_segments_fail() {
        let (_, sealed) = three_segments();
        let header = &sealed[..HEADER_LEN];
        let s0 = &sealed[at(0)..at(1)];
        let s1 = &sealed[at(1)..at(2)];
        let s2 = &sealed[at(2)..];

        let swapped = [header, s1, s0, s2].concat();
        assert_eq!(open(&KEY, &swapped), Err(CryptoError::Integrity));
        let duplicated = [header, s0, s0, s1, s2].concat();
        assert_eq!(open(&KEY, &duplicated), Err(CryptoError::Integrity));
        let replaced = [header, s0, s0, s2].concat();
        assert_eq!(open(&KEY, &replaced), Err(CryptoError::Integrity));
        let appended_full = [header, s0, s1, s2, s1].concat();
        assert!(open(&KEY, &appended_full).is_err());
        let appended_last = [header, s0, s1, s2, s2].concat();
        assert!(open(&KEY, &appended_last).is_err());

        // A full-size final segment followed by a copy of itself.
        let plain = plaintext(2 * SEGMENT_SIZE);
        let sealed = seal(&KEY, &plain);
        let copied = [&sealed[..], &sealed[at(1)..]].concat();
        assert_eq!(open(&KEY, &copied), Err(CryptoError::Integrity));
    }

    #[test]
    fn body_lengths_that_cannot_be_segments_are_malformed() {
        let sealed = seal(&KEY, &plaintext(SEGMENT_SIZE + 100));
        let header = &sealed[..HEADER_LEN];
        assert_eq!(open(&KEY, header), Err(CryptoError::Malformed));
        for tail in 1..TAG_LEN {
            let bad = [&sealed[..at(1)], &sealed[at(1)..at(1) + tail]].concat();
            assert_eq!(open(&KEY, &bad), Err(CryptoError::Malformed), "tail {tail}");
        }
        // An empty final segment only exists for the empty plaintext.
        let full = seal(&KEY, &plaintext(SEGMENT_SIZE));
        let empty_tail = [&full[..], &[0u8; TAG_LEN][..]].concat();
        assert_eq!(open(&KEY, &empty_tail), Err(CryptoError::Malformed));
    }

    #[test]
    fn wrong_key_is_integrity() {
        let (plain, sealed) = three_segments();
        let mut other = KEY;
        other[0] ^= 0x01;
        assert_eq!(open(&other, &sealed), Err(CryptoError::Integrity));
        let len = plain.len() as u64;
        assert_eq!(
            open_range(&other, &sealed, len, 0, 0),
            Err(CryptoError::Integrity)
        );
        assert_eq!(open(&other, &seal(&KEY, b"")), Err(CryptoError::Integrity));
    }

    #[test]
    fn empty_message_is_one_empty_final_segment() {
        let sealed = seal(&KEY, b"");
        assert_eq!(sealed.len(), HEADER_LEN + TAG_LEN);
        assert_eq!(open(&KEY, &sealed), Ok(Vec::new()));
        for i in HEADER_LEN..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                open(&KEY, &bad),
                Err(CryptoError::Integrity),
                "tag byte {i}"
            );
        }
        assert_eq!(
            open(&KEY, &sealed[..HEADER_LEN]),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            open(&KEY, &sealed[..sealed.len() - 1]),
            Err(CryptoError::Malformed)
        );
        let opener = Opener::new(&KEY, &sealed[..HEADER_LEN]).expect("header");
        let tag = &sealed[HEADER_LEN..];
        assert_eq!(
            opener.open_segment(0, tag, false),
            Err(CryptoError::Malformed)
        );
        assert_eq!(opener.open_segment(0, tag, true), Ok(Vec::new()));
    }

    #[test]
    fn open_range_every_pair_with_small_segments() {
        let plain = plaintext(53);
        let sealed = seal_fixed(&plain, 16);
        let len = plain.len() as u64;
        for start in 0..plain.len() {
            for end in start..plain.len() {
                let range = open_range(&KEY, &sealed, len, start as u64, end as u64);
                assert_eq!(range.as_deref(), Ok(&plain[start..=end]), "{start}..={end}");
            }
        }
    }

    #[test]
    fn open_range_samples_with_full_segments() {
        let (plain, sealed) = three_segments();
        let len = plain.len();
        let seg = SEGMENT_SIZE;
        for (start, end) in [
            (0, 0),
            (0, seg - 1),
            (seg - 1, seg),
            (seg, seg),
            (seg + 1, 2 * seg - 1),
            (2 * seg - 1, 2 * seg),
            (100, 2 * seg + 10),
            (len - 1, len - 1),
            (2 * seg, len - 1),
            (0, len - 1),
        ] {
            let range = open_range(&KEY, &sealed, len as u64, start as u64, end as u64);
            assert_eq!(range.as_deref(), Ok(&plain[start..=end]), "{start}..={end}");
        }
    }

    #[test]
    fn open_range_rejects_tampering_and_bad_lengths() {
        let (plain, sealed) = three_segments();
        let len = plain.len() as u64;
        let seg = SEGMENT_SIZE as u64;

        let mut bad = sealed.clone();
        bad[at(1) + 5] ^= 0x01;
        assert_eq!(
            open_range(&KEY, &bad, len, seg, seg),
            Err(CryptoError::Integrity)
        );
        assert_eq!(
            open_range(&KEY, &bad, len, 0, len - 1),
            Err(CryptoError::Integrity)
        );
        // Middle segments outside the range are not read (whole-content checks are `open`'s job)...
        assert!(open_range(&KEY, &bad, len, 0, seg - 1).is_ok());
        // ...but the final segment always is.
        let mut bad_last = sealed.clone();
        bad_last[sealed.len() - 1] ^= 0x01;
        assert_eq!(
            open_range(&KEY, &bad_last, len, 0, 0),
            Err(CryptoError::Integrity)
        );
        let mut bad_header = sealed.clone();
        bad_header[PREFIX_AT] ^= 0x01;
        assert_eq!(
            open_range(&KEY, &bad_header, len, 0, 0),
            Err(CryptoError::Integrity)
        );
        let mut swapped = sealed.clone();
        swapped[at(0)..at(1)].copy_from_slice(&sealed[at(1)..at(2)]);
        assert_eq!(
            open_range(&KEY, &swapped, len, 0, 0),
            Err(CryptoError::Integrity)
        );

        for wrong_len in [len - 1, len + 1, seg * 2, 1] {
            assert_eq!(
                open_range(&KEY, &sealed, wrong_len, 0, 0),
                Err(CryptoError::Integrity),
                "plaintext_len {wrong_len}"
            );
        }
        let cut = &sealed[..sealed.len() - 1];
        assert_eq!(
            open_range(&KEY, cut, len, 0, 0),
            Err(CryptoError::Integrity)
        );
        let dropped = &sealed[..at(2)];
        assert_eq!(
            open_range(&KEY, dropped, 2 * seg, 0, 0),
            Err(CryptoError::Integrity)
        );

        for (start, end) in [(1, 0), (0, len), (len, len), (5, u64::MAX)] {
            assert_eq!(
                open_range(&KEY, &sealed, len, start, end),
                Err(CryptoError::Malformed),
                "{start}..={end}"
            );
        }
        let empty = seal(&KEY, b"");
        assert_eq!(
            open_range(&KEY, &empty, 0, 0, 0),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            open_range(&KEY, &sealed[..10], len, 0, 0),
            Err(CryptoError::Malformed)
        );
    }

    /// Sealed blobs written by the format's first implementation (the
    /// `aes-gcm` 0.10 line), each with a fresh random nonce prefix as in
    /// production: data stored before a dependency upgrade must still open.
    /// `small.bin` is a one-segment message, `multi.bin` 200 KiB (four
    /// segments, the last one partial), both under the key [`fixture_key`].
    const FIXTURE_SMALL: &[u8] = include_bytes!("testdata/sealed-v1-small.bin");
    const FIXTURE_MULTI: &[u8] = include_bytes!("testdata/sealed-v1-multi.bin");
    const FIXTURE_SMALL_TEXT: &[u8] = b"sealed before the aes-gcm 0.11 upgrade\n";
    const FIXTURE_MULTI_LEN: usize = 200 * 1024;

    fn fixture_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        for (i, b) in key.iter_mut().enumerate() {
            *b = 0xA0 ^ (i as u8).wrapping_mul(7);
        }
        key
    }

    fn fixture_multi_plaintext() -> Vec<u8> {
        (0..FIXTURE_MULTI_LEN)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[i % 4])
            .collect()
    }

    /// Writes the fixtures above; run once, by hand, with the code that
    /// defines the format (`cargo test -p artifacts-shared -- --ignored write_fixtures`).
    #[test]
    #[ignore = "writes src/testdata: run by hand only"]
    fn write_fixtures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata");
        std::fs::create_dir_all(&dir).expect("testdata dir");
        let key = fixture_key();
        std::fs::write(
            dir.join("sealed-v1-small.bin"),
            seal(&key, FIXTURE_SMALL_TEXT),
        )
        .expect("small");
        std::fs::write(
            dir.join("sealed-v1-multi.bin"),
            seal(&key, &fixture_multi_plaintext()),
        )
        .expect("multi");
    }

    #[test]
    fn fixtures_sealed_before_the_upgrade_still_open() {
        let key = fixture_key();
        let plain = fixture_multi_plaintext();
        assert_eq!(
            hex::encode(Sha256::digest(&plain)),
            "ca2e68cf8f9c53239e19afbd06e5757a0692ddf20b4d45260bdd315216d3577a",
            "the fixture's plaintext generator changed"
        );
        assert_eq!(
            FIXTURE_SMALL.len() as u64,
            sealed_len(FIXTURE_SMALL_TEXT.len() as u64)
        );
        assert_eq!(
            FIXTURE_MULTI.len() as u64,
            sealed_len(FIXTURE_MULTI_LEN as u64)
        );
        assert_eq!(open(&key, FIXTURE_SMALL).as_deref(), Ok(FIXTURE_SMALL_TEXT));
        assert_eq!(open(&key, FIXTURE_MULTI).as_deref(), Ok(&plain[..]));
        // Streaming and ranged opens read the same bytes.
        let opener = Opener::new(&key, &FIXTURE_MULTI[..HEADER_LEN]).expect("header");
        let segments: Vec<&[u8]> = FIXTURE_MULTI[HEADER_LEN..].chunks(CHUNK).collect();
        assert_eq!(segments.len(), 4);
        let mut streamed = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            streamed.extend(
                opener
                    .open_segment(i as u32, segment, last)
                    .expect("segment"),
            );
        }
        assert_eq!(streamed, plain);
        let len = plain.len() as u64;
        let (start, end) = (SEGMENT_SIZE as u64 - 3, 2 * SEGMENT_SIZE as u64 + 3);
        assert_eq!(
            open_range(&key, FIXTURE_MULTI, len, start, end).as_deref(),
            Ok(&plain[start as usize..=end as usize])
        );
        // And they are still tamper-evident.
        for at in [
            0,
            HEADER_LEN - 1,
            HEADER_LEN,
            HEADER_LEN + CHUNK + 7,
            FIXTURE_MULTI.len() - 1,
        ] {
            let mut bad = FIXTURE_MULTI.to_vec();
            bad[at] ^= 0x01;
            assert!(open(&key, &bad).is_err(), "byte {at}");
        }
        let mut other = key;
        other[0] ^= 0x01;
        assert_eq!(open(&other, FIXTURE_SMALL), Err(CryptoError::Integrity));
    }

    #[test]
    fn debug_output_hides_key_material() {
        let (sealer, header) = Sealer::with_params(&KEY, PREFIX, SEGMENT_SIZE);
        let opener = Opener::new(&KEY, &header).expect("header");
        let shown = format!("{sealer:?} {opener:?}");
        assert!(shown.contains("Sealer") && shown.contains("Opener"));
        assert!(!shown.contains(&hex::encode(&header[COMMITMENT_AT..])));
        assert!(!shown.contains("cipher") && !shown.contains("header"));
    }
}
