//! Artifacts as workflow inputs (SPEC §14): a reference string names one
//! version, `POST /v1/resolve` pins a batch of them.
//!
//! - `artifact://{workflowId}/{path}[@{version}]`
//! - `artifact://id/{artifactId}[@{version}]`
//!
//! A trailing `@` and digits is the version (a path that itself ends in
//! `@<digits>` is named with its version, `…@7@1`, or by id); `id` as the
//! first segment always means the id form. Each ref resolves on its own: the
//! artifact, the resolved version (the latest when none is given), its
//! sha256, and a link to exactly that version made as `POST …/links` makes
//! one ([`Store::create_link`]) — or that ref's own problem. Another org's
//! artifact is the plain 404 of a missing one.

use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::links::{CreatedLink, NewLink};
use crate::model::{self, Artifact, ArtifactPath};
use crate::store::Store;

/// Refs one request may resolve.
pub const MAX_REFS: usize = 100;
/// The links' default life (SPEC §14: 15 minutes).
pub const DEFAULT_LINK_SECS: i64 = 15 * 60;
/// Refs resolved at the same time.
const IN_FLIGHT: usize = 16;
const SCHEME: &str = "artifact://";

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Path {
        workflow_id: String,
        path: String,
        version: Option<u64>,
    },
    Id {
        artifact_id: String,
        version: Option<u64>,
    },
}

impl Reference {
    /// A reference string; anything else is a 400 on field `ref`.
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |why: &str| {
            Error::bad_request(
                "ref",
                format!(
                    "{why}; a ref is artifact://{{workflowId}}/{{path}}[@{{version}}] or \
                     artifact://id/{{artifactId}}[@{{version}}]"
                ),
            )
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("must start with artifact://"))?;
        let (body, version) = match rest.rsplit_once('@') {
            Some((body, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                let n = v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                    .ok_or_else(|| bad("the version must be a whole number from 1"))?;
                (body, Some(n))
            }
            _ => (rest, None),
        };
        let (first, tail) = body.split_once('/').ok_or_else(|| bad("names no path"))?;
        if first == "id" {
            let id = model::parse_artifact_id(tail).map_err(|_| bad("not an artifact id"))?;
            return Ok(Reference::Id {
                artifact_id: id.to_owned(),
                version,
            });
        }
        model::validate_workflow_id(first).map_err(|_| bad("not a workflow id"))?;
        let path = ArtifactPath::parse(tail).map_err(|e| match e {
            Error::BadRequest { reason, .. } => bad(&format!("bad path: {reason}")),
            other => other,
        })?;
        Ok(Reference::Path {
            workflow_id: first.to_owned(),
            path: path.as_str().to_owned(),
            version,
        })
    }
}

/// One resolved ref.
pub struct Resolved {
    pub artifact: Artifact,
    /// The pinned version, its hash and size.
    pub version: u64,
    pub sha256: String,
    pub size: u64,
    pub link: CreatedLink,
}

impl Store {
    /// Resolve `refs` (at most [`MAX_REFS`]) for the caller, each to its own
    /// outcome in the order given; links live `expires_in` seconds (default
    /// [`DEFAULT_LINK_SECS`]).
    pub async fn resolve(
        &self,
        principal: &Principal,
        refs: &[String],
        expires_in: Option<i64>,
        now: i64,
        origin: &crate::audit::Origin,
    ) -> Result<Vec<Result<Resolved>>> {
        principal.require(Scope::Read)?;
        if refs.len() > MAX_REFS {
            return Err(Error::bad_request(
                "refs",
                format!("at most {MAX_REFS} refs per request"),
            ));
        }
        let expires_in = Some(crate::links::expires_in(Some(
            expires_in.unwrap_or(DEFAULT_LINK_SECS),
        ))?);
        let mut results: Vec<Option<Result<Resolved>>> = (0..refs.len()).map(|_| None).collect();
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = 0;
        while next < refs.len() || !tasks.is_empty() {
            while next < refs.len() && tasks.len() < IN_FLIGHT {
                let (store, principal, text, origin) = (
                    self.clone(),
                    principal.clone(),
                    refs[next].clone(),
                    origin.clone(),
                );
                let index = next;
                tasks.spawn(async move {
                    let outcome = store
                        .resolve_one(&principal, &text, expires_in, now, &origin)
                        .await;
                    (index, outcome)
                });
                next += 1;
            }
            match tasks.join_next().await {
                Some(Ok((index, outcome))) => results[index] = Some(outcome),
                Some(Err(e)) => return Err(Error::upstream("task", e)),
                None => break,
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::upstream("resolve", "a ref was lost"))))
            .collect())
    }

    async fn resolve_one(
        &self,
        principal: &Principal,
        text: &str,
        expires_in: Option<i64>,
        now: i64,
        origin: &crate::audit::Origin,
    ) -> Result<Resolved> {
        let (artifact, record) = match Reference::parse(text)? {
            Reference::Path {
                workflow_id,
                path,
                version,
            } => {
                self.version_at_path(principal, &workflow_id, &path, version)
                    .await?
            }
            Reference::Id {
                artifact_id,
                version,
            } => self.version(principal, &artifact_id, version).await?,
        };
        let v = &record.version;
        let link = self
            .create_link(
                principal,
                &artifact.artifact_id,
                NewLink {
                    version: Some(v.version),
                    expires_in,
                },
                now,
                origin,
            )
            .await?;
        Ok(Resolved {
            version: v.version,
            sha256: v.sha256.clone(),
            size: v.size,
            artifact,
            link,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn refs_parse() {
        let path = |w: &str, p: &str, v| Reference::Path {
            workflow_id: w.into(),
            path: p.into(),
            version: v,
        };
        assert_eq!(
            Reference::parse("artifact://run-42/terraform/main.tf").unwrap(),
            path("run-42", "terraform/main.tf", None)
        );
        assert_eq!(
            Reference::parse("artifact://run:42/a b/ü.md@3").unwrap(),
            path("run:42", "a b/ü.md", Some(3))
        );
        assert_eq!(
            Reference::parse("artifact://w/file@v2").unwrap(),
            path("w", "file@v2", None)
        );
        assert_eq!(
            Reference::parse("artifact://w/file@7@1").unwrap(),
            path("w", "file@7", Some(1))
        );
        assert_eq!(
            Reference::parse(&format!("artifact://id/{ID}@12")).unwrap(),
            Reference::Id {
                artifact_id: ID.into(),
                version: Some(12)
            }
        );
        for bad in [
            "",
            "run/a.md",
            "artifact://",
            "artifact://run",
            "artifact://run/",
            "artifact://run/../a",
            "artifact://ru n/a",
            "artifact://id/xyz",
            "artifact://run/a.md@0",
            "artifact://run/a.md@99999999999",
            &format!("artifact://id/{ID}/x"),
            "ARTIFACT://run/a.md",
        ] {
            match Reference::parse(bad) {
                Err(Error::BadRequest { field: "ref", .. }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
