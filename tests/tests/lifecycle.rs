//! Lifecycle (SPEC §12), against the emulator with the real handlers: delete
//! and restore, delete one version, expiry, holds, keep-versions, the purge
//! (by `?purge=true`, scheduled, and interrupted at every call).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use artifacts::content::content_key;
use artifacts::metadata::{artifact_pk, path_sk, version_sk, workflow_pk};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use harness::{
    BoxError, Call, Caller, TestEnv, bundle, bytes, content, download, header, json_body, list,
    presign, versions,
};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const BASE_URL: &str = "http://127.0.0.1:9000";

fn admin(org: &str) -> Caller {
    Caller::new(org, "artifacts:read artifacts:write artifacts:admin")
}

fn text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(&bytes(response)).into_owned()
}

async fn put(env: &TestEnv, caller: &Caller, wf: &str, path: &str, body: &[u8]) -> (String, u64) {
    let response = harness::upload(env, Call::upload(wf, path, body).by(caller)).await;
    assert_eq!(response.status(), 201, "{}", text(&response));
    let v = json_body(&response);
    (
        v["artifact"]["artifactId"].as_str().unwrap().to_owned(),
        v["version"]["version"].as_u64().unwrap(),
    )
}

async fn get(env: &TestEnv, caller: &Caller, id: &str) -> Response<Body> {
    versions(env, Call::artifact(id).by(caller)).await
}

async fn fetch(env: &TestEnv, caller: &Caller, id: &str, version: Option<u64>) -> Response<Body> {
    let call = Call::download(id).by(caller);
    let call = match version {
        Some(v) => call.query("version", &v.to_string()),
        None => call,
    };
    download(env, call).await
}

async fn link(env: &TestEnv, caller: &Caller, id: &str, version: u64) -> String {
    let response = presign(
        env,
        Call::create_link(id, &json!({ "version": version })).by(caller),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", text(&response));
    let url = json_body(&response)["url"].as_str().unwrap().to_owned();
    url.strip_prefix(&format!("{BASE_URL}/v1/links/"))
        .unwrap()
        .to_owned()
}

async fn patch(env: &TestEnv, caller: &Caller, id: &str, body: Value) -> Response<Body> {
    versions(env, Call::patch_artifact(id, &body).by(caller)).await
}

async fn delete(env: &TestEnv, caller: &Caller, id: &str) -> Response<Body> {
    versions(env, Call::delete_artifact(id).by(caller)).await
}

fn listed_ids(response: &Response<Body>) -> Vec<String> {
    assert_eq!(response.status(), 200, "{}", text(response));
    json_body(response)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["artifactId"].as_str().unwrap().to_owned())
        .collect()
}

fn problem_type(response: &Response<Body>) -> String {
    assert_eq!(
        header(response, "content-type"),
        Some("application/problem+json"),
        "{}",
        text(response)
    );
    json_body(response)["type"].as_str().unwrap().to_owned()
}

fn in_seconds(secs: i64) -> String {
    artifacts::model::rfc3339(time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
}

/// The library index is eventually consistent on real DynamoDB (not on the
/// emulator); listings are read a few times until they agree.
async fn library(env: &TestEnv, caller: &Caller, query: &[(&str, &str)]) -> Vec<String> {
    let mut call = Call::list_library().by(caller);
    for (k, v) in query {
        call = call.query(k, v);
    }
    listed_ids(&list(env, call).await)
}

/// Every S3 object version (and delete marker) of the artifact's content key.
async fn s3_versions(env: &TestEnv, org: &str, id: &str) -> Vec<String> {
    let key = content_key(org, id);
    let out = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix(&key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key.as_str()))
        .filter_map(|v| v.version_id().map(str::to_owned))
        .chain(
            out.delete_markers()
                .iter()
                .filter(|m| m.key() == Some(key.as_str()))
                .filter_map(|m| m.version_id().map(str::to_owned)),
        )
        .collect()
}

