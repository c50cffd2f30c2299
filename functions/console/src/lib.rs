//! `GET /` and `GET /console/{proxy+}`: the web console (SPEC §17), a
//! single-page app served from assets embedded at compile time (build.rs
//! embeds `web/dist`, built by Vite from `web/`), on the API's own origin.
//!
//! - `/` and every path under `/console/` that is not a file serve
//!   `index.html` (the app routes in the browser: `/console/runs/{id}`, …),
//!   never cached, so a deploy takes effect at once;
//! - `/console/assets/*` are Vite's content-hashed files: cached for a year,
//!   `immutable` (a new build has new names);
//! - every answer carries a strict policy: a CSP with no inline script or
//!   style, no framing, no referrer, no sniffing. `connect-src` names the
//!   API's own origin and the object store's, which the browser reaches for
//!   presigned uploads and for large downloads (303 to a presigned GET),
//!   and, when OIDC sign-in is configured, the issuer's origin (discovery)
//!   and the token endpoint's (the issuer's unless configured apart);
//! - `/console/config.json` is the sign-in configuration (`no-store`):
//!   `{"oidc": {"issuer", "clientId", "scopes"}}`, or `{"oidc": null}` when
//!   no client id is configured (dev sign-in by token only).
//!
//! No principal is needed to load the app (it holds no data); every API call
//! it makes carries the user's token.

use artifacts::Error;
use artifacts::http::{self, Route};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

const ROOT: &str = "/";
const CONSOLE: &str = "/console/{proxy+}";
/// What this function serves; any other method on these paths is 405.
pub const ROUTES: &[Route] = &[(Method::GET, ROOT), (Method::GET, CONSOLE)];

/// Hashed asset names live here (Vite's `build.assetsDir`).
const HASHED_DIR: &str = "assets/";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
/// The sign-in configuration's file name under `/console/`.
const CONFIG: &str = "config.json";
const NO_STORE: &str = "no-store";

/// Scopes asked for when `ARTIFACTS_OIDC_SCOPES` is not set.
pub const DEFAULT_SCOPES: &str = "openid artifacts:read artifacts:write";

/// Deployed sign-in: OIDC authorization code + PKCE (SPEC §17), done by the
/// browser against `issuer` (its discovery document) as the public client
/// `client_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    /// The token endpoint's origin when it is not the issuer's (Cognito:
    /// discovery on `cognito-idp.<region>.amazonaws.com`, token endpoint on
    /// the hosted UI's domain).
    pub token_origin: Option<String>,
}

impl Oidc {
    /// From `ARTIFACTS_OIDC_ISSUER`, `ARTIFACTS_OIDC_CLIENT_ID`,
    /// `ARTIFACTS_OIDC_SCOPES` (optional) and `ARTIFACTS_OIDC_TOKEN_ORIGIN`
    /// (optional); `None` when no client id is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(client_id) = get("ARTIFACTS_OIDC_CLIENT_ID") else {
            return Ok(None);
        };
        if !client_id
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            return Err(format!(
                "ARTIFACTS_OIDC_CLIENT_ID {client_id:?} is not a client id"
            ));
        }
        let issuer = get("ARTIFACTS_OIDC_ISSUER")
            .ok_or("ARTIFACTS_OIDC_ISSUER must be set when ARTIFACTS_OIDC_CLIENT_ID is")?;
        if origin(&issuer).is_none_or(|o| !secure_origin(&o)) {
            return Err(format!(
                "ARTIFACTS_OIDC_ISSUER {issuer:?} is not an https URL (http only on loopback)"
            ));
        }
        let scopes = get("ARTIFACTS_OIDC_SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
        if !scopes.split(' ').all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        }) {
            return Err(format!(
                "ARTIFACTS_OIDC_SCOPES {scopes:?} must be scope names separated by single spaces"
            ));
        }
        let token_origin = match get("ARTIFACTS_OIDC_TOKEN_ORIGIN") {
            None => None,
            Some(url) => Some(
                origin(&url)
                    .filter(|o| secure_origin(o) && url.trim_end_matches('/') == o)
                    .ok_or_else(|| {
                        format!(
                            "ARTIFACTS_OIDC_TOKEN_ORIGIN {url:?} is not an https origin \
                             (scheme://host[:port], no path)"
                        )
                    })?,
            ),
        };
        Ok(Some(Oidc {
            issuer,
            client_id,
            scopes,
            token_origin,
        }))
    }

    /// The origins the browser reaches: the issuer's (discovery and, unless
    /// configured apart, the token endpoint) and the token endpoint's.
    fn origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = origin(&self.issuer).into_iter().collect();
        if let Some(token) = &self.token_origin
            && !origins.contains(token)
        {
            origins.push(token.clone());
        }
        origins
    }
}

