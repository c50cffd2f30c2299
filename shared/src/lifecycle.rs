//! Lifecycle (SPEC §12): delete to the trash and restore, delete one
//! version, retention and expiry, keep-versions, merge-patch of an
//! artifact's settings, legal holds.
//!
//! # The visibility rule, in one place
//!
//! [`readable`] is the gate every read path calls (metadata, versions,
//! download, links, bundles; listings apply the same rule as a filter, see
//! [`listing_filter`]): a trashed artifact is the plain 404 of a missing id,
//! an expired one (past `expiresAt`, no hold) is 410 `expired` to its own
//! org — other orgs never reach its items and get the 404. A version hidden
//! for purge (`hiddenAt`: deleted, or beyond `keepVersions`) is absent
//! ([`crate::metadata::Metadata::version`]).
//!
//! # Storage
//!
//! The lifecycle lives on both artifact items (see [`crate::model::Lifecycle`]
//! for the attributes; the retention time is `retainUntil`, never the table's
//! TTL attribute `expiresAt`, which would remove items behind the purge's
//! back and skip the S3 crypto-shred). Trashing an artifact removes its path
//! item and releases its names (so the path can be written again, as a new
//! artifact), and moves its by-id item from the library index partition to
//! the trash partition (`{org}#T`, keyed by `deletedAt`). An artifact or
//! version that the purge must visit carries the due index keys
//! ([`crate::metadata::DUE_INDEX`]). Every state change is one
//! `TransactWriteItems` built from a `Vec` of actions, ending with its audit
//! record (SPEC §13, [`Store::audit_item`]): no change without its record.
//!
//! | action | items | record |
//! |---|---|---|
//! | `delete` (to trash) | by-id Update, path Delete, name releases | `artifact.deleted` |
//! | `restore` | by-id Put, path Put (absent), name claims | `artifact.restored` |
//! | `deleteVersion` | version Update (hide, due now), both artifact Puts | `version.deleted` |
//! | `patch` | both artifact Puts | `artifact.updated` |
//! | `hold`, `releaseHold` | both artifact Puts | `hold.set`, `hold.released` |
//! | `hideVersions` (keep-versions) | version Updates (hide, due now) | `version.deleted` each |
//!
//! The purge's records (`artifact.expired`, `artifact.purged`): see
//! [`crate::purge`]. At most 32 path segments keep every transaction far
//! below DynamoDB's 100 actions.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::audit::{Action, Actor, Origin, Record, Subject};
use crate::auth::{Principal, Scope};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metadata::{
    self, ARTIFACT_SK, DUE_PK, HIDDEN, artifact_items, artifact_pk, due_sk, name_sk, path_sk,
    version_sk, workflow_pk,
};
use crate::model::{self, Artifact, ArtifactPath, Hold, Lifecycle, NameKind};
use crate::store::Store;

/// Attempts of a state change that lost a race with a concurrent writer.
const MAX_ATTEMPTS: u32 = 16;
const DAY_SECS: i64 = 24 * 3600;
/// Largest `keepVersions`.
pub const MAX_KEEP_VERSIONS: u64 = 1_000_000;
/// Longest hold reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// The gate of every read path: `Ok` only for a live artifact.
pub fn readable(artifact: &Artifact, now: OffsetDateTime) -> Result<()> {
    if artifact.lifecycle.deleted_at.is_some() {
        return Err(Error::NotFound("artifact"));
    }
    if expired(&artifact.lifecycle, now) {
        return Err(Error::Expired);
    }
    Ok(())
}

/// Past `expiresAt` and not held.
pub fn expired(l: &Lifecycle, now: OffsetDateTime) -> bool {
    l.hold.is_none()
        && l.expires_at
            .as_deref()
            .is_some_and(|at| at <= model::rfc3339(now).as_str())
}

/// The DynamoDB filter that keeps what [`readable`] lets through (the
/// listings' and bundles' form of the gate): its expression and `:now`.
/// Trashed artifacts need no filter: they have no path item and their
/// by-id item left the library partition.
pub fn listing_filter(now: OffsetDateTime) -> (&'static str, String) {
    (
        "(attribute_not_exists(retainUntil) OR retainUntil > :lcnow OR attribute_exists(legalHold))",
        model::rfc3339(now),
    )
}

/// `x-artifact-retention-days`: a whole number of days, at least 1.
pub fn parse_days_header(value: &str) -> Result<u64> {
    let value = value.trim();
    value
        .parse::<u64>()
        .ok()
        .filter(|d| *d >= 1 && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Error::bad_request(
                "x-artifact-retention-days",
                "must be a whole number of days, at least 1",
            )
        })
}

