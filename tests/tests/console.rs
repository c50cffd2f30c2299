//! The web console (issue 18, SPEC §17), at the edge and in a real browser.
//!
//! - `console_files_carry_strict_headers`: the console's files through the
//!   local gateway's real listener: the app at `/` and under `/console/`,
//!   hashed files cached immutably, the strict headers on every answer.
//! - `the_console_in_a_real_browser`: the real handlers behind the gateway on
//!   127.0.0.1, the emulator behind them, upload events delivered by the
//!   poller to the real ingest handler — and Debian's Chromium driven by
//!   Playwright (`web/tests/console.test.mjs`, node's test runner) through
//!   must-show items 1–7 of the issue, the library's sort, the lifecycle
//!   actions (delete / restore / legal hold / library / labels / retention)
//!   with their audit records, and a ZIP of a selection across runs.
//!   Screenshots of every view are saved under `target/console-screenshots/`.
//!
//! Needs `make console` (the built front end, which the console function
//! embeds), Node.js, `web/node_modules` (`npm ci`) and `/usr/bin/chromium`:
//! `make venv` installs them all. A missing piece fails the test with that
//! pointer; it is never skipped silently.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use artifacts::auth::mint_hs256;
use harness::TestEnv;
use harness::edge::{Edge, SECRET, client};
use harness::poller::{Invoke, Poller};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

/// The whole browser run is bounded (each wait inside it is too).
const BROWSER_RUN_LIMIT: Duration = Duration::from_secs(240);
const CHROMIUM: &str = "/usr/bin/chromium";

fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header on {}", response.url()))
}

fn assert_strict(response: &reqwest::Response) {
    let csp = header(response, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(!csp.contains("https://cdn") && !csp.contains(" *"), "{csp}");
    assert_eq!(header(response, "x-frame-options"), "DENY");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn console_files_carry_strict_headers() {
    let edge = Edge::start().await;
    let http = client();

    // The app at / and on any path of the app's own under /console/.
    let mut index = String::new();
    for path in [
        "/",
        "/console/library",
        "/console/runs/wf-1",
        "/console/artifacts/a1b2",
    ] {
        let response = http.get(edge.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_strict(&response);
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains("<main id=\"main\""), "{path}: {text}");
        index = text;
    }
    // No inline script or style, no other origin.
    assert!(
        !index.contains("<script>") && !index.contains("<style"),
        "{index}"
    );
    assert!(
        !index.contains("http://") && !index.contains("https://"),
        "{index}"
    );

    // Every file index.html names is a hashed file under /console/assets/,
    // served with its type and cached for good.
    let names: Vec<&str> = index
        .split('"')
        .filter(|s| s.starts_with("/console/assets/"))
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".js")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".css")), "{names:?}");
    for name in &names {
        let response = http.get(edge.url(name)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_strict(&response);
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        let expected = if name.ends_with(".js") {
            "application/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(header(&response, "content-type"), expected);
        assert!(!response.bytes().await.unwrap().is_empty());
    }

    // A file that is not there is a 404 problem (never index.html as script),
    // still with the strict headers; no credentials are needed or leaked.
    for path in ["/console/assets/index-gone.js", "/console/favicon.ico"] {
        let response = http.get(edge.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_strict(&response);
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
    }
    // Other methods are not routed (the gateway's own 404), and the API
    // stays behind its authorizer.
    let post = http.post(edge.url("/")).send().await.unwrap();
    assert!(
        post.status() == 404 || post.status() == 405,
        "{}",
        post.status()
    );
    let api = http.get(edge.url("/v1/artifacts")).send().await.unwrap();
    assert_eq!(api.status(), 401);
}

/// The real ingest handler, invoked in-process as Lambda would.
struct Ingest(Arc<TestEnv>);

impl Invoke for Ingest {
    async fn invoke(&self, event: Value) -> Result<Value, harness::BoxError> {
        artifacts_ingest::handler(&self.0.store, LambdaEvent::new(event, Context::default())).await
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let web = workspace_root().join("web");
    for (what, path) in [
        (
            "Chromium (Debian's chromium package)",
            PathBuf::from(CHROMIUM),
        ),
        (
            "playwright-core (npm ci in web/)",
            web.join("node_modules/playwright-core"),
        ),
        (
            "axe-core (npm ci in web/)",
            web.join("node_modules/axe-core"),
        ),
    ] {
        assert!(
            path.exists(),
            "{what} is missing at {}: run `make venv` (scripts/system-deps.sh, make console)",
            path.display()
        );
    }

    let edge = Edge::start_public().await;
    let mut poller = Poller::new(edge.env.sqs(), &edge.env.resources.ingest_queue_url)
        .await
        .expect("the ingest queue");
    poller.visibility_timeout = Some(1);
    let ingest = Ingest(Arc::clone(&edge.env));
    let delivery = tokio::spawn(async move { poller.run(&ingest).await });

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = mint_hs256(
        SECRET.as_bytes(),
        &json!({"sub": "user-of-acme", "org_id": "acme",
                "scope": "artifacts:read artifacts:write", "exp": now - 60}),
    );
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .to_path_buf();
    let out = target.join("console-screenshots");
    std::fs::create_dir_all(&out).expect("create the screenshot dir");

    let log = |name: &str| {
        std::fs::File::create(out.join(name)).expect("create a log file under the screenshot dir")
    };
    let mut node = std::process::Command::new("node");
    node.args([
        "--test",
        "--test-concurrency=1",
        "--test-timeout=200000",
        "tests/console.test.mjs",
    ])
    .current_dir(&web)
    .env("CONSOLE_URL", edge.url(""))
    .env("CONSOLE_TOKEN", edge.writer("acme"))
    .env(
        "CONSOLE_READER_TOKEN",
        edge.token("acme", json!("artifacts:read")),
    )
    .env(
        "CONSOLE_ADMIN_TOKEN",
        edge.token(
            "acme",
            json!("artifacts:read artifacts:write artifacts:admin"),
        ),
    )
    .env("CONSOLE_OTHER_TOKEN", edge.writer("globex"))
    .env("CONSOLE_EXPIRED_TOKEN", expired)
    .env("CONSOLE_OUT", &out)
    .env("CHROMIUM", CHROMIUM)
    .stdin(std::process::Stdio::null())
    .stdout(log("node.stdout.log"))
    .stderr(log("node.stderr.log"));
    let started = std::time::Instant::now();
    let mut child = node
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node (install Node.js: make venv): {e}"));
    // The gateway and the poller run on this runtime's workers meanwhile.
    let status = loop {
        match child.try_wait().expect("wait for node") {
            Some(status) => break Some(status),
            None if started.elapsed() > BROWSER_RUN_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    delivery.abort();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let output = (read("node.stdout.log"), read("node.stderr.log"));
    let (stdout, stderr) = output;
    println!("{stdout}\n{stderr}");
    println!(
        "browser tests took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let Some(status) = status else {
        panic!(
            "the browser tests did not finish within {BROWSER_RUN_LIMIT:?}:\n{stdout}\n{stderr}"
        );
    };
    assert!(
        status.success(),
        "the browser tests failed ({status}):\n{stdout}\n{stderr}"
    );
    // The runner really ran the must-show tests (a runner that found none
    // would also exit 0).
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0\n"),
        "{stdout}"
    );
}
