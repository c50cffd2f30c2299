//! Change events (SPEC §13): the table's DynamoDB stream (`NEW_IMAGE`) →
//! one EventBridge event per change record on `ARTIFACTS_EVENT_BUS` (the
//! default bus when unset).
//!
//! The event source mapping passes only audit records of changes (`kind =
//! change`, see `infra/template.yaml`); anything else that still arrives
//! (a read, a refusal, any other item) is skipped. Each change record
//! becomes `source: "artifacts"`, a `detail-type` from [`detail_type`], and
//! `detail` = the record with `org` (and its `recordId`, on which consumers
//! dedupe: a stream retry may deliver a record again, always with the same
//! id).
//!
//! Failures are per record (`ReportBatchItemFailures`): a record that cannot
//! be read, or whose event EventBridge did not accept, is named by its
//! sequence number; the others are published. Lambda retries from the
//! first named record (bisecting, a bounded number of times) and then sends
//! what still fails to the mapping's on-failure queue.

use std::collections::HashMap;

use artifacts::audit::{Action, Record};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// The `source` of every event.
pub const SOURCE: &str = "artifacts";
/// PutEvents takes at most this many entries.
const PUT_EVENTS_MAX: usize = 10;

/// The `detail-type` of a change, or `None` for what is not published
/// (reads; link creation and revocation, which change no artifact).
pub fn detail_type(action: Action) -> Option<&'static str> {
    match action {
        Action::VersionCreated => Some("Artifact Version Created"),
        Action::ArtifactUpdated | Action::HoldSet | Action::HoldReleased => {
            Some("Artifact Updated")
        }
        Action::ArtifactDeleted => Some("Artifact Deleted"),
        Action::ArtifactRestored => Some("Artifact Restored"),
        Action::ArtifactExpired => Some("Artifact Expired"),
        Action::ArtifactPurged => Some("Artifact Purged"),
        Action::VersionDeleted => Some("Version Deleted"),
        Action::LinkCreated
        | Action::LinkRevoked
        | Action::Downloaded
        | Action::LinkUsed
        | Action::Bundled
        | Action::BundleEntry
        | Action::AuditRead => None,
    }
}

/// The EventBridge client and the bus, built once per cold start.
#[derive(Debug, Clone)]
pub struct Notify {
    pub events: aws_sdk_eventbridge::Client,
    /// `ARTIFACTS_EVENT_BUS`; `None` is the account's default bus.
    pub bus: Option<String>,
}

impl Notify {
    /// Fails fast when the environment lacks a region (see `artifacts::sdk`).
    pub fn from_env() -> Result<Self, artifacts::config::ConfigError> {
        let sdk = artifacts::sdk::config_from_lookup(|name| std::env::var(name).ok())?;
        Ok(Notify {
            events: aws_sdk_eventbridge::Client::new(&sdk),
            bus: std::env::var("ARTIFACTS_EVENT_BUS")
                .ok()
                .filter(|b| !b.trim().is_empty()),
        })
    }
}

/// What one stream record is.
#[derive(Debug)]
enum Parsed {
    /// A change to publish: (event detail-type, detail JSON).
    Publish(&'static str, String),
    /// Nothing to publish.
    Skip,
}

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handler(
    notify: &Notify,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error> {
    let records = match event.payload.get("Records") {
        Some(Value::Array(records)) => records.clone(),
        _ => return Err("not a DynamoDB stream event (no Records)".into()),
    };
    let mut failed: Vec<String> = Vec::new();
    // (sequence number, entry) of the changes to publish, in stream order.
    let mut entries: Vec<(String, PutEventsRequestEntry)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let sequence = record
            .pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("#{i}"));
        match parse(record) {
            Ok(Parsed::Skip) => {}
            Ok(Parsed::Publish(detail_type, detail)) => {
                let mut entry = PutEventsRequestEntry::builder()
                    .source(SOURCE)
                    .detail_type(detail_type)
                    .detail(detail);
                if let Some(bus) = &notify.bus {
                    entry = entry.event_bus_name(bus);
                }
                entries.push((sequence, entry.build()));
            }
            Err(reason) => {
                tracing::error!(sequence, reason, "unreadable stream record");
                failed.push(sequence);
            }
        }
    }
    for chunk in entries.chunks(PUT_EVENTS_MAX) {
        let sent = notify
            .events
            .put_events()
            .set_entries(Some(chunk.iter().map(|(_, e)| e.clone()).collect()))
            .send()
            .await;
        match sent {
            Ok(out) => {
                // Results are in entry order; an entry with an error code failed.
                for ((sequence, _), result) in chunk.iter().zip(out.entries()) {
                    if result.error_code().is_some() {
                        tracing::warn!(sequence, code = ?result.error_code(), "event not accepted");
                        failed.push(sequence.clone());
                    }
                }
                if out.entries().len() < chunk.len() {
                    failed.extend(chunk[out.entries().len()..].iter().map(|(s, _)| s.clone()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "PutEvents failed");
                failed.extend(chunk.iter().map(|(s, _)| s.clone()));
            }
        }
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|sequence| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            failure
        })
        .collect();
    Ok(response)
}

/// One stream record: an INSERT of a change record is published; other
/// items and events are skipped; a record of ours that cannot be read is
/// an error.
fn parse(record: &Value) -> Result<Parsed, &'static str> {
    if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
        return Ok(Parsed::Skip);
    }
    let image = record
        .pointer("/dynamodb/NewImage")
        .and_then(Value::as_object)
        .ok_or("no NewImage")?;
    let item = image
        .iter()
        .map(|(name, value)| Ok((name.clone(), attribute(value)?)))
        .collect::<Result<HashMap<_, _>, &'static str>>()?;
    match item.get("kind") {
        Some(AttributeValue::S(kind)) if kind == "change" => {}
        _ => return Ok(Parsed::Skip),
    }
    let (org, audit) = Record::from_item(&item).map_err(|_| "not an audit record")?;
    let Some(detail_type) = detail_type(audit.action) else {
        return Ok(Parsed::Skip);
    };
    let mut detail = serde_json::to_value(&audit).map_err(|_| "unserializable")?;
    if let Some(map) = detail.as_object_mut() {
        map.insert("org".into(), Value::String(org));
    }
    Ok(Parsed::Publish(detail_type, detail.to_string()))
}