/// Every item of a partition.
async fn items(env: &TestEnv, pk: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    env.dynamodb()
        .query()
        .table_name(&env.resources.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

async fn item_exists(env: &TestEnv, pk: &str, sk: &str) -> bool {
    env.dynamodb()
        .get_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

/// Nothing of the artifact remains: content versions, its partition
/// (versions with their wrapped keys, links), its path item, link pointers
/// and use records; and its id, links and path answer 404.
async fn assert_purged(
    env: &TestEnv,
    caller: &Caller,
    wf: &str,
    path: &str,
    id: &str,
    tokens: &[String],
) {
    let org = caller.org.as_str();
    assert!(
        s3_versions(env, org, id).await.is_empty(),
        "content versions remain"
    );
    assert!(
        items(env, &artifact_pk(org, id)).await.is_empty(),
        "artifact items remain"
    );
    assert!(
        !item_exists(env, &workflow_pk(org, wf), &path_sk(path)).await,
        "path item remains"
    );
    let link_partitions = env
        .dynamodb()
        .scan()
        .table_name(&env.resources.table)
        // Refused uses of its links, recorded at most one a minute after the
        // purge began, are records of attempts (TTL 90 days), not content.
        // The artifact's audit history outlives it by design (SPEC §13).
        .filter_expression(
            "artifactId = :id AND pk <> :audit \
             AND NOT (begins_with(sk, :use) AND #status >= :refused)",
        )
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(
            ":audit",
            AttributeValue::S(artifacts::audit::record_pk(org, Some(id))),
        )
        .expression_attribute_values(":use", AttributeValue::S("U#".into()))
        .expression_attribute_values(":refused", AttributeValue::N("400".into()))
        .expression_attribute_values(":id", AttributeValue::S(id.to_owned()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        link_partitions.count(),
        0,
        "items naming the artifact remain: {:?}",
        link_partitions.items()
    );
    for token in tokens {
        let response = download(env, Call::link(token)).await;
        assert_eq!(
            response.status(),
            404,
            "link after purge: {}",
            text(&response)
        );
    }
    assert_eq!(get(env, caller, id).await.status(), 404);
    let listed = list(env, Call::list_workflow(wf).by(caller)).await;
    assert!(!listed_ids(&listed).contains(&id.to_owned()));
}

async fn purge_run(env: &TestEnv) -> Value {
    let event = lambda_runtime::LambdaEvent::new(json!({}), lambda_runtime::Context::default());
    artifacts_purge::handler(&env.store, event).await.unwrap()
}

#[tokio::test]
async fn a_deleted_artifact_is_gone_from_every_read_route_and_restore_brings_it_all_back() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let wf = "wf-trash";
    let v1 = content(100_000, 1); // in S3
    let v2 = b"small second version".to_vec(); // inline
    let (id, _) = put(&env, &alice, wf, "docs/prd.md", &v1).await;
    put(&env, &alice, wf, "docs/prd.md", &v2).await;
    let (other, _) = put(&env, &alice, "wf-other", "keep.txt", b"keep").await;
    let token = link(&env, &alice, &id, 1).await;
    assert_eq!(download(&env, Call::link(&token)).await.status(), 200);

    let missing = get(&env, &alice, "0123456789abcdef0123456789abcdef").await;
    let deleted = delete(&env, &alice, &id).await;
    assert_eq!(deleted.status(), 204, "{}", text(&deleted));

    // Every read route answers exactly as for a missing id.
    let meta = get(&env, &alice, &id).await;
    assert_eq!(meta.status(), 404);
    assert_eq!(bytes(&meta), bytes(&missing), "same body as a missing id");
    assert_eq!(
        versions(&env, Call::versions(&id).by(&alice))
            .await
            .status(),
        404
    );
    assert_eq!(fetch(&env, &alice, &id, None).await.status(), 404);
    assert_eq!(fetch(&env, &alice, &id, Some(1)).await.status(), 404);
    assert_eq!(download(&env, Call::link(&token)).await.status(), 404);
    assert_eq!(
        presign(&env, Call::create_link(&id, &json!({})).by(&alice))
            .await
            .status(),
        404
    );
    assert!(listed_ids(&list(&env, Call::list_workflow(wf).by(&alice)).await).is_empty());
    let lib = library(&env, &alice, &[]).await;
    assert!(!lib.contains(&id) && lib.contains(&other));
    assert_eq!(
        bundle(&env, Call::bundle(wf).by(&alice)).await.status(),
        404
    );

    // The trash lists it, with who and when, and until when.
    let trash = list(
        &env,
        Call::list_library().by(&alice).query("state", "deleted"),
    )
    .await;
    assert_eq!(listed_ids(&trash), vec![id.clone()]);
    let entry = &json_body(&trash)["artifacts"][0];
    assert_eq!(entry["deletedBy"], json!(alice.sub));
    assert!(entry["deletedAt"].is_string() && entry["purgeAfter"].is_string());
    assert!(entry["purgeAfter"].as_str() > entry["deletedAt"].as_str());
    // Another org's trash is its own.
    let eve = Caller::writer("evil");
    assert!(
        library(&env, &eve, &[("state", "deleted")])
            .await
            .is_empty()
    );
    assert_eq!(
        versions(&env, Call::restore(&id).by(&eve)).await.status(),
        404
    );

    // Restore: every version and the link come back.
    let restored = versions(&env, Call::restore(&id).by(&alice)).await;
    assert_eq!(restored.status(), 200, "{}", text(&restored));
    assert_eq!(json_body(&restored)["latestVersion"], json!(2));
    assert_eq!(bytes(&fetch(&env, &alice, &id, Some(1)).await), v1);
    assert_eq!(bytes(&fetch(&env, &alice, &id, Some(2)).await), v2);
    let via_link = download(&env, Call::link(&token)).await;
    assert_eq!(via_link.status(), 200);
    assert_eq!(bytes(&via_link), v1);
    assert_eq!(
        listed_ids(&list(&env, Call::list_workflow(wf).by(&alice)).await),
        vec![id.clone()]
    );
    assert!(
        library(&env, &alice, &[("state", "deleted")])
            .await
            .is_empty()
    );
    assert!(library(&env, &alice, &[]).await.contains(&id));
    assert_eq!(
        bundle(&env, Call::bundle(wf).by(&alice)).await.status(),
        200
    );
    // And the path's next write is its version 3.
    assert_eq!(
        put(&env, &alice, wf, "docs/prd.md", b"three").await,
        (id.clone(), 3)
    );
}

#[tokio::test]
async fn a_write_to_a_trashed_path_is_a_new_artifact_and_restore_then_conflicts() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let (old, _) = put(&env, &alice, "wf", "a/b/c.txt", b"old").await;
    put(&env, &alice, "wf", "a/b/d.txt", b"sibling").await;
    assert_eq!(delete(&env, &alice, &old).await.status(), 204);
    let (new, version) = put(&env, &alice, "wf", "a/b/c.txt", b"new").await;
    assert_ne!(new, old);
    assert_eq!(version, 1);
    let refused = versions(&env, Call::restore(&old).by(&alice)).await;
    assert_eq!(refused.status(), 409, "{}", text(&refused));
    assert!(
        json_body(&refused)["detail"]
            .as_str()
            .unwrap()
            .contains("a/b/c.txt")
    );
    // Still in the trash, untouched; the new artifact serves the path.
    assert_eq!(
        library(&env, &alice, &[("state", "deleted")]).await,
        vec![old.clone()]
    );
    assert_eq!(bytes(&fetch(&env, &alice, &new, None).await), b"new");
    // Once the new one is deleted too, the old one comes back.
    assert_eq!(delete(&env, &alice, &new).await.status(), 204);
    assert_eq!(
        versions(&env, Call::restore(&old).by(&alice))
            .await
            .status(),
        200
    );
    assert_eq!(bytes(&fetch(&env, &alice, &old, None).await), b"old");
    // Names were released and re-claimed: a clashing path is still refused.
    let clash = harness::upload(&env, Call::upload("wf", "A/b/c.txt", b"x").by(&alice)).await;
    assert_eq!(clash.status(), 409, "{}", text(&clash));
}

#[tokio::test]
async fn deleting_version_2_of_3_removes_it_for_good_and_numbers_are_never_reused() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let bodies: Vec<Vec<u8>> = (1..=3).map(|i| content(90_000, i)).collect();
    let mut id = String::new();
    for body in &bodies {
        id = put(&env, &alice, "wf", "scan.json", body).await.0;
    }
    let org = "acme";
    let v2_item = env
        .dynamodb()
        .get_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(artifact_pk(org, &id)))
        .key("sk", AttributeValue::S(version_sk(2)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let v2_s3 = v2_item["s3VersionId"].as_s().unwrap().clone();
    assert!(v2_item.contains_key("wrappedKey"));
    let token = link(&env, &alice, &id, 2).await;

    let response = versions(&env, Call::delete_version(&id, "2").by(&alice)).await;
    assert_eq!(response.status(), 204, "{}", text(&response));

    assert_eq!(bytes(&fetch(&env, &alice, &id, Some(1)).await), bodies[0]);
    assert_eq!(bytes(&fetch(&env, &alice, &id, Some(3)).await), bodies[2]);
    assert_eq!(fetch(&env, &alice, &id, Some(2)).await.status(), 404);
    assert_eq!(download(&env, Call::link(&token)).await.status(), 404);
    let remaining = s3_versions(&env, org, &id).await;
    assert_eq!(remaining.len(), 2);
    assert!(!remaining.contains(&v2_s3), "v2's object version is gone");
    assert!(
        !item_exists(&env, &artifact_pk(org, &id), &version_sk(2)).await,
        "v2's wrapped key is gone"
    );
    let history = json_body(&versions(&env, Call::versions(&id).by(&alice)).await);
    let numbers: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 1]);
    assert_eq!(put(&env, &alice, "wf", "scan.json", b"four").await.1, 4);

    // Deleting the newest moves latestVersion back; its number stays used.
    assert_eq!(
        versions(&env, Call::delete_version(&id, "4").by(&alice))
            .await
            .status(),
        204
    );
    let meta = json_body(&get(&env, &alice, &id).await);
    assert_eq!(meta["latestVersion"], json!(3));
    assert_eq!(
        meta["sha256"],
        json!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            &bodies[2]
        )))
    );
    assert_eq!(bytes(&fetch(&env, &alice, &id, None).await), bodies[2]);
    assert_eq!(put(&env, &alice, "wf", "scan.json", b"five").await.1, 5);

    // A version already deleted, or never written: 404, nothing changes.
    for missing in ["2", "9", "0", "x"] {
        let r = versions(&env, Call::delete_version(&id, missing).by(&alice)).await;
        assert_eq!(r.status(), 404, "{missing}");
    }
    // Deleting the only remaining versions ends in the trash.
    for v in ["5", "3"] {
        assert_eq!(
            versions(&env, Call::delete_version(&id, v).by(&alice))
                .await
                .status(),
            204
        );
    }
    assert_eq!(
        versions(&env, Call::delete_version(&id, "1").by(&alice))
            .await
            .status(),
        204
    );
    assert_eq!(get(&env, &alice, &id).await.status(), 404);
    assert_eq!(
        library(&env, &alice, &[("state", "deleted")]).await,
        vec![id.clone()]
    );
}

