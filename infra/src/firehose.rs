//! Firehose delivery from a Kinesis source to S3, which the emulators do not do themselves: the
//! template's buffering hints, processors (`AppendDelimiterToRecord`, a transform `Lambda`),
//! prefix expressions (`!{timestamp:..}`, `!{firehose:..}`, `!{partitionKeyFromLambda:..}`) and
//! compression (GZIP or none). Buffers are flushed when the local cloud stops, so nothing is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};

use crate::function_host::FunctionHost;
use crate::template::{scalar_string, Resource, Template, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub enum Processor {
    AppendDelimiter(String),
    Lambda(String),
}

#[derive(Debug, Clone)]
pub struct DeliverySpec {
    pub logical_id: String,
    pub name: String,
    pub stream_name: String,
    pub bucket: String,
    pub prefix: String,
    pub error_prefix: String,
    pub gzip: bool,
    pub interval: Duration,
    pub size_bytes: usize,
    pub processors: Vec<Processor>,
}

impl DeliverySpec {
    pub fn from_template(template: &Template, r: &Resource) -> Result<Self, TemplateError> {
        let at = format!("Resources.{}", r.logical_id);
        let unsupported = |what: String| TemplateError::Unsupported {
            what,
            at: at.clone(),
        };
        let props = template.resolved_properties(r)?;
        if props.get("DeliveryStreamType").and_then(Json::as_str) != Some("KinesisStreamAsSource") {
            return Err(unsupported(
                "a delivery stream without a Kinesis source".into(),
            ));
        }
        let src = props["KinesisStreamSourceConfiguration"]["KinesisStreamARN"]
            .as_str()
            .unwrap_or_default();
        let stream_id = template
            .logical_id_of(src)
            .ok_or_else(|| unsupported(format!("source {src} outside the template")))?;
        let dest = props
            .get("ExtendedS3DestinationConfiguration")
            .or(props.get("S3DestinationConfiguration"))
            .ok_or_else(|| unsupported("a destination other than S3".into()))?;
        let bucket_arn = dest["BucketARN"].as_str().unwrap_or_default();
        let bucket = bucket_arn
            .strip_prefix("arn:aws:s3:::")
            .ok_or_else(|| unsupported(format!("bucket {bucket_arn}")))?
            .to_string();
        let gzip = match dest
            .get("CompressionFormat")
            .and_then(Json::as_str)
            .unwrap_or("UNCOMPRESSED")
        {
            "GZIP" => true,
            "UNCOMPRESSED" => false,
            other => return Err(unsupported(format!("CompressionFormat {other}"))),
        };
        if dest
            .get("DataFormatConversionConfiguration")
            .is_some_and(|d| d.get("Enabled") != Some(&Json::Bool(false)))
        {
            return Err(unsupported("DataFormatConversionConfiguration".into()));
        }
        let hints = dest.get("BufferingHints").cloned().unwrap_or_default();
        let num = |k: &str, d: f64| {
            hints
                .get(k)
                .map(scalar_string)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(d)
        };
        let mut processors = Vec::new();
        let pc = dest
            .get("ProcessingConfiguration")
            .cloned()
            .unwrap_or_default();
        if pc.get("Enabled") == Some(&Json::Bool(true))
            || pc.get("Enabled").and_then(Json::as_str) == Some("true")
        {
            for p in pc["Processors"].as_array().into_iter().flatten() {
                let params: BTreeMap<String, String> = p["Parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|kv| {
                        (
                            kv["ParameterName"].as_str().unwrap_or_default().to_string(),
                            scalar_string(&kv["ParameterValue"]),
                        )
                    })
                    .collect();
                match p["Type"].as_str() {
                    Some("AppendDelimiterToRecord") => {
                        let d = params
                            .get("Delimiter")
                            .cloned()
                            .unwrap_or_else(|| "\\n".into());
                        processors.push(Processor::AppendDelimiter(
                            d.replace("\\n", "\n").replace("\\t", "\t"),
                        ));
                    }
                    Some("Lambda") => {
                        let arn = params.get("LambdaArn").cloned().unwrap_or_default();
                        let f = template
                            .logical_id_of(arn.trim_end_matches(":$LATEST"))
                            .ok_or_else(|| {
                                unsupported(format!("transform Lambda {arn} outside the template"))
                            })?;
                        processors.push(Processor::Lambda(f.to_string()));
                    }
                    other => return Err(unsupported(format!("Firehose processor {other:?}"))),
                }
            }
        }
        let prefix = dest
            .get("Prefix")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        for expr in expressions(&prefix) {
            if !(expr.starts_with("timestamp:")
                || expr.starts_with("firehose:")
                || expr.starts_with("partitionKeyFromLambda:"))
            {
                return Err(unsupported(format!("prefix expression !{{{expr}}}")));
            }
        }
        Ok(DeliverySpec {
            logical_id: r.logical_id.clone(),
            name: template.physical_name(&r.logical_id),
            stream_name: template.physical_name(stream_id),
            bucket,
            prefix,
            error_prefix: dest
                .get("ErrorOutputPrefix")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            gzip,
            interval: Duration::from_secs_f64(num("IntervalInSeconds", 300.0)),
            size_bytes: (num("SizeInMBs", 5.0) * 1024.0 * 1024.0) as usize,
            processors,
        })
    }
}

