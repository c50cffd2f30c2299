use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let store = artifacts::Store::from_env().await?;
    run(service_fn(|event| artifacts_purge::handler(&store, event))).await
}
