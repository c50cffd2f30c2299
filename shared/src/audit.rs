//! The audit trail (SPEC §13): who wrote, read, shared and deleted what.
//!
//! # What is recorded, and when
//!
//! - **State changes** are recorded in the same `TransactWriteItems` as the
//!   change: [`Store::audit_item`] builds the record's action, which the
//!   version commit and link creation/revocation append to their own
//!   transaction. No change exists without its record, no record without
//!   its change.
//! - **Content reads** (a download of a version or a range, a link use, a
//!   bundle) are recorded with [`Store::record_reads`] after the answer is
//!   ready and before it is returned, i.e. before the first byte leaves the
//!   function: a record that cannot be written fails the request (500) and
//!   nothing of the content is sent. One `PutItem` per download.
//! - **Refused attempts inside an org** (403 missing scope, 409 legal hold,
//!   410 expired or past the trash period) are recorded best effort
//!   ([`Store::record_refusal`]): the refusal is answered even if its record
//!   cannot be written.
//!
//! A record never holds content, keys or tokens.
//!
//! # Keys
//!
//! | item | pk | sk | gsi4pk | gsi4sk |
//! |---|---|---|---|---|
//! | audit record | `{org}#AU#{artifactId}` (`{org}#AU#-` without one) | `{time}#{recordId}` | `{org}#AU` | `{time}#{recordId}` |
//!
//! A partition of its own per artifact, beside (not inside) the artifact's
//! `{org}#A#{artifactId}` partition, so purging an artifact leaves its
//! history readable; one artifact's history is one Query. The org-wide feed
//! is the index [`AUDIT_INDEX`] (`gsi4`, all attributes), one partition per
//! org. `time` is RFC 3339 UTC with microseconds, strictly increasing within
//! a process, so the sort key orders records as they happened. Records carry
//! `expiresAt` (the table's TTL attribute) `ARTIFACTS_AUDIT_DAYS` after them.
//!
//! # Change events
//!
//! Records of successful state changes carry `kind = change`; the stream's
//! event source mapping passes only those to `functions/notify`, which maps
//! [`Action`] to an EventBridge `detail-type` there.
//!
//! # Cursors
//!
//! As the listings' (see [`crate::listing`]): `base64url(json)` of the key
//! to continue after and a check value, SHA-256 over the format, the org,
//! the route (and artifact) and the normalized filters, and the key. Another
//! org's cursor, another query's, or any changed one is a 400 (`cursor`); a
//! cursor that checks is honoured only if its key lies in the caller's own
//! partition and inside the query's time range.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_sdk_dynamodb::types::{AttributeValue, Put, PutRequest, TransactWriteItem, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::Request;
use lambda_http::request::RequestContext;
use lambda_http::{RequestExt, http::StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::model;
use crate::store::Store;

/// The org-wide audit index (`gsi4pk`/`gsi4sk`).
pub const AUDIT_INDEX: &str = "gsi4";
/// `ARTIFACTS_AUDIT_DAYS` when unset.
pub const DEFAULT_AUDIT_DAYS: u64 = 400;
/// A page of records when the request names no `limit`, and the most one page holds.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Filtered pages read at most this many Query pages before answering short.
const MAX_ROUNDS: usize = 8;
/// BatchWriteItem's limit.
const BATCH: usize = 25;
const CURSOR_FORMAT: u8 = 1;
/// The partition of records that name no artifact.
const NO_ARTIFACT: &str = "-";

/// What happened. Changes are published as events (`functions/notify`);
/// reads are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A version was written (`PUT`, a completed upload).
    VersionCreated,
    /// Metadata or retention patched (lifecycle).
    ArtifactUpdated,
    ArtifactDeleted,
    ArtifactRestored,
    ArtifactExpired,
    ArtifactPurged,
    VersionDeleted,
    HoldSet,
    HoldReleased,
    LinkCreated,
    LinkRevoked,
    /// A version's content, whole or a range.
    Downloaded,
    /// A version's content through a link.
    LinkUsed,
    /// A bundle as a whole (with its manifest digest)…
    Bundled,
    /// …and each artifact it included.
    BundleEntry,
    /// The audit trail itself was read (only refusals are recorded).
    AuditRead,
}

