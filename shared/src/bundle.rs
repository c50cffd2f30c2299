//! Bundles (SPEC §7): a workflow run's artifacts as one ZIP.
//!
//! A bundle is built in two steps. [`Store::bundle_selection`] decides what
//! goes in — the latest version of every artifact of the workflow that the
//! filters (`artifactType`, `prefix`) select, with `pin=<artifactId>:<version>`
//! overriding versions — reading metadata only. [`Store::bundle`] then writes
//! the ZIP with [`crate::zip`]: a `MANIFEST.json` first, its signature
//! `MANIFEST.json.sig` second (a DSSE envelope over the manifest's exact
//! bytes, SPEC §18: [`crate::bundle_signature`]), then the files in path
//! order, each decrypted segment by segment as it is written and checked
//! against its recorded SHA-256. The manifest names every file's version,
//! size, sha256 and the digest of its publish attestation; the selection's
//! digest is the manifest's, and the signature is made once per digest and
//! kept, so the bytes depend only on the selection (fixed timestamps and
//! order), and so does the ETag.
//!
//! The selection reads every selected version item up front (one
//! `BatchGetItem` per 100, no inline content): the attestation digests go
//! into the manifest, which is signed before the first byte is written, and
//! the records of S3-stored versions are reused to read their content.
//!
//! Up to `ARTIFACTS_DIRECT_MAX_BYTES` (by an upper bound computed up front)
//! the ZIP is built in memory and returned; any failure is then an error
//! before a byte is sent. Larger bundles stream to `deliveries/` as a
//! multipart upload that is completed only when every entry verified — any
//! failure aborts it, so no short or wrong archive is ever published — and
//! the caller gets a presigned URL. Memory stays bounded by a few upload
//! parts plus a small record per entry, whatever the sizes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::auth::{Principal, Scope};
use crate::delivery::{DeliveryUpload, delivery_key};
use crate::error::{Error, Result};
use crate::http::content_disposition;
use crate::metadata::{self, VersionRecord, path_sk, workflow_pk};
use crate::model::{self, MAX_PATH_BYTES};
use crate::store::Store;
use crate::zip::{self, Method, ZipWriter};

/// Names this bundle format; part of the ETag, so a change to how the same
/// selection is written (layout, manifest, compression) changes it too.
/// Version 2: entries that do not compress are stored, not deflated.
/// Version 3: `MANIFEST.json.sig` second, `attestationSha256` per file.
pub const FORMAT: &str = "artifacts-bundle/3";
pub const CONTENT_TYPE: &str = "application/zip";
/// Most `pin` values one request may carry.
pub const MAX_PINS: usize = 1000;
const MANIFEST: &str = "MANIFEST.json";
/// Output is handed to the uploader in chunks of about this size.
const DRAIN_AT: usize = 1024 * 1024;
/// Chunks queued for the uploader while it sends a part: one is enough to
/// overlap reading with uploading, and each one more costs `DRAIN_AT` of
/// peak memory (SPEC §20: a bundle within 64 MiB).
const PIPE_DEPTH: usize = 1;

/// What a caller asks to bundle.
#[derive(Debug, Clone, Default)]
pub struct BundleRequest {
    pub workflow_id: String,
    pub artifact_type: Option<String>,
    pub prefix: Option<String>,
    /// `<artifactId>:<version>` values, as given.
    pub pins: Vec<String>,
}

/// The query parameters of the bundle route.
const BUNDLE_PARAMS: &[&str] = &["artifactType", "prefix", "pin"];

impl BundleRequest {
    /// The bundle route's request from its query parameters. Every parameter
    /// is checked as the listing checks its own: a name the route does not
    /// know, or a repeated one other than `pin`, is a 400 naming it (a
    /// misspelt `prefx` must not bundle everything). An empty `prefix` is
    /// no prefix.
    pub fn parse<'a>(
        workflow_id: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut request = BundleRequest {
            workflow_id: workflow_id.to_owned(),
            ..BundleRequest::default()
        };
        for (name, value) in params {
            let (field, slot) = match name {
                "pin" => {
                    request.pins.push(value.to_owned());
                    continue;
                }
                "artifactType" => ("artifactType", &mut request.artifact_type),
                "prefix" => ("prefix", &mut request.prefix),
                other => {
                    return Err(Error::bad_request(
                        "query",
                        format!(
                            "unknown parameter {}; this route takes {}",
                            crate::listing::shown(other),
                            BUNDLE_PARAMS.join(", ")
                        ),
                    ));
                }
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(Error::bad_request(field, "must be given at most once"));
            }
        }
        request.prefix = request.prefix.filter(|p| !p.is_empty());
        Ok(request)
    }
}

