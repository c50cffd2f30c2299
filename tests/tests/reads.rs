//! One metadata read per download of the latest version (issue 11): the
//! artifact items carry a copy of the latest version's record
//! (`artifacts::metadata::LATEST`), written by the version commit. These
//! tests check that a download through the copy answers exactly what the
//! two-read path (artifact item, then version item) answers, that every
//! item without a current copy falls back to that path, that the lifecycle
//! gate still applies, and count the calls a download makes.

use std::collections::BTreeMap;

use artifacts::metadata::{ARTIFACT_SK, Attestation, LATEST, artifact_pk, path_sk, workflow_pk};
use aws_sdk_dynamodb::types::AttributeValue;
use harness::{
    Call, CallCounter, Caller, Clients, TestEnv, bytes, content, header, json_body, upload,
    versions,
};
use lambda_http::{Body, Response};
use serde_json::json;

const WF: &str = "wf-reads";

fn text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(&bytes(response)).into_owned()
}

async fn put(env: &TestEnv, caller: &Caller, path: &str, body: &[u8]) -> String {
    let r = upload(env, Call::upload(WF, path, body).by(caller)).await;
    assert_eq!(r.status(), 201, "{}", text(&r));
    json_body(&r)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// What a download answered, for comparing two answers.
fn answer(r: &Response<Body>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<_> = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    headers.sort();
    (r.status().as_u16(), headers, bytes(r))
}

/// Remove the copy from both artifact items, as items written before it
/// existed are.
async fn forget_copy(env: &TestEnv, org: &str, id: &str, path: &str) {
    for (pk, sk) in [
        (artifact_pk(org, id), ARTIFACT_SK.to_owned()),
        (workflow_pk(org, WF), path_sk(path)),
    ] {
        env.dynamodb()
            .update_item()
            .table_name(&env.resources.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .update_expression("REMOVE #latest")
            .expression_attribute_names("#latest", LATEST)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_latest_version_is_one_get_item_and_answers_as_the_two_reads_do() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let path = "dist/app.bin";
    let bodies: Vec<_> = (1..=3).map(|i| content(100_000 + i, i as u8)).collect();
    let mut id = String::new();
    for body in &bodies {
        id = put(&env, &alice, path, body).await;
    }
    let calls = CallCounter::default();
    let store = calls.store(&env, Clients::Both);
    let get = |call: Call| {
        let request = call.by(&alice).request();
        let store = &store;
        async move { artifacts_download::handler(store, request).await.unwrap() }
    };
    calls.take();

    // The latest, by id and by path: one GetItem, one Decrypt, the record.
    let one_read = counts(&[("GetItem", 1), ("PutItem", 1), ("Decrypt", 1)]);
    let latest = get(Call::download(&id)).await;
    assert_eq!(latest.status(), 200, "{}", text(&latest));
    assert_eq!(bytes(&latest), bodies[2]);
    assert_eq!(header(&latest, "x-artifact-version"), Some("3"));
    assert!(header(&latest, "x-artifact-attestation").is_some());
    assert_eq!(calls.take(), one_read);
    let by_path = get(Call::by_path(WF, path)).await;
    assert_eq!(answer(&by_path), answer(&latest));
    assert_eq!(calls.take(), one_read);

    // The same record as the version item holds (the envelope stays there).
    let (_, copy) = env
        .store
        .version(&alice.principal(), &id, None)
        .await
        .unwrap();
    let item = env
        .store
        .metadata
        .version("acme", &id, 3)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(item.attestation, Some(Attestation::Envelope(_))));
    assert_eq!(copy.attestation, Some(Attestation::OnVersionItem));
    assert_eq!(
        copy,
        artifacts::metadata::VersionRecord {
            attestation: Some(Attestation::OnVersionItem),
            ..item
        }
    );

    // Named versions read the version item (both reads at once): the old
    // ones, and the latest named by number, which answers as above.
    let two_reads = counts(&[("GetItem", 2), ("PutItem", 1), ("Decrypt", 1)]);
    for (n, body) in bodies.iter().enumerate() {
        let v = (n + 1).to_string();
        let r = get(Call::download(&id).query("version", &v)).await;
        assert_eq!(r.status(), 200, "{}", text(&r));
        assert_eq!(bytes(&r), *body, "version {v}");
        assert_eq!(header(&r, "x-artifact-version"), Some(v.as_str()));
        assert_eq!(calls.take(), two_reads, "version {v}");
        if n == 2 {
            assert_eq!(answer(&r), answer(&latest));
        }
    }
    // The attestation route still serves the envelope of the latest.
    let envelope = versions(&env, Call::attestation(&id, "3").by(&alice)).await;
    assert_eq!(envelope.status(), 200, "{}", text(&envelope));
    assert_eq!(
        Some(text(&envelope)),
        match item.attestation {
            Some(Attestation::Envelope(e)) => Some(e),
            _ => None,
        }
    );

    // Items without the copy (written before it existed): the two reads,
    // the same answer.
    forget_copy(&env, "acme", &id, path).await;
    calls.take();
    let old = get(Call::download(&id)).await;
    assert_eq!(answer(&old), answer(&latest));
    assert_eq!(calls.take(), two_reads);
    let old = get(Call::by_path(WF, path)).await;
    assert_eq!(answer(&old), answer(&latest));
    assert_eq!(calls.take(), two_reads);

    // The next commit writes the copy again.
    let v4 = content(100_004, 4);
    put(&env, &alice, path, &v4).await;
    calls.take();
    let r = get(Call::download(&id)).await;
    assert_eq!(bytes(&r), v4);
    assert_eq!(calls.take(), one_read);

    // Inline content is not copied: two reads, the right bytes.
    let small = put(&env, &alice, "small.txt", b"small and inline").await;
    calls.take();
    let r = get(Call::download(&small)).await;
    assert_eq!(bytes(&r), b"small and inline");
    assert_eq!(calls.take(), two_reads);
}

#[tokio::test]
async fn lifecycle_changes_never_serve_a_stale_copy() {
    let env = TestEnv::new().await;
    let alice = Caller::new("acme", "artifacts:read artifacts:write artifacts:admin");
    let eve = Caller::writer("evil");
    let path = "report.bin";
    let (v1, v2) = (content(90_000, 1), content(90_001, 2));
    put(&env, &alice, path, &v1).await;
    let id = put(&env, &alice, path, &v2).await;
    let fetch = |call: Call| async { harness::download(&env, call).await };

    // Deleting the latest version: the artifact falls back to version 1,
    // never the copy of version 2.
    let r = versions(&env, Call::delete_version(&id, "2").by(&alice)).await;
    assert_eq!(r.status(), 204, "{}", text(&r));
    for call in [Call::download(&id), Call::by_path(WF, path)] {
        let r = fetch(call.by(&alice)).await;
        assert_eq!(r.status(), 200, "{}", text(&r));
        assert_eq!(bytes(&r), v1);
        assert_eq!(header(&r, "x-artifact-version"), Some("1"));
    }
    let gone = fetch(Call::download(&id).query("version", "2").by(&alice)).await;
    assert_eq!(gone.status(), 404);

    // Expired with the copy in place (set behind the API's back, so no
    // lifecycle put drops it): the same 410, and another org's 404.
    let v3 = content(90_003, 3);
    put(&env, &alice, path, &v3).await;
    let past = "2020-01-01T00:00:00.000Z";
    for (pk, sk) in [
        (artifact_pk("acme", &id), ARTIFACT_SK.to_owned()),
        (workflow_pk("acme", WF), path_sk(path)),
    ] {
        let out = env
            .dynamodb()
            .update_item()
            .table_name(&env.resources.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .update_expression("SET retainUntil = :past")
            .condition_expression("attribute_exists(#latest)")
            .expression_attribute_names("#latest", LATEST)
            .expression_attribute_values(":past", AttributeValue::S(past.into()))
            .send()
            .await;
        assert!(out.is_ok(), "the copy is on the item: {out:?}");
    }
    let expired = fetch(Call::download(&id).by(&alice)).await;
    assert_eq!(expired.status(), 410, "{}", text(&expired));
    // By path too (the path item is read there), and its metadata.
    let by_path = fetch(Call::by_path(WF, path).by(&alice)).await;
    assert_eq!(by_path.status(), 410, "{}", text(&by_path));
    let meta = fetch(Call::by_path(WF, path).query("meta", "").by(&alice)).await;
    assert_eq!(meta.status(), 410, "{}", text(&meta));
    let missing = fetch(Call::download(&artifacts::model::new_artifact_id()).by(&eve)).await;
    let theirs = fetch(Call::download(&id).by(&eve)).await;
    assert_eq!(theirs.status(), 404);
    assert_eq!(bytes(&theirs), bytes(&missing));

    // Trashed (the by-id item keeps its copy): the plain 404 of a missing
    // id, by id and by path.
    let other = put(&env, &alice, "other.bin", &v1).await;
    let r = versions(&env, Call::delete_artifact(&other).by(&alice)).await;
    assert_eq!(r.status(), 204, "{}", text(&r));
    let trashed = fetch(Call::download(&other).by(&alice)).await;
    assert_eq!(trashed.status(), 404);
    let missing = fetch(Call::download(&artifacts::model::new_artifact_id()).by(&alice)).await;
    assert_eq!(bytes(&trashed), bytes(&missing));
    let by_path = fetch(Call::by_path(WF, "other.bin").by(&alice)).await;
    assert_eq!(by_path.status(), 404);

    // A patch rewrites the items without the copy: still the right bytes.
    let kept = put(&env, &alice, "kept.bin", &v2).await;
    let r = versions(
        &env,
        Call::patch_artifact(&kept, &json!({"metadata": {"team": "infra"}})).by(&alice),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    let r = fetch(Call::download(&kept).by(&alice)).await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    assert_eq!(bytes(&r), v2);
}
