//! `GET /v1/workflows/{workflowId}/artifacts` (a workflow's artifacts, by
//! path) and `GET /v1/artifacts` (the org-wide library, newest first):
//! metadata only, paginated with opaque cursors. See `artifacts::listing`.

use artifacts::auth::Scope;
use artifacts::http::{self, Route};
use artifacts::listing::ListQuery;
use artifacts::{Result, Store};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

const WORKFLOW: &str = "/v1/workflows/{workflowId}/artifacts";
/// What this function serves; any other method on these paths is 405.
pub const ROUTES: &[Route] = &[(Method::GET, WORKFLOW), (Method::GET, "/v1/artifacts")];

pub async fn handler(store: &Store, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(http::finish(&req, list(store, &req).await))
}

#[tracing::instrument(skip_all, fields(org))]
async fn list(store: &Store, req: &Request) -> Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    let principal = http::principal(&store.config.auth, req)?;
    tracing::Span::current().record("org", principal.org.as_str());
    // Scope before parameters: a caller who may not list learns nothing more.
    principal.require(Scope::Read)?;
    let params = req.query_string_parameters_ref();
    let params = params.into_iter().flat_map(|q| q.iter());
    // The route decides: only the workflow route has a workflowId in its path.
    let query = if route.path == WORKFLOW {
        ListQuery::workflow(route.param("workflowId"), params)?
    } else {
        ListQuery::library(params)?
    };
    let page = store.list(&principal, &query).await?;
    tracing::info!(
        returned = page.artifacts.len(),
        queries = page.stats.queries,
        items_read = page.stats.items_read,
        more = page.next_cursor.is_some(),
        "listed"
    );
    http::json(StatusCode::OK, &page)
}
