//! What the local cloud's HTTP servers share (the edge, API Gateway, each function's Runtime
//! API): the accept loop, JSON responses, and a small client (plain HTTP on loopback, HTTPS for
//! a deployed API).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// The pause after a failed `accept`: 10 ms, doubling to a second; a success resets it. A
/// persistent failure (no file descriptors left) then costs a wake-up a second, not a core.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    pub fn next_pause(&mut self) -> Duration {
        let pause = Duration::from_millis(10 << self.failures.min(7)).min(Duration::from_secs(1));
        self.failures = self.failures.saturating_add(1);
        pause
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Serves HTTP/1.1 on `listener` with `handle` until the task is dropped. `name` is for the log.
pub async fn serve<F, Fut>(name: &'static str, listener: TcpListener, handle: F)
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let mut backoff = AcceptBackoff::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff.reset();
                accepted
            }
            Err(e) => {
                let pause = backoff.next_pause();
                eprintln!("{name}: accept failed ({e}); trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, peer));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A JSON response of the local cloud's own servers.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(body))
        .expect("status and header are valid")
}

/// A body of bytes.
pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An error of the local cloud itself, in the shape AWS SDKs read (`__type`, `message`).
pub fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    json_response(
        status,
        serde_json::json!({ "__type": "LocalCloudError", "message": message }).to_string(),
    )
}

/// The methods [`http_send`] takes.
pub use hyper::Method;

/// An HTTP GET: (status, body).
pub async fn http_get(url: &str) -> Result<(u16, String), HttpError> {
    let r = http_send(hyper::Method::GET, url, &[], Vec::new()).await?;
    Ok((r.status, r.body))
}

/// An HTTP POST without a body: (status, body).
pub async fn http_post(url: &str) -> Result<(u16, String), HttpError> {
    let r = http_send(hyper::Method::POST, url, &[], Vec::new()).await?;
    Ok((r.status, r.body))
}

/// What came back.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// One client for the process: its connections are reused, the system's roots read once.
fn client() -> Result<&'static Client, HttpError> {
    static CLIENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| HttpError(format!("no TLS root certificates on this machine: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let built = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    Ok(CLIENT.get_or_init(|| built))
}

/// One request (http:// or https://), with headers and a body.
pub async fn http_send(
    method: hyper::Method, url: &str, headers: &[(&str, &str)], body: Vec<u8>,
) -> Result<HttpReply, HttpError> {
    let client = client()?;
    let failed = |e: &dyn std::fmt::Display| HttpError(format!("{method} {url}: {e}"));
    let mut request = Request::builder().method(method.clone()).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| failed(&e))?;
    let resp = client.request(request).await.map_err(|e| failed(&e))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| failed(&e))?
        .to_bytes();
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_to_a_second_and_a_success_resets() {
        let mut b = AcceptBackoff::default();
        let pauses: Vec<u64> = (0..10).map(|_| b.next_pause().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_pause(), Duration::from_millis(10));
    }
}
