//! The audit trail (SPEC §13, issue 14) against the emulator, through the
//! real handlers: what each action records, atomicity under injected
//! faults, the read routes' paging, filters and cursors, and what the real
//! HTTP listener puts into records.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use artifacts::audit::{Action, Actor, Origin, Record, Subject};
use artifacts::uploads::{PresignedUpload, staging_key};
use harness::edge::{self, Edge};
use harness::{
    Call, CallCounter, Caller, Clients, DynamoDbFault, TestEnv, bundle, bytes, download, json_body,
    presign, upload, versions,
};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const WF: &str = "wf-audit";
const BASE_URL: &str = "http://127.0.0.1:9000";

fn admin(org: &str) -> Caller {
    Caller::new(org, "artifacts:read artifacts:write artifacts:admin")
}

fn text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(&bytes(response)).into_owned()
}

async fn put(env: &TestEnv, caller: &Caller, path: &str, body: &[u8]) -> Value {
    let r = upload(env, Call::upload(WF, path, body).by(caller)).await;
    assert_eq!(r.status(), 201, "{}", text(&r));
    json_body(&r)
}

/// Every record of one artifact, newest first, following cursors.
async fn history(env: &TestEnv, caller: &Caller, artifact_id: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut call = Call::artifact_audit(artifact_id)
            .by(caller)
            .query("limit", "5");
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let r = versions(env, call).await;
        assert_eq!(r.status(), 200, "{}", text(&r));
        let page = json_body(&r);
        all.extend(page["records"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

/// The whole org feed, newest first, with `filters`, in pages of `limit`.
async fn feed(
    env: &TestEnv,
    caller: &Caller,
    filters: &[(&str, &str)],
    limit: usize,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut call = Call::org_audit()
            .by(caller)
            .query("limit", &limit.to_string());
        for (k, v) in filters {
            call = call.query(k, v);
        }
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let r = versions(env, call).await;
        assert_eq!(r.status(), 200, "{}", text(&r));
        let page = json_body(&r);
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= limit);
        all.extend(records.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
    panic!("the feed never ended");
}

/// (action, actor, version, outcome) of a record.
fn summary(r: &Value) -> (String, String, Option<u64>, String) {
    let actor = match (
        &r["actor"]["sub"],
        &r["actor"]["linkId"],
        &r["actor"]["system"],
    ) {
        (Value::String(s), _, _) => format!("sub:{s}"),
        (_, Value::String(l), _) => format!("link:{l}"),
        (_, _, Value::String(n)) => format!("system:{n}"),
        _ => panic!("no actor in {r}"),
    };
    (
        r["action"].as_str().unwrap().to_owned(),
        actor,
        r["version"].as_u64(),
        r["outcome"].as_str().unwrap().to_owned(),
    )
}

fn token_of(created: &Value) -> String {
    let url = created["url"].as_str().unwrap();
    url.strip_prefix(&format!("{BASE_URL}/v1/links/"))
        .unwrap()
        .to_owned()
}

// ---------------------------------------------------------------------------
// Must show 1 (the actions that exist today) and 3's "records outlive" half.

#[tokio::test]
async fn a_scripted_life_yields_exactly_its_records_in_order() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let sub = format!("sub:{}", alice.sub);

    let v1 = put(&env, &alice, "docs/prd.md", b"version one of the PRD").await;
    let id = v1["artifact"]["artifactId"].as_str().unwrap().to_owned();
    put(
        &env,
        &alice,
        "docs/prd.md",
        b"version two of the PRD, longer",
    )
    .await;

    // Read v1, then a range of v2.
    let r = download(&env, Call::download(&id).by(&alice).query("version", "1")).await;
    assert_eq!(r.status(), 200);
    let r = download(
        &env,
        Call::download(&id).by(&alice).header("range", "bytes=0-6"),
    )
    .await;
    assert_eq!((r.status().as_u16(), bytes(&r)), (206, b"version".to_vec()));

    // A link to v1, used once, then revoked; its use after that is refused.
    let r = presign(
        &env,
        Call::create_link(&id, &json!({"version": 1})).by(&alice),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", text(&r));
    let created = json_body(&r);
    let link_id = created["linkId"].as_str().unwrap().to_owned();
    let token = token_of(&created);
    let r = download(&env, Call::link(&token)).await;
    assert_eq!(
        (r.status().as_u16(), bytes(&r)),
        (200, b"version one of the PRD".to_vec())
    );

    // A bundle of the workflow (this artifact and one more).
    let other = put(&env, &alice, "docs/arch.md", b"architecture").await;
    let other_id = other["artifact"]["artifactId"].as_str().unwrap().to_owned();
    let r = bundle(&env, Call::bundle(WF).by(&alice)).await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    let etag = harness::header(&r, "etag")
        .unwrap()
        .trim_matches('"')
        .to_owned();

    let r = presign(&env, Call::revoke_link(&link_id).by(&alice)).await;
    assert_eq!(r.status(), 204, "{}", text(&r));

    // Refused inside the org: a reader may not write, nor read the audit.
    let mut reader = Caller::reader("acme");
    reader.sub = "reader-1".into();
    let mut writer_only = Caller::new("acme", "artifacts:write");
    writer_only.sub = "writer-2".into();
    let r = upload(&env, Call::upload(WF, "docs/prd.md", b"nope").by(&reader)).await;
    assert_eq!(r.status(), 403);
    let r = download(&env, Call::download(&id).by(&writer_only)).await;
    assert_eq!(r.status(), 403);
    let r = versions(&env, Call::artifact_audit(&id).by(&reader)).await;
    assert_eq!(r.status(), 403);

    let mut records = history(&env, &alice, &id).await;
    records.reverse();
    let got: Vec<_> = records.iter().map(summary).collect();
    let link = format!("link:{link_id}");
    let reader_sub = format!("sub:{}", reader.sub);
    let s =
        |a: &str, who: &str, v: Option<u64>, o: &str| -> (String, String, Option<u64>, String) {
            (a.into(), who.into(), v, o.into())
        };
    let expected = vec![
        s("version.created", &sub, Some(1), "success"),
        s("version.created", &sub, Some(2), "success"),
        s("artifact.downloaded", &sub, Some(1), "success"),
        s("artifact.downloaded", &sub, Some(2), "success"),
        s("link.created", &sub, Some(1), "success"),
        s("link.used", &link, Some(1), "success"),
        s("artifact.bundled", &sub, Some(2), "success"),
        s("link.revoked", &sub, None, "success"),
        s("artifact.downloaded", "sub:writer-2", None, "refused"),
        s("audit.read", &reader_sub, None, "refused"),
    ];
    // The write refusal names no artifact (the writer may not learn its id):
    // it is in the org feed, not in this artifact's history.
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    assert_eq!(got, expected);
    // The details that matter per action.
    assert_eq!(records[3]["range"], "0-6");
    assert!(records[2].get("range").is_none());
    assert_eq!(records[4]["linkId"], link_id.as_str());
    assert_eq!(records[6]["digest"], etag.as_str());
    assert_eq!(records[8]["status"], 403);
    for r in &records {
        assert_eq!(r["artifactId"], id.as_str());
        assert!(r["requestId"].is_string(), "{r}");
        assert!(r.get("token").is_none() && !r.to_string().contains(&token));
    }
    assert_eq!(records[0]["path"], "docs/prd.md");
    assert_eq!(records[0]["workflowId"], WF);

    // The org feed has the bundle record itself and the refused write.
    let all = feed(&env, &alice, &[], 100).await;
    let bundles: Vec<_> = all
        .iter()
        .filter(|r| r["action"] == "bundle.downloaded")
        .collect();
    assert_eq!(bundles.len(), 1);
    assert_eq!(bundles[0]["digest"], etag.as_str());
    let entries: BTreeSet<_> = all
        .iter()
        .filter(|r| r["action"] == "artifact.bundled")
        .map(|r| r["artifactId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(entries, BTreeSet::from([id.clone(), other_id.clone()]));
    let refused_write: Vec<_> = all
        .iter()
        .filter(|r| r["action"] == "version.created" && r["outcome"] == "refused")
        .collect();
    assert_eq!(refused_write.len(), 1);
    assert_eq!(refused_write[0]["path"], "docs/prd.md");
    assert_eq!(refused_write[0]["status"], 403);
    assert_eq!(refused_write[0]["actor"]["sub"], "reader-1");
    // Newest first, strictly.
    let times: Vec<_> = all
        .iter()
        .map(|r| r["time"].as_str().unwrap().to_owned())
        .collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "{times:?}");

    // Other orgs: none of ours in their feed; our id is their plain 404.
    let globex = admin("globex");
    put(&env, &globex, "x.txt", b"theirs").await;
    let theirs = feed(&env, &globex, &[], 100).await;
    assert!(theirs.iter().all(|r| r["artifactId"] != id.as_str()));
    assert_eq!(theirs.len(), 1);
    let r404 = versions(&env, Call::artifact_audit(&id).by(&globex)).await;
    let missing = versions(
        &env,
        Call::artifact_audit("0123456789abcdef0123456789abcdef").by(&globex),
    )
    .await;
    assert_eq!(r404.status(), 404);
    assert_eq!(bytes(&r404), bytes(&missing));

    // The life goes on (SPEC §12): patch, delete, restore, a hold that
    // refuses a delete, delete one version, purge.
    let before = history(&env, &alice, &id).await.len();
    let mut editor = Caller::writer("acme");
    editor.sub = "editor-3".into();
    let r = versions(
        &env,
        Call::patch_artifact(&id, &json!({"metadata": {"team": "docs"}})).by(&alice),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    let r = versions(&env, Call::delete_artifact(&id).by(&alice)).await;
    assert_eq!(r.status(), 204, "{}", text(&r));
    let r = versions(&env, Call::restore(&id).by(&alice)).await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    // Refused: a writer may not hold (403); nobody may delete a held one (409).
    let r = versions(&env, Call::hold(&id, Some("audit")).by(&writer_only)).await;
    assert_eq!(r.status(), 403);
    let r = versions(&env, Call::hold(&id, Some("litigation")).by(&alice)).await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    let r = versions(&env, Call::delete_version(&id, "1").by(&editor)).await;
    assert_eq!(r.status(), 409, "{}", text(&r));
    let r = versions(&env, Call::hold(&id, None).by(&alice)).await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    let r = versions(&env, Call::delete_version(&id, "1").by(&editor)).await;
    assert_eq!(r.status(), 204, "{}", text(&r));
    // A writer may not purge (403); an admin may.
    let r = versions(
        &env,
        Call::delete_artifact(&id)
            .query("purge", "true")
            .by(&writer_only),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = versions(
        &env,
        Call::delete_artifact(&id).query("purge", "true").by(&alice),
    )
    .await;
    assert_eq!(r.status(), 204, "{}", text(&r));
    assert_eq!(
        versions(&env, Call::artifact(&id).by(&alice))
            .await
            .status(),
        404
    );

    // The history outlives the artifact and ends with its purge.
    let mut records = history(&env, &alice, &id).await;
    records.reverse();
    let later: Vec<_> = records[before..].iter().map(summary).collect();
    let expected = vec![
        s("artifact.updated", &sub, None, "success"),
        s("artifact.deleted", &sub, None, "success"),
        s("artifact.restored", &sub, None, "success"),
        s("hold.set", "sub:writer-2", None, "refused"),
        s("hold.set", &sub, None, "success"),
        s("version.deleted", "sub:editor-3", Some(1), "refused"),
        s("hold.released", &sub, None, "success"),
        s("version.deleted", "sub:editor-3", Some(1), "success"),
        s("artifact.purged", "sub:writer-2", None, "refused"),
        // `?purge=true` trashes, then purges: both are recorded.
        s("artifact.deleted", &sub, None, "success"),
        s("artifact.purged", &sub, None, "success"),
    ];
    assert_eq!(later, expected, "{later:#?}");
    let later = &records[before..];
    assert_eq!(later[3]["status"], 403);
    assert_eq!(later[5]["status"], 409);
    assert_eq!(later[8]["status"], 403);
    for r in [
        &later[0], &later[1], &later[2], &later[4], &later[7], &later[10],
    ] {
        // Changes name the artifact in full.
        assert_eq!(
            (r["path"].as_str(), r["workflowId"].as_str()),
            (Some("docs/prd.md"), Some(WF)),
            "{r}"
        );
        assert!(r["requestId"].is_string(), "{r}");
    }
    for r in later {
        assert_eq!(r["artifactId"], id.as_str());
    }
    // Still nobody else's: another org's request is the plain 404.
    let r = versions(&env, Call::artifact_audit(&id).by(&globex)).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_completed_upload_is_recorded_with_its_creator() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let data = vec![7u8; 100_000];
    let body = json!({"path": "big/data.bin", "contentType": "application/octet-stream", "size": data.len()});
    let r = presign(&env, Call::create_upload(WF, &body).by(&alice)).await;
    assert_eq!(r.status(), 201, "{}", text(&r));
    let created = json_body(&r);
    let upload = PresignedUpload {
        upload_id: created["uploadId"].as_str().unwrap().into(),
        url: created["url"].as_str().unwrap().into(),
        method: "PUT",
        headers: serde_json::from_value(created["headers"].clone()).unwrap(),
        expires_at: String::new(),
    };
    let staged = harness::stage(&upload, data).await;
    let key = staging_key("acme", &upload.upload_id);
    env.store.ingest(&key, &staged).await.unwrap();
    // A repeated event commits nothing and records nothing.
    env.store.ingest(&key, &staged).await.unwrap();
    let all = feed(&env, &alice, &[("action", "version.created")], 10).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["actor"]["sub"], alice.sub.as_str());
    assert_eq!(all[0]["path"], "big/data.bin");
    assert_eq!(all[0]["version"], 1);
}

// ---------------------------------------------------------------------------
// Must show 2: atomicity with injected faults.

#[tokio::test]
async fn a_failed_change_transaction_leaves_neither_the_change_nor_its_record() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let v1 = put(&env, &alice, "atomic.txt", b"one").await;
    let id = v1["artifact"]["artifactId"].as_str().unwrap().to_owned();

    // The version commit carries the record: the transaction holds both.
    let fault = DynamoDbFault::new("TransactWriteItems", "#AU#");
    let store = fault.store(&env);
    let r = artifacts_upload::handler(
        &store,
        Call::upload(WF, "atomic.txt", b"two").by(&alice).request(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 500, "{}", text(&r));
    assert!(fault.injected() >= 1, "the commit carried an audit record");
    let a = json_body(&versions(&env, Call::artifact(&id).by(&alice)).await);
    assert_eq!(a["latestVersion"], 1, "no version without its record");

    // A link revocation carries its record too.
    let created = json_body(&presign(&env, Call::create_link(&id, &json!({})).by(&alice)).await);
    let link_id = created["linkId"].as_str().unwrap().to_owned();
    let r = artifacts_presign::handler(&store, Call::revoke_link(&link_id).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(r.status(), 500, "{}", text(&r));
    // Not revoked: the link still serves.
    let r = download(&env, Call::link(&token_of(&created))).await;
    assert_eq!(r.status(), 200);

    let actions: Vec<_> = history(&env, &alice, &id)
        .await
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    // Newest first: no second version, no revocation.
    assert_eq!(
        actions,
        ["link.used", "link.created", "version.created"],
        "{actions:?}"
    );

    // The same writes without the fault: both land, each with its record.
    fault.stop();
    let r = artifacts_upload::handler(
        &store,
        Call::upload(WF, "atomic.txt", b"two").by(&alice).request(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let r = artifacts_presign::handler(&store, Call::revoke_link(&link_id).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let actions: Vec<_> = history(&env, &alice, &id)
        .await
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(&actions[..2], ["link.revoked", "version.created"]);
}

#[tokio::test]
async fn a_read_whose_record_cannot_be_written_sends_no_content() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let secret = b"the content nobody may read unrecorded";
    let v1 = put(&env, &alice, "secret.txt", secret).await;
    let id = v1["artifact"]["artifactId"].as_str().unwrap().to_owned();
    let created = json_body(&presign(&env, Call::create_link(&id, &json!({})).by(&alice)).await);
    let token = token_of(&created);

    let fault = DynamoDbFault::new("PutItem", "#AU#");
    let store = fault.store(&env);
    let bundle_fault = DynamoDbFault::new("BatchWriteItem", "#AU#");
    let bundle_store = bundle_fault.store(&env);
    let calls = [
        Call::download(&id).by(&alice),
        Call::download(&id).by(&alice).header("range", "bytes=4-10"),
        Call::link(&token),
    ];
    for call in calls {
        let r = artifacts_download::handler(&store, call.request())
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        let body = bytes(&r);
        assert!(
            !body.windows(7).any(|w| w == b"content")
                && harness::header(&r, "content-type") == Some("application/problem+json"),
            "no content bytes: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = artifacts_bundle::handler(&bundle_store, Call::bundle(WF).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        harness::header(&r, "content-type"),
        Some("application/problem+json")
    );
    assert!(fault.injected() >= 3);
    assert!(bundle_fault.injected() >= 1);
    // And nothing was recorded as read.
    let reads = history(&env, &alice, &id)
        .await
        .iter()
        .filter(|r| {
            !Action::parse(r["action"].as_str().unwrap())
                .unwrap()
                .is_change()
        })
        .count();
    assert_eq!(reads, 0);
}

#[tokio::test]
async fn a_delete_whose_record_fails_is_not_done() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let v1 = put(&env, &alice, "keep/me.txt", b"still here").await;
    let id = v1["artifact"]["artifactId"].as_str().unwrap().to_owned();

    let fault = DynamoDbFault::new("TransactWriteItems", "#AU#");
    let store = fault.store(&env);
    let r = artifacts_versions::handler(&store, Call::delete_artifact(&id).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(r.status(), 500, "{}", text(&r));
    assert!(fault.injected() >= 1, "the delete carried an audit record");
    // Not in the trash: readable, by id and by path, and not listed as deleted.
    let a = versions(&env, Call::artifact(&id).by(&alice)).await;
    assert_eq!(a.status(), 200, "{}", text(&a));
    assert!(json_body(&a).get("deletedAt").is_none_or(Value::is_null));
    let r = download(&env, Call::download(&id).by(&alice)).await;
    assert_eq!(
        (r.status().as_u16(), bytes(&r)),
        (200, b"still here".to_vec())
    );
    let item = env
        .dynamodb()
        .get_item()
        .table_name(&env.resources.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(artifacts::metadata::artifact_pk(
                "acme", &id,
            )),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(artifacts::metadata::ARTIFACT_SK.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert!(!item.contains_key("deletedAt") && !item.contains_key("purgeAfter"));
    // No record of a delete that did not happen.
    let actions: Vec<_> = history(&env, &alice, &id)
        .await
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["artifact.downloaded", "version.created"]);

    // Without the fault the delete lands with its record.
    fault.stop();
    let r = artifacts_versions::handler(&store, Call::delete_artifact(&id).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", text(&r));
    let newest = &history(&env, &alice, &id).await[0];
    assert_eq!(newest["action"], "artifact.deleted");
}

// ---------------------------------------------------------------------------
// Must show 5: paging and filters against brute force; cursors.

#[tokio::test]
async fn paging_and_filters_match_brute_force_and_cursors_stay_bound() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let ids = [
        "00000000000000000000000000000001",
        "00000000000000000000000000000002",
        "00000000000000000000000000000003",
    ];
    let actions = [
        Action::Downloaded,
        Action::LinkUsed,
        Action::BundleEntry,
        Action::VersionCreated,
    ];
    let mut written: Vec<Record> = Vec::new();
    for i in 0..300usize {
        let actor = if i % 5 == 0 {
            Actor::LinkId(format!("link{}", i % 3))
        } else {
            Actor::Sub(["alice", "bob", "carol"][i % 3].to_owned())
        };
        let record = Record::new(
            actions[i % 4],
            actor,
            Subject {
                artifact_id: Some(ids[i % 3].to_owned()),
                workflow_id: Some(["wf-a", "wf-b"][i % 2].to_owned()),
                path: Some(format!("p/{i}")),
                version: Some(1),
            },
            &Origin::default(),
        );
        written.push(record);
    }
    // Another org's records interleave in time and never show.
    let mut foreign = Vec::new();
    for (i, chunk) in written.chunks(25).enumerate() {
        env.store.record_reads("acme", chunk).await.unwrap();
        let r = Record::new(
            Action::Downloaded,
            Actor::Sub("alice".into()),
            Subject {
                artifact_id: Some(ids[i % 3].to_owned()),
                workflow_id: Some("wf-a".into()),
                ..Subject::default()
            },
            &Origin::default(),
        );
        env.store
            .record_reads("globex", std::slice::from_ref(&r))
            .await
            .unwrap();
        foreign.push(r.record_id);
    }
    let newest_first: Vec<&Record> = written.iter().rev().collect();
    let mid = written[120].time.clone();
    let late = written[250].time.clone();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("action", "link.used")],
        vec![("subject", "bob")],
        vec![("workflowId", "wf-b")],
        vec![
            ("action", "artifact.downloaded"),
            ("workflowId", "wf-a"),
            ("subject", "alice"),
        ],
        vec![("after", &mid)],
        vec![("before", &late)],
        vec![("after", &mid), ("before", &late), ("subject", "carol")],
    ];
    for filters in &cases {
        let expected: Vec<&str> = newest_first
            .iter()
            .filter(|r| matches(r, filters))
            .map(|r| r.record_id.as_str())
            .collect();
        for limit in [13, 100] {
            let got = feed(&env, &alice, filters, limit).await;
            let got: Vec<&str> = got
                .iter()
                .map(|r| r["recordId"].as_str().unwrap())
                .collect();
            assert_eq!(got, expected, "{filters:?} limit {limit}");
        }
        // One artifact's history, same filters.
        let one: Vec<&str> = newest_first
            .iter()
            .filter(|r| r.artifact_id.as_deref() == Some(ids[1]) && matches(r, filters))
            .map(|r| r.record_id.as_str())
            .collect();
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut call = Call::artifact_audit(ids[1]).by(&alice).query("limit", "9");
            for (k, v) in filters {
                call = call.query(k, v);
            }
            if let Some(c) = &cursor {
                call = call.query("cursor", c);
            }
            let page = json_body(&versions(&env, call).await);
            got.extend(
                page["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["recordId"].as_str().unwrap().to_owned()),
            );
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(got, one, "{filters:?} one artifact");
    }

    // Cursors: bound to the org, the filters and the route; changes refused.
    let page = json_body(
        &versions(
            &env,
            Call::org_audit()
                .by(&alice)
                .query("limit", "10")
                .query("action", "link.used"),
        )
        .await,
    );
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let bad = |call: Call| async {
        let r = versions(&env, call).await;
        assert_eq!(r.status(), 400, "{}", text(&r));
        assert_eq!(json_body(&r)["field"], "cursor");
    };
    bad(Call::org_audit()
        .by(&admin("globex"))
        .query("action", "link.used")
        .query("cursor", &cursor))
    .await;
    bad(Call::org_audit().by(&alice).query("cursor", &cursor)).await;
    bad(Call::org_audit()
        .by(&alice)
        .query("action", "artifact.downloaded")
        .query("cursor", &cursor))
    .await;
    bad(Call::artifact_audit(ids[0])
        .by(&alice)
        .query("action", "link.used")
        .query("cursor", &cursor))
    .await;
    let mut forged = cursor.clone().into_bytes();
    let last = forged.len() / 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    bad(Call::org_audit()
        .by(&alice)
        .query("action", "link.used")
        .query("cursor", &String::from_utf8(forged).unwrap()))
    .await;
    bad(Call::org_audit()
        .by(&alice)
        .query("cursor", "bm90IGEgY3Vyc29y"))
    .await;
    // The same cursor in its own query goes on.
    let r = versions(
        &env,
        Call::org_audit()
            .by(&alice)
            .query("action", "link.used")
            .query("limit", "10")
            .query("cursor", &cursor),
    )
    .await;
    assert_eq!(r.status(), 200);

    // globex sees only its own 12.
    let theirs = feed(&env, &admin("globex"), &[], 100).await;
    let theirs: BTreeSet<_> = theirs
        .iter()
        .map(|r| r["recordId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(theirs, foreign.into_iter().collect());

    // Bad filters name their field.
    for (k, v) in [
        ("action", "x"),
        ("after", "noon"),
        ("limit", "0"),
        ("workflowId", "a b"),
    ] {
        let r = versions(&env, Call::org_audit().by(&alice).query(k, v)).await;
        assert_eq!(
            (r.status().as_u16(), json_body(&r)["field"].clone()),
            (400, json!(k))
        );
    }
    // Scope: admin only.
    let r = versions(&env, Call::org_audit().by(&Caller::writer("acme"))).await;
    assert_eq!(r.status(), 403);
}

fn matches(r: &Record, filters: &[(&str, &str)]) -> bool {
    filters.iter().all(|(k, v)| match *k {
        "action" => r.action.as_str() == *v,
        "subject" => r.actor == Actor::Sub((*v).to_owned()),
        "workflowId" => r.workflow_id.as_deref() == Some(*v),
        "after" => r.time.as_str() >= *v,
        "before" => r.time.as_str() < *v,
        _ => true,
    })
}

// ---------------------------------------------------------------------------
// The edge: what the real listener puts into records.

#[tokio::test]
async fn records_carry_the_real_client_address_and_user_agent() {
    let edge = Edge::start().await;
    let client = edge::client();
    let token = edge.token(
        "acme",
        json!("artifacts:read artifacts:write artifacts:admin"),
    );
    let r = client
        .put(edge.url(&format!("/v1/workflows/{WF}/artifacts/edge.txt")))
        .bearer_auth(&token)
        .header("user-agent", "audit-edge-test/1.0")
        .body("over the wire")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client
        .get(edge.url(&format!("/v1/artifacts/{id}/download")))
        .bearer_auth(&token)
        .header("user-agent", "audit-edge-reader/2.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(edge.url(&format!("/v1/artifacts/{id}/audit")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{page}");
    assert_eq!(records[0]["action"], "artifact.downloaded");
    assert_eq!(records[0]["userAgent"], "audit-edge-reader/2.0");
    assert_eq!(records[1]["userAgent"], "audit-edge-test/1.0");
    for r in records {
        assert_eq!(r["sourceIp"], "127.0.0.1");
        assert!(r["requestId"].as_str().is_some_and(|id| !id.is_empty()));
    }
    // The org feed answers on the real listener too; no token, 401.
    let r = client
        .get(edge.url("/v1/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(edge.url("/v1/audit")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

// ---------------------------------------------------------------------------
// Measured: what audit adds to a download.

#[tokio::test]
async fn a_download_costs_one_put_item_and_little_time() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let v = put(&env, &alice, "timed.txt", &vec![b'x'; 10_000]).await;
    let id = v["artifact"]["artifactId"].as_str().unwrap().to_owned();

    // Writes a download makes, counted at the SDK.
    let count = CallCounter::default();
    let store = count.store(&env, Clients::DynamoDb);
    let r = artifacts_download::handler(&store, Call::download(&id).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let calls = count.counts();
    let writes: Vec<_> = calls
        .iter()
        .filter(|(op, _)| !matches!(op.as_str(), "GetItem" | "Query"))
        .map(|(op, n)| (op.as_str(), *n))
        .collect();
    assert_eq!(writes, [("PutItem", 1)], "{calls:?}");
    // The record's size decides its write units (1 WCU per started KB, base
    // table and gsi4 each).
    let item = json_body(
        &versions(
            &env,
            Call::artifact_audit(&id).by(&alice).query("limit", "1"),
        )
        .await,
    );
    let size = item["records"][0].to_string().len();
    println!("audit record ≈ {size} bytes of JSON; one PutItem per download");

    // p50 of the time the record adds: the PutItem alone, timed as served.
    let mut with = Vec::new();
    for _ in 0..40 {
        let t = Instant::now();
        let r = download(&env, Call::download(&id).by(&alice)).await;
        assert_eq!(r.status(), 200);
        with.push(t.elapsed());
    }
    let mut put_only = Vec::new();
    for _ in 0..40 {
        let record = Record::new(
            Action::Downloaded,
            Actor::Sub("alice".into()),
            Subject::default(),
            &Origin::default(),
        );
        let t = Instant::now();
        env.store.record_reads("acme", &[record]).await.unwrap();
        put_only.push(t.elapsed());
    }
    with.sort();
    put_only.sort();
    let p50 = |v: &[Duration]| v[v.len() / 2];
    println!(
        "download p50 {:?} (with audit); audit PutItem p50 {:?} ({:.0}% of the download)",
        p50(&with),
        p50(&put_only),
        100.0 * p50(&put_only).as_secs_f64() / p50(&with).as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// Must show 3: the scheduled purge records the expiry and the purge as
// itself; the history outlives the artifact.

#[tokio::test]
async fn the_scheduled_purge_records_expiry_and_purge_and_the_history_outlives_it() {
    let env = TestEnv::new().await;
    let alice = admin("acme");
    let v1 = put(&env, &alice, "gone.txt", b"soon gone").await;
    let id = v1["artifact"]["artifactId"].as_str().unwrap().to_owned();
    let soon =
        artifacts::model::rfc3339(time::OffsetDateTime::now_utc() + time::Duration::seconds(1));
    let r = versions(
        &env,
        Call::patch_artifact(&id, &json!({"expiresAt": soon})).by(&alice),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Expired: a change is refused with 410, and that is recorded.
    let r = versions(
        &env,
        Call::patch_artifact(&id, &json!({"library": true})).by(&alice),
    )
    .await;
    assert_eq!(r.status(), 410, "{}", text(&r));

    let origin = Origin {
        request_id: Some("purge-run-1".into()),
        ..Origin::default()
    };
    let far = Instant::now() + Duration::from_secs(120);
    let report = env
        .store
        .purge_due(time::OffsetDateTime::now_utc(), far, 100, &origin)
        .await
        .unwrap();
    assert_eq!((report.artifacts, report.failed), (1, 0), "{report:?}");
    // A second run finds nothing and records nothing.
    let again = env
        .store
        .purge_due(time::OffsetDateTime::now_utc(), far, 100, &origin)
        .await
        .unwrap();
    assert_eq!(again.artifacts, 0);
    assert_eq!(
        versions(&env, Call::artifact(&id).by(&alice))
            .await
            .status(),
        404
    );

    let mut records = history(&env, &alice, &id).await;
    records.reverse();
    let sub = format!("sub:{}", alice.sub);
    let got: Vec<_> = records.iter().map(summary).collect();
    let s = |a: &str, who: &str, v: Option<u64>, o: &str| (a.into(), who.into(), v, o.into());
    let expected: Vec<(String, String, Option<u64>, String)> = vec![
        s("version.created", &sub, Some(1), "success"),
        s("artifact.updated", &sub, None, "success"),
        s("artifact.updated", &sub, None, "refused"),
        s("artifact.expired", "system:purge", None, "success"),
        s("artifact.purged", "system:purge", None, "success"),
    ];
    assert_eq!(got, expected, "{got:#?}");
    assert_eq!(records[2]["status"], 410);
    for r in &records[3..] {
        assert_eq!(r["requestId"], "purge-run-1");
        assert_eq!(r["path"], "gone.txt");
        assert!(r["actor"].get("sub").is_none(), "{r}");
    }
    // The system actor is no subject: a filter by subject does not find it.
    let by_purge = feed(&env, &alice, &[("subject", "purge")], 100).await;
    assert!(by_purge.is_empty(), "{by_purge:#?}");
    let purged = feed(&env, &alice, &[("action", "artifact.purged")], 100).await;
    assert_eq!(purged.len(), 1);
    // Still nobody else's: another org's request is the plain 404.
    let r = versions(&env, Call::artifact_audit(&id).by(&admin("globex"))).await;
    assert_eq!(r.status(), 404);
}
