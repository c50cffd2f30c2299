//! The HTTP edge: reading requests, writing responses, and the one mapping of
//! [`Error`] to a status code and an RFC 9457 `application/problem+json` body.

use std::future::Future;
use std::pin::Pin;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, LambdaEvent, Request, RequestExt, Response, lambda_runtime};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::auth::{self, Principal};
use crate::config::AuthMode;
use crate::error::{Error, Result};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Run an HTTP function: the Lambda runtime loop, each invocation through
/// [`invoke`]. Used by every HTTP function's `main` instead of
/// `lambda_http::run`, whose response conversion decodes every `text/*`
/// (and JSON, XML, YAML) body as text — lossily, or transcoding it from its
/// declared charset — so a stored Latin-1 CSV or any non-UTF-8 text would
/// not download byte for byte.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, lambda_http::Error>>,
{
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<LambdaRequest>| {
            // Boxed: the runtime's nested future types otherwise exceed the
            // compiler's layout depth limit in `main`.
            Box::pin(invoke(handler, event)) as Pin<Box<dyn Future<Output = _> + '_>>
        },
    ))
    .await
}

/// One invocation: the event (`lambda_http`'s own request conversion, which
/// honours `isBase64Encoded`) → `handler` → the payload 2.0 response of
/// [`v2_response`]. The tests' in-process invoker calls exactly this.
pub async fn invoke<F, Fut>(
    handler: F,
    event: LambdaEvent<LambdaRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_http::Error>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, lambda_http::Error>>,
{
    let LambdaEvent { payload, context } = event;
    let request = Request::from(payload).with_lambda_context(context);
    Ok(v2_response(handler(request).await?))
}

/// A response as HTTP API payload 2.0: bytes stay bytes (`Body::Binary` is
/// sent base64 with `isBase64Encoded`), text stays text, `Set-Cookie`
/// headers move to `cookies`, other repeated headers are comma-joined by the
/// serializer.
pub fn v2_response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    let cookies = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    headers.remove(header::SET_COOKIE);
    let (body, is_base64_encoded) = match body {
        Body::Text(text) => (Some(Body::Text(text)), false),
        Body::Binary(bytes) => (Some(Body::Binary(bytes)), true),
        _ => (None, false),
    };
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = headers;
    out.body = body;
    out.is_base64_encoded = is_base64_encoded;
    out.cookies = cookies;
    out
}

/// The caller, from the authorizer's claims (deployed) or a dev token.
pub fn principal(mode: &AuthMode, req: &Request) -> Result<Principal> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    auth::authenticate(mode, claims, authorization, now)
}

/// API Gateway's request id (what a caller can quote), else the Lambda one.
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.request_id.is_some() => {
            ctx.request_id.clone().unwrap_or_default()
        }
        _ => req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default(),
    }
}

