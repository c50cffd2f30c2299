//! `artifacts-gateway`: the local API Gateway of `make dev`.
//!
//! ```text
//! artifacts-gateway [--listen 127.0.0.1:9000] [--template infra/template.yaml]
//!                   [--invoke-url http://127.0.0.1:9001] [--invoke-timeout-secs 900]
//! ```
//!
//! The dev JWT secret comes from `ARTIFACTS_DEV_JWT_SECRET` (the one
//! `make token` signs with); without it every guarded route answers 401.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gateway::event::Stage;
use gateway::{Gateway, InvokeApi, Routes};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    artifacts::telemetry::init();
    let mut listen: SocketAddr = "127.0.0.1:9000".parse()?;
    let mut template = String::from("infra/template.yaml");
    let mut invoke_url = String::from("http://127.0.0.1:9001");
    // cargo lambda watch builds a function on its first invocation.
    let mut timeout = Duration::from_secs(900);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = value()?.parse()?,
            "--template" => template = value()?,
            "--invoke-url" => invoke_url = value()?,
            "--invoke-timeout-secs" => timeout = Duration::from_secs(value()?.parse()?),
            "-h" | "--help" => {
                println!(
                    "artifacts-gateway [--listen 127.0.0.1:9000] [--template infra/template.yaml] \
                     [--invoke-url http://127.0.0.1:9001] [--invoke-timeout-secs 900]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    let yaml = std::fs::read_to_string(&template).map_err(|e| format!("{template}: {e}"))?;
    let routes = Routes::from_template(&yaml)?;
    let jwt_secret = std::env::var("ARTIFACTS_DEV_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes);
    if jwt_secret.is_none() {
        tracing::warn!("ARTIFACTS_DEV_JWT_SECRET is not set: every guarded route answers 401");
    }
    let gateway = Arc::new(Gateway {
        routes,
        invoker: Arc::new(InvokeApi::new(&invoke_url, timeout)?),
        jwt_secret,
        stage: Stage::default(),
    });
    for route in gateway.routes.iter() {
        tracing::info!(route = %route.key(), function = %route.function, jwt = route.authorized, "route");
    }
    let (bound, task) = gateway.serve(listen).await?;
    eprintln!("gateway: listening on http://{bound} (functions via {invoke_url})");
    task.await?;
    Ok(())
}
