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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::auth::{Principal, Scope, is_valid_org};
use crate::config::{Config, ConfigError};
use crate::error::{Error, Result};
use crate::http;
use crate::metadata::{self, VersionRecord, artifact_pk, version_sk};
use crate::model::Artifact;
use crate::store::Store;

/// `expiresIn` when the request names none.
pub const DEFAULT_EXPIRES_IN: i64 = 3600;
pub const MIN_EXPIRES_IN: i64 = 60;
/// SPEC §8: expiry ≤ 7 days.
pub const MAX_EXPIRES_IN: i64 = 7 * 24 * 3600;
/// How long a use record is kept after the use.
pub const USE_RETENTION_SECS: i64 = 90 * 24 * 3600;

const FORMAT_V1: u8 = 1;
const ID_LEN: usize = 16;
const MAC_LEN: usize = 32;
/// Longest possible v1 token (a 64-byte org) is 145 characters.
const MAX_TOKEN_LEN: usize = 256;
const LINK_SK_PREFIX: &str = "L#";
const POINTER_SK: &str = "#LINK";
const USE_SK_PREFIX: &str = "U#";
/// Listing reads at most this many 1 MB pages of one artifact's link items.
const MAX_LIST_PAGES: usize = 64;
/// A link download over the direct limit is a 303 to a presigned S3 GET
/// valid for what is left of the link's life, and never longer than this:
/// a revoked or expired link stops serving within it.
pub const MAX_LINK_URL_TTL: Duration = Duration::from_secs(60);
/// Requests one token may make in a burst, per container (see the module doc).
pub const LINK_BURST: u32 = 30;
/// The sustained rate a token's bucket refills at, per container.
pub const LINK_RATE_PER_SEC: u32 = 5;
/// Most tokens (and links) one container keeps limiter state for.
pub const GUARD_ENTRIES: usize = 10_000;
/// Refused uses of a link are recorded at most once per this many seconds.
pub const REFUSED_USE_WINDOW_SECS: i64 = 60;

/// What a token says, authenticated by its MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub org: String,
    /// 32 lowercase hex digits.
    pub artifact_id: String,
    /// 32 lowercase hex digits.
    pub link_id: String,
    pub version: u64,
    /// Unix seconds; the link is dead from this second on.
    pub expires_at: i64,
}

impl LinkClaims {
    /// The payload, format 1 (big-endian, fixed layout, nothing optional):
    ///
    /// | bytes | field |
    /// |---|---|
    /// | 1 | format = 1 |
    /// | 1 | org length n (1–64) |
    /// | n | org (`[A-Za-z0-9_-]`) |
    /// | 16 | artifactId |
    /// | 16 | linkId |
    /// | 8 | version (u64, ≥ 1) |
    /// | 8 | expiresAt (i64 Unix seconds) |
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let malformed = || Error::Integrity("link claims are malformed".into());
        let artifact = id_bytes(&self.artifact_id).ok_or_else(malformed)?;
        let link = id_bytes(&self.link_id).ok_or_else(malformed)?;
        if !is_valid_org(&self.org) || self.version == 0 {
            return Err(malformed());
        }
        let mut out = Vec::with_capacity(2 + self.org.len() + 2 * ID_LEN + 16);
        out.push(FORMAT_V1);
        out.push(self.org.len() as u8);
        out.extend_from_slice(self.org.as_bytes());
        out.extend_from_slice(&artifact);
        out.extend_from_slice(&link);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        Ok(out)
    }

    /// Parse a payload strictly: exactly one layout, no trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&format, rest) = bytes.split_first()?;
        let (&org_len, rest) = rest.split_first()?;
        let org_len = usize::from(org_len);
        if format != FORMAT_V1 || rest.len() != org_len + 2 * ID_LEN + 16 {
            return None;
        }
        let (org, rest) = rest.split_at(org_len);
        let org = std::str::from_utf8(org).ok().filter(|o| is_valid_org(o))?;
        let (artifact, rest) = rest.split_at(ID_LEN);
        let (link, rest) = rest.split_at(ID_LEN);
        let (version, expires_at) = rest.split_at(8);
        let version = u64::from_be_bytes(version.try_into().ok()?);
        let expires_at = i64::from_be_bytes(expires_at.try_into().ok()?);
        (version >= 1).then(|| LinkClaims {
            org: org.to_owned(),
            artifact_id: hex::encode(artifact),
            link_id: hex::encode(link),
            version,
            expires_at,
        })
    }
}

