//! Configuration from the environment (SPEC §10), read once at cold start.
//! Anything missing or invalid is reported here, with the variable's name,
//! so a misconfigured function fails to start instead of failing requests.

use std::fmt;

/// Largest ciphertext kept inline in a DynamoDB item: items are limited to
/// 400 KB, and the version item carries other attributes too.
pub const INLINE_MAX_LIMIT: usize = 300 * 1024;
/// Largest body a function returns directly: 4 MiB is 5.6 MB as base64,
/// under the 6 MB Lambda response limit.
pub const DIRECT_MAX_LIMIT: u64 = 4 * 1024 * 1024;
const MIN_DEV_SECRET_LEN: usize = 32;

/// How a function learns who is calling.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// Deployed: API Gateway's JWT authorizer has validated the token; the
    /// claims are read from the request context. The default.
    ApiGateway,
    /// Local development only: verify an HS256 bearer token ourselves.
    Dev { secret: Vec<u8> },
}

impl fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMode::ApiGateway => f.write_str("ApiGateway"),
            AuthMode::Dev { .. } => f.write_str("Dev { secret: <redacted> }"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub bucket: String,
    pub kms_key_id: String,
    pub link_key_id: Option<String>,
    /// The KMS P-256 key that signs publish attestations (SPEC §18); writes
    /// fail without it.
    pub signing_key_id: Option<String>,
    pub public_base_url: Option<String>,
    pub inline_max_bytes: usize,
    pub direct_max_bytes: u64,
    pub auth: AuthMode,
    /// `ARTIFACTS_AUDIT_DAYS` (default 400): audit records expire by TTL after this.
    pub audit_days: u64,
    /// SPEC §12: days a deleted artifact stays restorable (`ARTIFACTS_TRASH_DAYS`, default 7).
    pub trash_days: u64,
    /// Retention given to new artifacts that ask for none (0: keep forever).
    pub default_retention_days: u64,
    /// The cap on retention (0: no cap).
    pub max_retention_days: u64,
}

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl Config {
    /// Read the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty());
        let required = |var: &'static str| {
            get(var).ok_or_else(|| ConfigError {
                var,
                reason: "must be set".into(),
            })
        };

        let auth = match get("ARTIFACTS_AUTH_MODE").as_deref() {
            None | Some("apigateway") => AuthMode::ApiGateway,
            Some("dev") => {
                let secret = required("ARTIFACTS_DEV_JWT_SECRET")?;
                if secret.len() < MIN_DEV_SECRET_LEN {
                    return Err(ConfigError {
                        var: "ARTIFACTS_DEV_JWT_SECRET",
                        reason: format!("must be at least {MIN_DEV_SECRET_LEN} characters"),
                    });
                }
                AuthMode::Dev {
                    secret: secret.into_bytes(),
                }
            }
            Some(other) => {
                return Err(ConfigError {
                    var: "ARTIFACTS_AUTH_MODE",
                    reason: format!("unknown mode {other:?} (expected \"apigateway\" or \"dev\")"),
                });
            }
        };

        let public_base_url = get("ARTIFACTS_PUBLIC_BASE_URL")
            .map(|url| {
                if url.starts_with("https://") || url.starts_with("http://") {
                    Ok(url.trim_end_matches('/').to_owned())
                } else {
                    Err(ConfigError {
                        var: "ARTIFACTS_PUBLIC_BASE_URL",
                        reason: "must be an http(s) URL".into(),
                    })
                }
            })
            .transpose()?;

        Ok(Config {
            table: required("ARTIFACTS_TABLE")?,
            bucket: required("ARTIFACTS_BUCKET")?,
            kms_key_id: required("ARTIFACTS_KMS_KEY_ID")?,
            link_key_id: get("ARTIFACTS_LINK_KEY_ID"),
            signing_key_id: get("ARTIFACTS_SIGNING_KEY_ID"),
            public_base_url,
            inline_max_bytes: bounded(
                "ARTIFACTS_INLINE_MAX_BYTES",
                get("ARTIFACTS_INLINE_MAX_BYTES"),
                64 * 1024,
                INLINE_MAX_LIMIT as u64,
            )? as usize,
            direct_max_bytes: bounded(
                "ARTIFACTS_DIRECT_MAX_BYTES",
                get("ARTIFACTS_DIRECT_MAX_BYTES"),
                DIRECT_MAX_LIMIT,
                DIRECT_MAX_LIMIT,
            )?,
            auth,
            audit_days: days(
                "ARTIFACTS_AUDIT_DAYS",
                get("ARTIFACTS_AUDIT_DAYS"),
                crate::audit::DEFAULT_AUDIT_DAYS,
            )?,
            trash_days: bounded("ARTIFACTS_TRASH_DAYS", get("ARTIFACTS_TRASH_DAYS"), 7, 3650)?,
            default_retention_days: bounded(
                "ARTIFACTS_DEFAULT_RETENTION_DAYS",
                get("ARTIFACTS_DEFAULT_RETENTION_DAYS"),
                0,
                36500,
            )?,
            max_retention_days: bounded(
                "ARTIFACTS_MAX_RETENTION_DAYS",
                get("ARTIFACTS_MAX_RETENTION_DAYS"),
                0,
                36500,
            )?,
        })
    }
}

