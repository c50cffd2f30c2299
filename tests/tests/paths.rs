//! Path rules and clashes (SPEC §3, issue 10 item 5) end to end: the real
//! upload, presign and bundle handlers, the real SDK against the emulator.
//!
//! - every rule is a 400 on field `path` that changes nothing;
//! - every clash is a 409 on field `path` naming the path that holds the name,
//!   whichever of the two was written first, and changes nothing;
//! - racing writers of clashing paths: exactly one side wins;
//! - a workflow of tricky but valid names bundles into a ZIP that Python's
//!   `zipfile`, Info-ZIP `unzip` and `bsdtar` all extract byte for byte
//!   (`scripts/system-deps.sh`, run by `make venv`, installs the last two).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use artifacts::metadata::workflow_pk;
use aws_sdk_dynamodb::types::AttributeValue;
use harness::{Call, Caller, TestEnv, bundle, bytes, json_body, presign, upload};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

fn text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(&bytes(response)).into_owned()
}

async fn put(env: &TestEnv, wf: &str, path: &str, body: &[u8]) -> Response<Body> {
    upload(
        env,
        Call::upload(wf, path, body).by(&Caller::writer("acme")),
    )
    .await
}

async fn put_ok(env: &TestEnv, wf: &str, path: &str, body: &[u8]) -> Value {
    let response = put(env, wf, path, body).await;
    assert_eq!(response.status(), 201, "{path:?}: {}", text(&response));
    json_body(&response)
}

