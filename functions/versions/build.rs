//! Embed the API's OpenAPI document (SPEC §16) as JSON: `infra/openapi.yaml`
//! with every fragment under `infra/openapi/*.yaml` merged in (their `paths`
//! by method, their `components` by name; anything defined twice fails the
//! build), so the served `GET /v1/openapi.json` is never maintained twice.
//! Writes `$OUT_DIR/openapi.json` and `$OUT_DIR/openapi.etag`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

fn main() {
    // Read at run time: `env!` would bake in the path of the checkout that
    // first compiled this script, and a second checkout sharing one
    // CARGO_TARGET_DIR would then read the first one's documents.
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let infra = manifest.join("../../infra");
    let main_doc = infra.join("openapi.yaml");
    let fragments_dir = infra.join("openapi");
    println!("cargo:rerun-if-changed={}", main_doc.display());
    println!("cargo:rerun-if-changed={}", fragments_dir.display());

    let mut doc = load(&main_doc);
    let mut fragments: Vec<PathBuf> = std::fs::read_dir(&fragments_dir)
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    fragments.sort();
    for path in &fragments {
        if let Err(why) = merge(&mut doc, load(path)) {
            panic!("{}: {why}", path.display());
        }
    }
    let json = serde_json::to_string(&doc).expect("serialize the OpenAPI document");
    let etag = format!(
        "\"{}\"",
        hex::encode(&Sha256::digest(json.as_bytes())[..16])
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("openapi.json"), json).expect("write openapi.json");
    std::fs::write(out.join("openapi.etag"), etag).expect("write openapi.etag");
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Merge one fragment (`paths:` and `components:` only) into the document.
fn merge(doc: &mut Value, fragment: Value) -> Result<(), String> {
    let Value::Object(fragment) = fragment else {
        return Err("a fragment must be a mapping".into());
    };
    for (key, value) in fragment {
        match key.as_str() {
            // A fragment may carry these to be a valid document on its own.
            "openapi" | "info" => {}
            // Path items merge by method: a fragment may add DELETE to a path
            // the document has for GET.
            "paths" => union(doc, "paths", value, 2)?,
            // components.schemas.X etc.
            "components" => union(doc, "components", value, 2)?,
            other => return Err(format!("unexpected top-level key {other:?} in a fragment")),
        }
    }
    Ok(())
}

/// Add `value`'s entries into `doc[key]`, descending `depth` levels of
/// mappings; an entry present in both at the last level is an error.
fn union(doc: &mut Value, key: &str, value: Value, depth: usize) -> Result<(), String> {
    let Value::Object(into) = doc else {
        return Err(format!("{key} must be a mapping"));
    };
    let slot = into
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(entries) = value else {
        return Err(format!("{key} must be a mapping"));
    };
    for (name, item) in entries {
        let exists = slot.get(&name).is_some();
        if depth > 1 && exists {
            union(slot, &name, item, depth - 1).map_err(|e| format!("{key}.{e}"))?;
        } else if exists {
            return Err(format!("{key}.{name} is defined twice"));
        } else if let Value::Object(map) = slot {
            map.insert(name, item);
        }
    }
    Ok(())
}
