//! Test harness: reach the emulator (or whatever `AWS_ENDPOINT_URL` names),
//! provision uniquely named resources, and drive the real handlers with real
//! API Gateway HTTP API v2 events built from `events/`.

pub mod poller;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use artifacts::{Config, Store, config::AuthMode};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
    KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::types::{
    BucketVersioningStatus, CorsConfiguration, CorsRule, EventBridgeConfiguration,
    NotificationConfiguration, VersioningConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::{Body, Request, Response};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

pub mod edge;
mod intercept;

pub use intercept::{
    CallCounter, Clients, DynamoDbFault, intercepted_store, intercepted_store_with,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The names of one provisioned environment.
#[derive(Debug, Clone)]
pub struct Resources {
    pub table: String,
    pub bucket: String,
    pub kms_key_id: String,
    pub link_key_id: String,
    /// The P-256 key that signs publish attestations (SPEC §18).
    pub signing_key_id: String,
    /// Upload events (bucket → EventBridge rule → this queue → ingest).
    pub ingest_queue_url: String,
    /// Where the queue moves an event after [`INGEST_MAX_RECEIVES`] receives.
    pub ingest_dlq_url: String,
}

/// Receives of one upload event before the queue gives up on it (the
/// template's IngestQueue says the same).
pub const INGEST_MAX_RECEIVES: u32 = 10;
/// How long a received event stays hidden from other receivers locally:
/// shorter than deployed (6 × ingest's 900 s), so a failed ingest under
/// `make dev` is retried within a minute.
pub const LOCAL_VISIBILITY_TIMEOUT_SECS: u32 = 30;
/// The ingest queue of a provisioned environment.
pub fn ingest_queue_name(name: &str) -> String {
    format!("artifacts-{name}-ingest")
}

impl Resources {
    /// `KEY=VALUE` lines for an env file.
    pub fn env_lines(&self) -> String {
        format!(
            "ARTIFACTS_TABLE={}\nARTIFACTS_BUCKET={}\nARTIFACTS_KMS_KEY_ID={}\nARTIFACTS_LINK_KEY_ID={}\nARTIFACTS_SIGNING_KEY_ID={}\n",
            self.table, self.bucket, self.kms_key_id, self.link_key_id, self.signing_key_id
        )
    }
}

/// Create (or find) the table, bucket and keys named after `name`. Idempotent.
pub async fn provision(sdk: &SdkConfig, name: &str) -> Result<Resources, BoxError> {
    let resource = format!("artifacts-{name}");
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let exists = ddb
        .describe_table()
        .table_name(&resource)
        .send()
        .await
        .is_ok();
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    if !exists {
        ddb.create_table()
            .table_name(&resource)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .send()
            .await?;
        ddb.update_time_to_live()
            .table_name(&resource)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expiresAt")
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await?;
    }
    // The table's global secondary indexes, as infra/template.yaml declares
    // them (keys: shared/src/metadata.rs, shared/src/audit.rs); each added
    // to a table provisioned before it existed (make dev).
    use artifacts::{audit, metadata};
    let indexes = [
        // The library by creation time (listings).
        (metadata::LIBRARY_INDEX, ProjectionType::All),
        // What the purge must visit, by due time (SPEC §12): keys only.
        (metadata::DUE_INDEX, ProjectionType::KeysOnly),
        // Content (`sha256=`, SPEC §14).
        (metadata::CONTENT_INDEX, ProjectionType::All),
        // The org-wide audit trail (SPEC §13).
        (audit::AUDIT_INDEX, ProjectionType::All),
        // The library by size and by path across workflows (SPEC §14).
        (metadata::SIZE_INDEX, ProjectionType::All),
        (metadata::PATH_INDEX, ProjectionType::All),
    ];
    for (name, projection) in indexes {
        // Each index `gsiN` is keyed by `gsiNpk`/`gsiNsk`.
        let (hash, range) = (format!("{name}pk"), format!("{name}sk"));
        ensure_index(&ddb, &resource, name, (&hash, &range), projection).await?;
    }

    let s3 = s3_client(sdk);
    if s3.head_bucket().bucket(&resource).send().await.is_err() {
        s3.create_bucket().bucket(&resource).send().await?;
    }
    s3.put_bucket_versioning()
        .bucket(&resource)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await?;

    // The template's CorsConfiguration: the console (SPEC §17) PUTs
    // presigned uploads and follows 303s to presigned GETs from its origin.
    s3.put_bucket_cors()
        .bucket(&resource)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .set_allowed_methods(Some(vec!["GET".into(), "PUT".into(), "HEAD".into()]))
                        .allowed_origins("*")
                        .allowed_headers("*")
                        .set_expose_headers(Some(vec![
                            "ETag".into(),
                            "Content-Length".into(),
                            "Content-Disposition".into(),
                        ]))
                        .max_age_seconds(3600)
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await?;

    let (ingest_queue_url, ingest_dlq_url) = upload_delivery(sdk, name, &resource).await?;

    let kms = aws_sdk_kms::Client::new(sdk);
    let kms_key_id = key_by_alias(
        &kms,
        &format!("alias/{resource}-data"),
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await?;
    let link_key_id = key_by_alias(
        &kms,
        &format!("alias/{resource}-links"),
        KeySpec::Hmac256,
        KeyUsageType::GenerateVerifyMac,
    )
    .await?;
    let signing_key_id = key_by_alias(
        &kms,
        &format!("alias/{resource}-signing"),
        KeySpec::EccNistP256,
        KeyUsageType::SignVerify,
    )
    .await?;
    Ok(Resources {
        table: resource.clone(),
        bucket: resource,
        kms_key_id,
        link_key_id,
        signing_key_id,
        ingest_queue_url,
        ingest_dlq_url,
    })
}

/// Add the index `name` (string keys `hash`/`range`, `projection`) to the
/// table unless it has it: how indexes added after the first one reach new tables and
/// tables provisioned earlier (make dev) alike.
async fn ensure_index(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    name: &str,
    (hash, range): (&str, &str),
    projection: ProjectionType,
) -> Result<(), BoxError> {
    let described = ddb.describe_table().table_name(table).send().await?;
    let has = described
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .any(|i| i.index_name() == Some(name));
    if has {
        return Ok(());
    }
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |n: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(kind)
            .build()
    };
    ddb.update_table()
        .table_name(table)
        .attribute_definitions(attr(hash)?)
        .attribute_definitions(attr(range)?)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name(name)
                        .key_schema(key(hash, KeyType::Hash)?)
                        .key_schema(key(range, KeyType::Range)?)
                        .projection(Projection::builder().projection_type(projection).build())
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// Upload events the way the deployed stack delivers them (SPEC §19,
/// infra/template.yaml): the bucket's events go to EventBridge, a rule on
/// `incoming/` sends them to the ingest queue, which moves an event to its
/// dead-letter queue after [`INGEST_MAX_RECEIVES`] receives. Lambda's event
/// source mapping is played by [`poller`]. Returns (queue URL, DLQ URL).
async fn upload_delivery(
    sdk: &SdkConfig,
    name: &str,
    bucket: &str,
) -> Result<(String, String), BoxError> {
    s3_client(sdk)
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .event_bridge_configuration(EventBridgeConfiguration::builder().build())
                .build(),
        )
        .send()
        .await?;

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let retention = ("MessageRetentionPeriod", "1209600".to_owned());
    let queue_name = ingest_queue_name(name);
    let dlq_url = queue(&sqs, &format!("{queue_name}-dlq"), vec![retention.clone()]).await?;
    let dlq_arn = queue_arn(&sqs, &dlq_url).await?;
    let redrive = json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": INGEST_MAX_RECEIVES,
    });
    let queue_url = queue(
        &sqs,
        &queue_name,
        vec![
            retention,
            (
                "VisibilityTimeout",
                LOCAL_VISIBILITY_TIMEOUT_SECS.to_string(),
            ),
            ("RedrivePolicy", redrive.to_string()),
        ],
    )
    .await?;
    let arn = queue_arn(&sqs, &queue_url).await?;

    let events = aws_sdk_eventbridge::Client::new(sdk);
    let pattern = json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket]},
            "object": {"key": [{"prefix": "incoming/"}]},
        },
    });
    let rule = events
        .put_rule()
        .name(format!("{queue_name}-uploads"))
        .event_pattern(pattern.to_string())
        .send()
        .await?;
    events
        .put_targets()
        .rule(format!("{queue_name}-uploads"))
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("ingest-queue")
                .arn(&arn)
                .build()?,
        )
        .send()
        .await?;
    // As deployed: only the rule may send to the queue.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule.rule_arn().unwrap_or_default()}},
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await?;
    Ok((queue_url, dlq_url))
}

