//! The domain: artifacts, versions, and the rules their inputs obey (SPEC §3).
//! Everything here is what the API shows; storage internals stay in
//! [`crate::metadata`] and [`crate::content`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};

pub const MAX_PATH_BYTES: usize = 512;
pub const MAX_METADATA_BYTES: usize = 2048;
pub const DEFAULT_ARTIFACT_TYPE: &str = "file";
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// An artifact as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub artifact_id: String,
    pub workflow_id: String,
    pub path: String,
    pub name: String,
    pub artifact_type: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub latest_version: u64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub metadata: BTreeMap<String, String>,
}

/// One version of an artifact as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub version: u64,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub created_at: String,
    pub created_by: String,
}

/// A validated artifact path: safe as a ZIP entry name and as a filename.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    /// 1–512 bytes of UTF-8, `/`-separated segments, none empty, `.` or `..`;
    /// no leading `/`, no `\`, no NUL or other control character.
    pub fn parse(path: &str) -> Result<Self> {
        let bad = |reason: &str| Err(Error::bad_request("path", reason));
        if path.is_empty() {
            return bad("must not be empty");
        }
        if path.len() > MAX_PATH_BYTES {
            return bad("must be at most 512 bytes");
        }
        if path.starts_with('/') {
            return bad("must not start with '/'");
        }
        if path.contains('\\') {
            return bad("must not contain '\\'");
        }
        if path.chars().any(char::is_control) {
            return bad("must not contain control characters");
        }
        for segment in path.split('/') {
            match segment {
                "" => return bad("must not contain an empty segment"),
                "." | ".." => return bad("must not contain '.' or '..' segments"),
                _ => {}
            }
        }
        Ok(ArtifactPath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the artifact's `name` and its download filename.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

/// Workflow ids appear in keys and URLs: 1–128 of `[A-Za-z0-9._:-]`.
pub fn validate_workflow_id(id: &str) -> Result<()> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "workflowId",
            "must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

/// Artifact types are short labels (`prd`, `terraform`, `report`): 1–64 of `[A-Za-z0-9._-]`.
pub fn validate_artifact_type(t: &str) -> Result<()> {
    let ok = (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "artifactType",
            "must be 1-64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// A media type as sent in `Content-Type`: `type/subtype` with optional
/// parameters, printable ASCII, at most 255 bytes.
pub fn validate_content_type(ct: &str) -> Result<()> {
    let essence = ct.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let ok = ct.len() <= 255
        && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "contentType",
            "must be a media type like text/plain",
        ))
    }
}

/// User metadata: keys `[a-z0-9_-]{1,64}`, printable values, ≤ 2 KiB in all.
pub fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<()> {
    let mut total = 0;
    for (k, v) in metadata {
        let key_ok = (1..=64).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !key_ok {
            return Err(Error::bad_request(
                "metadata",
                "keys must be 1-64 characters of a-z 0-9 _ -",
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(Error::bad_request(
                "metadata",
                "values must not contain control characters",
            ));
        }
        total += k.len() + v.len();
    }
    if total > MAX_METADATA_BYTES {
        return Err(Error::bad_request(
            "metadata",
            "must be at most 2048 bytes in all",
        ));
    }
    Ok(())
}

/// Artifact ids are 32 lowercase hex digits. Anything else cannot exist, so it
/// is reported exactly like a missing artifact.
pub fn parse_artifact_id(id: &str) -> Result<&str> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(id)
    } else {
        Err(Error::NotFound("artifact"))
    }
}

pub fn new_artifact_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Current time as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// A time as RFC 3339 UTC with millisecond precision, the API's one format.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        for ok in [
            "prd.md",
            "terraform/main.tf",
            "a/b/c/d.txt",
            ".hidden",
            "..x/y..",
            "résumé/日本.txt",
            "with space/and#hash?.txt",
            &"a".repeat(512),
        ] {
            assert!(ArtifactPath::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn invalid_paths_name_the_field() {
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            ".",
            "..",
            "a/../b",
            "a/./b",
            "../x",
            "a\\b",
            "nul\0byte",
            "tab\there",
            "new\nline",
            "del\u{7f}",
            "c1\u{85}",
            &"a".repeat(513),
        ] {
            match ArtifactPath::parse(bad) {
                Err(Error::BadRequest { field, .. }) => assert_eq!(field, "path"),
                other => panic!("{bad:?} -> {other:?}"),
            }
        }
    }

    #[test]
    fn file_name_is_last_segment() {
        assert_eq!(ArtifactPath::parse("a/b/c.tf").unwrap().file_name(), "c.tf");
        assert_eq!(ArtifactPath::parse("c.tf").unwrap().file_name(), "c.tf");
    }

    #[test]
    fn workflow_ids() {
        assert!(validate_workflow_id("run-2024.01:abc_1").is_ok());
        for bad in ["", "a/b", "a#b", "a b", &"x".repeat(129)] {
            assert!(validate_workflow_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_types() {
        for ok in [
            "text/plain",
            "application/vnd.api+json",
            "text/plain; charset=utf-8",
        ] {
            assert!(validate_content_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "text",
            "/plain",
            "text/",
            "te xt/plain",
            "text/plain\r\nX: y",
        ] {
            assert!(validate_content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_limits() {
        let mut m = BTreeMap::new();
        m.insert("owner".to_string(), "team-a".to_string());
        assert!(validate_metadata(&m).is_ok());
        m.insert("big".to_string(), "x".repeat(2048));
        assert!(validate_metadata(&m).is_err());
        let mut bad_key = BTreeMap::new();
        bad_key.insert("Owner".to_string(), "x".to_string());
        assert!(validate_metadata(&bad_key).is_err());
    }

    #[test]
    fn artifact_ids() {
        let id = new_artifact_id();
        assert_eq!(parse_artifact_id(&id).unwrap(), id);
        for bad in [
            "",
            "xyz",
            &id.to_uppercase(),
            &format!("{id}0"),
            "../../etc/passwd",
        ] {
            assert!(
                matches!(parse_artifact_id(bad), Err(Error::NotFound(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-01-01T00:00:00.000Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }
}
