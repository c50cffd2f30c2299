//! Listing (issue 3): the real `list` handler and the real SDK against the
//! emulator. Large listings are seeded with `BatchWriteItem` of the very items
//! a version commit writes (`metadata::artifact_items`), because moto copies
//! the whole table on every `TransactWriteItems` (thousands of real uploads
//! would take hours there); the version-history and read-after-write cases go
//! through real uploads.

use std::collections::{BTreeMap, HashMap, HashSet};

use artifacts::listing::ReadStats;
use artifacts::metadata::{self, LIBRARY_INDEX};
use artifacts::model::{Artifact, new_artifact_id};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use harness::{Call, Caller, TestEnv, bytes, header, json_body, list};
use serde_json::Value;

async fn upload(env: &TestEnv, call: Call) -> Value {
    let response = artifacts_upload::handler(&env.store, call.request())
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        String::from_utf8_lossy(&bytes(&response))
    );
    json_body(&response)
}

/// A listing page that must succeed.
async fn page(env: &TestEnv, call: Call) -> Value {
    let response = list(env, call).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(&bytes(&response))
    );
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    json_body(&response)
}

/// The `field` of a 400 problem.
async fn refused(env: &TestEnv, call: Call) -> String {
    let query = call.request().uri().query().map(str::to_owned);
    let response = list(env, call).await;
    let body = String::from_utf8_lossy(&bytes(&response)).into_owned();
    assert_eq!(response.status(), 400, "{query:?}: {body}");
    assert_eq!(
        header(&response, "content-type"),
        Some("application/problem+json")
    );
    let problem = json_body(&response);
    assert_eq!(problem["status"], 400);
    problem["field"].as_str().unwrap_or_default().to_owned()
}

/// What a whole listing returned, page by page.
struct Walk {
    artifacts: Vec<Value>,
    page_sizes: Vec<usize>,
}

/// Follow `nextCursor` to the end (at most `max_pages`), checking on every
/// page that `count`/`totalSize` are those of the whole listing.
async fn walk(
    env: &TestEnv,
    make: impl Fn() -> Call,
    limit: usize,
    expect_count: usize,
    expect_size: u64,
    max_pages: usize,
) -> Walk {
    let mut walk = Walk {
        artifacts: Vec::new(),
        page_sizes: Vec::new(),
    };
    let mut cursor: Option<String> = None;
    let mut first_totals: Option<(Value, Value)> = None;
    for _ in 0..max_pages {
        let mut call = make().query("limit", &limit.to_string());
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let body = page(env, call).await;
        // Totals are given only when cheap (issue 10 item 8), and then exact;
        // every page says what the first one said.
        if body["totalsExact"] == true {
            assert_eq!(body["count"], expect_count as u64, "count");
            assert_eq!(body["totalSize"], expect_size, "totalSize");
        } else {
            assert_eq!(body["totalsExact"], false);
            assert!(body["count"].is_null() && body["totalSize"].is_null());
            assert!(expect_count > limit, "a one-page listing always has totals");
        }
        let totals = (body["count"].clone(), body["totalSize"].clone());
        assert_eq!(*first_totals.get_or_insert(totals.clone()), totals);
        let artifacts = body["artifacts"].as_array().unwrap();
        assert!(artifacts.len() <= limit);
        walk.page_sizes.push(artifacts.len());
        walk.artifacts.extend(artifacts.iter().cloned());
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(body["nextCursor"].is_null());
                return walk;
            }
        }
    }
    panic!("listing did not end within {max_pages} pages");
}

/// Pages are full but the last (a filter never leaves one short here).
fn assert_pages_full(walk: &Walk, limit: usize, what: &str) {
    let (last, full) = walk.page_sizes.split_last().unwrap();
    assert!(
        full.iter().all(|n| *n == limit),
        "{what}: {:?}",
        walk.page_sizes
    );
    assert!(
        *last <= limit && (*last > 0 || full.is_empty()),
        "{what}: {:?}",
        walk.page_sizes
    );
}

fn values(artifacts: &[&Artifact]) -> Vec<Value> {
    artifacts
        .iter()
        .map(|a| serde_json::to_value(a).unwrap())
        .collect()
}

