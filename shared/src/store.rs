//! The store's operations: what the functions call. Each takes the caller's
//! [`Principal`] and enforces scope and org before touching anything.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Scope};
use crate::config::{Config, ConfigError};
use crate::content::{Content, content_key};
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
    pub condition: WriteCondition,
    pub body: Vec<u8>,
}

/// Content sealed for one artifact id, ready to be committed as a version.
struct Sealed {
    artifact_id: String,
    content_id: String,
    wrapped_key: Vec<u8>,
    location: Location,
}

/// Everything a function needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Store {
    pub config: Config,
    pub metadata: Metadata,
    pub content: Content,
    pub envelope: Envelope,
}

impl Store {
    /// Configuration from the environment and SDK clients from the default
    /// chain (which honours `AWS_ENDPOINT_URL`). Fails fast on bad config.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Ok(Self::new(config, &sdk))
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        // Emulators (AWS_ENDPOINT_URL) serve buckets by path, not by host name.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Store {
            metadata: Metadata::new(aws_sdk_dynamodb::Client::new(sdk), &config.table),
            content: Content::new(aws_sdk_s3::Client::from_conf(s3), &config.bucket),
            envelope: Envelope::new(aws_sdk_kms::Client::new(sdk), &config.kms_key_id),
            config,
        }
    }

    /// Store `new` as the next version of its artifact, creating the artifact
    /// on first write. Content is sealed and stored before the metadata
    /// commit, so no version ever points at missing content.
    pub async fn put(&self, principal: &Principal, new: NewVersion) -> Result<(Artifact, Version)> {
        principal.require(Scope::Write)?;
        let org = principal.org.as_str();
        model::validate_workflow_id(&new.workflow_id)?;
        let path = ArtifactPath::parse(&new.path)?;
        if let Some(t) = &new.artifact_type {
            model::validate_artifact_type(t)?;
        }
        let content_type = new.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE);
        model::validate_content_type(content_type)?;
        if let Some(m) = &new.metadata {
            model::validate_metadata(m)?;
        }
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

        let mut sealed: Option<Sealed> = None;
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let current = match self
                .metadata
                .artifact_at(org, &new.workflow_id, path.as_str())
                .await
            {
                Ok(current) => current,
                Err(e) => return Err(self.abandon(org, sealed, e).await),
            };
            let latest = current.as_ref().map_or(0, |a| a.latest_version);
            let refused = match (new.condition, &current) {
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
            let ready = match sealed.take() {
                Some(s) if s.artifact_id == artifact_id => s,
                stale => {
                    if let Some(stale) = stale {
                        self.discard(org, &stale).await;
                    }
                    self.seal(org, &artifact_id, &new.body).await?
                }
            };

            let now = model::now_rfc3339();
            let version = Version {
                version: latest + 1,
                size,
                sha256: sha256.clone(),
                content_type: content_type.to_owned(),
                created_at: now.clone(),
                created_by: principal.subject.clone(),
            };
            let artifact = Artifact {
                artifact_id,
                workflow_id: new.workflow_id.clone(),
                path: path.as_str().to_owned(),
                name: path.file_name().to_owned(),
                artifact_type: new
                    .artifact_type
                    .clone()
                    .or_else(|| current.as_ref().map(|a| a.artifact_type.clone()))
                    .unwrap_or_else(|| DEFAULT_ARTIFACT_TYPE.to_owned()),
                content_type: content_type.to_owned(),
                size,
                sha256: sha256.clone(),
                latest_version: latest + 1,
                created_at: current
                    .as_ref()
                    .map_or_else(|| now.clone(), |a| a.created_at.clone()),
                created_by: current
                    .as_ref()
                    .map_or_else(|| principal.subject.clone(), |a| a.created_by.clone()),
                updated_at: now,
                updated_by: principal.subject.clone(),
                metadata: new
                    .metadata
                    .clone()
                    .or_else(|| current.as_ref().map(|a| a.metadata.clone()))
                    .unwrap_or_default(),
            };
            let record = VersionRecord {
                version: version.clone(),
                content_id: ready.content_id.clone(),
                wrapped_key: ready.wrapped_key.clone(),
                location: ready.location.clone(),
            };
            match self
                .metadata
                .commit_version(org, &artifact, &record, latest)
                .await
            {
                Ok(()) => return Ok((artifact, version)),
                Err(Error::Conflict(_))
                    if new.condition == WriteCondition::Any
                        || new.condition == WriteCondition::Absent =>
                {
                    tracing::debug!(attempt, "lost a commit race; retrying");
                    sealed = Some(ready);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(self.abandon(org, Some(ready), e).await),
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

    /// One artifact's metadata.
    pub async fn artifact(&self, principal: &Principal, artifact_id: &str) -> Result<Artifact> {
        principal.require(Scope::Read)?;
        let artifact_id = model::parse_artifact_id(artifact_id)?;
        self.metadata
            .artifact(&principal.org, artifact_id)
            .await?
            .ok_or(Error::NotFound("artifact"))
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

    /// The artifact and one of its versions (default: the latest), without content.
    pub async fn version(
        &self,
        principal: &Principal,
        artifact_id: &str,
        version: Option<u64>,
    ) -> Result<(Artifact, VersionRecord)> {
        let artifact = self.artifact(principal, artifact_id).await?;
        let number = version.unwrap_or(artifact.latest_version);
        let record = self
            .metadata
            .version(&principal.org, &artifact.artifact_id, number)
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
        let sealed = match &record.location {
            Location::Inline(ciphertext) => ciphertext.clone(),
            Location::S3 { version_id } => {
                self.content
                    .get(&content_key(org, artifact_id), version_id)
                    .await?
            }
        };
        let size = record.version.size;
        if sealed.len() as u64 != crypto::sealed_len(size) {
            return Err(Error::Integrity(
                "stored content has the wrong length".into(),
            ));
        }
        let key = self
            .envelope
            .unwrap(
                &record.wrapped_key,
                &KeyContext {
                    org,
                    artifact_id,
                    content_id: &record.content_id,
                },
            )
            .await?;
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

    async fn seal(&self, org: &str, artifact_id: &str, plaintext: &[u8]) -> Result<Sealed> {
        let content_id = uuid::Uuid::new_v4().simple().to_string();
        let key = self
            .envelope
            .generate(&KeyContext {
                org,
                artifact_id,
                content_id: &content_id,
            })
            .await?;
        let ciphertext = crypto::seal(&key.plaintext, plaintext);
        let location = if ciphertext.len() <= self.config.inline_max_bytes {
            Location::Inline(ciphertext)
        } else {
            let version_id = self
                .content
                .put(&content_key(org, artifact_id), ciphertext)
                .await?;
            Location::S3 { version_id }
        };
        Ok(Sealed {
            artifact_id: artifact_id.to_owned(),
            content_id,
            wrapped_key: key.wrapped,
            location,
        })
    }

    /// Remove content that no committed version points at (best effort: an
    /// orphaned object version costs storage, never correctness).
    async fn discard(&self, org: &str, sealed: &Sealed) {
        if let Location::S3 { version_id } = &sealed.location {
            let key = content_key(org, &sealed.artifact_id);
            if let Err(e) = self.content.delete_version(&key, version_id).await {
                tracing::warn!(error = %e, "could not remove uncommitted content version");
            }
        }
    }

    async fn abandon(&self, org: &str, sealed: Option<Sealed>, err: Error) -> Error {
        if let Some(s) = sealed {
            self.discard(org, &s).await;
        }
        err
    }
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
