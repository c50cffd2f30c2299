//! Finding artifacts (issue 13, SPEC §14): download by path, HEAD, `?meta`,
//! labels and search filters on both listings, the library flag, and
//! `POST /v1/resolve` — the real handlers and the real SDK against the
//! emulator. Large search sets are seeded with `BatchWriteItem` of the very
//! items a version commit writes (`metadata::artifact_items`), as the
//! listing tests do (moto copies the table on every transaction).

use std::collections::{BTreeMap, BTreeSet};

use artifacts::listing::ListQuery;
use artifacts::metadata;
use artifacts::model::{Artifact, new_artifact_id};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use harness::{
    Call, Caller, TestEnv, bytes, download, header, json_body, list, presign, upload, versions,
};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ORG: &str = "acme";

async fn put(env: &TestEnv, call: Call) -> Value {
    let response = upload(env, call).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        String::from_utf8_lossy(&bytes(&response))
    );
    json_body(&response)
}

/// Deterministic pseudo-random numbers (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The headers a download answers with that must agree between routes.
fn headers(response: &Response<Body>) -> BTreeMap<String, String> {
    response
        .headers()
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "location" | "apigw-requestid"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect()
}

async fn fetch(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

// 1. Download by path equals download by id; HEAD; ?meta; other orgs.

/// `?version=` and request headers of one download.
type Case = (Option<&'static str>, Vec<(&'static str, String)>);

#[tokio::test]
async fn download_by_path_is_the_id_download_for_every_size_class_version_and_condition() {
    // Inline ≤ 64 KiB ciphertext, S3 up to 256 KiB, 303 above.
    let env = TestEnv::with_config(|c| c.direct_max_bytes = 256 * 1024).await;
    let writer = Caller::writer(ORG);
    let reader = Caller::reader(ORG);
    let wf = "run-42";
    let sizes = [
        ("terraform/main.tf", 1000usize),
        ("data/s3.bin", 100_000),
        ("big/303.bin", 300_000),
    ];
    for (path, size) in sizes {
        let mut id = String::new();
        for version in 1..=2u8 {
            let body: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(version)).collect();
            let created = put(
                &env,
                Call::upload(wf, path, &body)
                    .header("content-type", "application/octet-stream")
                    .by(&writer),
            )
            .await;
            id = created["artifact"]["artifactId"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        let etag = {
            let r = download(&env, Call::download(&id).by(&reader)).await;
            header(&r, "etag").unwrap().to_owned()
        };
        let cases: Vec<Case> = vec![
            (None, vec![]),
            (Some("1"), vec![]),
            (Some("2"), vec![]),
            (None, vec![("range", "bytes=10-99".into())]),
            (Some("1"), vec![("range", "bytes=-5".into())]),
            (None, vec![("if-none-match", etag.clone())]),
            (None, vec![("if-match", "\"nope\"".into())]),
            (
                None,
                vec![
                    ("range", "bytes=0-0".into()),
                    ("if-range", "\"old\"".into()),
                ],
            ),
            (None, vec![("range", "bytes=999999999-".into())]),
            (Some("3"), vec![]),
        ];
        for (version, extra) in &cases {
            let build = |mut call: Call| {
                if let Some(v) = version {
                    call = call.query("version", v);
                }
                for (n, v) in extra {
                    call = call.header(n, v);
                }
                call.by(&reader)
            };
            let by_id = download(&env, build(Call::download(&id))).await;
            let by_path = download(&env, build(Call::by_path(wf, path))).await;
            let what = format!("{path} {version:?} {extra:?}");
            assert_eq!(by_id.status(), by_path.status(), "{what}");
            if by_id.status().is_client_error() {
                // Problems carry the request id; the rest is the same.
                let (mut a, mut b) = (json_body(&by_id), json_body(&by_path));
                a["requestId"] = Value::Null;
                b["requestId"] = Value::Null;
                assert_eq!(a, b, "{what}");
                continue;
            }
            assert_eq!(headers(&by_id), headers(&by_path), "{what}");
            if by_id.status() == 303 {
                let (a, b) = (
                    header(&by_id, "location").unwrap(),
                    header(&by_path, "location").unwrap(),
                );
                let (a, b) = (fetch(a).await, fetch(b).await);
                assert_eq!(a.len(), size, "{what}");
                assert_eq!(a, b, "{what}");
            } else {
                assert_eq!(bytes(&by_id), bytes(&by_path), "{what}");
            }

            // HEAD: the GET's status and headers, no body; content too
            // large for a direct answer is described, not delivered.
            for call in [build(Call::download(&id)), build(Call::by_path(wf, path))] {
                let head = download(&env, call.method("HEAD")).await;
                assert!(bytes(&head).is_empty(), "{what}: HEAD has no body");
                if by_id.status() == 303 {
                    assert_eq!(head.status(), 200, "{what}");
                    assert!(header(&head, "location").is_none());
                    assert_eq!(header(&head, "etag"), header(&by_id, "etag"));
                    assert_eq!(
                        header(&head, "content-length"),
                        Some(size.to_string().as_str()),
                        "{what}"
                    );
                } else {
                    assert_eq!(head.status(), by_id.status(), "{what}");
                    assert_eq!(headers(&head), headers(&by_id), "{what}");
                }
            }
        }
    }

    // ?meta is the artifact's metadata, as GET /v1/artifacts/{id} shows it.
    let meta = download(
        &env,
        Call::by_path(wf, "terraform/main.tf")
            .query("meta", "")
            .by(&reader),
    )
    .await;
    assert_eq!(meta.status(), 200);
    let meta = json_body(&meta);
    let id = meta["artifactId"].as_str().unwrap();
    let by_id = harness::versions(&env, Call::artifact(id).by(&reader)).await;
    assert_eq!(meta, json_body(&by_id));
    assert_eq!(meta["latestVersion"], 2);
    assert_eq!(meta["library"], false);
    let both = download(
        &env,
        Call::by_path(wf, "terraform/main.tf")
            .query("meta", "")
            .query("version", "1")
            .by(&reader),
    )
    .await;
    assert_eq!(both.status(), 400);
    assert_eq!(json_body(&both)["field"], "version");

    // Another org: the plain 404 of a missing path, byte for byte but the
    // request id; no scope: 403; a bad path: 400 naming it.
    let missing = download(&env, Call::by_path(wf, "nope.txt").by(&reader)).await;
    for call in [
        Call::by_path(wf, "terraform/main.tf").by(&Caller::reader("zenith")),
        Call::by_path(wf, "terraform/main.tf")
            .query("meta", "")
            .by(&Caller::reader("zenith")),
        Call::by_path(wf, "terraform/main.tf")
            .method("HEAD")
            .by(&Caller::reader("zenith")),
    ] {
        let r = download(&env, call).await;
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.headers().get("content-type"),
            missing.headers().get("content-type")
        );
        if !bytes(&r).is_empty() {
            let (mut a, mut b) = (json_body(&r), json_body(&missing));
            a["requestId"] = Value::Null;
            b["requestId"] = Value::Null;
            assert_eq!(a, b);
        }
    }
    let r = download(&env, Call::by_path(wf, "a/../b").by(&reader)).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_body(&r)["field"], "path");
    let r = download(
        &env,
        Call::by_path(wf, "terraform/main.tf").by(&Caller::new(ORG, "artifacts:write")),
    )
    .await;
    assert_eq!(r.status(), 403);
    // HEAD on a missing artifact: the 404 status, no body.
    let r = download(
        &env,
        Call::by_path(wf, "nope.txt").method("HEAD").by(&reader),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert!(bytes(&r).is_empty());
}

// 2. Labels and search.