/// A DynamoDB JSON attribute value of the kinds audit records use.
fn attribute(value: &Value) -> Result<AttributeValue, &'static str> {
    let object = value.as_object().ok_or("attribute is not an object")?;
    match object.iter().next() {
        Some((kind, Value::String(v))) if object.len() == 1 && kind == "S" => {
            Ok(AttributeValue::S(v.clone()))
        }
        Some((kind, Value::String(v))) if object.len() == 1 && kind == "N" => {
            Ok(AttributeValue::N(v.clone()))
        }
        Some((kind, Value::Bool(b))) if object.len() == 1 && kind == "BOOL" => {
            Ok(AttributeValue::Bool(*b))
        }
        _ => Err("unsupported attribute type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_the_spec_names_has_its_detail_type_and_reads_have_none() {
        let expected = [
            (Action::VersionCreated, Some("Artifact Version Created")),
            (Action::ArtifactUpdated, Some("Artifact Updated")),
            (Action::HoldSet, Some("Artifact Updated")),
            (Action::HoldReleased, Some("Artifact Updated")),
            (Action::ArtifactDeleted, Some("Artifact Deleted")),
            (Action::ArtifactRestored, Some("Artifact Restored")),
            (Action::ArtifactExpired, Some("Artifact Expired")),
            (Action::ArtifactPurged, Some("Artifact Purged")),
            (Action::VersionDeleted, Some("Version Deleted")),
            (Action::LinkCreated, None),
            (Action::LinkRevoked, None),
            (Action::Downloaded, None),
            (Action::LinkUsed, None),
            (Action::Bundled, None),
            (Action::BundleEntry, None),
            (Action::AuditRead, None),
        ];
        assert_eq!(expected.len(), Action::ALL.len());
        for (action, detail) in expected {
            assert_eq!(detail_type(action), detail, "{action:?}");
            if detail.is_some() {
                assert!(action.is_change());
            }
        }
    }

    #[test]
    fn the_sample_stream_event_publishes_its_change_and_skips_the_rest() {
        let event: Value =
            serde_json::from_str(include_str!("../../../events/dynamodb-stream.json")).unwrap();
        let records = event["Records"].as_array().unwrap();
        let parsed: Vec<_> = records.iter().map(parse).collect();
        match &parsed[0] {
            Ok(Parsed::Publish(kind, detail)) => {
                assert_eq!(*kind, "Artifact Version Created");
                let detail: Value = serde_json::from_str(detail).unwrap();
                assert_eq!(detail["org"], "acme");
                assert_eq!(detail["action"], "version.created");
                assert_eq!(detail["actor"]["sub"], "user-of-acme");
                assert!(detail["recordId"].is_string());
            }
            other => panic!("{other:?}"),
        }
        assert!(parsed[1..].iter().all(|p| matches!(p, Ok(Parsed::Skip))));
    }

    #[test]
    fn malformed_records_are_errors_not_skips() {
        let bad = serde_json::json!({
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {"kind": {"S": "change"}, "action": {"S": "nonsense"}}}
        });
        assert!(parse(&bad).is_err());
        let odd = serde_json::json!({
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {"kind": {"L": []}}}
        });
        assert!(parse(&odd).is_err());
        assert!(parse(&serde_json::json!({"eventName": "INSERT"})).is_err());
        // Not ours to publish: other events and other items.
        assert!(matches!(
            parse(&serde_json::json!({"eventName": "REMOVE"})),
            Ok(Parsed::Skip)
        ));
    }
}
