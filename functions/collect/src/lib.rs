//! The ingest Lambda (API Gateway HTTP API -> Lambda): `POST /collect`. The app's key says which
//! app it is; each event is checked against its type's schema; the valid ones go on
//! `EventsStream` keyed by device, and the answer comes only once Kinesis has all of them.

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Error, Request};
use tally_aws::http::{HttpApi, Reply};
use tally_aws::{publisher, DynamoAppKeys, Env, KinesisPublisher, SdkConfig};
use tally_engine::ports::RecordPublisher;
use tally_pipelines::events::collect::{AppKeys, CollectError, Collector};

pub struct CollectApi<K, P> {
    pub collector: Collector<K, P>,
}

impl CollectApi<DynamoAppKeys, KinesisPublisher> {
    /// Reads `APPS_TABLE` and `EVENTS_STREAM`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        Ok(CollectApi {
            collector: Collector::new(
                DynamoAppKeys::from_env(config, env)?,
                publisher(config, env, "EVENTS_STREAM")?,
            ),
        })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn error_reply(e: &CollectError) -> Reply {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let reply = Reply::error(status, e.to_string());
    match e.retry_after() {
        Some(s) => reply.with_header("retry-after", s.to_string()),
        None => reply,
    }
}

impl<K: AppKeys, P: RecordPublisher> CollectApi<K, P> {
    pub async fn route(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Reply {
        if path.trim_end_matches('/') != "/collect" {
            return Reply::error(
                StatusCode::NOT_FOUND,
                format!("no route for {path}: try POST /collect"),
            );
        }
        if method != Method::POST {
            return Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed: use POST"),
            );
        }
        let key = header(headers, "x-api-key");
        let encoding = header(headers, "content-encoding");
        match self.collector.collect(key, body, encoding, now).await {
            Ok(accepted) => Reply::ok(accepted),
            Err(e) => error_reply(&e),
        }
    }
}

impl<K: AppKeys, P: RecordPublisher> HttpApi for CollectApi<K, P> {
    async fn handle(&self, request: Request) -> Reply {
        let body: &[u8] = match request.body() {
            Body::Empty => &[],
            Body::Text(t) => t.as_bytes(),
            Body::Binary(b) => b,
            _ => &[],
        };
        self.route(
            request.method(),
            request.uri().path(),
            request.headers(),
            body,
            Utc::now(),
        )
        .await
    }
}
