//! Metadata in DynamoDB (SPEC §5): one table, string keys `pk`/`sk`, every
//! partition key starting with the org so a request can only ever address its
//! own org's items.
//!
//! | item | pk | sk | gsi1pk | gsi1sk |
//! |---|---|---|---|---|
//! | artifact (by id) | `{org}#A#{artifactId}` | `#META` | `{org}#L` | `{createdAt}#{artifactId}` |
//! | version | `{org}#A#{artifactId}` | `V#{version:010}` | | |
//! | artifact (by path, listing) | `{org}#W#{workflowId}` | `P#{path}` | `{org}#W#{workflowId}` | `{createdAt}#{artifactId}` |
//!
//! The by-path item also carries `gsi3pk`/`gsi3sk` ([`CONTENT_INDEX`]) and
//! `gsi6pk`/`gsi6sk` ([`PATH_INDEX`]); both artifact items of a live
//! artifact carry `gsi5pk`/`gsi5sk` ([`SIZE_INDEX`]); both carry `library`
//! (BOOL) and `pathLower` (for `q=`).
//! | name (file or directory) | `{org}#W#{workflowId}` | `N#{hex sha256(foldKey)}` | | |
//! | bundle manifest signature | `{org}#BS` | `{selection digest}` | | |
//!
//! A bundle signature item keeps the one signature of a selection's
//! manifest (`keyId`, `sig`; `expiresAt`, the TTL): see [`crate::bundle_signature`].
//!
//! The two artifact items carry the same attributes (keys apart) and change
//! together, in the one `TransactWriteItems` that adds a version: reads by id
//! and by path are each one strongly consistent `GetItem`, and a workflow
//! listing reads one item per artifact. The path item is the arbiter between
//! concurrent writers.
//!
//! # The latest version, denormalized
//!
//! The version commit also copies what a download of the new version needs
//! onto both artifact items, as the map [`LATEST`] (number, size, hash,
//! content type, author and time, content id, wrapped key, S3 object
//! version; the attestation's presence, its envelope stays on the version
//! item), so a download of the latest version is one strongly consistent
//! `GetItem` ([`Metadata::artifact_with_latest`]). It is written in the same
//! transaction as the version item, so the two never disagree; it is used
//! only while its number is the item's `latestVersion`. Anything else that
//! rewrites the artifact items (the lifecycle's puts: `patch`, holds,
//! `deleteVersion`, `restore`) writes them without it, and items written
//! before it existed have none: readers then read the version item, as
//! before. Content stored inline (small versions) is not copied: listings
//! read these items, and would read it too. The latest version is never
//! hidden while the artifact item names it (`deleteVersion` moves
//! `latestVersion` in the transaction that hides it; `keepVersions` hides
//! only older ones), so the copy needs no `hiddenAt` check.
//!
//! # Names
//!
//! A name item says that a name of a workflow, compared as the file systems
//! of Linux, macOS and Windows compare names ([`crate::model::fold_key`]),
//! is taken: by an artifact's path (`kind = file`, with its `artifactId`), or
//! by a directory that artifact paths run through (`kind = dir`, with `refs`,
//! the number of artifact paths below it). Each holds the spelling that took
//! it (`path`) and the folded key (`foldKey`); the sort key hashes the folded
//! key, which can outgrow DynamoDB's 1 KiB sort-key limit. The transaction
//! that creates an artifact claims the file name (`attribute_not_exists`) and
//! every ancestor directory (absent, or a directory of the same spelling;
//! `refs` + 1), so two paths that would clash on extraction can never both be
//! committed, however their writers race (SPEC §3). New versions of an
//! existing artifact claim nothing: its names are already held. Name items
//! are read only by a commit's conditions (and, after a refused claim, by one
//! `GetItem` if the cancellation did not return the holder); listings and
//! bundles query `P#` and never see them.
//!
//! Depth is capped ([`crate::model::MAX_PATH_DEPTH`] segments): a creating
//! commit is 3 items + 1 upload-session item + one name item per segment,
//! at most 36 of `TransactWriteItems`' 100 actions.
//!
//! Releasing names (for deleting artifacts, later): in the transaction that
//! removes an artifact, delete its file name item (condition `artifactId =
//! :id`) and, for each ancestor directory item, either delete it (condition
//! `refs = :one`, when the read showed 1) or `ADD refs -1` (condition `refs >
//! :one`); a failed condition means a concurrent claim or release: read again
//! and retry. A directory item then lives exactly as long as a path below it.
//!
//! The global secondary index [`LIBRARY_INDEX`] (`gsi1pk`/`gsi1sk`, all
//! attributes projected) orders artifacts by creation time: the by-id items
//! form one partition per org (the org-wide library, `GET /v1/artifacts`), the
//! by-path items one per workflow (the library narrowed to a workflow). Both
//! keys are fixed when an artifact is created (`createdAt` never changes), so
//! a date range is a key condition and "newest first" a backwards Query. The
//! index is eventually consistent and only ever read by listings (SPEC §5:
//! reads that follow a write stay on the base table). See [`crate::listing`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use aws_sdk_dynamodb::types::{CancellationReason, ReturnValuesOnConditionCheckFailure, Update};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::{Artifact, ArtifactPath, Hold, Lifecycle, NameClaim, NameKind, Version};

pub const ARTIFACT_SK: &str = "#META";
/// The attribute that hides a version item until the purge removes it.
pub const HIDDEN: &str = "hiddenAt";
/// The map on both artifact items holding the latest version's record (see
/// the module doc).
pub const LATEST: &str = "latestRecord";
const VERSION_SK_PREFIX: &str = "V#";

