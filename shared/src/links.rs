//! Expiring, revocable download links (SPEC §4, §8).
//!
//! A link is a token `base64url(payload).base64url(mac)`. The payload names
//! the org, the artifact, the pinned version, the expiry and the link id (see
//! [`LinkClaims::to_bytes`]); the MAC is made and checked by KMS with an HMAC
//! key (`GenerateMac`/`VerifyMac`), so no signing secret exists in code or
//! configuration. The token itself is never stored or logged.
//!
//! Each link is also recorded in DynamoDB, which is what makes it revocable
//! and countable:
//!
//! | item | pk | sk |
//! |---|---|---|
//! | link (state, use count) | `{org}#A#{artifactId}` | `L#{linkId}` |
//! | link id → artifact (revocation by id) | `{org}#L#{linkId}` | `#LINK` |
//! | one use of a link | `{org}#L#{linkId}` | `U#{unix:012}#{random}` |
//!
//! Link items carry `expiresAt` (the table's TTL attribute) at the link's
//! expiry; use items live [`USE_RETENTION_SECS`] after the use.
//!
//! Using a link checks, in this order, and stops at the first failure: the
//! token's shape (else 404, no AWS call), its MAC with one `VerifyMac` (else
//! 404), its expiry (else 410, no DynamoDB call), the link item with one
//! `GetItem` (missing or revoked: 410). Only then is the pinned version read
//! and served, exactly as an authenticated download would. The org comes from
//! the MACed payload, so a token can only ever address its own org's keys.
//!
//! # Bounding what an unauthenticated caller can cost
//!
//! `GET /v1/links/{token}` needs no credentials, so two bounds keep a replayed
//! token — typically one that expired or was revoked and is still being
//! polled — from turning into unbounded KMS calls and DynamoDB writes:
//!
//! - **A rate limit in front of `VerifyMac`** ([`LinkGuard`]): a token bucket
//!   per token, in the memory of each function container, of
//!   [`LINK_BURST`] requests refilled at [`LINK_RATE_PER_SEC`] a second; past
//!   it the answer is 429 with `Retry-After`, before any AWS call. HMAC is
//!   deterministic, so a link has exactly one valid token and the bucket is
//!   per link for every token that verifies; a forged variant gets a bucket
//!   of its own, fails `VerifyMac` and is never recorded (so a forger cannot
//!   lock a link's holders out by spraying variants of its id). The bound is
//!   per container: N warm containers admit up to N times the rate, which
//!   still bounds the KMS calls per link by the function's concurrency. The
//!   table holds at most [`GUARD_ENTRIES`] buckets; when full, buckets that
//!   have refilled (idle ones) are dropped first, and if none has, all are.
//! - **Refused uses are recorded at most once per link and minute**: the use
//!   record of a 4xx/5xx answer has the key `U#{minute}#refused`, written
//!   with `attribute_not_exists`, so however many containers see the same
//!   refused token in one minute, one record exists; a container that has
//!   already written (or found) that minute's record skips the write. Served
//!   uses are still recorded one by one (they are bounded by the limiter).

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::audit::{Action, Actor, Origin, Record, Subject};
use crate::auth::{Principal, Scope};
use crate::config::{Config, ConfigError};
use crate::error::{Error, Result};
use crate::http;
use crate::metadata::{self, VersionRecord, artifact_pk, version_sk};
use crate::model::Artifact;
use crate::store::Store;

use crate::link_key::is_id;
pub use crate::link_key::{
    GUARD_ENTRIES, LINK_BURST, LINK_RATE_PER_SEC, LinkClaims, LinkGuard, LinkKey,
};

/// `expiresIn` when the request names none.
pub const DEFAULT_EXPIRES_IN: i64 = 3600;
pub const MIN_EXPIRES_IN: i64 = 60;
/// SPEC §8: expiry ≤ 7 days.
pub const MAX_EXPIRES_IN: i64 = 7 * 24 * 3600;
/// How long a use record is kept after the use.
pub const USE_RETENTION_SECS: i64 = 90 * 24 * 3600;

