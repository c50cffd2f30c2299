//! Direct-to-S3 uploads (SPEC §4, §5, §19): a client asks for an upload
//! session, PUTs the bytes to a presigned URL under `incoming/`, and S3's
//! `ObjectCreated` event (bucket → EventBridge → SQS → ingest) runs
//! [`Store::ingest`], which streams the staged object through the envelope
//! encryption into the artifact store and commits the version — exactly once
//! per session, however often or in whatever order the event arrives. The
//! client follows its session with [`Store::upload_status`].
//!
//! Ingest trusts only the staged object version the event names and the
//! session recorded at request time (who, which workflow, path, type,
//! declared size and hash). The presigned URL can be used more than once
//! while it is valid, so the key may hold several versions: ingest reads
//! exactly the event's version (never "the newest", which a second PUT could
//! have replaced), and once the session is settled it deletes every version
//! of the staged key, so no plaintext stays behind.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_s3::presigning::PresigningConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Scope, is_valid_org};
use crate::content::{Multipart, content_key};
use crate::crypto::{self, KEY_LEN, SEGMENT_SIZE, Sealer};
use crate::error::{Error, Result};
use crate::metadata::Location;
use crate::model::Artifact;
use crate::store::{Payload, Store, VersionSpec, WriteCondition};

/// The largest object a single presigned PUT may carry.
pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// How long the presigned PUT stays valid.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// Sessions are kept (DynamoDB TTL) a day, like the staged objects.
const SESSION_TTL_SECS: i64 = 24 * 60 * 60;
/// A PUT that started before its URL expired may still be arriving: a
/// session with nothing staged counts as expired only this long after.
const UPLOAD_GRACE_SECS: i64 = 60 * 60;
const SESSION_SK: &str = "#UPLOAD";
const PENDING: &str = "pending";
const COMPLETED: &str = "completed";
const REJECTED: &str = "rejected";

/// `incoming/{org}/{uploadId}`: the staging key of an upload.
pub fn staging_key(org: &str, upload_id: &str) -> String {
    format!("incoming/{org}/{upload_id}")
}

/// The partition of an upload session.
pub fn session_pk(org: &str, upload_id: &str) -> String {
    format!("{org}#U#{upload_id}")
}

/// Upload ids are 32 lowercase hex digits.
pub fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decode an S3 event key (URL-encoded, `+` for space) and split a staging
/// key into org and upload id; anything else is not ours to ingest.
pub fn parse_event_key(raw: &str) -> Option<(String, String)> {
    let spaced = raw.replace('+', " ");
    let key = percent_decode_str(&spaced).decode_utf8().ok()?;
    let (org, upload_id) = key.strip_prefix("incoming/")?.split_once('/')?;
    (is_valid_org(org) && is_upload_id(upload_id)).then(|| (org.to_owned(), upload_id.to_owned()))
}

/// `POST /v1/workflows/{workflowId}/uploads` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRequest {
    pub path: String,
    pub artifact_type: Option<String>,
    pub content_type: Option<String>,
    pub size: u64,
    pub sha256: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// Publish to the library (SPEC §14); `None` keeps what the artifact has.
    pub library: Option<bool>,
    /// Restart the artifact's retention clock with this many days (SPEC
    /// §12), as `x-artifact-retention-days` does on `PUT`.
    pub retention_days: Option<u64>,
    /// Keep only the N newest versions (SPEC §12), as
    /// `x-artifact-keep-versions` does on `PUT`.
    pub keep_versions: Option<u64>,
}

/// The fields of an [`UploadRequest`] as they are spelt in JSON.
const UPLOAD_FIELDS: &[&str] = &[
    "path",
    "artifactType",
    "contentType",
    "size",
    "sha256",
    "metadata",
    "library",
    "retentionDays",
    "keepVersions",
];

