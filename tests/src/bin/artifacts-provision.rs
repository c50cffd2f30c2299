//! Provision the table, bucket and keys for local development on whatever
//! `AWS_ENDPOINT_URL` names, and print them as `KEY=VALUE` lines.
//! Usage: `artifacts-provision --name dev` (idempotent for the same name).

use harness::{BoxError, provision};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let name = match args.iter().position(|a| a == "--name") {
        Some(i) => args.get(i + 1).cloned().ok_or("--name needs a value")?,
        None => "dev".to_owned(),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("--name must be lowercase letters, digits and '-'".into());
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if sdk.endpoint_url().is_none() {
        return Err("AWS_ENDPOINT_URL is not set: this provisions an emulator, not an AWS account (use `sam deploy` there)".into());
    }
    let resources = provision(&sdk, &name).await?;
    print!("{}", resources.env_lines());
    Ok(())
}
