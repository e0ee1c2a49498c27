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

use crate::faults::{Fault, Faults};
use crate::http::{error_response, Body};
use crate::kinesis::{wakeup::stream_of_put, KinesisWrites};
use tally_control::athena::LocalAthena;
use tally_control::cloudformation::Stacks;
use tally_control::iam::{Authorizer, Caller};

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
    faults: Arc<Faults>,
    /// IAM, when the cloud enforces it: each request is checked against its caller's role.
    authorizer: Mutex<Option<Arc<Authorizer>>>,
    /// The running stack, for CloudFormation's read calls.
    stacks: Mutex<Option<Arc<Stacks>>>,
    /// The lake's SQL, for Athena's calls.
    athena: Mutex<Option<Arc<LocalAthena>>>,
    /// The running functions by logical id and physical name, for Lambda's `Invoke`.
    functions: Mutex<BTreeMap<String, Arc<crate::lambda::FunctionHost>>>,
}

/// The answer of a service the edge answers itself (CloudFormation, Athena).
fn answer_from_edge(status: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(crate::http::full(body))
        .expect("status and header are valid")
}

/// The access key a request is signed with (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`).
pub fn access_key_of<B>(req: &Request<B>) -> Option<String> {
    let from_header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .map(str::to_string);
    from_header.or_else(|| {
        req.uri().query()?.split('&').find_map(|p| {
            let v = p.strip_prefix("X-Amz-Credential=")?;
            Some(v.replace("%2F", "/").split('/').next()?.to_string())
        })
    })
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

/// An AWS error answer in the JSON protocols' shape.
fn aws_json_error(
    status: StatusCode, content_type: &str, kind: &str, message: &str,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-errortype", kind)
        .body(crate::http::full(
            serde_json::json!({ "__type": kind, "message": message }).to_string(),
        ))
        .expect("status and headers are valid")
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(crate::http::full(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{escaped}</Message><RequestId>tally-iam</RequestId></Error>"
        )))
        .expect("status and headers are valid")
}

/// What IAM decides a request on: its service, method, path, query, target and body.
fn iam_request<'a>(
    service: &'a str, parts: &'a hyper::http::request::Parts, body: &'a [u8],
) -> tally_control::iam::Request<'a> {
    tally_control::iam::Request {
        service,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        target: parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.split('.').nth(1)),
        body,
    }
}

/// AWS's answer to a call its caller's policies do not allow: `AccessDenied` from S3 (403),
/// `AccessDeniedException` from the JSON services (400; SQS names it in its query-error header).
pub fn access_denied(service: &str, message: &str) -> Response<Body> {
    let content_type = match service {
        "dynamodb" | "sqs" => "application/x-amz-json-1.0",
        _ => "application/x-amz-json-1.1",
    };
    match service {
        "s3" => s3_error(StatusCode::FORBIDDEN, "AccessDenied", message),
        "sqs" => {
            let mut r = aws_json_error(
                StatusCode::BAD_REQUEST,
                content_type,
                "AccessDenied",
                message,
            );
            r.headers_mut().insert(
                "x-amzn-query-error",
                hyper::header::HeaderValue::from_static("AccessDenied;Sender"),
            );
            r
        }
        _ => aws_json_error(
            StatusCode::BAD_REQUEST,
            content_type,
            "AccessDeniedException",
            message,
        ),
    }
}

