//! S3 `Object Created` under `incoming/` → [`artifacts::Store::ingest`].
//!
//! Accepts both shapes S3 delivers: its own notification (`Records`, as in
//! `events/s3-put.json`) and the EventBridge `Object Created` event (as in
//! `events/eventbridge-object-created.json`; the SAM template routes it this
//! way, which needs no bucket-to-function reference). Events arrive at least
//! once and in any order; ingest is idempotent per upload session, so a
//! repeated event does nothing. The invocation fails (and Lambda retries it)
//! only when a retry can help; an upload that broke its session's terms is
//! rejected and removed instead.

use artifacts::Store;
use artifacts::uploads::IngestOutcome;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

/// One created object: (bucket, key as delivered).
type Created = (Option<String>, Option<String>);

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handler(store: &Store, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let mut report = Vec::new();
    let mut retryable = 0;
    for (bucket, key) in created_objects(event.payload)? {
        let ours = bucket.as_deref() == Some(store.config.bucket.as_str());
        let Some(key) = key.filter(|_| ours) else {
            tracing::warn!(?bucket, "ignoring an object outside our bucket");
            continue;
        };
        let outcome = match store.ingest(&key).await {
            Ok(IngestOutcome::Committed {
                artifact_id,
                version,
            }) => {
                json!({"key": key, "outcome": "committed", "artifactId": artifact_id, "version": version})
            }
            Ok(IngestOutcome::AlreadyDone) => json!({"key": key, "outcome": "already-done"}),
            Ok(IngestOutcome::Rejected(reason)) => {
                json!({"key": key, "outcome": "rejected", "reason": reason})
            }
            Ok(IngestOutcome::Unknown) => json!({"key": key, "outcome": "unknown"}),
            Err(e) => {
                tracing::error!(error = %e, "ingest failed; the event will be retried");
                retryable += 1;
                json!({"key": key, "outcome": "failed"})
            }
        };
        report.push(outcome);
    }
    if retryable > 0 {
        return Err(format!("{retryable} upload(s) could not be ingested yet; retry").into());
    }
    Ok(json!({ "records": report }))
}

/// The objects an event says were created, whichever way S3 sent it.
fn created_objects(payload: Value) -> Result<Vec<Created>, Error> {
    if payload.get("Records").is_some() {
        let event: S3Event = serde_json::from_value(payload)?;
        return Ok(event
            .records
            .into_iter()
            .filter(|r| {
                r.event_name
                    .as_deref()
                    .is_some_and(|name| name.starts_with("ObjectCreated:"))
            })
            .map(|r| (r.s3.bucket.name, r.s3.object.key))
            .collect());
    }
    let event: EventBridgeEvent<Value> = serde_json::from_value(payload)?;
    if event.source != "aws.s3" || event.detail_type != "Object Created" {
        tracing::warn!(
            source = event.source,
            detail_type = event.detail_type,
            "not an S3 Object Created event"
        );
        return Ok(Vec::new());
    }
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Ok(vec![(
        text(&event.detail["bucket"]["name"]),
        text(&event.detail["object"]["key"]),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_event_shapes_name_the_created_object() {
        let s3: Value = serde_json::from_str(include_str!("../../../events/s3-put.json")).unwrap();
        assert_eq!(
            created_objects(s3).unwrap(),
            vec![(
                Some("artifacts-dev".into()),
                Some("incoming/acme/0123456789abcdef0123456789abcdef".into())
            )]
        );
        let multipart: Value =
            serde_json::from_str(include_str!("../../../events/s3-multipart.json")).unwrap();
        assert_eq!(created_objects(multipart).unwrap().len(), 1);
        let bridge: Value = serde_json::from_str(include_str!(
            "../../../events/eventbridge-object-created.json"
        ))
        .unwrap();
        assert_eq!(
            created_objects(bridge).unwrap(),
            vec![(
                Some("artifacts-dev".into()),
                Some("incoming/acme/0123456789abcdef0123456789abcdef".into())
            )]
        );
    }

    #[test]
    fn other_events_name_nothing() {
        let mut removed: Value =
            serde_json::from_str(include_str!("../../../events/s3-put.json")).unwrap();
        removed["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
        assert!(created_objects(removed).unwrap().is_empty());
        let mut deleted: Value = serde_json::from_str(include_str!(
            "../../../events/eventbridge-object-created.json"
        ))
        .unwrap();
        deleted["detail-type"] = json!("Object Deleted");
        assert!(created_objects(deleted).unwrap().is_empty());
        assert!(created_objects(json!({"hello": "world"})).is_err());
    }
}
