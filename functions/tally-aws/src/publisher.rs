//! Publishing to an output stream (results, alerts) with `PutRecords` (500 records or 5 MiB a call).

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use tally_core::ports::{OutRecord, PortError, RecordPublisher};

use crate::errors::port_error;

const MAX_RECORDS: usize = 500;
const MAX_BYTES: usize = 5 * 1024 * 1024;

#[derive(Clone)]
pub struct KinesisPublisher {
    client: Client,
    stream: String,
}

impl KinesisPublisher {
    /// `stream` is a stream name or ARN (the template passes the name).
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        Self {
            client,
            stream: stream.into(),
        }
    }
}

impl RecordPublisher for KinesisPublisher {
    async fn publish(&self, records: &[OutRecord]) -> Result<Vec<usize>, PortError> {
        let mut failed = Vec::new();
        let mut chunk: Vec<(usize, PutRecordsRequestEntry)> = Vec::new();
        let mut chunk_bytes = 0;
        for (i, record) in records.iter().enumerate() {
            let data = record.data.clone();
            let key = record.partition_key.clone();
            let size = data.len() + key.len();
            if chunk.len() == MAX_RECORDS || chunk_bytes + size > MAX_BYTES {
                failed.extend(self.put(std::mem::take(&mut chunk)).await?);
                chunk_bytes = 0;
            }
            let entry = PutRecordsRequestEntry::builder()
                .data(Blob::new(data))
                .partition_key(key)
                .build()
                .map_err(|e| PortError::Fatal(e.to_string()))?;
            chunk.push((i, entry));
            chunk_bytes += size;
        }
        if !chunk.is_empty() {
            failed.extend(self.put(chunk).await?);
        }
        Ok(failed)
    }
}

impl KinesisPublisher {
    async fn put(
        &self,
        chunk: Vec<(usize, PutRecordsRequestEntry)>,
    ) -> Result<Vec<usize>, PortError> {
        let (indices, entries): (Vec<usize>, Vec<PutRecordsRequestEntry>) =
            chunk.into_iter().unzip();
        let out = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| port_error("PutRecords", e))?;
        // Entries come back in request order; the failed ones carry an error code.
        Ok(out
            .records()
            .iter()
            .zip(indices)
            .filter(|(r, _)| r.error_code().is_some())
            .map(|(_, i)| i)
            .collect())
    }
}
