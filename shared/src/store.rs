//! The store's operations: what the functions call. Each takes the caller's
//! [`Principal`] and enforces scope and org before touching anything.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_types::SdkConfig;
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Scope};
use crate::config::{Config, ConfigError};
use crate::content::{Content, Deliveries, content_key};
use crate::crypto;
use crate::envelope::{Envelope, KeyContext};
use crate::error::{Error, Result};
use crate::metadata::{Location, Metadata, VersionPage, VersionRecord};
use crate::model::{
    self, Artifact, ArtifactPath, DEFAULT_ARTIFACT_TYPE, DEFAULT_CONTENT_TYPE, Version,
};

/// The largest body `PUT …/artifacts/{path}` accepts (SPEC §4); larger
/// content goes through presigned uploads.
pub const MAX_DIRECT_UPLOAD_BYTES: u64 = 4 * 1024 * 1024;
/// Concurrent writers to one path retry until they win; this bounds it.
const MAX_COMMIT_ATTEMPTS: u32 = 64;

/// What a write must find to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteCondition {
    /// Add a version whatever the current one is.
    #[default]
    Any,
    /// `If-Match: "<n>"`: only if the latest version is `n` (else 409).
    LatestIs(u64),
    /// `If-None-Match: *`: only if the path has no artifact yet (else 412).
    Absent,
}

/// A new version of the artifact at `path` in `workflow_id`.
#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    pub workflow_id: String,
    pub path: String,
    /// Kept from the previous version when `None` (default `file`).
    pub artifact_type: Option<String>,
    pub content_type: Option<String>,
    /// Replaces the artifact's metadata when `Some`.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Hex SHA-256 the body must have.
    pub expected_sha256: Option<String>,
    /// Publish to (true) or withdraw from (false) the library; kept from
    /// the previous version when `None` (default: not published).
    pub library: Option<bool>,
    pub condition: WriteCondition,
    pub body: Vec<u8>,
    /// Where the request came from, for its audit record.
    pub origin: crate::audit::Origin,
    /// `x-artifact-retention-days`: restart the artifact's clock with this
    /// many days (capped by `ARTIFACTS_MAX_RETENTION_DAYS`).
    pub retention_days: Option<u64>,
    /// `x-artifact-keep-versions`: keep only the N newest versions.
    pub keep_versions: Option<u64>,
    /// The API request id, recorded in the version's attestation.
    pub request_id: Option<String>,
}

/// Content sealed for one artifact id, ready to be committed as a version.
struct Sealed {
    artifact_id: String,
    content_id: String,
    wrapped_key: Vec<u8>,
    location: Location,
    size: u64,
    sha256: String,
}

/// Where a new version's plaintext comes from.
pub(crate) enum Payload<'a> {
    /// A request body, already hashed.
    Body { bytes: &'a [u8], sha256: String },
    /// A staged upload in the bucket, of a declared size (and maybe hash).
    Staged {
        key: &'a str,
        /// Exactly the object version the upload event names.
        version_id: &'a str,
        size: u64,
        sha256: Option<&'a str>,
    },
}

impl Payload<'_> {
    /// The plaintext's size and hex SHA-256 when known before sealing.
    fn digest(&self) -> Option<(u64, &str)> {
        match self {
            Payload::Body { bytes, sha256 } => Some((bytes.len() as u64, sha256)),
            Payload::Staged { .. } => None,
        }
    }
}

/// Everything about a new version but its content, validated.
#[derive(Debug, Clone)]
pub(crate) struct VersionSpec {
    pub workflow_id: String,
    pub path: ArtifactPath,
    pub artifact_type: Option<String>,
    pub content_type: String,
    pub metadata: Option<BTreeMap<String, String>>,
    pub condition: WriteCondition,
    /// Retention days asked for with this write (see [`crate::lifecycle`]).
    pub retention_days: Option<u64>,
    /// Keep-versions asked for with this write.
    pub keep_versions: Option<u64>,
    /// Set after [`VersionSpec::validate`]; `None` keeps what the artifact has.
    pub library: Option<bool>,
    /// The request recorded in the attestation (ingest: the upload id).
    pub request_id: Option<String>,
}

