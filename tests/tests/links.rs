//! Download links (SPEC §4, §8) end to end: the real presign and download
//! handlers and the real AWS SDK against the emulator, KMS HMAC included.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artifacts::Store;
use artifacts::links::{self, LinkClaims};
use artifacts::metadata::artifact_pk;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use harness::{Call, Caller, TestEnv, bytes, download, header, json_body, presign};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const WF: &str = "wf-links";
const BASE_URL: &str = "http://127.0.0.1:9000";

// ------------------------------------------------------------------ helpers

/// Upload as `caller`; the artifact id.
async fn put(env: &TestEnv, caller: &Caller, path: &str, body: &[u8]) -> String {
    let response = artifacts_upload::handler(
        &env.store,
        Call::upload(WF, path, body).by(caller).request(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201, "{}", text(&response));
    json_body(&response)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Create a link as `caller`, expecting 201.
async fn create(env: &TestEnv, caller: &Caller, artifact_id: &str, body: Value) -> Value {
    let response = presign(env, Call::create_link(artifact_id, &body).by(caller)).await;
    assert_eq!(response.status(), 201, "{body}: {}", text(&response));
    json_body(&response)
}

/// The token in a created link's `url`.
fn token_of(created: &Value) -> String {
    let url = created["url"].as_str().unwrap();
    url.strip_prefix(&format!("{BASE_URL}/v1/links/"))
        .unwrap_or_else(|| panic!("unexpected url {url}"))
        .to_owned()
}

fn claims_of(token: &str) -> LinkClaims {
    let payload = token.split_once('.').unwrap().0;
    LinkClaims::from_bytes(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(&bytes(response)).into_owned()
}

/// Content with a recognisable marker, different per seed.
fn content(size: usize, seed: u8) -> Vec<u8> {
    let mut data = harness::content(size, seed);
    let marker = format!("SECRET-{seed}-");
    let n = marker.len().min(size);
    data[..n].copy_from_slice(&marker.as_bytes()[..n]);
    data
}

/// Every link answer, refusals included, is uncacheable and sends no referrer.
fn assert_link_headers(response: &Response<Body>) {
    assert_eq!(header(response, "cache-control"), Some("no-store"));
    assert_eq!(header(response, "referrer-policy"), Some("no-referrer"));
}

fn assert_problem(response: &Response<Body>, status: u16) -> Value {
    assert_eq!(response.status(), status, "{}", text(response));
    assert_eq!(
        header(response, "content-type"),
        Some("application/problem+json")
    );
    let body = json_body(response);
    assert_eq!(body["status"], status);
    body
}

/// Use a link through the shared operation with an injected clock, served
/// by download's own `serve_version`: how expiry is tested without waiting.
async fn use_at(store: &Store, token: &str, now: i64) -> Response<Body> {
    let req = Call::link(token).request();
    let req = &req;
    store
        .serve_link(token, now, "test", |open| async move {
            artifacts_download::serve_version(
                store,
                req,
                &open.claims.org,
                &open.artifact,
                &open.record,
                artifacts::audit::Actor::LinkId(open.claims.link_id.clone()),
            )
            .await
        })
        .await
}

/// The use records of one link, oldest first.
async fn uses_of(env: &TestEnv, org: &str, link_id: &str) -> Vec<HashMap<String, AttributeValue>> {
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
}

fn attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    match &item[name] {
        AttributeValue::S(v) | AttributeValue::N(v) => v,
        other => panic!("{name}: {other:?}"),
    }
}

/// Link items and link-id pointers anywhere in the table.
async fn recorded_links(env: &TestEnv) -> usize {
    let mut count = 0;
    let mut start = None;
    for _ in 0..100 {
        let out = env
            .dynamodb()
            .scan()
            .table_name(&env.resources.table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        count += out
            .items()
            .iter()
            .filter(|i| matches!(i.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with("L#") || sk == "#LINK"))
            .count();
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return count,
        }
    }
    panic!("table scan did not end");
}

async fn listed(env: &TestEnv, caller: &Caller, artifact_id: &str) -> Vec<Value> {
    let response = presign(env, Call::list_links(artifact_id).by(caller)).await;
    assert_eq!(response.status(), 200, "{}", text(&response));
    json_body(&response)["links"].as_array().unwrap().clone()
}

// -------------------------------------------------------------------- tests

#[tokio::test]
async fn a_link_downloads_the_exact_bytes_without_authorization() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    // Inline (small) and S3-stored content.
    for (size, path) in [(1000usize, "docs/prd.md"), (200_000, "reports/scan.pdf")] {
        let data = content(size, 1);
        let id = put(&env, &alice, path, &data).await;

        let before = links::now();
        let created = create(&env, &reader, &id, json!({})).await;
        let after = links::now();
        assert_eq!(created["version"], 1);
        assert_eq!(created["expiresIn"], 3600);
        let expires_at = created["expiresAt"].as_str().unwrap();
        assert!(
            (before..=after).any(|t| links::rfc3339(t + 3600) == expires_at),
            "{expires_at}"
        );
        let link_id = created["linkId"].as_str().unwrap().to_owned();
        assert!(link_id.len() == 32 && link_id.bytes().all(|b| b.is_ascii_hexdigit()));
        let token = token_of(&created);
        assert_eq!(claims_of(&token).link_id, link_id);

        // No Authorization header, no authorizer context: the token is the credential.
        let got = download(&env, Call::link(&token)).await;
        assert_eq!(got.status(), 200, "{}", text(&got));
        assert!(bytes(&got) == data, "size {size}: bytes differ");
        assert_link_headers(&got);
        assert_eq!(header(&got, "x-artifact-version"), Some("1"));
        let name = path.rsplit('/').next().unwrap();
        assert!(header(&got, "content-disposition").unwrap().contains(name));
        let etag = header(&got, "etag").unwrap().to_owned();

        // What an authenticated download would answer: Range and conditionals too.
        let part = download(&env, Call::link(&token).header("range", "bytes=10-19")).await;
        assert_eq!(part.status(), 206);
        assert_eq!(bytes(&part), data[10..20]);
        let same = download(&env, Call::link(&token).header("if-none-match", &etag)).await;
        assert_eq!(same.status(), 304);
        assert_link_headers(&same);

        // Three uses: counted on the link, each recorded.
        let listing = listed(&env, &reader, &id).await;
        assert_eq!(listing.len(), 1);
        assert_eq!(listing[0]["linkId"], link_id.as_str());
        assert_eq!(listing[0]["uses"], 3);
        assert!(listing[0]["lastUsedAt"].is_string());
        let uses = uses_of(&env, "acme", &link_id).await;
        let mut outcomes: Vec<&str> = uses.iter().map(|u| attr(u, "outcome")).collect();
        outcomes.sort();
        assert_eq!(outcomes, ["not-modified", "served", "served"]);
        assert!(uses.iter().all(|u| attr(u, "version") == "1"));
        assert!(uses.iter().all(|u| attr(u, "linkId") == link_id));
    }
    // The authenticated route still demands credentials.
    let id = put(&env, &alice, "x.txt", b"x").await;
    assert_problem(&download(&env, Call::download(&id)).await, 401);
}

#[tokio::test]
async fn expired_links_are_gone() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(500, 2);
    let id = put(&env, &alice, "prd.md", &data).await;
    let created = create(&env, &alice, &id, json!({"expiresIn": 60})).await;
    assert_eq!(created["expiresIn"], 60);
    let token = token_of(&created);
    let expires_at = claims_of(&token).expires_at;

    let last_second = use_at(&env.store, &token, expires_at - 1).await;
    assert_eq!(last_second.status(), 200);
    assert!(bytes(&last_second) == data);
    for now in [expires_at, expires_at + 1, expires_at + 86_400] {
        let gone = use_at(&env.store, &token, now).await;
        let body = assert_problem(&gone, 410);
        assert_link_headers(&gone);
        assert!(!text(&gone).contains("SECRET"), "{body}");
    }
    // Not counted as a use of the content, but recorded: once per link
    // and minute (issue 10 item 11).
    let link_id = created["linkId"].as_str().unwrap();
    let uses = uses_of(&env, "acme", link_id).await;
    let expired = uses
        .iter()
        .filter(|u| attr(u, "outcome") == "expired")
        .count();
    let minutes: std::collections::BTreeSet<i64> =
        [expires_at, expires_at + 1, expires_at + 86_400]
            .iter()
            .map(|t| t / links::REFUSED_USE_WINDOW_SECS)
            .collect();
    assert_eq!(expired, minutes.len());
    assert!(
        uses.iter()
            .filter(|u| attr(u, "outcome") == "expired")
            .all(|u| attr(u, "status") == "410")
    );
    // Expired links drop out of the listing.
    let live = env
        .store
        .live_links(&alice.principal(), &id, expires_at)
        .await
        .unwrap();
    assert!(live.is_empty(), "{live:?}");

    // A genuinely MACed token whose expiry has passed, through the real
    // handler and clock: 410 before any record is looked at.
    let past = LinkClaims {
        expires_at: links::now() - 1,
        ..claims_of(&token)
    };
    let signed = env.store.link_key.sign(&past).await.unwrap();
    assert_problem(&download(&env, Call::link(&signed)).await, 410);
    // MACed and unexpired, but never recorded: 410 too (e.g. removed by TTL).
    let unrecorded = LinkClaims {
        link_id: "0123456789abcdef0123456789abcdef".into(),
        expires_at: links::now() + 600,
        ..claims_of(&token)
    };
    let signed = env.store.link_key.sign(&unrecorded).await.unwrap();
    assert_problem(&download(&env, Call::link(&signed)).await, 410);
}

