//! The routes, read from `infra/template.yaml` (one source of truth): every
//! `HttpApi` event of every `AWS::Serverless::Function`, with its method,
//! path, the function's binary (`Metadata.BuildProperties.Binary`) and
//! whether the JWT authorizer guards it (the API's `DefaultAuthorizer`,
//! unless the event says `Auth: { Authorizer: NONE }`).
//!
//! Matching follows API Gateway HTTP APIs: by method and the *decoded* path
//! (see [`crate::event::gateway_path`]), the most specific route wins (a
//! literal segment over `{param}`, any full match over a greedy `{param+}`),
//! and there is no `$default` route here, so anything else is the gateway's
//! own 404. Parameters are the decoded text they matched.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// Path parameters: name and (decoded) text.
type Params = Vec<(String, String)>;

/// One segment of a route's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: one or more segments, always last.
    Greedy(String),
}

/// One route of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// The path as the template spells it, e.g. `/v1/artifacts/{artifactId}`.
    pub path: String,
    /// The function's binary (what `cargo lambda watch` invokes).
    pub function: String,
    /// Whether the JWT authorizer guards the route.
    pub authorized: bool,
    segments: Vec<Segment>,
}

impl Route {
    pub fn new(method: &str, path: &str, function: &str, authorized: bool) -> Result<Self, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("route path {path:?} must start with /"));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = rest.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(name) if i + 1 == parts.len() => Segment::Greedy(name.to_owned()),
                    Some(_) => return Err(format!("{path}: a greedy parameter must be last")),
                    None => Segment::Param(name.to_owned()),
                },
                None if part.is_empty() && parts.len() > 1 => {
                    return Err(format!("{path}: empty segment"));
                }
                None => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        Ok(Route {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            function: function.to_owned(),
            authorized,
            segments,
        })
    }

    /// `routeKey` as API Gateway writes it: `GET /v1/artifacts/{artifactId}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Match the decoded request path's segments. On a match: the path
    /// parameters and a specificity rank (higher wins).
    fn matches(&self, raw_segments: &[&str]) -> Option<(Params, Vec<u8>)> {
        let mut params = Vec::new();
        let mut rank = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    if raw_segments.get(i)? != literal {
                        return None;
                    }
                    rank.push(2);
                }
                Segment::Param(name) => {
                    let raw = raw_segments.get(i).filter(|s| !s.is_empty())?;
                    params.push((name.clone(), (*raw).to_owned()));
                    rank.push(1);
                }
                Segment::Greedy(name) => {
                    let rest = raw_segments.get(i..).filter(|r| !r.is_empty())?.join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), rest));
                    rank.push(0);
                    return Some((params, rank));
                }
            }
        }
        // Every request segment must be consumed (no greedy parameter here).
        (raw_segments.len() == self.segments.len()).then_some((params, rank))
    }
}

/// A matched route: which, and its path parameters.
#[derive(Debug)]
pub struct Matched<'r> {
    pub route: &'r Route,
    pub params: Params,
}