/// Create the queue, or bring an existing one to these attributes.
async fn queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(&str, String)>,
) -> Result<String, BoxError> {
    let attributes: HashMap<QueueAttributeName, String> = attributes
        .into_iter()
        .map(|(k, v)| (QueueAttributeName::from(k), v))
        .collect();
    if let Ok(found) = sqs.get_queue_url().queue_name(name).send().await
        && let Some(url) = found.queue_url()
    {
        sqs.set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(attributes))
            .send()
            .await?;
        return Ok(url.to_owned());
    }
    let created = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await?;
    Ok(created
        .queue_url()
        .ok_or("CreateQueue returned no URL")?
        .to_owned())
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, BoxError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    Ok(attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or("GetQueueAttributes returned no QueueArn")?
        .clone())
}

async fn key_by_alias(
    kms: &aws_sdk_kms::Client,
    alias: &str,
    spec: KeySpec,
    usage: KeyUsageType,
) -> Result<String, BoxError> {
    if let Ok(found) = kms.describe_key().key_id(alias).send().await
        && let Some(id) = found.key_metadata().map(|m| m.key_id())
    {
        return Ok(id.to_owned());
    }
    let created = kms
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .description("artifact store (local)")
        .send()
        .await?;
    let id = created
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or("CreateKey returned no key id")?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&id)
        .send()
        .await?;
    Ok(id)
}