impl Action {
    pub const ALL: [Action; 16] = [
        Action::VersionCreated,
        Action::ArtifactUpdated,
        Action::ArtifactDeleted,
        Action::ArtifactRestored,
        Action::ArtifactExpired,
        Action::ArtifactPurged,
        Action::VersionDeleted,
        Action::HoldSet,
        Action::HoldReleased,
        Action::LinkCreated,
        Action::LinkRevoked,
        Action::Downloaded,
        Action::LinkUsed,
        Action::Bundled,
        Action::BundleEntry,
        Action::AuditRead,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Action::VersionCreated => "version.created",
            Action::ArtifactUpdated => "artifact.updated",
            Action::ArtifactDeleted => "artifact.deleted",
            Action::ArtifactRestored => "artifact.restored",
            Action::ArtifactExpired => "artifact.expired",
            Action::ArtifactPurged => "artifact.purged",
            Action::VersionDeleted => "version.deleted",
            Action::HoldSet => "hold.set",
            Action::HoldReleased => "hold.released",
            Action::LinkCreated => "link.created",
            Action::LinkRevoked => "link.revoked",
            Action::Downloaded => "artifact.downloaded",
            Action::LinkUsed => "link.used",
            Action::Bundled => "bundle.downloaded",
            Action::BundleEntry => "artifact.bundled",
            Action::AuditRead => "audit.read",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// A state change (recorded in the change's transaction), not a read.
    pub const fn is_change(self) -> bool {
        !matches!(
            self,
            Action::Downloaded
                | Action::LinkUsed
                | Action::Bundled
                | Action::BundleEntry
                | Action::AuditRead
        )
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Who acted: a principal's subject, a link (whose holder is anonymous),
/// or the service itself (the scheduled purge: [`Actor::PURGE`]), which no
/// principal can pose as — it is stored apart from subjects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Actor {
    Sub(String),
    LinkId(String),
    System(String),
}

impl Actor {
    /// The scheduled purge (`functions/purge`).
    pub const PURGE: &'static str = "purge";

    /// The scheduled purge as an actor.
    pub fn purge() -> Actor {
        Actor::System(Actor::PURGE.to_owned())
    }
}

/// Where a request came from, as the gateway saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    /// From the HTTP API request context (the real client address and
    /// `User-Agent`; deployed, API Gateway fills them in).
    pub fn of(req: &Request) -> Origin {
        let (source_ip, user_agent) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                (ctx.http.source_ip.clone(), ctx.http.user_agent.clone())
            }
            _ => (None, None),
        };
        let request_id = Some(crate::http::request_id(req)).filter(|id| !id.is_empty());
        Origin {
            request_id,
            source_ip: source_ip.filter(|s| !s.is_empty()),
            // Bounded: a header is the client's to choose.
            user_agent: user_agent
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(512).collect()),
        }
    }
}

/// What a record is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub artifact_id: Option<String>,
    pub workflow_id: Option<String>,
    pub path: Option<String>,
    pub version: Option<u64>,
}