/// The routing table.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    pub fn new(routes: Vec<Route>) -> Self {
        Routes { routes }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Read the `HttpApi` events of a SAM template.
    pub fn from_template(yaml: &str) -> Result<Self, String> {
        let doc: Value = serde_yaml::from_str(yaml).map_err(|e| format!("template: {e}"))?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or("template: no Resources")?;
        let of_type = |r: &Value, t: &str| r.get("Type").and_then(Value::as_str) == Some(t);
        // The API's default authorizer guards every route that does not opt out.
        let default_authorized = resources
            .values()
            .filter(|r| of_type(r, "AWS::Serverless::HttpApi"))
            .any(|api| {
                api.get("Properties")
                    .and_then(|p| p.get("Auth"))
                    .and_then(|a| a.get("DefaultAuthorizer"))
                    .is_some()
            });
        let mut routes = Vec::new();
        let mut seen = BTreeMap::new();
        for (name, resource) in resources {
            if !of_type(resource, "AWS::Serverless::Function") {
                continue;
            }
            let name = name.as_str().unwrap_or("?");
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            let http_events: Vec<&Value> = events
                .into_iter()
                .flat_map(|e| e.values())
                .filter(|e| of_type(e, "HttpApi"))
                .collect();
            if http_events.is_empty() {
                continue;
            }
            let function = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    format!("template: {name} has no Metadata.BuildProperties.Binary")
                })?;
            for event in http_events {
                let props = event.get("Properties");
                let text = |key: &str| {
                    props
                        .and_then(|p| p.get(key))
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("template: an HttpApi event of {name} has no {key}"))
                };
                let (method, path) = (text("Method")?, text("Path")?);
                let authorizer = props
                    .and_then(|p| p.get("Auth"))
                    .and_then(|a| a.get("Authorizer"))
                    .and_then(Value::as_str);
                let authorized = match authorizer {
                    Some("NONE") => false,
                    Some(_) => true,
                    None => default_authorized,
                };
                let route = Route::new(method, path, function, authorized)?;
                if let Some(other) = seen.insert(route.key(), name.to_owned()) {
                    return Err(format!(
                        "template: {} is routed twice ({other}, {name})",
                        route.key()
                    ));
                }
                routes.push(route);
            }
        }
        if routes.is_empty() {
            return Err("template: no HttpApi events".into());
        }
        Ok(Routes { routes })
    }

    /// The route for `method` and the decoded request path, as API Gateway
    /// picks it.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let raw_segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        self.routes
            .iter()
            .filter(|r| r.method == method || r.method == "ANY")
            .filter_map(|r| {
                r.matches(&raw_segments)
                    .map(|(params, rank)| (r, params, rank))
            })
            // Most specific first; an exact method beats ANY.
            .max_by(|a, b| {
                (a.2.as_slice(), a.0.method != "ANY").cmp(&(b.2.as_slice(), b.0.method != "ANY"))
            })
            .map(|(route, params, _)| Matched { route, params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../infra/template.yaml");

    fn routes() -> Routes {
        Routes::from_template(TEMPLATE).unwrap()
    }

    fn found(method: &str, path: &str) -> Option<(String, String, Params)> {
        let routes = routes();
        routes
            .find(method, path)
            .map(|m| (m.route.function.clone(), m.route.key(), m.params))
    }

    #[test]
    fn the_template_routes_every_api_function() {
        let routes = routes();
        let keys: Vec<String> = routes.iter().map(Route::key).collect();
        for key in [
            "PUT /v1/workflows/{workflowId}/artifacts/{path+}",
            "GET /v1/artifacts/{artifactId}",
            "GET /v1/links/{token}",
            "DELETE /v1/links/{token}",
            "GET /v1/workflows/{workflowId}/artifacts/bundle",
        ] {
            assert!(keys.contains(&key.to_string()), "{key} in {keys:?}");
        }
        let mut public: Vec<String> = routes
            .iter()
            .filter(|r| !r.authorized)
            .map(Route::key)
            .collect();
        public.sort();
        assert_eq!(
            public,
            vec![
                "GET /",
                "GET /console/{proxy+}",
                "GET /v1/links/{token}",
                "GET /v1/openapi.json",
                "GET /v1/signing-key",
            ]
        );
    }

    #[test]
    fn routing_by_method_and_path() {
        let (f, key, params) = found("PUT", "/v1/workflows/wf/artifacts/a b/c%d.md").unwrap();
        assert_eq!(f, "artifacts-upload");
        assert_eq!(key, "PUT /v1/workflows/{workflowId}/artifacts/{path+}");
        assert_eq!(
            params,
            vec![
                ("workflowId".into(), "wf".into()),
                ("path".into(), "a b/c%d.md".into())
            ]
        );
        // A literal segment wins over the greedy parameter.
        assert_eq!(
            found("GET", "/v1/workflows/wf/artifacts/bundle").unwrap().0,
            "artifacts-bundle"
        );
        assert_eq!(
            found("GET", "/v1/links/tok").unwrap().0,
            "artifacts-download"
        );
        assert_eq!(
            found("DELETE", "/v1/links/tok").unwrap().0,
            "artifacts-presign"
        );
        assert_eq!(found("GET", "/v1/artifacts").unwrap().0, "artifacts-list");
        // The console: its app at / and its files under /console/.
        assert_eq!(found("GET", "/").unwrap().0, "artifacts-console");
        let (f, _, params) = found("GET", "/console/assets/index-1a2b.js").unwrap();
        assert_eq!(f, "artifacts-console");
        assert_eq!(
            params,
            vec![("proxy".into(), "assets/index-1a2b.js".into())]
        );
        // By path (SPEC §14): GET and HEAD are the download's, PUT the
        // upload's; HEAD has no bundle route, so it reaches the download.
        for (method, path, function) in [
            (
                "GET",
                "/v1/workflows/wf/artifacts/a/b.md",
                "artifacts-download",
            ),
            (
                "HEAD",
                "/v1/workflows/wf/artifacts/a.md",
                "artifacts-download",
            ),
            (
                "HEAD",
                "/v1/workflows/wf/artifacts/bundle",
                "artifacts-download",
            ),
            ("HEAD", "/v1/artifacts/x/download", "artifacts-download"),
            (
                "PUT",
                "/v1/workflows/wf/artifacts/bundle",
                "artifacts-upload",
            ),
        ] {
            assert_eq!(found(method, path).unwrap().0, function, "{method} {path}");
        }
        // No route: another method, a trailing slash, a missing or extra segment.
        for (method, path) in [
            ("PUT", "/v1/artifacts/x"),
            ("POST", "/v1/artifacts/x/download"),
            ("POST", "/v1/workflows/wf/artifacts/a.md"),
            ("PUT", "/v1/workflows/wf/artifacts/"),
            ("GET", "/v1/artifacts/x/"),
            ("GET", "/v1/artifacts//versions"),
            ("GET", "/v1/artifacts/x/versions/y"),
            ("POST", "/"),
            ("GET", "/console"),
            ("GET", "v1/artifacts"),
        ] {
            assert!(found(method, path).is_none(), "{method} {path}");
        }
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(Routes::from_template("Resources: {}").is_err());
        assert!(Route::new("GET", "/a/{p+}/b", "f", true).is_err());
        assert!(Route::new("GET", "a", "f", true).is_err());
    }
}