pub fn artifact_pk(org: &str, artifact_id: &str) -> String {
    format!("{org}#A#{artifact_id}")
}

pub fn version_sk(version: u64) -> String {
    format!("{VERSION_SK_PREFIX}{version:010}")
}

pub fn workflow_pk(org: &str, workflow_id: &str) -> String {
    format!("{org}#W#{workflow_id}")
}

pub fn path_sk(path: &str) -> String {
    format!("P#{path}")
}

/// The sort key of a name item (see the module doc): the folded key, hashed.
pub fn name_sk(fold_key: &str) -> String {
    format!("N#{}", hex::encode(Sha256::digest(fold_key.as_bytes())))
}

/// The global secondary index of the artifact library (see the module doc).
pub const LIBRARY_INDEX: &str = "gsi1";

/// The partition of an org's bundle manifest signatures (sort key: the
/// selection digest).
pub fn bundle_signature_pk(org: &str) -> String {
    format!("{org}#BS")
}

/// The library index partition of an org's artifacts (the by-id items). The
/// by-path items of a workflow use [`workflow_pk`] there.
pub fn library_pk(org: &str) -> String {
    format!("{org}#L")
}

/// The library index sort key: creation time, then id (unique, and `#` sorts
/// below every hex digit so an id never changes the order of two times).
pub fn library_sk(created_at: &str, artifact_id: &str) -> String {
    format!("{created_at}#{artifact_id}")
}

/// The global secondary index of what the purge must visit, by due time
/// (`gsi2pk` = [`DUE_PK`], `gsi2sk` = `{dueAt}#{pk}#{sk}`): sparse, only
/// items that will be purged carry its keys (SPEC §12, `crate::purge`).
pub const DUE_INDEX: &str = "gsi2";
/// The one partition of the due index.
pub const DUE_PK: &str = "due";

/// The due index sort key of an item.
pub fn due_sk(due_at: &str, pk: &str, sk: &str) -> String {
    format!("{due_at}#{pk}#{sk}")
}

/// The library index partition of an org's trash (the by-id items of
/// trashed artifacts move there, keyed by `deletedAt`).
pub fn trash_pk(org: &str) -> String {
    format!("{org}#T")
}

/// The global secondary index of content (`sha256=`, SPEC §14): the by-path
/// items under `gsi3pk` `{org}#H#{sha256}` (the latest version's hash),
/// `gsi3sk` `{workflowId}/{path}` (a workflow id has no `/`). Kept by the
/// version commit, which rewrites both keys with the item; all attributes
/// projected. Only listings read it.
pub const CONTENT_INDEX: &str = "gsi3";

pub fn content_pk(org: &str, sha256: &str) -> String {
    format!("{org}#H#{sha256}")
}

pub fn content_sk(workflow_id: &str, path: &str) -> String {
    format!("{workflow_id}/{path}")
}

/// The global secondary index of the library by size (`sort=size`, SPEC
/// §14): sparse, like [`LIBRARY_INDEX`] one partition per org (the by-id
/// items of live artifacts, `gsi5pk` = [`library_pk`]) and one per workflow
/// (the by-path items, `gsi5pk` = [`workflow_pk`]); `gsi5sk` =
/// [`size_sk`]. A version commit rewrites the key with the item (the size
/// is the latest version's); the delete to the trash removes it from the
/// by-id item (and deletes the by-path item), the restore writes it back.
/// All attributes projected; only listings read it. Artifacts written
/// before this index (and [`PATH_INDEX`]) existed get their keys at their
/// next write or from `Store::backfill_order_keys` (`crate::listing`).
pub const SIZE_INDEX: &str = "gsi5";

/// The size index sort key: the size zero-padded to 20 digits (every `u64`,
/// so string order is number order), then the id — ties in id order.
pub fn size_sk(size: u64, artifact_id: &str) -> String {
    format!("{size:020}#{artifact_id}")
}

/// The global secondary index of the library by path across workflows
/// (`sort=path` without `workflowId`, SPEC §14): sparse, the by-path items
/// (which exist exactly while an artifact is live) under `gsi6pk` =
/// [`library_pk`], `gsi6sk` = [`path_order_sk`]. A path never changes, so
/// the key is fixed at creation. All attributes projected; only listings
/// read it. (Within one workflow the base table's `P#` partition already
/// orders by path.)
pub const PATH_INDEX: &str = "gsi6";

/// Between the parts of [`path_order_sk`]: below every character a path or
/// a workflow id may hold (paths have no control characters, workflow ids
/// are `[A-Za-z0-9._:-]`), so the key's byte order is the order of
/// `(path, workflowId, artifactId)`: equal paths of different runs stay in
/// a stable order, and `a` comes before `a b` as in a workflow's listing.
pub const PATH_ORDER_SEP: char = '\u{1}';

/// The path index sort key: path, workflow id, artifact id.
pub fn path_order_sk(path: &str, workflow_id: &str, artifact_id: &str) -> String {
    format!("{path}{PATH_ORDER_SEP}{workflow_id}{PATH_ORDER_SEP}{artifact_id}")
}

/// The index attributes the delete to the trash removes from the by-id
/// item (the by-path item, with its own, is deleted).
pub const LIVE_ONLY_INDEX_KEYS: &str = "gsi5pk, gsi5sk";

