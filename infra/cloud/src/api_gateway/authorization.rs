//! A route's authorization as API Gateway's HTTP API applies it, before the function is invoked:
//! IAM routes want a SigV4-signed request whose principal may `execute-api:Invoke` the route
//! (403 `Forbidden` otherwise); JWT routes want a token from the route's issuer, for one of its
//! audiences, not expired (401 `Unauthorized` otherwise).
//!
//! Locally the JWT's claims are checked and its signature is not: that needs the issuer's keys
//! (its JWKS), which an offline machine cannot fetch. The local cloud proves the wiring (which
//! routes want a token, what a request without one gets); AWS proves the signature.

use base64::Engine;
use hyper::{Request, Response, StatusCode};
use serde_json::Value as Json;

use crate::edge::access_key_of;
use crate::http::{json_response, Body};
use tally_control::iam::{Authorizer, Call, Caller};
use tally_stack::routes::{Route, RouteAuth};
use tally_stack::template::{ACCOUNT, REGION};

/// The local API's id in `execute-api` ARNs.
const API_ID: &str = "local";

/// API Gateway's answer when `req` may not take `route`; None when it may.
pub fn refusal<B>(
    route: &Route, req: &Request<B>, iam: Option<&Authorizer>,
) -> Option<Response<Body>> {
    match &route.auth {
        RouteAuth::None => None,
        RouteAuth::Iam => {
            let forbidden = || json_response(StatusCode::FORBIDDEN, r#"{"message":"Forbidden"}"#);
            let Some(key) = access_key_of(req) else {
                return Some(forbidden());
            };
            let iam = iam?;
            let path = req.uri().path().trim_start_matches('/');
            let arn = format!(
                "arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/$default/{}/{path}",
                req.method()
            );
            let allowed = match iam.caller(Some(&key)) {
                Caller::Admin => true,
                Caller::Role(role) => iam
                    .check_call(role, &Call::new("execute-api:Invoke", arn))
                    .is_ok(),
                Caller::Unknown => false,
            };
            (!allowed).then(forbidden)
        }
        RouteAuth::Jwt { issuer, audience } => {
            let unauthorized =
                || json_response(StatusCode::UNAUTHORIZED, r#"{"message":"Unauthorized"}"#);
            let token = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
                .filter(|t| !t.is_empty());
            let Some(token) = token else {
                return Some(unauthorized());
            };
            let now = chrono::Utc::now().timestamp();
            let why = jwt_claims_problem(token, issuer, audience, now)?;
            let mut answer = unauthorized();
            let challenge =
                format!("Bearer scope=\"\" error=\"invalid_token\" error_description=\"{why}\"");
            if let Ok(v) = challenge.parse() {
                answer.headers_mut().insert("www-authenticate", v);
            }
            Some(answer)
        }
    }
}

/// Why the token's claims do not pass (API Gateway's words), or None when they do.
fn jwt_claims_problem(token: &str, issuer: &str, audience: &[String], now: i64) -> Option<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let claims: Option<Json> = (parts.len() == 3)
        .then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]))
        .and_then(Result::ok)
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(claims) = claims else {
        return Some("the token is not a JWT".into());
    };
    if claims["iss"].as_str() != Some(issuer) {
        return Some("the token does not have a valid issuer".into());
    }
    let audiences: Vec<&str> = match &claims["aud"] {
        Json::String(a) => vec![a.as_str()],
        Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
        _ => claims["client_id"].as_str().into_iter().collect(),
    };
    if !audiences.iter().any(|a| audience.iter().any(|b| b == a)) {
        return Some("the token does not have a valid audience".into());
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp > now => {}
        _ => return Some("the token has expired".into()),
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now) {
        return Some("the token is not valid yet".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: Json) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"signature")
        )
    }

    fn route(auth: RouteAuth) -> Route {
        Route {
            method: "GET".into(),
            path: "/api/v1/rsvp/stats".into(),
            function: "LiveApiFunction".into(),
            throttle: None,
            auth,
            cors: None,
        }
    }

    fn get(headers: &[(&str, String)]) -> Request<()> {
        let mut req = Request::get("/api/v1/rsvp/stats");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.body(()).unwrap()
    }

    #[test]
    fn a_jwt_route_wants_a_token_of_its_issuer_and_audience_not_expired() {
        let issuer = "https://issuer.example";
        let jwt = route(RouteAuth::Jwt {
            issuer: issuer.into(),
            audience: vec!["dashboard".into()],
        });
        let later = chrono::Utc::now().timestamp() + 600;
        let status =
            |req: Request<()>| refusal(&jwt, &req, None).map_or(200, |r| r.status().as_u16());
        assert_eq!(status(get(&[])), 401, "no token");
        let good = token(serde_json::json!({"iss": issuer, "aud": "dashboard", "exp": later}));
        assert_eq!(
            status(get(&[("authorization", format!("Bearer {good}"))])),
            200
        );
        let by_client =
            token(serde_json::json!({"iss": issuer, "client_id": "dashboard", "exp": later}));
        assert_eq!(
            status(get(&[("authorization", by_client)])),
            200,
            "an access token's client_id"
        );
        for (claims, why) in [
            (
                serde_json::json!({"iss": "https://other", "aud": "dashboard", "exp": later}),
                "valid issuer",
            ),
            (
                serde_json::json!({"iss": issuer, "aud": "other", "exp": later}),
                "valid audience",
            ),
            (
                serde_json::json!({"iss": issuer, "aud": "dashboard", "exp": 1}),
                "expired",
            ),
        ] {
            let req = get(&[("authorization", format!("Bearer {}", token(claims)))]);
            let refused = refusal(&jwt, &req, None).unwrap();
            assert_eq!(refused.status(), 401);
            let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains(why), "{challenge}");
        }
        let not_a_jwt = get(&[("authorization", "Bearer abc".into())]);
        assert_eq!(status(not_a_jwt), 401);
    }

    #[test]
    fn an_iam_route_wants_a_signed_request_and_an_open_route_nothing() {
        let signed = get(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=abc".into(),
        )]);
        let iam = route(RouteAuth::Iam);
        assert_eq!(refusal(&iam, &get(&[]), None).unwrap().status(), 403);
        assert!(refusal(&iam, &signed, None).is_none());
        assert!(refusal(&route(RouteAuth::None), &get(&[]), None).is_none());
    }
}