/// One file of a bundle, as `MANIFEST.json` lists it: the verifier crate's
/// type, so what is written is what verifiers read.
pub type BundleEntry = crate::attestation::ManifestFile;

/// Known compressed types are stored; anything else is deflated unless its
/// first block does not shrink ([`Method::Auto`]).
fn method(entry: &BundleEntry) -> Method {
    if is_compressed_type(&entry.content_type) {
        Method::Stored
    } else {
        Method::Auto
    }
}

/// What a bundle holds, decided before any content is read.
#[derive(Debug, Clone)]
pub struct Selection {
    pub workflow_id: String,
    /// In path order (bytewise), unique paths.
    pub entries: Vec<BundleEntry>,
    /// `MANIFEST.json`, unless an artifact's path needs that name (or
    /// that name + `.sig`).
    pub manifest_name: String,
    /// The manifest's exact bytes (pretty JSON: format, workflow, entries).
    pub manifest: Vec<u8>,
    /// Hex SHA-256 of [`Selection::manifest`], which names the format, the
    /// workflow and every file's path, version, sha256 and attestation
    /// digest: equal digests, equal bytes.
    pub digest: String,
    /// How to read each S3-stored version's content, by artifact id, from
    /// the selection's read (inline versions are absent: their item holds
    /// the bytes and is read when they are written).
    records: HashMap<String, VersionRecord>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    format: &'static str,
    workflow_id: &'a str,
    files: &'a [BundleEntry],
}

impl Selection {
    fn new(
        workflow_id: String,
        mut entries: Vec<BundleEntry>,
        records: HashMap<String, VersionRecord>,
    ) -> Result<Self> {
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        entries.dedup_by(|a, b| a.path == b.path);
        let manifest_name = manifest_name(&entries);
        let manifest = serde_json::to_vec_pretty(&Manifest {
            format: FORMAT,
            workflow_id: &workflow_id,
            files: &entries,
        })
        .map_err(|e| Error::upstream("json", e))?;
        let digest = hex::encode(Sha256::digest(&manifest));
        Ok(Selection {
            workflow_id,
            entries,
            manifest_name,
            manifest,
            digest,
            records,
        })
    }

    /// The strong ETag of the bundle.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.digest)
    }

    /// `artifacts-<workflowId>.zip`.
    pub fn file_name(&self) -> String {
        format!("artifacts-{}.zip", self.workflow_id)
    }

    /// Sum of the files' sizes.
    pub fn content_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// The manifest signature's entry name: the manifest's + `.sig`.
    pub fn signature_name(&self) -> String {
        format!(
            "{}{}",
            self.manifest_name,
            crate::attestation::SIGNATURE_SUFFIX
        )
    }

    /// An upper bound of the archive's length, with a signature entry of
    /// `signature_len` bytes.
    pub fn max_len(&self, signature_len: u64) -> u64 {
        let manifest = (
            self.manifest_name.len(),
            self.manifest.len() as u64,
            Method::Deflated,
        );
        let signature = (self.signature_name().len(), signature_len, Method::Deflated);
        zip::max_archive_len(
            [manifest, signature].into_iter().chain(
                self.entries
                    .iter()
                    .map(|e| (e.path.len(), e.size, method(e))),
            ),
        )
    }
}