/// The console's configuration: the origins the browser may connect to
/// besides its own, and the sign-in it offers.
#[derive(Debug, Clone)]
pub struct Console {
    csp: String,
    config: String,
}

impl Console {
    /// `extra_connect`: origins (scheme://host[:port]) for `connect-src`;
    /// dev sign-in only.
    pub fn new(extra_connect: &[String]) -> Self {
        Self::with_oidc(extra_connect, None)
    }

    /// As [`Console::new`], offering OIDC sign-in when `oidc` is given.
    pub fn with_oidc(extra_connect: &[String], oidc: Option<Oidc>) -> Self {
        let mut connect = vec!["'self'".to_owned()];
        connect.extend(extra_connect.iter().cloned());
        if let Some(oidc) = &oidc {
            for o in oidc.origins() {
                if !connect.contains(&o) {
                    connect.push(o);
                }
            }
        }
        let config = serde_json::json!({
            "oidc": oidc.as_ref().map(|o| serde_json::json!({
                "issuer": o.issuer,
                "clientId": o.client_id,
                "scopes": o.scopes,
            })),
        })
        .to_string();
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; \
             img-src 'self' blob: data:; font-src 'self'; connect-src {}; \
             manifest-src 'self'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'; object-src 'none'",
            connect.join(" ")
        );
        Console { csp, config }
    }

    /// The object store's origin: the emulator's (`AWS_ENDPOINT_URL`, path-
    /// style) or the bucket's regional S3 endpoints; OIDC sign-in as
    /// [`Oidc::from_lookup`] reads it.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let oidc = Oidc::from_lookup(&lookup)?;
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(endpoint) = get("AWS_ENDPOINT_URL") {
            let origin = origin(&endpoint)
                .ok_or_else(|| format!("AWS_ENDPOINT_URL {endpoint:?} is not an http(s) URL"))?;
            return Ok(Self::with_oidc(&[origin], oidc));
        }
        let bucket = get("ARTIFACTS_BUCKET").ok_or("ARTIFACTS_BUCKET must be set")?;
        let region = get("AWS_REGION").ok_or("AWS_REGION must be set")?;
        if !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err("ARTIFACTS_BUCKET / AWS_REGION are not valid S3 names".into());
        }
        Ok(Self::with_oidc(
            &[
                format!("https://{bucket}.s3.{region}.amazonaws.com"),
                format!("https://{bucket}.s3.amazonaws.com"),
            ],
            oidc,
        ))
    }

    pub fn content_security_policy(&self) -> &str {
        &self.csp
    }

    /// The body of `/console/config.json`.
    pub fn sign_in_config(&self) -> &str {
        &self.config
    }
}

/// https, or http on a loopback host (local tests and `make dev`).
fn secure_origin(origin: &str) -> bool {
    origin.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|h| origin == *h || origin.strip_prefix(h).is_some_and(|p| p.starts_with(':')))
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    // Host names, IPv4/IPv6 literals and a port only: nothing that could
    // end a CSP directive or add a source to it.
    if authority.is_empty()
        || !authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

pub async fn handler(
    console: &Console,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let result = serve(console, &req);
    let mut response = http::finish(&req, result);
    secure(console, &mut response);
    Ok(response)
}

