use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    artifacts::telemetry::init();
    let notify = artifacts_notify::Notify::from_env()?;
    run(service_fn(|event| {
        artifacts_notify::handler(&notify, event)
    }))
    .await
}
