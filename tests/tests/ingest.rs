//! Large content: downloads above `ARTIFACTS_DIRECT_MAX_BYTES` are decrypted
//! once into `deliveries/` and answered with 303 to a presigned S3 GET.

use artifacts::content::content_key;
use artifacts::metadata::{artifact_pk, version_sk};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use harness::{
    Call, Caller, DynamoDbFault, TestEnv, bytes, download, header, json_body, presign, upload,
    versions,
};

const WF: &str = "wf-large";
const DIRECT_MAX: u64 = 100_000;

async fn env() -> TestEnv {
    TestEnv::with_config(|c| c.direct_max_bytes = DIRECT_MAX).await
}

async fn put(env: &TestEnv, caller: &Caller, path: &str, body: &[u8]) -> String {
    let r = upload(env, Call::upload(WF, path, body).by(caller)).await;
    assert_eq!(r.status(), 201);
    json_body(&r)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn content(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

async fn delivery_objects(env: &TestEnv) -> Vec<String> {
    let listing = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix("deliveries/")
        .send()
        .await
        .unwrap();
    listing
        .versions()
        .iter()
        .filter_map(|v| v.key().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn large_downloads_redirect_to_a_decrypted_copy_with_range_support() {
    let env = env().await;
    let alice = Caller::writer("acme");
    let data = content(1_000_000);
    let id = put(&env, &alice, "reports/big.csv", &data).await;
    // At the limit itself the body is still returned directly.
    let small = content(DIRECT_MAX as usize);
    let small_id = put(&env, &alice, "reports/limit.csv", &small).await;
    let direct = download(&env, Call::download(&small_id).by(&alice)).await;
    assert_eq!(direct.status(), 200);
    assert!(bytes(&direct) == small);

    let r = download(&env, Call::download(&id).by(&alice)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, "cache-control"), Some("private, no-store"));
    assert!(bytes(&r).is_empty());
    let url = header(&r, "location").unwrap().to_owned();
    assert!(url.contains("/deliveries/acme/"), "{url}");
    assert!(
        url.contains("X-Amz-Expires=900"),
        "valid for 15 minutes: {url}"
    );

    let http = reqwest::Client::new();
    let got = http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"big.csv\"; filename*=UTF-8''big.csv")
    );
    assert!(got.bytes().await.unwrap() == data);
    let ranged = http
        .get(&url)
        .header("range", "bytes=65530-65545")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert!(ranged.bytes().await.unwrap() == data[65_530..=65_545]);

    // A second download within the window reuses the copy.
    let again = download(&env, Call::download(&id).by(&alice)).await;
    assert_eq!(again.status(), 303);
    assert_eq!(
        delivery_objects(&env).await.len(),
        1,
        "one copy, written once"
    );

    // Conditional requests are answered before any copy is made.
    let etag = header(&r, "etag").unwrap().to_owned();
    let not_modified = download(
        &env,
        Call::download(&id)
            .header("if-none-match", &etag)
            .by(&alice),
    )
    .await;
    assert_eq!(not_modified.status(), 304);

    // Another org gets no URL at all.
    let other = download(&env, Call::download(&id).by(&Caller::writer("evil"))).await;
    assert_eq!(other.status(), 404);
    assert!(header(&other, "location").is_none());
}

#[tokio::test]
async fn tampered_large_content_never_reaches_deliveries() {
    let env = env().await;
    let alice = Caller::writer("acme");
    let data = content(500_000);
    let id = put(&env, &alice, "big.bin", &data).await;
    let item = env
        .dynamodb()
        .get_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(artifact_pk("acme", &id)))
        .key("sk", AttributeValue::S(version_sk(1)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let Some(AttributeValue::S(version_id)) = item.get("s3VersionId") else {
        panic!("in S3")
    };
    let s3 = env.s3();
    let key = content_key("acme", &id);
    let sealed = s3
        .get_object()
        .bucket(&env.resources.bucket)
        .key(&key)
        .version_id(version_id)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec();
    // The last segment is altered: everything before it decrypts fine and
    // would already be in the copy's first part were the copy not abandoned.
    for (what, tampered) in [
        ("last byte", {
            let mut t = sealed.clone();
            *t.last_mut().unwrap() ^= 1;
            t
        }),
        ("truncated", sealed[..sealed.len() - 100].to_vec()),
    ] {
        let put = s3
            .put_object()
            .bucket(&env.resources.bucket)
            .key(&key)
            .body(ByteStream::from(tampered))
            .send()
            .await
            .unwrap();
        harness::set_version_attribute(
            &env,
            "acme",
            &id,
            1,
            "s3VersionId",
            AttributeValue::S(put.version_id().unwrap().into()),
        )
        .await;
        let r = download(&env, Call::download(&id).by(&alice)).await;
        assert_eq!(r.status(), 500, "{what}");
        assert!(header(&r, "location").is_none(), "{what}");
        assert!(
            delivery_objects(&env).await.is_empty(),
            "{what}: no copy was completed"
        );
    }
}

// ---------------------------------------------------------------------------
// Presigned uploads and the ingest trigger.

use artifacts::auth::Principal;
use artifacts::uploads::{PresignedUpload, UploadRequest, staging_key};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn principal(org: &str) -> Principal {
    Principal {
        org: org.into(),
        subject: format!("workflow-of-{org}"),
        scopes: vec!["artifacts:read".into(), "artifacts:write".into()],
    }
}

fn request(path: &str, size: u64, sha256: Option<String>) -> UploadRequest {
    UploadRequest {
        path: path.into(),
        artifact_type: Some("report".into()),
        content_type: Some("application/octet-stream".into()),
        size,
        sha256,
        metadata: None,
        library: None,
        retention_days: None,
        keep_versions: None,
    }
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// PUT `body` to the presigned URL with exactly the headers it was signed for.
async fn send(upload: &PresignedUpload, body: Vec<u8>) -> reqwest::StatusCode {
    harness::put_presigned(upload, body).await.status()
}

/// The event S3 sends for one staged object version, from `events/s3-put.json`.
fn event(env: &TestEnv, key: &str, version_id: &str, size: u64) -> LambdaEvent<Value> {
    let mut event: Value = serde_json::from_str(include_str!("../../events/s3-put.json")).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = Value::from(env.resources.bucket.clone());
    s3["bucket"]["arn"] = Value::from(format!("arn:aws:s3:::{}", env.resources.bucket));
    s3["object"]["key"] = Value::from(key);
    s3["object"]["size"] = Value::from(size);
    s3["object"]["versionId"] = Value::from(version_id);
    LambdaEvent::new(event, Context::default())
}

/// The current version of a staged key (tests that PUT once), or a version
/// id that does not exist.
async fn current_version(env: &TestEnv, key: &str) -> String {
    let key = percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .into_owned();
    match env
        .s3()
        .head_object()
        .bucket(&env.resources.bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(head) => head.version_id().unwrap().to_owned(),
        Err(_) => "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".into(),
    }
}

/// Ingest the object's current version, as S3's event for its one PUT.
async fn ingest(env: &TestEnv, key: &str, size: u64) -> Result<Value, lambda_runtime::Error> {
    let version = current_version(env, key).await;
    artifacts_ingest::handler(&env.store, event(env, key, &version, size)).await
}

async fn ingest_version(
    env: &TestEnv,
    key: &str,
    version_id: &str,
    size: u64,
) -> Result<Value, lambda_runtime::Error> {
    artifacts_ingest::handler(&env.store, event(env, key, version_id, size)).await
}

/// Whether anything of the staged object is left: a version, or a delete
/// marker hiding one (the bucket is versioned).
async fn staged_exists(env: &TestEnv, key: &str) -> bool {
    let listing = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    !listing.versions().is_empty() || !listing.delete_markers().is_empty()
}

/// Presign, PUT and ingest `data` at `path`; returns the ingest report.
async fn upload_via_s3(
    env: &TestEnv,
    org: &str,
    path: &str,
    data: &[u8],
    declare_sha: bool,
) -> Value {
    let sha = declare_sha.then(|| sha_hex(data));
    let upload = env
        .store
        .create_upload(&principal(org), WF, request(path, data.len() as u64, sha))
        .await
        .unwrap();
    assert_eq!(upload.method, "PUT");
    assert!(upload.url.contains("/incoming/"), "{}", upload.url);
    assert_eq!(send(&upload, data.to_vec()).await, 200);
    let key = staging_key(org, &upload.upload_id);
    let report = ingest(env, &key, data.len() as u64).await.unwrap();
    assert!(
        !staged_exists(env, &key).await,
        "the staged object is removed"
    );
    report
}

async fn versions_of(env: &TestEnv, caller: &Caller, id: &str) -> Vec<u64> {
    let r = versions(env, Call::versions(id).by(caller)).await;
    json_body(&r)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect()
}

/// Download through the API, following a 303 to S3 when there is one.
async fn fetch(env: &TestEnv, caller: &Caller, id: &str) -> Vec<u8> {
    let r = download(env, Call::download(id).by(caller)).await;
    match r.status().as_u16() {
        200 => bytes(&r),
        303 => {
            let url = header(&r, "location").unwrap();
            reqwest::get(url)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        }
        other => panic!("download answered {other}"),
    }
}

#[tokio::test]
async fn presigned_uploads_round_trip_every_size() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    for (n, size) in [0usize, 1, 65_535, 65_536, 65_537, 10 << 20, 200 << 20]
        .into_iter()
        .enumerate()
    {
        let data = content(size);
        let path = format!("uploads/{size}.bin");
        let report = upload_via_s3(&env, "acme", &path, &data, n % 2 == 0).await;
        let outcome = &report["records"][0];
        assert_eq!(outcome["outcome"], "committed", "{report}");
        assert_eq!(outcome["version"], 1);
        let id = outcome["artifactId"].as_str().unwrap().to_owned();

        let meta = versions(&env, Call::artifact(&id).by(&alice)).await;
        let meta = json_body(&meta);
        assert_eq!(meta["size"], size as u64);
        assert_eq!(meta["sha256"], sha_hex(&data));
        assert_eq!(meta["path"], path.as_str());
        assert_eq!(meta["artifactType"], "report");
        assert_eq!(meta["createdBy"], "workflow-of-acme");
        let got = fetch(&env, &alice, &id).await;
        assert!(
            got.len() == data.len() && sha_hex(&got) == sha_hex(&data),
            "{size} bytes differ"
        );
    }
}

#[tokio::test]
async fn repeated_and_reordered_events_create_one_version_per_upload() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let me = principal("acme");

    // One upload, its event delivered three times.
    let data = content(70_000);
    let upload = env
        .store
        .create_upload(&me, WF, request("dup.bin", 70_000, None))
        .await
        .unwrap();
    assert_eq!(send(&upload, data.clone()).await, 200);
    let key = staging_key("acme", &upload.upload_id);
    let first = ingest(&env, &key, 70_000).await.unwrap();
    assert_eq!(first["records"][0]["outcome"], "committed");
    let id = first["records"][0]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let again = ingest(&env, &key, 70_000).await.unwrap();
        assert_eq!(again["records"][0]["outcome"], "already-done");
    }
    assert_eq!(versions_of(&env, &alice, &id).await, vec![1]);

    // Two uploads to one path, events delivered newest first.
    let (a, b) = (content(1_000), content(2_000));
    let first = env
        .store
        .create_upload(&me, WF, request("order.bin", 1_000, None))
        .await
        .unwrap();
    let second = env
        .store
        .create_upload(&me, WF, request("order.bin", 2_000, None))
        .await
        .unwrap();
    assert_eq!(send(&first, a.clone()).await, 200);
    assert_eq!(send(&second, b.clone()).await, 200);
    let later = ingest(&env, &staging_key("acme", &second.upload_id), 2_000)
        .await
        .unwrap();
    let earlier = ingest(&env, &staging_key("acme", &first.upload_id), 1_000)
        .await
        .unwrap();
    let id = later["records"][0]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        earlier["records"][0]["artifactId"],
        later["records"][0]["artifactId"]
    );
    assert_eq!(
        versions_of(&env, &alice, &id).await,
        vec![2, 1],
        "contiguous, one per upload"
    );
    // Both again, in either order: nothing new.
    ingest(&env, &staging_key("acme", &first.upload_id), 1_000)
        .await
        .unwrap();
    ingest(&env, &staging_key("acme", &second.upload_id), 2_000)
        .await
        .unwrap();
    assert_eq!(versions_of(&env, &alice, &id).await, vec![2, 1]);
    let v1 = download(&env, Call::download(&id).query("version", "1").by(&alice)).await;
    assert!(bytes(&v1) == b, "the event ingested first became version 1");
}