/// An S3 client as the store builds it (path-style against an emulator).
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The emulator's URL: `AWS_ENDPOINT_URL` when set (moto started by
/// `make test`, or LocalStack), else a moto server started for this test
/// process from the project venv, which exits when this process does.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start_emulator().unwrap_or_else(|e| {
            panic!("no AWS_ENDPOINT_URL and could not start moto ({e}); run `make test`")
        }),
    })
}

fn start_emulator() -> Result<String, BoxError> {
    static CHILD: OnceLock<std::sync::Mutex<Child>> = OnceLock::new();
    let root = workspace_root();
    let port_file = std::env::temp_dir().join(format!(
        "artifacts-emulator-{}.port",
        uuid::Uuid::new_v4().simple()
    ));
    let child = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/emulator.py"))
        .args(["--port", "0", "--port-file"])
        .arg(&port_file)
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    let _ = CHILD.set(std::sync::Mutex::new(child));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(port) = std::fs::read_to_string(&port_file)
            && !port.trim().is_empty()
        {
            return Ok(format!("http://127.0.0.1:{}", port.trim()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("moto did not start within 60 s".into())
}

/// SDK configuration pointing at the emulator, with dummy credentials.
pub async fn sdk_config() -> SdkConfig {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "artifacts-tests",
        ))
        .load()
        .await
}

/// A freshly provisioned environment and a store over it, as a function's
/// cold start would build it.
pub struct TestEnv {
    pub sdk: SdkConfig,
    pub resources: Resources,
    pub store: Store,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let sdk = sdk_config().await;
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let resources = provision(&sdk, &name)
            .await
            .expect("provision test resources");
        let mut vars = HashMap::from([
            ("ARTIFACTS_TABLE".to_string(), resources.table.clone()),
            ("ARTIFACTS_BUCKET".to_string(), resources.bucket.clone()),
            (
                "ARTIFACTS_KMS_KEY_ID".to_string(),
                resources.kms_key_id.clone(),
            ),
            (
                "ARTIFACTS_LINK_KEY_ID".to_string(),
                resources.link_key_id.clone(),
            ),
            (
                "ARTIFACTS_SIGNING_KEY_ID".to_string(),
                resources.signing_key_id.clone(),
            ),
        ]);
        vars.insert(
            "ARTIFACTS_PUBLIC_BASE_URL".into(),
            "http://127.0.0.1:9000".into(),
        );
        let mut config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        adjust(&mut config);
        let store = Store::new(config, &sdk);
        TestEnv {
            sdk,
            resources,
            store,
        }
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }
}

