//! Signed publish attestations (SPEC §18, issue 17), against the emulator's
//! KMS P-256 key: every version written through the API or ingested from an
//! upload carries a DSSE envelope that verifies with the public key from
//! `GET /v1/signing-key` — in our verifier and in two independent ones
//! (Python `cryptography` via scripts/verify_attestation.py, and the README's
//! openssl recipe run as written) — names the downloaded bytes, and says what
//! the version's metadata says. Tampering fails all three; a failing KMS
//! `Sign` fails the write with nothing committed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use artifacts::attestation::{self, Dsse, Statement};
use artifacts::uploads::PresignedUpload;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::BoxError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use harness::{
    Call, CallCounter, Caller, Clients, TestEnv, bytes, download, header, json_body, list, presign,
    upload, versions,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use sha2::{Digest, Sha256};

const WF: &str = "wf-attest";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i % 251) as u8 ^ seed ^ (i >> 12) as u8)
        .collect()
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The README's verification recipe, exactly as documented (standard
/// tools only: jq, base64, openssl, sha256sum), run in `dir` holding
/// `key.pem`, `att.json` and `file.bin`.
const OPENSSL_RECIPE: &str = r#"set -eu
jq -j .payload att.json | base64 -d > payload.json
jq -j '.signatures[0].sig' att.json | base64 -d > sig.der
type=$(jq -j .payloadType att.json)
{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < payload.json)"; cat payload.json; } > pae.bin
openssl dgst -sha256 -verify key.pem -signature sig.der pae.bin
test "$(jq -r '.subject[0].digest.sha256' payload.json)" = "$(sha256sum < file.bin | cut -d' ' -f1)"
echo "subject OK"
"#;

/// The README's bundle recipe, exactly as documented (standard tools only:
/// unzip, jq, base64, cmp, openssl, sha256sum), run in a directory holding
/// `key.pem` and `run.zip`.
const BUNDLE_RECIPE: &str = r#"set -eu
unzip -p run.zip MANIFEST.json > manifest.json
unzip -p run.zip MANIFEST.json.sig > manifest.sig.json
test "$(jq -r .payloadType manifest.sig.json)" = application/vnd.artifacts.bundle-manifest+json
jq -j .payload manifest.sig.json | base64 -d | cmp - manifest.json && echo "manifest bytes OK"
jq -j '.signatures[0].sig' manifest.sig.json | base64 -d > sig.der
type=$(jq -j .payloadType manifest.sig.json)
{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < manifest.json)"; cat manifest.json; } > pae.bin
openssl dgst -sha256 -verify key.pem -signature sig.der pae.bin
rm -rf files && unzip -q run.zip -d files -x MANIFEST.json MANIFEST.json.sig
(cd files && jq -r '.files[] | "\(.sha256)  \(.path)"' ../manifest.json | sha256sum -c --quiet) && echo "files OK"
"#;

/// A scratch directory holding the key, an envelope and a file.
struct Scratch(PathBuf);

