//! The live API Lambda (API Gateway HTTP API -> Lambda): the RSVP statistics, the app events'
//! metrics, and the dashboard, a page that polls `GET /api/v1/dashboard` and draws it. Bad requests get a 4xx with a JSON error,
//! never a 5xx; a state table that cannot be read is a 503 with a JSON error.

mod assets;

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Error, Request, RequestExt};
use serde::Serialize;
use tally_aws::http::{HttpApi, Reply};
use tally_aws::{DynamoStateStore, DynamoTable, Env, SdkConfig};
use tally_engine::ports::StateReader;
use tally_events::metrics::{parse_minutes, DEFAULT_MINUTES};
use tally_events::{read_metrics, Metrics, VENDOR_OPENS_ANSWER};
use tally_pipelines::dashboard::{read_panels, Panels};
use tally_pipelines::rsvp::{read_stats, Stats, CLUSTERS_ANSWER};

/// The routes, each with the one state reader it needs.
pub struct LiveApi<S, F, E> {
    /// The RSVP statistics' state table (`rsvp#...` items).
    pub rsvp: S,
    /// The dashboard feed's table (`dash#...` items).
    pub feed: F,
    /// The events metrics' state table (`events#...` items).
    pub events: E,
}

/// The query parameters the routes read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub app_id: Option<String>,
    pub minutes: Option<String>,
}

/// The dashboard's data in one answer.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub as_of: DateTime<Utc>,
    pub rsvp: Stats,
    pub panels: Panels,
    /// App events of the last hour, all apps.
    pub events: Metrics,
    /// The latest run of the ML step (GroupClustersFunction's answer), `null` before the first.
    pub clusters: serde_json::Value,
    /// Today's flyer opens per vendor from the warehouse (VendorOpensFunction's latest answer),
    /// `null` before the first.
    pub vendor_opens: serde_json::Value,
}

impl LiveApi<DynamoStateStore, DynamoStateStore, DynamoStateStore> {
    /// Reads `RSVP_STATE_TABLE`, `DASHBOARD_TABLE` and `EVENTS_STATE_TABLE`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        let table = |variable: &'static str| -> Result<DynamoStateStore, Error> {
            Ok(DynamoTable::from_env(config, env, variable).map(DynamoStateStore::on)?)
        };
        Ok(LiveApi {
            rsvp: table("RSVP_STATE_TABLE")?,
            feed: table("DASHBOARD_TABLE")?,
            events: table("EVENTS_STATE_TABLE")?,
        })
    }
}

enum Route<'a> {
    RsvpStats,
    EventsMetrics,
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

