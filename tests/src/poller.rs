//! A local stand-in for Lambda's SQS event source mapping (SPEC §11, §19):
//! receive a batch from the ingest queue, invoke the ingest function with the
//! SQS event Lambda would build, and delete only the records the function
//! did not name in `batchItemFailures` (`ReportBatchItemFailures`). A failed
//! invocation deletes nothing. Records left undeleted come back after the
//! queue's visibility timeout, and move to the dead-letter queue after its
//! receive limit, exactly as deployed.
//!
//! `make dev` runs it as `artifacts-poller`, invoking `artifacts-ingest`
//! through `cargo lambda watch`'s Invoke API ([`HttpInvoke`]); tests invoke
//! the real handler in-process with their own [`Invoke`].
//!
//! It polls without waiting on the queue (`WaitTimeSeconds` 0) and sleeps
//! between empty receives: the project's emulator serves one request at a
//! time (scripts/emulator.py), so a 20-second long poll would hold every
//! other call to it — the very S3 PUT whose event it waits for included.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::BoxError;

/// Calls the ingest function with one event and returns its answer; an
/// `Err` is a failed invocation (a function error, or none reached).
pub trait Invoke: Sync {
    fn invoke(&self, event: Value) -> impl Future<Output = Result<Value, BoxError>> + Send;

    /// Whether an invocation can be attempted now; the poller receives
    /// nothing until it can (a record received in vain counts towards the
    /// dead-letter limit).
    fn ready(&self) -> impl Future<Output = bool> + Send {
        async { true }
    }
}

/// A function behind an AWS Lambda Invoke API: `cargo lambda watch`'s
/// `POST {base}/2015-03-31/functions/{function}/invocations`.
pub struct HttpInvoke {
    client: reqwest::Client,
    /// host:port of the Invoke API.
    address: String,
    url: String,
    /// Whether the last attempt reached the API (else [`Invoke::ready`]
    /// probes it before the next receive).
    reachable: AtomicBool,
}

impl HttpInvoke {
    pub fn new(base: &str, function: &str) -> Result<Self, BoxError> {
        let base = base.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)?;
        let address = format!(
            "{}:{}",
            parsed.host_str().ok_or("the Invoke API URL has no host")?,
            parsed.port_or_known_default().unwrap_or(80)
        );
        let client = reqwest::Client::builder()
            // The watcher builds a function on its first invocation.
            .timeout(Duration::from_secs(900))
            .build()?;
        Ok(HttpInvoke {
            url: format!("{base}/2015-03-31/functions/{function}/invocations"),
            client,
            address,
            reachable: AtomicBool::new(false),
        })
    }
}

