//! Content in S3 (SPEC §5): one object key per artifact,
//! `orgs/{org}/artifacts/{artifactId}`, one S3 object version per artifact
//! version. Only ciphertext is ever written under `orgs/`; the short-lived
//! decrypted copies under `deliveries/` ([`Deliveries`], at the end of this
//! file) are the one plaintext this adapter writes, and they expire by the
//! bucket's lifecycle rule.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::error::{Error, Result};

/// Multipart part size: S3's minimum is 5 MiB; memory use is about one part.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Part size of the copies in `deliveries/` (bundles): S3's minimum, so the
/// bundle writer holds the least while a part is in flight (10,000 parts
/// still allow 48 GiB).
pub const DELIVERY_PART_SIZE: usize = 5 * 1024 * 1024;

pub fn content_key(org: &str, artifact_id: &str) -> String {
    format!("orgs/{org}/artifacts/{artifact_id}")
}

#[derive(Debug, Clone)]
pub struct Content {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Content {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Content {
            s3,
            bucket: bucket.into(),
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Store a new object version and return its `VersionId`.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<String> {
        let out = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        out.version_id()
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_owned)
            .ok_or_else(|| Error::upstream("s3", "no VersionId: is bucket versioning enabled?"))
    }

    /// Read one object version whole.
    pub async fn get(&self, key: &str, version_id: &str) -> Result<Vec<u8>> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|se| se.is_no_such_key()) {
                    Error::Integrity(format!("content version missing for {key}"))
                } else {
                    Error::upstream("s3", e)
                }
            })?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// Every object version and delete marker of exactly `key`, at most
    /// `max` (one `ListObjectVersions` page of up to 1000).
    pub async fn versions_of(&self, key: &str, max: i32) -> Result<Vec<String>> {
        let out = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .max_keys(max)
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        let versions = out
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .filter_map(|v| v.version_id().map(str::to_owned));
        let markers = out
            .delete_markers()
            .iter()
            .filter(|m| m.key() == Some(key))
            .filter_map(|m| m.version_id().map(str::to_owned));
        Ok(versions.chain(markers).collect())
    }

    /// Remove object versions of `key` for good, up to 1000 in one
    /// `DeleteObjects`; any per-object error fails the call.
    pub async fn delete_versions(&self, key: &str, version_ids: &[String]) -> Result<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        if version_ids.is_empty() {
            return Ok(());
        }
        let objects = version_ids
            .iter()
            .map(|v| {
                ObjectIdentifier::builder()
                    .key(key)
                    .version_id(v)
                    .build()
                    .map_err(|e| Error::upstream("s3", e))
            })
            .collect::<Result<Vec<_>>>()?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| Error::upstream("s3", e))?;
        let out = self
            .s3
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        if let Some(e) = out.errors().first() {
            return Err(Error::upstream(
                "s3",
                format!("{:?}: {:?}", e.code(), e.message()),
            ));
        }
        Ok(())
    }

    /// Remove one object version (cleanup of content no version points at).
    pub async fn delete_version(&self, key: &str, version_id: &str) -> Result<()> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        Ok(())
    }
}

/// A streamed multipart upload: buffer one part, upload it, repeat. Memory
/// use is about one part whatever the object size; nothing is visible at the
/// key until [`Multipart::finish`].
pub struct Multipart {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    buf: Vec<u8>,
    part_size: usize,
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multipart")
            .field("key", &self.key)
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl Multipart {
    pub async fn start(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        content_type: &str,
        disposition: Option<&str>,
    ) -> Result<Multipart> {
        let created = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .set_content_disposition(disposition.map(str::to_owned))
            .set_cache_control(disposition.map(|_| "private, no-store".to_owned()))
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| Error::upstream("s3", "CreateMultipartUpload returned no upload id"))?
            .to_owned();
        Ok(Multipart {
            s3: s3.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id,
            parts: Vec::new(),
            buf: Vec::with_capacity(PART_SIZE),
            part_size: PART_SIZE,
        })
    }