/// Turn an operation's outcome into the response; errors become problems.
pub fn finish(req: &Request, result: Result<Response<Body>>) -> Response<Body> {
    match result {
        Ok(response) => response,
        Err(err) => problem(&err, &request_id(req)),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// The single mapping from [`Error`] to status and problem body. Internal
/// detail is logged with the request id and never sent; a missing resource
/// and another org's resource produce byte-identical bodies.
pub fn problem(err: &Error, request_id: &str) -> Response<Body> {
    let (status, slug, detail, field) = match err {
        Error::NotFound(what) => (
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
            None,
        ),
        Error::BadRequest { field, reason } => (
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("invalid {field}: {reason}"),
            Some(*field),
        ),
        Error::Conflict(msg) => (StatusCode::CONFLICT, "conflict", msg.clone(), None),
        Error::PathClash { detail, .. } => (
            StatusCode::CONFLICT,
            "path-clash",
            detail.clone(),
            Some("path"),
        ),
        Error::PreconditionFailed(msg) => (
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            msg.clone(),
            None,
        ),
        Error::TooLarge { limit, .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the body exceeds {limit} bytes; use a presigned upload"),
            Some("body"),
        ),
        Error::RangeNotSatisfiable { .. } => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range-not-satisfiable",
            "the Range header cannot be satisfied".into(),
            Some("Range"),
        ),
        Error::MethodNotAllowed { allow } => (
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("this path answers {allow}"),
            None,
        ),
        Error::Unauthorized(_) => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid credentials".into(),
            None,
        ),
        Error::Forbidden(scope) => (
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this operation needs the {scope} scope"),
            None,
        ),
        Error::Gone(what) => (
            StatusCode::GONE,
            "gone",
            format!("{what} is no longer available"),
            None,
        ),
        Error::Expired => (
            StatusCode::GONE,
            "expired",
            "the artifact has expired".into(),
            None,
        ),
        Error::Held { reason } => (
            StatusCode::CONFLICT,
            "held",
            format!("the artifact is under legal hold ({reason}); release the hold first"),
            Some("hold"),
        ),
        Error::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "too many requests for this resource; retry after the Retry-After delay".into(),
            None,
        ),
        Error::Integrity(_) | Error::Upstream { .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed; quote the request id when reporting it".into(),
            None,
        ),
    };
    let internal = status == StatusCode::INTERNAL_SERVER_ERROR;
    if internal {
        tracing::error!(request_id, error = %err, "request failed");
    } else {
        tracing::info!(request_id, status = status.as_u16(), error = %err, "request refused");
    }
    let body = Problem {
        kind: format!("urn:artifacts:problem:{slug}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        field,
        request_id: internal.then_some(request_id),
    };
    let mut response = Response::new(Body::Text(
        serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}")),
    ));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match err {
        Error::Unauthorized(_) => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::RangeNotSatisfiable { size } => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
        }
        Error::RateLimited { retry_after } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        Error::MethodNotAllowed { allow } => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                headers.insert(header::ALLOW, v);
            }
        }
        _ => {}
    }
    response
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>> {
    let body = serde_json::to_string(value).map_err(|e| Error::upstream("json", e))?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(body))
        .map_err(|e| Error::upstream("http", e))
}

/// A path parameter (API Gateway `{name}` / `{name+}`) exactly as the
/// runtime handed it over. Handlers read [`Routed::param`] instead, which is
/// decoded exactly once whatever the runtime did.
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
}

/// One route a function serves: a method and the path as the template
/// spells it (`/v1/artifacts/{artifactId}`, greedy `{path+}` last).
pub type Route = (Method, &'static str);

/// The route a request took, with its path parameters decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub method: Method,
    /// The route's path as spelled in the function's table.
    pub path: &'static str,
    params: Params,
}

