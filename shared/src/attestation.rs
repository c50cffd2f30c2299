//! Signed publish attestations (SPEC §18): every committed version carries a
//! DSSE envelope over an in-toto Statement v1 that names its bytes (the
//! subject's sha256) and who published it, when, from which workflow (the
//! `urn:artifacts:predicate:publish:v1` predicate). The signature is KMS
//! ECDSA P-256 / SHA-256 over the DSSE pre-authentication encoding (PAE), so
//! anyone holding the public key (`GET /v1/signing-key`) verifies it offline
//! with standard tools (README: "Publish attestations").
//!
//! What it proves: these bytes were committed by the store as this version,
//! published by this principal of this org at this time. What it does not:
//! that the workflow which produced the bytes was honest.

use serde::Serialize;

use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::metadata::Attestation;
use crate::store::Store;

// The types and checks live in the verifier crate the CLI links too.
pub use artifacts_attest::{
    Dsse, DsseSignature, MANIFEST_PAYLOAD_TYPE, Manifest, ManifestFile, PAYLOAD_TYPE,
    PREDICATE_TYPE, Publish, SIGNATURE_SUFFIX, STATEMENT_TYPE, Statement, Subject, SubjectDigest,
    pae, public_key_pem, sha256_hex,
};

fn invalid(e: artifacts_attest::Error) -> Error {
    Error::Integrity(format!("attestation does not verify: {e}"))
}

/// The SPKI DER inside a PEM public key.
pub fn spki_from_pem(pem: &str) -> Result<Vec<u8>> {
    artifacts_attest::spki_from_pem(pem).map_err(invalid)
}

/// [`artifacts_attest::verify`] as a store error.
pub fn verify(envelope_json: &[u8], spki_der: &[u8]) -> Result<Statement> {
    artifacts_attest::verify(envelope_json, spki_der).map_err(invalid)
}

/// [`artifacts_attest::verify_content`] as a store error.
pub fn verify_content(envelope_json: &[u8], spki_der: &[u8], content: &[u8]) -> Result<Statement> {
    artifacts_attest::verify_content(envelope_json, spki_der, content).map_err(invalid)
}

/// `GET /v1/signing-key`: the PEM public key and its key id.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub key_id: String,
    pub algorithm: &'static str,
    pub public_key_pem: String,
}

impl Store {
    /// Sign `statement` into a DSSE envelope (its JSON, as stored): one KMS
    /// `Sign`. Any failure fails the write that asked for it.
    pub(crate) async fn attest(&self, statement: &Statement) -> Result<String> {
        let payload = serde_json::to_vec(statement)
            .map_err(|e| Error::upstream("attestation", e.to_string()))?;
        self.sign_envelope(PAYLOAD_TYPE, &payload).await
    }

    /// A DSSE envelope (its JSON) of `payload`, signed by one KMS `Sign`
    /// over the PAE of `payload_type` and `payload`.
    pub(crate) async fn sign_envelope(&self, payload_type: &str, payload: &[u8]) -> Result<String> {
        let signature = self.signer.sign(&pae(payload_type, payload)).await?;
        let envelope = Dsse::new(payload_type, payload, signature.key_id, &signature.der);
        serde_json::to_string(&envelope).map_err(|e| Error::upstream("attestation", e.to_string()))
    }

    /// A version's stored DSSE envelope (JSON). Another org's version, or a
    /// version committed before attestations existed, is not found.
    pub async fn attestation(
        &self,
        principal: &Principal,
        artifact_id: &str,
        version: u64,
    ) -> Result<String> {
        principal.require(Scope::Read)?;
        let (artifact, record) = self.version(principal, artifact_id, Some(version)).await?;
        match record.attestation {
            Some(Attestation::Envelope(envelope)) => Ok(envelope),
            // A copy of the record knew only that it is signed: the
            // envelope is on the version item.
            Some(Attestation::OnVersionItem) => self
                .metadata
                .version(&principal.org, &artifact.artifact_id, version)
                .await?
                .and_then(|r| match r.attestation {
                    Some(Attestation::Envelope(envelope)) => Some(envelope),
                    _ => None,
                })
                .ok_or(Error::NotFound("attestation")),
            None => Err(Error::NotFound("attestation")),
        }
    }