impl VersionSpec {
    pub(crate) fn validate(
        workflow_id: &str,
        path: &str,
        artifact_type: Option<String>,
        content_type: Option<String>,
        metadata: Option<BTreeMap<String, String>>,
        condition: WriteCondition,
    ) -> Result<Self> {
        model::validate_workflow_id(workflow_id)?;
        let path = ArtifactPath::parse(path)?;
        if let Some(t) = &artifact_type {
            model::validate_artifact_type(t)?;
        }
        let content_type = content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        model::validate_content_type(&content_type)?;
        if let Some(m) = &metadata {
            model::validate_metadata(m)?;
        }
        Ok(VersionSpec {
            workflow_id: workflow_id.to_owned(),
            path,
            artifact_type,
            content_type,
            metadata,
            condition,
            retention_days: None,
            keep_versions: None,
            library: None,
            request_id: None,
        })
    }
}

/// Everything a function needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Store {
    pub config: Config,
    pub metadata: Metadata,
    pub content: Content,
    pub envelope: Envelope,
    pub deliveries: Deliveries,
    /// The KMS HMAC key that signs and verifies link tokens (SPEC §8).
    pub link_key: crate::link_key::LinkKey,
    /// The KMS P-256 key that signs publish attestations (SPEC §18).
    pub signer: crate::signer::Signer,
}