#[tracing::instrument(skip_all)]
fn serve(console: &Console, req: &Request) -> artifacts::Result<Response<Body>> {
    let route = http::route(req, ROUTES)?;
    let wanted = if route.path == ROOT {
        "index.html"
    } else {
        route.param("proxy")
    };
    if route.path == CONSOLE && wanted == CONFIG {
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, NO_STORE)
            .body(Body::Text(console.sign_in_config().to_owned()))
            .map_err(|e| Error::upstream("console", e));
    }
    if let Some(bytes) = asset(wanted) {
        let cache = if wanted.starts_with(HASHED_DIR) {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        return file(wanted, bytes, cache);
    }
    // A missing hashed file is a 404 (an old page asking for a file of a
    // previous build must not get HTML as script); other paths are the
    // app's own routes.
    if wanted.starts_with(HASHED_DIR) || wanted.rsplit('/').next().is_some_and(|s| s.contains('.'))
    {
        return Err(Error::NotFound("file"));
    }
    let index = asset("index.html").ok_or(Error::NotFound("file"))?;
    file("index.html", index, NO_CACHE)
}

fn asset(name: &str) -> Option<&'static [u8]> {
    assets::ASSETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

fn file(
    name: &str,
    bytes: &'static [u8],
    cache: &'static str,
) -> artifacts::Result<Response<Body>> {
    let content_type = content_type(name);
    let body = if content_type.starts_with("text/")
        || content_type.starts_with("application/javascript")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
    {
        Body::Text(String::from_utf8_lossy(bytes).into_owned())
    } else {
        Body::Binary(bytes.to_vec())
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .body(body)
        .map_err(|e| Error::upstream("console", e))
}

/// The type of a built file, by extension (what Vite emits).
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "application/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The headers every answer carries, errors included.
fn secure(console: &Console, response: &mut Response<Body>) {
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-security-policy", console.content_security_policy());
    set("x-frame-options", "DENY");
    set("referrer-policy", "no-referrer");
    set("x-content-type-options", "nosniff");
    set("cross-origin-opener-policy", "same-origin");
    set("cross-origin-resource-policy", "same-origin");
    set(
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    set("strict-transport-security", "max-age=31536000");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("http://127.0.0.1:4566").as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(
            origin("https://s3.example.com/x?y").as_deref(),
            Some("https://s3.example.com")
        );
        for bad in [
            "https://a;b",
            "https://a'b",
            "ftp://x",
            "127.0.0.1:4566",
            "http://",
            "http://u@h",
            "http://a b",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_policy_names_the_object_store() {
        let local = Console::from_lookup(|n| {
            (n == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:4566/".to_owned())
        })
        .unwrap();
        assert!(
            local
                .content_security_policy()
                .contains("connect-src 'self' http://127.0.0.1:4566;")
        );
        let deployed = Console::from_lookup(|n| match n {
            "ARTIFACTS_BUCKET" => Some("art-bucket-1".into()),
            "AWS_REGION" => Some("eu-west-1".into()),
            _ => None,
        })
        .unwrap();
        let csp = deployed.content_security_policy();
        assert!(csp.contains("https://art-bucket-1.s3.eu-west-1.amazonaws.com"));
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(Console::from_lookup(|_| None).is_err());
        let injected = Console::from_lookup(|n| match n {
            "ARTIFACTS_BUCKET" => Some("b; script-src *".into()),
            "AWS_REGION" => Some("eu-west-1".into()),
            _ => None,
        });
        assert!(injected.is_err());
    }

    fn oidc_env(name: &str) -> Option<String> {
        match name {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4566".into()),
            "ARTIFACTS_OIDC_ISSUER" => {
                Some("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab".into())
            }
            "ARTIFACTS_OIDC_CLIENT_ID" => Some("5abc".into()),
            "ARTIFACTS_OIDC_TOKEN_ORIGIN" => {
                Some("https://acme.auth.eu-west-1.amazoncognito.com".into())
            }
            _ => None,
        }
    }

    #[tokio::test]
    async fn the_sign_in_configuration_and_its_origins() {
        // Not configured: dev sign-in only, nothing added to the policy.
        let dev = Console::from_lookup(|n| {
            (n == "AWS_ENDPOINT_URL" || n == "ARTIFACTS_OIDC_ISSUER")
                .then(|| "https://127.0.0.1:4566".to_owned())
        })
        .unwrap();
        assert_eq!(dev.sign_in_config(), r#"{"oidc":null}"#);
        assert!(
            dev.content_security_policy()
                .contains("connect-src 'self' https://127.0.0.1:4566;")
        );

        let console = Console::from_lookup(oidc_env).unwrap();
        let config: serde_json::Value = serde_json::from_str(console.sign_in_config()).unwrap();
        assert_eq!(
            config,
            serde_json::json!({"oidc": {
                "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab",
                "clientId": "5abc",
                "scopes": DEFAULT_SCOPES,
            }})
        );
        assert!(console.content_security_policy().contains(
            "connect-src 'self' http://127.0.0.1:4566 https://cognito-idp.eu-west-1.amazonaws.com \
             https://acme.auth.eu-west-1.amazoncognito.com;"
        ), "{}", console.content_security_policy());

        // Served at /console/config.json, never cached, with the policy.
        let req = lambda_http::http::Request::builder()
            .uri("/console/config.json")
            .body(Body::Empty)
            .unwrap();
        let response = handler(&console, req).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], NO_STORE);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(matches!(response.body(), Body::Text(t) if t == console.sign_in_config()));
        assert!(response.headers().contains_key("content-security-policy"));

        // Bad configuration fails at cold start, naming the variable.
        let with = |name: &'static str, value: &'static str| {
            Console::from_lookup(move |n| {
                if n == name {
                    Some(value.to_owned())
                } else {
                    oidc_env(n)
                }
            })
        };
        for (name, value) in [
            ("ARTIFACTS_OIDC_ISSUER", "http://idp.example.com"),
            (
                "ARTIFACTS_OIDC_ISSUER",
                "https://idp.example.com; script-src *",
            ),
            ("ARTIFACTS_OIDC_ISSUER", ""),
            ("ARTIFACTS_OIDC_CLIENT_ID", "a\"b"),
            ("ARTIFACTS_OIDC_SCOPES", "openid  x"),
            (
                "ARTIFACTS_OIDC_TOKEN_ORIGIN",
                "https://acme.example.com/oauth2/token",
            ),
            ("ARTIFACTS_OIDC_TOKEN_ORIGIN", "ftp://acme.example.com"),
        ] {
            let err = with(name, value).unwrap_err();
            assert!(err.contains(name), "{name}={value:?}: {err}");
        }
        // Loopback http is fine (tests), a trailing slash on the origin too.
        assert!(with("ARTIFACTS_OIDC_ISSUER", "http://127.0.0.1:8080/realm").is_ok());
        assert!(with("ARTIFACTS_OIDC_TOKEN_ORIGIN", "https://a.example.com/").is_ok());
    }

    async fn get(method: &str, path: &str) -> Response<Body> {
        let req = lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::Empty)
            .unwrap();
        handler(&Console::new(&[]), req).await.unwrap()
    }

    #[tokio::test]
    async fn the_app_its_files_and_nothing_else() {
        let index = get("GET", "/").await;
        assert_eq!(index.status(), 200);
        assert_eq!(index.headers()["cache-control"], NO_CACHE);
        let Body::Text(html) = index.body() else {
            panic!("index.html as text")
        };
        // The app's own routes get the app; files that are not there do not.
        for path in [
            "/console/library",
            "/console/runs/wf-1",
            "/console/artifacts/abc",
        ] {
            let response = get("GET", path).await;
            assert_eq!(response.status(), 200, "{path}");
            assert!(
                matches!(response.body(), Body::Text(t) if t == html),
                "{path}"
            );
        }
        for path in [
            "/console/assets/nope.js",
            "/console/robots.txt",
            "/console/a/b.css",
        ] {
            let response = get("GET", path).await;
            assert_eq!(response.status(), 404, "{path}");
            assert_eq!(response.headers()["x-frame-options"], "DENY", "{path}");
        }
        let hashed = assets::ASSETS
            .iter()
            .find(|(n, _)| n.starts_with(HASHED_DIR))
            .map(|(n, _)| *n)
            .expect("a hashed file in the build");
        let response = get("GET", &format!("/console/{hashed}")).await;
        assert_eq!(response.headers()["cache-control"], IMMUTABLE);
        // Another method on a console path is 405 with Allow, never the app.
        let post = get("POST", "/console/library").await;
        assert_eq!(post.status(), 405);
        assert_eq!(post.headers()["allow"], "GET");
    }

    #[test]
    fn types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert!(content_type("assets/index-abc.js").starts_with("application/javascript"));
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