#[tokio::test]
async fn revoked_links_are_gone_at_once() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "main.tf", b"resource {}").await;
    let a = create(&env, &alice, &id, json!({})).await;
    let b = create(&env, &alice, &id, json!({})).await;
    let (a_id, b_id) = (a["linkId"].as_str().unwrap(), b["linkId"].as_str().unwrap());

    // Neither another org nor a reader can revoke it.
    let other = presign(&env, Call::revoke_link(a_id).by(&Caller::writer("globex"))).await;
    assert_problem(&other, 404);
    let reader = presign(&env, Call::revoke_link(a_id).by(&Caller::reader("acme"))).await;
    assert_problem(&reader, 403);
    assert_problem(&presign(&env, Call::revoke_link(a_id)).await, 401);
    assert_eq!(
        download(&env, Call::link(&token_of(&a))).await.status(),
        200
    );

    let revoked = presign(&env, Call::revoke_link(a_id).by(&alice)).await;
    assert_eq!(revoked.status(), 204, "{}", text(&revoked));
    let gone = download(&env, Call::link(&token_of(&a))).await;
    assert_problem(&gone, 410);
    assert_link_headers(&gone);
    assert_eq!(
        download(&env, Call::link(&token_of(&b))).await.status(),
        200
    );
    // Idempotent; unknown and malformed ids are 404.
    assert_eq!(
        presign(&env, Call::revoke_link(a_id).by(&alice))
            .await
            .status(),
        204
    );
    for unknown in [
        "0123456789abcdef0123456789abcdef",
        "nope",
        &a_id.to_uppercase(),
    ] {
        assert_problem(
            &presign(&env, Call::revoke_link(unknown).by(&alice)).await,
            404,
        );
    }

    let listing = listed(&env, &alice, &id).await;
    let ids: Vec<&str> = listing
        .iter()
        .map(|l| l["linkId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b_id]);
    let uses = uses_of(&env, "acme", a_id).await;
    let outcomes: Vec<&str> = uses.iter().map(|u| attr(u, "outcome")).collect();
    assert!(
        outcomes.contains(&"served") && outcomes.contains(&"revoked"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn any_changed_character_of_a_token_is_not_found() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "prd.md", &content(300, 3)).await;
    let created = create(&env, &alice, &id, json!({})).await;
    let token = token_of(&created);

    let reference = download(&env, Call::link("not-a-token")).await;
    assert_problem(&reference, 404);
    assert_link_headers(&reference);
    let reference = bytes(&reference);

    let mut variants = Vec::new();
    for (i, c) in token.char_indices() {
        let replacements: &[char] = match c {
            'A' => &['B', '_'],
            '_' => &['-', 'A'],
            '.' => &['A', '-'],
            _ => &['A', '_'],
        };
        for &r in replacements {
            let mut t = token.clone();
            t.replace_range(i..i + 1, &r.to_string());
            variants.push(t);
        }
    }
    variants.push(token[..token.len() - 1].to_owned());
    variants.push(format!("{token}A"));
    variants.push(token.replace('.', ""));
    variants.push(format!("{token}.{}", token.split_once('.').unwrap().1));
    for variant in &variants {
        assert_ne!(variant, &token);
        let response = download(&env, Call::link(variant)).await;
        assert_eq!(response.status(), 404, "{variant}: {}", text(&response));
        assert_link_headers(&response);
        assert!(bytes(&response) == reference, "{variant}: body differs");
    }
    // Nothing was recorded for them, and the real token still works.
    let link_id = created["linkId"].as_str().unwrap();
    assert!(uses_of(&env, "acme", link_id).await.is_empty());
    assert_eq!(download(&env, Call::link(&token)).await.status(), 200);
    assert_eq!(uses_of(&env, "acme", link_id).await.len(), 1);
}

#[tokio::test]
async fn a_token_only_ever_addresses_its_own_org() {
    let env = TestEnv::new().await;
    let (alice, bob) = (Caller::writer("acme"), Caller::writer("globex"));
    let secret_a = content(400, 4);
    let secret_b = content(400, 5);
    let id_a = put(&env, &alice, "secret.txt", &secret_a).await;
    let id_b = put(&env, &bob, "secret.txt", &secret_b).await;
    let token_a = token_of(&create(&env, &alice, &id_a, json!({})).await);
    let token_b = token_of(&create(&env, &bob, &id_b, json!({})).await);

    assert!(bytes(&download(&env, Call::link(&token_a)).await) == secret_a);
    assert!(bytes(&download(&env, Call::link(&token_b)).await) == secret_b);

    let (payload_a, mac_a) = token_a.split_once('.').unwrap();
    let (payload_b, mac_b) = token_b.split_once('.').unwrap();
    let reencode = |claims: &LinkClaims, mac: &str| {
        format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(claims.to_bytes().unwrap())
        )
    };
    let a = claims_of(&token_a);
    let b = claims_of(&token_b);
    let forged = [
        // A's MAC over a payload pointing at B's org and artifact.
        reencode(
            &LinkClaims {
                org: "globex".into(),
                artifact_id: b.artifact_id.clone(),
                ..a.clone()
            },
            mac_a,
        ),
        reencode(
            &LinkClaims {
                org: "globex".into(),
                ..a.clone()
            },
            mac_a,
        ),
        reencode(
            &LinkClaims {
                link_id: b.link_id.clone(),
                artifact_id: b.artifact_id.clone(),
                org: b.org.clone(),
                ..a.clone()
            },
            mac_a,
        ),
        // Swapped MACs.
        format!("{payload_a}.{mac_b}"),
        format!("{payload_b}.{mac_a}"),
    ];
    for token in &forged {
        let response = download(&env, Call::link(token)).await;
        assert_problem(&response, 404);
        assert!(!text(&response).contains("SECRET"));
    }

    // Another org cannot list, link or revoke A's links: 404, as if missing.
    let missing = presign(
        &env,
        Call::list_links("0123456789abcdef0123456789abcdef").by(&bob),
    )
    .await;
    let foreign = presign(&env, Call::list_links(&id_a).by(&bob)).await;
    assert_problem(&foreign, 404);
    assert_eq!(bytes(&foreign), bytes(&missing));
    assert_problem(
        &presign(&env, Call::create_link(&id_a, &json!({})).by(&bob)).await,
        404,
    );
    assert_problem(
        &presign(&env, Call::revoke_link(&a.link_id).by(&bob)).await,
        404,
    );
    assert!(bytes(&download(&env, Call::link(&token_a)).await) == secret_a);
}

#[tokio::test]
async fn invalid_requests_record_no_link() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "prd.md", b"# PRD").await;
    let other_org = put(&env, &Caller::writer("globex"), "prd.md", b"# theirs").await;

    for (body, field) in [
        (json!({"expiresIn": 59}), "expiresIn"),
        (json!({"expiresIn": 604_801}), "expiresIn"),
        (json!({"expiresIn": 0}), "expiresIn"),
        (json!({"expiresIn": -60}), "expiresIn"),
        (json!({"expiresIn": "3600"}), "expiresIn"),
        (json!({"expiresIn": 90.5}), "expiresIn"),
        (json!({"version": 0}), "version"),
        (json!({"version": "1"}), "version"),
        (json!({"version": -1}), "version"),
        (json!({"expires": 60}), "body"),
        (json!([1]), "body"),
    ] {
        let response = presign(&env, Call::create_link(&id, &body).by(&alice)).await;
        assert_eq!(assert_problem(&response, 400)["field"], field, "{body}");
    }
    let invalid_json = Call::create_link(&id, &json!({})).raw_body("{\"expiresIn\":");
    assert_eq!(
        assert_problem(&presign(&env, invalid_json.by(&alice)).await, 400)["field"],
        "body"
    );

    let no_version = presign(
        &env,
        Call::create_link(&id, &json!({"version": 2})).by(&alice),
    )
    .await;
    assert_problem(&no_version, 404);
    let missing = presign(
        &env,
        Call::create_link("0123456789abcdef0123456789abcdef", &json!({})).by(&alice),
    )
    .await;
    assert_problem(&missing, 404);
    let foreign = presign(&env, Call::create_link(&other_org, &json!({})).by(&alice)).await;
    assert_eq!(bytes(&foreign), bytes(&missing));
    assert_problem(
        &presign(&env, Call::create_link("nope", &json!({})).by(&alice)).await,
        404,
    );
    let write_only = Caller::new("acme", "artifacts:write");
    assert_problem(
        &presign(&env, Call::create_link(&id, &json!({})).by(&write_only)).await,
        403,
    );
    assert_problem(
        &presign(&env, Call::create_link(&id, &json!({}))).await,
        401,
    );

    assert_eq!(
        recorded_links(&env).await,
        0,
        "a refused request recorded a link"
    );

    // The bounds themselves are accepted, and then the scan does see links.
    for expires_in in [60, 604_800] {
        let created = create(&env, &alice, &id, json!({"expiresIn": expires_in})).await;
        assert_eq!(created["expiresIn"], expires_in);
    }
    assert_eq!(recorded_links(&env).await, 4, "two links, two id pointers");
}