/// The two artifact items (by id, by path) as a version commit writes them,
/// library index keys included (and, on the by-id item, the due index keys
/// when the artifact will expire).
pub fn artifact_items(org: &str, artifact: &Artifact) -> [HashMap<String, AttributeValue>; 2] {
    let index_sk = library_sk(&artifact.created_at, &artifact.artifact_id);
    let pk = artifact_pk(org, &artifact.artifact_id);
    let mut by_id = artifact_item(artifact, pk.clone(), ARTIFACT_SK.into());
    match &artifact.lifecycle.deleted_at {
        Some(deleted_at) => {
            by_id.insert("gsi1pk".into(), s(trash_pk(org)));
            by_id.insert(
                "gsi1sk".into(),
                s(library_sk(deleted_at, &artifact.artifact_id)),
            );
        }
        None => {
            by_id.insert("gsi1pk".into(), s(library_pk(org)));
            by_id.insert("gsi1sk".into(), s(&index_sk));
            by_id.insert("gsi5pk".into(), s(library_pk(org)));
            by_id.insert(
                "gsi5sk".into(),
                s(size_sk(artifact.size, &artifact.artifact_id)),
            );
        }
    }
    if let Some(due) = artifact.lifecycle.due_at() {
        by_id.insert("gsi2pk".into(), s(DUE_PK));
        by_id.insert("gsi2sk".into(), s(due_sk(due, &pk, ARTIFACT_SK)));
    }
    let mut by_path = artifact_item(
        artifact,
        workflow_pk(org, &artifact.workflow_id),
        path_sk(&artifact.path),
    );
    by_path.insert("gsi1pk".into(), s(workflow_pk(org, &artifact.workflow_id)));
    by_path.insert("gsi1sk".into(), s(index_sk));
    by_path.insert("gsi3pk".into(), s(content_pk(org, &artifact.sha256)));
    by_path.insert(
        "gsi3sk".into(),
        s(content_sk(&artifact.workflow_id, &artifact.path)),
    );
    by_path.insert("gsi5pk".into(), s(workflow_pk(org, &artifact.workflow_id)));
    by_path.insert(
        "gsi5sk".into(),
        s(size_sk(artifact.size, &artifact.artifact_id)),
    );
    by_path.insert("gsi6pk".into(), s(library_pk(org)));
    by_path.insert(
        "gsi6sk".into(),
        s(path_order_sk(
            &artifact.path,
            &artifact.workflow_id,
            &artifact.artifact_id,
        )),
    );
    [by_id, by_path]
}

/// Where a version's ciphertext lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In the version item itself (small content).
    Inline(Vec<u8>),
    /// An S3 object version of the artifact's content key.
    S3 { version_id: String },
}

/// A version as stored: what the API shows plus how to decrypt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub version: Version,
    pub content_id: String,
    pub wrapped_key: Vec<u8>,
    pub location: Location,
    /// The version's signed publish attestation (SPEC §18); `None` only
    /// for versions committed before attestations existed.
    pub attestation: Option<Attestation>,
}

/// A version's publish attestation, as a read found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attestation {
    /// The DSSE envelope (JSON), read from the version item.
    Envelope(String),
    /// Signed, the envelope on the version item: what a read of the
    /// artifact item's copy of the latest version ([`LATEST`]) knows.
    OnVersionItem,
}

/// A version item without its inline content ([`Metadata::version_heads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionHead {
    pub version: Version,
    /// Hex SHA-256 of the stored attestation's bytes (the DSSE JSON);
    /// `None` for a version committed before attestations existed.
    pub attestation_sha256: Option<String>,
    /// Enough to read content stored in S3 without reading the item again
    /// (its `attestation` left out: the digest is what is kept). `None`
    /// when the content is inline: its bytes are in the item, read once
    /// when they are needed.
    pub record: Option<VersionRecord>,
}

/// A page of versions, newest first.
#[derive(Debug, Clone)]
pub struct VersionPage {
    pub versions: Vec<Version>,
    /// The last version returned, when older ones remain.
    pub next_before: Option<u64>,
    /// DynamoDB Queries the page took.
    pub queries: u64,
}

#[derive(Debug, Clone)]
pub struct Metadata {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

impl Metadata {
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Metadata {
            ddb,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.ddb
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One item by key, strongly consistent (reads after writes never lag).
    pub async fn item(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::upstream("dynamodb", e))?;
        Ok(out.item)
    }

    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>> {
        Ok(self.item(pk, sk).await?.map(Item))
    }

    /// An artifact by id, within `org`.
    pub async fn artifact(&self, org: &str, artifact_id: &str) -> Result<Option<Artifact>> {
        self.get(artifact_pk(org, artifact_id), ARTIFACT_SK.into())
            .await?
            .map(|item| item.artifact())
            .transpose()
    }

    /// An artifact by id, within `org`, with its latest version's record
    /// when the item carries a current copy of it ([`LATEST`]).
    pub async fn artifact_with_latest(
        &self,
        org: &str,
        artifact_id: &str,
    ) -> Result<Option<(Artifact, Option<VersionRecord>)>> {
        self.get(artifact_pk(org, artifact_id), ARTIFACT_SK.into())
            .await?
            .map(|item| item.artifact_with_latest())
            .transpose()
    }

    /// [`Metadata::artifact_with_latest`] by workflow and path.
    pub async fn artifact_at_with_latest(
        &self,
        org: &str,
        workflow_id: &str,
        path: &str,
    ) -> Result<Option<(Artifact, Option<VersionRecord>)>> {
        self.get(workflow_pk(org, workflow_id), path_sk(path))
            .await?
            .map(|item| item.artifact_with_latest())
            .transpose()
    }

