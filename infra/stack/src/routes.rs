//! The HTTP API's routes, from the template's `HttpApi` events, and which one a request takes
//! (API Gateway's rule: literal segments first, then parameters, then greedy ones); each route's
//! throttling and authorization from its API.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::template::{Template, TemplateError};

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
    /// The route's throttling, from its API's `RouteSettings` or `DefaultRouteSettings`.
    pub throttle: Option<Throttle>,
    /// Who may call it, from the `security` of its operation in the API's `DefinitionBody`.
    pub auth: RouteAuth,
    /// Its API's CORS configuration (`CorsConfiguration`), if it has one.
    pub cors: Option<Cors>,
}

/// An HTTP API's CORS configuration: API Gateway answers preflights from it and puts its headers
/// on the answers to the origins it allows, ignoring any a function sends.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cors {
    /// Exact origins, or `*`.
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

impl Cors {
    /// What `CorsConfiguration` says, if it says anything (SAM also takes `true`: every origin).
    pub fn of(config: &Json) -> Option<Cors> {
        let list = |k: &str| -> Vec<String> {
            match &config[k] {
                Json::Array(a) => a
                    .iter()
                    .map(crate::template::scalar_string)
                    .filter(|v| !v.is_empty())
                    .collect(),
                Json::String(s) => s
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect(),
                _ => Vec::new(),
            }
        };
        match config {
            Json::Bool(true) => Some(Cors {
                allow_origins: vec!["*".into()],
                allow_methods: vec!["*".into()],
                allow_headers: vec!["*".into()],
                ..Cors::default()
            }),
            Json::Object(_) => Some(Cors {
                allow_origins: list("AllowOrigins"),
                allow_methods: list("AllowMethods"),
                allow_headers: list("AllowHeaders"),
                expose_headers: list("ExposeHeaders"),
                max_age: crate::template::number(config, "MaxAge").map(|n| n as u64),
                allow_credentials: config["AllowCredentials"] == true,
            }),
            _ => None,
        }
    }

    /// Whether a page of `origin` may call (origins compare as browsers send them, any case).
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allow_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }

    pub fn allows_method(&self, method: &str) -> bool {
        self.allow_methods
            .iter()
            .any(|m| m == "*" || m.eq_ignore_ascii_case(method))
    }
}

/// API Gateway's authorization of a route.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RouteAuth {
    /// Anyone.
    #[default]
    None,
    /// A request signed (SigV4) by a principal allowed `execute-api:Invoke` on the route.
    Iam,
    /// A JWT from `issuer` for one of `audience` (its `aud`, or `client_id`), in `Authorization`.
    Jwt {
        issuer: String,
        audience: Vec<String>,
    },
}

/// API Gateway's throttling of a route: a token bucket of `burst` tokens refilled at `rate` a
/// second; a request finding it empty is answered 429.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: f64,
}

/// The throttle of `settings` (`ThrottlingRateLimit`, `ThrottlingBurstLimit`), if it sets one.
fn throttle_of(settings: &Json) -> Option<Throttle> {
    let number = |k: &str| crate::template::number(settings, k);
    match (
        number("ThrottlingRateLimit"),
        number("ThrottlingBurstLimit"),
    ) {
        (None, None) => None,
        (rate, burst) => Some(Throttle {
            rate: rate.unwrap_or(f64::INFINITY),
            burst: burst.unwrap_or(f64::INFINITY),
        }),
    }
}

/// The authorization of the operation `method` `path` in an API's OpenAPI `body`: its first
/// `security` requirement, one of the body's security schemes.
fn auth_of(body: &Json, method: &str, path: &str, at: &str) -> Result<RouteAuth, TemplateError> {
    let operation = &body["paths"][path][method.to_ascii_lowercase()];
    let Some(name) = operation["security"]
        .as_array()
        .and_then(|s| s.first())
        .and_then(Json::as_object)
        .and_then(|r| r.keys().next())
    else {
        return Ok(RouteAuth::None);
    };
    let scheme = &body["components"]["securitySchemes"][name];
    let authorizer = &scheme["x-amazon-apigateway-authorizer"];
    if scheme["x-amazon-apigateway-authtype"] == "awsSigv4" {
        Ok(RouteAuth::Iam)
    } else if authorizer["type"] == "jwt" {
        let config = &authorizer["jwtConfiguration"];
        let audience = match &config["audience"] {
            Json::Array(a) => a.iter().map(crate::template::scalar_string).collect(),
            Json::String(s) => s.split(',').map(str::to_string).collect(),
            _ => Vec::new(),
        };
        Ok(RouteAuth::Jwt {
            issuer: crate::template::scalar_string(&config["issuer"]),
            audience,
        })
    } else {
        Err(TemplateError::Unsupported {
            what: format!("security scheme {name} (IAM or JWT only)"),
            at: at.to_string(),
        })
    }
}

/// The throttle, authorization and CORS of route `key` (`GET /path`) on the explicit API
/// `api_id` (its physical name).
fn route_settings(
    template: &Template, api_id: &str, route: &Route, at: &str,
) -> Result<(Option<Throttle>, RouteAuth, Option<Cors>), TemplateError> {
    let key = &route.route_key();
    let api = template
        .logical_id_of(api_id)
        .map(|id| &template.resources[id])
        .filter(|r| r.kind == "AWS::Serverless::HttpApi")
        .ok_or_else(|| TemplateError::Unsupported {
            what: format!("ApiId {api_id}: not an AWS::Serverless::HttpApi of this template"),
            at: at.to_string(),
        })?;
    let props = template.resolved_properties(api)?;
    let throttle = throttle_of(&props["RouteSettings"][key])
        .or_else(|| throttle_of(&props["DefaultRouteSettings"]));
    let auth = auth_of(&props["DefinitionBody"], &route.method, &route.path, at)?;
    Ok((throttle, auth, Cors::of(&props["CorsConfiguration"])))
}

impl Route {
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters when `path` matches, with a specificity score (literal segments first).
    pub fn matches(&self, method: &str, path: &str) -> Option<(u32, BTreeMap<String, String>)> {
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
                    let mut route = Route {
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
                        throttle: None,
                        auth: RouteAuth::None,
                        cors: None,
                    };
                    if let Some(api) = p.get("ApiId").and_then(Json::as_str) {
                        let at = format!("Resources.{}.Properties.Events.{name}", f.logical_id);
                        (route.throttle, route.auth, route.cors) =
                            route_settings(template, api, &route, &at)?;
                    }
                    out.push(route);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_route_wins_and_greedy_params_take_the_rest() {
        let root = Route {
            method: "GET".into(),
            path: "/".into(),
            function: "Api".into(),
            throttle: None,
            auth: RouteAuth::None,
            cors: None,
        };
        let any = Route {
            method: "ANY".into(),
            path: "/{proxy+}".into(),
            function: "Api".into(),
            throttle: None,
            auth: RouteAuth::None,
            cors: None,
        };
        let exact = Route {
            method: "GET".into(),
            path: "/api/v1/getGender/{cid}".into(),
            function: "Other".into(),
            throttle: None,
            auth: RouteAuth::None,
            cors: None,
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
}
