use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let store = artifacts::Store::from_env().await?;
    artifacts::links::check_config(&store.config)?;
    artifacts::http::run(|req| artifacts_presign::handler(&store, req)).await
}
