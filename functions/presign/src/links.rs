//! Download links (SPEC §4, §8): create, list, revoke. The token is checked
//! and served by download's `GET /v1/links/{token}`.

use artifacts::audit::{Action, Origin, Subject};
use artifacts::auth::Principal;
use artifacts::http;
use artifacts::links::{self, NewLink};
use artifacts::{Error, Result, Store};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

/// `POST /v1/artifacts/{artifactId}/links` with `{version?, expiresIn?}`
/// (an empty body takes the defaults) → 201 `{url, linkId, version,
/// expiresAt, expiresIn}`.
pub(crate) async fn create(
    store: &Store,
    req: &Request,
    principal: &Principal,
    artifact_id: &str,
) -> Result<Response<Body>> {
    let new = parse_new_link(http::body_bytes(req))?;
    // Before anything is recorded: a link nobody can be told about is useless.
    let base = base_url(store, req)?;
    let origin = Origin::of(req);
    let link = match store
        .create_link(principal, artifact_id, new, links::now(), &origin)
        .await
    {
        Ok(link) => link,
        Err(e) => {
            let about = Subject {
                artifact_id: Some(artifact_id.to_owned()),
                ..Subject::default()
            };
            store
                .record_refusal(principal, &origin, Action::LinkCreated, about, &e)
                .await;
            return Err(e);
        }
    };
    http::json(
        StatusCode::CREATED,
        &json!({
            "url": links::link_url(&base, &link.token),
            "linkId": link.link_id,
            "version": link.version,
            "expiresAt": links::rfc3339(link.expires_at),
            "expiresIn": link.expires_in,
        }),
    )
}

/// `GET /v1/artifacts/{artifactId}/links` → `{links: [{linkId, version,
/// createdAt, createdBy, expiresAt, uses, lastUsedAt?}]}`, live links only.
pub(crate) async fn list(
    store: &Store,
    principal: &Principal,
    artifact_id: &str,
) -> Result<Response<Body>> {
    let links = store
        .live_links(principal, artifact_id, links::now())
        .await?;
    http::json(StatusCode::OK, &json!({ "links": links }))
}

/// `DELETE /v1/links/{linkId}` → 204.
pub(crate) async fn revoke(
    store: &Store,
    req: &Request,
    principal: &Principal,
    link_id: &str,
) -> Result<Response<Body>> {
    let origin = Origin::of(req);
    if let Err(e) = store
        .revoke_link(principal, link_id, links::now(), &origin)
        .await
    {
        store
            .record_refusal(
                principal,
                &origin,
                Action::LinkRevoked,
                Subject::default(),
                &e,
            )
            .await;
        return Err(e);
    }
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .map_err(|e| Error::upstream("http", e))
}

/// The request body: a JSON object with only `version` and `expiresIn`.
fn parse_new_link(body: &[u8]) -> Result<NewLink> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(NewLink::default());
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(Error::bad_request(
            "body",
            "must be a JSON object like {\"version\": 2, \"expiresIn\": 3600}",
        ));
    };
    let mut new = NewLink::default();
    for (name, value) in &fields {
        match (name.as_str(), value) {
            (_, Value::Null) if matches!(name.as_str(), "version" | "expiresIn") => {}
            ("version", v) => {
                new.version = Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                    Error::bad_request("version", "must be a whole number from 1")
                })?);
            }
            ("expiresIn", v) => {
                new.expires_in = Some(v.as_i64().ok_or_else(|| {
                    Error::bad_request("expiresIn", "must be a whole number of seconds")
                })?);
            }
            _ => {
                return Err(Error::bad_request(
                    "body",
                    "only version and expiresIn may be given",
                ));
            }
        }
    }
    Ok(new)
}

/// Where clients reach this API: `ARTIFACTS_PUBLIC_BASE_URL` when set (a
/// custom domain, or local development), else the host API Gateway was
/// called on. The template cannot pass the API's own URL to its functions
/// (a circular dependency), so the default deployment relies on the latter.
pub(crate) fn base_url(store: &Store, req: &Request) -> Result<String> {
    if let Some(base) = &store.config.public_base_url {
        return Ok(base.clone());
    }
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .domain_name
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(|domain| format!("https://{domain}"))
            .ok_or_else(|| Error::upstream("config", "no public base URL and no request domain")),
        _ => Err(Error::upstream(
            "config",
            "no public base URL and no request domain",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> &'static str {
        match parse_new_link(body.as_bytes()) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("{body} -> {other:?}"),
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_new_link(b"").unwrap(), NewLink::default());
        assert_eq!(parse_new_link(b" \n").unwrap(), NewLink::default());
        assert_eq!(parse_new_link(b"{}").unwrap(), NewLink::default());
        assert_eq!(
            parse_new_link(br#"{"version": null, "expiresIn": null}"#).unwrap(),
            NewLink::default()
        );
        assert_eq!(
            parse_new_link(br#"{"version": 2, "expiresIn": 60}"#).unwrap(),
            NewLink {
                version: Some(2),
                expires_in: Some(60)
            }
        );
        // Out of range is the store's call (400 there too), not a parse error.
        assert_eq!(
            parse_new_link(br#"{"expiresIn": -5}"#).unwrap().expires_in,
            Some(-5)
        );
        for (body, expected) in [
            ("[]", "body"),
            ("not json", "body"),
            ("\"x\"", "body"),
            (r#"{"expiresInSeconds": 60}"#, "body"),
            (r#"{"version": 0}"#, "version"),
            (r#"{"version": -1}"#, "version"),
            (r#"{"version": "2"}"#, "version"),
            (r#"{"version": 1.5}"#, "version"),
            (r#"{"expiresIn": "3600"}"#, "expiresIn"),
            (r#"{"expiresIn": 60.5}"#, "expiresIn"),
            (r#"{"expiresIn": 1e30}"#, "expiresIn"),
        ] {
            assert_eq!(field(body), expected, "{body}");
        }
    }
}
