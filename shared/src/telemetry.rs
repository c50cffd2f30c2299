//! Logging: `tracing` to stdout, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON` (set
//! by the template), at the level of `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`,
//! else INFO — what the Lambda runtime's own subscriber does, minus its
//! per-target filter syntax (a regex engine in every binary): a level is one
//! of `error`, `warn`, `info`, `debug`, `trace`, `off`. Content, keys and
//! tokens are never logged.

use std::str::FromStr;
use tracing_subscriber::filter::LevelFilter;

pub fn init() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let level = var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| var("RUST_LOG"))
        .map_or(LevelFilter::INFO, |v| level(&v));
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    // A second init (tests that start several functions) keeps the first.
    let _ = if json {
        logs.json().try_init()
    } else {
        logs.try_init()
    };
}

/// The level named by `value`; INFO for anything else (as the runtime does).
/// A `RUST_LOG` with directives (`info,hyper=warn`) takes its first level.
fn level(value: &str) -> LevelFilter {
    value
        .split(',')
        .find_map(|part| LevelFilter::from_str(part.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level("DEBUG"), LevelFilter::DEBUG);
        assert_eq!(level("warn"), LevelFilter::WARN);
        assert_eq!(level("info,hyper=warn"), LevelFilter::INFO);
        assert_eq!(level("nonsense"), LevelFilter::INFO);
        assert_eq!(level("off"), LevelFilter::OFF);
    }
}
