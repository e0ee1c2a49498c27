//! The dead-letter location: one JSON object per rejected record under an S3 prefix. The key is
//! deterministic, so a redelivered bad record overwrites its own letter instead of adding one.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tally_engine::ports::{DeadLetterSink, PortError};
use tally_engine::DeadLetter;

use crate::errors::port_error;

#[derive(Clone)]
pub struct S3DeadLetters {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3DeadLetters {
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }
}

impl DeadLetterSink for S3DeadLetters {
    async fn put(&self, letter: &DeadLetter) -> Result<(), PortError> {
        let body = serde_json::to_vec(letter).map_err(|e| PortError::Fatal(e.to_string()))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(letter.object_key(&self.prefix))
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| port_error("PutObject", e))?;
        Ok(())
    }
}
