//! Offline verification of what the artifact store signs (SPEC §18), with
//! nothing of the store itself: DSSE envelopes, their pre-authentication
//! encoding (PAE), P-256 public keys as PEM, ECDSA P-256 / SHA-256 (DER)
//! signatures, the in-toto publish statement, and the bundle manifest.
//!
//! The store (`artifacts-shared`) builds its attestations with these types
//! and re-exports them; the command-line client links this crate alone to
//! check a downloaded file or bundle without calling the service.
//!
//! Two kinds of envelope are signed with the same key:
//! - a version's publish attestation, payload type [`PAYLOAD_TYPE`] over an
//!   in-toto Statement v1 ([`Statement`]);
//! - a bundle's `MANIFEST.json.sig`, payload type [`MANIFEST_PAYLOAD_TYPE`]
//!   over the exact bytes of the bundle's manifest ([`Manifest`]).
//!
//! The payload type is part of what is signed (PAE), so one can never pass
//! for the other.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "urn:artifacts:predicate:publish:v1";
/// DSSE payload type of a bundle's manifest signature (`MANIFEST.json.sig`).
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.artifacts.bundle-manifest+json";
/// The manifest signature's entry name is the manifest's name plus this.
pub const SIGNATURE_SUFFIX: &str = ".sig";
/// The DER prefix of every P-256 `SubjectPublicKeyInfo` (id-ecPublicKey,
/// prime256v1, a 66-byte BIT STRING); the uncompressed point follows.
pub const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Which check failed, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the public key is not PEM")]
    KeyNotPem,
    #[error("the key is not a P-256 public key")]
    KeyNotP256,
    #[error("not a DSSE envelope ({0})")]
    NotDsse(String),
    #[error("payloadType is {found:?}, expected {expected:?}")]
    PayloadType {
        expected: &'static str,
        found: String,
    },
    #[error("the payload is not base64")]
    PayloadNotBase64,
    #[error("signature: no signature verifies with this key")]
    Signature,
    #[error("the signed payload is not {0}")]
    Payload(&'static str),
    #[error("subject digest: the content's sha256 is {actual}, the attestation names {attested}")]
    Subject { actual: String, attested: String },
    #[error("the signature is over other bytes than the manifest")]
    ManifestBytes,
}

pub type Result<T> = std::result::Result<T, Error>;

/// The DSSE envelope as stored and served (plain DSSE JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dsse {
    /// Base64 (standard, padded) of the payload's exact bytes.
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

impl Dsse {
    /// An envelope of `payload` with one signature (`der`, made over
    /// [`pae`]`(payload_type, payload)`).
    pub fn new(payload_type: &str, payload: &[u8], keyid: String, der: &[u8]) -> Self {
        Dsse {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![DsseSignature {
                keyid,
                sig: STANDARD.encode(der),
            }],
        }
    }
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

/// A bundle's manifest as a verifier reads it (the store writes it with the
/// same [`ManifestFile`]s: `shared/src/bundle.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub workflow_id: String,
    pub files: Vec<ManifestFile>,
}

/// One file of a bundle's manifest; the store writes this very type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub path: String,
    pub artifact_id: String,
    pub version: u64,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    /// Hex SHA-256 of the version's stored attestation (DSSE JSON bytes);
    /// `None` for a version committed before attestations existed.
    #[serde(default)]
    pub attestation_sha256: Option<String>,
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
    STANDARD.decode(body).map_err(|_| Error::KeyNotPem)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Check a DSSE envelope (its JSON) of `payload_type` against a P-256
/// public key (SPKI DER): at least one signature over the PAE verifies.
/// Returns the signed payload.
pub fn verify_envelope(
    envelope_json: &[u8],
    spki_der: &[u8],
    payload_type: &'static str,
) -> Result<Vec<u8>> {
    let envelope: Dsse =
        serde_json::from_slice(envelope_json).map_err(|e| Error::NotDsse(e.to_string()))?;
    if envelope.payload_type != payload_type {
        return Err(Error::PayloadType {
            expected: payload_type,
            found: envelope.payload_type,
        });
    }
    let point = spki_der
        .strip_prefix(&P256_SPKI_PREFIX[..])
        .filter(|p| p.len() == 65)
        .ok_or(Error::KeyNotP256)?;
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| Error::PayloadNotBase64)?;
    let message = pae(&envelope.payload_type, &payload);
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point);
    let signed = envelope.signatures.iter().any(|s| {
        STANDARD
            .decode(&s.sig)
            .is_ok_and(|sig| key.verify(&message, &sig).is_ok())
    });
    if !signed {
        return Err(Error::Signature);
    }
    Ok(payload)
}

/// Check a publish attestation: [`verify_envelope`] with [`PAYLOAD_TYPE`],
/// and a well-formed publish statement, which is returned.
pub fn verify(envelope_json: &[u8], spki_der: &[u8]) -> Result<Statement> {
    let payload = verify_envelope(envelope_json, spki_der, PAYLOAD_TYPE)?;
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|_| Error::Payload("an in-toto statement"))?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        return Err(Error::Payload("a publish statement"));
    }
    Ok(statement)
}

/// [`verify`], and that content with this hex SHA-256 is the statement's one subject.
pub fn verify_digest(envelope_json: &[u8], spki_der: &[u8], sha256: &str) -> Result<Statement> {
    let statement = verify(envelope_json, spki_der)?;
    match statement.subject.as_slice() {
        [subject] if subject.digest.sha256.eq_ignore_ascii_case(sha256) => Ok(statement),
        [subject] => Err(Error::Subject {
            actual: sha256.to_owned(),
            attested: subject.digest.sha256.clone(),
        }),
        _ => Err(Error::Payload("a statement with one subject")),
    }
}

