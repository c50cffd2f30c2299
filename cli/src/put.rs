//! `artifacts put`: files and directories (recursively, with their relative
//! paths) into a workflow. Up to 4 MiB with `PUT`, larger through an upload
//! session and its presigned PUT (streamed from disk), then waiting until the
//! version is visible. `x-artifact-sha256` is always sent.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use globset::{Glob, GlobSet, GlobSetBuilder};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::Ctx;
use crate::api::{enc, enc_path, ok, query};
use crate::args::PutArgs;
use crate::error::{CliError, Kind, Result};
use crate::refs;
use crate::ui::{self, FileBar, Progress};

/// The largest body `PUT` takes (SPEC §4); larger goes through an upload session.
pub const DIRECT_MAX: u64 = 4 * 1024 * 1024;

/// One file to upload.
#[derive(Debug, Clone)]
struct Source {
    file: PathBuf,
    /// The artifact path (prefix included).
    path: String,
    size: u64,
}

/// The artifact path of `relative` under `prefix`.
fn artifact_path(prefix: Option<&str>, relative: &str) -> String {
    match prefix.map(|p| p.trim_matches('/')) {
        Some(p) if !p.is_empty() => format!("{p}/{relative}"),
        _ => relative.to_owned(),
    }
}

fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(Glob::new(p).map_err(|e| CliError::usage(format!("--exclude {p:?}: {e}")))?);
    }
    builder
        .build()
        .map_err(|e| CliError::usage(format!("--exclude: {e}")))
}

/// `/`-separated, UTF-8 relative path of `file` under `root`.
fn relative(root: &Path, file: &Path) -> Result<String> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let mut parts = Vec::new();
    for c in rel.components() {
        let s = c.as_os_str().to_str().ok_or_else(|| {
            CliError::failed(format!("{} is not a UTF-8 file name", file.display()))
        })?;
        parts.push(s.to_owned());
    }
    Ok(parts.join("/"))
}

/// Every file the sources name, with its artifact path.
fn collect(args: &PutArgs) -> Result<Vec<Source>> {
    let exclude = globs(&args.exclude)?;
    let mut out = Vec::new();
    for source in &args.sources {
        let meta = std::fs::metadata(source)
            .map_err(|e| CliError::usage(format!("{}: {e}", source.display())))?;
        if meta.is_file() {
            let name = source.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                CliError::usage(format!("{}: no UTF-8 file name", source.display()))
            })?;
            if !exclude.is_match(name) {
                out.push(Source {
                    file: source.clone(),
                    path: artifact_path(args.prefix.as_deref(), name),
                    size: meta.len(),
                });
            }
            continue;
        }
        for entry in walkdir::WalkDir::new(source)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| CliError::failed(e.to_string()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = relative(source, entry.path())?;
            if exclude.is_match(&rel) {
                continue;
            }
            let size = entry
                .metadata()
                .map_err(|e| CliError::failed(e.to_string()))?
                .len();
            out.push(Source {
                file: entry.path().to_owned(),
                path: artifact_path(args.prefix.as_deref(), &rel),
                size,
            });
        }
    }
    let mut seen = HashMap::new();
    for s in &out {
        if let Some(other) = seen.insert(s.path.clone(), s.file.clone()) {
            return Err(CliError::usage(format!(
                "{} and {} would both be {:?}",
                other.display(),
                s.file.display(),
                s.path
            )));
        }
    }
    Ok(out)
}

fn labels(raw: &[String]) -> Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|l| {
            l.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| CliError::usage(format!("--label {l:?}: expected KEY=VALUE")))
        })
        .collect()
}

/// What happened to one file.
#[derive(Debug)]
struct Done {
    source: Source,
    sha256: String,
    status: &'static str,
    artifact_id: Option<String>,
    version: Option<u64>,
    error: Option<CliError>,
}

