//! `infra/template.yaml` agrees with the code it deploys. No AWS needed.
//!
//! - every crate under `functions/` has a template function building its
//!   binary, and every template function builds an existing binary;
//! - the template serves exactly the SPEC §4 routes whose function exists,
//!   each on the right function, all behind the JWT authorizer but the link
//!   route;
//! - every `ARTIFACTS_*` variable the Rust sources name is set for the
//!   functions that may read it, and the dev-only ones never are;
//! - `cargo lambda watch`'s router (root `Cargo.toml`) routes the same
//!   requests to the same binaries as the template;
//! - the OpenAPI document (`infra/openapi.yaml` + fragments, as served at
//!   `GET /v1/openapi.json`) has exactly the routes of the template, the
//!   watch router and the functions' `ROUTES` (SPEC §16);
//! - every role writes only to the table partitions its function writes
//!   (`dynamodb:LeadingKeys`, checked against the code's key functions), and
//!   upload events reach ingest through the queue (SPEC §19).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// SPEC §4: every HTTP route, in API Gateway path syntax, and the function
/// (`functions/<name>`, binary `artifacts-<name>`) that serves it.
const SPEC_ROUTES: &[(&str, &str, &str)] = &[
    (
        "PUT",
        "/v1/workflows/{workflowId}/artifacts/{path+}",
        "upload",
    ),
    ("POST", "/v1/workflows/{workflowId}/uploads", "presign"),
    (
        "GET",
        "/v1/workflows/{workflowId}/uploads/{uploadId}",
        "presign",
    ),
    ("GET", "/v1/workflows/{workflowId}/artifacts", "list"),
    ("GET", "/v1/artifacts", "list"),
    ("GET", "/v1/artifacts/{artifactId}", "versions"),
    ("GET", "/v1/artifacts/{artifactId}/versions", "versions"),
    ("GET", "/v1/artifacts/{artifactId}/download", "download"),
    // SPEC §14
    ("HEAD", "/v1/artifacts/{artifactId}/download", "download"),
    (
        "GET",
        "/v1/workflows/{workflowId}/artifacts/{path+}",
        "download",
    ),
    (
        "HEAD",
        "/v1/workflows/{workflowId}/artifacts/{path+}",
        "download",
    ),
    (
        "GET",
        "/v1/workflows/{workflowId}/artifacts/bundle",
        "bundle",
    ),
    ("POST", "/v1/artifacts/{artifactId}/links", "presign"),
    ("POST", "/v1/resolve", "presign"),
    ("GET", "/v1/links/{token}", "download"),
    ("GET", "/v1/artifacts/{artifactId}/links", "presign"),
    ("DELETE", "/v1/links/{linkId}", "presign"),
    // SPEC §17: the console's app and files (SPEC spells the tail `{*path}`).
    ("GET", "/", "console"),
    ("GET", "/console/{proxy+}", "console"),
    // SPEC §13: the audit trail.
    ("GET", "/v1/artifacts/{artifactId}/audit", "versions"),
    ("GET", "/v1/audit", "versions"),
    // SPEC §16: the OpenAPI document.
    ("GET", "/v1/openapi.json", "versions"),
    // SPEC §12 (lifecycle).
    ("DELETE", "/v1/artifacts/{artifactId}", "versions"),
    ("PATCH", "/v1/artifacts/{artifactId}", "versions"),
    ("POST", "/v1/artifacts/{artifactId}/restore", "versions"),
    (
        "DELETE",
        "/v1/artifacts/{artifactId}/versions/{version}",
        "versions",
    ),
    ("PUT", "/v1/artifacts/{artifactId}/hold", "versions"),
    ("DELETE", "/v1/artifacts/{artifactId}/hold", "versions"),
    // SPEC §18: publish attestations.
    ("GET", "/v1/signing-key", "versions"),
    (
        "GET",
        "/v1/artifacts/{artifactId}/versions/{version}/attestation",
        "versions",
    ),
];

/// Routes whose function exists but does not serve them yet. The test fails
/// once such a route is in the template, so this list cannot go stale.
const NOT_YET_SERVED: &[(&str, &str)] = &[];

/// SPEC §4 routes the template (and the watch router) spell with another
/// parameter name: (method, SPEC path, template path). API Gateway, like
/// matchit, takes one parameter name per path position, so
/// `DELETE /v1/links/{linkId}` shares `GET /v1/links/{token}`'s; presign
/// reads the link id from the path. Only names may differ.
const RENAMED_PARAMS: &[(&str, &str, &str)] =
    &[("DELETE", "/v1/links/{linkId}", "/v1/links/{token}")];

/// The only routes without a principal: the link download (SPEC §4: the
/// token is the credential), the API's description (SPEC §16), the
/// console's files (SPEC §17: no data) and the public key attestations
/// verify with (SPEC §18).
const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/links/{token}"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/"),
    ("GET", "/console/{proxy+}"),
    ("GET", "/v1/signing-key"),
];

