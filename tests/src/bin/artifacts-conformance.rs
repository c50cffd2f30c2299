//! The API on a real loopback listener for `make conformance`
//! (scripts/conformance.sh): the local gateway (routes from
//! `infra/template.yaml`, JWT authorizer emulation) in front of the REAL
//! handlers called in-process, against a freshly provisioned table, bucket
//! and keys on the emulator (`AWS_ENDPOINT_URL`, or a moto server started
//! for this process) — `harness::edge::Edge`, as the edge tests use it.
//!
//! Usage: `artifacts-conformance --info-file PATH [--max-secs 900]`. Once
//! listening it writes `{"url", "tokens": {"<org>": "<bearer JWT>"}}` to
//! PATH: read+write dev tokens for two orgs (`conf-a`, `conf-b`) and a
//! read-only one (`conf-a-reader`, org `conf-a`). It serves until killed, or
//! for `--max-secs` at most.

use std::time::Duration;

use harness::BoxError;
use harness::edge::Edge;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    artifacts::telemetry::init();
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let info_file = value("--info-file").ok_or("--info-file PATH is required")?;
    let max_secs: u64 = value("--max-secs").map_or(Ok(900), |v| v.parse())?;

    let edge = Edge::start().await;
    let rw = json!("artifacts:read artifacts:write");
    let info = json!({
        "url": edge.url(""),
        "tokens": {
            "conf-a": edge.token("conf-a", rw.clone()),
            "conf-b": edge.token("conf-b", rw),
            "conf-a-reader": edge.token("conf-a", json!("artifacts:read")),
        },
    });
    // Written whole, then renamed: a reader never sees half a file.
    let partial = format!("{info_file}.partial");
    std::fs::write(&partial, serde_json::to_vec(&info)?)?;
    std::fs::rename(&partial, &info_file)?;
    eprintln!("conformance: listening on {}", edge.url(""));
    tokio::time::sleep(Duration::from_secs(max_secs)).await;
    Ok(())
}