/// Write the artifact items a version commit would write, 25 per request.
async fn seed(env: &TestEnv, org: &str, artifacts: &[Artifact]) {
    let items: Vec<_> = artifacts
        .iter()
        .flat_map(|a| metadata::artifact_items(org, a))
        .collect();
    seed_items(env, items).await;
}

/// Write `items` with `BatchWriteItem`, 25 per request.
async fn seed_items(
    env: &TestEnv,
    items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) {
    let ddb = env.dynamodb();
    let chunks: Vec<_> = items.chunks(25).map(<[_]>::to_vec).collect();
    // A few requests at a time.
    for group in chunks.chunks(8) {
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in group {
            let (ddb, table) = (ddb.clone(), env.resources.table.clone());
            let chunk = chunk.clone();
            tasks.spawn(async move {
                let mut pending: Vec<WriteRequest> = chunk
                    .into_iter()
                    .map(|item| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder().set_item(Some(item)).build().unwrap(),
                            )
                            .build()
                    })
                    .collect();
                for _ in 0..20 {
                    let out = ddb
                        .batch_write_item()
                        .request_items(&table, pending)
                        .send()
                        .await
                        .unwrap();
                    pending = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&table))
                        .unwrap_or_default();
                    if pending.is_empty() {
                        break;
                    }
                }
                assert!(pending.is_empty(), "unprocessed items remain");
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }
}

const WORKFLOWS: [&str; 3] = ["run-a", "run-b", "run-c"];
const CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/csv",
    "application/json",
    "image/png",
    "image/svg+xml",
];
const CREATORS: [&str; 3] = ["alice", "bob", "carol"];
const LABEL_KEYS: [&str; 4] = ["env", "team", "tier", "app.name"];
const LABEL_VALUES: [&str; 3] = ["prod", "dev", "x=y"];
const DIRS: [&str; 4] = ["docs/", "Infra/tf/", "reports/", ""];
const WORDS: [&str; 5] = ["Main", "readme", "prowler-Report", "plan", "data"];

/// A made-up artifact; hashes from a small set so contents repeat.
fn random_artifact(rng: &mut Rng, i: usize) -> Artifact {
    let workflow_id = rng.pick(&WORKFLOWS).to_string();
    let path = format!(
        "{}{}-{i}.{}",
        rng.pick(&DIRS),
        rng.pick(&WORDS),
        rng.pick(&["md", "json", "tf"])
    );
    let mut metadata = BTreeMap::new();
    for key in LABEL_KEYS {
        if rng.below(2) == 0 {
            metadata.insert(key.to_owned(), rng.pick(&LABEL_VALUES).to_string());
        }
    }
    let created_at = format!(
        "2026-03-{:02}T{:02}:{:02}:00.{:03}Z",
        1 + i / 1440 % 28,
        i / 60 % 24,
        i % 60,
        i % 1000
    );
    let sha = hex::encode(Sha256::digest(format!("content-{}", rng.below(25))));
    Artifact {
        artifact_id: new_artifact_id(),
        name: path.rsplit('/').next().unwrap().to_owned(),
        workflow_id,
        path,
        artifact_type: "file".into(),
        content_type: rng.pick(&CONTENT_TYPES).to_string(),
        size: rng.below(10_000) as u64,
        sha256: sha,
        latest_version: 1,
        created_at: created_at.clone(),
        created_by: rng.pick(&CREATORS).to_string(),
        updated_at: created_at,
        updated_by: "seed".into(),
        metadata,
        lifecycle: artifacts::model::Lifecycle {
            library: rng.below(3) == 0,
            ..Default::default()
        },
    }
}

/// One generated search: query parameters and `label=` values.
#[derive(Debug, Clone)]
struct Filters {
    params: Vec<(&'static str, String)>,
    labels: Vec<String>,
}

fn random_filters(rng: &mut Rng, hashes: &[String]) -> Filters {
    let mut f = Filters {
        params: Vec::new(),
        labels: Vec::new(),
    };
    for _ in 0..rng.below(3) {
        let key = rng.pick(&LABEL_KEYS);
        f.labels.push(if rng.below(3) == 0 {
            key.to_string()
        } else {
            format!("{key}={}", rng.pick(&LABEL_VALUES))
        });
    }
    if rng.below(3) == 0 {
        let ct = rng.pick(&["text/*", "image/*", "application/json", "text/csv"]);
        f.params.push(("contentType", ct.to_string()));
    }
    if rng.below(3) == 0 {
        f.params
            .push(("createdBy", rng.pick(&CREATORS).to_string()));
    }
    if rng.below(3) == 0 {
        f.params.push((
            "q",
            rng.pick(&["REPORT", "main", "tf/", ".JSON", "-1"])
                .to_string(),
        ));
    }
    if rng.below(4) == 0 {
        f.params
            .push(("library", rng.pick(&["true", "false"]).to_string()));
    }
    if rng.below(5) == 0 {
        f.params.push(("sha256", rng.pick(hashes).clone()));
    }
    f
}

/// The brute-force answer, written independently of the store's rules.
fn brute(all: &[Artifact], f: &Filters, workflow: Option<&str>) -> BTreeSet<String> {
    all.iter()
        .filter(|a| workflow.is_none_or(|w| a.workflow_id == w))
        .filter(|a| {
            f.labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => a.metadata.get(k).map(String::as_str) == Some(v),
                None => a.metadata.contains_key(l),
            })
        })
        .filter(|a| {
            f.params.iter().all(|(name, v)| match *name {
                "contentType" => match v.strip_suffix('*') {
                    Some(family) => a.content_type.starts_with(family),
                    None => a.content_type == *v,
                },
                "createdBy" => a.created_by == *v,
                "q" => a.path.to_lowercase().contains(&v.to_lowercase()),
                "library" => a.lifecycle.library.to_string() == *v,
                "sha256" => a.sha256 == *v,
                "prefix" => a.path.starts_with(v.as_str()),
                "createdAfter" => a.created_at > *v,
                other => panic!("{other}"),
            })
        })
        .map(|a| a.artifact_id.clone())
        .collect()
}

/// A library order (`sort`, `order`) as defined for users (SPEC §14),
/// written independently of the index keys: by size then id, or by path
/// (bytes) then workflow then id; `desc` the exact reverse, ties included.
fn brute_order(all: &[Artifact], ids: &BTreeSet<String>, sort: &str, order: &str) -> Vec<String> {
    let mut chosen: Vec<&Artifact> = all
        .iter()
        .filter(|a| ids.contains(&a.artifact_id))
        .collect();
    match sort {
        "size" => chosen.sort_by(|a, b| (a.size, &a.artifact_id).cmp(&(b.size, &b.artifact_id))),
        "path" => chosen.sort_by(|a, b| {
            (a.path.as_bytes(), &a.workflow_id, &a.artifact_id).cmp(&(
                b.path.as_bytes(),
                &b.workflow_id,
                &b.artifact_id,
            ))
        }),
        other => panic!("{other}"),
    }
    if order == "desc" {
        chosen.reverse();
    }
    chosen.into_iter().map(|a| a.artifact_id.clone()).collect()
}

/// A listing call with the search, cursor and limit; repeated `label=` last
/// (they must be in the raw query string).
fn search_call(base: &Call, f: &Filters, limit: usize, cursor: Option<&str>) -> Call {
    let mut call = base.clone().query("limit", &limit.to_string());
    for (name, value) in &f.params {
        call = call.query(name, value);
    }
    if let Some(c) = cursor {
        call = call.query("cursor", c);
    }
    let labels: Vec<&str> = f.labels.iter().map(String::as_str).collect();
    if !labels.is_empty() {
        call = call.query_repeated("label", &labels);
    }
    call
}