/// SPEC §10: the only `ARTIFACTS_*` variables there are.
const SPEC_ENV: &[&str] = &[
    "ARTIFACTS_TABLE",
    "ARTIFACTS_BUCKET",
    "ARTIFACTS_KMS_KEY_ID",
    "ARTIFACTS_LINK_KEY_ID",
    // SPEC §18.
    "ARTIFACTS_SIGNING_KEY_ID",
    "ARTIFACTS_PUBLIC_BASE_URL",
    "ARTIFACTS_INLINE_MAX_BYTES",
    "ARTIFACTS_DIRECT_MAX_BYTES",
    // SPEC §12.
    "ARTIFACTS_TRASH_DAYS",
    "ARTIFACTS_DEFAULT_RETENTION_DAYS",
    "ARTIFACTS_MAX_RETENTION_DAYS",
    "ARTIFACTS_AUTH_MODE",
    "ARTIFACTS_DEV_JWT_SECRET",
    // SPEC §13.
    "ARTIFACTS_AUDIT_DAYS",
    "ARTIFACTS_EVENT_BUS",
    // SPEC §17: the console's OIDC sign-in (functions/console).
    "ARTIFACTS_OIDC_ISSUER",
    "ARTIFACTS_OIDC_CLIENT_ID",
    "ARTIFACTS_OIDC_SCOPES",
    "ARTIFACTS_OIDC_TOKEN_ORIGIN",
];

/// Read by the code, never deployed: local development only (SPEC §9).
const NEVER_DEPLOYED: &[&str] = &["ARTIFACTS_AUTH_MODE", "ARTIFACTS_DEV_JWT_SECRET"];

#[test]
fn every_function_crate_has_a_template_function_and_back() {
    let root = workspace_root();
    let template = Template::load(&root);
    let crates = function_crates(&root);
    let mut problems = template.problems.clone();

    for (dir, bins) in &crates {
        for bin in bins {
            match template.functions_building(bin).len() {
                1 => {}
                0 => problems.push(format!(
                    "functions/{dir} builds `{bin}`, but no template function has \
                     Metadata.BuildProperties.Binary: {bin}"
                )),
                n => problems.push(format!("{n} template functions build `{bin}`")),
            }
        }
    }
    let known: BTreeSet<&String> = crates.values().flatten().collect();
    for f in &template.functions {
        if !known.contains(&f.binary) {
            problems.push(format!(
                "template function {} builds `{}`, which no crate under functions/ has",
                f.id, f.binary
            ));
        }
        if f.build_method.as_deref() != Some("rust-cargolambda") {
            problems.push(format!(
                "template function {}: Metadata.BuildMethod must be rust-cargolambda, is {:?}",
                f.id, f.build_method
            ));
        }
        // One build for all: CodeUri is the workspace root.
        let resolved = f
            .code_uri
            .as_deref()
            .and_then(|uri| root.join("infra").join(uri).canonicalize().ok());
        if resolved.as_deref() != root.canonicalize().ok().as_deref() {
            problems.push(format!(
                "template function {}: CodeUri {:?} is not the workspace root (from infra/: ../)",
                f.id, f.code_uri
            ));
        }
    }
    assert_agrees("the function crates", &problems);
}

#[test]
fn template_serves_the_spec_routes_of_existing_functions() {
    let root = workspace_root();
    let template = Template::load(&root);
    let binaries: BTreeSet<String> = function_crates(&root).into_values().flatten().collect();
    let mut problems = template.problems.clone();

    let served = template.routes();
    let spec: BTreeMap<(&str, &str), String> = SPEC_ROUTES
        .iter()
        .map(|&(method, path, function)| {
            let path = RENAMED_PARAMS
                .iter()
                .find(|&&(m, spec_path, _)| (m, spec_path) == (method, path))
                .map_or(path, |&(_, _, template_path)| template_path);
            ((method, path), binary_of(function))
        })
        .collect();

    for (&(method, path), binary) in &spec {
        let pending = NOT_YET_SERVED.contains(&(method, path));
        let key = (method.to_owned(), path.to_owned());
        match served.get(&key) {
            None if binaries.contains(binary) && !pending => problems.push(format!(
                "route {method} {path} (SPEC §4, {binary}) has no HttpApi event in the template"
            )),
            Some(r) if pending => problems.push(format!(
                "route {method} {path} is now in the template (on {}): \
                 remove it from NOT_YET_SERVED",
                r.function
            )),
            Some(r) if &r.binary != binary => problems.push(format!(
                "route {method} {path} is on {} ({}), SPEC §4 says {binary}",
                r.function, r.binary
            )),
            _ => {}
        }
    }
    for ((method, path), r) in &served {
        if !spec.contains_key(&(method.as_str(), path.as_str())) {
            problems.push(format!(
                "template route {method} {path} (on {}) is not a SPEC §4 route",
                r.function
            ));
        }
        if !template.http_apis.contains(&r.api) {
            problems.push(format!(
                "route {method} {path} (on {}): ApiId must be !Ref to the template's \
                 AWS::Serverless::HttpApi, is {:?}",
                r.function, r.api
            ));
        }
        let public = PUBLIC_ROUTES.contains(&(method.as_str(), path.as_str()));
        if r.authorizer_none != public {
            problems.push(format!(
                "route {method} {path}: Auth.Authorizer NONE must be set on {PUBLIC_ROUTES:?} only"
            ));
        }
    }
    for &(method, path) in NOT_YET_SERVED {
        if !spec.contains_key(&(method, path)) {
            problems.push(format!(
                "NOT_YET_SERVED names {method} {path}, not a SPEC §4 route"
            ));
        }
    }
    // A parameter name only: the same shape, and a route SPEC §4 has.
    fn shape(path: &str) -> Vec<&str> {
        path.split('/')
            .map(|s| match s.strip_prefix('{') {
                Some(rest) if rest.ends_with("+}") => "{+}",
                Some(_) => "{}",
                None => s,
            })
            .collect()
    }
    for &(method, spec_path, template_path) in RENAMED_PARAMS {
        let in_spec = SPEC_ROUTES
            .iter()
            .any(|&(m, p, _)| (m, p) == (method, spec_path));
        if !in_spec || shape(spec_path) != shape(template_path) {
            problems.push(format!(
                "RENAMED_PARAMS: {method} {spec_path} → {template_path} must rename \
                 parameters of a SPEC §4 route only"
            ));
        }
    }
    if template.default_authorizers.is_empty() {
        problems.push("the HttpApi has no Auth.DefaultAuthorizer".into());
    }
    assert_agrees("the SPEC §4 routes", &problems);
}

