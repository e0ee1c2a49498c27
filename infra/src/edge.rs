//! The edge endpoint (127.0.0.1:4566 in the local cloud): one address for every AWS API. Each
//! request goes to the emulator of its service, read from the SigV4 credential scope
//! (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`), so any AWS SDK or CLI works with
//! `AWS_ENDPOINT_URL`. It also counts requests per operation, for the benchmarks, and tells idle
//! shard readers when a Kinesis write is acknowledged ([`KinesisWrites`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::http::{error_response, Body};
use crate::kinesis::{wakeup::stream_of_put, KinesisWrites};

/// Where each service's requests go: a port per service, and one for every other service.
#[derive(Debug, Clone)]
pub struct Backends {
    by_service: BTreeMap<String, u16>,
    default: u16,
}

impl Backends {
    /// Every service to `default` until [`Backends::route`] says otherwise.
    pub fn new(default: u16) -> Self {
        Backends {
            by_service: BTreeMap::new(),
            default,
        }
    }

    pub fn route(mut self, service: &str, port: u16) -> Self {
        self.by_service.insert(service.to_string(), port);
        self
    }

    pub fn port_for(&self, service: &str) -> u16 {
        self.by_service
            .get(service)
            .copied()
            .unwrap_or(self.default)
    }
}

/// What the local cloud itself answers at the edge, beside the AWS APIs.
pub trait Control: Send + Sync {
    /// Everything put before the call through to the lake (`POST /_tally/flush`).
    fn flush(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// The path of the control endpoint: not an AWS API, so no SDK ever sends it.
pub const FLUSH_PATH: &str = "/_tally/flush";

pub struct EdgeRouter {
    backends: Backends,
    client: Client<HttpConnector, Body>,
    counts: Mutex<BTreeMap<String, u64>>,
    control: Mutex<Option<Arc<dyn Control>>>,
    kinesis_writes: KinesisWrites,
}

/// The service a request is for.
pub fn service_of<B>(req: &Request<B>) -> String {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let from_scope = |scope: &str| scope.split('/').nth(3).map(str::to_string);
    if let Some(auth) = header("authorization") {
        if let Some(cred) = auth.split("Credential=").nth(1) {
            if let Some(s) = from_scope(cred.split(',').next().unwrap_or_default()) {
                return s;
            }
        }
    }
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("X-Amz-Credential=") {
                if let Some(s) = from_scope(&v.replace("%2F", "/")) {
                    return s;
                }
            }
        }
    }
    match header("x-amz-target")
        .as_deref()
        .and_then(|t| t.split('.').next())
    {
        Some(t) if t.starts_with("DynamoDB") => "dynamodb".into(),
        Some(t) if t.starts_with("Kinesis") => "kinesis".into(),
        Some(t) if t.starts_with("Firehose") => "firehose".into(),
        _ => "s3".into(),
    }
}

/// `dynamodb:UpdateItem`, `kinesis:PutRecords`, `s3:PUT` ...
pub fn operation_of<B>(service: &str, req: &Request<B>) -> String {
    match req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split('.').nth(1))
    {
        Some(op) => format!("{service}:{op}"),
        None => format!("{service}:{}", req.method()),
    }
}

impl EdgeRouter {
    pub fn new(backends: Backends) -> Arc<Self> {
        Arc::new(Self {
            backends,
            client: Client::builder(TokioExecutor::new()).build_http(),
            counts: Mutex::new(BTreeMap::new()),
            control: Mutex::new(None),
            kinesis_writes: KinesisWrites::default(),
        })
    }

    /// What the shard readers wait on.
    pub fn kinesis_writes(&self) -> &KinesisWrites {
        &self.kinesis_writes
    }

    pub fn set_control(&self, control: Arc<dyn Control>) {
        *self.control.lock().unwrap() = Some(control);
    }

    async fn control(&self, req: &Request<Incoming>) -> Response<Body> {
        let control = self.control.lock().unwrap().clone();
        match (req.method(), control) {
            (&hyper::Method::POST, Some(c)) => match c.flush().await {
                Ok(()) => crate::http::json_response(StatusCode::OK, r#"{"flushed":true}"#),
                Err(e) => error_response(StatusCode::SERVICE_UNAVAILABLE, &e),
            },
            (&hyper::Method::POST, None) => {
                error_response(StatusCode::SERVICE_UNAVAILABLE, "no pipelines run here")
            }
            _ => error_response(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
        }
    }

    /// Requests seen so far, per operation.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap().clone()
    }

    pub fn reset_counts(&self) {
        self.counts.lock().unwrap().clear();
    }

    async fn forward(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        if req.uri().path() == FLUSH_PATH {
            return Ok(self.control(&req).await);
        }
        let service = service_of(&req);
        let operation = operation_of(&service, &req);
        let writes_records = matches!(
            operation.as_str(),
            "kinesis:PutRecord" | "kinesis:PutRecords"
        );
        *self.counts.lock().unwrap().entry(operation).or_default() += 1;
        // A write's stream is in its body: read it whole (at most 5 MB) to wake that stream's
        // readers once it is acknowledged.
        let (parts, body) = req.into_parts();
        let (mut req, written_stream) = if writes_records {
            let bytes = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return Ok(error_response(
                        StatusCode::BAD_REQUEST,
                        &format!("request body not read: {e}"),
                    ))
                }
            };
            let stream = stream_of_put(&bytes);
            (Request::from_parts(parts, crate::http::full(bytes)), stream)
        } else {
            (Request::from_parts(parts, body.boxed()), None)
        };
        let port = self.backends.port_for(&service);
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        *req.uri_mut() = match format!("http://127.0.0.1:{port}{path}").parse() {
            Ok(u) => u,
            Err(e) => {
                return Ok(error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("bad request path: {e}"),
                ))
            }
        };
        match self.client.request(req).await {
            Ok(resp) => {
                // Acknowledged means readable: kinesalite answers after storing the records.
                if let (Some(stream), true) = (&written_stream, resp.status().is_success()) {
                    self.kinesis_writes.written(stream);
                }
                Ok(resp.map(|b| b.boxed()))
            }
            Err(e) => Ok(error_response(
                StatusCode::BAD_GATEWAY,
                &format!("{service} emulator on port {port} did not answer: {e}"),
            )),
        }
    }

    /// Serves until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        crate::http::serve("edge", listener, move |req, _| self.clone().forward(req)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_comes_from_the_credential_scope() {
        let req = Request::builder()
            .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20261122/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc")
            .header("x-amz-target", "DynamoDB_20120810.UpdateItem")
            .body(())
            .unwrap();
        assert_eq!(service_of(&req), "dynamodb");
        assert_eq!(operation_of("dynamodb", &req), "dynamodb:UpdateItem");
        let s3 = Request::builder()
            .method("PUT")
            .uri("/bucket/key")
            .body(())
            .unwrap();
        assert_eq!(service_of(&s3), "s3");
        assert_eq!(operation_of("s3", &s3), "s3:PUT");
        let presigned = Request::builder()
            .uri("/b/k?X-Amz-Credential=test%2F20261122%2Fus-east-1%2Fsqs%2Faws4_request")
            .body(())
            .unwrap();
        assert_eq!(service_of(&presigned), "sqs");
    }

    #[test]
    fn services_go_to_their_backend_and_the_rest_to_the_default() {
        let b = Backends::new(3).route("dynamodb", 1).route("kinesis", 2);
        assert_eq!(
            ["dynamodb", "kinesis", "s3", "sqs"].map(|s| b.port_for(s)),
            [1, 2, 3, 3]
        );
    }
}
