//! The edge, tested at the edge: the local gateway (`gateway/`) on a real
//! loopback listener, in front of the REAL handlers called in-process against
//! the emulator, driven by ordinary HTTP clients (reqwest, curl).
//!
//! [`InProcess`] is the gateway's second [`Invoke`]: the event JSON goes
//! through `artifacts::http::invoke`, the very path each function's `main`
//! runs (`lambda_http`'s request conversion → handler → payload 2.0
//! response), serialized as the Lambda runtime serializes it, so what the
//! gateway maps back is what a deployed function returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artifacts::auth::mint_hs256;
use gateway::event::Stage;
use gateway::{BoxFuture, Gateway, Invoke, InvokeError, Routes};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::{BoxError, TestEnv};

/// The real handlers, invoked in-process as the Lambda runtime invokes them.
pub struct InProcess {
    pub env: Arc<TestEnv>,
    /// The console function, configured once as its `main` does.
    console: artifacts_console::Console,
    /// Every event handed over, with the function it went to.
    events: Mutex<Vec<(String, Value)>>,
}

impl InProcess {
    pub fn new(env: Arc<TestEnv>) -> Self {
        Self::with_console(env, &[])
    }

    /// As [`InProcess::new`], the console's environment adding `console_env`
    /// (e.g. `ARTIFACTS_OIDC_*`).
    pub fn with_console(env: Arc<TestEnv>, console_env: &[(&str, &str)]) -> Self {
        InProcess {
            env,
            console: console(console_env),
            events: Mutex::new(Vec::new()),
        }
    }

    /// The last event `function` received.
    pub fn last_event(&self, function: &str) -> Option<Value> {
        let events = self.events.lock().ok()?;
        events
            .iter()
            .rev()
            .find(|(f, _)| f == function)
            .map(|(_, e)| e.clone())
    }

    /// Invoke `function` with an event; its response payload (JSON).
    pub async fn call(&self, function: &str, event: &[u8]) -> Result<Vec<u8>, BoxError> {
        if let (Ok(mut events), Ok(value)) = (self.events.lock(), serde_json::from_slice(event)) {
            events.push((function.to_owned(), value));
        }
        let request: LambdaRequest = serde_json::from_slice(event)?;
        let store = &self.env.store;
        match function {
            "artifacts-upload" => respond(request, |r| artifacts_upload::handler(store, r)).await,
            "artifacts-versions" => {
                respond(request, |r| artifacts_versions::handler(store, r)).await
            }
            "artifacts-download" => {
                respond(request, |r| artifacts_download::handler(store, r)).await
            }
            "artifacts-list" => respond(request, |r| artifacts_list::handler(store, r)).await,
            "artifacts-bundle" => respond(request, |r| artifacts_bundle::handler(store, r)).await,
            "artifacts-presign" => respond(request, |r| artifacts_presign::handler(store, r)).await,
            "artifacts-console" => {
                respond(request, |r| artifacts_console::handler(&self.console, r)).await
            }
            other => Err(format!("no function {other}").into()),
        }
    }
}