/// [`verify`], and that `content` is the statement's one subject.
pub fn verify_content(envelope_json: &[u8], spki_der: &[u8], content: &[u8]) -> Result<Statement> {
    verify_digest(envelope_json, spki_der, &sha256_hex(content))
}

/// Check a bundle's manifest signature: the envelope (`MANIFEST.json.sig`)
/// verifies with [`MANIFEST_PAYLOAD_TYPE`] and signs exactly
/// `manifest_bytes` (the manifest entry as read from the ZIP), which is
/// then parsed. The files themselves are checked against the returned
/// manifest by the caller (they are streamed, not held).
pub fn verify_manifest(
    manifest_bytes: &[u8],
    signature_json: &[u8],
    spki_der: &[u8],
) -> Result<Manifest> {
    let payload = verify_envelope(signature_json, spki_der, MANIFEST_PAYLOAD_TYPE)?;
    if payload != manifest_bytes {
        return Err(Error::ManifestBytes);
    }
    serde_json::from_slice(manifest_bytes).map_err(|_| Error::Payload("a bundle manifest"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

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
        assert_eq!(spki_from_pem("not pem!"), Err(Error::KeyNotPem));
    }

    struct Key {
        pair: EcdsaKeyPair,
        spki: Vec<u8>,
        rng: SystemRandom,
    }

    impl Key {
        fn new() -> Key {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
            let mut spki = P256_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(pair.public_key().as_ref());
            Key { pair, spki, rng }
        }

        fn sign(&self, payload_type: &str, payload: &[u8]) -> Dsse {
            let sig = self
                .pair
                .sign(&self.rng, &pae(payload_type, payload))
                .unwrap();
            Dsse::new(payload_type, payload, "k".into(), sig.as_ref())
        }
    }

    #[test]
    fn verification_checks_signature_type_and_subject() {
        let key = Key::new();
        let content = b"terraform plan";
        let statement = Statement::publish(
            "plan.bin",
            &sha256_hex(content),
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
        let good = key.sign(PAYLOAD_TYPE, &payload);
        let json = serde_json::to_vec(&good).unwrap();
        assert_eq!(
            verify_content(&json, &key.spki, content).unwrap(),
            statement
        );
        assert!(matches!(
            verify_content(&json, &key.spki, b"terraform plaN"),
            Err(Error::Subject { .. })
        ));

        // One changed payload byte, kept valid base64.
        let mut tampered = payload.clone();
        let at = tampered.iter().position(|&b| b == b'u').unwrap();
        tampered[at] = b'v';
        let mut bad = good.clone();
        bad.payload = STANDARD.encode(&tampered);
        assert_eq!(
            verify(&serde_json::to_vec(&bad).unwrap(), &key.spki),
            Err(Error::Signature)
        );
        // One changed signature byte.
        let mut sig = STANDARD.decode(&good.signatures[0].sig).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        let mut bad = good.clone();
        bad.signatures[0].sig = STANDARD.encode(sig);
        assert_eq!(
            verify(&serde_json::to_vec(&bad).unwrap(), &key.spki),
            Err(Error::Signature)
        );
        // Another payload type over the same bytes.
        let mut bad = good.clone();
        bad.payload_type = "application/json".into();
        assert!(matches!(
            verify(&serde_json::to_vec(&bad).unwrap(), &key.spki),
            Err(Error::PayloadType { .. })
        ));
        // Not a P-256 key; another key.
        assert_eq!(verify(&json, &key.spki[1..]), Err(Error::KeyNotP256));
        assert_eq!(verify(&json, &Key::new().spki), Err(Error::Signature));
        // A manifest signature is not an attestation, whatever it signs.
        let as_manifest = key.sign(MANIFEST_PAYLOAD_TYPE, &payload);
        assert!(matches!(
            verify(&serde_json::to_vec(&as_manifest).unwrap(), &key.spki),
            Err(Error::PayloadType { .. })
        ));
    }

    #[test]
    fn manifests_verify_over_their_exact_bytes() {
        let key = Key::new();
        let manifest = br#"{
  "format": "artifacts-bundle/3",
  "workflowId": "wf",
  "files": [
    {
      "path": "a.txt",
      "artifactId": "0123456789abcdef0123456789abcdef",
      "version": 2,
      "size": 5,
      "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
      "contentType": "text/plain",
      "attestationSha256": null
    }
  ]
}"#;
        let sig = serde_json::to_vec(&key.sign(MANIFEST_PAYLOAD_TYPE, manifest)).unwrap();
        let parsed = verify_manifest(manifest, &sig, &key.spki).unwrap();
        assert_eq!(parsed.workflow_id, "wf");
        assert_eq!(parsed.files[0].version, 2);
        assert_eq!(parsed.files[0].attestation_sha256, None);

        let mut flipped = manifest.to_vec();
        flipped[40] ^= 1;
        assert_eq!(
            verify_manifest(&flipped, &sig, &key.spki),
            Err(Error::ManifestBytes)
        );
        // An attestation's type over the same bytes does not pass.
        let other = serde_json::to_vec(&key.sign(PAYLOAD_TYPE, manifest)).unwrap();
        assert!(matches!(
            verify_manifest(manifest, &other, &key.spki),
            Err(Error::PayloadType { .. })
        ));
        assert!(matches!(
            verify_manifest(manifest, b"{}", &key.spki),
            Err(Error::NotDsse(_))
        ));
    }
}
