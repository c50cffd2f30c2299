//! Hardening (issue 10): commits whose answer is lost, long version
//! histories, scope claims in API Gateway's forms, link lifetimes and the
//! cost of replayed link tokens — through the real handlers and the emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use artifacts::Store;
use artifacts::links::{self, NewLink};
use artifacts::uploads::{IngestOutcome, UploadRequest, staging_key};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use harness::{
    Call, CallCounter, Caller, Clients, TestEnv, bundle, bytes, download, header, json_body, list,
    upload, versions,
};
use lambda_http::{Body, Response};
use serde_json::Value;

const WF: &str = "wf-hardening";

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i % 251) as u8 ^ seed ^ (i >> 12) as u8)
        .collect()
}

async fn put(env: &TestEnv, caller: &Caller, path: &str, body: &[u8]) -> String {
    let r = upload(env, Call::upload(WF, path, body).by(caller)).await;
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&bytes(&r)));
    json_body(&r)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Download through the API, following a 303 to S3 when there is one.
async fn fetch(env: &TestEnv, caller: &Caller, id: &str) -> Vec<u8> {
    let r = download(env, Call::download(id).by(caller)).await;
    match r.status().as_u16() {
        200 => bytes(&r),
        303 => reqwest::get(header(&r, "location").unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        other => panic!(
            "download answered {other}: {}",
            String::from_utf8_lossy(&bytes(&r))
        ),
    }
}

/// Every S3 object version under `prefix`.
async fn object_versions(env: &TestEnv, prefix: &str) -> Vec<(String, String)> {
    let listing = env
        .s3()
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listing
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_owned(),
                v.version_id().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Item 1: a commit whose answer is lost after DynamoDB applied it.

/// Lets every `TransactWriteItems` reach DynamoDB, then fails its answer:
/// the transaction is applied, the caller sees an error (as when a response
/// is lost and the SDK's retries are exhausted). With `before`, it fails the
/// request before it is sent instead (nothing applied).
#[derive(Debug, Clone, Default)]
struct LostAnswer {
    before: bool,
    /// The request in flight is a `TransactWriteItems` (calls on one client
    /// are sequential in these tests).
    transact: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
}

impl Intercept for LostAnswer {
    fn name(&self) -> &'static str {
        "LostAnswer"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let transact = target.ends_with(".TransactWriteItems");
        self.transact.store(transact, Ordering::SeqCst);
        if transact && self.before {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err("injected fault: DynamoDB unreachable".into());
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.transact.swap(false, Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err("injected fault: the answer was lost after it was sent".into());
        }
        Ok(())
    }
}

/// A store like `env.store` whose DynamoDB client carries `fault`.
fn store_with(env: &TestEnv, fault: &LostAnswer) -> Store {
    harness::intercepted_store(env, Clients::DynamoDb, fault.clone())
}

#[tokio::test]
async fn a_direct_upload_whose_commit_answer_is_lost_keeps_its_content() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let fault = LostAnswer::default();
    let faulty = store_with(&env, &fault);
    // In S3 (over the inline limit), written before the commit.
    let v1 = content(300_000, 1);
    let v2 = content(200_000, 2);
    for (n, data) in [(1u64, &v1), (2, &v2)] {
        let call = Call::upload(WF, "lost.bin", data).by(&alice);
        let r = artifacts_upload::handler(&faulty, call.request())
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "the commit was applied: {}",
            String::from_utf8_lossy(&bytes(&r))
        );
        assert_eq!(json_body(&r)["version"]["version"], n);
        assert_eq!(fault.failed.load(Ordering::SeqCst), n as usize);
    }
    let r = upload(&env, Call::upload(WF, "lost.bin", b"v3").by(&alice)).await;
    let id = json_body(&r)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed: Vec<u64> =
        json_body(&versions(&env, Call::versions(&id).by(&alice)).await)["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect();
    assert_eq!(listed, [3, 2, 1]);
    // Every committed version downloads its exact bytes.
    for (n, data) in [(1, &v1), (2, &v2)] {
        let r = download(
            &env,
            Call::download(&id)
                .query("version", &n.to_string())
                .by(&alice),
        )
        .await;
        assert_eq!(r.status(), 200, "version {n}");
        assert!(bytes(&r) == **data, "version {n}: bytes differ");
    }
    assert_eq!(object_versions(&env, "orgs/").await.len(), 2);
}

#[tokio::test]
async fn a_commit_that_never_reached_dynamodb_discards_its_content() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let fault = LostAnswer {
        before: true,
        ..LostAnswer::default()
    };
    let faulty = store_with(&env, &fault);
    let call = Call::upload(WF, "never.bin", &content(300_000, 3)).by(&alice);
    let r = artifacts_upload::handler(&faulty, call.request())
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(fault.failed.load(Ordering::SeqCst) >= 1);
    // Not committed: no artifact, and the sealed content was removed.
    let listed = json_body(&list(&env, Call::list_workflow(WF).by(&alice)).await);
    assert_eq!(listed["artifacts"].as_array().unwrap().len(), 0);
    assert!(object_versions(&env, "orgs/").await.is_empty());
}