/// `MANIFEST.json`, or `MANIFEST-<n>.json` with the smallest `n` such that
/// no artifact is at that path or below it, nor at that path + `.sig` (the
/// signature's entry) or below it (a file and a folder cannot share a name
/// when extracted), names compared as case-insensitive file systems compare
/// them ([`crate::model::fold_key`]: `manifest.json` takes it too).
fn manifest_name(entries: &[BundleEntry]) -> String {
    let taken = |name: &str| {
        let name = crate::model::fold_key(name);
        entries.iter().any(|e| {
            let top = e.path.split('/').next().unwrap_or(&e.path);
            crate::model::fold_key(top) == name
        })
    };
    (0u64..)
        .map(|n| match n {
            0 => MANIFEST.to_owned(),
            n => format!("MANIFEST-{n}.json"),
        })
        .find(|name| {
            !taken(name) && !taken(&format!("{name}{}", crate::attestation::SIGNATURE_SUFFIX))
        })
        .unwrap_or_else(|| MANIFEST.to_owned())
}

/// Content types that are compressed already: stored, not deflated again.
pub fn is_compressed_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    if sub.ends_with("+zip") || sub.ends_with("+gzip") {
        return true;
    }
    match kind {
        "image" => matches!(
            sub,
            "png" | "jpeg" | "jpg" | "pjpeg" | "gif" | "webp" | "avif" | "heic" | "heif" | "jxl"
        ),
        "video" => true,
        "audio" => !matches!(sub, "wav" | "x-wav" | "wave" | "aiff" | "x-aiff" | "basic"),
        "font" => matches!(sub, "woff" | "woff2"),
        "application" => {
            matches!(
                sub,
                "zip"
                    | "x-zip-compressed"
                    | "gzip"
                    | "x-gzip"
                    | "x-bzip2"
                    | "x-xz"
                    | "zstd"
                    | "x-zstd"
                    | "x-7z-compressed"
                    | "vnd.rar"
                    | "x-rar-compressed"
                    | "x-lzma"
                    | "x-lzip"
                    | "x-compress"
                    | "java-archive"
                    | "pdf"
                    | "vnd.android.package-archive"
            ) || sub.starts_with("vnd.openxmlformats-officedocument.")
                || sub.starts_with("vnd.oasis.opendocument.")
        }
        _ => false,
    }
}

/// A parsed `pin` value.
fn parse_pin(raw: &str) -> Result<(String, u64)> {
    let bad = || {
        Error::bad_request(
            "pin",
            format!("{raw:?} is not <artifactId>:<version> with a version from 1"),
        )
    };
    let (id, version) = raw.trim().split_once(':').ok_or_else(bad)?;
    let version = version
        .parse::<u64>()
        .ok()
        .filter(|v| (1..=u64::from(u32::MAX)).contains(v))
        .ok_or_else(bad)?;
    // An id that cannot exist is a missing artifact, as everywhere else.
    let id = model::parse_artifact_id(id)?;
    Ok((id.to_owned(), version))
}

fn parse_pins(raw: &[String]) -> Result<BTreeMap<String, u64>> {
    // API Gateway joins repeated parameters with commas when it has no
    // raw query string; ids and versions never contain one.
    let values: Vec<&str> = raw
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.trim().is_empty())
        .collect();
    if values.len() > MAX_PINS {
        return Err(Error::bad_request(
            "pin",
            format!("at most {MAX_PINS} pins per request"),
        ));
    }
    let mut pins = BTreeMap::new();
    for value in values {
        let (id, version) = parse_pin(value)?;
        if pins
            .insert(id.clone(), version)
            .is_some_and(|v| v != version)
        {
            return Err(Error::bad_request(
                "pin",
                format!("artifact {id} is pinned to two versions"),
            ));
        }
    }
    Ok(pins)
}

/// What a bundle turned out to be.
#[derive(Debug)]
pub enum Bundle {
    /// The archive itself (at most `ARTIFACTS_DIRECT_MAX_BYTES`).
    Direct(Vec<u8>),
    /// A presigned GET of the archive in `deliveries/`.
    Delivered { url: String },
}

