//! The HTTP client of the public API: bearer auth, bounded retries with
//! exponential back-off and full jitter on 429, 5xx and connection errors
//! (never on other 4xx), and problem+json answers turned into errors.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::error::{CliError, Kind, Result};

/// Characters left as they are in a path segment or query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One URL path segment or query value, percent-encoded.
pub fn enc(component: &str) -> String {
    utf8_percent_encode(component, COMPONENT).to_string()
}

/// An artifact path in a URL: each segment encoded, `/` kept.
pub fn enc_path(path: &str) -> String {
    path.split('/').map(enc).collect::<Vec<_>>().join("/")
}

/// A query string from pairs (values encoded).
pub fn query(pairs: &[(&str, String)]) -> String {
    let joined: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    if joined.is_empty() {
        String::new()
    } else {
        format!("?{}", joined.join("&"))
    }
}

/// Retry policy: attempts after the first, and the first delay.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Retry {
    /// The pause before retry `attempt` (0-based): full jitter over
    /// `[0, min(cap, base·2^attempt)]`, at least a millisecond; a server's
    /// `Retry-After` (capped) wins when given.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.cap);
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(self.cap);
        let mut random = [0u8; 8];
        // Without randomness the back-off is still bounded, just not jittered.
        let fraction = match getrandom::fill(&mut random) {
            Ok(()) => u64::from_le_bytes(random) as f64 / u64::MAX as f64,
            Err(_) => 1.0,
        };
        ceiling.mul_f64(fraction).max(Duration::from_millis(1))
    }
}

/// Whether a status is worth retrying.
pub fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Whether a transport error is worth retrying (the connection, not the request, failed).
pub fn retryable_error(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
}

fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The API: its base URL, the token, one HTTP client.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    pub http: reqwest::Client,
    pub retry: Retry,
}

impl Api {
    pub fn new(base: &str, token: String, retry: Retry) -> Result<Self> {
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| CliError::usage(format!("--api {base:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CliError::usage(format!("--api {base:?} must be http(s)")));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("artifacts-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            // Per read, not per transfer: a large download may take long.
            .read_timeout(Duration::from_secs(120))
            // 303s are followed by hand: the token must never travel to S3.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CliError::failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
            retry,
        })
    }

    /// `base` + `path_and_query` (already encoded).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// A request to the API, with the token.
    pub fn request(&self, method: Method, path_and_query: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path_and_query))
            .bearer_auth(&self.token)
    }

    /// Send what `build` makes, again after a back-off while the answer is
    /// 429/5xx or the connection fails, at most `retry.retries` times.
    /// Any other answer (2xx, 3xx, 4xx) is returned as it is.
    pub async fn send(&self, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        self.send_with(|| Ok(build())).await
    }

    /// [`Api::send`] with a builder that may fail (e.g. reopening a file).
    pub async fn send_with(
        &self,
        mut build: impl FnMut() -> Result<RequestBuilder>,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            match build()?.send().await {
                Ok(response) if retryable_status(response.status()) => {
                    if attempt >= self.retry.retries {
                        return Err(problem(response).await);
                    }
                    let pause = self.retry.delay(attempt, retry_after(&response));
                    tokio::time::sleep(pause).await;
                }
                Ok(response) => return Ok(response),
                Err(e) if retryable_error(&e) && attempt < self.retry.retries => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Err(e) => return Err(transport(&e)),
            }
            attempt += 1;
        }
    }

    /// [`Api::send`], then a success status is required; the body as JSON.
    pub async fn json(&self, build: impl Fn() -> RequestBuilder) -> Result<Value> {
        let response = ok(self.send(build).await?).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport(&e).context("reading the answer"))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| CliError::failed(format!("the API answered something not JSON: {e}")))
    }

    /// GET every page of a paginated route (`nextCursor`), collecting `key`.
    pub async fn pages(
        &self,
        path: &str,
        pairs: &[(&str, String)],
        key: &str,
    ) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = pairs.to_vec();
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.clone()));
            }
            let url = format!("{path}{}", query(&pairs));
            let page = self.json(|| self.request(Method::GET, &url)).await?;
            if let Some(list) = page.get(key).and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
    }
}

/// A transport failure (no HTTP answer).
pub fn transport(e: &reqwest::Error) -> CliError {
    // reqwest's Display omits the cause ("error sending request"): add it.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    CliError {
        retryable: retryable_error(e),
        ..CliError::failed(message)
    }
}

/// The response when its status is a success (2xx), else its problem.
pub async fn ok(response: Response) -> Result<Response> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(problem(response).await)
    }
}

/// An error answer as an error: the problem's title and detail (RFC 9457),
/// or API Gateway's `{"message"}`, and the exit class of its status.
pub async fn problem(response: Response) -> CliError {
    let status = response.status();
    let body: Value = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    problem_from(status, &body)
}

pub fn problem_from(status: StatusCode, body: &Value) -> CliError {
    let title = body
        .get("title")
        .and_then(Value::as_str)
        .or_else(|| status.canonical_reason())
        .unwrap_or("Error");
    let detail = body
        .get("detail")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str);
    let mut message = match detail {
        Some(d) if d != title => format!("{title}: {d} ({})", status.as_u16()),
        _ => format!("{title} ({})", status.as_u16()),
    };
    if let Some(id) = body.get("requestId").and_then(Value::as_str) {
        message.push_str(&format!(" [request id {id}]"));
    }
    let kind = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Kind::Auth,
        StatusCode::NOT_FOUND => Kind::NotFound,
        _ => Kind::Failed,
    };
    CliError {
        kind,
        message,
        retryable: retryable_status(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(enc_path("docs/my file.md"), "docs/my%20file.md");
        assert_eq!(enc_path("日本/a+b%.md"), "%E6%97%A5%E6%9C%AC/a%2Bb%25.md");
        assert_eq!(query(&[("prefix", "a b/".into())]), "?prefix=a%20b%2F");
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn back_off_is_bounded_and_jittered() {
        let retry = Retry {
            retries: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        for attempt in 0..40 {
            let d = retry.delay(attempt, None);
            assert!(d <= Duration::from_secs(2), "{attempt}: {d:?}");
            assert!(d <= Duration::from_millis(100) * 2u32.pow(attempt.min(10)));
        }
        let delays: std::collections::BTreeSet<_> = (0..20).map(|_| retry.delay(3, None)).collect();
        assert!(delays.len() > 1, "no jitter");
        assert_eq!(
            retry.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn statuses_retried_and_not() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 410, 412, 413, 416] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn problems_read_as_people_read_them() {
        let e = problem_from(
            StatusCode::NOT_FOUND,
            &json!({"title": "Not Found", "detail": "artifact not found", "status": 404}),
        );
        assert_eq!(e.kind, Kind::NotFound);
        assert_eq!(e.message, "Not Found: artifact not found (404)");
        let e = problem_from(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "Unauthorized"}),
        );
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::Auth, "Unauthorized (401)")
        );
        let e = problem_from(StatusCode::FORBIDDEN, &Value::Null);
        assert_eq!(e.kind, Kind::Auth);
        let e = problem_from(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"title": "Internal Server Error", "detail": "x", "requestId": "r1"}),
        );
        assert!(e.retryable && e.message.ends_with("[request id r1]"), "{e}");
        assert_eq!(
            problem_from(StatusCode::CONFLICT, &Value::Null).kind,
            Kind::Failed
        );
    }
}