    /// An artifact by workflow and path, within `org`.
    pub async fn artifact_at(
        &self,
        org: &str,
        workflow_id: &str,
        path: &str,
    ) -> Result<Option<Artifact>> {
        self.get(workflow_pk(org, workflow_id), path_sk(path))
            .await?
            .map(|item| item.artifact())
            .transpose()
    }

    /// A version by number; a version hidden for purge (`hiddenAt`: deleted,
    /// or beyond `keepVersions`) is absent.
    pub async fn version(
        &self,
        org: &str,
        artifact_id: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>> {
        self.get(artifact_pk(org, artifact_id), version_sk(version))
            .await?
            .filter(|item| !item.0.contains_key(HIDDEN))
            .map(|item| item.version_record())
            .transpose()
    }

    /// Version items by `(artifactId, version)`, as a bundle needs them
    /// before its first byte: `BatchGetItem` (at most 100 keys a call,
    /// strongly consistent, `UnprocessedKeys` retried with back-off),
    /// projecting everything but inline content so that what is held stays
    /// small whatever the versions' sizes. Hidden versions (purge) and
    /// missing ones are absent from the answer. Keys must be unique.
    pub async fn version_heads(
        &self,
        org: &str,
        keys: &[(String, u64)],
    ) -> Result<HashMap<(String, u64), VersionHead>> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        const PER_CALL: usize = 100;
        const ATTEMPTS: u32 = 8;
        let mut heads = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(PER_CALL) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|(id, version)| {
                    HashMap::from([
                        ("pk".to_owned(), s(artifact_pk(org, id))),
                        ("sk".to_owned(), s(version_sk(*version))),
                    ])
                })
                .collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > 0 {
                    if attempt >= ATTEMPTS {
                        return Err(Error::upstream(
                            "dynamodb",
                            "BatchGetItem left keys unprocessed after retries",
                        ));
                    }
                    let delay = 25u64 << attempt.min(6);
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .projection_expression(
                        "pk, sk, #version, #size, sha256, contentType, createdAt, createdBy, \
                         contentId, wrappedKey, s3VersionId, attestation, hiddenAt",
                    )
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_names("#size", "size")
                    .build()
                    .map_err(|e| Error::upstream("dynamodb", e))?;
                let out = self
                    .ddb
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| Error::upstream("dynamodb", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if item.contains_key(HIDDEN) {
                        continue;
                    }
                    let (key, head) = Item(item).version_head(org)?;
                    heads.insert(key, head);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(heads)
    }

    /// Versions newest first, `limit` at a time, starting below `before`.
    ///
    /// DynamoDB stops a Query after 1 MB of items read (before projection),
    /// which inline versions reach after a dozen or so: the page follows
    /// `LastEvaluatedKey` until it holds `limit` versions and knows whether
    /// one more exists, or the history ends. `next_before` is therefore
    /// `None` only when no older version exists.
    pub async fn versions(
        &self,
        org: &str,
        artifact_id: &str,
        limit: u32,
        before: Option<u64>,
    ) -> Result<VersionPage> {
        let upper = match before {
            None => format!("{VERSION_SK_PREFIX}~"),
            Some(0 | 1) => {
                return Ok(VersionPage {
                    versions: Vec::new(),
                    next_before: None,
                    queries: 0,
                });
            }
            Some(b) => version_sk(b - 1),
        };
        // One more than asked for tells whether older versions remain.
        let wanted = limit as usize + 1;
        let mut versions = Vec::with_capacity(wanted.min(1024));
        let mut start = None;
        let mut queries = 0;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(artifact_pk(org, artifact_id)),
                )
                .expression_attribute_values(":lo", AttributeValue::S(version_sk(0)))
                .expression_attribute_values(":hi", AttributeValue::S(upper.clone()))
                .projection_expression("#version, #size, sha256, contentType, createdAt, createdBy")
                .filter_expression("attribute_not_exists(hiddenAt)")
                .expression_attribute_names("#version", "version")
                .expression_attribute_names("#size", "size")
                .scan_index_forward(false)
                .consistent_read(true)
                .limit((wanted - versions.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            queries += 1;
            for item in out.items.unwrap_or_default() {
                versions.push(Item(item).version()?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && versions.len() < wanted => start = Some(key),
                _ => break,
            }
        }
        let next_before = if versions.len() > limit as usize {
            versions.truncate(limit as usize);
            versions.last().map(|v| v.version)
        } else {
            None
        };
        Ok(VersionPage {
            versions,
            next_before,
            queries,
        })
    }

    /// Commit `record` as version `artifact.latest_version`, atomically with
    /// the artifact's new state, provided the artifact is still at
    /// `expected_latest` (0: does not exist yet), together with `also` (an
    /// upload session's completion, whose condition makes ingest exactly
    /// once; the change's audit record). Creating the artifact also claims the names of `path` in its
    /// workflow (see the module doc). Another writer having got there first,
    /// or `also`'s condition failing, is [`Error::Conflict`]; a name held by a
    /// clashing path is [`Error::PathClash`]; nothing is written then.
    pub async fn commit_version(
        &self,
        org: &str,
        artifact: &Artifact,
        path: &ArtifactPath,
        record: &VersionRecord,
        expected_latest: u64,
        also: Vec<TransactWriteItem>,
    ) -> Result<()> {
        let version_item = version_item(org, &artifact.artifact_id, record);
        let [mut by_id, mut by_path] = artifact_items(org, artifact);
        if let Some(latest) = latest_item(record) {
            by_id.insert(LATEST.into(), latest.clone());
            by_path.insert(LATEST.into(), latest);
        }
        let expect = |item: HashMap<String, AttributeValue>| -> Result<TransactWriteItem> {
            let put = Put::builder().table_name(&self.table).set_item(Some(item));
            let put = if expected_latest == 0 {
                put.condition_expression("attribute_not_exists(pk)")
            } else {
                put.condition_expression("latestVersion = :expected")
                    .expression_attribute_values(":expected", n(expected_latest))
            };
            Ok(TransactWriteItem::builder()
                .put(put.build().map_err(|e| Error::upstream("dynamodb", e))?)
                .build())
        };
        let new_version = TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(version_item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|e| Error::upstream("dynamodb", e))?,
            )
            .build();
        // Items 0-2 (and `also`: 3, 4) decide races; the name claims follow.
        let mut items = vec![new_version, expect(by_id)?, expect(by_path)?];
        items.extend(also);
        let first_claim = items.len();
        let claims = if expected_latest == 0 {
            path.claims()
        } else {
            Vec::new()
        };
        for claim in &claims {
            items.push(self.name_claim(
                org,
                &artifact.workflow_id,
                &artifact.artifact_id,
                claim,
            )?);
        }
        let result = self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let Some(reasons) = e
            .as_service_error()
            .and_then(|se| match se {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                _ => None,
            })
            .map(|c| c.cancellation_reasons().to_vec())
        else {
            return Err(Error::upstream("dynamodb", e));
        };
        let failed = |r: &CancellationReason| r.code() == Some("ConditionalCheckFailed");
        let lost_race = || {
            Error::Conflict(format!(
                "artifact is no longer at version {expected_latest}"
            ))
        };
        // A concurrent writer of this very artifact (or of this upload)
        // first: the caller reads again and retries.
        if reasons.iter().take(first_claim).any(failed) {
            return Err(lost_race());
        }
        // A name held by another path: final, whoever retries.
        if let Some((claim, reason)) = claims
            .iter()
            .zip(reasons.iter().skip(first_claim))
            .find(|(_, r)| failed(r))
        {
            let holder = match reason.item() {
                Some(item) => Some(item.clone()),
                None => {
                    self.item(workflow_pk(org, &artifact.workflow_id), name_sk(&claim.key))
                        .await?
                }
            };
            return Err(clash(path.as_str(), claim, holder.as_ref()));
        }
        if reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
        {
            return Err(lost_race());
        }
        Err(Error::upstream("dynamodb", e))
    }

    /// The action that claims one name of a new artifact's path: the file
    /// name only if nobody holds it; a directory if nobody does or it is a
    /// directory of the same spelling, counting one more path below it.
    pub(crate) fn name_claim(
        &self,
        org: &str,
        workflow_id: &str,
        artifact_id: &str,
        claim: &NameClaim<'_>,
    ) -> Result<TransactWriteItem> {
        let pk = workflow_pk(org, workflow_id);
        let sk = name_sk(&claim.key);
        let action = match claim.kind {
            NameKind::File => TransactWriteItem::builder().put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(HashMap::from([
                        ("pk".into(), s(pk)),
                        ("sk".into(), s(sk)),
                        ("kind".into(), s(NameKind::File.as_str())),
                        ("path".into(), s(claim.path)),
                        ("foldKey".into(), s(&claim.key)),
                        ("artifactId".into(), s(artifact_id)),
                    ])))
                    .condition_expression("attribute_not_exists(pk)")
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(|e| Error::upstream("dynamodb", e))?,
            ),
            NameKind::Dir => TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .update_expression(
                        "SET #kind = :dir, #path = :path, foldKey = :key ADD refs :one",
                    )
                    .condition_expression(
                        "attribute_not_exists(pk) OR (#kind = :dir AND #path = :path)",
                    )
                    .expression_attribute_names("#kind", "kind")
                    .expression_attribute_names("#path", "path")
                    .expression_attribute_values(":dir", s(NameKind::Dir.as_str()))
                    .expression_attribute_values(":path", s(claim.path))
                    .expression_attribute_values(":key", s(&claim.key))
                    .expression_attribute_values(":one", n(1))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(|e| Error::upstream("dynamodb", e))?,
            ),
        };
        Ok(action.build())
    }
}

