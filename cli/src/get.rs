//! `artifacts get`: download artifacts, resumable and verified.
//!
//! Bytes go to `<file>.part`; the ETag (the version's sha256) they belong to
//! is kept beside it in `<file>.part.etag`. A later attempt — a retry after a
//! broken connection, or the same command run again — asks for the rest with
//! `Range: bytes=<len>-` and `If-Range: <etag>`: a changed artifact answers
//! 200 with the whole new content and the transfer restarts from zero, so
//! versions are never spliced. A 303 (large content) is followed to storage
//! without the token; its ETag is compared by the client before a `Range` is
//! sent there. The sha256 of the whole file is checked against the ETag before
//! the `.part` is renamed into place; on a mismatch the bytes are moved aside
//! to `<file>.corrupt` and nothing is left at the target name.

use std::path::{Path, PathBuf};

use futures_util::{StreamExt, stream};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::Ctx;
use crate::api::{self, enc, problem, query};
use crate::args::GetArgs;
use crate::error::{CliError, Kind, Result};
use crate::paths;
use crate::refs::{self, Target};
use crate::ui::{self, FileBar, Progress};

/// What a finished download was.
#[derive(Debug, Default)]
pub struct Fetched {
    pub sha256: String,
    pub size: u64,
    pub version: Option<u64>,
    /// Bytes of an earlier partial download that were kept.
    pub resumed_from: u64,
    /// Bytes received over the network in this run.
    pub received: u64,
}

pub async fn run(ctx: &Ctx, args: GetArgs) -> Result<Vec<Kind>> {
    let parsed = args
        .refs
        .iter()
        .map(|r| refs::parse(r).map(|p| (r, p)))
        .collect::<Result<Vec<_>>>()?;
    let pattern = args
        .pattern
        .as_deref()
        .map(|p| {
            globset::Glob::new(p)
                .map(|g| g.compile_matcher())
                .map_err(|e| CliError::usage(format!("--pattern {p:?}: {e}")))
        })
        .transpose()?;

    let mut failures = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    for (raw, reference) in &parsed {
        match refs::resolve(&ctx.api, reference, args.version).await {
            Ok(found) => targets.extend(found),
            Err(e) => {
                eprintln!("artifacts: {raw}: {e}");
                failures.push(e.kind);
            }
        }
    }
    if let Some(p) = &pattern {
        targets.retain(|t| p.is_match(&t.path));
    }
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert((t.artifact_id.clone(), t.version)));
    if targets.is_empty() && failures.is_empty() {
        return Err(CliError::not_found("no artifact matches --pattern"));
    }

    if let Some(output) = &args.output {
        if targets.len() + failures.len() != 1 {
            return Err(CliError::usage(
                "-o takes exactly one artifact; use -D for several",
            ));
        }
        let Some(target) = targets.first() else {
            return Ok(failures);
        };
        if output.as_os_str() == "-" {
            return match to_stdout(ctx, target).await {
                Ok(()) => Ok(failures),
                Err(e) => Err(e.context(&target.path)),
            };
        }
        if args.no_clobber && output.exists() {
            return Ok(failures);
        }
        let progress = Progress::new(ctx.quiet, target.size, "get");
        let bar = progress.file(&target.path, target.size);
        let result = download(ctx, target, output, &bar).await;
        progress.finish();
        let fetched = result.map_err(|e| e.context(&target.path))?;
        report(ctx, &[(target.clone(), output.clone(), Ok(fetched))]);
        return Ok(failures);
    }

    let root = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&root)?;
    let total = targets.iter().map(|t| t.size).sum();
    let progress = Progress::new(ctx.quiet, total, "get");
    let (root, progress_ref, no_clobber) = (&root, &progress, args.no_clobber);
    let mut results: Vec<(Target, PathBuf, Result<Fetched>)> = stream::iter(targets)
        .map(|t| async move {
            let file = match paths::prepare(root, &t.path) {
                Ok(f) => f,
                Err(e) => {
                    progress_ref.forget(t.size);
                    progress_ref.note(&format!("artifacts: {e}"));
                    return (t, PathBuf::new(), Err(e));
                }
            };
            if no_clobber && std::fs::symlink_metadata(&file).is_ok() {
                progress_ref.forget(t.size);
                return (t, file, Ok(Fetched::default()));
            }
            let bar = progress_ref.file(&t.path, t.size);
            let result = download(ctx, &t, &file, &bar).await;
            bar.done();
            if let Err(e) = &result {
                progress_ref.note(&format!("artifacts: {}: {e}", t.path));
            }
            (t, file, result)
        })
        .buffer_unordered(usize::from(args.concurrency))
        .collect()
        .await;
    progress.finish();
    results.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    failures.extend(
        results
            .iter()
            .filter_map(|(_, _, r)| r.as_ref().err().map(|e| e.kind)),
    );
    report(ctx, &results);
    Ok(failures)
}

