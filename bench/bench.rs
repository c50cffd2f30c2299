//! The Rust side of `make bench` (SPEC §20), driven by `bench/run.py`: each
//! subcommand measures one figure and its baseline in the same process and
//! prints one JSON object on stdout. Nothing here asserts a time; a
//! functional failure (a wrong byte, a non-2xx answer) is an error exit.
//!
//! - `crypto`: seal and open of 64 MiB in 64 KiB segments, SHA-256 of the
//!   plaintext included, as the store does them (MB/s).
//! - `direct`: the download and upload handlers in process vs raw S3
//!   `GetObject`/`PutObject` of the same bytes on the same emulator (p50),
//!   with where a download's time goes; the same requests also through the
//!   local API gateway (`gateway/`) on a loopback listener with a reqwest
//!   client, in front of the same handlers in process (`harness::edge`).
//! - `bundle-seed`: a workflow of 16 × 16 MiB (half text, half
//!   incompressible) through the upload sessions and ingest, and the same
//!   plaintexts under `peer/` for the seed-001 reimplementation.
//! - `bundle-run`: in a fresh process, the bundle handler (303 to the
//!   archive in `deliveries/`) with this process's peak RSS.
//! - `raw-copy`: the ingest baseline, a streamed `GetObject` → multipart
//!   `PutObject` of the same bytes.

use std::collections::HashMap;
use std::time::Instant;