impl Routed {
    /// A path parameter, decoded exactly once ("" when the route has none).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

/// Which of a function's `routes` this request is, by method and path.
///
/// - A path the function does not serve is 404; a path it serves with
///   another method is 405 with `Allow`. API Gateway routes by method, but a
///   local router or a misrouted integration may not: a function never
///   answers one method with another method's behaviour.
/// - The path is matched on `rawPath`, after any stage or base-path prefix,
///   segment by segment; the most specific route wins (a literal over
///   `{param}`, a full match over `{param+}`), as in API Gateway.
///
/// **Decoding (SPEC §3): the stored path is the decoded path, decoded
/// exactly once — by the gateway.** API Gateway HTTP APIs percent-decode the
/// request path once before routing and hand it on decoded: `rawPath`,
/// `requestContext.http.path` and `pathParameters` alike (`my%20file.md`
/// arrives as `my file.md`, `100%2525` as `100%25`; a decoded `?` or `#`
/// ends the path, so those cannot travel in one). The local gateway
/// (`gateway/`) does exactly the same. So a function takes `pathParameters`
/// as they are, or — when the runtime passes none for a parameter — the
/// text of `rawPath` it matched, and never decodes again: a second decoding
/// would turn a literal `%25` into `%`. A runtime that passes parameters
/// undecoded (plain `cargo lambda watch` on its own HTTP front) cannot be
/// told apart from a decoded path that contains a literal `%xx`, so it is
/// not a supported way to reach the functions; `make dev` puts the local
/// gateway in front of them instead.
pub fn route(req: &Request, routes: &[Route]) -> Result<Routed> {
    let raw_path = match req.raw_http_path() {
        "" => req.uri().path(),
        raw => raw,
    };
    let segments: Vec<&str> = raw_path.split('/').skip(1).collect();
    // (rank, route path, params) of the most specific path match.
    let mut best: Option<(Vec<u8>, &'static str, Params)> = None;
    for (_, path) in routes {
        if best.as_ref().is_some_and(|(_, p, _)| p == path) {
            continue;
        }
        // Any stage or base-path prefix comes before the route's first
        // segment (`v1`): match from its first occurrence.
        let first = path.split('/').nth(1).unwrap_or_default();
        let start = segments.iter().position(|s| *s == first).unwrap_or(0);
        if let Some((rank, params)) = match_route(path, &segments[start..])
            && best.as_ref().is_none_or(|(r, _, _)| rank > *r)
        {
            best = Some((rank, path, params));
        }
    }
    let (_, path, raw_params) = best.ok_or(Error::NotFound("route"))?;
    let allowed: Vec<&Method> = routes
        .iter()
        .filter(|(_, p)| *p == path)
        .map(|(m, _)| m)
        .collect();
    let Some(method) = allowed.iter().find(|m| **m == req.method()) else {
        return Err(Error::MethodNotAllowed {
            allow: allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let given = req.path_parameters_ref();
    let params = raw_params
        .into_iter()
        .map(|(name, matched)| {
            let value = given
                .and_then(|p| p.first(name))
                .map(str::to_owned)
                .unwrap_or(matched);
            (name, value)
        })
        .collect();
    Ok(Routed {
        method: (*method).clone(),
        path,
        params,
    })
}

/// Path parameters: name and text.
type Params = Vec<(&'static str, String)>;

/// Match a route's path against request path segments: the parameters'
/// text and a specificity rank (2 a literal, 1 a parameter, 0 the greedy tail).
fn match_route(path: &'static str, segments: &[&str]) -> Option<(Vec<u8>, Params)> {
    let parts: Vec<&'static str> = path.split('/').skip(1).collect();
    let mut rank = Vec::with_capacity(parts.len());
    let mut params = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if name.ends_with('+') => {
                let rest = segments.get(i..)?;
                if rest.is_empty() {
                    return None;
                }
                params.push((name.trim_end_matches('+'), rest.join("/")));
                rank.push(0);
                return Some((rank, params));
            }
            Some(name) => {
                params.push((name, (*segments.get(i)?).to_owned()));
                rank.push(1);
            }
            None => {
                if *segments.get(i)? != *part {
                    return None;
                }
                rank.push(2);
            }
        }
    }
    (segments.len() == parts.len()).then_some((rank, params))
}

/// The content type to store: `x-artifact-content-type` when present (the
/// body then travels as `application/octet-stream`, which every gateway
/// passes byte-exact), else `Content-Type` (SPEC §14).
pub fn declared_content_type(req: &Request) -> Result<Option<String>> {
    Ok(header_str(req, "x-artifact-content-type")?
        .or(header_str(req, "content-type")?)
        .map(str::to_owned))
}

/// A query parameter; the first when repeated.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// A header as text; a header that is not visible ASCII is bad input.
pub fn header_str<'r>(req: &'r Request, name: &'static str) -> Result<Option<&'r str>> {
    req.headers()
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::bad_request(name, "is not valid text"))
        })
        .transpose()
}

/// The request body as bytes. `lambda_http` has already honoured the
/// event's `isBase64Encoded` (a base64 body arrives as `Body::Binary`).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// A strictly positive integer query parameter such as `version` or `limit`.
pub fn positive_param(req: &Request, name: &'static str, max: u64) -> Result<Option<u64>> {
    query_param(req, name)
        .map(|v| match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Error::bad_request(
                name,
                format!("must be a whole number from 1 to {max}"),
            )),
        })
        .transpose()
}

