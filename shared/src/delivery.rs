//! Short-lived plaintext copies under `deliveries/` (SPEC §6, §7): content too
//! large for a Lambda response is written here once — streamed as a
//! multipart upload, in constant memory — and the client is sent to a
//! presigned GET, so the bytes flow straight from S3 with native `Range`
//! support. The bucket's lifecycle rule expires the prefix; its default
//! encryption (SSE-KMS in the template) covers these objects.

use std::time::Duration;

pub use crate::content::{Deliveries, DeliveryUpload, LINK_TTL, REUSE_WINDOW, delivery_key};
use crate::error::Result;
use crate::http::content_disposition;
use crate::metadata::VersionRecord;
use crate::model::Artifact;
use crate::store::Store;

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
