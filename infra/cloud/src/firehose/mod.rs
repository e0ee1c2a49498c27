//! Firehose delivery from a Kinesis source to S3, which the emulators do not do themselves: the
//! template's buffering hints, processors (`AppendDelimiterToRecord`, a transform `Lambda`),
//! prefix expressions, compression (GZIP or none) and the log of delivery errors (a file under
//! .tally/logs for its CloudWatch Logs stream). When the local cloud stops, every shard is
//! read to its end and the buffer delivered, so nothing put before the stop is lost.
//!
//! - `spec.rs`: the delivery stream as the template declares it
//! - `prefix.rs`: prefix expressions
//! - here: reading the source, buffering, processing and writing objects

pub mod prefix;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot, watch};

use crate::faults::{Fault, Faults};
use crate::kinesis::{for_each_shard, KinesisWrites, ShardReader, StartAt};
use crate::lambda::FunctionHost;
use prefix::evaluate_prefix;
pub use spec::{DeliverySpec, Processor};
use tally_stack::template::scalar_string;

struct Item {
    data: Vec<u8>,
    arrival: DateTime<Utc>,
    /// Where in the source stream it was: what a transformation sees as `kinesisRecordMetadata`.
    shard_id: String,
    sequence_number: String,
    partition_key: String,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    pub records: u64,
    pub objects: u64,
    pub failed: u64,
}

pub struct Delivery {
    pub spec: DeliverySpec,
    kinesis: aws_sdk_kinesis::Client,
    s3: aws_sdk_s3::Client,
    functions: BTreeMap<String, Arc<FunctionHost>>,
    pub stats: Mutex<DeliveryStats>,
    /// After a failed read.
    idle_poll: Duration,
    /// An idle shard waits for a write (or a second); a flush wakes every reader.
    writes: KinesisWrites,
    /// Per shard being read: when its latest read that reached the shard's end began.
    read_to_end: Mutex<HashMap<String, Option<Instant>>>,
    flush_requests: mpsc::Sender<oneshot::Sender<()>>,
    flush_inbox: Mutex<Option<mpsc::Receiver<oneshot::Sender<()>>>>,
    /// `firehose:throttle` fails deliveries to S3 (retried, as Firehose retries for a day).
    faults: Arc<Faults>,
    /// The file standing for its CloudWatch Logs stream of delivery errors: absent when the
    /// template enables none or its role may not write there.
    error_log: Option<PathBuf>,
}

/// Invocations of a transformation Lambda per batch: the first and Firehose's default three
/// retries; a batch that fails them all is kept under the error prefix (`processing-failed`).
const TRANSFORM_ATTEMPTS: u32 = 4;
/// Attempts to write one object to S3 (Firehose retries for up to a day; here for minutes, so a
/// stopping cloud cannot hang on a bucket that is gone).
const PUT_ATTEMPTS: u32 = 60;

