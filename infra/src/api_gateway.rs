//! API Gateway (HTTP API, payload format 2.0): routes from the template's `HttpApi` events,
//! each HTTP request turned into the proxy event the function gets in AWS, and its response
//! turned back into HTTP.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::net::TcpListener;

use crate::edge::Body;
use crate::function_host::FunctionHost;
use crate::template::{Template, TemplateError};

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
}

impl Route {
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters when `path` matches, with a specificity score (literal segments first).
    fn matches(&self, method: &str, path: &str) -> Option<(u32, BTreeMap<String, String>)> {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let pattern: Vec<&str> = self
            .path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let actual: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let mut params = BTreeMap::new();
        let mut score = if self.method == "ANY" { 0 } else { 1 };
        for (i, p) in pattern.iter().enumerate() {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
                if i >= actual.len() {
                    return None;
                }
                params.insert(name.to_string(), actual[i..].join("/"));
                return Some((score, params));
            }
            let seg = actual.get(i)?;
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                params.insert(name.to_string(), seg.to_string());
                score += 10;
            } else if p == seg {
                score += 100;
            } else {
                return None;
            }
        }
        (pattern.len() == actual.len()).then_some((score + 1000, params))
    }
}

/// The `HttpApi` routes of every function.
pub fn routes(template: &Template) -> Result<Vec<Route>, TemplateError> {
    let mut out = Vec::new();
    for f in template.of_kind("AWS::Serverless::Function") {
        let props = template.resolved_properties(f)?;
        for (name, e) in props
            .get("Events")
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            match e.get("Type").and_then(Json::as_str) {
                Some("HttpApi") => {
                    let p = &e["Properties"];
                    if p.get("ApiId").is_some() {
                        return Err(TemplateError::Unsupported {
                            what: "HttpApi events on an explicit ApiId".into(),
                            at: format!("Resources.{}.Properties.Events.{name}", f.logical_id),
                        });
                    }
                    out.push(Route {
                        method: p
                            .get("Method")
                            .and_then(Json::as_str)
                            .unwrap_or("ANY")
                            .to_ascii_uppercase(),
                        path: p
                            .get("Path")
                            .and_then(Json::as_str)
                            .unwrap_or("/")
                            .to_string(),
                        function: f.logical_id.clone(),
                    });
                }
                Some("Api") => {
                    return Err(TemplateError::Unsupported {
                        what: "REST Api events (use HttpApi)".into(),
                        at: format!("Resources.{}.Properties.Events.{name}", f.logical_id),
                    })
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

pub struct ApiGateway {
    routes: Vec<Route>,
    functions: BTreeMap<String, Arc<FunctionHost>>,
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    crate::edge::json_response(status, body)
}

impl ApiGateway {
    pub fn new(routes: Vec<Route>, functions: BTreeMap<String, Arc<FunctionHost>>) -> Arc<Self> {
        Arc::new(Self { routes, functions })
    }

    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let api = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| api.clone().handle(req, peer.ip().to_string()));
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        source_ip: String,
    ) -> Result<Response<Body>, Infallible> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let best = self
            .routes
            .iter()
            .filter_map(|r| r.matches(&method, &path).map(|(s, p)| (s, p, r)))
            .max_by_key(|(s, _, _)| *s);
        let Some((_, params, route)) = best else {
            return Ok(text(StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#));
        };
        let Some(host) = self.functions.get(&route.function) else {
            return Ok(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"message":"Internal Server Error"}"#,
            ));
        };
        let event = proxy_event(req, route, params, &source_ip).await;
        match host
            .invoke(serde_json::to_vec(&event).unwrap_or_default())
            .await
        {
            Ok(body) => Ok(http_response(&body)),
            Err(e) => {
                eprintln!("api: {} {path}: {e}", route.function);
                Ok(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"message":"Internal Server Error"}"#,
                ))
            }
        }
    }
}

/// The HTTP API payload 2.0 event for a request.
pub async fn proxy_event(
    req: Request<Incoming>,
    route: &Route,
    params: BTreeMap<String, String>,
    source_ip: &str,
) -> Json {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let v = value.to_str().unwrap_or_default().to_string();
        if name == "cookie" {
            cookies.extend(v.split(';').map(|c| c.trim().to_string()));
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|e| *e = format!("{e},{v}"))
            .or_insert(v);
    }
    let raw_query = parts.uri.query().unwrap_or_default().to_string();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode_component(k), decode_component(v));
        query
            .entry(k)
            .and_modify(|e| *e = format!("{e},{v}"))
            .or_insert(v);
    }
    let now = chrono::Utc::now();
    let (body_text, is_b64) = match std::str::from_utf8(&body) {
        Ok(t) => (t.to_string(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&body),
            true,
        ),
    };
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": crate::template::ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host").cloned().unwrap_or_else(|| "127.0.0.1".into()),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route.route_key(),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_b64,
    });
    if !cookies.is_empty() {
        event["cookies"] = serde_json::json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = serde_json::json!(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = serde_json::json!(params);
    }
    if !body.is_empty() {
        event["body"] = Json::String(body_text);
    }
    event
}

fn decode_component(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The function's payload 2.0 response as HTTP.
pub fn http_response(body: &[u8]) -> Response<Body> {
    let v: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
    let Some(status) = v.get("statusCode").and_then(Json::as_u64) else {
        // No statusCode: API Gateway answers 200 with the payload as JSON.
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::copy_from_slice(body))
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .expect("valid response");
    };
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::BAD_GATEWAY));
    for (k, val) in v
        .get("headers")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        builder = builder.header(k.as_str(), crate::template::scalar_string(val));
    }
    for c in v
        .get("cookies")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        builder = builder.header("set-cookie", crate::template::scalar_string(c));
    }
    let text = v.get("body").and_then(Json::as_str).unwrap_or_default();
    let bytes = if v.get("isBase64Encoded").and_then(Json::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    builder
        .body(
            Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap_or_else(|_| text_error())
}

fn text_error() -> Response<Body> {
    text(
        StatusCode::BAD_GATEWAY,
        r#"{"message":"Internal Server Error"}"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_route_wins_and_greedy_params_take_the_rest() {
        let root = Route {
            method: "GET".into(),
            path: "/".into(),
            function: "Api".into(),
        };
        let any = Route {
            method: "ANY".into(),
            path: "/{proxy+}".into(),
            function: "Api".into(),
        };
        let exact = Route {
            method: "GET".into(),
            path: "/api/v1/getGender/{cid}".into(),
            function: "Other".into(),
        };
        assert!(root.matches("GET", "/").is_some());
        assert!(
            any.matches("GET", "/").is_none(),
            "a greedy parameter needs a segment"
        );
        let (_, p) = any.matches("POST", "/api/v1/getGender/C1").unwrap();
        assert_eq!(p["proxy"], "api/v1/getGender/C1");
        let (s_exact, p) = exact.matches("GET", "/api/v1/getGender/C1").unwrap();
        assert_eq!(p["cid"], "C1");
        assert!(s_exact > any.matches("GET", "/api/v1/getGender/C1").unwrap().0);
        assert!(exact.matches("POST", "/api/v1/getGender/C1").is_none());
    }

    #[test]
    fn query_components_are_decoded() {
        assert_eq!(decode_component("a%20b+c"), "a b c");
        assert_eq!(decode_component("MODEL2"), "MODEL2");
    }
}