const LINK_SK_PREFIX: &str = "L#";
const POINTER_SK: &str = "#LINK";
const USE_SK_PREFIX: &str = "U#";
/// Listing reads at most this many 1 MB pages of one artifact's link items.
const MAX_LIST_PAGES: usize = 64;
/// A link download over the direct limit is a 303 to a presigned S3 GET
/// valid for what is left of the link's life, and never longer than this:
/// a revoked or expired link stops serving within it.
pub const MAX_LINK_URL_TTL: Duration = Duration::from_secs(60);
/// Refused uses of a link are recorded at most once per this many seconds.
pub const REFUSED_USE_WINDOW_SECS: i64 = 60;

/// Functions serving link routes need the link key: refuse to start without it.
pub fn check_config(config: &Config) -> Result<(), ConfigError> {
    match config.link_key_id {
        Some(_) => Ok(()),
        None => Err(ConfigError {
            var: "ARTIFACTS_LINK_KEY_ID",
            reason: "must be set: the KMS HMAC key (HMAC_256) that signs link tokens".into(),
        }),
    }
}

/// `expiresIn` as requested, or the default; outside 60..=604800 is 400.
pub fn expires_in(requested: Option<i64>) -> Result<i64> {
    match requested.unwrap_or(DEFAULT_EXPIRES_IN) {
        seconds @ MIN_EXPIRES_IN..=MAX_EXPIRES_IN => Ok(seconds),
        _ => Err(Error::bad_request(
            "expiresIn",
            format!("must be a whole number of seconds from {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN}"),
        )),
    }
}

/// The public URL of a token under `base` (no trailing slash needed).
pub fn link_url(base: &str, token: &str) -> String {
    format!("{}/v1/links/{token}", base.trim_end_matches('/'))
}

/// Now, in Unix seconds: the clock every link operation is given.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as RFC 3339 UTC, in the millisecond form the API uses.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(crate::model::rfc3339)
        .unwrap_or_else(|_| unix.to_string())
}

pub fn link_sk(link_id: &str) -> String {
    format!("{LINK_SK_PREFIX}{link_id}")
}

/// The partition of one link's id pointer and use records.
pub fn link_pk(org: &str, link_id: &str) -> String {
    format!("{org}#L#{link_id}")
}

/// A link to create: the version to pin (default: the latest) and its lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewLink {
    pub version: Option<u64>,
    pub expires_in: Option<i64>,
}

/// A created link. `token` is the credential: hand it to the caller, never log it.
pub struct CreatedLink {
    pub token: String,
    pub link_id: String,
    pub version: u64,
    pub expires_at: i64,
    pub expires_in: i64,
}

/// A live link as `GET /v1/artifacts/{artifactId}/links` shows it (no token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkInfo {
    pub link_id: String,
    pub version: u64,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: String,
    /// Downloads served through the link (2xx/3xx answers).
    pub uses: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// A link that passed every check, and what it serves.
#[derive(Debug, Clone)]
pub struct OpenLink {
    pub claims: LinkClaims,
    pub artifact: Artifact,
    pub record: VersionRecord,
    /// How long a presigned URL handed out for this use may live: what is
    /// left of the link's life, at most [`MAX_LINK_URL_TTL`].
    pub url_ttl: Duration,
}

/// What is left of a link's life at `now`, capped at [`MAX_LINK_URL_TTL`]
/// (at least a second: a link is refused once none is left).
pub fn url_ttl(claims: &LinkClaims, now: i64) -> Duration {
    let left = claims.expires_at.saturating_sub(now).max(1);
    Duration::from_secs(u64::try_from(left).unwrap_or(1)).min(MAX_LINK_URL_TTL)
}