#[tokio::test]
async fn past_expires_at_an_artifact_is_410_for_its_org_and_404_for_others_without_a_purge() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let eve = Caller::writer("evil");
    let (id, _) = put(&env, &alice, "wf-exp", "report.html", b"q3 report").await;
    let (kept, _) = put(&env, &alice, "wf-exp", "kept.html", b"kept").await;
    let token = link(&env, &alice, &id, 1).await;

    let at = in_seconds(2);
    let patched = patch(&env, &alice, &id, json!({ "expiresAt": at })).await;
    assert_eq!(patched.status(), 200, "{}", text(&patched));
    assert_eq!(json_body(&patched)["expiresAt"], json!(at));
    assert_eq!(
        patch(&env, &alice, &kept, json!({ "expiresAt": in_seconds(2) }))
            .await
            .status(),
        200
    );
    let unset = patch(&env, &alice, &kept, json!({ "expiresAt": null })).await;
    assert_eq!(json_body(&unset)["expiresAt"], Value::Null);

    // Before: readable everywhere.
    assert_eq!(
        json_body(&get(&env, &alice, &id).await)["expiresAt"],
        json!(at)
    );
    assert_eq!(bytes(&fetch(&env, &alice, &id, None).await), b"q3 report");
    assert_eq!(
        listed_ids(&list(&env, Call::list_workflow("wf-exp").by(&alice)).await).len(),
        2
    );

    tokio::time::sleep(Duration::from_millis(2300)).await;

    let gone = get(&env, &alice, &id).await;
    assert_eq!(gone.status(), 410, "{}", text(&gone));
    assert_eq!(problem_type(&gone), "urn:artifacts:problem:expired");
    assert_eq!(fetch(&env, &alice, &id, None).await.status(), 410);
    assert_eq!(
        versions(&env, Call::versions(&id).by(&alice))
            .await
            .status(),
        410
    );
    assert_eq!(download(&env, Call::link(&token)).await.status(), 410);
    let other = get(&env, &eve, &id).await;
    assert_eq!(other.status(), 404);
    assert_eq!(
        listed_ids(&list(&env, Call::list_workflow("wf-exp").by(&alice)).await),
        vec![kept.clone()]
    );
    assert_eq!(library(&env, &alice, &[]).await, vec![kept.clone()]);
    // The bundle holds only the kept artifact.
    let zip = bundle(&env, Call::bundle("wf-exp").by(&alice)).await;
    assert_eq!(zip.status(), 200);
    let zip = bytes(&zip);
    assert!(zip.windows(9).any(|w| w == b"kept.html"));
    assert!(!zip.windows(11).any(|w| w == b"report.html"));
    // A pin of the expired artifact is refused like a missing one.
    let pinned = bundle(
        &env,
        Call::bundle("wf-exp")
            .by(&alice)
            .query("pin", &format!("{id}:1")),
    )
    .await;
    assert_eq!(pinned.status(), 404);
    // And `expiresAt: null` kept the other.
    assert_eq!(get(&env, &alice, &kept).await.status(), 200);
}

