//! `POST /v1/resolve` (SPEC §14): `{refs: [...], expiresIn?}` → 200
//! `{results: [...]}`, one per ref in order: `{ref, artifact, version,
//! sha256, size, url, linkId, expiresAt}` or `{ref, problem}` (the problem
//! body that ref alone would have answered, through the one mapping).

use artifacts::auth::Principal;
use artifacts::http;
use artifacts::links;
use artifacts::resolve::MAX_REFS;
use artifacts::{Error, Result, Store};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

pub(crate) async fn resolve(
    store: &Store,
    req: &Request,
    principal: &Principal,
) -> Result<Response<Body>> {
    let (refs, expires_in) = parse(http::body_bytes(req))?;
    let base = super::links::base_url(store, req)?;
    let request_id = http::request_id(req);
    let outcomes = store
        .resolve(
            principal,
            &refs,
            expires_in,
            links::now(),
            &artifacts::audit::Origin::of(req),
        )
        .await?;
    let results: Vec<Value> = refs
        .iter()
        .zip(outcomes)
        .map(|(text, outcome)| match outcome {
            Ok(r) => json!({
                "ref": text,
                "artifact": r.artifact,
                "version": r.version,
                "sha256": r.sha256,
                "size": r.size,
                "url": links::link_url(&base, &r.link.token),
                "linkId": r.link.link_id,
                "expiresAt": links::rfc3339(r.link.expires_at),
            }),
            Err(e) => {
                let problem = http::problem(&e, &request_id);
                let body = match problem.body() {
                    Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                json!({ "ref": text, "problem": body })
            }
        })
        .collect();
    let mut response = http::json(StatusCode::OK, &json!({ "results": results }))?;
    // Link URLs are credentials.
    response.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The body: a JSON object with `refs` (1-100 strings) and an optional
/// `expiresIn`; anything else is a 400 naming the field.
fn parse(body: &[u8]) -> Result<(Vec<String>, Option<i64>)> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(Error::bad_request(
            "body",
            "must be a JSON object like {\"refs\": [\"artifact://run-1/report.json\"]}",
        ));
    };
    let mut refs = None;
    let mut expires_in = None;
    for (name, value) in &fields {
        match name.as_str() {
            "refs" => {
                let list = value
                    .as_array()
                    .filter(|l| !l.is_empty() && l.len() <= MAX_REFS)
                    .ok_or_else(|| {
                        Error::bad_request(
                            "refs",
                            format!("must be an array of 1 to {MAX_REFS} ref strings"),
                        )
                    })?;
                let texts = list
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::bad_request("refs", "every ref must be a string"))?;
                refs = Some(texts);
            }
            "expiresIn" => {
                expires_in = Some(value.as_i64().ok_or_else(|| {
                    Error::bad_request("expiresIn", "must be a whole number of seconds")
                })?);
            }
            other => {
                return Err(Error::bad_request(
                    "body",
                    format!(
                        "unknown field {:?}; the body takes refs and expiresIn",
                        other.chars().take(64).collect::<String>()
                    ),
                ));
            }
        }
    }
    let refs = refs.ok_or_else(|| Error::bad_request("refs", "is required"))?;
    Ok((refs, expires_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> &'static str {
        match parse(body.as_bytes()) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("{body} -> {other:?}"),
        }
    }

    #[test]
    fn bad_bodies_name_their_field() {
        let many = serde_json::to_string(&vec!["artifact://w/a"; 101]).unwrap();
        for (body, f) in [
            ("", "body"),
            ("not json", "body"),
            ("[]", "body"),
            ("{}", "refs"),
            ("{\"refs\": []}", "refs"),
            ("{\"refs\": \"artifact://w/a\"}", "refs"),
            ("{\"refs\": [1]}", "refs"),
            (&format!("{{\"refs\": {many}}}"), "refs"),
            ("{\"refs\": [\"x\"], \"expiresIn\": \"soon\"}", "expiresIn"),
            ("{\"refs\": [\"x\"], \"colour\": 1}", "body"),
        ] {
            assert_eq!(field(body), f, "{body}");
        }
        let (refs, exp) = parse(b"{\"refs\": [\"a\", \"b\"], \"expiresIn\": 60}").unwrap();
        assert_eq!((refs.len(), exp), (2, Some(60)));
    }
}
