//! SDK configuration from a Lambda function's environment (adapter layer).
//!
//! Lambda hands a function its region (`AWS_REGION`) and its role's
//! credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`) in the environment; `AWS_ENDPOINT_URL` points every
//! client at an emulator. That is all the functions use, so they build the
//! configuration here instead of through `aws-config`'s default chain, whose
//! STS, IMDS, SSO and profile providers cost each binary several hundred KiB
//! and a Lambda function never reaches them. The SDK clients supply their
//! own defaults for the rest (HTTPS client, retries, timeouts, sleep).

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;

use crate::config::ConfigError;

/// The SDK configuration for `lookup` (the process environment, or a map in tests).
pub fn config_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SdkConfig, ConfigError> {
    let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
    let region = get("AWS_REGION")
        .or_else(|| get("AWS_DEFAULT_REGION"))
        .ok_or_else(|| ConfigError {
            var: "AWS_REGION",
            reason: "must be set".into(),
        })?;
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentCredentials));
    if let Some(endpoint) = get("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}

/// Credentials read from the environment each time the SDK's identity cache
/// asks (as `aws-config`'s environment provider does), so a runtime that
/// updates them is followed.
#[derive(Debug, Clone, Copy)]
struct EnvironmentCredentials;

impl EnvironmentCredentials {
    fn load() -> Result<Credentials, CredentialsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(CredentialsError::not_loaded(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set",
            ));
        };
        Ok(Credentials::new(
            key,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "Environment",
        ))
    }
}

impl ProvideCredentials for EnvironmentCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Self::load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn region_endpoint_and_fallbacks() {
        let sdk = config_from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]))
        .expect("config");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:4566"));

        let sdk =
            config_from_lookup(lookup(&[("AWS_DEFAULT_REGION", "us-east-2")])).expect("config");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-2"));
        assert_eq!(sdk.endpoint_url(), None);
    }

    #[test]
    fn missing_region_names_the_variable() {
        let err = config_from_lookup(lookup(&[("AWS_REGION", " ")])).expect_err("no region");
        assert_eq!(err.var, "AWS_REGION");
    }
}