#[test]
fn every_artifacts_variable_the_code_reads_is_deployed() {
    let root = workspace_root();
    let template = Template::load(&root);
    let crates = function_crates(&root);
    let mut problems = template.problems.clone();

    // Variables named in shared/ may be read by every function; those named
    // in one function crate by that function.
    let shared = artifacts_variables(&root.join("shared/src"));
    for f in &template.functions {
        let env = template.environment_of(f);
        let own_dir = crates.iter().find(|(_, bins)| bins.contains(&f.binary));
        let own = own_dir
            .map(|(dir, _)| artifacts_variables(&root.join("functions").join(dir).join("src")))
            .unwrap_or_default();
        for (var, files) in shared.iter().chain(&own) {
            if !NEVER_DEPLOYED.contains(&var.as_str()) && !env.contains(var) {
                problems.push(format!(
                    "{var} (named in {}) is not set for template function {} \
                     (Globals.Function.Environment or its own Environment)",
                    display_files(&root, files),
                    f.id
                ));
            }
        }
    }

    let mut deployed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for var in &template.globals_env {
        deployed
            .entry(var.clone())
            .or_default()
            .insert("Globals".into());
    }
    for f in &template.functions {
        for var in &f.env {
            deployed
                .entry(var.clone())
                .or_default()
                .insert(f.id.clone());
        }
    }
    for (var, places) in &deployed {
        let places = places.iter().cloned().collect::<Vec<_>>().join(", ");
        if NEVER_DEPLOYED.contains(&var.as_str()) {
            problems.push(format!(
                "{var} is dev-only but the template sets it ({places})"
            ));
        } else if var.starts_with("ARTIFACTS_") && !SPEC_ENV.contains(&var.as_str()) {
            problems.push(format!(
                "{var} is set in the template ({places}) but is not in SPEC §10"
            ));
        }
    }
    assert_agrees("the environment the code reads", &problems);
}

#[test]
fn watch_router_routes_like_the_template() {
    let root = workspace_root();
    let template = Template::load(&root);
    let mut problems = template.problems.clone();

    let routed = watch_routes(&root, &mut problems);

    let served = template.routes();
    for ((method, path), r) in &served {
        let exact = routed.get(&(Some(method.clone()), path.clone()));
        let any = routed.get(&(None, path.clone()));
        match exact.or(any) {
            Some(binary) if binary == &r.binary => {}
            Some(binary) => problems.push(format!(
                "{method} {path}: the template sends it to {}, the watch router to {binary}",
                r.binary
            )),
            None => problems.push(format!(
                "{method} {path} ({}) is in the template but not in the watch router \
                 (path there: {})",
                r.binary,
                template_path_to_router(path)
            )),
        }
    }
    for ((method, path), binary) in &routed {
        let in_template = served.iter().any(|((m, p), r)| {
            p == path && &r.binary == binary && method.as_ref().is_none_or(|x| x == m)
        });
        if !in_template {
            let method = method.as_deref().unwrap_or("(any method)");
            problems.push(format!(
                "the watch router sends {method} {} to {binary}, the template has no such route",
                template_path_to_router(path)
            ));
        }
    }
    assert_agrees("the cargo lambda watch router", &problems);
}