/// The 409 for a refused name claim of `path`, naming what holds the name.
fn clash(
    path: &str,
    claim: &NameClaim<'_>,
    holder: Option<&HashMap<String, AttributeValue>>,
) -> Error {
    let text = |name: &str| match holder.and_then(|h| h.get(name)) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    };
    let existing = text("path").unwrap_or(claim.path).to_owned();
    let held_as = match text("kind") {
        Some("dir") => "the directory",
        _ => "the artifact",
    };
    let ours = match claim.kind {
        NameKind::File => format!("path {path:?}"),
        NameKind::Dir => format!("directory {:?} of path {path:?}", claim.path),
    };
    Error::PathClash {
        detail: format!(
            "{ours} clashes with {held_as} {existing:?} of this workflow: they would \
             overwrite each other when extracted on some file system (a file beside a \
             directory of one name, or names equal ignoring case and Unicode normalization)"
        ),
        existing,
    }
}

/// The outcome of a conditional update whose failed condition means "already
/// settled by someone else": that is success, anything else an upstream error.
pub fn settled<T, E>(result: std::result::Result<T, SdkError<UpdateItemError, E>>) -> Result<()>
where
    E: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::upstream("dynamodb", e)),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn artifact_item(a: &Artifact, pk: String, sk: String) -> HashMap<String, AttributeValue> {
    let metadata = a
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), s(v)))
        .collect::<HashMap<_, _>>();
    let mut item = HashMap::from([
        ("pk".into(), s(pk)),
        ("sk".into(), s(sk)),
        ("artifactId".into(), s(&a.artifact_id)),
        ("workflowId".into(), s(&a.workflow_id)),
        ("path".into(), s(&a.path)),
        ("name".into(), s(&a.name)),
        ("artifactType".into(), s(&a.artifact_type)),
        ("contentType".into(), s(&a.content_type)),
        ("size".into(), n(a.size)),
        ("sha256".into(), s(&a.sha256)),
        ("latestVersion".into(), n(a.latest_version)),
        ("createdAt".into(), s(&a.created_at)),
        ("createdBy".into(), s(&a.created_by)),
        ("updatedAt".into(), s(&a.updated_at)),
        ("updatedBy".into(), s(&a.updated_by)),
        ("metadata".into(), AttributeValue::M(metadata)),
        // For `q=` (SPEC §14): the path lower-cased, matched by `contains`.
        ("pathLower".into(), s(a.path.to_lowercase())),
    ]);
    let l = &a.lifecycle;
    let mut opt = |name: &str, value: Option<AttributeValue>| {
        if let Some(v) = value {
            item.insert(name.into(), v);
        }
    };
    opt("retainUntil", l.expires_at.as_ref().map(s));
    opt("retentionDays", l.retention_days.map(n));
    opt("keepVersions", l.keep_versions.map(n));
    opt(
        "legalHold",
        l.hold.as_ref().map(|h| {
            AttributeValue::M(HashMap::from([
                ("reason".into(), s(&h.reason)),
                ("heldAt".into(), s(&h.held_at)),
                ("heldBy".into(), s(&h.held_by)),
            ]))
        }),
    );
    opt("library", l.library.then_some(AttributeValue::Bool(true)));
    opt(
        "expiresFixed",
        l.expires_fixed.then_some(AttributeValue::Bool(true)),
    );
    opt(
        "highestVersion",
        (l.highest_version > a.latest_version).then(|| n(l.highest_version)),
    );
    opt("deletedAt", l.deleted_at.as_ref().map(s));
    opt("deletedBy", l.deleted_by.as_ref().map(s));
    opt("purgeAfter", l.purge_after.as_ref().map(s));
    item
}