/// A strong entity tag from a content hash.
pub fn etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

/// Whether an `If-None-Match`/`If-Match` value matches `etag` (weak
/// comparison for If-None-Match; `*` matches any existing representation).
pub fn etag_matches(header_value: &str, etag: &str) -> bool {
    header_value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// Parse a `Range` header for a representation of `size` bytes into an
/// inclusive byte range. `Ok(None)` means "serve it whole": multiple ranges
/// (which we do not serve) or an empty representation. A malformed or
/// unsatisfiable single range is 416.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>> {
    let unsatisfiable = Error::RangeNotSatisfiable { size };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Err(unsatisfiable);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Err(unsatisfiable);
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n = number(suffix).ok_or(unsatisfiable)?;
            if n == 0 || size == 0 {
                return Err(Error::RangeNotSatisfiable { size });
            }
            (size.saturating_sub(n), size - 1)
        }
        (start, "") => (number(start).ok_or(unsatisfiable)?, size.saturating_sub(1)),
        (start, end) => {
            let (start, end) = (
                number(start).ok_or(Error::RangeNotSatisfiable { size })?,
                number(end).ok_or(Error::RangeNotSatisfiable { size })?,
            );
            if end < start {
                return Err(Error::RangeNotSatisfiable { size });
            }
            (start, end.min(size.saturating_sub(1)))
        }
    };
    if start >= size {
        return Err(Error::RangeNotSatisfiable { size });
    }
    Ok(Some((start, end)))
}