/// A dev-mode auth setting for tests that exercise bearer tokens.
pub fn dev_auth(secret: &str) -> AuthMode {
    AuthMode::Dev {
        secret: secret.as_bytes().to_vec(),
    }
}

/// Who calls: JWT claims as API Gateway's authorizer passes them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: String,
    pub sub: String,
    pub scopes: String,
}

impl Caller {
    /// The principal this caller's token authenticates as.
    pub fn principal(&self) -> artifacts::auth::Principal {
        artifacts::auth::Principal {
            org: self.org.clone(),
            subject: self.sub.clone(),
            scopes: self.scopes.split(' ').map(str::to_owned).collect(),
        }
    }

    pub fn new(org: &str, scopes: &str) -> Self {
        Caller {
            org: org.into(),
            sub: format!("user-of-{org}"),
            scopes: scopes.into(),
        }
    }

    pub fn writer(org: &str) -> Self {
        Self::new(org, "artifacts:read artifacts:write")
    }

    pub fn reader(org: &str) -> Self {
        Self::new(org, "artifacts:read")
    }
}

/// What API Gateway percent-encodes in `rawPath` (its `pathParameters` are decoded).
const RAW_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// What must be percent-encoded in a query value.
const QUERY: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An HTTP API v2 request, built by editing the real event in `events/`.
#[derive(Debug, Clone)]
pub struct Call {
    event: Value,
}

impl Call {
    fn new(method: &str, route_key: &str, path: &str) -> Self {
        let mut event: Value =
            serde_json::from_str(include_str!("../../events/upload.json")).expect("fixture parses");
        event["routeKey"] = json!(format!("{method} {route_key}"));
        event["requestContext"]["routeKey"] = event["routeKey"].clone();
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["requestId"] = json!(uuid::Uuid::new_v4().to_string());
        event["rawQueryString"] = json!("");
        event["queryStringParameters"] = json!({});
        event["pathParameters"] = json!({});
        event["headers"] = json!({"host": "api.test", "user-agent": "artifacts-tests"});
        event["body"] = Value::Null;
        event["isBase64Encoded"] = json!(false);
        Call { event }.anonymous()
    }

    /// `PUT /v1/workflows/{workflowId}/artifacts/{path+}`
    pub fn upload(workflow_id: &str, path: &str, body: &[u8]) -> Self {
        let mut call = Self::new(
            "PUT",
            "/v1/workflows/{workflowId}/artifacts/{path+}",
            &format!(
                "/v1/workflows/{workflow_id}/artifacts/{}",
                utf8_percent_encode(path, RAW_PATH)
            ),
        )
        .path_param("workflowId", workflow_id)
        .path_param("path", path);
        call.event["body"] = json!(STANDARD.encode(body));
        call.event["isBase64Encoded"] = json!(true);
        call
    }

