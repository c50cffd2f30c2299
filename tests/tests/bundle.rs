//! Bundles (SPEC §7) end to end: the real upload and bundle handlers, the
//! real SDK against the emulator, and archives checked with an independent
//! reader (the `zip` crate) and its extractor. Run with `make test`.
//!
//! `bench_seed_one_gib` and `bench_bundle_one_gib` are the benchmark of
//! bench/bundle.sh (ignored here: they move 1 GiB through the emulator).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Cursor, Read};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use artifacts::auth::Principal;
use artifacts::metadata::{artifact_pk, path_sk, version_sk, workflow_pk};
use artifacts::store::NewVersion;
use artifacts::{Config, Store};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use harness::{Call, Caller, TestEnv, bundle, bytes, header, json_body, upload};
use lambda_http::{Body, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

const WF: &str = "run-42";

/// Upload `body` at `path` with a content type; returns the artifact id.
async fn put(
    env: &TestEnv,
    caller: &Caller,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> String {
    put_typed(env, caller, path, content_type, "file", body).await
}

async fn put_typed(
    env: &TestEnv,
    caller: &Caller,
    path: &str,
    content_type: &str,
    artifact_type: &str,
    body: &[u8],
) -> String {
    let call = Call::upload(WF, path, body)
        .header("content-type", content_type)
        .query("artifactType", artifact_type)
        .by(caller);
    let response = upload(env, call).await;
    assert_eq!(
        response.status(),
        201,
        "{path}: {}",
        String::from_utf8_lossy(&bytes(&response))
    );
    json_body(&response)["artifact"]["artifactId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic content: text that deflates, or noise that does not.
fn text(size: usize, seed: u32) -> Vec<u8> {
    let words = [
        "resource",
        "aws_s3_bucket",
        "{",
        "}",
        "=",
        "\"name\"",
        "variable",
        "output",
    ];
    let mut out = Vec::with_capacity(size + 16);
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(words[(x % 8) as usize].as_bytes());
        out.push(if x.is_multiple_of(7) { b'\n' } else { b' ' });
    }
    out.truncate(size);
    out
}

fn noise(size: usize, seed: u32) -> Vec<u8> {
    let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Every entry of an archive: name → (bytes, compression method).
fn entries(archive: &[u8]) -> BTreeMap<String, (Vec<u8>, zip::CompressionMethod)> {
    let mut reader = zip::ZipArchive::new(Cursor::new(archive)).expect("a valid ZIP");
    (0..reader.len())
        .map(|i| {
            let mut file = reader.by_index(i).unwrap();
            let mut data = Vec::new();
            // Reading to the end checks the entry's CRC-32.
            file.read_to_end(&mut data).unwrap();
            (file.name().to_owned(), (data, file.compression()))
        })
        .collect()
}

fn names_in_order(archive: &[u8]) -> Vec<String> {
    let mut reader = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
    (0..reader.len())
        .map(|i| reader.by_index(i).unwrap().name().to_owned())
        .collect()
}

fn problem(response: &Response<Body>) -> Value {
    assert_eq!(
        header(response, "content-type"),
        Some("application/problem+json")
    );
    json_body(response)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("bundle-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, as `/`-joined paths relative to it.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn fifty_nested_artifacts_unzip_to_exactly_the_stored_bytes() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let mut stored: BTreeMap<String, (String, Vec<u8>, &str)> = BTreeMap::new();
    for i in 0..50u32 {
        let (path, content_type, body) = match i % 5 {
            0 if i == 10 => (format!("empty/{i}.txt"), "text/plain", Vec::new()),
            0 => (
                format!("terraform/mod{}/{i}/main.tf", i % 3),
                "text/plain",
                text(3_000 + i as usize * 97, i),
            ),
            1 => (
                format!("docs/{i}/prd.md"),
                "text/markdown; charset=utf-8",
                text(20_000, i),
            ),
            2 => (
                format!("diagrams/d\u{e9}j\u{e0} vu/{i}.png"),
                "image/png",
                noise(9_000, i),
            ),
            // Over the 64 KiB inline limit: stored in S3.
            3 => (
                format!("reports/{}/scan-{i}.json", i % 4),
                "application/json",
                text(90_000, i),
            ),
            _ => (
                format!("a/b/c/d/e/{i}.zip"),
                "application/zip",
                noise(70_000, i),
            ),
        };
        let id = put(&env, &alice, &path, content_type, &body).await;
        assert!(stored.insert(path, (id, body, content_type)).is_none());
    }
    let total: usize = stored.values().map(|(_, b, _)| b.len()).sum();
    assert!(total < 3 * 1024 * 1024, "fits the direct limit: {total}");

    let response = bundle(&env, Call::bundle(WF).by(&Caller::reader("acme"))).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(&bytes(&response))
    );
    assert_eq!(header(&response, "content-type"), Some("application/zip"));
    assert!(
        header(&response, "content-disposition")
            .unwrap()
            .starts_with(&format!("attachment; filename=\"artifacts-{WF}.zip\"")),
        "{:?}",
        header(&response, "content-disposition")
    );
    let archive = bytes(&response);
    assert_eq!(
        header(&response, "content-length"),
        Some(archive.len().to_string().as_str())
    );
    let etag = header(&response, "etag").unwrap();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");

    // Manifest first, its signature second, then the files in path order.
    let order = names_in_order(&archive);
    assert_eq!(order[..2], ["MANIFEST.json", "MANIFEST.json.sig"]);
    let expected_order: Vec<&String> = stored.keys().collect();
    assert_eq!(order[2..].iter().collect::<Vec<_>>(), expected_order);

    let mut found = entries(&archive);
    let (manifest_bytes, _) = found.remove("MANIFEST.json").unwrap();
    let (signature, _) = found.remove("MANIFEST.json.sig").unwrap();
    assert_eq!(found.len(), 50);
    // The signature is over the manifest's exact bytes, with the served key.
    let key = env.store.signing_key().await.unwrap();
    let spki = artifacts::attestation::spki_from_pem(&key.public_key_pem).unwrap();
    artifacts_attest::verify_manifest(&manifest_bytes, &signature, &spki).unwrap();
    for (path, (_, body, content_type)) in &stored {
        let (got, method) = &found[path];
        assert!(got == body, "{path}: bytes differ");
        // Compressed types are stored, and so is anything whose first
        // block does not shrink (here: the empty file).
        let expected = if content_type.starts_with("image/")
            || *content_type == "application/zip"
            || body.is_empty()
        {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        assert_eq!(*method, expected, "{path} ({content_type})");
    }

    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["format"], "artifacts-bundle/3");
    assert_eq!(
        header(&response, "etag").unwrap(),
        format!("\"{}\"", sha256(&manifest_bytes)),
        "the ETag is the manifest's digest"
    );
    assert_eq!(manifest["workflowId"], WF);
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 50);
    for file in files {
        let path = file["path"].as_str().unwrap();
        let (id, body, content_type) = &stored[path];
        assert_eq!(file["artifactId"], id.as_str());
        assert_eq!(file["version"], 1);
        assert_eq!(file["size"], body.len());
        assert_eq!(file["sha256"], sha256(body), "{path}");
        assert_eq!(file["contentType"], *content_type);
        // The digest of the version's attestation as the API serves it.
        let served = harness::versions(&env, Call::attestation(id, "1").by(&alice)).await;
        assert_eq!(served.status(), 200);
        assert_eq!(file["attestationSha256"], sha256(&bytes(&served)), "{path}");
    }

    // A standard extractor writes exactly these files, nothing else.
    let dir = TempDir::new();
    zip::ZipArchive::new(Cursor::new(&archive))
        .unwrap()
        .extract(&dir.0)
        .unwrap();
    let mut on_disk = files_under(&dir.0);
    assert!(on_disk.remove("MANIFEST.json").is_some());
    assert!(on_disk.remove("MANIFEST.json.sig").is_some());
    let expected: BTreeMap<String, Vec<u8>> = stored
        .iter()
        .map(|(p, (_, b, _))| (p.clone(), b.clone()))
        .collect();
    assert!(
        on_disk == expected,
        "extracted files differ from the stored ones"
    );
}

#[tokio::test]
async fn same_selection_same_bytes_and_a_new_version_changes_the_bundle() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    let prd = put(
        &env,
        &alice,
        "docs/prd.md",
        "text/markdown",
        &text(5_000, 1),
    )
    .await;
    put(&env, &alice, "img/logo.png", "image/png", &noise(4_000, 2)).await;
    put(
        &env,
        &alice,
        "big/report.json",
        "application/json",
        &text(200_000, 3),
    )
    .await;

    let first = bundle(&env, Call::bundle(WF).by(&reader)).await;
    let second = bundle(&env, Call::bundle(WF).by(&reader)).await;
    assert_eq!(first.status(), 200);
    assert!(
        bytes(&first) == bytes(&second),
        "same selection, same bytes"
    );
    let etag = header(&first, "etag").unwrap().to_owned();
    assert_eq!(header(&second, "etag"), Some(etag.as_str()));

    // The ETag works for conditional requests.
    let unchanged = bundle(
        &env,
        Call::bundle(WF).header("if-none-match", &etag).by(&reader),
    )
    .await;
    assert_eq!(unchanged.status(), 304);
    assert!(bytes(&unchanged).is_empty());

    // A new version of one artifact changes the bundle and its ETag.
    let v2 = text(5_001, 9);
    put(&env, &alice, "docs/prd.md", "text/markdown", &v2).await;
    let changed = bundle(&env, Call::bundle(WF).by(&reader)).await;
    assert_eq!(changed.status(), 200);
    assert!(bytes(&changed) != bytes(&first));
    let new_etag = header(&changed, "etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let found = entries(&bytes(&changed));
    assert!(found["docs/prd.md"].0 == v2);
    let manifest: Value = serde_json::from_slice(&found["MANIFEST.json"].0).unwrap();
    let prd_entry = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "docs/prd.md")
        .unwrap();
    assert_eq!(prd_entry["version"], 2);
    let stale = bundle(
        &env,
        Call::bundle(WF).header("if-none-match", &etag).by(&reader),
    )
    .await;
    assert_eq!(stale.status(), 200, "the old ETag no longer matches");

    // Pinning the old version reproduces the old bundle byte for byte.
    let pinned = bundle(
        &env,
        Call::bundle(WF)
            .query_repeated("pin", &[&format!("{prd}:1")])
            .by(&reader),
    )
    .await;
    assert_eq!(pinned.status(), 200);
    assert!(
        bytes(&pinned) == bytes(&first),
        "pin reproduces the older state"
    );
    assert_eq!(header(&pinned, "etag"), Some(etag.as_str()));
    // Pinning the latest version changes nothing.
    let latest = bundle(
        &env,
        Call::bundle(WF)
            .query_repeated("pin", &[&format!("{prd}:2")])
            .by(&reader),
    )
    .await;
    assert_eq!(header(&latest, "etag"), Some(new_etag.as_str()));
}

#[tokio::test]
async fn filters_and_pins_select_and_bad_ones_are_refused() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    let main_tf = put_typed(
        &env,
        &alice,
        "infra/main.tf",
        "text/plain",
        "terraform",
        b"v1",
    )
    .await;
    put_typed(
        &env,
        &alice,
        "infra/main.tf",
        "text/plain",
        "terraform",
        b"v2",
    )
    .await;
    put_typed(
        &env,
        &alice,
        "infra/vars.tf",
        "text/plain",
        "terraform",
        b"vars",
    )
    .await;
    let prd = put_typed(
        &env,
        &alice,
        "docs/prd.md",
        "text/markdown",
        "prd",
        b"# PRD",
    )
    .await;
    put_typed(
        &env,
        &alice,
        "docs/arch.md",
        "text/markdown",
        "architecture",
        b"# Arch",
    )
    .await;
    put_typed(&env, &alice, "docsx/other.md", "text/markdown", "prd", b"x").await;

    let files = |response: &Response<Body>| -> BTreeSet<String> {
        assert_eq!(
            response.status(),
            200,
            "{}",
            String::from_utf8_lossy(&bytes(response))
        );
        entries(&bytes(response))
            .into_keys()
            .filter(|n| n != "MANIFEST.json" && n != "MANIFEST.json.sig")
            .collect()
    };
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    let by_type = bundle(
        &env,
        Call::bundle(WF)
            .query("artifactType", "terraform")
            .by(&reader),
    )
    .await;
    assert_eq!(files(&by_type), set(&["infra/main.tf", "infra/vars.tf"]));
    let by_prefix = bundle(&env, Call::bundle(WF).query("prefix", "docs/").by(&reader)).await;
    assert_eq!(files(&by_prefix), set(&["docs/arch.md", "docs/prd.md"]));
    let both = bundle(
        &env,
        Call::bundle(WF)
            .query("prefix", "docs")
            .query("artifactType", "prd")
            .by(&reader),
    )
    .await;
    assert_eq!(files(&both), set(&["docs/prd.md", "docsx/other.md"]));

    // Two pins in one request, as repeated parameters.
    let pinned = bundle(
        &env,
        Call::bundle(WF)
            .query_repeated("pin", &[&format!("{main_tf}:1"), &format!("{prd}:1")])
            .by(&reader),
    )
    .await;
    assert_eq!(pinned.status(), 200);
    assert_eq!(entries(&bytes(&pinned))["infra/main.tf"].0, b"v1");

    // Bad pins.
    let status_and_field = |r: &Response<Body>| (r.status().as_u16(), problem(r)["field"].clone());
    let cases: Vec<(Vec<String>, u16)> = vec![
        (vec![main_tf.clone()], 400),
        (vec![format!("{main_tf}:0")], 400),
        (vec![format!("{main_tf}:two")], 400),
        (vec![format!("{main_tf}:1"), format!("{main_tf}:2")], 400),
        (vec![format!("{main_tf}:3")], 404),
        (vec!["0123456789abcdef0123456789abcdef:1".into()], 404),
        (vec!["not-an-id:1".into()], 404),
    ];
    for (pins, status) in cases {
        let pins_ref: Vec<&str> = pins.iter().map(String::as_str).collect();
        let r = bundle(
            &env,
            Call::bundle(WF)
                .query_repeated("pin", &pins_ref)
                .by(&reader),
        )
        .await;
        let (got, field) = status_and_field(&r);
        assert_eq!(got, status, "{pins:?}");
        if status == 400 {
            assert_eq!(field, "pin", "{pins:?}");
        }
    }
    // A pin the filters leave out would silently do nothing: refused.
    let outside = bundle(
        &env,
        Call::bundle(WF)
            .query("prefix", "infra/")
            .query_repeated("pin", &[&format!("{prd}:1")])
            .by(&reader),
    )
    .await;
    assert_eq!(status_and_field(&outside), (400, Value::from("pin")));

    // Bad filters and credentials.
    let bad_type = bundle(
        &env,
        Call::bundle(WF)
            .query("artifactType", "no spaces")
            .by(&reader),
    )
    .await;
    assert_eq!(
        status_and_field(&bad_type),
        (400, Value::from("artifactType"))
    );
    let bad_prefix = bundle(
        &env,
        Call::bundle(WF).query("prefix", "a\u{1}b").by(&reader),
    )
    .await;
    assert_eq!(status_and_field(&bad_prefix), (400, Value::from("prefix")));
    let bad_wf = bundle(&env, Call::bundle("a b").by(&reader)).await;
    assert_eq!(status_and_field(&bad_wf), (400, Value::from("workflowId")));
    let anonymous = bundle(&env, Call::bundle(WF)).await;
    assert_eq!(anonymous.status(), 401);
    let no_scope = bundle(
        &env,
        Call::bundle(WF).by(&Caller::new("acme", "artifacts:write")),
    )
    .await;
    assert_eq!(no_scope.status(), 403);
}

#[tokio::test]
async fn other_orgs_and_empty_selections_are_the_same_404() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    let id = put(&env, &alice, "docs/prd.md", "text/markdown", b"acme only").await;
    let mallory = Caller::reader("globex");

    let other_org = bundle(&env, Call::bundle(WF).by(&mallory)).await;
    let missing_wf = bundle(
        &env,
        Call::bundle("no-such-run").by(&Caller::reader("acme")),
    )
    .await;
    let no_type = bundle(
        &env,
        Call::bundle(WF)
            .query("artifactType", "nothing-of-this-type")
            .by(&Caller::reader("acme")),
    )
    .await;
    let no_prefix = bundle(
        &env,
        Call::bundle(WF)
            .query("prefix", "zzz/")
            .by(&Caller::reader("acme")),
    )
    .await;
    // Pinning another org's artifact: not found either.
    let foreign_pin = bundle(
        &env,
        Call::bundle(WF)
            .query_repeated("pin", &[&format!("{id}:1")])
            .by(&mallory),
    )
    .await;
    let reference = problem(&other_org);
    assert_eq!(other_org.status(), 404);
    assert_eq!(reference["status"], 404);
    for r in [&missing_wf, &no_type, &no_prefix, &foreign_pin] {
        assert_eq!(r.status(), 404);
        assert_eq!(problem(r), reference, "indistinguishable bodies");
    }
    let body = String::from_utf8_lossy(&bytes(&other_org)).into_owned();
    assert!(!body.contains("acme") && !body.contains(&id), "{body}");

    // Mallory's own workflow of the same name is hers alone.
    put(
        &env,
        &Caller::writer("globex"),
        "mine.txt",
        "text/plain",
        b"globex",
    )
    .await;
    let own = bundle(&env, Call::bundle(WF).by(&mallory)).await;
    let found = entries(&bytes(&own));
    assert_eq!(
        found.keys().cloned().collect::<Vec<_>>(),
        ["MANIFEST.json", "MANIFEST.json.sig", "mine.txt"]
    );
}

