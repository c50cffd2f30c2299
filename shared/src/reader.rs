//! Reading a stored version's plaintext segment by segment, in constant
//! memory, whatever its size: the S3 body is consumed as it arrives and cut
//! into sealed segments, each authenticated before its plaintext is handed
//! out. The end of the stream is checked too: a short, long or altered
//! object, or one whose plaintext does not hash to the recorded SHA-256, is
//! [`Error::Integrity`] — the caller must then abandon whatever it was
//! writing, never deliver it.

use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

use crate::content::content_key;
use crate::crypto::{self, HEADER_LEN, Opener, SEGMENT_SIZE, TAG_LEN};
use crate::error::{Error, Result};
use crate::metadata::{Location, VersionRecord};
use crate::store::Store;

enum Source {
    Inline {
        sealed: Vec<u8>,
        pos: usize,
    },
    /// `buf[pos..]` is received and not yet consumed.
    S3 {
        body: ByteStream,
        buf: Vec<u8>,
        pos: usize,
    },
}

impl Source {
    /// The next `n` bytes of the sealed object, borrowed, or an integrity
    /// error when it ends sooner. They count as consumed.
    async fn take(&mut self, n: usize) -> Result<&[u8]> {
        match self {
            Source::Inline { sealed, pos } => {
                let start = *pos;
                let end = start
                    .checked_add(n)
                    .filter(|end| *end <= sealed.len())
                    .ok_or_else(short)?;
                *pos = end;
                Ok(&sealed[start..end])
            }
            Source::S3 { body, buf, pos } => {
                if buf.len() - *pos < n {
                    // Keep only what is unconsumed, then read until `n` are here.
                    buf.drain(..*pos);
                    *pos = 0;
                    buf.reserve(n.saturating_sub(buf.len()));
                    while buf.len() < n {
                        match body
                            .try_next()
                            .await
                            .map_err(|e| Error::upstream("s3", e))?
                        {
                            Some(chunk) => buf.extend_from_slice(&chunk),
                            None => return Err(short()),
                        }
                    }
                }
                let start = *pos;
                *pos += n;
                Ok(&buf[start..start + n])
            }
        }
    }

    /// Whether the sealed object has nothing left.
    async fn is_exhausted(&mut self) -> Result<bool> {
        match self {
            Source::Inline { sealed, pos } => Ok(*pos == sealed.len()),
            Source::S3 { body, buf, pos } => {
                if buf.len() > *pos {
                    return Ok(false);
                }
                while let Some(chunk) = body
                    .try_next()
                    .await
                    .map_err(|e| Error::upstream("s3", e))?
                {
                    if !chunk.is_empty() {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }
}

fn short() -> Error {
    Error::Integrity("stored content is shorter than its metadata says".into())
}

/// Plaintext of one version, one authenticated segment at a time.
pub struct PlaintextReader {
    source: Source,
    opener: Opener,
    index: u64,
    count: u64,
    size: u64,
    hasher: Sha256,
    expected_sha256: String,
}

impl std::fmt::Debug for PlaintextReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaintextReader")
            .field("index", &self.index)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl PlaintextReader {
    /// The plaintext size (from metadata, enforced while reading).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next segment's plaintext, or `None` after the last one — which is
    /// returned only once the whole object has authenticated and hashed right.
    pub async fn next_segment(&mut self) -> Result<Option<Vec<u8>>> {
        if self.index >= self.count {
            return Ok(None);
        }
        let last = self.index + 1 == self.count;
        let plain_len = if last {
            (self.size - (self.count - 1) * SEGMENT_SIZE as u64) as usize
        } else {
            SEGMENT_SIZE
        };
        let index = u32::try_from(self.index).map_err(|_| short())?;
        let sealed = self.source.take(plain_len + TAG_LEN).await?;
        // Decrypted straight out of the receive buffer: one copy, the plaintext's.
        let mut plain = Vec::with_capacity(plain_len);
        self.opener
            .open_segment_into(index, sealed, last, &mut plain)?;
        self.hasher.update(&plain);
        self.index += 1;
        if last {
            if !self.source.is_exhausted().await? {
                return Err(Error::Integrity(
                    "stored content is longer than its metadata says".into(),
                ));
            }
            let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
            if digest != self.expected_sha256 {
                return Err(Error::Integrity("content does not match its sha256".into()));
            }
        }
        Ok(Some(plain))
    }
}

impl Store {
    /// Start reading a version's plaintext: fetches the content (streaming
    /// from S3), unwraps the data key and checks the header's key commitment.
    pub async fn reader(
        &self,
        org: &str,
        artifact_id: &str,
        record: &VersionRecord,
    ) -> Result<PlaintextReader> {
        let size = record.version.size;
        let fetch = async {
            Ok(match &record.location {
                Location::Inline(sealed) => Source::Inline {
                    sealed: sealed.clone(),
                    pos: 0,
                },
                Location::S3 { version_id } => {
                    let out = self
                        .content
                        .client()
                        .get_object()
                        .bucket(self.content.bucket())
                        .key(content_key(org, artifact_id))
                        .version_id(version_id)
                        .send()
                        .await
                        .map_err(|e| Error::upstream("s3", e))?;
                    if out
                        .content_length()
                        .is_some_and(|len| len as u64 != crypto::sealed_len(size))
                    {
                        return Err(Error::Integrity(
                            "stored content has the wrong length".into(),
                        ));
                    }
                    Source::S3 {
                        body: out.body,
                        buf: Vec::with_capacity(2 * (SEGMENT_SIZE + TAG_LEN)),
                        pos: 0,
                    }
                }
            })
        };
        // The content's first bytes and its key come from two services: ask both at once.
        let (mut source, key) = tokio::try_join!(fetch, self.data_key(org, artifact_id, record))?;
        let header = source.take(HEADER_LEN).await?;
        let opener = Opener::new(&key, header)?;
        // The opener keeps its own key schedule; `key` is wiped on return.
        if opener.segment_size() != SEGMENT_SIZE {
            return Err(Error::Integrity("unexpected segment size".into()));
        }
        Ok(PlaintextReader {
            source,
            opener,
            index: 0,
            count: crypto::segment_count(size),
            size,
            hasher: Sha256::new(),
            expected_sha256: record.version.sha256.clone(),
        })
    }
}
