//! Lifecycle routes (SPEC §12) through the local gateway's real HTTP listener
//! with an ordinary client: routing by method (DELETE, PATCH, POST restore,
//! PUT/DELETE hold, DELETE of one version), the merge-patch media type and
//! `If-Match` as a client sends them, 204 without a body, the trash listing's
//! query string.

use harness::edge::{Edge, client};
use serde_json::{Value, json};

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Option<String>, Vec<u8>) {
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn delete_patch_restore_and_the_trash_through_the_gateway() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    let admin = edge.token(
        "acme",
        json!("artifacts:read artifacts:write artifacts:admin"),
    );
    let http = client();

    let (status, _, body) = send(
        http.put(edge.url("/v1/workflows/wf-edge/artifacts/docs/prd.md"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(b"# PRD".to_vec()),
    )
    .await;
    assert_eq!(status, 201);
    let id = parse(&body)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let artifact = edge.url(&format!("/v1/artifacts/{id}"));

    // PATCH: the merge-patch media type (with a parameter), If-Match quoted.
    let patch = |body: Value| {
        http.patch(&artifact)
            .bearer_auth(&token)
            .header(
                "content-type",
                "application/merge-patch+json; charset=utf-8",
            )
            .body(body.to_string())
    };
    let (status, _, body) = send(
        patch(json!({ "metadata": { "team": "sec" }, "library": true }))
            .header("if-match", "\"1\""),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let patched = parse(&body);
    assert_eq!(patched["metadata"], json!({ "team": "sec" }));
    assert_eq!(patched["library"], json!(true));
    assert_eq!(patched["expiresAt"], Value::Null);
    let (status, content_type, _) =
        send(patch(json!({ "library": false })).header("if-match", "\"2\"")).await;
    assert_eq!(status, 409);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let (status, _, body) = send(
        http.patch(&artifact)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(json!({ "library": false }).to_string()),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(parse(&body)["field"], json!("Content-Type"));

    // Holds need artifacts:admin.
    let hold = edge.url(&format!("/v1/artifacts/{id}/hold"));
    let reason = json!({ "reason": "audit" }).to_string();
    let (status, _, _) = send(http.put(&hold).bearer_auth(&token).body(reason.clone())).await;
    assert_eq!(status, 403);
    let (status, _, _) = send(http.put(&hold).bearer_auth(&admin).body(reason)).await;
    assert_eq!(status, 200);
    let (status, _, body) = send(http.delete(&artifact).bearer_auth(&token)).await;
    assert_eq!(status, 409);
    assert_eq!(parse(&body)["type"], json!("urn:artifacts:problem:held"));
    let (status, _, _) = send(http.delete(&hold).bearer_auth(&admin)).await;
    assert_eq!(status, 200);

    // DELETE: 204 with no body; then the id is a plain 404.
    let (status, _, body) = send(http.delete(&artifact).bearer_auth(&token)).await;
    assert_eq!(status, 204);
    assert!(body.is_empty());
    let (status, _, _) = send(http.get(&artifact).bearer_auth(&token)).await;
    assert_eq!(status, 404);

    // The trash, by query string.
    let (status, _, body) = send(
        http.get(edge.url("/v1/artifacts?state=deleted"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    let trash = parse(&body);
    assert_eq!(trash["artifacts"][0]["artifactId"], json!(id));
    assert!(trash["artifacts"][0]["purgeAfter"].is_string());

    // Restore, then delete one version by its route.
    let (status, _, _) = send(
        http.post(edge.url(&format!("/v1/artifacts/{id}/restore")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = send(
        http.put(edge.url("/v1/workflows/wf-edge/artifacts/docs/prd.md"))
            .bearer_auth(&token)
            .body(b"# PRD v2".to_vec()),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, _) = send(
        http.delete(edge.url(&format!("/v1/artifacts/{id}/versions/1")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, body) = send(
        http.get(edge.url(&format!("/v1/artifacts/{id}/versions")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body)["versions"].as_array().unwrap().len(), 1);

    // ?purge=true needs admin.
    let (status, _, _) = send(
        http.delete(format!("{artifact}?purge=true"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = send(
        http.delete(format!("{artifact}?purge=true"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, body) = send(
        http.get(edge.url("/v1/artifacts?state=deleted"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body)["artifacts"], json!([]));
}