/// `x-artifact-keep-versions`: a whole number from 1 to [`MAX_KEEP_VERSIONS`].
pub fn parse_keep_header(value: &str) -> Result<u64> {
    let value = value.trim();
    value
        .parse::<u64>()
        .ok()
        .filter(|n| {
            (1..=MAX_KEEP_VERSIONS).contains(n) && value.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or_else(|| {
            Error::bad_request(
                "x-artifact-keep-versions",
                format!("must be a whole number from 1 to {MAX_KEEP_VERSIONS}"),
            )
        })
}

/// Retention days as asked for, checked (≥ 1) and cut to
/// `ARTIFACTS_MAX_RETENTION_DAYS` (as GitHub does; the response shows the
/// effective `expiresAt`).
pub fn retention_days(config: &Config, field: &'static str, days: u64) -> Result<u64> {
    if days == 0 {
        return Err(Error::bad_request(field, "must be at least 1 day"));
    }
    Ok(match config.max_retention_days {
        0 => days.min(36500),
        cap => days.min(cap),
    })
}

/// `now` plus `days`, in the API's time format.
fn after_days(now: OffsetDateTime, days: u64) -> String {
    let days = i64::try_from(days).unwrap_or(36500).min(36500);
    model::rfc3339(now + time::Duration::seconds(days * DAY_SECS))
}

/// The lifecycle a version commit writes: the artifact's own, with the
/// clock restarted from this write unless `expiresAt` was set explicitly;
/// a new artifact gets `ARTIFACTS_DEFAULT_RETENTION_DAYS`.
pub(crate) fn on_commit(
    config: &Config,
    current: Option<&Lifecycle>,
    requested_days: Option<u64>,
    requested_keep: Option<u64>,
    now: OffsetDateTime,
) -> Lifecycle {
    let mut l = current.cloned().unwrap_or_default();
    if requested_keep.is_some() {
        l.keep_versions = requested_keep;
    }
    // The new version is the highest number from now on.
    l.highest_version = 0;
    if let Some(days) = requested_days {
        l.retention_days = Some(days);
        l.expires_fixed = false;
    } else if current.is_none() && config.default_retention_days > 0 {
        l.retention_days = Some(match config.max_retention_days {
            0 => config.default_retention_days,
            cap => config.default_retention_days.min(cap),
        });
    }
    if !l.expires_fixed
        && let Some(days) = l.retention_days
    {
        l.expires_at = Some(after_days(now, days));
    }
    l
}

/// A merge patch of an artifact's settings (`PATCH`, SPEC §12), parsed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Patch {
    /// `Some(None)`: `null` (keep forever).
    pub expires_at: Option<Option<String>>,
    pub retention_days: Option<Option<u64>>,
    pub keep_versions: Option<Option<u64>>,
    pub artifact_type: Option<String>,
    /// Key → `Some(value)` to set, `None` to remove.
    pub metadata: Option<BTreeMap<String, Option<String>>>,
    pub library: Option<bool>,
}

impl Patch {
    /// Parse an `application/merge-patch+json` body. Unknown fields and
    /// values of the wrong kind are a 400 naming the field.
    pub fn parse(body: &[u8], config: &Config, now: OffsetDateTime) -> Result<Patch> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| Error::bad_request("body", "must be a JSON object (merge patch)"))?;
        let Value::Object(fields) = value else {
            return Err(Error::bad_request(
                "body",
                "must be a JSON object (merge patch)",
            ));
        };
        let mut patch = Patch::default();
        for (name, value) in fields {
            match name.as_str() {
                "expiresAt" => {
                    patch.expires_at = Some(match value {
                        Value::Null => None,
                        Value::String(s) => Some(future_time(&s, now)?),
                        _ => {
                            return Err(Error::bad_request(
                                "expiresAt",
                                "must be an RFC 3339 time or null",
                            ));
                        }
                    });
                }
                "retentionDays" => {
                    patch.retention_days = Some(match value {
                        Value::Null => None,
                        v => Some(retention_days(
                            config,
                            "retentionDays",
                            whole(&v, "retentionDays")?,
                        )?),
                    });
                }
                "keepVersions" => {
                    patch.keep_versions = Some(match value {
                        Value::Null => None,
                        v => {
                            let n = whole(&v, "keepVersions")?;
                            if !(1..=MAX_KEEP_VERSIONS).contains(&n) {
                                return Err(Error::bad_request(
                                    "keepVersions",
                                    format!("must be from 1 to {MAX_KEEP_VERSIONS}, or null"),
                                ));
                            }
                            Some(n)
                        }
                    });
                }
                "artifactType" => match value {
                    Value::String(t) => {
                        model::validate_artifact_type(&t)?;
                        patch.artifact_type = Some(t);
                    }
                    _ => {
                        return Err(Error::bad_request(
                            "artifactType",
                            "must be a string (it cannot be removed)",
                        ));
                    }
                },
                "metadata" => patch.metadata = Some(metadata_patch(value)?),
                "library" => match value {
                    Value::Bool(b) => patch.library = Some(b),
                    _ => return Err(Error::bad_request("library", "must be true or false")),
                },
                other => {
                    return Err(Error::bad_request(
                        "body",
                        format!(
                            "unknown field {}; a patch may change expiresAt, retentionDays, \
                             keepVersions, artifactType, metadata, library",
                            crate::listing::shown(other)
                        ),
                    ));
                }
            }
        }
        Ok(patch)
    }

    /// `artifact` with the patch applied (validated as a whole).
    pub fn apply(&self, artifact: &Artifact, now: OffsetDateTime) -> Result<Artifact> {
        let mut a = artifact.clone();
        let l = &mut a.lifecycle;
        if let Some(days) = self.retention_days {
            l.retention_days = days;
            l.expires_fixed = false;
            l.expires_at = days.map(|d| after_days(now, d));
        }
        if let Some(at) = &self.expires_at {
            l.expires_fixed = at.is_some();
            l.expires_at = at.clone();
            if at.is_none() {
                l.retention_days = None;
            }
        }
        if let Some(keep) = self.keep_versions {
            l.keep_versions = keep;
        }
        if let Some(library) = self.library {
            l.library = library;
        }
        if let Some(t) = &self.artifact_type {
            a.artifact_type = t.clone();
        }
        if let Some(changes) = &self.metadata {
            for (k, v) in changes {
                match v {
                    Some(v) => a.metadata.insert(k.clone(), v.clone()),
                    None => a.metadata.remove(k),
                };
            }
            model::validate_metadata(&a.metadata)?;
        }
        Ok(a)
    }
}

