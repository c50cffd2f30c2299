//! The command-line client (issue 15, SPEC §15): the REAL `artifacts` binary
//! against the real handlers behind the local gateway's real loopback
//! listener (tests/src/edge.rs), the emulator behind them, and the upload
//! delivery (SQS → ingest) played by the poller in-process.
//!
//! Faults on the wire (a stream cut at an offset, flipped bytes, a crafted
//! answer, 5xx) come from a small forward proxy on 127.0.0.1 in this file;
//! the binary reaches it through the standard `HTTP_PROXY` variable, so it
//! sees both the API and the presigned storage URLs, and counts the content
//! bytes it sends.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::edge::Edge;
use harness::poller::{Invoke, Poller};
use harness::{BoxError, TestEnv};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// The binary, built once per test process with the cargo that runs the tests.

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// `target/<profile>/artifacts`, built by `cargo build -p artifacts-cli` into
/// the very target directory (and profile) this test binary lives in.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/cli-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_owned();
        let target_dir = profile_dir.parent().expect("target/").to_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "artifacts-cli",
                "--bin",
                "artifacts",
            ])
            .env("CARGO_TARGET_DIR", &target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p artifacts-cli failed");
        let binary = profile_dir.join(format!("artifacts{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.exists(), "{} was not built", binary.display());
        binary
    })
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    bytes: Vec<u8>,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{self:#?}");
        self
    }
}

/// How to run it.
#[derive(Clone)]
struct Cli {
    api: String,
    token: Option<String>,
    proxy: Option<String>,
}

impl Cli {
    fn new(edge: &Edge, token: &str) -> Self {
        Cli {
            api: format!("http://{}", edge.addr),
            token: Some(token.to_owned()),
            proxy: None,
        }
    }

    fn via(&self, proxy: &Proxy) -> Self {
        Cli {
            proxy: Some(proxy.url()),
            ..self.clone()
        }
    }

    fn token(&self, token: Option<&str>) -> Self {
        Cli {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Run `artifacts <args>` off the runtime (which serves the gateway),
    /// bounded to two minutes.
    async fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("ARTIFACTS_API", &self.api)
            .env_remove("ARTIFACTS_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            command.env_remove(var);
        }
        if let Some(token) = &self.token {
            command.env("ARTIFACTS_TOKEN", token);
        }
        if let Some(proxy) = &self.proxy {
            command.env("HTTP_PROXY", proxy).env("http_proxy", proxy);
        }
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("the binary starts");
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if child.try_wait().expect("wait").is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("artifacts did not finish within 120 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = child.wait_with_output().expect("output");
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                bytes: out.stdout,
            }
        })
        .await
        .expect("the run finishes")
    }
}

// ---------------------------------------------------------------------------
// The stack: gateway + handlers + emulator, and ingest fed by the poller.

struct Ingest(Arc<TestEnv>);

impl Invoke for Ingest {
    async fn invoke(&self, event: Value) -> Result<Value, BoxError> {
        artifacts_ingest::handler(&self.0.store, LambdaEvent::new(event, Context::default())).await
    }
}

