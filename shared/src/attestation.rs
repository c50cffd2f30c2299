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

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::metadata::Attestation;
use crate::store::Store;

/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "urn:artifacts:predicate:publish:v1";
/// The DER prefix of every P-256 `SubjectPublicKeyInfo` (id-ecPublicKey,
/// prime256v1, a 66-byte BIT STRING); the uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The DSSE envelope as stored and served (plain DSSE JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dsse {
    /// Base64 (standard, padded) of the statement's exact bytes.
    pub payload: String,
    pub payload_type: String,
    pub signatures: Vec<DsseSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsseSignature {
    pub keyid: String,
    /// Base64 of the DER ECDSA signature over [`pae`].
    pub sig: String,
}

/// in-toto Statement v1 with the publish predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Publish,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `<workflowId>/<path>`.
    pub name: String,
    pub digest: SubjectDigest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectDigest {
    pub sha256: String,
}

/// `urn:artifacts:predicate:publish:v1`: the version as the store committed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publish {
    pub org: String,
    pub workflow_id: String,
    pub artifact_id: String,
    pub version: u64,
    pub size: u64,
    pub content_type: String,
    /// The version's `createdAt`.
    pub published_at: String,
    /// The publishing principal's `sub`.
    pub published_by: String,
    /// The API request id (direct upload) or the upload id (ingest).
    pub request_id: String,
}

impl Statement {
    pub fn publish(path: &str, sha256: &str, predicate: Publish) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: vec![Subject {
                name: format!("{}/{}", predicate.workflow_id, path),
                digest: SubjectDigest {
                    sha256: sha256.to_owned(),
                },
            }],
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate,
        }
    }
}

/// DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A public key as PEM (`-----BEGIN PUBLIC KEY-----`, SPKI DER, 64-column base64).
pub fn public_key_pem(spki_der: &[u8]) -> String {
    let b64 = STANDARD.encode(spki_der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// The SPKI DER inside a PEM public key.
pub fn spki_from_pem(pem: &str) -> Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| Error::Integrity("the public key is not PEM".into()))
}

fn invalid(what: &str) -> Error {
    Error::Integrity(format!("attestation does not verify: {what}"))
}

/// Check a DSSE envelope (its JSON) against a P-256 public key (SPKI DER):
/// the payload type, at least one valid signature over the PAE, and a
/// well-formed publish statement, which is returned. Needs nothing of the
/// service: this is the offline check the CLI and the tests run.
pub fn verify(envelope_json: &[u8], spki_der: &[u8]) -> Result<Statement> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    let envelope: Dsse =
        serde_json::from_slice(envelope_json).map_err(|_| invalid("not a DSSE envelope"))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(invalid("unexpected payloadType"));
    }
    let point = spki_der
        .strip_prefix(&P256_SPKI_PREFIX[..])
        .filter(|p| p.len() == 65)
        .ok_or_else(|| invalid("the key is not a P-256 public key"))?;
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| invalid("payload is not base64"))?;
    let message = pae(&envelope.payload_type, &payload);
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point);
    let signed = envelope.signatures.iter().any(|s| {
        STANDARD
            .decode(&s.sig)
            .is_ok_and(|sig| key.verify(&message, &sig).is_ok())
    });
    if !signed {
        return Err(invalid("no signature verifies with this key"));
    }
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|_| invalid("payload is not a statement"))?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        return Err(invalid("not a publish statement"));
    }
    Ok(statement)
}

/// [`verify`], and that `content` is the statement's one subject.
pub fn verify_content(envelope_json: &[u8], spki_der: &[u8], content: &[u8]) -> Result<Statement> {
    let statement = verify(envelope_json, spki_der)?;
    let digest = hex::encode(Sha256::digest(content));
    match statement.subject.as_slice() {
        [subject] if subject.digest.sha256.eq_ignore_ascii_case(&digest) => Ok(statement),
        _ => Err(invalid("the content is not the attested subject")),
    }
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
        let signature = self.signer.sign(&pae(PAYLOAD_TYPE, &payload)).await?;
        let envelope = Dsse {
            payload: STANDARD.encode(&payload),
            payload_type: PAYLOAD_TYPE.to_owned(),
            signatures: vec![DsseSignature {
                keyid: signature.key_id,
                sig: STANDARD.encode(&signature.der),
            }],
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document (secure-systems-lab/dsse, protocol.md).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn pem_round_trips() {
        let der: Vec<u8> = (0..91u8).collect();
        let pem = public_key_pem(&der);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(spki_from_pem(&pem).unwrap(), der);
    }

    #[test]
    fn verification_checks_signature_type_and_subject() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        let content = b"terraform plan";
        let statement = Statement::publish(
            "plan.bin",
            &hex::encode(Sha256::digest(content)),
            Publish {
                org: "acme".into(),
                workflow_id: "wf".into(),
                artifact_id: "a".repeat(32),
                version: 1,
                size: content.len() as u64,
                content_type: "application/octet-stream".into(),
                published_at: "2026-01-01T00:00:00.000Z".into(),
                published_by: "u1".into(),
                request_id: "r1".into(),
            },
        );
        let payload = serde_json::to_vec(&statement).unwrap();
        let sign = |payload: &[u8]| {
            let sig = pair
                .sign(&rng, &pae(PAYLOAD_TYPE, payload))
                .unwrap()
                .as_ref()
                .to_vec();
            Dsse {
                payload: STANDARD.encode(payload),
                payload_type: PAYLOAD_TYPE.into(),
                signatures: vec![DsseSignature {
                    keyid: "k".into(),
                    sig: STANDARD.encode(sig),
                }],
            }
        };
        let good = sign(&payload);
        let json = serde_json::to_vec(&good).unwrap();
        assert_eq!(verify_content(&json, &spki, content).unwrap(), statement);
        assert!(verify_content(&json, &spki, b"terraform plaN").is_err());

        // One changed payload byte, kept valid base64.
        let mut tampered = payload.clone();
        let at = tampered.iter().position(|&b| b == b'u').unwrap();
        tampered[at] = b'v';
        let mut bad = good.clone();
        bad.payload = STANDARD.encode(&tampered);
        assert!(verify(&serde_json::to_vec(&bad).unwrap(), &spki).is_err());
        // One changed signature byte.
        let mut sig = STANDARD.decode(&good.signatures[0].sig).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        let mut bad = good.clone();
        bad.signatures[0].sig = STANDARD.encode(sig);
        assert!(verify(&serde_json::to_vec(&bad).unwrap(), &spki).is_err());
        // Another payload type over the same bytes.
        let mut bad = good.clone();
        bad.payload_type = "application/json".into();
        assert!(verify(&serde_json::to_vec(&bad).unwrap(), &spki).is_err());
        // Not a P-256 key.
        assert!(verify(&json, &spki[1..]).is_err());
    }
}