fn whole(v: &Value, field: &'static str) -> Result<u64> {
    v.as_u64()
        .ok_or_else(|| Error::bad_request(field, "must be a whole number or null"))
}

fn metadata_patch(value: Value) -> Result<BTreeMap<String, Option<String>>> {
    let Value::Object(map) = value else {
        return Err(Error::bad_request(
            "metadata",
            "must be an object of string values (null removes a key)",
        ));
    };
    map_patch(map)
}

fn map_patch(map: Map<String, Value>) -> Result<BTreeMap<String, Option<String>>> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::Null => Ok((k, None)),
            Value::String(s) => Ok((k, Some(s))),
            _ => Err(Error::bad_request(
                "metadata",
                "values must be strings (null removes a key)",
            )),
        })
        .collect()
}

/// An RFC 3339 time after `now`, in the API's format.
fn future_time(text: &str, now: OffsetDateTime) -> Result<String> {
    let t = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| Error::bad_request("expiresAt", "must be an RFC 3339 time or null"))?;
    if t <= now {
        return Err(Error::bad_request("expiresAt", "must be in the future"));
    }
    Ok(model::rfc3339(t))
}

/// `{reason}` of `PUT …/hold`.
pub fn parse_hold_reason(body: &[u8]) -> Result<String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Error::bad_request("body", "must be a JSON object {\"reason\": …}"))?;
    let Value::Object(mut fields) = value else {
        return Err(Error::bad_request(
            "body",
            "must be a JSON object {\"reason\": …}",
        ));
    };
    if let Some(other) = fields.keys().find(|k| *k != "reason") {
        return Err(Error::bad_request(
            "body",
            format!("unknown field {}", crate::listing::shown(other)),
        ));
    }
    match fields.remove("reason") {
        Some(Value::String(r))
            if !r.trim().is_empty()
                && r.len() <= MAX_REASON_BYTES
                && !r.chars().any(char::is_control) =>
        {
            Ok(r)
        }
        _ => Err(Error::bad_request(
            "reason",
            format!("must be a non-empty string of at most {MAX_REASON_BYTES} bytes"),
        )),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn built<T, E: std::fmt::Debug>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::upstream("dynamodb", e))
}

/// Whether a `TransactWriteItems` error is a cancellation, and which
/// actions' conditions failed.
fn cancelled(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
    >,
) -> Option<Vec<bool>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match e.as_service_error() {
        Some(E::TransactionCanceledException(c)) => Some(
            c.cancellation_reasons()
                .iter()
                .map(|r| {
                    matches!(
                        r.code(),
                        Some("ConditionalCheckFailed" | "TransactionConflict")
                    )
                })
                .collect(),
        ),
        _ => None,
    }
}