impl Store {
    /// Decide what a bundle holds: metadata reads only. Nothing selected
    /// (no such workflow in the caller's org, or filters that match nothing)
    /// is 404. A pin must name an artifact of this workflow (else 404, like
    /// any missing artifact) that the filters select (else 400: the pin would
    /// silently do nothing), and an existing version of it (else 404).
    pub async fn bundle_selection(
        &self,
        principal: &Principal,
        request: &BundleRequest,
    ) -> Result<Selection> {
        principal.require(Scope::Read)?;
        let org = principal.org.as_str();
        model::validate_workflow_id(&request.workflow_id)?;
        if let Some(t) = &request.artifact_type {
            model::validate_artifact_type(t)?;
        }
        let prefix = request.prefix.as_deref().unwrap_or("");
        if prefix.len() > MAX_PATH_BYTES || prefix.chars().any(char::is_control) {
            return Err(Error::bad_request(
                "prefix",
                "must be at most 512 bytes without control characters",
            ));
        }
        let pins = parse_pins(&request.pins)?;

        let listed = self
            .list_workflow(
                org,
                &request.workflow_id,
                prefix,
                request.artifact_type.as_deref(),
            )
            .await?;
        let mut selected: HashMap<String, BundleEntry> = listed
            .into_iter()
            .map(|entry| (entry.artifact_id.clone(), entry))
            .collect();
        for (artifact_id, version) in pins {
            let Some(current) = selected.get(&artifact_id) else {
                return Err(self
                    .unselected_pin(org, &request.workflow_id, &artifact_id)
                    .await);
            };
            if current.version == version {
                continue;
            }
            let record = self
                .metadata
                .version(org, &artifact_id, version)
                .await?
                .ok_or(Error::NotFound("version"))?;
            let path = current.path.clone();
            selected.insert(
                artifact_id.clone(),
                BundleEntry {
                    path,
                    artifact_id,
                    version,
                    size: record.version.size,
                    sha256: record.version.sha256,
                    content_type: record.version.content_type,
                    attestation_sha256: None,
                },
            );
        }
        if selected.is_empty() {
            return Err(Error::NotFound("artifact"));
        }
        let (entries, records) = self
            .with_versions(org, selected.into_values().collect())
            .await?;
        Selection::new(request.workflow_id.clone(), entries, records)
    }

    /// Every entry with its version item read (all at once, batched): the
    /// attestation digest for the manifest, and the record to read S3
    /// content with. A selected version that is gone, or that no longer
    /// matches its artifact item, is an integrity error, as it would be
    /// when read.
    async fn with_versions(
        &self,
        org: &str,
        mut entries: Vec<BundleEntry>,
    ) -> Result<(Vec<BundleEntry>, HashMap<String, VersionRecord>)> {
        let keys: Vec<(String, u64)> = entries
            .iter()
            .map(|e| (e.artifact_id.clone(), e.version))
            .collect();
        let mut heads = self.metadata.version_heads(org, &keys).await?;
        let mut records = HashMap::new();
        for entry in &mut entries {
            let head = heads
                .remove(&(entry.artifact_id.clone(), entry.version))
                .ok_or_else(|| Error::Integrity("a selected version is missing".into()))?;
            if head.version.size != entry.size || head.version.sha256 != entry.sha256 {
                return Err(Error::Integrity(
                    "a selected version does not match its artifact item".into(),
                ));
            }
            entry.attestation_sha256 = head.attestation_sha256;
            if let Some(record) = head.record {
                records.insert(entry.artifact_id.clone(), record);
            }
        }
        Ok((entries, records))
    }

    /// Why a pinned artifact is not in the filtered selection.
    async fn unselected_pin(&self, org: &str, workflow_id: &str, artifact_id: &str) -> Error {
        match self.metadata.artifact(org, artifact_id).await {
            Ok(Some(a))
                if a.workflow_id == workflow_id
                    && crate::lifecycle::readable(&a, time::OffsetDateTime::now_utc()).is_ok() =>
            {
                Error::bad_request(
                    "pin",
                    format!("artifact {artifact_id} is not selected by artifactType/prefix"),
                )
            }
            Ok(_) => Error::NotFound("artifact"),
            Err(e) => e,
        }
    }

