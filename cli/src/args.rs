//! The command line (clap derive). `artifacts --help` is the reference.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "artifacts",
    version,
    about = "Store, find and fetch workflow artifacts: parallel, resumable, verified transfers.",
    after_help = "Exit codes: 0 success, 1 an operation failed, 2 usage error, 3 not found, \
                  4 authentication/authorisation (401/403), 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The API's base URL, e.g. http://127.0.0.1:9000.
    #[arg(long, env = "ARTIFACTS_API", global = true)]
    pub api: Option<String>,
    /// Bearer token (never printed).
    #[arg(long, env = "ARTIFACTS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Read the bearer token from this file instead.
    #[arg(long, global = true, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Output format of the data written to stdout.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// No progress bars and no summary on stderr (errors are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Retries of a request on 429, 5xx or a broken connection (with
    /// exponential back-off and jitter); other errors are never retried.
    #[arg(long, default_value_t = 4, global = true)]
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload files and directories (recursively, with their relative paths).
    Put(PutArgs),
    /// Download artifacts: resumable, sha256-verified, never outside -D.
    Get(GetArgs),
    /// List a workflow's artifacts, or the org-wide library.
    Ls(LsArgs),
    /// One artifact's version history, newest first.
    Versions(VersionsArgs),
    /// Download a workflow run as one ZIP (optionally verified against its MANIFEST.json).
    Bundle(BundleArgs),
    /// Create an expiring download link (no token needed to use it).
    Link(LinkArgs),
    /// The live links of an artifact.
    Links(LinksArgs),
    /// Revoke a link at once.
    Revoke(RevokeArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Delete artifacts (restorable until the purge), or purge them at once (admin).
    Rm(RmArgs),
    /// Bring deleted artifacts back from the trash.
    Restore(RestoreArgs),
    /// The audit trail: one artifact's, or the org's (admin scope).
    Audit(AuditArgs),
    /// Check a file against its publish attestation, offline (signature and sha256).
    Verify(VerifyArgs),
    /// Check a bundle ZIP offline: MANIFEST.json's signature, then every entry against it.
    VerifyBundle(VerifyBundleArgs),
    /// Save the public key attestations and bundles verify with (GET /v1/signing-key).
    Key(KeyArgs),
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Files and directories to upload.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub sources: Vec<PathBuf>,
    /// The workflow (run) the artifacts belong to.
    #[arg(long, short)]
    pub workflow: String,
    /// artifactType of every file.
    #[arg(long = "type", short = 't')]
    pub artifact_type: Option<String>,
    /// Prepended to every artifact path (a directory, e.g. `docs/`).
    #[arg(long, short)]
    pub prefix: Option<String>,
    /// A label (metadata) `key=value`; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Stored content type (default: guessed from the file extension).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Keep each version this many days (needs the server's retention feature).
    #[arg(long)]
    pub retention_days: Option<u32>,
    /// Publish to the org's library (needs the server's library feature).
    #[arg(long)]
    pub library: bool,
    /// Skip files whose relative path matches this glob; repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Files transferred at once.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Skip files whose sha256 is already the artifact's latest version.
    #[arg(long)]
    pub skip_unchanged: bool,
    /// Show what would be uploaded; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for a large upload's version to appear, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait_timeout: u64,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to fetch: an artifactId, `WORKFLOW:PATH` (`WORKFLOW:` or a path
    /// ending in `/` selects everything under it), or
    /// `artifact://WORKFLOW/PATH[@V]` / `artifact://id/ID[@V]`.
    #[arg(required = true, value_name = "REF")]
    pub refs: Vec<String>,
    /// This version instead of the latest.
    #[arg(long, short = 'V')]
    pub version: Option<u64>,
    /// Write one artifact to this file (`-` for stdout).
    #[arg(long, short, conflicts_with = "dir")]
    pub output: Option<PathBuf>,
    /// Write artifacts under this directory, at their paths (default `.`);
    /// nothing is ever written outside it.
    #[arg(long = "dir", short = 'D')]
    pub dir: Option<PathBuf>,
    /// Only artifacts whose path matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub pattern: Option<String>,
    /// Leave files that already exist untouched.
    #[arg(long)]
    pub no_clobber: bool,
    /// Files transferred at once.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// One workflow's artifacts (path order); without it, the library (newest first).
    #[arg(long, short)]
    pub workflow: Option<String>,
    /// Only this artifactType.
    #[arg(long = "type", short = 't')]
    pub artifact_type: Option<String>,
    /// Only paths starting with this.
    #[arg(long, short)]
    pub prefix: Option<String>,
    /// Library only: created after (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub created_after: Option<String>,
    /// Library only: created before (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub created_before: Option<String>,
    /// Any other filter of the listing API, `name=value`; repeatable
    /// (e.g. `label=team=core`, `q=plan` where the server has them).
    #[arg(long = "filter", value_name = "NAME=VALUE")]
    pub filters: Vec<String>,
    /// Include every artifact's versions.
    #[arg(long)]
    pub versions: bool,
    /// Stop after this many artifacts.
    #[arg(long)]
    pub max: Option<usize>,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// An artifactId or another reference (see `get`).
    pub artifact: String,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The workflow.
    pub workflow: String,
    /// Where to write the ZIP.
    #[arg(long, short)]
    pub output: PathBuf,
    #[arg(long, short)]
    pub prefix: Option<String>,
    #[arg(long = "type", short = 't')]
    pub artifact_type: Option<String>,
    /// Pin an artifact to a version, `ID:V`; repeatable.
    #[arg(long = "pin", value_name = "ID:V")]
    pub pins: Vec<String>,
    /// Check every entry against MANIFEST.json (sizes, sha256, nothing missing or extra).
    #[arg(long)]
    pub verify: bool,
    /// Also check MANIFEST.json.sig with this public key (PEM, from `artifacts key`);
    /// implies --verify.
    #[arg(long, value_name = "KEY.pem")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The downloaded file.
    pub file: PathBuf,
    /// Its attestation (DSSE JSON, from GET /v1/artifacts/{id}/versions/{v}/attestation).
    #[arg(long, short, value_name = "ATTESTATION.json")]
    pub attestation: PathBuf,
    /// The signing public key (PEM, from `artifacts key`). Required: the check is offline.
    #[arg(long, short, value_name = "KEY.pem")]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The bundle ZIP.
    pub file: PathBuf,
    /// The signing public key (PEM, from `artifacts key`). Required: the check is offline.
    #[arg(long, short, value_name = "KEY.pem")]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Write the PEM here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// An artifactId or another reference (see `get`).
    pub artifact: String,
    #[arg(long, short = 'V')]
    pub version: Option<u64>,
    /// Lifetime: seconds or a number with s, m, h or d (default 1h, at most 7d).
    #[arg(long, short)]
    pub expires: Option<String>,
}