#[tokio::test]
async fn retention_days_on_write_are_capped_and_restart_with_each_version() {
    let env = TestEnv::with_config(|c| c.max_retention_days = 30).await;
    let alice = Caller::writer("acme");
    let response = harness::upload(
        &env,
        Call::upload("wf", "r.txt", b"1")
            .by(&alice)
            .header("x-artifact-retention-days", "90"),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", text(&response));
    let first = json_body(&response)["artifact"].clone();
    let expires = first["expiresAt"].as_str().unwrap().to_owned();
    let expected = in_seconds(30 * 86_400);
    assert_eq!(&expires[..13], &expected[..13], "cut to the 30-day cap");
    assert_eq!(first["retentionDays"], json!(30));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = put(&env, &alice, "wf", "r.txt", b"2").await.0;
    let later = json_body(&get(&env, &alice, &second).await)["expiresAt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(later > expires, "the clock restarts: {later} > {expires}");
    // Explicit expiresAt is kept by later versions.
    let fixed = in_seconds(3600);
    patch(&env, &alice, &second, json!({ "expiresAt": fixed })).await;
    put(&env, &alice, "wf", "r.txt", b"3").await;
    assert_eq!(
        json_body(&get(&env, &alice, &second).await)["expiresAt"],
        json!(fixed)
    );
    // Zero, negative, non-numeric: 400 naming the header, nothing written.
    for bad in ["0", "-1", "ten", "1.5"] {
        let r = harness::upload(
            &env,
            Call::upload("wf", "bad.txt", b"x")
                .by(&alice)
                .header("x-artifact-retention-days", bad),
        )
        .await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(json_body(&r)["field"], json!("x-artifact-retention-days"));
    }
    assert_eq!(
        listed_ids(&list(&env, Call::list_workflow("wf").by(&alice)).await).len(),
        1
    );
}

#[tokio::test]
async fn a_hold_refuses_deletes_and_expiry_until_released() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let boss = admin("acme");
    let (id, _) = put(&env, &alice, "wf", "evidence.pdf", &content(80_000, 7)).await;
    put(&env, &alice, "wf", "evidence.pdf", b"v2").await;

    // Without artifacts:admin: 403 for holds and immediate purge.
    assert_eq!(
        versions(&env, Call::hold(&id, Some("litigation")).by(&alice))
            .await
            .status(),
        403
    );
    assert_eq!(
        versions(
            &env,
            Call::delete_artifact(&id).query("purge", "true").by(&alice)
        )
        .await
        .status(),
        403
    );
    assert_eq!(get(&env, &alice, &id).await.status(), 200);

    let held = versions(&env, Call::hold(&id, Some("case 42")).by(&boss)).await;
    assert_eq!(held.status(), 200, "{}", text(&held));
    assert_eq!(json_body(&held)["hold"]["reason"], json!("case 42"));
    for refused in [
        delete(&env, &alice, &id).await,
        versions(&env, Call::delete_version(&id, "1").by(&alice)).await,
        versions(
            &env,
            Call::delete_artifact(&id).query("purge", "true").by(&boss),
        )
        .await,
    ] {
        assert_eq!(refused.status(), 409);
        assert_eq!(problem_type(&refused), "urn:artifacts:problem:held");
        assert!(
            json_body(&refused)["detail"]
                .as_str()
                .unwrap()
                .contains("case 42")
        );
    }
    patch(&env, &alice, &id, json!({ "expiresAt": in_seconds(1) })).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        get(&env, &alice, &id).await.status(),
        200,
        "held: no expiry"
    );
    assert_eq!(purge_run(&env).await["artifacts"], json!(0));
    assert_eq!(fetch(&env, &alice, &id, Some(1)).await.status(), 200);

    let released = versions(&env, Call::hold(&id, None).by(&boss)).await;
    assert_eq!(released.status(), 200);
    assert_eq!(json_body(&released)["hold"], Value::Null);
    assert_eq!(
        get(&env, &alice, &id).await.status(),
        410,
        "released: expired at once"
    );
    assert_eq!(delete(&env, &alice, &id).await.status(), 204);
}

