//! The purge (SPEC §12): removes for good what is due — trashed artifacts
//! past `purgeAfter`, expired artifacts, hidden versions — found through the
//! sparse due index ([`crate::metadata::DUE_INDEX`]), never a scan.
//!
//! # Order, safe to interrupt
//!
//! An artifact is purged in steps, each idempotent, and the by-id item (which
//! carries the due index keys) goes last, so a purge stopped at any step is
//! found and finished by the next run:
//!
//! 1. `purgeTrash`: a live (expired, or `?purge=true`) artifact is first
//!    trashed — path item and names released, by-id item marked — in one
//!    transaction with its record (`artifact.expired` by the scheduled
//!    purge, `artifact.deleted` by a caller); from then on every read
//!    answers 404.
//! 2. Every S3 object version and delete marker of the content key
//!    (`ListObjectVersions`, `DeleteObjects` by 1000).
//! 3. `purgeItems`: the link pointers and use records of its links, then
//!    every item of the artifact's partition but the by-id item: version
//!    items (the wrapped data keys: this is the crypto-shred — without them
//!    no copy of the ciphertext can be decrypted) and link items, in
//!    transactions of up to 100 deletes.
//! 4. `purge`: the by-id item (condition: still trashed), in one
//!    transaction with the `artifact.purged` record. Records live in their
//!    own partition (`{org}#AU#{artifactId}`), so the history outlives the
//!    artifact and ends with its purge.
//!
//! The scheduled purge acts as [`Actor::System`] (`purge`), with the
//! invocation's request id as the origin; `DELETE ?purge=true` as the caller.
//!
//! A hidden version is purged in two steps: its S3 object version, then its
//! version item (`purgeVersion`, condition: still hidden). It is recorded
//! once, when it was hidden (`version.deleted`, see [`crate::lifecycle`]).
//!
//! Not covered: DynamoDB point-in-time backups keep wrapped keys for up to
//! 35 days, and S3 keeps nothing once a version is deleted (the bucket has no
//! replication or Object Lock).

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::{Action, Actor, Origin, Record, Subject};
use crate::content::content_key;
use crate::error::{Error, Result};
use crate::lifecycle::{artifact_key, key_of};
use crate::metadata::{ARTIFACT_SK, DUE_INDEX, DUE_PK, HIDDEN, artifact_pk, version_sk};
use crate::model;
use crate::store::Store;

/// Items of the due index read per Query.
const DUE_PAGE: i32 = 100;
/// Deletes per transaction (DynamoDB's limit).
const DELETES_PER_TRANSACTION: usize = 100;

/// What one purge run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    pub artifacts: u64,
    pub versions: u64,
    /// Found in the index but no longer due (held, restored, extended).
    pub skipped: u64,
    /// Items whose purge failed this time (the next run retries them).
    pub failed: u64,
    /// Due items were left for the next run (the deadline or `max` came first).
    pub remaining: bool,
}