struct Stack {
    edge: Edge,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

async fn stack() -> Stack {
    binary();
    let edge = Edge::start().await;
    let env = Arc::clone(&edge.env);
    let mut poller = Poller::new(env.sqs(), &env.resources.ingest_queue_url)
        .await
        .expect("the ingest queue");
    poller.idle = Duration::from_millis(100);
    let poller = tokio::spawn(async move { poller.run(&Ingest(env)).await });
    Stack { edge, poller }
}

// ---------------------------------------------------------------------------
// A forward proxy that counts and breaks things.

/// Faults to inject; `cut_at` applies once, the rest until cleared.
#[derive(Debug, Clone, Default)]
struct Faults {
    /// Cut the next content body after this many bytes.
    cut_at: Option<u64>,
    /// Flip the byte at this offset of every content body.
    flip_at: Option<u64>,
    /// Answer `status` to the next `times` requests whose URL contains `part`.
    status: Option<(u16, u32, String)>,
    /// Replace text in JSON answers.
    rewrite: Option<(String, String)>,
    /// Pause after every content chunk (to let a client be killed mid-way).
    slow: Option<Duration>,
}

#[derive(Default)]
struct ProxyState {
    /// Content bytes (GET answers 200/206 that are not JSON) sent to clients.
    sent: AtomicU64,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<String>>,
}

struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ProxyBody = BoxBody<Bytes, BoxError>;

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "proxy-connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

impl Proxy {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(ProxyState::default());
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, client) = (Arc::clone(&shared), client.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let (state, client) = (Arc::clone(&state), client.clone());
                        async move { Ok::<_, Infallible>(forward(state, client, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Content bytes sent since the last call.
    fn take_sent(&self) -> u64 {
        self.state.sent.swap(0, Ordering::SeqCst)
    }

    fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.state.faults.lock().unwrap());
    }

    /// Requests whose line contains `part`.
    fn requests(&self, part: &str) -> usize {
        let seen = self.state.requests.lock().unwrap();
        seen.iter().filter(|r| r.contains(part)).count()
    }
}

async fn forward(
    state: Arc<ProxyState>,
    client: reqwest::Client,
    req: Request<hyper::body::Incoming>,
) -> Response<ProxyBody> {
    let uri = req.uri().to_string();
    let method = req.method().clone();
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {uri}"));
    let injected = {
        let mut faults = state.faults.lock().unwrap();
        match &mut faults.status {
            Some((code, times, part)) if *times > 0 && uri.contains(part.as_str()) => {
                *times -= 1;
                Some(*code)
            }
            _ => None,
        }
    };
    if let Some(code) = injected {
        let mut response = Response::new(full(
            json!({"title": "injected", "status": code, "detail": "by the test proxy"}).to_string(),
        ));
        *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
        response
            .headers_mut()
            .insert("content-type", "application/problem+json".parse().unwrap());
        return response;
    }
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return bad_gateway(),
    };
    let mut upstream = client.request(method.clone(), &uri).body(body);
    for (name, value) in &headers {
        if !hop_by_hop(name.as_str()) {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(mut answer) = upstream.send().await else {
        return bad_gateway();
    };
    let status = answer.status();
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !hop_by_hop(name.as_str()) {
            response = response.header(name, value);
        }
    }
    let is_json = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    let content = method == hyper::Method::GET && (status == 200 || status == 206) && !is_json;
    if !content {
        let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
        let rewrite = state.faults.lock().unwrap().rewrite.clone();
        if let (true, Some((from, to))) = (is_json, rewrite) {
            bytes = String::from_utf8_lossy(&bytes)
                .replace(&from, &to)
                .into_bytes();
        }
        return response
            .header("content-length", bytes.len())
            .body(full(bytes))
            .unwrap();
    }
    if let Some(len) = answer.content_length() {
        response = response.header("content-length", len);
    }
    let faults = {
        let mut f = state.faults.lock().unwrap();
        let once = f.clone();
        f.cut_at = None;
        once
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(2);
    let sent = Arc::clone(&state);
    tokio::spawn(async move {
        let mut at = 0u64;
        loop {
            let mut chunk = match answer.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            let len = chunk.len() as u64;
            if let Some(flip) = faults.flip_at
                && (at..at + len).contains(&flip)
            {
                let mut changed = chunk.to_vec();
                changed[(flip - at) as usize] ^= 0x55;
                chunk = changed.into();
            }
            if let Some(cut) = faults.cut_at
                && at + len > cut
            {
                let keep = (cut - at) as usize;
                if keep > 0 {
                    sent.sent.fetch_add(keep as u64, Ordering::SeqCst);
                    let _ = tx.send(Ok(Frame::data(chunk.slice(..keep)))).await;
                }
                // Let those bytes reach the client, then break the connection.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = tx.send(Err("cut by the test proxy".into())).await;
                return;
            }
            at += len;
            sent.sent.fetch_add(len, Ordering::SeqCst);
            if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                return;
            }
            if let Some(pause) = faults.slow {
                tokio::time::sleep(pause).await;
            }
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    response.body(StreamBody::new(frames).boxed()).unwrap()
}

fn bad_gateway() -> Response<ProxyBody> {
    let mut response = Response::new(full("proxy: upstream failed"));
    *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    response
}

// ---------------------------------------------------------------------------
// Files.

/// Deterministic noise.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "artifacts-cli-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `root`: relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
                out.insert(rel.join("/"), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// 1. A tree of 30 files up and back down.

/// 30 files, 0 B to 20 MiB (about 38 MiB in all), nested, non-ASCII names:
/// both sides of the 4 MiB `PUT` limit and of the 64 KiB segment size.
fn thirty_files() -> Vec<(String, Vec<u8>)> {
    let sizes: [(&str, usize); 12] = [
        ("empty.txt", 0),
        ("one.bin", 1),
        ("docs/prd.md", 2_000),
        ("docs/arquitectura/diseño.md", 65_535),
        ("docs/arquitectura/ñandú.json", 65_536),
        ("日本/文書.md", 65_537),
        ("日本/図/構成 図.svg", 300_000),
        ("terraform/main.tf", 1_000_000),
        ("exact-4mib.bin", 4 * MIB),
        ("over-4mib.bin", 4 * MIB + 1),
        ("big/twenty.bin", 20 * MIB),
        ("Ünïcödé/ß/ça va.txt", 12_345),
    ];
    let mut files: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, (p, n))| (p.to_string(), noise(*n, i as u64 + 1)))
        .collect();
    for i in 0..18 {
        let path = format!("reports/run {}/scan-{i:02}.sarif.json", i % 3);
        files.push((path, noise(100 + i * 997, 100 + i as u64)));
    }
    assert_eq!(files.len(), 30);
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_goes_up_and_comes_back_identical() {
    let stack = stack().await;
    let cli = Cli::new(&stack.edge, &stack.edge.writer("acme"));
    let src = scratch("tree-src");
    let files = thirty_files();
    for (path, bytes) in &files {
        write(&src, path, bytes);
    }
    // A dry run sends nothing.
    let planned = cli
        .run(&[
            "put",
            src.to_str().unwrap(),
            "-w",
            "wf-tree",
            "--dry-run",
            "--format",
            "json",
        ])
        .await;
    planned.expect(0);
    let planned = planned.json();
    assert_eq!(planned["files"].as_array().unwrap().len(), 30);
    let over = planned["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "would-upload")
        .count();
    assert_eq!(
        over, 2,
        "the two files over 4 MiB go through upload sessions"
    );
    let empty = cli.run(&["ls", "-w", "wf-tree", "--format", "json"]).await;
    assert_eq!(empty.expect(0).json()["artifacts"], json!([]));

    let started = Instant::now();
    let put = cli
        .run(&[
            "put",
            src.to_str().unwrap(),
            "-w",
            "wf-tree",
            "-t",
            "report",
            "--format",
            "json",
        ])
        .await;
    eprintln!("put of 30 files: {:?}", started.elapsed());
    put.expect(0);
    let put = put.json();
    assert_eq!(
        (put["uploaded"].as_u64(), put["failed"].as_u64()),
        (Some(30), Some(0)),
        "{put}"
    );

    // The listing says exactly what was put.
    let listed = cli.run(&["ls", "-w", "wf-tree", "--format", "json"]).await;
    let listed = listed.expect(0).json();
    let got: BTreeMap<String, (u64, String, u64, String)> = listed["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_owned(),
                (
                    a["size"].as_u64().unwrap(),
                    a["sha256"].as_str().unwrap().to_owned(),
                    a["latestVersion"].as_u64().unwrap(),
                    a["artifactType"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    let want: BTreeMap<String, (u64, String, u64, String)> = files
        .iter()
        .map(|(p, b)| {
            (
                p.clone(),
                (b.len() as u64, sha256(b), 1, "report".to_owned()),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(listed["count"], 30);

    // Down again into a fresh directory: the same tree, byte for byte.
    let dst = scratch("tree-dst");
    let started = Instant::now();
    let got = cli
        .run(&[
            "get",
            "wf-tree:",
            "-D",
            dst.to_str().unwrap(),
            "--format",
            "json",
        ])
        .await;
    eprintln!("get of 30 files: {:?}", started.elapsed());
    got.expect(0);
    let downloaded = tree(&dst);
    assert_eq!(
        downloaded.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same paths, and no .part or .etag left behind"
    );
    for (path, bytes) in &files {
        assert!(downloaded[path] == *bytes, "{path}: the bytes differ");
    }
    // A subtree and a glob select what they say.
    let sub = scratch("tree-sub");
    cli.run(&[
        "get",
        "wf-tree:日本/",
        "--pattern",
        "**/*.svg",
        "-D",
        sub.to_str().unwrap(),
    ])
    .await
    .expect(0);
    assert_eq!(
        tree(&sub).keys().collect::<Vec<_>>(),
        vec!["日本/図/構成 図.svg"]
    );

    // Again with --skip-unchanged: nothing is uploaded, no version is made.
    let again = cli
        .run(&[
            "put",
            src.to_str().unwrap(),
            "-w",
            "wf-tree",
            "--skip-unchanged",
            "--format",
            "json",
        ])
        .await;
    let again = again.expect(0).json();
    assert_eq!(
        (again["uploaded"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(30)),
        "{again}"
    );
    // One file changed: only it goes up, as version 2.
    write(&src, "docs/prd.md", b"changed");
    let third = cli
        .run(&[
            "put",
            src.to_str().unwrap(),
            "-w",
            "wf-tree",
            "--skip-unchanged",
            "--format",
            "json",
        ])
        .await;
    let third = third.expect(0).json();
    assert_eq!(
        (third["uploaded"].as_u64(), third["skipped"].as_u64()),
        (Some(1), Some(29)),
        "{third}"
    );
    let prd = third["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["status"] == "uploaded")
        .unwrap()
        .clone();
    assert_eq!(
        (prd["path"].as_str(), prd["version"].as_u64()),
        (Some("docs/prd.md"), Some(2))
    );
    let history = cli
        .run(&["versions", "wf-tree:docs/prd.md", "--format", "json"])
        .await;
    let history = history.expect(0).json();
    let numbers: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    // The older version by reference, to stdout.
    let old = cli
        .run(&["get", "artifact://wf-tree/docs/prd.md@1", "-o", "-"])
        .await;
    assert!(old.expect(0).bytes == files[2].1, "version 1 to stdout");
    for dir in [src, dst, sub] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

// ---------------------------------------------------------------------------
// 2. Resume.

/// Put `bytes` at `path` with the CLI; its artifactId.
async fn put_one(cli: &Cli, workflow: &str, path: &str, bytes: &[u8]) -> String {
    let dir = scratch("one");
    write(&dir, path, bytes);
    let run = cli
        .run(&[
            "put",
            dir.to_str().unwrap(),
            "-w",
            workflow,
            "--format",
            "json",
        ])
        .await;
    std::fs::remove_dir_all(&dir).unwrap();
    let doc = run.expect(0).json();
    doc["files"][0]["artifactId"].as_str().unwrap().to_owned()
}

fn part_len(file: &Path) -> u64 {
    let mut part = file.as_os_str().to_owned();
    part.push(".part");
    std::fs::metadata(PathBuf::from(part))
        .map(|m| m.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_with_only_the_missing_bytes() {
    let stack = stack().await;
    let proxy = Proxy::start().await;
    let cli = Cli::new(&stack.edge, &stack.edge.writer("acme"));
    let through = cli.via(&proxy);
    // One served by the function (≤ 4 MiB, Range from the decrypted
    // segments), one by storage after a 303 (S3's own Range).
    let direct = noise(3 * MIB + 12_345, 7);
    let stored = noise(6 * MIB + 4_321, 8);
    let direct_id = put_one(&cli, "wf-resume", "direct.bin", &direct).await;
    let stored_id = put_one(&cli, "wf-resume", "stored.bin", &stored).await;
    let dir = scratch("resume");

    // Cut by the server side at several offsets (mid-segment, on a segment
    // boundary, deep into the large one); no retries, so the run fails.
    for (id, content, cut) in [
        (&direct_id, &direct, 1_000_003u64),
        (&direct_id, &direct, 2 * 65_536),
        (&stored_id, &stored, 5 * MIB as u64 + 17),
        (&stored_id, &stored, 1),
    ] {
        let file = dir.join(format!("{id}-{cut}"));
        proxy.take_sent();
        proxy.faults(|f| f.cut_at = Some(cut));
        let first = through
            .run(&["get", id, "-o", file.to_str().unwrap(), "--retries", "0"])
            .await;
        first.expect(1);
        assert!(!file.exists(), "nothing at the target name after a cut");
        let kept = part_len(&file);
        let sent = proxy.take_sent();
        assert_eq!(sent, cut, "the proxy sent up to the cut");
        assert!(kept > 0 && kept <= cut, "kept {kept} of {cut}");

        let second = through
            .run(&["get", id, "-o", file.to_str().unwrap(), "--format", "json"])
            .await;
        let doc = second.expect(0).json();
        let sent = proxy.take_sent();
        assert_eq!(
            sent,
            content.len() as u64 - kept,
            "only the missing bytes travel (cut at {cut}, kept {kept})"
        );
        assert_eq!(doc["files"][0]["status"], "resumed");
        assert_eq!(doc["files"][0]["resumedFrom"], kept);
        assert!(
            std::fs::read(&file).unwrap() == *content,
            "{id}@{cut}: bytes differ"
        );
        assert_eq!(part_len(&file), 0, "the .part is gone");
    }

    // Within one run, a broken connection is retried from where it broke.
    let file = dir.join("in-run");
    proxy.take_sent();
    proxy.faults(|f| f.cut_at = Some(4 * MIB as u64 + 1));
    let run = through
        .run(&[
            "get",
            &stored_id,
            "-o",
            file.to_str().unwrap(),
            "--format",
            "json",
        ])
        .await;
    run.expect(0);
    assert_eq!(
        proxy.take_sent(),
        stored.len() as u64,
        "every byte exactly once"
    );
    assert!(std::fs::read(&file).unwrap() == stored);

    // A client interrupted (Ctrl-C: exit 130), then killed (SIGKILL) mid-way
    // through a slowed stream, resumes each time.
    let file = dir.join("killed");
    proxy.faults(|f| f.slow = Some(Duration::from_millis(20)));
    for (signal, at_least, code) in [
        ("-INT", MIB as u64, Some(130)),
        ("-KILL", 3 * MIB as u64, None),
    ] {
        let child = Command::new(binary())
            .args(["get", &stored_id, "-o", file.to_str().unwrap()])
            .env("ARTIFACTS_API", &cli.api)
            .env("ARTIFACTS_TOKEN", cli.token.as_deref().unwrap())
            .env("HTTP_PROXY", proxy.url())
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while part_len(&file) < at_least {
            assert!(
                Instant::now() < deadline,
                "the download did not get to {at_least}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap().status)
            .await
            .unwrap();
        assert_eq!(status.code(), code, "{signal}");
        assert!(!file.exists());
    }
    proxy.faults(|f| f.slow = None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kept = part_len(&file);
    assert!(kept >= MIB as u64, "kept {kept}");
    proxy.take_sent();
    through
        .run(&["get", &stored_id, "-o", file.to_str().unwrap()])
        .await
        .expect(0);
    assert_eq!(
        proxy.take_sent(),
        stored.len() as u64 - kept,
        "after a kill (kept {kept})"
    );
    assert!(std::fs::read(&file).unwrap() == stored);

    // The artifact changes between the two runs: If-Range restarts from
    // zero with the new version; versions are never spliced.
    for (path, old, id) in [
        ("direct.bin", &direct, &direct_id),
        ("stored.bin", &stored, &stored_id),
    ] {
        let file = dir.join(format!("changed-{path}"));
        proxy.faults(|f| f.cut_at = Some(MIB as u64));
        through
            .run(&["get", id, "-o", file.to_str().unwrap(), "--retries", "0"])
            .await
            .expect(1);
        assert!(part_len(&file) > 0);
        let new = noise(old.len(), 99);
        assert_eq!(&put_one(&cli, "wf-resume", path, &new).await, id);
        proxy.take_sent();
        let run = through
            .run(&["get", id, "-o", file.to_str().unwrap(), "--format", "json"])
            .await;
        let doc = run.expect(0).json();
        assert_eq!(
            proxy.take_sent(),
            new.len() as u64,
            "{path}: restarted from zero"
        );
        assert_eq!(doc["files"][0]["version"], 2);
        assert!(
            std::fs::read(&file).unwrap() == new,
            "{path}: exactly version 2"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// 3. Corruption on the wire.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_transfer_is_detected_and_leaves_no_file() {
    let stack = stack().await;
    let proxy = Proxy::start().await;
    let cli = Cli::new(&stack.edge, &stack.edge.writer("acme"));
    let small = noise(200_000, 3);
    let large = noise(5 * MIB, 4);
    let small_id = put_one(&cli, "wf-bad", "small.bin", &small).await;
    let large_id = put_one(&cli, "wf-bad", "large.bin", &large).await;
    let dir = scratch("corrupt");
    proxy.faults(|f| f.flip_at = Some(123_457));
    for id in [&small_id, &large_id] {
        let file = dir.join(id);
        let run = cli
            .via(&proxy)
            .run(&["get", id, "-o", file.to_str().unwrap()])
            .await;
        run.expect(1);
        assert!(run.stderr.contains("sha256 mismatch"), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        assert!(!file.exists(), "nothing at the target name");
        assert_eq!(
            part_len(&file),
            0,
            "the bad bytes are not left to resume from"
        );
    }
    // Into a directory, the same.
    let run = cli
        .via(&proxy)
        .run(&["get", "wf-bad:", "-D", dir.join("tree").to_str().unwrap()])
        .await;
    run.expect(1);
    assert!(
        tree(&dir.join("tree"))
            .keys()
            .all(|k| k.ends_with(".corrupt")),
        "{:?}",
        tree(&dir.join("tree")).keys()
    );
    // Without the fault the same commands succeed.
    proxy.faults(|f| f.flip_at = None);
    let file = dir.join("fine");
    cli.via(&proxy)
        .run(&["get", &large_id, "-o", file.to_str().unwrap()])
        .await
        .expect(0);
    assert!(std::fs::read(&file).unwrap() == large);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// 4. Exit codes, and what is retried.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_say_what_happened() {
    let stack = stack().await;
    let edge = &stack.edge;
    let cli = Cli::new(edge, &edge.writer("acme"));
    let id = put_one(&cli, "wf-codes", "a.txt", b"hello").await;

    // 0
    cli.run(&["versions", &id]).await.expect(0);
    // 2: the command line is wrong (clap), or a reference is malformed.
    cli.run(&["get"]).await.expect(2);
    cli.run(&["get", &id, "--bogus"]).await.expect(2);
    cli.run(&["get", "not/an-id"]).await.expect(2);
    cli.run(&["put", "/nonexistent/file", "-w", "wf-codes"])
        .await
        .expect(2);
    cli.run(&["link", &id, "--expires", "soon"]).await.expect(2);
    // 3: missing, and another org's: the same message.
    let missing = cli
        .run(&["versions", "0123456789abcdef0123456789abcdef"])
        .await;
    missing.expect(3);
    let globex = cli.token(Some(&edge.writer("globex")));
    let foreign = globex.run(&["versions", &id]).await;
    foreign.expect(3);
    assert_eq!(missing.stderr, foreign.stderr);
    assert!(foreign.stderr.contains("Not Found"), "{foreign:?}");
    globex.run(&["get", &id, "-o", "-"]).await.expect(3);
    cli.run(&["get", "wf-codes:nothing.txt", "-o", "-"])
        .await
        .expect(3);
    // 4: no token, a bad token, a token without the write scope.
    let none = cli.token(None).run(&["ls", "-w", "wf-codes"]).await;
    none.expect(4);
    assert!(none.stderr.contains("no token"), "{none:?}");
    cli.token(Some("not-a-jwt"))
        .run(&["ls", "-w", "wf-codes"])
        .await
        .expect(4);
    let reader = cli.token(Some(&edge.token("acme", json!("artifacts:read"))));
    reader.run(&["ls", "-w", "wf-codes"]).await.expect(0);
    let dir = scratch("codes");
    write(&dir, "b.txt", b"b");
    let refused = reader
        .run(&["put", dir.to_str().unwrap(), "-w", "wf-codes"])
        .await;
    refused.expect(4);
    assert!(refused.stderr.contains("scope"), "{refused:?}");
    // 1: the API refuses an operation (a path that clashes: 409).
    write(&dir, "A.TXT", b"clash");
    std::fs::remove_file(dir.join("b.txt")).unwrap();
    let clash = cli
        .run(&["put", dir.to_str().unwrap(), "-w", "wf-codes"])
        .await;
    clash.expect(1);
    assert!(clash.stderr.contains("409"), "{clash:?}");
    // Mixed outcomes: 1.
    cli.run(&[
        "get",
        &id,
        "0123456789abcdef0123456789abcdef",
        "-D",
        dir.to_str().unwrap(),
    ])
    .await
    .expect(3);
    let mixed = cli
        .run(&[
            "get",
            &id,
            "wf-codes:nothing.txt",
            "not-an-id-but-valid",
            "-D",
            dir.to_str().unwrap(),
        ])
        .await;
    assert!(mixed.code == 3 || mixed.code == 1, "{mixed:?}");

    // Retries: 503 and 429 are retried with back-off, 4xx never.
    let proxy = Proxy::start().await;
    let through = cli.via(&proxy);
    proxy.faults(|f| f.status = Some((503, 2, "/versions".into())));
    through.run(&["versions", &id]).await.expect(0);
    assert_eq!(proxy.requests("/versions"), 3, "two 503s, then the answer");
    proxy.faults(|f| f.status = Some((429, 1, "/links".into())));
    through.run(&["links", &id]).await.expect(0);
    assert_eq!(proxy.requests("/links"), 2);
    proxy.faults(|f| f.status = Some((500, 100, "/download".into())));
    let gave_up = through
        .run(&["get", &id, "-o", "-", "--retries", "2"])
        .await;
    gave_up.expect(1);
    assert_eq!(proxy.requests("/download"), 3, "bounded: 1 + 2 retries");
    proxy.faults(|f| f.status = None);
    through
        .run(&["versions", "0123456789abcdef0123456789abcdef"])
        .await
        .expect(3);
    assert_eq!(
        proxy.requests("/v1/artifacts/0123456789abcdef0123456789abcdef/versions"),
        1,
        "a 404 is not retried"
    );
    through
        .token(Some("bad"))
        .run(&["ls", "-w", "wf-codes"])
        .await
        .expect(4);
    assert_eq!(
        proxy.requests("/v1/workflows/wf-codes/artifacts"),
        1,
        "a 401 is not retried"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// 5. Bundles verified against their manifest; links.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_verified_and_a_link_serves_without_a_token() {
    let stack = stack().await;
    let edge = &stack.edge;
    let cli = Cli::new(edge, &edge.writer("acme"));
    let src = scratch("bundle-src");
    for i in 0..50 {
        let bytes = if i % 2 == 0 {
            format!("# document {i}\n").repeat(50 + i * 7).into_bytes()
        } else {
            noise(1_000 + i * 131, i as u64)
        };
        write(
            &src,
            &format!(
                "part-{}/file-{i:02}.{}",
                i % 5,
                if i % 2 == 0 { "md" } else { "bin" }
            ),
            &bytes,
        );
    }
    let put = cli
        .run(&[
            "put",
            src.to_str().unwrap(),
            "-w",
            "wf-run",
            "-j",
            "8",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(put.expect(0).json()["uploaded"], 50);
    let out = scratch("bundle-out");
    let zip = out.join("run.zip");
    let run = cli
        .run(&[
            "bundle",
            "wf-run",
            "-o",
            zip.to_str().unwrap(),
            "--verify",
            "--format",
            "json",
        ])
        .await;
    let doc = run.expect(0).json();
    assert_eq!(
        (doc["verified"].as_bool(), doc["files"].as_u64()),
        (Some(true), Some(50)),
        "{doc}"
    );
    // Independently: the ZIP holds exactly the files put.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    assert_eq!(
        archive.len(),
        52,
        "MANIFEST.json + its signature + 50 files"
    );
    let first = archive.by_index(0).unwrap().name().to_owned();
    assert_eq!(first, "MANIFEST.json");
    assert_eq!(archive.by_index(1).unwrap().name(), "MANIFEST.json.sig");
    // A prefix selects; a byte changed on the wire fails verification (1)
    // and leaves nothing at the target name.
    let part = out.join("part-1.zip");
    let run = cli
        .run(&[
            "bundle",
            "wf-run",
            "-p",
            "part-1/",
            "-o",
            part.to_str().unwrap(),
            "--verify",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(run.expect(0).json()["files"], 10);
    let proxy = Proxy::start().await;
    proxy.faults(|f| f.flip_at = Some(3_000));
    let bad = out.join("bad.zip");
    let run = cli
        .via(&proxy)
        .run(&["bundle", "wf-run", "-o", bad.to_str().unwrap(), "--verify"])
        .await;
    run.expect(1);
    assert!(!bad.exists(), "{run:?}");
    assert!(run.stderr.contains("verification"), "{run:?}");

    // A link: fetched with no token at all, it returns the bytes.
    let target = "part-1/file-01.bin";
    let bytes = std::fs::read(src.join(target)).unwrap();
    let link = cli
        .run(&[
            "link",
            &format!("wf-run:{target}"),
            "--expires",
            "1h",
            "--format",
            "json",
        ])
        .await;
    let link = link.expect(0).json();
    let url = link["url"].as_str().unwrap();
    // Links start with the configured public base URL (the test env's
    // ARTIFACTS_PUBLIC_BASE_URL); the path is what this listener serves.
    let path = &url[url.find("/v1/links/").expect("a link URL")..];
    let fetched = reqwest::Client::new()
        .get(edge.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert!(fetched.bytes().await.unwrap() == bytes);
    let listed = cli
        .run(&["links", &format!("wf-run:{target}"), "--format", "json"])
        .await;
    let listed = listed.expect(0).json();
    assert_eq!(listed["links"][0]["linkId"], link["linkId"]);
    assert_eq!(listed["links"][0]["uses"], 1);
    let table = cli.run(&["links", &format!("wf-run:{target}")]).await;
    assert!(table.expect(0).stdout.starts_with("LINK"), "{table:?}");
    cli.run(&["revoke", link["linkId"].as_str().unwrap()])
        .await
        .expect(0);
    let revoked = reqwest::Client::new()
        .get(edge.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 410);
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}

// ---------------------------------------------------------------------------
// 6. Never outside -D.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_would_escape_the_directory_are_refused() {
    let stack = stack().await;
    let cli = Cli::new(&stack.edge, &stack.edge.writer("acme"));
    put_one(&cli, "wf-escape", "safe/evil.txt", b"payload").await;
    let base = scratch("escape");
    let dir = base.join("out");
    std::fs::create_dir_all(&dir).unwrap();
    // The API never stores such a path; a crafted answer (a proxy rewriting
    // the listing) names one anyway.
    let proxy = Proxy::start().await;
    for crafted in [
        "../evil.txt",
        "../../evil.txt",
        "/tmp/evil.txt",
        "a/../../evil.txt",
        "C:/evil.txt",
        "..\\\\evil.txt",
    ] {
        proxy.faults(|f| {
            f.rewrite = Some((
                "\"path\":\"safe/evil.txt\"".into(),
                format!("\"path\":\"{crafted}\""),
            ))
        });
        let run = cli
            .via(&proxy)
            .run(&["get", "wf-escape:", "-D", dir.to_str().unwrap()])
            .await;
        run.expect(1);
        assert!(run.stderr.contains("refusing"), "{crafted}: {run:?}");
        assert_eq!(
            tree(&base),
            BTreeMap::new(),
            "{crafted}: something was written"
        );
    }
    assert!(!Path::new("/tmp/evil.txt").exists());
    // A symbolic link inside -D that leads outside is not followed.
    #[cfg(unix)]
    {
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("safe")).unwrap();
        let run = cli
            .run(&["get", "wf-escape:", "-D", dir.to_str().unwrap()])
            .await;
        run.expect(1);
        assert!(run.stderr.contains("symbolic link"), "{run:?}");
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "written outside"
        );
        std::fs::remove_file(dir.join("safe")).unwrap();
    }
    // Without the fault, the file lands where it belongs.
    cli.run(&["get", "wf-escape:", "-D", dir.to_str().unwrap()])
        .await
        .expect(0);
    assert_eq!(
        std::fs::read(dir.join("safe/evil.txt")).unwrap(),
        b"payload"
    );
    std::fs::remove_dir_all(&base).unwrap();
}

// ---------------------------------------------------------------------------
// Throughput against raw S3 on the same emulator (issue 15), on demand:
//   CLI_BENCH_MIB=256 cargo test -p artifacts-tests --test cli -- --ignored --nocapture throughput
// CLI_BENCH_BIN=<path> measures another build of the binary (e.g. --release).

/// Run `artifacts` under `/usr/bin/time -f %M`: (run, peak RSS in KiB).
async fn timed(cli: &Cli, bin: &Path, args: &[&str]) -> (Duration, u64) {
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%M"])
        .arg(bin)
        .args(args)
        .env("ARTIFACTS_API", &cli.api)
        .env("ARTIFACTS_TOKEN", cli.token.as_deref().unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || command.output().expect("/usr/bin/time runs"))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let rss = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (elapsed, rss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: minutes, and memory for the emulator"]
async fn throughput_of_put_and_get_against_raw_s3() {
    use futures_util::StreamExt;
    let total_mib: usize = std::env::var("CLI_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let bin = std::env::var("CLI_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| binary().to_owned());
    let stack = stack().await;
    let cli = Cli::new(&stack.edge, &stack.edge.writer("acme"));
    let s3 = stack.edge.env.s3();
    let bucket = stack.edge.env.resources.bucket.clone();
    let src = scratch("bench-src");
    let each = total_mib * MIB / 16;
    for i in 0..16 {
        write(&src, &format!("f{i:02}.bin"), &noise(each, i as u64));
    }
    let mib = (each * 16) as f64 / MIB as f64;
    let rate = |d: Duration| mib / d.as_secs_f64();

    // Raw S3 PUT of the same 16 files, 4 at a time (the CLI's default).
    let started = Instant::now();
    futures_util::stream::iter(0..16)
        .map(|i| {
            let (s3, bucket, path) = (s3.clone(), bucket.clone(), src.join(format!("f{i:02}.bin")));
            async move {
                let body = aws_sdk_s3::primitives::ByteStream::from_path(&path)
                    .await
                    .unwrap();
                s3.put_object()
                    .bucket(bucket)
                    .key(format!("raw/f{i:02}.bin"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    let raw_put = started.elapsed();
    let (cli_put, put_rss) = timed(
        &cli,
        &bin,
        &["put", src.to_str().unwrap(), "-w", "wf-bench", "-q"],
    )
    .await;

    // Raw S3 GET to disk, 4 at a time.
    let raw_dir = scratch("bench-raw");
    let started = Instant::now();
    futures_util::stream::iter(0..16)
        .map(|i| {
            let (s3, bucket, path) = (
                s3.clone(),
                bucket.clone(),
                raw_dir.join(format!("f{i:02}.bin")),
            );
            async move {
                let object = s3
                    .get_object()
                    .bucket(bucket)
                    .key(format!("raw/f{i:02}.bin"))
                    .send()
                    .await
                    .unwrap();
                let mut body = object.body.into_async_read();
                let mut file = tokio::fs::File::create(&path).await.unwrap();
                tokio::io::copy(&mut body, &mut file).await.unwrap();
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    let raw_get = started.elapsed();
    let dst = scratch("bench-dst");
    let (cli_get, get_rss) = timed(
        &cli,
        &bin,
        &["get", "wf-bench:", "-D", dst.to_str().unwrap(), "-q"],
    )
    .await;
    assert!(tree(&dst) == tree(&src), "the downloaded tree differs");
    std::fs::remove_dir_all(&raw_dir).unwrap();
    std::fs::remove_dir_all(&dst).unwrap();

    // One large file: the CLI's peak memory while it streams it.
    let big = scratch("bench-big");
    write(&big, "large.bin", &noise(total_mib * MIB, 77));
    std::fs::remove_dir_all(&src).unwrap();
    let (_, big_put_rss) = timed(
        &cli,
        &bin,
        &[
            "put",
            big.join("large.bin").to_str().unwrap(),
            "-w",
            "wf-bench-big",
            "-q",
        ],
    )
    .await;
    let out = big.join("back.bin");
    let (_, big_get_rss) = timed(
        &cli,
        &bin,
        &[
            "get",
            "wf-bench-big:large.bin",
            "-o",
            out.to_str().unwrap(),
            "-q",
        ],
    )
    .await;
    assert_eq!(
        std::fs::metadata(&out).unwrap().len(),
        (total_mib * MIB) as u64
    );
    std::fs::remove_dir_all(&big).unwrap();

    eprintln!(
        "\n{mib:.0} MiB in 16 files, concurrency 4, binary {}",
        bin.display()
    );
    eprintln!("{:<28} {:>9} {:>10} {:>8}", "", "seconds", "MiB/s", "ratio");
    eprintln!(
        "{:<28} {:>9.2} {:>10.1}",
        "raw S3 PUT (SDK)",
        raw_put.as_secs_f64(),
        rate(raw_put)
    );
    eprintln!(
        "{:<28} {:>9.2} {:>10.1} {:>8.2}",
        "artifacts put (committed)",
        cli_put.as_secs_f64(),
        rate(cli_put),
        cli_put.as_secs_f64() / raw_put.as_secs_f64()
    );
    eprintln!(
        "{:<28} {:>9.2} {:>10.1}",
        "raw S3 GET (SDK)",
        raw_get.as_secs_f64(),
        rate(raw_get)
    );
    eprintln!(
        "{:<28} {:>9.2} {:>10.1} {:>8.2}",
        "artifacts get (verified)",
        cli_get.as_secs_f64(),
        rate(cli_get),
        cli_get.as_secs_f64() / raw_get.as_secs_f64()
    );
    eprintln!(
        "peak RSS of the CLI: put {} MiB, get {} MiB (16 files); one {total_mib} MiB file: put {} MiB, get {} MiB",
        put_rss / 1024,
        get_rss / 1024,
        big_put_rss / 1024,
        big_get_rss / 1024
    );
}

// ---------------------------------------------------------------------------
// rm, restore, audit (SPEC §12, §13).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_restore_and_audit_round_trip() {
    let stack = stack().await;
    let edge = &stack.edge;
    let cli = Cli::new(edge, &edge.writer("acme"));
    // Under the 64 KiB pipe buffer: `Cli::run` reads stdout after the exit.
    let bytes = noise(20_000, 15);
    let id = put_one(&cli, "wf-trash", "kept/report.bin", &bytes).await;
    cli.run(&["get", &id, "-o", "-"]).await.expect(0);

    // Without the write scope: 4, and nothing is deleted.
    let reader = cli.token(Some(&edge.token("acme", json!("artifacts:read"))));
    let refused = reader.run(&["rm", &id]).await;
    refused.expect(4);
    assert!(refused.stderr.contains("scope"), "{refused:?}");
    assert_eq!(
        cli.run(&["get", &id, "-o", "-"]).await.expect(0).bytes,
        bytes
    );
    // Another org's id: 3, with the same message as a missing one; nothing deleted.
    let globex = cli.token(Some(&edge.writer("globex")));
    let foreign = globex.run(&["rm", &id]).await;
    foreign.expect(3);
    let missing = cli.run(&["rm", "0123456789abcdef0123456789abcdef"]).await;
    missing.expect(3);
    assert_eq!(
        foreign.stderr.replace(&id, "ID"),
        missing
            .stderr
            .replace("0123456789abcdef0123456789abcdef", "ID"),
    );
    assert_eq!(
        cli.run(&["get", &id, "-o", "-"]).await.expect(0).bytes,
        bytes
    );
    // --purge needs the admin scope.
    cli.run(&["rm", &id, "--purge"]).await.expect(4);
    cli.run(&["get", &id, "-o", "-"]).await.expect(0);

    // rm: gone (3), then restore: the same bytes.
    let deleted = cli.run(&["rm", &id, "--format", "json"]).await;
    assert_eq!(deleted.expect(0).json()["deleted"], json!([id]));
    let gone = cli.run(&["get", &id, "-o", "-"]).await;
    gone.expect(3);
    assert!(gone.bytes.is_empty(), "{gone:?}");
    // Deleting it again: the API's 409, exit 1, the problem printed.
    let twice = cli.run(&["rm", &id]).await;
    twice.expect(1);
    assert!(
        twice.stderr.contains("Conflict") && twice.stderr.contains("409"),
        "{twice:?}"
    );
    let restored = cli.run(&["restore", &id, "--format", "json"]).await;
    let doc = restored.expect(0).json();
    assert_eq!(doc["restored"][0]["artifactId"], json!(id));
    assert_eq!(doc["restored"][0]["path"], json!("kept/report.bin"));
    let back = cli.run(&["get", &id, "-o", "-"]).await;
    assert_eq!(sha256(&back.expect(0).bytes), sha256(&bytes));
    // Restoring what is not deleted is refused (not a success).
    let again = cli.run(&["restore", &id]).await;
    assert_ne!(again.code, 0, "{again:?}");
    globex.run(&["restore", &id]).await.expect(3);

    // audit: admin only; shows the delete and the restore, newest first.
    cli.run(&["audit", &id]).await.expect(4);
    let admin = cli.token(Some(&edge.token(
        "acme",
        json!("artifacts:read artifacts:write artifacts:admin"),
    )));
    let trail = admin.run(&["audit", &id, "--format", "json"]).await;
    let doc = trail.expect(0).json();
    let actions: Vec<&str> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "success")
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    let restored_at = actions.iter().position(|a| *a == "artifact.restored");
    let deleted_at = actions.iter().position(|a| *a == "artifact.deleted");
    assert!(
        restored_at.is_some() && deleted_at.is_some() && restored_at < deleted_at,
        "{actions:?}"
    );
    assert!(actions.contains(&"version.created"), "{actions:?}");
    for r in doc["records"].as_array().unwrap() {
        assert_eq!(r["artifactId"], json!(id), "{r}");
    }
    // The org's feed, filtered and followed page by page (one record a page).
    let feed = admin
        .run(&[
            "audit",
            "--action",
            "artifact.deleted",
            "--workflow",
            "wf-trash",
            "--all",
            "--format",
            "json",
        ])
        .await;
    let doc = feed.expect(0).json();
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{doc}");
    assert_eq!(records[0]["artifactId"], json!(id));
    assert_eq!(records[0]["actor"]["sub"], json!("user-of-acme"));
    let paged = admin
        .run(&[
            "audit", "-w", "wf-trash", "--limit", "1", "--all", "--format", "json",
        ])
        .await;
    let all = paged.expect(0).json();
    assert!(all["records"].as_array().unwrap().len() >= 3, "{all}");
    assert!(all["nextCursor"].is_null(), "{all}");
    let one = admin
        .run(&[
            "audit", "-w", "wf-trash", "--limit", "1", "--format", "json",
        ])
        .await;
    let first = one.expect(0).json();
    assert_eq!(first["records"].as_array().unwrap().len(), 1);
    assert!(first["nextCursor"].is_string(), "{first}");
    assert_eq!(first["records"][0], all["records"][0]);
    // A bad filter: the server's problem names the field; exit 1.
    let bad = admin.run(&["audit", "--action", "nope"]).await;
    bad.expect(1);
    assert!(bad.stderr.contains("action"), "{bad:?}");
    // Another org's id: 3, as a missing one.
    let globex_admin = cli.token(Some(&edge.token("globex", json!("artifacts:admin"))));
    globex_admin.run(&["audit", &id]).await.expect(3);
    // The table lists the same records.
    let table = admin.run(&["audit", &id]).await;
    assert!(
        table.expect(0).stdout.contains("artifact.restored"),
        "{table:?}"
    );

    // --purge with the admin scope: gone for good, not restorable.
    admin.run(&["rm", &id, "--purge"]).await.expect(0);
    cli.run(&["get", &id, "-o", "-"]).await.expect(3);
    cli.run(&["restore", &id]).await.expect(3);
}

// ---------------------------------------------------------------------------
// Signed bundles and attestations, verified offline (SPEC §18).

/// A ZIP's entries in order: (name, bytes).
type Entries = Vec<(String, Vec<u8>)>;

/// A bundle's entries in order.
fn zip_entries(path: &Path) -> Entries {
    harness::zip_entries(&std::fs::read(path).unwrap())
}

/// `entries` as a well-formed ZIP (valid CRCs) at `path`: a tampered
/// bundle that only the manifest and its signature can catch.
fn rezip(path: &Path, entries: &[(String, Vec<u8>)]) {
    std::fs::write(path, harness::rezip(entries)).unwrap();
}

/// Python `cryptography` on a bundle (scripts/verify_bundle.py).
fn python_verifies(key: &Path, zip: &Path) -> (bool, String) {
    let out = Command::new(workspace_root().join(".venv/bin/python"))
        .arg(workspace_root().join("scripts/verify_bundle.py"))
        .arg(key)
        .arg(zip)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The arguments that ask the CLI for its JSON report.
const JSON: &[&str] = &["--format", "json"];

/// `verify-bundle ZIP --key KEY`, then `more`, run offline (no token).
async fn verify_bundle(cli: &Cli, zip: &Path, key: &Path, more: &[&str]) -> Run {
    let mut args = vec![
        "verify-bundle",
        zip.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend(more);
    cli.token(None).run(&args).await
}

/// `verify FILE --attestation ATT --key KEY`, then `more`, run offline.
async fn verify_file(cli: &Cli, file: &Path, att: &Path, key: &Path, more: &[&str]) -> Run {
    let mut args = vec![
        "verify",
        file.to_str().unwrap(),
        "--attestation",
        att.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend(more);
    cli.token(None).run(&args).await
}

/// GET `path` from the edge with `client`, as acme's writer.
async fn get_as_writer(client: reqwest::Client, edge: &Edge, path: &str) -> reqwest::Response {
    client
        .get(format!("http://{}{path}", edge.addr))
        .bearer_auth(edge.writer("acme"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_bundles_and_attestations_verify_offline() {
    binary();
    // Bundles over 100 KB go through deliveries/ (303).
    let edge = Edge::start_with(|c| c.direct_max_bytes = 100_000).await;
    let cli = Cli::new(&edge, &edge.writer("acme"));
    let out = scratch("signed");

    // The key, fetched once without any token.
    let key = out.join("key.pem");
    cli.token(None)
        .run(&["key", "-o", key.to_str().unwrap()])
        .await
        .expect(0);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let stdout = cli.token(None).run(&["key"]).await;
    assert_eq!(stdout.expect(0).stdout, pem);

    let small_md = "# notes\n".repeat(400).into_bytes();
    let small_bin = noise(3_000, 1);
    let big = noise(300_000, 2);
    let md_id = put_one(&cli, "wf-signed", "small/notes.md", &small_md).await;
    put_one(&cli, "wf-signed", "small/data.bin", &small_bin).await;
    put_one(&cli, "wf-signed", "big/blob.bin", &big).await;

    // Small (answered directly) and large (303 to deliveries/): both verify
    // while downloading (--key) and again offline (verify-bundle).
    let small = out.join("small.zip");
    let large = out.join("large.zip");
    for (zip, prefix) in [(&small, Some("small/")), (&large, None)] {
        let mut args = vec!["bundle", "wf-signed", "-o", zip.to_str().unwrap()];
        if let Some(p) = prefix {
            args.extend(["-p", p]);
        }
        args.extend(["--key", key.to_str().unwrap(), "--format", "json"]);
        let doc = cli.run(&args).await.expect(0).json();
        assert_eq!(doc["signatureVerified"], true, "{doc}");
        let run = verify_bundle(&cli, zip, &key, JSON).await;
        let doc = run.expect(0).json();
        assert_eq!(doc["files"], if prefix.is_some() { 2 } else { 3 }, "{doc}");
        let (ok, said) = python_verifies(&key, zip);
        assert!(ok, "Python rejects a good bundle: {said}");
    }
    // The large one really went through deliveries/.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = get_as_writer(
        no_redirects,
        &edge,
        "/v1/workflows/wf-signed/artifacts/bundle",
    )
    .await;
    assert_eq!(answer.status(), 303);
    let entries = zip_entries(&large);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "MANIFEST.json",
            "MANIFEST.json.sig",
            "big/blob.bin",
            "small/data.bin",
            "small/notes.md"
        ]
    );

    // One flipped byte anywhere fails, naming what failed.
    let flip = |at: usize, what: &str| {
        let mut e = entries.clone();
        let i = e.iter().position(|(n, _)| n == what).unwrap();
        let data = &mut e[i].1;
        let at = at.min(data.len() - 1);
        data[at] ^= 0x01;
        e
    };
    let cases: Vec<(&str, Entries, &str)> = vec![
        (
            "a file's byte",
            flip(1_000, "small/notes.md"),
            "small/notes.md",
        ),
        (
            "the large file's last byte",
            flip(usize::MAX, "big/blob.bin"),
            "big/blob.bin",
        ),
        ("the manifest", flip(60, "MANIFEST.json"), "MANIFEST.json: "),
        (
            "the signature",
            {
                // Inside the DER `sig` (base64): another valid base64 character.
                let mut e = entries.clone();
                let mut envelope: Value = serde_json::from_slice(&e[1].1).unwrap();
                let sig = envelope["signatures"][0]["sig"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let mid = sig.len() / 2;
                let c = if &sig[mid..=mid] == "A" { "B" } else { "A" };
                envelope["signatures"][0]["sig"] =
                    Value::from(format!("{}{c}{}", &sig[..mid], &sig[mid + 1..]));
                e[1].1 = serde_json::to_vec(&envelope).unwrap();
                e
            },
            "MANIFEST.json.sig",
        ),
        (
            "an extra file",
            {
                let mut e = entries.clone();
                e.push(("extra.txt".into(), b"x".to_vec()));
                e
            },
            "extra.txt: not in the manifest",
        ),
        (
            "a missing file",
            {
                let mut e = entries.clone();
                e.retain(|(n, _)| n != "small/data.bin");
                e
            },
            "small/data.bin: missing",
        ),
        (
            "no signature",
            {
                let mut e = entries.clone();
                e.remove(1);
                e
            },
            "MANIFEST.json.sig",
        ),
    ];
    // The untampered entries, re-zipped the same way, still verify (so the
    // failures below are the tampering's).
    let same = out.join("same.zip");
    rezip(&same, &entries);
    verify_bundle(&cli, &same, &key, &[]).await.expect(0);
    for (what, tampered, named) in cases {
        let zip = out.join("tampered.zip");
        rezip(&zip, &tampered);
        let run = verify_bundle(&cli, &zip, &key, &[]).await;
        run.expect(1);
        assert!(run.stderr.contains(named), "{what}: {run:?}");
        eprintln!("{what}: {}", run.stderr.trim());
        let (ok, said) = python_verifies(&key, &zip);
        assert!(!ok, "Python accepts {what}: {said}");
    }
    // A raw byte flipped in the ZIP itself (inside a stored entry's data):
    // caught by the reader's CRC, named too.
    let mut raw = std::fs::read(&large).unwrap();
    let at = raw
        .windows(16)
        .position(|w| w == &big[5_000..5_016])
        .unwrap();
    raw[at] ^= 0x01;
    let zip = out.join("raw.zip");
    std::fs::write(&zip, &raw).unwrap();
    let run = verify_bundle(&cli, &zip, &key, &[]).await;
    run.expect(1);
    assert!(run.stderr.contains("big/blob.bin"), "{run:?}");
    // Another key: the signature check fails.
    let other = out.join("other.pem");
    let other_key = Command::new("openssl")
        .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout"])
        .output()
        .unwrap();
    let mut pubout = Command::new("openssl")
        .args(["ec", "-pubout", "-out", other.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(pubout.stdin.as_mut().unwrap(), &other_key.stdout).unwrap();
    assert!(pubout.wait().unwrap().success());
    let run = verify_bundle(&cli, &small, &other, &[]).await;
    run.expect(1);
    assert!(
        run.stderr.contains("MANIFEST.json.sig: signature"),
        "{run:?}"
    );

    // A downloaded file and its attestation.
    let file = out.join("notes.md");
    cli.run(&["get", &md_id, "-o", file.to_str().unwrap()])
        .await
        .expect(0);
    let attestation = get_as_writer(
        reqwest::Client::new(),
        &edge,
        &format!("/v1/artifacts/{md_id}/versions/1/attestation"),
    )
    .await;
    assert_eq!(attestation.status(), 200);
    let envelope = attestation.bytes().await.unwrap().to_vec();
    let att = out.join("notes.att.json");
    std::fs::write(&att, &envelope).unwrap();
    // As people see it (the README's example).
    let shown = verify_file(&cli, &file, &att, &key, &[]).await;
    assert!(shown.expect(0).stdout.contains("verified"), "{shown:?}");
    eprintln!("{}", shown.stdout);
    let shown = verify_bundle(&cli, &large, &key, &[]).await;
    assert!(
        shown
            .expect(0)
            .stdout
            .contains("signature ok, 3 files verified"),
        "{shown:?}"
    );
    eprintln!("{}", shown.stdout);
    let doc = verify_file(&cli, &file, &att, &key, JSON)
        .await
        .expect(0)
        .json();
    assert_eq!(doc["subject"], "wf-signed/small/notes.md");
    assert_eq!(doc["artifactId"], md_id.as_str());
    assert_eq!(doc["sha256"], sha256(&small_md));

    // One changed byte of the file, the payload, or the signature: exit 1.
    let changed_file = out.join("changed.md");
    let mut bytes = small_md.clone();
    bytes[10] ^= 0x01;
    std::fs::write(&changed_file, &bytes).unwrap();
    let run = verify_file(&cli, &changed_file, &att, &key, JSON).await;
    run.expect(1);
    assert!(run.stderr.contains("subject digest"), "{run:?}");
    let dsse: Value = serde_json::from_slice(&envelope).unwrap();
    for (what, field, named) in [
        ("payload", "payload", "signature"),
        ("signature", "sig", "signature"),
    ] {
        let mut d = dsse.clone();
        let slot = if field == "sig" {
            &mut d["signatures"][0]["sig"]
        } else {
            &mut d["payload"]
        };
        let text = slot.as_str().unwrap().to_owned();
        let mid = text.len() / 2;
        let c = if &text[mid..=mid] == "A" { "B" } else { "A" };
        *slot = Value::from(format!("{}{c}{}", &text[..mid], &text[mid + 1..]));
        let bad = out.join(format!("bad-{field}.json"));
        std::fs::write(&bad, serde_json::to_vec(&d).unwrap()).unwrap();
        let run = verify_file(&cli, &file, &bad, &key, JSON).await;
        run.expect(1);
        assert!(run.stderr.contains(named), "{what}: {run:?}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}
