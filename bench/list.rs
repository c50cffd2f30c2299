//! Listing benchmark (issue 3, item 6) — not a test: it reports numbers and
//! asserts nothing about time.
//!
//! Seeds one workflow with `BENCH_ARTIFACTS` (default 10,000) artifacts —
//! the exact items a version commit writes (`metadata::artifact_items`,
//! `metadata::version_item`), 1–3 versions each with 1 KiB of inline
//! "ciphertext", so version items are heavier than artifact items — then
//! lists them page by page through the real `list` handler and reports
//! artifacts per second and DynamoDB items read per artifact returned.
//!
//! Items read are counted independently of the listing code: an SDK
//! interceptor on the store's DynamoDB client sums `ScannedCount` of every
//! Query (items evaluated, before filters — what DynamoDB reads and bills),
//! counts any other DynamoDB call, and counts every S3 and KMS call (a
//! listing must make none).
//!
//! Run: `bench/list.sh` (starts a fresh emulator unless `AWS_ENDPOINT_URL`
//! names one). Throughput against moto is the emulator's (it sorts the whole
//! table on every Query); items read per artifact is the portable number.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use artifacts::Store;
use artifacts::metadata::{self, Location, VersionRecord};
use artifacts::model::{Artifact, Version, new_artifact_id};
use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use harness::{Call, Caller, TestEnv, json_body};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A name, the request of every page, and the page size.
type Scenario<'a> = (&'a str, Box<dyn Fn() -> Call + 'a>, usize);

const ORG: &str = "bench";
const WORKFLOW: &str = "bench-run";
const TYPES: [&str; 4] = ["prd", "terraform", "report", "diagram"];

#[derive(Debug, Default)]
struct Counts {
    queries: AtomicU64,
    items_read: AtomicU64,
    /// Items read, by what the Query was for (told apart by what it returned).
    page_reads: AtomicU64,
    totals_reads: AtomicU64,
    version_reads: AtomicU64,
    other_dynamodb_calls: AtomicU64,
    s3_calls: AtomicU64,
    kms_calls: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    queries: u64,
    items_read: u64,
    page_reads: u64,
    totals_reads: u64,
    version_reads: u64,
    other_dynamodb_calls: u64,
    s3_calls: u64,
    kms_calls: u64,
}

impl Counts {
    fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            queries: get(&self.queries),
            items_read: get(&self.items_read),
            page_reads: get(&self.page_reads),
            totals_reads: get(&self.totals_reads),
            version_reads: get(&self.version_reads),
            other_dynamodb_calls: get(&self.other_dynamodb_calls),
            s3_calls: get(&self.s3_calls),
            kms_calls: get(&self.kms_calls),
        }
    }
}

impl std::ops::Sub for Snapshot {
    type Output = Snapshot;
    fn sub(self, o: Snapshot) -> Snapshot {
        Snapshot {
            queries: self.queries - o.queries,
            items_read: self.items_read - o.items_read,
            page_reads: self.page_reads - o.page_reads,
            totals_reads: self.totals_reads - o.totals_reads,
            version_reads: self.version_reads - o.version_reads,
            other_dynamodb_calls: self.other_dynamodb_calls - o.other_dynamodb_calls,
            s3_calls: self.s3_calls - o.s3_calls,
            kms_calls: self.kms_calls - o.kms_calls,
        }
    }
}

/// Counts what one SDK client does.
#[derive(Debug, Clone)]
struct Counter {
    counts: Arc<Counts>,
    service: &'static str,
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "listing-benchmark-counter"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let c = &self.counts;
        let add = |counter: &AtomicU64, n: u64| {
            counter.fetch_add(n, Ordering::Relaxed);
        };
        match self.service {
            "s3" => add(&c.s3_calls, 1),
            "kms" => add(&c.kms_calls, 1),
            _ => match context
                .output_or_error()
                .ok()
                .and_then(|o| o.downcast_ref::<QueryOutput>())
            {
                Some(q) => {
                    let scanned = q.scanned_count().max(0) as u64;
                    add(&c.queries, 1);
                    add(&c.items_read, scanned);
                    // A version Query returns version fields, a page
                    // artifacts, the totals pass bare sizes.
                    let has = |name: &str| q.items().iter().any(|i| i.contains_key(name));
                    let class = if has("version") {
                        &c.version_reads
                    } else if has("artifactId") || q.items().is_empty() {
                        &c.page_reads
                    } else {
                        &c.totals_reads
                    };
                    add(class, scanned);
                }
                None => add(&c.other_dynamodb_calls, 1),
            },
        }
        Ok(())
    }
}

