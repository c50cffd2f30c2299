//! Content in S3 (SPEC §5): one object key per artifact,
//! `orgs/{org}/artifacts/{artifactId}`, one S3 object version per artifact
//! version. Only ciphertext is ever written here.

use aws_sdk_s3::primitives::ByteStream;

use crate::error::{Error, Result};

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
