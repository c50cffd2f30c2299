//! A bundle's manifest signature (SPEC §7, §18): `MANIFEST.json.sig`, a
//! DSSE envelope of payload type [`MANIFEST_PAYLOAD_TYPE`] over the
//! manifest's exact bytes, signed by the publish signing key.
//!
//! KMS ECDSA signatures are randomized, yet a bundle's bytes must depend
//! only on its selection (its strong ETag is the selection digest, and large
//! bundles are kept in `deliveries/` by that digest). So a selection is
//! signed once: the signature (key id and DER, not the envelope, whose
//! payload repeats the manifest) is kept in the table under
//! `{org}#BS` / `{digest}`, written only if absent. Two builds racing over
//! one new selection both sign, one write wins, and the loser reads and uses
//! the winner's signature: both answer the same bytes. The envelope is
//! rebuilt from the manifest and the kept signature, byte for byte.
//!
//! A kept signature by another key than the configured one (the key was
//! rotated) is replaced by a new one, once.
//!
//! The item carries `expiresAt` (the table's TTL) [`KEEP_DAYS`] after it was
//! made: a selection bundled again after that is signed anew (same
//! manifest and ETag, another signature).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::attestation::{Dsse, MANIFEST_PAYLOAD_TYPE, pae};
use crate::bundle::Selection;
use crate::error::{Error, Result};
use crate::metadata::bundle_signature_pk;
use crate::store::Store;

/// How long a selection's signature is kept.
pub const KEEP_DAYS: i64 = 365;

impl Store {
    /// The manifest's DSSE envelope (JSON bytes), signed by at most one KMS
    /// `Sign` per selection digest. Any failure is an error: never an
    /// unsigned bundle.
    pub(crate) async fn bundle_signature(
        &self,
        org: &str,
        selection: &Selection,
    ) -> Result<Vec<u8>> {
        let (keyid, der) = match self.kept_signature(org, &selection.digest).await? {
            Some((keyid, der)) if Some(keyid.as_str()) == self.config.signing_key_id.as_deref() => {
                (keyid, der)
            }
            // None kept, or one by a key that is no longer the signing key
            // (rotated): sign with the current key and replace it.
            stale => {
                self.sign_selection(org, selection, stale.map(|(k, _)| k))
                    .await?
            }
        };
        let envelope = Dsse::new(MANIFEST_PAYLOAD_TYPE, &selection.manifest, keyid, &der);
        serde_json::to_vec(&envelope).map_err(|e| Error::upstream("json", e))
    }

    async fn kept_signature(&self, org: &str, digest: &str) -> Result<Option<(String, Vec<u8>)>> {
        let Some(item) = self
            .metadata
            .item(bundle_signature_pk(org), digest.to_owned())
            .await?
        else {
            return Ok(None);
        };
        match (item.get("keyId"), item.get("sig")) {
            (Some(AttributeValue::S(keyid)), Some(AttributeValue::B(der))) => {
                Ok(Some((keyid.clone(), der.as_ref().to_vec())))
            }
            _ => Err(Error::Integrity(
                "stored item has a missing or malformed keyId/sig".into(),
            )),
        }
    }

    /// Sign and keep (in place of `stale`, a signature by a former key),
    /// unless another build kept one first: then theirs.
    async fn sign_selection(
        &self,
        org: &str,
        selection: &Selection,
        stale: Option<String>,
    ) -> Result<(String, Vec<u8>)> {
        let signature = self
            .signer
            .sign(&pae(MANIFEST_PAYLOAD_TYPE, &selection.manifest))
            .await?;
        let now = time::OffsetDateTime::now_utc();
        let expires = now.unix_timestamp() + KEEP_DAYS * 86_400;
        let put = self
            .metadata
            .client()
            .put_item()
            .table_name(self.metadata.table())
            .item("pk", AttributeValue::S(bundle_signature_pk(org)))
            .item("sk", AttributeValue::S(selection.digest.clone()))
            .item("keyId", AttributeValue::S(signature.key_id.clone()))
            .item("sig", AttributeValue::B(Blob::new(signature.der.clone())))
            .item(
                "workflowId",
                AttributeValue::S(selection.workflow_id.clone()),
            )
            .item("expiresAt", AttributeValue::N(expires.to_string()));
        let put = match stale {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(former) => put
                .condition_expression("keyId = :former")
                .expression_attribute_values(":former", AttributeValue::S(former)),
        };
        let written = put.send().await;
        match written {
            Ok(_) => Ok((signature.key_id, signature.der)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                tracing::info!(digest = %selection.digest, "bundle signed concurrently; using the kept signature");
                self.kept_signature(org, &selection.digest)
                    .await?
                    .ok_or_else(|| Error::upstream("dynamodb", "the kept signature vanished"))
            }
            Err(e) => Err(Error::upstream("dynamodb", e)),
        }
    }
}