impl Store {
    /// Configuration and SDK clients from the environment (region,
    /// credentials, `AWS_ENDPOINT_URL`: see [`crate::sdk`]). Fails fast on bad config.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = crate::sdk::config_from_lookup(|name| std::env::var(name).ok())?;
        Ok(Self::new(config, &sdk))
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        // Emulators (AWS_ENDPOINT_URL) serve buckets by path, not by host name.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self::with_clients(
            config,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_s3::Client::from_conf(s3),
            aws_sdk_kms::Client::new(sdk),
        )
    }

    /// A store over clients built elsewhere (for example with SDK
    /// interceptors that inject faults in tests).
    pub fn with_clients(
        config: Config,
        ddb: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
        kms: aws_sdk_kms::Client,
    ) -> Self {
        Store {
            metadata: Metadata::new(ddb, &config.table),
            deliveries: Deliveries::new(s3.clone(), &config.bucket),
            content: Content::new(s3, &config.bucket),
            link_key: crate::link_key::LinkKey::new(kms.clone(), config.link_key_id.clone()),
            signer: crate::signer::Signer::new(kms.clone(), config.signing_key_id.clone()),
            envelope: Envelope::new(kms, &config.kms_key_id),
            config,
        }
    }

    /// Store `new` as the next version of its artifact, creating the artifact
    /// on first write. Content is sealed and stored before the metadata
    /// commit, so no version ever points at missing content.
    pub async fn put(&self, principal: &Principal, new: NewVersion) -> Result<(Artifact, Version)> {
        principal.require(Scope::Write)?;
        let mut spec = VersionSpec::validate(
            &new.workflow_id,
            &new.path,
            new.artifact_type,
            new.content_type,
            new.metadata,
            new.condition,
        )?;
        spec.retention_days = new
            .retention_days
            .map(|days| {
                crate::lifecycle::retention_days(&self.config, "x-artifact-retention-days", days)
            })
            .transpose()?;
        spec.keep_versions = new.keep_versions;
        spec.library = new.library;
        spec.request_id = new.request_id;
        let size = new.body.len() as u64;
        if size > MAX_DIRECT_UPLOAD_BYTES {
            return Err(Error::TooLarge {
                size,
                limit: MAX_DIRECT_UPLOAD_BYTES,
            });
        }
        let sha256 = hex::encode(Sha256::digest(&new.body));
        if let Some(expected) = &new.expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(Error::bad_request(
                "x-artifact-sha256",
                "does not match the SHA-256 of the body",
            ));
        }
        let payload = Payload::Body {
            bytes: &new.body,
            sha256,
        };
        self.commit(
            &principal.org,
            &principal.subject,
            &spec,
            &payload,
            None,
            &new.origin,
        )
        .await?
        .ok_or_else(|| Error::upstream("store", "a direct upload has no upload session"))
    }

    /// The one way a version is added: read the current state, seal the
    /// payload for the artifact, commit version and artifact in one
    /// transaction, and retry when a concurrent writer got there first.
    /// With `upload` (a session the caller found pending), the transaction
    /// also completes that session; `Ok(None)` means another delivery of it
    /// completed it while this one was retrying.
    ///
    /// Sealed content is removed only when the commit certainly did not
    /// happen: a failed condition, or — after an error that leaves it open
    /// (an answer lost once the SDK's retries, which reuse the request
    /// token, are exhausted) — a strongly consistent read of the version
    /// item that does not find our `contentId`. Found, the commit happened
    /// and is a success; if even that read fails, the content is kept for
    /// the orphan sweep ([`crate::sweep`]) to judge a day later.
    pub(crate) async fn commit(
        &self,
        org: &str,
        author: &str,
        spec: &VersionSpec,
        payload: &Payload<'_>,
        upload: Option<&str>,
        origin: &crate::audit::Origin,
    ) -> Result<Option<(Artifact, Version)>> {
        let path = spec.path.as_str();
        let mut sealed: Option<Sealed> = None;
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            // A lost race may have been another delivery of the same upload.
            if let Some(upload_id) = upload.filter(|_| attempt > 0) {
                match self.upload_completed(org, upload_id).await {
                    Ok(false) => {}
                    Ok(true) => return Ok(self.abandon(org, sealed, None).await),
                    Err(e) => return Err(self.abandon(org, sealed, e).await),
                }
            }
            let current = match self
                .metadata
                .artifact_at(org, &spec.workflow_id, path)
                .await
            {
                Ok(current) => current,
                Err(e) => return Err(self.abandon(org, sealed, e).await),
            };
            let latest = current.as_ref().map_or(0, |a| a.latest_version);
            let refused = match (spec.condition, &current) {
                (WriteCondition::LatestIs(n), _) if n != latest => Some(Error::Conflict(format!(
                    "latest version is {latest}, not {n}"
                ))),
                (WriteCondition::Absent, Some(_)) => Some(Error::PreconditionFailed(
                    "the artifact already exists".into(),
                )),
                _ => None,
            };
            if let Some(e) = refused {
                return Err(self.abandon(org, sealed, e).await);
            }

            // Content sealed for a different artifact id (a concurrent first
            // write won the path) is bound to that id: seal again.
            let artifact_id = current
                .as_ref()
                .map(|a| a.artifact_id.clone())
                .or_else(|| sealed.as_ref().map(|s| s.artifact_id.clone()))
                .unwrap_or_else(model::new_artifact_id);
            let now = model::now_rfc3339();
            let number = current.as_ref().map_or(1, Artifact::next_version);
            let mut lifecycle = crate::lifecycle::on_commit(
                &self.config,
                current.as_ref().map(|a| &a.lifecycle),
                spec.retention_days,
                spec.keep_versions,
                time::OffsetDateTime::now_utc(),
            );
            // `x-artifact-library` / `"library"` (SPEC §14); absent keeps the flag.
            if let Some(library) = spec.library {
                lifecycle.library = library;
            }
            // The version and the artifact's new state, given the content's
            // size and hash.
            let describe = |size: u64, sha256: &str| {
                let version = Version {
                    version: number,
                    size,
                    sha256: sha256.to_owned(),
                    content_type: spec.content_type.clone(),
                    created_at: now.clone(),
                    created_by: author.to_owned(),
                };
                let artifact = Artifact {
                    artifact_id: artifact_id.clone(),
                    workflow_id: spec.workflow_id.clone(),
                    path: path.to_owned(),
                    name: spec.path.file_name().to_owned(),
                    artifact_type: spec
                        .artifact_type
                        .clone()
                        .or_else(|| current.as_ref().map(|a| a.artifact_type.clone()))
                        .unwrap_or_else(|| DEFAULT_ARTIFACT_TYPE.to_owned()),
                    content_type: spec.content_type.clone(),
                    size,
                    sha256: sha256.to_owned(),
                    latest_version: number,
                    created_at: current
                        .as_ref()
                        .map_or_else(|| now.clone(), |a| a.created_at.clone()),
                    created_by: current
                        .as_ref()
                        .map_or_else(|| author.to_owned(), |a| a.created_by.clone()),
                    updated_at: now.clone(),
                    updated_by: author.to_owned(),
                    metadata: spec
                        .metadata
                        .clone()
                        .or_else(|| current.as_ref().map(|a| a.metadata.clone()))
                        .unwrap_or_default(),
                    lifecycle: lifecycle.clone(),
                };
                (version, artifact)
            };
            // Signed before the commit: no unsigned version ever exists.
            // Content sealed for another artifact id (a lost race) is
            // discarded and sealed again.
            let mut reused = sealed.take();
            if let Some(stale) = reused.take_if(|s| s.artifact_id != artifact_id) {
                self.discard(org, &stale).await;
            }
            let (ready, version, artifact, signed) = match (reused, payload.digest()) {
                (Some(s), _) => {
                    let (version, artifact) = describe(s.size, &s.sha256);
                    (s, version, artifact, None)
                }
                // A request body's size and hash are known before it is
                // sealed: its signature is asked for while it is sealed
                // and stored (KMS and S3 at once). Either failing fails
                // the write, the stored content removed.
                (None, Some((size, sha256))) => {
                    let (version, artifact) = describe(size, sha256);
                    let statement = publish_statement(org, spec, &artifact, &version, upload);
                    // (Boxed: two SDK calls side by side would double the
                    // size of every future that awaits a commit.)
                    let (ready, signed) = tokio::join!(
                        Box::pin(self.seal(org, &artifact_id, payload)),
                        Box::pin(self.attest(&statement))
                    );
                    match (ready, signed) {
                        (Ok(ready), Ok(signed)) => (ready, version, artifact, Some(signed)),
                        (Ok(ready), Err(e)) => return Err(self.abandon(org, Some(ready), e).await),
                        (Err(e), _) => return Err(e),
                    }
                }
                (None, None) => {
                    let ready = self.seal(org, &artifact_id, payload).await?;
                    let (version, artifact) = describe(ready.size, &ready.sha256);
                    (ready, version, artifact, None)
                }
            };
            let attestation = match signed {
                Some(a) => a,
                None => match self
                    .attest(&publish_statement(org, spec, &artifact, &version, upload))
                    .await
                {
                    Ok(a) => a,
                    Err(e) => return Err(self.abandon(org, Some(ready), e).await),
                },
            };
            let record = VersionRecord {
                version: version.clone(),
                content_id: ready.content_id.clone(),
                wrapped_key: ready.wrapped_key.clone(),
                location: ready.location.clone(),
                attestation: Some(crate::metadata::Attestation::Envelope(attestation)),
            };
            let mut also: Vec<_> = upload
                .map(|id| self.upload_completion(org, id, &artifact, version.version))
                .transpose()?
                .into_iter()
                .collect();
            // No version without its audit record (SPEC §13).
            also.push(self.audit_item(
                org,
                &crate::audit::Record::new(
                    crate::audit::Action::VersionCreated,
                    crate::audit::Actor::Sub(author.to_owned()),
                    crate::audit::Subject::artifact(&artifact, Some(version.version)),
                    origin,
                ),
            )?);
            match self
                .metadata
                .commit_version(org, &artifact, &spec.path, &record, latest, also)
                .await
            {
                Ok(()) => {
                    if artifact.lifecycle.keep_versions.is_some()
                        && let Err(e) = self
                            .hide_old_versions(
                                org,
                                &artifact,
                                &crate::audit::Actor::Sub(author.to_owned()),
                                origin,
                            )
                            .await
                    {
                        tracing::warn!(error = %e, "could not hide versions beyond keepVersions");
                    }
                    return Ok(Some((artifact, version)));
                }
                Err(Error::Conflict(_))
                    if matches!(spec.condition, WriteCondition::Any | WriteCondition::Absent) =>
                {
                    tracing::debug!(attempt, "lost a commit race; retrying");
                    sealed = Some(ready);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                // A failed condition (a lost race, or a path clash): the
                // transaction was cancelled, nothing points at the content.
                Err(e @ (Error::Conflict(_) | Error::PathClash { .. })) => {
                    return Err(self.abandon(org, Some(ready), e).await);
                }
                // Anything else is ambiguous: the transaction may have been
                // applied and only its answer lost (once the SDK's own
                // retries, which reuse the request token, are exhausted).
                Err(e) => {
                    return match self.committed(org, &artifact, &record).await {
                        Some(true) => {
                            tracing::warn!(error = %e, "commit answered an error but was applied");
                            Ok(Some((artifact, version)))
                        }
                        Some(false) => Err(self.abandon(org, Some(ready), e).await),
                        // Unknown: keep the content (the orphan sweep
                        // removes it later if nothing references it).
                        None => Err(e),
                    };
                }
            }
        }
        Err(self
            .abandon(
                org,
                sealed,
                Error::Conflict("too many concurrent writers to this path; retry".into()),
            )
            .await)
    }

    /// Whether `record` is committed as its version of `artifact`: read the
    /// version item back (strongly consistent) and compare its `contentId`.
    /// `None` when that cannot be told (the read failed too).
    async fn committed(
        &self,
        org: &str,
        artifact: &Artifact,
        record: &VersionRecord,
    ) -> Option<bool> {
        match self
            .metadata
            .version(org, &artifact.artifact_id, record.version.version)
            .await
        {
            Ok(found) => Some(found.is_some_and(|v| v.content_id == record.content_id)),
            Err(e) => {
                tracing::warn!(error = %e, "could not tell whether a commit was applied");
                None
            }
        }
    }

    /// One artifact's metadata.
    pub async fn artifact(&self, principal: &Principal, artifact_id: &str) -> Result<Artifact> {
        Ok(self.artifact_with_latest(principal, artifact_id).await?.0)
    }

    /// [`Store::artifact`], with the latest version's record when the
    /// artifact item carries a current copy (see [`crate::metadata::LATEST`]).
    async fn artifact_with_latest(
        &self,
        principal: &Principal,
        artifact_id: &str,
    ) -> Result<(Artifact, Option<VersionRecord>)> {
        principal.require(Scope::Read)?;
        let artifact_id = model::parse_artifact_id(artifact_id)?;
        let (artifact, latest) = self
            .metadata
            .artifact_with_latest(&principal.org, artifact_id)
            .await?
            .ok_or(Error::NotFound("artifact"))?;
        crate::lifecycle::readable(&artifact, time::OffsetDateTime::now_utc())?;
        Ok((artifact, latest))
    }

    /// One page of an artifact's history, newest first.
    pub async fn versions(
        &self,
        principal: &Principal,
        artifact_id: &str,
        limit: u32,
        before: Option<u64>,
    ) -> Result<VersionPage> {
        let artifact = self.artifact(principal, artifact_id).await?;
        self.metadata
            .versions(&principal.org, &artifact.artifact_id, limit, before)
            .await
    }

    /// The artifact and one of its versions (default: the latest), without
    /// content. The latest version is one `GetItem` of the artifact item
    /// when it carries a current copy of the version's record
    /// ([`crate::metadata::LATEST`]); otherwise, and for a version named by
    /// number, the version item is read too — at the same time as the
    /// artifact item when the number is given.
    pub async fn version(
        &self,
        principal: &Principal,
        artifact_id: &str,
        version: Option<u64>,
    ) -> Result<(Artifact, VersionRecord)> {
        let org = &principal.org;
        match version {
            None => {
                let (artifact, latest) = self.artifact_with_latest(principal, artifact_id).await?;
                self.version_of(org, artifact, latest, None).await
            }
            Some(number) => {
                // Checked before either read starts, as `artifact` would.
                principal.require(Scope::Read)?;
                let id = model::parse_artifact_id(artifact_id)?;
                let (artifact, record) = tokio::join!(
                    Box::pin(self.artifact(principal, artifact_id)),
                    Box::pin(self.metadata.version(org, id, number))
                );
                // The artifact's answer (404, 410, …) comes first.
                Ok((artifact?, record?.ok_or(Error::NotFound("version"))?))
            }
        }
    }

    /// One version (default: the latest) of an artifact already read, with
    /// the item's copy of its latest version's record if it had one.
    pub(crate) async fn version_of(
        &self,
        org: &str,
        artifact: Artifact,
        latest: Option<VersionRecord>,
        version: Option<u64>,
    ) -> Result<(Artifact, VersionRecord)> {
        let number = version.unwrap_or(artifact.latest_version);
        if let Some(latest) = latest.filter(|l| l.version.version == number) {
            return Ok((artifact, latest));
        }
        let record = self
            .metadata
            .version(org, &artifact.artifact_id, number)
            .await?
            .ok_or(Error::NotFound("version"))?;
        Ok((artifact, record))
    }

    /// Decrypt a version's content, whole or the inclusive byte `range`.
    /// Any mismatch between content and metadata is [`Error::Integrity`]:
    /// no plaintext is returned unless every byte of it authenticated.
    pub async fn read(
        &self,
        org: &str,
        artifact_id: &str,
        record: &VersionRecord,
        range: Option<(u64, u64)>,
    ) -> Result<Vec<u8>> {
        let fetch = async {
            match &record.location {
                Location::Inline(ciphertext) => Ok(ciphertext.clone()),
                Location::S3 { version_id } => {
                    self.content
                        .get(&content_key(org, artifact_id), version_id)
                        .await
                }
            }
        };
        // The content and its key come from two services: ask both at once.
        let (sealed, key) = tokio::try_join!(fetch, self.data_key(org, artifact_id, record))?;
        let size = record.version.size;
        if sealed.len() as u64 != crypto::sealed_len(size) {
            return Err(Error::Integrity(
                "stored content has the wrong length".into(),
            ));
        }
        match range {
            Some((start, end)) => Ok(crypto::open_range(&key, &sealed, size, start, end)?),
            None => {
                let plaintext = crypto::open(&key, &sealed)?;
                if hex::encode(Sha256::digest(&plaintext)) != record.version.sha256 {
                    return Err(Error::Integrity("content does not match its sha256".into()));
                }
                Ok(plaintext)
            }
        }
    }

    /// A stored version's data key, unwrapped by KMS for exactly the context
    /// it was made for (a key moved from another version is refused).
    pub async fn data_key(
        &self,
        org: &str,
        artifact_id: &str,
        record: &VersionRecord,
    ) -> Result<crate::envelope::PlainKey> {
        self.envelope
            .unwrap(
                &record.wrapped_key,
                &KeyContext {
                    org,
                    artifact_id,
                    content_id: &record.content_id,
                },
            )
            .await
    }

    async fn seal(&self, org: &str, artifact_id: &str, payload: &Payload<'_>) -> Result<Sealed> {
        let content_id = uuid::Uuid::new_v4().simple().to_string();
        let key = self
            .envelope
            .generate(&KeyContext {
                org,
                artifact_id,
                content_id: &content_id,
            })
            .await?;
        let (location, size, sha256) = match payload {
            Payload::Body { bytes, sha256 } => {
                let ciphertext = crypto::seal(&key.plaintext, bytes);
                let location = if ciphertext.len() <= self.config.inline_max_bytes {
                    Location::Inline(ciphertext)
                } else {
                    let version_id = self
                        .content
                        .put(&content_key(org, artifact_id), ciphertext)
                        .await?;
                    Location::S3 { version_id }
                };
                (location, bytes.len() as u64, sha256.clone())
            }
            Payload::Staged {
                key: staged,
                version_id,
                size,
                sha256,
            } => {
                let (location, actual) = self
                    .seal_staged(org, artifact_id, staged, version_id, *size, &key.plaintext)
                    .await?;
                if let Some(expected) = sha256
                    && !expected.eq_ignore_ascii_case(&actual)
                {
                    self.discard_location(org, artifact_id, &location).await;
                    return Err(Error::bad_request(
                        "sha256",
                        "the uploaded bytes do not match the declared SHA-256",
                    ));
                }
                (location, *size, actual)
            }
        };
        Ok(Sealed {
            artifact_id: artifact_id.to_owned(),
            content_id,
            wrapped_key: key.wrapped,
            location,
            size,
            sha256,
        })
    }

    /// Remove content that no committed version points at (best effort: an
    /// orphaned object version costs storage, never correctness).
    async fn discard(&self, org: &str, sealed: &Sealed) {
        self.discard_location(org, &sealed.artifact_id, &sealed.location)
            .await;
    }

    pub(crate) async fn discard_location(&self, org: &str, artifact_id: &str, location: &Location) {
        if let Location::S3 { version_id } = location {
            let key = content_key(org, artifact_id);
            if let Err(e) = self.content.delete_version(&key, version_id).await {
                tracing::warn!(error = %e, "could not remove uncommitted content version");
            }
        }
    }

    /// Clean up sealed content that will not be committed, and pass `outcome` on.
    async fn abandon<T>(&self, org: &str, sealed: Option<Sealed>, outcome: T) -> T {
        if let Some(s) = sealed {
            self.discard(org, &s).await;
        }
        outcome
    }
}

/// What the attestation of a version about to be committed says (SPEC §18).
fn publish_statement(
    org: &str,
    spec: &VersionSpec,
    artifact: &Artifact,
    version: &Version,
    upload: Option<&str>,
) -> crate::attestation::Statement {
    crate::attestation::Statement::publish(
        &artifact.path,
        &version.sha256,
        crate::attestation::Publish {
            org: org.to_owned(),
            workflow_id: artifact.workflow_id.clone(),
            artifact_id: artifact.artifact_id.clone(),
            version: version.version,
            size: version.size,
            content_type: version.content_type.clone(),
            published_at: version.created_at.clone(),
            published_by: version.created_by.clone(),
            request_id: spec
                .request_id
                .as_deref()
                .or(upload)
                .unwrap_or_default()
                .to_owned(),
        },
    )
}

/// Jittered, growing pause between commit attempts.
fn backoff(attempt: u32) -> Duration {
    let mut random = [0u8; 2];
    let jitter = match getrandom::fill(&mut random) {
        Ok(()) => u64::from(u16::from_le_bytes(random)),
        Err(_) => 0,
    };
    let ceiling_ms = 5 * u64::from(attempt.min(8) + 1);
    Duration::from_micros(jitter % (ceiling_ms * 1000) + 500)
}