impl Store {
    /// Purge what is due at `now`, stopping before `deadline` or after
    /// `max` items; failures are logged and left for the next run. Records
    /// name the purge ([`Actor::purge`]) and `origin` (the invocation).
    pub async fn purge_due(
        &self,
        now: OffsetDateTime,
        deadline: Instant,
        max: u64,
        origin: &Origin,
    ) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        // `#` < `$`: every due time up to and including `now`.
        let upper = format!("{}$", model::rfc3339(now));
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .metadata
                .client()
                .query()
                .table_name(self.metadata.table())
                .index_name(DUE_INDEX)
                .key_condition_expression("gsi2pk = :due AND gsi2sk < :upper")
                .expression_attribute_values(":due", AttributeValue::S(DUE_PK.into()))
                .expression_attribute_values(":upper", AttributeValue::S(upper.clone()))
                .projection_expression("pk, sk")
                .limit(DUE_PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            for item in out.items() {
                if Instant::now() >= deadline
                    || report.artifacts + report.versions + report.failed >= max
                {
                    report.remaining = true;
                    return Ok(report);
                }
                let Some((pk, sk)) = key_of(item) else {
                    continue;
                };
                let Some((org, artifact_id)) = pk.rsplit_once("#A#") else {
                    continue;
                };
                let outcome = if sk == ARTIFACT_SK {
                    self.purge_if_due(org, artifact_id, now, origin)
                        .await
                        .map(|purged| {
                            if purged {
                                report.artifacts += 1;
                            } else {
                                report.skipped += 1;
                            }
                        })
                } else if let Some(number) =
                    sk.strip_prefix("V#").and_then(|v| v.parse::<u64>().ok())
                {
                    self.purge_version(org, artifact_id, number)
                        .await
                        .map(|()| report.versions += 1)
                } else {
                    Ok(())
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, artifact_id, "purge step failed; the next run retries");
                    report.failed += 1;
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(report),
            }
        }
    }

    /// Purge an artifact the index says is due, if its item (read strongly
    /// consistent: the index lags) agrees.
    async fn purge_if_due(
        &self,
        org: &str,
        artifact_id: &str,
        now: OffsetDateTime,
        origin: &Origin,
    ) -> Result<bool> {
        let Some(artifact) = self.metadata.artifact(org, artifact_id).await? else {
            return Ok(false);
        };
        let due = artifact
            .lifecycle
            .due_at()
            .is_some_and(|at| at <= model::rfc3339(now).as_str());
        if !due {
            return Ok(false);
        }
        self.purge_artifact(org, artifact_id, &Actor::purge(), origin)
            .await?;
        Ok(true)
    }

    /// Remove an artifact for good (see the module doc for the order), as
    /// `actor`: a live artifact is trashed first, recorded as expired when
    /// the actor is the service, as deleted when it is a caller.
    pub async fn purge_artifact(
        &self,
        org: &str,
        artifact_id: &str,
        actor: &Actor,
        origin: &Origin,
    ) -> Result<()> {
        // 1. Trashed first, so nothing is readable from here on.
        let mut attempts = 0;
        let subject = loop {
            let Some(artifact) = self.metadata.artifact(org, artifact_id).await? else {
                return Ok(());
            };
            if artifact.lifecycle.deleted_at.is_some() {
                break Subject::artifact(&artifact, None);
            }
            if let Some(hold) = &artifact.lifecycle.hold {
                return Err(Error::Held {
                    reason: hold.reason.clone(),
                });
            }
            let now = OffsetDateTime::now_utc();
            let (by, action) = match actor {
                Actor::Sub(sub) => (sub.as_str(), Action::ArtifactDeleted),
                Actor::System(_) | Actor::LinkId(_) => (Actor::PURGE, Action::ArtifactExpired),
            };
            let record = Record::new(
                action,
                actor.clone(),
                Subject::artifact(&artifact, None),
                origin,
            );
            if self.trash(org, &artifact, by, now, now, &record).await? {
                break Subject::artifact(&artifact, None);
            }
            attempts += 1;
            if attempts >= 16 {
                return Err(Error::Conflict("the artifact kept changing".into()));
            }
        };

        // 2. The content: every object version and delete marker.
        let key = content_key(org, artifact_id);
        loop {
            let versions = self.content.versions_of(&key, 1000).await?;
            if versions.is_empty() {
                break;
            }
            self.content.delete_versions(&key, &versions).await?;
        }

        // 3. Link pointers and use records, then versions (wrapped keys) and links.
        let children = self
            .partition_keys(artifact_pk(org, artifact_id), Some(ARTIFACT_SK))
            .await?;
        let mut doomed = Vec::new();
        for (_, _, link_id) in &children {
            if let Some(link_id) = link_id {
                doomed.extend(
                    self.partition_keys(crate::links::link_pk(org, link_id), None)
                        .await?
                        .into_iter()
                        .map(|(pk, sk, _)| (pk, sk)),
                );
            }
        }
        self.delete_keys(doomed).await?;
        self.delete_keys(children.into_iter().map(|(pk, sk, _)| (pk, sk)).collect())
            .await?;

        // 4. The by-id item, last: until it goes, the index finds the rest.
        // With its record, in one transaction; the condition also keeps a
        // concurrent purge that finished first from being recorded twice.
        let (pk, sk) = artifact_key(org, artifact_id);
        let last = TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(self.metadata.table())
                    .key("pk", AttributeValue::S(pk))
                    .key("sk", AttributeValue::S(sk))
                    .condition_expression("attribute_exists(deletedAt)")
                    .build()
                    .map_err(|e| Error::upstream("dynamodb", e))?,
            )
            .build();
        let record = Record::new(Action::ArtifactPurged, actor.clone(), subject, origin);
        match self
            .transact(vec![last, self.audit_item(org, &record)?])
            .await?
        {
            None => Ok(()),
            // Purged (and recorded) by someone else meanwhile.
            Some(_) if self.metadata.artifact(org, artifact_id).await?.is_none() => Ok(()),
            Some(_) => Err(Error::Conflict(
                "the artifact was restored during its purge".into(),
            )),
        }
    }

    /// Remove one hidden version for good: its S3 object version, then its
    /// item (with the wrapped key). Nothing to do if it is gone already.
    pub async fn purge_version(&self, org: &str, artifact_id: &str, version: u64) -> Result<()> {
        let pk = artifact_pk(org, artifact_id);
        let sk = version_sk(version);
        let Some(item) = self.metadata.item(pk.clone(), sk.clone()).await? else {
            return Ok(());
        };
        if !item.contains_key(HIDDEN) {
            return Err(Error::Conflict("the version is not hidden".into()));
        }
        if let Some(AttributeValue::S(version_id)) = item.get("s3VersionId") {
            self.content
                .delete_versions(
                    &content_key(org, artifact_id),
                    std::slice::from_ref(version_id),
                )
                .await?;
        }
        let delete = TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(self.metadata.table())
                    .key("pk", AttributeValue::S(pk))
                    .key("sk", AttributeValue::S(sk))
                    .condition_expression("attribute_not_exists(pk) OR attribute_exists(#hidden)")
                    .expression_attribute_names("#hidden", HIDDEN)
                    .build()
                    .map_err(|e| Error::upstream("dynamodb", e))?,
            )
            .build();
        match self.transact(vec![delete]).await? {
            None => Ok(()),
            Some(_) => Err(Error::Conflict(
                "the version changed during its purge".into(),
            )),
        }
    }

    /// The keys of a partition's items (after `after` when given), with the
    /// `linkId` of link items.
    async fn partition_keys(
        &self,
        pk: String,
        after: Option<&str>,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let mut keys = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut q = self
                .metadata
                .client()
                .query()
                .table_name(self.metadata.table())
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .projection_expression("pk, sk, linkId")
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            q = match after {
                Some(sk) => q
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", AttributeValue::S(sk.to_owned())),
                None => q.key_condition_expression("pk = :pk"),
            };
            let out = q.send().await.map_err(|e| Error::upstream("dynamodb", e))?;
            for item in out.items() {
                if let Some((pk, sk)) = key_of(item) {
                    let link = match item.get("linkId") {
                        Some(AttributeValue::S(id)) if sk.starts_with("L#") => Some(id.clone()),
                        _ => None,
                    };
                    keys.push((pk, sk, link));
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(keys),
            }
        }
    }

    /// Delete items by key, up to 100 per transaction (`purgeItems`).
    async fn delete_keys(&self, keys: Vec<(String, String)>) -> Result<()> {
        for chunk in keys.chunks(DELETES_PER_TRANSACTION) {
            let items = chunk
                .iter()
                .map(|(pk, sk)| {
                    Ok(TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name(self.metadata.table())
                                .key("pk", AttributeValue::S(pk.clone()))
                                .key("sk", AttributeValue::S(sk.clone()))
                                .build()
                                .map_err(|e| Error::upstream("dynamodb", e))?,
                        )
                        .build())
                })
                .collect::<Result<Vec<_>>>()?;
            if self.transact(items).await?.is_some() {
                return Err(Error::upstream("dynamodb", "a purge delete was cancelled"));
            }
        }
        Ok(())
    }
}