    /// `GET /v1/artifacts/{artifactId}`
    pub fn artifact(artifact_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/artifacts/{artifactId}",
            &format!("/v1/artifacts/{artifact_id}"),
        )
        .path_param("artifactId", artifact_id)
    }

    /// `GET /v1/artifacts/{artifactId}/audit`
    pub fn artifact_audit(artifact_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/artifacts/{artifactId}/audit",
            &format!("/v1/artifacts/{artifact_id}/audit"),
        )
        .path_param("artifactId", artifact_id)
    }

    /// `DELETE /v1/artifacts/{artifactId}` (SPEC §12)
    pub fn delete_artifact(artifact_id: &str) -> Self {
        Self::new(
            "DELETE",
            "/v1/artifacts/{artifactId}",
            &format!("/v1/artifacts/{artifact_id}"),
        )
        .path_param("artifactId", artifact_id)
    }

    /// `PATCH /v1/artifacts/{artifactId}` with a merge-patch body
    pub fn patch_artifact(artifact_id: &str, patch: &Value) -> Self {
        Self::new(
            "PATCH",
            "/v1/artifacts/{artifactId}",
            &format!("/v1/artifacts/{artifact_id}"),
        )
        .path_param("artifactId", artifact_id)
        .header("content-type", "application/merge-patch+json")
        .raw_body(&patch.to_string())
    }

    /// `POST /v1/artifacts/{artifactId}/restore`
    pub fn restore(artifact_id: &str) -> Self {
        Self::new(
            "POST",
            "/v1/artifacts/{artifactId}/restore",
            &format!("/v1/artifacts/{artifact_id}/restore"),
        )
        .path_param("artifactId", artifact_id)
    }

    /// `DELETE /v1/artifacts/{artifactId}/versions/{version}`
    pub fn delete_version(artifact_id: &str, version: &str) -> Self {
        Self::new(
            "DELETE",
            "/v1/artifacts/{artifactId}/versions/{version}",
            &format!("/v1/artifacts/{artifact_id}/versions/{version}"),
        )
        .path_param("artifactId", artifact_id)
        .path_param("version", version)
    }

    /// `PUT /v1/artifacts/{artifactId}/hold` (`reason`) or, with `None`, `DELETE`
    pub fn hold(artifact_id: &str, reason: Option<&str>) -> Self {
        let method = if reason.is_some() { "PUT" } else { "DELETE" };
        let call = Self::new(
            method,
            "/v1/artifacts/{artifactId}/hold",
            &format!("/v1/artifacts/{artifact_id}/hold"),
        )
        .path_param("artifactId", artifact_id);
        match reason {
            Some(r) => call
                .header("content-type", "application/json")
                .raw_body(&json!({ "reason": r }).to_string()),
            None => call,
        }
    }

    /// `GET /v1/audit`
    pub fn org_audit() -> Self {
        Self::new("GET", "/v1/audit", "/v1/audit")
    }

    /// `GET /v1/artifacts/{artifactId}/versions`
    pub fn versions(artifact_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/artifacts/{artifactId}/versions",
            &format!("/v1/artifacts/{artifact_id}/versions"),
        )
        .path_param("artifactId", artifact_id)
    }

    /// `GET /v1/artifacts/{artifactId}/versions/{version}/attestation` (SPEC §18).
    pub fn attestation(artifact_id: &str, version: &str) -> Self {
        Self::new(
            "GET",
            "/v1/artifacts/{artifactId}/versions/{version}/attestation",
            &format!("/v1/artifacts/{artifact_id}/versions/{version}/attestation"),
        )
        .path_param("artifactId", artifact_id)
        .path_param("version", version)
    }

    /// `GET /v1/signing-key` (SPEC §18): no authorizer on this route.
    pub fn signing_key() -> Self {
        Self::new("GET", "/v1/signing-key", "/v1/signing-key")
    }

    /// `GET /v1/artifacts/{artifactId}/download`
    pub fn download(artifact_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/artifacts/{artifactId}/download",
            &format!("/v1/artifacts/{artifact_id}/download"),
        )
        .path_param("artifactId", artifact_id)
    }

    /// `GET /v1/workflows/{workflowId}/artifacts/{path+}` (download by path).
    pub fn by_path(workflow_id: &str, path: &str) -> Self {
        Self::new(
            "GET",
            "/v1/workflows/{workflowId}/artifacts/{path+}",
            &format!(
                "/v1/workflows/{workflow_id}/artifacts/{}",
                utf8_percent_encode(path, RAW_PATH)
            ),
        )
        .path_param("workflowId", workflow_id)
        .path_param("path", path)
    }

    /// `POST /v1/resolve` with a JSON body (presign).
    pub fn resolve(body: &Value) -> Self {
        let mut call = Self::new("POST", "/v1/resolve", "/v1/resolve")
            .header("content-type", "application/json");
        call.event["body"] = json!(body.to_string());
        call
    }

    /// The same request with another method (`HEAD`).
    pub fn method(mut self, method: &str) -> Self {
        let route = self.event["routeKey"]
            .as_str()
            .and_then(|k| k.split_once(' '))
            .map(|(_, r)| r.to_owned())
            .unwrap_or_default();
        self.event["routeKey"] = json!(format!("{method} {route}"));
        self.event["requestContext"]["routeKey"] = self.event["routeKey"].clone();
        self.event["requestContext"]["http"]["method"] = json!(method);
        self
    }

    /// `GET /v1/workflows/{workflowId}/artifacts` (list).
    pub fn list_workflow(workflow_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/workflows/{workflowId}/artifacts",
            &format!("/v1/workflows/{workflow_id}/artifacts"),
        )
        .path_param("workflowId", workflow_id)
    }

    /// `GET /v1/artifacts` (list: the org-wide library).
    pub fn list_library() -> Self {
        Self::new("GET", "/v1/artifacts", "/v1/artifacts")
    }

    /// `POST /v1/artifacts/{artifactId}/links` with a JSON body (presign).
    pub fn create_link(artifact_id: &str, body: &Value) -> Self {
        let mut call = Self::new(
            "POST",
            "/v1/artifacts/{artifactId}/links",
            &format!("/v1/artifacts/{artifact_id}/links"),
        )
        .path_param("artifactId", artifact_id)
        .header("content-type", "application/json");
        call.event["body"] = json!(body.to_string());
        call
    }

    /// `POST /v1/workflows/{workflowId}/uploads` (presign).
    pub fn create_upload(workflow_id: &str, body: &Value) -> Self {
        let mut call = Self::new(
            "POST",
            "/v1/workflows/{workflowId}/uploads",
            &format!("/v1/workflows/{workflow_id}/uploads"),
        )
        .path_param("workflowId", workflow_id)
        .header("content-type", "application/json");
        call.event["body"] = json!(body.to_string());
        call
    }

    /// `GET /v1/workflows/{workflowId}/uploads/{uploadId}` (presign).
    pub fn upload_status(workflow_id: &str, upload_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/workflows/{workflowId}/uploads/{uploadId}",
            &format!("/v1/workflows/{workflow_id}/uploads/{upload_id}"),
        )
        .path_param("workflowId", workflow_id)
        .path_param("uploadId", upload_id)
    }

    /// `GET /v1/artifacts/{artifactId}/links` (presign).
    pub fn list_links(artifact_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/artifacts/{artifactId}/links",
            &format!("/v1/artifacts/{artifact_id}/links"),
        )
        .path_param("artifactId", artifact_id)
    }

    /// `DELETE /v1/links/{linkId}` (presign), as the template routes it:
    /// under download's parameter name, `{token}` (see infra/template.yaml).
    pub fn revoke_link(link_id: &str) -> Self {
        Self::new(
            "DELETE",
            "/v1/links/{token}",
            &format!("/v1/links/{link_id}"),
        )
        .path_param("token", link_id)
    }

    /// `GET /v1/links/{token}` (download): no authorizer on this route.
    pub fn link(token: &str) -> Self {
        Self::new("GET", "/v1/links/{token}", &format!("/v1/links/{token}"))
            .path_param("token", token)
    }

    /// Replace the raw body (e.g. invalid JSON).
    pub fn raw_body(mut self, body: &str) -> Self {
        self.event["body"] = json!(body);
        self.event["isBase64Encoded"] = json!(false);
        self
    }

    /// `GET /v1/workflows/{workflowId}/artifacts/bundle`
    pub fn bundle(workflow_id: &str) -> Self {
        Self::new(
            "GET",
            "/v1/workflows/{workflowId}/artifacts/bundle",
            &format!("/v1/workflows/{workflow_id}/artifacts/bundle"),
        )
        .path_param("workflowId", workflow_id)
    }

    /// A repeated query parameter (`pin=a&pin=b`), as API Gateway passes it:
    /// each value in `rawQueryString` (which the runtime parses), joined
    /// with commas in `queryStringParameters`. Call it after [`Call::query`].
    pub fn query_repeated(mut self, name: &str, values: &[&str]) -> Self {
        self.event["queryStringParameters"][name] = json!(values.join(","));
        let mut raw = self.event["rawQueryString"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for value in values {
            if !raw.is_empty() {
                raw.push('&');
            }
            raw.push_str(&format!("{name}={}", utf8_percent_encode(value, QUERY)));
        }
        self.event["rawQueryString"] = json!(raw);
        self
    }

    pub fn path_param(mut self, name: &str, value: &str) -> Self {
        self.event["pathParameters"][name] = json!(value);
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.event["queryStringParameters"][name] = json!(value);
        let raw = self.event["queryStringParameters"]
            .as_object()
            .map(|q| {
                q.iter()
                    .map(|(k, v)| {
                        let v = utf8_percent_encode(v.as_str().unwrap_or_default(), QUERY);
                        format!("{k}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default();
        self.event["rawQueryString"] = json!(raw);
        self
    }

    /// The raw query string exactly as given (repeated or odd parameters);
    /// the handlers parse `rawQueryString`.
    pub fn raw_query(mut self, raw: &str) -> Self {
        self.event["rawQueryString"] = json!(raw);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.event["headers"][name.to_ascii_lowercase()] = json!(value);
        self
    }

    /// Authenticated by API Gateway's JWT authorizer as `caller`.
    pub fn by(mut self, caller: &Caller) -> Self {
        self.event["requestContext"]["authorizer"] = json!({
            "jwt": {
                "claims": {
                    "sub": caller.sub,
                    "org_id": caller.org,
                    "scope": caller.scopes,
                    "iss": "https://issuer.example.com/",
                },
                "scopes": null
            }
        });
        self
    }

    /// No authorizer context at all.
    pub fn anonymous(mut self) -> Self {
        self.event["requestContext"]
            .as_object_mut()
            .map(|c| c.remove("authorizer"));
        self
    }

    pub fn request(&self) -> Request {
        lambda_http::request::from_str(&self.event.to_string()).expect("a valid HTTP API v2 event")
    }
}

// The real handlers, called as the Lambda runtime calls them: with the
// store built at cold start and an API Gateway HTTP API v2 request.

pub async fn upload(env: &TestEnv, call: Call) -> Response<Body> {
    answered(artifacts_upload::handler(&env.store, call.request()).await)
}

/// The upload handler over another store (e.g. clients with fault injection).
pub async fn upload_with(store: &Store, call: Call) -> Response<Body> {
    answered(artifacts_upload::handler(store, call.request()).await)
}

pub async fn versions(env: &TestEnv, call: Call) -> Response<Body> {
    answered(artifacts_versions::handler(&env.store, call.request()).await)
}

pub async fn download(env: &TestEnv, call: Call) -> Response<Body> {
    answered(artifacts_download::handler(&env.store, call.request()).await)
}

pub async fn list(env: &TestEnv, call: Call) -> Response<Body> {
    answered(artifacts_list::handler(&env.store, call.request()).await)
}

pub async fn bundle(env: &TestEnv, call: Call) -> Response<Body> {
    answered(artifacts_bundle::handler(&env.store, call.request()).await)
}

/// A ZIP's entries in order, read with an independent reader: (name, bytes).
pub fn zip_entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).expect("a ZIP");
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).expect("an entry");
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("its bytes");
            (entry.name().to_owned(), data)
        })
        .collect()
}

