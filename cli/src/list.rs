//! `artifacts ls` and `artifacts versions`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::Ctx;
use crate::api::{enc, query};
use crate::args::{LsArgs, VersionsArgs};
use crate::error::{CliError, Result};
use crate::refs;
use crate::ui::{self, size, text};

pub async fn ls(ctx: &Ctx, args: LsArgs) -> Result<()> {
    let path = match &args.workflow {
        Some(w) => format!("/v1/workflows/{}/artifacts", enc(w)),
        None => "/v1/artifacts".to_owned(),
    };
    let page = args.max.map_or(1000, |m| m.clamp(1, 1000));
    let mut pairs: Vec<(String, String)> = vec![("limit".into(), page.to_string())];
    for (name, value) in [
        ("artifactType", &args.artifact_type),
        ("prefix", &args.prefix),
        ("createdAfter", &args.created_after),
        ("createdBefore", &args.created_before),
    ] {
        if let Some(v) = value {
            pairs.push((name.into(), v.clone()));
        }
    }
    if args.versions {
        pairs.push(("includeVersions".into(), "true".into()));
    }
    for f in &args.filters {
        let (name, value) = f
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| CliError::usage(format!("--filter {f:?}: expected NAME=VALUE")))?;
        pairs.push((name.into(), value.into()));
    }
    let mut artifacts: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut totals = (Value::Null, Value::Null);
    loop {
        let mut all: Vec<(&str, String)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if let Some(c) = &cursor {
            all.push(("cursor", c.clone()));
        }
        let url = format!("{path}{}", query(&all));
        let body = ctx.api.json(|| ctx.api.request(Method::GET, &url)).await?;
        if cursor.is_none() {
            totals = (body["count"].clone(), body["totalSize"].clone());
        }
        if let Some(list) = body.get("artifacts").and_then(Value::as_array) {
            artifacts.extend(list.iter().cloned());
        }
        if args.max.is_some_and(|m| artifacts.len() >= m) {
            artifacts.truncate(args.max.unwrap_or(usize::MAX));
            break;
        }
        match body.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    let rows: Vec<Vec<String>> = artifacts
        .iter()
        .map(|a| {
            let mut row = vec![
                text(a, "path"),
                text(a, "latestVersion"),
                a.get("size")
                    .and_then(Value::as_u64)
                    .map(size)
                    .unwrap_or_default(),
                text(a, "artifactType"),
                text(a, "updatedAt"),
                text(a, "artifactId"),
            ];
            if args.workflow.is_none() {
                row.insert(0, text(a, "workflowId"));
            }
            if args.versions {
                let versions: Vec<String> = a
                    .get("versions")
                    .and_then(Value::as_array)
                    .map(|vs| vs.iter().map(|v| text(v, "version")).collect())
                    .unwrap_or_default();
                row.push(versions.join(","));
            }
            row
        })
        .collect();
    let mut headers = vec!["PATH", "VERSION", "SIZE", "TYPE", "UPDATED", "ID"];
    if args.workflow.is_none() {
        headers.insert(0, "WORKFLOW");
    }
    if args.versions {
        headers.push("VERSIONS");
    }
    let doc = json!({
        "workflowId": args.workflow,
        "artifacts": artifacts,
        "count": totals.0,
        "totalSize": totals.1,
    });
    ui::emit(ctx.format, &doc, &headers, &rows);
    Ok(())
}

pub async fn versions(ctx: &Ctx, args: VersionsArgs) -> Result<()> {
    let id = refs::one_id(&ctx.api, &args.artifact).await?;
    let path = format!("/v1/artifacts/{}/versions", enc(&id));
    let versions = ctx
        .api
        .pages(&path, &[("limit", "1000".to_owned())], "versions")
        .await?;
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                text(v, "version"),
                v.get("size")
                    .and_then(Value::as_u64)
                    .map(size)
                    .unwrap_or_default(),
                text(v, "sha256"),
                text(v, "contentType"),
                text(v, "createdAt"),
                text(v, "createdBy"),
            ]
        })
        .collect();
    ui::emit(
        ctx.format,
        &json!({ "artifactId": id, "versions": versions }),
        &["VERSION", "SIZE", "SHA256", "TYPE", "CREATED", "BY"],
        &rows,
    );
    Ok(())
}
