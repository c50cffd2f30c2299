//! Short-lived plaintext copies under `deliveries/` (SPEC §6, §7): content too
//! large for a Lambda response is written here once — streamed as a
//! multipart upload, in constant memory — and the client is sent to a
//! presigned GET, so the bytes flow straight from S3 with native `Range`
//! support. The bucket's lifecycle rule expires the prefix; its default
//! encryption (SSE-KMS in the template) covers these objects.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;

use crate::content::Multipart;
use crate::error::{Error, Result};
use crate::http::content_disposition;
use crate::metadata::VersionRecord;
use crate::model::Artifact;
use crate::store::Store;

/// How long a presigned delivery URL stays valid, at most (SPEC §6). Link
/// downloads get less: see [`crate::links::MAX_LINK_URL_TTL`].
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
        Multipart::start(&self.s3, &self.bucket, key, content_type, Some(disposition)).await
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

impl Store {
    /// A presigned URL, valid for `ttl` (at most [`LINK_TTL`]), serving one
    /// version's plaintext from `deliveries/`, decrypting it there first
    /// unless a fresh copy exists. A copy is only completed once every
    /// segment authenticated and the SHA-256 matched.
    pub async fn deliver(
        &self,
        org: &str,
        artifact: &Artifact,
        record: &VersionRecord,
        ttl: Duration,
    ) -> Result<String> {
        let v = &record.version;
        let key = delivery_key(
            org,
            &format!(
                "downloads/{}/{}-{}",
                artifact.artifact_id, v.version, v.sha256
            ),
        );
        if !self.deliveries.find_fresh(&key).await? {
            let mut reader = self.reader(org, &artifact.artifact_id, record).await?;
            let mut upload = self
                .deliveries
                .start(&key, &v.content_type, &content_disposition(&artifact.name))
                .await?;
            loop {
                let step = match reader.next_segment().await {
                    Ok(Some(plain)) => upload.write(&plain).await,
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                if let Err(e) = step {
                    upload.abort().await;
                    return Err(e);
                }
            }
            upload.finish().await?;
        }
        self.deliveries.presign_get(&key, ttl).await
    }
}
