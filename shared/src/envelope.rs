//! Envelope encryption with KMS (SPEC §6): one AES-256 data key per version,
//! bound to `{org, artifactId, contentId}` by the encryption context. The
//! plaintext key exists only in memory for the request; the wrapped key is
//! stored with the version.
//!
//! Plaintext keys live in [`PlainKey`] (`Zeroizing`): wiped when dropped.
//! The SDK hands the key over as a `Blob` (a `Vec`) decoded from the KMS
//! response; that buffer is taken out of the output and wiped too. The
//! response's raw bytes (the base64 text inside the SDK's HTTP body) are
//! freed by the SDK without wiping: they are out of our reach.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

use crate::crypto::KEY_LEN;
use crate::error::{Error, Result};

/// Where a data key may be used: KMS refuses to unwrap it anywhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyContext<'a> {
    pub org: &'a str,
    pub artifact_id: &'a str,
    pub content_id: &'a str,
}

/// A plaintext data key: overwritten with zeros when dropped.
pub type PlainKey = Zeroizing<[u8; KEY_LEN]>;

/// A fresh data key: the plaintext for sealing now, the wrapped form to store.
pub struct DataKey {
    pub plaintext: PlainKey,
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("wrapped_len", &self.wrapped.len())
            .finish_non_exhaustive()
    }
}

/// Moves a key out of the SDK's `Blob` into a [`PlainKey`], wiping the
/// blob's buffer whatever its length. `None` unless it is exactly 32 bytes.
fn take_key(blob: Option<Blob>) -> Option<PlainKey> {
    let bytes = Zeroizing::new(blob?.into_inner());
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return None;
    }
    key.copy_from_slice(&bytes);
    Some(key)
}

#[derive(Debug, Clone)]
pub struct Envelope {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl Envelope {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Envelope {
            kms,
            key_id: key_id.into(),
        }
    }

    pub async fn generate(&self, ctx: &KeyContext<'_>) -> Result<DataKey> {
        let mut out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("org", ctx.org)
            .encryption_context("artifactId", ctx.artifact_id)
            .encryption_context("contentId", ctx.content_id)
            .send()
            .await
            .map_err(|e| Error::upstream("kms", e))?;
        let plaintext = take_key(out.plaintext.take())
            .ok_or_else(|| Error::upstream("kms", "GenerateDataKey returned no 32-byte key"))?;
        let wrapped = out
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| Error::upstream("kms", "GenerateDataKey returned no wrapped key"))?;
        Ok(DataKey { plaintext, wrapped })
    }

    /// Unwrap a stored key. A key that KMS rejects for this context (tampered,
    /// or moved from another version) is an integrity failure, not an outage.
    pub async fn unwrap(&self, wrapped: &[u8], ctx: &KeyContext<'_>) -> Result<PlainKey> {
        let mut out = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context("org", ctx.org)
            .encryption_context("artifactId", ctx.artifact_id)
            .encryption_context("contentId", ctx.content_id)
            .send()
            .await
            .map_err(|e| {
                let rejected = e.as_service_error().is_some_and(|se| {
                    se.is_invalid_ciphertext_exception() || se.is_incorrect_key_exception()
                });
                if rejected {
                    Error::Integrity("KMS rejected the wrapped data key".into())
                } else {
                    Error::upstream("kms", e)
                }
            })?;
        take_key(out.plaintext.take())
            .ok_or_else(|| Error::Integrity("unwrapped data key is not 32 bytes".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_out_of_the_blob_into_zeroizing_holders() {
        let key: PlainKey = take_key(Some(Blob::new(vec![7u8; KEY_LEN]))).expect("32 bytes");
        assert_eq!(*key, [7u8; KEY_LEN]);
        for len in [0, 16, 31, 33, 64] {
            assert!(take_key(Some(Blob::new(vec![7u8; len]))).is_none(), "{len}");
        }
        assert!(take_key(None).is_none());
    }

    #[test]
    fn a_plain_key_is_wiped_in_place() {
        use zeroize::Zeroize;
        // What `Drop` does for a `PlainKey`, observed through the holder.
        let mut key: PlainKey = Zeroizing::new([0xAB; KEY_LEN]);
        key.zeroize();
        assert_eq!(*key, [0u8; KEY_LEN]);
        let shown = format!(
            "{:?}",
            DataKey {
                plaintext: Zeroizing::new([0xCD; KEY_LEN]),
                wrapped: vec![1, 2, 3],
            }
        );
        assert!(!shown.contains("205") && !shown.contains("cd"), "{shown}");
    }
}