impl UploadRequest {
    /// Parse a `POST …/uploads` body. Bad input names the field it is in: a
    /// value of the wrong type or a missing required field is a 400 on that
    /// field; a body that is not a JSON object, or has a field an upload
    /// does not take, is a 400 on `body`.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let not_an_object = || {
            Error::bad_request(
                "body",
                "must be a JSON object like {\"path\": \"docs/a.md\", \"size\": 3}",
            )
        };
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| not_an_object())?;
        let fields = value.as_object().ok_or_else(not_an_object)?;
        if let Some(unknown) = fields.keys().find(|k| !UPLOAD_FIELDS.contains(&k.as_str())) {
            return Err(Error::bad_request(
                "body",
                format!(
                    "unknown field {unknown:?}; an upload takes {}",
                    UPLOAD_FIELDS.join(", ")
                ),
            ));
        }
        fn field<T: serde::de::DeserializeOwned>(
            fields: &serde_json::Map<String, serde_json::Value>,
            name: &'static str,
            what: &str,
        ) -> Result<Option<T>> {
            match fields.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => T::deserialize(v)
                    .map(Some)
                    .map_err(|_| Error::bad_request(name, format!("must be {what}"))),
            }
        }
        let required = |name: &'static str| Error::bad_request(name, "is required");
        Ok(UploadRequest {
            path: field(fields, "path", "a string")?.ok_or_else(|| required("path"))?,
            artifact_type: field(fields, "artifactType", "a string")?,
            content_type: field(fields, "contentType", "a string")?,
            size: field(fields, "size", "a whole number of bytes")?
                .ok_or_else(|| required("size"))?,
            sha256: field(fields, "sha256", "a string of 64 hex digits")?,
            metadata: field(fields, "metadata", "an object of string values")?,
            library: field(fields, "library", "true or false")?,
            retention_days: field(
                fields,
                "retentionDays",
                "a whole number of days, at least 1",
            )?,
            keep_versions: field(
                fields,
                "keepVersions",
                "a whole number of versions, at least 1",
            )?,
        })
    }
}

/// Where and how to PUT the bytes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignedUpload {
    pub upload_id: String,
    pub url: String,
    pub method: &'static str,
    /// Headers the PUT must carry exactly (they are signed).
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
}

/// What ingesting one staged object did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new version was committed.
    Committed { artifact_id: String, version: u64 },
    /// The session was already completed or rejected (a repeated event).
    AlreadyDone,
    /// The upload broke its session's terms (size, hash); no version.
    Rejected(String),
    /// No session for this key: not an upload of ours. Removed.
    Unknown,
    /// The event's object version no longer exists (a stale or forged
    /// event): nothing is read, the session stays as it is.
    Stale,
    /// The session's day is over (its status is `expired`): the staged
    /// object is removed, never ingested.
    Expired,
}

/// Where an upload session stands (`GET …/uploads/{uploadId}`, SPEC §19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Waiting for its bytes, or for ingest to commit them.
    Pending,
    /// Its version is committed.
    Committed,
    /// The bytes broke the session's terms; no version.
    Rejected,
    /// Nothing arrived in time: it will never commit.
    Expired,
}

/// `GET /v1/workflows/{workflowId}/uploads/{uploadId}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadStatus {
    pub upload_id: String,
    pub state: UploadState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When a session still pending stops waiting (it is then `expired`).
    pub expires_at: String,
}

