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
//! - `the_console_signs_in_by_oidc`: deployed sign-in by OIDC code + PKCE
//!   (`web/tests/oidc.test.mjs`) against a fake identity provider on
//!   127.0.0.1, the console configured with its issuer and client id.
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
/// One browser run at a time: the two runs in parallel on a small machine
/// push each other's waits past their bounds.
static ONE_BROWSER_RUN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    browser_prerequisites(&web);
    let _one = ONE_BROWSER_RUN.lock().await;

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
    let out = screenshot_dir();
    let env = [
        ("CONSOLE_URL", edge.url("")),
        ("CONSOLE_TOKEN", edge.writer("acme")),
        (
            "CONSOLE_READER_TOKEN",
            edge.token("acme", json!("artifacts:read")),
        ),
        (
            "CONSOLE_ADMIN_TOKEN",
            edge.token(
                "acme",
                json!("artifacts:read artifacts:write artifacts:admin"),
            ),
        ),
        ("CONSOLE_OTHER_TOKEN", edge.writer("globex")),
        ("CONSOLE_EXPIRED_TOKEN", expired),
    ];
    let stdout = run_node(&web, "tests/console.test.mjs", &env, &out, "node").await;
    delivery.abort();
    // The runner really ran the must-show tests (a runner that found none
    // would also exit 0).
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0\n"),
        "{stdout}"
    );
}

/// Runs `node --test <script>` in `web/` with `env` (and CONSOLE_OUT,
/// CHROMIUM), bounded by [`BROWSER_RUN_LIMIT`], its output logged under
/// `out` as `<log>.stdout.log` / `<log>.stderr.log`; asserts it passed and
/// returns its stdout. The gateway runs on the caller's runtime meanwhile.
async fn run_node(
    web: &Path,
    script: &str,
    env: &[(&str, String)],
    out: &Path,
    log: &str,
) -> String {
    let file = |name: String| {
        std::fs::File::create(out.join(name)).expect("create a log file under the screenshot dir")
    };
    let mut node = std::process::Command::new("node");
    node.args([
        "--test",
        "--test-concurrency=1",
        "--test-timeout=200000",
        script,
    ])
    .current_dir(web)
    .envs(env.iter().map(|(k, v)| (k, v)))
    .env("CONSOLE_OUT", out)
    .env("CHROMIUM", CHROMIUM)
    .stdin(std::process::Stdio::null())
    .stdout(file(format!("{log}.stdout.log")))
    .stderr(file(format!("{log}.stderr.log")));
    let started = std::time::Instant::now();
    let mut child = node
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node (install Node.js: make venv): {e}"));
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
    let read = |name: String| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let stdout = read(format!("{log}.stdout.log"));
    let stderr = read(format!("{log}.stderr.log"));
    println!("{stdout}\n{stderr}");
    println!(
        "{script} took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let Some(status) = status else {
        panic!("{script} did not finish within {BROWSER_RUN_LIMIT:?}:\n{stdout}\n{stderr}");
    };
    assert!(
        status.success(),
        "{script} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

fn browser_prerequisites(web: &Path) {
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
}

fn screenshot_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .to_path_buf();
    let out = target.join("console-screenshots");
    std::fs::create_dir_all(&out).expect("create the screenshot dir");
    out
}

/// Deployed sign-in (SPEC §17): OIDC authorization code + PKCE against a
/// fake identity provider that `web/tests/oidc.test.mjs` runs on
/// 127.0.0.1:<OIDC_PORT> (discovery, an authorize endpoint that redirects
/// straight back with a code, a token endpoint that checks the code and the
/// PKCE verifier and answers with a token this gateway accepts). The
/// console function is configured with that issuer and client id, as the
/// template configures it; the API behind it is the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_by_oidc() {
    let web = workspace_root().join("web");
    browser_prerequisites(&web);
    let _one = ONE_BROWSER_RUN.lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let client_id = "artifacts-console-test";
    let edge = Edge::start_public_with_console(&[
        ("ARTIFACTS_OIDC_ISSUER", &issuer),
        ("ARTIFACTS_OIDC_CLIENT_ID", client_id),
    ])
    .await;

    // The configuration is public, never cached, and the policy lets the
    // browser reach the issuer.
    let http = client();
    let config = http
        .get(edge.url("/console/config.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    assert_strict(&config);
    assert_eq!(header(&config, "cache-control"), "no-store");
    assert!(
        header(&config, "content-security-policy").contains(&format!(" {issuer};")),
        "{}",
        header(&config, "content-security-policy")
    );
    let body: Value = serde_json::from_str(&config.text().await.unwrap()).unwrap();
    assert_eq!(body["oidc"]["issuer"], issuer.as_str());
    assert_eq!(body["oidc"]["clientId"], client_id);

    let env = [
        ("CONSOLE_URL", edge.url("")),
        ("CONSOLE_TOKEN", edge.writer("acme")),
        ("OIDC_PORT", port.to_string()),
        ("OIDC_CLIENT_ID", client_id.to_owned()),
    ];
    let stdout = run_node(&web, "tests/oidc.test.mjs", &env, &screenshot_dir(), "oidc").await;
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0\n"),
        "{stdout}"
    );
}
