//! CORS as an HTTP API with a `CorsConfiguration` does it: API Gateway answers a preflight
//! (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) itself, whatever the routes,
//! and on other answers drops the CORS headers a function sent and puts its own on the answers to
//! the origins it allows. An origin it does not allow gets no CORS header, so the browser blocks.

use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::{full, Body};
use tally_stack::routes::Cors;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether a request is a browser's preflight.
pub fn is_preflight(method: &str, headers: &HeaderMap) -> bool {
    method.eq_ignore_ascii_case("OPTIONS")
        && header(headers, "origin").is_some()
        && header(headers, "access-control-request-method").is_some()
}

/// The answer to a preflight: 204, with the configuration's headers when it allows the origin and
/// the method.
pub fn preflight(cors: &Cors, headers: &HeaderMap) -> Response<Body> {
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(full(""))
        .expect("valid response");
    let origin = header(headers, "origin").unwrap_or_default();
    let method = header(headers, "access-control-request-method").unwrap_or_default();
    if !cors.allows_origin(origin) || !cors.allows_method(method) {
        return response;
    }
    let out = response.headers_mut();
    set(
        out,
        "access-control-allow-origin",
        allowed_origin(cors, origin),
    );
    let methods = if cors.allow_methods.iter().any(|m| m == "*") {
        method.to_string()
    } else {
        cors.allow_methods.join(",")
    };
    set(out, "access-control-allow-methods", &methods);
    let requested = header(headers, "access-control-request-headers").unwrap_or_default();
    let allowed_headers = if cors.allow_headers.iter().any(|h| h == "*") {
        requested.to_string()
    } else {
        cors.allow_headers.join(",")
    };
    if !allowed_headers.is_empty() {
        set(out, "access-control-allow-headers", &allowed_headers);
    }
    if let Some(age) = cors.max_age {
        set(out, "access-control-max-age", &age.to_string());
    }
    if cors.allow_credentials {
        set(out, "access-control-allow-credentials", "true");
    }
    response
}

/// An answer as API Gateway sends it under `cors`: the function's CORS headers replaced by the
/// configuration's, for an origin it allows.
pub fn apply(cors: &Cors, request: &HeaderMap, response: &mut Response<Body>) {
    let out = response.headers_mut();
    let theirs: Vec<_> = out
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for k in theirs {
        out.remove(k);
    }
    let Some(origin) = header(request, "origin").filter(|o| cors.allows_origin(o)) else {
        return;
    };
    set(
        out,
        "access-control-allow-origin",
        allowed_origin(cors, origin),
    );
    if !cors.expose_headers.is_empty() {
        set(
            out,
            "access-control-expose-headers",
            &cors.expose_headers.join(","),
        );
    }
    if cors.allow_credentials {
        set(out, "access-control-allow-credentials", "true");
    }
}

/// `*` when every origin may call, else the page's own origin.
fn allowed_origin<'a>(cors: &Cors, origin: &'a str) -> &'a str {
    if cors.allow_origins.iter().any(|o| o == "*") {
        "*"
    } else {
        origin
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors {
            allow_origins: vec!["https://shop.example".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into(), "x-api-key".into()],
            expose_headers: vec!["retry-after".into()],
            max_age: Some(3600),
            allow_credentials: false,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_preflight_of_an_allowed_origin_gets_the_configuration_and_others_nothing() {
        let asked = headers(&[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-api-key,content-type"),
        ]);
        assert!(is_preflight("OPTIONS", &asked));
        let ok = preflight(&cors(), &asked);
        assert_eq!(ok.status(), 204);
        let h = ok.headers();
        assert_eq!(h["access-control-allow-origin"], "https://shop.example");
        assert_eq!(h["access-control-allow-methods"], "GET,POST");
        assert_eq!(h["access-control-allow-headers"], "content-type,x-api-key");
        assert_eq!(h["access-control-max-age"], "3600");
        let other = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ]);
        let refused = preflight(&cors(), &other);
        assert_eq!(refused.status(), 204);
        assert!(refused
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        let delete = headers(&[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "DELETE"),
        ]);
        assert!(preflight(&cors(), &delete).headers().is_empty());
    }

    #[test]
    fn answers_carry_the_configurations_headers_not_the_functions() {
        let mut response = Response::builder()
            .header("access-control-allow-origin", "*")
            .body(full("{}"))
            .unwrap();
        apply(
            &cors(),
            &headers(&[("origin", "https://shop.example")]),
            &mut response,
        );
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://shop.example"
        );
        assert_eq!(
            response.headers()["access-control-expose-headers"],
            "retry-after"
        );
        let mut theirs = Response::builder()
            .header("access-control-allow-origin", "*")
            .body(full("{}"))
            .unwrap();
        apply(
            &cors(),
            &headers(&[("origin", "https://evil.example")]),
            &mut theirs,
        );
        assert!(theirs
            .headers()
            .get("access-control-allow-origin")
            .is_none());
    }
}