impl Subject {
    pub fn artifact(a: &model::Artifact, version: Option<u64>) -> Subject {
        Subject {
            artifact_id: Some(a.artifact_id.clone()),
            workflow_id: Some(a.workflow_id.clone()),
            path: Some(a.path.clone()),
            version,
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub record_id: String,
    /// RFC 3339 UTC, microseconds.
    pub time: String,
    pub action: Action,
    /// `success` or `refused`.
    pub outcome: String,
    /// The HTTP status of a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub actor: Actor,
    /// A download's `Range` as served (`start-end`, inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// The link a `link.created`/`link.revoked` record is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_id: Option<String>,
    /// A bundle's selection digest (its manifest's, and its ETag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The last time handed out, in Unix microseconds (see [`now_micros`]).
static LAST_MICROS: AtomicI64 = AtomicI64::new(0);

/// Now in Unix microseconds, strictly increasing within the process: two
/// records made one after the other always sort in that order.
fn now_micros() -> i64 {
    let wall = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    let mut last = LAST_MICROS.load(Ordering::SeqCst);
    loop {
        let next = wall.max(last + 1);
        match LAST_MICROS.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// RFC 3339 UTC with exactly six fraction digits (fixed width: the text
/// sorts as the time).
pub fn format_micros(micros: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&format).unwrap_or_default()
}

impl Record {
    /// A record of `action` by `actor` about `subject`, made now.
    pub fn new(action: Action, actor: Actor, subject: Subject, origin: &Origin) -> Record {
        let micros = now_micros();
        Record {
            record_id: uuid::Uuid::new_v4().simple().to_string(),
            time: format_micros(micros),
            action,
            outcome: "success".into(),
            status: None,
            artifact_id: subject.artifact_id,
            workflow_id: subject.workflow_id,
            path: subject.path,
            version: subject.version,
            actor,
            range: None,
            link_id: None,
            digest: None,
            request_id: origin.request_id.clone(),
            source_ip: origin.source_ip.clone(),
            user_agent: origin.user_agent.clone(),
        }
    }

    /// The same record as a refusal with `status`.
    pub fn refused(mut self, status: u16) -> Record {
        self.outcome = "refused".into();
        self.status = Some(status);
        self
    }

    fn sort_key(&self) -> String {
        format!("{}#{}", self.time, self.record_id)
    }

    /// The item as stored under `org`, expiring `days` after now.
    pub fn to_item(&self, org: &str, days: u64) -> HashMap<String, AttributeValue> {
        let sk = self.sort_key();
        let expires = OffsetDateTime::now_utc().unix_timestamp()
            + i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX / 2);
        let mut item = HashMap::from([
            (
                "pk".to_owned(),
                s(record_pk(org, self.artifact_id.as_deref())),
            ),
            ("sk".to_owned(), s(&sk)),
            ("gsi4pk".to_owned(), s(org_pk(org))),
            ("gsi4sk".to_owned(), s(sk)),
            ("org".to_owned(), s(org)),
            ("recordId".to_owned(), s(&self.record_id)),
            ("time".to_owned(), s(&self.time)),
            ("action".to_owned(), s(self.action.as_str())),
            ("outcome".to_owned(), s(&self.outcome)),
            (
                "expiresAt".to_owned(),
                AttributeValue::N(expires.to_string()),
            ),
        ]);
        let kind = match (self.action.is_change(), self.status) {
            (true, None) => "change",
            (false, None) => "read",
            (_, Some(_)) => "refused",
        };
        item.insert("kind".into(), s(kind));
        match &self.actor {
            Actor::Sub(sub) => item.insert("actorSub".into(), s(sub)),
            Actor::LinkId(id) => item.insert("actorLinkId".into(), s(id)),
            Actor::System(name) => item.insert("actorSystem".into(), s(name)),
        };
        let optional = [
            ("artifactId", &self.artifact_id),
            ("workflowId", &self.workflow_id),
            ("path", &self.path),
            ("range", &self.range),
            ("linkId", &self.link_id),
            ("digest", &self.digest),
            ("requestId", &self.request_id),
            ("sourceIp", &self.source_ip),
            ("userAgent", &self.user_agent),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                item.insert(name.into(), s(v));
            }
        }
        if let Some(v) = self.version {
            item.insert("version".into(), AttributeValue::N(v.to_string()));
        }
        if let Some(status) = self.status {
            item.insert("status".into(), AttributeValue::N(status.to_string()));
        }
        item
    }

    /// A stored item back as a record (and its org).
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<(String, Record)> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v.parse::<u64>().ok(),
            _ => None,
        };
        let required = |name: &str| text(name).ok_or_else(|| malformed(name));
        let action = Action::parse(&required("action")?).ok_or_else(|| malformed("action"))?;
        let actor = match (text("actorSub"), text("actorLinkId"), text("actorSystem")) {
            (Some(sub), _, _) => Actor::Sub(sub),
            (None, Some(id), _) => Actor::LinkId(id),
            (None, None, Some(name)) => Actor::System(name),
            (None, None, None) => return Err(malformed("actor")),
        };
        Ok((
            required("org")?,
            Record {
                record_id: required("recordId")?,
                time: required("time")?,
                action,
                outcome: required("outcome")?,
                status: number("status").and_then(|n| u16::try_from(n).ok()),
                artifact_id: text("artifactId"),
                workflow_id: text("workflowId"),
                path: text("path"),
                version: number("version"),
                actor,
                range: text("range"),
                link_id: text("linkId"),
                digest: text("digest"),
                request_id: text("requestId"),
                source_ip: text("sourceIp"),
                user_agent: text("userAgent"),
            },
        ))
    }
}

