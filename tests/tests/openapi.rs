//! `GET /v1/openapi.json` (SPEC §16), at the edge: the local gateway routes
//! it without a bearer token to the versions function, which serves the
//! embedded document (infra/openapi.yaml + fragments) cacheably.

use harness::edge::{Edge, client};

#[tokio::test]
async fn the_document_is_served_without_auth_and_cacheable() {
    let edge = Edge::start().await;
    let http = client();

    let r = http.get(edge.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, artifacts_versions::OPENAPI_ETAG);
    let doc: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/links/{token}"]["get"]["security"] == serde_json::json!([]));
    assert!(doc["paths"]["/v1/openapi.json"].is_object());

    // Revalidation: 304 without a body, same validator.
    let r = http
        .get(edge.url("/v1/openapi.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    // A stale validator gets the document again; other methods are no route.
    let r = http
        .get(edge.url("/v1/openapi.json"))
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(edge.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Found by the generated client's round trip (`make conformance`): the
/// served JSON had its keys sorted (serde_json's default map), not in the
/// YAML's order, so a generator taking a response's first media type read
/// every 404 problem as the gateway's `{"message"}` and failed on it.
#[test]
fn the_served_document_keeps_the_yaml_key_order() {
    let json = artifacts_versions::OPENAPI_JSON;
    assert!(json.starts_with("{\"openapi\":"), "{}", &json[..40]);
    let not_found = json
        .find("\"NotFound\":")
        .expect("components.responses.NotFound");
    let rest = &json[not_found..];
    let problem = rest.find("\"application/problem+json\"").unwrap();
    let gateway = rest.find("\"application/json\"").unwrap();
    assert!(
        problem < gateway,
        "NotFound must list application/problem+json first, as infra/openapi.yaml does"
    );
}