/// The version item a version commit writes (public for bulk seeding in
/// tests and benchmarks, which must write exactly what commits write).
pub fn version_item(
    org: &str,
    artifact_id: &str,
    r: &VersionRecord,
) -> HashMap<String, AttributeValue> {
    let v = &r.version;
    let mut item = HashMap::from([
        ("pk".into(), s(artifact_pk(org, artifact_id))),
        ("sk".into(), s(version_sk(v.version))),
        ("artifactId".into(), s(artifact_id)),
        ("version".into(), n(v.version)),
        ("size".into(), n(v.size)),
        ("sha256".into(), s(&v.sha256)),
        ("contentType".into(), s(&v.content_type)),
        ("createdAt".into(), s(&v.created_at)),
        ("createdBy".into(), s(&v.created_by)),
        ("contentId".into(), s(&r.content_id)),
        (
            "wrappedKey".into(),
            AttributeValue::B(Blob::new(r.wrapped_key.clone())),
        ),
    ]);
    match &r.location {
        Location::Inline(ciphertext) => {
            item.insert(
                "inline".into(),
                AttributeValue::B(Blob::new(ciphertext.clone())),
            );
        }
        Location::S3 { version_id } => {
            item.insert("s3VersionId".into(), s(version_id));
        }
    }
    if let Some(Attestation::Envelope(attestation)) = &r.attestation {
        item.insert("attestation".into(), s(attestation));
    }
    item
}

/// What a download of `r` needs, as the artifact items carry it ([`LATEST`]);
/// `None` for inline content and for a version without its attestation
/// envelope at hand (those are read from the version item).
fn latest_item(r: &VersionRecord) -> Option<AttributeValue> {
    let (Location::S3 { version_id }, Some(Attestation::Envelope(_))) =
        (&r.location, &r.attestation)
    else {
        return None;
    };
    let v = &r.version;
    Some(AttributeValue::M(HashMap::from([
        ("version".into(), n(v.version)),
        ("size".into(), n(v.size)),
        ("sha256".into(), s(&v.sha256)),
        ("contentType".into(), s(&v.content_type)),
        ("createdAt".into(), s(&v.created_at)),
        ("createdBy".into(), s(&v.created_by)),
        ("contentId".into(), s(&r.content_id)),
        (
            "wrappedKey".into(),
            AttributeValue::B(Blob::new(r.wrapped_key.clone())),
        ),
        ("s3VersionId".into(), s(version_id)),
        ("attested".into(), AttributeValue::Bool(true)),
    ])))
}

/// A raw item, read back into the model. A malformed item is an integrity
/// problem of our own data, never the caller's fault.
struct Item(HashMap<String, AttributeValue>);

