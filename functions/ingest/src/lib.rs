//! S3 `Object Created` under `incoming/` → [`artifacts::Store::ingest`].
//!
//! Deployed, events arrive as SQS batches (SPEC §19: bucket → EventBridge →
//! rule on `incoming/` → SQS → this function, `events/sqs-object-created.json`):
//! each record's body is the EventBridge `Object Created` event. The queue
//! keeps a record through an outage of hours; the answer is an
//! [`SqsBatchResponse`] (`ReportBatchItemFailures`) naming the records a
//! retry can fix, which the queue delivers again; every other record,
//! committed or rejected for good, is done and deleted.
//!
//! The function also accepts the two shapes S3 sends without a queue — its
//! own notification (`Records`, `events/s3-put.json`) and the EventBridge
//! event (`events/eventbridge-object-created.json`) — for `cargo lambda
//! invoke` with those files; such an invocation fails (so that its invoker
//! retries) when a retry can help.
//!
//! Events arrive at least once and in any order; ingest is idempotent per
//! upload session, so a repeated event does nothing. Each names the object
//! version it was sent for, and exactly that version is read.

use artifacts::Store;
use artifacts::uploads::IngestOutcome;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

/// One created object as an event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Created {
    bucket: Option<String>,
    /// As delivered (S3 notifications URL-encode it).
    key: Option<String>,
    version_id: Option<String>,
}

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handler(store: &Store, event: LambdaEvent<Value>) -> Result<Value, Error> {
    if is_sqs(&event.payload) {
        let batch: SqsEvent = serde_json::from_value(event.payload)?;
        return Ok(serde_json::to_value(sqs_batch(store, batch).await)?);
    }
    let mut report = Vec::new();
    let mut retryable = 0;
    for created in created_objects(event.payload)? {
        let (outcome, retry) = ingest_one(store, created).await;
        retryable += usize::from(retry);
        report.push(outcome);
    }
    if retryable > 0 {
        return Err(format!("{retryable} upload(s) could not be ingested yet; retry").into());
    }
    Ok(json!({ "records": report }))
}

/// An SQS batch: every record is one queued event; the answer names the
/// records to deliver again.
async fn sqs_batch(store: &Store, batch: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in batch.records {
        let message_id = record.message_id.unwrap_or_default();
        let created = record
            .body
            .as_deref()
            .ok_or_else(|| Error::from("no body"))
            .and_then(|body| Ok(serde_json::from_str::<Value>(body)?))
            .and_then(created_objects);
        let created = match created {
            Ok(created) => created,
            Err(e) => {
                // Not an event of ours; retrying cannot make it one.
                tracing::error!(message_id, error = %e, "dropping an unreadable queued event");
                continue;
            }
        };
        let mut retry = false;
        for object in created {
            let (outcome, failed) = ingest_one(store, object).await;
            tracing::info!(message_id, %outcome, "queued event");
            retry |= failed;
        }
        if retry {
            response.add_failure(message_id);
        }
    }
    response
}

/// Ingest one created object: its report, and whether a retry can help.
async fn ingest_one(store: &Store, created: Created) -> (Value, bool) {
    let ours = created.bucket.as_deref() == Some(store.config.bucket.as_str());
    let Some(key) = created.key.filter(|_| ours) else {
        tracing::warn!(bucket = ?created.bucket, "ignoring an object outside our bucket");
        return (json!({"outcome": "foreign"}), false);
    };
    let Some(version_id) = created.version_id.filter(|v| !v.is_empty() && v != "null") else {
        // The bucket is versioned: every real event names its version, and
        // reading "the newest" instead is what a second PUT could exploit.
        tracing::warn!(key, "ignoring an event without an object version");
        return (json!({"key": key, "outcome": "no-version"}), false);
    };
    // Boxed: the whole ingest state machine inlined into the handler's
    // future overflows the compiler's layout depth limit.
    match Box::pin(store.ingest(&key, &version_id)).await {
        Ok(IngestOutcome::Committed {
            artifact_id,
            version,
        }) => (
            json!({"key": key, "outcome": "committed", "artifactId": artifact_id, "version": version}),
            false,
        ),
        Ok(IngestOutcome::AlreadyDone) => (json!({"key": key, "outcome": "already-done"}), false),
        Ok(IngestOutcome::Rejected(reason)) => (
            json!({"key": key, "outcome": "rejected", "reason": reason}),
            false,
        ),
        Ok(IngestOutcome::Unknown) => (json!({"key": key, "outcome": "unknown"}), false),
        Ok(IngestOutcome::Stale) => (json!({"key": key, "outcome": "stale"}), false),
        Ok(IngestOutcome::Expired) => (json!({"key": key, "outcome": "expired"}), false),
        Err(e) => {
            tracing::error!(error = %e, "ingest failed; the event will be retried");
            (json!({"key": key, "outcome": "failed"}), true)
        }
    }
}

/// An SQS batch (`Records` whose `eventSource` is `aws:sqs`).
fn is_sqs(payload: &Value) -> bool {
    payload["Records"]
        .as_array()
        .and_then(|records| records.first())
        .is_some_and(|r| r["eventSource"] == "aws:sqs")
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
            .map(|r| Created {
                bucket: r.s3.bucket.name,
                key: r.s3.object.key,
                version_id: r.s3.object.version_id,
            })
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
    let object = &event.detail["object"];
    Ok(vec![Created {
        bucket: text(&event.detail["bucket"]["name"]),
        key: text(&object["key"]),
        version_id: text(&object["version-id"]),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let text = match name {
            "s3-put" => include_str!("../../../events/s3-put.json"),
            "s3-multipart" => include_str!("../../../events/s3-multipart.json"),
            "eventbridge" => include_str!("../../../events/eventbridge-object-created.json"),
            "sqs" => include_str!("../../../events/sqs-object-created.json"),
            _ => unreachable!(),
        };
        serde_json::from_str(text).unwrap()
    }

    fn staged(version_id: &str) -> Created {
        Created {
            bucket: Some("artifacts-dev".into()),
            key: Some("incoming/acme/0123456789abcdef0123456789abcdef".into()),
            version_id: Some(version_id.into()),
        }
    }

    #[test]
    fn every_event_shape_names_the_created_object_version() {
        assert_eq!(
            created_objects(fixture("s3-put")).unwrap(),
            vec![staged("096fKKXTRTtl3on89fVO.nfljtsv6qko")]
        );
        assert_eq!(created_objects(fixture("s3-multipart")).unwrap().len(), 1);
        assert_eq!(
            created_objects(fixture("eventbridge")).unwrap(),
            vec![staged("096fKKXTRTtl3on89fVO.nfljtsv6qko")]
        );
        let sqs = fixture("sqs");
        assert!(is_sqs(&sqs));
        assert!(!is_sqs(&fixture("s3-put")));
        assert!(!is_sqs(&fixture("eventbridge")));
        let batch: SqsEvent = serde_json::from_value(sqs).unwrap();
        let body: Value = serde_json::from_str(batch.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(
            created_objects(body).unwrap(),
            vec![staged("b3Ygd0zFx6fLz5vkS8lq3QGUQnJ0N.Qz")]
        );
    }

    #[test]
    fn other_events_name_nothing() {
        let mut removed = fixture("s3-put");
        removed["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
        assert!(created_objects(removed).unwrap().is_empty());
        let mut deleted = fixture("eventbridge");
        deleted["detail-type"] = json!("Object Deleted");
        assert!(created_objects(deleted).unwrap().is_empty());
        assert!(created_objects(json!({"hello": "world"})).is_err());
    }
}
