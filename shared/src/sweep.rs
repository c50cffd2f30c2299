//! The orphan sweep (SPEC §5): ciphertext object versions under `orgs/` that
//! no version item references.
//!
//! Content is sealed and written before the metadata commit, so a request
//! that dies between the two (a Lambda timeout, a crash, a commit whose
//! outcome could not be told, see [`Store::commit`](crate::store)) leaves an
//! object version nothing points at. It costs storage, never correctness:
//! this sweep finds and removes such versions once they are older than
//! [`ORPHAN_MIN_AGE`], far longer than any request lives, so content whose
//! commit is still in flight is never touched.
//!
//! One run examines at most [`SweepLimits::max_examined`] object versions and
//! deletes at most [`SweepLimits::max_deleted`], and says where the next run
//! continues ([`SweepReport::resume`]). It only deletes object versions it
//! has just listed and checked, by version id, so running it again (or two
//! at once) changes nothing more: it is idempotent. Keys it does not
//! recognise as content keys are left alone.
//!
//! There is no function of its own for it: the lifecycle purge (a scheduled
//! function of the lifecycle work) is meant to call [`Store::sweep_orphans`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::auth::is_valid_org;
use crate::error::{Error, Result};
use crate::metadata::artifact_pk;
use crate::store::Store;

/// Unreferenced content younger than this is never removed.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(24 * 60 * 60);
const CONTENT_PREFIX: &str = "orgs/";
/// ListObjectVersions returns at most this many per page.
const PAGE: usize = 1000;

/// How much one run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    pub max_examined: usize,
    pub max_deleted: usize,
}

impl Default for SweepLimits {
    fn default() -> Self {
        SweepLimits {
            max_examined: 10_000,
            max_deleted: 1_000,
        }
    }
}

/// Where a sweep continues: after the object version `after` names (key,
/// version id), or from the start when `None` (everything examined before
/// it was removed). It always names a version that was kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepPosition {
    pub after: Option<(String, String)>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Object versions listed and looked at.
    pub examined: u64,
    /// Unreferenced ones, old enough, that were removed.
    pub deleted: u64,
    /// Where the next run continues; `None` once the whole prefix was seen.
    pub resume: Option<SweepPosition>,
}

/// `orgs/{org}/artifacts/{artifactId}` → (org, artifactId); anything else is
/// not a content key.
fn parse_content_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(CONTENT_PREFIX)?;
    let (org, rest) = rest.split_once('/')?;
    let id = rest.strip_prefix("artifacts/")?;
    let is_id = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (is_valid_org(org) && is_id).then_some((org, id))
}

impl Store {
    /// Remove object versions under `orgs/` that no version item references
    /// and that were written before `now` − [`ORPHAN_MIN_AGE`] (Unix
    /// seconds), starting after `from`, within `limits`.
    pub async fn sweep_orphans(
        &self,
        now: i64,
        limits: SweepLimits,
        from: Option<SweepPosition>,
    ) -> Result<SweepReport> {
        let cutoff = now - ORPHAN_MIN_AGE.as_secs() as i64;
        let s3 = self.content.client();
        let bucket = self.content.bucket();
        let mut report = SweepReport::default();
        let mut referenced: HashMap<String, HashSet<String>> = HashMap::new();
        // Listing resumes after an object version that still exists (S3
        // markers naming a version just deleted are not reliable): the last
        // one examined and kept. Versions deleted after it are gone, so
        // listing from it yields exactly what was not examined yet.
        let mut position = from.and_then(|p| p.after);
        let resume = |after: Option<(String, String)>| Some(SweepPosition { after });
        loop {
            let room = limits.max_examined.saturating_sub(report.examined as usize);
            if room == 0 || report.deleted as usize >= limits.max_deleted {
                report.resume = resume(position);
                return Ok(report);
            }
            let page = s3
                .list_object_versions()
                .bucket(bucket)
                .prefix(CONTENT_PREFIX)
                .max_keys(room.min(PAGE) as i32)
                .set_key_marker(position.as_ref().map(|(key, _)| key.clone()))
                .set_version_id_marker(position.as_ref().map(|(_, version)| version.clone()))
                .send()
                .await
                .map_err(|e| Error::upstream("s3", e))?;
            let mut deleted_here = HashSet::new();
            let mut full = false;
            for object in page.versions() {
                let (Some(key), Some(version_id)) = (object.key(), object.version_id()) else {
                    continue;
                };
                report.examined += 1;
                let here = (key.to_owned(), version_id.to_owned());
                if self
                    .orphaned(&mut referenced, key, version_id, object, cutoff)
                    .await?
                {
                    self.content.delete_version(key, version_id).await?;
                    tracing::info!(key, version_id, "removed unreferenced content");
                    report.deleted += 1;
                    deleted_here.insert(here);
                } else {
                    position = Some(here);
                }
                if report.deleted as usize >= limits.max_deleted
                    || report.examined as usize >= limits.max_examined
                {
                    full = true;
                    break;
                }
            }
            if full {
                report.resume = resume(position);
                return Ok(report);
            }
            if !page.is_truncated().unwrap_or(false) {
                report.resume = None;
                return Ok(report);
            }
            // The page ended on something still there (a kept version or a
            // delete marker): continue after it, whatever it was.
            if let (Some(key), Some(version_id)) =
                (page.next_key_marker(), page.next_version_id_marker())
            {
                let next = (key.to_owned(), version_id.to_owned());
                if !deleted_here.contains(&next) {
                    position = Some(next);
                }
            }
        }
    }

    /// Whether one listed object version is content nobody references and
    /// old enough to remove. Keys that are not content keys never are.
    async fn orphaned(
        &self,
        referenced: &mut HashMap<String, HashSet<String>>,
        key: &str,
        version_id: &str,
        object: &aws_sdk_s3::types::ObjectVersion,
        cutoff: i64,
    ) -> Result<bool> {
        let old = object.last_modified().is_some_and(|t| t.secs() < cutoff);
        let Some((org, artifact_id)) = parse_content_key(key) else {
            return Ok(false);
        };
        if !old || version_id == "null" {
            return Ok(false);
        }
        if !referenced.contains_key(key) {
            let ids = self.referenced_versions(org, artifact_id).await?;
            referenced.insert(key.to_owned(), ids);
        }
        Ok(!referenced
            .get(key)
            .is_some_and(|ids| ids.contains(version_id)))
    }

    /// The S3 version ids the version items of one artifact point at.
    async fn referenced_versions(&self, org: &str, artifact_id: &str) -> Result<HashSet<String>> {
        let mut ids = HashSet::new();
        let mut start = None;
        loop {
            let out = self
                .metadata
                .client()
                .query()
                .table_name(self.metadata.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(artifact_pk(org, artifact_id)),
                )
                .expression_attribute_values(":v", AttributeValue::S("V#".into()))
                .projection_expression("s3VersionId")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(AttributeValue::S(id)) = item.get("s3VersionId") {
                    ids.insert(id.clone());
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(ids),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_keys_are_swept() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_content_key(&format!("orgs/acme/artifacts/{id}")),
            Some(("acme", id))
        );
        for other in [
            format!("orgs/acme/artifacts/{id}/x"),
            format!("orgs/acme/other/{id}"),
            format!("orgs/ac#me/artifacts/{id}"),
            format!("orgs/acme/artifacts/{}", id.to_uppercase()),
            "orgs/acme/artifacts/short".to_owned(),
            format!("deliveries/acme/artifacts/{id}"),
            format!("incoming/acme/{id}"),
        ] {
            assert_eq!(parse_content_key(&other), None, "{other}");
        }
    }
}
