//! The first slice end to end: the real upload / versions / download handlers
//! and the real AWS SDK against the emulator (SPEC §11). Run with `make test`.

use std::collections::HashSet;

use artifacts::content::content_key;
use artifacts::crypto;
use artifacts::metadata::{artifact_pk, version_sk, workflow_pk};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use harness::{Call, Caller, TestEnv, bytes, download, header, json_body, upload, versions};
use lambda_http::{Body, Response};
use serde_json::Value;

const WF: &str = "wf-1";

/// Upload as `caller` and return the created `{artifact, version}`.
async fn put(env: &TestEnv, caller: &Caller, path: &str, body: &[u8]) -> Value {
    let response = upload(env, Call::upload(WF, path, body).by(caller)).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        String::from_utf8_lossy(&bytes(&response))
    );
    json_body(&response)
}

fn id_of(created: &Value) -> String {
    created["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Deterministic, non-repeating content with a recognisable marker.
fn content(size: usize, seed: u8) -> Vec<u8> {
    let marker = b"PLAINTEXT-MARKER-7f3a";
    let mut data = harness::content(size, seed);
    if size >= marker.len() {
        data[..marker.len()].copy_from_slice(marker);
    }
    data
}

/// The raw version item, as DynamoDB holds it.
async fn version_item(
    env: &TestEnv,
    org: &str,
    id: &str,
    version: u64,
) -> std::collections::HashMap<String, AttributeValue> {
    env.dynamodb()
        .get_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(artifact_pk(org, id)))
        .key("sk", AttributeValue::S(version_sk(version)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("version item exists")
}

async fn set_attribute(
    env: &TestEnv,
    org: &str,
    id: &str,
    version: u64,
    name: &str,
    value: AttributeValue,
) {
    harness::set_version_attribute(env, org, id, version, name, value).await;
}

async fn raw_object(env: &TestEnv, org: &str, id: &str, version_id: &str) -> Vec<u8> {
    env.s3()
        .get_object()
        .bucket(&env.resources.bucket)
        .key(content_key(org, id))
        .version_id(version_id)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn round_trips_every_size_inline_or_in_s3() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    for size in [0usize, 1, 65_535, 65_536, 65_537, 1 << 20, 4 << 20] {
        let data = content(size, 3);
        let path = format!("sizes/{size}.bin");
        let created = put(&env, &alice, &path, &data).await;
        let id = id_of(&created);
        assert_eq!(created["version"]["version"], 1);
        assert_eq!(created["artifact"]["size"], size as u64);
        assert_eq!(created["artifact"]["path"], path.as_str());
        assert_eq!(created["artifact"]["name"], format!("{size}.bin"));

        let meta = versions(&env, Call::artifact(&id).by(&alice)).await;
        assert_eq!(meta.status(), 200);
        assert_eq!(json_body(&meta), created["artifact"]);
        let history = json_body(&versions(&env, Call::versions(&id).by(&alice)).await);
        assert_eq!(history["versions"][0], created["version"]);

        let got = download(&env, Call::download(&id).by(&alice)).await;
        assert_eq!(got.status(), 200, "size {size}");
        assert!(bytes(&got) == data, "size {size}: bytes differ");
        assert_eq!(
            header(&got, "content-length"),
            Some(size.to_string().as_str())
        );

        let item = version_item(&env, "acme", &id, 1).await;
        let inline = crypto::sealed_len(size as u64) <= 64 * 1024;
        assert_eq!(item.contains_key("inline"), inline, "size {size} inline?");
        assert_eq!(
            item.contains_key("s3VersionId"),
            !inline,
            "size {size} in S3?"
        );
        if let Some(AttributeValue::S(version_id)) = item.get("s3VersionId") {
            let raw = raw_object(&env, "acme", &id, version_id).await;
            assert_eq!(raw.len() as u64, crypto::sealed_len(size as u64));
        }
    }
}

#[tokio::test]
async fn each_write_of_a_path_is_the_next_version_and_all_stay_readable() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let bodies: Vec<Vec<u8>> = (0..3u8)
        .map(|i| content(70_000 + usize::from(i), i))
        .collect();
    let mut id = String::new();
    for (n, body) in bodies.iter().enumerate() {
        let created = put(&env, &alice, "terraform/main.tf", body).await;
        assert_eq!(created["version"]["version"], n as u64 + 1);
        if n > 0 {
            assert_eq!(id_of(&created), id, "same path, same artifact");
        }
        id = id_of(&created);
    }
    for (n, body) in bodies.iter().enumerate() {
        let got = download(
            &env,
            Call::download(&id)
                .query("version", &(n + 1).to_string())
                .by(&alice),
        )
        .await;
        assert_eq!(got.status(), 200);
        assert!(bytes(&got) == *body, "version {} bytes", n + 1);
        assert_eq!(
            header(&got, "x-artifact-version"),
            Some((n + 1).to_string().as_str())
        );
    }
    let latest = download(&env, Call::download(&id).by(&alice)).await;
    assert!(bytes(&latest) == bodies[2]);

    let history = json_body(&versions(&env, Call::versions(&id).by(&alice)).await);
    let numbers: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 2, 1], "newest first");
    assert_eq!(history["nextCursor"], Value::Null);

    // Pagination walks the same history, one at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut call = Call::versions(&id).query("limit", "1");
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let page = json_body(&versions(&env, call.by(&alice)).await);
        seen.extend(
            page["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["version"].as_u64().unwrap()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, vec![3, 2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_lose_or_duplicate_a_version() {
    let env = std::sync::Arc::new(TestEnv::new().await);
    let alice = Caller::writer("acme");
    let writers = 20;
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let env = env.clone();
            let alice = alice.clone();
            tokio::spawn(async move {
                // Half inline, half in S3, so both storage paths race.
                let body = content(if i % 2 == 0 { 100 + i } else { 80_000 + i }, i as u8);
                let created = put(&env, &alice, "report.json", &body).await;
                (
                    created["version"]["version"].as_u64().unwrap(),
                    id_of(&created),
                    body,
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let numbers: HashSet<u64> = results.iter().map(|(v, _, _)| *v).collect();
    assert_eq!(
        numbers,
        (1..=writers as u64).collect::<HashSet<_>>(),
        "versions 1..=20, each once"
    );
    let ids: HashSet<&String> = results.iter().map(|(_, id, _)| id).collect();
    assert_eq!(ids.len(), 1, "one artifact");
    let id = results[0].1.clone();
    for (version, _, body) in &results {
        let got = download(
            &env,
            Call::download(&id)
                .query("version", &version.to_string())
                .by(&alice),
        )
        .await;
        assert_eq!(got.status(), 200);
        assert!(
            bytes(&got) == *body,
            "version {version} holds its writer's bytes"
        );
    }
    let meta = json_body(&versions(&env, Call::artifact(&id).by(&alice)).await);
    assert_eq!(meta["latestVersion"], writers as u64);
}

#[tokio::test]
async fn only_ciphertext_is_at_rest() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let marker = b"PLAINTEXT-MARKER-7f3a";
    for size in [100usize, 200_000] {
        let data = content(size, 9);
        let id = id_of(&put(&env, &alice, &format!("secret-{size}.txt"), &data).await);
        let item = version_item(&env, "acme", &id, 1).await;
        let stored = match (item.get("inline"), item.get("s3VersionId")) {
            (Some(AttributeValue::B(b)), None) => b.as_ref().to_vec(),
            (None, Some(AttributeValue::S(v))) => raw_object(&env, "acme", &id, v).await,
            other => panic!("unexpected storage {other:?}"),
        };
        assert_eq!(&stored[..4], b"ARTF");
        assert!(
            !contains(&stored, marker),
            "marker visible at rest ({size} bytes)"
        );
        for value in item.values() {
            if let AttributeValue::B(b) = value {
                assert!(!contains(b.as_ref(), marker));
            }
        }
        // Every object in the bucket is ciphertext.
        let listing = env
            .s3()
            .list_object_versions()
            .bucket(&env.resources.bucket)
            .send()
            .await
            .unwrap();
        for v in listing.versions() {
            let raw = raw_object(&env, "acme", &id, v.version_id().unwrap()).await;
            assert!(!contains(&raw, marker));
        }
    }
}

/// A download that must fail closed: 500, a problem body, no plaintext.
fn assert_fails_closed(response: &Response<Body>, plaintext: &[u8], what: &str) {
    assert_eq!(response.status(), 500, "{what}");
    assert_eq!(
        header(response, "content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    let body = bytes(response);
    assert!(
        !contains(&body, &plaintext[..21]),
        "{what}: plaintext leaked"
    );
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        problem["requestId"].is_string(),
        "{what}: a request id to quote"
    );
}

#[tokio::test]
async fn tampered_s3_content_is_refused() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(3 * 65_536 + 100, 5); // four segments
    let id = id_of(&put(&env, &alice, "big.bin", &data).await);
    let item = version_item(&env, "acme", &id, 1).await;
    let Some(AttributeValue::S(original)) = item.get("s3VersionId").cloned() else {
        panic!("in S3")
    };
    let sealed = raw_object(&env, "acme", &id, &original).await;
    let seg = 65_536 + 16;
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for (what, at) in [
        ("magic", 0),
        ("segment size", 6),
        ("nonce prefix", 10),
        ("commitment", 20),
        ("first segment", 48 + 100),
        ("first tag", 48 + seg - 1),
        ("second segment", 48 + seg + 7),
        ("last segment", sealed.len() - 30),
        ("last tag", sealed.len() - 1),
    ] {
        let mut t = sealed.clone();
        t[at] ^= 0x01;
        cases.push((format!("flip {what}"), t));
    }
    cases.push((
        "truncate at a segment boundary".into(),
        sealed[..48 + 3 * seg].to_vec(),
    ));
    cases.push((
        "truncate inside a tag".into(),
        sealed[..sealed.len() - 1].to_vec(),
    ));
    let mut swapped = sealed.clone();
    swapped[48..48 + seg].copy_from_slice(&sealed[48 + seg..48 + 2 * seg]);
    swapped[48 + seg..48 + 2 * seg].copy_from_slice(&sealed[48..48 + seg]);
    cases.push(("swap two segments".into(), swapped));

    for (what, tampered) in cases {
        let put = env
            .s3()
            .put_object()
            .bucket(&env.resources.bucket)
            .key(content_key("acme", &id))
            .body(ByteStream::from(tampered))
            .send()
            .await
            .unwrap();
        set_attribute(
            &env,
            "acme",
            &id,
            1,
            "s3VersionId",
            AttributeValue::S(put.version_id().unwrap().into()),
        )
        .await;
        let got = download(&env, Call::download(&id).by(&alice)).await;
        assert_fails_closed(&got, &data, &what);
        let ranged = download(
            &env,
            Call::download(&id).header("range", "bytes=0-99").by(&alice),
        )
        .await;
        // A range is served only from segments that authenticate: either it
        // fails, or every byte it returns is the original.
        assert!(
            ranged.status() == 500 || bytes(&ranged) == data[..100],
            "{what} (head range): {}",
            ranged.status()
        );
        let whole = download(
            &env,
            Call::download(&id).header("range", "bytes=0-").by(&alice),
        )
        .await;
        assert_fails_closed(&whole, &data, &format!("{what} (open range)"));
    }
    // The untouched version still reads back: the failures were the tampering.
    set_attribute(
        &env,
        "acme",
        &id,
        1,
        "s3VersionId",
        AttributeValue::S(original),
    )
    .await;
    let got = download(&env, Call::download(&id).by(&alice)).await;
    assert!(got.status() == 200 && bytes(&got) == data);
}

#[tokio::test]
async fn tampered_inline_content_and_swapped_keys_are_refused() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let first = content(500, 1);
    let second = content(600, 2);
    let id = id_of(&put(&env, &alice, "notes.md", &first).await);
    put(&env, &alice, "notes.md", &second).await;
    let v1 = version_item(&env, "acme", &id, 1).await;
    let v2 = version_item(&env, "acme", &id, 2).await;
    let Some(AttributeValue::B(sealed)) = v2.get("inline").cloned() else {
        panic!("inline")
    };
    let sealed = sealed.into_inner();

    for at in [0, 5, 12, 30, 48, 48 + 300, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[at] ^= 0x80;
        set_attribute(
            &env,
            "acme",
            &id,
            2,
            "inline",
            AttributeValue::B(Blob::new(t)),
        )
        .await;
        let got = download(&env, Call::download(&id).by(&alice)).await;
        assert_fails_closed(&got, &second, &format!("inline byte {at}"));
    }
    set_attribute(
        &env,
        "acme",
        &id,
        2,
        "inline",
        AttributeValue::B(Blob::new(sealed[..48].to_vec())),
    )
    .await;
    assert_fails_closed(
        &download(&env, Call::download(&id).by(&alice)).await,
        &second,
        "header only",
    );
    set_attribute(
        &env,
        "acme",
        &id,
        2,
        "inline",
        AttributeValue::B(Blob::new(sealed.clone())),
    )
    .await;
    assert_eq!(
        download(&env, Call::download(&id).by(&alice))
            .await
            .status(),
        200
    );

    // Version 1's wrapped key under version 2's content: KMS refuses the context.
    set_attribute(&env, "acme", &id, 2, "wrappedKey", v1["wrappedKey"].clone()).await;
    assert_fails_closed(
        &download(&env, Call::download(&id).by(&alice)).await,
        &second,
        "swapped key",
    );
    // Version 1's whole content and key under version 2's content id: also refused.
    set_attribute(&env, "acme", &id, 2, "inline", v1["inline"].clone()).await;
    assert_fails_closed(
        &download(&env, Call::download(&id).by(&alice)).await,
        &second,
        "swapped content",
    );
}

#[tokio::test]
async fn other_orgs_see_nothing_on_any_route() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let mallory = Caller::writer("evil");
    let data = content(1000, 4);
    let id = id_of(&put(&env, &alice, "prd.md", &data).await);
    let missing = artifacts::model::new_artifact_id();

    let calls: [fn(&str) -> Call; 3] = [Call::artifact, Call::versions, Call::download];
    for make in calls {
        let foreign = make(&id).by(&mallory);
        let absent = make(&missing).by(&mallory);
        let malformed = make("not-an-id").by(&mallory);
        let (foreign, absent, malformed) = if foreign.request().uri().path().ends_with("/download")
        {
            (
                download(&env, foreign).await,
                download(&env, absent).await,
                download(&env, malformed).await,
            )
        } else {
            (
                versions(&env, foreign).await,
                versions(&env, absent).await,
                versions(&env, malformed).await,
            )
        };
        assert_eq!(foreign.status(), 404);
        assert_eq!(
            bytes(&foreign),
            bytes(&absent),
            "foreign and missing are indistinguishable"
        );
        assert_eq!(bytes(&foreign), bytes(&malformed));
        assert_eq!(foreign.headers(), absent.headers());
        assert!(!contains(&bytes(&foreign), id.as_bytes()));
    }
    // The same workflow and path in another org is another artifact entirely.
    let theirs = put(&env, &mallory, "prd.md", b"evil's own").await;
    assert_ne!(id_of(&theirs), id);
    assert_eq!(theirs["version"]["version"], 1);
    let ours = download(&env, Call::download(&id).by(&alice)).await;
    assert!(bytes(&ours) == data);
    let mine = json_body(&versions(&env, Call::artifact(&id).by(&alice)).await);
    assert_eq!(mine["latestVersion"], 1);
}

#[tokio::test]
async fn credentials_and_scopes_are_enforced() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let id = id_of(&put(&env, &alice, "a.txt", b"hello").await);

    let denied = upload(
        &env,
        Call::upload(WF, "a.txt", b"x").by(&Caller::reader("acme")),
    )
    .await;
    assert_eq!(denied.status(), 403);
    assert_eq!(json_body(&denied)["status"], 403);

    for response in [
        upload(&env, Call::upload(WF, "a.txt", b"x")).await,
        versions(&env, Call::artifact(&id)).await,
        versions(&env, Call::versions(&id)).await,
        download(&env, Call::download(&id)).await,
    ] {
        assert_eq!(response.status(), 401);
        assert_eq!(header(&response, "www-authenticate"), Some("Bearer"));
    }
    // A reader can read; a caller with no artifacts scope cannot.
    assert_eq!(
        download(&env, Call::download(&id).by(&Caller::reader("acme")))
            .await
            .status(),
        200
    );
    assert_eq!(
        download(&env, Call::download(&id).by(&Caller::new("acme", "openid")))
            .await
            .status(),
        403
    );
    // Nothing the refused calls sent was stored.
    let meta = json_body(&versions(&env, Call::artifact(&id).by(&alice)).await);
    assert_eq!(meta["latestVersion"], 1);
}

#[tokio::test]
async fn dev_mode_verifies_bearer_tokens() {
    let secret = "0123456789abcdef0123456789abcdef-test";
    let env = TestEnv::with_config(|c| c.auth = harness::dev_auth(secret)).await;
    let exp = time_now() + 600;
    let token = artifacts::auth::mint_hs256(
        secret.as_bytes(),
        &serde_json::json!({"sub": "dev", "org_id": "acme", "scope": "artifacts:read artifacts:write", "exp": exp}),
    );
    let created = upload(
        &env,
        Call::upload(WF, "dev.txt", b"dev").header("authorization", &format!("Bearer {token}")),
    )
    .await;
    assert_eq!(created.status(), 201);
    let id = id_of(&json_body(&created));
    let got = download(
        &env,
        Call::download(&id).header("authorization", &format!("Bearer {token}")),
    )
    .await;
    assert_eq!(bytes(&got), b"dev");

    let forged = artifacts::auth::mint_hs256(
        b"some-other-secret-some-other-secret",
        &serde_json::json!({"sub": "dev", "org_id": "acme", "scope": "artifacts:read", "exp": exp}),
    );
    let refused = download(
        &env,
        Call::download(&id).header("authorization", &format!("Bearer {forged}")),
    )
    .await;
    assert_eq!(refused.status(), 401);
    // In dev mode, authorizer claims alone are not trusted either.
    assert_eq!(
        download(&env, Call::download(&id).by(&Caller::writer("acme")))
            .await
            .status(),
        401
    );
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// All items of a workflow in an org, straight from the table.
async fn workflow_items(env: &TestEnv, org: &str) -> usize {
    env.dynamodb()
        .query()
        .table_name(&env.resources.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(workflow_pk(org, WF)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .count as usize
}

fn assert_problem(response: &Response<Body>, status: u16, field: Option<&str>) {
    assert_eq!(
        response.status(),
        status,
        "{}",
        String::from_utf8_lossy(&bytes(response))
    );
    assert_eq!(
        header(response, "content-type"),
        Some("application/problem+json")
    );
    let problem = json_body(response);
    assert_eq!(problem["status"], status);
    assert!(
        problem["title"].is_string()
            && problem["detail"].is_string()
            && problem["type"].is_string()
    );
    if let Some(field) = field {
        assert_eq!(problem["field"], field, "{problem}");
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let long = "a".repeat(513);
    for path in [
        "../etc/passwd",
        "a/../b",
        "/abs",
        "a\\b",
        "nul\u{0}x",
        "a//b",
        "a/",
        ".",
        long.as_str(),
    ] {
        let r = upload(&env, Call::upload(WF, path, b"x").by(&alice)).await;
        assert_problem(&r, 400, Some("path"));
    }
    let bad_wf = upload(
        &env,
        Call::upload("wf#1", "ok.txt", b"x")
            .path_param("workflowId", "wf#1")
            .by(&alice),
    )
    .await;
    assert_problem(&bad_wf, 400, Some("workflowId"));
    let bad_type = upload(
        &env,
        Call::upload(WF, "ok.txt", b"x")
            .query("artifactType", "no spaces")
            .by(&alice),
    )
    .await;
    assert_problem(&bad_type, 400, Some("artifactType"));
    let bad_ct = upload(
        &env,
        Call::upload(WF, "ok.txt", b"x")
            .header("content-type", "nonsense")
            .by(&alice),
    )
    .await;
    assert_problem(&bad_ct, 400, Some("contentType"));
    let too_big = upload(
        &env,
        Call::upload(WF, "big.bin", &vec![0u8; (4 << 20) + 1]).by(&alice),
    )
    .await;
    assert_problem(&too_big, 413, None);
    let wrong_sha = upload(
        &env,
        Call::upload(WF, "ok.txt", b"x")
            .header("x-artifact-sha256", &"0".repeat(64))
            .by(&alice),
    )
    .await;
    assert_problem(&wrong_sha, 400, Some("x-artifact-sha256"));
    assert_eq!(workflow_items(&env, "acme").await, 0, "nothing was created");

    // Correct checksum and compare-and-set succeed; stale ones do not.
    let sha = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"; // sha256("x")
    let created = upload(
        &env,
        Call::upload(WF, "ok.txt", b"x")
            .header("x-artifact-sha256", sha)
            .by(&alice),
    )
    .await;
    assert_eq!(created.status(), 201);
    let id = id_of(&json_body(&created));
    let cas = upload(
        &env,
        Call::upload(WF, "ok.txt", b"y")
            .header("if-match", "\"1\"")
            .by(&alice),
    )
    .await;
    assert_eq!(cas.status(), 201);
    let stale = upload(
        &env,
        Call::upload(WF, "ok.txt", b"z")
            .header("if-match", "\"1\"")
            .by(&alice),
    )
    .await;
    assert_problem(&stale, 409, None);
    let bad_if_match = upload(
        &env,
        Call::upload(WF, "ok.txt", b"z")
            .header("if-match", "\"abc\"")
            .by(&alice),
    )
    .await;
    assert_problem(&bad_if_match, 400, Some("If-Match"));
    let exists = upload(
        &env,
        Call::upload(WF, "ok.txt", b"z")
            .header("if-none-match", "*")
            .by(&alice),
    )
    .await;
    assert_problem(&exists, 412, None);
    let meta = json_body(&versions(&env, Call::artifact(&id).by(&alice)).await);
    assert_eq!(meta["latestVersion"], 2, "refused writes added no version");
    assert_eq!(
        bytes(&download(&env, Call::download(&id).by(&alice)).await),
        b"y"
    );

    assert_problem(
        &download(&env, Call::download(&id).query("version", "3").by(&alice)).await,
        404,
        None,
    );
    assert_problem(
        &download(&env, Call::download(&id).query("version", "0").by(&alice)).await,
        400,
        Some("version"),
    );
    assert_problem(
        &download(&env, Call::download(&id).query("version", "x").by(&alice)).await,
        400,
        Some("version"),
    );
    let r = download(
        &env,
        Call::download(&id).header("range", "bytes=5-9").by(&alice),
    )
    .await;
    assert_problem(&r, 416, Some("Range"));
    assert_eq!(header(&r, "content-range"), Some("bytes */1"));
    assert_problem(
        &versions(&env, Call::versions(&id).query("limit", "1001").by(&alice)).await,
        400,
        Some("limit"),
    );
    assert_problem(
        &versions(
            &env,
            Call::versions(&id).query("cursor", "bogus").by(&alice),
        )
        .await,
        400,
        Some("cursor"),
    );
}

#[tokio::test]
async fn downloads_carry_headers_ranges_and_conditionals() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(200_000, 7);
    let created = upload(
        &env,
        Call::upload(WF, "docs/résumé v2.pdf", &data)
            .header("content-type", "application/pdf")
            .header("x-artifact-meta-owner", "team-a")
            .query("artifactType", "report")
            .by(&alice),
    )
    .await;
    assert_eq!(created.status(), 201);
    let body = json_body(&created);
    let id = id_of(&body);
    assert_eq!(body["artifact"]["metadata"]["owner"], "team-a");
    assert_eq!(body["artifact"]["artifactType"], "report");
    assert_eq!(
        header(&created, "location"),
        Some(format!("/v1/artifacts/{id}").as_str())
    );
    let sha = body["version"]["sha256"].as_str().unwrap().to_owned();
    for internal in ["wrappedKey", "s3VersionId", "contentId", "inline", "pk"] {
        assert!(
            !body.to_string().contains(internal),
            "{internal} leaked into the API"
        );
    }

    let got = download(&env, Call::download(&id).by(&alice)).await;
    assert_eq!(got.status(), 200);
    assert_eq!(header(&got, "content-type"), Some("application/pdf"));
    assert_eq!(header(&got, "etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(header(&got, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&got, "cache-control"), Some("private"));
    assert_eq!(
        header(&got, "content-disposition"),
        Some("attachment; filename=\"r_sum_ v2.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20v2.pdf")
    );

    // Ranges inside a segment, across a boundary, open-ended and suffix.
    for (range, start, end) in [
        ("bytes=0-0", 0usize, 0usize),
        ("bytes=65530-65545", 65_530, 65_545),
        ("bytes=100000-", 100_000, 199_999),
        ("bytes=-10", 199_990, 199_999),
        ("bytes=131071-131072", 131_071, 131_072),
    ] {
        let r = download(&env, Call::download(&id).header("range", range).by(&alice)).await;
        assert_eq!(r.status(), 206, "{range}");
        assert!(bytes(&r) == data[start..=end], "{range}");
        assert_eq!(
            header(&r, "content-range"),
            Some(format!("bytes {start}-{end}/200000").as_str())
        );
        assert_eq!(
            header(&r, "content-length"),
            Some((end - start + 1).to_string().as_str())
        );
    }
    // A stale If-Range sends the whole thing.
    let r = download(
        &env,
        Call::download(&id)
            .header("range", "bytes=0-9")
            .header("if-range", "\"old\"")
            .by(&alice),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(bytes(&r).len(), data.len());

    let not_modified = download(
        &env,
        Call::download(&id)
            .header("if-none-match", &format!("\"{sha}\""))
            .by(&alice),
    )
    .await;
    assert_eq!(not_modified.status(), 304);
    assert!(bytes(&not_modified).is_empty());
    assert_eq!(
        header(&not_modified, "etag"),
        Some(format!("\"{sha}\"").as_str())
    );
    let changed = download(
        &env,
        Call::download(&id)
            .header("if-none-match", "\"other\"")
            .by(&alice),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let precondition = download(
        &env,
        Call::download(&id)
            .header("if-match", "\"other\"")
            .by(&alice),
    )
    .await;
    assert_problem(&precondition, 412, None);

    // Without new metadata headers, a new version keeps the old metadata and type.
    let v2 = put(&env, &alice, "docs/résumé v2.pdf", b"v2").await;
    assert_eq!(v2["artifact"]["metadata"]["owner"], "team-a");
    assert_eq!(v2["artifact"]["artifactType"], "report");
    assert_eq!(v2["artifact"]["createdAt"], body["artifact"]["createdAt"]);
}