/// A ZIP of `entries`, stored, with good CRCs: a tampered bundle that only
/// its manifest and signature can catch.
pub fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        out.start_file(name.as_str(), options).expect("an entry");
        out.write_all(data).expect("its bytes");
    }
    out.finish().expect("the ZIP").into_inner()
}

/// [`bundle`] with another store (one whose SDK clients inject faults or count calls).
pub async fn bundle_with(store: &Store, call: Call) -> Response<Body> {
    answered(artifacts_bundle::handler(store, call.request()).await)
}

pub async fn presign(env: &TestEnv, call: Call) -> Response<Body> {
    answered(artifacts_presign::handler(&env.store, call.request()).await)
}

fn answered(result: Result<Response<Body>, lambda_http::Error>) -> Response<Body> {
    result.expect("handlers answer every request, errors included")
}

/// Response body as bytes.
pub fn bytes(response: &Response<Body>) -> Vec<u8> {
    match response.body() {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    }
}

/// Response body as JSON (panics with the body when it is not).
pub fn json_body(response: &Response<Body>) -> Value {
    let raw = bytes(response);
    serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&raw)))
}

/// A response header as text.
pub fn header<'r>(response: &'r Response<Body>, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// PUT `body` to a presigned upload URL with exactly the headers it was
/// signed for (the client sets `Content-Length` itself), as a client would.
pub async fn put_presigned(
    upload: &artifacts::uploads::PresignedUpload,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut put = reqwest::Client::new().put(&upload.url).body(body);
    for (name, value) in &upload.headers {
        if name != "content-length" {
            put = put.header(name, value);
        }
    }
    put.send()
        .await
        .expect("the emulator answers a presigned PUT")
}