fn report(ctx: &Ctx, results: &[(Target, PathBuf, Result<Fetched>)]) {
    let status = |r: &Result<Fetched>| match r {
        Err(_) => "failed",
        Ok(f) if f.sha256.is_empty() => "exists",
        Ok(f) if f.resumed_from > 0 => "resumed",
        Ok(_) => "downloaded",
    };
    let files: Vec<Value> = results
        .iter()
        .map(|(t, file, r)| {
            let mut v = json!({
                "path": t.path,
                "artifactId": t.artifact_id,
                "file": file.display().to_string(),
                "status": status(r),
            });
            match r {
                Ok(f) if !f.sha256.is_empty() => {
                    v["version"] = json!(f.version);
                    v["size"] = json!(f.size);
                    v["sha256"] = json!(f.sha256);
                    v["resumedFrom"] = json!(f.resumed_from);
                    v["received"] = json!(f.received);
                }
                Ok(_) => {}
                Err(e) => v["error"] = json!(e.message),
            }
            v
        })
        .collect();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(t, file, r)| {
            let f = r.as_ref().ok();
            vec![
                status(r).to_owned(),
                t.path.clone(),
                f.and_then(|f| f.version)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                f.map(|f| ui::size(f.size)).unwrap_or_default(),
                file.display().to_string(),
            ]
        })
        .collect();
    ui::emit(
        ctx.format,
        &json!({ "files": files }),
        &["STATUS", "PATH", "VERSION", "SIZE", "FILE"],
        &rows,
    );
}

fn download_url(t: &Target) -> String {
    let pairs: Vec<(&str, String)> = t
        .version
        .map(|v| vec![("version", v.to_string())])
        .unwrap_or_default();
    format!(
        "/v1/artifacts/{}/download{}",
        enc(&t.artifact_id),
        query(&pairs)
    )
}

fn header(response: &Response, name: reqwest::header::HeaderName) -> Option<&str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The sha256 an ETag names (`"<hex>"`).
fn etag_sha256(etag: &str) -> Option<String> {
    let hex = etag.trim().trim_start_matches("W/").trim_matches('"');
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// `bytes <start>-<end>/<total>` → (start, total).
fn content_range(value: &str) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let total = total.parse().ok()?;
    if range == "*" {
        return Some((total, total));
    }
    let (start, _) = range.split_once('-')?;
    Some((start.parse().ok()?, total))
}

/// Where the content comes from in one attempt.
enum Source {
    /// A body to read: its response, the offset it starts at, the total size.
    Body(Response, u64, u64),
    /// The partial file already holds everything (416 on a resume).
    Complete(u64),
}

struct Attempt {
    etag: String,
    version: Option<u64>,
    source: Source,
}