/// SPEC §16: the (method, path) pairs of the OpenAPI document the API serves
/// (`infra/openapi.yaml` with its fragments merged, as embedded by the
/// versions function) are exactly the template's routes, `cargo lambda
/// watch`'s router's and the functions' own `ROUTES` tables'; the document's
/// public operations are the template's `Authorizer: NONE` routes, and every
/// other operation names the scopes it needs.
#[test]
fn openapi_document_template_and_routers_agree() {
    let root = workspace_root();
    let template = Template::load(&root);
    let mut problems = template.problems.clone();
    // One spelling for comparing: `{path+}` (template), `{*path}` (matchit)
    // and `{path}` (OpenAPI) are all `{path}`.
    let norm = |path: &str| router_path_to_template(path).replace("+}", "}");

    let doc: serde_json::Value = serde_json::from_str(artifacts_versions::OPENAPI_JSON)
        .unwrap_or_else(|e| panic!("the embedded OpenAPI document is not JSON: {e}"));
    if doc["openapi"]
        .as_str()
        .is_none_or(|v| !v.starts_with("3.1"))
    {
        problems.push(format!(
            "the document is not OpenAPI 3.1: {}",
            doc["openapi"]
        ));
    }
    let default_security = &doc["security"];
    // (METHOD, path) → whether the operation is public.
    let mut documented: BTreeMap<(String, String), bool> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if !["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                continue;
            }
            let security = op.get("security").unwrap_or(default_security);
            let requirements = security.as_array().cloned().unwrap_or_default();
            let public = requirements.is_empty();
            let scoped = requirements.iter().all(|r| {
                r["bearer"].as_array().is_some_and(|scopes| {
                    scopes
                        .iter()
                        .any(|s| s.as_str().is_some_and(|s| s.starts_with("artifacts:")))
                })
            });
            let key = (method.to_uppercase(), norm(path));
            if !public && !scoped {
                problems.push(format!(
                    "{} {}: the document's operation names no artifacts:* scope: {security}",
                    key.0, key.1
                ));
            }
            documented.insert(key, public);
        }
    }

    let served: BTreeMap<(String, String), bool> = template
        .routes()
        .into_iter()
        .map(|((m, p), r)| ((m, norm(&p)), r.authorizer_none))
        .collect();
    let watch: BTreeSet<(Option<String>, String)> = watch_routes(&root, &mut problems)
        .into_keys()
        .map(|(m, p)| (m, norm(&p)))
        .collect();
    let handlers: BTreeSet<(String, String)> = [
        artifacts_upload::ROUTES,
        artifacts_versions::ROUTES,
        artifacts_download::ROUTES,
        artifacts_list::ROUTES,
        artifacts_bundle::ROUTES,
        artifacts_presign::ROUTES,
        artifacts_console::ROUTES,
    ]
    .iter()
    .flat_map(|routes| routes.iter())
    .map(|(m, p)| (m.as_str().to_owned(), norm(p)))
    .collect();
    let in_watch = |(m, p): &(String, String)| {
        watch.contains(&(Some(m.clone()), p.clone())) || watch.contains(&(None, p.clone()))
    };

    let mut all: BTreeSet<(String, String)> = documented.keys().cloned().collect();
    all.extend(served.keys().cloned());
    all.extend(handlers.iter().cloned());
    all.extend(
        watch
            .iter()
            .filter_map(|(m, p)| m.as_ref().map(|m| (m.clone(), p.clone()))),
    );
    for route in &all {
        let (method, path) = route;
        let missing: Vec<&str> = [
            ("infra/openapi.yaml", documented.contains_key(route)),
            ("infra/template.yaml", served.contains_key(route)),
            (
                "the cargo lambda watch router (Cargo.toml)",
                in_watch(route),
            ),
            ("the functions' ROUTES tables", handlers.contains(route)),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(place, _)| place)
        .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "route {method} {path} is missing from {}",
                missing.join(", ")
            ));
        }
        if let (Some(doc_public), Some(template_public)) =
            (documented.get(route), served.get(route))
            && doc_public != template_public
        {
            problems.push(format!(
                "route {method} {path}: public in the document: {doc_public}, \
                 Authorizer NONE in the template: {template_public}"
            ));
        }
    }
    for (m, p) in &watch {
        if m.is_none() && !all.iter().any(|(_, path)| path == p) {
            problems.push(format!(
                "the watch router routes {p} (any method), which no other place has"
            ));
        }
    }
    assert_agrees("the OpenAPI document and the routers", &problems);
}

/// Which partitions each function may write (issue 10 item 12): every pk is
/// "{org}#<kind>#…", and IAM's `dynamodb:LeadingKeys` sees the pk. One key of
/// each kind, built by the code's own key functions.
fn partition_keys() -> BTreeMap<&'static str, String> {
    let id = "0123456789abcdef0123456789abcdef";
    BTreeMap::from([
        ("artifact", artifacts::metadata::artifact_pk("acme", id)),
        ("workflow", artifacts::metadata::workflow_pk("acme", "wf-1")),
        ("link", artifacts::links::link_pk("acme", id)),
        ("session", artifacts::uploads::session_pk("acme", id)),
        ("audit", artifacts::audit::record_pk("acme", Some(id))),
    ])
}

/// (binary, DynamoDB write action, the partition kinds it may write). A
/// write action not listed for a binary must not be granted at all.
const TABLE_WRITES: &[(&str, &str, &[&str])] = &[
    // "audit": the audit record of a change or a read (SPEC §13).
    (
        "artifacts-upload",
        "PutItem",
        &["artifact", "workflow", "audit"],
    ),
    ("artifacts-upload", "UpdateItem", &["artifact", "workflow"]),
    (
        "artifacts-upload",
        "ConditionCheckItem",
        &["artifact", "workflow"],
    ),
    // The public link route's role: a use record, a link's use counter.
    ("artifacts-download", "PutItem", &["link", "audit"]),
    ("artifacts-download", "UpdateItem", &["artifact"]),
    (
        "artifacts-presign",
        "PutItem",
        &["artifact", "link", "session", "audit"],
    ),
    ("artifacts-presign", "UpdateItem", &["artifact"]),
    (
        "artifacts-ingest",
        "PutItem",
        &["artifact", "workflow", "session", "audit"],
    ),
    (
        "artifacts-ingest",
        "UpdateItem",
        &["artifact", "workflow", "session"],
    ),
    (
        "artifacts-ingest",
        "ConditionCheckItem",
        &["artifact", "workflow", "session"],
    ),
    ("artifacts-bundle", "PutItem", &["audit"]),
    ("artifacts-bundle", "BatchWriteItem", &["audit"]),
    // SPEC §12: lifecycle transactions (artifact, path and name items, and
    // each change's audit record) and `?purge=true`, which also deletes
    // link pointers and use records. Refusals are recorded too.
    (
        "artifacts-versions",
        "PutItem",
        &["artifact", "workflow", "audit"],
    ),
    (
        "artifacts-versions",
        "UpdateItem",
        &["artifact", "workflow"],
    ),
    (
        "artifacts-versions",
        "DeleteItem",
        &["artifact", "workflow", "link"],
    ),
    // The trash step updates the by-id item; records of expiry and purge.
    ("artifacts-purge", "PutItem", &["audit"]),
    ("artifacts-purge", "UpdateItem", &["artifact", "workflow"]),
    (
        "artifacts-purge",
        "DeleteItem",
        &["artifact", "workflow", "link"],
    ),
];