/// A whole number of days, at least 1 and at most 100 years.
fn days(var: &'static str, value: Option<String>, default: u64) -> Result<u64, ConfigError> {
    match value.map(|v| v.trim().parse::<u64>()) {
        None => Ok(default),
        Some(Ok(n)) if (1..=36_500).contains(&n) => Ok(n),
        Some(_) => Err(ConfigError {
            var,
            reason: "must be a whole number of days from 1 to 36500".into(),
        }),
    }
}

impl Config {
    /// Functions that commit versions (upload, ingest) sign them (SPEC §18):
    /// without the key they would fail every write, so they fail at cold start.
    pub fn require_signing_key(&self) -> Result<(), ConfigError> {
        match &self.signing_key_id {
            Some(_) => Ok(()),
            None => Err(ConfigError {
                var: "ARTIFACTS_SIGNING_KEY_ID",
                reason: "must be set for functions that commit versions".into(),
            }),
        }
    }
}

fn bounded(
    var: &'static str,
    value: Option<String>,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(ConfigError {
            var,
            reason: format!("must be at most {max}"),
        }),
        Err(_) => Err(ConfigError {
            var,
            reason: format!("must be a whole number of bytes, got {value:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("ARTIFACTS_TABLE", "t"),
        ("ARTIFACTS_BUCKET", "b"),
        ("ARTIFACTS_KMS_KEY_ID", "k"),
    ];

    #[test]
    fn defaults_apply_and_auth_fails_closed_to_api_gateway() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.inline_max_bytes, 64 * 1024);
        assert_eq!(c.direct_max_bytes, 4 * 1024 * 1024);
        assert_eq!(c.auth, AuthMode::ApiGateway);
        assert_eq!(c.link_key_id, None);
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for missing in [
            "ARTIFACTS_TABLE",
            "ARTIFACTS_BUCKET",
            "ARTIFACTS_KMS_KEY_ID",
        ] {
            let vars: Vec<_> = BASE
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(config(&vars).unwrap_err().var, missing);
        }
        let mut blank = BASE.to_vec();
        blank[0].1 = "  ";
        assert_eq!(config(&blank).unwrap_err().var, "ARTIFACTS_TABLE");
    }

    #[test]
    fn invalid_values_are_rejected_with_their_name() {
        let cases = [
            ("ARTIFACTS_INLINE_MAX_BYTES", "lots"),
            ("ARTIFACTS_INLINE_MAX_BYTES", "400000"),
            ("ARTIFACTS_DIRECT_MAX_BYTES", "6000000"),
            ("ARTIFACTS_AUTH_MODE", "none"),
            ("ARTIFACTS_PUBLIC_BASE_URL", "ftp://x"),
        ];
        for (var, value) in cases {
            let mut vars = BASE.to_vec();
            vars.push((var, value));
            assert_eq!(config(&vars).unwrap_err().var, var, "{var}={value}");
        }
    }

    #[test]
    fn dev_mode_needs_a_long_secret() {
        let mut vars = BASE.to_vec();
        vars.push(("ARTIFACTS_AUTH_MODE", "dev"));
        assert_eq!(config(&vars).unwrap_err().var, "ARTIFACTS_DEV_JWT_SECRET");
        vars.push(("ARTIFACTS_DEV_JWT_SECRET", "short"));
        assert_eq!(config(&vars).unwrap_err().var, "ARTIFACTS_DEV_JWT_SECRET");
        vars.pop();
        vars.push((
            "ARTIFACTS_DEV_JWT_SECRET",
            "0123456789abcdef0123456789abcdef",
        ));
        let c = config(&vars).unwrap();
        assert!(matches!(c.auth, AuthMode::Dev { .. }));
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "secret leaks into Debug"
        );
    }

    #[test]
    fn sizes_parse_and_base_url_is_normalised() {
        let mut vars = BASE.to_vec();
        vars.push(("ARTIFACTS_INLINE_MAX_BYTES", "1024"));
        vars.push(("ARTIFACTS_DIRECT_MAX_BYTES", "0"));
        vars.push(("ARTIFACTS_PUBLIC_BASE_URL", "https://api.example.com/"));
        let c = config(&vars).unwrap();
        assert_eq!(c.inline_max_bytes, 1024);
        assert_eq!(c.direct_max_bytes, 0);
        assert_eq!(
            c.public_base_url.as_deref(),
            Some("https://api.example.com")
        );
    }
}
