//! `artifacts bundle`: a workflow run as one ZIP, streamed to disk (following
//! a 303 to storage without the token), optionally verified entry by entry
//! against its `MANIFEST.json`, and that against its signature
//! (`MANIFEST.json.sig`) with a public key; `verify-bundle` runs the same
//! check on a ZIP already on disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use reqwest::Method;
use reqwest::header::LOCATION;
use serde_json::json;
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

    let key = match &args.key {
        Some(path) => Some(crate::verify::read_key(path)?),
        None => None,
    };
    let verified = if args.verify || key.is_some() {
        let part2 = part.clone();
        let checked = tokio::task::spawn_blocking(move || verify(&part2, key.as_deref()))
            .await
            .map_err(|e| CliError::failed(format!("verification failed: {e}")))?;
        match checked {
            Ok(checked) => Some(checked),
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
        "files": verified.as_ref().map(|c| c.files),
        "signatureVerified": verified.as_ref().is_some_and(|c| c.signed),
    });
    let rows = vec![vec![
        args.output.display().to_string(),
        ui::size(size),
        verified.map_or("not verified".to_owned(), |c| {
            let signed = if c.signed { ", signature ok" } else { "" };
            format!("{} files verified{signed}", c.files)
        }),
    ]];
    ui::emit(ctx.format, &doc, &["FILE", "SIZE", "VERIFIED"], &rows);
    Ok(())
}

/// What a bundle check found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Files checked against the manifest.
    pub files: usize,
    pub workflow_id: String,
    /// Whether the manifest's signature was checked (a key was given).
    pub signed: bool,
}

/// Check a bundle: with `key` (SPKI DER), first that its second entry
/// (`<manifest>.sig`) is a valid signature over the first entry's exact
/// bytes (the manifest); then every file against the manifest: the same
/// set of paths, each with the manifest's size and sha256. Every message
/// names the entry it is about.
pub fn verify(zip_path: &Path, key: Option<&[u8]>) -> Result<Checked> {
    let bad = |why: String| CliError::failed(why);
    let file = std::fs::File::open(zip_path)?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable ZIP: {e}")))?;
    if archive.is_empty() {
        return Err(bad("the ZIP is empty".into()));
    }
    let (manifest_name, manifest_bytes) = read_small(&mut archive, 0)?;
    if !(manifest_name.starts_with("MANIFEST") && manifest_name.ends_with(".json")) {
        return Err(bad(format!(
            "the first entry is {manifest_name:?}, not MANIFEST.json"
        )));
    }
    let signature_name = format!("{manifest_name}{}", artifacts_attest::SIGNATURE_SUFFIX);
    let signature = match archive.len() > 1 {
        true => Some(read_small(&mut archive, 1)?).filter(|(name, _)| *name == signature_name),
        false => None,
    };
    let manifest: artifacts_attest::Manifest = match (key, &signature) {
        (Some(key), Some((_, sig))) => artifacts_attest::verify_manifest(&manifest_bytes, sig, key)
            .map_err(|e| match e {
                artifacts_attest::Error::ManifestBytes => bad(format!(
                    "{manifest_name}: its bytes are not the ones {signature_name} signs"
                )),
                e => bad(format!("{signature_name}: {e}")),
            })?,
        (Some(_), None) => {
            return Err(bad(format!(
                "{signature_name}: missing (the second entry): the bundle is not signed"
            )));
        }
        (None, _) => serde_json::from_slice(&manifest_bytes)
            .map_err(|e| bad(format!("{manifest_name}: {e}")))?,
    };
    let mut expected: BTreeMap<String, (u64, String)> = manifest
        .files
        .into_iter()
        .map(|f| (f.path, (f.size, f.sha256)))
        .collect();
    let first_file = if signature.is_some() { 2 } else { 1 };
    let mut problems = Vec::new();
    let mut seen = 0usize;
    for i in first_file..archive.len() {
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
        let mut unreadable = false;
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    len += n as u64;
                }
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    unreadable = true;
                    break;
                }
            }
        }
        let actual = hex::encode(hasher.finalize());
        if !unreadable && (len != size || actual != sha256) {
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
        Ok(Checked {
            files: seen,
            workflow_id: manifest.workflow_id,
            signed: key.is_some(),
        })
    } else {
        Err(bad(problems.join("; ")))
    }
}

/// The name and bytes of a small entry (the manifest or its signature).
fn read_small(archive: &mut zip::ZipArchive<std::fs::File>, i: usize) -> Result<(String, Vec<u8>)> {
    /// Far above any manifest a bundle holds; a bound against a crafted ZIP.
    const MAX: u64 = 256 * 1024 * 1024;
    let entry = archive
        .by_index(i)
        .map_err(|e| CliError::failed(format!("entry {i}: {e}")))?;
    let name = entry.name().to_owned();
    let mut bytes = Vec::new();
    entry
        .take(MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::failed(format!("{name}: {e}")))?;
    Ok((name, bytes))
}