/// The records of one bundle read by `actor`: one for the bundle (its
/// selection `digest`), then one per included artifact
/// (`(artifactId, path, version)`).
pub fn bundle_records<'a>(
    actor: &Actor,
    origin: &Origin,
    workflow_id: &str,
    digest: &str,
    entries: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) -> Vec<Record> {
    let mut bundle = Record::new(
        Action::Bundled,
        actor.clone(),
        Subject {
            workflow_id: Some(workflow_id.to_owned()),
            ..Subject::default()
        },
        origin,
    );
    bundle.digest = Some(digest.to_owned());
    let mut records = vec![bundle];
    for (artifact_id, path, version) in entries {
        let mut entry = Record::new(
            Action::BundleEntry,
            actor.clone(),
            Subject {
                artifact_id: Some(artifact_id.to_owned()),
                workflow_id: Some(workflow_id.to_owned()),
                path: Some(path.to_owned()),
                version: Some(version),
            },
            origin,
        );
        entry.digest = Some(digest.to_owned());
        records.push(entry);
    }
    records
}

/// The partition of one artifact's records.
pub fn record_pk(org: &str, artifact_id: Option<&str>) -> String {
    format!("{org}#AU#{}", artifact_id.unwrap_or(NO_ARTIFACT))
}

/// The index partition of an org's records.
pub fn org_pk(org: &str) -> String {
    format!("{org}#AU")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn malformed(what: &str) -> Error {
    Error::Integrity(format!("audit read a malformed {what}"))
}

/// Which records a read asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub action: Option<Action>,
    pub subject: Option<String>,
    pub workflow_id: Option<String>,
    /// Inclusive lower bound, microseconds.
    pub after: Option<i64>,
    /// Exclusive upper bound, microseconds.
    pub before: Option<i64>,
    pub limit: usize,
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// From query parameters; a bad value is a 400 naming it.
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<AuditQuery> {
        let mut q = AuditQuery {
            limit: DEFAULT_LIMIT,
            ..AuditQuery::default()
        };
        for (name, value) in params {
            match name {
                "action" => {
                    q.action =
                        Some(Action::parse(value).ok_or_else(|| {
                            Error::bad_request("action", "is not an audit action")
                        })?)
                }
                "subject" => {
                    if value.is_empty() || value.len() > 256 {
                        return Err(Error::bad_request("subject", "must be 1 to 256 bytes"));
                    }
                    q.subject = Some(value.to_owned());
                }
                "workflowId" => {
                    model::validate_workflow_id(value)?;
                    q.workflow_id = Some(value.to_owned());
                }
                "after" => q.after = Some(instant("after", value)?),
                "before" => q.before = Some(instant("before", value)?),
                "limit" => {
                    q.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            Error::bad_request("limit", format!("must be 1 to {MAX_LIMIT}"))
                        })?
                }
                "cursor" => q.cursor = Some(value.to_owned()),
                _ => {}
            }
        }
        if let (Some(a), Some(b)) = (q.after, q.before)
            && a >= b
        {
            return Err(Error::bad_request("before", "must be later than after"));
        }
        Ok(q)
    }
}

fn instant(field: &'static str, value: &str) -> Result<i64> {
    OffsetDateTime::parse(value, &Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1000).ok())
        .filter(|m| *m >= 0)
        .ok_or_else(|| Error::bad_request(field, "must be an RFC 3339 time"))
}