#[tokio::test]
async fn bad_lifecycle_input_is_a_clear_4xx_and_changes_nothing() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let (id, _) = put(&env, &alice, "wf", "a.txt", b"a").await;
    let before = bytes(&get(&env, &alice, &id).await);
    for (body, field) in [
        (json!({ "retentionDays": 0 }), "retentionDays"),
        (json!({ "retentionDays": -5 }), "retentionDays"),
        (json!({ "retentionDays": "ten" }), "retentionDays"),
        (json!({ "expiresAt": "2001-01-01T00:00:00Z" }), "expiresAt"),
        (json!({ "expiresAt": "next tuesday" }), "expiresAt"),
        (json!({ "keepVersions": 0 }), "keepVersions"),
        (json!({ "colour": "blue" }), "body"),
        (json!({ "metadata": { "Bad Key": "x" } }), "metadata"),
        (json!({ "library": "yes" }), "library"),
        (json!(["expiresAt"]), "body"),
    ] {
        let r = patch(&env, &alice, &id, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}: {}", text(&r));
        assert_eq!(problem_type(&r), "urn:artifacts:problem:bad-request");
        assert_eq!(json_body(&r)["field"], json!(field), "{body}");
    }
    // The wrong media type, and a stale If-Match.
    let plain = versions(
        &env,
        Call::patch_artifact(&id, &json!({ "library": true }))
            .header("content-type", "application/json")
            .by(&alice),
    )
    .await;
    assert_eq!(plain.status(), 400);
    assert_eq!(json_body(&plain)["field"], json!("Content-Type"));
    let stale = versions(
        &env,
        Call::patch_artifact(&id, &json!({ "library": true }))
            .header("if-match", "\"7\"")
            .by(&alice),
    )
    .await;
    assert_eq!(stale.status(), 409);
    assert_eq!(
        bytes(&get(&env, &alice, &id).await),
        before,
        "nothing changed"
    );
    // A matching If-Match applies; library and metadata are merged.
    let ok = versions(
        &env,
        Call::patch_artifact(
            &id,
            &json!({ "library": true, "metadata": { "team": "sec" }, "artifactType": "report" }),
        )
        .header("if-match", "\"1\"")
        .by(&alice),
    )
    .await;
    assert_eq!(ok.status(), 200, "{}", text(&ok));
    let after = json_body(&get(&env, &alice, &id).await);
    assert_eq!(after["library"], json!(true));
    assert_eq!(after["metadata"], json!({ "team": "sec" }));
    assert_eq!(after["artifactType"], json!("report"));
    assert_eq!(after["keepVersions"], Value::Null);
    // A reader may not patch or delete.
    let reader = Caller::reader("acme");
    assert_eq!(
        patch(&env, &reader, &id, json!({ "library": false }))
            .await
            .status(),
        403
    );
    assert_eq!(delete(&env, &reader, &id).await.status(), 403);

    // Restoring a live one; deleting a deleted one.
    let live = versions(&env, Call::restore(&id).by(&alice)).await;
    assert_eq!(live.status(), 409);
    assert!(
        json_body(&live)["detail"]
            .as_str()
            .unwrap()
            .contains("not in the trash")
    );
    assert_eq!(delete(&env, &alice, &id).await.status(), 204);
    let again = delete(&env, &alice, &id).await;
    assert_eq!(again.status(), 409);
    assert!(
        json_body(&again)["detail"]
            .as_str()
            .unwrap()
            .contains("already in the trash")
    );
    let bad_purge = versions(
        &env,
        Call::delete_artifact(&id).query("purge", "yes").by(&alice),
    )
    .await;
    assert_eq!(json_body(&bad_purge)["field"], json!("purge"));
    let bad_state = list(&env, Call::list_library().by(&alice).query("state", "gone")).await;
    assert_eq!(json_body(&bad_state)["field"], json!("state"));

    // Past its trash period, restore is refused (410) and the trash is untouched.
    let short = TestEnv::with_config(|c| c.trash_days = 0).await;
    let (old, _) = put(&short, &alice, "wf", "b.txt", b"b").await;
    assert_eq!(delete(&short, &alice, &old).await.status(), 204);
    let late = versions(&short, Call::restore(&old).by(&alice)).await;
    assert_eq!(late.status(), 410, "{}", text(&late));
    assert_eq!(
        library(&short, &alice, &[("state", "deleted")]).await,
        vec![old]
    );
}

#[tokio::test]
async fn keep_versions_hides_the_older_ones_and_the_purge_removes_them() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let bodies: Vec<Vec<u8>> = (1..=5).map(|i| content(70_000, i)).collect();
    let (id, _) = put(&env, &alice, "wf", "k.bin", &bodies[0]).await;
    assert_eq!(
        patch(&env, &alice, &id, json!({ "keepVersions": 2 }))
            .await
            .status(),
        200
    );
    // The header on write sets it too (and a bad one is a 400 naming it).
    let bad = harness::upload(
        &env,
        Call::upload("wf", "k.bin", b"x")
            .by(&alice)
            .header("x-artifact-keep-versions", "0"),
    )
    .await;
    assert_eq!(json_body(&bad)["field"], json!("x-artifact-keep-versions"));
    let by_header = harness::upload(
        &env,
        Call::upload("wf", "h.bin", b"1")
            .by(&alice)
            .header("x-artifact-keep-versions", "1"),
    )
    .await;
    let h = json_body(&by_header)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(json_body(&by_header)["artifact"]["keepVersions"], json!(1));
    put(&env, &alice, "wf", "h.bin", b"2").await;
    assert_eq!(fetch(&env, &alice, &h, Some(1)).await.status(), 404);
    assert_eq!(bytes(&fetch(&env, &alice, &h, Some(2)).await), b"2");
    for body in &bodies[1..] {
        put(&env, &alice, "wf", "k.bin", body).await;
    }
    let history = json_body(&versions(&env, Call::versions(&id).by(&alice)).await);
    let numbers: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![5, 4]);
    for v in 1..=3 {
        assert_eq!(
            fetch(&env, &alice, &id, Some(v)).await.status(),
            404,
            "v{v}"
        );
    }
    assert_eq!(bytes(&fetch(&env, &alice, &id, Some(4)).await), bodies[3]);
    assert_eq!(
        json_body(&get(&env, &alice, &id).await)["keepVersions"],
        json!(2)
    );

    let report = purge_run(&env).await;
    // Versions 1-3 of k.bin and version 1 of h.bin.
    assert_eq!(report["versions"], json!(4), "{report}");
    assert_eq!(s3_versions(&env, "acme", &id).await.len(), 2);
    for v in 1..=3 {
        assert!(!item_exists(&env, &artifact_pk("acme", &id), &version_sk(v)).await);
    }
    assert_eq!(bytes(&fetch(&env, &alice, &id, Some(5)).await), bodies[4]);
}