/// A store whose every SDK call is counted.
fn counted_store(env: &TestEnv, counts: &Arc<Counts>) -> Store {
    let counter = |service| Counter {
        counts: counts.clone(),
        service,
    };
    let ddb = aws_sdk_dynamodb::config::Builder::from(&env.sdk)
        .interceptor(counter("dynamodb"))
        .build();
    let s3 = aws_sdk_s3::config::Builder::from(&env.sdk)
        .force_path_style(true)
        .interceptor(counter("s3"))
        .build();
    let kms = aws_sdk_kms::config::Builder::from(&env.sdk)
        .interceptor(counter("kms"))
        .build();
    Store::with_clients(
        env.store.config.clone(),
        aws_sdk_dynamodb::Client::from_conf(ddb),
        aws_sdk_s3::Client::from_conf(s3),
        aws_sdk_kms::Client::from_conf(kms),
    )
}

/// `n` artifacts (1–3 versions each) as a version commit writes them.
async fn seed(env: &TestEnv, workflow_id: &str, n: usize) -> Result<(), BoxError> {
    let mut items = Vec::new();
    for i in 0..n {
        let created_at = format!(
            "2026-03-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            1 + i / 86_400 % 28,
            i / 3600 % 24,
            i / 60 % 60,
            i % 60,
            i % 1000
        );
        let latest = 1 + (i as u64 % 3);
        let artifact_type = TYPES[i % TYPES.len()];
        let name = format!("{i:06}.txt");
        let a = Artifact {
            artifact_id: new_artifact_id(),
            workflow_id: workflow_id.into(),
            path: format!("dir{}/{name}", i % 10),
            name,
            artifact_type: artifact_type.into(),
            content_type: "text/plain".into(),
            size: 1024,
            sha256: format!("{i:064x}"),
            latest_version: latest,
            created_at: created_at.clone(),
            created_by: "bench".into(),
            updated_at: created_at.clone(),
            updated_by: "bench".into(),
            metadata: [("run".to_string(), "bench".to_string())].into(),
            lifecycle: Default::default(),
        };
        items.extend(metadata::artifact_items(ORG, &a));
        for v in 1..=latest {
            let record = VersionRecord {
                version: Version {
                    version: v,
                    size: 1024,
                    sha256: format!("{i:063x}{v}"),
                    content_type: "text/plain".into(),
                    created_at: created_at.clone(),
                    created_by: "bench".into(),
                },
                content_id: new_artifact_id(),
                wrapped_key: vec![7; 184],
                location: Location::Inline(vec![(i % 251) as u8; 1024 + 40 + 16]),
                // Seeded items, not commits: unsigned like pre-SPEC §18 versions.
                attestation: None,
            };
            items.push(metadata::version_item(ORG, &a.artifact_id, &record));
        }
    }
    let ddb = env.dynamodb();
    for chunk in items.chunks(25) {
        let mut pending: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?)
                    .build())
            })
            .collect::<Result<_, BoxError>>()?;
        for _ in 0..10 {
            let out = ddb
                .batch_write_item()
                .request_items(&env.resources.table, pending)
                .send()
                .await?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&env.resources.table))
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            return Err("BatchWriteItem left items unprocessed".into());
        }
    }
    Ok(())
}

struct Outcome {
    name: String,
    pages: u64,
    artifacts: u64,
    seconds: f64,
    all: Snapshot,
}

/// List to the end, one page at a time, through the real handler.
async fn run(
    store: &Store,
    counts: &Counts,
    name: &str,
    make: impl Fn() -> Call,
    limit: usize,
) -> Result<Outcome, BoxError> {
    let before = counts.snapshot();
    let started = Instant::now();
    let (mut pages, mut artifacts) = (0u64, 0u64);
    let mut cursor: Option<String> = None;
    loop {
        let mut call = make().query("limit", &limit.to_string());
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let response = artifacts_list::handler(store, call.request()).await?;
        if response.status() != 200 {
            return Err(format!("{name}: status {}", response.status()).into());
        }
        let body = json_body(&response);
        let returned = body["artifacts"].as_array().map_or(0, |a| a.len() as u64);
        pages += 1;
        artifacts += returned;
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        if pages > 100_000 {
            return Err("runaway listing".into());
        }
    }
    Ok(Outcome {
        name: name.to_owned(),
        pages,
        artifacts,
        seconds: started.elapsed().as_secs_f64(),
        all: counts.snapshot() - before,
    })
}

