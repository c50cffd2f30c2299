//! `GET /v1/artifacts/{artifactId}/download[?version=N]` and
//! `GET /v1/workflows/{workflowId}/artifacts/{path+}[?version=N]` (by path,
//! SPEC §14): decrypt one version and return it, whole or one `Range`, with
//! the headers of SPEC §6 — both routes through [`serve_version`]. `HEAD` on
//! either answers the same headers without a body (and without reading the
//! content). `GET …/artifacts/{path+}?meta` answers the artifact's metadata.
//! `GET /v1/links/{token}` (no principal: the token is the credential, SPEC
//! §8) answers the same way for the version the link pins.

use std::time::Duration;

use artifacts::audit::{Action, Actor, Origin, Record, Subject};
use artifacts::http::{self, Route, Routed, header_str};
use artifacts::metadata::VersionRecord;
use artifacts::model::Artifact;
use artifacts::{Error, Result, Store};
use artifacts::{delivery, links};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};

const DOWNLOAD: &str = "/v1/artifacts/{artifactId}/download";
/// By path. `GET …/artifacts/bundle` is the bundle function's (a literal
/// beats `{path+}`), so a root path named `bundle` is reached by id.
const BY_PATH: &str = "/v1/workflows/{workflowId}/artifacts/{path+}";
const LINK: &str = "/v1/links/{token}";
/// What this function serves; any other method on these paths is 405.
/// (`PUT` on [`BY_PATH`] is the upload function's, routed by the gateway.)
pub const ROUTES: &[Route] = &[
    (Method::GET, DOWNLOAD),
    (Method::HEAD, DOWNLOAD),
    (Method::GET, BY_PATH),
    (Method::HEAD, BY_PATH),
    (Method::GET, LINK),
];

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let route = match http::route(&req, ROUTES) {
        Ok(route) => route,
        Err(e) => return Ok(http::finish(&req, Err(e))),
    };
    if route.path == LINK {
        return Ok(link(store, &req, route.param("token")).await);
    }
    let response = http::finish(&req, download(store, &req, &route).await);
    Ok(if req.method() == Method::HEAD {
        without_body(response)
    } else {
        response
    })
}

#[tracing::instrument(skip_all, fields(org))]
async fn link(store: &Store, req: &Request, token: &str) -> Response<Body> {
    let request_id = http::request_id(req);
    store
        .serve_link(token, links::now(), &request_id, |open| async move {
            let org = &open.claims.org;
            let actor = Actor::LinkId(open.claims.link_id.clone());
            serve_version_for(
                store,
                req,
                org,
                &open.artifact,
                &open.record,
                open.url_ttl,
                actor,
            )
            .await
        })
        .await
}

#[tracing::instrument(skip_all, fields(org))]
async fn download(store: &Store, req: &Request, route: &Routed) -> Result<Response<Body>> {
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    let version = http::positive_param(req, "version", u64::from(u32::MAX))?;
    // By id or by path (SPEC §14): the same answer through `serve_version`.
    let (found, about) = if route.path == BY_PATH {
        let (workflow_id, path) = (route.param("workflowId"), route.param("path"));
        if http::query_param(req, "meta").is_some() {
            if version.is_some() {
                return Err(Error::bad_request(
                    "version",
                    "does not apply to ?meta (the metadata of the artifact)",
                ));
            }
            let artifact = store
                .artifact_at_path(&principal, workflow_id, path)
                .await?;
            return http::json(StatusCode::OK, &artifact);
        }
        let about = Subject {
            workflow_id: Some(workflow_id.to_owned()),
            path: Some(path.to_owned()),
            version,
            ..Subject::default()
        };
        let found = store
            .version_at_path(&principal, workflow_id, path, version)
            .await;
        (found, about)
    } else {
        let artifact_id = route.param("artifactId");
        let about = Subject {
            artifact_id: Some(artifact_id.to_owned()),
            version,
            ..Subject::default()
        };
        (store.version(&principal, artifact_id, version).await, about)
    };
    let (artifact, record) = match found {
        Ok(found) => found,
        Err(e) => {
            store
                .record_refusal(&principal, &Origin::of(req), Action::Downloaded, about, &e)
                .await;
            return Err(e);
        }
    };
    let actor = Actor::Sub(principal.subject.clone());
    serve_version(store, req, &principal.org, &artifact, &record, actor).await
}

/// A `HEAD` answer: the `GET` answer's status and headers (its
/// `Content-Length` included), no body.
fn without_body(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    if parts.status != StatusCode::NOT_MODIFIED
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
    {
        let len = match &body {
            Body::Text(t) => t.len(),
            Body::Binary(b) => b.len(),
            _ => 0,
        };
        parts.headers.insert(header::CONTENT_LENGTH, len.into());
    }
    Response::from_parts(parts, Body::Empty)
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
    actor: Actor,
) -> Result<Response<Body>> {
    serve_version_for(store, req, org, artifact, record, delivery::LINK_TTL, actor).await
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
    actor: Actor,
) -> Result<Response<Body>> {
    let v = &record.version;
    // The audit record of this read, written before anything is returned
    // (SPEC §13): if it cannot be written, the answer is a 500, no content.
    let action = match actor {
        Actor::LinkId(_) => Action::LinkUsed,
        Actor::Sub(_) | Actor::System(_) => Action::Downloaded,
    };
    let mut read = Record::new(
        action,
        actor,
        Subject::artifact(artifact, Some(v.version)),
        &Origin::of(req),
    );
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
    // HEAD reads no content: it answers what GET would send, headers only.
    // Content too large for a Lambda response is described as it is (200,
    // its length) rather than copied to S3 for a redirect nobody follows.
    let head = req.method() == Method::HEAD;
    // Too large for a Lambda response: send the client to a decrypted copy
    // in S3, which serves Range itself.
    if v.size > store.config.direct_max_bytes && !head {
        // The record is written while the copy is made, as below.
        let records = [read];
        let (url, ()) = tokio::try_join!(
            Box::pin(store.deliver(org, artifact, record, url_ttl)),
            Box::pin(store.record_reads(org, &records))
        )?;
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
    // (HEAD of content a GET redirects describes the whole content.)
    let redirected = v.size > store.config.direct_max_bytes;
    let range = match header_str(req, "range")? {
        Some(r) if if_range_ok && !redirected => http::parse_range(r, v.size)?,
        _ => None,
    };

    // HEAD reads no content and records no read. The record is written
    // while the content is fetched and decrypted (they are independent);
    // nothing is returned unless both succeeded, so a read whose record
    // failed sends no content (a read that then fails may stay recorded).
    let bytes = if head {
        Vec::new()
    } else {
        read.range = range.map(|(start, end)| format!("{start}-{end}"));
        let records = [read];
        let (bytes, ()) = tokio::try_join!(
            Box::pin(store.read(org, &artifact.artifact_id, record, range)),
            Box::pin(store.record_reads(org, &records))
        )?;
        bytes
    };
    let length = match range {
        Some((start, end)) => end - start + 1,
        None => v.size,
    };
    let mut response = base()
        .header(header::CONTENT_TYPE, &v.content_type)
        .header(header::CONTENT_LENGTH, length)
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
    let body = if head {
        Body::Empty
    } else {
        Body::Binary(bytes)
    };
    response.body(body).map_err(|e| Error::upstream("http", e))
}
