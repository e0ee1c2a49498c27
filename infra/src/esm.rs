//! Kinesis event source mappings with AWS's semantics, read from the template: one poller per
//! shard per function (order kept within a shard), `BatchSize`, `MaximumBatchingWindowInSeconds`,
//! `StartingPosition`, `FilterCriteria`, `ReportBatchItemFailures` (resume from the lowest failed
//! sequence number), `BisectBatchOnFunctionError`, `MaximumRetryAttempts`,
//! `MaximumRecordAgeInSeconds` and an SQS on-failure destination.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine;
use serde_json::Value as Json;
use tokio::sync::watch;

use crate::function_host::{FunctionHost, InvokeError};
use crate::template::{scalar_string, Resource, Template, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtTimestamp(f64),
}

#[derive(Debug, Clone)]
pub struct MappingSpec {
    pub logical_id: String,
    pub function: String,
    pub stream_name: String,
    pub stream_arn: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub starting_position: StartingPosition,
    pub report_batch_item_failures: bool,
    pub bisect: bool,
    /// `None`: retry until the records expire (-1 in the template).
    pub max_retries: Option<u32>,
    pub max_record_age: Option<Duration>,
    /// Queue name of the SQS on-failure destination.
    pub on_failure_queue: Option<String>,
    pub filters: Vec<Json>,
}

fn number(props: &Json, key: &str) -> Option<f64> {
    props
        .get(key)
        .map(scalar_string)
        .and_then(|s| s.parse().ok())
}

fn flag(props: &Json, key: &str) -> bool {
    matches!(props.get(key), Some(Json::Bool(true)))
        || props.get(key).and_then(Json::as_str) == Some("true")
}

