//! Reading a stream shard by shard, the way Lambda's pollers and Firehose do.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use tokio::sync::watch;

use super::KinesisError;
use tally_stack::template::{ACCOUNT, REGION};

/// A record read from a shard.
#[derive(Debug, Clone)]
pub struct ShardRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    /// Seconds since the epoch.
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

/// Where a reader starts in a shard.
#[derive(Debug, Clone, PartialEq)]
pub enum StartAt {
    TrimHorizon,
    Latest,
    /// Seconds since the epoch.
    AtTimestamp(f64),
    /// From this record on (a failed batch's first, for a redrive).
    AtSequenceNumber(String),
}

/// One `GetRecords` call's worth.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<ShardRecord>,
    /// Nothing more to read for now: the shard's current end, or the end of a closed shard.
    pub at_end: bool,
}

/// Reads one shard in order. An expired or invalid iterator, or a throttled call, costs one
/// failed [`ShardReader::read`]; the next one resumes right after the last record returned.
pub struct ShardReader {
    kinesis: Client,
    stream: String,
    shard_id: String,
    start: StartAt,
    last: Option<String>,
    iterator: Option<String>,
    closed: bool,
}

impl ShardReader {
    pub fn new(kinesis: Client, stream: &str, shard_id: &str, start: StartAt) -> Self {
        ShardReader {
            kinesis,
            stream: stream.to_string(),
            shard_id: shard_id.to_string(),
            start,
            last: None,
            iterator: None,
            closed: false,
        }
    }

    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    /// The shard was closed by a reshard and is read to its end: nothing will ever come.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    async fn open(&self) -> Result<String, KinesisError> {
        let req = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(&self.shard_id);
        let req = match (&self.last, &self.start) {
            (Some(seq), _) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            (None, StartAt::TrimHorizon) => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            (None, StartAt::Latest) => req.shard_iterator_type(ShardIteratorType::Latest),
            (None, StartAt::AtTimestamp(t)) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(aws_sdk_kinesis::primitives::DateTime::from_secs_f64(*t)),
            (None, StartAt::AtSequenceNumber(seq)) => req
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(seq),
        };
        let out = req
            .send()
            .await
            .map_err(|e| KinesisError::new("GetShardIterator", &self.stream, e))?;
        out.shard_iterator.ok_or_else(|| KinesisError {
            operation: "GetShardIterator",
            stream: self.stream.clone(),
            detail: format!("no iterator for {}", self.shard_id),
        })
    }

    /// Reads up to `limit` records (one `GetRecords` call).
    pub async fn read(&mut self, limit: usize) -> Result<Page, KinesisError> {
        if self.closed {
            return Ok(Page {
                records: Vec::new(),
                at_end: true,
            });
        }
        let iterator = match self.iterator.take() {
            Some(it) => it,
            None => self.open().await?,
        };
        let out = self
            .kinesis
            .get_records()
            // The iterator alone names the stream to Kinesis; IAM (the edge's too) decides on
            // the ARN, so it is sent as the SDKs may.
            .stream_arn(format!(
                "arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{}",
                self.stream
            ))
            .shard_iterator(iterator)
            .limit(limit.clamp(1, 10_000) as i32)
            .send()
            .await
            .map_err(|e| KinesisError::new("GetRecords", &self.stream, e))?;
        let records: Vec<ShardRecord> = out
            .records()
            .iter()
            .map(|r| ShardRecord::from_sdk(&self.shard_id, r))
            .collect();
        if let Some(r) = records.last() {
            self.last = Some(r.sequence_number.clone());
        }
        self.iterator = out.next_shard_iterator().map(String::from);
        self.closed = self.iterator.is_none();
        let at_end =
            self.closed || (records.is_empty() && out.millis_behind_latest().unwrap_or(0) == 0);
        Ok(Page { records, at_end })
    }

    /// Everything up to the shard's current end, retrying a failed call a few times.
    pub async fn read_to_end(&mut self) -> Result<Vec<ShardRecord>, KinesisError> {
        let mut out = Vec::new();
        let mut failures = 0;
        loop {
            match self.read(10_000).await {
                Ok(page) => {
                    failures = 0;
                    out.extend(page.records);
                    if page.at_end {
                        return Ok(out);
                    }
                }
                Err(e) if failures >= 4 => return Err(e),
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(100 << failures)).await;
                }
            }
        }
    }
}

/// The shard ids of a stream.
pub async fn list_shards(
    kinesis: &Client, stream: &str,
) -> Result<Vec<aws_sdk_kinesis::types::Shard>, KinesisError> {
    let out = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| KinesisError::new("ListShards", stream, e))?;
    Ok(out.shards().to_vec())
}

/// Every record of a stream, shard by shard (parents before children), from the oldest.
pub async fn read_stream(kinesis: &Client, stream: &str) -> Result<Vec<ShardRecord>, KinesisError> {
    let mut out = Vec::new();
    for shard in list_shards(kinesis, stream).await? {
        let mut reader = ShardReader::new(
            kinesis.clone(),
            stream,
            shard.shard_id(),
            StartAt::TrimHorizon,
        );
        out.extend(reader.read_to_end().await?);
    }
    Ok(out)
}

/// Runs `read_shard` once for every shard of `stream` as it becomes readable: a child of a
/// reshard once its parent is read to its end (or gone), as Lambda and Firehose order them. The
/// shard list is read again every `relist`. Each `read_shard` watches `shutdown` itself; once it
/// turns true, this returns when every shard started has returned and no child is left to start
/// (so a reader that reads to the end before it stops leaves nothing behind).
pub async fn for_each_shard<F, Fut>(
    kinesis: Client, stream: String, mut shutdown: watch::Receiver<bool>, relist: Duration,
    read_shard: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut started: BTreeSet<String> = BTreeSet::new();
    let finished: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut running = Vec::new();
    loop {
        let stopping = *shutdown.borrow();
        let mut started_now = 0;
        if let Ok(shards) = list_shards(&kinesis, &stream).await {
            for shard in &shards {
                let parent_done = shard.parent_shard_id().is_none_or(|p| {
                    finished.lock().unwrap().contains(p)
                        || !shards.iter().any(|s| s.shard_id() == p)
                });
                let id = shard.shard_id().to_string();
                if parent_done && started.insert(id.clone()) {
                    started_now += 1;
                    let (work, finished) = (read_shard(id.clone()), finished.clone());
                    running.push(tokio::spawn(async move {
                        work.await;
                        finished.lock().unwrap().insert(id);
                    }));
                }
            }
        }
        if stopping {
            running.retain(|t| !t.is_finished());
            if running.is_empty() && started_now == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        tokio::select! {
            _ = crate::stopped(&mut shutdown) => {}
            _ = tokio::time::sleep(relist) => {}
        }
    }
}