#[tokio::test]
async fn an_ingest_whose_commit_answer_is_lost_keeps_its_content() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let fault = LostAnswer::default();
    let faulty = store_with(&env, &fault);
    let data = content(300_000, 4);
    let upload = env
        .store
        .create_upload(
            &alice.principal(),
            WF,
            UploadRequest {
                path: "ingested.bin".into(),
                artifact_type: None,
                content_type: Some("application/octet-stream".into()),
                size: data.len() as u64,
                sha256: None,
                metadata: None,
                library: None,
                retention_days: None,
                keep_versions: None,
            },
        )
        .await
        .unwrap();
    let staged_version = harness::stage(&upload, data.clone()).await;
    let key = staging_key("acme", &upload.upload_id);

    let outcome = faulty
        .ingest(&key, &staged_version)
        .await
        .expect("the version was committed: nothing to retry");
    let IngestOutcome::Committed {
        artifact_id: id,
        version,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(version, 1);
    assert_eq!(fault.failed.load(Ordering::SeqCst), 1);
    assert!(fetch(&env, &alice, &id).await == data);
    // The staged plaintext is gone; the ciphertext stays.
    assert!(object_versions(&env, &key).await.is_empty());
    assert_eq!(object_versions(&env, "orgs/").await.len(), 1);
    // A repeated event changes nothing.
    let again = env.store.ingest(&key, &staged_version).await.unwrap();
    assert_eq!(again, IngestOutcome::AlreadyDone);
    assert!(fetch(&env, &alice, &id).await == data);
}

// ---------------------------------------------------------------------------
// Item 2: histories longer than one 1 MB Query page.

