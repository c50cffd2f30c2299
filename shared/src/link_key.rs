//! The link token and the key that vouches for it (SPEC §8): the token's
//! codec ([`LinkClaims`], `base64url(payload).base64url(mac)`), the KMS HMAC
//! key that makes and checks its MAC ([`LinkKey`]), and the per-container
//! limiter in front of `VerifyMac` ([`LinkGuard`]; why it exists and how it
//! is keyed: [`crate::links`]).
//!
//! An adapter below the links capability: it knows KMS and the token's
//! bytes, nothing of DynamoDB items or of the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::auth::is_valid_org;
use crate::error::{Error, Result};

pub(crate) const FORMAT_V1: u8 = 1;
pub(crate) const ID_LEN: usize = 16;
pub(crate) const MAC_LEN: usize = 32;
/// Longest possible v1 token (a 64-byte org) is 145 characters.
pub(crate) const MAX_TOKEN_LEN: usize = 256;
/// Requests one token may make in a burst, per container (see the module doc).
pub const LINK_BURST: u32 = 30;
/// The sustained rate a token's bucket refills at, per container.
pub const LINK_RATE_PER_SEC: u32 = 5;
/// Most tokens (and links) one container keeps limiter state for.
pub const GUARD_ENTRIES: usize = 10_000;

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
pub(crate) fn id_bytes(id: &str) -> Option<[u8; ID_LEN]> {
    if !is_id(id) {
        return None;
    }
    let mut out = [0u8; ID_LEN];
    hex::decode_to_slice(id, &mut out).ok()?;
    Some(out)
}

pub(crate) fn is_id(id: &str) -> bool {
    id.len() == 2 * ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn encode_token(payload: &[u8], mac: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// Split a token into payload and MAC, accepting only the one canonical
/// spelling of each, so two different strings are never the same token.
pub(crate) fn decode_token(token: &str) -> Option<(Vec<u8>, Vec<u8>)> {
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
    pub(crate) fn refusal_recorded(&self, link: &str, minute: i64) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.refusals.get(link) == Some(&minute)
    }

    pub(crate) fn note_refusal(&self, link: &str, minute: i64) {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed, valid set of claims (also used by `crate::links`' tests).
    pub(crate) fn claims() -> LinkClaims {
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
}
