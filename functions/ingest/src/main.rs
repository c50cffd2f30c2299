use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let store = artifacts::Store::from_env().await?;
    store.config.require_signing_key()?;
    run(service_fn(|event| artifacts_ingest::handler(&store, event))).await
}