#[tokio::test]
async fn long_inline_histories_list_in_full_through_both_routes() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    // 60 KiB each: inline (under 64 KiB sealed), 24 of them ≈ 1.4 MB of items.
    let mut id = String::new();
    for n in 0..24u8 {
        id = put(&env, &alice, "notes.md", &content(60 * 1024, n)).await;
    }
    let expected: Vec<u64> = (1..=24).rev().collect();
    let numbers = |page: &Value| -> Vec<u64> {
        page["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };

    let all = json_body(&versions(&env, Call::versions(&id).by(&alice)).await);
    assert_eq!(numbers(&all), expected);
    assert!(all["nextCursor"].is_null());

    // Page by page: a cursor whenever more exists.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut call = Call::versions(&id).query("limit", "20");
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let page = json_body(&versions(&env, call.by(&alice)).await);
        seen.extend(numbers(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    let listed = json_body(
        &list(
            &env,
            Call::list_workflow(WF)
                .query("includeVersions", "true")
                .by(&alice),
        )
        .await,
    );
    let artifacts = listed["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(numbers(&artifacts[0]), expected);
    let library = json_body(
        &list(
            &env,
            Call::list_library()
                .query("includeVersions", "true")
                .by(&alice),
        )
        .await,
    );
    assert_eq!(numbers(&library["artifacts"][0]), expected);
}

// ---------------------------------------------------------------------------
// Item 9: scope and org claims as API Gateway passes array claims.

#[tokio::test]
async fn bracketed_array_claims_authorize_like_strings() {
    let env = TestEnv::new().await;
    let data = content(1000, 9);
    // What API Gateway's JWT authorizer passes for array claims.
    let writer = Caller {
        org: "[acme]".into(),
        sub: "u1".into(),
        scopes: "[artifacts:read artifacts:write]".into(),
    };
    let id = put(&env, &writer, "claims.txt", &data).await;
    let reader = Caller {
        scopes: r#"["artifacts:read"]"#.into(),
        ..Caller::writer("acme")
    };
    assert!(fetch(&env, &reader, &id).await == data);
    // The same artifact, the same org: a plain-string caller sees it too.
    assert!(fetch(&env, &Caller::reader("acme"), &id).await == data);
    // A reader in bracketed form may not write.
    let bracketed_reader = Caller {
        scopes: "[artifacts:read]".into(),
        ..Caller::writer("acme")
    };
    let r = upload(&env, Call::upload(WF, "no.txt", b"x").by(&bracketed_reader)).await;
    assert_eq!(r.status(), 403);
    // Two orgs (or none) in an array claim is no principal at all.
    for org in ["[acme globex]", r#"["acme","globex"]"#, "[]"] {
        let caller = Caller {
            org: org.into(),
            ..Caller::writer("acme")
        };
        let r = download(&env, Call::download(&id).by(&caller)).await;
        assert_eq!(r.status(), 401, "{org}");
    }
}

// ---------------------------------------------------------------------------
// Item 10: presigned URLs of link downloads end with the link (≤ 60 s).

fn expires_param(response: &Response<Body>) -> u64 {
    assert_eq!(response.status(), 303);
    let location = header(response, "location").unwrap();
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "X-Amz-Expires")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| panic!("no X-Amz-Expires in {location}"))
}

#[tokio::test]
async fn link_redirects_expire_with_the_link() {
    let env = TestEnv::with_config(|c| c.direct_max_bytes = 1024).await;
    let alice = Caller::writer("acme");
    let data = content(5000, 10);
    let id = put(&env, &alice, "big.bin", &data).await;
    let me = alice.principal();
    let new = |expires_in| NewLink {
        version: None,
        expires_in: Some(expires_in),
    };

    // Made 30 s ago for 60 s: 30 s left.
    let short = env
        .store
        .create_link(&me, &id, new(60), links::now() - 30, &Default::default())
        .await
        .unwrap();
    let r = download(&env, Call::link(&short.token)).await;
    let expires = expires_param(&r);
    assert!((28..=30).contains(&expires), "{expires}");
    let got = reqwest::get(header(&r, "location").unwrap()).await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(got.bytes().await.unwrap() == data);

    // A long link: the short bound.
    let long = env
        .store
        .create_link(
            &me,
            &id,
            new(7 * 24 * 3600),
            links::now(),
            &Default::default(),
        )
        .await
        .unwrap();
    let r = download(&env, Call::link(&long.token)).await;
    assert_eq!(expires_param(&r), 60);

    // The authenticated route keeps SPEC §6's bound.
    let r = download(&env, Call::download(&id).by(&alice)).await;
    assert_eq!(expires_param(&r), 900);
}

// ---------------------------------------------------------------------------
// Item 11: replayed tokens cost bounded KMS calls and writes.

async fn use_records(env: &TestEnv, org: &str, link_id: &str) -> usize {
    env.dynamodb()
        .query()
        .table_name(&env.resources.table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :u)")
        .expression_attribute_values(":pk", AttributeValue::S(links::link_pk(org, link_id)))
        .expression_attribute_values(":u", AttributeValue::S("U#".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .len()
}

#[tokio::test]
async fn replayed_expired_tokens_write_once_a_minute_and_are_rate_limited() {
    let mut env = TestEnv::new().await;
    let verifies = CallCounter::default();
    env.store = verifies.store(&env, Clients::Kms);
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "prd.md", b"the content").await;
    let me = alice.principal();
    let new = NewLink {
        version: None,
        expires_in: Some(60),
    };
    // Expired a minute ago (and still validly signed).
    let expired = env
        .store
        .create_link(&me, &id, new, links::now() - 120, &Default::default())
        .await
        .unwrap();
    let live = env
        .store
        .create_link(
            &me,
            &id,
            NewLink::default(),
            links::now(),
            &Default::default(),
        )
        .await
        .unwrap();
    let before = verifies.count("VerifyMac");

    // 20 GETs, well inside the burst: each answered 410, one record (two
    // if the minute turned meanwhile).
    let start = links::now();
    for _ in 0..20 {
        let r = download(&env, Call::link(&expired.token)).await;
        assert_eq!(r.status(), 410);
    }
    let minutes = (links::now() / 60 - start / 60 + 1) as usize;
    let records = use_records(&env, "acme", &expired.link_id).await;
    assert!(
        (1..=minutes).contains(&records),
        "{records} use records for 20 refused uses"
    );

    // Past the burst: 429 before any KMS call, with Retry-After.
    let mut answered = 20;
    let mut limited = None;
    for _ in 0..10 * links::LINK_BURST {
        let r = download(&env, Call::link(&expired.token)).await;
        match r.status().as_u16() {
            410 => answered += 1,
            429 => {
                limited = Some(r);
                break;
            }
            other => panic!("{other}"),
        }
    }
    let limited = limited.expect("the limiter refused past its bound");
    assert_eq!(
        header(&limited, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!(json_body(&limited)["status"], 429);
    let retry: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(answered >= links::LINK_BURST as usize, "{answered}");
    assert_eq!(
        verifies.count("VerifyMac") - before,
        answered,
        "one VerifyMac per admitted request, none for the refused one"
    );
    assert!(use_records(&env, "acme", &expired.link_id).await <= minutes + 1);
    // Another link is not affected.
    let r = download(&env, Call::link(&live.token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(bytes(&r), b"the content");
}

#[test]
fn the_limiter_refills_at_its_rate() {
    use std::time::{Duration, Instant};
    let guard = links::LinkGuard::default();
    let t0 = Instant::now();
    for _ in 0..links::LINK_BURST {
        guard.admit("a", t0).unwrap();
    }
    let wait = guard.admit("a", t0).unwrap_err();
    assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
    // Another token has its own bucket.
    guard.admit("b", t0).unwrap();
    // One second later, LINK_RATE_PER_SEC more.
    let t1 = t0 + Duration::from_secs(1);
    for _ in 0..links::LINK_RATE_PER_SEC {
        guard.admit("a", t1).unwrap();
    }
    assert!(guard.admit("a", t1).is_err());
    // Memory stays bounded however many tokens are seen.
    for i in 0..links::GUARD_ENTRIES + 10 {
        guard.admit(&format!("t{i}"), t1).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Item 14: bundle parameters, failed multipart completions, orphan sweep.

#[tokio::test]
async fn the_bundle_route_rejects_unknown_and_repeated_parameters() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    put(&env, &alice, "docs/a.md", b"a").await;
    put(&env, &alice, "src/b.rs", b"b").await;
    for (raw, field, named) in [
        ("prefx=docs%2F", "query", "prefx"),
        ("Prefix=docs%2F", "query", "Prefix"),
        ("prefix=docs%2F&prefix=src%2F", "prefix", "prefix"),
        (
            "artifactType=file&artifactType=prd",
            "artifactType",
            "artifactType",
        ),
    ] {
        let r = bundle(&env, Call::bundle(WF).raw_query(raw).by(&alice)).await;
        assert_eq!(r.status(), 400, "{raw}");
        assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
        let problem = json_body(&r);
        assert_eq!(problem["field"], field, "{raw}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(named),
            "{raw}: {problem}"
        );
    }
    // Known parameters still work, pins repeat.
    let r = bundle(
        &env,
        Call::bundle(WF).raw_query("prefix=docs%2F").by(&alice),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Without read scope: 403 before any parameter is looked at.
    let none = Caller::new("acme", "");
    let r = bundle(&env, Call::bundle(WF).raw_query("prefx=x").by(&none)).await;
    assert_eq!(r.status(), 403);
}

/// Fails every S3 `CompleteMultipartUpload` before it is sent.
#[derive(Debug)]
struct CompletionOutage;

impl aws_sdk_s3::config::Intercept for CompletionOutage {
    fn name(&self) -> &'static str {
        "CompletionOutage"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request();
        let completes = request.method() == "POST" && request.uri().contains("uploadId=");
        if completes {
            Err("injected fault: CompleteMultipartUpload failed".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_failed_multipart_completion_is_aborted() {
    let env = TestEnv::with_config(|c| c.direct_max_bytes = 1024).await;
    let alice = Caller::writer("acme");
    let data = content(300_000, 14);
    let id = put(&env, &alice, "large.bin", &data).await;
    let conf = aws_sdk_s3::config::Builder::from(&env.sdk)
        .force_path_style(true)
        .interceptor(CompletionOutage)
        .build();
    let faulty = Store::with_clients(
        env.store.config.clone(),
        env.dynamodb(),
        aws_sdk_s3::Client::from_conf(conf),
        aws_sdk_kms::Client::new(&env.sdk),
    );
    // A large download writes a decrypted copy with a multipart upload.
    let r = artifacts_download::handler(&faulty, Call::download(&id).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let pending = env
        .s3()
        .list_multipart_uploads()
        .bucket(&env.resources.bucket)
        .send()
        .await
        .unwrap();
    assert!(
        pending.uploads().is_empty(),
        "left behind: {:?}",
        pending.uploads()
    );
    assert!(object_versions(&env, "deliveries/").await.is_empty());
    // The healthy path still serves it.
    assert!(fetch(&env, &alice, &id).await == data);
}

#[tokio::test]
async fn the_sweep_removes_old_unreferenced_content_only() {
    use artifacts::content::content_key;
    use artifacts::sweep::{SweepLimits, SweepReport};
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(300_000, 15);
    let kept = put(&env, &alice, "kept.bin", &data).await;
    let small = put(&env, &alice, "small.txt", b"inline").await;
    let put_raw = |key: String| {
        let s3 = env.s3();
        let bucket = env.resources.bucket.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(b"sealed bytes nobody references".to_vec().into())
                .send()
                .await
                .unwrap();
            key
        }
    };
    // A dead request's content beside a committed version, one for an
    // artifact that never got committed, and keys that are not content.
    put_raw(content_key("acme", &kept)).await;
    put_raw(content_key("acme", &"ab".repeat(16))).await;
    put_raw(content_key("globex", &small)).await;
    put_raw("orgs/acme/notes/readme".into()).await;
    put_raw("deliveries/acme/x".into()).await;
    assert_eq!(object_versions(&env, "orgs/").await.len(), 5);

    // Nothing is old enough yet.
    let now = links::now();
    let young = env
        .store
        .sweep_orphans(now, SweepLimits::default(), None)
        .await
        .unwrap();
    assert_eq!(
        young,
        SweepReport {
            examined: 5,
            deleted: 0,
            resume: None
        }
    );

    // Two days on, one version at a time: bounded runs that resume.
    let later = now + 2 * 24 * 3600;
    let one = SweepLimits {
        max_examined: 1,
        max_deleted: 1,
    };
    let (mut runs, mut examined, mut deleted, mut from) = (0, 0, 0, None);
    loop {
        let report = env.store.sweep_orphans(later, one, from).await.unwrap();
        assert!(report.examined <= 1 && report.deleted <= 1, "{report:?}");
        runs += 1;
        examined += report.examined;
        deleted += report.deleted;
        from = report.resume;
        if from.is_none() || runs > 20 {
            break;
        }
    }
    assert!(from.is_none(), "the sweep finishes");
    assert_eq!((examined, deleted), (5, 3));
    let left: Vec<String> = object_versions(&env, "orgs/")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&content_key("acme", &kept)));
    assert!(left.contains(&"orgs/acme/notes/readme".to_owned()));
    assert_eq!(object_versions(&env, "deliveries/").await.len(), 1);
    // Committed content still downloads; a second sweep removes nothing.
    assert!(fetch(&env, &alice, &kept).await == data);
    let again = env
        .store
        .sweep_orphans(later, SweepLimits::default(), None)
        .await
        .unwrap();
    assert_eq!((again.examined, again.deleted), (2, 0));
}
