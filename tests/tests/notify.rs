//! Change events (SPEC §13, issue 14 must-show 4): the stream records of a
//! scripted life through the real `artifacts-notify` handler → an
//! EventBridge bus on the emulator → a rule → an SQS queue the test reads.
//!
//! The stream records are the table's audit items in the stream's own
//! format (`events/dynamodb-stream.json` is one the emulator's DynamoDB
//! stream produced): the Rust SDK of DynamoDB Streams is not a dependency of
//! this workspace, so the test turns each item the code wrote into the
//! `NewImage` record the stream carries for it.

use std::collections::BTreeMap;

use artifacts::audit::{AUDIT_INDEX, Action, Actor, Origin, Record, Subject, org_pk};
use artifacts_notify::Notify;
use aws_sdk_dynamodb::types::AttributeValue;
use harness::{Call, Caller, TestEnv, bundle, download, json_body, presign, queue_arn, upload};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Map, Value, json};

const WF: &str = "wf-notify";

fn admin(org: &str) -> Caller {
    Caller::new(org, "artifacts:read artifacts:write artifacts:admin")
}

/// A scripted life: writes, reads, a link, a bundle; plus the lifecycle
/// changes issue 12 will emit, recorded as it will record them.
async fn life(env: &TestEnv) -> String {
    let alice = admin("acme");
    let mut id = String::new();
    for body in [&b"one"[..], b"two"] {
        let r = upload(
            env,
            Call::upload(WF, "terraform/plan.json", body).by(&alice),
        )
        .await;
        assert_eq!(r.status(), 201);
        id = json_body(&r)["artifact"]["artifactId"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    assert_eq!(
        download(env, Call::download(&id).by(&alice)).await.status(),
        200
    );
    let r = presign(env, Call::create_link(&id, &json!({})).by(&alice)).await;
    assert_eq!(r.status(), 201);
    assert_eq!(bundle(env, Call::bundle(WF).by(&alice)).await.status(), 200);
    let a = json_body(&harness::versions(env, Call::artifact(&id).by(&alice)).await);
    let about = Subject {
        artifact_id: Some(id.clone()),
        workflow_id: Some(WF.into()),
        path: a["path"].as_str().map(str::to_owned),
        version: Some(1),
    };
    let mut changes = Vec::new();
    for action in [
        Action::ArtifactUpdated,
        Action::ArtifactDeleted,
        Action::ArtifactRestored,
        Action::VersionDeleted,
        Action::HoldSet,
        Action::HoldReleased,
        Action::ArtifactExpired,
        Action::ArtifactPurged,
    ] {
        let record = Record::new(
            action,
            Actor::Sub(alice.sub.clone()),
            about.clone(),
            &Origin::default(),
        );
        changes.push(env.store.audit_item("acme", &record).unwrap());
    }
    env.dynamodb()
        .transact_write_items()
        .set_transact_items(Some(changes))
        .send()
        .await
        .unwrap();
    id
}

/// The org's audit items, oldest first, as stream INSERT records.
async fn stream_records(env: &TestEnv, org: &str) -> Vec<Value> {
    let out = env
        .dynamodb()
        .query()
        .table_name(&env.resources.table)
        .index_name(AUDIT_INDEX)
        .key_condition_expression("gsi4pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(org_pk(org)))
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            json!({
                "eventID": format!("e{i}"),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "Keys": {"pk": ddb_json(&item["pk"]), "sk": ddb_json(&item["sk"])},
                    "NewImage": Value::Object(item.iter().map(|(k, v)| (k.clone(), ddb_json(v))).collect::<Map<_, _>>()),
                    "SequenceNumber": format!("{:022}", 1000 + i),
                    "SizeBytes": 500,
                    "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-12-02T00:00:00.000"
            })
        })
        .collect()
}

fn ddb_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        other => panic!("unexpected attribute {other:?}"),
    }
}