impl MappingSpec {
    /// From an `AWS::Lambda::EventSourceMapping` (resolved properties) or a SAM `Kinesis` event.
    pub fn from_properties(
        template: &Template,
        logical_id: &str,
        function: &str,
        props: &Json,
    ) -> Result<Self, TemplateError> {
        let at = format!("Resources.{logical_id}");
        let unsupported = |what: &str| TemplateError::Unsupported {
            what: what.to_string(),
            at: at.clone(),
        };
        let arn = props
            .get("EventSourceArn")
            .or(props.get("Stream"))
            .and_then(Json::as_str)
            .ok_or_else(|| unsupported("event source without a Kinesis stream ARN"))?;
        let stream_id = template.logical_id_of(arn).ok_or_else(|| {
            unsupported(&format!(
                "event source {arn} that is not a stream of this template"
            ))
        })?;
        if template.resources[stream_id].kind != "AWS::Kinesis::Stream" {
            return Err(unsupported(&format!(
                "event source of type {}",
                template.resources[stream_id].kind
            )));
        }
        if number(props, "ParallelizationFactor").is_some_and(|n| n > 1.0) {
            return Err(unsupported("ParallelizationFactor above 1"));
        }
        if number(props, "TumblingWindowInSeconds").is_some_and(|n| n > 0.0) {
            return Err(unsupported("TumblingWindowInSeconds"));
        }
        if props
            .get("DestinationConfig")
            .and_then(|d| d.get("OnSuccess"))
            .is_some()
        {
            return Err(unsupported("DestinationConfig.OnSuccess"));
        }
        let starting_position = match props
            .get("StartingPosition")
            .and_then(Json::as_str)
            .unwrap_or("LATEST")
        {
            "TRIM_HORIZON" => StartingPosition::TrimHorizon,
            "LATEST" => StartingPosition::Latest,
            "AT_TIMESTAMP" => StartingPosition::AtTimestamp(
                number(props, "StartingPositionTimestamp").unwrap_or_default(),
            ),
            other => return Err(unsupported(&format!("StartingPosition {other}"))),
        };
        let on_failure_queue = match props
            .get("DestinationConfig")
            .and_then(|d| d.get("OnFailure"))
            .and_then(|o| o.get("Destination"))
            .and_then(Json::as_str)
        {
            None => None,
            Some(dest) => {
                let id = template.logical_id_of(dest).ok_or_else(|| {
                    unsupported(&format!(
                        "on-failure destination {dest} outside the template"
                    ))
                })?;
                if template.resources[id].kind != "AWS::SQS::Queue" {
                    return Err(unsupported(&format!(
                        "on-failure destination of type {} (only SQS locally)",
                        template.resources[id].kind
                    )));
                }
                Some(template.physical_name(id))
            }
        };
        let mut filters = Vec::new();
        if let Some(list) = props
            .get("FilterCriteria")
            .and_then(|f| f.get("Filters"))
            .and_then(Json::as_array)
        {
            for f in list {
                let text = f.get("Pattern").and_then(Json::as_str).unwrap_or("{}");
                let pattern: Json = serde_json::from_str(text).map_err(|e| {
                    TemplateError::Invalid(format!("{at}: filter pattern is not JSON: {e}"))
                })?;
                check_pattern(&pattern).map_err(|what| TemplateError::Unsupported {
                    what,
                    at: at.clone(),
                })?;
                filters.push(pattern);
            }
        }
        let max_retries = match number(props, "MaximumRetryAttempts") {
            None => None,
            Some(n) if n < 0.0 => None,
            Some(n) => Some(n as u32),
        };
        let max_record_age = number(props, "MaximumRecordAgeInSeconds")
            .filter(|n| *n >= 0.0)
            .map(Duration::from_secs_f64);
        let responses = props
            .get("FunctionResponseTypes")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(MappingSpec {
            logical_id: logical_id.to_string(),
            function: function.to_string(),
            stream_name: template.physical_name(stream_id),
            stream_arn: template.arn(stream_id)?,
            batch_size: number(props, "BatchSize").unwrap_or(100.0).max(1.0) as usize,
            batching_window: Duration::from_secs_f64(
                number(props, "MaximumBatchingWindowInSeconds").unwrap_or(0.0),
            ),
            starting_position,
            report_batch_item_failures: responses.iter().any(|r| r == "ReportBatchItemFailures"),
            bisect: flag(props, "BisectBatchOnFunctionError"),
            max_retries,
            max_record_age,
            on_failure_queue,
            filters,
        })
    }

    /// Every Kinesis mapping of the template: explicit mappings and SAM `Kinesis` events.
    pub fn all(template: &Template) -> Result<Vec<MappingSpec>, TemplateError> {
        let mut out = Vec::new();
        for r in template.of_kind("AWS::Lambda::EventSourceMapping") {
            let props = template.resolved_properties(r)?;
            if props.get("Enabled") == Some(&Json::Bool(false)) {
                continue;
            }
            let name = props
                .get("FunctionName")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let function = template.logical_id_of(name).ok_or_else(|| {
                TemplateError::Invalid(format!(
                    "Resources.{}: FunctionName {name} is not a function of this template",
                    r.logical_id
                ))
            })?;
            out.push(Self::from_properties(
                template,
                &r.logical_id,
                function,
                &props,
            )?);
        }
        for f in template.of_kind("AWS::Serverless::Function") {
            out.extend(sam_kinesis_events(template, f)?);
        }
        Ok(out)
    }
}