pub async fn run(ctx: &Ctx, args: PutArgs) -> Result<Vec<Kind>> {
    let sources = collect(&args)?;
    let labels = labels(&args.labels)?;
    let latest: HashMap<String, String> = if args.skip_unchanged {
        let prefix = args
            .prefix
            .as_deref()
            .map(|p| p.trim_start_matches('/'))
            .unwrap_or("");
        refs::listing(&ctx.api, &args.workflow, prefix)
            .await?
            .iter()
            .map(|a| (ui::text(a, "path"), ui::text(a, "sha256")))
            .collect()
    } else {
        HashMap::new()
    };
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let progress = Progress::new(ctx.quiet || args.dry_run, total, "put");
    let args = &args;
    let labels = &labels;
    let latest = &latest;
    let progress_ref = &progress;
    let mut done: Vec<Done> = stream::iter(sources)
        .map(|source| async move {
            let outcome = one(ctx, args, labels, latest, progress_ref, &source).await;
            match outcome {
                Ok(d) => d,
                Err((sha256, e)) => {
                    progress_ref.note(&format!("artifacts: {}: {e}", source.path));
                    Done {
                        source,
                        sha256,
                        status: "failed",
                        artifact_id: None,
                        version: None,
                        error: Some(e),
                    }
                }
            }
        })
        .buffer_unordered(usize::from(args.concurrency))
        .collect()
        .await;
    progress.finish();
    done.sort_by(|a, b| a.source.path.cmp(&b.source.path));

    let files: Vec<Value> = done
        .iter()
        .map(|d| {
            json!({
                "path": d.source.path,
                "file": d.source.file.display().to_string(),
                "status": d.status,
                "size": d.source.size,
                "sha256": d.sha256,
                "artifactId": d.artifact_id,
                "version": d.version,
                "error": d.error.as_ref().map(|e| e.message.clone()),
            })
        })
        .collect();
    let count = |s: &str| done.iter().filter(|d| d.status == s).count();
    let doc = json!({
        "workflowId": args.workflow,
        "files": files,
        "uploaded": count("uploaded"),
        "skipped": count("skipped"),
        "failed": count("failed"),
        "dryRun": args.dry_run,
    });
    let rows: Vec<Vec<String>> = done
        .iter()
        .map(|d| {
            vec![
                d.status.to_owned(),
                d.source.path.clone(),
                d.version.map(|v| v.to_string()).unwrap_or_default(),
                ui::size(d.source.size),
                d.sha256.chars().take(12).collect(),
            ]
        })
        .collect();
    ui::emit(
        ctx.format,
        &doc,
        &["STATUS", "PATH", "VERSION", "SIZE", "SHA256"],
        &rows,
    );
    Ok(done
        .iter()
        .filter_map(|d| d.error.as_ref().map(|e| e.kind))
        .collect())
}

/// Hash, maybe skip, upload one file. An error comes with the hash if known.
async fn one(
    ctx: &Ctx,
    args: &PutArgs,
    labels: &BTreeMap<String, String>,
    latest: &HashMap<String, String>,
    progress: &Progress,
    source: &Source,
) -> Result<Done, (String, CliError)> {
    let (sha256, size) = crate::digest::file(&source.file)
        .await
        .map_err(|e| (String::new(), e))?;
    let fail = |e: CliError| (sha256.clone(), e);
    if size != source.size {
        return Err(fail(CliError::failed("the file changed while it was read")));
    }
    let mut done = Done {
        source: source.clone(),
        sha256: sha256.clone(),
        status: "uploaded",
        artifact_id: None,
        version: None,
        error: None,
    };
    if latest.get(&source.path) == Some(&sha256) {
        progress.forget(size);
        done.status = "skipped";
        return Ok(done);
    }
    let content_type = args.content_type.clone().unwrap_or_else(|| {
        mime_guess::from_path(&source.file)
            .first_or_octet_stream()
            .essence_str()
            .to_owned()
    });
    // `?` and `#` cannot travel in a URL path: such paths use the session.
    let direct = size <= DIRECT_MAX && !source.path.contains(['?', '#']);
    if args.dry_run {
        progress.forget(size);
        done.status = if direct { "would-put" } else { "would-upload" };
        return Ok(done);
    }
    let bar = progress.file(&source.path, size);
    let result = if direct {
        put_direct(ctx, args, labels, source, &sha256, &content_type).await
    } else {
        upload_session(ctx, args, labels, source, &sha256, &content_type, &bar).await
    };
    bar.done();
    let (artifact_id, version, artifact) = result.map_err(|e| {
        progress.forget(size);
        fail(e)
    })?;
    if direct {
        bar.advance(size);
    }
    warn_ignored(progress, args, &source.path, artifact.as_ref());
    done.artifact_id = Some(artifact_id);
    done.version = Some(version);
    Ok(done)
}

/// Say so when the server did not apply an option it does not know yet.
fn warn_ignored(progress: &Progress, args: &PutArgs, path: &str, artifact: Option<&Value>) {
    let Some(a) = artifact else { return };
    if args.library && a.get("library") != Some(&Value::Bool(true)) {
        progress.note(&format!(
            "artifacts: warning: {path}: the server did not publish it to the library (no library support)"
        ));
    }
    if args.retention_days.is_some() && a.get("expiresAt").is_none_or(Value::is_null) {
        progress.note(&format!(
            "artifacts: warning: {path}: the server set no expiry (no retention support)"
        ));
    }
}

type Written = (String, u64, Option<Value>);

fn written(answer: &Value) -> Result<Written> {
    let id = answer
        .pointer("/artifact/artifactId")
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::failed("the API's answer names no artifact"))?;
    let version = answer
        .pointer("/version/version")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok((id.to_owned(), version, answer.get("artifact").cloned()))
}

