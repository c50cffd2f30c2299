use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let store = artifacts::Store::from_env().await?;
    artifacts::http::run(|req| artifacts_bundle::handler(&store, req)).await
}
