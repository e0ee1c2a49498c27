//! Objects in S3 for the lake: `GetObject` with its ETag, and `PutObject` with S3's conditional
//! writes (`If-None-Match: *`, `If-Match: <etag>`), a failed condition being an answer, not an
//! error.

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tally_engine::ports::{ObjectStore, PutCondition, StoredObject};
use tally_engine::PortError;

use crate::errors::port_error;

#[derive(Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl ObjectStore for S3Objects {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, PortError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(None)
            }
            Err(err) => return Err(port_error("GetObject", err)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::Transient(format!("GetObject {key}: reading the body: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(StoredObject { data, etag }))
    }

    async fn put(
        &self, key: &str, data: Vec<u8>, condition: PutCondition,
    ) -> Result<bool, PortError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data));
        req = match condition {
            PutCondition::Always => req,
            PutCondition::IfAbsent => req.if_none_match("*"),
            PutCondition::IfUnchanged(etag) => req.if_match(etag),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(err) => {
                // 412 Precondition Failed, or 409 when a concurrent conditional write won.
                let status = err.raw_response().map(|r| r.status().as_u16());
                if matches!(status, Some(412) | Some(409)) {
                    Ok(false)
                } else {
                    Err(port_error("PutObject", err))
                }
            }
        }
    }
}