impl Scratch {
    fn new(key_pem: &str, envelope: &[u8], file: &[u8]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "artifacts-attest-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key.pem"), key_pem).unwrap();
        std::fs::write(dir.join("att.json"), envelope).unwrap();
        std::fs::write(dir.join("file.bin"), file).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Python `cryptography`: (verified, the statement it printed).
    fn python(&self) -> (bool, String) {
        let out = Command::new(root().join(".venv/bin/python"))
            .arg(root().join("scripts/verify_attestation.py"))
            .args(["key.pem", "att.json", "file.bin"])
            .current_dir(self.path())
            .output()
            .expect("run the Python verifier");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Python `cryptography` on a bundle in this directory
    /// (scripts/verify_bundle.py): (verified, what it printed).
    fn python_bundle(&self, zip: &str) -> (bool, String) {
        let out = Command::new(root().join(".venv/bin/python"))
            .arg(root().join("scripts/verify_bundle.py"))
            .args(["key.pem", zip])
            .current_dir(self.path())
            .output()
            .expect("run the Python bundle verifier");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The README's bundle recipe on `run.zip` here: (verified, what it printed).
    fn openssl_bundle(&self) -> (bool, String) {
        let out = Command::new("bash")
            .args(["-c", BUNDLE_RECIPE])
            .current_dir(self.path())
            .output()
            .expect("run the bundle recipe");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The README's openssl recipe: (verified, what it printed).
    fn openssl(&self) -> (bool, String) {
        let out = Command::new("bash")
            .args(["-c", OPENSSL_RECIPE])
            .current_dir(self.path())
            .output()
            .expect("run the openssl recipe");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `GET /v1/signing-key`, anonymously: (PEM, SPKI DER, key id).
async fn signing_key(env: &TestEnv) -> (String, Vec<u8>, String) {
    let r = versions(env, Call::signing_key()).await;
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(&bytes(&r)));
    assert_eq!(header(&r, "cache-control"), Some("public, max-age=3600"));
    let key = json_body(&r);
    let pem = key["publicKeyPem"].as_str().unwrap().to_owned();
    let der = attestation::spki_from_pem(&pem).unwrap();
    let as_pem = versions(env, Call::signing_key().query("format", "pem")).await;
    assert_eq!(as_pem.status(), 200);
    assert_eq!(
        header(&as_pem, "content-type"),
        Some("application/x-pem-file")
    );
    assert_eq!(String::from_utf8(bytes(&as_pem)).unwrap(), pem);
    (pem, der, key["keyId"].as_str().unwrap().to_owned())
}

async fn put(env: &TestEnv, caller: &Caller, path: &str, body: &[u8]) -> (String, u64) {
    let r = upload(
        env,
        Call::upload(WF, path, body)
            .by(caller)
            .header("x-artifact-content-type", "application/x-terraform-plan"),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&bytes(&r)));
    let created = json_body(&r);
    (
        created["artifact"]["artifactId"]
            .as_str()
            .unwrap()
            .to_owned(),
        created["version"]["version"].as_u64().unwrap(),
    )
}

/// Open an upload through the route, stage `data`, and ingest it with the
/// real ingest handler as S3's event would; returns the upload id and the
/// handler's answer.
async fn ingest_upload(
    env: &TestEnv,
    store: &artifacts::Store,
    caller: &Caller,
    path: &str,
    data: &[u8],
) -> (String, Result<Value, lambda_runtime::Error>) {
    let body = serde_json::json!({
        "path": path,
        "contentType": "text/csv",
        "size": data.len(),
    });
    let r = presign(env, Call::create_upload(WF, &body).by(caller)).await;
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&bytes(&r)));
    let created = json_body(&r);
    let session = PresignedUpload {
        upload_id: created["uploadId"].as_str().unwrap().into(),
        url: created["url"].as_str().unwrap().into(),
        method: "PUT",
        headers: serde_json::from_value(created["headers"].clone()).unwrap(),
        expires_at: String::new(),
    };
    let version_id = harness::stage(&session, data.to_vec()).await;
    let key = artifacts::uploads::staging_key(&caller.org, &session.upload_id);
    let answer = ingest_event(env, store, &key, &version_id, data.len()).await;
    (session.upload_id, answer)
}

async fn ingest_event(
    env: &TestEnv,
    store: &artifacts::Store,
    key: &str,
    version_id: &str,
    size: usize,
) -> Result<Value, lambda_runtime::Error> {
    let mut event: Value = serde_json::from_str(include_str!("../../events/s3-put.json")).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = Value::from(env.resources.bucket.clone());
    s3["bucket"]["arn"] = Value::from(format!("arn:aws:s3:::{}", env.resources.bucket));
    s3["object"]["key"] = Value::from(key);
    s3["object"]["size"] = Value::from(size);
    s3["object"]["versionId"] = Value::from(version_id);
    artifacts_ingest::handler(store, LambdaEvent::new(event, Context::default())).await
}

/// `GET …/versions/{n}/attestation` as `caller`: the envelope's JSON.
async fn fetch_attestation(env: &TestEnv, caller: &Caller, id: &str, version: u64) -> Vec<u8> {
    let r = versions(env, Call::attestation(id, &version.to_string()).by(caller)).await;
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(&bytes(&r)));
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    bytes(&r)
}

/// The version as `GET …/versions` lists it.
async fn listed_version(env: &TestEnv, caller: &Caller, id: &str, version: u64) -> Value {
    let r = versions(env, Call::versions(id).by(caller)).await;
    assert_eq!(r.status(), 200);
    json_body(&r)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == version)
        .cloned()
        .unwrap()
}

/// Download version `version` of `id`: its bytes, after checking that the
/// response names the attestation.
async fn downloaded(env: &TestEnv, caller: &Caller, id: &str, version: u64) -> Vec<u8> {
    let r = download(
        env,
        Call::download(id)
            .by(caller)
            .query("version", &version.to_string()),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-artifact-attestation"),
        Some(
            format!("http://127.0.0.1:9000/v1/artifacts/{id}/versions/{version}/attestation")
                .as_str()
        )
    );
    bytes(&r)
}

