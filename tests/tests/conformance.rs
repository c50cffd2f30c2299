//! Defects `make conformance` (schemathesis on infra/openapi.yaml) found,
//! each pinned here at the edge: the local gateway's real listener in front
//! of the real handlers and the emulator, driven by an ordinary client.

use harness::edge::{Edge, client};
use serde_json::{Value, json};

/// POST `body` (raw JSON text) to `path` as `org`'s writer; status and problem.
async fn post(edge: &Edge, path: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(edge.url(path))
        .bearer_auth(edge.writer("acme"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Found: a generated upload request with a value of the wrong type (e.g.
/// `"path": {}`) got a 400 on field `body` with serde's "invalid type: map,
/// expected a string at line 1 column 10": the field was not named.
#[tokio::test]
async fn upload_requests_with_a_bad_field_name_that_field() {
    let edge = Edge::start().await;
    for (body, field) in [
        (r#"{"path": {}, "size": 1}"#, "path"),
        (r#"{"path": "a.txt", "size": "1"}"#, "size"),
        (r#"{"path": "a.txt", "size": -1}"#, "size"),
        (r#"{"path": "a.txt"}"#, "size"),
        (r#"{"size": 1}"#, "path"),
        (
            r#"{"path": "a.txt", "size": 1, "artifactType": 5}"#,
            "artifactType",
        ),
        (
            r#"{"path": "a.txt", "size": 1, "contentType": false}"#,
            "contentType",
        ),
        (r#"{"path": "a.txt", "size": 1, "sha256": []}"#, "sha256"),
        (
            r#"{"path": "a.txt", "size": 1, "metadata": {"k": 1}}"#,
            "metadata",
        ),
        (r#"{"path": "a.txt", "size": 1, "colour": "red"}"#, "body"),
        (r#"[1]"#, "body"),
        (r#"not json"#, "body"),
    ] {
        let (status, problem) = post(&edge, "/v1/workflows/wf-1/uploads", body).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("line 1"),
            "{body}: parser internals in {detail:?}"
        );
    }
    // Still accepted: nulls for the optional fields, and a plain request.
    let (status, answer) = post(
        &edge,
        "/v1/workflows/wf-1/uploads",
        r#"{"path": "a.txt", "size": 1, "artifactType": null, "metadata": null}"#,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["method"], json!("PUT"));
}

/// Found: a read-only token sending a bad body to the upload route got the
/// body's 400 (with what was wrong in it) instead of the 403 every other
/// route answers first ("scope before parameters").
#[tokio::test]
async fn a_reader_is_refused_the_upload_route_before_its_body_is_read() {
    let edge = Edge::start().await;
    let reader = edge.token("acme", json!("artifacts:read"));
    for body in ["{}", "not json", r#"{"path": "a.txt", "size": 1}"#] {
        let r = client()
            .post(edge.url("/v1/workflows/wf-1/uploads"))
            .bearer_auth(&reader)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{body}");
        let problem: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(problem["type"], "urn:artifacts:problem:forbidden", "{body}");
    }
}

/// Found: a read-only token's upload with a bad `If-Match` (or content
/// type, or metadata header) got that header's 400 instead of 403.
#[tokio::test]
async fn a_reader_is_refused_an_upload_before_its_headers_are_read() {
    let edge = Edge::start().await;
    let reader = edge.token("acme", json!("artifacts:read"));
    for (name, value) in [
        ("if-match", "not-a-version"),
        ("if-none-match", "\"x\""),
        ("x-artifact-content-type", "no slash"),
        (
            "x-artifact-sha256",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ] {
        let r = client()
            .put(edge.url("/v1/workflows/wf-1/artifacts/a.txt"))
            .bearer_auth(&reader)
            .header("content-type", "application/octet-stream")
            .header(name, value)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
    }
}

/// Found by the conformance run after the lifecycle routes landed: a reader's
/// PATCH with a malformed If-Match was a 400 (headers read before scope).
#[tokio::test]
async fn a_reader_is_refused_a_patch_before_its_headers_are_read() {
    let edge = Edge::start().await;
    let reader = edge.token("acme", json!("artifacts:read"));
    for (name, value) in [
        ("if-match", "not-a-version"),
        ("content-type", "text/plain"),
    ] {
        let r = client()
            .patch(edge.url("/v1/artifacts/0123456789abcdef0123456789abcdef"))
            .bearer_auth(&reader)
            .header("content-type", "application/merge-patch+json")
            .header(name, value)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
    }
}

/// Found (a document error): the document said `GET …/uploads/{uploadId}`
/// needs artifacts:write; the route asks for artifacts:read, and a reader
/// gets the session's answer (here a 404), not 403.
#[tokio::test]
async fn the_upload_status_route_needs_read_as_documented() {
    let doc: Value = serde_json::from_str(artifacts_versions::OPENAPI_JSON).unwrap();
    let op = &doc["paths"]["/v1/workflows/{workflowId}/uploads/{uploadId}"]["get"];
    let security = op.get("security").unwrap_or(&doc["security"]);
    assert_eq!(security, &json!([{"bearer": ["artifacts:read"]}]));

    let edge = Edge::start().await;
    let reader = edge.token("acme", json!("artifacts:read"));
    let r = client()
        .get(edge.url("/v1/workflows/wf-1/uploads/0123456789abcdef0123456789abcdef"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