#[test]
fn every_role_writes_only_the_partitions_its_function_writes() {
    let root = workspace_root();
    let doc = load_yaml(&root);
    let template = Template::load(&root);
    let mut problems = template.problems.clone();
    let keys = partition_keys();
    // Each partition kind is told apart from the others by its pattern.
    for (kind, key) in &keys {
        if !key.starts_with("acme#") {
            problems.push(format!("a {kind} pk does not start with the org: {key}"));
        }
    }

    for f in &template.functions {
        let Some(role) = function_role(&doc, &f.id) else {
            problems.push(format!(
                "template function {} has no Role: !GetAtt <Role>.Arn",
                f.id
            ));
            continue;
        };
        let grants = table_write_grants(&doc, &role, &mut problems);
        let expected: BTreeMap<&str, &[&str]> = TABLE_WRITES
            .iter()
            .filter(|(binary, _, _)| *binary == f.binary)
            .map(|&(_, action, kinds)| (action, kinds))
            .collect();
        for (action, patterns) in &grants {
            let Some(kinds) = expected.get(action.as_str()) else {
                problems.push(format!(
                    "{role} ({}) may dynamodb:{action}, which TABLE_WRITES does not give it",
                    f.binary
                ));
                continue;
            };
            let Some(patterns) = patterns else {
                problems.push(format!(
                    "{role} ({}): dynamodb:{action} without a \
                     ForAllValues:StringLike dynamodb:LeadingKeys condition",
                    f.binary
                ));
                continue;
            };
            for (kind, key) in &keys {
                let allowed = patterns.iter().any(|p| glob(p, key));
                if allowed != kinds.contains(kind) {
                    problems.push(format!(
                        "{role} ({}): dynamodb:{action} on a {kind} partition ({key}) is {} \
                         by {patterns:?}, should be {}",
                        f.binary,
                        if allowed { "allowed" } else { "denied" },
                        if allowed { "denied" } else { "allowed" },
                    ));
                }
            }
        }
        for action in expected.keys() {
            if !grants.contains_key(*action) {
                problems.push(format!(
                    "{role} ({}) lacks dynamodb:{action}, which its code calls",
                    f.binary
                ));
            }
        }
    }
    assert_agrees("the table partitions each function writes", &problems);
}

