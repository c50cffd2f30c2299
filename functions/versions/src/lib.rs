//! `GET /v1/artifacts/{artifactId}` (metadata),
//! `GET /v1/artifacts/{artifactId}/versions` (history, newest first),
//! the audit trail (SPEC §13, scope `artifacts:admin`):
//! `GET /v1/artifacts/{artifactId}/audit` and `GET /v1/audit`;
//! `GET /v1/openapi.json` (no principal): the API's description (SPEC §16).
//! The lifecycle routes of SPEC §12 (`DELETE`/`PATCH` of an artifact,
//! restore, delete one version, legal hold): see `artifacts::lifecycle`.
//! SPEC §18: `GET /v1/artifacts/{artifactId}/versions/{version}/attestation`
//! (a version's DSSE envelope) and `GET /v1/signing-key` (public, no principal).

use artifacts::audit::{Action, AuditQuery, Origin, Subject};
use artifacts::auth::Principal;
use artifacts::http::{self, Route};
use artifacts::{Error, Result, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

const ARTIFACT: &str = "/v1/artifacts/{artifactId}";
const VERSIONS: &str = "/v1/artifacts/{artifactId}/versions";
const ARTIFACT_AUDIT: &str = "/v1/artifacts/{artifactId}/audit";
const AUDIT: &str = "/v1/audit";
const OPENAPI: &str = "/v1/openapi.json";
const RESTORE: &str = "/v1/artifacts/{artifactId}/restore";
const VERSION: &str = "/v1/artifacts/{artifactId}/versions/{version}";
const HOLD: &str = "/v1/artifacts/{artifactId}/hold";
/// The media type `PATCH` takes (RFC 7396).
const MERGE_PATCH: &str = "application/merge-patch+json";
const ATTESTATION: &str = "/v1/artifacts/{artifactId}/versions/{version}/attestation";
const SIGNING_KEY: &str = "/v1/signing-key";
/// What this function serves; any other method on these paths is 405.
pub const ROUTES: &[Route] = &[
    (Method::GET, ARTIFACT),
    (Method::GET, VERSIONS),
    (Method::GET, ARTIFACT_AUDIT),
    (Method::GET, AUDIT),
    (Method::GET, OPENAPI),
    (Method::DELETE, ARTIFACT),
    (Method::PATCH, ARTIFACT),
    (Method::POST, RESTORE),
    (Method::DELETE, VERSION),
    (Method::PUT, HOLD),
    (Method::DELETE, HOLD),
    (Method::GET, ATTESTATION),
    (Method::GET, SIGNING_KEY),
];
/// How long verifiers may cache the public key.
const SIGNING_KEY_MAX_AGE: u32 = 3600;

/// `infra/openapi.yaml` with the fragments of `infra/openapi/` merged in, as
/// JSON (built by `build.rs`): what `GET /v1/openapi.json` serves.
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));
/// Its strong ETag (a digest of [`OPENAPI_JSON`]).
pub const OPENAPI_ETAG: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.etag"));

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, versions(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn versions(store: &Store, req: &Request) -> Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    if route.path == OPENAPI {
        return openapi(req);
    }
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
    if route.path == ARTIFACT_AUDIT || route.path == AUDIT {
        return audit(store, req, &principal, artifact_id).await;
    }
    let method = req.method().clone();
    if let Some(action) = lifecycle_action(&method, route.path, req) {
        let version = route.param("version");
        let result = lifecycle(store, req, &principal, route.path, artifact_id, version).await;
        if let Err(e) = &result {
            // Refusals inside the org (403, 409 hold, 410) are recorded;
            // the subject is only what the caller named.
            let about = Subject {
                artifact_id: Some(artifact_id.to_owned()),
                version: version.parse::<u64>().ok(),
                ..Subject::default()
            };
            store
                .record_refusal(&principal, &Origin::of(req), action, about, e)
                .await;
        }
        return result;
    }
    if method == Method::GET && route.path == ARTIFACT {
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

/// The audit action of a lifecycle route (SPEC §12), `None` for the reads.
fn lifecycle_action(method: &Method, path: &str, req: &Request) -> Option<Action> {
    Some(match (method.clone(), path) {
        (Method::DELETE, ARTIFACT)
            if http::query_param(req, "purge").as_deref() == Some("true") =>
        {
            Action::ArtifactPurged
        }
        (Method::DELETE, ARTIFACT) => Action::ArtifactDeleted,
        (Method::PATCH, ARTIFACT) => Action::ArtifactUpdated,
        (Method::POST, RESTORE) => Action::ArtifactRestored,
        (Method::DELETE, VERSION) => Action::VersionDeleted,
        (Method::PUT, HOLD) => Action::HoldSet,
        (Method::DELETE, HOLD) => Action::HoldReleased,
        _ => return None,
    })
}

/// The lifecycle routes; each change carries its audit record.
async fn lifecycle(
    store: &Store,
    req: &Request,
    principal: &Principal,
    path: &str,
    artifact_id: &str,
    version: &str,
) -> Result<Response<Body>> {
    let origin = Origin::of(req);
    match (req.method().clone(), path) {
        (Method::DELETE, ARTIFACT) => {
            let purge = match http::query_param(req, "purge").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(Error::bad_request("purge", "must be true or false")),
            };
            store
                .delete_artifact(principal, artifact_id, purge, &origin)
                .await?;
            Ok(no_content())
        }
        (Method::PATCH, ARTIFACT) => {
            // Scope before the headers and body: a caller who may not write
            // learns nothing more (found by the conformance run).
            principal.require(artifacts::auth::Scope::Write)?;
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
                .patch_artifact(
                    principal,
                    artifact_id,
                    http::body_bytes(req),
                    if_match,
                    &origin,
                )
                .await?;
            http::json(StatusCode::OK, &artifact)
        }
        (Method::POST, RESTORE) => {
            let artifact = store.restore(principal, artifact_id, &origin).await?;
            http::json(StatusCode::OK, &artifact)
        }
        (Method::DELETE, VERSION) => {
            store
                .delete_version(principal, artifact_id, version, &origin)
                .await?;
            Ok(no_content())
        }
        (Method::PUT, HOLD) => {
            // Scope before body: a caller who may not hold learns nothing more.
            principal.require(artifacts::auth::Scope::Admin)?;
            let reason = artifacts::lifecycle::parse_hold_reason(http::body_bytes(req))?;
            let artifact = store
                .set_hold(principal, artifact_id, Some(reason), &origin)
                .await?;
            http::json(StatusCode::OK, &artifact)
        }
        (Method::DELETE, HOLD) => {
            let artifact = store
                .set_hold(principal, artifact_id, None, &origin)
                .await?;
            http::json(StatusCode::OK, &artifact)
        }
        _ => Err(Error::Integrity("not a lifecycle route".into())),
    }
}

/// One page of audit records: one artifact's (`artifact_id` not empty)
/// or the org's. A refusal (missing scope) is itself recorded.
async fn audit(
    store: &Store,
    req: &Request,
    principal: &Principal,
    artifact_id: &str,
) -> Result<Response<Body>> {
    let params = req.query_string_parameters_ref();
    let pairs = params.into_iter().flat_map(|q| q.iter());
    let page = match AuditQuery::parse(pairs) {
        Ok(query) if artifact_id.is_empty() => store.org_audit(principal, &query).await,
        Ok(query) => store.artifact_audit(principal, artifact_id, &query).await,
        Err(e) => Err(e),
    };
    match page {
        Ok(page) => http::json(StatusCode::OK, &page),
        Err(e) => {
            let about = Subject {
                artifact_id: Some(artifact_id.to_owned()).filter(|id| !id.is_empty()),
                ..Subject::default()
            };
            store
                .record_refusal(principal, &Origin::of(req), Action::AuditRead, about, &e)
                .await;
            Err(e)
        }
    }
}

/// The document, public and cacheable (it changes only with a deployment).
fn openapi(req: &Request) -> Result<Response<Body>> {
    let fresh = http::header_str(req, "if-none-match")?
        .is_some_and(|inm| http::etag_matches(inm, OPENAPI_ETAG));
    let response = Response::builder()
        .header(header::ETAG, OPENAPI_ETAG)
        .header(header::CACHE_CONTROL, "public, max-age=300");
    if fresh {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::Empty)
            .map_err(|e| Error::upstream("http", e));
    }
    response
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(OPENAPI_JSON.to_owned()))
        .map_err(|e| Error::upstream("http", e))
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
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
