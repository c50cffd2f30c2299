#!/usr/bin/env python3
# Regenerates events/dynamodb-stream.json: `.venv/bin/python scripts/capture-stream-event.py > events/dynamodb-stream.json`.
# Capture a real DynamoDB stream event (NEW_IMAGE) from the emulator, as
# Lambda's event source mapping hands it to artifacts-notify.
import json, boto3
from moto import mock_aws

ART = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
def item(action, kind, t, rid, **extra):
    it = {
        "pk": {"S": f"acme#AU#{ART}"}, "sk": {"S": f"{t}#{rid}"},
        "gsi4pk": {"S": "acme#AU"}, "gsi4sk": {"S": f"{t}#{rid}"},
        "org": {"S": "acme"}, "recordId": {"S": rid}, "time": {"S": t},
        "action": {"S": action}, "outcome": {"S": "success"}, "kind": {"S": kind},
        "expiresAt": {"N": "1799107200"}, "actorSub": {"S": "user-of-acme"},
        "artifactId": {"S": ART}, "workflowId": {"S": "run-42"},
        "path": {"S": "terraform/plan.json"}, "version": {"N": "1"},
        "requestId": {"S": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"},
        "sourceIp": {"S": "203.0.113.7"}, "userAgent": {"S": "artifacts-cli/0.1"},
    }
    it.update(extra)
    return it

with mock_aws():
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    t = ddb.create_table(
        TableName="artifacts-dev",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    arn = t["TableDescription"]["LatestStreamArn"]
    ddb.put_item(TableName="artifacts-dev", Item=item("version.created", "change", "2026-12-02T09:00:00.123456Z", "5d0c3a7e9b1f4e2a8c6d0b9a7f3e1c25"))
    ddb.put_item(TableName="artifacts-dev", Item=item("artifact.downloaded", "read", "2026-12-02T09:00:01.000001Z", "8a1b2c3d4e5f60718293a4b5c6d7e8f9"))
    ddb.put_item(TableName="artifacts-dev", Item={"pk": {"S": f"acme#A#{ART}"}, "sk": {"S": "#META"}, "latestVersion": {"N": "1"}})
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=it)["Records"]
    out = []
    for r in records:
        r = json.loads(json.dumps(r, default=lambda o: int(o.timestamp()) if hasattr(o, "timestamp") else str(o)))
        r["eventSourceARN"] = arn
        r.pop("userIdentity", None)
        out.append(r)
    print(json.dumps({"Records": out}, indent=2))