/// A bus with a rule sending `source: artifacts` to a fresh queue.
async fn bus_to_queue(env: &TestEnv) -> (String, String) {
    let name = format!(
        "artifacts-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let events = aws_sdk_eventbridge::Client::new(&env.sdk);
    events.create_event_bus().name(&name).send().await.unwrap();
    let sqs = env.sqs();
    let url = sqs
        .create_queue()
        .queue_name(format!("{name}-events"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let arn = queue_arn(&sqs, &url).await.unwrap();
    events
        .put_rule()
        .name(format!("{name}-changes"))
        .event_bus_name(&name)
        .event_pattern(json!({"source": ["artifacts"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(format!("{name}-changes"))
        .event_bus_name(&name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (name, url)
}

/// Every message on the queue (until it stays empty), as EventBridge events.
async fn drain(env: &TestEnv, url: &str) -> Vec<Value> {
    let sqs = env.sqs();
    let mut events = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            empty += 1;
            continue;
        }
        for m in messages {
            events.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    events
}

async fn notify(n: &Notify, records: &[Value]) -> Vec<String> {
    let event = LambdaEvent::new(json!({ "Records": records }), Context::default());
    let response = artifacts_notify::handler(n, event).await.unwrap();
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier.unwrap())
        .collect()
}

#[tokio::test]
async fn changes_become_one_event_each_reads_none_and_retries_keep_their_ids() {
    let env = TestEnv::new().await;
    let id = life(&env).await;
    let records = stream_records(&env, "acme").await;
    let (bus, url) = bus_to_queue(&env).await;
    let n = Notify {
        events: aws_sdk_eventbridge::Client::new(&env.sdk),
        bus: Some(bus),
    };

    // What should be published: the change records with a detail-type.
    let mut expected: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut reads = 0;
    for r in &records {
        let image = &r["dynamodb"]["NewImage"];
        let action = Action::parse(image["action"]["S"].as_str().unwrap()).unwrap();
        match artifacts_notify::detail_type(action) {
            Some(kind) => {
                expected.insert(image["recordId"]["S"].as_str().unwrap().to_owned(), kind);
            }
            None if !action.is_change() => reads += 1,
            None => {}
        }
    }
    assert!(reads >= 3, "the life had reads: {reads}");
    // 2 versions + the 8 lifecycle changes.
    assert_eq!(expected.len(), 10);

    assert!(notify(&n, &records).await.is_empty());
    let first = drain(&env, &url).await;
    let got: BTreeMap<String, String> = first
        .iter()
        .map(|e| {
            assert_eq!(e["source"], "artifacts");
            assert_eq!(e["detail"]["org"], "acme");
            assert_eq!(e["detail"]["artifactId"], id.as_str());
            (
                e["detail"]["recordId"].as_str().unwrap().to_owned(),
                e["detail-type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        first.len(),
        expected.len(),
        "one event per change, none for reads"
    );
    assert_eq!(
        got,
        expected
            .iter()
            .map(|(k, v)| (k.clone(), (*v).to_owned()))
            .collect()
    );

    // The same batch again (a stream retry): the same record ids.
    assert!(notify(&n, &records).await.is_empty());
    let second = drain(&env, &url).await;
    let ids = |events: &[Value]| {
        let mut ids: Vec<String> = events
            .iter()
            .map(|e| e["detail"]["recordId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&second), ids(&first));

    // A malformed record is reported by its sequence number and blocks nothing.
    let mut batch = records.clone();
    let mut bad = batch[3].clone();
    bad["dynamodb"]["NewImage"]["action"] = json!({"S": "artifact.eaten"});
    bad["dynamodb"]["NewImage"]["kind"] = json!({"S": "change"});
    bad["dynamodb"]["SequenceNumber"] = json!("9999");
    batch.insert(2, bad);
    assert_eq!(notify(&n, &batch).await, ["9999"]);
    let third = drain(&env, &url).await;
    assert_eq!(ids(&third), ids(&first));
}

#[tokio::test]
async fn the_sample_stream_event_publishes_on_the_emulator() {
    let env = TestEnv::new().await;
    let (bus, url) = bus_to_queue(&env).await;
    let n = Notify {
        events: aws_sdk_eventbridge::Client::new(&env.sdk),
        bus: Some(bus),
    };
    let event: Value =
        serde_json::from_str(include_str!("../../events/dynamodb-stream.json")).unwrap();
    let records = event["Records"].as_array().unwrap().clone();
    assert!(notify(&n, &records).await.is_empty());
    let events = drain(&env, &url).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Artifact Version Created");
    assert_eq!(events[0]["detail"]["path"], "terraform/plan.json");
}
