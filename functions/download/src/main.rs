use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let store = artifacts::Store::from_env().await?;
    artifacts::links::check_config(&store.config)?;
    run(service_fn(|req| artifacts_download::handler(&store, req))).await
}
