//! The live API Lambda (API Gateway HTTP API -> Lambda): the RSVP statistics, and the dashboard, a
//! page that polls `GET /api/v1/dashboard` and draws it. Bad requests get a 4xx with a JSON error,
//! never a 5xx; a state table that cannot be read is a 503 with a JSON error.

mod assets;

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Error, Request};
use serde::Serialize;
use tally_aws::http::{HttpApi, Reply};
use tally_aws::{state_store, DynamoStateStore, Env, SdkConfig};
use tally_engine::ports::StateReader;
use tally_pipelines::dashboard::{read_panels, Panels};
use tally_pipelines::rsvp::{read_stats, Stats};

/// The routes, each with the one state reader it needs.
pub struct LiveApi<S, F> {
    /// The RSVP statistics' state table (`rsvp#...` items).
    pub rsvp: S,
    /// The dashboard feed's table (`dash#...` items).
    pub feed: F,
}

/// The dashboard's data in one answer.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub as_of: DateTime<Utc>,
    pub rsvp: Stats,
    pub panels: Panels,
}

impl LiveApi<DynamoStateStore, DynamoStateStore> {
    /// Reads `RSVP_STATE_TABLE` and `DASHBOARD_TABLE`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        let table = |name: &'static str| -> Result<DynamoStateStore, Error> {
            let vars =
                std::collections::HashMap::from([("STATE_TABLE".to_string(), env.var(name)?)]);
            Ok(state_store(config, &Env::from_map(vars))?)
        };
        Ok(LiveApi {
            rsvp: table("RSVP_STATE_TABLE")?,
            feed: table("DASHBOARD_TABLE")?,
        })
    }
}

enum Route<'a> {
    RsvpStats,
    Dashboard,
    DashboardData,
    Asset(&'a str),
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Reply {
    tracing::error!(error = %e, "{what} could not be read");
    Reply::error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what} are unavailable, retry later"),
    )
}

impl<S: StateReader, F: StateReader> LiveApi<S, F> {
    pub async fn route(&self, method: &Method, path: &str, now: DateTime<Utc>) -> Reply {
        let path = path.trim_end_matches('/');
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = match segments.as_slice() {
            ["api", "v1", "rsvp", "stats"] => Route::RsvpStats,
            ["api", "v1", "dashboard"] => Route::DashboardData,
            ["dashboard"] => Route::Dashboard,
            ["dashboard", file] => Route::Asset(file),
            _ => {
                return Reply::error(
                    StatusCode::NOT_FOUND,
                    format!("no route for {path}: try GET /api/v1/rsvp/stats or GET /dashboard"),
                )
            }
        };
        if method != Method::GET {
            return Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed: use GET"),
            );
        }
        match route {
            Route::RsvpStats => match read_stats(&self.rsvp, now).await {
                Ok(stats) => Reply::ok(stats),
                Err(e) => unavailable("RSVP statistics", e),
            },
            Route::DashboardData => {
                let (rsvp, panels) =
                    tokio::join!(read_stats(&self.rsvp, now), read_panels(&self.feed, now));
                match (rsvp, panels) {
                    (Ok(rsvp), Ok(panels)) => Reply::ok(Dashboard {
                        as_of: now,
                        rsvp,
                        panels,
                    }),
                    (Err(e), _) | (_, Err(e)) => unavailable("dashboard data", e),
                }
            }
            Route::Dashboard => Reply::asset(assets::page()),
            Route::Asset(name) => match assets::file(name) {
                Some(a) => Reply::asset(a),
                None => Reply::error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no dashboard file {name:?}: there are {}",
                        assets::names().collect::<Vec<_>>().join(", ")
                    ),
                ),
            },
        }
    }
}

impl<S: StateReader, F: StateReader> HttpApi for LiveApi<S, F> {
    async fn handle(&self, request: Request) -> Reply {
        self.route(request.method(), request.uri().path(), Utc::now())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_engine::testing::MemoryStateStore;

    fn api() -> LiveApi<MemoryStateStore, MemoryStateStore> {
        LiveApi {
            rsvp: MemoryStateStore::new(),
            feed: MemoryStateStore::new(),
        }
    }

    #[tokio::test]
    async fn routes_answer_json_or_the_dashboards_files() {
        let (a, now) = (api(), Utc::now());
        let r = a.route(&Method::GET, "/api/v1/rsvp/stats", now).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["totals"]["rsvps"], 0);
        assert_eq!(r.body["top_events"], serde_json::json!([]));
        let r = a.route(&Method::GET, "/api/v1/dashboard", now).await;
        assert_eq!(r.body["panels"]["per_minute"].as_array().unwrap().len(), 60);
        let r = a.route(&Method::GET, "/dashboard", now).await;
        assert!(r.asset.unwrap().content_type.starts_with("text/html"));
        for name in assets::names() {
            assert_eq!(
                a.route(&Method::GET, &format!("/dashboard/{name}"), now)
                    .await
                    .status,
                StatusCode::OK
            );
        }
        let r = a.route(&Method::GET, "/dashboard/nope.js", now).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.body["error"].as_str().unwrap().contains("dashboard.js"));
        assert_eq!(
            a.route(&Method::POST, "/api/v1/rsvp/stats", now)
                .await
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            a.route(&Method::GET, "/api/v1/rsvp", now).await.status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_page_loads_only_files_served_here() {
        let page = std::str::from_utf8(assets::page().bytes).unwrap();
        for src in page
            .split(['"', '\''])
            .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
        {
            let name = src
                .trim_start_matches("/dashboard/")
                .trim_start_matches("dashboard/");
            assert!(assets::file(name).is_some(), "{src} is not served");
            assert!(!src.contains("//"), "no CDN: {src}");
        }
    }
}
