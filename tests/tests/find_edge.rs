//! Finding artifacts at the edge (issue 13): the by-path and HEAD routes,
//! repeated `label=`, the library's size order and the resolve route through the local gateway's real
//! loopback listener with an ordinary client, as a user reaches them.

use harness::edge::{Edge, client};
use serde_json::{Value, json};

const WF: &str = "run-edge";

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

async fn put(
    edge: &Edge,
    token: &str,
    encoded: &str,
    body: &[u8],
    labels: &[(&str, &str)],
) -> Value {
    let mut request = client()
        .put(edge.url(&format!("/v1/workflows/{WF}/artifacts/{encoded}")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .header("x-artifact-content-type", "text/plain");
    for (k, v) in labels {
        request = request.header(format!("x-artifact-meta-{k}"), *v);
    }
    let response = request.body(body.to_vec()).send().await.unwrap();
    assert_eq!(response.status(), 201);
    parse(&response.bytes().await.unwrap())
}

#[tokio::test]
async fn by_path_head_and_labels_through_the_gateway() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    let other = edge.writer("zenith");
    // (what the client puts in the URL, the stored path)
    let paths = [
        ("my%20file.md", "my file.md"),
        ("100%2525.md", "100%25.md"),
        ("%E6%97%A5%E6%9C%AC/%E6%96%87%E6%9B%B8.md", "日本/文書.md"),
        ("caf%C3%A9/r%C3%A9sum%C3%A9.txt", "café/résumé.txt"),
    ];
    for (i, (encoded, stored)) in paths.iter().enumerate() {
        let body = format!("content {i}");
        let created = put(
            &edge,
            &token,
            encoded,
            body.as_bytes(),
            &[
                ("env", if i % 2 == 0 { "prod" } else { "dev" }),
                ("team", "a,b"),
            ],
        )
        .await;
        assert_eq!(created["artifact"]["path"], *stored);
        let url = edge.url(&format!("/v1/workflows/{WF}/artifacts/{encoded}"));
        let got = client().get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(got.status(), 200, "{encoded}");
        let headers = got.headers().clone();
        assert_eq!(got.bytes().await.unwrap(), body.as_bytes(), "{encoded}");
        // The function saw the decoded path once.
        let event = edge.functions.last_event("artifacts-download").unwrap();
        assert_eq!(event["pathParameters"]["path"], *stored);
        // HEAD: the same headers, no body.
        let head = client()
            .head(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        for name in [
            "content-type",
            "content-length",
            "etag",
            "content-disposition",
            "x-artifact-version",
        ] {
            assert_eq!(
                head.headers().get(name),
                headers.get(name),
                "{encoded} {name}"
            );
        }
        assert!(head.bytes().await.unwrap().is_empty());
        // ?meta
        let meta = client()
            .get(format!("{url}?meta"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(meta.status(), 200);
        let meta = parse(&meta.bytes().await.unwrap());
        assert_eq!(meta["path"], *stored);
        assert_eq!(meta["metadata"]["team"], "a,b");
        // HEAD by id too.
        let id = meta["artifactId"].as_str().unwrap();
        let head = client()
            .head(edge.url(&format!("/v1/artifacts/{id}/download")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers().get("etag"), headers.get("etag"));
        // Another org: 404.
        let theirs = client().get(&url).bearer_auth(&other).send().await.unwrap();
        assert_eq!(theirs.status(), 404);
    }
    // Repeated label= reach the listing as separate values; a value with a
    // comma is one value (API Gateway joins repeats with commas in
    // queryStringParameters; the functions read rawQueryString).
    let listed = |query: &'static str| {
        let (edge, token) = (&edge, &token);
        async move {
            let r = client()
                .get(edge.url(&format!("/v1/workflows/{WF}/artifacts?{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = parse(&r.bytes().await.unwrap());
            (status, body)
        }
    };
    let (status, body) = listed("label=env%3Dprod&label=team%3Da%2Cb").await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<&str> = body["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["my file.md", "日本/文書.md"]);
    let (_, body) = listed("label=env=dev&label=team=a").await;
    assert!(body["artifacts"].as_array().unwrap().is_empty());
    let (_, body) = listed("q=R%C3%89SUM").await;
    assert_eq!(body["artifacts"][0]["path"], "café/résumé.txt");
    let (status, body) = listed("label=Env").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("label")));

    // The library by size (SPEC §14), largest first, with a label, one per
    // page: the cursor travels through the listener's query string.
    let big = put(&edge, &token, "big.txt", &[b'x'; 100], &[("env", "prod")]).await;
    let mut order = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut url = edge.url("/v1/artifacts?sort=size&order=desc&label=env%3Dprod&limit=1");
        if let Some(c) = &cursor {
            url = format!("{url}&cursor={c}");
        }
        let r = client().get(url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body = parse(&r.bytes().await.unwrap());
        for a in body["artifacts"].as_array().unwrap() {
            order.push((
                a["size"].as_u64().unwrap(),
                a["artifactId"].as_str().unwrap().to_owned(),
            ));
        }
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(order[0].1, big["artifact"]["artifactId"].as_str().unwrap());
    let mut expected = order.clone();
    expected.sort();
    expected.reverse();
    assert_eq!(order, expected, "size, then id, largest first");
    // Another org sees none of it; a bad order is a 400 naming sort.
    let r = client()
        .get(edge.url("/v1/artifacts?sort=size"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(parse(&r.bytes().await.unwrap())["artifacts"], json!([]));
    let r = client()
        .get(edge.url("/v1/artifacts?sort=bytes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(parse(&r.bytes().await.unwrap())["field"], "sort");
}

#[tokio::test]
async fn a_root_path_named_bundle_is_shadowed_by_the_bundle_route_and_reached_by_id() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    let created = put(&edge, &token, "bundle", b"not a zip", &[]).await;
    let id = created["artifact"]["artifactId"].as_str().unwrap();
    let shadowed = client()
        .get(edge.url(&format!("/v1/workflows/{WF}/artifacts/bundle")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(shadowed.status(), 200);
    assert_eq!(shadowed.headers()["content-type"], "application/zip");
    let by_id = client()
        .get(edge.url(&format!("/v1/artifacts/{id}/download")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.bytes().await.unwrap().as_ref(), b"not a zip");
    // HEAD has no bundle route: it describes the artifact named bundle.
    let head = client()
        .head(edge.url(&format!("/v1/workflows/{WF}/artifacts/bundle")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "9");
    // A deeper bundle is an ordinary path.
    put(&edge, &token, "x/bundle", b"deep", &[]).await;
    let deep = client()
        .get(edge.url(&format!("/v1/workflows/{WF}/artifacts/x/bundle")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deep.bytes().await.unwrap().as_ref(), b"deep");
}

#[tokio::test]
async fn resolve_through_the_gateway_and_follow_the_link() {
    let edge = Edge::start().await;
    let token = edge.writer("acme");
    put(&edge, &token, "in/a%20b.txt", b"one", &[]).await;
    put(&edge, &token, "in/a%20b.txt", b"two", &[]).await;
    let r = client()
        .post(edge.url("/v1/resolve"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json!({"refs": [format!("artifact://{WF}/in/a b.txt@1"), "nope"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = parse(&r.bytes().await.unwrap());
    assert_eq!(body["results"][0]["version"], 1);
    assert_eq!(body["results"][1]["problem"]["status"], 400);
    let url = body["results"][0]["url"].as_str().unwrap();
    let token_part = url.rsplit('/').next().unwrap();
    let served = client()
        .get(edge.url(&format!("/v1/links/{token_part}")))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), b"one");
    let bad = client()
        .post(edge.url("/v1/resolve"))
        .bearer_auth(&token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