    /// The workflow's artifacts under `prefix` (and of `artifact_type`), at
    /// their latest versions: the path items of the workflow partition.
    async fn list_workflow(
        &self,
        org: &str,
        workflow_id: &str,
        prefix: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<BundleEntry>> {
        let mut listed = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut query = self
                .metadata
                .client()
                .query()
                .table_name(self.metadata.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(workflow_pk(org, workflow_id)),
                )
                .expression_attribute_values(":prefix", AttributeValue::S(path_sk(prefix)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            // Expired artifacts are not bundled (SPEC §12); trashed ones
            // have no path item.
            let (live, now) = crate::lifecycle::listing_filter(time::OffsetDateTime::now_utc());
            query = query.expression_attribute_values(":lcnow", AttributeValue::S(now));
            query = match artifact_type {
                Some(t) => query
                    .filter_expression(format!("artifactType = :type AND {live}"))
                    .expression_attribute_values(":type", AttributeValue::S(t.to_owned())),
                None => query.filter_expression(live),
            };
            let page = query
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            let next = page.last_evaluated_key.filter(|key| !key.is_empty());
            for item in page.items.unwrap_or_default() {
                let artifact = metadata::artifact_of(item)?;
                listed.push(BundleEntry {
                    path: artifact.path,
                    artifact_id: artifact.artifact_id,
                    version: artifact.latest_version,
                    size: artifact.size,
                    sha256: artifact.sha256,
                    content_type: artifact.content_type,
                    attestation_sha256: None,
                });
            }
            match next {
                Some(key) => start = Some(key),
                None => return Ok(listed),
            }
        }
    }

    /// Write the bundle of `selection`: in memory when it is small enough,
    /// else to `deliveries/` (reusing a fresh copy of the same selection).
    pub async fn bundle(&self, org: &str, selection: &Selection) -> Result<Bundle> {
        let started = std::time::Instant::now();
        // Before any byte: no signature, no bundle.
        let signature = self.bundle_signature(org, selection).await?;
        let max_len = selection.max_len(signature.len() as u64);
        if max_len <= self.config.direct_max_bytes {
            let bytes = self.write_zip(org, selection, &signature, None).await?;
            if bytes.len() as u64 <= self.config.direct_max_bytes {
                tracing::info!(
                    entries = selection.entries.len(),
                    bytes = bytes.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "bundle built in memory"
                );
                return Ok(Bundle::Direct(bytes));
            }
        }
        let key = delivery_key(org, &format!("bundles/{}.zip", selection.digest));
        if self.deliveries.find_fresh(&key).await? {
            tracing::info!(entries = selection.entries.len(), "bundle reused");
        } else {
            let upload = self
                .deliveries
                .start(
                    &key,
                    CONTENT_TYPE,
                    &content_disposition(&selection.file_name()),
                )
                .await?;
            let mut pipe = Pipe::start(upload);
            match self
                .write_zip(org, selection, &signature, Some(&mut pipe))
                .await
            {
                Ok(_) => pipe.finish().await?,
                Err(e) => {
                    pipe.abandon().await;
                    return Err(e);
                }
            }
            tracing::info!(
                entries = selection.entries.len(),
                content_bytes = selection.content_size(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "bundle written to deliveries"
            );
        }
        Ok(Bundle::Delivered {
            url: self
                .deliveries
                .presign_get(&key, crate::delivery::LINK_TTL)
                .await?,
        })
    }

    /// The archive: manifest, its signature, then every file, verified as
    /// it streams. With a `pipe`, output goes there as it is produced and
    /// nothing is returned; without, the whole archive is returned.
    async fn write_zip(
        &self,
        org: &str,
        selection: &Selection,
        signature: &[u8],
        mut pipe: Option<&mut Pipe>,
    ) -> Result<Vec<u8>> {
        let mut zip = ZipWriter::new(Vec::new());
        for (name, bytes) in [
            (selection.manifest_name.clone(), &selection.manifest[..]),
            (selection.signature_name(), signature),
        ] {
            zip.start_entry(&name, Method::Deflated, bytes.len() as u64)
                .map_err(zip_error)?;
            zip.write_all(bytes).map_err(zip_error)?;
            zip.finish_entry().map_err(zip_error)?;
        }

        for entry in &selection.entries {
            // S3 content: the record the selection read. Inline content:
            // the item holds the bytes, read now (one GetItem) and dropped
            // once written.
            let record = match selection.records.get(&entry.artifact_id) {
                Some(record) => record.clone(),
                None => self
                    .metadata
                    .version(org, &entry.artifact_id, entry.version)
                    .await?
                    .filter(|r| r.version.size == entry.size && r.version.sha256 == entry.sha256)
                    .ok_or_else(|| {
                        Error::Integrity("a selected version is missing or changed".into())
                    })?,
            };
            let mut reader = self.reader(org, &entry.artifact_id, &record).await?;
            zip.start_entry(&entry.path, method(entry), entry.size)
                .map_err(zip_error)?;
            // The last segment comes out only once the whole object
            // authenticated and matched its SHA-256.
            while let Some(plain) = reader.next_segment().await? {
                zip.write_all(&plain).map_err(zip_error)?;
                if let Some(pipe) = pipe.as_deref_mut()
                    && zip.get_ref().len() >= DRAIN_AT
                {
                    pipe.send(std::mem::take(zip.get_mut())).await?;
                }
            }
            zip.finish_entry().map_err(zip_error)?;
        }
        let rest = zip.finish().map_err(zip_error)?;
        match pipe {
            Some(pipe) => {
                pipe.send(rest).await?;
                Ok(Vec::new())
            }
            None => Ok(rest),
        }
    }
}

fn zip_error(e: std::io::Error) -> Error {
    Error::Integrity(format!("bundle: {e}"))
}

enum Chunk {
    Data(Vec<u8>),
    Finish,
}

/// The multipart upload, driven by its own task so that parts go to S3 while
/// the next bytes are read, decrypted and compressed. The upload completes
/// only on [`Pipe::finish`]; if the writer gives up (or is dropped), it is
/// aborted.
struct Pipe {
    tx: mpsc::Sender<Chunk>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Pipe {
    fn start(mut upload: DeliveryUpload) -> Pipe {
        let (tx, mut rx) = mpsc::channel::<Chunk>(PIPE_DEPTH);
        let task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Some(Chunk::Data(bytes)) => {
                        if let Err(e) = upload.write(&bytes).await {
                            upload.abort().await;
                            return Err(e);
                        }
                    }
                    Some(Chunk::Finish) => return upload.finish().await.map(|_| ()),
                    None => {
                        upload.abort().await;
                        return Err(Error::upstream("bundle", "the bundle was abandoned"));
                    }
                }
            }
        });
        Pipe { tx, task }
    }

