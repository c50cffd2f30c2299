//! `POST /v1/workflows/{workflowId}/uploads`: open an upload session and
//! hand back a presigned S3 PUT into `incoming/` (SPEC §4). The bytes never
//! pass through a function; S3's event runs `artifacts-ingest`.
//! `GET /v1/workflows/{workflowId}/uploads/{uploadId}`: where that session
//! stands (SPEC §19), so a client can wait for its version.

use artifacts::auth::{Principal, Scope};
use artifacts::http;
use artifacts::uploads::UploadRequest;
use artifacts::{Result, Store};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

pub async fn create(
    store: &Store,
    req: &Request,
    principal: &Principal,
    workflow_id: &str,
) -> Result<Response<Body>> {
    // Scope before the body: a caller who may not write learns nothing more.
    principal.require(Scope::Write)?;
    let request = UploadRequest::from_json(http::body_bytes(req))?;
    let upload = store.create_upload(principal, workflow_id, request).await?;
    http::json(StatusCode::CREATED, &upload)
}

pub async fn status(
    store: &Store,
    principal: &Principal,
    workflow_id: &str,
    upload_id: &str,
) -> Result<Response<Body>> {
    let now = artifacts::links::now();
    let status = store
        .upload_status(principal, workflow_id, upload_id, now)
        .await?;
    http::json(StatusCode::OK, &status)
}