#[test]
fn upload_events_reach_ingest_through_a_queue() {
    let root = workspace_root();
    let doc = load_yaml(&root);
    let template = Template::load(&root);
    let mut problems = template.problems.clone();
    let resources = doc.get("Resources").and_then(Value::as_mapping);
    let by_type = |kind: &str| -> Vec<(String, &Value)> {
        resources
            .into_iter()
            .flatten()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, r)| (id.as_str().unwrap_or_default().to_owned(), r))
            .collect()
    };
    let get_att = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "GetAtt" => t
                .value
                .as_str()
                .map(|s| s.trim_end_matches(".Arn").to_owned()),
            _ => None,
        }
    };
    let number = |r: &Value, path: &[&str]| at(r, path).and_then(Value::as_u64);

    let Some(ingest) = template
        .functions_building("artifacts-ingest")
        .first()
        .map(|f| f.id.clone())
    else {
        panic!("no ingest function");
    };
    let function = resources
        .into_iter()
        .flatten()
        .find(|(id, _)| id.as_str() == Some(ingest.as_str()))
        .map(|(_, r)| r)
        .expect("ingest resource");
    let timeout = number(function, &["Properties", "Timeout"]).unwrap_or(0);
    let events: Vec<&Value> = at(function, &["Properties", "Events"])
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .map(|(_, e)| e)
        .collect();
    if events.len() != 1 || events[0].get("Type").and_then(Value::as_str) != Some("SQS") {
        problems.push(format!(
            "{ingest}: exactly one event, of Type SQS (no direct EventBridge rule)"
        ));
    }
    let sqs = events.first().and_then(|e| e.get("Properties"));
    let queue = get_att(sqs.and_then(|p| p.get("Queue")));
    let batch = sqs.and_then(|p| p.get("BatchSize")).and_then(Value::as_u64);
    if !batch.is_some_and(|b| (1..=10).contains(&b)) {
        problems.push(format!(
            "{ingest}: SQS BatchSize must be set, 1-10, is {batch:?}"
        ));
    }
    let responses = sqs
        .and_then(|p| p.get("FunctionResponseTypes"))
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>());
    if responses != Some(vec!["ReportBatchItemFailures"]) {
        problems.push(format!(
            "{ingest}: FunctionResponseTypes must be [ReportBatchItemFailures]"
        ));
    }
    let queues = by_type("AWS::SQS::Queue");
    let queue_resource = queues.iter().find(|(id, _)| Some(id) == queue.as_ref());
    match queue_resource {
        None => problems.push(format!(
            "{ingest}: its SQS Queue is not a queue of the template"
        )),
        Some((id, q)) => {
            if number(q, &["Properties", "MessageRetentionPeriod"]) != Some(1_209_600) {
                problems.push(format!("{id}: MessageRetentionPeriod must be 14 days"));
            }
            let visibility = number(q, &["Properties", "VisibilityTimeout"]).unwrap_or(0);
            if visibility < 6 * timeout || timeout == 0 {
                problems.push(format!(
                    "{id}: VisibilityTimeout {visibility} must be at least 6 x the function's {timeout}"
                ));
            }
            let redrive = at(q, &["Properties", "RedrivePolicy"]);
            let receives = redrive
                .and_then(|r| r.get("maxReceiveCount"))
                .and_then(Value::as_u64);
            if !receives.is_some_and(|n| (2..=20).contains(&n)) {
                problems.push(format!(
                    "{id}: RedrivePolicy.maxReceiveCount must be bounded, is {receives:?}"
                ));
            }
            let dlq = get_att(redrive.and_then(|r| r.get("deadLetterTargetArn")));
            if !queues.iter().any(|(q, _)| Some(q) == dlq.as_ref()) {
                problems.push(format!(
                    "{id}: RedrivePolicy must name a dead-letter queue of the template"
                ));
            }
        }
    }
    // One rule: S3 Object Created under incoming/ of the bucket → the queue.
    let rules = by_type("AWS::Events::Rule");
    let feeding: Vec<&(String, &Value)> = rules
        .iter()
        .filter(|(_, r)| {
            at(r, &["Properties", "Targets"])
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .any(|t| get_att(t.get("Arn")) == queue)
        })
        .collect();
    match feeding.as_slice() {
        [(id, rule)] => {
            let pattern = at(rule, &["Properties", "EventPattern"]);
            let first = |path: &[&str]| {
                pattern
                    .and_then(|p| at(p, path))
                    .and_then(Value::as_sequence)
                    .and_then(|s| s.first())
                    .cloned()
            };
            if first(&["source"]).as_ref().and_then(Value::as_str) != Some("aws.s3")
                || first(&["detail-type"]).as_ref().and_then(Value::as_str)
                    != Some("Object Created")
                || first(&["detail", "object", "key"])
                    .and_then(|k| k.get("prefix").and_then(Value::as_str).map(str::to_owned))
                    .as_deref()
                    != Some("incoming/")
            {
                problems.push(format!(
                    "{id}: must match S3 Object Created under incoming/"
                ));
            }
            // The queue policy lets only this rule send.
            let allowed = by_type("AWS::SQS::QueuePolicy").iter().any(|(_, p)| {
                at(p, &["Properties", "PolicyDocument", "Statement"])
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .any(|s| {
                        get_att(at(s, &["Condition", "ArnEquals", "aws:SourceArn"])).as_deref()
                            == Some(id.as_str())
                            && at(s, &["Principal", "Service"]).and_then(Value::as_str)
                                == Some("events.amazonaws.com")
                    })
            });
            if !allowed {
                problems.push(format!("no queue policy lets only {id} send to the queue"));
            }
        }
        other => problems.push(format!(
            "{} rules target the ingest queue, need exactly 1",
            other.len()
        )),
    }
    assert_agrees("the upload delivery (SPEC §19)", &problems);
}

/// `*` matches any run of characters (IAM's StringLike; no `?` used here).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn load_yaml(root: &Path) -> Value {
    serde_yaml::from_str(&read(&root.join("infra/template.yaml"))).expect("template parses")
}

/// The role a function runs as: `Role: !GetAtt <Role>.Arn`.
fn function_role(doc: &Value, function: &str) -> Option<String> {
    match at(doc, &["Resources", function, "Properties", "Role"])? {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "GetAtt" => t
            .value
            .as_str()
            .and_then(|s| s.strip_suffix(".Arn"))
            .map(str::to_owned),
        _ => None,
    }
}