#[tokio::test]
async fn dangerous_paths_cannot_exist_and_every_entry_stays_inside_the_root() {
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    for bad in [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/passwd",
        "a\\..\\b.txt",
        "a/./b.txt",
        "a//b.txt",
        "trailing/",
        "..",
        "nul\u{0}.txt",
        "new\nline.txt",
        "C:x.txt",
        "C:/x.txt",
        "..a/b..",
    ] {
        let r = upload(&env, Call::upload(WF, bad, b"x").by(&alice)).await;
        assert_eq!(r.status(), 400, "{bad:?} must be refused at write time");
        assert_eq!(problem(&r)["field"], "path", "{bad:?}");
    }
    // Odd but safe names, and one that takes the manifest's name.
    let odd = [
        "..a/b..c",
        ".hidden/x.txt",
        "C x.txt",
        "sp ace/\u{fc}n\u{ef}c\u{f6}d\u{e9}.md",
        "MANIFEST.json",
        "deep/1/2/3/4/5/6/7/8/9/10/f",
    ];
    for (i, path) in odd.iter().enumerate() {
        put(
            &env,
            &alice,
            path,
            "text/plain",
            format!("file {i}").as_bytes(),
        )
        .await;
    }
    let r = bundle(&env, Call::bundle(WF).by(&Caller::reader("acme"))).await;
    assert_eq!(r.status(), 200);
    let archive = bytes(&r);

    let mut reader = zip::ZipArchive::new(Cursor::new(&archive)).unwrap();
    for i in 0..reader.len() {
        let file = reader.by_index(i).unwrap();
        let name = file.name().to_owned();
        // The reader's own check, and a lexical one of ours.
        assert!(file.enclosed_name().is_some(), "{name:?} escapes");
        let normal = Path::new(&name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        assert!(normal && !name.contains('\\'), "{name:?}");
    }
    let dir = TempDir::new();
    for i in 0..reader.len() {
        let name = reader.by_index(i).unwrap().name().to_owned();
        // Resolved lexically against the root, it stays below it.
        let mut resolved = dir.0.clone();
        for c in Path::new(&name).components() {
            match c {
                Component::Normal(part) => resolved.push(part),
                Component::ParentDir => assert!(resolved.pop() && resolved.starts_with(&dir.0)),
                other => panic!("{name:?} has a {other:?} component"),
            }
        }
        assert!(
            resolved.starts_with(&dir.0) && resolved != dir.0,
            "{name:?}"
        );
    }
    reader.extract(&dir.0).unwrap();
    let on_disk = files_under(&dir.0);
    let mut expected: BTreeSet<String> = odd.iter().map(|s| s.to_string()).collect();
    expected.insert("MANIFEST-1.json".into());
    expected.insert("MANIFEST-1.json.sig".into());
    assert_eq!(on_disk.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(
        on_disk["MANIFEST.json"], b"file 4",
        "the artifact keeps its name"
    );
    let manifest: Value = serde_json::from_slice(&on_disk["MANIFEST-1.json"]).unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), odd.len());
}

