//! Who is calling (SPEC §9).
//!
//! Deployed, API Gateway's JWT authorizer has already validated the token and
//! hands us its claims. Locally (`ARTIFACTS_AUTH_MODE=dev`) we verify an HS256
//! bearer token ourselves and read the same claims. Either way the result is a
//! [`Principal`]; without one, every route but links answers 401.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::AuthMode;
use crate::error::{Error, Result};

/// The claim carrying the tenant.
pub const ORG_CLAIM: &str = "org_id";

/// A permission the caller must hold for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    /// Legal holds, immediate purge, audit (SPEC §3).
    Admin,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "artifacts:read",
            Scope::Write => "artifacts:write",
            Scope::Admin => "artifacts:admin",
        }
    }
}

/// An authenticated caller. `org` is validated to be safe as a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org: String,
    pub subject: String,
    pub scopes: Vec<String>,
}

impl Principal {
    /// Fail with 403 unless the principal holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.iter().any(|s| s == scope.as_str()) {
            Ok(())
        } else {
            Err(Error::Forbidden(scope.as_str()))
        }
    }

    /// Build a principal from JWT claims (string values, as API Gateway passes them).
    ///
    /// `scope` (else `scp`) may be a space-separated string, a JSON array
    /// (`["a","b"]`, as a string), or API Gateway's rendering of an array
    /// claim, `[a b]`; all three mean the same. `org_id` may be an array
    /// in any of these forms too, with exactly one value.
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Self> {
        let org = match claims.get(ORG_CLAIM).map(|v| claim_values(v)) {
            None => return Err(Error::Unauthorized("token has no org_id claim")),
            Some(values) => match values.as_slice() {
                [org] if is_valid_org(org) => org.clone(),
                _ => return Err(Error::Unauthorized("token has an invalid org_id claim")),
            },
        };
        let subject = claims
            .get("sub")
            .filter(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control))
            .ok_or(Error::Unauthorized("token has no valid sub claim"))?;
        let scopes = claims
            .get("scope")
            .or_else(|| claims.get("scp"))
            .map(|s| claim_values(s))
            .unwrap_or_default();
        Ok(Principal {
            org,
            subject: subject.clone(),
            scopes,
        })
    }
}

/// The values of a claim that may hold several: a JSON array of strings,
/// API Gateway's `[a b]` rendering of an array claim, or a space-separated
/// string. A single value without spaces is one value in every form.
fn claim_values(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    if let Ok(items) = serde_json::from_str::<Vec<String>>(trimmed) {
        return items
            .iter()
            .flat_map(|i| i.split_whitespace())
            .map(str::to_owned)
            .collect();
    }
    let inner = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(trimmed);
    inner.split_whitespace().map(str::to_owned).collect()
}