/// One page of records, newest first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub records: Vec<Record>,
    pub next_cursor: Option<String>,
}

/// Where a read looks: one artifact's partition or the org's index partition.
struct Plan {
    org: String,
    artifact_id: Option<String>,
    lo: Option<String>,
    hi: Option<String>,
    binding: serde_json::Value,
}

impl Plan {
    fn new(org: &str, artifact_id: Option<&str>, q: &AuditQuery) -> Plan {
        Plan {
            org: org.to_owned(),
            artifact_id: artifact_id.map(str::to_owned),
            lo: q.after.map(format_micros),
            hi: q.before.map(format_micros),
            binding: serde_json::json!([
                org,
                artifact_id,
                q.action.map(Action::as_str),
                q.subject,
                q.workflow_id,
                q.after,
                q.before,
            ]),
        }
    }

    /// Whether a cursor key lies inside this read.
    fn owns(&self, key: &CursorKey) -> bool {
        let partition = match &self.artifact_id {
            Some(id) => key.pk == record_pk(&self.org, Some(id)),
            None => key
                .pk
                .strip_prefix(&format!("{}#AU#", self.org))
                .is_some_and(|rest| !rest.contains('#')),
        };
        partition
            && self
                .lo
                .as_ref()
                .is_none_or(|lo| key.sk.as_str() >= lo.as_str())
            && self
                .hi
                .as_ref()
                .is_none_or(|hi| key.sk.as_str() < hi.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorKey {
    pk: String,
    sk: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    v: u8,
    k: CursorKey,
    c: String,
}

impl Cursor {
    fn new(plan: &Plan, k: CursorKey) -> Cursor {
        let mut cursor = Cursor {
            v: CURSOR_FORMAT,
            k,
            c: String::new(),
        };
        cursor.c = cursor.check(plan);
        cursor
    }

    fn check(&self, plan: &Plan) -> String {
        let canonical = serde_json::json!(["audit", plan.binding, self.v, self.k]);
        URL_SAFE_NO_PAD.encode(&Sha256::digest(canonical.to_string().as_bytes())[..16])
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str, plan: &Plan) -> Result<Cursor> {
        let bad = || Error::bad_request("cursor", "is not a cursor of this audit query");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.v == CURSOR_FORMAT && cursor.c == cursor.check(plan) && plan.owns(&cursor.k) {
            Ok(cursor)
        } else {
            Err(bad())
        }
    }
}

impl Store {
    /// The action that writes `record` under `org`: appended to the
    /// transaction of the change it records.
    pub fn audit_item(&self, org: &str, record: &Record) -> Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(self.metadata.table())
                    .set_item(Some(record.to_item(org, self.config.audit_days)))
                    .build()
                    .map_err(|e| Error::upstream("dynamodb", e))?,
            )
            .build())
    }

