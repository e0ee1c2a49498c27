//! The lookup API Lambda (API Gateway HTTP API -> Lambda). Routes and errors follow the
//! contract in docs/contracts.md: bad input is a 4xx with a JSON error, never a 5xx.

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Error, Request, RequestExt};
use serde::Serialize;
use tally_aws::http::{percent_decode, HttpApi, Reply};
use tally_aws::{DynamoResultsTable, Env, SdkConfig};
use tally_pipelines::gender::{model_by_name, Cid, Gender, ModelSettings, ResultLookup};

pub const SERVICE: &str = "tally";
pub const DEFAULT_MODEL: &str = "MODEL1";
/// The template's route that sends every other path here (for its JSON 404).
const CATCH_ALL_ROUTE: &str = "ANY /{proxy+}";

/// Every route of the HTTP API, described (docs/openapi.json): served at `GET /openapi.json`.
pub const OPENAPI: tally_aws::http::Asset = tally_aws::http::Asset {
    content_type: "application/json",
    bytes: include_bytes!("../../../docs/openapi.json"),
    cache_control: "no-cache",
};

pub struct GenderApi<L> {
    pub lookup: L,
    pub settings: ModelSettings,
}

/// The answer to a lookup.
#[derive(Debug, Serialize)]
pub struct GenderAnswer {
    #[serde(rename = "_id")]
    pub id: String,
    pub cid: String,
    pub model: String,
    pub gndr: Gender,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub male: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub female: Option<u64>,
    /// Event time of the visit MODEL1 answers from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_visit: Option<DateTime<Utc>>,
    pub as_of: DateTime<Utc>,
}

impl GenderApi<DynamoResultsTable> {
    /// Reads `RESULTS_TABLE` and `WINDOW_DAYS`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        Ok(GenderApi {
            lookup: DynamoResultsTable::from_env(config, env)?,
            settings: ModelSettings {
                window_days: env.parse_at_least("WINDOW_DAYS", 7, 1)?,
            },
        })
    }
}

impl<L: ResultLookup> GenderApi<L> {
    pub async fn route(
        &self, method: &Method, path: &str, model: Option<&str>, now: DateTime<Utc>,
    ) -> Reply {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let known = match segments.as_slice() {
            [""] => Some(Route::Root),
            ["openapi.json"] => Some(Route::OpenApi),
            ["api", "v1", "getGender", cid] => Some(Route::Gender(cid)),
            _ => None,
        };
        let Some(route) = known else {
            return Reply::no_route(path, "GET /api/v1/getGender/{cid}?model=MODEL1");
        };
        if method != Method::GET {
            return Reply::method_not_allowed(method, &Method::GET);
        }
        match route {
            Route::Root => Reply::ok(
                serde_json::json!({ "service": SERVICE, "version": env!("CARGO_PKG_VERSION") }),
            ),
            Route::Gender(raw_cid) => self.gender(raw_cid, model, now).await,
            Route::OpenApi => Reply::asset(OPENAPI),
        }
    }

    async fn gender(&self, raw_cid: &str, model: Option<&str>, now: DateTime<Utc>) -> Reply {
        let Some(decoded) = percent_decode(raw_cid) else {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                format!("invalid cid {raw_cid:?}: bad percent-encoding"),
            );
        };
        let cid = match Cid::parse(&decoded) {
            Ok(c) => c,
            Err(e) => return Reply::error(StatusCode::BAD_REQUEST, format!("invalid cid: {e}")),
        };
        let model = match model_by_name(model.unwrap_or(DEFAULT_MODEL), self.settings) {
            Ok(m) => m,
            Err(e) => return Reply::error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let stored = match self.lookup.get(&cid, model.name()).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Reply::error(
                    StatusCode::NOT_FOUND,
                    format!("unknown cid {cid} for {}", model.name()),
                )
            }
            // Not bad input: the table could not be read. Say so, and let the client retry.
            Err(e) => {
                tracing::error!(error = %e, "results table lookup failed");
                return Reply::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "results are unavailable, retry later",
                );
            }
        };
        // Decide again as of now: MODEL3's window moves even when no visit comes.
        let current = stored.as_of(model.as_ref(), now);
        let Some(gndr) = current.gndr else {
            return Reply::error(
                StatusCode::NOT_FOUND,
                format!(
                    "no {} answer for cid {cid}: no visits in its window",
                    model.name()
                ),
            );
        };
        Reply::ok(GenderAnswer {
            id: current.id,
            cid: cid.to_string(),
            model: current.model,
            gndr,
            male: current.male,
            female: current.female,
            last_visit: current.state.latest.as_ref().map(|l| l.ts),
            as_of: now,
        })
    }
}

