//! Peak memory of ingesting one presigned upload, measured in a process of
//! its own (driven by `bench/ingest-memory.sh`).
//!
//! `prepare --size-mib N --curl-config F`: provision, open an upload session
//! for N MiB, print the shell assignments the script needs (key, env) and
//! write the presigned PUT (URL, signed headers) as a curl config to F.
//! `ingest --key K --size-bytes B`: cold-start a store from the environment
//! like the Lambda does, ingest the staged object through the real handler,
//! and print the outcome with this process's peak RSS (`VmHWM`).

use std::fmt::Write as _;

use artifacts::auth::Principal;
use artifacts::uploads::{UploadRequest, staging_key};
use harness::{BoxError, provision};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

fn arg(args: &[String], name: &str) -> Result<String, BoxError> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .ok_or_else(|| format!("missing {name}").into())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("prepare") => {
            let size = arg(&args, "--size-mib")?.parse::<u64>()? * 1024 * 1024;
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let resources = provision(&sdk, &name).await?;
            let vars: std::collections::HashMap<String, String> = resources
                .env_lines()
                .lines()
                .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect();
            let config = artifacts::Config::from_lookup(|k| vars.get(k).cloned())?;
            let store = artifacts::Store::new(config, &sdk);
            let principal = Principal {
                org: "bench".into(),
                subject: "bench".into(),
                scopes: vec!["artifacts:write".into()],
            };
            let request = UploadRequest {
                path: "bench/upload.bin".into(),
                artifact_type: None,
                content_type: Some("application/octet-stream".into()),
                size,
                sha256: None,
                metadata: None,
                library: None,
                retention_days: None,
                keep_versions: None,
            };
            let upload = store.create_upload(&principal, "bench", request).await?;
            let mut out = resources.env_lines().replace('\n', "\nexport ");
            out.insert_str(0, "export ");
            let _ = writeln!(out, "KEY='{}'", staging_key("bench", &upload.upload_id));
            let _ = writeln!(out, "SIZE_BYTES={size}");
            print!("{}", out.replace("export \n", ""));
            // The PUT, as a curl config: the URL and exactly the signed headers.
            let mut curl = format!("url = \"{}\"\n", upload.url);
            for (name, value) in upload
                .headers
                .iter()
                .filter(|(k, _)| *k != "content-length")
            {
                let _ = writeln!(curl, "header = \"{name}: {value}\"");
            }
            std::fs::write(arg(&args, "--curl-config")?, curl)?;
            Ok(())
        }
        Some("ingest") => {
            let key = arg(&args, "--key")?;
            let size: u64 = arg(&args, "--size-bytes")?.parse()?;
            let store = artifacts::Store::from_env().await?;
            let cold = peak_rss_kib();
            let mut event: Value =
                serde_json::from_str(include_str!("../../../events/s3-put.json"))?;
            // Ingest reads exactly the version the event names: the one PUT.
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let version_id = harness::s3_client(&sdk)
                .head_object()
                .bucket(&store.config.bucket)
                .key(&key)
                .send()
                .await?
                .version_id()
                .ok_or("the staged upload has no version id")?
                .to_owned();
            let s3 = &mut event["Records"][0]["s3"];
            s3["bucket"]["name"] = Value::from(store.config.bucket.clone());
            s3["object"]["key"] = Value::from(key);
            s3["object"]["size"] = Value::from(size);
            s3["object"]["versionId"] = Value::from(version_id);
            let started = std::time::Instant::now();
            let report =
                artifacts_ingest::handler(&store, LambdaEvent::new(event, Context::default()))
                    .await?;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({
                    "outcome": report["records"][0]["outcome"],
                    "sizeMiB": size as f64 / 1048576.0,
                    "seconds": seconds,
                    "MiBPerSecond": size as f64 / 1048576.0 / seconds,
                    "peakRssAfterColdStartKiB": cold,
                    "peakRssKiB": peak_rss_kib(),
                })
            );
            Ok(())
        }
        _ => Err(
            "usage: artifacts-bench-ingest prepare --size-mib N | ingest --key K --size-bytes B"
                .into(),
        ),
    }
}
