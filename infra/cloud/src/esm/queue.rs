//! SQS event source mappings with AWS's semantics: `BatchSize`, `MaximumBatchingWindowInSeconds`,
//! `ReportBatchItemFailures`; a message is deleted once its invocation succeeded and it was not
//! reported as failed, and comes again otherwise (the queue's redrive policy moves it to its
//! dead-letter queue after `maxReceiveCount` receives). One deviation: a failed message is made
//! visible again after a second, not after the queue's visibility timeout, so that local retries
//! do not stall for minutes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::Value as Json;
use tokio::sync::watch;

use crate::lambda::FunctionHost;
use tally_stack::mappings::{explicit_mappings, source_kind};
use tally_stack::template::{number, Template, TemplateError, ACCOUNT, REGION};

#[derive(Debug, Clone)]
pub struct QueueMappingSpec {
    pub logical_id: String,
    pub function: String,
    pub queue_name: String,
    pub queue_arn: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_batch_item_failures: bool,
}

impl QueueMappingSpec {
    /// Every SQS mapping of the template.
    pub fn all(template: &Template) -> Result<Vec<QueueMappingSpec>, TemplateError> {
        let mut out = Vec::new();
        for (r, function, props) in explicit_mappings(template)? {
            if source_kind(template, &props) != Some("AWS::SQS::Queue") {
                continue;
            }
            let arn = props["EventSourceArn"].as_str().unwrap_or_default();
            let queue = template.logical_id_of(arn).unwrap_or_default();
            for unsupported in ["FilterCriteria", "ScalingConfig"] {
                if props.get(unsupported).is_some() {
                    return Err(TemplateError::Unsupported {
                        what: format!("{unsupported} on an SQS mapping"),
                        at: format!("Resources.{}", r.logical_id),
                    });
                }
            }
            out.push(QueueMappingSpec {
                logical_id: r.logical_id.clone(),
                function: function.to_string(),
                queue_name: template.physical_name(queue),
                queue_arn: template.arn(queue)?,
                batch_size: number(&props, "BatchSize").unwrap_or(10.0).max(1.0) as usize,
                batching_window: Duration::from_secs_f64(
                    number(&props, "MaximumBatchingWindowInSeconds").unwrap_or(0.0),
                ),
                report_batch_item_failures: props
                    .get("FunctionResponseTypes")
                    .and_then(Json::as_array)
                    .is_some_and(|a| a.iter().any(|t| t == "ReportBatchItemFailures")),
            });
        }
        Ok(out)
    }
}

/// What a queue mapping did.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    pub invocations: u64,
    pub messages: u64,
    pub deleted: u64,
    pub retried: u64,
}

pub struct QueueMapping {
    pub spec: QueueMappingSpec,
    host: Arc<FunctionHost>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    idle_poll: Duration,
    pub stats: Mutex<QueueStats>,
    /// When the latest receive began, if it found the queue empty and nothing is in hand.
    last_empty_receive: Mutex<Option<Instant>>,
}

/// The Lambda event for `messages`, as the SQS event source mapping builds it.
pub fn sqs_event(queue_arn: &str, messages: &[Message]) -> Json {
    let records: Vec<Json> = messages
        .iter()
        .map(|m| {
            let attrs: serde_json::Map<String, Json> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), Json::String(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body().unwrap_or_default(),
                "attributes": attrs,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// The message ids a partial batch response names; `Err` when it is not a valid one.
fn failed_ids(body: &[u8], messages: &[Message]) -> Result<BTreeSet<String>, ()> {
    let v: Json = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Ok(BTreeSet::new()),
    };
    let Some(failures) = v.get("batchItemFailures").and_then(Json::as_array) else {
        return Ok(BTreeSet::new());
    };
    let known: BTreeSet<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
    failures
        .iter()
        .map(|f| {
            let id = f.get("itemIdentifier").and_then(Json::as_str).ok_or(())?;
            known.contains(id).then(|| id.to_string()).ok_or(())
        })
        .collect()
}

impl QueueMapping {
    pub fn new(
        spec: QueueMappingSpec, host: Arc<FunctionHost>, sqs: aws_sdk_sqs::Client, endpoint: &str,
        idle_poll: Duration,
    ) -> Arc<Self> {
        let queue_url = format!(
            "{}/{ACCOUNT}/{}",
            endpoint.trim_end_matches('/'),
            spec.queue_name
        );
        Arc::new(QueueMapping {
            spec,
            host,
            sqs,
            queue_url,
            idle_poll,
            stats: Mutex::new(QueueStats::default()),
            last_empty_receive: Mutex::new(None),
        })
    }

    /// True when the latest receive found the queue empty and nothing is being processed.
    pub fn caught_up(&self) -> bool {
        self.last_empty_receive.lock().unwrap().is_some()
    }

    /// True when the latest receive began at or after `t` and found the queue empty: everything
    /// sent before `t` is handled.
    pub fn empty_since(&self, t: Instant) -> bool {
        self.last_empty_receive
            .lock()
            .unwrap()
            .is_some_and(|began| began >= t)
    }

    async fn receive(&self, max: usize) -> Vec<Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map(|o| o.messages().to_vec())
            .unwrap_or_default()
    }

    /// Polls the queue until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let began = Instant::now();
            let mut batch = self.receive(self.spec.batch_size).await;
            if batch.is_empty() {
                *self.last_empty_receive.lock().unwrap() = Some(began);
                tokio::time::sleep(self.idle_poll).await;
                continue;
            }
            *self.last_empty_receive.lock().unwrap() = None;
            // Fill the batch up to BatchSize, or what comes within the batching window.
            while batch.len() < self.spec.batch_size && began.elapsed() < self.spec.batching_window
            {
                let more = self.receive(self.spec.batch_size - batch.len()).await;
                if more.is_empty() {
                    tokio::time::sleep(self.idle_poll.min(self.spec.batching_window)).await;
                }
                batch.extend(more);
            }
            self.process(batch).await;
        }
    }

    async fn process(&self, batch: Vec<Message>) {
        {
            let mut s = self.stats.lock().unwrap();
            s.invocations += 1;
            s.messages += batch.len() as u64;
        }
        let event = sqs_event(&self.spec.queue_arn, &batch);
        let outcome = self
            .host
            .invoke(serde_json::to_vec(&event).unwrap_or_default())
            .await;
        let failed: BTreeSet<String> = match &outcome {
            Ok(body) if self.spec.report_batch_item_failures => failed_ids(body, &batch)
                .unwrap_or_else(|_| {
                    batch
                        .iter()
                        .filter_map(|m| m.message_id().map(String::from))
                        .collect()
                }),
            Ok(_) => BTreeSet::new(),
            Err(_) => batch
                .iter()
                .filter_map(|m| m.message_id().map(String::from))
                .collect(),
        };
        let (again, done): (Vec<&Message>, Vec<&Message>) = batch
            .iter()
            .partition(|m| m.message_id().is_some_and(|id| failed.contains(id)));
        for chunk in done.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            let _ = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
        }
        for m in &again {
            if let Some(handle) = m.receipt_handle() {
                let _ = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(1)
                    .send()
                    .await;
            }
        }
        let mut s = self.stats.lock().unwrap();
        s.deleted += done.len() as u64;
        s.retried += again.len() as u64;
    }
}
