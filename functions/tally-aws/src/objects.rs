//! Objects in S3 for the lake: `GetObject`, `PutObject`, and the listing and removal compaction
//! needs.

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tally_engine::ports::{ListedObject, ObjectStore};
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
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, PortError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("ListObjectsV2", e))?;
            out.extend(page.contents().iter().map(|o| ListedObject {
                key: o.key().unwrap_or_default().to_string(),
                size: o.size().unwrap_or_default().max(0) as u64,
            }));
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| port_error("DeleteObject", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
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
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::Transient(format!("GetObject {key}: reading the body: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(data))
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), PortError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| port_error("PutObject", e))?;
        Ok(())
    }
}