/// A role's DynamoDB write actions on the table → their LeadingKeys
/// patterns (`None`: granted without that condition). Two grants of one
/// action add up (IAM allows if any statement does).
fn table_write_grants(
    doc: &Value,
    role: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Option<Vec<String>>> {
    const WRITES: &[&str] = &[
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "ConditionCheckItem",
        "BatchWriteItem",
        "PartiQLInsert",
        "PartiQLUpdate",
        "PartiQLDelete",
    ];
    let mut grants: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    let policies = at(doc, &["Resources", role, "Properties", "Policies"])
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten();
    for policy in policies {
        let statements = at(policy, &["PolicyDocument", "Statement"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten();
        for statement in statements {
            let actions: Vec<&str> = match statement.get("Action") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Sequence(s)) => s.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let patterns = at(
                statement,
                &[
                    "Condition",
                    "ForAllValues:StringLike",
                    "dynamodb:LeadingKeys",
                ],
            )
            .map(|v| match v {
                Value::String(p) => vec![p.clone()],
                Value::Sequence(s) => s
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            });
            for action in actions {
                let Some(name) = action.strip_prefix("dynamodb:") else {
                    continue;
                };
                if name.contains('*') {
                    problems.push(format!("{role}: wildcard action {action}"));
                    continue;
                }
                if !WRITES.contains(&name) {
                    continue;
                }
                let entry = grants
                    .entry(name.to_owned())
                    .or_insert_with(|| Some(Vec::new()));
                match (&patterns, entry.as_mut()) {
                    (Some(p), Some(all)) => all.extend(p.iter().cloned()),
                    _ => *entry = None,
                }
            }
        }
    }
    grants
}

#[test]
fn variable_scan_finds_whole_literals_only() {
    let src = r#"
        let t = required("ARTIFACTS_TABLE")?;
        const P: &str = "ARTIFACTS_"; // a prefix, not a variable
        let s = "ARTIFACTS_DEV_JWT_SECRET is dev-only";
        env::var("ARTIFACTS_BUCKET").ok(); env::var("OTHER_VAR").ok();
    "#;
    let found = artifacts_literals(src);
    assert_eq!(
        found,
        BTreeSet::from(["ARTIFACTS_TABLE".to_owned(), "ARTIFACTS_BUCKET".to_owned()])
    );
    assert_eq!(
        router_path_to_template("/a/{id}/b/{*path}"),
        "/a/{id}/b/{path+}"
    );
    assert_eq!(
        template_path_to_router("/a/{id}/b/{path+}"),
        "/a/{id}/b/{*path}"
    );
    assert!(glob("*#L#*", "acme#L#0123"));
    assert!(!glob("*#L#*", "acme#A#0123"));
    assert!(!glob("*#L#*", "acme#L"));
    assert!(glob("a*", "a") && glob("*", "") && glob("x*y*z", "xayz"));
    assert!(!glob("x*y*z", "xzy") && !glob("abc", "abcd"));
}

// ------------------------------------------------------------------ template

struct Template {
    functions: Vec<Function>,
    globals_env: BTreeSet<String>,
    http_apis: BTreeSet<String>,
    default_authorizers: BTreeSet<String>,
    /// Shapes the checks could not read, reported by every test.
    problems: Vec<String>,
}

struct Function {
    id: String,
    binary: String,
    build_method: Option<String>,
    code_uri: Option<String>,
    env: BTreeSet<String>,
    routes: Vec<Route>,
}

#[derive(Clone)]
struct Route {
    method: String,
    path: String,
    api: String,
    authorizer_none: bool,
}

struct Served {
    function: String,
    binary: String,
    api: String,
    authorizer_none: bool,
}

impl Template {
    fn load(root: &Path) -> Template {
        let path = root.join("infra/template.yaml");
        let doc: Value = serde_yaml::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{} does not parse as YAML: {e}", path.display()));
        let mut problems = Vec::new();

        let globals = doc.get("Globals").and_then(|g| g.get("Function"));
        let globals_env = keys(globals.and_then(|g| at(g, &["Environment", "Variables"])));
        let global_code_uri = globals
            .and_then(|g| g.get("CodeUri"))
            .and_then(Value::as_str);

        let mut functions = Vec::new();
        let mut http_apis = BTreeSet::new();
        let mut default_authorizers = BTreeSet::new();
        let resources = doc.get("Resources").and_then(Value::as_mapping);
        for (id, resource) in resources.into_iter().flatten() {
            let id = id.as_str().unwrap_or_default().to_owned();
            let props = resource.get("Properties");
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::HttpApi") => {
                    if let Some(a) = props.and_then(|p| at(p, &["Auth", "DefaultAuthorizer"])) {
                        default_authorizers.insert(a.as_str().unwrap_or_default().to_owned());
                    }
                    http_apis.insert(id);
                }
                Some("AWS::Serverless::Function") => {
                    let Some(binary) = at(resource, &["Metadata", "BuildProperties", "Binary"])
                        .and_then(Value::as_str)
                    else {
                        problems.push(format!(
                            "template function {id} has no Metadata.BuildProperties.Binary"
                        ));
                        continue;
                    };
                    let routes = http_api_events(&id, props, &mut problems);
                    functions.push(Function {
                        binary: binary.to_owned(),
                        build_method: at(resource, &["Metadata", "BuildMethod"])
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        code_uri: props
                            .and_then(|p| p.get("CodeUri"))
                            .and_then(Value::as_str)
                            .or(global_code_uri)
                            .map(str::to_owned),
                        env: keys(props.and_then(|p| at(p, &["Environment", "Variables"]))),
                        routes,
                        id,
                    });
                }
                _ => {}
            }
        }
        if functions.is_empty() {
            problems.push(format!(
                "{} has no AWS::Serverless::Function",
                path.display()
            ));
        }
        Template {
            functions,
            globals_env,
            http_apis,
            default_authorizers,
            problems,
        }
    }

    fn functions_building(&self, binary: &str) -> Vec<&Function> {
        self.functions
            .iter()
            .filter(|f| f.binary == binary)
            .collect()
    }

    fn environment_of(&self, f: &Function) -> BTreeSet<String> {
        self.globals_env.union(&f.env).cloned().collect()
    }

    /// (METHOD, path) → where it goes. A route on two functions is a problem
    /// SAM would reject; the first one wins here.
    fn routes(&self) -> BTreeMap<(String, String), Served> {
        let mut out = BTreeMap::new();
        for f in &self.functions {
            for r in &f.routes {
                out.entry((r.method.clone(), r.path.clone()))
                    .or_insert_with(|| Served {
                        function: f.id.clone(),
                        binary: f.binary.clone(),
                        api: r.api.clone(),
                        authorizer_none: r.authorizer_none,
                    });
            }
        }
        out
    }
}

