use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let store = artifacts::Store::from_env().await?;
    store.config.require_signing_key()?;
    artifacts::http::run(|req| artifacts_upload::handler(&store, req)).await
}