/// Ask for the content from `offset` on (if the partial file still belongs
/// to `validator`), following a 303 to storage.
async fn request(ctx: &Ctx, url: &str, offset: u64, validator: Option<&str>) -> Result<Attempt> {
    let resume = validator.filter(|_| offset > 0);
    let response = ctx
        .api
        .send(|| {
            let r = ctx.api.request(Method::GET, url);
            match resume {
                Some(v) => r
                    .header(RANGE, format!("bytes={offset}-"))
                    .header(IF_RANGE, v),
                None => r,
            }
        })
        .await?;
    let status = response.status();
    let version = header(
        &response,
        reqwest::header::HeaderName::from_static("x-artifact-version"),
    )
    .and_then(|v| v.parse().ok());
    if status == StatusCode::RANGE_NOT_SATISFIABLE && resume.is_some() {
        // If-Range matched (else the answer is a 200) and nothing is left.
        let total = header(&response, CONTENT_RANGE).and_then(content_range);
        if let (Some((_, total)), Some(v)) = (total, resume)
            && total == offset
        {
            return Ok(Attempt {
                etag: v.to_owned(),
                version,
                source: Source::Complete(total),
            });
        }
    }
    if !(status.is_success() || status == StatusCode::SEE_OTHER) {
        return Err(problem(response).await);
    }
    let etag = header(&response, ETAG)
        .ok_or_else(|| CliError::failed("the download has no ETag to verify against"))?
        .to_owned();
    if status != StatusCode::SEE_OTHER {
        let source = body_source(response, if resume.is_some() { offset } else { 0 })?;
        return Ok(Attempt {
            etag,
            version,
            source,
        });
    }
    // Large content: a presigned URL to storage. The token stays here, and a
    // Range goes there only if the partial file is of this very version.
    let location = header(&response, LOCATION)
        .ok_or_else(|| CliError::failed("a 303 without a Location"))?
        .to_owned();
    let from = if resume == Some(etag.as_str()) {
        offset
    } else {
        0
    };
    let stored = ctx
        .api
        .send(|| {
            let r = ctx.api.http.get(&location);
            if from > 0 {
                r.header(RANGE, format!("bytes={from}-"))
            } else {
                r
            }
        })
        .await?;
    if !stored.status().is_success() {
        let status = stored.status();
        return Err(CliError::failed(format!(
            "the storage refused the download ({status})"
        )));
    }
    let source = body_source(stored, from)?;
    Ok(Attempt {
        etag,
        version,
        source,
    })
}

/// A 200 starts at zero; a 206 must start where it was asked to.
fn body_source(response: Response, asked: u64) -> Result<Source> {
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {
            let (start, total) = header(&response, CONTENT_RANGE)
                .and_then(content_range)
                .ok_or_else(|| CliError::failed("a 206 without a readable Content-Range"))?;
            if start != asked {
                return Err(CliError::failed(format!(
                    "asked for bytes from {asked}, the server sent from {start}"
                )));
            }
            Ok(Source::Body(response, start, total))
        }
        _ => {
            let total = header(&response, CONTENT_LENGTH)
                .and_then(|v| v.parse().ok())
                .or(response.content_length())
                .ok_or_else(|| CliError::failed("the download has no Content-Length"))?;
            Ok(Source::Body(response, 0, total))
        }
    }
}

/// The ETag a partial file belongs to, if it belongs to this artifact.
fn read_state(state: &Path, artifact_id: &str) -> Option<String> {
    let text = std::fs::read_to_string(state).ok()?;
    let (id, etag) = text.trim().split_once(' ')?;
    (id == artifact_id).then(|| etag.to_owned())
}

