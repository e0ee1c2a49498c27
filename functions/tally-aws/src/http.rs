//! What every HTTP API function shares (feature `http`): replies as JSON (errors too, never an
//! HTML error page) or a static asset, turned into API Gateway responses, and the runner.

use std::future::Future;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{service_fn, Body, Error, Request, Response};
use serde::Serialize;

use crate::config::{sdk_config, Env};
use crate::SdkConfig;

/// A static body served as is: a page, a script, a stylesheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// `Cache-Control` (the page is always fresh; versioned scripts can be kept).
    pub cache_control: &'static str,
}

/// A response before it becomes HTTP.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// The JSON body; `null` when the reply is an asset.
    pub body: serde_json::Value,
    pub asset: Option<Asset>,
    /// Extra headers (`Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

/// What a page of ours may load: only its own files, no inline script or style, no framing (a
/// page in someone's frame could be clicked for them).
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// JSON is data, never a document.
pub const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

impl Reply {
    pub fn ok(body: impl Serialize) -> Self {
        Reply {
            status: StatusCode::OK,
            body: serde_json::to_value(body).unwrap_or_default(),
            asset: None,
            headers: Vec::new(),
        }
    }

    /// `{"error": message, "status": code}`.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        Reply {
            status,
            body: serde_json::json!({ "error": message.into(), "status": status.as_u16() }),
            asset: None,
            headers: Vec::new(),
        }
    }

    /// 404 for a path no route takes, saying which routes there are (`try`).
    pub fn no_route(path: &str, try_instead: &str) -> Self {
        Self::error(
            StatusCode::NOT_FOUND,
            format!("no route for {path}: try {try_instead}"),
        )
    }

    /// 405 with the `Allow` header RFC 9110 asks for: the route exists, the method does not.
    pub fn method_not_allowed(method: &Method, allowed: &Method) -> Self {
        Self::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} not allowed: use {allowed}"),
        )
        .with_header("allow", allowed.to_string())
    }

    pub fn asset(asset: Asset) -> Self {
        Reply {
            status: StatusCode::OK,
            body: serde_json::Value::Null,
            asset: Some(asset),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn into_response(self) -> Result<Response<Body>, Error> {
        let mut builder = Response::builder()
            .status(self.status)
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer");
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        Ok(match self.asset {
            Some(a) => builder
                .header("content-security-policy", PAGE_POLICY)
                .header("x-frame-options", "DENY")
                .header("content-type", a.content_type)
                .header("cache-control", a.cache_control)
                .body(match std::str::from_utf8(a.bytes) {
                    Ok(text) => Body::Text(text.to_string()),
                    Err(_) => Body::Binary(a.bytes.to_vec()),
                })?,
            None => builder
                .header("content-security-policy", DATA_POLICY)
                .header("content-type", "application/json")
                .header("cache-control", "no-store")
                .body(Body::Text(self.body.to_string()))?,
        })
    }
}

/// An HTTP API function's routes.
pub trait HttpApi: Send + Sync {
    fn handle(&self, request: Request) -> impl Future<Output = Reply> + Send;
}

/// Runs an HTTP API function: tracing, `from_env` once (clients, settings), then every request.
pub async fn run_http<A: HttpApi>(
    from_env: impl FnOnce(&SdkConfig, &Env) -> Result<A, Error>,
) -> Result<(), Error> {
    crate::telemetry::init_tracing();
    let api = from_env(&sdk_config().await, &Env::process())?;
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        api.handle(request).await.into_response()
    }))
    .await
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("C%31"), Some("C1".into()));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn errors_are_json_and_assets_keep_their_type() {
        let r = Reply::error(StatusCode::NOT_FOUND, "no route")
            .into_response()
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/json");
        let Body::Text(t) = r.body() else { panic!() };
        assert_eq!(t, r#"{"error":"no route","status":404}"#);
        let page = Asset {
            content_type: "text/html; charset=utf-8",
            bytes: b"<html>",
            cache_control: "no-cache",
        };
        let r = Reply::asset(page).into_response().unwrap();
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        // A page only loads its own files and is never framed; nothing is sniffed.
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let json = Reply::ok(1).into_response().unwrap();
        assert_eq!(json.headers()["x-content-type-options"], "nosniff");
        assert!(json.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"));
    }
}