impl Item {
    fn s(&self, name: &str) -> Result<String> {
        match self.0.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(malformed(name)),
        }
    }

    fn n(&self, name: &str) -> Result<u64> {
        match self.0.get(name) {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| malformed(name)),
            _ => Err(malformed(name)),
        }
    }

    fn opt_s(&self, name: &str) -> Option<String> {
        match self.0.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn opt_n(&self, name: &str) -> Result<Option<u64>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| malformed(name)),
            Some(_) => Err(malformed(name)),
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(AttributeValue::Bool(true)))
    }

    fn lifecycle(&self) -> Result<Lifecycle> {
        let hold = match self.0.get("legalHold") {
            None => None,
            Some(AttributeValue::M(m)) => {
                let get = |k: &str| match m.get(k) {
                    Some(AttributeValue::S(v)) => Ok(v.clone()),
                    _ => Err(malformed("hold")),
                };
                Some(Hold {
                    reason: get("reason")?,
                    held_at: get("heldAt")?,
                    held_by: get("heldBy")?,
                })
            }
            Some(_) => return Err(malformed("hold")),
        };
        Ok(Lifecycle {
            expires_at: self.opt_s("retainUntil"),
            retention_days: self.opt_n("retentionDays")?,
            keep_versions: self.opt_n("keepVersions")?,
            hold,
            library: self.flag("library"),
            expires_fixed: self.flag("expiresFixed"),
            highest_version: self.opt_n("highestVersion")?.unwrap_or(0),
            deleted_at: self.opt_s("deletedAt"),
            deleted_by: self.opt_s("deletedBy"),
            purge_after: self.opt_s("purgeAfter"),
        })
    }

    fn b(&self, name: &str) -> Option<Vec<u8>> {
        match self.0.get(name) {
            Some(AttributeValue::B(v)) => Some(v.as_ref().to_vec()),
            _ => None,
        }
    }

    fn artifact(&self) -> Result<Artifact> {
        let metadata = match self.0.get("metadata") {
            Some(AttributeValue::M(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    AttributeValue::S(v) => Ok((k.clone(), v.clone())),
                    _ => Err(malformed("metadata")),
                })
                .collect::<Result<BTreeMap<_, _>>>()?,
            None => BTreeMap::new(),
            Some(_) => return Err(malformed("metadata")),
        };
        let latest_version = self.n("latestVersion")?;
        Ok(Artifact {
            artifact_id: self.s("artifactId")?,
            workflow_id: self.s("workflowId")?,
            path: self.s("path")?,
            name: self.s("name")?,
            artifact_type: self.s("artifactType")?,
            content_type: self.s("contentType")?,
            size: self.n("size")?,
            sha256: self.s("sha256")?,
            latest_version,
            created_at: self.s("createdAt")?,
            created_by: self.s("createdBy")?,
            updated_at: self.s("updatedAt")?,
            updated_by: self.s("updatedBy")?,
            metadata,
            lifecycle: self.lifecycle()?,
        })
    }

    fn version(&self) -> Result<Version> {
        Ok(Version {
            version: self.n("version")?,
            size: self.n("size")?,
            sha256: self.s("sha256")?,
            content_type: self.s("contentType")?,
            created_at: self.s("createdAt")?,
            created_by: self.s("createdBy")?,
        })
    }

    fn version_head(&self, org: &str) -> Result<((String, u64), VersionHead)> {
        let artifact_id = self
            .s("pk")?
            .strip_prefix(&artifact_pk(org, ""))
            .map(str::to_owned)
            .ok_or_else(|| malformed("pk"))?;
        let version = self.version()?;
        let attestation_sha256 = match self.0.get("attestation") {
            Some(AttributeValue::S(a)) => Some(hex::encode(Sha256::digest(a.as_bytes()))),
            None => None,
            Some(_) => return Err(malformed("attestation")),
        };
        let record = match self.0.get("s3VersionId") {
            Some(AttributeValue::S(version_id)) => Some(VersionRecord {
                version: version.clone(),
                content_id: self.s("contentId")?,
                wrapped_key: self
                    .b("wrappedKey")
                    .ok_or_else(|| malformed("wrappedKey"))?,
                location: Location::S3 {
                    version_id: version_id.clone(),
                },
                attestation: None,
            }),
            None => None,
            Some(_) => return Err(malformed("s3VersionId")),
        };
        Ok((
            (artifact_id, version.version),
            VersionHead {
                version,
                attestation_sha256,
                record,
            },
        ))
    }

    fn version_record(&self) -> Result<VersionRecord> {
        let location = match (self.b("inline"), self.0.get("s3VersionId")) {
            (Some(ciphertext), None) => Location::Inline(ciphertext),
            (None, Some(AttributeValue::S(version_id))) => Location::S3 {
                version_id: version_id.clone(),
            },
            _ => return Err(malformed("inline/s3VersionId")),
        };
        Ok(VersionRecord {
            version: self.version()?,
            content_id: self.s("contentId")?,
            wrapped_key: self
                .b("wrappedKey")
                .ok_or_else(|| malformed("wrappedKey"))?,
            location,
            attestation: match self.0.get("attestation") {
                Some(AttributeValue::S(a)) => Some(Attestation::Envelope(a.clone())),
                None => None,
                Some(_) => return Err(malformed("attestation")),
            },
        })
    }

    /// An artifact item and its copy of the latest version's record, if it
    /// has one for its current `latestVersion` (see [`LATEST`]).
    fn artifact_with_latest(self) -> Result<(Artifact, Option<VersionRecord>)> {
        let artifact = self.artifact()?;
        let latest = match self.0.get(LATEST) {
            None => None,
            Some(AttributeValue::M(m)) => {
                let copy = Item(m.clone());
                let version = copy.version()?;
                (version.version == artifact.latest_version)
                    .then(|| -> Result<VersionRecord> {
                        Ok(VersionRecord {
                            version,
                            content_id: copy.s("contentId")?,
                            wrapped_key: copy.b("wrappedKey").ok_or_else(|| malformed(LATEST))?,
                            location: Location::S3 {
                                version_id: copy.s("s3VersionId")?,
                            },
                            attestation: copy
                                .flag("attested")
                                .then_some(Attestation::OnVersionItem),
                        })
                    })
                    .transpose()?
            }
            Some(_) => return Err(malformed(LATEST)),
        };
        Ok((artifact, latest))
    }
}

