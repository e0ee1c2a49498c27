//! Publishing to an output stream (results, alerts) with `PutRecords`, in calls that fit its
//! limits (`tally_engine::publish::put_records_chunks`).

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use tally_engine::ports::{OutRecord, PortError, RecordPublisher};
use tally_engine::publish::put_records_chunks;

use crate::errors::port_error;

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
        let sizes = records.iter().map(|r| r.data.len() + r.partition_key.len());
        for chunk in put_records_chunks(sizes) {
            let entries = records[chunk.clone()]
                .iter()
                .map(|r| {
                    PutRecordsRequestEntry::builder()
                        .data(Blob::new(r.data.clone()))
                        .partition_key(&r.partition_key)
                        .build()
                        .map_err(|e| PortError::Fatal(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .put_records()
                .stream_name(&self.stream)
                .set_records(Some(entries))
                .send()
                .await
                .map_err(|e| port_error("PutRecords", e))?;
            // Entries come back in request order; the failed ones carry an error code.
            failed.extend(
                out.records()
                    .iter()
                    .zip(chunk)
                    .filter(|(r, _)| r.error_code().is_some())
                    .map(|(_, i)| i),
            );
        }
        Ok(failed)
    }
}