/// Stage `body` through a presigned upload; returns the S3 object version it
/// made (what the bucket's event names, and so what ingest reads).
pub async fn stage(upload: &artifacts::uploads::PresignedUpload, body: Vec<u8>) -> String {
    let response = put_presigned(upload, body).await;
    assert_eq!(response.status(), 200, "the presigned PUT was refused");
    response
        .headers()
        .get("x-amz-version-id")
        .and_then(|v| v.to_str().ok())
        .expect("a versioned bucket names the staged version")
        .to_owned()
}

/// Distinct, non-repeating content of `size` bytes, different per `seed`
/// (over the 64 KiB inline limit: stored in S3).
pub fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed)) as u8
        })
        .collect()
}

/// The operation a JSON-protocol SDK request calls (DynamoDB, KMS): the tail
/// of its `x-amz-target` header (`DynamoDB_20120810.TransactWriteItems` →
/// `TransactWriteItems`); empty for requests without one (S3). For test
/// interceptors that count or fail calls by operation.
pub fn target_operation<'a>(
    context: &'a aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
) -> &'a str {
    let target = context
        .request()
        .headers()
        .get("x-amz-target")
        .unwrap_or_default();
    target.rsplit('.').next().unwrap_or(target)
}

/// Set one attribute of a stored version behind the API's back (tests of
/// tampered or misrecorded metadata): on the version item, and on the
/// artifact items' copy of the latest version's record
/// ([`artifacts::metadata::LATEST`]) where that copy is of this version and
/// holds the attribute, so that every read path sees the change.
pub async fn set_version_attribute(
    env: &TestEnv,
    org: &str,
    artifact_id: &str,
    version: u64,
    name: &str,
    value: aws_sdk_dynamodb::types::AttributeValue,
) {
    use artifacts::metadata::{ARTIFACT_SK, LATEST, artifact_pk, path_sk, version_sk, workflow_pk};
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    let ddb = env.dynamodb();
    let table = &env.resources.table;
    ddb.update_item()
        .table_name(table)
        .key("pk", Av::S(artifact_pk(org, artifact_id)))
        .key("sk", Av::S(version_sk(version)))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", name)
        .expression_attribute_values(":v", value.clone())
        .send()
        .await
        .expect("set the version item's attribute");
    let by_id = ddb
        .get_item()
        .table_name(table)
        .key("pk", Av::S(artifact_pk(org, artifact_id)))
        .key("sk", Av::S(ARTIFACT_SK.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("read the artifact item")
        .item;
    let Some(by_id) = by_id else { return };
    let text = |k: &str| by_id.get(k).and_then(|v| v.as_s().ok()).cloned();
    let mut keys = vec![(artifact_pk(org, artifact_id), ARTIFACT_SK.to_owned())];
    if let (Some(workflow_id), Some(path)) = (text("workflowId"), text("path")) {
        keys.push((workflow_pk(org, &workflow_id), path_sk(&path)));
    }
    for (pk, sk) in keys {
        let out = ddb
            .update_item()
            .table_name(table)
            .key("pk", Av::S(pk))
            .key("sk", Av::S(sk))
            .update_expression("SET #l.#a = :v")
            .condition_expression("#l.#n = :n AND attribute_exists(#l.#a)")
            .expression_attribute_names("#l", LATEST)
            .expression_attribute_names("#a", name)
            .expression_attribute_names("#n", "version")
            .expression_attribute_values(":v", value.clone())
            .expression_attribute_values(":n", Av::N(version.to_string()))
            .send()
            .await;
        if let Err(e) = out {
            let no_copy = e
                .as_service_error()
                .is_some_and(|se| se.is_conditional_check_failed_exception());
            assert!(no_copy, "set the copy's attribute: {e:?}");
        }
    }
}
