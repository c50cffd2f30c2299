//! Deliver upload events under `make dev` the way the deployed stack does:
//! poll the ingest queue `artifacts-provision` made and invoke
//! `artifacts-ingest` through `cargo lambda watch`'s Invoke API, standing in
//! for Lambda's SQS event source mapping (tests/src/poller.rs).
//! Usage: `artifacts-poller --invoke-url http://127.0.0.1:9001 [--name dev]
//! [--function artifacts-ingest]`, with `AWS_ENDPOINT_URL` naming the emulator.

use harness::poller::{HttpInvoke, Poller};
use harness::{BoxError, ingest_queue_name};

fn arg(args: &[String], name: &str) -> Result<Option<String>, BoxError> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(Some(
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))?,
        )),
        None => Ok(None),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let invoke_url = arg(&args, "--invoke-url")?
        .ok_or("--invoke-url (the base URL of cargo lambda watch's Invoke API) is required")?;
    let name = arg(&args, "--name")?.unwrap_or_else(|| "dev".into());
    let function = arg(&args, "--function")?.unwrap_or_else(|| "artifacts-ingest".into());
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if sdk.endpoint_url().is_none() {
        return Err("AWS_ENDPOINT_URL is not set: this polls an emulator's queue (deployed, Lambda's event source mapping does)".into());
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = ingest_queue_name(&name);
    let queue_url = sqs
        .get_queue_url()
        .queue_name(&queue)
        .send()
        .await
        .map_err(|e| format!("no queue {queue} (run artifacts-provision --name {name}): {e:?}"))?
        .queue_url()
        .ok_or("GetQueueUrl returned no URL")?
        .to_owned();
    let poller = Poller::new(sqs, &queue_url).await?;
    let invoke = HttpInvoke::new(&invoke_url, &function)?;
    eprintln!("poller: {queue} → {function} at {invoke_url}");
    poller.run(&invoke).await;
    Ok(())
}
