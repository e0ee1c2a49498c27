//! The HTTP API's routes, from the template's `HttpApi` events, and which one a request takes
//! (API Gateway's rule: literal segments first, then parameters, then greedy ones).

use std::collections::BTreeMap;

use serde_json::Value as Json;

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
}