    /// Write read records before their content is sent: one `PutItem` for
    /// one record, else `BatchWriteItem`s (unprocessed items retried a few
    /// times). Any failure is an error: the caller answers 500, not content.
    pub async fn record_reads(&self, org: &str, records: &[Record]) -> Result<()> {
        let ddb = self.metadata.client();
        let table = self.metadata.table();
        let days = self.config.audit_days;
        if let [record] = records {
            ddb.put_item()
                .table_name(table)
                .set_item(Some(record.to_item(org, days)))
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            return Ok(());
        }
        let batches = records.chunks(BATCH).map(|chunk| async move {
            let mut requests = chunk
                .iter()
                .map(|r| {
                    PutRequest::builder()
                        .set_item(Some(r.to_item(org, days)))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| Error::upstream("dynamodb", e))
                })
                .collect::<Result<Vec<_>>>()?;
            for attempt in 0..5u64 {
                let out = ddb
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(|e| Error::upstream("dynamodb", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            Err(Error::upstream(
                "dynamodb",
                "audit records left unprocessed after retries",
            ))
        });
        futures_util::future::try_join_all(batches).await?;
        Ok(())
    }

    /// Record a refused attempt of `principal` (best effort: the refusal
    /// is answered whether or not its record could be written).
    pub async fn record_refusal(
        &self,
        principal: &Principal,
        origin: &Origin,
        action: Action,
        subject: Subject,
        error: &Error,
    ) {
        let status = match error {
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Gone(_) | Error::Expired => StatusCode::GONE,
            Error::Held { .. } => StatusCode::CONFLICT,
            _ => return,
        };
        self.record_refused(principal, origin, action, subject, status.as_u16())
            .await;
    }

    /// Record a refused attempt answered with `status` (best effort), for
    /// refusals no error variant tells apart (a plain [`Error::Conflict`],
    /// e.g. an `If-Match` mismatch, is not recorded).
    pub async fn record_refused(
        &self,
        principal: &Principal,
        origin: &Origin,
        action: Action,
        subject: Subject,
        status: u16,
    ) {
        // Only well-formed ids name a partition; anything else is recorded without.
        let subject = Subject {
            artifact_id: subject
                .artifact_id
                .filter(|id| model::parse_artifact_id(id).is_ok()),
            workflow_id: subject
                .workflow_id
                .filter(|w| model::validate_workflow_id(w).is_ok()),
            ..subject
        };
        let record = Record::new(
            action,
            Actor::Sub(principal.subject.clone()),
            subject,
            origin,
        )
        .refused(status);
        if let Err(e) = self.record_reads(&principal.org, &[record]).await {
            tracing::warn!(error = %e, "could not record a refused attempt");
        }
    }

    /// `GET /v1/artifacts/{artifactId}/audit`: one artifact's history,
    /// newest first — also after the artifact is gone. An id with neither
    /// an artifact nor a record in the caller's org is the plain 404.
    pub async fn artifact_audit(
        &self,
        principal: &Principal,
        artifact_id: &str,
        query: &AuditQuery,
    ) -> Result<AuditPage> {
        principal.require(Scope::Admin)?;
        let artifact_id = model::parse_artifact_id(artifact_id)?;
        let plan = Plan::new(&principal.org, Some(artifact_id), query);
        let page = self.audit_page(&plan, query).await?;
        if page.records.is_empty()
            && query.cursor.is_none()
            && !self.has_history(&principal.org, artifact_id).await?
        {
            return Err(Error::NotFound("artifact"));
        }
        Ok(page)
    }

    /// `GET /v1/audit`: the org's records, newest first.
    pub async fn org_audit(&self, principal: &Principal, query: &AuditQuery) -> Result<AuditPage> {
        principal.require(Scope::Admin)?;
        let plan = Plan::new(&principal.org, None, query);
        self.audit_page(&plan, query).await
    }

    /// Whether `artifact_id` exists or ever had a record in `org`.
    async fn has_history(&self, org: &str, artifact_id: &str) -> Result<bool> {
        if self.metadata.artifact(org, artifact_id).await?.is_some() {
            return Ok(true);
        }
        let out = self
            .metadata
            .client()
            .query()
            .table_name(self.metadata.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(record_pk(org, Some(artifact_id))))
            .limit(1)
            .send()
            .await
            .map_err(|e| Error::upstream("dynamodb", e))?;
        Ok(out.count > 0)
    }

    async fn audit_page(&self, plan: &Plan, q: &AuditQuery) -> Result<AuditPage> {
        let mut start = q
            .cursor
            .as_deref()
            .map(|c| Cursor::decode(c, plan))
            .transpose()?
            .map(|c| {
                let mut key =
                    HashMap::from([("pk".to_owned(), s(&c.k.pk)), ("sk".to_owned(), s(&c.k.sk))]);
                if plan.artifact_id.is_none() {
                    key.insert("gsi4pk".into(), s(org_pk(&plan.org)));
                    key.insert("gsi4sk".into(), s(&c.k.sk));
                }
                key
            });
        let (pk_name, sk_name, pk) = match &plan.artifact_id {
            Some(id) => ("pk", "sk", record_pk(&plan.org, Some(id))),
            None => ("gsi4pk", "gsi4sk", org_pk(&plan.org)),
        };
        let range = match (&plan.lo, &plan.hi) {
            (Some(_), Some(_)) => format!(" AND {sk_name} BETWEEN :lo AND :hi"),
            (Some(_), None) => format!(" AND {sk_name} >= :lo"),
            (None, Some(_)) => format!(" AND {sk_name} < :hi"),
            (None, None) => String::new(),
        };
        let mut filters = Vec::new();
        let mut values = HashMap::from([(":pk".to_owned(), s(pk))]);
        if let Some(lo) = &plan.lo {
            values.insert(":lo".into(), s(lo));
        }
        if let Some(hi) = &plan.hi {
            values.insert(":hi".into(), s(hi));
        }
        if let Some(action) = q.action {
            filters.push("#action = :action");
            values.insert(":action".into(), s(action.as_str()));
        }
        if let Some(sub) = &q.subject {
            filters.push("actorSub = :sub");
            values.insert(":sub".into(), s(sub));
        }
        if let Some(wf) = &q.workflow_id {
            filters.push("workflowId = :wf");
            values.insert(":wf".into(), s(wf));
        }
        let filtered = !filters.is_empty();
        let mut records = Vec::new();
        let mut last: Option<CursorKey> = None;
        let mut more = false;
        for _ in 0..MAX_ROUNDS {
            let want = q.limit - records.len();
            let ask = if filtered {
                (want * 4).clamp(100, 1000)
            } else {
                want
            };
            let mut query = self
                .metadata
                .client()
                .query()
                .table_name(self.metadata.table())
                .key_condition_expression(format!("{pk_name} = :pk{range}"))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(ask).unwrap_or(1000))
                .set_exclusive_start_key(start.take());
            if plan.artifact_id.is_none() {
                query = query.index_name(AUDIT_INDEX);
            } else {
                query = query.consistent_read(true);
            }
            if filtered {
                query = query.filter_expression(filters.join(" AND "));
                if q.action.is_some() {
                    query = query.expression_attribute_names("#action", "action");
                }
            }
            let out = query
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            let items = out.items.unwrap_or_default();
            let n = items.len();
            for (i, item) in items.iter().enumerate() {
                let (_, record) = Record::from_item(item)?;
                records.push(record);
                if records.len() == q.limit {
                    last = Some(key_of(item)?);
                    // Stopped inside this page: there may be more after it.
                    more = i + 1 < n
                        || out
                            .last_evaluated_key
                            .as_ref()
                            .is_some_and(|k| !k.is_empty());
                    break;
                }
            }
            if records.len() == q.limit {
                break;
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => {
                    last = Some(key_of(&key)?);
                    more = true;
                    start = Some(key);
                }
                _ => {
                    more = false;
                    break;
                }
            }
        }
        let next_cursor = match (more, last) {
            (true, Some(key)) => Some(Cursor::new(plan, key).encode()),
            _ => None,
        };
        Ok(AuditPage {
            records,
            next_cursor,
        })
    }
}

fn key_of(item: &HashMap<String, AttributeValue>) -> Result<CursorKey> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(malformed(name)),
    };
    Ok(CursorKey {
        pk: text("pk")?,
        sk: text("sk")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let mut r = Record::new(
            Action::Downloaded,
            Actor::Sub("alice".into()),
            Subject {
                artifact_id: Some("0123456789abcdef0123456789abcdef".into()),
                workflow_id: Some("wf-1".into()),
                path: Some("a/b.txt".into()),
                version: Some(3),
            },
            &Origin {
                request_id: Some("req".into()),
                source_ip: Some("10.0.0.1".into()),
                user_agent: Some("curl/8".into()),
            },
        );
        r.range = Some("0-9".into());
        r
    }

    #[test]
    fn action_names_round_trip_and_changes_are_told_from_reads() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("artifact.eaten"), None);
        assert!(Action::VersionCreated.is_change());
        assert!(Action::ArtifactPurged.is_change());
        assert!(Action::LinkRevoked.is_change());
        assert!(!Action::Downloaded.is_change());
        assert!(!Action::BundleEntry.is_change());
    }

    #[test]
    fn items_round_trip_keyed_under_the_org() {
        let r = record();
        let item = r.to_item("acme", 400);
        let (org, back) = Record::from_item(&item).unwrap();
        assert_eq!((org.as_str(), &back), ("acme", &r));
        let pk = match &item["pk"] {
            AttributeValue::S(v) => v.clone(),
            _ => panic!(),
        };
        assert_eq!(pk, "acme#AU#0123456789abcdef0123456789abcdef");
        assert_eq!(item["gsi4pk"], s("acme#AU"));
        assert_eq!(item["kind"], s("read"));
        let refused = r.clone().refused(403).to_item("acme", 1);
        assert_eq!(refused["kind"], s("refused"));
        let mut change = r;
        change.action = Action::VersionCreated;
        assert_eq!(change.to_item("acme", 1)["kind"], s("change"));
        // The service as actor: stored apart from subjects, and back.
        change.actor = Actor::purge();
        let item = change.to_item("acme", 1);
        assert!(!item.contains_key("actorSub"));
        assert_eq!(item["actorSystem"], s("purge"));
        assert_eq!(Record::from_item(&item).unwrap().1.actor, Actor::purge());
        assert_eq!(
            serde_json::to_value(&change.actor).unwrap(),
            serde_json::json!({"system": "purge"})
        );
    }

    #[test]
    fn times_are_fixed_width_and_strictly_increasing() {
        let a = now_micros();
        let b = now_micros();
        assert!(b > a);
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert!(format_micros(a) < format_micros(b));
        assert_eq!(format_micros(a).len(), format_micros(b).len());
    }

    #[test]
    fn query_parameters_name_their_field() {
        let field = |pairs: &[(&str, &str)]| match AuditQuery::parse(pairs.iter().copied()) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&[("action", "nope")]), "action");
        assert_eq!(field(&[("after", "yesterday")]), "after");
        assert_eq!(field(&[("limit", "0")]), "limit");
        assert_eq!(field(&[("limit", "1001")]), "limit");
        assert_eq!(field(&[("subject", "")]), "subject");
        assert_eq!(field(&[("workflowId", "a/b")]), "workflowId");
        assert_eq!(
            field(&[
                ("after", "2026-01-02T00:00:00Z"),
                ("before", "2026-01-01T00:00:00Z")
            ]),
            "before"
        );
        let q = AuditQuery::parse([("action", "link.used"), ("limit", "5")]).unwrap();
        assert_eq!((q.action, q.limit), (Some(Action::LinkUsed), 5));
    }

    #[test]
    fn cursors_check_for_their_org_and_query_only() {
        let q = AuditQuery::parse([("action", "artifact.downloaded")]).unwrap();
        let plan = Plan::new("acme", None, &q);
        let key = CursorKey {
            pk: "acme#AU#0123456789abcdef0123456789abcdef".into(),
            sk: "2026-01-01T00:00:00.000000Z#x".into(),
        };
        let text = Cursor::new(&plan, key.clone()).encode();
        assert!(Cursor::decode(&text, &plan).is_ok());
        // Another org, other filters, one artifact's route: all refused.
        let others = [
            Plan::new("evil", None, &q),
            Plan::new("acme", None, &AuditQuery::default()),
            Plan::new("acme", Some("0123456789abcdef0123456789abcdef"), &q),
        ];
        for other in &others {
            assert!(Cursor::decode(&text, other).is_err());
        }
        // A forged cursor that checks but points into another org.
        let evil = CursorKey {
            pk: "evil#AU#0123456789abcdef0123456789abcdef".into(),
            ..key.clone()
        };
        assert!(Cursor::decode(&Cursor::new(&plan, evil).encode(), &plan).is_err());
        // Outside the time range.
        let ranged = AuditQuery::parse([("after", "2026-06-01T00:00:00Z")]).unwrap();
        let rplan = Plan::new("acme", None, &ranged);
        assert!(Cursor::decode(&Cursor::new(&rplan, key).encode(), &rplan).is_err());
        // Every cut or change.
        for i in 0..text.len() {
            assert!(Cursor::decode(&text[..i], &plan).is_err());
        }
    }
}
