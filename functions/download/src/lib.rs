//! `GET /v1/artifacts/{artifactId}/download[?version=N]`: decrypt one version
//! and return it, whole or one `Range`, with the headers of SPEC §6.
//! `GET /v1/links/{token}` (no principal: the token is the credential, SPEC
//! §8) answers the same way for the version the link pins.

use std::time::Duration;

use artifacts::http::{self, Route, Routed, header_str};
use artifacts::metadata::VersionRecord;
use artifacts::model::Artifact;
use artifacts::{Error, Result, Store};
use artifacts::{delivery, links};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};

const DOWNLOAD: &str = "/v1/artifacts/{artifactId}/download";
const LINK: &str = "/v1/links/{token}";
/// What this function serves; any other method on these paths is 405.
pub const ROUTES: &[Route] = &[(Method::GET, DOWNLOAD), (Method::GET, LINK)];

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let route = match http::route(&req, ROUTES) {
        Ok(route) => route,
        Err(e) => return Ok(http::finish(&req, Err(e))),
    };
    if route.path == LINK {
        return Ok(link(store, &req, route.param("token")).await);
    }
    Ok(http::finish(&req, download(store, &req, &route).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn link(store: &Store, req: &Request, token: &str) -> Response<Body> {
    let request_id = http::request_id(req);
    store
        .serve_link(token, links::now(), &request_id, |open| async move {
            let org = &open.claims.org;
            serve_version_for(store, req, org, &open.artifact, &open.record, open.url_ttl).await
        })
        .await
}

#[tracing::instrument(skip_all, fields(org))]
async fn download(store: &Store, req: &Request, route: &Routed) -> Result<Response<Body>> {
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    let artifact_id = route.param("artifactId");
    let version = http::positive_param(req, "version", u64::from(u32::MAX))?;
    let (artifact, record) = store.version(&principal, artifact_id, version).await?;
    serve_version(store, req, &principal.org, &artifact, &record).await
}

/// Answer a download of one version: conditionals, `Range`, headers of
/// SPEC §6. Content over the direct limit is a 303 to a presigned URL valid
/// for the longest lifetime SPEC §6 allows.
pub async fn serve_version(
    store: &Store,
    req: &Request,
    org: &str,
    artifact: &Artifact,
    record: &VersionRecord,
) -> Result<Response<Body>> {
    serve_version_for(store, req, org, artifact, record, delivery::LINK_TTL).await
}

/// [`serve_version`] with the presigned URL valid for `url_ttl` (links
/// pass what is left of their life, capped; see `links::OpenLink`).
pub async fn serve_version_for(
    store: &Store,
    req: &Request,
    org: &str,
    artifact: &Artifact,
    record: &VersionRecord,
    url_ttl: Duration,
) -> Result<Response<Body>> {
    let v = &record.version;
    let etag = http::etag(&v.sha256);
    // SPEC §18: where the version's signed publish attestation is served.
    let attested = |response: lambda_http::http::response::Builder| match &record.attestation {
        Some(_) => response.header(
            "x-artifact-attestation",
            artifacts::attestation::attestation_url(
                store.config.public_base_url.as_deref(),
                &artifact.artifact_id,
                v.version,
            ),
        ),
        None => response,
    };
    let base = || {
        attested(
            Response::builder()
                .header(header::ETAG, &etag)
                .header(header::CACHE_CONTROL, "private")
                .header("x-artifact-version", v.version),
        )
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
    // Too large for a Lambda response: send the client to a decrypted copy
    // in S3, which serves Range itself.
    if v.size > store.config.direct_max_bytes {
        let url = store.deliver(org, artifact, record, url_ttl).await?;
        return attested(Response::builder())
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, url)
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, "private, no-store")
            .header("x-artifact-version", v.version)
            .body(Body::Empty)
            .map_err(|e| Error::upstream("http", e));
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