#[tokio::test]
async fn purge_true_removes_everything_at_once() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let boss = admin("acme");
    let mut id = String::new();
    for i in 1..=3 {
        id = put(
            &env,
            &alice,
            "wf",
            "secret/leak.env",
            &content(70_000 + usize::from(i), i),
        )
        .await
        .0;
    }
    put(&env, &alice, "wf", "secret/leak.env", b"inline too").await;
    let tokens = [
        link(&env, &alice, &id, 1).await,
        link(&env, &alice, &id, 4).await,
    ];
    assert_eq!(download(&env, Call::link(&tokens[0])).await.status(), 200);
    assert_eq!(s3_versions(&env, "acme", &id).await.len(), 3);

    let r = versions(
        &env,
        Call::delete_artifact(&id).query("purge", "true").by(&boss),
    )
    .await;
    assert_eq!(r.status(), 204, "{}", text(&r));
    assert_purged(&env, &alice, "wf", "secret/leak.env", &id, &tokens).await;
    assert!(
        library(&env, &alice, &[("state", "deleted")])
            .await
            .is_empty()
    );
    // The path is free again.
    assert_eq!(
        put(&env, &alice, "wf", "secret/leak.env", b"clean").await.1,
        1
    );
}

#[tokio::test]
async fn the_scheduled_purge_removes_expired_and_trashed_artifacts() {
    let env = TestEnv::with_config(|c| c.trash_days = 0).await;
    let alice = Caller::writer("acme");
    let (expired, _) = put(&env, &alice, "wf", "old/report.json", &content(90_000, 3)).await;
    put(&env, &alice, "wf", "old/report.json", b"v2").await;
    let token = link(&env, &alice, &expired, 1).await;
    let (trashed, _) = put(&env, &alice, "wf", "old/trash.json", &content(90_000, 4)).await;
    let (live, _) = put(&env, &alice, "wf", "live.json", b"live").await;
    patch(
        &env,
        &alice,
        &expired,
        json!({ "expiresAt": in_seconds(1) }),
    )
    .await;
    assert_eq!(delete(&env, &alice, &trashed).await.status(), 204);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let report = purge_run(&env).await;
    assert_eq!(report["artifacts"], json!(2), "{report}");
    assert_eq!(report["remaining"], json!(false));
    assert_purged(&env, &alice, "wf", "old/report.json", &expired, &[token]).await;
    assert_purged(&env, &alice, "wf", "old/trash.json", &trashed, &[]).await;
    assert_eq!(get(&env, &alice, &live).await.status(), 200);
    // Nothing left to do.
    assert_eq!(purge_run(&env).await["artifacts"], json!(0));
}

/// From the `from`-th AWS call on (counted across DynamoDB and S3), every
/// call fails: the purge is "killed" at that call.
#[derive(Debug, Clone, Default)]
struct KillAt {
    from: usize,
    calls: Arc<AtomicUsize>,
    injected: Arc<AtomicUsize>,
}

impl KillAt {
    fn hit(&self) -> Result<(), BoxError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.from {
            self.injected.fetch_add(1, Ordering::SeqCst);
            Err("injected fault: killed".into())
        } else {
            Ok(())
        }
    }
}

impl Intercept for KillAt {
    fn name(&self) -> &'static str {
        "KillAt"
    }
    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.hit()
    }
}

#[derive(Debug, Clone)]
struct KillAtS3(KillAt);

impl aws_sdk_s3::config::Intercept for KillAtS3 {
    fn name(&self) -> &'static str {
        "KillAtS3"
    }
    fn read_before_transmit(
        &self,
        _: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.hit()
    }
}

fn store_with(env: &TestEnv, kill: &KillAt) -> artifacts::Store {
    let s3 = aws_sdk_s3::config::Builder::from(&env.sdk)
        .force_path_style(true)
        .interceptor(KillAtS3(kill.clone()))
        .build();
    artifacts::Store::with_clients(
        env.store.config.clone(),
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&env.sdk)
                .interceptor(kill.clone())
                .build(),
        ),
        aws_sdk_s3::Client::from_conf(s3),
        aws_sdk_kms::Client::new(&env.sdk),
    )
}

