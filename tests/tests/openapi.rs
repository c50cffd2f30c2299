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