    async fn send(&mut self, bytes: Vec<u8>) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.tx.send(Chunk::Data(bytes)).await.is_ok() {
            return Ok(());
        }
        // The uploader stopped: it failed, and says why when joined.
        Err(Error::upstream("s3", "the delivery upload stopped"))
    }

    async fn finish(self) -> Result<()> {
        let sent = self.tx.send(Chunk::Finish).await;
        let outcome = self.task.await.map_err(|e| Error::upstream("bundle", e))?;
        outcome?;
        sent.map_err(|_| Error::upstream("s3", "the delivery upload stopped"))
    }

    async fn abandon(self) {
        drop(self.tx);
        match self.task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "bundle upload aborted"),
            Ok(Ok(())) => {}
            Err(e) => tracing::warn!(error = %e, "bundle uploader failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_parameters_are_checked_like_the_listings() {
        let r = BundleRequest::parse(
            "wf",
            [
                ("artifactType", "prd"),
                ("prefix", "docs/"),
                ("pin", "a:1"),
                ("pin", "b:2"),
            ],
        )
        .unwrap();
        assert_eq!(r.artifact_type.as_deref(), Some("prd"));
        assert_eq!(r.prefix.as_deref(), Some("docs/"));
        assert_eq!(r.pins, ["a:1", "b:2"]);
        assert_eq!(
            BundleRequest::parse("wf", [("prefix", "")]).unwrap().prefix,
            None
        );
        let field = |pairs: &[(&str, &str)]| match BundleRequest::parse("wf", pairs.iter().copied())
        {
            Err(Error::BadRequest { field, reason }) => (field, reason),
            other => panic!("{pairs:?} -> {other:?}"),
        };
        let (f, reason) = field(&[("prefx", "docs/")]);
        assert_eq!(f, "query");
        assert!(reason.contains("\"prefx\""), "{reason}");
        assert_eq!(field(&[("PIN", "a:1")]).0, "query");
        assert_eq!(field(&[("prefix", "a"), ("prefix", "b")]).0, "prefix");
        assert_eq!(
            field(&[("artifactType", "a"), ("artifactType", "a")]).0,
            "artifactType"
        );
    }

    fn entry(path: &str, id: char, version: u64) -> BundleEntry {
        BundleEntry {
            path: path.into(),
            artifact_id: id.to_string().repeat(32),
            version,
            size: 10,
            sha256: "ab".repeat(32),
            content_type: "text/plain".into(),
            attestation_sha256: None,
        }
    }

    #[test]
    fn selections_are_ordered_and_digested_by_content() {
        let a = Selection::new(
            "wf".into(),
            vec![entry("b/x", '1', 1), entry("a", '2', 3), entry("B", '3', 1)],
            HashMap::new(),
        )
        .unwrap();
        let paths: Vec<_> = a.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["B", "a", "b/x"], "bytewise order");
        let b = Selection::new(
            "wf".into(),
            vec![entry("a", '2', 3), entry("B", '3', 1), entry("b/x", '1', 1)],
            HashMap::new(),
        )
        .unwrap();
        assert_eq!(a.digest, b.digest, "input order does not matter");
        let newer = Selection::new(
            "wf".into(),
            vec![entry("a", '2', 4), entry("B", '3', 1), entry("b/x", '1', 1)],
            HashMap::new(),
        )
        .unwrap();
        assert_ne!(a.digest, newer.digest);
        let other_wf = Selection::new("wf2".into(), a.entries.clone(), HashMap::new()).unwrap();
        assert_ne!(a.digest, other_wf.digest);
        // A backfilled attestation changes the manifest, so the digest.
        let mut attested = a.entries.clone();
        attested[0].attestation_sha256 = Some("cd".repeat(32));
        let attested = Selection::new("wf".into(), attested, HashMap::new()).unwrap();
        assert_ne!(a.digest, attested.digest);
        assert_eq!(a.digest, hex::encode(Sha256::digest(&a.manifest)));
        assert_eq!(a.etag(), format!("\"{}\"", a.digest));
        assert_eq!(a.file_name(), "artifacts-wf.zip");
    }

    #[test]
    fn the_manifest_never_collides_with_an_artifact() {
        let name = |paths: &[&str]| {
            let entries: Vec<_> = paths.iter().map(|p| entry(p, '1', 1)).collect();
            manifest_name(&entries)
        };
        assert_eq!(name(&["a.txt"]), "MANIFEST.json");
        assert_eq!(name(&["MANIFEST.json.bak"]), "MANIFEST.json");
        assert_eq!(name(&["MANIFEST.json"]), "MANIFEST-1.json");
        assert_eq!(name(&["MANIFEST.json/x"]), "MANIFEST-1.json");
        assert_eq!(
            name(&["MANIFEST.json", "MANIFEST-1.json/y"]),
            "MANIFEST-2.json"
        );
        // The signature's name is taken into account too.
        assert_eq!(name(&["MANIFEST.json.sig"]), "MANIFEST-1.json");
        assert_eq!(name(&["manifest.JSON.SIG/z"]), "MANIFEST-1.json");
        assert_eq!(
            name(&["MANIFEST.json.sig", "MANIFEST-1.json"]),
            "MANIFEST-2.json"
        );
    }

    #[test]
    fn manifest_is_what_verifiers_read_and_bound_is_an_upper_bound() {
        let mut e = entry("\u{e9}", '2', 2);
        e.attestation_sha256 = Some("cd".repeat(32));
        let s = Selection::new("wf".into(), vec![entry("a", '1', 1), e], HashMap::new()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&s.manifest).unwrap();
        assert_eq!(v["format"], FORMAT);
        assert_eq!(v["files"][1]["artifactId"], "2".repeat(32));
        assert_eq!(v["files"][0]["attestationSha256"], serde_json::Value::Null);
        assert_eq!(v["files"][1]["attestationSha256"], "cd".repeat(32));
        // The verifier crate's reading of it.
        let read: crate::attestation::Manifest = serde_json::from_slice(&s.manifest).unwrap();
        assert_eq!(read.format, FORMAT);
        assert_eq!(read.files[1].attestation_sha256, Some("cd".repeat(32)));
        assert_eq!(read.files[0].size, 10);
        assert_eq!(s.signature_name(), "MANIFEST.json.sig");
        assert!(s.max_len(600) > s.manifest.len() as u64 + 600 + 20);
    }

    #[test]
    fn compressed_types_are_stored() {
        for t in [
            "application/zip",
            "image/png",
            "IMAGE/JPEG",
            "application/pdf",
            "application/gzip; charset=binary",
            "application/epub+zip",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "video/mp4",
            "font/woff2",
        ] {
            assert!(is_compressed_type(t), "{t}");
        }
        for t in [
            "text/plain",
            "text/markdown; charset=utf-8",
            "application/json",
            "application/octet-stream",
            "image/svg+xml",
            "audio/wav",
            "application/x-tar",
            "nonsense",
        ] {
            assert!(!is_compressed_type(t), "{t}");
        }
    }

    /// The CPU side of a bundle without S3: open sealed segments, CRC,
    /// deflate or store, ZIP framing. Prints MiB/s for text (deflated) and
    /// noise (stored); run by bench/bundle.sh.
    #[test]
    #[ignore = "benchmark: run bench/bundle.sh"]
    fn bench_cpu_throughput() {
        use crate::crypto::{self, HEADER_LEN, Opener, SEGMENT_SIZE, TAG_LEN};
        const SIZE: usize = 64 * 1024 * 1024;
        let key = [7u8; 32];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words = [
            "resource ",
            "\"aws_s3_bucket\" ",
            "{\n",
            "}\n",
            "= ",
            "var.name ",
            "output ",
        ];
        let mut text = Vec::with_capacity(SIZE + 32);
        while text.len() < SIZE {
            text.extend_from_slice(words[(next() % words.len() as u64) as usize].as_bytes());
        }
        text.truncate(SIZE);
        let noise: Vec<u8> = (0..SIZE).map(|_| (next() >> 24) as u8).collect();
        for (label, plain, method) in [
            ("text, deflated", &text, Method::Deflated),
            ("noise, stored", &noise, Method::Stored),
        ] {
            let sealed = crypto::seal(&key, plain);
            let started = std::time::Instant::now();
            let opener = Opener::new(&key, &sealed[..HEADER_LEN]).unwrap();
            let mut zip = ZipWriter::new(Vec::new());
            zip.start_entry("f", method, SIZE as u64).unwrap();
            let segments: Vec<&[u8]> = sealed[HEADER_LEN..]
                .chunks(SEGMENT_SIZE + TAG_LEN)
                .collect();
            let mut out = 0u64;
            let mut hash = Sha256::new();
            for (i, segment) in segments.iter().enumerate() {
                let plain = opener
                    .open_segment(i as u32, segment, i + 1 == segments.len())
                    .unwrap();
                hash.update(&plain);
                zip.write_all(&plain).unwrap();
                out += zip.get_ref().len() as u64;
                zip.get_mut().clear();
            }
            zip.finish_entry().unwrap();
            out += zip.finish().unwrap().len() as u64;
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(hash.finalize().as_slice(), Sha256::digest(plain).as_slice());
            println!(
                "BENCH cpu {label}: {} MiB in {seconds:.2} s = {:.0} MiB/s (archive {} MiB)",
                SIZE >> 20,
                (SIZE >> 20) as f64 / seconds,
                out >> 20
            );
        }
    }

    #[test]
    fn pins_parse_strictly() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_pin(&format!("{id}:3")).unwrap(), (id.to_owned(), 3));
        for bad in [
            id.to_string(),
            format!("{id}:0"),
            format!("{id}:x"),
            format!("{id}:-1"),
            format!("{id}:"),
            format!("{id}:99999999999"),
        ] {
            assert!(
                matches!(parse_pin(&bad), Err(Error::BadRequest { field: "pin", .. })),
                "{bad}"
            );
        }
        assert!(matches!(parse_pin("nothex:1"), Err(Error::NotFound(_))));
    }
}
