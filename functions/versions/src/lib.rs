//! `GET /v1/artifacts/{artifactId}` (metadata) and
//! `GET /v1/artifacts/{artifactId}/versions` (history, newest first); the
//! lifecycle routes of SPEC §12 (`DELETE`/`PATCH` of an artifact, restore,
//! delete one version, legal hold). See `artifacts::lifecycle`.

use artifacts::http::{self, Route};
use artifacts::{Error, Result, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

const ARTIFACT: &str = "/v1/artifacts/{artifactId}";
const VERSIONS: &str = "/v1/artifacts/{artifactId}/versions";
const RESTORE: &str = "/v1/artifacts/{artifactId}/restore";
const VERSION: &str = "/v1/artifacts/{artifactId}/versions/{version}";
const HOLD: &str = "/v1/artifacts/{artifactId}/hold";
/// The media type `PATCH` takes (RFC 7396).
const MERGE_PATCH: &str = "application/merge-patch+json";
/// What this function serves; any other method on these paths is 405.
pub const ROUTES: &[Route] = &[
    (Method::GET, ARTIFACT),
    (Method::GET, VERSIONS),
    (Method::DELETE, ARTIFACT),
    (Method::PATCH, ARTIFACT),
    (Method::POST, RESTORE),
    (Method::DELETE, VERSION),
    (Method::PUT, HOLD),
    (Method::DELETE, HOLD),
];

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, versions(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn versions(store: &Store, req: &Request) -> Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    let artifact_id = route.param("artifactId");

    let method = req.method().clone();
    match (method, route.path) {
        (Method::GET, ARTIFACT) => {
            let artifact = store.artifact(&principal, artifact_id).await?;
            return http::json(StatusCode::OK, &artifact);
        }
        (Method::DELETE, ARTIFACT) => {
            let purge = match http::query_param(req, "purge").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(Error::bad_request("purge", "must be true or false")),
            };
            store
                .delete_artifact(&principal, artifact_id, purge)
                .await?;
            return Ok(no_content());
        }
        (Method::PATCH, ARTIFACT) => {
            let content_type = http::header_str(req, "content-type")?.unwrap_or_default();
            let essence = content_type.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case(MERGE_PATCH) {
                return Err(Error::bad_request(
                    "Content-Type",
                    "must be application/merge-patch+json",
                ));
            }
            let if_match = http::header_str(req, "if-match")?
                .map(|v| {
                    v.trim()
                        .trim_matches('"')
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| {
                            Error::bad_request("If-Match", "must be a version number like \"3\"")
                        })
                })
                .transpose()?;
            let artifact = store
                .patch_artifact(&principal, artifact_id, http::body_bytes(req), if_match)
                .await?;
            return http::json(StatusCode::OK, &artifact);
        }
        (Method::POST, RESTORE) => {
            let artifact = store.restore(&principal, artifact_id).await?;
            return http::json(StatusCode::OK, &artifact);
        }
        (Method::DELETE, VERSION) => {
            store
                .delete_version(&principal, artifact_id, route.param("version"))
                .await?;
            return Ok(no_content());
        }
        (Method::PUT, HOLD) => {
            // Scope before body: a caller who may not hold learns nothing more.
            principal.require(artifacts::auth::Scope::Admin)?;
            let reason = artifacts::lifecycle::parse_hold_reason(http::body_bytes(req))?;
            let artifact = store
                .set_hold(&principal, artifact_id, Some(reason))
                .await?;
            return http::json(StatusCode::OK, &artifact);
        }
        (Method::DELETE, HOLD) => {
            let artifact = store.set_hold(&principal, artifact_id, None).await?;
            return http::json(StatusCode::OK, &artifact);
        }
        _ => {}
    }
    let limit = http::positive_param(req, "limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let before = http::query_param(req, "cursor")
        .map(|c| decode_cursor(&c))
        .transpose()?;
    let page = store
        .versions(&principal, artifact_id, limit as u32, before)
        .await?;
    http::json(
        StatusCode::OK,
        &json!({
            "versions": page.versions,
            "nextCursor": page.next_before.map(encode_cursor),
        }),
    )
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Cursors are opaque to callers; they hold the last version seen.
fn encode_cursor(before: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{before}"))
}

fn decode_cursor(cursor: &str) -> Result<u64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("v1:").and_then(|n| n.parse().ok()))
        .filter(|n| *n >= 1)
        .ok_or_else(|| Error::bad_request("cursor", "is not a cursor this API returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        for bad in [
            "",
            "!!",
            "djE6",
            "djE6eA",
            "djE6MA",
            &URL_SAFE_NO_PAD.encode("v2:5"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