impl<S: StateReader, F: StateReader, E: StateReader> LiveApi<S, F, E> {
    pub async fn route(
        &self, method: &Method, path: &str, query: &Query, now: DateTime<Utc>,
    ) -> Reply {
        let path = path.trim_end_matches('/');
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = match segments.as_slice() {
            ["api", "v1", "rsvp", "stats"] => Route::RsvpStats,
            ["api", "v1", "events", "metrics"] => Route::EventsMetrics,
            ["api", "v1", "dashboard"] => Route::DashboardData,
            ["dashboard"] => Route::Dashboard,
            ["dashboard", file] => Route::Asset(file),
            _ => {
                return Reply::no_route(
                    path,
                    "GET /api/v1/rsvp/stats, GET /api/v1/events/metrics or GET /dashboard",
                )
            }
        };
        if method != Method::GET {
            return Reply::method_not_allowed(method, &Method::GET);
        }
        match route {
            Route::RsvpStats => match read_stats(&self.rsvp, now).await {
                Ok(stats) => Reply::ok(stats),
                Err(e) => unavailable("RSVP statistics", e),
            },
            Route::EventsMetrics => {
                let minutes = match parse_minutes(query.minutes.as_deref()) {
                    Ok(m) => m,
                    Err(e) => return Reply::error(StatusCode::BAD_REQUEST, e),
                };
                let app = query.app_id.as_deref().filter(|a| !a.is_empty());
                if app.is_some_and(|a| a.chars().count() > 128 || a.chars().any(char::is_control)) {
                    return Reply::error(
                        StatusCode::BAD_REQUEST,
                        "app_id must be at most 128 characters, none of them a control character",
                    );
                }
                match read_metrics(&self.events, app, minutes, now).await {
                    Ok(m) => Reply::ok(m),
                    Err(e) => unavailable("event metrics", e),
                }
            }
            Route::DashboardData => {
                let (rsvp, panels, events, clusters, vendor_opens) = tokio::join!(
                    read_stats(&self.rsvp, now),
                    read_panels(&self.feed, now),
                    read_metrics(&self.events, None, DEFAULT_MINUTES, now),
                    CLUSTERS_ANSWER.read(&self.rsvp),
                    VENDOR_OPENS_ANSWER.read(&self.events)
                );
                let answers = clusters.and_then(|c| Ok((c, vendor_opens?)));
                match (rsvp, panels, events, answers) {
                    (Ok(rsvp), Ok(panels), Ok(events), Ok((clusters, vendor_opens))) => {
                        Reply::ok(Dashboard {
                            as_of: now,
                            rsvp,
                            panels,
                            events,
                            clusters,
                            vendor_opens,
                        })
                    }
                    (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                        unavailable("dashboard data", e)
                    }
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

impl<S: StateReader, F: StateReader, E: StateReader> HttpApi for LiveApi<S, F, E> {
    async fn handle(&self, request: Request) -> Reply {
        let params = request.query_string_parameters_ref();
        // A parameter given twice is ambiguous: refused rather than one of them picked.
        for name in ["app_id", "minutes"] {
            if params
                .and_then(|q| q.all(name))
                .is_some_and(|all| all.len() > 1)
            {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be given once"),
                );
            }
        }
        let param = |name: &str| params.and_then(|q| q.first(name).map(str::to_string));
        let query = Query {
            app_id: param("app_id"),
            minutes: param("minutes"),
        };
        self.route(request.method(), request.uri().path(), &query, Utc::now())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_engine::testing::MemoryStateStore;

    fn api() -> LiveApi<MemoryStateStore, MemoryStateStore, MemoryStateStore> {
        LiveApi {
            rsvp: MemoryStateStore::new(),
            feed: MemoryStateStore::new(),
            events: MemoryStateStore::new(),
        }
    }

    #[tokio::test]
    async fn event_metrics_take_an_app_and_a_span_and_refuse_a_bad_one() {
        let (a, now) = (api(), Utc::now());
        let q = |app: Option<&str>, minutes: Option<&str>| Query {
            app_id: app.map(str::to_string),
            minutes: minutes.map(str::to_string),
        };
        let path = "/api/v1/events/metrics";
        let r = a.route(&Method::GET, path, &q(None, None), now).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["per_minute"].as_array().unwrap().len(), 60);
        assert_eq!(r.body["app_id"], serde_json::Value::Null);
        let r = a
            .route(&Method::GET, path, &q(Some("app-1"), Some("5")), now)
            .await;
        assert_eq!(
            (r.body["minutes"].as_u64(), r.body["app_id"].as_str()),
            (Some(5), Some("app-1"))
        );
        for bad in ["0", "1441", "ten", "-1"] {
            let r = a.route(&Method::GET, path, &q(None, Some(bad)), now).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(r.body["error"].as_str().unwrap().contains("minutes"));
        }
    }

    #[tokio::test]
    async fn routes_answer_json_or_the_dashboards_files() {
        let (a, now) = (api(), Utc::now());
        let r = a
            .route(&Method::GET, "/api/v1/rsvp/stats", &Query::default(), now)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["totals"]["rsvps"], 0);
        assert_eq!(r.body["top_events"], serde_json::json!([]));
        let r = a
            .route(&Method::GET, "/api/v1/dashboard", &Query::default(), now)
            .await;
        assert_eq!(r.body["panels"]["per_minute"].as_array().unwrap().len(), 60);
        let r = a
            .route(&Method::GET, "/dashboard", &Query::default(), now)
            .await;
        assert!(r.asset.unwrap().content_type.starts_with("text/html"));
        for name in assets::names() {
            assert_eq!(
                a.route(
                    &Method::GET,
                    &format!("/dashboard/{name}"),
                    &Query::default(),
                    now
                )
                .await
                .status,
                StatusCode::OK
            );
        }
        let r = a
            .route(&Method::GET, "/dashboard/nope.js", &Query::default(), now)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.body["error"].as_str().unwrap().contains("dashboard.js"));
        let r = a
            .route(&Method::POST, "/api/v1/rsvp/stats", &Query::default(), now)
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            r.headers,
            [("allow", "GET".to_string())],
            "RFC 9110: a 405 says what is allowed"
        );
        assert_eq!(
            a.route(&Method::GET, "/api/v1/rsvp", &Query::default(), now)
                .await
                .status,
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