/// AWS's answer to a key it does not know.
fn unrecognized_key(service: &str) -> Response<Body> {
    match service {
        "s3" => s3_error(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        _ => aws_json_error(
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.1",
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
    }
}

/// The answer AWS gives a request that `fault` fails whole.
pub fn fault_response(fault: Fault) -> Response<Body> {
    const DYNAMODB: &str = "application/x-amz-json-1.0";
    const JSON: &str = "application/x-amz-json-1.1";
    let (status, content_type, kind, message) = match fault {
        Fault::DynamoThrottle => (
            StatusCode::BAD_REQUEST,
            DYNAMODB,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        ),
        Fault::DynamoError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            DYNAMODB,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
        ),
        Fault::KinesisThrottle => (
            StatusCode::BAD_REQUEST,
            JSON,
            "ProvisionedThroughputExceededException",
            "Rate exceeded for the stream (injected by tally up --faults).",
        ),
        Fault::KinesisError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON,
            "InternalFailure",
            "Internal service failure (injected by tally up --faults).",
        ),
        Fault::FirehoseThrottle => (
            StatusCode::BAD_REQUEST,
            JSON,
            "ServiceUnavailableException",
            "Slow down (injected by tally up --faults).",
        ),
        Fault::S3Error | Fault::LambdaCrash => {
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header("content-type", "application/xml")
                .body(crate::http::full(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>tally-faults</RequestId></Error>",
                ))
                .expect("status and headers are valid")
        }
    };
    aws_json_error(status, content_type, kind, message)
}

/// `PutRecords` throttled record by record, as Kinesis does under load: the request for the
/// records that pass, and where each refused one sits in the answer.
struct PartialPut {
    body: hyper::body::Bytes,
    refused: Vec<usize>,
    total: usize,
}

fn partial_put(body: &[u8], faults: &Faults) -> Option<PartialPut> {
    let mut request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let records = request.get_mut("Records")?.as_array_mut()?;
    let total = records.len();
    let mut refused = Vec::new();
    let mut kept = Vec::new();
    for (i, r) in std::mem::take(records).into_iter().enumerate() {
        if faults.strikes(Fault::KinesisThrottle) {
            refused.push(i);
        } else {
            kept.push(r);
        }
    }
    *records = kept;
    Some(PartialPut {
        body: serde_json::to_vec(&request).ok()?.into(),
        refused,
        total,
    })
}

/// The answer to the whole `PutRecords`: Kinesis' entries for the records it took, in order,
/// with the refused ones in their places.
fn merge_put_answer(answer: Option<&[u8]>, put: &PartialPut) -> Option<Vec<u8>> {
    let taken: Vec<serde_json::Value> = match answer {
        Some(a) => serde_json::from_slice::<serde_json::Value>(a)
            .ok()?
            .get("Records")?
            .as_array()?
            .clone(),
        None => Vec::new(),
    };
    let mut taken = taken.into_iter();
    let mut failed = 0;
    let mut records = Vec::with_capacity(put.total);
    for i in 0..put.total {
        if put.refused.contains(&i) {
            records.push(serde_json::json!({
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": "Rate exceeded for shard in stream under account 123456789012 (injected by tally up --faults).",
            }));
            failed += 1;
        } else {
            let entry = taken.next()?;
            if entry.get("ErrorCode").is_some() {
                failed += 1;
            }
            records.push(entry);
        }
    }
    serde_json::to_vec(&serde_json::json!({ "FailedRecordCount": failed, "Records": records })).ok()
}

impl EdgeRouter {
    pub fn new(backends: Backends) -> Arc<Self> {
        Self::with_faults(backends, Faults::none())
    }

    /// An edge that fails requests as `faults` says.
    pub fn with_faults(backends: Backends, faults: Arc<Faults>) -> Arc<Self> {
        Arc::new(Self {
            backends,
            client: Client::builder(TokioExecutor::new()).build_http(),
            counts: Mutex::new(BTreeMap::new()),
            control: Mutex::new(None),
            kinesis_writes: KinesisWrites::default(),
            faults,
            authorizer: Mutex::new(None),
            stacks: Mutex::new(None),
            athena: Mutex::new(None),
            functions: Mutex::new(BTreeMap::new()),
        })
    }

    /// From now on, Lambda's `Invoke` reaches these functions (by every name they have).
    pub fn invoke_with(&self, functions: BTreeMap<String, Arc<crate::lambda::FunctionHost>>) {
        self.functions.lock().unwrap().extend(functions);
    }

