//! The scheduled purge (SPEC §12): every 15 minutes (an EventBridge rule in
//! the template; any event will do, e.g. `cargo lambda invoke artifacts-purge
//! --data-ascii '{}'`), remove for good what is due. See `artifacts::purge`.
//!
//! Bounded: it stops [`SAFETY_MARGIN`] before the Lambda deadline (and after
//! `maxItems` items when the event names it) and reports what remains; the
//! next run picks up where it stopped.

use std::time::{Duration, Instant, SystemTime};

use artifacts::Store;
use artifacts::audit::Origin;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// Time kept free before the function's deadline.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(10);
/// Items purged per run at most, unless the event says fewer.
pub const MAX_ITEMS: u64 = 10_000;

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handler(store: &Store, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let deadline = run_deadline(event.context.deadline);
    let max = event
        .payload
        .get("maxItems")
        .and_then(Value::as_u64)
        .map_or(MAX_ITEMS, |m| m.min(MAX_ITEMS));
    // Records of the purge name this invocation.
    let origin = Origin {
        request_id: Some(event.context.request_id.clone()).filter(|id| !id.is_empty()),
        ..Origin::default()
    };
    let report = store
        .purge_due(time::OffsetDateTime::now_utc(), deadline, max, &origin)
        .await?;
    tracing::info!(
        artifacts = report.artifacts,
        versions = report.versions,
        skipped = report.skipped,
        failed = report.failed,
        remaining = report.remaining,
        "purge run"
    );
    Ok(serde_json::to_value(report)?)
}

/// When to stop: [`SAFETY_MARGIN`] before the invocation's deadline (epoch
/// milliseconds; 0 or absent locally: 14 minutes from now).
pub fn run_deadline(deadline_ms: u64) -> Instant {
    let now = Instant::now();
    let left = if deadline_ms == 0 {
        Duration::from_secs(14 * 60)
    } else {
        SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_millis(deadline_ms))
            .and_then(|d| d.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::ZERO)
    };
    now + left.saturating_sub(SAFETY_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_keeps_a_margin() {
        let in_a_minute = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 60_000;
        let d = run_deadline(in_a_minute);
        let left = d.saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_secs(50) && left > Duration::from_secs(45));
        // A past deadline leaves nothing.
        assert!(
            run_deadline(1_000).saturating_duration_since(Instant::now()) < Duration::from_secs(1)
        );
    }
}