/// 32 lowercase hex digits → 16 bytes.
fn id_bytes(id: &str) -> Option<[u8; ID_LEN]> {
    if !is_id(id) {
        return None;
    }
    let mut out = [0u8; ID_LEN];
    hex::decode_to_slice(id, &mut out).ok()?;
    Some(out)
}

fn is_id(id: &str) -> bool {
    id.len() == 2 * ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn encode_token(payload: &[u8], mac: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// Split a token into payload and MAC, accepting only the one canonical
/// spelling of each, so two different strings are never the same token.
fn decode_token(token: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (payload, mac) = token.split_once('.')?;
    let payload_bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let mac_bytes = URL_SAFE_NO_PAD.decode(mac).ok()?;
    let canonical = URL_SAFE_NO_PAD.encode(&payload_bytes) == payload
        && URL_SAFE_NO_PAD.encode(&mac_bytes) == mac;
    (canonical && !payload_bytes.is_empty() && mac_bytes.len() == MAC_LEN)
        .then_some((payload_bytes, mac_bytes))
}

/// Per-container bounds on what link requests cost (see the module doc): a
/// token bucket per token in front of `VerifyMac`, and the minute of the
/// last refused-use record per link.
#[derive(Debug, Default)]
pub struct LinkGuard {
    state: Mutex<GuardState>,
}

#[derive(Debug, Default)]
struct GuardState {
    buckets: HashMap<String, Bucket>,
    /// `{org}#{linkId}` → the start of the minute whose refused-use record
    /// this container has written or found.
    refusals: HashMap<String, i64>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * f64::from(LINK_RATE_PER_SEC)).min(f64::from(LINK_BURST))
    }
}

impl LinkGuard {
    /// Take one request from `token`'s bucket at `now`, or say how long until
    /// one is available.
    pub fn admit(&self, token: &str, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.buckets.contains_key(token) && state.buckets.len() >= GUARD_ENTRIES {
            let full = f64::from(LINK_BURST);
            state.buckets.retain(|_, b| b.refilled(now) < full);
            if state.buckets.len() >= GUARD_ENTRIES {
                state.buckets.clear();
            }
        }
        let bucket = state.buckets.entry(token.to_owned()).or_insert(Bucket {
            tokens: f64::from(LINK_BURST),
            at: now,
        });
        let tokens = bucket.refilled(now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            let wait = (1.0 - tokens) / f64::from(LINK_RATE_PER_SEC);
            Err(Duration::from_secs_f64(wait))
        }
    }

    /// Whether this container already wrote (or found) `link`'s refused-use
    /// record for the minute starting at `minute`.
    fn refusal_recorded(&self, link: &str, minute: i64) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.refusals.get(link) == Some(&minute)
    }

    fn note_refusal(&self, link: &str, minute: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.refusals.len() >= GUARD_ENTRIES {
            state.refusals.retain(|_, m| *m >= minute);
            if state.refusals.len() >= GUARD_ENTRIES {
                state.refusals.clear();
            }
        }
        state.refusals.insert(link.to_owned(), minute);
    }
}

/// The KMS HMAC key (`ARTIFACTS_LINK_KEY_ID`) that signs and checks tokens,
/// with the per-container [`LinkGuard`] in front of it.
#[derive(Debug, Clone)]
pub struct LinkKey {
    kms: aws_sdk_kms::Client,
    key_id: Option<String>,
    guard: Arc<LinkGuard>,
}

impl LinkKey {
    pub fn new(kms: aws_sdk_kms::Client, key_id: Option<String>) -> Self {
        LinkKey {
            kms,
            key_id,
            guard: Arc::default(),
        }
    }

