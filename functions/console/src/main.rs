use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let console = artifacts_console::Console::from_env()?;
    artifacts::http::run(|req| artifacts_console::handler(&console, req)).await
}
