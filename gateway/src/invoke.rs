//! How the gateway reaches a function: one small trait, with the Invoke API
//! of `cargo lambda watch` (make dev) here and the real handlers called
//! in-process in the tests crate (which alone depends on the functions).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future (the trait is used as `dyn Invoke`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an invocation produced no response payload. API Gateway answers
/// these with its own 500 (`{"message":"Internal Server Error"}`), or 503
/// when the function timed out.
#[derive(Debug)]
pub enum InvokeError {
    /// The function failed (an error result, a crash, a payload too large).
    Function(String),
    /// The function did not answer in time.
    Timeout,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function(why) => write!(f, "function error: {why}"),
            InvokeError::Timeout => f.write_str("function timed out"),
        }
    }
}

/// Invoke function `function` (its binary name) with an event (JSON bytes)
/// and return its response payload (JSON bytes), as Lambda's Invoke does.
pub trait Invoke: Send + Sync + 'static {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>, InvokeError>>;
}

/// Lambda's Invoke API (`POST /2015-03-31/functions/<name>/invocations`), as
/// `cargo lambda watch` serves it; it builds the function on first use and
/// rebuilds it when the code changes.
pub struct InvokeApi {
    base: String,
    client: reqwest::Client,
}

impl InvokeApi {
    /// `base` like `http://127.0.0.1:9001`. `timeout` bounds one invocation,
    /// including a build the watcher may run first.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| format!("invoke client: {e}"))?;
        Ok(InvokeApi {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

impl Invoke for InvokeApi {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>, InvokeError>> {
        Box::pin(async move {
            let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
            let response = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(event)
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        InvokeError::Timeout
                    } else {
                        InvokeError::Function(format!("invoke: {e}"))
                    }
                })?;
            let status = response.status();
            let function_error = response
                .headers()
                .get("x-amz-function-error")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let payload = response.bytes().await.map_err(|e| {
                if e.is_timeout() {
                    InvokeError::Timeout
                } else {
                    InvokeError::Function(format!("invoke: {e}"))
                }
            })?;
            if !status.is_success() || function_error.is_some() {
                return Err(InvokeError::Function(format!(
                    "{status} {}: {}",
                    function_error.unwrap_or_default(),
                    String::from_utf8_lossy(&payload[..payload.len().min(512)])
                )));
            }
            Ok(payload.to_vec())
        })
    }
}