#[derive(Debug, Args)]
pub struct LinksArgs {
    /// An artifactId or another reference (see `get`).
    pub artifact: String,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub link_id: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// artifactIds (or `WORKFLOW:PATH` references, see `get`).
    #[arg(required = true, value_name = "ID")]
    pub artifacts: Vec<String>,
    /// Remove for good at once instead of into the trash (needs `artifacts:admin`).
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// artifactIds of deleted artifacts.
    #[arg(required = true, value_name = "ID")]
    pub artifacts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// One artifact's trail (also after it was deleted); without it, the org's.
    #[arg(value_name = "ID")]
    pub artifact: Option<String>,
    /// Only this action, e.g. `artifact.deleted`, `artifact.downloaded`.
    #[arg(long)]
    pub action: Option<String>,
    /// Only records of this actor (a token's subject).
    #[arg(long)]
    pub subject: Option<String>,
    /// Only records about this workflow.
    #[arg(long, short)]
    pub workflow: Option<String>,
    /// Records at or after this instant (RFC 3339).
    #[arg(long)]
    pub after: Option<String>,
    /// Records before this instant (RFC 3339).
    #[arg(long)]
    pub before: Option<String>,
    /// Records per page (the server's default without it).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: Option<u16>,
    /// Continue after a previous page (its `nextCursor`).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow `nextCursor` to the last page.
    #[arg(long)]
    pub all: bool,
}
