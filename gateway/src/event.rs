//! HTTP API payload format 2.0: the event API Gateway hands a function, built
//! from one HTTP request the way the real gateway builds it, and the JWT
//! authorizer's part of it.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use crate::routes::Matched;

/// What a request carries.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: String,
    /// The request's path as the gateway hands it on: [`gateway_path`].
    pub path: String,
    /// The request target's query, without `?`, still encoded.
    pub raw_query: String,
    /// Header names as received (any case), in order, repeated names kept.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub source_ip: String,
    pub protocol: String,
}

/// The path as HTTP APIs hand it on and route it: percent-decoded once (so
/// `rawPath`, `requestContext.http.path` and the path parameters are all
/// decoded; `%2F` becomes a `/` that separates segments) and cut at a
/// decoded `?` or `#`, which therefore cannot travel in a path. `None` when
/// the decoded path is not UTF-8 (answered 400 here).
pub fn gateway_path(raw_path: &str) -> Option<String> {
    let decoded = percent_decode_str(raw_path).decode_utf8().ok()?;
    let end = decoded.find(['?', '#']).unwrap_or(decoded.len());
    Some(decoded[..end].to_owned())
}

/// Content types HTTP APIs hand over as text; everything else (including no
/// `Content-Type` at all) arrives base64-encoded. HTTP APIs have no
/// `binaryMediaTypes`; this split was observed against real AWS (payload
/// 2.0, Lambda proxy): `text/*`, `application/json`, `application/xml`,
/// `application/javascript` are text, `application/x-www-form-urlencoded`
/// is not.
pub fn is_text_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json" | "application/xml" | "application/javascript"
        )
}

/// The body and `isBase64Encoded`. A text type whose bytes are not UTF-8
/// travels base64-encoded too: a JSON string cannot hold them, and base64 is
/// always safe for the function (it honours `isBase64Encoded`).
pub fn encode_body(content_type: Option<&str>, body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    if is_text_type(content_type)
        && let Ok(text) = std::str::from_utf8(body)
    {
        return (Some(text.to_owned()), false);
    }
    (Some(STANDARD.encode(body)), true)
}

/// A query component as `queryStringParameters` shows it (`+` is a space).
fn decode_query(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// The authorizer's claims, as an HTTP API JWT authorizer passes them to the
/// function: every value a string; arrays in API Gateway's bracketed form
/// `"[a b]"`; numbers and booleans as their JSON text; objects as JSON.
pub fn claims_as_api_gateway(payload: &Map<String, Value>) -> Map<String, Value> {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    payload
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let rendered = match v {
                Value::Array(items) => {
                    format!("[{}]", items.iter().map(text).collect::<Vec<_>>().join(" "))
                }
                other => text(other),
            };
            (k.clone(), Value::String(rendered))
        })
        .collect()
}

/// The JWT authorizer, emulated with the dev HS256 secret: the claims of a
/// valid bearer token, `None` for a missing or invalid one (API Gateway's
/// 401). Verification is `artifacts::auth::verify_hs256` (signature, `alg`,
/// `exp`, `nbf`); the claims are then rendered from the token's payload the
/// way API Gateway renders them.
pub fn authorize(
    secret: &[u8],
    authorization: Option<&str>,
    now: i64,
) -> Option<Map<String, Value>> {
    let header = authorization?.trim();
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => return None,
        None => header,
    };
    artifacts::auth::verify_hs256(secret, token, now).ok()?;
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let payload: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    Some(claims_as_api_gateway(&payload))
}

/// Fixed parts of the request context of this local API.
#[derive(Debug, Clone)]
pub struct Stage {
    pub account_id: String,
    pub api_id: String,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            account_id: "000000000000".into(),
            api_id: "local".into(),
        }
    }
}