/// An artifact item of either kind (or its library index copy), read raw by a listing.
pub(crate) fn artifact_of(item: HashMap<String, AttributeValue>) -> Result<Artifact> {
    Item(item).artifact()
}

fn malformed(attribute: &str) -> Error {
    Error::Integrity(format!(
        "stored item has a missing or malformed {attribute}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact() -> Artifact {
        Artifact {
            artifact_id: "0123456789abcdef0123456789abcdef".into(),
            workflow_id: "wf-1".into(),
            path: "docs/prd.md".into(),
            name: "prd.md".into(),
            artifact_type: "prd".into(),
            content_type: "text/markdown".into(),
            size: 42,
            sha256: "ab".repeat(32),
            latest_version: 3,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            created_by: "u1".into(),
            updated_at: "2026-01-02T00:00:00.000Z".into(),
            updated_by: "u2".into(),
            metadata: BTreeMap::from([("owner".into(), "team".into())]),
            lifecycle: Default::default(),
        }
    }

    #[test]
    fn keys_start_with_the_org_and_sort_versions_numerically() {
        assert!(artifact_pk("acme", "x").starts_with("acme#"));
        assert!(workflow_pk("acme", "wf").starts_with("acme#"));
        assert!(version_sk(9) < version_sk(10));
        assert!(version_sk(99_999) < version_sk(100_000));
        assert!(ARTIFACT_SK < VERSION_SK_PREFIX);
    }

    #[test]
    fn name_keys_are_fixed_length_and_follow_the_fold() {
        use crate::model::fold_key;
        let long = "\u{149}".repeat(256); // expands under case folding
        assert_eq!(name_sk(&fold_key(&long)).len(), 2 + 64);
        assert!(fold_key(&long).len() > 512);
        assert_eq!(
            name_sk(&fold_key("README.md")),
            name_sk(&fold_key("readme.md"))
        );
        assert_ne!(name_sk(&fold_key("a")), name_sk(&fold_key("a/b")));
        assert!(
            !name_sk("x").starts_with("P#"),
            "never in a listing's range"
        );
    }

    #[test]
    fn artifact_items_round_trip() {
        let a = artifact();
        let item = Item(artifact_item(&a, "pk".into(), "sk".into()));
        assert_eq!(item.artifact().unwrap(), a);
    }

    #[test]
    fn version_items_round_trip_for_both_locations() {
        for location in [
            Location::Inline(vec![1, 2, 3]),
            Location::S3 {
                version_id: "v123".into(),
            },
        ] {
            let r = VersionRecord {
                version: Version {
                    version: 7,
                    size: 3,
                    sha256: "cd".repeat(32),
                    content_type: "text/plain".into(),
                    created_at: "2026-01-01T00:00:00.000Z".into(),
                    created_by: "u1".into(),
                },
                content_id: "c1".into(),
                wrapped_key: vec![9; 40],
                location,
                attestation: Some(Attestation::Envelope("{}".into())),
            };
            let item = Item(version_item("acme", "id", &r));
            assert_eq!(item.version_record().unwrap(), r);
        }
    }

    #[test]
    fn the_latest_copy_reads_back_as_the_version_item_does_while_current() {
        let a = artifact();
        let mut r = VersionRecord {
            version: Version {
                version: a.latest_version,
                size: 3,
                sha256: "cd".repeat(32),
                content_type: "text/plain".into(),
                created_at: "2026-01-01T00:00:00.000Z".into(),
                created_by: "u1".into(),
            },
            content_id: "c1".into(),
            wrapped_key: vec![9; 40],
            location: Location::S3 {
                version_id: "v123".into(),
            },
            attestation: Some(Attestation::Envelope("{}".into())),
        };
        let with = |r: &VersionRecord| {
            let mut item = artifact_item(&a, "pk".into(), "sk".into());
            if let Some(latest) = latest_item(r) {
                item.insert(LATEST.into(), latest);
            }
            Item(item).artifact_with_latest().unwrap()
        };
        let (read, latest) = with(&r);
        assert_eq!(read, a);
        let latest = latest.expect("a current copy");
        assert_eq!(latest.attestation, Some(Attestation::OnVersionItem));
        let from_version_item = Item(version_item("acme", "id", &r))
            .version_record()
            .unwrap();
        assert_eq!(
            VersionRecord {
                attestation: Some(Attestation::OnVersionItem),
                ..from_version_item
            },
            latest
        );
        // Another number than `latestVersion`: not used.
        r.version.version -= 1;
        assert_eq!(with(&r).1, None);
        // Inline content and unsigned versions are not copied.
        r.version.version += 1;
        r.location = Location::Inline(vec![1]);
        assert_eq!(with(&r).1, None);
        r.location = Location::S3 {
            version_id: "v".into(),
        };
        r.attestation = None;
        assert_eq!(with(&r).1, None);
        // None at all (an item written before the copy existed).
        let (_, none) = Item(artifact_item(&a, "pk".into(), "sk".into()))
            .artifact_with_latest()
            .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn malformed_items_are_integrity_errors() {
        let mut raw = artifact_item(&artifact(), "pk".into(), "sk".into());
        raw.insert("size".into(), s("not a number"));
        assert!(matches!(Item(raw).artifact(), Err(Error::Integrity(_))));
    }
}
