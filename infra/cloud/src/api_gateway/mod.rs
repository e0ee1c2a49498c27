//! API Gateway (HTTP API, payload format 2.0): routes from the template's `HttpApi` events, each
//! HTTP request turned into the proxy event the function gets in AWS, and its response turned
//! back into HTTP.
//!
//! - the routes and their matching: `tally-stack`'s `routes.rs`
//! - `proxy.rs`: request to event, response to HTTP

pub mod proxy;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::http::{json_response, Body};
use crate::lambda::FunctionHost;
pub use proxy::{http_response, proxy_event};
pub use tally_stack::routes::{routes, Route};

pub struct ApiGateway {
    routes: Vec<Route>,
    functions: BTreeMap<String, Arc<FunctionHost>>,
}

impl ApiGateway {
    pub fn new(routes: Vec<Route>, functions: BTreeMap<String, Arc<FunctionHost>>) -> Arc<Self> {
        Arc::new(Self { routes, functions })
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
        let best = self
            .routes
            .iter()
            .filter_map(|r| r.matches(&method, &path).map(|(s, p)| (s, p, r)))
            .max_by_key(|(s, _, _)| *s);
        let Some((_, params, route)) = best else {
            return Ok(json_response(
                StatusCode::NOT_FOUND,
                r#"{"message":"Not Found"}"#,
            ));
        };
        let Some(host) = self.functions.get(&route.function) else {
            return Ok(json_response(
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
                Ok(json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"message":"Internal Server Error"}"#,
                ))
            }
        }
    }
}