fn sam_kinesis_events(
    template: &Template,
    f: &Resource,
) -> Result<Vec<MappingSpec>, TemplateError> {
    let props = template.resolved_properties(f)?;
    let mut out = Vec::new();
    if let Some(events) = props.get("Events").and_then(Json::as_object) {
        for (name, e) in events {
            match e.get("Type").and_then(Json::as_str) {
                Some("Kinesis") => out.push(MappingSpec::from_properties(
                    template,
                    &format!("{}.Events.{name}", f.logical_id),
                    &f.logical_id,
                    &e["Properties"],
                )?),
                Some("HttpApi") | Some("Api") | None => {}
                Some(other) => {
                    return Err(TemplateError::Unsupported {
                        what: format!("event type {other}"),
                        at: format!("Resources.{}.Properties.Events.{name}", f.logical_id),
                    })
                }
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ filters

fn check_pattern(p: &Json) -> Result<(), String> {
    match p {
        Json::Object(m) => m.values().try_for_each(check_pattern),
        Json::Array(items) => items.iter().try_for_each(|i| match i {
            Json::Object(op) => {
                for k in op.keys() {
                    if !["prefix", "exists", "anything-but", "numeric"].contains(&k.as_str()) {
                        return Err(format!("filter operator {k:?}"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }),
        _ => Err("filter pattern values must be arrays".into()),
    }
}

/// Whether `value` (absent: `None`) matches one of `matchers` (an event pattern's array).
fn matches_values(matchers: &[Json], value: Option<&Json>) -> bool {
    matchers.iter().any(|m| match m {
        Json::Object(op) => op.iter().all(|(k, arg)| match k.as_str() {
            "exists" => arg.as_bool() == Some(value.is_some()),
            "prefix" => matches!((value, arg), (Some(Json::String(v)), Json::String(p)) if v.starts_with(p.as_str())),
            "anything-but" => {
                let list = arg.as_array().cloned().unwrap_or_else(|| vec![arg.clone()]);
                value.is_some_and(|v| !list.contains(v))
            }
            "numeric" => {
                let Some(v) = value.and_then(Json::as_f64) else { return false };
                let ops = arg.as_array().cloned().unwrap_or_default();
                ops.chunks(2).all(|c| {
                    let bound = c.get(1).and_then(Json::as_f64).unwrap_or(f64::NAN);
                    match c[0].as_str() {
                        Some("<") => v < bound,
                        Some("<=") => v <= bound,
                        Some("=") => v == bound,
                        Some(">") => v > bound,
                        Some(">=") => v >= bound,
                        _ => false,
                    }
                })
            }
            _ => false,
        }),
        literal => value == Some(literal) || matches!(value, Some(Json::Array(a)) if a.contains(literal)),
    })
}

/// Event-pattern matching of a record (`data` decoded from JSON, plus the record's metadata).
pub fn pattern_matches(pattern: &Json, record: &Json) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(k, p)| match p {
        Json::Object(_) => record.get(k).is_some_and(|r| pattern_matches(p, r)),
        Json::Array(m) => matches_values(m, record.get(k)),
        _ => false,
    })
}

// ------------------------------------------------------------------ records and events

/// A record read from a shard.
#[derive(Debug, Clone)]
pub struct ShardRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub arrival: f64,
}

impl ShardRecord {
    pub fn from_sdk(shard_id: &str, r: &aws_sdk_kinesis::types::Record) -> Self {
        ShardRecord {
            shard_id: shard_id.to_string(),
            sequence_number: r.sequence_number().to_string(),
            partition_key: r.partition_key().unwrap_or_default().to_string(),
            data: r.data().as_ref().to_vec(),
            arrival: r
                .approximate_arrival_timestamp()
                .map(|t| t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9)
                .unwrap_or_default(),
        }
    }
}

/// Every record of a stream, shard by shard, from the oldest (for tests and tools).
pub async fn read_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<ShardRecord>, String> {
    let err = |e: &dyn std::fmt::Display| format!("reading {stream}: {e}");
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_kinesis::error::DisplayErrorContext(e)))?;
    let mut out = Vec::new();
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| err(&aws_sdk_kinesis::error::DisplayErrorContext(e)))?
            .shard_iterator;
        while let Some(it) = iterator {
            let page = kinesis
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .map_err(|e| err(&aws_sdk_kinesis::error::DisplayErrorContext(e)))?;
            out.extend(
                page.records()
                    .iter()
                    .map(|r| ShardRecord::from_sdk(shard.shard_id(), r)),
            );
            // An empty page means the shard is read to its current end.
            iterator = if page.records().is_empty() {
                None
            } else {
                page.next_shard_iterator().map(String::from)
            };
        }
    }
    Ok(out)
}

/// The Lambda event for `records`, as the Kinesis event source mapping builds it.
pub fn kinesis_event(stream_arn: &str, records: &[ShardRecord]) -> Json {
    let records: Vec<Json> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": r.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", r.shard_id, r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": format!("arn:aws:iam::{}:role/local-cloud", crate::template::ACCOUNT),
                "awsRegion": crate::template::REGION,
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

fn filter_view(r: &ShardRecord) -> Json {
    let data = serde_json::from_slice::<Json>(&r.data).unwrap_or(Json::Null);
    serde_json::json!({
        "kinesisSchemaVersion": "1.0",
        "partitionKey": r.partition_key,
        "sequenceNumber": r.sequence_number,
        "approximateArrivalTimestamp": r.arrival,
        "data": data,
    })
}

/// Compares Kinesis sequence numbers (decimal strings): by length, then lexicographically.
pub fn seq_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

// ------------------------------------------------------------------ polling

/// What a mapping did, for `tally up`'s status and the tests.
#[derive(Debug, Clone, Default)]
pub struct MappingStats {
    pub invocations: u64,
    pub records: u64,
    pub filtered_out: u64,
    pub retries: u64,
    pub bisections: u64,
    pub partial_failures: u64,
    pub sent_to_destination: u64,
    /// Records done with: processed, filtered out, or sent to the destination.
    pub completed: u64,
}

pub struct Mapping {
    pub spec: MappingSpec,
    host: Arc<FunctionHost>,
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
    queue_endpoint: String,
    idle_poll: Duration,
    pub stats: Mutex<MappingStats>,
    /// Per shard: whether it has read to the end of the shard and has nothing in hand.
    idle_shards: Mutex<HashMap<String, bool>>,
}

impl Mapping {
    pub fn new(
        spec: MappingSpec,
        host: Arc<FunctionHost>,
        kinesis: aws_sdk_kinesis::Client,
        sqs: aws_sdk_sqs::Client,
        queue_endpoint: String,
        idle_poll: Duration,
    ) -> Arc<Self> {
        Arc::new(Mapping {
            spec,
            host,
            kinesis,
            sqs,
            queue_endpoint,
            idle_poll,
            stats: Mutex::new(MappingStats::default()),
            idle_shards: Mutex::default(),
        })
    }

    /// True when every shard is read to its end and nothing is being processed.
    pub fn caught_up(&self) -> bool {
        let shards = self.idle_shards.lock().unwrap();
        !shards.is_empty() && shards.values().all(|idle| *idle)
    }

    /// Polls every shard until `shutdown` turns true; children of a closed shard start after it.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let started: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let finished: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        loop {
            if let Ok(out) = self
                .kinesis
                .list_shards()
                .stream_name(&self.spec.stream_name)
                .send()
                .await
            {
                for shard in out.shards() {
                    let id = shard.shard_id().to_string();
                    let parent_done = shard.parent_shard_id().is_none_or(|p| {
                        finished.lock().unwrap().contains(p)
                            || !out.shards().iter().any(|s| s.shard_id() == p)
                    });
                    if parent_done && started.lock().unwrap().insert(id.clone()) {
                        let (me, rx, done) = (self.clone(), shutdown.clone(), finished.clone());
                        tokio::spawn(async move {
                            me.poll_shard(&id, rx).await;
                            done.lock().unwrap().insert(id);
                        });
                    }
                }
            }
            tokio::select! {
                _ = crate::stopped(&mut shutdown) => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    async fn iterator(&self, shard_id: &str, after: Option<&str>) -> Option<String> {
        let mut req = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.spec.stream_name)
            .shard_id(shard_id);
        req = match (after, &self.spec.starting_position) {
            (Some(seq), _) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            (None, StartingPosition::TrimHorizon) => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            (None, StartingPosition::Latest) => req.shard_iterator_type(ShardIteratorType::Latest),
            (None, StartingPosition::AtTimestamp(t)) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(aws_sdk_kinesis::primitives::DateTime::from_secs_f64(*t)),
        };
        req.send().await.ok().and_then(|o| o.shard_iterator)
    }

    async fn poll_shard(&self, shard_id: &str, shutdown: watch::Receiver<bool>) {
        let mut last_read: Option<String> = None;
        let mut iterator = None;
        while iterator.is_none() {
            if *shutdown.borrow() {
                return;
            }
            iterator = self.iterator(shard_id, None).await;
            if iterator.is_none() {
                tokio::time::sleep(self.idle_poll).await;
            }
        }
        let mut pending: VecDeque<ShardRecord> = VecDeque::new();
        let mut closed = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Fill a batch: up to BatchSize records, or what came within the batching window.
            let mut window_start: Option<Instant> = None;
            while pending.len() < self.spec.batch_size && !closed {
                let Some(it) = iterator.clone() else {
                    closed = true;
                    break;
                };
                let limit = (self.spec.batch_size - pending.len()).clamp(1, 10_000) as i32;
                match self
                    .kinesis
                    .get_records()
                    .shard_iterator(&it)
                    .limit(limit)
                    .send()
                    .await
                {
                    Ok(out) => {
                        iterator = out.next_shard_iterator().map(String::from);
                        for r in out.records() {
                            last_read = Some(r.sequence_number().to_string());
                            let rec = ShardRecord::from_sdk(shard_id, r);
                            if self.spec.filters.is_empty()
                                || self
                                    .spec
                                    .filters
                                    .iter()
                                    .any(|f| pattern_matches(f, &filter_view(&rec)))
                            {
                                pending.push_back(rec);
                            } else {
                                let mut s = self.stats.lock().unwrap();
                                s.filtered_out += 1;
                                s.completed += 1;
                            }
                        }
                        if out.records().is_empty() && out.millis_behind_latest().unwrap_or(0) == 0
                        {
                            self.idle_shards
                                .lock()
                                .unwrap()
                                .insert(shard_id.to_string(), pending.is_empty());
                            if pending.is_empty() {
                                window_start = None;
                                if *shutdown.borrow() {
                                    return;
                                }
                                tokio::time::sleep(self.idle_poll).await;
                                continue;
                            }
                            let started = *window_start.get_or_insert_with(Instant::now);
                            if started.elapsed() >= self.spec.batching_window {
                                break;
                            }
                            tokio::time::sleep(
                                self.idle_poll.min(
                                    self.spec.batching_window.saturating_sub(started.elapsed()),
                                ),
                            )
                            .await;
                        } else if !pending.is_empty() {
                            window_start.get_or_insert_with(Instant::now);
                        }
                    }
                    Err(_) => {
                        // Expired or invalid iterator, or a throttle: resume after the last record read.
                        tokio::time::sleep(self.idle_poll).await;
                        iterator = self.iterator(shard_id, last_read.as_deref()).await;
                    }
                }
            }
            if pending.is_empty() {
                if closed {
                    return;
                }
                continue;
            }
            let n = pending.len().min(self.spec.batch_size);
            let batch: Vec<ShardRecord> = pending.drain(..n).collect();
            self.idle_shards
                .lock()
                .unwrap()
                .insert(shard_id.to_string(), false);
            self.process(batch).await;
        }
    }

    /// Delivers one batch until it succeeds or goes to the on-failure destination.
    async fn process(&self, batch: Vec<ShardRecord>) {
        let mut work: VecDeque<(Vec<ShardRecord>, u32)> = VecDeque::from([(batch, 0)]);
        while let Some((mut batch, attempts)) = work.pop_front() {
            if let Some(max_age) = self.spec.max_record_age {
                let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
                let cut = batch
                    .iter()
                    .position(|r| now - r.arrival <= max_age.as_secs_f64())
                    .unwrap_or(batch.len());
                if cut > 0 {
                    let old: Vec<ShardRecord> = batch.drain(..cut).collect();
                    self.to_destination(&old, "RecordAgeExceeded", attempts, None)
                        .await;
                }
                if batch.is_empty() {
                    continue;
                }
            }
            {
                let mut s = self.stats.lock().unwrap();
                s.invocations += 1;
                s.records += batch.len() as u64;
            }
            let event = kinesis_event(&self.spec.stream_arn, &batch);
            let outcome = self
                .host
                .invoke(serde_json::to_vec(&event).unwrap_or_default())
                .await;
            let failed_from = match &outcome {
                Ok(body) if self.spec.report_batch_item_failures => first_failure(body, &batch),
                Ok(_) => Ok(None),
                Err(_) => Err(()),
            };
            let exhausted = self.spec.max_retries.is_some_and(|m| attempts >= m);
            match failed_from {
                Ok(None) => self.stats.lock().unwrap().completed += batch.len() as u64,
                Ok(Some(i)) => {
                    {
                        let mut s = self.stats.lock().unwrap();
                        s.partial_failures += 1;
                        s.completed += i as u64;
                    }
                    let rest = batch.split_off(i);
                    // Progress (i > 0) checkpoints the records before the failure; retrying from
                    // the first record again is a retry attempt.
                    let attempts = if i > 0 { attempts } else { attempts + 1 };
                    if i == 0 && exhausted {
                        self.to_destination(&rest, "RetryAttemptsExhausted", attempts, None)
                            .await;
                    } else {
                        self.backoff(attempts).await;
                        work.push_front((rest, attempts));
                    }
                }
                Err(()) => {
                    let error = outcome.err();
                    if exhausted {
                        self.to_destination(
                            &batch,
                            "RetryAttemptsExhausted",
                            attempts + 1,
                            error.as_ref(),
                        )
                        .await;
                    } else if self.spec.bisect && batch.len() > 1 {
                        self.stats.lock().unwrap().bisections += 1;
                        let second = batch.split_off(batch.len() / 2);
                        work.push_front((second, attempts + 1));
                        work.push_front((batch, attempts + 1));
                    } else {
                        self.stats.lock().unwrap().retries += 1;
                        self.backoff(attempts).await;
                        work.push_front((batch, attempts + 1));
                    }
                }
            }
        }
    }

    async fn backoff(&self, attempts: u32) {
        let ms = 50u64.saturating_mul(1 << attempts.min(6)).min(2000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn to_destination(
        &self,
        records: &[ShardRecord],
        condition: &str,
        invokes: u32,
        error: Option<&InvokeError>,
    ) {
        {
            let mut s = self.stats.lock().unwrap();
            s.sent_to_destination += records.len() as u64;
            s.completed += records.len() as u64;
        }
        let (first, last) = (records.first(), records.last());
        let iso = |t: f64| {
            chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        };
        let message = serde_json::json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.host.spec().arn,
                "condition": condition,
                "approximateInvokeCount": invokes,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": error.map(|e| e.to_string()).unwrap_or_else(|| "PartialBatchFailure".into()),
            },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "KinesisBatchInfo": {
                "shardId": first.map(|r| r.shard_id.clone()),
                "startSequenceNumber": first.map(|r| r.sequence_number.clone()),
                "endSequenceNumber": last.map(|r| r.sequence_number.clone()),
                "approximateArrivalOfFirstRecord": first.map(|r| iso(r.arrival)),
                "approximateArrivalOfLastRecord": last.map(|r| iso(r.arrival)),
                "batchSize": records.len(),
                "streamArn": self.spec.stream_arn,
            },
        });
        match &self.spec.on_failure_queue {
            Some(queue) => {
                let url = format!(
                    "{}/{}/{queue}",
                    self.queue_endpoint.trim_end_matches('/'),
                    crate::template::ACCOUNT
                );
                if let Err(e) = self
                    .sqs
                    .send_message()
                    .queue_url(&url)
                    .message_body(message.to_string())
                    .send()
                    .await
                {
                    eprintln!(
                        "{}: could not send a failed batch to {queue}: {}",
                        self.spec.logical_id,
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    );
                }
            }
            None => eprintln!(
                "{}: {} records discarded after {condition} (no on-failure destination)",
                self.spec.logical_id,
                records.len()
            ),
        }
    }
}

/// Index of the lowest failed record of a partial batch response; `Err` when the response is
/// not valid (the whole batch is then treated as failed, as Lambda does).
fn first_failure(body: &[u8], batch: &[ShardRecord]) -> Result<Option<usize>, ()> {
    let v: Json = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Ok(None), // not a JSON object: a plain success
    };
    let Some(failures) = v.get("batchItemFailures").and_then(Json::as_array) else {
        return Ok(None);
    };
    let mut lowest: Option<usize> = None;
    let index: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(i, r)| (r.sequence_number.as_str(), i))
        .collect();
    for f in failures {
        let id = f.get("itemIdentifier").and_then(Json::as_str).ok_or(())?;
        let i = *index.get(id).ok_or(())?;
        lowest = Some(lowest.map_or(i, |l| l.min(i)));
    }
    Ok(lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_patterns_match_like_lambda_filters() {
        let rec = serde_json::json!({"partitionKey": "1", "data": {"event": "Interaction", "user_id": 7, "tags": ["a", "b"]}});
        let p = |s: &str| serde_json::from_str::<Json>(s).unwrap();
        assert!(pattern_matches(
            &p(r#"{"data":{"event":["Interaction"]}}"#),
            &rec
        ));
        assert!(!pattern_matches(&p(r#"{"data":{"event":["View"]}}"#), &rec));
        assert!(pattern_matches(
            &p(r#"{"data":{"event":[{"prefix":"Inter"}]}}"#),
            &rec
        ));
        assert!(pattern_matches(
            &p(r#"{"data":{"user_id":[{"numeric":[">",5,"<=",7]}]}}"#),
            &rec
        ));
        assert!(pattern_matches(
            &p(r#"{"data":{"missing":[{"exists":false}]}}"#),
            &rec
        ));
        assert!(pattern_matches(
            &p(r#"{"data":{"event":[{"anything-but":["View"]}]}}"#),
            &rec
        ));
        assert!(pattern_matches(&p(r#"{"data":{"tags":["b"]}}"#), &rec));
        assert!(pattern_matches(&p(r#"{"partitionKey":["1"]}"#), &rec));
    }

    #[test]
    fn partial_batch_response_names_the_lowest_failure() {
        let batch: Vec<ShardRecord> = (0..4)
            .map(|i| ShardRecord {
                shard_id: "s".into(),
                sequence_number: format!("10{i}"),
                partition_key: "k".into(),
                data: vec![],
                arrival: 0.0,
            })
            .collect();
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"103"},{"itemIdentifier":"101"}]}"#;
        assert_eq!(first_failure(body, &batch), Ok(Some(1)));
        assert_eq!(
            first_failure(br#"{"batchItemFailures":[]}"#, &batch),
            Ok(None)
        );
        assert_eq!(
            first_failure(
                br#"{"batchItemFailures":[{"itemIdentifier":"999"}]}"#,
                &batch
            ),
            Err(())
        );
        assert_eq!(first_failure(b"null", &batch), Ok(None));
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(seq_cmp("9", "10"), std::cmp::Ordering::Less);
        assert_eq!(seq_cmp("100", "099"), std::cmp::Ordering::Greater);
    }
}
