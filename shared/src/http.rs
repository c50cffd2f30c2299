//! The HTTP edge: reading requests, writing responses, and the one mapping of
//! [`Error`] to a status code and an RFC 9457 `application/problem+json` body.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::auth::{self, Principal};
use crate::config::AuthMode;
use crate::error::{Error, Result};

pub const PROBLEM_JSON: &str = "application/problem+json";

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

/// A path parameter (API Gateway `{name}` / `{name+}`).
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
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

/// The request body as bytes.
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