/// A recorded upload session.
#[derive(Debug, Clone)]
struct Session {
    workflow_id: String,
    path: String,
    artifact_type: Option<String>,
    content_type: String,
    metadata: Option<BTreeMap<String, String>>,
    library: Option<bool>,
    /// Checked and capped when the session was created.
    retention_days: Option<u64>,
    keep_versions: Option<u64>,
    size: u64,
    sha256: Option<String>,
    created_by: String,
    state: String,
    /// Unix seconds: the session's end (its DynamoDB TTL).
    expires_at: i64,
    /// Unix seconds: when the presigned PUT stopped being valid.
    url_expires_at: i64,
    artifact_id: Option<String>,
    version: Option<u64>,
    reason: Option<String>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl Store {
    /// Record an upload session and presign the PUT that fills it.
    pub async fn create_upload(
        &self,
        principal: &Principal,
        workflow_id: &str,
        request: UploadRequest,
    ) -> Result<PresignedUpload> {
        principal.require(Scope::Write)?;
        let org = principal.org.as_str();
        let spec = VersionSpec::validate(
            workflow_id,
            &request.path,
            request.artifact_type,
            request.content_type,
            request.metadata,
            WriteCondition::Any,
        )?;
        // Checked (and cut to the cap) before anything is recorded.
        let retention_days = request
            .retention_days
            .map(|days| crate::lifecycle::retention_days(&self.config, "retentionDays", days))
            .transpose()?;
        let keep_versions = request
            .keep_versions
            .map(|n| {
                (1..=crate::lifecycle::MAX_KEEP_VERSIONS)
                    .contains(&n)
                    .then_some(n)
                    .ok_or_else(|| {
                        Error::bad_request(
                            "keepVersions",
                            format!(
                                "must be a whole number from 1 to {}",
                                crate::lifecycle::MAX_KEEP_VERSIONS
                            ),
                        )
                    })
            })
            .transpose()?;
        if request.size > MAX_UPLOAD_BYTES {
            return Err(Error::bad_request(
                "size",
                format!("must be at most {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        let sha256 = request
            .sha256
            .map(|h| {
                hex::decode(&h)
                    .ok()
                    .filter(|b| b.len() == 32)
                    .map(|_| h.to_ascii_lowercase())
                    .ok_or_else(|| Error::bad_request("sha256", "must be 64 hex digits"))
            })
            .transpose()?;

        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let now = time::OffsetDateTime::now_utc();
        let mut item = std::collections::HashMap::from([
            ("pk".to_owned(), s(session_pk(org, &upload_id))),
            ("sk".to_owned(), s(SESSION_SK)),
            ("workflowId".to_owned(), s(&spec.workflow_id)),
            ("path".to_owned(), s(spec.path.as_str())),
            ("contentType".to_owned(), s(&spec.content_type)),
            (
                "size".to_owned(),
                AttributeValue::N(request.size.to_string()),
            ),
            ("createdBy".to_owned(), s(&principal.subject)),
            ("state".to_owned(), s(PENDING)),
            (
                "expiresAt".to_owned(),
                AttributeValue::N((now.unix_timestamp() + SESSION_TTL_SECS).to_string()),
            ),
            (
                "urlExpiresAt".to_owned(),
                AttributeValue::N((now + UPLOAD_URL_TTL).unix_timestamp().to_string()),
            ),
        ]);
        if let Some(t) = &spec.artifact_type {
            item.insert("artifactType".into(), s(t));
        }
        if let Some(h) = &sha256 {
            item.insert("sha256".into(), s(h));
        }
        if let Some(library) = request.library {
            item.insert("library".into(), AttributeValue::Bool(library));
        }
        if let Some(days) = retention_days {
            item.insert("retentionDays".into(), AttributeValue::N(days.to_string()));
        }
        if let Some(n) = keep_versions {
            item.insert("keepVersions".into(), AttributeValue::N(n.to_string()));
        }
        if let Some(m) = &spec.metadata {
            item.insert(
                "metadata".into(),
                AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
            );
        }
        self.metadata
            .client()
            .put_item()
            .table_name(self.metadata.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| Error::upstream("dynamodb", e))?;

        let mut put = self
            .content
            .client()
            .put_object()
            .bucket(self.content.bucket())
            .key(staging_key(org, &upload_id))
            .content_length(request.size as i64)
            .content_type(&spec.content_type);
        if let Some(h) = &sha256 {
            let raw = hex::decode(h).map_err(|e| Error::upstream("hex", e))?;
            put = put.checksum_sha256(STANDARD.encode(raw));
        }
        let config =
            PresigningConfig::expires_in(UPLOAD_URL_TTL).map_err(|e| Error::upstream("s3", e))?;
        let presigned = put
            .presigned(config)
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        let headers = presigned
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        let expires_at = now + UPLOAD_URL_TTL;
        Ok(PresignedUpload {
            upload_id,
            url: presigned.uri().to_owned(),
            method: "PUT",
            headers,
            expires_at: crate::model::rfc3339(expires_at),
        })
    }

    /// Ingest exactly the staged object version an S3 event names (its key
    /// as delivered, and its `versionId`). `Err` only for failures a retry
    /// can fix (the staged object is then left in place).
    pub async fn ingest(&self, raw_key: &str, version_id: &str) -> Result<IngestOutcome> {
        let Some((org, upload_id)) = parse_event_key(raw_key) else {
            tracing::warn!("ignoring an object that is not a staged upload");
            return Ok(IngestOutcome::Unknown);
        };
        let staged = staging_key(&org, &upload_id);
        let Some(session) = self.session(&org, &upload_id).await? else {
            tracing::warn!(
                org,
                upload_id,
                "no upload session; removing the staged object"
            );
            self.remove_staged(&staged).await;
            return Ok(IngestOutcome::Unknown);
        };
        if session.state != PENDING {
            self.remove_staged(&staged).await;
            return Ok(IngestOutcome::AlreadyDone);
        }
        if time::OffsetDateTime::now_utc().unix_timestamp() >= session.expires_at {
            // The status route already calls it expired, for good (the
            // session item itself goes with DynamoDB's TTL, later).
            tracing::warn!(
                org,
                upload_id,
                "upload session expired; removing the staged object"
            );
            self.remove_staged(&staged).await;
            return Ok(IngestOutcome::Expired);
        }
        let mut spec = VersionSpec::validate(
            &session.workflow_id,
            &session.path,
            session.artifact_type.clone(),
            Some(session.content_type.clone()),
            session.metadata.clone(),
            WriteCondition::Any,
        )?;
        spec.library = session.library;
        spec.retention_days = session.retention_days;
        spec.keep_versions = session.keep_versions;
        let payload = Payload::Staged {
            key: &staged,
            version_id,
            size: session.size,
            sha256: session.sha256.as_deref(),
        };
        match self
            .commit(
                &org,
                &session.created_by,
                &spec,
                &payload,
                Some(&upload_id),
                // No HTTP request: the record names the upload's creator.
                &crate::audit::Origin::default(),
            )
            .await
        {
            Ok(Some((artifact, version))) => {
                self.remove_staged(&staged).await;
                tracing::info!(
                    org,
                    artifact_id = artifact.artifact_id,
                    version = version.version,
                    "ingested"
                );
                Ok(IngestOutcome::Committed {
                    artifact_id: artifact.artifact_id,
                    version: version.version,
                })
            }
            Ok(None) => {
                self.remove_staged(&staged).await;
                Ok(IngestOutcome::AlreadyDone)
            }
            Err(Error::Gone(what)) => {
                // Not the session's fault: the version it names is not there.
                tracing::warn!(org, upload_id, version_id, what, "stale upload event");
                Ok(IngestOutcome::Stale)
            }
            Err(e) if !e.is_retryable() => {
                tracing::warn!(org, upload_id, error = %e, "upload rejected");
                self.reject(&org, &upload_id, &e.to_string()).await?;
                self.remove_staged(&staged).await;
                Ok(IngestOutcome::Rejected(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    async fn session(&self, org: &str, upload_id: &str) -> Result<Option<Session>> {
        let Some(item) = self
            .metadata
            .item(session_pk(org, upload_id), SESSION_SK.to_owned())
            .await?
        else {
            return Ok(None);
        };
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let malformed = || Error::Integrity("malformed upload session".into());
        let number = |name: &str| -> Option<i64> {
            match item.get(name) {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            }
        };
        let size = match item.get("size") {
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| malformed())?,
            _ => return Err(malformed()),
        };
        let expires_at = number("expiresAt").ok_or_else(malformed)?;
        let metadata = match item.get("metadata") {
            Some(AttributeValue::M(m)) => Some(
                m.iter()
                    .filter_map(|(k, v)| match v {
                        AttributeValue::S(v) => Some((k.clone(), v.clone())),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        };
        Ok(Some(Session {
            workflow_id: text("workflowId").ok_or_else(malformed)?,
            path: text("path").ok_or_else(malformed)?,
            artifact_type: text("artifactType"),
            content_type: text("contentType").ok_or_else(malformed)?,
            metadata,
            library: match item.get("library") {
                Some(AttributeValue::Bool(b)) => Some(*b),
                _ => None,
            },
            retention_days: number("retentionDays")
                .and_then(|v| u64::try_from(v).ok())
                .filter(|d| *d >= 1),
            keep_versions: number("keepVersions")
                .and_then(|v| u64::try_from(v).ok())
                .filter(|n| *n >= 1),
            size,
            sha256: text("sha256"),
            created_by: text("createdBy").ok_or_else(malformed)?,
            state: text("state").ok_or_else(malformed)?,
            expires_at,
            // Sessions from before `urlExpiresAt` was recorded.
            url_expires_at: number("urlExpiresAt")
                .unwrap_or(expires_at - SESSION_TTL_SECS + UPLOAD_URL_TTL.as_secs() as i64),
            artifact_id: text("artifactId"),
            version: number("version").and_then(|v| u64::try_from(v).ok()),
            reason: text("reason"),
        }))
    }

    /// Whether the session is no longer waiting for its content.
    pub(crate) async fn upload_completed(&self, org: &str, upload_id: &str) -> Result<bool> {
        Ok(self
            .session(org, upload_id)
            .await?
            .is_none_or(|session| session.state != PENDING))
    }

    /// The transaction item that completes a pending session with `version`.
    pub(crate) fn upload_completion(
        &self,
        org: &str,
        upload_id: &str,
        artifact: &Artifact,
        version: u64,
    ) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(self.metadata.table())
            .key("pk", s(session_pk(org, upload_id)))
            .key("sk", s(SESSION_SK))
            .update_expression("SET #state = :done, artifactId = :id, #version = :v")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":done", s(COMPLETED))
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":id", s(&artifact.artifact_id))
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .build()
            .map_err(|e| Error::upstream("dynamodb", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn reject(&self, org: &str, upload_id: &str, reason: &str) -> Result<()> {
        let result = self
            .metadata
            .client()
            .update_item()
            .table_name(self.metadata.table())
            .key("pk", s(session_pk(org, upload_id)))
            .key("sk", s(SESSION_SK))
            .update_expression("SET #state = :rejected, reason = :reason")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":rejected", s(REJECTED))
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":reason", s(reason))
            .send()
            .await;
        // Someone else settled it first: nothing left to do.
        crate::metadata::settled(result)
    }

    /// Delete every version of a staged key, delete markers included: in a
    /// versioned bucket a plain delete would only hide the plaintext behind
    /// a marker, and a presigned URL used twice leaves two versions.
    /// Failures are logged; the lifecycle rule expires incoming/ anyway.
    async fn remove_staged(&self, key: &str) {
        if let Err(e) = self.remove_staged_versions(key).await {
            tracing::warn!(error = %e, "could not remove a staged upload");
        }
    }

    async fn remove_staged_versions(&self, key: &str) -> Result<()> {
        let s3 = self.content.client();
        let bucket = self.content.bucket();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = s3
                .list_object_versions()
                .bucket(bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| Error::upstream("s3", e))?;
            let versions = page
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    page.delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                );
            // A prefix also matches longer keys; only this key's are ours.
            for (_, version_id) in versions.filter(|(k, _)| *k == Some(key)) {
                s3.delete_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version_id.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| Error::upstream("s3", e))?;
            }
            if page.is_truncated() != Some(true) {
                return Ok(());
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }

    /// Whether anything is staged under `key` now.
    async fn staged_present(&self, key: &str) -> Result<bool> {
        let listing = self
            .content
            .client()
            .list_objects_v2()
            .bucket(self.content.bucket())
            .prefix(key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        Ok(listing.contents().iter().any(|o| o.key() == Some(key)))
    }

    /// Where an upload session stands: `GET /v1/workflows/{workflowId}/uploads/{uploadId}`
    /// (SPEC §19). Another org's session, or one of another workflow, is
    /// not found. `now` is Unix seconds.
    pub async fn upload_status(
        &self,
        principal: &Principal,
        workflow_id: &str,
        upload_id: &str,
        now: i64,
    ) -> Result<UploadStatus> {
        principal.require(Scope::Read)?;
        crate::model::validate_workflow_id(workflow_id)?;
        if !is_upload_id(upload_id) {
            return Err(Error::bad_request(
                "uploadId",
                "must be the 32 lowercase hex digits the upload session returned",
            ));
        }
        let org = principal.org.as_str();
        let found = |session: Option<Session>| {
            session
                .filter(|s| s.workflow_id == workflow_id)
                .ok_or(Error::NotFound("upload"))
        };
        let mut session = found(self.session(org, upload_id).await?)?;
        let mut state = match session.state.as_str() {
            COMPLETED => UploadState::Committed,
            REJECTED => UploadState::Rejected,
            _ if now >= session.expires_at => UploadState::Expired,
            _ => UploadState::Pending,
        };
        if state == UploadState::Pending
            && now >= session.url_expires_at + UPLOAD_GRACE_SECS
            && !self.staged_present(&staging_key(org, upload_id)).await?
        {
            // Nothing staged: never uploaded — or ingested just now, which
            // a second read of the session tells apart.
            session = found(self.session(org, upload_id).await?)?;
            state = match session.state.as_str() {
                COMPLETED => UploadState::Committed,
                REJECTED => UploadState::Rejected,
                _ => UploadState::Expired,
            };
        }
        let expires_at = time::OffsetDateTime::from_unix_timestamp(session.expires_at)
            .map_err(|e| Error::Integrity(format!("upload session expiry: {e}")))?;
        Ok(UploadStatus {
            upload_id: upload_id.to_owned(),
            state,
            artifact_id: session
                .artifact_id
                .filter(|_| state == UploadState::Committed),
            version: session.version.filter(|_| state == UploadState::Committed),
            reason: session.reason.filter(|_| state == UploadState::Rejected),
            expires_at: crate::model::rfc3339(expires_at),
        })
    }

    /// Stream a staged object through the envelope format into the artifact's
    /// content (inline when small, else a multipart upload), in constant
    /// memory; returns where it went and the plaintext's SHA-256. A staged
    /// object of another size than declared is rejected.
    pub(crate) async fn seal_staged(
        &self,
        org: &str,
        artifact_id: &str,
        staged: &str,
        version_id: &str,
        size: u64,
        key: &[u8; KEY_LEN],
    ) -> Result<(Location, String)> {
        let object = self
            .content
            .client()
            .get_object()
            .bucket(self.content.bucket())
            .key(staged)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| {
                // That version is not there, and never will be; a malformed
                // version id is InvalidArgument.
                use aws_sdk_s3::error::ProvideErrorMetadata;
                if matches!(
                    e.code(),
                    Some("NoSuchKey" | "NoSuchVersion" | "InvalidArgument")
                ) {
                    Error::Gone("staged upload version")
                } else {
                    Error::upstream("s3", e)
                }
            })?;
        if let Some(len) = object.content_length()
            && len as u64 != size
        {
            return Err(size_mismatch(len as u64, size));
        }
        let mut sink = if crypto::sealed_len(size) <= self.config.inline_max_bytes as u64 {
            Sink::Memory(Vec::new())
        } else {
            Sink::S3(
                Multipart::start(
                    self.content.client(),
                    self.content.bucket(),
                    &content_key(org, artifact_id),
                    "application/octet-stream",
                    None,
                )
                .await?,
            )
        };
        match seal_stream(object.body, size, key, &mut sink).await {
            Ok(sha256) => Ok((sink.finish().await?, sha256)),
            Err(e) => {
                sink.abort().await;
                Err(e)
            }
        }
    }
}

fn size_mismatch(actual: u64, declared: u64) -> Error {
    Error::bad_request(
        "size",
        format!("the upload has {actual} bytes but {declared} were declared"),
    )
}

/// Where sealed bytes go while streaming.
enum Sink {
    Memory(Vec<u8>),
    S3(Multipart),
}

impl Sink {
    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Sink::Memory(buf) => {
                buf.extend_from_slice(bytes);
                Ok(())
            }
            Sink::S3(upload) => upload.write(bytes).await,
        }
    }

    async fn finish(self) -> Result<Location> {
        match self {
            Sink::Memory(sealed) => Ok(Location::Inline(sealed)),
            Sink::S3(upload) => upload
                .finish()
                .await?
                .filter(|v| !v.is_empty() && v != "null")
                .map(|version_id| Location::S3 { version_id })
                .ok_or_else(|| {
                    Error::upstream("s3", "no VersionId: is bucket versioning enabled?")
                }),
        }
    }

    async fn abort(self) {
        if let Sink::S3(upload) = self {
            upload.abort().await;
        }
    }
}

/// Seal a plaintext stream of exactly `size` bytes segment by segment into
/// `sink`; returns the plaintext's hex SHA-256.
async fn seal_stream(
    mut body: aws_sdk_s3::primitives::ByteStream,
    size: u64,
    key: &[u8; KEY_LEN],
    sink: &mut Sink,
) -> Result<String> {
    let (mut sealer, header) = Sealer::new(key);
    sink.write(&header).await?;
    let count = crypto::segment_count(size);
    let mut hasher = Sha256::new();
    // Each segment is sealed where it was gathered (room for its tag included).
    let mut segment = Vec::with_capacity(SEGMENT_SIZE + crypto::TAG_LEN);
    let (mut sealed_segments, mut received) = (0u64, 0u64);
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| Error::upstream("s3", e))?
    {
        received += chunk.len() as u64;
        if received > size {
            return Err(size_mismatch(received, size));
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = (SEGMENT_SIZE - segment.len()).min(rest.len());
            segment.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            // The last segment is sealed only after the stream has ended.
            if segment.len() == SEGMENT_SIZE && sealed_segments + 1 < count {
                hasher.update(&segment);
                sealer.seal_in_place(&mut segment, false)?;
                sink.write(&segment).await?;
                sealed_segments += 1;
                segment.clear();
            }
        }
    }
    if received != size {
        return Err(size_mismatch(received, size));
    }
    hasher.update(&segment);
    sealer.seal_in_place(&mut segment, true)?;
    sink.write(&segment).await?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_and_only_staging_keys_are_ours() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_event_key(&format!("incoming/acme/{id}")),
            Some(("acme".into(), id.into()))
        );
        assert_eq!(
            parse_event_key(&format!("incoming%2Facme-1%2F{id}")),
            Some(("acme-1".into(), id.into()))
        );
        for bad in [
            format!("orgs/acme/artifacts/{id}"),
            format!("deliveries/acme/{id}"),
            format!("incoming/ac+me/{id}"),
            format!("incoming/ac%23me/{id}"),
            format!("incoming/acme/{id}/x"),
            "incoming/acme/short".to_owned(),
            format!("incoming/acme/{}", id.to_uppercase()),
            "incoming/%FF/x".to_owned(),
        ] {
            assert_eq!(parse_event_key(&bad), None, "{bad}");
        }
    }
}
