//! The listener: HTTP/1.1 on loopback, one task per connection. Each request
//! is routed, authorized, turned into a payload 2.0 event, handed to the
//! function, and the function's response is written back as API Gateway
//! writes it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as IncomingBody;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::event::{self, Incoming, Stage};
use crate::invoke::{Invoke, InvokeError};
use crate::routes::Routes;

/// HTTP APIs accept request payloads up to 10 MB.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Lambda's limit on a synchronous invocation's request and response
/// payloads (6 MB); an event or a response over it is an error there too.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// Everything a request needs.
pub struct Gateway {
    pub routes: Routes,
    pub invoker: Arc<dyn Invoke>,
    /// The dev HS256 secret the emulated JWT authorizer verifies with; no
    /// secret means every guarded route answers 401.
    pub jwt_secret: Option<Vec<u8>>,
    pub stage: Stage,
}

type Reply = Response<Full<Bytes>>;

/// API Gateway's own answers: a JSON `message`.
fn message(status: StatusCode, text: &str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(format!(
        "{{\"message\":\"{text}\"}}"
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl Gateway {
    /// Bind `addr` (loopback only) and serve until the task is dropped or
    /// aborted. Returns the bound address (port 0 picks a free one).
    pub async fn serve(
        self: Arc<Self>,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the local gateway binds loopback only, not {addr}"),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let gateway = Arc::clone(&self);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let gateway = Arc::clone(&gateway);
                        async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
                    });
                    if let Err(e) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
        });
        Ok((bound, task))
    }

    /// One request, start to finish.
    pub async fn handle(&self, req: Request<IncomingBody>, peer: SocketAddr) -> Reply {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut reply = self.answer(req, peer, &request_id).await;
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            reply.headers_mut().insert("apigw-requestid", v);
        }
        reply
    }

    async fn answer(
        &self,
        req: Request<IncomingBody>,
        peer: SocketAddr,
        request_id: &str,
    ) -> Reply {
        let (parts, body) = req.into_parts();
        let method = parts.method.as_str().to_owned();
        let head = parts.method == hyper::Method::HEAD;
        let raw_query = parts.uri.query().unwrap_or_default().to_owned();
        let Some(path) = event::gateway_path(parts.uri.path()) else {
            return message(StatusCode::BAD_REQUEST, "Bad Request");
        };
        let Some(matched) = self.routes.find(&method, &path) else {
            tracing::info!(%method, %path, "no route");
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        let claims = if matched.route.authorized {
            let authorization = parts
                .headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let verified = self
                .jwt_secret
                .as_deref()
                .and_then(|secret| event::authorize(secret, authorization, now));
            match verified {
                Some(claims) => Some(claims),
                None => {
                    let mut reply = message(StatusCode::UNAUTHORIZED, "Unauthorized");
                    reply.headers_mut().insert(
                        hyper::header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer"),
                    );
                    return reply;
                }
            }
        } else {
            None
        };
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        };
        let incoming = Incoming {
            method,
            path,
            raw_query,
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body,
            source_ip: "127.0.0.1".into(),
            protocol: format!("{:?}", parts.version),
        };
        let _ = peer; // loopback only: the source is always 127.0.0.1
        let now = time::OffsetDateTime::now_utc();
        let event = event::build(&self.stage, &incoming, &matched, claims, request_id, now);
        let event = match serde_json::to_vec(&event) {
            Ok(bytes) if bytes.len() <= MAX_PAYLOAD_BYTES => bytes,
            Ok(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
            Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        };
        let function = &matched.route.function;
        match self.invoker.invoke(function, event).await {
            Ok(payload) if payload.len() > MAX_PAYLOAD_BYTES => {
                tracing::error!(
                    function,
                    bytes = payload.len(),
                    "response over Lambda's 6 MB limit"
                );
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Ok(payload) => match to_http(&payload) {
                Ok(mut reply) => {
                    if head {
                        keep_head_length(&payload, &mut reply);
                    }
                    reply
                }
                Err(why) => {
                    tracing::error!(function, why, "malformed function response");
                    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                }
            },
            Err(InvokeError::Timeout) => {
                tracing::error!(function, "function timed out");
                message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
            Err(e) => {
                tracing::error!(function, error = %e, "invocation failed");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// A `HEAD` answer has no body to measure: the function's own
/// `Content-Length` (the length a `GET` would send) is the one to keep.
fn keep_head_length(payload: &[u8], reply: &mut Reply) {
    let length = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("headers")?
                .get("content-length")?
                .as_str()
                .map(str::to_owned)
        })
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|l| HeaderValue::from_str(&l).ok());
    if let Some(length) = length {
        reply
            .headers_mut()
            .insert(hyper::header::CONTENT_LENGTH, length);
    }
}

/// A function's payload 2.0 response → HTTP, as API Gateway maps it:
/// `statusCode`, `headers` (a value may hold several, comma-joined),
/// `multiValueHeaders`, `cookies` (one `Set-Cookie` each), `body` decoded
/// from base64 when `isBase64Encoded`. A JSON answer without `statusCode` is
/// a 200 `application/json` with that JSON as the body.
pub fn to_http(payload: &[u8]) -> Result<Reply, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let Some(status) = value.get("statusCode") else {
        let mut response = Response::new(Full::new(Bytes::copy_from_slice(payload)));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    };
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or("bad statusCode")?;
    let body = match value.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if value.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            STANDARD
                .decode(text)
                .map_err(|e| format!("body is not base64: {e}"))?
        }
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut add = |name: &str, value: &str| -> Result<(), String> {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name}: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("header {name}: {e}"))?;
        headers.append(name, value);
        Ok(())
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(map) = value.get("headers").and_then(Value::as_object) {
        for (name, v) in map {
            add(name, &text(v))?;
        }
    }
    if let Some(map) = value.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            for v in values.as_array().into_iter().flatten() {
                add(name, &text(v))?;
            }
        }
    }
    if let Some(cookies) = value.get("cookies").and_then(Value::as_array) {
        for cookie in cookies {
            add("set-cookie", &text(cookie))?;
        }
    }
    // The body's length is the one hyper writes; a function's own
    // Content-Length must not disagree with it.
    headers.remove(hyper::header::CONTENT_LENGTH);
    headers.remove(hyper::header::TRANSFER_ENCODING);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn body_of(reply: Reply) -> Vec<u8> {
        reply
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn responses_map_back_faithfully() {
        let bytes: Vec<u8> = (0..=255).collect();
        let payload = json!({
            "statusCode": 206,
            "headers": {"content-type": "application/octet-stream", "x-a": "1, 2", "content-length": "999"},
            "multiValueHeaders": {"x-b": ["3", "4"]},
            "cookies": ["c=1; Path=/", "d=2"],
            "body": STANDARD.encode(&bytes),
            "isBase64Encoded": true,
        });
        let reply = to_http(payload.to_string().as_bytes()).unwrap();
        assert_eq!(reply.status(), 206);
        let h = reply.headers();
        assert_eq!(h["x-a"], "1, 2");
        assert_eq!(h.get_all("x-b").iter().count(), 2);
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
        assert!(h.get("content-length").is_none());
        assert_eq!(body_of(reply).await, bytes);

        let text = json!({"statusCode": 200, "body": "héllo", "isBase64Encoded": false});
        assert_eq!(
            body_of(to_http(text.to_string().as_bytes()).unwrap()).await,
            "héllo".as_bytes()
        );

        let bare = to_http(br#"{"a":1}"#).unwrap();
        assert_eq!(bare.status(), 200);
        assert_eq!(bare.headers()["content-type"], "application/json");

        for bad in [
            &b"nope"[..],
            br#"{"statusCode": 99}"#,
            br#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
        ] {
            assert!(to_http(bad).is_err());
        }
    }
}
