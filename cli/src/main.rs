//! `artifacts`: the command-line client of the artifact store (SPEC §15).
//! A client of the public HTTP API only. See `artifacts --help`.

mod api;
mod args;
mod audit;
mod bundle;
mod digest;
mod error;
mod get;
mod lifecycle;
mod links;
mod list;
mod paths;
mod put;
mod refs;
mod ui;
mod verify;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::api::{Api, Retry};
use crate::args::{Cli, Command, Format, Global};
use crate::error::{CliError, Kind, Result, exit_code};

/// What every command needs.
pub struct Ctx {
    pub api: Api,
    pub format: Format,
    pub quiet: bool,
}

fn token(global: &Global) -> Result<String> {
    let token = match (&global.token, &global.token_file) {
        (Some(t), _) => t.trim().to_owned(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| CliError::usage(format!("--token-file {}: {e}", file.display())))?
            .trim()
            .to_owned(),
        (None, None) => String::new(),
    };
    if token.is_empty() {
        return Err(CliError::auth(
            "no token: set ARTIFACTS_TOKEN, --token or --token-file",
        ));
    }
    Ok(token)
}

fn context(global: &Global, require_token: bool) -> Result<Ctx> {
    let base = global
        .api
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CliError::usage("no API: set ARTIFACTS_API or --api"))?;
    let retry = Retry {
        retries: global.retries,
        base: Duration::from_millis(200),
        cap: Duration::from_secs(10),
    };
    Ok(Ctx {
        api: Api::new(
            base,
            match token(global) {
                Ok(t) => t,
                Err(_) if !require_token => String::new(),
                Err(e) => return Err(e),
            },
            retry,
        )?,
        format: global.format,
        quiet: global.quiet,
    })
}

/// Run the command; the kinds of the operations that failed.
async fn run(cli: Cli) -> Result<Vec<Kind>> {
    if let Command::Completions(c) = &cli.command {
        let mut command = Cli::command();
        clap_complete::generate(c.shell, &mut command, "artifacts", &mut std::io::stdout());
        return Ok(Vec::new());
    }
    // Offline: no API, no token.
    match cli.command {
        Command::Verify(a) => {
            return verify::file(cli.global.format, a)
                .await
                .map(|()| Vec::new());
        }
        Command::VerifyBundle(a) => {
            return verify::bundle(cli.global.format, a)
                .await
                .map(|()| Vec::new());
        }
        Command::Key(a) => {
            // Public: a token is sent when there is one, never required.
            let ctx = context(&cli.global, false)?;
            return verify::key(&ctx, a).await.map(|()| Vec::new());
        }
        _ => {}
    }
    let ctx = context(&cli.global, true)?;
    match cli.command {
        Command::Put(a) => put::run(&ctx, a).await,
        Command::Get(a) => get::run(&ctx, a).await,
        Command::Ls(a) => list::ls(&ctx, a).await.map(|()| Vec::new()),
        Command::Versions(a) => list::versions(&ctx, a).await.map(|()| Vec::new()),
        Command::Bundle(a) => bundle::run(&ctx, a).await.map(|()| Vec::new()),
        Command::Link(a) => links::link(&ctx, a).await.map(|()| Vec::new()),
        Command::Links(a) => links::links(&ctx, a).await.map(|()| Vec::new()),
        Command::Revoke(a) => links::revoke(&ctx, a).await.map(|()| Vec::new()),
        Command::Rm(a) => lifecycle::rm(&ctx, a).await,
        Command::Restore(a) => lifecycle::restore(&ctx, a).await,
        Command::Audit(a) => audit::run(&ctx, a).await.map(|()| Vec::new()),
        Command::Completions(_)
        | Command::Verify(_)
        | Command::VerifyBundle(_)
        | Command::Key(_) => Ok(Vec::new()),
    }
}

fn main() -> ExitCode {
    // Usage errors exit 2 (clap's own convention), --help/--version 0.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("artifacts: error: cannot start: {e}");
            return ExitCode::from(Kind::Failed.code());
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            outcome = run(cli) => match outcome {
                Ok(failures) => exit_code(&failures),
                Err(e) => {
                    eprintln!("artifacts: error: {e}");
                    e.kind.code()
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("artifacts: interrupted; run the same command again to resume");
                Kind::Interrupted.code()
            }
        }
    });
    // Don't wait for blocking work still in flight (hashing a large file).
    runtime.shutdown_background();
    ExitCode::from(code)
}
