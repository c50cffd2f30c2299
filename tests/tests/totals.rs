//! Listing totals (issue 10 item 8): the first page of a listing much larger
//! than a page reads a bounded number of items, whatever the listing's size,
//! and its totals, when it gives them, are exact.
//!
//! Items read are counted independently of the listing code: an SDK
//! interceptor on the store's DynamoDB client sums `ScannedCount` of every
//! Query (what DynamoDB evaluates and bills, before filters). The listing is
//! seeded with the very items a version commit writes
//! (`metadata::artifact_items`), as tests/tests/list.rs does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use artifacts::Store;
use artifacts::listing::TOTALS_BUDGET;
use artifacts::metadata;
use artifacts::model::{Artifact, new_artifact_id};
use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use harness::{Call, Caller, TestEnv, bytes, json_body};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What, the request, its exact totals, limit, whether totals are cheap, and
/// items a page may read per item returned.
type Case<'a> = (&'a str, Call, (u64, u64), usize, bool, u64);

/// Sums `ScannedCount` over every Query the client makes.
#[derive(Debug, Clone, Default)]
struct ItemsRead(Arc<AtomicU64>);

impl Intercept for ItemsRead {
    fn name(&self) -> &'static str {
        "items-read"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(q) = context
            .output_or_error()
            .ok()
            .and_then(|o| o.downcast_ref::<QueryOutput>())
        {
            self.0
                .fetch_add(q.scanned_count().max(0) as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn counted_store(env: &TestEnv, counter: &ItemsRead) -> Store {
    harness::intercepted_store(env, harness::Clients::DynamoDb, counter.clone())
}

const TYPES: [&str; 4] = ["prd", "terraform", "report", "diagram"];

fn artifact(workflow_id: &str, i: usize) -> Artifact {
    let created_at = format!(
        "2026-04-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + i / 86_400 % 28,
        i / 3600 % 24,
        i / 60 % 60,
        i % 60,
        i % 1000
    );
    let name = format!("{i:06}.txt");
    Artifact {
        artifact_id: new_artifact_id(),
        workflow_id: workflow_id.into(),
        path: format!("dir{}/{name}", i % 10),
        name,
        artifact_type: TYPES[i % TYPES.len()].into(),
        content_type: "text/plain".into(),
        size: 1 + (i as u64 * 7919) % 100_000,
        sha256: format!("{i:064x}"),
        latest_version: 1,
        created_at: created_at.clone(),
        created_by: "seed".into(),
        updated_at: created_at,
        updated_by: "seed".into(),
        metadata: BTreeMap::new(),
        lifecycle: Default::default(),
    }
}

async fn seed(env: &TestEnv, artifacts: &[Artifact]) {
    let ddb = env.dynamodb();
    let items: Vec<_> = artifacts
        .iter()
        .flat_map(|a| metadata::artifact_items("acme", a))
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

/// The first page of `call` and the items it read.
async fn first_page(store: &Store, counter: &ItemsRead, call: Call) -> (Value, u64) {
    let before = counter.0.load(Ordering::Relaxed);
    let response = artifacts_list::handler(store, call.request())
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(&bytes(&response))
    );
    (
        json_body(&response),
        counter.0.load(Ordering::Relaxed) - before,
    )
}

#[tokio::test]
async fn the_first_page_of_a_large_listing_reads_a_bounded_number_of_items() {
    const N: usize = 4000;
    let env = TestEnv::new().await;
    let wf = "large";
    let all: Vec<Artifact> = (0..N).map(|i| artifact(wf, i)).collect();
    seed(&env, &all).await;
    let counter = ItemsRead::default();
    let store = counted_store(&env, &counter);
    let reader = Caller::reader("acme");
    let totals = |pick: &dyn Fn(&Artifact) -> bool| -> (u64, u64) {
        let chosen: Vec<&Artifact> = all.iter().filter(|a| pick(a)).collect();
        (chosen.len() as u64, chosen.iter().map(|a| a.size).sum())
    };

    // (what, request, expected totals, limit, whether the totals are cheap,
    // items a page may read per item returned: 1 unfiltered, 6 for a filter
    // that keeps 1 in 4, as the page tops itself up at the rate it sees)
    let cases: Vec<Case> = vec![
        (
            "workflow, everything",
            Call::list_workflow(wf).by(&reader),
            totals(&|_| true),
            100,
            false,
            1,
        ),
        (
            "workflow, filtered by type (1 in 4)",
            Call::list_workflow(wf)
                .by(&reader)
                .query("artifactType", "prd"),
            totals(&|a| a.artifact_type == "prd"),
            100,
            false,
            6,
        ),
        (
            "library, filtered by workflow and type",
            Call::list_library()
                .by(&reader)
                .query("workflowId", wf)
                .query("artifactType", "report"),
            totals(&|a| a.artifact_type == "report"),
            100,
            false,
            6,
        ),
        (
            "library, org-wide",
            Call::list_library().by(&reader),
            totals(&|_| true),
            1000,
            false,
            1,
        ),
        (
            "workflow, one prefix (400 items: past the page, within the budget)",
            Call::list_workflow(wf).by(&reader).query("prefix", "dir3/"),
            totals(&|a| a.path.starts_with("dir3/")),
            100,
            true,
            1,
        ),
        (
            "workflow, prefix and type (200 of 400 read)",
            Call::list_workflow(wf)
                .by(&reader)
                .query("prefix", "dir2/")
                .query("artifactType", "report"),
            totals(&|a| a.path.starts_with("dir2/") && a.artifact_type == "report"),
            50,
            true,
            6,
        ),
    ];
    for (what, call, (count, size), limit, cheap, factor) in cases {
        let call = call.query("limit", &limit.to_string());
        let (body, read) = first_page(&store, &counter, call.clone()).await;
        assert_eq!(
            body["artifacts"].as_array().unwrap().len(),
            limit,
            "{what}: a full page"
        );
        assert!(body["nextCursor"].is_string(), "{what}");
        // The page itself (one item more than the page, topped up at the
        // filter's rate) plus the totals budget: independent of N.
        let page_bound = factor * (limit as u64 + 1);
        let bound = page_bound + TOTALS_BUDGET as u64;
        assert!(bound < N as u64, "the bound must be able to fail");
        assert!(
            read <= bound,
            "{what}: the first page read {read} items (bound {bound}, listing {N})"
        );
        if cheap {
            assert_eq!(body["totalsExact"], true, "{what}: {body}");
            assert_eq!(body["count"], count, "{what}");
            assert_eq!(body["totalSize"], size, "{what}");
        } else {
            assert_eq!(body["totalsExact"], false, "{what}");
            assert!(
                body["count"].is_null() && body["totalSize"].is_null(),
                "{what}"
            );
        }
        eprintln!("{what}: first page read {read} items");

        // The next page says the same and reads about one page.
        let cursor = body["nextCursor"].as_str().unwrap().to_owned();
        let before = counter.0.load(Ordering::Relaxed);
        let response = artifacts_list::handler(&store, call.query("cursor", &cursor).request())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{what}");
        let next = json_body(&response);
        assert_eq!(
            (&next["count"], &next["totalSize"], &next["totalsExact"]),
            (&body["count"], &body["totalSize"], &body["totalsExact"]),
            "{what}"
        );
        let read = counter.0.load(Ordering::Relaxed) - before;
        assert!(read <= page_bound, "{what}: the next page read {read}");
    }
}