/// Orgs prefix every key, so they may not contain the key separator `#`, a
/// `/`, or anything else surprising: 1–64 of `[A-Za-z0-9_-]`.
pub fn is_valid_org(org: &str) -> bool {
    (1..=64).contains(&org.len())
        && org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Authenticate a request from what it carries: the authorizer's claims
/// (deployed) or the `Authorization` header (dev mode). `now` is Unix seconds.
pub fn authenticate(
    mode: &AuthMode,
    authorizer_claims: Option<&HashMap<String, String>>,
    authorization: Option<&str>,
    now: i64,
) -> Result<Principal> {
    match mode {
        AuthMode::ApiGateway => match authorizer_claims {
            Some(claims) if !claims.is_empty() => Principal::from_claims(claims),
            _ => Err(Error::Unauthorized("no authorizer claims")),
        },
        AuthMode::Dev { secret } => {
            let token = authorization
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .ok_or(Error::Unauthorized("missing bearer token"))?;
            let claims = verify_hs256(secret, token.trim(), now)?;
            Principal::from_claims(&claims)
        }
    }
}

/// Verify a compact HS256 JWT and return its claims as strings (numbers are
/// rendered, arrays of strings joined by spaces), the shape API Gateway gives.
pub fn verify_hs256(secret: &[u8], token: &str, now: i64) -> Result<HashMap<String, String>> {
    const INVALID: Error = Error::Unauthorized("invalid token");
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(INVALID);
    };
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| INVALID)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| INVALID)?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature).map_err(|_| INVALID)?;

    let header: serde_json::Value = decode_json(header).ok_or(INVALID)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(INVALID);
    }
    let payload: serde_json::Map<String, serde_json::Value> =
        decode_json(payload).ok_or(INVALID)?;
    let exp = payload.get("exp").and_then(|e| e.as_i64()).ok_or(INVALID)?;
    if exp <= now {
        return Err(Error::Unauthorized("token expired"));
    }
    // `nbf`, when present, must be an integer like `exp`: a claim that
    // cannot be read is not ignored.
    if let Some(nbf) = payload.get("nbf")
        && nbf.as_i64().ok_or(INVALID)? > now
    {
        return Err(Error::Unauthorized("token not yet valid"));
    }
    Ok(payload
        .into_iter()
        .filter_map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                // Every item counts: an array org_id with a non-string
                // item has two values and is refused, never narrowed.
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => return None,
            };
            Some((k, v))
        })
        .collect())
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Mint an HS256 token — for tests and local tooling, never used on a request path.
pub fn mint_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    // HMAC-SHA256 accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000;

    fn dev() -> AuthMode {
        AuthMode::Dev {
            secret: SECRET.to_vec(),
        }
    }

    fn token(claims: serde_json::Value) -> String {
        format!("Bearer {}", mint_hs256(SECRET, &claims))
    }

    fn good_claims() -> serde_json::Value {
        json!({"sub": "u1", "org_id": "acme", "scope": "artifacts:read artifacts:write", "exp": NOW + 60})
    }

    #[test]
    fn dev_token_yields_principal_with_scopes() {
        let p = authenticate(&dev(), None, Some(&token(good_claims())), NOW).unwrap();
        assert_eq!(p.org, "acme");
        assert_eq!(p.subject, "u1");
        p.require(Scope::Read).unwrap();
        p.require(Scope::Write).unwrap();
    }

    #[test]
    fn missing_scope_is_forbidden() {
        let claims =
            json!({"sub": "u1", "org_id": "acme", "scope": "artifacts:read", "exp": NOW + 60});
        let p = authenticate(&dev(), None, Some(&token(claims)), NOW).unwrap();
        assert!(matches!(p.require(Scope::Write), Err(Error::Forbidden(_))));
    }

    #[test]
    fn dev_mode_rejects_bad_tokens() {
        let good = mint_hs256(SECRET, &good_claims());
        let mut cases = vec![
            None,
            Some("Basic abc".to_string()),
            Some("Bearer ".to_string()),
            Some(format!(
                "Bearer {}",
                mint_hs256(b"another-secret-another-secret-xx", &good_claims())
            )),
            Some(token(json!({"sub": "u1", "org_id": "acme", "exp": NOW}))),
            Some(token(json!({"sub": "u1", "org_id": "acme"}))),
            Some(token(
                json!({"sub": "u1", "org_id": "acme", "exp": NOW + 60, "nbf": NOW + 30}),
            )),
            Some(token(
                json!({"sub": "u1", "org_id": "ac#me", "exp": NOW + 60}),
            )),
            Some(token(json!({"sub": "", "org_id": "acme", "exp": NOW + 60}))),
            Some(token(json!({"sub": "u1", "exp": NOW + 60}))),
            Some(format!("Bearer {good}.extra")),
        ];
        // Every single-character change of a valid token is rejected.
        for i in 0..good.len() {
            let mut bytes = good.clone().into_bytes();
            if bytes[i] == b'.' {
                continue;
            }
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            cases.push(Some(format!(
                "Bearer {}",
                String::from_utf8(bytes).unwrap()
            )));
        }
        for case in cases {
            let result = authenticate(&dev(), None, case.as_deref(), NOW);
            assert!(
                matches!(result, Err(Error::Unauthorized(_))),
                "{case:?} -> {result:?}"
            );
        }
    }

    #[test]
    fn alg_none_is_rejected_even_with_valid_mac_shape() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(good_claims().to_string());
        let input = format!("{header}.{payload}");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let result = authenticate(&dev(), None, Some(&format!("Bearer {input}.{sig}")), NOW);
        assert!(matches!(result, Err(Error::Unauthorized(_))));
    }

    #[test]
    fn api_gateway_mode_reads_claims_and_ignores_headers() {
        let claims: HashMap<String, String> = [
            ("sub", "u1"),
            ("org_id", "acme"),
            ("scope", "artifacts:read"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let p = authenticate(&AuthMode::ApiGateway, Some(&claims), None, NOW).unwrap();
        assert_eq!(p.scopes, vec!["artifacts:read"]);
        // A bearer token alone is not trusted in deployed mode: fail closed.
        let forged = token(good_claims());
        let none = authenticate(&AuthMode::ApiGateway, None, Some(&forged), NOW);
        assert!(matches!(none, Err(Error::Unauthorized(_))));
        let empty = authenticate(&AuthMode::ApiGateway, Some(&HashMap::new()), None, NOW);
        assert!(matches!(empty, Err(Error::Unauthorized(_))));
    }

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn scope_claims_in_every_form_mean_the_same() {
        let both = vec!["artifacts:read".to_owned(), "artifacts:write".to_owned()];
        for (name, value) in [
            ("scope", "artifacts:read artifacts:write"),
            ("scope", "  artifacts:read   artifacts:write "),
            ("scope", "[artifacts:read artifacts:write]"),
            ("scope", r#"["artifacts:read","artifacts:write"]"#),
            ("scope", r#"[ "artifacts:read", "artifacts:write" ]"#),
            ("scp", "artifacts:read artifacts:write"),
            ("scp", "[artifacts:read artifacts:write]"),
            ("scp", r#"["artifacts:read","artifacts:write"]"#),
        ] {
            let p = Principal::from_claims(&claims(&[
                ("sub", "u1"),
                ("org_id", "acme"),
                (name, value),
            ]))
            .unwrap();
            assert_eq!(p.scopes, both, "{name}={value}");
            p.require(Scope::Read).unwrap();
            p.require(Scope::Write).unwrap();
        }
        // One scope in the bracketed form is that scope, nothing more.
        let p = Principal::from_claims(&claims(&[
            ("sub", "u1"),
            ("org_id", "acme"),
            ("scope", "[artifacts:read]"),
        ]))
        .unwrap();
        assert_eq!(p.scopes, vec!["artifacts:read"]);
        assert!(matches!(p.require(Scope::Write), Err(Error::Forbidden(_))));
        // `scope` wins over `scp`; neither is no scope at all.
        let p = Principal::from_claims(&claims(&[
            ("sub", "u1"),
            ("org_id", "acme"),
            ("scope", "artifacts:read"),
            ("scp", "artifacts:write"),
        ]))
        .unwrap();
        assert_eq!(p.scopes, vec!["artifacts:read"]);
        for empty in ["", "[]", "[ ]"] {
            let p = Principal::from_claims(&claims(&[
                ("sub", "u1"),
                ("org_id", "acme"),
                ("scope", empty),
            ]))
            .unwrap();
            assert!(p.scopes.is_empty(), "{empty:?}");
        }
    }

    #[test]
    fn an_array_org_claim_needs_exactly_one_value() {
        for ok in ["acme", "[acme]", r#"["acme"]"#, " [acme] "] {
            let p = Principal::from_claims(&claims(&[("sub", "u1"), ("org_id", ok)])).unwrap();
            assert_eq!(p.org, "acme", "{ok}");
        }
        for bad in [
            "[acme other]",
            r#"["acme","other"]"#,
            "acme other",
            "[]",
            r#"[]"#,
            "",
            "[ac#me]",
            r#"["acme", 5]"#,
            "[[acme]]",
        ] {
            let result = Principal::from_claims(&claims(&[("sub", "u1"), ("org_id", bad)]));
            assert!(
                matches!(result, Err(Error::Unauthorized(_))),
                "{bad:?} -> {result:?}"
            );
        }
        // Through a dev token, JSON arrays arrive as arrays.
        let one =
            json!({"sub": "u1", "org_id": ["acme"], "scope": ["artifacts:read"], "exp": NOW + 60});
        let p = authenticate(&dev(), None, Some(&token(one)), NOW).unwrap();
        assert_eq!(
            (p.org.as_str(), p.scopes.as_slice()),
            ("acme", &["artifacts:read".to_owned()][..])
        );
        for bad in [json!(["acme", "other"]), json!(["acme", 5]), json!([])] {
            let claims = json!({"sub": "u1", "org_id": bad, "exp": NOW + 60});
            let result = authenticate(&dev(), None, Some(&token(claims)), NOW);
            assert!(matches!(result, Err(Error::Unauthorized(_))), "{result:?}");
        }
    }

    #[test]
    fn dev_tokens_with_unreadable_times_are_rejected() {
        for claims in [
            json!({"sub": "u1", "org_id": "acme", "exp": NOW + 60, "nbf": "0"}),
            json!({"sub": "u1", "org_id": "acme", "exp": NOW + 60, "nbf": 1.5}),
            json!({"sub": "u1", "org_id": "acme", "exp": NOW + 60, "nbf": null}),
            json!({"sub": "u1", "org_id": "acme", "exp": NOW + 60, "nbf": [0]}),
            json!({"sub": "u1", "org_id": "acme", "exp": (NOW + 60) as f64 + 0.5}),
            json!({"sub": "u1", "org_id": "acme", "exp": (NOW + 60).to_string()}),
        ] {
            let result = authenticate(&dev(), None, Some(&token(claims.clone())), NOW);
            assert!(
                matches!(result, Err(Error::Unauthorized(_))),
                "{claims} -> {result:?}"
            );
        }
        // An integer nbf in the past is fine.
        let ok = json!({"sub": "u1", "org_id": "acme", "exp": NOW + 60, "nbf": NOW - 5});
        authenticate(&dev(), None, Some(&token(ok)), NOW).unwrap();
    }

    #[test]
    fn org_validation() {
        for ok in ["acme", "a", "org_1-2", &"x".repeat(64)] {
            assert!(is_valid_org(ok), "{ok}");
        }
        for bad in ["", "a#b", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(!is_valid_org(bad), "{bad}");
        }
    }
}