fn expressions(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("!{") {
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        out.push(rest[i + 2..i + end].to_string());
        rest = &rest[i + end + 1..];
    }
    out
}

/// Java `DateTimeFormatter` patterns as Firehose uses them (`yyyy-MM-dd`, `HH`, ...).
fn java_format(t: DateTime<Utc>, pattern: &str) -> String {
    let f = pattern
        .replace("yyyy", "%Y")
        .replace("MM", "%m")
        .replace("dd", "%d")
        .replace("HH", "%H")
        .replace("mm", "%M")
        .replace("ss", "%S");
    t.format(&f).to_string()
}

/// Evaluates a prefix for a record arriving at `t` with `keys` from a transform Lambda.
pub fn evaluate_prefix(
    prefix: &str,
    t: DateTime<Utc>,
    keys: &BTreeMap<String, String>,
    error_type: Option<&str>,
) -> Result<String, String> {
    if prefix.is_empty() || !prefix.contains("!{") {
        // Without expressions Firehose appends the UTC hour path.
        return Ok(format!("{prefix}{}", t.format("%Y/%m/%d/%H/")));
    }
    let mut out = String::new();
    let mut rest = prefix;
    while let Some(i) = rest.find("!{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or("unclosed !{ in prefix")? + i;
        let expr = &rest[i + 2..end];
        let value = if let Some(p) = expr.strip_prefix("timestamp:") {
            java_format(t, p)
        } else if expr == "firehose:random-string" {
            uuid::Uuid::new_v4().simple().to_string()[..11].to_string()
        } else if expr == "firehose:error-output-type" {
            error_type
                .ok_or("firehose:error-output-type outside the error prefix")?
                .to_string()
        } else if let Some(k) = expr.strip_prefix("partitionKeyFromLambda:") {
            keys.get(k)
                .cloned()
                .ok_or_else(|| format!("the transform Lambda gave no partition key {k}"))?
        } else {
            return Err(format!("unsupported expression !{{{expr}}}"));
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Item {
    data: Vec<u8>,
    arrival: DateTime<Utc>,
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
    idle_poll: Duration,
}

impl Delivery {
    pub fn new(
        spec: DeliverySpec,
        kinesis: aws_sdk_kinesis::Client,
        s3: aws_sdk_s3::Client,
        functions: BTreeMap<String, Arc<FunctionHost>>,
        idle_poll: Duration,
    ) -> Arc<Self> {
        Arc::new(Delivery {
            spec,
            kinesis,
            s3,
            functions,
            stats: Mutex::new(DeliveryStats::default()),
            idle_poll,
        })
    }

    /// Reads the source stream and delivers until `shutdown`; then flushes what it buffered.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let (tx, mut rx) = mpsc::channel::<Item>(10_000);
        let readers = {
            let me = self.clone();
            let sd = shutdown.clone();
            tokio::spawn(async move { me.read_shards(tx, sd).await })
        };
        let mut buffer: Vec<Item> = Vec::new();
        let mut bytes = 0;
        let mut first_at: Option<Instant> = None;
        let mut sd = shutdown.clone();
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
                    None => break,
                },
                _ = tokio::time::sleep(due) => {
                    self.flush(std::mem::take(&mut buffer)).await;
                    bytes = 0;
                    first_at = None;
                }
                _ = crate::stopped(&mut sd) => {
                    // Drain what the readers already handed over, then flush.
                    while let Ok(item) = rx.try_recv() { buffer.push(item); }
                    break;
                }
            }
        }
        readers.abort();
        self.flush(buffer).await;
    }

    async fn read_shards(&self, tx: mpsc::Sender<Item>, shutdown: watch::Receiver<bool>) {
        let mut started = BTreeSet::new();
        let mut tasks = Vec::new();
        loop {
            if let Ok(out) = self
                .kinesis
                .list_shards()
                .stream_name(&self.spec.stream_name)
                .send()
                .await
            {
                for shard in out.shards() {
                    if started.insert(shard.shard_id().to_string()) {
                        let (kinesis, stream, shard_id, tx, sd, idle) = (
                            self.kinesis.clone(),
                            self.spec.stream_name.clone(),
                            shard.shard_id().to_string(),
                            tx.clone(),
                            shutdown.clone(),
                            self.idle_poll,
                        );
                        tasks.push(tokio::spawn(async move {
                            read_shard(kinesis, stream, shard_id, tx, sd, idle).await
                        }));
                    }
                }
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn flush(&self, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let mut objects: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut failed: Vec<(Vec<u8>, String)> = Vec::new();
        let processed = self.process(items).await;
        for (data, arrival, keys, error) in processed {
            match error {
                Some(kind) => failed.push((data, kind)),
                None => match evaluate_prefix(&self.spec.prefix, arrival, &keys, None) {
                    Ok(prefix) => objects.entry(prefix).or_default().extend_from_slice(&data),
                    Err(_) => failed.push((data, "partition-key-failed".into())),
                },
            }
        }
        let now = Utc::now();
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

    /// Runs the processors; returns (data, arrival, partition keys, error type).
    async fn process(
        &self,
        items: Vec<Item>,
    ) -> Vec<(
        Vec<u8>,
        DateTime<Utc>,
        BTreeMap<String, String>,
        Option<String>,
    )> {
        let mut out: Vec<_> = items
            .into_iter()
            .map(|i| (i.data, i.arrival, BTreeMap::new(), None))
            .collect();
        for p in &self.spec.processors {
            match p {
                Processor::AppendDelimiter(d) => {
                    for (data, ..) in out.iter_mut() {
                        data.extend_from_slice(d.as_bytes());
                    }
                }
                Processor::Lambda(f) => {
                    let Some(host) = self.functions.get(f) else {
                        continue;
                    };
                    let records: Vec<Json> = out
                        .iter()
                        .enumerate()
                        .map(|(i, (d, t, ..))| {
                            serde_json::json!({"recordId": i.to_string(), "approximateArrivalTimestamp": t.timestamp_millis(), "data": base64::engine::general_purpose::STANDARD.encode(d)})
                        })
                        .collect();
                    let event = serde_json::json!({"invocationId": uuid::Uuid::new_v4().to_string(), "deliveryStreamArn": format!("arn:aws:firehose:{}:{}:deliverystream/{}", crate::template::REGION, crate::template::ACCOUNT, self.spec.name), "region": crate::template::REGION, "records": records});
                    let response = host
                        .invoke(serde_json::to_vec(&event).unwrap_or_default())
                        .await;
                    let results: BTreeMap<String, Json> = response
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                        .and_then(|v| v["records"].as_array().cloned())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| (r["recordId"].as_str().unwrap_or_default().to_string(), r))
                        .collect();
                    let mut kept = Vec::new();
                    for (i, (data, t, mut keys, err)) in out.into_iter().enumerate() {
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
                                kept.push((data, t, keys, err));
                            }
                            Some(r) if r["result"] == "Dropped" => {}
                            _ => kept.push((data, t, keys, Some("processing-failed".into()))),
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
        for attempt in 0..5u32 {
            match self
                .s3
                .put_object()
                .bucket(&self.spec.bucket)
                .key(&key)
                .body(body.clone().into())
                .send()
                .await
            {
                Ok(_) => {
                    self.stats.lock().unwrap().objects += 1;
                    return;
                }
                Err(e) if attempt == 4 => eprintln!(
                    "{}: could not write s3://{}/{key}: {}",
                    self.spec.logical_id,
                    self.spec.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(200 << attempt)).await,
            }
        }
    }
}

async fn read_shard(
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
    shard_id: String,
    tx: mpsc::Sender<Item>,
    shutdown: watch::Receiver<bool>,
    idle: Duration,
) {
    let get = |after: Option<String>| {
        let req = kinesis
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id(&shard_id);
        let req = match after {
            Some(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        async move { req.send().await.ok().and_then(|o| o.shard_iterator) }
    };
    let mut last: Option<String> = None;
    let mut iterator = get(None).await;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(it) = iterator.clone() else {
            tokio::time::sleep(idle).await;
            iterator = get(last.clone()).await;
            continue;
        };
        match kinesis
            .get_records()
            .shard_iterator(&it)
            .limit(10_000)
            .send()
            .await
        {
            Ok(out) => {
                for r in out.records() {
                    last = Some(r.sequence_number().to_string());
                    let arrival = r
                        .approximate_arrival_timestamp()
                        .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                        .unwrap_or_else(Utc::now);
                    if tx
                        .send(Item {
                            data: r.data().as_ref().to_vec(),
                            arrival,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if out.next_shard_iterator().is_none() {
                    return; // closed shard, fully read
                }
                iterator = out.next_shard_iterator().map(String::from);
                if out.records().is_empty() {
                    tokio::time::sleep(idle).await;
                }
            }
            Err(_) => {
                tokio::time::sleep(idle).await;
                iterator = get(last.clone()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn prefixes_evaluate_like_firehose() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 7, 5, 9).unwrap();
        let keys = BTreeMap::from([("event".to_string(), "Interaction".to_string())]);
        assert_eq!(
            evaluate_prefix("raw/visits/dt=!{timestamp:yyyy-MM-dd}/", t, &keys, None).unwrap(),
            "raw/visits/dt=2026-11-22/"
        );
        assert_eq!(
            evaluate_prefix(
                "raw/!{partitionKeyFromLambda:event}/h=!{timestamp:HH}/",
                t,
                &keys,
                None
            )
            .unwrap(),
            "raw/Interaction/h=07/"
        );
        assert_eq!(
            evaluate_prefix(
                "errors/!{firehose:error-output-type}/",
                t,
                &keys,
                Some("processing-failed")
            )
            .unwrap(),
            "errors/processing-failed/"
        );
        assert_eq!(
            evaluate_prefix("plain/", t, &keys, None).unwrap(),
            "plain/2026/11/22/07/"
        );
        assert!(evaluate_prefix("x/!{partitionKeyFromLambda:missing}/", t, &keys, None).is_err());
    }
}