const TYPES: [&str; 4] = ["prd", "terraform", "report", "diagram"];
const DIRS: [&str; 5] = ["docs/", "docs/reviews/", "infra/", "infra/tf/", "reports/"];

/// A made-up artifact `i` of `workflow_id`, created `created_at`.
fn artifact(workflow_id: &str, i: usize, artifact_type: &str, created_at: String) -> Artifact {
    let dir = DIRS[i % DIRS.len()];
    let name = format!("{i:05}-{artifact_type}.txt");
    Artifact {
        artifact_id: new_artifact_id(),
        workflow_id: workflow_id.into(),
        path: format!("{dir}{name}"),
        name,
        artifact_type: artifact_type.into(),
        content_type: "text/plain".into(),
        size: (i as u64 * 7919) % 100_000,
        sha256: format!("{i:064x}"),
        latest_version: 1 + (i as u64 % 3),
        created_at: created_at.clone(),
        created_by: "seed".into(),
        updated_at: created_at,
        updated_by: "seed".into(),
        metadata: BTreeMap::from([("n".to_string(), i.to_string())]),
        lifecycle: Default::default(),
    }
}

/// `2026-03-01T00:00:00.000Z` plus `minutes` and `ms`.
fn at(minutes: u64, ms: u64) -> String {
    let day = 1 + minutes / (24 * 60);
    let (h, m) = ((minutes / 60) % 24, minutes % 60);
    assert!(day <= 31);
    format!("2026-03-{day:02}T{h:02}:{m:02}:00.{ms:03}Z")
}

/// Write the artifact items a version commit would write, 25 per request.
async fn seed(env: &TestEnv, org: &str, artifacts: &[Artifact]) {
    let ddb = env.dynamodb();
    let items: Vec<_> = artifacts
        .iter()
        .flat_map(|a| metadata::artifact_items(org, a))
        .collect();
    for chunk in items.chunks(25) {
        let mut pending: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        for _ in 0..10 {
            let out = ddb
                .batch_write_item()
                .request_items(&env.resources.table, pending)
                .send()
                .await
                .unwrap();
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&env.resources.table))
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
        }
        assert!(pending.is_empty(), "unprocessed items remain");
    }
}