/// Everything must-show 1 asks of one version.
#[allow(clippy::too_many_arguments)]
async fn check_version(
    env: &TestEnv,
    caller: &Caller,
    key: &(String, Vec<u8>, String),
    id: &str,
    version: u64,
    path: &str,
    request_id: Option<&str>,
) -> Statement {
    let envelope = fetch_attestation(env, caller, id, version).await;
    let file = downloaded(env, caller, id, version).await;
    let meta = listed_version(env, caller, id, version).await;

    // Ours.
    let statement = attestation::verify_content(&envelope, &key.1, &file).unwrap();
    let dsse: Dsse = serde_json::from_slice(&envelope).unwrap();
    assert_eq!(dsse.payload_type, "application/vnd.in-toto+json");
    assert_eq!(dsse.signatures.len(), 1);
    assert_eq!(dsse.signatures[0].keyid, key.2, "keyid is the served key's");
    // The independent ones.
    let scratch = Scratch::new(&key.0, &envelope, &file);
    let (ok, out) = scratch.python();
    assert!(ok, "Python cryptography rejects a good attestation: {out}");
    let printed: Statement = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(printed, statement);
    let (ok, out) = scratch.openssl();
    assert!(ok, "the openssl recipe rejects a good attestation: {out}");
    assert!(
        out.contains("Verified OK") && out.contains("subject OK"),
        "{out}"
    );

    // The statement says what the version's metadata says.
    assert_eq!(statement.statement_type, "https://in-toto.io/Statement/v1");
    assert_eq!(statement.subject.len(), 1);
    assert_eq!(statement.subject[0].name, format!("{WF}/{path}"));
    assert_eq!(statement.subject[0].digest.sha256, sha_hex(&file));
    assert_eq!(statement.subject[0].digest.sha256, meta["sha256"]);
    assert_eq!(
        statement.predicate_type,
        "urn:artifacts:predicate:publish:v1"
    );
    let p = &statement.predicate;
    assert_eq!(p.org, caller.org);
    assert_eq!(p.workflow_id, WF);
    assert_eq!(p.artifact_id, id);
    assert_eq!(p.version, version);
    assert_eq!(p.size, file.len() as u64);
    assert_eq!(p.size, meta["size"]);
    assert_eq!(p.content_type, meta["contentType"]);
    assert_eq!(p.published_at, meta["createdAt"]);
    assert_eq!(p.published_by, meta["createdBy"]);
    assert_eq!(p.published_by, caller.sub);
    match request_id {
        Some(expected) => assert_eq!(p.request_id, expected),
        None => assert!(!p.request_id.is_empty()),
    }
    statement
}

#[tokio::test]
async fn direct_and_ingested_versions_carry_attestations_that_verify_independently() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let key = signing_key(&env).await;

    // Direct: two versions of one path, one inline, one in S3.
    let plan_v1 = content(2_000, 1);
    let plan_v2 = content(150_000, 2);
    let (id, v1) = put(&env, &alice, "terraform/plan.bin", &plan_v1).await;
    let (same, v2) = put(&env, &alice, "terraform/plan.bin", &plan_v2).await;
    assert_eq!((same.as_str(), v1, v2), (id.as_str(), 1, 2));
    let s1 = check_version(&env, &alice, &key, &id, 1, "terraform/plan.bin", None).await;
    let s2 = check_version(&env, &alice, &key, &id, 2, "terraform/plan.bin", None).await;
    assert_ne!(s1.predicate.request_id, s2.predicate.request_id);
    assert_eq!(s2.predicate.content_type, "application/x-terraform-plan");

    // Ingested: the request is the upload session.
    let csv = content(90_000, 3);
    let (upload_id, answer) =
        ingest_upload(&env, &env.store, &alice, "scan/report.csv", &csv).await;
    let answer = answer.unwrap();
    assert_eq!(answer["records"][0]["outcome"], "committed", "{answer}");
    let r = list(&env, Call::list_workflow(WF).by(&alice)).await;
    let ingested = json_body(&r)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "scan/report.csv")
        .map(|a| a["artifactId"].as_str().unwrap().to_owned())
        .unwrap();
    let s3 = check_version(
        &env,
        &alice,
        &key,
        &ingested,
        1,
        "scan/report.csv",
        Some(&upload_id),
    )
    .await;
    assert_eq!(s3.predicate.content_type, "text/csv");

    // An attestation is not a statement about other bytes.
    let envelope = fetch_attestation(&env, &alice, &id, 1).await;
    assert!(attestation::verify_content(&envelope, &key.1, &plan_v2).is_err());
    let scratch = Scratch::new(&key.0, &envelope, &plan_v2);
    assert!(!scratch.python().0);
    assert!(!scratch.openssl().0);
}