/// Build the payload 2.0 event for `incoming` on the matched route.
pub fn build(
    stage: &Stage,
    incoming: &Incoming,
    matched: &Matched<'_>,
    claims: Option<Map<String, Value>>,
    request_id: &str,
    now: time::OffsetDateTime,
) -> Value {
    // Headers: lower-case names, repeated ones joined with commas; cookies
    // move to `cookies`, as HTTP APIs do.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &incoming.headers {
        let name = name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(value).into_owned();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        headers
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    headers
        .entry("x-forwarded-for".into())
        .or_insert_with(|| incoming.source_ip.clone());
    headers
        .entry("x-forwarded-proto".into())
        .or_insert_with(|| "http".into());
    let host = headers.get("host").cloned().unwrap_or_default();
    if let Some(port) = host.rsplit_once(':').map(|(_, p)| p.to_owned()) {
        headers.entry("x-forwarded-port".into()).or_insert(port);
    }

    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in incoming.raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(decode_query(k))
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&decode_query(v));
            })
            .or_insert_with(|| decode_query(v));
    }

    let path_parameters: Map<String, Value> = matched
        .params
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();

    let (body, is_base64_encoded) = encode_body(
        headers.get("content-type").map(String::as_str),
        &incoming.body,
    );
    let route_key = matched.route.key();
    let domain = host
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap_or_else(|| host.clone());
    let time_text = now
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();

    let mut context = json!({
        "accountId": stage.account_id,
        "apiId": stage.api_id,
        "domainName": domain,
        "domainPrefix": domain.split('.').next().unwrap_or_default(),
        "http": {
            "method": incoming.method,
            "path": incoming.path,
            "protocol": incoming.protocol,
            "sourceIp": incoming.source_ip,
            "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": time_text,
        "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }

    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": incoming.path,
        "rawQueryString": incoming.raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": is_base64_encoded,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = Value::Object(path_parameters);
    }
    if let Some(body) = body {
        event["body"] = Value::String(body);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Routes;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn text_or_base64_by_content_type() {
        for text in [
            "text/plain",
            "text/markdown; charset=utf-8",
            "application/json",
            "Application/XML",
            "application/javascript",
        ] {
            assert_eq!(
                encode_body(Some(text), b"hi"),
                (Some("hi".into()), false),
                "{text}"
            );
        }
        for binary in [
            None,
            Some("application/octet-stream"),
            Some("application/x-www-form-urlencoded"),
            Some("image/png"),
            Some("application/problem+json"),
        ] {
            assert_eq!(
                encode_body(binary, b"hi"),
                (Some("aGk=".into()), true),
                "{binary:?}"
            );
        }
        // Not UTF-8, though declared text: base64, byte-exact.
        assert_eq!(
            encode_body(Some("text/plain"), &[0xe9, 0x41]),
            (Some("6UE=".into()), true)
        );
        assert_eq!(encode_body(Some("text/plain"), b""), (None, false));
    }

    #[test]
    fn claims_are_strings_and_arrays_bracketed() {
        let payload = json!({
            "sub": "u1", "exp": 17, "admin": true,
            "scope": ["artifacts:read", "artifacts:write"], "none": null
        });
        let claims = claims_as_api_gateway(payload.as_object().unwrap());
        assert_eq!(
            Value::Object(claims),
            json!({"sub": "u1", "exp": "17", "admin": "true",
                   "scope": "[artifacts:read artifacts:write]"})
        );
    }

    #[test]
    fn the_authorizer_accepts_only_valid_dev_tokens() {
        let now = 1_800_000_000;
        let token = artifacts::auth::mint_hs256(
            SECRET,
            &json!({"sub": "u1", "org_id": "acme", "scope": ["a", "b"], "exp": now + 60}),
        );
        let claims = authorize(SECRET, Some(&format!("Bearer {token}")), now).unwrap();
        assert_eq!(claims["scope"], "[a b]");
        assert_eq!(claims["org_id"], "acme");
        assert!(authorize(SECRET, Some(&format!("bearer {token}")), now).is_some());
        assert!(authorize(SECRET, Some(&token), now).is_some());
        for bad in [
            None,
            Some(String::new()),
            Some("Basic abc".into()),
            Some(format!("Bearer {token}x")),
            Some(format!(
                "Bearer {}",
                artifacts::auth::mint_hs256(
                    b"another-secret-another-secret-xx",
                    &json!({"sub": "u1", "exp": now + 60})
                )
            )),
        ] {
            assert!(authorize(SECRET, bad.as_deref(), now).is_none(), "{bad:?}");
        }
        assert!(authorize(SECRET, Some(&token), now + 61).is_none());
    }

    #[test]
    fn events_are_built_like_api_gateway() {
        let routes = Routes::from_template(include_str!("../../infra/template.yaml")).unwrap();
        let path = gateway_path("/v1/workflows/wf%201/artifacts/caf%C3%A9/a+b%25%2F.md").unwrap();
        assert_eq!(path, "/v1/workflows/wf 1/artifacts/café/a+b%/.md");
        let matched = routes.find("PUT", &path).unwrap();
        let incoming = Incoming {
            method: "PUT".into(),
            path: path.clone(),
            raw_query: "artifactType=prd&x=1&x=2&q=a+b%26".into(),
            headers: vec![
                ("Host".into(), b"127.0.0.1:9000".to_vec()),
                ("X-Thing".into(), b"1".to_vec()),
                ("x-thing".into(), b"2".to_vec()),
                ("Cookie".into(), b"a=1; b=2".to_vec()),
                ("Content-Type".into(), b"application/octet-stream".to_vec()),
            ],
            body: vec![0, 1, 2],
            source_ip: "127.0.0.1".into(),
            protocol: "HTTP/1.1".into(),
        };
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let event = build(&Stage::default(), &incoming, &matched, None, "rid", now);
        assert_eq!(event["rawPath"], path);
        assert_eq!(event["requestContext"]["http"]["path"], path);
        assert_eq!(
            event["routeKey"],
            "PUT /v1/workflows/{workflowId}/artifacts/{path+}"
        );
        assert_eq!(
            event["pathParameters"],
            json!({"workflowId": "wf 1", "path": "café/a+b%/.md"})
        );
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(event["queryStringParameters"]["q"], "a b&");
        assert_eq!(event["headers"]["x-thing"], "1,2");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["body"], "AAEC");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["requestContext"]["stage"], "$default");
        assert_eq!(event["requestContext"]["domainName"], "127.0.0.1");
        assert_eq!(
            event["requestContext"]["time"],
            "15/Jan/2027:08:00:00 +0000"
        );
        assert_eq!(event["requestContext"]["timeEpoch"], 1_800_000_000_000i64);
        assert!(event["requestContext"].get("authorizer").is_none());
        // The event is one lambda_http reads, with the parameters as given.
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        use lambda_http::RequestExt;
        assert_eq!(
            request.path_parameters_ref().and_then(|p| p.first("path")),
            Some("café/a+b%/.md")
        );
        assert_eq!(request.body().as_ref(), &[0, 1, 2]);
    }

    #[test]
    fn paths_are_decoded_once_and_cut_at_a_decoded_query_or_fragment() {
        assert_eq!(gateway_path("/a/100%2525").unwrap(), "/a/100%25");
        assert_eq!(gateway_path("/a/what%3Fx=1").unwrap(), "/a/what");
        assert_eq!(gateway_path("/a/b%23c").unwrap(), "/a/b");
        assert_eq!(gateway_path("/a/%E6%97%A5%E6%9C%AC").unwrap(), "/a/日本");
        assert_eq!(gateway_path("/a/%").unwrap(), "/a/%");
        assert!(gateway_path("/a/%FF").is_none());
    }
}