#[tokio::test]
async fn a_workflow_of_2500_artifacts_lists_completely_once_in_a_stable_order() {
    let env = TestEnv::new().await;
    let acme = Caller::reader("acme");
    let wf = "big-run";
    let many: Vec<Artifact> = (0..2500)
        .map(|i| {
            // Every 50th is "rare": a filter that drops 98% of what it reads.
            let t = if i % 50 == 7 { "rare" } else { TYPES[i % 4] };
            artifact(wf, i, t, at(i as u64, (i % 1000) as u64))
        })
        .collect();
    // Neighbours that must not show up: another workflow of the org and the
    // same workflow id in another org.
    let neighbours: Vec<Artifact> = (0..40)
        .map(|i| artifact("other-run", i, "prd", at(i as u64, 0)))
        .collect();
    let foreign: Vec<Artifact> = (0..40)
        .map(|i| artifact(wf, 10_000 + i, "prd", at(i as u64, 0)))
        .collect();
    seed(&env, "acme", &many).await;
    seed(&env, "acme", &neighbours).await;
    seed(&env, "zenith", &foreign).await;

    let mut by_path: Vec<&Artifact> = many.iter().collect();
    by_path.sort_by(|a, b| a.path.cmp(&b.path));
    let expected = values(&by_path);
    let total: u64 = many.iter().map(|a| a.size).sum();

    let listing = || Call::list_workflow(wf).by(&acme);
    let default_pages = walk(&env, listing, 100, 2500, total, 40).await;
    assert_eq!(default_pages.page_sizes, vec![100; 25]);
    let ids: HashSet<&str> = default_pages
        .artifacts
        .iter()
        .map(|a| a["artifactId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2500, "every artifact exactly once");
    assert_eq!(
        default_pages.artifacts, expected,
        "path order, full metadata"
    );

    // The same order whatever the page size.
    let big_pages = walk(&env, listing, 1000, 2500, total, 10).await;
    assert_eq!(big_pages.page_sizes, vec![1000, 1000, 500]);
    assert_eq!(big_pages.artifacts, expected);

    // A filter that matches 2%: pages still fill up to the limit.
    let rare: Vec<&Artifact> = by_path
        .iter()
        .copied()
        .filter(|a| a.artifact_type == "rare")
        .collect();
    let rare_size = rare.iter().map(|a| a.size).sum();
    let rare_walk = walk(
        &env,
        || {
            Call::list_workflow(wf)
                .by(&acme)
                .query("artifactType", "rare")
        },
        20,
        rare.len(),
        rare_size,
        10,
    )
    .await;
    assert_eq!(rare_walk.page_sizes, vec![20, 20, 10]);
    assert_eq!(rare_walk.artifacts, values(&rare));

    // The library holds the workflow and its neighbour, newest first.
    let mut newest: Vec<&Artifact> = many.iter().chain(&neighbours).collect();
    newest.sort_by(|a, b| {
        metadata::library_sk(&b.created_at, &b.artifact_id)
            .cmp(&metadata::library_sk(&a.created_at, &a.artifact_id))
    });
    let library_size = newest.iter().map(|a| a.size).sum();
    let library = walk(
        &env,
        || Call::list_library().by(&acme),
        1000,
        2540,
        library_size,
        10,
    )
    .await;
    assert_eq!(library.artifacts, values(&newest));

    // Reads: a page after the first reads what it returns (plus one to know
    // whether more follow), in one Query; the first page also reads up to
    // TOTALS_BUDGET more items for the totals. No version item is read.
    let principal = artifacts::auth::Principal {
        org: "acme".into(),
        subject: "u".into(),
        scopes: vec!["artifacts:read".into()],
    };
    let query = |cursor: Option<&str>| {
        let mut params = vec![("limit", "100")];
        if let Some(c) = cursor {
            params.push(("cursor", c));
        }
        artifacts::listing::ListQuery::workflow(wf, params).unwrap()
    };
    let first = env.store.list(&principal, &query(None)).await.unwrap();
    assert_eq!(first.artifacts.len(), 100);
    assert_eq!(
        first.stats.items_read,
        101 + artifacts::listing::TOTALS_BUDGET as u64,
        "page + the bounded totals pass (issue 10 item 8): {:?}",
        first.stats
    );
    assert_eq!((first.count, first.total_size), (None, None));
    let second = env
        .store
        .list(&principal, &query(first.next_cursor.as_deref()))
        .await
        .unwrap();
    assert_eq!(
        second.stats,
        ReadStats {
            queries: 1,
            items_read: 101,
            stopped_early: false,
        }
    );
}

#[tokio::test]
async fn filters_combine_like_a_brute_force_expectation() {
    let env = TestEnv::new().await;
    let acme = Caller::reader("acme");
    let workflows = ["wf-a", "wf-b", "wf-c"];
    let seeded: Vec<Artifact> = (0..360)
        .map(|i| {
            // Pairs share a creation time (ties are ordered by id); times
            // spread over ten days.
            let minutes = (i as u64 / 2) * 80;
            artifact(
                workflows[i % 3],
                i,
                TYPES[i % 4],
                at(minutes, (i % 7) as u64),
            )
        })
        .collect();
    seed(&env, "acme", &seeded).await;

    // createdAt strictly after / before; the API gets the same instants in
    // other spellings (offsets, dates, sub-millisecond precision).
    let mid = at((90 / 2) * 80, 0); // 2026-03-03T12:00:00.000Z
    assert_eq!(mid, "2026-03-03T12:00:00.000Z");
    let late = "2026-03-08T00:00:00.000Z";
    // (createdAfter, createdBefore), each (as sent, as the UTC string bound).
    type Bound<'a> = Option<(&'a str, &'a str)>;
    let date_cases: [(Bound, Bound); 4] = [
        (None, None),
        (Some(("2026-03-03T14:00:00+02:00", mid.as_str())), None),
        (None, Some(("2026-03-08", late))),
        (
            Some(("2026-03-03T12:00:00.0000001Z", "2026-03-03T12:00:00.000Z")),
            Some(("2026-03-07T23:59:59.9999Z", late)),
        ),
    ];
    let mut checked = 0;
    for artifact_type in [None, Some("prd")] {
        for prefix in [None, Some("infra/"), Some("docs/r")] {
            let keep = |a: &&Artifact| {
                artifact_type.is_none_or(|t| a.artifact_type == t)
                    && prefix.is_none_or(|p| a.path.starts_with(p))
            };
            let with_filters = |mut call: Call| {
                if let Some(t) = artifact_type {
                    call = call.query("artifactType", t);
                }
                if let Some(p) = prefix {
                    call = call.query("prefix", p);
                }
                call
            };

            // The workflow route: path order.
            let mut expected: Vec<&Artifact> = seeded
                .iter()
                .filter(|a| a.workflow_id == "wf-a")
                .filter(keep)
                .collect();
            expected.sort_by(|a, b| a.path.cmp(&b.path));
            let got = walk(
                &env,
                || with_filters(Call::list_workflow("wf-a").by(&acme)),
                17,
                expected.len(),
                expected.iter().map(|a| a.size).sum(),
                20,
            )
            .await;
            assert_eq!(
                got.artifacts,
                values(&expected),
                "{artifact_type:?} {prefix:?}"
            );
            assert_pages_full(&got, 17, "workflow");
            checked += 1;

            // The library: newest first, by workflow or not, by dates.
            for workflow in [None, Some("wf-a")] {
                for (after, before) in date_cases {
                    let mut expected: Vec<&Artifact> = seeded
                        .iter()
                        .filter(keep)
                        .filter(|a| workflow.is_none_or(|w| a.workflow_id == w))
                        .filter(|a| after.is_none_or(|(_, t)| a.created_at.as_str() > t))
                        .filter(|a| before.is_none_or(|(_, t)| a.created_at.as_str() < t))
                        .collect();
                    expected.sort_by(|a, b| {
                        (&b.created_at, &b.artifact_id).cmp(&(&a.created_at, &a.artifact_id))
                    });
                    let make = || {
                        let mut call = with_filters(Call::list_library().by(&acme));
                        if let Some(w) = workflow {
                            call = call.query("workflowId", w);
                        }
                        if let Some((spelled, _)) = after {
                            call = call.query("createdAfter", spelled);
                        }
                        if let Some((spelled, _)) = before {
                            call = call.query("createdBefore", spelled);
                        }
                        call
                    };
                    let what =
                        format!("{artifact_type:?} {prefix:?} {workflow:?} {after:?} {before:?}");
                    let got = walk(
                        &env,
                        make,
                        23,
                        expected.len(),
                        expected.iter().map(|a| a.size).sum(),
                        30,
                    )
                    .await;
                    assert_eq!(got.artifacts, values(&expected), "{what}");
                    assert_pages_full(&got, 23, &what);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 6 + 6 * 8);
}

#[tokio::test]
async fn include_versions_lists_every_version_of_every_artifact_in_the_page() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let marker = "CONTENT-MARKER-5c1e";
    // Real uploads: 1-4 versions each, interleaved.
    let paths = ["a.md", "b/c.tf", "b/d.json", "e.txt", "f/g/h.md", "i.csv"];
    let mut uploaded: HashMap<&str, Vec<Value>> = HashMap::new();
    for round in 0..4 {
        for (i, path) in paths.iter().enumerate() {
            if round > i % 4 {
                continue;
            }
            let body = format!("{marker} {path} v{} {}", round + 1, "x".repeat(i * 10));
            let created = upload(
                &env,
                Call::upload("run-1", path, body.as_bytes())
                    .query("artifactType", if i % 2 == 0 { "doc" } else { "code" })
                    .by(&alice),
            )
            .await;
            assert_eq!(created["version"]["version"], round as u64 + 1);
            uploaded.entry(path).or_default().push(created);
        }
    }

    let check_page = |artifacts: &[Value]| {
        for a in artifacts {
            let path = a["path"].as_str().unwrap();
            let history = &uploaded[path];
            let latest = &history.last().unwrap()["artifact"];
            let mut without_versions = a.clone();
            without_versions.as_object_mut().unwrap().remove("versions");
            assert_eq!(&without_versions, latest, "{path}");
            let expected: Vec<&Value> = history.iter().rev().map(|c| &c["version"]).collect();
            let got: Vec<&Value> = a["versions"].as_array().unwrap().iter().collect();
            assert_eq!(got, expected, "{path}: every version, newest first");
        }
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut call = Call::list_workflow("run-1")
            .by(&alice)
            .query("includeVersions", "true")
            .query("limit", "4");
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let response = list(&env, call).await;
        let raw = String::from_utf8_lossy(&bytes(&response)).into_owned();
        assert!(!raw.contains(marker), "listing returned content");
        for internal in ["wrappedKey", "inline", "s3VersionId", "contentId", "gsi1"] {
            assert!(!raw.contains(internal), "{internal} in {raw}");
        }
        let body = json_body(&response);
        assert_eq!(body["count"], 6);
        let artifacts = body["artifacts"].as_array().unwrap();
        check_page(artifacts);
        seen.extend(
            artifacts
                .iter()
                .map(|a| a["path"].as_str().unwrap().to_owned()),
        );
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut sorted = paths.to_vec();
    sorted.sort();
    assert_eq!(seen, sorted);
    let total: u64 = uploaded
        .values()
        .map(|h| h.last().unwrap()["artifact"]["size"].as_u64().unwrap())
        .sum();

    // Without includeVersions, no versions key at all.
    let plain = page(&env, Call::list_workflow("run-1").by(&alice)).await;
    assert_eq!(plain["totalSize"], total);
    assert!(
        plain["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a.get("versions").is_none())
    );

    // Real commits are in the library right away (moto's index is
    // immediate), newest first, with versions and filters.
    let library = page(
        &env,
        Call::list_library()
            .by(&alice)
            .query("workflowId", "run-1")
            .query("artifactType", "doc")
            .query("includeVersions", "true"),
    )
    .await;
    let artifacts = library["artifacts"].as_array().unwrap();
    let mut expected: Vec<&Value> = uploaded
        .values()
        .map(|h| &h.last().unwrap()["artifact"])
        .filter(|a| a["artifactType"] == "doc")
        .collect();
    expected.sort_by_key(|a| {
        std::cmp::Reverse((
            a["createdAt"].as_str().unwrap().to_owned(),
            a["artifactId"].as_str().unwrap().to_owned(),
        ))
    });
    let got_ids: Vec<&Value> = artifacts.iter().map(|a| &a["artifactId"]).collect();
    let expected_ids: Vec<&Value> = expected.iter().map(|a| &a["artifactId"]).collect();
    assert_eq!(got_ids, expected_ids);
    check_page(artifacts);
    let org_wide = page(&env, Call::list_library().by(&alice)).await;
    assert_eq!(org_wide["count"], 6);
    assert_eq!(org_wide["totalSize"], total);
}

#[tokio::test]
async fn other_orgs_see_nothing_and_foreign_or_forged_cursors_are_400() {
    let env = TestEnv::new().await;
    let acme = Caller::reader("acme");
    let zenith = Caller::reader("zenith");
    let seeded: Vec<Artifact> = (0..30)
        .map(|i| artifact("shared-id", i, TYPES[i % 4], at(i as u64, 0)))
        .collect();
    seed(&env, "acme", &seeded).await;

    // Same workflow id, another org: an empty listing, on both routes.
    for call in [
        Call::list_workflow("shared-id").by(&zenith),
        Call::list_library().by(&zenith),
        Call::list_library()
            .by(&zenith)
            .query("workflowId", "shared-id"),
    ] {
        let body = page(&env, call).await;
        assert_eq!(body["artifacts"], serde_json::json!([]));
        assert_eq!(
            (body["count"].as_u64(), body["totalSize"].as_u64()),
            (Some(0), Some(0))
        );
        assert!(body["nextCursor"].is_null());
    }

    let first = page(
        &env,
        Call::list_workflow("shared-id")
            .by(&acme)
            .query("limit", "10"),
    )
    .await;
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let library_first = page(&env, Call::list_library().by(&acme).query("limit", "10")).await;
    let library_cursor = library_first["nextCursor"].as_str().unwrap().to_owned();

    let mut tampered = cursor.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    // Re-encoded with another org's partition but the old check value.
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
    let mut other_org = decoded.clone();
    for (_, v) in other_org["k"].as_object_mut().unwrap() {
        *v = Value::String(v.as_str().unwrap().replacen("acme#", "zenith#", 1));
    }
    let other_org = URL_SAFE_NO_PAD.encode(other_org.to_string());
    let mut bigger_total = decoded.clone();
    bigger_total["s"] = serde_json::json!(1);
    let bigger_total = URL_SAFE_NO_PAD.encode(bigger_total.to_string());

    let cases: Vec<(&str, Call)> = vec![
        (
            "another org's token",
            Call::list_workflow("shared-id")
                .by(&zenith)
                .query("cursor", &cursor),
        ),
        (
            "other filters",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("artifactType", "prd")
                .query("cursor", &cursor),
        ),
        (
            "another prefix",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("prefix", "docs/")
                .query("cursor", &cursor),
        ),
        (
            "another workflow",
            Call::list_workflow("other")
                .by(&acme)
                .query("cursor", &cursor),
        ),
        (
            "the other route",
            Call::list_library().by(&acme).query("cursor", &cursor),
        ),
        (
            "the library's cursor on the workflow",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", &library_cursor),
        ),
        (
            "the library's cursor for another org",
            Call::list_library()
                .by(&zenith)
                .query("cursor", &library_cursor),
        ),
        (
            "the library's cursor with dates",
            Call::list_library()
                .by(&acme)
                .query("createdAfter", "2020-01-01")
                .query("cursor", &library_cursor),
        ),
        (
            "truncated",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", &cursor[..cursor.len() - 3]),
        ),
        (
            "truncated to half",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", &cursor[..cursor.len() / 2]),
        ),
        (
            "one character changed",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", &tampered),
        ),
        (
            "another org's key",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", &other_org),
        ),
        (
            "another org's key, as that org",
            Call::list_workflow("shared-id")
                .by(&zenith)
                .query("cursor", &other_org),
        ),
        (
            "edited totals",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", &bigger_total),
        ),
        (
            "garbage",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", "not a cursor"),
        ),
        (
            "empty",
            Call::list_workflow("shared-id")
                .by(&acme)
                .query("cursor", ""),
        ),
    ];
    for (what, call) in cases {
        assert_eq!(refused(&env, call).await, "cursor", "{what}");
    }
    // The genuine cursors still work afterwards, for their own org and query.
    let second = page(
        &env,
        Call::list_workflow("shared-id")
            .by(&acme)
            .query("limit", "10")
            .query("cursor", &cursor),
    )
    .await;
    assert_eq!(second["artifacts"].as_array().unwrap().len(), 10);
    assert_ne!(second["artifacts"][0], first["artifacts"][0]);
    assert_eq!(second["count"], 30);
    let library_second = page(
        &env,
        Call::list_library()
            .by(&acme)
            .query("cursor", &library_cursor),
    )
    .await;
    assert_eq!(library_second["artifacts"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn bad_parameters_are_400_problems_naming_the_parameter() {
    let env = TestEnv::new().await;
    let acme = Caller::reader("acme");
    let library_cases: &[(&str, &str, &str)] = &[
        ("limit", "0", "limit"),
        ("limit", "1001", "limit"),
        ("limit", "ten", "limit"),
        ("limit", "-5", "limit"),
        ("limit", "", "limit"),
        ("createdAfter", "yesterday", "createdAfter"),
        ("createdAfter", "2026-02-30", "createdAfter"),
        ("createdAfter", "2026-01-01T00:00:00", "createdAfter"),
        ("createdBefore", "2026-01-01 00:00:00Z", "createdBefore"),
        ("createdBefore", "1767225600", "createdBefore"),
        ("includeVersions", "yes", "includeVersions"),
        ("artifactType", "not valid!", "artifactType"),
        ("workflowId", "a/b", "workflowId"),
        ("prefix", "a\u{1}b", "prefix"),
        ("prefix", "", "prefix"),
        ("cursor", "!!", "cursor"),
        ("colour", "red", "query"),
    ];
    for (name, value, field) in library_cases {
        let call = Call::list_library().by(&acme).query(name, value);
        assert_eq!(&refused(&env, call).await, field, "{name}={value:?}");
    }
    // An inverted date range names createdBefore.
    let call = Call::list_library()
        .by(&acme)
        .query("createdAfter", "2026-02-01")
        .query("createdBefore", "2026-01-01T00:00:00Z");
    assert_eq!(refused(&env, call).await, "createdBefore");
    // A repeated parameter is ambiguous.
    let call = Call::list_library().by(&acme).raw_query("limit=5&limit=6");
    assert_eq!(refused(&env, call).await, "limit");
    // Unknown names are refused and named in the detail (a misspelt filter
    // must not silently list everything).
    let response = list(
        &env,
        Call::list_workflow("wf")
            .by(&acme)
            .query("artifacttype", "prd"),
    )
    .await;
    assert_eq!(response.status(), 400);
    let problem = json_body(&response);
    assert_eq!(problem["field"], "query");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("\"artifacttype\""),
        "{problem}"
    );
    // The workflow route has no dates or workflowId parameter of its own.
    for name in ["createdAfter", "workflowId"] {
        let call = Call::list_workflow("wf")
            .by(&acme)
            .query(name, "2026-01-01");
        assert_eq!(refused(&env, call).await, "query", "{name}");
    }
    for (name, value) in [("limit", "0"), ("includeVersions", "1"), ("prefix", "")] {
        let call = Call::list_workflow("wf").by(&acme).query(name, value);
        assert_eq!(refused(&env, call).await, name);
    }
    let call = Call::list_workflow("bad#id").by(&acme);
    assert_eq!(refused(&env, call).await, "workflowId");

    // Credentials come first: 401 without a principal, 403 without read.
    let anonymous = list(&env, Call::list_library().query("limit", "0")).await;
    assert_eq!(anonymous.status(), 401);
    let writer_only = list(
        &env,
        Call::list_workflow("wf").by(&Caller::new("acme", "artifacts:write")),
    )
    .await;
    assert_eq!(writer_only.status(), 403);
    // Valid edge values pass.
    for (name, value) in [
        ("limit", "1"),
        ("limit", "1000"),
        ("includeVersions", "false"),
        ("createdAfter", "2026-01-01T00:00:00.123456789+14:00"),
        ("createdBefore", "9999-12-31T23:59:59.999Z"),
    ] {
        let body = page(&env, Call::list_library().by(&acme).query(name, value)).await;
        assert_eq!(body["count"], 0, "{name}={value}");
    }
}

/// The indexes the listings query are the ones the template (and the
/// harness) create, and the list role may query them.
#[test]
fn the_template_defines_the_library_index_the_code_queries() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let text = std::fs::read_to_string(root.join("infra/template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let table = &doc["Resources"]["ArtifactsTable"]["Properties"];
    let defined: HashSet<&str> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a["AttributeName"].as_str().unwrap())
        .collect();
    let role = serde_yaml::to_string(&doc["Resources"]["ListRole"]).unwrap();
    use artifacts::metadata::{CONTENT_INDEX, PATH_INDEX, SIZE_INDEX};
    for name in [LIBRARY_INDEX, CONTENT_INDEX, SIZE_INDEX, PATH_INDEX] {
        let index = table["GlobalSecondaryIndexes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|i| i["IndexName"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} is in the template"));
        let keys: Vec<(&str, &str)> = index["KeySchema"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap(),
                    k["KeyType"].as_str().unwrap(),
                )
            })
            .collect();
        let (pk, sk) = (format!("{name}pk"), format!("{name}sk"));
        assert_eq!(keys, [(pk.as_str(), "HASH"), (sk.as_str(), "RANGE")]);
        assert_eq!(index["Projection"]["ProjectionType"].as_str(), Some("ALL"));
        assert!(defined.contains(pk.as_str()) && defined.contains(sk.as_str()));
        assert!(
            role.contains(&format!("${{ArtifactsTable.Arn}}/index/{name}")),
            "{name}: {role}"
        );
    }
    for write in ["PutItem", "UpdateItem", "DeleteItem", "s3:", "kms:"] {
        assert!(!role.contains(write), "list role grants {write}");
    }
}
