//! API Gateway (HTTP API, payload format 2.0): routes from the template's `HttpApi` events, each
//! HTTP request turned into the proxy event the function gets in AWS, and its response turned
//! back into HTTP. A route of an explicit `AWS::Serverless::HttpApi` is throttled as its
//! `RouteSettings` / `DefaultRouteSettings` say (429 `Too Many Requests`, as API Gateway answers)
//! and authorized as its `DefinitionBody` says (IAM: 403; JWT: 401).
//!
//! - the routes and their matching: `tally-stack`'s `routes.rs`
//! - `authorization.rs`: IAM and JWT authorization of a route
//! - `cors.rs`: preflights answered, CORS headers from the API's configuration
//! - `proxy.rs`: request to event, response to HTTP

pub mod authorization;
pub mod cors;
pub mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::http::{json_response, Body};
use crate::lambda::FunctionHost;
pub use proxy::{http_response, proxy_event};
use tally_control::iam::Authorizer;
pub use tally_stack::routes::{routes, Route};

pub struct ApiGateway {
    routes: Vec<Route>,
    /// The API's CORS configuration (one API: every route of it has the same), read once.
    cors: Option<tally_stack::routes::Cors>,
    functions: BTreeMap<String, Arc<FunctionHost>>,
    /// Who may invoke an IAM route (absent: IAM not enforced, any signed request may).
    iam: Option<Arc<Authorizer>>,
    /// Each throttled route's bucket: (tokens, when it was last refilled).
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl ApiGateway {
    pub fn new(
        routes: Vec<Route>, functions: BTreeMap<String, Arc<FunctionHost>>,
        iam: Option<Arc<Authorizer>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            cors: routes.iter().find_map(|r| r.cors.clone()),
            routes,
            functions,
            iam,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `route` may take one more request at `now` (its token bucket, as API Gateway's).
    fn admits(&self, route: &Route, now: Instant) -> bool {
        let Some(t) = route.throttle else {
            return true;
        };
        let mut buckets = self.buckets.lock().unwrap();
        let (tokens, last) = buckets.entry(route.route_key()).or_insert((t.burst, now));
        *tokens = (*tokens + t.rate * now.duration_since(*last).as_secs_f64()).min(t.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Serves until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        crate::http::serve("api", listener, move |req, peer| {
            self.clone().handle(req, peer.ip().to_string())
        })
        .await
    }

    async fn handle(
        self: Arc<Self>, req: Request<Incoming>, source_ip: String,
    ) -> Result<Response<Body>, Infallible> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let Some(c) = &self.cors else {
            return Ok(self.route(req, method, path, source_ip).await);
        };
        if cors::is_preflight(&method, req.headers()) {
            return Ok(cors::preflight(c, req.headers()));
        }
        let request_headers = req.headers().clone();
        let mut response = self.route(req, method, path, source_ip).await;
        cors::apply(c, &request_headers, &mut response);
        Ok(response)
    }

    /// The answer of the route a request takes, or API Gateway's own.
    async fn route(
        &self, req: Request<Incoming>, method: String, path: String, source_ip: String,
    ) -> Response<Body> {
        let best = self
            .routes
            .iter()
            .filter_map(|r| r.matches(&method, &path).map(|(s, p)| (s, p, r)))
            .max_by_key(|(s, _, _)| *s);
        let Some((_, params, route)) = best else {
            return json_response(StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#);
        };
        if !self.admits(route, Instant::now()) {
            return json_response(
                StatusCode::TOO_MANY_REQUESTS,
                r#"{"message":"Too Many Requests"}"#,
            );
        }
        if let Some(refused) = authorization::refusal(route, &req, self.iam.as_deref()) {
            return refused;
        }
        let Some(host) = self.functions.get(&route.function) else {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"message":"Internal Server Error"}"#,
            );
        };
        let event = proxy_event(req, route, params, &source_ip).await;
        match host
            .invoke(serde_json::to_vec(&event).unwrap_or_default())
            .await
        {
            Ok(body) => http_response(&body),
            Err(e) => {
                eprintln!("api: {} {path}: {e}", route.function);
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"message":"Internal Server Error"}"#,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_stack::routes::Throttle;

    #[test]
    fn a_throttled_route_takes_its_burst_then_its_rate_and_others_are_not_held_back() {
        let route = |path: &str, throttle| Route {
            method: "POST".into(),
            path: path.into(),
            function: "F".into(),
            throttle,
            auth: Default::default(),
            cors: None,
        };
        let slow = route(
            "/collect",
            Some(Throttle {
                rate: 0.5,
                burst: 3.0,
            }),
        );
        let free = route("/other", None);
        let api = ApiGateway::new(vec![slow.clone(), free.clone()], BTreeMap::new(), None);
        let start = Instant::now();
        let admitted = (0..10).filter(|_| api.admits(&slow, start)).count();
        assert_eq!(
            admitted, 3,
            "the burst, then nothing until tokens come back"
        );
        assert!((0..100).all(|_| api.admits(&free, start)));
        let later = start + std::time::Duration::from_millis(2100);
        assert!(
            api.admits(&slow, later),
            "one token back after two seconds at 0.5/s"
        );
        assert!(!api.admits(&slow, later));
    }
}
