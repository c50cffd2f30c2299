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

/// A signature and the key that made it, named as configured
/// (`ARTIFACTS_SIGNING_KEY_ID`; deployed, the key's ARN): the same name
/// [`Signer::public_key`] gives, whatever form KMS answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub key_id: String,
    /// ASN.1 DER `ECDSA-Sig-Value`.
    pub der: Vec<u8>,
}

/// The public half: its key id (as configured) and its `SubjectPublicKeyInfo` (DER).
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
        let key_id = self.key_id()?.to_owned();
        let out = self
            .kms
            .sign()
            .key_id(&key_id)
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
        Ok(Signature { key_id, der })
    }

    /// The public key: one KMS `GetPublicKey` request.
    pub async fn public_key(&self) -> Result<PublicKey> {
        let key_id = self.key_id()?.to_owned();
        let out = self
            .kms
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| Error::upstream("kms", e))?;
        let spki_der = out
            .public_key()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| Error::upstream("kms", "GetPublicKey returned no key"))?;
        Ok(PublicKey { key_id, spki_der })
    }
}
