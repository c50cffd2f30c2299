//! The edge at the edge (issue 10, items 0, 3, 4, 15): requests from ordinary
//! clients (reqwest, curl) through the local gateway's real loopback
//! listener, to the real handlers, against the emulator.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use harness::edge::{Edge, client, direct_event};
use harness::{Call, Caller};
use serde_json::{Value, json};

const WF: &str = "wf-edge";

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// PUT through the gateway as bytes, declaring the stored type.
async fn put(edge: &Edge, token: &str, encoded_path: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client()
        .put(edge.url(&format!("/v1/workflows/{WF}/artifacts/{encoded_path}")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .header("x-artifact-content-type", "text/markdown")
        .body(body)
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, parse(&response.bytes().await.unwrap()))
}

/// (what the client puts in the URL, the path stored: decoded exactly once,
/// as API Gateway HTTP APIs decode it).
const PATHS: &[(&str, &str)] = &[
    ("my%20file.md", "my file.md"),
    ("a+b.md", "a+b.md"),
    ("a%2Bb%2B.md", "a+b+.md"),
    ("100%2525.md", "100%25.md"),
    ("50%25.md", "50%.md"),
    ("caf%C3%A9.txt", "café.txt"),
    ("%E6%97%A5%E6%9C%AC/%E6%96%87%E6%9B%B8.md", "日本/文書.md"),
    // An encoded slash is a separator once decoded, as in API Gateway.
    ("docs%2Fprd.md", "docs/prd.md"),
    // A decoded `?` or `#` ends the path (see the README): such a path cannot
    // travel in a URL; it is written through the uploads route.
    ("what%3Fnot.md", "what"),
    ("hash%23tag.md", "hash"),
];

#[tokio::test]
async fn paths_are_decoded_exactly_once_through_the_gateway() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    for (encoded, stored) in PATHS {
        let (status, body) = put(&edge, &token, encoded, b"x".to_vec()).await;
        assert_eq!(status, 201, "{encoded}: {body}");
        assert_eq!(body["artifact"]["path"], *stored, "{encoded}");
        // The function saw what API Gateway hands over: decoded rawPath and
        // path parameters.
        let event = edge.functions.last_event("artifacts-upload").unwrap();
        assert_eq!(event["pathParameters"]["path"], *stored, "{encoded}");
        assert_eq!(
            event["rawPath"],
            format!("/v1/workflows/{WF}/artifacts/{stored}"),
            "{encoded}"
        );
        // Reading it back by id names the same decoded path.
        let id = body["artifact"]["artifactId"].as_str().unwrap();
        let meta = client()
            .get(edge.url(&format!("/v1/artifacts/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(parse(&meta.bytes().await.unwrap())["path"], *stored);
    }
    // The deployed shape (a handler called with API Gateway's decoded
    // parameters) lands on the same artifacts: one rule in both places.
    let alice = Caller::writer("acme");
    for (encoded, stored) in PATHS.iter().take(7) {
        let r = harness::upload(&edge.env, Call::upload(WF, stored, b"y").by(&alice)).await;
        assert_eq!(r.status(), 201, "{encoded}");
        let body = harness::json_body(&r);
        assert_eq!(body["version"]["version"], 2, "{encoded}: {body}");
    }
}

#[tokio::test]
async fn curl_paths_are_decoded_exactly_once() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    for (encoded, stored) in PATHS {
        let url = edge.url(&format!("/v1/workflows/{WF}/artifacts/{encoded}"));
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--globoff", "--path-as-is", "--max-time", "60"])
            .args(["-X", "PUT", "-H", &format!("Authorization: Bearer {token}")])
            .args(["-H", "Content-Type: application/octet-stream"])
            .args(["-H", "x-artifact-content-type: text/markdown"])
            .args(["--data-binary", "curl", "-w", "\n%{http_code}", &url]);
        // curl blocks: run it off this test's runtime, which serves the gateway.
        let output = tokio::task::spawn_blocking(move || curl.output())
            .await
            .unwrap()
            .expect("curl runs");
        let out = String::from_utf8_lossy(&output.stdout);
        let (body, status) = out.rsplit_once('\n').unwrap_or_default();
        assert_eq!(status, "201", "{encoded}: {out}");
        assert_eq!(
            parse(body.as_bytes())["artifact"]["path"],
            *stored,
            "{encoded}"
        );
    }
}

/// Bytes that are not UTF-8, 0x00–0xFF and then noise.
fn awkward_bytes(len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    let mut x: u32 = 0x9e37_79b9;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x as u8);
    }
    bytes.truncate(len);
    bytes
}