#[tokio::test]
async fn a_link_keeps_serving_its_pinned_version() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let (v1, v2) = (content(800, 6), content(900, 7));
    let id = put(&env, &alice, "arch.md", &v1).await;
    let pinned = create(&env, &alice, &id, json!({})).await;
    assert_eq!(pinned["version"], 1);
    assert_eq!(put(&env, &alice, "arch.md", &v2).await, id);

    let got = download(&env, Call::link(&token_of(&pinned))).await;
    assert_eq!(got.status(), 200);
    assert!(bytes(&got) == v1, "the link moved to the new version");
    assert_eq!(header(&got, "x-artifact-version"), Some("1"));

    let explicit = create(&env, &alice, &id, json!({"version": 1})).await;
    assert!(bytes(&download(&env, Call::link(&token_of(&explicit))).await) == v1);
    let latest = create(&env, &alice, &id, json!({"version": null})).await;
    assert_eq!(latest["version"], 2);
    assert!(bytes(&download(&env, Call::link(&token_of(&latest))).await) == v2);
}

#[tokio::test]
async fn listing_shows_live_links_with_use_counts_and_no_tokens() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    let id = put(&env, &alice, "pricing.csv", b"a,b\n1,2\n").await;
    assert!(listed(&env, &reader, &id).await.is_empty());

    let short = create(&env, &reader, &id, json!({"expiresIn": 60})).await;
    let used = create(&env, &reader, &id, json!({})).await;
    let revoked = create(&env, &reader, &id, json!({})).await;
    for _ in 0..2 {
        assert_eq!(
            download(&env, Call::link(&token_of(&used))).await.status(),
            200
        );
    }
    assert_eq!(
        download(&env, Call::link(&token_of(&revoked)))
            .await
            .status(),
        200
    );

    let listing = listed(&env, &reader, &id).await;
    assert_eq!(listing.len(), 3);
    let uses = |created: &Value| {
        listing
            .iter()
            .find(|l| l["linkId"] == created["linkId"])
            .map(|l| l["uses"].as_u64().unwrap())
    };
    assert_eq!(
        (uses(&short), uses(&used), uses(&revoked)),
        (Some(0), Some(2), Some(1))
    );
    let raw = serde_json::to_string(&listing).unwrap();
    for created in [&short, &used, &revoked] {
        assert!(!raw.contains(&token_of(created)), "a listing shows a token");
    }
    for link in &listing {
        assert_eq!(link["createdBy"], reader.sub.as_str());
        assert_eq!(link["version"], 1);
        assert!(link.get("url").is_none() && link.get("token").is_none());
    }
    let created_at: Vec<&str> = listing
        .iter()
        .map(|l| l["createdAt"].as_str().unwrap())
        .collect();
    assert!(
        created_at.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created_at:?}"
    );

    let revoke = presign(
        &env,
        Call::revoke_link(revoked["linkId"].as_str().unwrap()).by(&alice),
    )
    .await;
    assert_eq!(revoke.status(), 204);
    assert_eq!(listed(&env, &reader, &id).await.len(), 2);
    let later = claims_of(&token_of(&short)).expires_at;
    let live = env
        .store
        .live_links(&reader.principal(), &id, later)
        .await
        .unwrap();
    let ids: Vec<&str> = live.iter().map(|l| l.link_id.as_str()).collect();
    assert_eq!(ids, [used["linkId"].as_str().unwrap()]);

    assert_problem(
        &presign(
            &env,
            Call::list_links("0123456789abcdef0123456789abcdef").by(&reader),
        )
        .await,
        404,
    );
    assert_problem(
        &presign(
            &env,
            Call::list_links(&id).by(&Caller::new("acme", "artifacts:write")),
        )
        .await,
        403,
    );
}