/// Every page of a search: the ids in order, and the pages it took.
async fn walk(env: &TestEnv, base: &Call, f: &Filters, limit: usize) -> (Vec<Value>, usize) {
    let mut cursor: Option<String> = None;
    let mut all = Vec::new();
    for pages in 1..=200 {
        let response = list(env, search_call(base, f, limit, cursor.as_deref())).await;
        let body = json_body(&response);
        assert_eq!(response.status(), 200, "{f:?}: {body}");
        let artifacts = body["artifacts"].as_array().unwrap();
        assert!(artifacts.len() <= limit);
        assert!(body["stoppedEarly"].is_boolean());
        all.extend(artifacts.iter().cloned());
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (all, pages),
        }
    }
    panic!("{f:?}: no end after 200 pages");
}

#[tokio::test]
async fn every_search_returns_exactly_the_brute_force_answer_once_on_both_listings() {
    let env = TestEnv::new().await;
    let reader = Caller::reader(ORG);
    let mut rng = Rng(0x5eed_0013);
    let mut all: Vec<Artifact> = (0..500).map(|i| random_artifact(&mut rng, i)).collect();
    // Ties for the size and path orders: repeated sizes (and the largest
    // upload, 5 GiB: more digits than the rest), one path in every
    // workflow, and paths that order before `#`.
    for (i, a) in all.iter_mut().enumerate() {
        if i % 4 == 0 {
            a.size = *rng.pick(&[0, 7, 5 << 30]);
        }
    }
    for (i, w) in WORKFLOWS.iter().enumerate() {
        all[i].workflow_id = (*w).to_owned();
        all[i].path = "docs/same.md".into();
        all[3 + i].workflow_id = (*w).to_owned();
        all[3 + i].path = ["docs/same.md!", "docs/same.md b", "docs/same.mdx"][i].into();
    }
    for a in &mut all {
        a.name = a.path.rsplit('/').next().unwrap().to_owned();
    }
    seed(&env, ORG, &all).await;
    // The same content in another org is never found.
    let foreign: Vec<Artifact> = (0..30)
        .map(|i| random_artifact(&mut rng, 1000 + i))
        .collect();
    seed(&env, "zenith", &foreign).await;
    let hashes: Vec<String> = all
        .iter()
        .map(|a| a.sha256.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let by_id: BTreeMap<&str, &Artifact> =
        all.iter().map(|a| (a.artifact_id.as_str(), a)).collect();
    let mut combos: Vec<Filters> = (0..50).map(|_| random_filters(&mut rng, &hashes)).collect();
    // Each filter alone, too.
    combos.push(Filters {
        params: vec![],
        labels: vec!["app.name=x=y".into()],
    });
    combos.push(Filters {
        params: vec![],
        labels: vec!["tier".into(), "env=prod".into()],
    });
    combos.push(Filters {
        params: vec![("contentType", "image/svg+xml".into())],
        labels: vec![],
    });
    combos.push(Filters {
        params: vec![("q", "PROWLER-report".into())],
        labels: vec![],
    });
    combos.push(Filters {
        params: vec![("sha256", hashes[0].to_uppercase())],
        labels: vec![],
    });
    let mut checked = 0;
    let mut sorted_checked = 0;
    let norm_has_sha = |f: &Filters| f.params.iter().any(|(name, _)| *name == "sha256");
    for (n, f) in combos.iter().enumerate() {
        let limit = [10, 40, 200][n % 3];
        let listings: Vec<(Call, Option<&str>)> = vec![
            (Call::list_library().by(&reader), None),
            (
                Call::list_library()
                    .query("workflowId", WORKFLOWS[n % 3])
                    .by(&reader),
                Some(WORKFLOWS[n % 3]),
            ),
            (
                Call::list_workflow(WORKFLOWS[(n + 1) % 3]).by(&reader),
                Some(WORKFLOWS[(n + 1) % 3]),
            ),
        ];
        for (base, workflow) in listings {
            // Sent as generated (upper-case hex is accepted); the brute
            // force compares the lower-cased hash.
            let mut norm = f.clone();
            for p in &mut norm.params {
                if p.0 == "sha256" {
                    p.1 = p.1.to_lowercase();
                }
            }
            let expected = brute(&all, &norm, workflow);
            let (got, _) = walk(&env, &base, f, limit).await;
            let ids: Vec<String> = got
                .iter()
                .map(|a| a["artifactId"].as_str().unwrap().to_owned())
                .collect();
            let unique: BTreeSet<String> = ids.iter().cloned().collect();
            assert_eq!(unique.len(), ids.len(), "{f:?} {workflow:?}: listed twice");
            assert_eq!(unique, expected, "{f:?} {workflow:?}");
            // Each is the artifact as seeded (library included).
            for a in &got {
                let seeded = by_id[a["artifactId"].as_str().unwrap()];
                assert_eq!(*a, serde_json::to_value(seeded).unwrap());
            }
            checked += 1;
        }
        // The library's size and path orders (SPEC §14) with the same
        // search, org-wide and within a workflow, sometimes with a prefix
        // or a date: exactly the brute-force order, each artifact once.
        if norm_has_sha(f) {
            continue;
        }
        let (sort, order) = [
            ("size", "asc"),
            ("size", "desc"),
            ("path", "asc"),
            ("path", "desc"),
        ][n % 4];
        let mut sorted = f.clone();
        match n % 5 {
            0 => sorted.params.push(("prefix", "docs/".into())),
            1 => sorted
                .params
                .push(("createdAfter", "2026-03-01T04:00:00.000Z".into())),
            _ => {}
        }
        let workflow = (n % 3 == 0).then_some(WORKFLOWS[n % 3]);
        let mut base = Call::list_library()
            .query("sort", sort)
            .query("order", order)
            .by(&reader);
        if let Some(w) = workflow {
            base = base.query("workflowId", w);
        }
        let expected = brute_order(&all, &brute(&all, &sorted, workflow), sort, order);
        let (got, _) = walk(&env, &base, &sorted, [10, 40, 200][n % 3]).await;
        let ids: Vec<String> = got
            .iter()
            .map(|a| a["artifactId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, expected, "{sort} {order} {sorted:?} {workflow:?}");
        sorted_checked += 1;
    }
    assert!(checked >= 150, "{checked}");
    assert!(sorted_checked >= 30, "{sorted_checked}");
    // The ties are in the data and in the order: equal sizes by id, equal
    // paths by workflow; "docs/same.md" before "docs/same.md b" and "!".
    let sizes = brute_order(
        &all,
        &by_id.keys().map(|k| (*k).to_owned()).collect(),
        "size",
        "asc",
    );
    assert!(
        sizes
            .windows(2)
            .any(|w| by_id[w[0].as_str()].size == by_id[w[1].as_str()].size)
    );
    let none = Filters {
        params: vec![("prefix", "docs/same.md".into())],
        labels: vec![],
    };
    let (got, _) = walk(
        &env,
        &Call::list_library().query("sort", "path").by(&reader),
        &none,
        2,
    )
    .await;
    let shown: Vec<(&str, &str)> = got
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap(),
                a["workflowId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("docs/same.md", "run-a"),
            ("docs/same.md", "run-b"),
            ("docs/same.md", "run-c"),
            ("docs/same.md b", "run-b"),
            ("docs/same.md!", "run-a"),
            ("docs/same.mdx", "run-c"),
        ]
    );
}

#[tokio::test]
async fn sha256_finds_every_artifact_holding_that_content_and_nothing_else() {
    let env = TestEnv::new().await;
    let writer = Caller::writer(ORG);
    let reader = Caller::reader(ORG);
    let same = b"the same bytes".to_vec();
    let hash = hex::encode(Sha256::digest(&same));
    let mut expected = BTreeSet::new();
    for (wf, path) in [("run-a", "x.txt"), ("run-a", "y/z.txt"), ("run-b", "x.txt")] {
        let a = put(&env, Call::upload(wf, path, &same).by(&writer)).await;
        expected.insert(a["artifact"]["artifactId"].as_str().unwrap().to_owned());
    }
    // Was the same content, is no longer: not found (the latest version counts).
    let moved = put(&env, Call::upload("run-a", "moved.txt", &same).by(&writer)).await;
    put(
        &env,
        Call::upload("run-a", "moved.txt", b"other").by(&writer),
    )
    .await;
    put(
        &env,
        Call::upload("run-c", "other.txt", b"other").by(&writer),
    )
    .await;
    put(
        &env,
        Call::upload("run-a", "x.txt", &same).by(&Caller::writer("zenith")),
    )
    .await;
    let f = Filters {
        params: vec![("sha256", hash.clone())],
        labels: vec![],
    };
    let (got, _) = walk(&env, &Call::list_library().by(&reader), &f, 2).await;
    let ids: BTreeSet<String> = got
        .iter()
        .map(|a| a["artifactId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, expected);
    assert!(!ids.contains(moved["artifact"]["artifactId"].as_str().unwrap()));
    let (got, _) = walk(&env, &Call::list_workflow("run-a").by(&reader), &f, 10).await;
    let paths: Vec<&str> = got.iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["x.txt", "y/z.txt"]);
    let with_prefix = Filters {
        params: vec![("sha256", hash.clone()), ("prefix", "y/".into())],
        labels: vec![],
    };
    let (got, _) = walk(
        &env,
        &Call::list_library()
            .query("workflowId", "run-a")
            .by(&reader),
        &with_prefix,
        10,
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["path"], "y/z.txt");
}

#[tokio::test]
async fn labels_are_set_at_write_and_the_library_flag_publishes() {
    let env = TestEnv::new().await;
    let writer = Caller::writer(ORG);
    let reader = Caller::reader(ORG);
    let mut published = BTreeSet::new();
    for i in 0..5 {
        let mut call = Call::upload("run-1", &format!("r{i}.json"), b"{}")
            .header(
                "x-artifact-meta-env",
                if i % 2 == 0 { "prod" } else { "dev" },
            )
            .header("x-artifact-meta-app.name", "scanner")
            .by(&writer);
        if i < 3 {
            call = call.header("x-artifact-library", "true");
        }
        let a = put(&env, call).await;
        assert_eq!(a["artifact"]["library"], i < 3);
        assert_eq!(a["artifact"]["metadata"]["app.name"], "scanner");
        if i < 3 {
            published.insert(a["artifact"]["artifactId"].as_str().unwrap().to_owned());
        }
    }
    let lib = Filters {
        params: vec![("library", "true".into())],
        labels: vec![],
    };
    let ids = |got: &[Value]| -> BTreeSet<String> {
        got.iter()
            .map(|a| a["artifactId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (got, pages) = walk(&env, &Call::list_library().by(&reader), &lib, 1).await;
    assert_eq!(ids(&got), published);
    assert_eq!(pages, 3, "one per page, the last knows it is the last");
    // A new version keeps the flag; an explicit false withdraws it.
    let kept = put(&env, Call::upload("run-1", "r0.json", b"[1]").by(&writer)).await;
    assert_eq!(kept["artifact"]["library"], true);
    let gone = put(
        &env,
        Call::upload("run-1", "r1.json", b"[2]")
            .header("x-artifact-library", "false")
            .by(&writer),
    )
    .await;
    assert_eq!(gone["artifact"]["library"], false);
    assert!(published.remove(gone["artifact"]["artifactId"].as_str().unwrap()));
    let withdrawn = put(
        &env,
        Call::upload("run-1", "r2.json", b"[3]")
            .header("x-artifact-library", "FALSE")
            .by(&writer),
    )
    .await;
    assert!(published.remove(withdrawn["artifact"]["artifactId"].as_str().unwrap()));
    assert_eq!(published.len(), 1);
    // A cursor taken before the change stays valid.
    let first = json_body(
        &list(
            &env,
            search_call(&Call::list_library().by(&reader), &lib, 1, None),
        )
        .await,
    );
    let (got, _) = walk(&env, &Call::list_library().by(&reader), &lib, 1).await;
    assert_eq!(ids(&got), published);
    let next = list(
        &env,
        search_call(
            &Call::list_library().by(&reader),
            &lib,
            1,
            first["nextCursor"].as_str(),
        ),
    )
    .await;
    assert_eq!(next.status(), 200);
    // Without library=: every artifact, library flag shown on each.
    let every = json_body(&list(&env, Call::list_library().by(&reader)).await);
    assert_eq!(every["artifacts"].as_array().unwrap().len(), 5);
    // Labels filter both listings.
    let prod = Filters {
        params: vec![],
        labels: vec!["env=prod".into(), "app.name".into()],
    };
    let (got, _) = walk(&env, &Call::list_workflow("run-1").by(&reader), &prod, 10).await;
    let paths: Vec<&str> = got.iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["r0.json", "r2.json", "r4.json"]);
    // Bad labels and flags at write: 400 naming them, nothing written.
    for (name, value, field) in [
        ("x-artifact-meta-env", "v".repeat(257), "metadata"),
        ("x-artifact-library", "yes".to_owned(), "x-artifact-library"),
    ] {
        let r = upload(
            &env,
            Call::upload("run-1", "bad.json", b"{}")
                .header(name, &value)
                .by(&writer),
        )
        .await;
        assert_eq!(r.status(), 400);
        assert_eq!(json_body(&r)["field"], field);
    }
    let r = download(&env, Call::by_path("run-1", "bad.json").by(&reader)).await;
    assert_eq!(r.status(), 404);
    // The uploads body takes "library" too.
    let r = presign(
        &env,
        Call::create_upload(
            "run-1",
            &json!({"path": "big.bin", "size": 10, "library": true}),
        )
        .by(&writer),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&bytes(&r)));
    let r = presign(
        &env,
        Call::create_upload(
            "run-1",
            &json!({"path": "big.bin", "size": 10, "library": "yes"}),
        )
        .by(&writer),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_library_sorts_by_creation_either_way_and_by_path_within_a_workflow() {
    let env = TestEnv::new().await;
    let reader = Caller::reader(ORG);
    let mut rng = Rng(7);
    let all: Vec<Artifact> = (0..40)
        .map(|i| {
            let mut a = random_artifact(&mut rng, i);
            a.workflow_id = "run-s".into();
            a
        })
        .collect();
    seed(&env, ORG, &all).await;
    let none = Filters {
        params: vec![],
        labels: vec![],
    };
    let order = |f: &Filters, base: Call| {
        let env = &env;
        let f = f.clone();
        async move {
            walk(env, &base, &f, 7)
                .await
                .0
                .iter()
                .map(|a| a["artifactId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let mut by_created: Vec<&Artifact> = all.iter().collect();
    by_created
        .sort_by(|a, b| (&a.created_at, &a.artifact_id).cmp(&(&b.created_at, &b.artifact_id)));
    let oldest: Vec<String> = by_created.iter().map(|a| a.artifact_id.clone()).collect();
    let newest: Vec<String> = oldest.iter().rev().cloned().collect();
    assert_eq!(order(&none, Call::list_library().by(&reader)).await, newest);
    assert_eq!(
        order(
            &none,
            Call::list_library()
                .query("sort", "createdAt")
                .query("order", "asc")
                .by(&reader)
        )
        .await,
        oldest
    );
    let mut by_path: Vec<&Artifact> = all.iter().collect();
    by_path.sort_by(|a, b| a.path.cmp(&b.path));
    let a_z: Vec<String> = by_path.iter().map(|a| a.artifact_id.clone()).collect();
    let path_sorted = |order_: &'static str| {
        Call::list_library()
            .query("workflowId", "run-s")
            .query("sort", "path")
            .query("order", order_)
            .by(&reader)
    };
    assert_eq!(order(&none, path_sorted("asc")).await, a_z);
    let z_a: Vec<String> = a_z.iter().rev().cloned().collect();
    assert_eq!(order(&none, path_sorted("desc")).await, z_a);
    // A cursor of one order is not a position in another.
    let first = json_body(&list(&env, search_call(&path_sorted("asc"), &none, 7, None)).await);
    let cursor = first["nextCursor"].as_str().unwrap();
    let r = list(
        &env,
        search_call(&path_sorted("desc"), &none, 7, Some(cursor)),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_body(&r)["field"], "cursor");
}

/// The ids of every page of a library order.
async fn ordered(env: &TestEnv, call: Call) -> Vec<String> {
    let none = Filters {
        params: vec![],
        labels: vec![],
    };
    walk(env, &call, &none, 2)
        .await
        .0
        .iter()
        .map(|a| a["artifactId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn size_order_follows_new_versions_and_the_trash_and_path_order_spans_workflows() {
    let env = TestEnv::new().await;
    let writer = Caller::writer(ORG);
    let reader = Caller::reader(ORG);
    let id_of = |v: &Value| v["artifact"]["artifactId"].as_str().unwrap().to_owned();
    // (workflow, path, size)
    let mut ids = Vec::new();
    for (wf, path, size) in [
        ("run-1", "b.txt", 30usize),
        ("run-1", "a.txt", 10),
        ("run-2", "a.txt", 20),
        ("run-2", "c/d.txt", 20),
    ] {
        let a = put(&env, Call::upload(wf, path, &vec![b'x'; size]).by(&writer)).await;
        ids.push(id_of(&a));
    }
    // Another org's artifacts are in no order of ours.
    put(
        &env,
        Call::upload("run-1", "a.txt", b"1").by(&Caller::writer("zenith")),
    )
    .await;
    let (b1, a1, a2, d2) = (
        ids[0].as_str(),
        ids[1].as_str(),
        ids[2].as_str(),
        ids[3].as_str(),
    );
    let by = |sort: &str, order: &str| {
        Call::list_library()
            .query("sort", sort)
            .query("order", order)
            .by(&reader)
    };
    // Equal sizes by id.
    let (lo20, hi20) = if a2 < d2 { (a2, d2) } else { (d2, a2) };
    assert_eq!(ordered(&env, by("size", "asc")).await, [a1, lo20, hi20, b1]);
    assert_eq!(
        ordered(&env, by("size", "desc")).await,
        [b1, hi20, lo20, a1]
    );
    // Default: smallest first.
    assert_eq!(
        ordered(&env, Call::list_library().query("sort", "size").by(&reader)).await,
        [a1, lo20, hi20, b1]
    );
    assert_eq!(
        ordered(&env, by("path", "asc")).await,
        [a1, a2, b1, d2],
        "a.txt of run-1, of run-2, b.txt, c/d.txt"
    );
    assert_eq!(
        ordered(&env, by("size", "asc").query("workflowId", "run-2")).await,
        [lo20, hi20]
    );

    // A new version of another size moves the artifact (both partitions);
    // its path stays.
    let v2 = put(
        &env,
        Call::upload("run-1", "a.txt", &[b'y'; 40]).by(&writer),
    )
    .await;
    assert_eq!(v2["version"]["version"], 2);
    assert_eq!(ordered(&env, by("size", "asc")).await, [lo20, hi20, b1, a1]);
    assert_eq!(
        ordered(&env, by("size", "desc").query("workflowId", "run-1")).await,
        [a1, b1]
    );
    assert_eq!(ordered(&env, by("path", "asc")).await, [a1, a2, b1, d2]);

    // Deleted: in no order (but in the trash); restored: back in place.
    let r = versions(&env, Call::delete_artifact(b1).by(&writer)).await;
    assert_eq!(r.status(), 204, "{}", String::from_utf8_lossy(&bytes(&r)));
    assert_eq!(ordered(&env, by("size", "asc")).await, [lo20, hi20, a1]);
    assert_eq!(ordered(&env, by("path", "desc")).await, [d2, a2, a1]);
    assert_eq!(
        ordered(&env, by("size", "asc").query("workflowId", "run-1")).await,
        [a1]
    );
    let trash = ordered(
        &env,
        Call::list_library().query("state", "deleted").by(&reader),
    )
    .await;
    assert_eq!(trash, [b1]);
    let r = versions(&env, Call::restore(b1).by(&writer)).await;
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(&bytes(&r)));
    assert_eq!(ordered(&env, by("size", "asc")).await, [lo20, hi20, b1, a1]);
    assert_eq!(ordered(&env, by("path", "asc")).await, [a1, a2, b1, d2]);

    // Filters combine with the order; a cursor of one order is no position
    // in another.
    let f = Filters {
        params: vec![("prefix", "a".into())],
        labels: vec![],
    };
    let (got, _) = walk(&env, &by("size", "desc"), &f, 1).await;
    let got: Vec<&str> = got
        .iter()
        .map(|a| a["artifactId"].as_str().unwrap())
        .collect();
    assert_eq!(got, [a1, a2]);
    let none = Filters {
        params: vec![],
        labels: vec![],
    };
    let first = json_body(&list(&env, search_call(&by("size", "asc"), &none, 1, None)).await);
    let cursor = first["nextCursor"].as_str().unwrap();
    for other in [
        by("size", "desc"),
        by("path", "asc"),
        by("createdAt", "asc"),
    ] {
        let r = list(&env, search_call(&other, &none, 1, Some(cursor))).await;
        assert_eq!(r.status(), 400);
        assert_eq!(json_body(&r)["field"], "cursor");
    }
    let next = json_body(
        &list(
            &env,
            search_call(&by("size", "asc"), &none, 1, Some(cursor)),
        )
        .await,
    );
    assert_eq!(next["artifacts"][0]["artifactId"], hi20);
}

#[tokio::test]
async fn library_true_in_the_uploads_body_publishes_the_ingested_artifact_with_its_labels() {
    let env = TestEnv::new().await;
    let writer = Caller::writer(ORG);
    let reader = Caller::reader(ORG);
    // Presign (the uploads route), PUT to S3, ingest from the bucket's
    // event: the artifact committed by ingest.
    let via_s3 = |path: &'static str, extra: Value| {
        let (env, writer, reader) = (&env, &writer, &reader);
        async move {
            let body = format!("content of {path}").into_bytes();
            let mut request = json!({"path": path, "size": body.len(), "artifactType": "report"});
            for (k, v) in extra.as_object().unwrap() {
                request[k] = v.clone();
            }
            let r = presign(env, Call::create_upload("run-up", &request).by(writer)).await;
            assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&bytes(&r)));
            let session = json_body(&r);
            let upload = artifacts::uploads::PresignedUpload {
                upload_id: session["uploadId"].as_str().unwrap().to_owned(),
                url: session["url"].as_str().unwrap().to_owned(),
                method: "PUT",
                headers: serde_json::from_value(session["headers"].clone()).unwrap(),
                expires_at: session["expiresAt"].as_str().unwrap().to_owned(),
            };
            let version = harness::stage(&upload, body.clone()).await;
            let key = artifacts::uploads::staging_key(ORG, &upload.upload_id);
            let mut event: Value =
                serde_json::from_str(include_str!("../../events/s3-put.json")).unwrap();
            let s3 = &mut event["Records"][0]["s3"];
            s3["bucket"]["name"] = json!(env.resources.bucket);
            s3["bucket"]["arn"] = json!(format!("arn:aws:s3:::{}", env.resources.bucket));
            s3["object"]["key"] = json!(key);
            s3["object"]["size"] = json!(body.len());
            s3["object"]["versionId"] = json!(version);
            artifacts_ingest::handler(
                &env.store,
                lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
            )
            .await
            .unwrap();
            let r = download(
                env,
                Call::by_path("run-up", path).query("meta", "").by(reader),
            )
            .await;
            assert_eq!(r.status(), 200, "{path} was ingested");
            json_body(&r)
        }
    };
    let published = via_s3(
        "published.json",
        json!({"library": true, "metadata": {"env": "prod", "team": "sec"}}),
    )
    .await;
    let private = via_s3(
        "private.json",
        json!({"library": false, "metadata": {"env": "prod"}}),
    )
    .await;
    let plain = via_s3("plain.json", json!({})).await;
    let lib = Filters {
        params: vec![("library", "true".into())],
        labels: vec![],
    };
    let (got, _) = walk(&env, &Call::list_library().by(&reader), &lib, 10).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["artifactId"], published["artifactId"]);
    assert_eq!(got[0]["library"], true);
    assert_eq!(got[0]["metadata"], json!({"env": "prod", "team": "sec"}));
    assert_eq!(got[0]["latestVersion"], 1);
    // The labels filter it, in every order of the library.
    for sort in ["createdAt", "path", "size"] {
        let f = Filters {
            params: vec![("library", "true".into())],
            labels: vec!["team=sec".into()],
        };
        let (got, _) = walk(
            &env,
            &Call::list_library().query("sort", sort).by(&reader),
            &f,
            10,
        )
        .await;
        let ids: Vec<&Value> = got.iter().map(|a| &a["artifactId"]).collect();
        assert_eq!(ids, [&published["artifactId"]], "{sort}");
    }
    // library=false lists the two others, the explicit and the absent flag.
    let not = Filters {
        params: vec![("library", "false".into())],
        labels: vec![],
    };
    let (got, _) = walk(&env, &Call::list_library().by(&reader), &not, 10).await;
    let ids: BTreeSet<&str> = got
        .iter()
        .map(|a| a["artifactId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            private["artifactId"].as_str().unwrap(),
            plain["artifactId"].as_str().unwrap()
        ])
    );
    assert_eq!(private["metadata"], json!({"env": "prod"}));
    assert_eq!(plain["library"], false);
}

#[tokio::test]
async fn the_bounded_backfill_keys_older_artifacts_into_the_size_and_path_orders() {
    let env = TestEnv::new().await;
    let reader = Caller::reader(ORG);
    let mut rng = Rng(0xbacf);
    let all: Vec<Artifact> = (0..60).map(|i| random_artifact(&mut rng, i)).collect();
    // Two thirds written as before the indexes existed (no gsi5/gsi6 keys);
    // one of those in the trash; another org's as old.
    let mut items = Vec::new();
    let mut old = BTreeSet::new();
    for (i, a) in all.iter().enumerate() {
        let mut a = a.clone();
        if i == 1 {
            a.lifecycle.deleted_at = Some("2026-03-02T00:00:00.000Z".into());
        }
        for mut item in metadata::artifact_items(ORG, &a) {
            if i % 3 != 0 {
                for k in ["gsi5pk", "gsi5sk", "gsi6pk", "gsi6sk"] {
                    item.remove(k);
                }
            }
            if i == 1 && item["sk"] != aws_sdk_dynamodb::types::AttributeValue::S("#META".into()) {
                continue; // a trashed artifact has no by-path item
            }
            items.push(item);
        }
        if i % 3 != 0 && i != 1 {
            old.insert(a.artifact_id.clone());
        }
    }
    let theirs: Vec<Artifact> = (0..5).map(|i| random_artifact(&mut rng, 100 + i)).collect();
    for a in &theirs {
        for mut item in metadata::artifact_items("zenith", a) {
            for k in ["gsi5pk", "gsi5sk", "gsi6pk", "gsi6sk"] {
                item.remove(k);
            }
            items.push(item);
        }
    }
    seed_items(&env, items).await;
    let live: BTreeSet<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, a)| a.artifact_id.clone())
        .collect();
    let by = |sort: &str| Call::list_library().query("sort", sort).by(&reader);
    let listed = |ids: Vec<String>| ids.into_iter().collect::<BTreeSet<_>>();
    let before = listed(ordered(&env, by("size")).await);
    assert_eq!(
        before,
        &live - &old,
        "older artifacts are in no size order yet"
    );

    // Bounded: stops after the items it may evaluate, and says so.
    let first = env.store.backfill_order_keys(ORG, None, 10).await.unwrap();
    assert!(first.examined <= 10 && !first.done, "{first:?}");
    let mut written = first.written;
    let mut next = first.next;
    for _ in 0..20 {
        assert!(next.is_some());
        let run = env.store.backfill_order_keys(ORG, next, 10).await.unwrap();
        assert!(run.examined <= 10);
        written += run.written;
        next = run.next;
        if run.done {
            break;
        }
    }
    assert!(next.is_none());
    assert_eq!(written, old.len() as u64, "each older live artifact once");
    let again = env
        .store
        .backfill_order_keys(ORG, None, 1000)
        .await
        .unwrap();
    assert_eq!((again.written, again.done), (0, true), "{again:?}");
    for sort in ["size", "path"] {
        let ids = ordered(&env, by(sort)).await;
        let expected = brute_order(&all, &live, sort, "asc");
        assert_eq!(ids, expected, "{sort}: every live artifact, in order, once");
    }
    // The trashed one stays out; another org's artifacts are untouched.
    let zenith = Caller::reader("zenith");
    let r = list(&env, Call::list_library().query("sort", "size").by(&zenith)).await;
    assert_eq!(json_body(&r)["artifacts"], json!([]));
    let theirs_run = env
        .store
        .backfill_order_keys("zenith", None, 1000)
        .await
        .unwrap();
    assert_eq!((theirs_run.written, theirs_run.done), (5, true));
}

// 5. Bad input.

#[tokio::test]
async fn bad_search_input_is_a_400_naming_the_parameter_and_reads_nothing() {
    let env = TestEnv::new().await;
    // A store whose table does not exist: any read would be a 500.
    let mut config = env.store.config.clone();
    config.table = "no-such-table".into();
    let blind = TestEnv {
        sdk: env.sdk.clone(),
        resources: env.resources.clone(),
        store: artifacts::Store::new(config, &env.sdk),
    };
    let reader = Caller::reader(ORG);
    let ok = list(&blind, Call::list_library().by(&reader)).await;
    assert_eq!(ok.status(), 500, "the blind store cannot read");
    let long_q = "q".repeat(257);
    let cases: Vec<(Call, &str)> = vec![
        (
            Call::list_library().query_repeated("label", &["Env=prod"]),
            "label",
        ),
        (
            Call::list_library().query_repeated("label", &["=prod"]),
            "label",
        ),
        (Call::list_library().query_repeated("label", &[""]), "label"),
        (
            Call::list_workflow("w").query_repeated("label", &["ok=1", "a b=2"]),
            "label",
        ),
        (Call::list_library().query("sort", "name"), "sort"),
        (Call::list_library().query("sort", "Size"), "sort"),
        (Call::list_library().query("sort", "size "), "sort"),
        (
            Call::list_library()
                .query("sort", "size")
                .query("sha256", &"a".repeat(64)),
            "sort",
        ),
        (
            Call::list_library()
                .query("sort", "path")
                .query("state", "deleted"),
            "sort",
        ),
        (
            Call::list_library().raw_query("sort=size&sort=path"),
            "sort",
        ),
        (Call::list_library().query("order", "sideways"), "order"),
        (Call::list_workflow("w").query("sort", "path"), "query"),
        (Call::list_library().query("q", &long_q), "q"),
        (Call::list_workflow("w").query("q", &long_q), "q"),
        (
            Call::list_library().query("contentType", "text"),
            "contentType",
        ),
        (Call::list_library().query("sha256", "abc"), "sha256"),
        (Call::list_library().query("library", "1"), "library"),
        (Call::list_library().raw_query("q=a&q=b"), "q"),
    ];
    for (call, field) in cases {
        let query = call.request().uri().query().map(str::to_owned);
        let r = list(&blind, call.by(&reader)).await;
        let body = json_body(&r);
        assert_eq!(r.status(), 400, "{query:?}: {body}");
        assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
        assert_eq!(body["field"], field, "{query:?}");
    }
    // The parser says the same without any store.
    assert!(ListQuery::library([("q", "ok"), ("label", "a=b"), ("label", "c")]).is_ok());
}

// 4. Resolve.

async fn resolve(env: &TestEnv, caller: &Caller, body: &Value) -> Response<Body> {
    presign(env, Call::resolve(body).by(caller)).await
}

#[tokio::test]
async fn resolve_answers_each_ref_and_its_link_serves_exactly_the_pinned_version() {
    let env = TestEnv::new().await;
    let writer = Caller::writer(ORG);
    let reader = Caller::reader(ORG);
    let mut id = String::new();
    for v in 1..=3u8 {
        let a = put(
            &env,
            Call::upload("run-7", "inputs/data v.csv", &[b'a' + v; 10]).by(&writer),
        )
        .await;
        id = a["artifact"]["artifactId"].as_str().unwrap().to_owned();
    }
    let theirs = put(
        &env,
        Call::upload("run-7", "secret.txt", b"zenith").by(&Caller::writer("zenith")),
    )
    .await;
    let their_id = theirs["artifact"]["artifactId"].as_str().unwrap();
    let refs = vec![
        "artifact://run-7/inputs/data v.csv".to_owned(),
        "artifact://run-7/inputs/data v.csv@2".to_owned(),
        format!("artifact://id/{id}"),
        format!("artifact://id/{id}@1"),
        "artifact://run-7/missing.csv".to_owned(),
        "artifact://run-7/inputs/data v.csv@9".to_owned(),
        "artifact://run-7/secret.txt".to_owned(),
        format!("artifact://id/{their_id}"),
        "s3://bucket/key".to_owned(),
        "artifact://run-7/../x".to_owned(),
    ];
    let r = resolve(&env, &reader, &json!({ "refs": refs })).await;
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(&bytes(&r)));
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    let results = json_body(&r)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), refs.len());
    for (result, text) in results.iter().zip(&refs) {
        assert_eq!(result["ref"], *text);
    }
    let pinned = [(0, 3u8), (1, 2), (2, 3), (3, 1)];
    for (i, v) in pinned {
        let r = &results[i];
        assert_eq!(r["version"], v, "{r}");
        assert_eq!(r["artifact"]["artifactId"], id.as_str());
        let expected = vec![b'a' + v; 10];
        assert_eq!(r["sha256"], hex::encode(Sha256::digest(&expected)));
        assert_eq!(r["size"], 10);
        // ~15 minutes.
        let url = r["url"].as_str().unwrap();
        let token = url.rsplit('/').next().unwrap();
        let served = download(&env, Call::link(token)).await;
        assert_eq!(served.status(), 200);
        assert_eq!(bytes(&served), expected, "ref {i} serves version {v}");
        assert_eq!(
            header(&served, "x-artifact-version"),
            Some(v.to_string().as_str())
        );
    }
    // Missing, another org's (by path and by id): the same plain 404.
    let missing = &results[4]["problem"];
    assert_eq!(missing["status"], 404);
    for i in [5, 6, 7] {
        assert_eq!(results[i]["problem"]["status"], 404, "{}", results[i]);
        assert!(results[i].get("url").is_none());
    }
    assert_eq!(results[6]["problem"], *missing);
    assert_eq!(results[7]["problem"], *missing);
    for i in [8, 9] {
        assert_eq!(results[i]["problem"]["status"], 400);
        assert_eq!(results[i]["problem"]["field"], "ref");
    }

    // Malformed batches: 400 naming the field, nothing made.
    let links_before = json_body(&presign(&env, Call::list_links(&id).by(&reader)).await)["links"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(links_before, 4);
    let too_many = vec!["artifact://run-7/inputs/data v.csv"; 101];
    for (call, field) in [
        (Call::resolve(&json!({ "refs": too_many })), "refs"),
        (Call::resolve(&json!({})), "refs"),
        (Call::resolve(&json!({ "refs": [1] })), "refs"),
        (
            Call::resolve(&json!({ "refs": ["x"], "expiresIn": 1 })),
            "expiresIn",
        ),
        (Call::resolve(&json!({})).raw_body("not json"), "body"),
    ] {
        let r = presign(&env, call.by(&reader)).await;
        assert_eq!(r.status(), 400);
        assert_eq!(json_body(&r)["field"], field);
    }
    // Scope: artifacts:read.
    let r = resolve(
        &env,
        &Caller::new(ORG, "artifacts:write"),
        &json!({ "refs": [refs[0]] }),
    )
    .await;
    assert_eq!(r.status(), 403);
    let links_after = json_body(&presign(&env, Call::list_links(&id).by(&reader)).await)["links"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(links_after, links_before);
}

// Measurement (issue 13): items read per artifact returned for a selective
// label filter, and what the top-up bound does to it. Run with
// `cargo test -p artifacts-tests --test find -- --ignored measure --nocapture`.

#[tokio::test]
#[ignore = "a measurement: seeds 10,000 artifacts"]
async fn measure_selective_label_filter_on_10000_artifacts() {
    let env = TestEnv::new().await;
    let reader = Caller::reader(ORG);
    let principal = artifacts::auth::Principal {
        org: ORG.into(),
        subject: reader.sub.clone(),
        scopes: vec!["artifacts:read".into()],
    };
    let mut rng = Rng(10_000);
    let started = std::time::Instant::now();
    let all: Vec<Artifact> = (0..10_000)
        .map(|i| {
            let mut a = random_artifact(&mut rng, i);
            if i % 100 == 37 {
                a.metadata.insert("sel".into(), "yes".into());
            }
            a
        })
        .collect();
    seed(&env, ORG, &all).await;
    eprintln!(
        "seeded 10,000 artifacts in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "| bound (Queries/page) | pages | Queries | items read | returned | items read per returned | pages stopped early |"
    );
    eprintln!("|---|---|---|---|---|---|---|");
    for rounds in [1usize, 3, 10, 100] {
        let mut cursor: Option<String> = None;
        let (mut pages, mut queries, mut read, mut returned, mut early) = (0, 0, 0, 0, 0);
        loop {
            let mut params = vec![("label", "sel=yes")];
            if let Some(c) = &cursor {
                params.push(("cursor", c.as_str()));
            }
            let mut q = ListQuery::library(params).unwrap();
            q.max_rounds = rounds;
            let page = env.store.list(&principal, &q).await.unwrap();
            pages += 1;
            queries += page.stats.queries;
            read += page.stats.items_read;
            returned += page.artifacts.len();
            early += usize::from(page.stopped_early);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(pages < 10_000);
        }
        assert_eq!(returned, 100);
        eprintln!(
            "| {rounds} | {pages} | {queries} | {read} | {returned} | {:.1} | {early} |",
            read as f64 / returned as f64
        );
    }
}

// Measurement (issue 13): what the size order reads per artifact listed,
// and what its indexes add to every write. Run with
// `cargo test -p artifacts-tests --test find -- --ignored measure_size --nocapture`.

/// DynamoDB's size of an item (attribute names plus values, as its
/// documentation counts them; numbers ≈ 1 byte per 2 digits + 1).
fn item_bytes(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    fn value(v: &V) -> usize {
        match v {
            V::S(s) => s.len(),
            V::N(n) => n.len().div_ceil(2) + 1,
            V::B(b) => b.as_ref().len(),
            V::Bool(_) | V::Null(_) => 1,
            V::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>(),
            V::L(l) => 3 + l.iter().map(|v| value(v) + 1).sum::<usize>(),
            V::Ss(s) => s.iter().map(String::len).sum(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// Write units one index is charged for an item going from `before` to
/// `after` (DynamoDB: entering = a put, leaving = a delete, a changed key =
/// both, an unchanged key with changed attributes = one update; each 1 KB
/// of the index item, all attributes projected).
fn index_wcu(
    index: &str,
    before: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    after: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> (usize, usize) {
    let key = |item: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >| {
        item.and_then(|i| {
            Some((
                i.get(&format!("{index}pk"))?.clone(),
                i.get(&format!("{index}sk"))?.clone(),
            ))
        })
    };
    let units = |i: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >| { i.map_or(0, |i| item_bytes(i).div_ceil(1024).max(1)) };
    let (kb, ka) = (key(before), key(after));
    match (kb, ka) {
        (None, None) => (0, 0),
        (None, Some(_)) => (1, units(after)),
        (Some(_), None) => (1, units(before)),
        (Some(b), Some(a)) if b != a => (2, units(before) + units(after)),
        (Some(_), Some(_)) if before != after => (1, units(before).max(units(after))),
        _ => (0, 0),
    }
}

#[tokio::test]
#[ignore = "a measurement: seeds 2,000 artifacts"]
async fn measure_size_order_reads_and_index_writes() {
    let env = TestEnv::new().await;
    let reader = Caller::reader(ORG);
    let writer = Caller::writer(ORG);
    let principal = artifacts::auth::Principal {
        org: ORG.into(),
        subject: reader.sub.clone(),
        scopes: vec!["artifacts:read".into()],
    };
    let mut rng = Rng(2_000);
    let all: Vec<Artifact> = (0..2_000).map(|i| random_artifact(&mut rng, i)).collect();
    seed(&env, ORG, &all).await;
    eprintln!(
        "| listing (2,000 artifacts, limit 100) | pages | Queries | items read | listed | items read per listed | first page (with totals) | each later page | stopped early |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("sort=size", &[("sort", "size")]),
        (
            "sort=size&order=desc",
            &[("sort", "size"), ("order", "desc")],
        ),
        (
            "sort=size&workflowId=run-a",
            &[("sort", "size"), ("workflowId", "run-a")],
        ),
        (
            "sort=size&library=true (1 in 3)",
            &[("sort", "size"), ("library", "true")],
        ),
        ("sort=path", &[("sort", "path")]),
        ("sort=createdAt (before)", &[]),
    ];
    for (name, params) in cases {
        let mut cursor: Option<String> = None;
        let (mut pages, mut queries, mut read, mut listed, mut early) = (0, 0, 0, 0, 0);
        let mut first_page = 0;
        loop {
            let mut p: Vec<(&str, &str)> = params.to_vec();
            p.push(("limit", "100"));
            if let Some(c) = &cursor {
                p.push(("cursor", c.as_str()));
            }
            let page = env
                .store
                .list(&principal, &ListQuery::library(p).unwrap())
                .await
                .unwrap();
            pages += 1;
            if pages == 1 {
                first_page = page.stats.items_read;
            }
            queries += page.stats.queries;
            read += page.stats.items_read;
            listed += page.artifacts.len();
            early += usize::from(page.stopped_early);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        eprintln!(
            "| {name} | {pages} | {queries} | {read} | {listed} | {:.2} | {first_page} | {:.1} | {early} |",
            read as f64 / listed as f64,
            (read - first_page) as f64 / (pages - 1).max(1) as f64
        );
    }

    // Index writes of each change, from the two artifact items before and
    // after it (read back from the table).
    let items = |id: String, wf: &'static str, path: &'static str| {
        let env = &env;
        async move {
            let by_id = env
                .store
                .metadata
                .item(
                    metadata::artifact_pk(ORG, &id),
                    metadata::ARTIFACT_SK.into(),
                )
                .await
                .unwrap();
            let by_path = env
                .store
                .metadata
                .item(metadata::workflow_pk(ORG, wf), metadata::path_sk(path))
                .await
                .unwrap();
            [by_id, by_path]
        }
    };
    eprintln!();
    eprintln!(
        "| change | gsi1 | gsi3 | gsi5 (new) | gsi6 (new) | new indexes: index writes / WCU |"
    );
    eprintln!("|---|---|---|---|---|---|");
    let first = put(
        &env,
        Call::upload("run-w", "docs/report.md", &[b'a'; 1000])
            .header("x-artifact-meta-env", "prod")
            .by(&writer),
    )
    .await;
    let id = first["artifact"]["artifactId"].as_str().unwrap().to_owned();
    let mut before = [None, None];
    let steps: Vec<(&str, Option<Call>)> = vec![
        ("create (version 1)", None),
        (
            "version 2, same size",
            Some(Call::upload("run-w", "docs/report.md", &[b'b'; 1000])),
        ),
        (
            "version 3, other size",
            Some(Call::upload("run-w", "docs/report.md", &[b'c'; 2000])),
        ),
        (
            "PATCH labels",
            Some(Call::patch_artifact(
                &id,
                &json!({"metadata": {"env": "dev"}}),
            )),
        ),
        ("delete (to the trash)", Some(Call::delete_artifact(&id))),
        ("restore", Some(Call::restore(&id))),
    ];
    for (name, call) in steps {
        if let Some(call) = call {
            let r = if name.starts_with("version") {
                upload(&env, call.by(&writer)).await
            } else {
                versions(&env, call.by(&writer)).await
            };
            assert!(r.status().is_success(), "{name}: {}", r.status());
        }
        let after = items(id.clone(), "run-w", "docs/report.md").await;
        let mut cells = Vec::new();
        let mut new = (0, 0);
        for index in ["gsi1", "gsi3", "gsi5", "gsi6"] {
            let (mut writes, mut wcu) = (0, 0);
            for (b, a) in before.iter().zip(after.iter()) {
                let (w, u) = index_wcu(index, b.as_ref(), a.as_ref());
                writes += w;
                wcu += u;
            }
            if matches!(index, "gsi5" | "gsi6") {
                new.0 += writes;
                new.1 += wcu;
            }
            cells.push(format!("{writes} / {wcu}"));
        }
        eprintln!("| {name} | {} | {} / {} |", cells.join(" | "), new.0, new.1);
        before = after;
    }
    let sizes: Vec<usize> = before.iter().flatten().map(item_bytes).collect();
    eprintln!("artifact item sizes (bytes, by id / by path): {sizes:?}");
}