#[tokio::test]
async fn a_purge_killed_at_any_call_leaves_nothing_readable_and_the_next_run_finishes() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let far = Instant::now() + Duration::from_secs(600);
    let mut from = 1;
    loop {
        let path = format!("k{from}/leak.bin");
        let (id, _) = put(&env, &alice, "wf", &path, &content(80_000, 1)).await;
        put(&env, &alice, "wf", &path, &content(80_000, 2)).await;
        put(&env, &alice, "wf", &path, b"inline").await;
        let token = link(&env, &alice, &id, 1).await;
        assert_eq!(download(&env, Call::link(&token)).await.status(), 200);
        // Due now: expired (a live artifact, so the purge trashes it first).
        patch(&env, &alice, &id, json!({ "expiresAt": in_seconds(1) })).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let kill = KillAt {
            from,
            ..KillAt::default()
        };
        let faulty = store_with(&env, &kill);
        let report = faulty
            .purge_due(
                time::OffsetDateTime::now_utc(),
                far,
                100,
                &Default::default(),
            )
            .await;
        let injected = kill.injected.load(Ordering::SeqCst);
        // Killed or not, nothing of it is readable.
        for response in [
            get(&env, &alice, &id).await,
            fetch(&env, &alice, &id, Some(1)).await,
            download(&env, Call::link(&token)).await,
        ] {
            assert!(
                matches!(response.status().as_u16(), 404 | 410),
                "killed at call {from}: {} {}",
                response.status(),
                text(&response)
            );
        }
        assert!(!listed_ids(&list(&env, Call::list_workflow("wf").by(&alice)).await).contains(&id));
        // The next run finishes it.
        let next = purge_run(&env).await;
        assert_eq!(next["failed"], json!(0), "{next}");
        assert_purged(&env, &alice, "wf", &path, &id, &[token]).await;
        if injected == 0 {
            // The whole purge took fewer calls than `from`: every step was cut.
            assert!(report.is_ok());
            eprintln!(
                "purge of one artifact interrupted at each of its {} calls",
                from - 1
            );
            break;
        }
        from += 1;
        assert!(from < 60, "a purge takes a bounded number of calls");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_ten_writers_loses_nothing_and_hides_everything_of_the_deleted_id() {
    let env = Arc::new(TestEnv::new().await);
    let alice = Caller::writer("acme");
    let path = "race/report.txt";
    let (old, _) = put(&env, &alice, "wf", path, b"first").await;
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..10u8 {
        let env = env.clone();
        let alice = alice.clone();
        writers.spawn(async move {
            let mut committed = Vec::new();
            for i in 0..4u8 {
                let body = format!("writer {w} write {i}").into_bytes();
                let response =
                    harness::upload(&env, Call::upload("wf", path, &body).by(&alice)).await;
                if response.status() == 201 {
                    let v = json_body(&response);
                    committed.push((
                        v["artifact"]["artifactId"].as_str().unwrap().to_owned(),
                        v["version"]["version"].as_u64().unwrap(),
                        body,
                    ));
                } else {
                    // Refused writes must be definite, never a lost 201.
                    assert!(response.status().is_client_error(), "{}", text(&response));
                }
            }
            committed
        });
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    let deleted = delete(&env, &alice, &old).await;
    assert_eq!(deleted.status(), 204, "{}", text(&deleted));
    // From here on nothing is readable through the old id, whatever lands.
    let mut committed = vec![(old.clone(), 1, b"first".to_vec())];
    while !writers.is_empty() && started.elapsed() < Duration::from_secs(60) {
        assert_eq!(get(&env, &alice, &old).await.status(), 404);
        assert_eq!(fetch(&env, &alice, &old, None).await.status(), 404);
        assert_eq!(
            versions(&env, Call::versions(&old).by(&alice))
                .await
                .status(),
            404
        );
        if let Some(done) = writers.try_join_next() {
            committed.extend(done.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while let Some(done) = writers.join_next().await {
        committed.extend(done.unwrap());
    }
    let new_ids: std::collections::BTreeSet<String> = committed
        .iter()
        .map(|(id, _, _)| id.clone())
        .filter(|id| *id != old)
        .collect();
    assert!(new_ids.len() <= 1, "one new artifact at most: {new_ids:?}");
    // Every version committed to the new artifact reads back exactly.
    for (id, version, body) in committed.iter().filter(|(id, _, _)| *id != old) {
        assert_eq!(&bytes(&fetch(&env, &alice, id, Some(*version)).await), body);
    }
    // Those committed to the old one come back with restore.
    for id in &new_ids {
        assert_eq!(delete(&env, &alice, id).await.status(), 204);
    }
    let restored = versions(&env, Call::restore(&old).by(&alice)).await;
    assert_eq!(restored.status(), 200, "{}", text(&restored));
    for (id, version, body) in committed.iter().filter(|(id, _, _)| *id == old) {
        assert_eq!(
            &bytes(&fetch(&env, &alice, id, Some(*version)).await),
            body,
            "v{version}"
        );
    }
    let latest = json_body(&restored)["latestVersion"].as_u64().unwrap();
    let history =
        json_body(&versions(&env, Call::versions(&old).by(&alice).query("limit", "1000")).await);
    assert_eq!(
        history["versions"].as_array().unwrap().len() as u64,
        latest,
        "contiguous"
    );
    eprintln!(
        "race: {} versions in the trashed artifact, {} in the new one",
        latest,
        committed.iter().filter(|(id, _, _)| *id != old).count()
    );
}

/// Counts AWS calls by operation.
#[derive(Debug, Clone, Default)]
struct Count(Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>);

impl Count {
    fn add(&self, op: String) {
        *self.0.lock().unwrap().entry(op).or_default() += 1;
    }
    fn take(&self) -> std::collections::BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Count {
    fn name(&self) -> &'static str {
        "Count"
    }
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.add(format!("dynamodb:{}", harness::target_operation(context)));
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct CountS3(Count);

impl aws_sdk_s3::config::Intercept for CountS3 {
    fn name(&self) -> &'static str {
        "CountS3"
    }
    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let uri = request.uri();
        let op = match request.method() {
            "GET" if uri.contains("versions") => "ListObjectVersions",
            "POST" if uri.contains("delete") => "DeleteObjects",
            "DELETE" => "DeleteObject",
            other => other,
        };
        self.0.add(format!("s3:{op}"));
        Ok(())
    }
}

/// Not an assertion of speed: prints the calls one purge costs for N
/// versions and the purge throughput on this emulator (README figures).
#[tokio::test]
async fn purge_cost_and_throughput() {
    let env = TestEnv::with_config(|c| c.trash_days = 0).await;
    let alice = Caller::writer("acme");
    let count = Count::default();
    let s3 = aws_sdk_s3::config::Builder::from(&env.sdk)
        .force_path_style(true)
        .interceptor(CountS3(count.clone()))
        .build();
    let counted = artifacts::Store::with_clients(
        env.store.config.clone(),
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&env.sdk)
                .interceptor(count.clone())
                .build(),
        ),
        aws_sdk_s3::Client::from_conf(s3),
        aws_sdk_kms::Client::new(&env.sdk),
    );
    let far = Instant::now() + Duration::from_secs(600);
    for n in [1u8, 10, 100] {
        let path = format!("cost/n{n}.bin");
        let mut id = String::new();
        for i in 0..n {
            id = put(&env, &alice, "wf", &path, &content(66_000, i)).await.0;
        }
        link(&env, &alice, &id, 1).await;
        assert_eq!(delete(&env, &alice, &id).await.status(), 204);
        count.take();
        let report = counted
            .purge_due(
                time::OffsetDateTime::now_utc(),
                far,
                100,
                &Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(report.artifacts, 1);
        let calls = count.take();
        let total: usize = calls.values().sum();
        eprintln!("purge of 1 artifact, {n} S3 versions, 1 link: {total} calls {calls:?}");
        assert_purged(&env, &alice, "wf", &path, &id, &[]).await;
    }
    // Throughput: 50 trashed artifacts of 2 versions (one in S3, one inline).
    let mut ids = Vec::new();
    for i in 0..50u8 {
        let path = format!("many/{i}.bin");
        let id = put(&env, &alice, "wf", &path, &content(66_000, i)).await.0;
        put(&env, &alice, "wf", &path, b"inline").await;
        assert_eq!(delete(&env, &alice, &id).await.status(), 204);
        ids.push(id);
    }
    let started = Instant::now();
    let report = env
        .store
        .purge_due(
            time::OffsetDateTime::now_utc(),
            far,
            1000,
            &Default::default(),
        )
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(report.artifacts, 50, "{report:?}");
    eprintln!(
        "purge throughput: {} artifacts in {secs:.2} s = {:.1} artifacts/s",
        report.artifacts,
        report.artifacts as f64 / secs
    );
}

// ---------------------------------------------------------------------------
// Retention and keep-versions in the uploads body (SPEC §12).

/// Open an upload session through the route with `body` (plus `size`), PUT
/// `data` to its presigned URL and deliver S3's event for that object
/// version to the ingest function; the committed artifact's id.
async fn upload_and_ingest(env: &TestEnv, caller: &Caller, mut body: Value, data: &[u8]) -> String {
    use artifacts::uploads::{PresignedUpload, staging_key};
    use lambda_runtime::{Context, LambdaEvent};
    body["size"] = json!(data.len());
    let r = presign(env, Call::create_upload("wf", &body).by(caller)).await;
    assert_eq!(r.status(), 201, "{}", text(&r));
    let created = json_body(&r);
    let upload = PresignedUpload {
        upload_id: created["uploadId"].as_str().unwrap().into(),
        url: created["url"].as_str().unwrap().into(),
        method: "PUT",
        headers: serde_json::from_value(created["headers"].clone()).unwrap(),
        expires_at: String::new(),
    };
    let put = harness::put_presigned(&upload, data.to_vec()).await;
    assert_eq!(put.status(), 200);
    let key = staging_key(&caller.org, &upload.upload_id);
    let head = env
        .s3()
        .head_object()
        .bucket(&env.resources.bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let mut event: Value = serde_json::from_str(include_str!("../../events/s3-put.json")).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = json!(env.resources.bucket);
    s3["bucket"]["arn"] = json!(format!("arn:aws:s3:::{}", env.resources.bucket));
    s3["object"]["key"] = json!(key);
    s3["object"]["size"] = json!(data.len());
    s3["object"]["versionId"] = json!(head.version_id().unwrap());
    let report = artifacts_ingest::handler(&env.store, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(report["records"][0]["outcome"], "committed", "{report}");
    report["records"][0]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn retention_days_and_keep_versions_in_an_upload_body_reach_the_artifact() {
    let env = TestEnv::with_config(|c| c.max_retention_days = 30).await;
    let alice = Caller::writer("acme");

    let id = upload_and_ingest(
        &env,
        &alice,
        json!({ "path": "scans/q3.json", "retentionDays": 3 }),
        b"scan",
    )
    .await;
    let meta = json_body(&get(&env, &alice, &id).await);
    let expires = meta["expiresAt"].as_str().unwrap().to_owned();
    let expected = in_seconds(3 * 86_400);
    assert_eq!(&expires[..13], &expected[..13], "3 days ahead: {expires}");
    assert_eq!(meta["retentionDays"], json!(3));
    assert!(fetch(&env, &alice, &id, None).await.status() == 200);

    // Over ARTIFACTS_MAX_RETENTION_DAYS: cut to the cap.
    let capped = upload_and_ingest(
        &env,
        &alice,
        json!({ "path": "scans/long.json", "retentionDays": 90 }),
        b"long",
    )
    .await;
    let meta = json_body(&get(&env, &alice, &capped).await);
    let expected = in_seconds(30 * 86_400);
    assert_eq!(
        &meta["expiresAt"].as_str().unwrap()[..13],
        &expected[..13],
        "cut to the 30-day cap: {meta}"
    );
    assert_eq!(meta["retentionDays"], json!(30));

    // keepVersions: an upload as the third version keeps the two newest.
    let (kept, _) = put(&env, &alice, "wf", "k.txt", b"1").await;
    put(&env, &alice, "wf", "k.txt", b"2").await;
    let third = upload_and_ingest(
        &env,
        &alice,
        json!({ "path": "k.txt", "keepVersions": 2 }),
        b"3",
    )
    .await;
    assert_eq!(third, kept);
    let listed = json_body(&versions(&env, Call::versions(&kept).by(&alice)).await);
    let numbers: Vec<u64> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 2], "{listed}");
    assert_eq!(
        fetch(&env, &alice, &kept, Some(1)).await.status(),
        404,
        "version 1 is hidden at once"
    );
}

#[tokio::test]
async fn bad_retention_or_keep_versions_in_an_upload_body_is_a_400_and_creates_nothing() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    for (bad, field) in [
        (json!(0), "retentionDays"),
        (json!(-3), "retentionDays"),
        (json!("ten"), "retentionDays"),
        (json!("3"), "retentionDays"),
        (json!(1.5), "retentionDays"),
        (json!(0), "keepVersions"),
        (json!(-1), "keepVersions"),
        (json!("two"), "keepVersions"),
        (json!(1_000_001), "keepVersions"),
    ] {
        let body = json!({ "path": "bad.txt", "size": 1, field: bad });
        let r = presign(&env, Call::create_upload("wf", &body).by(&alice)).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(json_body(&r)["field"], json!(field), "{body}: {}", text(&r));
    }
    // No session was recorded, nothing was staged, nothing is listed.
    let sessions = env
        .dynamodb()
        .scan()
        .table_name(&env.resources.table)
        .filter_expression("sk = :upload")
        .expression_attribute_values(":upload", AttributeValue::S("#UPLOAD".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.count(), 0, "{:?}", sessions.items());
    let staged = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix("incoming/")
        .send()
        .await
        .unwrap();
    assert!(staged.versions().is_empty());
    assert!(listed_ids(&list(&env, Call::list_workflow("wf").by(&alice)).await).is_empty());
}