#[tokio::test]
async fn presign_dispatches_on_the_path_not_the_parameter_names() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "prd.md", b"# PRD").await;
    let created = create(&env, &alice, &id, json!({})).await;
    let link_id = created["linkId"].as_str().unwrap();
    // Whatever the parameters say (SPEC's {linkId}, a stale {token}), the
    // path names the link.
    let call = Call::revoke_link(link_id)
        .path_param("token", "0123456789abcdef0123456789abcdef")
        .path_param("linkId", "garbage");
    assert_eq!(presign(&env, call.by(&alice)).await.status(), 204);
    assert_problem(&download(&env, Call::link(&token_of(&created))).await, 410);
}

#[tokio::test]
async fn without_a_public_base_url_links_use_the_domain_the_api_was_called_on() {
    // The template's default: ARTIFACTS_PUBLIC_BASE_URL unset.
    let env = TestEnv::with_config(|c| c.public_base_url = None).await;
    let fixture: Value = serde_json::from_str(include_str!("../../events/upload.json")).unwrap();
    let domain = fixture["requestContext"]["domainName"].as_str().unwrap();
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "prd.md", b"# PRD").await;
    let response = presign(&env, Call::create_link(&id, &json!({})).by(&alice)).await;
    assert_eq!(response.status(), 201, "{}", text(&response));
    let url = json_body(&response)["url"].as_str().unwrap().to_owned();
    let token = url
        .strip_prefix(&format!("https://{domain}/v1/links/"))
        .unwrap_or_else(|| panic!("{url}"));
    assert_eq!(download(&env, Call::link(token)).await.status(), 200);
}