    /// Parts of `size` bytes instead of [`PART_SIZE`] (at least S3's 5 MiB).
    fn with_part_size(mut self, size: usize) -> Multipart {
        self.part_size = size.max(DELIVERY_PART_SIZE);
        self.buf = Vec::with_capacity(self.part_size);
        self
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let room = self.part_size - self.buf.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = later;
            if self.buf.len() == self.part_size {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let part_number = self.parts.len() as i32 + 1;
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        let out = self
            .s3
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(part_number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(part_number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Upload what is buffered and make the object visible; returns its
    /// `VersionId` when the bucket is versioned. If that fails, the upload is
    /// aborted, so no parts are left behind to be paid for.
    pub async fn finish(mut self) -> Result<Option<String>> {
        match self.complete().await {
            Ok(version_id) => Ok(version_id),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn complete(&mut self) -> Result<Option<String>> {
        if !self.buf.is_empty() || self.parts.is_empty() {
            self.flush().await?;
        }
        let done = self
            .s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        Ok(done.version_id().map(str::to_owned))
    }

    /// Give up: the parts are discarded and nothing appears at the key.
    pub async fn abort(self) {
        let result = self
            .s3
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        match result {
            Ok(_) => {}
            // Completed after all (an answer lost after S3 applied it): the
            // object exists; content no version references is swept later.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_no_such_upload()) => {}
            Err(e) => {
                // The lifecycle rule aborts incomplete uploads after a day.
                tracing::warn!(error = ?e, "could not abort a multipart upload");
            }
        }
    }
}

// Deliveries (SPEC §6, §7): short-lived plaintext copies under
// `deliveries/`, written once and served by presigned GET; what they are
// for is `crate::delivery`.

/// How long a presigned delivery URL stays valid, at most (SPEC §6). Link
/// downloads get less: see `crate::links::MAX_LINK_URL_TTL`.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// A copy younger than this is reused instead of written again. Well inside
/// the one-day lifecycle expiry, so a reused copy outlives its URL.
pub const REUSE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// A copy being written (see [`Multipart`]).
pub type DeliveryUpload = Multipart;

/// `deliveries/{org}/{name}`: one org's copies never share a key with another's.
pub fn delivery_key(org: &str, name: &str) -> String {
    format!("deliveries/{org}/{name}")
}

#[derive(Debug, Clone)]
pub struct Deliveries {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Deliveries {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Deliveries {
            s3,
            bucket: bucket.into(),
        }
    }

    /// Whether a complete copy at `key` exists and is recent enough to reuse.
    pub async fn find_fresh(&self, key: &str) -> Result<bool> {
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => {
                let fresh = head
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age < REUSE_WINDOW);
                Ok(fresh)
            }
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(false),
            // Without s3:ListBucket (which the roles do not get: it would
            // list every org's keys), S3 answers HEAD on a missing key with
            // 403. Treat it as "no copy yet"; a real denial fails the upload.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Ok(false),
            Err(e) => Err(Error::upstream("s3", e)),
        }
    }

    /// Begin writing a copy; nothing is visible at `key` until [`DeliveryUpload::finish`].
    pub async fn start(
        &self,
        key: &str,
        content_type: &str,
        disposition: &str,
    ) -> Result<DeliveryUpload> {
        Multipart::start(&self.s3, &self.bucket, key, content_type, Some(disposition))
            .await
            .map(|m| m.with_part_size(DELIVERY_PART_SIZE))
    }

    /// A presigned GET for `key`, valid for `ttl` (at most [`LINK_TTL`],
    /// at least a second).
    pub async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        let ttl = ttl.clamp(Duration::from_secs(1), LINK_TTL);
        let config = PresigningConfig::expires_in(ttl).map_err(|e| Error::upstream("s3", e))?;
        let request = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| Error::upstream("s3", e))?;
        Ok(request.uri().to_owned())
    }
}