fn http_api_events(
    function: &str,
    props: Option<&Value>,
    problems: &mut Vec<String>,
) -> Vec<Route> {
    let mut routes = Vec::new();
    let events = props
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping);
    for (name, event) in events.into_iter().flatten() {
        if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
            continue;
        }
        let name = name.as_str().unwrap_or_default();
        let p = event.get("Properties");
        let method = p.and_then(|p| p.get("Method")).and_then(Value::as_str);
        let path = p.and_then(|p| p.get("Path")).and_then(Value::as_str);
        let (Some(method), Some(path)) = (method, path) else {
            problems.push(format!(
                "{function} event {name}: an HttpApi event needs Method and Path"
            ));
            continue;
        };
        routes.push(Route {
            method: method.to_uppercase(),
            path: path.to_owned(),
            api: p
                .and_then(|p| p.get("ApiId"))
                .and_then(reference)
                .unwrap_or_default(),
            authorizer_none: p
                .and_then(|p| at(p, &["Auth", "Authorizer"]))
                .and_then(Value::as_str)
                == Some("NONE"),
        });
    }
    routes
}

/// The logical id in `!Ref X` or `{Ref: X}`.
fn reference(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "Ref" => {
            t.value.as_str().map(str::to_owned)
        }
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

fn keys(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------- code

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn binary_of(function: &str) -> String {
    format!("artifacts-{function}")
}

/// functions/<dir> → its binaries: the `[[bin]]` names, else the package name.
fn function_crates(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut crates = BTreeMap::new();
    let dir = root.join("functions");
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable functions/ entry").path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let table: toml::Table = read(&manifest)
            .parse()
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", manifest.display()));
        let mut bins: Vec<String> = table
            .get("bin")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| {
                b.get("name")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        if bins.is_empty() {
            let name = table
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(toml::Value::as_str)
                .unwrap_or_else(|| panic!("{} has no package.name", manifest.display()));
            bins.push(name.to_owned());
        }
        let dir_name = path
            .file_name()
            .expect("named dir")
            .to_string_lossy()
            .into_owned();
        crates.insert(dir_name, bins);
    }
    crates
}

/// Every `"ARTIFACTS_…"` string literal in the `.rs` files under `dir`, with
/// the files naming it. A missing directory names none.
fn artifacts_variables(dir: &Path) -> BTreeMap<String, BTreeSet<PathBuf>> {
    let mut found: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in rust_files(dir) {
        for var in artifacts_literals(&read(&file)) {
            found.entry(var).or_default().insert(file.clone());
        }
    }
    found
}

/// Names in `"ARTIFACTS_<A-Z0-9_>+"` literals: the literal must end right
/// after the name, so prose such as `"ARTIFACTS_X is …"` does not count.
fn artifacts_literals(source: &str) -> BTreeSet<String> {
    const OPEN: &str = "\"ARTIFACTS_";
    let mut names = BTreeSet::new();
    for (at, _) in source.match_indices(OPEN) {
        let rest = &source[at + OPEN.len()..];
        let len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        if len > 0 && rest[len..].starts_with('"') {
            names.insert(format!("ARTIFACTS_{}", &rest[..len]));
        }
    }
    names
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `cargo lambda watch`'s router (root `Cargo.toml`): (method, or None for
/// any method; template-syntax path) → binary.
fn watch_routes(
    root: &Path,
    problems: &mut Vec<String>,
) -> BTreeMap<(Option<String>, String), String> {
    let text = read(&root.join("Cargo.toml"));
    let manifest = toml::Value::Table(
        text.parse()
            .unwrap_or_else(|e| panic!("root Cargo.toml does not parse: {e}")),
    );
    let router = ["workspace", "metadata", "lambda", "watch", "router"]
        .iter()
        .try_fold(&manifest, |v, key| v.get(key))
        .and_then(toml::Value::as_table);

    let mut routed: BTreeMap<(Option<String>, String), String> = BTreeMap::new();
    match router {
        None => {
            problems.push("root Cargo.toml has no [workspace.metadata.lambda.watch.router]".into())
        }
        Some(router) => {
            for (path, target) in router {
                let path = router_path_to_template(path);
                match target {
                    toml::Value::String(binary) => {
                        routed.insert((None, path), binary.clone());
                    }
                    toml::Value::Array(entries) => {
                        for entry in entries {
                            let method = entry.get("method").and_then(toml::Value::as_str);
                            let binary = entry.get("function").and_then(toml::Value::as_str);
                            match (method, binary) {
                                (Some(m), Some(b)) => {
                                    routed.insert((Some(m.to_uppercase()), path.clone()), b.into());
                                }
                                _ => problems.push(format!(
                                    "router entry for {path} needs `method` and `function`: {entry}"
                                )),
                            }
                        }
                    }
                    other => problems.push(format!(
                        "router entry for {path} is neither a binary nor a list: {other}"
                    )),
                }
            }
        }
    }

    routed
}

/// `{*path}` (matchit, cargo lambda watch) → `{path+}` (API Gateway).
fn router_path_to_template(path: &str) -> String {
    map_segments(path, |s| {
        s.strip_prefix("{*")
            .and_then(|s| s.strip_suffix('}'))
            .map(|name| format!("{{{name}+}}"))
    })
}

/// `{path+}` (API Gateway) → `{*path}` (matchit).
fn template_path_to_router(path: &str) -> String {
    map_segments(path, |s| {
        s.strip_prefix('{')
            .and_then(|s| s.strip_suffix("+}"))
            .map(|name| format!("{{*{name}}}"))
    })
}

fn map_segments(path: &str, f: impl Fn(&str) -> Option<String>) -> String {
    path.split('/')
        .map(|s| f(s).unwrap_or_else(|| s.to_owned()))
        .collect::<Vec<_>>()
        .join("/")
}

fn display_files(root: &Path, files: &BTreeSet<PathBuf>) -> String {
    files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_agrees(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "infra/template.yaml and {what} disagree:\n  - {}",
        problems.join("\n  - ")
    );
}