impl Invoke for HttpInvoke {
    async fn invoke(&self, event: Value) -> Result<Value, BoxError> {
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .inspect_err(|e| {
                if e.is_connect() {
                    self.reachable.store(false, Ordering::SeqCst);
                }
            })?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response.bytes().await?;
        if !status.is_success() || function_error {
            return Err(format!(
                "invocation failed ({status}): {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// A TCP connect to the API (a request would be logged by the watcher
    /// as a call to a function that does not exist).
    async fn ready(&self) -> bool {
        if self.reachable.load(Ordering::SeqCst) {
            return true;
        }
        let connected = tokio::net::TcpStream::connect(&self.address).await.is_ok();
        self.reachable.store(connected, Ordering::SeqCst);
        connected
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub received: usize,
    /// Left on the queue for a later receive.
    pub failed: usize,
    pub deleted: usize,
}

/// Polls one queue for one function, as Lambda's event source mapping does.
pub struct Poller {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    region: String,
    /// Records per invocation (the template's BatchSize).
    pub batch_size: i32,
    /// Overrides the queue's visibility timeout on receive (tests use a
    /// short one to see retries quickly).
    pub visibility_timeout: Option<i32>,
    /// Pause after an empty receive.
    pub idle: Duration,
}

impl Poller {
    pub async fn new(sqs: aws_sdk_sqs::Client, queue_url: &str) -> Result<Self, BoxError> {
        let queue_arn = crate::queue_arn(&sqs, queue_url).await?;
        let region = queue_arn
            .split(':')
            .nth(3)
            .unwrap_or("us-east-1")
            .to_owned();
        Ok(Poller {
            sqs,
            queue_url: queue_url.to_owned(),
            queue_arn,
            region,
            batch_size: 5,
            visibility_timeout: None,
            idle: Duration::from_millis(250),
        })
    }

    /// Receive one batch (if any), invoke, delete what succeeded.
    pub async fn poll_once(&self, invoke: &impl Invoke) -> Result<Round, BoxError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(0)
            .set_visibility_timeout(self.visibility_timeout)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages();
        let mut round = Round {
            received: messages.len(),
            ..Round::default()
        };
        if messages.is_empty() {
            return Ok(round);
        }
        let event = self.sqs_event(messages);
        let failed: Vec<&str> = match invoke.invoke(event).await {
            Ok(answer) => match failed_ids(&answer, messages) {
                Some(failed) => failed,
                None => {
                    eprintln!(
                        "poller: unreadable batch response, the whole batch is retried: {answer}"
                    );
                    messages.iter().filter_map(Message::message_id).collect()
                }
            },
            Err(e) => {
                eprintln!("poller: {e}; the batch is retried");
                messages.iter().filter_map(Message::message_id).collect()
            }
        };
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.message_id().is_none_or(|id| !failed.contains(&id)))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        round.failed = messages.len() - done.len();
        if !done.is_empty() {
            let deleted = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await?;
            for failure in deleted.failed() {
                eprintln!("poller: could not delete a record: {failure:?}");
            }
            round.deleted = deleted.successful().len();
        }
        Ok(round)
    }

    /// Poll until the task is dropped.
    pub async fn run(&self, invoke: &impl Invoke) {
        loop {
            if !invoke.ready().await {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            match self.poll_once(invoke).await {
                Ok(round) if round.received == 0 => tokio::time::sleep(self.idle).await,
                Ok(round) => eprintln!(
                    "poller: {} event(s): {} done, {} left for a retry",
                    round.received, round.deleted, round.failed
                ),
                Err(e) => {
                    eprintln!("poller: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The event Lambda's SQS event source mapping hands the function.
    fn sqs_event(&self, messages: &[Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: Map<String, Value> = m
                    .attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect();
                let message_attributes: Map<String, Value> = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| {
                        let value = json!({
                            "stringValue": v.string_value(),
                            "binaryValue": v.binary_value().map(|b| STANDARD.encode(b.as_ref())),
                            "stringListValues": v.string_list_values(),
                            "binaryListValues": v
                                .binary_list_values()
                                .iter()
                                .map(|b| STANDARD.encode(b.as_ref()))
                                .collect::<Vec<_>>(),
                            "dataType": v.data_type(),
                        });
                        (k.clone(), value)
                    })
                    .collect();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                })
            })
            .collect();
        json!({ "Records": records })
    }
}

/// The message ids a batch response names as failed, read as Lambda reads
/// it: no answer, no or an empty `batchItemFailures` is full success; an
/// identifier that is missing, empty or not in the batch fails the whole
/// batch (`None`).
fn failed_ids<'m>(answer: &Value, messages: &'m [Message]) -> Option<Vec<&'m str>> {
    let failures = match answer.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(failures)) => failures,
        Some(_) => return None,
    };
    failures
        .iter()
        .map(|f| {
            let id = f
                .get("itemIdentifier")?
                .as_str()
                .filter(|id| !id.is_empty())?;
            messages
                .iter()
                .filter_map(Message::message_id)
                .find(|m| *m == id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_responses_read_as_lambda_reads_them() {
        let messages: Vec<Message> = ["a", "b"]
            .iter()
            .map(|id| Message::builder().message_id(*id).build())
            .collect();
        let ids = |answer: Value| failed_ids(&answer, &messages);
        assert_eq!(ids(Value::Null), Some(vec![]));
        assert_eq!(ids(json!({})), Some(vec![]));
        assert_eq!(ids(json!({"batchItemFailures": []})), Some(vec![]));
        assert_eq!(
            ids(json!({"batchItemFailures": [{"itemIdentifier": "b"}]})),
            Some(vec!["b"])
        );
        assert_eq!(
            ids(json!({"batchItemFailures": [{"itemIdentifier": "zz"}]})),
            None
        );
        assert_eq!(
            ids(json!({"batchItemFailures": [{"itemIdentifier": ""}]})),
            None
        );
        assert_eq!(ids(json!({"batchItemFailures": [{}]})), None);
        assert_eq!(ids(json!({"batchItemFailures": "b"})), None);
    }
}
