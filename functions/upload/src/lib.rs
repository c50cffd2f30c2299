//! `PUT /v1/workflows/{workflowId}/artifacts/{path+}`: store the body as the
//! next version of the artifact at `path` (SPEC §4).

use std::collections::BTreeMap;

use artifacts::audit::{Action, Origin, Subject};
use artifacts::auth::Scope;
use artifacts::http::{self, Route, header_str};
use artifacts::store::{NewVersion, WriteCondition};
use artifacts::{Error, Result, Store};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// Metadata travels as `x-artifact-meta-<key>: <value>` headers, like S3's.
const META_PREFIX: &str = "x-artifact-meta-";

/// What this function serves; any other method on this path is 405.
pub const ROUTES: &[Route] = &[(Method::PUT, "/v1/workflows/{workflowId}/artifacts/{path+}")];

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, upload(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn upload(store: &Store, req: &Request) -> Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    // Scope before the headers and body: a caller who may not write learns
    // nothing more. The refusal is recorded (SPEC §13).
    if let Err(e) = principal.require(Scope::Write) {
        let refused = Subject {
            workflow_id: Some(route.param("workflowId").to_owned()),
            path: Some(route.param("path").to_owned()),
            ..Subject::default()
        };
        store
            .record_refusal(
                &principal,
                &Origin::of(req),
                Action::VersionCreated,
                refused,
                &e,
            )
            .await;
        return Err(e);
    }

    let new = NewVersion {
        workflow_id: route.param("workflowId").to_owned(),
        path: route.param("path").to_owned(),
        artifact_type: http::query_param(req, "artifactType"),
        // Sent as application/octet-stream, declared in x-artifact-content-type.
        content_type: http::declared_content_type(req)?,
        metadata: metadata(req)?,
        expected_sha256: header_str(req, "x-artifact-sha256")?.map(str::to_owned),
        condition: condition(req)?,
        library: library(req)?,
        body: http::body_bytes(req).to_vec(),
        origin: Origin::of(req),
        request_id: Some(http::request_id(req)),
        retention_days: retention_days(req)?,
        keep_versions: header_str(req, "x-artifact-keep-versions")?
            .map(artifacts::lifecycle::parse_keep_header)
            .transpose()?,
    };
    let refused = Subject {
        workflow_id: Some(new.workflow_id.clone()),
        path: Some(new.path.clone()),
        ..Subject::default()
    };
    let (artifact, version) = match store.put(&principal, new).await {
        Ok(done) => done,
        Err(e) => {
            let origin = Origin::of(req);
            store
                .record_refusal(&principal, &origin, Action::VersionCreated, refused, &e)
                .await;
            return Err(e);
        }
    };

    let mut response = http::json(
        StatusCode::CREATED,
        &json!({ "artifact": artifact, "version": version }),
    )?;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::LOCATION,
            format!("/v1/artifacts/{}", artifact.artifact_id),
        ),
        (header::ETAG, http::etag(&version.sha256)),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

/// `x-artifact-retention-days: N` (SPEC §12): a whole number of days ≥ 1.
fn retention_days(req: &Request) -> Result<Option<u64>> {
    header_str(req, "x-artifact-retention-days")?
        .map(artifacts::lifecycle::parse_days_header)
        .transpose()
}

/// `If-Match: "<version>"` (compare-and-set) or `If-None-Match: *` (create only).
fn condition(req: &Request) -> Result<WriteCondition> {
    if let Some(value) = header_str(req, "if-match")? {
        let number = value.trim().trim_matches('"');
        return match number.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(WriteCondition::LatestIs(n)),
            _ => Err(Error::bad_request(
                "If-Match",
                "must be a version number like \"3\"",
            )),
        };
    }
    match header_str(req, "if-none-match")? {
        Some(v) if v.trim() == "*" => Ok(WriteCondition::Absent),
        Some(_) => Err(Error::bad_request(
            "If-None-Match",
            "only * is supported on upload",
        )),
        None => Ok(WriteCondition::Any),
    }
}

/// `x-artifact-library: true | false`: publish to the library or withdraw
/// (SPEC §14); absent keeps what the artifact has.
fn library(req: &Request) -> Result<Option<bool>> {
    match header_str(req, "x-artifact-library")?.map(str::trim) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(Error::bad_request(
            "x-artifact-library",
            "must be true or false",
        )),
    }
}

fn metadata(req: &Request) -> Result<Option<BTreeMap<String, String>>> {
    let mut metadata = BTreeMap::new();
    for (name, value) in req.headers() {
        if let Some(key) = name.as_str().strip_prefix(META_PREFIX) {
            let value = value
                .to_str()
                .map_err(|_| Error::bad_request("metadata", "values must be visible ASCII"))?;
            metadata.insert(key.to_owned(), value.to_owned());
        }
    }
    Ok((!metadata.is_empty()).then_some(metadata))
}