    /// Lambda's `Invoke` (`POST /2015-03-31/functions/{name}/invocations`, request-response): the
    /// function's answer, or its error with `X-Amz-Function-Error` as Lambda reports one.
    async fn invoke(&self, path: &str, payload: &[u8]) -> Response<Body> {
        let name = path
            .strip_prefix("/2015-03-31/functions/")
            .and_then(|p| p.strip_suffix("/invocations"))
            .map(|n| n.replace("%3A", ":"))
            .unwrap_or_default();
        // A name, or an ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
        let name = match name.split_once(":function:") {
            Some((_, rest)) => rest.split(':').next().unwrap_or_default().to_string(),
            None => name,
        };
        let host = self.functions.lock().unwrap().get(&name).cloned();
        let Some(host) = host else {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header("x-amzn-errortype", "ResourceNotFoundException")
                .header("content-type", "application/json")
                .body(crate::http::full(
                    serde_json::json!({"Type": "User", "Message": format!("Function not found: {name}")})
                        .to_string(),
                ))
                .expect("a valid response");
        };
        match host.invoke(payload.to_vec()).await {
            Ok(body) => Response::builder()
                .status(StatusCode::OK)
                .header("x-amz-executed-version", "$LATEST")
                .body(crate::http::full(body))
                .expect("a valid response"),
            Err(e) => Response::builder()
                .status(StatusCode::OK)
                .header("x-amz-function-error", "Unhandled")
                .header("content-type", "application/json")
                .body(crate::http::full(
                    serde_json::json!({"errorType": "Runtime.Error", "errorMessage": e.to_string()})
                        .to_string(),
                ))
                .expect("a valid response"),
        }
    }

    /// From now on, Athena's calls are answered with this lake.
    pub fn query_with(&self, athena: Arc<LocalAthena>) {
        *self.athena.lock().unwrap() = Some(athena);
    }

    /// From now on, CloudFormation's read calls are answered for these stacks too (an edge in
    /// front of shared emulators serves several).
    pub fn describe(&self, stacks: Arc<Stacks>) {
        let mut known = self.stacks.lock().unwrap();
        *known = Some(match known.take() {
            Some(old) => Arc::new(old.with(&stacks)),
            None => stacks,
        });
    }

    /// From now on, every request is checked against its caller's role.
    pub fn enforce(&self, authorizer: Arc<Authorizer>) {
        *self.authorizer.lock().unwrap() = Some(authorizer);
    }

    pub fn authorizer(&self) -> Option<Arc<Authorizer>> {
        self.authorizer.lock().unwrap().clone()
    }

