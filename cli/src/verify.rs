//! Offline checks with the signing public key (SPEC §18): `artifacts verify`
//! (a file against its publish attestation), `artifacts verify-bundle` (a
//! bundle against its manifest signature), and `artifacts key`, which saves
//! the key once (`GET /v1/signing-key?format=pem`). The checks need no API,
//! no token and no network: the key is a file the user trusts.

use std::io::Read;
use std::path::Path;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Ctx;
use crate::api::ok;
use crate::args::{Format, KeyArgs, VerifyArgs, VerifyBundleArgs};
use crate::error::{CliError, Result};
use crate::ui;

/// The SPKI DER of a PEM public key file.
pub fn read_key(path: &Path) -> Result<Vec<u8>> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("--key {}: {e}", path.display())))?;
    artifacts_attest::spki_from_pem(&pem)
        .map_err(|e| CliError::usage(format!("--key {}: {e}", path.display())))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// `artifacts verify FILE --attestation A.json --key key.pem`.
pub async fn file(format: Format, args: VerifyArgs) -> Result<()> {
    let key = read_key(&args.key)?;
    let envelope = std::fs::read(&args.attestation).map_err(|e| {
        CliError::usage(format!("--attestation {}: {e}", args.attestation.display()))
    })?;
    let path = args.file.clone();
    let digest = tokio::task::spawn_blocking(move || sha256_file(&path))
        .await
        .map_err(|e| CliError::failed(format!("hashing failed: {e}")))??;
    let statement = artifacts_attest::verify_digest(&envelope, &key, &digest).map_err(|e| {
        CliError::failed(format!(
            "{} does not verify against {}: {e}",
            args.file.display(),
            args.attestation.display()
        ))
    })?;
    let p = &statement.predicate;
    let subject = statement
        .subject
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let doc = json!({
        "file": args.file.display().to_string(),
        "verified": true,
        "sha256": digest,
        "subject": subject,
        "org": p.org,
        "workflowId": p.workflow_id,
        "artifactId": p.artifact_id,
        "version": p.version,
        "publishedAt": p.published_at,
        "publishedBy": p.published_by,
    });
    let rows = vec![vec![
        args.file.display().to_string(),
        format!("{subject} v{}", p.version),
        format!("{} by {}", p.published_at, p.published_by),
        "verified".to_owned(),
    ]];
    ui::emit(
        format,
        &doc,
        &["FILE", "SUBJECT", "PUBLISHED", "RESULT"],
        &rows,
    );
    Ok(())
}

/// `artifacts verify-bundle run.zip --key key.pem`.
pub async fn bundle(format: Format, args: VerifyBundleArgs) -> Result<()> {
    let key = read_key(&args.key)?;
    let path = args.file.clone();
    let checked = tokio::task::spawn_blocking(move || crate::bundle::verify(&path, Some(&key)))
        .await
        .map_err(|e| CliError::failed(format!("verification failed: {e}")))?
        .map_err(|e| e.context(&format!("{} does not verify", args.file.display())))?;
    let doc = json!({
        "file": args.file.display().to_string(),
        "verified": true,
        "signatureVerified": true,
        "workflowId": checked.workflow_id,
        "files": checked.files,
    });
    let rows = vec![vec![
        args.file.display().to_string(),
        checked.workflow_id,
        format!("signature ok, {} files verified", checked.files),
    ]];
    ui::emit(format, &doc, &["FILE", "WORKFLOW", "RESULT"], &rows);
    Ok(())
}

/// `artifacts key [-o key.pem]`: the PEM of `GET /v1/signing-key` (public: no token needed).
pub async fn key(ctx: &Ctx, args: KeyArgs) -> Result<()> {
    let response = ctx
        .api
        .send(|| ctx.api.request(Method::GET, "/v1/signing-key?format=pem"))
        .await?;
    let pem = ok(response)
        .await?
        .text()
        .await
        .map_err(|e| crate::api::transport(&e).context("reading the key"))?;
    // Refuse to save anything that is not a P-256 key.
    let spki = artifacts_attest::spki_from_pem(&pem)
        .ok()
        .filter(|der| der.starts_with(&artifacts_attest::P256_SPKI_PREFIX) && der.len() == 91)
        .ok_or_else(|| {
            CliError::failed("the API answered something that is not a P-256 PEM key")
        })?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &pem)?;
            if !ctx.quiet {
                eprintln!(
                    "saved the signing key to {} (sha256 of its DER {})",
                    path.display(),
                    hex::encode(Sha256::digest(&spki))
                );
            }
        }
        None => print!("{pem}"),
    }
    Ok(())
}