/// The console as its `main` builds it, its object store the emulator.
fn console(console_env: &[(&str, &str)]) -> artifacts_console::Console {
    let endpoint = crate::endpoint();
    artifacts_console::Console::from_lookup(|name| {
        if name == "AWS_ENDPOINT_URL" {
            return Some(endpoint.to_owned());
        }
        console_env
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_or_else(|e| panic!("the console's configuration: {e}"))
}

/// One invocation exactly as the functions' `main` runs it
/// (`artifacts::http::run` → `invoke`), serialized as the runtime sends it.
async fn respond<F, Fut>(request: LambdaRequest, handler: F) -> Result<Vec<u8>, BoxError>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, lambda_http::Error>>,
{
    let response =
        artifacts::http::invoke(handler, LambdaEvent::new(request, Context::default())).await?;
    Ok(serde_json::to_vec(&response)?)
}

impl Invoke for InProcess {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>, InvokeError>> {
        Box::pin(async move {
            self.call(function, &event)
                .await
                .map_err(|e| InvokeError::Function(e.to_string()))
        })
    }
}

/// The dev secret the edge's authorizer verifies with (tests only).
pub const SECRET: &str = "edge-test-secret-edge-test-secret-0123";

/// A gateway on 127.0.0.1:<free port> in front of the real handlers.
pub struct Edge {
    pub env: Arc<TestEnv>,
    pub functions: Arc<InProcess>,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Edge {
    /// A fresh environment (functions in their deployed auth mode) behind a
    /// gateway with the routes of `infra/template.yaml`.
    pub async fn start() -> Self {
        Self::serve(Arc::new(TestEnv::new().await), "127.0.0.1:0").await
    }

    /// As [`Edge::start`], with the configuration adjusted (e.g. a small
    /// `ARTIFACTS_DIRECT_MAX_BYTES`, so that bundles go through `deliveries/`).
    pub async fn start_with(adjust: impl FnOnce(&mut artifacts::Config)) -> Self {
        Self::serve(Arc::new(TestEnv::with_config(adjust).await), "127.0.0.1:0").await
    }

    /// As [`Edge::start`], with `ARTIFACTS_PUBLIC_BASE_URL` naming this very
    /// listener, so the links it hands out open here (browser tests). The
    /// port is picked free just before the gateway binds it.
    pub async fn start_public() -> Self {
        Self::start_public_with_console(&[]).await
    }

    /// As [`Edge::start_public`], the console's environment adding
    /// `console_env` (its OIDC sign-in).
    pub async fn start_public_with_console(console_env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let env = TestEnv::with_config(|c| c.public_base_url = Some(base)).await;
        Self::serve_with(Arc::new(env), &format!("127.0.0.1:{port}"), console_env).await
    }

    async fn serve(env: Arc<TestEnv>, addr: &str) -> Self {
        Self::serve_with(env, addr, &[]).await
    }

    async fn serve_with(env: Arc<TestEnv>, addr: &str, console_env: &[(&str, &str)]) -> Self {
        let yaml = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
        )
        .expect("read infra/template.yaml");
        let functions = Arc::new(InProcess::with_console(Arc::clone(&env), console_env));
        let gateway = Arc::new(Gateway {
            routes: Routes::from_template(&yaml).expect("template routes"),
            invoker: functions.clone(),
            jwt_secret: Some(SECRET.as_bytes().to_vec()),
            stage: Stage::default(),
        });
        let (addr, task) = gateway
            .serve(addr.parse().expect("loopback"))
            .await
            .expect("bind the gateway");
        Edge {
            env,
            functions,
            addr,
            task,
        }
    }

    /// `http://127.0.0.1:<port>` + `path_and_query` (sent as given).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// A dev token for `org` with these claims added (`scope` may be a
    /// string or an array).
    pub fn token(&self, org: &str, scope: Value) -> String {
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        mint_hs256(
            SECRET.as_bytes(),
            &json!({"sub": format!("user-of-{org}"), "org_id": org, "scope": scope, "exp": exp}),
        )
    }

    /// A read+write token for `org`.
    pub fn writer(&self, org: &str) -> String {
        self.token(org, json!("artifacts:read artifacts:write"))
    }
}

/// An ordinary HTTP client, every request bounded in time; redirects are
/// not followed (a 303 is an answer to check).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// A payload 2.0 event as a runtime that routes on the path alone would
/// hand it over (any method, with the path's parameters), authorized as
/// `org` with read+write: for asking a function directly what it does with
/// a method.
pub fn direct_event(method: &str, path: &str, params: Value, org: &str) -> Vec<u8> {
    json!({
        "pathParameters": params,
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "127.0.0.1:9000", "content-type": "application/json"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": "127.0.0.1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "edge"},
            "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": "$default",
            "stage": "$default", "time": "02/Dec/2026:00:00:00 +0000", "timeEpoch": 0,
            "authorizer": {"jwt": {"claims": {
                "sub": format!("user-of-{org}"), "org_id": org,
                "scope": "artifacts:read artifacts:write"}, "scopes": null}}
        },
        "body": "{}",
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes()
}