impl Delivery {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: DeliverySpec, kinesis: aws_sdk_kinesis::Client, s3: aws_sdk_s3::Client,
        functions: BTreeMap<String, Arc<FunctionHost>>, idle_poll: Duration, writes: KinesisWrites,
        faults: Arc<Faults>, error_log: Option<PathBuf>,
    ) -> Arc<Self> {
        let (flush_requests, flush_inbox) = mpsc::channel(16);
        Arc::new(Delivery {
            spec,
            kinesis,
            s3,
            functions,
            stats: Mutex::new(DeliveryStats::default()),
            idle_poll,
            writes,
            read_to_end: Mutex::default(),
            flush_requests,
            flush_inbox: Mutex::new(Some(flush_inbox)),
            faults,
            error_log,
        })
    }

    /// A delivery error, as Firehose logs it: to the cloud's output, and to the delivery stream's
    /// log when it has one.
    fn log_error(&self, message: String) {
        eprintln!("{}: {message}", self.spec.logical_id);
        if let Some(path) = &self.error_log {
            let line = format!("{} {message}\n", Utc::now().to_rfc3339());
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            if let Err(e) = file.and_then(|mut f| f.write_all(line.as_bytes())) {
                eprintln!(
                    "{}: cannot log to {}: {e}",
                    self.spec.logical_id,
                    path.display()
                );
            }
        }
    }

    /// Delivers now, ignoring the buffering hints, everything put to the source stream before the
    /// call (what `tally sql` asks for). Returns once it is in S3.
    pub async fn flush_now(&self) {
        let (tx, rx) = oneshot::channel();
        if self.flush_requests.send(tx).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Whether every shard being read was read to its end by a read that began at or after `t`.
    fn read_to_end_since(&self, t: Instant) -> bool {
        self.read_to_end
            .lock()
            .unwrap()
            .values()
            .all(|began| began.is_some_and(|b| b >= t))
    }

    /// Reads the source stream and delivers until `shutdown`; then reads every shard to its end
    /// and delivers what is left.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let (tx, mut rx) = mpsc::channel::<Item>(10_000);
        let readers = {
            let (me, each) = (self.clone(), shutdown.clone());
            tokio::spawn(for_each_shard(
                self.kinesis.clone(),
                self.spec.stream_name.clone(),
                shutdown.clone(),
                Duration::from_secs(2),
                move |shard_id| {
                    let (me, tx, shutdown) = (me.clone(), tx.clone(), each.clone());
                    async move { me.read_shard(shard_id, tx, shutdown).await }
                },
            ))
        };
        let mut buffer: Vec<Item> = Vec::new();
        let mut bytes = 0;
        let mut first_at: Option<Instant> = None;
        let mut flushes = self
            .flush_inbox
            .lock()
            .unwrap()
            .take()
            .expect("a delivery runs once");
        loop {
            let due = first_at
                .map(|t| self.spec.interval.saturating_sub(t.elapsed()))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => {
                        self.stats.lock().unwrap().records += 1;
                        bytes += item.data.len();
                        first_at.get_or_insert_with(Instant::now);
                        buffer.push(item);
                        if bytes >= self.spec.size_bytes {
                            self.flush(std::mem::take(&mut buffer)).await;
                            bytes = 0;
                            first_at = None;
                        }
                    }
                    // Every reader has stopped, each after reading its shard to the end.
                    None => break,
                },
                _ = tokio::time::sleep(due) => {
                    self.flush(std::mem::take(&mut buffer)).await;
                    bytes = 0;
                    first_at = None;
                }
                Some(reply) = flushes.recv() => {
                    // Every shard read to its end after the request, what was read taken in.
                    let asked = Instant::now();
                    self.writes.wake_all();
                    let deadline = asked + Duration::from_secs(30);
                    loop {
                        while let Ok(item) = rx.try_recv() {
                            self.stats.lock().unwrap().records += 1;
                            buffer.push(item);
                        }
                        if self.read_to_end_since(asked) || Instant::now() > deadline {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    while let Ok(item) = rx.try_recv() {
                        self.stats.lock().unwrap().records += 1;
                        buffer.push(item);
                    }
                    self.flush(std::mem::take(&mut buffer)).await;
                    bytes = 0;
                    first_at = None;
                    let _ = reply.send(());
                }
            }
        }
        let _ = readers.await;
        self.flush(buffer).await;
    }

    /// Hands a shard's records over until `shutdown`, then up to the shard's current end.
    async fn read_shard(
        &self, shard_id: String, tx: mpsc::Sender<Item>, shutdown: watch::Receiver<bool>,
    ) {
        let mut reader = ShardReader::new(
            self.kinesis.clone(),
            &self.spec.stream_name,
            &shard_id,
            StartAt::TrimHorizon,
        );
        let mut failures = 0;
        let (mut writes, mut stop) = (self.writes.watch(&self.spec.stream_name), shutdown.clone());
        self.read_to_end
            .lock()
            .unwrap()
            .insert(shard_id.clone(), None);
        loop {
            let stopping = *shutdown.borrow();
            let began = Instant::now();
            writes.before_read();
            match reader.read(10_000).await {
                Ok(page) => {
                    failures = 0;
                    for r in page.records {
                        let arrival =
                            DateTime::from_timestamp_millis((r.arrival * 1e3).round() as i64)
                                .unwrap_or_else(Utc::now);
                        if tx
                            .send(Item {
                                data: r.data,
                                arrival,
                                shard_id: r.shard_id,
                                sequence_number: r.sequence_number,
                                partition_key: r.partition_key,
                            })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    if page.at_end {
                        self.read_to_end
                            .lock()
                            .unwrap()
                            .insert(shard_id.clone(), Some(began));
                    }
                    if reader.is_closed() {
                        // Everything of it is handed over: it no longer holds a flush up.
                        self.read_to_end.lock().unwrap().remove(&shard_id);
                        return;
                    }
                    if page.at_end && stopping {
                        return;
                    }
                    if page.at_end {
                        writes.idle(&mut stop).await;
                    }
                }
                Err(e) => {
                    failures += 1;
                    if stopping && failures > 20 {
                        eprintln!(
                            "{}: stopped before the end of {shard_id}: {e}",
                            self.spec.logical_id
                        );
                        return;
                    }
                    tokio::time::sleep(self.idle_poll).await;
                }
            }
        }
    }

    async fn flush(&self, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let mut objects: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut failed: Vec<(Vec<u8>, String)> = Vec::new();
        let processed = self.process(items).await;
        for (data, arrival, keys, error, _) in processed {
            match error {
                Some(kind) => failed.push((data, kind)),
                None => match evaluate_prefix(&self.spec.prefix, arrival, &keys, None) {
                    Ok(prefix) => objects.entry(prefix).or_default().extend_from_slice(&data),
                    Err(_) => failed.push((data, "partition-key-failed".into())),
                },
            }
        }
        let now = Utc::now();
        if !failed.is_empty() {
            self.log_error(format!(
                "{} records could not be delivered ({}): kept under the error prefix",
                failed.len(),
                failed[0].1
            ));
        }
        for (prefix, body) in objects {
            self.put(&prefix, body, now).await;
        }
        for (data, kind) in failed {
            self.stats.lock().unwrap().failed += 1;
            let prefix =
                evaluate_prefix(&self.spec.error_prefix, now, &BTreeMap::new(), Some(&kind))
                    .unwrap_or_else(|_| format!("{kind}/"));
            let line = serde_json::json!({
                "rawData": base64::engine::general_purpose::STANDARD.encode(&data),
                "errorCode": kind,
                "errorMessage": "record could not be processed",
            });
            self.put(&prefix, format!("{line}\n").into_bytes(), now)
                .await;
        }
    }

    /// Runs the processors; returns (data, arrival, partition keys, error type, index in `items`).
    async fn process(
        &self, items: Vec<Item>,
    ) -> Vec<(
        Vec<u8>,
        DateTime<Utc>,
        BTreeMap<String, String>,
        Option<String>,
        usize,
    )> {
        // Each record's place in the source stream, as Firehose shows it to a transformation.
        let origins: Vec<Json> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "shardId": i.shard_id,
                    "partitionKey": i.partition_key,
                    "sequenceNumber": i.sequence_number,
                    "subsequenceNumber": 0,
                    "approximateArrivalTimestamp": i.arrival.timestamp_millis(),
                })
            })
            .collect();
        let mut out: Vec<_> = items
            .into_iter()
            .enumerate()
            .map(|(n, i)| (i.data, i.arrival, BTreeMap::new(), None, n))
            .collect();
        for p in &self.spec.processors {
            match p {
                Processor::AppendDelimiter(d) => {
                    for (data, ..) in out.iter_mut() {
                        data.extend_from_slice(d.as_bytes());
                    }
                }
                Processor::Lambda(f) => {
                    // Absent: its role may not invoke it (Lambda.InvokeAccessDenied on AWS).
                    let Some(host) = self.functions.get(f) else {
                        self.log_error(format!(
                            "transformation {f} not invoked: the delivery role may not (Lambda.InvokeAccessDenied)"
                        ));
                        out = out
                            .into_iter()
                            .map(|(d, t, k, _, n)| (d, t, k, Some("processing-failed".into()), n))
                            .collect();
                        continue;
                    };
                    let records: Vec<Json> = out
                        .iter()
                        .enumerate()
                        .map(|(i, (d, t, _, _, n))| {
                            serde_json::json!({"recordId": i.to_string(), "approximateArrivalTimestamp": t.timestamp_millis(), "data": base64::engine::general_purpose::STANDARD.encode(d), "kinesisRecordMetadata": origins[*n]})
                        })
                        .collect();
                    let event = serde_json::json!({"invocationId": uuid::Uuid::new_v4().to_string(), "deliveryStreamArn": format!("arn:aws:firehose:{}:{}:deliverystream/{}", tally_stack::template::REGION, tally_stack::template::ACCOUNT, self.spec.name), "sourceKinesisStreamArn": format!("arn:aws:kinesis:{}:{}:stream/{}", tally_stack::template::REGION, tally_stack::template::ACCOUNT, self.spec.stream_name), "region": tally_stack::template::REGION, "records": records});
                    let event = serde_json::to_vec(&event).unwrap_or_default();
                    let mut response = host.invoke(event.clone()).await;
                    for attempt in 1..TRANSFORM_ATTEMPTS {
                        let Err(e) = &response else { break };
                        self.log_error(format!(
                            "transformation {f} failed (attempt {attempt} of {TRANSFORM_ATTEMPTS}): {e}"
                        ));
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        response = host.invoke(event.clone()).await;
                    }
                    let results: BTreeMap<String, Json> = response
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                        .and_then(|v| v["records"].as_array().cloned())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| (r["recordId"].as_str().unwrap_or_default().to_string(), r))
                        .collect();
                    let mut kept = Vec::new();
                    for (i, (data, t, mut keys, err, n)) in out.into_iter().enumerate() {
                        match results.get(&i.to_string()) {
                            Some(r) if r["result"] == "Ok" => {
                                let data = base64::engine::general_purpose::STANDARD
                                    .decode(r["data"].as_str().unwrap_or_default())
                                    .unwrap_or_default();
                                for (k, v) in r["metadata"]["partitionKeys"]
                                    .as_object()
                                    .into_iter()
                                    .flatten()
                                {
                                    keys.insert(k.clone(), scalar_string(v));
                                }
                                kept.push((data, t, keys, err, n));
                            }
                            Some(r) if r["result"] == "Dropped" => {}
                            _ => kept.push((data, t, keys, Some("processing-failed".into()), n)),
                        }
                    }
                    out = kept;
                }
            }
        }
        out
    }

    async fn put(&self, prefix: &str, body: Vec<u8>, now: DateTime<Utc>) {
        let mut key = format!(
            "{prefix}{}-1-{}-{}",
            self.spec.name,
            now.format("%Y-%m-%d-%H-%M-%S"),
            uuid::Uuid::new_v4()
        );
        let body = if self.spec.gzip {
            key.push_str(".gz");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = enc.write_all(&body);
            enc.finish().unwrap_or_default()
        } else {
            body
        };
        for attempt in 0..PUT_ATTEMPTS {
            let written = if self.faults.strikes(Fault::FirehoseThrottle) {
                Err("throttled (tally up --faults firehose:throttle)".to_string())
            } else {
                self.s3
                    .put_object()
                    .bucket(&self.spec.bucket)
                    .key(&key)
                    .body(body.clone().into())
                    .send()
                    .await
                    .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
            };
            match written {
                Ok(_) => {
                    self.stats.lock().unwrap().objects += 1;
                    return;
                }
                Err(e) if attempt + 1 == PUT_ATTEMPTS => self.log_error(format!(
                    "could not write s3://{}/{key} in {PUT_ATTEMPTS} attempts: {e}",
                    self.spec.bucket,
                )),
                Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transformation its role may not invoke fails the batch into the error prefix, and says
    /// why in the delivery stream's log, as Firehose does in CloudWatch Logs.
    #[tokio::test]
    async fn a_delivery_error_is_written_to_the_delivery_streams_log() {
        let log = std::env::temp_dir().join(format!("firehose-log-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let sdk = crate::clients::local_config("http://127.0.0.1:9").await;
        let spec = DeliverySpec {
            logical_id: "EventsArchiveDeliveryStream".into(),
            name: "events-archive".into(),
            stream_name: "events".into(),
            bucket: "archive".into(),
            prefix: "raw/events/".into(),
            error_prefix: "errors/events/".into(),
            gzip: true,
            interval: Duration::from_secs(60),
            size_bytes: 1 << 20,
            processors: vec![Processor::Lambda("EventsRouterFunction".into())],
            source_role: "EventsArchiveRole".into(),
            delivery_role: "EventsArchiveRole".into(),
            error_log: None,
        };
        let delivery = Delivery::new(
            spec,
            aws_sdk_kinesis::Client::new(&sdk),
            aws_sdk_s3::Client::new(&sdk),
            BTreeMap::new(),
            Duration::from_millis(10),
            KinesisWrites::default(),
            Faults::none(),
            Some(log.clone()),
        );
        let item = Item {
            data: b"{}".to_vec(),
            arrival: Utc::now(),
            shard_id: "shardId-000000000000".into(),
            sequence_number: "1".into(),
            partition_key: "k".into(),
        };
        let processed = delivery.process(vec![item]).await;
        assert_eq!(processed[0].3.as_deref(), Some("processing-failed"));
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains("transformation EventsRouterFunction not invoked")
                && logged.contains("Lambda.InvokeAccessDenied"),
            "{logged}"
        );
        let _ = std::fs::remove_file(&log);
    }
}