impl<L: ResultLookup> HttpApi for GenderApi<L> {
    async fn handle(&self, request: Request) -> Reply {
        let model = request
            .query_string_parameters_ref()
            .and_then(|q| q.first("model").map(str::to_string));
        // A lookup is answered only through its own route, the one API Gateway authorizes
        // (ApiReadAuth); the catch-all route, open to all, serves the rest.
        let via_catch_all = matches!(
            request.request_context_ref(),
            Some(lambda_http::request::RequestContext::ApiGatewayV2(c))
                if c.route_key.as_deref() == Some(CATCH_ALL_ROUTE)
        );
        if via_catch_all && request.uri().path().starts_with("/api/v1/getGender") {
            return Reply::no_route(
                request.uri().path(),
                "GET /api/v1/getGender/{cid}?model=MODEL1",
            );
        }
        self.route(
            request.method(),
            request.uri().path(),
            model.as_deref(),
            Utc::now(),
        )
        .await
    }
}

enum Route<'a> {
    Root,
    OpenApi,
    Gender(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_pipelines::gender::testing::MemoryResultsTable;

    fn api() -> GenderApi<MemoryResultsTable> {
        GenderApi {
            lookup: MemoryResultsTable::default(),
            settings: ModelSettings::default(),
        }
    }

    /// The sample event of `tally invoke` (events/GenderApiFunction.json) on `route_key`.
    fn lookup_event(route_key: &str) -> Request {
        let text = include_str!("../../../events/GenderApiFunction.json")
            .replace("GET /api/v1/getGender/{cid}", route_key);
        lambda_http::request::from_str(&text).unwrap()
    }

    /// API Gateway authorizes the lookup on its own route (ApiReadAuth): the catch-all route,
    /// open to all, must not answer it.
    #[tokio::test]
    async fn a_lookup_is_answered_on_its_own_route_only() {
        let a = api();
        let through_its_route = a.handle(lookup_event("GET /api/v1/getGender/{cid}")).await;
        assert_eq!(through_its_route.status, StatusCode::NOT_FOUND);
        let error = through_its_route.body["error"].as_str().unwrap();
        assert!(
            !error.starts_with("no route"),
            "no result for C124, not no route: {error}"
        );
        let around_it = a.handle(lookup_event(CATCH_ALL_ROUTE)).await;
        assert_eq!(around_it.status, StatusCode::NOT_FOUND);
        assert!(around_it.body["error"]
            .as_str()
            .unwrap()
            .starts_with("no route"));
    }

    #[tokio::test]
    async fn bad_input_is_4xx_json() {
        let now = Utc::now();
        let a = api();
        let r = a
            .route(&Method::GET, "/api/v1/getGender/C1", Some("MODEL9"), now)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body["error"].as_str().unwrap().contains("unknown model"));
        let r = a
            .route(&Method::GET, "/api/v1/getGender/a%20b", None, now)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = a
            .route(&Method::GET, "/api/v1/getGender/%zz", None, now)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = a
            .route(&Method::GET, "/api/v1/getGender/C1", None, now)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = a.route(&Method::GET, "/nope", None, now).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = a.route(&Method::POST, "/", None, now).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            r.headers,
            [("allow", "GET".to_string())],
            "RFC 9110: a 405 says what is allowed"
        );
        let r = a.route(&Method::GET, "/", None, now).await;
        assert_eq!(r.body["service"], "tally");
    }
}