#[tokio::test]
async fn one_changed_byte_of_payload_signature_or_subject_fails_every_verifier() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let key = signing_key(&env).await;
    let file = content(5_000, 9);
    let (id, _) = put(&env, &alice, "plan.bin", &file).await;
    let envelope = fetch_attestation(&env, &alice, &id, 1).await;
    let good: Dsse = serde_json::from_slice(&envelope).unwrap();
    let payload = STANDARD.decode(&good.payload).unwrap();

    let mut cases: Vec<(&str, Dsse)> = Vec::new();
    // One byte of the payload (inside the predicate's `org`: still JSON).
    let mut changed = payload.clone();
    let at = find(&changed, b"\"acme\"") + 1;
    changed[at] = b'b';
    let mut d = good.clone();
    d.payload = STANDARD.encode(&changed);
    cases.push(("payload", d));
    // One byte of the signature (inside `s`, so it stays well-formed DER).
    let mut sig = STANDARD.decode(&good.signatures[0].sig).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    let mut d = good.clone();
    d.signatures[0].sig = STANDARD.encode(&sig);
    cases.push(("signature", d));
    // One hex digit of the subject digest, made to match the other bytes'
    // hash so that only the signature can catch it.
    let mut statement: Statement = serde_json::from_slice(&payload).unwrap();
    let digest = &mut statement.subject[0].digest.sha256;
    let flipped = if digest.starts_with('0') { "1" } else { "0" };
    digest.replace_range(0..1, flipped);
    let mut d = good.clone();
    d.payload = STANDARD.encode(serde_json::to_vec(&statement).unwrap());
    cases.push(("subject digest", d));

    // The unchanged envelope verifies everywhere (so the checks below can fail).
    let scratch = Scratch::new(&key.0, &envelope, &file);
    assert!(attestation::verify_content(&envelope, &key.1, &file).is_ok());
    assert!(scratch.python().0 && scratch.openssl().0);
    for (what, tampered) in cases {
        let json = serde_json::to_vec(&tampered).unwrap();
        assert!(
            attestation::verify(&json, &key.1).is_err(),
            "ours accepts a changed {what}"
        );
        let scratch = Scratch::new(&key.0, &json, &file);
        let (ok, out) = scratch.python();
        assert!(!ok, "Python cryptography accepts a changed {what}: {out}");
        assert!(out.contains("no signature verifies"), "{what}: {out}");
        let (ok, out) = scratch.openssl();
        assert!(!ok, "openssl accepts a changed {what}: {out}");
        assert!(out.contains("Verification failure"), "{what}: {out}");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

/// Fails every KMS `Sign` while `fail_sign`, and counts every KMS request by
/// operation.
#[derive(Debug, Clone, Default)]
struct Kms {
    fail_sign: Arc<AtomicBool>,
    calls: CallCounter,
}

impl Kms {
    fn store(&self, env: &TestEnv) -> artifacts::Store {
        harness::intercepted_store(env, Clients::Kms, self.clone())
    }
}

impl Intercept for Kms {
    fn name(&self) -> &'static str {
        "Kms"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.calls.read_before_transmit(context, components, cfg)?;
        if self.fail_sign.load(Ordering::SeqCst) && harness::target_operation(context) == "Sign" {
            Err("injected fault: KMS Sign unavailable".into())
        } else {
            Ok(())
        }
    }
}

/// Every item of the table and every content object version in the bucket.
async fn stored(env: &TestEnv) -> (usize, usize) {
    let items = env
        .dynamodb()
        .scan()
        .table_name(&env.resources.table)
        .send()
        .await
        .unwrap()
        .count() as usize;
    let objects = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix("orgs/")
        .send()
        .await
        .unwrap()
        .versions()
        .len();
    (items, objects)
}

#[tokio::test]
async fn a_failing_kms_sign_fails_the_write_and_commits_nothing() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let kms = Kms {
        fail_sign: Arc::new(AtomicBool::new(true)),
        ..Kms::default()
    };
    let faulty = kms.store(&env);

    // Direct: content large enough to be written to S3 before the commit.
    let body = content(100_000, 4);
    let r = harness::upload_with(&faulty, Call::upload(WF, "signed.bin", &body).by(&alice)).await;
    assert_eq!(r.status(), 500, "{}", String::from_utf8_lossy(&bytes(&r)));
    assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
    assert!(kms.calls.count("Sign") >= 1, "the fault was injected");
    assert_eq!(
        kms.calls.count("GenerateDataKey"),
        1,
        "the content was sealed"
    );
    assert_eq!(
        stored(&env).await,
        (0, 0),
        "no item, and the sealed content was removed"
    );
    let listed = list(&env, Call::list_workflow(WF).by(&alice)).await;
    assert_eq!(json_body(&listed)["artifacts"], serde_json::json!([]));

    // Ingest: the upload stays pending and its event is retried.
    let csv = content(70_000, 5);
    let (upload_id, answer) = ingest_upload(&env, &faulty, &alice, "late.csv", &csv).await;
    assert!(
        answer.is_err(),
        "the invocation fails so that it is retried"
    );
    let status = presign(&env, Call::upload_status(WF, &upload_id).by(&alice)).await;
    assert_eq!(json_body(&status)["state"], "pending");
    let (items, objects) = stored(&env).await;
    assert_eq!(objects, 0, "no content version left behind");
    assert_eq!(items, 1, "only the upload session item");

    // KMS is back: the same event commits, signed.
    kms.fail_sign.store(false, Ordering::SeqCst);
    let key = artifacts::uploads::staging_key("acme", &upload_id);
    let version_id = env
        .s3()
        .head_object()
        .bucket(&env.resources.bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let answer = ingest_event(&env, &faulty, &key, &version_id, csv.len())
        .await
        .unwrap();
    assert_eq!(answer["records"][0]["outcome"], "committed", "{answer}");
    let r = harness::upload_with(&faulty, Call::upload(WF, "signed.bin", &body).by(&alice)).await;
    assert_eq!(r.status(), 201);
    let id = json_body(&r)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = signing_key(&env).await;
    let envelope = fetch_attestation(&env, &alice, &id, 1).await;
    assert!(attestation::verify_content(&envelope, &key.1, &body).is_ok());
}

