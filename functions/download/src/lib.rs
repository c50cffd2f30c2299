//! `GET /v1/artifacts/{artifactId}/download[?version=N]`: decrypt one version
//! and return it, whole or one `Range`, with the headers of SPEC §6.

use artifacts::http::{self, header_str};
use artifacts::metadata::VersionRecord;
use artifacts::model::Artifact;
use artifacts::{Error, Result, Store};
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, download(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn download(store: &Store, req: &Request) -> Result<Response<Body>> {
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    let artifact_id = http::path_param(req, "artifactId").unwrap_or_default();
    let version = http::positive_param(req, "version", u64::from(u32::MAX))?;
    let (artifact, record) = store.version(&principal, &artifact_id, version).await?;
    serve_version(store, req, &principal.org, &artifact, &record).await
}

/// Answer a download of one version: conditionals, `Range`, headers of
/// SPEC §6. Shared by the authenticated route and links.
pub async fn serve_version(
    store: &Store,
    req: &Request,
    org: &str,
    artifact: &Artifact,
    record: &VersionRecord,
) -> Result<Response<Body>> {
    let v = &record.version;
    let etag = http::etag(&v.sha256);
    let base = || {
        Response::builder()
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, "private")
            .header("x-artifact-version", v.version)
    };
    if header_str(req, "if-none-match")?.is_some_and(|inm| http::etag_matches(inm, &etag)) {
        return base()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::Empty)
            .map_err(|e| Error::upstream("http", e));
    }
    if header_str(req, "if-match")?.is_some_and(|im| !http::etag_matches(im, &etag)) {
        return Err(Error::PreconditionFailed("the ETag does not match".into()));
    }
    // A Range applies only while the representation is the one the client
    // has (If-Range); otherwise the whole content is sent.
    let if_range_ok = header_str(req, "if-range")?.is_none_or(|ir| ir.trim() == etag);
    let range = match header_str(req, "range")? {
        Some(r) if if_range_ok => http::parse_range(r, v.size)?,
        _ => None,
    };

    let bytes = store
        .read(org, &artifact.artifact_id, record, range)
        .await?;
    let mut response = base()
        .header(header::CONTENT_TYPE, &v.content_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .header(
            header::CONTENT_DISPOSITION,
            http::content_disposition(&artifact.name),
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::ACCEPT_RANGES, "bytes");
    response = match range {
        Some((start, end)) => response.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{end}/{}", v.size),
        ),
        None => response.status(StatusCode::OK),
    };
    response
        .body(Body::Binary(bytes))
        .map_err(|e| Error::upstream("http", e))
}