/// The first page alone (issue 10 item 8): items read, seconds, and
/// whether it carried totals.
async fn first_page(
    store: &Store,
    counts: &Counts,
    make: &dyn Fn() -> Call,
    limit: usize,
) -> Result<(Snapshot, f64, bool), BoxError> {
    let before = counts.snapshot();
    let started = Instant::now();
    let call = make().query("limit", &limit.to_string());
    let response = artifacts_list::handler(store, call.request()).await?;
    if response.status() != 200 {
        return Err(format!("first page: status {}", response.status()).into());
    }
    let body = json_body(&response);
    Ok((
        counts.snapshot() - before,
        started.elapsed().as_secs_f64(),
        body["totalsExact"] == true,
    ))
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n = env_number("BENCH_ARTIFACTS", 10_000);
    let n_versions = env_number("BENCH_VERSIONS_ARTIFACTS", 300);
    let reader = Caller::reader(ORG);

    eprintln!("seeding {n} artifacts (and their version items)…");
    let env = TestEnv::new().await;
    let started = Instant::now();
    seed(&env, WORKFLOW, n).await?;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    let counts = Arc::new(Counts::default());
    let store = counted_store(&env, &counts);

    let mut outcomes = Vec::new();
    let scenarios: Vec<Scenario> = vec![
        (
            "workflow, limit 100",
            Box::new(|| Call::list_workflow(WORKFLOW).by(&reader)),
            100,
        ),
        (
            "workflow, limit 1000",
            Box::new(|| Call::list_workflow(WORKFLOW).by(&reader)),
            1000,
        ),
        (
            "library (index), limit 1000",
            Box::new(|| Call::list_library().by(&reader)),
            1000,
        ),
        (
            "workflow, artifactType (1 in 4), limit 1000",
            Box::new(|| {
                Call::list_workflow(WORKFLOW)
                    .by(&reader)
                    .query("artifactType", "prd")
            }),
            1000,
        ),
    ];
    // The first page of each listing alone: what a client waits for first.
    println!("\nFirst page only: {n} artifacts in one workflow, moto emulator\n");
    println!("| scenario | items read | page reads | totals-pass reads | s | totals given |");
    println!("|---|---|---|---|---|---|");
    for (name, make, limit) in &scenarios {
        eprintln!("first page: {name}…");
        let (snap, seconds, exact) = first_page(&store, &counts, make, *limit).await?;
        println!(
            "| {name} | {} | {} | {} | {seconds:.2} | {exact} |",
            snap.items_read, snap.page_reads, snap.totals_reads
        );
    }
    // BENCH_FIRST_PAGE_ONLY=1: stop here (walking 100,000 artifacts page by
    // page on moto takes hours; the first page is what item 8 bounds).
    if env_number("BENCH_FIRST_PAGE_ONLY", 0) == 1 {
        return Ok(());
    }

    for (name, make, limit) in &scenarios {
        eprintln!("listing: {name}…");
        outcomes.push(run(&store, &counts, name, make, *limit).await?);
    }

    // includeVersions reads one Query per artifact: measured on a smaller
    // table of its own, as moto's cost per Query grows with the table.
    eprintln!("includeVersions: seeding {n_versions} artifacts in a table of their own…");
    let small = TestEnv::new().await;
    seed(&small, WORKFLOW, n_versions).await?;
    let small_counts = Arc::new(Counts::default());
    let small_store = counted_store(&small, &small_counts);
    outcomes.push(
        run(
            &small_store,
            &small_counts,
            &format!(
                "workflow, includeVersions=true ({n_versions} artifacts, avg 2 versions), limit 100"
            ),
            || {
                Call::list_workflow(WORKFLOW)
                    .by(&reader)
                    .query("includeVersions", "true")
            },
            100,
        )
        .await?,
    );

    println!("\nListing benchmark: {n} artifacts in one workflow, moto emulator\n");
    println!(
        "| scenario | pages | artifacts | s | artifacts/s | Queries | items read | items read / artifact | page reads / artifact | totals-pass reads (first page only) | version-item reads | S3 calls | KMS calls | other DynamoDB calls |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        let per = |n: u64| n as f64 / o.artifacts.max(1) as f64;
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {} | {} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
            o.name,
            o.pages,
            o.artifacts,
            o.seconds,
            o.artifacts as f64 / o.seconds,
            o.all.queries,
            o.all.items_read,
            per(o.all.items_read),
            per(o.all.page_reads),
            o.all.totals_reads,
            o.all.version_reads,
            o.all.s3_calls,
            o.all.kms_calls,
            o.all.other_dynamodb_calls,
        );
    }
    Ok(())
}