    /// A fault that fails this request whole, if one strikes.
    fn whole_request_fault(&self, service: &str, operation: &str) -> Option<Fault> {
        let candidates: &[Fault] = match service {
            "dynamodb" => &[Fault::DynamoThrottle, Fault::DynamoError],
            // PutRecords' throttling is per record (below).
            "kinesis" if operation == "kinesis:PutRecords" => &[Fault::KinesisError],
            "kinesis" => &[Fault::KinesisThrottle, Fault::KinesisError],
            "s3" => &[Fault::S3Error],
            "firehose" => &[Fault::FirehoseThrottle],
            _ => &[],
        };
        candidates.iter().copied().find(|f| self.faults.strikes(*f))
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
        self: Arc<Self>, req: Request<Incoming>,
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
        let authorizer = self.authorizer();
        let role = match authorizer
            .as_ref()
            .map(|a| a.caller(access_key_of(&req).as_deref()))
        {
            None | Some(Caller::Admin) => None,
            Some(Caller::Unknown) => return Ok(unrecognized_key(&service)),
            Some(Caller::Role(role)) => Some(role),
        };
        // A write's stream is in its body, and so is what IAM decides on (the table, the keys)
        // for every service but S3: read it whole (at most a few MB).
        let (parts, body) = req.into_parts();
        let stacks = (service == "cloudformation")
            .then(|| self.stacks.lock().unwrap().clone())
            .flatten();
        let athena = (service == "athena")
            .then(|| self.athena.lock().unwrap().clone())
            .flatten();
        let lambda = service == "lambda" && parts.uri.path().starts_with("/2015-03-31/functions/");
        let answered_here = stacks.is_some() || athena.is_some() || lambda;
        let bytes = if writes_records || answered_here || (role.is_some() && service != "s3") {
            match body.collect().await {
                Ok(b) => Ok(b.to_bytes()),
                Err(e) => {
                    return Ok(error_response(
                        StatusCode::BAD_REQUEST,
                        &format!("request body not read: {e}"),
                    ))
                }
            }
        } else {
            Err(body)
        };
        if let (Some(role), Some(authorizer)) = (role, &authorizer) {
            let body = bytes.as_ref().map(|b| b.as_ref()).unwrap_or_default();
            if let Err(denied) = authorizer.check(role, &iam_request(&service, &parts, body)) {
                return Ok(access_denied(&service, &denied.message));
            }
        }
        if let (Some(athena), Ok(body)) = (&athena, &bytes) {
            *self.counts.lock().unwrap().entry(operation).or_default() += 1;
            let target = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let (status, json) = athena.answer(target, body).await;
            return Ok(answer_from_edge(status, "application/x-amz-json-1.1", json));
        }
        if let (true, Ok(payload)) = (lambda, &bytes) {
            *self.counts.lock().unwrap().entry(operation).or_default() += 1;
            return Ok(self.invoke(parts.uri.path(), payload).await);
        }
        if let (Some(stacks), Ok(form)) = (&stacks, &bytes) {
            *self.counts.lock().unwrap().entry(operation).or_default() += 1;
            let (status, xml) = stacks.answer(&String::from_utf8_lossy(form));
            return Ok(answer_from_edge(status, "text/xml", xml));
        }
        if let Some(fault) = self.whole_request_fault(&service, &operation) {
            return Ok(fault_response(fault));
        }
        let throttles_records =
            operation == "kinesis:PutRecords" && self.faults.active(Fault::KinesisThrottle);
        *self.counts.lock().unwrap().entry(operation).or_default() += 1;
        let (mut req, written_stream) = match bytes {
            Ok(bytes) if writes_records => {
                let stream = stream_of_put(&bytes);
                if throttles_records {
                    if let Some(put) = partial_put(&bytes, &self.faults) {
                        return Ok(self.put_in_part(parts, put, stream).await);
                    }
                }
                (Request::from_parts(parts, crate::http::full(bytes)), stream)
            }
            Ok(bytes) => (Request::from_parts(parts, crate::http::full(bytes)), None),
            Err(body) => (Request::from_parts(parts, body.boxed()), None),
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

    /// `PutRecords` with some records refused: the rest go to Kinesis, and the answer is the
    /// whole request's.
    async fn put_in_part(
        &self, parts: hyper::http::request::Parts, put: PartialPut, stream: Option<String>,
    ) -> Response<Body> {
        let answer = if put.refused.len() == put.total {
            None
        } else {
            let mut parts = parts;
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            let port = self.backends.port_for("kinesis");
            parts.uri = match format!("http://127.0.0.1:{port}/").parse() {
                Ok(u) => u,
                Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            let req = Request::from_parts(parts, crate::http::full(put.body.clone()));
            let resp = match self.client.request(req).await {
                Ok(r) => r,
                Err(e) => {
                    return error_response(
                        StatusCode::BAD_GATEWAY,
                        &format!("kinesis emulator on port {port} did not answer: {e}"),
                    )
                }
            };
            let (head, body) = resp.into_parts();
            let bytes = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return error_response(StatusCode::BAD_GATEWAY, &e.to_string()),
            };
            if !head.status.is_success() {
                return Response::from_parts(head, crate::http::full(bytes));
            }
            if let Some(stream) = &stream {
                self.kinesis_writes.written(stream);
            }
            Some(bytes)
        };
        match merge_put_answer(answer.as_deref(), &put) {
            Some(body) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/x-amz-json-1.1")
                .body(crate::http::full(body))
                .expect("status and header are valid"),
            None => error_response(
                StatusCode::BAD_GATEWAY,
                "kinesis emulator answered PutRecords with an unreadable body",
            ),
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