enum LinkState {
    Live(Box<OpenLink>),
    /// Answered with 410; the reason is what the use record says.
    Refused(&'static str),
}

impl Store {
    /// `POST /v1/artifacts/{artifactId}/links`: sign a token for one version
    /// and record the link. Nothing is recorded unless every check passed
    /// and KMS signed.
    pub async fn create_link(
        &self,
        principal: &Principal,
        artifact_id: &str,
        new: NewLink,
        now: i64,
        origin: &Origin,
    ) -> Result<CreatedLink> {
        principal.require(Scope::Read)?;
        let expires_in = expires_in(new.expires_in)?;
        if new.version == Some(0) {
            return Err(Error::bad_request("version", "must be at least 1"));
        }
        let artifact = self.artifact(principal, artifact_id).await?;
        let org = principal.org.as_str();
        let version = new.version.unwrap_or(artifact.latest_version);
        if !self
            .version_exists(org, &artifact.artifact_id, version)
            .await?
        {
            return Err(Error::NotFound("version"));
        }
        let claims = LinkClaims {
            org: org.to_owned(),
            artifact_id: artifact.artifact_id.clone(),
            link_id: uuid::Uuid::new_v4().simple().to_string(),
            version,
            expires_at: now + expires_in,
        };
        let token = self.link_key.sign(&claims).await?;
        let mut record = Record::new(
            Action::LinkCreated,
            Actor::Sub(principal.subject.clone()),
            Subject::artifact(&artifact, Some(version)),
            origin,
        );
        record.link_id = Some(claims.link_id.clone());
        self.put_link(&claims, &principal.subject, now, &record)
            .await?;
        Ok(CreatedLink {
            token,
            link_id: claims.link_id,
            version,
            expires_at: claims.expires_at,
            expires_in,
        })
    }