use artifacts::auth::Principal;
use artifacts::crypto;
use artifacts::uploads::{IngestOutcome, UploadRequest, staging_key};
use artifacts::{Config, Store};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use harness::edge::{self, Edge};
use harness::{BoxError, Call, Caller, bytes, json_body, provision};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;
const ORG: &str = "bench";
const WORKFLOW: &str = "bench-run";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn arg_or<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    arg(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Deterministic bytes: `text` deflates well, otherwise incompressible.
fn generate(len: usize, seed: u64, text: bool) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    if !text {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&next().to_le_bytes());
        }
        out.truncate(len);
        return out;
    }
    let words = [
        "resource ",
        "\"aws_s3_bucket\" ",
        "{\n",
        "}\n",
        "= ",
        "var.name ",
        "output ",
        "module ",
        "tags ",
        "\"artifact\" ",
        "# generated\n",
        "depends_on ",
    ];
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let word = words[(next() % words.len() as u64) as usize];
        out.extend_from_slice(word.as_bytes());
        if next() % 7 == 0 {
            out.extend_from_slice(format!("{} ", next() % 10_000).as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn writer() -> Principal {
    Principal {
        org: ORG.into(),
        subject: "bench".into(),
        scopes: vec!["artifacts:write".into(), "artifacts:read".into()],
    }
}

/// Seal and open of `mib` MiB in 64 KiB segments as the streaming paths run
/// them (ingest: SHA-256 of each plaintext segment, then `Sealer::seal_in_place`;
/// downloads and bundles: `Opener::open_segment_into`, then SHA-256 of the
/// segment), each segment hashed and sealed while it is in cache; best of
/// `runs` as MB/s (10^6 bytes). The one-shot `crypto::seal` / `crypto::open`
/// over the whole buffer (the inline path: SHA-256 of the body, then seal) is
/// measured too, as `oneShot*`.
fn crypto_bench(args: &[String]) -> Result<Value, BoxError> {
    let mib: usize = arg_or(args, "--mib", 64);
    let runs: usize = arg_or(args, "--runs", 5);
    let plain = generate(mib * MIB, 1, false);
    let key = [0x42u8; crypto::KEY_LEN];
    let mb = plain.len() as f64 / 1e6;
    let expected = Sha256::digest(&plain);
    let segments: Vec<&[u8]> = plain.chunks(crypto::SEGMENT_SIZE).collect();
    let (mut seal, mut open) = (Vec::new(), Vec::new());
    // The sealed object, reused across runs (an upload hands each sealed
    // segment on to its part buffer).
    let mut sealed = Vec::with_capacity(crypto::sealed_len(plain.len() as u64) as usize);
    let mut segment = Vec::with_capacity(crypto::SEGMENT_SIZE + crypto::TAG_LEN);
    for _ in 0..runs {
        sealed.clear();
        let started = Instant::now();
        let mut hash = Sha256::new();
        let (mut sealer, header) = crypto::Sealer::new(&key);
        sealed.extend_from_slice(&header);
        for (i, plain) in segments.iter().enumerate() {
            segment.clear();
            segment.extend_from_slice(plain);
            hash.update(&segment);
            sealer.seal_in_place(&mut segment, i + 1 == segments.len())?;
            sealed.extend_from_slice(&segment);
        }
        let digest = hash.finalize();
        seal.push(mb / started.elapsed().as_secs_f64());
        if digest != expected {
            return Err("sealed digest differs".into());
        }
    }
    let mut plain_out = Vec::with_capacity(crypto::SEGMENT_SIZE);
    let chunk = crypto::SEGMENT_SIZE + crypto::TAG_LEN;
    for _ in 0..runs {
        let started = Instant::now();
        let mut hash = Sha256::new();
        let opener = crypto::Opener::new(&key, &sealed[..crypto::HEADER_LEN])?;
        let body: Vec<&[u8]> = sealed[crypto::HEADER_LEN..].chunks(chunk).collect();
        for (i, part) in body.iter().enumerate() {
            plain_out.clear();
            opener.open_segment_into(i as u32, part, i + 1 == body.len(), &mut plain_out)?;
            hash.update(&plain_out);
        }
        let digest = hash.finalize();
        open.push(mb / started.elapsed().as_secs_f64());
        if digest != expected {
            return Err("opened bytes differ".into());
        }
    }
    // One shot over the whole buffer: two passes through memory.
    let (mut one_seal, mut one_open) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let digest = Sha256::digest(&plain);
        sealed = crypto::seal(&key, &plain);
        one_seal.push(mb / started.elapsed().as_secs_f64());
        std::hint::black_box(digest);
        let started = Instant::now();
        let opened = crypto::open(&key, &sealed)?;
        let digest = Sha256::digest(&opened);
        one_open.push(mb / started.elapsed().as_secs_f64());
        if digest != expected {
            return Err("opened bytes differ".into());
        }
    }
    let best = |xs: &[f64]| xs.iter().copied().fold(0.0, f64::max);
    Ok(json!({
        "bytes": plain.len(),
        "segment": crypto::SEGMENT_SIZE,
        "runs": runs,
        "sealMBps": best(&seal),
        "openMBps": best(&open),
        "oneShotSealMBps": best(&one_seal),
        "oneShotOpenMBps": best(&one_open),
        "sealMBpsMedian": median(seal),
        "openMBpsMedian": median(open),
    }))
}

/// p50 of the download and upload handlers vs raw S3, same bytes, same emulator.
async fn direct_bench(args: &[String]) -> Result<Value, BoxError> {
    let runs: usize = arg_or(args, "--runs", 20);
    // The gateway's environment is the one measured in process too: the
    // same tables, bucket and key, so the two paths read the same bytes.
    let edge = Edge::start().await;
    let env = &*edge.env;
    let http = edge::client();
    let token = edge.writer(ORG);
    let s3 = env.s3();
    let bucket = env.resources.bucket.clone();
    let caller = Caller::writer(ORG);
    let mut out = serde_json::Map::new();

    for mib in [1usize, 4] {
        let body = generate(mib * MIB, mib as u64, false);
        let path = format!("direct/{mib}mib.bin");
        let response = harness::upload(
            env,
            Call::upload(WORKFLOW, &path, &body)
                .header("content-type", "application/octet-stream")
                .by(&caller),
        )
        .await;
        if response.status() != 201 {
            return Err(format!("upload {mib} MiB: {}", response.status()).into());
        }
        let id = json_body(&response)["artifact"]["artifactId"]
            .as_str()
            .ok_or("no artifactId")?
            .to_owned();
        let raw_key = format!("raw/{mib}mib.bin");
        s3.put_object()
            .bucket(&bucket)
            .key(&raw_key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await?;
        // One warm-up of each, then alternate so drift hits all alike.
        let (mut ours, mut raw, mut via_http) = (Vec::new(), Vec::new(), Vec::new());
        let url = edge.url(&format!("/v1/artifacts/{id}/download"));
        for i in 0..=runs {
            let request = Call::download(&id).by(&caller).request();
            let started = Instant::now();
            let response = artifacts_download::handler(&env.store, request).await?;
            let t = started.elapsed().as_secs_f64();
            if response.status() != 200 || bytes(&response) != body {
                return Err(format!("download {mib} MiB: {}", response.status()).into());
            }
            let started = Instant::now();
            let response = http.get(&url).bearer_auth(&token).send().await?;
            let status = response.status();
            let got = response.bytes().await?;
            let h = started.elapsed().as_secs_f64();
            if status != 200 || got != body {
                return Err(format!("download {mib} MiB through the gateway: {status}").into());
            }
            let started = Instant::now();
            let got = s3
                .get_object()
                .bucket(&bucket)
                .key(&raw_key)
                .send()
                .await?
                .body
                .collect()
                .await?
                .into_bytes();
            let r = started.elapsed().as_secs_f64();
            if got.len() != body.len() {
                return Err("raw GET returned other bytes".into());
            }
            if i > 0 {
                ours.push(t);
                raw.push(r);
                via_http.push(h);
            }
        }
        // Where a download's time goes: the same steps, one at a time.
        let record = env
            .store
            .metadata
            .version(ORG, &id, 1)
            .await?
            .ok_or("no version")?;
        let (mut ddb, mut kms, mut get, mut open, mut frame, mut audit) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for _ in 0..runs.min(10) {
            // The metadata read as the handler makes it (the latest version:
            // one GetItem of the artifact item and its copy of the record).
            let t = Instant::now();
            env.store.version(&writer(), &id, None).await?;
            ddb.push(t.elapsed().as_secs_f64());
            // The read's audit record (issued beside the GET and Decrypt).
            let read = artifacts::audit::Record::new(
                artifacts::audit::Action::Downloaded,
                artifacts::audit::Actor::Sub("bench".into()),
                artifacts::audit::Subject::default(),
                &artifacts::audit::Origin::default(),
            );
            let t = Instant::now();
            env.store.record_reads(ORG, &[read]).await?;
            audit.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let key = env.store.data_key(ORG, &id, &record).await?;
            kms.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let sealed = match &record.location {
                artifacts::metadata::Location::S3 { version_id } => {
                    env.store
                        .content
                        .get(&artifacts::content::content_key(ORG, &id), version_id)
                        .await?
                }
                artifacts::metadata::Location::Inline(b) => b.clone(),
            };
            get.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let plain = crypto::open(&key, &sealed)?;
            let _ = Sha256::digest(&plain);
            open.push(t.elapsed().as_secs_f64());
            // What the Lambda runtime adds: base64 of the body inside the
            // JSON response document.
            let t = Instant::now();
            let doc = json!({"statusCode": 200, "isBase64Encoded": true,
                "body": base64::engine::general_purpose::STANDARD.encode(&plain)});
            let framed = serde_json::to_vec(&doc)?;
            frame.push(t.elapsed().as_secs_f64());
            std::hint::black_box(framed);
        }
        out.insert(
            format!("download{mib}MiB"),
            json!({
                "handlerP50": median(ours),
                "httpP50": median(via_http),
                "rawGetP50": median(raw),
                "breakdownP50": {
                    "dynamodbRead": median(ddb),
                    "auditPutItem": median(audit),
                    "kmsDecrypt": median(kms),
                    "s3Get": median(get),
                    "decryptAndHash": median(open),
                    "base64JsonFraming": median(frame),
                },
            }),
        );
    }

    // Upload of 4 MiB: a new version each time, vs a raw PutObject.
    let body = generate(4 * MIB, 9, false);
    let (mut ours, mut raw, mut via_http) = (Vec::new(), Vec::new(), Vec::new());
    let url = edge.url(&format!(
        "/v1/workflows/{WORKFLOW}/artifacts/direct/upload-http.bin"
    ));
    for i in 0..=runs {
        let request = Call::upload(WORKFLOW, "direct/upload.bin", &body)
            .header("content-type", "application/octet-stream")
            .by(&caller)
            .request();
        let started = Instant::now();
        let response = artifacts_upload::handler(&env.store, request).await?;
        let t = started.elapsed().as_secs_f64();
        if !matches!(response.status().as_u16(), 200 | 201) {
            return Err(format!("upload: {}", response.status()).into());
        }
        let started = Instant::now();
        s3.put_object()
            .bucket(&bucket)
            .key("raw/upload.bin")
            .body(ByteStream::from(body.clone()))
            .send()
            .await?;
        let r = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let response = http
            .put(&url)
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(body.clone())
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        let h = started.elapsed().as_secs_f64();
        if !matches!(status.as_u16(), 200 | 201) {
            return Err(format!("upload through the gateway: {status}").into());
        }
        if i > 0 {
            ours.push(t);
            raw.push(r);
            via_http.push(h);
        }
    }
    // Where an upload's time goes: the same steps, one at a time (the
    // handler overlaps the Sign with the data key, seal and PUT).
    let (mut read, mut generate, mut seal, mut put, mut sign) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let probe = artifacts::model::new_artifact_id();
    for _ in 0..runs.min(10) {
        let t = Instant::now();
        env.store
            .metadata
            .artifact_at(ORG, WORKFLOW, "direct/upload.bin")
            .await?;
        read.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let key = env
            .store
            .envelope
            .generate(&artifacts::envelope::KeyContext {
                org: ORG,
                artifact_id: &probe,
                content_id: "bench",
            })
            .await?;
        generate.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let digest = Sha256::digest(&body);
        let sealed = crypto::seal(&key.plaintext, &body);
        seal.push(t.elapsed().as_secs_f64());
        std::hint::black_box(digest);
        let t = Instant::now();
        env.store
            .content
            .put(&artifacts::content::content_key(ORG, &probe), sealed)
            .await?;
        put.push(t.elapsed().as_secs_f64());
        // A publish statement is ~1 KiB; the signature is over its digest.
        let t = Instant::now();
        env.store.signer.sign(&[b'x'; 1024]).await?;
        sign.push(t.elapsed().as_secs_f64());
    }
    out.insert(
        "upload4MiB".into(),
        json!({
            "handlerP50": median(ours),
            "httpP50": median(via_http),
            "rawPutP50": median(raw),
            "breakdownP50": {
                "dynamodbRead": median(read),
                "kmsGenerateDataKey": median(generate),
                "hashAndSeal": median(seal),
                "s3Put": median(put),
                "kmsSign": median(sign),
            },
        }),
    );
    out.insert("runs".into(), json!(runs));
    Ok(Value::Object(out))
}

/// Seed the bundle workflow; writes an env file for `bundle-run`.
async fn bundle_seed(args: &[String]) -> Result<Value, BoxError> {
    let count: usize = arg_or(args, "--count", 16);
    let mib: usize = arg_or(args, "--mib", 16);
    let env_out = arg(args, "--env-out").ok_or("missing --env-out")?;
    let sdk = harness::sdk_config().await;
    let name = format!("bn{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let resources = provision(&sdk, &name).await?;
    let vars: HashMap<String, String> = resources
        .env_lines()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let config = Config::from_lookup(|k| vars.get(k).cloned())?;
    let store = Store::new(config, &sdk);
    let s3 = harness::s3_client(&sdk);
    let principal = writer();
    let started = Instant::now();
    let text_base = generate(mib * MIB, 1, true);
    let noise_base = generate(mib * MIB, 2, false);
    for i in 0..count {
        let text = i % 2 == 0;
        let (path, content_type, mut body) = if text {
            (format!("text/{i:03}.txt"), "text/plain", text_base.clone())
        } else {
            (
                format!("bin/{i:03}.bin"),
                "application/octet-stream",
                noise_base.clone(),
            )
        };
        body[..16].copy_from_slice(format!("{i:016}").as_bytes());
        let upload = store
            .create_upload(
                &principal,
                WORKFLOW,
                UploadRequest {
                    path: path.clone(),
                    artifact_type: None,
                    content_type: Some(content_type.into()),
                    size: body.len() as u64,
                    sha256: None,
                    metadata: None,
                    library: None,
                    retention_days: None,
                    keep_versions: None,
                },
            )
            .await?;
        let key = staging_key(ORG, &upload.upload_id);
        let staged = s3
            .put_object()
            .bucket(&resources.bucket)
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await?;
        let version_id = staged
            .version_id()
            .ok_or("a versioned bucket names the staged version")?;
        match store.ingest(&key, version_id).await? {
            IngestOutcome::Committed { .. } => {}
            other => return Err(format!("ingest of {path}: {other:?}").into()),
        }
        // The seed-001 design stored plaintext objects and zipped those.
        s3.put_object()
            .bucket(&resources.bucket)
            .key(format!("peer/{path}"))
            .body(ByteStream::from(body))
            .send()
            .await?;
    }
    let mut lines = resources.env_lines();
    lines.push_str("ARTIFACTS_PUBLIC_BASE_URL=http://127.0.0.1:9000\n");
    std::fs::write(&env_out, lines)?;
    Ok(json!({
        "count": count,
        "sizeMiB": mib,
        "bucket": resources.bucket,
        "peerPrefix": "peer/",
        "seedSeconds": started.elapsed().as_secs_f64(),
    }))
}

/// The bundle handler in a fresh process built like a cold function.
async fn bundle_run() -> Result<Value, BoxError> {
    let store = Store::from_env().await?;
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let response = artifacts_bundle::handler(
        &store,
        Call::bundle(WORKFLOW).by(&Caller::reader(ORG)).request(),
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    if response.status() != 303 {
        return Err(format!(
            "bundle: {} {}",
            response.status(),
            String::from_utf8_lossy(&bytes(&response))
        )
        .into());
    }
    let url = harness::header(&response, "location").ok_or("no location")?;
    Ok(json!({
        "url": url,
        "handlerSeconds": seconds,
        "rssBeforeKiB": rss_before,
        "peakKiB": peak,
    }))
}

/// Ingest's baseline: stream an object out of S3 and back in as a
/// multipart upload (8 MiB parts, as ingest uses), no crypto.
async fn raw_copy(args: &[String]) -> Result<Value, BoxError> {
    let bucket = arg(args, "--bucket").ok_or("missing --bucket")?;
    let key = arg(args, "--key").ok_or("missing --key")?;
    let sdk = harness::sdk_config().await;
    let s3 = harness::s3_client(&sdk);
    let started = Instant::now();
    let mut body = s3.get_object().bucket(&bucket).key(&key).send().await?.body;
    let target = "rawcopy/object";
    let upload_id = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key(target)
        .send()
        .await?
        .upload_id
        .ok_or("no upload id")?;
    let part_size = artifacts::content::PART_SIZE;
    let (mut buf, mut parts, mut total) = (Vec::with_capacity(part_size), Vec::new(), 0u64);
    loop {
        let chunk = body.try_next().await?;
        let done = chunk.is_none();
        if let Some(c) = chunk {
            total += c.len() as u64;
            buf.extend_from_slice(&c);
        }
        while buf.len() >= part_size || (done && !buf.is_empty()) {
            let rest = buf.split_off(part_size.min(buf.len()));
            let part = std::mem::replace(&mut buf, rest);
            let n = parts.len() as i32 + 1;
            let out = s3
                .upload_part()
                .bucket(&bucket)
                .key(target)
                .upload_id(&upload_id)
                .part_number(n)
                .body(ByteStream::from(part))
                .send()
                .await?;
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(out.e_tag)
                    .build(),
            );
        }
        if done {
            break;
        }
    }
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key(target)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "bytes": total,
        "seconds": seconds,
        "MiBPerSecond": total as f64 / MIB as f64 / seconds,
        "peakKiB": status_kib("VmHWM:"),
    }))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("crypto") => crypto_bench(&args)?,
        Some("direct") => direct_bench(&args).await?,
        Some("bundle-seed") => bundle_seed(&args).await?,
        Some("bundle-run") => bundle_run().await?,
        Some("raw-copy") => raw_copy(&args).await?,
        _ => {
            return Err(
                "usage: bench crypto|direct|bundle-seed --env-out F|bundle-run|raw-copy".into(),
            );
        }
    };
    println!("{result}");
    Ok(())
}
