//! The publish signing key (SPEC §18): a KMS `ECC_NIST_P256` `SIGN_VERIFY`
//! key whose private half never leaves KMS. `Sign` (ECDSA_SHA_256) makes the
//! signature of every attestation; `GetPublicKey` hands out the half anyone
//! verifies with.
//!
//! An adapter below the attestation capability: it knows KMS and bytes,
//! nothing of statements, envelopes or items.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

use crate::error::{Error, Result};

/// Longest message KMS signs as `RAW`; longer ones are sent as their digest.
const MAX_RAW_MESSAGE: usize = 4096;

/// A signature and the key (its ARN, as KMS names it) that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub key_id: String,
    /// ASN.1 DER `ECDSA-Sig-Value`.
    pub der: Vec<u8>,
}

/// The public half: its key id (ARN) and its `SubjectPublicKeyInfo` (DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    pub spki_der: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Signer {
    kms: aws_sdk_kms::Client,
    key_id: Option<String>,
}

impl Signer {
    pub fn new(kms: aws_sdk_kms::Client, key_id: Option<String>) -> Self {
        Signer { kms, key_id }
    }

    fn key_id(&self) -> Result<&str> {
        self.key_id
            .as_deref()
            .ok_or_else(|| Error::upstream("kms", "ARTIFACTS_SIGNING_KEY_ID is not configured"))
    }

    /// ECDSA P-256 / SHA-256 over `message`: one KMS `Sign` request.
    pub async fn sign(&self, message: &[u8]) -> Result<Signature> {
        use sha2::{Digest, Sha256};
        let (message, kind) = if message.len() <= MAX_RAW_MESSAGE {
            (message.to_vec(), MessageType::Raw)
        } else {
            (Sha256::digest(message).to_vec(), MessageType::Digest)
        };
        let out = self
            .kms
            .sign()
            .key_id(self.key_id()?)
            .message(Blob::new(message))
            .message_type(kind)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| Error::upstream("kms", e))?;
        let der = out
            .signature()
            .map(|b| b.as_ref().to_vec())
            .filter(|d| !d.is_empty())
            .ok_or_else(|| Error::upstream("kms", "Sign returned no signature"))?;
        let key_id = out
            .key_id()
            .map_or_else(|| self.key_id.clone().unwrap_or_default(), str::to_owned);
        Ok(Signature { key_id, der })
    }

    /// The public key: one KMS `GetPublicKey` request.
    pub async fn public_key(&self) -> Result<PublicKey> {
        let out = self
            .kms
            .get_public_key()
            .key_id(self.key_id()?)
            .send()
            .await
            .map_err(|e| Error::upstream("kms", e))?;
        let spki_der = out
            .public_key()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| Error::upstream("kms", "GetPublicKey returned no key"))?;
        let key_id = out
            .key_id()
            .map_or_else(|| self.key_id.clone().unwrap_or_default(), str::to_owned);
        Ok(PublicKey { key_id, spki_der })
    }
}
