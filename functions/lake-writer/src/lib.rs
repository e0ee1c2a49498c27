//! The lake writer Lambda: S3 notifications (through an SQS queue) of objects created in the
//! archive bucket -> the lake's tables. Messages whose objects could not be converted come again
//! (partial batch failures) and end on the queue's dead-letter queue if they keep failing.

use tally_aws::config::s3_client;
use tally_aws::s3_events::created_keys;
use tally_aws::telemetry::emf_line;
use tally_aws::{Env, Error, QueueFunction, QueueHandler, QueueMessage, S3Objects, SdkConfig};
use tally_engine::ports::ObjectStore;
use tally_lake::LakeWriter;

pub const NAME: &str = "lake-writer";

pub struct LakeFunction<O> {
    pub writer: LakeWriter<O>,
}

pub type AwsLakeFunction = QueueFunction<LakeFunction<S3Objects>>;

/// Reads `ARCHIVE_BUCKET`, the bucket the lake reads and writes.
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<AwsLakeFunction, Error> {
    let store = S3Objects::new(s3_client(config), env.var("ARCHIVE_BUCKET")?);
    Ok(QueueFunction::new(LakeFunction {
        writer: LakeWriter { store },
    }))
}

impl<O: ObjectStore> QueueHandler for LakeFunction<O> {
    fn name(&self) -> &str {
        NAME
    }

    async fn handle(&self, messages: &[QueueMessage]) -> Vec<String> {
        let mut failed = Vec::new();
        let mut keys_of = Vec::new();
        for m in messages {
            match created_keys(&m.body) {
                Ok(keys) => keys_of.push((m.id.clone(), keys)),
                Err(e) => {
                    // Not a notification: it will never convert. Retried, it ends on the
                    // dead-letter queue, where someone can look at it.
                    tracing::error!(message = %m.id, error = %e, "unreadable message");
                    failed.push(m.id.clone());
                }
            }
        }
        let keys: Vec<String> = keys_of.iter().flat_map(|(_, k)| k.clone()).collect();
        let report = self.writer.convert(&keys).await;
        for (id, keys) in &keys_of {
            if keys.iter().any(|k| report.failed.contains_key(k)) {
                failed.push(id.clone());
            }
        }
        for (key, why) in &report.failed {
            tracing::warn!(object = %key, error = %why, "not converted; its message will come again");
        }
        for (partition, why) in &report.compaction_failed {
            tracing::warn!(partition = %partition, error = %why, "not compacted; the next conversion into it tries again");
        }
        let mut counts = vec![
            ("Objects".to_string(), report.objects as u64),
            ("RawBytes".to_string(), report.raw_bytes as u64),
            ("BadLines".to_string(), report.bad_lines as u64),
            ("FilesWritten".to_string(), report.files_written as u64),
            ("ParquetBytes".to_string(), report.parquet_bytes as u64),
            ("Failed".to_string(), report.failed.len() as u64),
            ("Compactions".to_string(), report.compacted.merges as u64),
            (
                "CompactionFailed".to_string(),
                report.compaction_failed.len() as u64,
            ),
        ];
        counts.extend(
            report
                .rows
                .iter()
                .map(|(t, n)| (format!("Rows.{t}"), *n as u64)),
        );
        println!("{}", emf_line(NAME, &counts));
        failed
    }
}
