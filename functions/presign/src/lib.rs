//! presign: routes that hand out access to content without moving it through
//! a function (SPEC §4). One module per feature; [`handler`] dispatches on
//! method and route ([`ROUTES`], matched on the request path by
//! `artifacts::http::route`, which ignores a stage or base-path prefix).
//!
//! The link of `DELETE /v1/links/…` is the path's last segment, whatever its
//! parameter is called: API Gateway (like matchit) takes one parameter name
//! per position, and download's `GET /v1/links/{token}` holds this one.

mod links;
mod resolve;
mod uploads;

use artifacts::http::{self, Route};
use artifacts::{Result, Store};
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};

const LINKS: &str = "/v1/artifacts/{artifactId}/links";
const LINK: &str = "/v1/links/{token}";
const UPLOADS: &str = "/v1/workflows/{workflowId}/uploads";
const UPLOAD: &str = "/v1/workflows/{workflowId}/uploads/{uploadId}";
const RESOLVE: &str = "/v1/resolve";
/// What this function serves; any other method on these paths is 405.
pub const ROUTES: &[Route] = &[
    (Method::POST, LINKS),
    (Method::GET, LINKS),
    (Method::DELETE, LINK),
    (Method::POST, UPLOADS),
    (Method::GET, UPLOAD),
    (Method::POST, RESOLVE),
];

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, route(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn route(store: &Store, req: &Request) -> Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    match (&route.method, route.path) {
        (&Method::POST, LINKS) => {
            links::create(store, req, &principal, route.param("artifactId")).await
        }
        (&Method::GET, LINKS) => links::list(store, &principal, route.param("artifactId")).await,
        (_, RESOLVE) => resolve::resolve(store, req, &principal).await,
        // The link id is the last segment, not whatever parameter carries it.
        (_, LINK) => {
            let id = req.raw_http_path().rsplit('/').next().unwrap_or_default();
            links::revoke(store, req, &principal, id).await
        }
        (&Method::GET, UPLOAD) => {
            uploads::status(
                store,
                &principal,
                route.param("workflowId"),
                route.param("uploadId"),
            )
            .await
        }
        _ => uploads::create(store, req, &principal, route.param("workflowId")).await,
    }
}