    /// `GET /v1/artifacts/{artifactId}/links`: links neither expired nor
    /// revoked at `now`, newest first.
    pub async fn live_links(
        &self,
        principal: &Principal,
        artifact_id: &str,
        now: i64,
    ) -> Result<Vec<LinkInfo>> {
        let artifact = self.artifact(principal, artifact_id).await?;
        let pk = artifact_pk(&principal.org, &artifact.artifact_id);
        let mut links = Vec::new();
        let mut start = None;
        for _ in 0..MAX_LIST_PAGES {
            let out = self
                .metadata
                .client()
                .query()
                .table_name(self.metadata.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression("expiresAt > :now AND attribute_not_exists(revokedAt)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(LINK_SK_PREFIX))
                .expression_attribute_values(":now", n(now))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            for item in out.items.unwrap_or_default() {
                links.push(link_info(&item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    links.sort_by(|a, b| {
                        (&b.created_at, &a.link_id).cmp(&(&a.created_at, &b.link_id))
                    });
                    return Ok(links);
                }
            }
        }
        Err(Error::upstream(
            "dynamodb",
            "an artifact has more link items than one listing reads",
        ))
    }

    /// `DELETE /v1/links/{linkId}`: the link fails from the next use on.
    /// Revoking a revoked link again is fine; another org's link is 404.
    pub async fn revoke_link(
        &self,
        principal: &Principal,
        link_id: &str,
        now: i64,
        origin: &Origin,
    ) -> Result<()> {
        principal.require(Scope::Write)?;
        if !is_id(link_id) {
            return Err(Error::NotFound("link"));
        }
        let org = principal.org.as_str();
        let pointer = self
            .metadata
            .item(link_pk(org, link_id), POINTER_SK.to_owned())
            .await?
            .ok_or(Error::NotFound("link"))?;
        let artifact_id: String = attr(&pointer, "artifactId")?;
        if !is_id(&artifact_id) {
            return Err(malformed("artifactId"));
        }
        let revoke = Update::builder()
            .table_name(self.metadata.table())
            .key("pk", s(artifact_pk(org, &artifact_id)))
            .key("sk", s(link_sk(link_id)))
            .update_expression(
                "SET revokedAt = if_not_exists(revokedAt, :at), \
                 revokedBy = if_not_exists(revokedBy, :by)",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", s(rfc3339(now)))
            .expression_attribute_values(":by", s(&principal.subject))
            .build()
            .map_err(|e| Error::upstream("dynamodb", e))?;
        let mut record = Record::new(
            Action::LinkRevoked,
            Actor::Sub(principal.subject.clone()),
            Subject {
                artifact_id: Some(artifact_id.clone()),
                ..Subject::default()
            },
            origin,
        );
        record.link_id = Some(link_id.to_owned());
        // The revocation and its audit record, together or not at all.
        let updated = self
            .metadata
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(revoke).build())
            .transact_items(self.audit_item(org, &record)?)
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .and_then(|se| match se {
                        TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                        _ => None,
                    })
                    .is_some_and(|c| {
                        c.cancellation_reasons()
                            .first()
                            .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
                    }) =>
            {
                Err(Error::NotFound("link"))
            }
            Err(e) => Err(Error::upstream("dynamodb", e)),
        }
    }

    /// `GET /v1/links/{token}`: check the token, then let `serve` answer
    /// with the pinned version, and record the use. Every answer, refusals
    /// included, carries `Cache-Control: no-store` and
    /// `Referrer-Policy: no-referrer`. A use that cannot be recorded is not
    /// served (500).
    pub async fn serve_link<F, Fut>(
        &self,
        token: &str,
        now: i64,
        request_id: &str,
        serve: F,
    ) -> Response<Body>
    where
        F: FnOnce(OpenLink) -> Fut,
        Fut: Future<Output = Result<Response<Body>>>,
    {
        let mut response = match self.link_key.verify(token).await {
            Err(e) => http::problem(&e, request_id),
            Ok(claims) => self.use_link(claims, now, request_id, serve).await,
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }

    async fn use_link<F, Fut>(
        &self,
        claims: LinkClaims,
        now: i64,
        request_id: &str,
        serve: F,
    ) -> Response<Body>
    where
        F: FnOnce(OpenLink) -> Fut,
        Fut: Future<Output = Result<Response<Body>>>,
    {
        tracing::Span::current().record("org", claims.org.as_str());
        let (result, refusal) = match self.open_link(&claims, now).await {
            Ok(LinkState::Live(open)) => (serve(*open).await, None),
            Ok(LinkState::Refused(reason)) => (Err(Error::Gone("link")), Some(reason)),
            Err(e) => (Err(e), None),
        };
        let response = match result {
            Ok(response) => response,
            Err(e) => http::problem(&e, request_id),
        };
        let status = response.status().as_u16();
        let outcome = refusal.unwrap_or_else(|| outcome_of(status));
        match self.record_link_use(&claims, outcome, status, now).await {
            Ok(()) => response,
            Err(e) if status < 400 => http::problem(&e, request_id),
            Err(e) => {
                tracing::warn!(error = %e, outcome, "could not record a refused link use");
                response
            }
        }
    }

    /// Expiry, then the link item (one read); only for a live link the
    /// artifact and version items, as any download reads them.
    async fn open_link(&self, claims: &LinkClaims, now: i64) -> Result<LinkState> {
        if now >= claims.expires_at {
            return Ok(LinkState::Refused("expired"));
        }
        let org = claims.org.as_str();
        let item = self
            .metadata
            .item(
                artifact_pk(org, &claims.artifact_id),
                link_sk(&claims.link_id),
            )
            .await?;
        let Some(item) = item else {
            // Purged with its artifact (SPEC §12): 404 like the artifact.
            if self
                .metadata
                .artifact(org, &claims.artifact_id)
                .await?
                .is_none()
            {
                return Err(Error::NotFound("link"));
            }
            // Never recorded, or removed by TTL after its expiry.
            return Ok(LinkState::Refused("unknown"));
        };
        if item.contains_key("revokedAt") {
            return Ok(LinkState::Refused("revoked"));
        }
        let version: u64 = attr(&item, "version")?;
        let expires_at: i64 = attr(&item, "expiresAt")?;
        if version != claims.version || expires_at != claims.expires_at {
            return Err(Error::Integrity(
                "link item disagrees with its signed token".into(),
            ));
        }
        let (artifact, record) = tokio::join!(
            self.metadata.artifact(org, &claims.artifact_id),
            self.metadata
                .version(org, &claims.artifact_id, claims.version),
        );
        let (artifact, record) = (artifact?, record?);
        if let Some(a) = &artifact {
            // Trashed: 404 as for a missing artifact; expired: 410 `expired`.
            crate::lifecycle::readable(a, time::OffsetDateTime::now_utc())?;
        }
        Ok(match (artifact, record) {
            (Some(artifact), Some(record)) => LinkState::Live(Box::new(OpenLink {
                claims: claims.clone(),
                artifact,
                record,
                url_ttl: url_ttl(claims, now),
            })),
            // The pinned version was deleted (SPEC §12): as if it never existed.
            (Some(_), None) => return Err(Error::NotFound("version")),
            _ => LinkState::Refused("deleted"),
        })
    }

    /// One use record per served use, also counted on the link item; refused
    /// (and failed) uses at most one record per link and minute (see the
    /// module doc).
    async fn record_link_use(
        &self,
        claims: &LinkClaims,
        outcome: &str,
        status: u16,
        now: i64,
    ) -> Result<()> {
        let refused = status >= 400;
        let minute = now - now.rem_euclid(REFUSED_USE_WINDOW_SECS);
        let link = format!("{}#{}", claims.org, claims.link_id);
        if refused && self.link_key.guard().refusal_recorded(&link, minute) {
            return Ok(());
        }
        let sk = if refused {
            format!("{USE_SK_PREFIX}{minute:012}#refused")
        } else {
            let mut random = [0u8; 4];
            getrandom::fill(&mut random).map_err(|e| Error::upstream("random", e))?;
            format!("{USE_SK_PREFIX}{now:012}#{}", hex::encode(random))
        };
        let put = self
            .metadata
            .client()
            .put_item()
            .table_name(self.metadata.table())
            .set_item(Some(HashMap::from([
                ("pk".into(), s(link_pk(&claims.org, &claims.link_id))),
                ("sk".into(), s(sk)),
                ("linkId".into(), s(&claims.link_id)),
                ("artifactId".into(), s(&claims.artifact_id)),
                ("version".into(), n(claims.version)),
                ("at".into(), s(rfc3339(now))),
                ("outcome".into(), s(outcome)),
                ("status".into(), n(status)),
                ("expiresAt".into(), n(now + USE_RETENTION_SECS)),
            ])))
            .condition_expression("attribute_not_exists(pk)")
            .send();
        if refused {
            match put.await {
                Ok(_) => {}
                // Another request already recorded this minute's refusal.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(Error::upstream("dynamodb", e)),
            }
            self.link_key.guard().note_refusal(&link, minute);
            return Ok(());
        }
        let count = self
            .metadata
            .client()
            .update_item()
            .table_name(self.metadata.table())
            .key("pk", s(artifact_pk(&claims.org, &claims.artifact_id)))
            .key("sk", s(link_sk(&claims.link_id)))
            .update_expression("ADD uses :one SET lastUsedAt = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(rfc3339(now)))
            .send();
        let (put, count) = tokio::join!(put, count);
        put.map_err(|e| Error::upstream("dynamodb", e))?;
        // Revoked or removed meanwhile: the use record still tells.
        metadata::settled(count)
    }

    async fn version_exists(&self, org: &str, artifact_id: &str, version: u64) -> Result<bool> {
        let out = self
            .metadata
            .client()
            .get_item()
            .table_name(self.metadata.table())
            .key("pk", s(artifact_pk(org, artifact_id)))
            .key("sk", s(version_sk(version)))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::upstream("dynamodb", e))?;
        Ok(out.item.is_some())
    }

    /// The link item, its id pointer and the audit record, together or not at all.
    async fn put_link(
        &self,
        claims: &LinkClaims,
        created_by: &str,
        now: i64,
        record: &Record,
    ) -> Result<()> {
        let org = claims.org.as_str();
        let link = HashMap::from([
            ("pk".into(), s(artifact_pk(org, &claims.artifact_id))),
            ("sk".into(), s(link_sk(&claims.link_id))),
            ("linkId".into(), s(&claims.link_id)),
            ("artifactId".into(), s(&claims.artifact_id)),
            ("version".into(), n(claims.version)),
            ("createdAt".into(), s(rfc3339(now))),
            ("createdBy".into(), s(created_by)),
            ("expiresAt".into(), n(claims.expires_at)),
            ("uses".into(), n(0)),
        ]);
        let pointer = HashMap::from([
            ("pk".into(), s(link_pk(org, &claims.link_id))),
            ("sk".into(), s(POINTER_SK)),
            ("linkId".into(), s(&claims.link_id)),
            ("artifactId".into(), s(&claims.artifact_id)),
            ("expiresAt".into(), n(claims.expires_at)),
        ]);
        let put = |item| -> Result<TransactWriteItem> {
            Ok(TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(self.metadata.table())
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(|e| Error::upstream("dynamodb", e))?,
                )
                .build())
        };
        self.metadata
            .client()
            .transact_write_items()
            .transact_items(put(link)?)
            .transact_items(put(pointer)?)
            .transact_items(self.audit_item(org, record)?)
            .send()
            .await
            .map_err(|e| Error::upstream("dynamodb", e))?;
        Ok(())
    }
}

/// What a use record says of an answer that was not a refusal.
fn outcome_of(status: u16) -> &'static str {
    match status {
        304 => "not-modified",
        200..=299 => "served",
        300..=399 => "redirected",
        400..=499 => "refused",
        _ => "failed",
    }
}

fn link_info(item: &HashMap<String, AttributeValue>) -> Result<LinkInfo> {
    Ok(LinkInfo {
        link_id: attr(item, "linkId")?,
        version: attr(item, "version")?,
        created_at: attr(item, "createdAt")?,
        created_by: attr(item, "createdBy")?,
        expires_at: rfc3339(attr(item, "expiresAt")?),
        uses: attr(item, "uses")?,
        last_used_at: item
            .contains_key("lastUsedAt")
            .then(|| attr(item, "lastUsedAt"))
            .transpose()?,
    })
}

/// A string or number attribute, parsed; anything else is our own data
/// gone wrong, never the caller's fault.
fn attr<T: FromStr>(item: &HashMap<String, AttributeValue>, name: &str) -> Result<T> {
    match item.get(name) {
        Some(AttributeValue::S(v) | AttributeValue::N(v)) => v.parse().map_err(|_| malformed(name)),
        _ => Err(malformed(name)),
    }
}

fn malformed(name: &str) -> Error {
    Error::Integrity(format!("link item has a missing or malformed {name}"))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::link_key::tests::claims;

    #[test]
    fn expiry_bounds() {
        assert_eq!(expires_in(None).unwrap(), 3600);
        assert_eq!(expires_in(Some(60)).unwrap(), 60);
        assert_eq!(expires_in(Some(604_800)).unwrap(), 604_800);
        for bad in [59, 604_801, 0, -1, i64::MIN, i64::MAX] {
            match expires_in(Some(bad)) {
                Err(Error::BadRequest { field, .. }) => assert_eq!(field, "expiresIn"),
                other => panic!("{bad} -> {other:?}"),
            }
        }
    }

    #[test]
    fn link_urls_live_at_most_a_minute_and_never_past_the_link() {
        let at = |expires_at| LinkClaims {
            expires_at,
            ..claims()
        };
        let now = 1_800_000_000;
        assert_eq!(url_ttl(&at(now + 30), now), Duration::from_secs(30));
        assert_eq!(url_ttl(&at(now + 60), now), Duration::from_secs(60));
        assert_eq!(url_ttl(&at(now + 604_800), now), MAX_LINK_URL_TTL);
        assert_eq!(url_ttl(&at(now + 1), now), Duration::from_secs(1));
        // (Never asked for once expired; still no zero or negative lifetime.)
        assert_eq!(url_ttl(&at(now), now), Duration::from_secs(1));
        assert_eq!(url_ttl(&at(i64::MIN), now), Duration::from_secs(1));
        assert_eq!(url_ttl(&at(i64::MAX), i64::MIN), MAX_LINK_URL_TTL);
    }

    #[test]
    fn config_needs_the_link_key() {
        let vars = |key: Option<&str>| {
            let mut map = HashMap::from([
                ("ARTIFACTS_TABLE", "t"),
                ("ARTIFACTS_BUCKET", "b"),
                ("ARTIFACTS_KMS_KEY_ID", "k"),
            ]);
            if let Some(key) = key {
                map.insert("ARTIFACTS_LINK_KEY_ID", key);
            }
            Config::from_lookup(|k| map.get(k).map(|v| v.to_string())).unwrap()
        };
        assert_eq!(
            check_config(&vars(None)).unwrap_err().var,
            "ARTIFACTS_LINK_KEY_ID"
        );
        check_config(&vars(Some("alias/links"))).unwrap();
    }

    #[test]
    fn urls_times_and_outcomes() {
        assert_eq!(
            link_url("https://api.example.com/", "p.m"),
            "https://api.example.com/v1/links/p.m"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00.000Z");
        assert_eq!(outcome_of(200), "served");
        assert_eq!(outcome_of(206), "served");
        assert_eq!(outcome_of(303), "redirected");
        assert_eq!(outcome_of(304), "not-modified");
        assert_eq!(outcome_of(416), "refused");
        assert_eq!(outcome_of(500), "failed");
        assert!(link_sk("x").starts_with(LINK_SK_PREFIX));
        assert!(link_pk("acme", "x").starts_with("acme#"));
        // Link items never collide with the artifact item or version items.
        assert!(!link_sk("x").starts_with("V#") && link_sk("x") != crate::metadata::ARTIFACT_SK);
    }
}
