//! `artifacts bundle`: a workflow run as one ZIP, streamed to disk (following
//! a 303 to storage without the token), optionally verified entry by entry
//! against its `MANIFEST.json`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use reqwest::Method;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::Ctx;
use crate::api::{self, enc, ok, query};
use crate::args::BundleArgs;
use crate::error::{CliError, Result};
use crate::ui::{self, Progress};

pub async fn run(ctx: &Ctx, args: BundleArgs) -> Result<()> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(p) = &args.prefix {
        pairs.push(("prefix", p.clone()));
    }
    if let Some(t) = &args.artifact_type {
        pairs.push(("artifactType", t.clone()));
    }
    for pin in &args.pins {
        if !pin.contains(':') {
            return Err(CliError::usage(format!(
                "--pin {pin:?}: expected ID:VERSION"
            )));
        }
        pairs.push(("pin", pin.clone()));
    }
    let url = format!(
        "/v1/workflows/{}/artifacts/bundle{}",
        enc(&args.workflow),
        query(&pairs)
    );
    let response = ctx.api.send(|| ctx.api.request(Method::GET, &url)).await?;
    let response = if response.status() == reqwest::StatusCode::SEE_OTHER {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| CliError::failed("a 303 without a Location"))?
            .to_owned();
        let stored = ctx.api.send(|| ctx.api.http.get(&location)).await?;
        if !stored.status().is_success() {
            return Err(CliError::failed(format!(
                "the storage refused the download ({})",
                stored.status()
            )));
        }
        stored
    } else {
        ok(response).await?
    };

    let part = crate::paths::sibling(&args.output, ".part")?;
    let progress = Progress::new(ctx.quiet, response.content_length().unwrap_or(0), "bundle");
    let bar = progress.file(
        &args.output.display().to_string(),
        response.content_length().unwrap_or(0),
    );
    let mut out =
        tokio::io::BufWriter::with_capacity(1024 * 1024, tokio::fs::File::create(&part).await?);
    let mut response = response;
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| api::transport(&e))? {
        out.write_all(&chunk).await?;
        size += chunk.len() as u64;
        bar.advance(chunk.len() as u64);
    }
    out.flush().await?;
    drop(out);
    progress.finish();

    let verified = if args.verify {
        let part2 = part.clone();
        let checked = tokio::task::spawn_blocking(move || verify(&part2))
            .await
            .map_err(|e| CliError::failed(format!("verification failed: {e}")))?;
        match checked {
            Ok(n) => Some(n),
            Err(e) => {
                let aside = crate::paths::sibling(&args.output, ".corrupt")?;
                std::fs::rename(&part, &aside)?;
                return Err(e.context(&format!(
                    "{} failed verification (kept as {})",
                    args.output.display(),
                    aside.display()
                )));
            }
        }
    } else {
        None
    };
    std::fs::rename(&part, &args.output)?;
    let doc = json!({
        "file": args.output.display().to_string(),
        "size": size,
        "verified": verified.is_some(),
        "files": verified,
    });
    let rows = vec![vec![
        args.output.display().to_string(),
        ui::size(size),
        verified.map_or("not verified".to_owned(), |n| format!("{n} files verified")),
    ]];
    ui::emit(ctx.format, &doc, &["FILE", "SIZE", "VERIFIED"], &rows);
    Ok(())
}

/// Check every entry of the ZIP against its manifest (the first entry):
/// the same set of paths, each with the manifest's size and sha256.
/// Returns the number of files checked.
pub fn verify(zip_path: &Path) -> Result<usize> {
    let bad = |why: String| CliError::failed(why);
    let file = std::fs::File::open(zip_path)?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable ZIP: {e}")))?;
    if archive.is_empty() {
        return Err(bad("the ZIP is empty".into()));
    }
    let manifest: Value = {
        let mut first = archive
            .by_index(0)
            .map_err(|e| bad(format!("manifest entry: {e}")))?;
        let name = first.name().to_owned();
        if !(name.starts_with("MANIFEST") && name.ends_with(".json")) {
            return Err(bad(format!(
                "the first entry is {name:?}, not MANIFEST.json"
            )));
        }
        let mut text = Vec::new();
        first.read_to_end(&mut text)?;
        serde_json::from_slice(&text).map_err(|e| bad(format!("{name}: {e}")))?
    };
    let mut expected: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for f in manifest
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the manifest lists no files".into()))?
    {
        let path = ui::text(f, "path");
        let size = f.get("size").and_then(Value::as_u64).unwrap_or(u64::MAX);
        expected.insert(path, (size, ui::text(f, "sha256")));
    }
    let mut problems = Vec::new();
    let mut seen = 0usize;
    for i in 1..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| bad(format!("entry {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_owned();
        let Some((size, sha256)) = expected.remove(&name) else {
            problems.push(format!("{name}: not in the manifest"));
            continue;
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    len += n as u64;
                }
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    break;
                }
            }
        }
        let actual = hex::encode(hasher.finalize());
        if len != size || actual != sha256 {
            problems.push(format!(
                "{name}: {len} bytes sha256 {actual}, the manifest says {size} bytes sha256 {sha256}"
            ));
        }
        seen += 1;
    }
    problems.extend(
        expected
            .keys()
            .map(|p| format!("{p}: missing from the ZIP")),
    );
    if problems.is_empty() {
        Ok(seen)
    } else {
        Err(bad(problems.join("; ")))
    }
}
