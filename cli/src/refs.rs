//! Naming artifacts on the command line, and finding them through the API.
//!
//! `ID`, `WORKFLOW:PATH` (`WORKFLOW:` or `WORKFLOW:dir/` for everything
//! under a prefix), `artifact://WORKFLOW/PATH[@V]`, `artifact://id/ID[@V]`
//! (SPEC §14). References by path are resolved with the workflow listing;
//! when `POST /v1/resolve` lands it can replace [`resolve`] unchanged for callers.

use reqwest::Method;
use serde_json::Value;

use crate::api::{Api, enc};
use crate::error::{CliError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Id {
        id: String,
        version: Option<u64>,
    },
    Path {
        workflow: String,
        path: String,
        version: Option<u64>,
    },
    /// Everything under `prefix` (possibly empty) in a workflow.
    Prefix {
        workflow: String,
        prefix: String,
    },
}

/// A trailing `@<digits>` is a version.
fn split_version(s: &str) -> Result<(&str, Option<u64>)> {
    match s.rsplit_once('@') {
        Some((head, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u64 = v
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| CliError::usage(format!("{s:?}: versions start at 1")))?;
            Ok((head, Some(n)))
        }
        _ => Ok((s, None)),
    }
}

pub fn parse(s: &str) -> Result<Ref> {
    let bad = |why: &str| CliError::usage(format!("{s:?} is not an artifact reference: {why}"));
    if let Some(rest) = s.strip_prefix("artifact://") {
        let (rest, version) = split_version(rest)?;
        let (head, tail) = rest
            .split_once('/')
            .ok_or_else(|| bad("expected artifact://WORKFLOW/PATH or artifact://id/ID"))?;
        if tail.is_empty() || head.is_empty() {
            return Err(bad("empty workflow, id or path"));
        }
        return Ok(if head == "id" {
            Ref::Id {
                id: tail.to_owned(),
                version,
            }
        } else {
            Ref::Path {
                workflow: head.to_owned(),
                path: tail.to_owned(),
                version,
            }
        });
    }
    if let Some((workflow, path)) = s.split_once(':') {
        if workflow.is_empty() {
            return Err(bad("empty workflow before ':'"));
        }
        if path.is_empty() || path.ends_with('/') {
            return Ok(Ref::Prefix {
                workflow: workflow.to_owned(),
                prefix: path.to_owned(),
            });
        }
        return Ok(Ref::Path {
            workflow: workflow.to_owned(),
            path: path.to_owned(),
            version: None,
        });
    }
    if s.is_empty() || s.contains('/') {
        return Err(bad(
            "an artifactId has no '/' (use WORKFLOW:PATH for a path)",
        ));
    }
    Ok(Ref::Id {
        id: s.to_owned(),
        version: None,
    })
}

/// One artifact to fetch: what the API says about it.
#[derive(Debug, Clone)]
pub struct Target {
    pub artifact_id: String,
    pub path: String,
    /// The version asked for (`None`: the latest).
    pub version: Option<u64>,
    /// Size of the latest version (for progress; every download is checked
    /// against its own ETag).
    pub size: u64,
}

impl Target {
    fn from_artifact(a: &Value, version: Option<u64>) -> Result<Self> {
        let text = |k: &str| {
            a.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| CliError::failed(format!("the API's artifact has no {k}")))
        };
        Ok(Target {
            artifact_id: text("artifactId")?,
            path: text("path")?,
            version,
            size: a.get("size").and_then(Value::as_u64).unwrap_or(0),
        })
    }
}

/// One artifact's metadata.
pub async fn artifact(api: &Api, id: &str) -> Result<Value> {
    let url = format!("/v1/artifacts/{}", enc(id));
    api.json(|| api.request(Method::GET, &url)).await
}

/// Every artifact of `workflow` under `prefix` (all pages).
pub async fn listing(api: &Api, workflow: &str, prefix: &str) -> Result<Vec<Value>> {
    let mut pairs = vec![("limit", "1000".to_owned())];
    if !prefix.is_empty() {
        pairs.push(("prefix", prefix.to_owned()));
    }
    let path = format!("/v1/workflows/{}/artifacts", enc(workflow));
    api.pages(&path, &pairs, "artifacts").await
}

/// The artifacts a reference names (`version` from the command line applies
/// unless the reference carries its own).
pub async fn resolve(api: &Api, reference: &Ref, version: Option<u64>) -> Result<Vec<Target>> {
    match reference {
        Ref::Id { id, version: v } => {
            let a = artifact(api, id).await?;
            Ok(vec![Target::from_artifact(&a, v.or(version))?])
        }
        Ref::Path {
            workflow,
            path,
            version: v,
        } => {
            let found = listing(api, workflow, path).await?;
            let hit = found
                .iter()
                .find(|a| a.get("path").and_then(Value::as_str) == Some(path.as_str()))
                .ok_or_else(|| CliError::not_found(format!("{workflow}:{path} not found")))?;
            Ok(vec![Target::from_artifact(hit, v.or(version))?])
        }
        Ref::Prefix { workflow, prefix } => {
            let found = listing(api, workflow, prefix).await?;
            if found.is_empty() {
                return Err(CliError::not_found(format!(
                    "nothing under {workflow}:{prefix}"
                )));
            }
            found
                .iter()
                .map(|a| Target::from_artifact(a, version))
                .collect()
        }
    }
}

/// The artifactId a reference names (exactly one artifact).
pub async fn one_id(api: &Api, s: &str) -> Result<String> {
    match parse(s)? {
        Ref::Id { id, .. } => Ok(id),
        Ref::Prefix { .. } => Err(CliError::usage(format!("{s:?} names several artifacts"))),
        reference => Ok(resolve(api, &reference, None).await?.remove(0).artifact_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(w: &str, p: &str, v: Option<u64>) -> Ref {
        Ref::Path {
            workflow: w.into(),
            path: p.into(),
            version: v,
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            parse("abc123").unwrap(),
            Ref::Id {
                id: "abc123".into(),
                version: None
            }
        );
        assert_eq!(
            parse("wf-1:docs/prd.md").unwrap(),
            path("wf-1", "docs/prd.md", None)
        );
        assert_eq!(
            parse("wf-1:").unwrap(),
            Ref::Prefix {
                workflow: "wf-1".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse("wf-1:docs/").unwrap(),
            Ref::Prefix {
                workflow: "wf-1".into(),
                prefix: "docs/".into()
            }
        );
        assert_eq!(
            parse("artifact://wf-1/docs/a@b.md@3").unwrap(),
            path("wf-1", "docs/a@b.md", Some(3))
        );
        assert_eq!(
            parse("artifact://wf-1/a@b.md").unwrap(),
            path("wf-1", "a@b.md", None)
        );
        assert_eq!(
            parse("artifact://id/xyz@2").unwrap(),
            Ref::Id {
                id: "xyz".into(),
                version: Some(2)
            }
        );
        for bad in [
            "",
            ":x",
            "a/b",
            "artifact://",
            "artifact://wf",
            "artifact://id/",
            "artifact://wf/x@0",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
