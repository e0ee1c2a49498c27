//! The ingest Lambda (API Gateway HTTP API -> Lambda): `POST /collect`. The app's key says which
//! app it is; each event is checked against its type's schema; the valid ones go on
//! `EventsStream` keyed by device, and the answer comes only once Kinesis has all of them.

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Error, Request};
use tally_aws::http::{HttpApi, Reply};
use tally_aws::telemetry::emf_line;
use tally_aws::{publisher, DynamoAppKeys, DynamoSealKeys, Env, KinesisPublisher, SdkConfig};
use tally_engine::ports::RecordPublisher;
use tally_events::collect::{AppKeys, CollectError, Collector};
use tally_events::SealKeys;

pub struct CollectApi<K, P, S> {
    pub collector: Collector<K, P, S>,
}

impl CollectApi<DynamoAppKeys, KinesisPublisher, DynamoSealKeys> {
    /// Reads `APPS_TABLE` (the app keys and the seal's key) and `EVENTS_STREAM`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        Ok(CollectApi {
            collector: Collector::new(
                DynamoAppKeys::from_env(config, env)?,
                publisher(config, env, "EVENTS_STREAM")?,
                DynamoSealKeys::from_env(config, env)?,
            ),
        })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The function's name in metrics.
pub const NAME: &str = "collect";

fn error_reply(e: &CollectError) -> Reply {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let reply = Reply::error(status, e.to_string());
    match e.retry_after() {
        Some(s) => {
            // A 503 is ours, not the client's: logged, and counted for `CollectUnavailableAlarm`.
            tracing::warn!(status = 503, retry_after = s, reason = %e, "collect answered 503");
            println!(
                "{}",
                emf_line(NAME, &[("ServiceUnavailable".to_string(), 1)])
            );
            reply.with_header("retry-after", s.to_string())
        }
        None => reply,
    }
}

impl<K: AppKeys, P: RecordPublisher, S: SealKeys> CollectApi<K, P, S> {
    pub async fn route(
        &self, method: &Method, path: &str, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>,
    ) -> Reply {
        if path.trim_end_matches('/') != "/collect" {
            return Reply::no_route(path, "POST /collect");
        }
        if method != Method::POST {
            return Reply::method_not_allowed(method, &Method::POST);
        }
        let key = header(headers, "x-api-key");
        let origin = header(headers, "origin");
        let encoding = header(headers, "content-encoding");
        match self
            .collector
            .collect(key, origin, body, encoding, now)
            .await
        {
            Ok(accepted) => Reply::ok(accepted),
            Err(e) => error_reply(&e),
        }
    }
}

impl<K: AppKeys, P: RecordPublisher, S: SealKeys> HttpApi for CollectApi<K, P, S> {
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