/// Flip a byte of an inline version's ciphertext.
async fn corrupt_inline(env: &TestEnv, org: &str, id: &str, version: u64) {
    let ddb = env.dynamodb();
    let item = ddb
        .get_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(artifact_pk(org, id)))
        .key("sk", AttributeValue::S(version_sk(version)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut sealed = item["inline"].as_b().unwrap().as_ref().to_vec();
    let at = sealed.len() - 20;
    sealed[at] ^= 1;
    ddb.update_item()
        .table_name(&env.resources.table)
        .key("pk", AttributeValue::S(artifact_pk(org, id)))
        .key("sk", AttributeValue::S(version_sk(version)))
        .update_expression("SET #inline = :v")
        .expression_attribute_names("#inline", "inline")
        .expression_attribute_values(":v", AttributeValue::B(Blob::new(sealed)))
        .send()
        .await
        .unwrap();
}

/// Record another SHA-256 for a version (content still authenticates).
async fn misrecord_sha256(env: &TestEnv, org: &str, id: &str, path: &str, version: u64) {
    let ddb = env.dynamodb();
    let wrong = AttributeValue::S("0".repeat(64));
    harness::set_version_attribute(env, org, id, version, "sha256", wrong.clone()).await;
    for (pk, sk) in [
        (artifact_pk(org, id), "#META".to_owned()),
        (workflow_pk(org, WF), path_sk(path)),
    ] {
        ddb.update_item()
            .table_name(&env.resources.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .update_expression("SET sha256 = :v")
            .expression_attribute_values(":v", wrong.clone())
            .send()
            .await
            .unwrap();
    }
}

async fn delivery_objects(env: &TestEnv) -> (usize, usize) {
    let s3 = env.s3();
    let versions = s3
        .list_object_versions()
        .bucket(&env.resources.bucket)
        .prefix("deliveries/")
        .send()
        .await
        .unwrap();
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&env.resources.bucket)
        .prefix("deliveries/")
        .send()
        .await
        .unwrap();
    (versions.versions().len(), uploads.uploads().len())
}

#[tokio::test]
async fn tampered_content_fails_the_whole_bundle_and_publishes_nothing() {
    // Small bundles: a 500 problem, never a ZIP.
    let env = TestEnv::new().await;
    let alice = Caller::writer("acme");
    put(&env, &alice, "a.txt", "text/plain", b"fine").await;
    let id = put(&env, &alice, "b.txt", "text/plain", &text(2_000, 1)).await;
    corrupt_inline(&env, "acme", &id, 1).await;
    let r = bundle(&env, Call::bundle(WF).by(&Caller::reader("acme"))).await;
    assert_eq!(r.status(), 500);
    assert!(problem(&r)["requestId"].is_string());

    let id = put(&env, &alice, "c.txt", "text/plain", b"authentic").await;
    misrecord_sha256(&env, "acme", &id, "c.txt", 1).await;
    // Remove b.txt's corruption from the picture: new good version.
    put(&env, &alice, "b.txt", "text/plain", b"repaired").await;
    let r = bundle(&env, Call::bundle(WF).by(&Caller::reader("acme"))).await;
    assert_eq!(r.status(), 500, "content that does not hash to its sha256");

    // Large bundles: the multipart upload is aborted, nothing is published.
    let env = TestEnv::with_config(|c| c.direct_max_bytes = 64 * 1024).await;
    put(
        &env,
        &alice,
        "big/1.bin",
        "application/zip",
        &noise(300_000, 1),
    )
    .await;
    put(&env, &alice, "big/2.txt", "text/plain", &text(300_000, 2)).await;
    let id = put(&env, &alice, "z-last.txt", "text/plain", &text(1_000, 3)).await;
    corrupt_inline(&env, "acme", &id, 1).await;
    let r = bundle(&env, Call::bundle(WF).by(&Caller::reader("acme"))).await;
    assert_eq!(r.status(), 500);
    assert_eq!(header(&r, "location"), None);
    assert_eq!(
        delivery_objects(&env).await,
        (0, 0),
        "no object, no pending upload"
    );
}

#[tokio::test]
async fn a_bundle_over_the_direct_limit_is_delivered_and_reused() {
    let env = TestEnv::with_config(|c| c.direct_max_bytes = 256 * 1024).await;
    let alice = Caller::writer("acme");
    let reader = Caller::reader("acme");
    let mut stored = BTreeMap::new();
    for i in 0..6u32 {
        let (path, ct, body) = if i.is_multiple_of(2) {
            (format!("logs/{i}.log"), "text/plain", text(150_000, i))
        } else {
            (format!("bin/{i}.gz"), "application/gzip", noise(150_000, i))
        };
        put(&env, &alice, &path, ct, &body).await;
        stored.insert(path, body);
    }

    let r = bundle(&env, Call::bundle(WF).by(&reader)).await;
    assert_eq!(r.status(), 303, "{}", String::from_utf8_lossy(&bytes(&r)));
    let etag = header(&r, "etag").unwrap().to_owned();
    let location = header(&r, "location").unwrap().to_owned();
    assert!(location.contains("X-Amz-Signature"), "{location}");
    assert!(
        location.contains("X-Amz-Expires=900"),
        "15 minutes: {location}"
    );
    assert!(location.contains("/deliveries/acme/bundles/"), "{location}");
    assert!(bytes(&r).is_empty());

    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(
        fetched.headers()["content-type"].to_str().unwrap(),
        "application/zip"
    );
    assert!(
        fetched.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with(&format!("attachment; filename=\"artifacts-{WF}.zip\""))
    );
    let archive = fetched.bytes().await.unwrap().to_vec();
    let mut found = entries(&archive);
    found.remove("MANIFEST.json").unwrap();
    found.remove("MANIFEST.json.sig").unwrap();
    assert_eq!(found.len(), stored.len());
    for (path, body) in &stored {
        assert!(&found[path].0 == body, "{path}");
    }

    // The same selection again: the copy is reused (one object version),
    // and it is the bundle the direct path would have returned.
    let again = bundle(&env, Call::bundle(WF).by(&reader)).await;
    assert_eq!(again.status(), 303);
    assert_eq!(header(&again, "etag"), Some(etag.as_str()));
    assert_eq!(delivery_objects(&env).await, (1, 0));
    // It is the very bundle the direct path builds for the same selection.
    let mut roomy = env.store.clone();
    roomy.config.direct_max_bytes = 4 * 1024 * 1024;
    let direct = artifacts_bundle::handler(&roomy, Call::bundle(WF).by(&reader).request())
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(header(&direct, "etag"), Some(etag.as_str()));
    assert!(
        bytes(&direct) == archive,
        "delivered and direct bytes are the same"
    );
}

/// A store over the resources named `name` (created if missing), for the
/// benchmark's two processes.
async fn named_store(name: &str) -> Store {
    let sdk = harness::sdk_config().await;
    let resources = harness::provision(&sdk, name).await.unwrap();
    let vars = HashMap::from([
        ("ARTIFACTS_TABLE", resources.table.clone()),
        ("ARTIFACTS_BUCKET", resources.bucket.clone()),
        ("ARTIFACTS_KMS_KEY_ID", resources.kms_key_id.clone()),
    ]);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    Store::new(config, &sdk)
}

fn bench_name() -> String {
    std::env::var("BUNDLE_BENCH_NAME").expect("BUNDLE_BENCH_NAME (set by bench/bundle.sh)")
}

const BENCH_SIZE: usize = 4 * 1024 * 1024;

/// 256 artifacts (1 GiB) unless `BUNDLE_BENCH_COUNT` says otherwise.
fn bench_count() -> u32 {
    std::env::var("BUNDLE_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Benchmark, step 1 (bench/bundle.sh): 256 artifacts of 4 MiB — 1 GiB,
/// half text that deflates, half noise stored as application/zip.
#[tokio::test]
#[ignore = "benchmark: run bench/bundle.sh"]
async fn bench_seed_one_gib() {
    let store = named_store(&bench_name()).await;
    let caller = Caller::writer("acme");
    let principal = Principal::from_claims(&HashMap::from([
        ("sub".to_owned(), caller.sub.clone()),
        ("org_id".to_owned(), caller.org.clone()),
        ("scope".to_owned(), caller.scopes.clone()),
    ]))
    .unwrap();
    let started = Instant::now();
    let text_base = text(BENCH_SIZE, 1);
    let noise_base = noise(BENCH_SIZE, 2);
    for i in 0..bench_count() {
        let (path, content_type, mut body) = if i.is_multiple_of(2) {
            (format!("text/{i:03}.txt"), "text/plain", text_base.clone())
        } else {
            (
                format!("bin/{i:03}.zip"),
                "application/zip",
                noise_base.clone(),
            )
        };
        body[..16].copy_from_slice(format!("{i:016}").as_bytes());
        store
            .put(
                &principal,
                NewVersion {
                    workflow_id: WF.into(),
                    path,
                    content_type: Some(content_type.into()),
                    body,
                    ..NewVersion::default()
                },
            )
            .await
            .unwrap();
    }
    eprintln!(
        "seeded {} x {} MiB in {:.1} s",
        bench_count(),
        BENCH_SIZE >> 20,
        started.elapsed().as_secs_f64()
    );
}

/// Benchmark, step 2, in a fresh process (so its peak RSS is a cold
/// function's plus one bundle, not the seeding's leftovers): bundle the
/// 1 GiB through the delivery path and report time and the process's peak
/// RSS (`VmHWM`). The script then verifies the archive behind the URL with
/// Python's `zipfile` and the manifest's SHA-256s.
#[tokio::test]
#[ignore = "benchmark: run bench/bundle.sh"]
async fn bench_bundle_one_gib() {
    let store = named_store(&bench_name()).await;
    let rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let r = artifacts_bundle::handler(
        &store,
        Call::bundle(WF).by(&Caller::reader("acme")).request(),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM");
    assert_eq!(r.status(), 303, "{}", String::from_utf8_lossy(&bytes(&r)));
    let total = u64::from(bench_count()) * BENCH_SIZE as u64;
    println!(
        "BENCH bundle of {} MiB ({} artifacts): {elapsed:.1} s, {:.0} MiB/s; \
         process RSS before {} KiB, peak {} KiB",
        total >> 20,
        bench_count(),
        (total >> 20) as f64 / elapsed,
        rss_before,
        peak,
    );
    if let Ok(out) = std::env::var("BUNDLE_BENCH_OUT") {
        let result = serde_json::json!({
            "url": header(&r, "location").unwrap(),
            "count": bench_count(),
            "size": BENCH_SIZE,
            "elapsedSeconds": elapsed,
            "rssBeforeKiB": rss_before,
            "peakKiB": peak,
        });
        std::fs::write(out, result.to_string()).unwrap();
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
