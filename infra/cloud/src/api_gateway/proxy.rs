//! API Gateway's payload format 2.0: an HTTP request as the event a function gets, and the
//! function's response as HTTP.

use std::collections::BTreeMap;

use base64::Engine;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::Value as Json;

use crate::http::{full, json_response, Body};
use tally_stack::routes::Route;

/// The HTTP API payload 2.0 event for a request.
pub async fn proxy_event(
    req: Request<Incoming>, route: &Route, params: BTreeMap<String, String>, source_ip: &str,
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
            "accountId": tally_stack::template::ACCOUNT,
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
            .body(full(Bytes::copy_from_slice(body)))
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
        builder = builder.header(k.as_str(), tally_stack::template::scalar_string(val));
    }
    for c in v
        .get("cookies")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        builder = builder.header("set-cookie", tally_stack::template::scalar_string(c));
    }
    let text = v.get("body").and_then(Json::as_str).unwrap_or_default();
    let bytes = if v.get("isBase64Encoded").and_then(Json::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    builder.body(full(bytes)).unwrap_or_else(|_| text_error())
}

fn text_error() -> Response<Body> {
    json_response(
        StatusCode::BAD_GATEWAY,
        r#"{"message":"Internal Server Error"}"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_are_decoded() {
        assert_eq!(decode_component("a%20b+c"), "a b c");
        assert_eq!(decode_component("MODEL2"), "MODEL2");
    }
}