#[tokio::test]
async fn another_orgs_attestation_is_the_plain_404() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let (id, _) = put(&env, &alice, "secret.bin", b"acme only").await;
    let evil = Caller::reader("evil");

    let theirs = versions(&env, Call::attestation(&id, "1").by(&evil)).await;
    let missing = versions(
        &env,
        Call::attestation(&artifacts::model::new_artifact_id(), "1").by(&evil),
    )
    .await;
    assert_eq!(theirs.status(), 404);
    assert_eq!(bytes(&theirs), bytes(&missing), "indistinguishable");
    // Own org, a version that does not exist: 404 too.
    let r = versions(&env, Call::attestation(&id, "2").by(&alice)).await;
    assert_eq!(r.status(), 404);
    // Bad input names the field.
    for bad in ["0", "x", "-1", "1.0"] {
        let r = versions(&env, Call::attestation(&id, bad).by(&alice)).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(json_body(&r)["field"], "version", "{bad}");
    }
    // A principal is needed for attestations, never for the public key.
    let r = versions(&env, Call::attestation(&id, "1")).await;
    assert_eq!(r.status(), 401);
    let r = versions(&env, Call::signing_key()).await;
    assert_eq!(r.status(), 200);
}

/// Measured, printed, and bounded: each direct write costs exactly one KMS
/// `Sign` beside its `GenerateDataKey`; the time the signature adds is that
/// of one `Sign` round trip (here, to the emulator).
#[tokio::test]
async fn each_write_costs_one_kms_sign() {
    const WRITES: usize = 20;
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let kms = CallCounter::default();
    let counted = kms.store(&env, Clients::Kms);
    let body = content(4_096, 7);

    let started = Instant::now();
    for i in 0..WRITES {
        let r = harness::upload_with(
            &counted,
            Call::upload(WF, &format!("m/{}.bin", i % 4), &body).by(&alice),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let per_write = started.elapsed() / WRITES as u32;
    assert_eq!(kms.count("Sign"), WRITES, "one Sign per write");
    assert_eq!(kms.count("GenerateDataKey"), WRITES);
    assert_eq!(kms.total(), 2 * WRITES, "nothing else: {:?}", kms.counts());

    // The Sign round trip alone, over a PAE of a typical statement's size.
    let pae = attestation::pae(attestation::PAYLOAD_TYPE, &[b'x'; 700]);
    let started = Instant::now();
    for _ in 0..WRITES {
        counted.signer.sign(&pae).await.unwrap();
    }
    let per_sign = started.elapsed() / WRITES as u32;
    eprintln!(
        "attestation cost: {WRITES} writes of 4 KiB, {:.1} ms per write, of which KMS Sign \
         {:.1} ms; KMS requests per write: 1 Sign + 1 GenerateDataKey",
        ms(per_write),
        ms(per_sign)
    );
    assert!(per_sign < per_write);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// At the edge: through the local gateway (routes and authorizer from the
/// template) with an ordinary client — the key without credentials, the
/// attestation only with them, and the download naming it.
#[tokio::test]
async fn through_the_gateway_the_key_is_public_and_the_attestation_is_not() {
    use harness::edge::{Edge, client};
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    let http = client();
    let body = content(3_000, 11);
    let put = http
        .put(edge.url(&format!("/v1/workflows/{WF}/artifacts/edge/plan.bin")))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let created: Value = serde_json::from_slice(&put.bytes().await.unwrap()).unwrap();
    let id = created["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();

    let key = http
        .get(edge.url("/v1/signing-key?format=pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 200, "no credentials needed");
    assert_eq!(
        key.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=3600"
    );
    let pem = key.text().await.unwrap();

    let path = format!("/v1/artifacts/{id}/versions/1/attestation");
    let anonymous = http.get(edge.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let got = http
        .get(edge.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let envelope = got.bytes().await.unwrap().to_vec();

    let downloaded = http
        .get(edge.url(&format!("/v1/artifacts/{id}/download")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(
        downloaded.headers()["x-artifact-attestation"]
            .to_str()
            .unwrap()
            .ends_with(&path)
    );
    let file = downloaded.bytes().await.unwrap().to_vec();
    assert!(file == body);
    let spki = attestation::spki_from_pem(&pem).unwrap();
    attestation::verify_content(&envelope, &spki, &file).unwrap();
    let scratch = Scratch::new(&pem, &envelope, &file);
    assert!(scratch.openssl().0 && scratch.python().0);
}

/// Versions committed before attestations existed get one from the one-off
/// backfill, once; the attestation route serves it and it verifies.
#[tokio::test]
async fn the_backfill_signs_unsigned_versions_once() {
    use artifacts::metadata::{artifact_pk, version_sk};
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let key = signing_key(&env).await;
    let old = content(1_000, 21);
    let (id, _) = put(&env, &alice, "old.bin", &old).await;
    put(&env, &alice, "old.bin", &content(1_000, 22)).await;
    // Version 1 as it was before SPEC §18: no attestation attribute.
    env.dynamodb()
        .update_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(artifact_pk("acme", &id)))
        .key("sk", AttributeValue::S(version_sk(1)))
        .update_expression("REMOVE attestation")
        .send()
        .await
        .unwrap();
    let r = versions(&env, Call::attestation(&id, "1").by(&alice)).await;
    assert_eq!(r.status(), 404, "an unsigned version has no attestation");

    let done = env
        .store
        .backfill_attestations("acme", &id, 10)
        .await
        .unwrap();
    assert_eq!((done.examined, done.signed), (2, 1));
    let envelope = fetch_attestation(&env, &alice, &id, 1).await;
    let statement = attestation::verify_content(&envelope, &key.1, &old).unwrap();
    assert_eq!(statement.predicate.request_id, "backfill");
    assert_eq!(statement.predicate.version, 1);
    let scratch = Scratch::new(&key.0, &envelope, &old);
    assert!(scratch.python().0 && scratch.openssl().0);

    let again = env
        .store
        .backfill_attestations("acme", &id, 10)
        .await
        .unwrap();
    assert_eq!(again.signed, 0, "idempotent");
    assert_eq!(fetch_attestation(&env, &alice, &id, 1).await, envelope);
    // Another org's artifact is not found.
    assert!(matches!(
        env.store.backfill_attestations("evil", &id, 10).await,
        Err(artifacts::Error::NotFound(_))
    ));
}

// ---------------------------------------------------------------------------
// Bundles (SPEC §7, §18): MANIFEST.json.sig.

/// The org's kept manifest signatures (items under `{org}#BS`).
async fn kept_signatures(env: &TestEnv, org: &str) -> Vec<HashMap<String, AttributeValue>> {
    env.dynamodb()
        .query()
        .table_name(&env.resources.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(artifacts::metadata::bundle_signature_pk(org)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

/// A bundle through the real handler with `store`: (status, ETag, bytes).
async fn bundle_of(store: &artifacts::Store, caller: &Caller) -> (u16, String, Vec<u8>) {
    let r = harness::bundle_with(store, Call::bundle(WF).by(caller)).await;
    (
        r.status().as_u16(),
        header(&r, "etag").unwrap_or_default().to_owned(),
        bytes(&r),
    )
}

/// Measured, printed and bounded: a selection costs one KMS `Sign` when it
/// is first bundled and none after (the signature is kept), so the same
/// selection gives the same bytes; a new version is a new selection, with a
/// new ETag and signature. Also: every entry names its attestation's digest,
/// and the independent Python verifier accepts the manifest signature.
#[tokio::test]
async fn a_selection_is_signed_once_and_a_new_version_is_signed_anew() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    let key = signing_key(&env).await;
    let plan = content(3_000, 1);
    let (plan_id, _) = put(&env, &alice, "plan.bin", &plan).await;
    let (report_id, _) = put(&env, &alice, "docs/report.txt", &content(120_000, 2)).await;
    let kms = CallCounter::default();
    let counted = kms.store(&env, Clients::Kms);

    let started = Instant::now();
    let (status, etag, first) = bundle_of(&counted, &reader).await;
    let first_build = started.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    assert_eq!(kms.count("Sign"), 1, "{:?}", kms.counts());
    assert_eq!(kms.count("Decrypt"), 2, "one data key per file");
    assert_eq!(kms.total(), 3, "and nothing else: {:?}", kms.counts());

    let entries = harness::zip_entries(&first);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "MANIFEST.json",
            "MANIFEST.json.sig",
            "docs/report.txt",
            "plan.bin"
        ]
    );
    let (manifest, sig) = (&entries[0].1, &entries[1].1);
    let read = artifacts_attest::verify_manifest(manifest, sig, &key.1).unwrap();
    let dsse: Dsse = serde_json::from_slice(sig).unwrap();
    assert_eq!(
        dsse.payload_type,
        "application/vnd.artifacts.bundle-manifest+json"
    );
    assert_eq!(dsse.signatures[0].keyid, key.2);
    assert_eq!(etag, format!("\"{}\"", sha_hex(manifest)));
    for (file, id) in read.files.iter().zip([&report_id, &plan_id]) {
        let served = fetch_attestation(&env, &alice, id, 1).await;
        assert_eq!(
            file.attestation_sha256.as_deref(),
            Some(sha_hex(&served).as_str())
        );
    }
    // An attestation's verifier does not take a manifest signature.
    assert!(attestation::verify(sig, &key.1).is_err());

    // Independently: Python `cryptography` (scripts/verify_bundle.py).
    let scratch = Scratch::new(&key.0, b"{}", b"");
    std::fs::write(scratch.path().join("run.zip"), &first).unwrap();
    let (ok, out) = scratch.python_bundle("run.zip");
    assert!(ok, "Python rejects a good bundle: {out}");
    // And the README's recipe with standard tools, as written.
    let (ok, out) = scratch.openssl_bundle();
    assert!(
        ok,
        "the README's bundle recipe rejects a good bundle: {out}"
    );
    assert!(
        out.contains("manifest bytes OK")
            && out.contains("Verified OK")
            && out.contains("files OK"),
        "{out}"
    );
    // One byte of the manifest, of a file or of the signature changed (and
    // the ZIP rebuilt with good CRCs): the recipe and Python both fail.
    let good = harness::zip_entries(&first);
    for (what, index) in [("manifest", 0), ("signature", 1), ("file", 2)] {
        let mut tampered = good.clone();
        let data = &mut tampered[index].1;
        if index == 1 {
            let mut envelope: Value = serde_json::from_slice(data).unwrap();
            let sig = envelope["signatures"][0]["sig"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut der = STANDARD.decode(&sig).unwrap();
            let last = der.len() - 1;
            der[last] ^= 0x01;
            envelope["signatures"][0]["sig"] = Value::from(STANDARD.encode(der));
            *data = serde_json::to_vec(&envelope).unwrap();
        } else {
            let at = data.len() / 2;
            data[at] ^= 0x01;
        }
        std::fs::write(scratch.path().join("run.zip"), harness::rezip(&tampered)).unwrap();
        let (ok, out) = scratch.openssl_bundle();
        assert!(!ok, "the recipe accepts a changed {what}: {out}");
        let (ok, out) = scratch.python_bundle("run.zip");
        assert!(!ok, "Python accepts a changed {what}: {out}");
    }

    // The same selection again: the same bytes, no KMS request at all.
    let started = Instant::now();
    let (status, again_etag, again) = bundle_of(&counted, &reader).await;
    let repeated_build = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(again_etag, etag);
    assert!(again == first, "same selection, same bytes");
    assert_eq!(kms.count("Sign"), 1, "no second Sign: {:?}", kms.counts());
    assert_eq!(kms.count("Decrypt"), 4, "only the data keys again");
    assert_eq!(kms.total(), 5, "{:?}", kms.counts());
    assert_eq!(kms_signatures_kept(&env).await, 1);

    // A new version: a new selection, ETag and signature.
    put(&env, &alice, "plan.bin", &content(3_000, 3)).await;
    let (status, new_etag, changed) = bundle_of(&counted, &reader).await;
    assert_eq!(status, 200);
    assert_ne!(new_etag, etag);
    assert_eq!(kms.count("Sign"), 2);
    let entries = harness::zip_entries(&changed);
    let read = artifacts_attest::verify_manifest(&entries[0].1, &entries[1].1, &key.1).unwrap();
    assert_eq!(read.files[1].version, 2);
    assert_ne!(entries[1].1, harness::zip_entries(&first)[1].1);
    assert_eq!(kms_signatures_kept(&env).await, 2);

    // Warm now: each new selection (a new version) built once and then
    // again, timed; one Sign per new selection, none for the repeats.
    const ROUNDS: u32 = 8;
    let (mut first_builds, mut repeats) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        put(&env, &alice, "plan.bin", &content(3_000, 10 + round as u8)).await;
        let signs = kms.count("Sign");
        let started = Instant::now();
        let (status, _, built) = bundle_of(&counted, &reader).await;
        first_builds += started.elapsed();
        let started = Instant::now();
        let (_, _, again) = bundle_of(&counted, &reader).await;
        repeats += started.elapsed();
        assert_eq!(status, 200);
        assert!(built == again);
        assert_eq!(kms.count("Sign"), signs + 1, "round {round}");
    }
    let mut sign_alone = Duration::ZERO;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        counted
            .signer
            .sign(&attestation::pae(
                attestation::MANIFEST_PAYLOAD_TYPE,
                manifest,
            ))
            .await
            .unwrap();
        sign_alone += started.elapsed();
    }
    eprintln!(
        "bundle signature cost: KMS requests per bundle of 2 files: first build 1 Sign + 2 \
         Decrypt (data keys), repeated 0 Sign + 2 Decrypt; cold first build {:.1} ms, cold \
         repeat {:.1} ms; warm ({ROUNDS} new selections): first build {:.1} ms, repeat {:.1} ms \
         (added by signing: {:.1} ms); one KMS Sign alone {:.1} ms",
        ms(first_build),
        ms(repeated_build),
        ms(first_builds / ROUNDS),
        ms(repeats / ROUNDS),
        ms(first_builds.saturating_sub(repeats) / ROUNDS),
        ms(sign_alone / ROUNDS)
    );
}

async fn kms_signatures_kept(env: &TestEnv) -> usize {
    kept_signatures(env, "acme").await.len()
}

/// Two builds of one new selection at once: both answer the same bytes and
/// one signature is kept (the loser of the conditional write uses the
/// winner's).
#[tokio::test]
async fn concurrent_builds_of_a_new_selection_end_with_one_signature() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    let key = signing_key(&env).await;
    put(&env, &alice, "a.txt", &content(2_000, 5)).await;
    for round in 0..3 {
        put(&env, &alice, "b.txt", &content(2_000, 6 + round)).await;
        let (a, b) = tokio::join!(
            bundle_of(&env.store, &reader),
            bundle_of(&env.store, &reader)
        );
        assert_eq!((a.0, b.0), (200, 200));
        assert!(
            a.2 == b.2,
            "round {round}: both builds answer the same bytes"
        );
        let entries = harness::zip_entries(&a.2);
        artifacts_attest::verify_manifest(&entries[0].1, &entries[1].1, &key.1).unwrap();
    }
    assert_eq!(kms_signatures_kept(&env).await, 3, "one per selection");
}

/// Signing is part of the bundle: with KMS `Sign` failing, the bundle
/// request is a 500 problem and nothing is kept; KMS back, it is signed.
#[tokio::test]
async fn a_failing_kms_sign_fails_the_bundle_and_keeps_nothing() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    put(&env, &alice, "plan.bin", &content(4_000, 8)).await;
    let kms = Kms {
        fail_sign: Arc::new(AtomicBool::new(true)),
        ..Kms::default()
    };
    let faulty = kms.store(&env);

    let r = harness::bundle_with(&faulty, Call::bundle(WF).by(&reader)).await;
    assert_eq!(r.status(), 500, "{}", String::from_utf8_lossy(&bytes(&r)));
    assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
    assert!(kms.calls.count("Sign") >= 1, "the fault was injected");
    assert_eq!(kms_signatures_kept(&env).await, 0, "no signature kept");

    kms.fail_sign.store(false, Ordering::SeqCst);
    let (status, _, body) = bundle_of(&faulty, &reader).await;
    assert_eq!(status, 200);
    let key = signing_key(&env).await;
    let entries = harness::zip_entries(&body);
    artifacts_attest::verify_manifest(&entries[0].1, &entries[1].1, &key.1).unwrap();
    assert_eq!(kms_signatures_kept(&env).await, 1);
}

/// A version committed before attestations existed has none: its entry's
/// `attestationSha256` is null, and the backfill changes the manifest, so
/// the ETag and the signature.
#[tokio::test]
async fn an_unsigned_version_is_null_in_the_manifest_until_backfilled() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    let (id, _) = put(&env, &alice, "old.bin", &content(1_000, 9)).await;
    env.dynamodb()
        .update_item()
        .table_name(&env.resources.table)
        .key(
            "pk",
            AttributeValue::S(artifacts::metadata::artifact_pk("acme", &id)),
        )
        .key("sk", AttributeValue::S(artifacts::metadata::version_sk(1)))
        .update_expression("REMOVE attestation")
        .send()
        .await
        .unwrap();
    let key = signing_key(&env).await;
    let (status, etag, before) = bundle_of(&env.store, &reader).await;
    assert_eq!(status, 200);
    let entries = harness::zip_entries(&before);
    let read = artifacts_attest::verify_manifest(&entries[0].1, &entries[1].1, &key.1).unwrap();
    assert_eq!(read.files[0].attestation_sha256, None);
    assert!(String::from_utf8_lossy(&entries[0].1).contains("\"attestationSha256\": null"));

    env.store
        .backfill_attestations("acme", &id, 10)
        .await
        .unwrap();
    let (status, new_etag, after) = bundle_of(&env.store, &reader).await;
    assert_eq!(status, 200);
    assert_ne!(new_etag, etag, "a backfilled attestation changes the ETag");
    let entries = harness::zip_entries(&after);
    let read = artifacts_attest::verify_manifest(&entries[0].1, &entries[1].1, &key.1).unwrap();
    let served = fetch_attestation(&env, &alice, &id, 1).await;
    assert_eq!(read.files[0].attestation_sha256, Some(sha_hex(&served)));
}

/// The signing key rotated: a selection's kept signature by the former key
/// is replaced once by one of the current key, which is then kept.
#[tokio::test]
async fn a_rotated_key_re_signs_a_kept_selection_once() {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    put(&env, &alice, "plan.bin", &content(2_000, 4)).await;
    let (status, etag, before) = bundle_of(&env.store, &reader).await;
    assert_eq!(status, 200);

    let kms = aws_sdk_kms::Client::new(&env.sdk);
    let rotated = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let counter = CallCounter::default();
    let mut config = env.store.config.clone();
    config.signing_key_id = Some(rotated.clone());
    let store = harness::intercepted_store_with(&env, config, Clients::Kms, counter.clone());
    let new_key = store.signer.public_key().await.unwrap().spki_der;
    for round in 0..2 {
        let (status, new_etag, after) = bundle_of(&store, &reader).await;
        assert_eq!(status, 200);
        assert_eq!(new_etag, etag, "the manifest did not change");
        let entries = harness::zip_entries(&after);
        artifacts_attest::verify_manifest(&entries[0].1, &entries[1].1, &new_key)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_ne!(entries[1].1, harness::zip_entries(&before)[1].1);
    }
    assert_eq!(counter.count("Sign"), 1, "re-signed once, then kept");
    let kept = kept_signatures(&env, "acme").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["keyId"], AttributeValue::S(rotated));
}