impl Store {
    /// Run one state change. `Ok(None)`: applied; `Ok(Some(failed))`: the
    /// transaction was cancelled, `failed[i]` saying whether action `i`'s
    /// condition failed; anything else is an upstream error.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<bool>>> {
        let count = items.len();
        match self
            .metadata
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => match cancelled(&e) {
                Some(mut failed) => {
                    failed.resize(count, false);
                    Ok(Some(failed))
                }
                None => Err(Error::upstream("dynamodb", e)),
            },
        }
    }

    /// Put both artifact items as `artifact`, provided the stored ones are
    /// still at `seen`'s `latestVersion` and in the same trash state.
    pub(crate) fn artifact_puts(
        &self,
        org: &str,
        artifact: &Artifact,
        seen: &Artifact,
        with_path_item: bool,
    ) -> Result<Vec<TransactWriteItem>> {
        let [by_id, by_path] = artifact_items(org, artifact);
        let put = |item, extra: &str| -> Result<TransactWriteItem> {
            let condition = match &seen.lifecycle.deleted_at {
                Some(_) => format!("latestVersion = :seen AND deletedAt = :deleted{extra}"),
                None => format!("latestVersion = :seen AND attribute_not_exists(deletedAt){extra}"),
            };
            let mut put = Put::builder()
                .table_name(self.metadata.table())
                .set_item(Some(item))
                .condition_expression(condition)
                .expression_attribute_values(":seen", n(seen.latest_version));
            if let Some(d) = &seen.lifecycle.deleted_at {
                put = put.expression_attribute_values(":deleted", s(d));
            }
            Ok(TransactWriteItem::builder()
                .put(built(put.build())?)
                .build())
        };
        let mut items = vec![put(by_id, "")?];
        if with_path_item {
            items.push(put(by_path, "")?);
        }
        Ok(items)
    }

    /// The raw artifact (any state) of the caller's org; 404 if none.
    async fn stored(&self, org: &str, artifact_id: &str) -> Result<Artifact> {
        let artifact_id = model::parse_artifact_id(artifact_id)?;
        self.metadata
            .artifact(org, artifact_id)
            .await?
            .ok_or(Error::NotFound("artifact"))
    }

    /// `DELETE /v1/artifacts/{artifactId}`: to the trash; with `purge`
    /// (admin) purged at once.
    pub async fn delete_artifact(
        &self,
        principal: &Principal,
        artifact_id: &str,
        purge: bool,
        origin: &Origin,
    ) -> Result<()> {
        principal.require(Scope::Write)?;
        if purge {
            principal.require(Scope::Admin)?;
        }
        let org = principal.org.as_str();
        let actor = Actor::Sub(principal.subject.clone());
        for _ in 0..MAX_ATTEMPTS {
            let artifact = self.stored(org, artifact_id).await?;
            if let Some(hold) = &artifact.lifecycle.hold {
                return Err(Error::Held {
                    reason: hold.reason.clone(),
                });
            }
            if artifact.lifecycle.deleted_at.is_some() {
                if purge {
                    return self
                        .purge_artifact(org, &artifact.artifact_id, &actor, origin)
                        .await;
                }
                return Err(Error::Conflict(
                    "the artifact is already in the trash".into(),
                ));
            }
            let now = OffsetDateTime::now_utc();
            let purge_after = if purge {
                now
            } else {
                now + time::Duration::seconds(
                    i64::try_from(self.config.trash_days).unwrap_or(3650) * DAY_SECS,
                )
            };
            let record = Record::new(
                Action::ArtifactDeleted,
                actor.clone(),
                Subject::artifact(&artifact, None),
                origin,
            );
            match self
                .trash(
                    org,
                    &artifact,
                    &principal.subject,
                    now,
                    purge_after,
                    &record,
                )
                .await?
            {
                true => {
                    if purge {
                        return self
                            .purge_artifact(org, &artifact.artifact_id, &actor, origin)
                            .await;
                    }
                    return Ok(());
                }
                false => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
        Err(Error::Conflict(
            "the artifact kept changing; retry the delete".into(),
        ))
    }

    /// The `delete` transaction, with its audit `record`: `false` when a
    /// concurrent change won (read again and retry).
    pub(crate) async fn trash(
        &self,
        org: &str,
        artifact: &Artifact,
        by: &str,
        now: OffsetDateTime,
        purge_after: OffsetDateTime,
        record: &Record,
    ) -> Result<bool> {
        // An update, not a put: versions committed since `artifact` was read
        // stay recorded (no condition on latestVersion, so a stream of
        // writers cannot starve a delete; whoever commits after this
        // transaction finds no path item and starts a new artifact).
        let pk = artifact_pk(org, &artifact.artifact_id);
        let deleted_at = model::rfc3339(now);
        let purge_after = model::rfc3339(purge_after);
        let mut items = vec![
            TransactWriteItem::builder()
                .update(built(
                    Update::builder()
                        .table_name(self.metadata.table())
                        .key("pk", s(&pk))
                        .key("sk", s(ARTIFACT_SK))
                        .update_expression(format!(
                            "SET deletedAt = :at, deletedBy = :by, purgeAfter = :after, \
                             gsi1pk = :trash, gsi1sk = :tsk, gsi2pk = :due, gsi2sk = :dsk \
                             REMOVE {}",
                            metadata::LIVE_ONLY_INDEX_KEYS
                        ))
                        .condition_expression(
                            "attribute_exists(pk) AND attribute_not_exists(deletedAt) \
                             AND attribute_not_exists(legalHold)",
                        )
                        .expression_attribute_values(":at", s(&deleted_at))
                        .expression_attribute_values(":by", s(by))
                        .expression_attribute_values(":after", s(&purge_after))
                        .expression_attribute_values(":trash", s(metadata::trash_pk(org)))
                        .expression_attribute_values(
                            ":tsk",
                            s(metadata::library_sk(&deleted_at, &artifact.artifact_id)),
                        )
                        .expression_attribute_values(":due", s(DUE_PK))
                        .expression_attribute_values(
                            ":dsk",
                            s(due_sk(&purge_after, &pk, ARTIFACT_SK)),
                        )
                        .build(),
                )?)
                .build(),
        ];
        items.push(
            TransactWriteItem::builder()
                .delete(built(
                    Delete::builder()
                        .table_name(self.metadata.table())
                        .key("pk", s(workflow_pk(org, &artifact.workflow_id)))
                        .key("sk", s(path_sk(&artifact.path)))
                        .condition_expression("artifactId = :id")
                        .expression_attribute_values(":id", s(&artifact.artifact_id))
                        .build(),
                )?)
                .build(),
        );
        items.extend(self.name_releases(org, artifact).await?);
        items.push(self.audit_item(org, record)?);
        Ok(self.transact(items).await?.is_none())
    }

    /// The actions that give up an artifact's names in its workflow (see
    /// `crate::metadata`, "Releasing names"): its file name, and one
    /// reference of each ancestor directory (the item goes with the last).
    async fn name_releases(
        &self,
        org: &str,
        artifact: &Artifact,
    ) -> Result<Vec<TransactWriteItem>> {
        let path = ArtifactPath::parse(&artifact.path)
            .map_err(|_| Error::Integrity("stored path is invalid".into()))?;
        let pk = workflow_pk(org, &artifact.workflow_id);
        let mut items = Vec::new();
        for claim in path.claims() {
            let sk = name_sk(&claim.key);
            let action = match claim.kind {
                NameKind::File => TransactWriteItem::builder().delete(built(
                    Delete::builder()
                        .table_name(self.metadata.table())
                        .key("pk", s(&pk))
                        .key("sk", s(sk))
                        .condition_expression("attribute_not_exists(pk) OR artifactId = :id")
                        .expression_attribute_values(":id", s(&artifact.artifact_id))
                        .build(),
                )?),
                NameKind::Dir => {
                    let refs = match self.metadata.item(pk.clone(), sk.clone()).await? {
                        Some(item) => match item.get("refs") {
                            Some(AttributeValue::N(v)) => v.parse::<u64>().unwrap_or(0),
                            _ => 0,
                        },
                        None => 0,
                    };
                    if refs == 0 {
                        // Nothing to release (a name item from before names existed).
                        continue;
                    }
                    if refs == 1 {
                        TransactWriteItem::builder().delete(built(
                            Delete::builder()
                                .table_name(self.metadata.table())
                                .key("pk", s(&pk))
                                .key("sk", s(sk))
                                .condition_expression("refs = :one")
                                .expression_attribute_values(":one", n(1))
                                .build(),
                        )?)
                    } else {
                        TransactWriteItem::builder().update(built(
                            Update::builder()
                                .table_name(self.metadata.table())
                                .key("pk", s(&pk))
                                .key("sk", s(sk))
                                .update_expression("ADD refs :minus")
                                .condition_expression("refs = :seen")
                                .expression_attribute_values(
                                    ":minus",
                                    AttributeValue::N("-1".into()),
                                )
                                .expression_attribute_values(":seen", n(refs))
                                .build(),
                        )?)
                    }
                }
            };
            items.push(action.build());
        }
        Ok(items)
    }

    /// `POST /v1/artifacts/{artifactId}/restore`.
    pub async fn restore(
        &self,
        principal: &Principal,
        artifact_id: &str,
        origin: &Origin,
    ) -> Result<Artifact> {
        principal.require(Scope::Write)?;
        let org = principal.org.as_str();
        let trashed = self.stored(org, artifact_id).await?;
        let Some(purge_after) = trashed.lifecycle.purge_after.clone() else {
            return Err(Error::Conflict("the artifact is not in the trash".into()));
        };
        if purge_after.as_str() <= model::now_rfc3339().as_str() {
            return Err(Error::Gone("the artifact's trash period"));
        }
        let mut live = trashed.clone();
        live.lifecycle.deleted_at = None;
        live.lifecycle.deleted_by = None;
        live.lifecycle.purge_after = None;
        live.updated_at = model::now_rfc3339();
        live.updated_by = principal.subject.clone();
        let mut items = self.artifact_puts(org, &live, &trashed, false)?;
        let [_, by_path] = artifact_items(org, &live);
        items.push(
            TransactWriteItem::builder()
                .put(built(
                    Put::builder()
                        .table_name(self.metadata.table())
                        .set_item(Some(by_path))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build(),
        );
        let path = ArtifactPath::parse(&live.path)
            .map_err(|_| Error::Integrity("stored path is invalid".into()))?;
        for claim in path.claims() {
            items.push(self.metadata.name_claim(
                org,
                &live.workflow_id,
                &live.artifact_id,
                &claim,
            )?);
        }
        items.push(self.audit_item(
            org,
            &Record::new(
                Action::ArtifactRestored,
                Actor::Sub(principal.subject.clone()),
                Subject::artifact(&live, None),
                origin,
            ),
        )?);
        match self.transact(items).await? {
            None => Ok(live),
            Some(failed) if failed.first() == Some(&true) => Err(Error::Conflict(
                "the artifact changed meanwhile; retry the restore".into(),
            )),
            Some(_) => Err(Error::Conflict(format!(
                "path {:?} has been written since the artifact was deleted (or clashes with a \
                 path written since)",
                live.path
            ))),
        }
    }

    /// `DELETE /v1/artifacts/{artifactId}/versions/{version}`: hide the
    /// version and make it due now (one transaction), then purge it (S3
    /// object version and version item with its wrapped key). Interrupted
    /// after the transaction, the scheduled purge finishes it. The only
    /// remaining version takes the artifact to the trash instead.
    pub async fn delete_version(
        &self,
        principal: &Principal,
        artifact_id: &str,
        version: &str,
        origin: &Origin,
    ) -> Result<()> {
        principal.require(Scope::Write)?;
        let number = version
            .parse::<u64>()
            .ok()
            .filter(|v| *v >= 1 && version.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(Error::NotFound("version"))?;
        let org = principal.org.as_str();
        for _ in 0..MAX_ATTEMPTS {
            let artifact = self.artifact(principal, artifact_id).await?;
            if let Some(hold) = &artifact.lifecycle.hold {
                return Err(Error::Held {
                    reason: hold.reason.clone(),
                });
            }
            let id = artifact.artifact_id.clone();
            if self.metadata.version(org, &id, number).await?.is_none() {
                return Err(Error::NotFound("version"));
            }
            let newest = self.metadata.versions(org, &id, 2, None).await?;
            let Some(remaining) = newest
                .versions
                .iter()
                .find(|v| v.version != number)
                .cloned()
            else {
                // The only version left: the artifact goes to the trash.
                return self
                    .delete_artifact(principal, artifact_id, false, origin)
                    .await;
            };
            let now = OffsetDateTime::now_utc();
            let mut changed = artifact.clone();
            changed.lifecycle.highest_version = artifact
                .latest_version
                .max(artifact.lifecycle.highest_version);
            if number == artifact.latest_version {
                changed.latest_version = remaining.version;
                changed.size = remaining.size;
                changed.sha256 = remaining.sha256.clone();
                changed.content_type = remaining.content_type.clone();
            }
            changed.updated_at = model::rfc3339(now);
            changed.updated_by = principal.subject.clone();
            let mut items = vec![self.hide_version(org, &id, number, now)?];
            items.extend(self.artifact_puts(org, &changed, &artifact, true)?);
            items.push(self.audit_item(
                org,
                &Record::new(
                    Action::VersionDeleted,
                    Actor::Sub(principal.subject.clone()),
                    Subject::artifact(&artifact, Some(number)),
                    origin,
                ),
            )?);
            if self.transact(items).await?.is_none() {
                return self.purge_version(org, &id, number).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Err(Error::Conflict(
            "the artifact kept changing; retry the delete".into(),
        ))
    }

    /// The action that hides a version and puts it in the due index, due `now`.
    pub(crate) fn hide_version(
        &self,
        org: &str,
        artifact_id: &str,
        version: u64,
        now: OffsetDateTime,
    ) -> Result<TransactWriteItem> {
        let pk = artifact_pk(org, artifact_id);
        let sk = version_sk(version);
        let at = model::rfc3339(now);
        Ok(TransactWriteItem::builder()
            .update(built(
                Update::builder()
                    .table_name(self.metadata.table())
                    .key("pk", s(&pk))
                    .key("sk", s(&sk))
                    .update_expression("SET #hidden = :at, gsi2pk = :due, gsi2sk = :dsk")
                    .condition_expression("attribute_exists(pk) AND attribute_not_exists(#hidden)")
                    .expression_attribute_names("#hidden", HIDDEN)
                    .expression_attribute_values(":at", s(&at))
                    .expression_attribute_values(":due", s(DUE_PK))
                    .expression_attribute_values(":dsk", s(due_sk(&at, &pk, &sk)))
                    .build(),
            )?)
            .build())
    }

    /// `keepVersions`: hide (and make due) every visible version older than
    /// the N newest, each with its `version.deleted` record by `actor` (who
    /// committed or patched). Best effort after a commit or patch: what it
    /// misses the next commit hides.
    pub(crate) async fn hide_old_versions(
        &self,
        org: &str,
        artifact: &Artifact,
        actor: &Actor,
        origin: &Origin,
    ) -> Result<()> {
        let Some(keep) = artifact.lifecycle.keep_versions else {
            return Ok(());
        };
        let page = self
            .metadata
            .versions(org, &artifact.artifact_id, 100, None)
            .await?;
        let now = OffsetDateTime::now_utc();
        let old: Vec<u64> = page
            .versions
            .iter()
            .skip(usize::try_from(keep).unwrap_or(usize::MAX))
            .map(|v| v.version)
            .collect();
        // A hide and its record per version: 50 versions fill a transaction.
        for chunk in old.chunks(50) {
            let mut items = Vec::with_capacity(chunk.len() * 2);
            for v in chunk {
                items.push(self.hide_version(org, &artifact.artifact_id, *v, now)?);
                items.push(self.audit_item(
                    org,
                    &Record::new(
                        Action::VersionDeleted,
                        actor.clone(),
                        Subject::artifact(artifact, Some(*v)),
                        origin,
                    ),
                )?);
            }
            // A version hidden meanwhile cancels the chunk: the next pass takes it.
            self.transact(items).await?;
        }
        Ok(())
    }

    /// `PATCH /v1/artifacts/{artifactId}` with an `application/merge-patch+json` body.
    pub async fn patch_artifact(
        &self,
        principal: &Principal,
        artifact_id: &str,
        body: &[u8],
        if_match: Option<u64>,
        origin: &Origin,
    ) -> Result<Artifact> {
        principal.require(Scope::Write)?;
        let org = principal.org.as_str();
        let patch = Patch::parse(body, &self.config, OffsetDateTime::now_utc())?;
        for _ in 0..MAX_ATTEMPTS {
            let artifact = self.artifact(principal, artifact_id).await?;
            if let Some(expected) = if_match
                && expected != artifact.latest_version
            {
                return Err(Error::Conflict(format!(
                    "latest version is {}, not {expected}",
                    artifact.latest_version
                )));
            }
            let now = OffsetDateTime::now_utc();
            let mut changed = patch.apply(&artifact, now)?;
            changed.updated_at = model::rfc3339(now);
            changed.updated_by = principal.subject.clone();
            let actor = Actor::Sub(principal.subject.clone());
            let mut items = self.artifact_puts(org, &changed, &artifact, true)?;
            items.push(self.audit_item(
                org,
                &Record::new(
                    Action::ArtifactUpdated,
                    actor.clone(),
                    Subject::artifact(&changed, None),
                    origin,
                ),
            )?);
            if self.transact(items).await?.is_none() {
                if changed.lifecycle.keep_versions.is_some() {
                    self.hide_old_versions(org, &changed, &actor, origin)
                        .await?;
                }
                return Ok(changed);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Err(Error::Conflict(
            "the artifact kept changing; retry the patch".into(),
        ))
    }

    /// `PUT /v1/artifacts/{artifactId}/hold` (`reason`) or, with `None`,
    /// `DELETE …/hold`. Admin only. A hold keeps an expired (not yet purged)
    /// artifact: it is readable again while held.
    pub async fn set_hold(
        &self,
        principal: &Principal,
        artifact_id: &str,
        reason: Option<String>,
        origin: &Origin,
    ) -> Result<Artifact> {
        principal.require(Scope::Admin)?;
        let org = principal.org.as_str();
        for _ in 0..MAX_ATTEMPTS {
            let artifact = self.stored(org, artifact_id).await?;
            if artifact.lifecycle.deleted_at.is_some() {
                return Err(Error::NotFound("artifact"));
            }
            if reason.is_none() && artifact.lifecycle.hold.is_none() {
                return Err(Error::Conflict("the artifact is not under a hold".into()));
            }
            let now = model::now_rfc3339();
            let mut changed = artifact.clone();
            changed.lifecycle.hold = reason.clone().map(|reason| Hold {
                reason,
                held_at: now.clone(),
                held_by: principal.subject.clone(),
            });
            changed.updated_at = now;
            changed.updated_by = principal.subject.clone();
            let action = match reason {
                Some(_) => Action::HoldSet,
                None => Action::HoldReleased,
            };
            let mut items = self.artifact_puts(org, &changed, &artifact, true)?;
            items.push(self.audit_item(
                org,
                &Record::new(
                    action,
                    Actor::Sub(principal.subject.clone()),
                    Subject::artifact(&changed, None),
                    origin,
                ),
            )?);
            if self.transact(items).await?.is_none() {
                return Ok(changed);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Err(Error::Conflict("the artifact kept changing; retry".into()))
    }
}

/// The raw keys of an item, for deletes.
pub(crate) fn key_of(item: &HashMap<String, AttributeValue>) -> Option<(String, String)> {
    match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
            Some((pk.clone(), sk.clone()))
        }
        _ => None,
    }
}

/// The by-id key of an artifact, for the purge.
pub(crate) fn artifact_key(org: &str, artifact_id: &str) -> (String, String) {
    (artifact_pk(org, artifact_id), ARTIFACT_SK.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn expiry_is_inclusive_and_a_hold_stops_it() {
        let mut l = Lifecycle {
            expires_at: Some("2026-01-01T00:00:00.000Z".into()),
            ..Default::default()
        };
        assert!(!expired(&l, t("2025-12-31T23:59:59.999Z")));
        assert!(expired(&l, t("2026-01-01T00:00:00Z")));
        l.hold = Some(Hold {
            reason: "r".into(),
            held_at: "x".into(),
            held_by: "y".into(),
        });
        assert!(!expired(&l, t("2027-01-01T00:00:00Z")));
        assert_eq!(l.due_at(), None);
    }

    #[test]
    fn retention_days_header_is_strict() {
        assert_eq!(parse_days_header("7").unwrap(), 7);
        for bad in ["0", "-1", "1.5", "x", "", "+3"] {
            assert!(parse_days_header(bad).is_err(), "{bad}");
        }
    }

    fn config(max: &str) -> Config {
        let vars = HashMap::from([
            ("ARTIFACTS_TABLE", "t"),
            ("ARTIFACTS_BUCKET", "b"),
            ("ARTIFACTS_KMS_KEY_ID", "k"),
            ("ARTIFACTS_MAX_RETENTION_DAYS", max),
        ]);
        Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap()
    }

    #[test]
    fn retention_is_capped_and_restarts_unless_fixed() {
        let c = config("30");
        assert_eq!(retention_days(&c, "f", 90).unwrap(), 30);
        assert!(retention_days(&c, "f", 0).is_err());
        let now = t("2026-01-01T00:00:00Z");
        let l = on_commit(&c, None, Some(30), None, now);
        assert_eq!(l.expires_at.as_deref(), Some("2026-01-31T00:00:00.000Z"));
        let later = on_commit(&c, Some(&l), None, None, t("2026-01-02T00:00:00Z"));
        assert_eq!(
            later.expires_at.as_deref(),
            Some("2026-02-01T00:00:00.000Z")
        );
        let fixed = Lifecycle {
            expires_at: Some("2026-06-01T00:00:00.000Z".into()),
            expires_fixed: true,
            retention_days: Some(5),
            ..Default::default()
        };
        let kept = on_commit(&c, Some(&fixed), None, None, now);
        assert_eq!(kept.expires_at, fixed.expires_at);
    }

    #[test]
    fn patches_name_the_bad_field() {
        let c = config("0");
        let now = t("2026-01-01T00:00:00Z");
        let field = |body: &str| match Patch::parse(body.as_bytes(), &c, now) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            field(r#"{"expiresAt":"2020-01-01T00:00:00Z"}"#),
            "expiresAt"
        );
        assert_eq!(field(r#"{"expiresAt":"tomorrow"}"#), "expiresAt");
        assert_eq!(field(r#"{"retentionDays":0}"#), "retentionDays");
        assert_eq!(field(r#"{"retentionDays":-3}"#), "retentionDays");
        assert_eq!(field(r#"{"keepVersions":0}"#), "keepVersions");
        assert_eq!(field(r#"{"colour":"red"}"#), "body");
        assert_eq!(field(r#"{"metadata":{"k":1}}"#), "metadata");
        assert_eq!(field(r#"{"library":"yes"}"#), "library");
        assert_eq!(field("[]"), "body");
        let p = Patch::parse(
            br#"{"expiresAt":null,"metadata":{"a":"1","b":null},"library":true}"#,
            &c,
            now,
        )
        .unwrap();
        assert_eq!(p.expires_at, Some(None));
        assert_eq!(p.library, Some(true));
    }
}
