//! presign: routes that hand out access to content without moving it through
//! a function (SPEC §4). One module per feature; [`handler`] dispatches on
//! method and request path.
//!
//! Dispatch reads the path itself, not `routeKey` or path-parameter names:
//! `cargo lambda watch` (matchit) cannot route `/v1/links/{token}` and
//! `/v1/links/{linkId}` side by side, so locally `DELETE /v1/links/…` arrives
//! with download's parameter name. Matching the path's tail also ignores a
//! stage or base-path prefix.

mod links;
mod uploads;

use artifacts::http;
use artifacts::{Error, Result, Store};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, route(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn route(store: &Store, req: &Request) -> Result<Response<Body>> {
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    let path = req.uri().path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (req.method(), segments.as_slice()) {
        (&Method::POST, [.., "v1", "artifacts", id, "links"]) => {
            links::create(store, req, &principal, id).await
        }
        (&Method::GET, [.., "v1", "artifacts", id, "links"]) => {
            links::list(store, &principal, id).await
        }
        (&Method::DELETE, [.., "v1", "links", id]) => links::revoke(store, &principal, id).await,
        (&Method::POST, [.., "v1", "workflows", workflow_id, "uploads"]) => {
            uploads::create(store, req, &principal, workflow_id).await
        }
        (&Method::GET, [.., "v1", "workflows", workflow_id, "uploads", upload_id]) => {
            uploads::status(store, &principal, workflow_id, upload_id).await
        }
        _ => Err(Error::NotFound("route")),
    }
}