#[tokio::test]
async fn uploads_that_break_their_terms_create_nothing() {
    let env = TestEnv::new().await;
    let me = principal("acme");
    let data = content(100_000);

    // Fewer bytes than declared.
    let short = env
        .store
        .create_upload(&me, WF, request("short.bin", 100_001, None))
        .await
        .unwrap();
    assert_eq!(
        send(&short, data.clone()).await,
        200,
        "the emulator does not enforce signed lengths"
    );
    let key = staging_key("acme", &short.upload_id);
    let report = ingest(&env, &key, 100_000).await.unwrap();
    assert_eq!(report["records"][0]["outcome"], "rejected", "{report}");
    assert!(!staged_exists(&env, &key).await);

    // Other bytes than the declared checksum: S3 or ingest refuses.
    let wrong = env
        .store
        .create_upload(
            &me,
            WF,
            request("wrong.bin", 100_000, Some(sha_hex(b"something else"))),
        )
        .await
        .unwrap();
    let status = send(&wrong, data.clone()).await;
    let key = staging_key("acme", &wrong.upload_id);
    if status.is_success() {
        let report = ingest(&env, &key, 100_000).await.unwrap();
        assert_eq!(report["records"][0]["outcome"], "rejected", "{report}");
    }
    assert!(!staged_exists(&env, &key).await);

    // A repeated event for a rejected upload stays rejected.
    let again = ingest(&env, &staging_key("acme", &short.upload_id), 100_000)
        .await
        .unwrap();
    assert_eq!(again["records"][0]["outcome"], "already-done");

    // Nothing reached the artifact store.
    let objects = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix("orgs/")
        .send()
        .await
        .unwrap();
    assert!(objects.versions().is_empty(), "no content was kept");
    let items = env
        .dynamodb()
        .query()
        .table_name(&env.resources.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(artifacts::metadata::workflow_pk("acme", WF)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(items.count, 0, "no artifact");

    // Bad session requests are refused up front.
    for (bad, field) in [
        (request("../x", 1, None), "path"),
        (request("ok.bin", 5 * 1024 * 1024 * 1024 + 1, None), "size"),
        (request("ok.bin", 1, Some("abc".into())), "sha256"),
    ] {
        match env.store.create_upload(&me, WF, bad).await {
            Err(artifacts::Error::BadRequest { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let reader = Principal {
        scopes: vec!["artifacts:read".into()],
        ..me
    };
    assert!(matches!(
        env.store
            .create_upload(&reader, WF, request("ok.bin", 1, None))
            .await,
        Err(artifacts::Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_fault_mid_ingest_loses_nothing_and_a_retry_completes() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(300_000); // in S3, written before the commit
    let upload = env
        .store
        .create_upload(&principal("acme"), WF, request("fault.bin", 300_000, None))
        .await
        .unwrap();
    assert_eq!(send(&upload, data.clone()).await, 200);
    let key = staging_key("acme", &upload.upload_id);

    let faulty = DynamoDbFault::new("TransactWriteItems", "").store(&env);
    let version = current_version(&env, &key).await;
    let failed = artifacts_ingest::handler(&faulty, event(&env, &key, &version, 300_000)).await;
    assert!(failed.is_err(), "the invocation fails so Lambda retries it");
    assert!(
        staged_exists(&env, &key).await,
        "the staged object is kept for the retry"
    );
    let orphans = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix("orgs/")
        .send()
        .await
        .unwrap();
    assert!(
        orphans.versions().is_empty(),
        "content of the failed attempt was removed"
    );

    let retried = ingest(&env, &key, 300_000).await.unwrap();
    assert_eq!(retried["records"][0]["outcome"], "committed");
    let id = retried["records"][0]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(versions_of(&env, &alice, &id).await, vec![1]);
    assert!(fetch(&env, &alice, &id).await == data);
}

#[tokio::test]
async fn event_keys_are_decoded_and_foreign_objects_ignored() {
    let env = TestEnv::new().await;
    let data = content(5_000);
    let upload = env
        .store
        .create_upload(&principal("acme"), WF, request("enc.bin", 5_000, None))
        .await
        .unwrap();
    assert_eq!(send(&upload, data).await, 200);
    let encoded = format!("incoming%2Facme%2F{}", upload.upload_id);
    let report = ingest(&env, &encoded, 5_000).await.unwrap();
    assert_eq!(report["records"][0]["outcome"], "committed", "{report}");

    for foreign in [
        "orgs/acme/artifacts/x",
        "incoming/acme/not+an+upload",
        "incoming/caf%C3%A9/x y",
    ] {
        let report = ingest(&env, foreign, 1).await.unwrap();
        assert_eq!(report["records"][0]["outcome"], "unknown", "{foreign}");
    }
    // A well-formed key without a session is removed, never ingested.
    let stray = staging_key("acme", &artifacts::model::new_artifact_id());
    env.s3()
        .put_object()
        .bucket(&env.resources.bucket)
        .key(&stray)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let report = ingest(&env, &stray, 1).await.unwrap();
    assert_eq!(report["records"][0]["outcome"], "unknown");
    assert!(!staged_exists(&env, &stray).await);
}

#[tokio::test]
async fn the_upload_route_and_an_eventbridge_event_ingest_too() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(150_000);
    let body = serde_json::json!({
        "path": "plans/tf.plan",
        "artifactType": "terraform",
        "contentType": "application/octet-stream",
        "size": data.len(),
        "sha256": sha_hex(&data),
        "metadata": {"run": "42"},
    });
    let r = presign(&env, Call::create_upload(WF, &body).by(&alice)).await;
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&bytes(&r)));
    let created = json_body(&r);
    assert_eq!(created["method"], "PUT");
    assert!(created["expiresAt"].is_string());
    let upload: PresignedUpload = PresignedUpload {
        upload_id: created["uploadId"].as_str().unwrap().into(),
        url: created["url"].as_str().unwrap().into(),
        method: "PUT",
        headers: serde_json::from_value(created["headers"].clone()).unwrap(),
        expires_at: String::new(),
    };
    assert!(
        upload.headers.contains_key("x-amz-checksum-sha256"),
        "{:?}",
        upload.headers
    );
    assert_eq!(send(&upload, data.clone()).await, 200);

    let mut bridge: Value =
        serde_json::from_str(include_str!("../../events/eventbridge-object-created.json")).unwrap();
    bridge["detail"]["bucket"]["name"] = Value::from(env.resources.bucket.clone());
    let key = staging_key("acme", &upload.upload_id);
    bridge["detail"]["object"]["version-id"] = Value::from(current_version(&env, &key).await);
    bridge["detail"]["object"]["key"] = Value::from(key);
    let report =
        artifacts_ingest::handler(&env.store, LambdaEvent::new(bridge, Context::default()))
            .await
            .unwrap();
    assert_eq!(report["records"][0]["outcome"], "committed", "{report}");
    let id = report["records"][0]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let meta = json_body(&versions(&env, Call::artifact(&id).by(&alice)).await);
    assert_eq!(meta["artifactType"], "terraform");
    assert_eq!(meta["metadata"]["run"], "42");
    assert_eq!(meta["createdBy"], alice.sub.as_str());
    assert!(fetch(&env, &alice, &id).await == data);

    // Bad sessions are 4xx problems naming the field; readers may not upload.
    for (bad, field) in [
        (serde_json::json!({"path": "a", "size": -1}), "size"),
        (
            serde_json::json!({"path": "a", "size": 1, "bogus": true}),
            "body",
        ),
        (serde_json::json!({"path": "/abs", "size": 1}), "path"),
        (
            serde_json::json!({"path": "a", "size": 1, "sha256": "xyz"}),
            "sha256",
        ),
    ] {
        let r = presign(&env, Call::create_upload(WF, &bad).by(&alice)).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(json_body(&r)["field"], field, "{bad}");
    }
    let reader = Caller::reader("acme");
    let r = presign(&env, Call::create_upload(WF, &body).by(&reader)).await;
    assert_eq!(r.status(), 403);
}

// ---------------------------------------------------------------------------
// Exactly the event's version (issue 10 item 6).

/// Every version and delete marker left under exactly `key`.
async fn staged_versions(env: &TestEnv, key: &str) -> usize {
    let listing = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    listing
        .versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .count()
        + listing
            .delete_markers()
            .iter()
            .filter(|m| m.key() == Some(key))
            .count()
}

#[tokio::test]
async fn ingest_reads_the_events_version_and_removes_every_staged_version() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    // No declared sha256: only the version id tells the two PUTs apart.
    let upload = env
        .store
        .create_upload(&principal("acme"), WF, request("twice.bin", 70_000, None))
        .await
        .unwrap();
    let key = staging_key("acme", &upload.upload_id);
    let first = content(70_000);
    let second: Vec<u8> = first.iter().map(|b| b ^ 0x5a).collect();
    let first_version = harness::stage(&upload, first.clone()).await;
    let second_version = harness::stage(&upload, second.clone()).await;
    assert_ne!(first_version, second_version);
    assert_eq!(staged_versions(&env, &key).await, 2);

    // The event of the first PUT commits the first PUT's bytes, although
    // the second is now the key's newest version.
    let report = ingest_version(&env, &key, &first_version, 70_000)
        .await
        .unwrap();
    assert_eq!(report["records"][0]["outcome"], "committed", "{report}");
    let id = report["records"][0]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        fetch(&env, &alice, &id).await == first,
        "the event's version was ingested"
    );
    assert_eq!(
        staged_versions(&env, &key).await,
        0,
        "no staged version or delete marker is left"
    );

    // The second PUT's event finds the session done: still one version.
    let again = ingest_version(&env, &key, &second_version, 70_000)
        .await
        .unwrap();
    assert_eq!(again["records"][0]["outcome"], "already-done", "{again}");
    assert_eq!(versions_of(&env, &alice, &id).await, vec![1]);

    // A rejection removes every version too.
    let rejected = env
        .store
        .create_upload(
            &principal("acme"),
            WF,
            request("bad.bin", 5, Some(sha_hex(b"other"))),
        )
        .await
        .unwrap();
    let key = staging_key("acme", &rejected.upload_id);
    let mut staged = Vec::new();
    for body in [b"aaaaa", b"bbbbb"] {
        let put = env
            .s3()
            .put_object()
            .bucket(&env.resources.bucket)
            .key(&key)
            .body(ByteStream::from_static(body))
            .send()
            .await
            .unwrap();
        staged.push(put.version_id().unwrap().to_owned());
    }
    let report = ingest_version(&env, &key, &staged[0], 5).await.unwrap();
    assert_eq!(report["records"][0]["outcome"], "rejected", "{report}");
    assert_eq!(staged_versions(&env, &key).await, 0);
}

#[tokio::test]
async fn an_event_for_a_version_that_is_not_there_changes_nothing() {
    let env = TestEnv::new().await;
    let data = content(1_000);
    let upload = env
        .store
        .create_upload(&principal("acme"), WF, request("stale.bin", 1_000, None))
        .await
        .unwrap();
    let key = staging_key("acme", &upload.upload_id);
    let version = harness::stage(&upload, data.clone()).await;
    for bogus in ["3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "not a version"] {
        let report = ingest_version(&env, &key, bogus, 1_000).await.unwrap();
        assert_eq!(
            report["records"][0]["outcome"], "stale",
            "{bogus}: {report}"
        );
    }
    // An event without a version is not guessed at.
    let mut unversioned = event(&env, &key, &version, 1_000);
    unversioned.payload["Records"][0]["s3"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("versionId");
    let report = artifacts_ingest::handler(&env.store, unversioned)
        .await
        .unwrap();
    assert_eq!(report["records"][0]["outcome"], "no-version", "{report}");
    // The session still waits, and its real event commits it.
    assert_eq!(staged_versions(&env, &key).await, 1);
    let report = ingest_version(&env, &key, &version, 1_000).await.unwrap();
    assert_eq!(report["records"][0]["outcome"], "committed", "{report}");
}

// ---------------------------------------------------------------------------
// Delivery through EventBridge and SQS, and the upload status (item 7).

use harness::poller::{Invoke, Poller, Round};
use std::time::{Duration, Instant};

/// The real ingest handler, invoked in-process as Lambda would.
struct InProcess<'a>(&'a artifacts::Store);

impl Invoke for InProcess<'_> {
    async fn invoke(&self, event: Value) -> Result<Value, harness::BoxError> {
        artifacts_ingest::handler(self.0, LambdaEvent::new(event, Context::default())).await
    }
}

async fn poller(env: &TestEnv) -> Poller {
    let mut poller = Poller::new(env.sqs(), &env.resources.ingest_queue_url)
        .await
        .unwrap();
    // A failed record is back after a second instead of the queue's 30.
    poller.visibility_timeout = Some(1);
    poller
}

/// Open an upload session through the route; returns it and its PUT.
async fn open_upload(env: &TestEnv, caller: &Caller, path: &str, data: &[u8]) -> PresignedUpload {
    let body = serde_json::json!({
        "path": path,
        "contentType": "application/octet-stream",
        "size": data.len(),
    });
    let r = presign(env, Call::create_upload(WF, &body).by(caller)).await;
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&bytes(&r)));
    let created = json_body(&r);
    PresignedUpload {
        upload_id: created["uploadId"].as_str().unwrap().into(),
        url: created["url"].as_str().unwrap().into(),
        method: "PUT",
        headers: serde_json::from_value(created["headers"].clone()).unwrap(),
        expires_at: String::new(),
    }
}

async fn status(env: &TestEnv, caller: &Caller, workflow: &str, upload_id: &str) -> (u16, Value) {
    let r = presign(env, Call::upload_status(workflow, upload_id).by(caller)).await;
    (r.status().as_u16(), json_body(&r))
}

async fn queue_depth(env: &TestEnv, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = env
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let get = |a: A| {
        out.attributes()
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn a_presigned_put_alone_becomes_a_version_through_eventbridge_and_sqs() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(200_000);
    let upload = open_upload(&env, &alice, "queued/report.bin", &data).await;
    let (code, pending) = status(&env, &alice, WF, &upload.upload_id).await;
    assert_eq!((code, pending["state"].as_str()), (200, Some("pending")));
    harness::stage(&upload, data.clone()).await;

    // Nothing but the poller (Lambda's event source mapping) runs ingest.
    let poller = poller(&env).await;
    let started = Instant::now();
    let mut rounds = Vec::new();
    let committed = loop {
        let round = poller.poll_once(&InProcess(&env.store)).await.unwrap();
        if round.received > 0 {
            rounds.push(round);
        }
        let (_, s) = status(&env, &alice, WF, &upload.upload_id).await;
        if s["state"] == "committed" {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not committed within 10 s: {s} after {rounds:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("committed after {:?}", started.elapsed());
    assert_eq!(committed["version"], 1);
    assert_eq!(
        rounds.iter().map(|r| r.failed).sum::<usize>(),
        0,
        "{rounds:?}"
    );
    let id = committed["artifactId"].as_str().unwrap();
    assert!(fetch(&env, &alice, id).await == data);
    // Delivered and deleted: nothing waits on either queue (moto may
    // deliver an event twice; a repeat is already done).
    while poller
        .poll_once(&InProcess(&env.store))
        .await
        .unwrap()
        .received
        > 0
    {}
    assert_eq!(
        queue_depth(&env, &env.resources.ingest_queue_url).await,
        (0, 0)
    );
    assert_eq!(
        queue_depth(&env, &env.resources.ingest_dlq_url).await,
        (0, 0)
    );
    assert_eq!(
        staged_versions(&env, &staging_key("acme", &upload.upload_id)).await,
        0
    );
    // Objects outside incoming/ are not delivered.
    assert_eq!(
        poller.poll_once(&InProcess(&env.store)).await.unwrap(),
        Round::default()
    );
}

#[tokio::test]
async fn an_outage_then_recovery_commits_the_queued_upload() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(300_000);
    let upload = open_upload(&env, &alice, "outage/big.bin", &data).await;
    harness::stage(&upload, data.clone()).await;

    // DynamoDB unreachable between the content write and the commit.
    let outage = DynamoDbFault::new("TransactWriteItems", "");
    let faulty = outage.store(&env);
    let poller = poller(&env).await;
    let started = Instant::now();
    let (mut failed_rounds, mut deliveries) = (0, 0);
    let committed = loop {
        let round = poller.poll_once(&InProcess(&faulty)).await.unwrap();
        deliveries += round.received;
        if round.failed > 0 {
            failed_rounds += 1;
            let (_, s) = status(&env, &alice, WF, &upload.upload_id).await;
            assert_eq!(s["state"], "pending", "a failed ingest changes nothing");
            assert_eq!(
                staged_versions(&env, &staging_key("acme", &upload.upload_id)).await,
                1,
                "the staged upload is kept for the retry"
            );
            if failed_rounds == 3 {
                // The dependency is back.
                outage.stop();
            }
        }
        let (_, s) = status(&env, &alice, WF, &upload.upload_id).await;
        if s["state"] == "committed" {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not committed within 30 s: {s}, {failed_rounds} failed rounds"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "committed after {:?}: {failed_rounds} failed rounds, {deliveries} deliveries, {} faults",
        started.elapsed(),
        outage.injected()
    );
    assert_eq!(failed_rounds, 3);
    assert!(outage.injected() >= 3);
    let id = committed["artifactId"].as_str().unwrap();
    assert_eq!(versions_of(&env, &alice, id).await, vec![1]);
    assert!(fetch(&env, &alice, id).await == data, "nothing lost");
    let orphans = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix("orgs/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        orphans.versions().len(),
        1,
        "only the committed content is kept"
    );
    while poller
        .poll_once(&InProcess(&env.store))
        .await
        .unwrap()
        .received
        > 0
    {}
    assert_eq!(
        queue_depth(&env, &env.resources.ingest_dlq_url).await,
        (0, 0)
    );
}

#[tokio::test]
async fn upload_status_follows_a_session() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(10_000);
    let upload = open_upload(&env, &alice, "status/a.bin", &data).await;
    let id = upload.upload_id.clone();

    let (code, s) = status(&env, &alice, WF, &id).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["uploadId"], id.as_str());
    assert_eq!(s["state"], "pending");
    assert!(s["expiresAt"].as_str().unwrap().ends_with('Z'), "{s}");
    for absent in ["artifactId", "version", "reason"] {
        assert!(s.get(absent).is_none(), "{absent}: {s}");
    }
    // A reader may ask too.
    let (code, _) = status(&env, &Caller::reader("acme"), WF, &id).await;
    assert_eq!(code, 200);

    let key = staging_key("acme", &id);
    let version = harness::stage(&upload, data.clone()).await;
    assert_eq!(status(&env, &alice, WF, &id).await.1["state"], "pending");
    ingest_version(&env, &key, &version, 10_000).await.unwrap();
    let (code, s) = status(&env, &alice, WF, &id).await;
    assert_eq!(code, 200);
    assert_eq!(s["state"], "committed", "{s}");
    assert_eq!(s["version"], 1);
    let artifact_id = s["artifactId"].as_str().unwrap();
    assert!(fetch(&env, &alice, artifact_id).await == data);

    // Rejected, with the reason: bytes that do not match the declared hash
    // (put straight into the bucket: S3 itself refuses them on the URL).
    let body = serde_json::json!({
        "path": "status/b.bin",
        "size": 5,
        "sha256": sha_hex(b"other"),
    });
    let r = presign(&env, Call::create_upload(WF, &body).by(&alice)).await;
    let bad = json_body(&r)["uploadId"].as_str().unwrap().to_owned();
    let key = staging_key("acme", &bad);
    let put = env
        .s3()
        .put_object()
        .bucket(&env.resources.bucket)
        .key(&key)
        .body(ByteStream::from_static(b"12345"))
        .send()
        .await
        .unwrap();
    ingest_version(&env, &key, put.version_id().unwrap(), 5)
        .await
        .unwrap();
    let (code, s) = status(&env, &alice, WF, &bad).await;
    assert_eq!(code, 200);
    assert_eq!(s["state"], "rejected", "{s}");
    assert!(s["reason"].as_str().unwrap().contains("sha256"), "{s}");
    assert!(s.get("artifactId").is_none() && s.get("version").is_none());

    // Another org, another workflow, an unknown id: the plain 404.
    let unknown = artifacts::model::new_artifact_id();
    let (code, plain) = status(&env, &alice, WF, &unknown).await;
    assert_eq!(code, 404);
    for (caller, workflow) in [(Caller::writer("evil"), WF), (alice.clone(), "wf-other")] {
        let (code, body) = status(&env, &caller, workflow, &id).await;
        assert_eq!(code, 404);
        assert_eq!(
            (&body["title"], &body["detail"], &body["type"]),
            (&plain["title"], &plain["detail"], &plain["type"]),
        );
    }

    // Bad ids are 400s naming the field.
    for (workflow, upload_id, field) in [
        (WF, "xyz", "uploadId"),
        (WF, &*id.to_uppercase(), "uploadId"),
        (WF, &*format!("{id}0"), "uploadId"),
        ("bad workflow", &*id, "workflowId"),
    ] {
        let (code, body) = status(&env, &alice, workflow, upload_id).await;
        assert_eq!(code, 400, "{upload_id}: {body}");
        assert_eq!(body["field"], field, "{body}");
    }
    // No principal: 401.
    let r = presign(&env, Call::upload_status(WF, &id)).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_session_nothing_arrived_for_expires() {
    let env = TestEnv::new().await;
    let me = principal("acme");
    let now = artifacts::links::now();
    let never = env
        .store
        .create_upload(&me, WF, request("never.bin", 10, None))
        .await
        .unwrap();
    let staged = env
        .store
        .create_upload(&me, WF, request("late.bin", 10, None))
        .await
        .unwrap();
    harness::stage(&staged, content(10)).await;
    let state = |s: artifacts::uploads::UploadStatus| s.state;
    use artifacts::uploads::UploadState::{Expired, Pending};
    let at = |offset: i64| now + offset;
    for (upload, offset, expected) in [
        // Within the URL's life (and a grace hour after): waiting.
        (&never, 0, Pending),
        (&never, 15 * 60 + 30 * 60, Pending),
        // Long after the URL, with nothing staged: it never will be.
        (&never, 3 * 3600, Expired),
        // Staged, ingest still to come (an outage): waiting.
        (&staged, 3 * 3600, Pending),
        // Past the session's day: over, staged or not.
        (&staged, 25 * 3600, Expired),
    ] {
        let got = env
            .store
            .upload_status(&me, WF, &upload.upload_id, at(offset))
            .await
            .unwrap();
        assert_eq!(state(got), expected, "{} at +{offset}s", upload.upload_id);
    }
}

#[tokio::test]
async fn ingest_after_the_sessions_day_removes_the_upload_and_it_stays_expired() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(1_000);
    let upload = open_upload(&env, &alice, "late/a.bin", &data).await;
    let key = staging_key("acme", &upload.upload_id);
    let version = harness::stage(&upload, data).await;
    // The session's day ends (as if the queue had held the event that long).
    env.dynamodb()
        .update_item()
        .table_name(&env.resources.table)
        .key(
            "pk",
            AttributeValue::S(artifacts::uploads::session_pk("acme", &upload.upload_id)),
        )
        .key("sk", AttributeValue::S("#UPLOAD".into()))
        .update_expression("SET expiresAt = :past")
        .expression_attribute_values(
            ":past",
            AttributeValue::N((artifacts::links::now() - 1).to_string()),
        )
        .send()
        .await
        .unwrap();
    let (_, s) = status(&env, &alice, WF, &upload.upload_id).await;
    assert_eq!(s["state"], "expired", "{s}");
    let report = ingest_version(&env, &key, &version, 1_000).await.unwrap();
    assert_eq!(report["records"][0]["outcome"], "expired", "{report}");
    assert_eq!(staged_versions(&env, &key).await, 0);
    let (_, s) = status(&env, &alice, WF, &upload.upload_id).await;
    assert_eq!(s["state"], "expired", "expired is final: {s}");
}
