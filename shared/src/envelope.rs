//! Envelope encryption with KMS (SPEC §6): one AES-256 data key per version,
//! bound to `{org, artifactId, contentId}` by the encryption context. The
//! plaintext key exists only in memory for the request; the wrapped key is
//! stored with the version.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::crypto::KEY_LEN;
use crate::error::{Error, Result};

/// Where a data key may be used: KMS refuses to unwrap it anywhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyContext<'a> {
    pub org: &'a str,
    pub artifact_id: &'a str,
    pub content_id: &'a str,
}

/// A fresh data key: the plaintext for sealing now, the wrapped form to store.
pub struct DataKey {
    pub plaintext: [u8; KEY_LEN],
    pub wrapped: Vec<u8>,
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
        let out = self
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
        let plaintext = out
            .plaintext()
            .and_then(|b| <[u8; KEY_LEN]>::try_from(b.as_ref()).ok())
            .ok_or_else(|| Error::upstream("kms", "GenerateDataKey returned no 32-byte key"))?;
        let wrapped = out
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| Error::upstream("kms", "GenerateDataKey returned no wrapped key"))?;
        Ok(DataKey { plaintext, wrapped })
    }

    /// Unwrap a stored key. A key that KMS rejects for this context (tampered,
    /// or moved from another version) is an integrity failure, not an outage.
    pub async fn unwrap(&self, wrapped: &[u8], ctx: &KeyContext<'_>) -> Result<[u8; KEY_LEN]> {
        let out = self
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
        out.plaintext()
            .and_then(|b| <[u8; KEY_LEN]>::try_from(b.as_ref()).ok())
            .ok_or_else(|| Error::Integrity("unwrapped data key is not 32 bytes".into()))
    }
}