    /// The public key attestations verify with (no principal: it is public).
    pub async fn signing_key(&self) -> Result<SigningKey> {
        let key = self.signer.public_key().await?;
        Ok(SigningKey {
            key_id: key.key_id,
            algorithm: "ECDSA_P256_SHA256",
            public_key_pem: public_key_pem(&key.spki_der),
        })
    }
}

/// What one backfill run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backfill {
    /// Version items read.
    pub examined: u64,
    /// Versions that had no attestation and have one now.
    pub signed: u64,
}

/// The `requestId` of attestations made after the fact.
pub const BACKFILL_REQUEST_ID: &str = "backfill";

impl Store {
    /// The one-off backfill for versions committed before attestations
    /// existed: sign each version of `artifact_id` (in `org`) that has none,
    /// at most `max_signed` per run, saying what the version item recorded
    /// (`requestId` [`BACKFILL_REQUEST_ID`]). An operator's job like
    /// [`Store::sweep_orphans`], with no route of its own. Idempotent: a
    /// signed version is skipped, and each write is conditional on the item
    /// still holding the same content and no attestation.
    pub async fn backfill_attestations(
        &self,
        org: &str,
        artifact_id: &str,
        max_signed: u64,
    ) -> Result<Backfill> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let artifact = self
            .metadata
            .artifact(org, crate::model::parse_artifact_id(artifact_id)?)
            .await?
            .ok_or(Error::NotFound("artifact"))?;
        let mut report = Backfill::default();
        for number in 1..=artifact.latest_version {
            if report.signed >= max_signed {
                break;
            }
            let Some(record) = self
                .metadata
                .version(org, &artifact.artifact_id, number)
                .await?
            else {
                continue;
            };
            report.examined += 1;
            if record.attestation.is_some() {
                continue;
            }
            let v = &record.version;
            let statement = Statement::publish(
                &artifact.path,
                &v.sha256,
                Publish {
                    org: org.to_owned(),
                    workflow_id: artifact.workflow_id.clone(),
                    artifact_id: artifact.artifact_id.clone(),
                    version: v.version,
                    size: v.size,
                    content_type: v.content_type.clone(),
                    published_at: v.created_at.clone(),
                    published_by: v.created_by.clone(),
                    request_id: BACKFILL_REQUEST_ID.to_owned(),
                },
            );
            let envelope = self.attest(&statement).await?;
            let written = self
                .metadata
                .client()
                .update_item()
                .table_name(self.metadata.table())
                .key(
                    "pk",
                    AttributeValue::S(crate::metadata::artifact_pk(org, &artifact.artifact_id)),
                )
                .key("sk", AttributeValue::S(crate::metadata::version_sk(number)))
                .update_expression("SET attestation = :a")
                .condition_expression(
                    "attribute_exists(pk) AND contentId = :c AND attribute_not_exists(attestation)",
                )
                .expression_attribute_values(":a", AttributeValue::S(envelope))
                .expression_attribute_values(":c", AttributeValue::S(record.content_id.clone()))
                .send()
                .await;
            match written {
                Ok(_) => report.signed += 1,
                // Signed (or changed) meanwhile: nothing to do.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(Error::upstream("dynamodb", e)),
            }
        }
        Ok(report)
    }
}

/// Where a version's attestation is served (relative to the API when no
/// public base URL is configured).
pub fn attestation_url(base: Option<&str>, artifact_id: &str, version: u64) -> String {
    format!(
        "{}/v1/artifacts/{artifact_id}/versions/{version}/attestation",
        base.unwrap_or("")
    )
}