#[tokio::test]
async fn large_content_through_a_link_is_a_303_like_any_download() {
    let env = TestEnv::with_config(|c| c.direct_max_bytes = 1024).await;
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "big.bin", &content(5000, 9)).await;
    let created = create(&env, &alice, &id, json!({})).await;

    let direct = download(&env, Call::download(&id).by(&alice)).await;
    assert_eq!(direct.status(), 303, "{}", text(&direct));
    let linked = download(&env, Call::link(&token_of(&created))).await;
    assert_eq!(linked.status(), 303, "{}", text(&linked));
    assert!(header(&linked, "location").is_some_and(|l| l.starts_with("http")));
    assert_eq!(header(&linked, "etag"), header(&direct, "etag"));
    assert_link_headers(&linked);
    let uses = uses_of(&env, "acme", created["linkId"].as_str().unwrap()).await;
    assert_eq!(uses.len(), 1);
    assert_eq!(attr(&uses[0], "outcome"), "redirected");
    assert_eq!(listed(&env, &alice, &id).await[0]["uses"], 1);
}

// ------------------------------------------------------------ call counting

/// A pass-through HTTP proxy in front of the emulator that remembers each
/// request's `X-Amz-Target` (the KMS / DynamoDB operation) and body. The
/// store under test is unchanged: only its endpoint URL points here, and
/// every request reaches the emulator as sent.
struct Wire {
    endpoint: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Wire {
    fn start() -> Wire {
        let upstream = harness::endpoint()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, log) = (upstream.clone(), log.clone());
                std::thread::spawn(move || {
                    if let Err(e) = relay(client, &upstream, &log) {
                        eprintln!("proxy: {e}");
                    }
                });
            }
        });
        Wire { endpoint, seen }
    }

    /// The operations seen since the last call, with their bodies.
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// One request per connection: read it, forward it with `Connection: close`,
/// return the whole response with `Connection: close`.
fn relay(
    client: TcpStream,
    upstream: &str,
    log: &Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    let timeout = Some(Duration::from_secs(30));
    client.set_read_timeout(timeout)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    let (mut length, mut target) = (0usize, String::new());
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "x-amz-target" => target = value.trim().to_owned(),
            "connection" => continue,
            _ => {}
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if target.is_empty() {
        target = request_line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
    }
    log.lock()
        .unwrap()
        .push((target, String::from_utf8_lossy(&body).into_owned()));

    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(timeout)?;
    up.write_all(format!("{request_line}{head}connection: close\r\n\r\n").as_bytes())?;
    up.write_all(&body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let (response_head, rest) = response.split_at(split);
    let response_head = String::from_utf8_lossy(response_head);
    let mut lines = response_head.split("\r\n");
    let mut out = format!("{}\r\nconnection: close", lines.next().unwrap_or_default());
    for line in lines.filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
        out.push_str("\r\n");
        out.push_str(line);
    }
    let mut client = client;
    client.write_all(out.as_bytes())?;
    client.write_all(rest)?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

fn count(seen: &[(String, String)], operation: &str) -> usize {
    seen.iter().filter(|(t, _)| t.ends_with(operation)).count()
}

#[tokio::test]
async fn verifying_a_link_costs_one_kms_call_and_one_dynamodb_read() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let data = content(2000, 8);
    let id = put(&env, &alice, "prd.md", &data).await;
    let created = create(&env, &alice, &id, json!({})).await;
    let token = token_of(&created);
    let revoked = create(&env, &alice, &id, json!({})).await;
    let revoke = presign(
        &env,
        Call::revoke_link(revoked["linkId"].as_str().unwrap()).by(&alice),
    )
    .await;
    assert_eq!(revoke.status(), 204);

    // The same store configuration, its SDK pointed at the counting proxy.
    let wire = Wire::start();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&wire.endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "wire",
        ))
        .load()
        .await;
    let store = Store::new(env.store.config.clone(), &sdk);
    let call = |token: &str| Call::link(token).request();

    // A live link: VerifyMac + the link item, then the download's own reads.
    let response = artifacts_download::handler(&store, call(&token))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(bytes(&response) == data);
    let seen = wire.take();
    let ops: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(count(&seen, ".VerifyMac"), 1, "{ops:?}");
    assert_eq!(count(&seen, ".Decrypt"), 1, "{ops:?}");
    assert_eq!(count(&seen, ".GetItem"), 3, "{ops:?}");
    let link_reads = seen
        .iter()
        .filter(|(t, body)| t.ends_with(".GetItem") && body.contains("\"L#"))
        .count();
    assert_eq!(link_reads, 1, "exactly one read of the link item");
    // The use record, and the audit record written before the answer (SPEC §13).
    assert_eq!(
        count(&seen, ".PutItem"),
        2,
        "the use and audit records: {ops:?}"
    );
    let audit_puts = seen
        .iter()
        .filter(|(t, body)| t.ends_with(".PutItem") && body.contains("#AU#"))
        .count();
    assert_eq!(audit_puts, 1, "one audit record: {ops:?}");
    assert_eq!(count(&seen, ".UpdateItem"), 1, "the use count: {ops:?}");
    assert_eq!(seen.len(), 8, "nothing else: {ops:?}");

    // For comparison, the authenticated download of the same version.
    let response = artifacts_download::handler(&store, Call::download(&id).by(&alice).request())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = wire.take();
    assert_eq!(
        (
            count(&seen, ".GetItem"),
            count(&seen, ".Decrypt"),
            count(&seen, ".PutItem"),
            seen.len()
        ),
        // Its one write: the audit record (SPEC §13).
        (2, 1, 1, 4),
        "{seen:?}"
    );

    // Revoked: VerifyMac + the link item; nothing read beyond it.
    let response = artifacts_download::handler(&store, call(&token_of(&revoked)))
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    let seen = wire.take();
    assert_eq!(
        (
            count(&seen, ".VerifyMac"),
            count(&seen, ".GetItem"),
            count(&seen, ".PutItem"),
            seen.len()
        ),
        (1, 1, 1, 3),
        "{seen:?}"
    );

    // Expired: VerifyMac only (and the use record).
    let expired = use_at(&store, &token, claims_of(&token).expires_at).await;
    assert_eq!(expired.status(), 410);
    let seen = wire.take();
    assert_eq!(
        (
            count(&seen, ".VerifyMac"),
            count(&seen, ".GetItem"),
            count(&seen, ".PutItem"),
            seen.len()
        ),
        (1, 0, 1, 2),
        "{seen:?}"
    );

    // A changed MAC character: VerifyMac only, nothing recorded.
    let mut tampered = token.clone();
    let at = token.len() - 10;
    let c = if &token[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, c);
    let response = artifacts_download::handler(&store, call(&tampered))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let seen = wire.take();
    assert_eq!((count(&seen, ".VerifyMac"), seen.len()), (1, 1), "{seen:?}");

    // Not even shaped like a token (or an unknown payload format): no AWS
    // call at all.
    let mut unknown_format = token.clone();
    unknown_format.replace_range(0..1, "B");
    for token in ["nope", &unknown_format] {
        let response = artifacts_download::handler(&store, call(token))
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        assert!(wire.take().is_empty(), "{token}");
    }
}

#[tokio::test]
async fn a_link_is_recorded_beside_its_artifact_without_its_token() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "prd.md", b"# PRD").await;
    let created = create(&env, &alice, &id, json!({})).await;
    let link_id = created["linkId"].as_str().unwrap();
    let item = env
        .dynamodb()
        .get_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(artifact_pk("acme", &id)))
        .key("sk", AttributeValue::S(links::link_sk(link_id)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("link item");
    let expires_at: i64 = attr(&item, "expiresAt").parse().unwrap();
    assert_eq!(expires_at, claims_of(&token_of(&created)).expires_at);
    assert_eq!(attr(&item, "createdBy"), alice.sub);
    // The token is never stored.
    let raw = format!("{item:?}");
    assert!(!raw.contains(token_of(&created).split_once('.').unwrap().1));
}