async fn put_direct(
    ctx: &Ctx,
    args: &PutArgs,
    labels: &BTreeMap<String, String>,
    source: &Source,
    sha256: &str,
    content_type: &str,
) -> Result<Written> {
    let body = bytes::Bytes::from(tokio::fs::read(&source.file).await?);
    if body.len() as u64 != source.size {
        return Err(CliError::failed("the file changed while it was read"));
    }
    let mut pairs = Vec::new();
    if let Some(t) = &args.artifact_type {
        pairs.push(("artifactType", t.clone()));
    }
    let url = format!(
        "/v1/workflows/{}/artifacts/{}{}",
        enc(&args.workflow),
        enc_path(&source.path),
        query(&pairs)
    );
    let answer = ctx
        .api
        .json(|| {
            let mut r = ctx
                .api
                .request(Method::PUT, &url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header("x-artifact-content-type", content_type)
                .header("x-artifact-sha256", sha256)
                .body(body.clone());
            for (k, v) in labels {
                r = r.header(format!("x-artifact-meta-{k}"), v);
            }
            if let Some(days) = args.retention_days {
                r = r.header("x-artifact-retention-days", days.to_string());
            }
            if args.library {
                r = r.header("x-artifact-library", "true");
            }
            r
        })
        .await?;
    written(&answer)
}

async fn upload_session(
    ctx: &Ctx,
    args: &PutArgs,
    labels: &BTreeMap<String, String>,
    source: &Source,
    sha256: &str,
    content_type: &str,
    bar: &FileBar,
) -> Result<Written> {
    let mut body = json!({
        "path": source.path,
        "contentType": content_type,
        "size": source.size,
        "sha256": sha256,
    });
    if let Some(t) = &args.artifact_type {
        body["artifactType"] = json!(t);
    }
    if !labels.is_empty() {
        body["metadata"] = json!(labels);
    }
    // Only when asked: a server without these features refuses them (400).
    if let Some(days) = args.retention_days {
        body["retentionDays"] = json!(days);
    }
    if args.library {
        body["library"] = json!(true);
    }
    let sessions = format!("/v1/workflows/{}/uploads", enc(&args.workflow));
    let session = ctx
        .api
        .json(|| ctx.api.request(Method::POST, &sessions).json(&body))
        .await?;
    let text = |k: &str| {
        session
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CliError::failed(format!("the upload session has no {k}")))
    };
    let (upload_id, url) = (text("uploadId")?, text("url")?);
    let headers: BTreeMap<String, String> = session
        .get("headers")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| CliError::failed(format!("the upload session's headers: {e}")))?
        .unwrap_or_default();

    // The bytes go straight to storage, streamed from disk (reopened per attempt).
    let response = ctx
        .api
        .send_with(|| {
            bar.rewind(0);
            let file = std::fs::File::open(&source.file)?;
            let reader = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                256 * 1024,
            );
            let counting = bar.clone();
            let counted = reader.inspect_ok(move |chunk| counting.advance(chunk.len() as u64));
            let mut put = ctx
                .api
                .http
                .put(&url)
                .header(CONTENT_LENGTH, source.size)
                .body(reqwest::Body::wrap_stream(counted));
            for (name, value) in &headers {
                if name != "content-length" {
                    put = put.header(name, value);
                }
            }
            Ok(put)
        })
        .await?;
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Err(CliError::failed(format!(
            "the storage refused the upload ({status}): {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    wait_committed(ctx, args, &upload_id).await
}

/// Poll the session until its version is visible (or it failed, or time is up).
async fn wait_committed(ctx: &Ctx, args: &PutArgs, upload_id: &str) -> Result<Written> {
    let url = format!(
        "/v1/workflows/{}/uploads/{}",
        enc(&args.workflow),
        enc(upload_id)
    );
    let deadline = Instant::now() + Duration::from_secs(args.wait_timeout);
    let mut pause = Duration::from_millis(100);
    loop {
        let response = ok(ctx.api.send(|| ctx.api.request(Method::GET, &url)).await?).await?;
        let status: Value = response
            .json()
            .await
            .map_err(|e| CliError::failed(format!("the upload status: {e}")))?;
        match status.get("state").and_then(Value::as_str) {
            Some("committed") => {
                let id = ui::text(&status, "artifactId");
                let version = status.get("version").and_then(Value::as_u64).unwrap_or(0);
                let artifact = refs::artifact(&ctx.api, &id).await.ok();
                return Ok((id, version, artifact));
            }
            Some("rejected") => {
                return Err(CliError::failed(format!(
                    "the upload was rejected: {}",
                    ui::text(&status, "reason")
                )));
            }
            Some("expired") => return Err(CliError::failed("the upload session expired")),
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(CliError::failed(format!(
                "upload {upload_id} was not committed within {} s; it may still appear \
                 (--wait-timeout waits longer)",
                args.wait_timeout
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_take_the_prefix() {
        assert_eq!(artifact_path(None, "a/b.md"), "a/b.md");
        assert_eq!(artifact_path(Some("docs/"), "a.md"), "docs/a.md");
        assert_eq!(artifact_path(Some("/docs"), "a.md"), "docs/a.md");
        assert_eq!(artifact_path(Some(""), "a.md"), "a.md");
    }

    #[test]
    fn labels_need_a_key() {
        assert_eq!(
            labels(&["team=core".into(), "x=a=b".into()]).unwrap(),
            BTreeMap::from([("team".into(), "core".into()), ("x".into(), "a=b".into())])
        );
        assert!(labels(&["=v".into()]).is_err());
        assert!(labels(&["novalue".into()]).is_err());
    }
}
