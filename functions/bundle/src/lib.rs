//! `GET /v1/workflows/{workflowId}/artifacts/bundle[?artifactType=&prefix=&pin=<artifactId>:<version>…]`:
//! the selected artifacts of a workflow run as one ZIP (SPEC §7) — returned
//! directly up to `ARTIFACTS_DIRECT_MAX_BYTES`, else a 303 to a presigned
//! copy in `deliveries/`.

use artifacts::audit::{self, Action, Actor, Origin, Subject};
use artifacts::auth::Scope;
use artifacts::bundle::{self, Bundle, BundleRequest};
use artifacts::http::{self, Route, header_str};
use artifacts::{Error, Result, Store};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

/// What this function serves; any other method on this path is 405.
pub const ROUTES: &[Route] = &[(Method::GET, "/v1/workflows/{workflowId}/artifacts/bundle")];

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, bundle(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn bundle(store: &Store, req: &Request) -> Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    // Scope before parameters: a caller who may not read learns nothing more.
    let origin = Origin::of(req);
    if let Err(e) = principal.require(Scope::Read) {
        let about = Subject {
            workflow_id: Some(route.param("workflowId").to_owned()),
            ..Subject::default()
        };
        store
            .record_refusal(&principal, &origin, Action::Bundled, about, &e)
            .await;
        return Err(e);
    }
    let params = req.query_string_parameters_ref();
    let request = BundleRequest::parse(
        route.param("workflowId"),
        params.into_iter().flat_map(|q| q.iter()),
    )?;
    let selection = store.bundle_selection(&principal, &request).await?;
    let etag = selection.etag();
    if header_str(req, "if-none-match")?.is_some_and(|inm| http::etag_matches(inm, &etag)) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, "private")
            .body(Body::Empty)
            .map_err(|e| Error::upstream("http", e));
    }
    let bundle = store.bundle(&principal.org, &selection).await?;
    // Recorded before a byte (or the URL) is handed out (SPEC §13).
    let records = audit::bundle_records(
        &Actor::Sub(principal.subject.clone()),
        &origin,
        &selection.workflow_id,
        &selection.digest,
        selection
            .entries
            .iter()
            .map(|e| (e.artifact_id.as_str(), e.path.as_str(), e.version)),
    );
    store.record_reads(&principal.org, &records).await?;
    let response = match bundle {
        Bundle::Direct(bytes) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, bundle::CONTENT_TYPE)
            .header(header::CONTENT_LENGTH, bytes.len())
            .header(
                header::CONTENT_DISPOSITION,
                http::content_disposition(&selection.file_name()),
            )
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, "private")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(Body::Binary(bytes)),
        Bundle::Delivered { url } => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, url)
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, "private, no-store")
            .body(Body::Empty),
    };
    response.map_err(|e| Error::upstream("http", e))
}