    /// The limiter state of this key (one per container).
    pub fn guard(&self) -> &LinkGuard {
        &self.guard
    }

    fn key_id(&self) -> Result<&str> {
        // Functions serving links refuse to start without it (check_config).
        self.key_id
            .as_deref()
            .ok_or_else(|| Error::upstream("config", "no link key is configured"))
    }

    /// Sign `claims` into a token: one `GenerateMac`.
    pub async fn sign(&self, claims: &LinkClaims) -> Result<String> {
        let payload = claims.to_bytes()?;
        let out = self
            .kms
            .generate_mac()
            .key_id(self.key_id()?)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(payload.clone()))
            .send()
            .await
            .map_err(|e| Error::upstream("kms", e))?;
        let mac = out
            .mac()
            .map(|m| m.as_ref())
            .filter(|m| m.len() == MAC_LEN)
            .ok_or_else(|| Error::upstream("kms", "GenerateMac returned no 32-byte MAC"))?;
        Ok(encode_token(&payload, mac))
    }

    /// The claims of a token this key signed: at most one `VerifyMac`, none
    /// for a string that is not shaped like a token, and none past the
    /// token's rate limit (429). Anything not signed by this key is 404,
    /// exactly like a link that never existed.
    pub async fn verify(&self, token: &str) -> Result<LinkClaims> {
        const NOT_A_LINK: Error = Error::NotFound("link");
        let (payload, mac) = decode_token(token).ok_or(NOT_A_LINK)?;
        let claims = LinkClaims::from_bytes(&payload).ok_or(NOT_A_LINK)?;
        self.guard
            .admit(token, Instant::now())
            .map_err(|wait| Error::RateLimited {
                retry_after: wait.as_secs().max(1),
            })?;
        let verified = self
            .kms
            .verify_mac()
            .key_id(self.key_id()?)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(payload))
            .mac(Blob::new(mac))
            .send()
            .await;
        match verified {
            Ok(out) if out.mac_valid() => Ok(claims),
            Ok(_) => Err(NOT_A_LINK),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_kms_invalid_mac_exception()) =>
            {
                Err(NOT_A_LINK)
            }
            Err(e) => Err(Error::upstream("kms", e)),
        }
    }
}

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
            artifact_id: artifact.artifact_id,
            link_id: uuid::Uuid::new_v4().simple().to_string(),
            version,
            expires_at: now + expires_in,
        };
        let token = self.link_key.sign(&claims).await?;
        self.put_link(&claims, &principal.subject, now).await?;
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
    pub async fn revoke_link(&self, principal: &Principal, link_id: &str, now: i64) -> Result<()> {
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
        let updated = self
            .metadata
            .client()
            .update_item()
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
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
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
        Ok(match (artifact?, record?) {
            (Some(artifact), Some(record)) => LinkState::Live(Box::new(OpenLink {
                claims: claims.clone(),
                artifact,
                record,
                url_ttl: url_ttl(claims, now),
            })),
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

    /// The link item and its id pointer, together or not at all.
    async fn put_link(&self, claims: &LinkClaims, created_by: &str, now: i64) -> Result<()> {
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

    fn claims() -> LinkClaims {
        LinkClaims {
            org: "acme".into(),
            artifact_id: "00112233445566778899aabbccddeeff".into(),
            link_id: "ffeeddccbbaa99887766554433221100".into(),
            version: 3,
            expires_at: 1_800_000_000,
        }
    }

    #[test]
    fn payload_known_answer_and_round_trip() {
        let bytes = claims().to_bytes().unwrap();
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "01",
                "04",
                "61636d65",
                "00112233445566778899aabbccddeeff",
                "ffeeddccbbaa99887766554433221100",
                "0000000000000003",
                "000000006b49d200",
            )
        );
        assert_eq!(LinkClaims::from_bytes(&bytes), Some(claims()));
        let long = LinkClaims {
            org: "o".repeat(64),
            ..claims()
        };
        let bytes = long.to_bytes().unwrap();
        assert_eq!(LinkClaims::from_bytes(&bytes), Some(long));
        // The longest token stays well under the accepted length.
        assert!(encode_token(&bytes, &[0; MAC_LEN]).len() <= MAX_TOKEN_LEN);
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        let good = claims().to_bytes().unwrap();
        for len in 0..good.len() {
            assert_eq!(
                LinkClaims::from_bytes(&good[..len]),
                None,
                "truncated {len}"
            );
        }
        let mut cases = Vec::new();
        let mut trailing = good.clone();
        trailing.push(0);
        cases.push(trailing);
        let mut format = good.clone();
        format[0] = 2;
        cases.push(format);
        let mut longer_org = good.clone();
        longer_org[1] = 5;
        cases.push(longer_org);
        let mut bad_org = good.clone();
        bad_org[3] = b'#';
        cases.push(bad_org);
        let mut version_zero = good.clone();
        let v = 2 + 4 + 2 * ID_LEN;
        version_zero[v..v + 8].copy_from_slice(&[0; 8]);
        cases.push(version_zero);
        let empty_org = [vec![FORMAT_V1, 0], good[6..].to_vec()].concat();
        cases.push(empty_org);
        for case in cases {
            assert_eq!(
                LinkClaims::from_bytes(&case),
                None,
                "{}",
                hex::encode(&case)
            );
        }
        for bad in [
            LinkClaims {
                org: "a#b".into(),
                ..claims()
            },
            LinkClaims {
                artifact_id: "XYZ".into(),
                ..claims()
            },
            LinkClaims {
                link_id: "00112233445566778899AABBCCDDEEFF".into(),
                ..claims()
            },
            LinkClaims {
                version: 0,
                ..claims()
            },
        ] {
            assert!(bad.to_bytes().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_have_one_canonical_spelling() {
        let payload = claims().to_bytes().unwrap();
        let mac = [7u8; MAC_LEN];
        let token = encode_token(&payload, &mac);
        assert_eq!(decode_token(&token), Some((payload.clone(), mac.to_vec())));
        let (p, m) = token.split_once('.').unwrap();
        // Base64 of 32 bytes ends in a character carrying 2 unused bits:
        // another character with the same 4 used bits is not the same token.
        let last = m.as_bytes()[m.len() - 1];
        let twin = (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain([b'-', b'_'])
            .find(|&c| {
                c != last
                    && URL_SAFE_NO_PAD
                        .decode(format!("{}{}", &m[..m.len() - 1], c as char))
                        .is_ok_and(|d| d == mac)
            });
        assert_eq!(twin, None, "a non-canonical MAC spelling decodes");
        for bad in [
            String::new(),
            ".".into(),
            p.to_owned(),
            format!("{p}."),
            format!(".{m}"),
            format!("{token}.{m}"),
            format!("{p}.{}", URL_SAFE_NO_PAD.encode([7u8; 31])),
            format!("{p}.{}", URL_SAFE_NO_PAD.encode([7u8; 33])),
            format!("{p}={m}"),
            format!("{p}.{m}="),
            format!("{p} .{m}"),
            token.replace('.', "+"),
            format!("{}.{m}", "A".repeat(MAX_TOKEN_LEN)),
        ] {
            assert_eq!(decode_token(&bad), None, "{bad:?}");
        }
    }

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
    fn refusals_are_remembered_per_link_and_minute() {
        let guard = LinkGuard::default();
        assert!(!guard.refusal_recorded("acme#l1", 60));
        guard.note_refusal("acme#l1", 60);
        assert!(guard.refusal_recorded("acme#l1", 60));
        assert!(!guard.refusal_recorded("acme#l1", 120));
        assert!(!guard.refusal_recorded("acme#l2", 60));
        for i in 0..GUARD_ENTRIES + 5 {
            guard.note_refusal(&format!("acme#{i}"), 120);
        }
        let entries = guard.state.lock().unwrap().refusals.len();
        assert!(entries <= GUARD_ENTRIES, "{entries}");
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