/// Characters kept as-is in an RFC 5987 `filename*` value (attr-char).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition: attachment` with an ASCII fallback `filename` and
/// the exact name in RFC 6266 `filename*`.
pub fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(file_name, ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let ok = |v: &str, size: u64| parse_range(v, size).unwrap();
        assert_eq!(ok("bytes=0-0", 10), Some((0, 0)));
        assert_eq!(ok("bytes=2-5", 10), Some((2, 5)));
        assert_eq!(ok("bytes=2-100", 10), Some((2, 9)));
        assert_eq!(ok("bytes=7-", 10), Some((7, 9)));
        assert_eq!(ok("bytes=-3", 10), Some((7, 9)));
        assert_eq!(ok("bytes=-30", 10), Some((0, 9)));
        assert_eq!(ok("bytes=0-1, 4-5", 10), None);
        for bad in [
            "bytes=10-",
            "bytes=10-20",
            "bytes=5-2",
            "bytes=-0",
            "bytes=x-1",
            "bytes=1-y",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=1",
            "bytes=+1-2",
        ] {
            assert!(
                matches!(
                    parse_range(bad, 10),
                    Err(Error::RangeNotSatisfiable { size: 10 })
                ),
                "{bad}"
            );
        }
        assert!(parse_range("bytes=0-0", 0).is_err());
        assert!(parse_range("bytes=-1", 0).is_err());
    }

    #[test]
    fn etags() {
        let e = etag("abc");
        assert_eq!(e, "\"abc\"");
        assert!(etag_matches("\"abc\"", &e));
        assert!(etag_matches("W/\"abc\"", &e));
        assert!(etag_matches("\"x\", \"abc\"", &e));
        assert!(etag_matches("*", &e));
        assert!(!etag_matches("\"abd\"", &e));
        assert!(!etag_matches("abc", &e));
    }

    #[test]
    fn content_disposition_is_safe_and_exact() {
        assert_eq!(
            content_disposition("main.tf"),
            "attachment; filename=\"main.tf\"; filename*=UTF-8''main.tf"
        );
        let cd = content_disposition("résumé \"v2\".pdf");
        assert_eq!(
            cd,
            "attachment; filename=\"r_sum_ _v2_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.pdf"
        );
        assert!(HeaderValue::from_str(&content_disposition("a;b\u{7f}.txt")).is_ok());
    }

    fn request(method: &str, raw_path: &str, params: serde_json::Value) -> Request {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": "",
            "headers": {"host": "api.test"},
            "pathParameters": params,
            "requestContext": {
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "accountId": "1", "apiId": "a", "domainName": "api.test",
                "time": "t", "timeEpoch": 0
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    const ROUTES: &[Route] = &[
        (Method::PUT, "/v1/workflows/{workflowId}/artifacts/{path+}"),
        (Method::GET, "/v1/workflows/{workflowId}/artifacts/bundle"),
        (Method::GET, "/v1/artifacts/{artifactId}"),
        (Method::DELETE, "/v1/artifacts/{artifactId}"),
    ];

    #[test]
    fn routes_by_method_and_path() {
        let r = route(
            &request(
                "PUT",
                "/v1/workflows/wf/artifacts/a b/100%25.md",
                serde_json::json!({"workflowId": "wf", "path": "a b/100%25.md"}),
            ),
            ROUTES,
        )
        .unwrap();
        assert_eq!(r.path, ROUTES[0].1);
        // Decoded by the gateway; never decoded again.
        assert_eq!(r.param("path"), "a b/100%25.md");
        assert_eq!(r.param("workflowId"), "wf");
        assert_eq!(r.param("nothing"), "");
        // Without pathParameters: the text of rawPath the route matched.
        let r = route(
            &request(
                "PUT",
                "/v1/workflows/wf/artifacts/x/y",
                serde_json::json!(null),
            ),
            ROUTES,
        )
        .unwrap();
        assert_eq!(r.param("path"), "x/y");
        // A literal beats the greedy parameter; a stage prefix is skipped.
        let r = route(
            &request(
                "GET",
                "/prod/v1/workflows/wf/artifacts/bundle",
                serde_json::json!(null),
            ),
            ROUTES,
        )
        .unwrap();
        assert_eq!(r.path, ROUTES[1].1);
        assert_eq!(r.param("workflowId"), "wf");
        // Another method on a served path: 405 naming what it answers.
        match route(
            &request(
                "GET",
                "/v1/workflows/wf/artifacts/a.md",
                serde_json::json!(null),
            ),
            ROUTES,
        ) {
            Err(Error::MethodNotAllowed { allow }) => assert_eq!(allow, "PUT"),
            other => panic!("{other:?}"),
        }
        match route(
            &request("POST", "/v1/artifacts/x", serde_json::json!(null)),
            ROUTES,
        ) {
            Err(Error::MethodNotAllowed { allow }) => assert_eq!(allow, "GET, DELETE"),
            other => panic!("{other:?}"),
        }
        // A path it does not serve: 404.
        for path in ["/v1/artifacts", "/v1/artifacts/x/y", "/v2/artifacts/x", "/"] {
            assert!(
                matches!(
                    route(&request("GET", path, serde_json::json!(null)), ROUTES),
                    Err(Error::NotFound(_))
                ),
                "{path}"
            );
        }
        let r = problem(
            &Error::MethodNotAllowed {
                allow: "GET, DELETE".into(),
            },
            "rid",
        );
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[header::ALLOW], "GET, DELETE");
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn problems_hide_internals_and_carry_the_field() {
        let r = problem(&Error::upstream("s3", "secret internal detail"), "req-1");
        assert_eq!(r.status(), 500);
        let Body::Text(body) = r.body() else { panic!() };
        assert!(!body.contains("secret"), "{body}");
        assert!(body.contains("req-1"));

        let r = problem(&Error::bad_request("path", "must not be empty"), "req-2");
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let Body::Text(body) = r.body() else { panic!() };
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["field"], "path");
        assert_eq!(v["status"], 400);
        assert!(v.get("requestId").is_none());

        let a = problem(&Error::NotFound("artifact"), "req-a");
        let b = problem(&Error::NotFound("artifact"), "req-b");
        assert_eq!(format!("{:?}", a.body()), format!("{:?}", b.body()));
    }
}
