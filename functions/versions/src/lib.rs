//! `GET /v1/artifacts/{artifactId}` (metadata) and
//! `GET /v1/artifacts/{artifactId}/versions` (history, newest first);
//! SPEC §18: `GET /v1/artifacts/{artifactId}/versions/{version}/attestation`
//! (a version's DSSE envelope) and `GET /v1/signing-key` (public, no principal).

use artifacts::http::{self, Route};
use artifacts::{Error, Result, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;

const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

const ARTIFACT: &str = "/v1/artifacts/{artifactId}";
const VERSIONS: &str = "/v1/artifacts/{artifactId}/versions";
const ATTESTATION: &str = "/v1/artifacts/{artifactId}/versions/{version}/attestation";
const SIGNING_KEY: &str = "/v1/signing-key";
/// What this function serves; any other method on these paths is 405.
pub const ROUTES: &[Route] = &[
    (Method::GET, ARTIFACT),
    (Method::GET, VERSIONS),
    (Method::GET, ATTESTATION),
    (Method::GET, SIGNING_KEY),
];
/// How long verifiers may cache the public key.
const SIGNING_KEY_MAX_AGE: u32 = 3600;

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, versions(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn versions(store: &Store, req: &Request) -> Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    if route.path == SIGNING_KEY {
        return signing_key(store, req).await;
    }
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    let artifact_id = route.param("artifactId");

    if route.path == ATTESTATION {
        let version = route
            .param("version")
            .parse::<u64>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| Error::bad_request("version", "must be a version number (1, 2, …)"))?;
        let envelope = store.attestation(&principal, artifact_id, version).await?;
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "private, max-age=86400, immutable")
            .body(Body::Text(envelope))
            .map_err(|e| Error::upstream("http", e));
    }

    if route.path == ARTIFACT {
        let artifact = store.artifact(&principal, artifact_id).await?;
        return http::json(StatusCode::OK, &artifact);
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

/// `GET /v1/signing-key`: `{keyId, algorithm, publicKeyPem}`, or the bare
/// PEM with `?format=pem` (for `openssl`). Public and cacheable.
async fn signing_key(store: &Store, req: &Request) -> Result<Response<Body>> {
    let key = store.signing_key().await?;
    let (content_type, body) = match http::query_param(req, "format").as_deref() {
        None | Some("json") => (
            "application/json",
            serde_json::to_string(&key).map_err(|e| Error::upstream("json", e))?,
        ),
        Some("pem") => ("application/x-pem-file", key.public_key_pem),
        Some(_) => return Err(Error::bad_request("format", "must be json or pem")),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CACHE_CONTROL,
            format!("public, max-age={SIGNING_KEY_MAX_AGE}"),
        )
        .body(Body::Text(body))
        .map_err(|e| Error::upstream("http", e))
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