async fn download(edge: &Edge, token: &str, id: &str) -> (u16, String, Vec<u8>) {
    let response = client()
        .get(edge.url(&format!("/v1/artifacts/{id}/download")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn bodies_round_trip_byte_exact_whatever_their_declared_type() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    let bytes = awkward_bytes(64 * 1024);
    // Not UTF-8, declared text/plain (a Latin-1 CSV): stored and served as is.
    for (path, content_type) in [
        ("latin1.csv", "text/plain"),
        ("data.json", "application/json"),
        ("none.bin", ""),
    ] {
        let mut request = client()
            .put(edge.url(&format!("/v1/workflows/{WF}/artifacts/{path}")))
            .bearer_auth(&token)
            .body(bytes.clone());
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = parse(&response.bytes().await.unwrap());
        assert_eq!(status, 201, "{path}: {body}");
        let event = edge.functions.last_event("artifacts-upload").unwrap();
        assert_eq!(event["isBase64Encoded"], true, "{path}");
        let id = body["artifact"]["artifactId"].as_str().unwrap();
        let (status, _, got) = download(&edge, &token, id).await;
        assert_eq!(status, 200);
        assert!(got == bytes, "{path}: the bytes changed");
    }
    // Valid UTF-8 text travels as text (isBase64Encoded false) and stays exact.
    let text = "naïve, 日本, \u{0}\r\n".repeat(100);
    let response = client()
        .put(edge.url(&format!("/v1/workflows/{WF}/artifacts/notes.txt")))
        .bearer_auth(&token)
        .header("content-type", "text/plain; charset=utf-8")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = parse(&response.bytes().await.unwrap())["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = edge.functions.last_event("artifacts-upload").unwrap();
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(download(&edge, &token, &id).await.2, text.as_bytes());

    // x-artifact-content-type declares the stored type; the body is octets.
    let (status, body) = put(&edge, &token, "prd.md", bytes.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["artifact"]["contentType"], "text/markdown");
    assert_eq!(body["version"]["contentType"], "text/markdown");
    let id = body["artifact"]["artifactId"].as_str().unwrap();
    let (status, content_type, got) = download(&edge, &token, id).await;
    assert_eq!((status, content_type.as_str()), (200, "text/markdown"));
    assert!(got == bytes);
}

#[tokio::test]
async fn large_bodies_pass_both_ways_byte_exact() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    for (path, size) in [("one.bin", 1024 * 1024), ("four.bin", 4 * 1024 * 1024)] {
        let bytes = awkward_bytes(size);
        let response = client()
            .put(edge.url(&format!("/v1/workflows/{WF}/artifacts/{path}")))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = parse(&response.bytes().await.unwrap());
        assert_eq!(status, 201, "{path}: {body}");
        let id = body["artifact"]["artifactId"].as_str().unwrap();
        let (status, _, got) = download(&edge, &token, id).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(got.len(), size);
        assert!(got == bytes, "{path}: the bytes changed");
    }
}

/// (function, method, path, Allow): a method the function does not serve on
/// a path it does.
const WRONG_METHODS: &[(&str, &str, &str, &str)] = &[
    // DELETE and PATCH are lifecycle routes (SPEC §12); PUT is not.
    (
        "artifacts-versions",
        "PUT",
        "/v1/artifacts/ID",
        "GET, DELETE, PATCH",
    ),
    (
        "artifacts-versions",
        "PUT",
        "/v1/artifacts/ID/versions",
        "GET",
    ),
    (
        "artifacts-download",
        "POST",
        "/v1/artifacts/ID/download",
        "GET, HEAD",
    ),
    ("artifacts-download", "DELETE", "/v1/links/sometoken", "GET"),
    (
        "artifacts-upload",
        "POST",
        "/v1/workflows/wf-edge/artifacts/a.md",
        "PUT",
    ),
    (
        "artifacts-upload",
        "DELETE",
        "/v1/workflows/wf-edge/artifacts/a.md",
        "PUT",
    ),
    ("artifacts-list", "POST", "/v1/artifacts", "GET"),
    (
        "artifacts-list",
        "DELETE",
        "/v1/workflows/wf-edge/artifacts",
        "GET",
    ),
    (
        "artifacts-bundle",
        "POST",
        "/v1/workflows/wf-edge/artifacts/bundle",
        "GET",
    ),
    (
        "artifacts-presign",
        "PUT",
        "/v1/artifacts/ID/links",
        "POST, GET",
    ),
    (
        "artifacts-presign",
        "GET",
        "/v1/workflows/wf-edge/uploads",
        "POST",
    ),
    ("artifacts-presign", "GET", "/v1/links/somelink", "DELETE"),
];

#[tokio::test]
async fn every_function_answers_a_method_it_does_not_serve_with_405_and_allow() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    let (status, body) = put(&edge, &token, "a.md", b"# A".to_vec()).await;
    assert_eq!(status, 201);
    let id = body["artifact"]["artifactId"].as_str().unwrap();
    for (function, method, path, allow) in WRONG_METHODS {
        let path = path.replace("ID", id);
        // What a router that ignores methods would hand the function.
        let params = match path.split('/').collect::<Vec<_>>().as_slice() {
            ["", "v1", "artifacts", id, ..] => json!({"artifactId": id}),
            ["", "v1", "links", token] => json!({"token": token}),
            ["", "v1", "workflows", wf, "artifacts", "bundle"] => json!({"workflowId": wf}),
            ["", "v1", "workflows", wf, "artifacts", rest @ ..] if !rest.is_empty() => {
                json!({"workflowId": wf, "path": rest.join("/")})
            }
            ["", "v1", "workflows", wf, ..] => json!({"workflowId": wf}),
            _ => json!(null),
        };
        let payload = edge
            .functions
            .call(function, &direct_event(method, &path, params, "acme"))
            .await
            .unwrap();
        let response = parse(&payload);
        assert_eq!(
            response["statusCode"], 405,
            "{function} {method} {path}: {response}"
        );
        assert_eq!(
            response["headers"]["allow"], *allow,
            "{function} {method} {path}"
        );
        assert_eq!(
            response["headers"]["content-type"],
            "application/problem+json"
        );
        let problem = parse(response["body"].as_str().unwrap().as_bytes());
        assert_eq!(problem["status"], 405);
        // The gateway routes by method, as API Gateway does: no route, 404.
        let through = client()
            .request(method.parse().unwrap(), edge.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(through.status(), 404, "{method} {path}");
    }
    // And the artifact is still there: no wrong method acted as another.
    let (status, _, got) = download(&edge, &token, id).await;
    assert_eq!((status, got.as_slice()), (200, &b"# A"[..]));
}

#[tokio::test]
async fn unrouted_requests_answer_like_api_gateway() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    for (method, path) in [
        // (GET / is the console's, SPEC §17.)
        ("POST", "/"),
        ("GET", "/v1/nothing"),
        ("PUT", "/v1/artifacts/x"),
        ("POST", "/v1/artifacts"),
        // (GET and HEAD here are the download by path, SPEC §14.)
        ("POST", "/v1/workflows/wf/artifacts/a.md"),
        ("PUT", "/v1/workflows/wf/artifacts/"),
        ("GET", "/v1/artifacts/x/versions/y"),
        ("HEAD", "/v1/artifacts/x/versions"),
    ] {
        let response = client()
            .request(method.parse().unwrap(), edge.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        if method != "HEAD" {
            let body = response.bytes().await.unwrap();
            assert_eq!(
                parse(&body),
                json!({"message": "Not Found"}),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_authorizer_answers_401_like_api_gateway_and_passes_claims() {
    let edge = Edge::start().await;
    let url = edge.url("/v1/artifacts");
    let wrong_secret = artifacts::auth::mint_hs256(
        b"not-the-secret-not-the-secret-not-the",
        &json!({"sub": "u", "org_id": "acme", "scope": "artifacts:read", "exp": 4_000_000_000i64}),
    );
    let expired = artifacts::auth::mint_hs256(
        harness::edge::SECRET.as_bytes(),
        &json!({"sub": "u", "org_id": "acme", "scope": "artifacts:read", "exp": 1}),
    );
    for auth in [
        None,
        Some("Bearer".to_string()),
        Some("Bearer not.a.token".to_string()),
        Some(format!("Bearer {wrong_secret}")),
        Some(format!("Bearer {expired}")),
        Some("Basic YTpi".to_string()),
    ] {
        let mut request = client().get(&url);
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let body = response.bytes().await.unwrap();
        assert_eq!(parse(&body), json!({"message": "Unauthorized"}), "{auth:?}");
    }
    assert!(
        edge.functions.last_event("artifacts-list").is_none(),
        "no function ran for a refused token"
    );
    // A valid token: the function runs its deployed auth path on the claims.
    let response = client()
        .get(&url)
        .bearer_auth(edge.writer("acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event = edge.functions.last_event("artifacts-list").unwrap();
    let claims = &event["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["org_id"], "acme");
    assert_eq!(claims["scope"], "artifacts:read artifacts:write");
    assert!(claims["exp"].is_string(), "claims are strings: {claims}");
    // The link route has no authorizer: the function answers it.
    let response = client()
        .get(edge.url("/v1/links/not-a-token"))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let event = edge.functions.last_event("artifacts-download").unwrap();
    assert!(event["requestContext"].get("authorizer").is_none());
}

#[tokio::test]
async fn array_scope_claims_reach_the_function_in_bracketed_form() {
    let edge = Edge::start().await;
    let token = edge.token("acme", json!(["artifacts:read", "artifacts:write"]));
    let response = client()
        .get(edge.url("/v1/artifacts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let event = edge.functions.last_event("artifacts-list").unwrap();
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"],
        "[artifacts:read artifacts:write]"
    );
    // What the function then makes of it is issue 10 item 9 (another change):
    // see `array_scope_claims_are_honoured_end_to_end` below.
    let _ = response;
}

/// Array scope claims, as API Gateway's authorizer hands them on (`[a b]`),
/// authorize like a space-separated string (shared/src/auth.rs).
#[tokio::test]
async fn array_scope_claims_are_honoured_end_to_end() {
    let edge = Edge::start().await;
    let token = edge.token("acme", json!(["artifacts:read", "artifacts:write"]));
    let (status, body) = put(&edge, &token, "scoped.md", b"x".to_vec()).await;
    assert_eq!(status, 201, "{body}");
    let response = client()
        .get(edge.url("/v1/artifacts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn responses_keep_their_headers() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    let (_, body) = put(&edge, &token, "r%C3%A9sum%C3%A9.md", b"0123456789".to_vec()).await;
    let id = body["artifact"]["artifactId"].as_str().unwrap();
    let response = client()
        .get(edge.url(&format!("/v1/artifacts/{id}/download")))
        .bearer_auth(&token)
        .header("range", "bytes=2-5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    let h = response.headers().clone();
    assert_eq!(h["content-range"], "bytes 2-5/10");
    assert_eq!(h["content-length"], "4");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("apigw-requestid"));
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''r%C3%A9sum%C3%A9.md")
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"2345");
    // The in-process invoker returns what the runtime would send: base64
    // for a binary body.
    let event = direct_event(
        "GET",
        &format!("/v1/artifacts/{id}/download"),
        json!({"artifactId": id}),
        "acme",
    );
    let payload = parse(
        &edge
            .functions
            .call("artifacts-download", &event)
            .await
            .unwrap(),
    );
    assert_eq!(payload["isBase64Encoded"], true);
    assert_eq!(
        STANDARD.decode(payload["body"].as_str().unwrap()).unwrap(),
        b"0123456789"
    );
}