/// The problem of a refused request: status, field, detail.
fn problem(response: &Response<Body>) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body = json_body(response);
    (
        status,
        body["field"].as_str().unwrap_or_default().to_owned(),
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Every item of a workflow's partition (artifacts and names), as `sk`s.
async fn partition(env: &TestEnv, wf: &str) -> Vec<String> {
    let out = env
        .dynamodb()
        .query()
        .table_name(&env.resources.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(workflow_pk("acme", wf)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| match i.get("sk") {
            Some(AttributeValue::S(s)) => s.clone(),
            other => panic!("sk {other:?}"),
        })
        .collect()
}

/// The artifact paths of a workflow (its `P#` items).
async fn paths_of(env: &TestEnv, wf: &str) -> Vec<String> {
    partition(env, wf)
        .await
        .into_iter()
        .filter_map(|sk| sk.strip_prefix("P#").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn every_path_rule_is_a_400_naming_the_rule_and_changes_nothing() {
    let env = TestEnv::new().await;
    let wf = "rules";
    let cases: &[(&str, &str)] = &[
        ("C:/x", "\" : < > | * ?"),
        ("x:stream", "\" : < > | * ?"),
        ("what?.md", "\" : < > | * ?"),
        ("a*b", "\" : < > | * ?"),
        ("a<b>", "\" : < > | * ?"),
        ("pipe|d", "\" : < > | * ?"),
        ("\"quoted\"", "\" : < > | * ?"),
        ("back\\slash", "'\\'"),
        ("CON", "device"),
        ("docs/nul.txt", "device"),
        ("Com1.tar.gz", "device"),
        ("lpt\u{b9}", "device"),
        ("aux", "device"),
        ("trailing.", "end in '.'"),
        ("dir./x.md", "end in '.'"),
        ("trailing ", "end in '.' or a space"),
        ("evil\u{202e}dm.exe", "format"),
        ("zero\u{200b}width.md", "format"),
        ("bom\u{feff}.md", "format"),
        ("soft\u{ad}hyphen.md", "format"),
        ("iso\u{2066}late.md", "format"),
        ("line\u{2028}break.md", "separator"),
        ("tab\tname", "control"),
        ("a//b", "empty segment"),
        ("a/../b", "'.' or '..'"),
        ("/abs", "start with '/'"),
    ];
    let long_segment = "s".repeat(256);
    let deep = vec!["d"; 33].join("/");
    let mut all: Vec<(&str, &str)> = cases.to_vec();
    all.push((&long_segment, "at most 255 bytes"));
    all.push((&deep, "at most 32"));
    for (path, rule) in all {
        let response = put(&env, wf, path, b"x").await;
        let (status, field, detail) = problem(&response);
        assert_eq!(
            (status, field.as_str()),
            (400, "path"),
            "{path:?}: {detail}"
        );
        assert!(detail.contains(rule), "{path:?}: {detail}");

        // The presigned-upload route applies the same rules.
        let response = presign(
            &env,
            Call::create_upload(
                wf,
                &json!({"path": path, "artifactType": "file", "contentType": "text/plain", "size": 1}),
            )
            .by(&Caller::writer("acme")),
        )
        .await;
        let (status, field, detail) = problem(&response);
        assert_eq!(
            (status, field.as_str()),
            (400, "path"),
            "{path:?}: {detail}"
        );
    }
    assert!(partition(&env, wf).await.is_empty(), "nothing was written");
}

/// Pairs that must not coexist in one workflow: whichever is written first
/// wins, the other is a 409 naming the first; the reverse order likewise.
#[tokio::test]
async fn clashing_paths_are_a_409_naming_the_existing_path_in_either_order() {
    let env = TestEnv::new().await;
    let pairs: &[(&str, &str, &str)] = &[
        // (first, second, what the 409 must name)
        ("a", "a/b", "a"),
        ("a/b", "a", "a"),
        ("docs/a", "docs/a/b/c.md", "docs/a"),
        ("x/y/z.md", "x/y", "x/y"),
        ("README.md", "readme.md", "README.md"),
        ("readme.md", "README.MD", "readme.md"),
        ("caf\u{e9}.txt", "cafe\u{301}.txt", "caf\u{e9}.txt"),
        ("cafe\u{301}.txt", "CAF\u{c9}.TXT", "cafe\u{301}.txt"),
        ("Docs/a.md", "docs/b.md", "Docs"),
        ("Docs/a.md", "DOCS", "Docs"),
        ("dir/File", "DIR/file/x", "dir"),
        ("stra\u{df}e.md", "STRASSE.md", "stra\u{df}e.md"),
        ("\u{131}ndex.md", "Index.md", "\u{131}ndex.md"),
    ];
    for (i, (first, second, named)) in pairs.iter().enumerate() {
        let wf = format!("clash-{i}");
        put_ok(&env, &wf, first, b"first").await;
        let before = partition(&env, &wf).await;
        let response = put(&env, &wf, second, b"second").await;
        let (status, field, detail) = problem(&response);
        assert_eq!(
            (status, field.as_str()),
            (409, "path"),
            "{first:?} then {second:?}: {detail}"
        );
        assert!(
            detail.contains(&format!("{named:?}")),
            "{first:?} then {second:?} must name {named:?}: {detail}"
        );
        let mut after = partition(&env, &wf).await;
        let mut before = before;
        before.sort();
        after.sort();
        assert_eq!(before, after, "a refused write changes nothing");
        // The winner still takes new versions.
        let again = put_ok(&env, &wf, first, b"first, v2").await;
        assert_eq!(again["version"]["version"], 2, "{again}");
    }
}

#[tokio::test]
async fn paths_that_do_not_clash_coexist() {
    let env = TestEnv::new().await;
    let wf = "fine";
    let paths = [
        "a/b",
        "a/c",
        "a/d/e",
        "ab",
        "a b",
        "a.b",
        "b/a",
        "docs/README.md",
        "docs/README.md.bak",
        "README",
        "1.txt",
        "\u{2460}.txt",
        "caf\u{e9}/x",
        "caf\u{e9}/y",
    ];
    for p in paths {
        put_ok(&env, wf, p, p.as_bytes()).await;
    }
    // A second spelling of an existing directory is a clash, the same one is not.
    assert_eq!(put(&env, wf, "A/x", b"").await.status(), 409);
    let mut listed = paths_of(&env, wf).await;
    listed.sort();
    let mut expected: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

/// Many writers of two clashing paths at once, round after round: one side
/// wins (all its writers get versions), every writer of the other side gets
/// a 409, and never are both stored.
#[tokio::test]
async fn racing_writers_of_clashing_paths_never_both_win() {
    let env = TestEnv::new().await;
    let races: &[(&str, &str)] = &[("a", "a/b"), ("X.md", "x.md"), ("d/e/f", "D/g")];
    const WRITERS: usize = 6;
    const ROUNDS: usize = 3;
    for round in 0..ROUNDS {
        for (r, (left, right)) in races.iter().enumerate() {
            let wf = format!("race-{round}-{r}");
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..2 * WRITERS {
                let store = env.store.clone();
                let path = if w % 2 == 0 { *left } else { *right };
                let call = Call::upload(&wf, path, format!("{path} by {w}").as_bytes())
                    .by(&Caller::writer("acme"));
                tasks.spawn(async move {
                    let response = artifacts_upload::handler(&store, call.request())
                        .await
                        .expect("handlers answer");
                    (path, response)
                });
            }
            let mut won: BTreeMap<&str, usize> = BTreeMap::new();
            let mut lost: BTreeMap<&str, usize> = BTreeMap::new();
            while let Some(joined) = tasks.join_next().await {
                let (path, response) = joined.unwrap();
                match response.status().as_u16() {
                    201 => *won.entry(path).or_default() += 1,
                    409 => {
                        let (_, field, _) = problem(&response);
                        assert_eq!(field, "path", "{}", text(&response));
                        *lost.entry(path).or_default() += 1;
                    }
                    other => panic!("{path:?}: {other} {}", text(&response)),
                }
            }
            assert_eq!(won.len(), 1, "exactly one side wins: {won:?} / {lost:?}");
            let (winner, writers) = won.iter().next().map(|(p, n)| (*p, *n)).unwrap();
            assert_eq!(writers, WRITERS, "every writer of the winner succeeds");
            assert_eq!(lost.values().sum::<usize>(), WRITERS, "{lost:?}");
            assert!(!lost.contains_key(winner));
            assert_eq!(paths_of(&env, &wf).await, [winner.to_owned()]);
        }
    }
}

/// Tricky but valid names: non-ASCII (NFC and NFD), spaces, punctuation
/// that is fine everywhere, nesting, a dot file.
const TRICKY: &[&str] = &[
    "na\u{ef}ve caf\u{e9}/R\u{e9}sum\u{e9} 2026.md",
    "\u{65e5}\u{672c}\u{8a9e}/\u{30c6}\u{30b9}\u{30c8}.txt",
    "cafe\u{301} (NFD).txt",
    "spaces in name/a b  c.txt",
    "emoji \u{1f980}/crab.rs",
    "deep/a/b/c/d/e/f/g.txt",
    "percent%20and+plus & #hash [x] {y} 'q' ~=,;@$!.txt",
    ".hidden",
    "..dots..x",
    "\u{395}\u{3bb}\u{3bb}\u{3b7}\u{3bd}\u{3b9}\u{3ba}\u{3ac}/\u{3a3}\u{3b5}\u{3bb}\u{3af}\u{3b4}\u{3b1}.md",
    "\u{5e2}\u{5d1}\u{5e8}\u{5d9}\u{5ea}.txt",
    "CONSOLE.log",
    "com10/lpt.txt",
    // Takes the manifest's name on case-insensitive file systems.
    "manifest.JSON",
];

fn content_of(path: &str) -> Vec<u8> {
    // Some text, some binary, one empty file.
    match path {
        ".hidden" => Vec::new(),
        p if p.ends_with(".rs") => (0..=255u8).cycle().take(70_000).collect(),
        p => format!("contents of {p}\n").repeat(3).into_bytes(),
    }
}

/// Every regular file under `root`, by its path relative to it (as bytes, so
/// nothing is normalized on the way).
fn files_under(root: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                assert!(kind.is_file(), "{:?} is not a regular file", entry.path());
                let relative = entry.path().strip_prefix(root).unwrap().to_path_buf();
                found.insert(
                    relative.as_os_str().as_bytes().to_vec(),
                    std::fs::read(entry.path()).unwrap(),
                );
            }
        }
    }
    found
}

fn run(command: &mut Command) {
    let output = command
        .env("LC_ALL", "C.UTF-8")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {command:?} ({e}); `make venv` installs it (scripts/system-deps.sh)")
        });
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn bundles_of_tricky_names_extract_byte_exact_with_three_extractors() {
    let env = TestEnv::new().await;
    let wf = "tricky";
    for path in TRICKY {
        put_ok(&env, wf, path, &content_of(path)).await;
    }
    let response = bundle(&env, Call::bundle(wf).by(&Caller::reader("acme"))).await;
    assert_eq!(response.status(), 200, "{}", text(&response));
    let zip = bytes(&response);

    let dir = std::env::temp_dir().join(format!("paths-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join("bundle.zip");
    std::fs::write(&archive, &zip).unwrap();
    let expected: BTreeMap<Vec<u8>, Vec<u8>> = TRICKY
        .iter()
        .map(|p| (p.as_bytes().to_vec(), content_of(p)))
        .collect();

    let python = dir.join("python");
    run(Command::new("python3").args([
        "-c",
        "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
        archive.to_str().unwrap(),
        python.to_str().unwrap(),
    ]));
    let unzip = dir.join("unzip");
    run(Command::new("unzip")
        .arg("-q")
        .arg(&archive)
        .arg("-d")
        .arg(&unzip));
    let bsdtar = dir.join("bsdtar");
    std::fs::create_dir_all(&bsdtar).unwrap();
    run(Command::new("bsdtar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&bsdtar));

    let mut manifests = Vec::new();
    for (name, root) in [("zipfile", &python), ("unzip", &unzip), ("bsdtar", &bsdtar)] {
        let mut found = files_under(root);
        // The bundle's own manifest steps aside from `manifest.JSON`.
        let manifest = found
            .remove(b"MANIFEST-1.json".as_slice())
            .unwrap_or_else(|| panic!("{name}: no MANIFEST-1.json"));
        // Its signature beside it.
        found
            .remove(b"MANIFEST-1.json.sig".as_slice())
            .unwrap_or_else(|| panic!("{name}: no MANIFEST-1.json.sig"));
        manifests.push(manifest);
        let shown = |m: &BTreeMap<Vec<u8>, Vec<u8>>| -> Vec<String> {
            m.keys()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        // libarchive turns UTF-8 names into NFC on Linux (as macOS turns
        // them into NFD): canonically equivalent, which is why two paths
        // equal after NFC may not coexist. The others keep the bytes.
        if name == "bsdtar" {
            let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc();
            let expected_nfc: BTreeMap<Vec<u8>, Vec<u8>> = expected
                .iter()
                .map(|(k, v)| {
                    let k = String::from_utf8(k.clone()).unwrap();
                    (nfc.normalize(&k).as_bytes().to_vec(), v.clone())
                })
                .collect();
            assert_eq!(shown(&found), shown(&expected_nfc), "{name}: names");
            assert!(found == expected_nfc, "{name}: some content differs");
            continue;
        }
        assert_eq!(shown(&found), shown(&expected), "{name}: names");
        assert!(found == expected, "{name}: some content differs");
    }
    let listed: Value = serde_json::from_slice(&manifests[0]).unwrap();
    assert!(manifests.iter().all(|m| *m == manifests[0]));
    assert!(listed.to_string().contains("manifest.JSON"), "{listed}");
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
}

/// A presigned upload whose path clashes is refused when it is ingested (the
/// names are claimed by the commit, whichever route writes): the session is
/// rejected with the clash as its reason, nothing is stored.
#[tokio::test]
async fn an_ingested_upload_that_clashes_is_rejected_and_stores_nothing() {
    use artifacts::auth::Principal;
    use artifacts::uploads::{UploadRequest, staging_key};
    use lambda_runtime::{Context, LambdaEvent};

    let env = TestEnv::new().await;
    let wf = "ingest-clash";
    put_ok(&env, wf, "Report.PDF", b"first").await;
    let before = partition(&env, wf).await;

    let data = b"second".to_vec();
    let principal = Principal {
        org: "acme".into(),
        subject: "workflow".into(),
        scopes: vec!["artifacts:read".into(), "artifacts:write".into()],
    };
    let upload = env
        .store
        .create_upload(
            &principal,
            wf,
            UploadRequest {
                path: "report.pdf".into(),
                artifact_type: None,
                content_type: Some("application/pdf".into()),
                size: data.len() as u64,
                sha256: None,
                metadata: None,
                library: None,
                retention_days: None,
                keep_versions: None,
            },
        )
        .await
        .unwrap();
    let staged_version = harness::stage(&upload, data.clone()).await;

    let key = staging_key("acme", &upload.upload_id);
    let mut event: Value = serde_json::from_str(include_str!("../../events/s3-put.json")).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = Value::from(env.resources.bucket.clone());
    s3["bucket"]["arn"] = Value::from(format!("arn:aws:s3:::{}", env.resources.bucket));
    s3["object"]["key"] = Value::from(key);
    s3["object"]["size"] = Value::from(data.len());
    s3["object"]["versionId"] = Value::from(staged_version);
    let report = artifacts_ingest::handler(&env.store, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(report["records"][0]["outcome"], "rejected", "{report}");
    assert!(
        report.to_string().contains("Report.PDF"),
        "the reason names the holder: {report}"
    );
    let mut after = partition(&env, wf).await;
    let mut before = before;
    before.sort();
    after.sort();
    // The session item lives in its own partition; the workflow's is unchanged.
    assert_eq!(before, after);
}