/// Download `t` to `file` through `file.part`, resuming what is there.
pub async fn download(ctx: &Ctx, t: &Target, file: &Path, bar: &FileBar) -> Result<Fetched> {
    let part = paths::sibling(file, ".part")?;
    let state = paths::sibling(file, ".part.etag")?;
    let mut validator = read_state(&state, &t.artifact_id);
    let part_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut offset = if validator.is_some() {
        part_len(&part)
    } else {
        0
    };
    let resumed_from = offset;
    let url = download_url(t);
    let mut received = 0u64;
    let mut retries_left = ctx.api.retry.retries;
    let mut attempt_no = 0;
    loop {
        let result = transfer(
            ctx,
            &url,
            &part,
            &state,
            &mut validator,
            &mut offset,
            &mut received,
            bar,
            t,
        )
        .await;
        match result {
            Ok((etag, version, size)) => {
                let (file, part, state) = (file.to_owned(), part.clone(), state.clone());
                let verified =
                    tokio::task::spawn_blocking(move || finish(&file, &part, &state, &etag, size))
                        .await
                        .map_err(|e| CliError::failed(format!("verification failed: {e}")))?;
                return verified.map(|sha256| Fetched {
                    sha256,
                    size,
                    version: version.or(t.version),
                    resumed_from,
                    received,
                });
            }
            Err(e) if e.retryable && retries_left > 0 => {
                retries_left -= 1;
                tokio::time::sleep(ctx.api.retry.delay(attempt_no, None)).await;
                attempt_no += 1;
                offset = if validator.is_some() {
                    part_len(&part)
                } else {
                    0
                };
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt: request, then append the body to the partial file.
#[allow(clippy::too_many_arguments)]
async fn transfer(
    ctx: &Ctx,
    url: &str,
    part: &Path,
    state: &Path,
    validator: &mut Option<String>,
    offset: &mut u64,
    received: &mut u64,
    bar: &FileBar,
    t: &Target,
) -> Result<(String, Option<u64>, u64)> {
    let attempt = request(ctx, url, *offset, validator.as_deref()).await?;
    let (response, start, total) = match attempt.source {
        Source::Complete(total) => return Ok((attempt.etag, attempt.version, total)),
        Source::Body(response, start, total) => (response, start, total),
    };
    if validator.as_deref() != Some(attempt.etag.as_str()) {
        // Recorded before the first byte: what the partial file belongs to.
        std::fs::write(state, format!("{} {}\n", t.artifact_id, attempt.etag))?;
        *validator = Some(attempt.etag.clone());
    }
    let std_file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(part)?;
    std_file.set_len(start)?;
    let mut out = tokio::fs::File::from_std(std_file);
    tokio::io::AsyncSeekExt::seek(&mut out, std::io::SeekFrom::Start(start)).await?;
    let mut out = tokio::io::BufWriter::with_capacity(1024 * 1024, out);
    *offset = start;
    bar.rewind(start);
    let mut response = response;
    let outcome: Result<()> = async {
        while let Some(chunk) = response.chunk().await.map_err(|e| api::transport(&e))? {
            out.write_all(&chunk).await?;
            *offset += chunk.len() as u64;
            *received += chunk.len() as u64;
            bar.advance(chunk.len() as u64);
        }
        Ok(())
    }
    .await;
    // Whatever arrived is kept for the next attempt.
    out.flush().await?;
    outcome?;
    if *offset != total {
        return Err(CliError::transient(format!(
            "the transfer ended at {} of {total} bytes",
            *offset
        )));
    }
    Ok((attempt.etag, attempt.version, total))
}

/// Verify the partial file against the ETag, then move it into place.
fn finish(file: &Path, part: &Path, state: &Path, etag: &str, size: u64) -> Result<String> {
    let expected = etag_sha256(etag)
        .ok_or_else(|| CliError::failed(format!("the ETag {etag} is not a sha256")))?;
    let actual = {
        use std::io::Read;
        let mut hasher = Sha256::new();
        let mut f = std::fs::File::open(part)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        if len != size {
            return Err(CliError::failed(format!(
                "{len} bytes received, {size} expected"
            )));
        }
        hex::encode(hasher.finalize())
    };
    let _ = std::fs::remove_file(state);
    if actual != expected {
        let aside = paths::sibling(file, ".corrupt")?;
        std::fs::rename(part, &aside)?;
        return Err(CliError::failed(format!(
            "sha256 mismatch: expected {expected}, received {actual}; nothing written \
             at {}, the bytes received are in {}",
            file.display(),
            aside.display()
        )));
    }
    std::fs::rename(part, file)?;
    Ok(actual)
}

/// `-o -`: stream to stdout, verified at the end (exit 1 on a mismatch).
async fn to_stdout(ctx: &Ctx, t: &Target) -> Result<()> {
    let attempt = request(ctx, &download_url(t), 0, None).await?;
    let expected =
        etag_sha256(&attempt.etag).ok_or_else(|| CliError::failed("the ETag is not a sha256"))?;
    let Source::Body(mut response, _, total) = attempt.source else {
        return Err(CliError::failed("nothing to read"));
    };
    let mut hasher = Sha256::new();
    let mut stdout = tokio::io::stdout();
    let mut len = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| api::transport(&e))? {
        hasher.update(&chunk);
        len += chunk.len() as u64;
        stdout.write_all(&chunk).await?;
    }
    stdout.flush().await?;
    let actual = hex::encode(hasher.finalize());
    if len != total || actual != expected {
        return Err(CliError::failed(format!(
            "sha256 mismatch on stdout: expected {expected} ({total} bytes), received {actual} ({len} bytes)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("bytes 10-99/100"), Some((10, 100)));
        assert_eq!(content_range("bytes */100"), Some((100, 100)));
        assert_eq!(content_range("bytes x-1/2"), None);
        assert_eq!(content_range("items 1-2/3"), None);
    }

    #[test]
    fn etags() {
        let hex = "a".repeat(64);
        assert_eq!(etag_sha256(&format!("\"{hex}\"")), Some(hex.clone()));
        assert_eq!(etag_sha256(&format!("W/\"{hex}\"")), Some(hex));
        assert_eq!(etag_sha256("\"abc\""), None);
    }
}
