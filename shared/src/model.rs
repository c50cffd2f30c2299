//! The domain: artifacts, versions, and the rules their inputs obey (SPEC §3).
//! Everything here is what the API shows; storage internals stay in
//! [`crate::metadata`] and [`crate::content`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};

pub const MAX_PATH_BYTES: usize = 512;
pub const MAX_METADATA_BYTES: usize = 2048;
pub const DEFAULT_ARTIFACT_TYPE: &str = "file";
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// An artifact as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub artifact_id: String,
    pub workflow_id: String,
    pub path: String,
    pub name: String,
    pub artifact_type: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub latest_version: u64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub metadata: BTreeMap<String, String>,
    /// Retention, holds, the library flag and the trash (SPEC §12); see
    /// [`crate::lifecycle`] for the rules.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
}

/// An artifact's lifecycle state, stored on both artifact items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// When the artifact expires (`null`: kept forever). Stored as
    /// `retainUntil`, never as the table's TTL attribute `expiresAt`.
    pub expires_at: Option<String>,
    /// Days each new version restarts the clock with (unless `expiresAt`
    /// was set explicitly).
    pub retention_days: Option<u64>,
    /// Only the N newest versions stay readable.
    pub keep_versions: Option<u64>,
    /// A legal hold: no delete, no expiry.
    pub hold: Option<Hold>,
    /// Published to the org's library (issue 13 owns the filters).
    pub library: bool,
    /// `expiresAt` was set explicitly (a new version keeps it).
    #[serde(skip)]
    pub expires_fixed: bool,
    /// The highest version number ever committed when above
    /// `latestVersion` (0 otherwise): numbers are never reused, even after
    /// the newest version is deleted.
    #[serde(skip)]
    pub highest_version: u64,
    /// In the trash since (and by whom), purged after `purgeAfter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<String>,
}

/// A legal hold (SPEC §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub reason: String,
    pub held_at: String,
    pub held_by: String,
}

impl Artifact {
    /// The number the next version gets.
    pub fn next_version(&self) -> u64 {
        self.latest_version.max(self.lifecycle.highest_version) + 1
    }
}

impl Lifecycle {
    /// When the purge should pick the artifact up, if ever: a trashed one
    /// after `purgeAfter`, an expired one at `expiresAt`; a held one never.
    pub fn due_at(&self) -> Option<&str> {
        if self.hold.is_some() {
            return None;
        }
        self.purge_after.as_deref().or(self.expires_at.as_deref())
    }
}

/// One version of an artifact as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub version: u64,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub created_at: String,
    pub created_by: String,
}

/// Segments a path may have at most. Every segment but the last claims a
/// directory name in the commit transaction (see [`ArtifactPath::claims`]),
/// which DynamoDB caps at 100 actions: 32 keeps a commit far below that.
pub const MAX_PATH_DEPTH: usize = 32;
/// Bytes one segment may have at most: `NAME_MAX` of Linux file systems (and
/// APFS); NTFS allows 255 UTF-16 units, never fewer than 255 UTF-8 bytes.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// The characters Windows refuses in a file name (and actions/upload-artifact
/// refuses in a path); `/` separates segments and `\` is refused on its own.
const FORBIDDEN_CHARS: &[char] = &['"', ':', '<', '>', '|', '*', '?'];

/// Windows device names: a segment whose part before the first `.` (trailing
/// spaces ignored) is one of these, in any ASCII case, is refused — with or
/// without an extension (`CON`, `con.txt`, `Com1.tar.gz`, `LPT²`).
const RESERVED_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// A validated artifact path: safe as a ZIP entry name and as a file name on
/// Linux, macOS and Windows (SPEC §3). Whether it clashes with another path of
/// its workflow is a question for the commit: see [`ArtifactPath::claims`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    /// The path rules of SPEC §3. A broken rule is a 400 on field `path`
    /// saying which rule.
    pub fn parse(path: &str) -> Result<Self> {
        let bad = |reason: String| Err(Error::bad_request("path", reason));
        if path.is_empty() {
            return bad("must not be empty".into());
        }
        if path.len() > MAX_PATH_BYTES {
            return bad(format!("must be at most {MAX_PATH_BYTES} bytes"));
        }
        if path.starts_with('/') {
            return bad("must not start with '/'".into());
        }
        for c in path.chars() {
            if let Some(reason) = char_refusal(c) {
                return bad(reason);
            }
        }
        let segments = path.split('/').count();
        if segments > MAX_PATH_DEPTH {
            return bad(format!(
                "must have at most {MAX_PATH_DEPTH} '/'-separated segments"
            ));
        }
        for segment in path.split('/') {
            if let Some(reason) = segment_refusal(segment) {
                return bad(reason);
            }
        }
        Ok(ArtifactPath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the artifact's `name` and its download filename.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The names this path occupies in its workflow once written: one
    /// [`NameClaim`] per ancestor directory (shortest first), then the file
    /// itself. Paths of one workflow must agree on every name by its
    /// [`fold_key`]: a name is a file of one path or a directory of others,
    /// never both (`a` beside `a/b`); a file name is one path's only
    /// (`README.md` beside `readme.md`); and a directory has one spelling
    /// (`docs/a.md` beside `Docs/b.md` would extract into one directory on
    /// macOS and Windows but two on Linux). The commit enforces this
    /// atomically (see `crate::metadata`).
    pub fn claims(&self) -> Vec<NameClaim<'_>> {
        let mut claims = Vec::new();
        for (i, _) in self.0.match_indices('/') {
            let prefix = &self.0[..i];
            claims.push(NameClaim {
                kind: NameKind::Dir,
                path: prefix,
                key: fold_key(prefix),
            });
        }
        claims.push(NameClaim {
            kind: NameKind::File,
            path: &self.0,
            key: fold_key(&self.0),
        });
        claims
    }
}

/// What a name in a workflow is taken by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// An artifact's path.
    File,
    /// A proper prefix (ending before a `/`) of one or more artifacts' paths.
    Dir,
}

impl NameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::File => "file",
            NameKind::Dir => "dir",
        }
    }
}

/// One name a path occupies: its spelling and its folded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameClaim<'a> {
    pub kind: NameKind,
    /// As written (a prefix of the artifact's path for a directory).
    pub path: &'a str,
    /// [`fold_key`] of `path`.
    pub key: String,
}

/// Why a character may not appear in a path, if it may not.
fn char_refusal(c: char) -> Option<String> {
    use icu_properties::props::GeneralCategory as Gc;
    if c == '\\' {
        return Some("must not contain '\\'".into());
    }
    if FORBIDDEN_CHARS.contains(&c) {
        return Some(format!(
            "must not contain any of \" : < > | * ? (found {c:?})"
        ));
    }
    let what = match icu_properties::CodePointMapData::<Gc>::new().get(c) {
        Gc::Control => "control characters",
        // Bidi controls, zero-width characters, the soft hyphen, the BOM, tag
        // characters...: invisible, and able to make two names look alike.
        Gc::Format => "invisible format characters (bidi controls, zero-width characters)",
        Gc::LineSeparator | Gc::ParagraphSeparator => "line or paragraph separators",
        // Not yet assigned: a later Unicode version may give it a case
        // mapping or a decomposition, changing its fold key.
        Gc::Unassigned => "unassigned code points",
        _ => return None,
    };
    Some(format!(
        "must not contain {what} (found U+{:04X})",
        c as u32
    ))
}

/// Why a segment is refused, if it is.
fn segment_refusal(segment: &str) -> Option<String> {
    match segment {
        "" => return Some("must not contain an empty segment".into()),
        "." | ".." => return Some("must not contain '.' or '..' segments".into()),
        _ => {}
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Some(format!(
            "segments must be at most {MAX_SEGMENT_BYTES} bytes"
        ));
    }
    if segment.ends_with('.') || segment.ends_with(' ') {
        return Some(format!(
            "segments must not end in '.' or a space (Windows drops them): {:?}",
            shown(segment)
        ));
    }
    let stem = segment
        .split('.')
        .next()
        .unwrap_or(segment)
        .trim_end_matches(' ');
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Some(format!(
            "segments must not be a Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9), \
             with or without an extension: {:?}",
            shown(segment)
        ));
    }
    None
}

/// A segment as it may appear in a problem detail (valid characters only
/// reach here, but it may be long).
fn shown(segment: &str) -> String {
    segment.chars().take(64).collect()
}

/// The key under which two names are the same on some common file system:
/// Unicode canonical caseless matching (Unicode §3.13, D145: NFD, full case
/// folding), applied to the full uppercase of the name so that Windows'
/// upper-casing table equates what it does (`ı` with `i`), and returned in
/// NFC. Coarser than any one file system — `ß` and `ss` are one key — never
/// finer: NFC/NFD forms (macOS, HFS+ and APFS) and case variants (macOS and
/// Windows) of one name have one key. Segment by segment, so `/` stays put.
pub fn fold_key(path: &str) -> String {
    let nfd = icu_normalizer::DecomposingNormalizerBorrowed::new_nfd();
    let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc();
    let case = icu_casemap::CaseMapper::new();
    let root = icu_locale_core::LanguageIdentifier::UNKNOWN;
    path.split('/')
        .map(|segment| {
            let decomposed = nfd.normalize(segment);
            let upper = case.uppercase_to_string(&decomposed, &root);
            let upper = nfd.normalize(&upper);
            let folded = case.fold_string(&upper);
            nfc.normalize(&folded).into_owned()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Workflow ids appear in keys and URLs: 1–128 of `[A-Za-z0-9._:-]`.
pub fn validate_workflow_id(id: &str) -> Result<()> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "workflowId",
            "must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

/// Artifact types are short labels (`prd`, `terraform`, `report`): 1–64 of `[A-Za-z0-9._-]`.
pub fn validate_artifact_type(t: &str) -> Result<()> {
    let ok = (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "artifactType",
            "must be 1-64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// A media type as sent in `Content-Type`: `type/subtype` with optional
/// parameters, printable ASCII, at most 255 bytes.
pub fn validate_content_type(ct: &str) -> Result<()> {
    let essence = ct.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let ok = ct.len() <= 255
        && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "contentType",
            "must be a media type like text/plain",
        ))
    }
}

/// User metadata: keys `[a-z0-9_-]{1,64}`, printable values, ≤ 2 KiB in all.
/// Bytes a label (metadata) value may have at most (SPEC §14).
pub const MAX_LABEL_VALUE_BYTES: usize = 256;

/// A label (metadata) key: `[a-z0-9._-]{1,64}` (SPEC §14).
pub fn is_label_key(k: &str) -> bool {
    (1..=64).contains(&k.len())
        && k.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

pub fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<()> {
    let mut total = 0;
    for (k, v) in metadata {
        if !is_label_key(k) {
            return Err(Error::bad_request(
                "metadata",
                "keys must be 1-64 characters of a-z 0-9 . _ -",
            ));
        }
        if v.len() > MAX_LABEL_VALUE_BYTES {
            return Err(Error::bad_request(
                "metadata",
                format!("values must be at most {MAX_LABEL_VALUE_BYTES} bytes"),
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(Error::bad_request(
                "metadata",
                "values must not contain control characters",
            ));
        }
        total += k.len() + v.len();
    }
    if total > MAX_METADATA_BYTES {
        return Err(Error::bad_request(
            "metadata",
            "must be at most 2048 bytes in all",
        ));
    }
    Ok(())
}

/// Artifact ids are 32 lowercase hex digits. Anything else cannot exist, so it
/// is reported exactly like a missing artifact.
pub fn parse_artifact_id(id: &str) -> Result<&str> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(id)
    } else {
        Err(Error::NotFound("artifact"))
    }
}

pub fn new_artifact_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Current time as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// A time as RFC 3339 UTC with millisecond precision, the API's one format.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        let long = ["a".repeat(255), "b".repeat(255)].join("/");
        for ok in [
            "prd.md",
            "terraform/main.tf",
            "a/b/c/d.txt",
            ".hidden",
            "..x/y..z",
            "résumé/日本.txt",
            "with space/and#hash%20+plus.txt",
            "emoji 🦀/naïve café.md",
            "CONSOLE.txt",
            "con-tents/aux_x/nul1",
            "COM10",
            "LPT",
            "a.con",
            "private\u{E000}use",
            " leading space",
            "ends-with-dot./x".trim_end_matches("./x"),
            &long,
            &"a".repeat(255),
            &vec!["s"; MAX_PATH_DEPTH].join("/"),
        ] {
            assert!(ArtifactPath::parse(ok).is_ok(), "{ok:?}");
        }
        assert_eq!(long.len(), 511);
    }

    /// Each broken rule is a 400 on `path` whose reason names the rule.
    #[test]
    fn invalid_paths_name_the_field_and_the_rule() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("/abs", "start with '/'"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            (".", "'.' or '..'"),
            ("..", "'.' or '..'"),
            ("a/../b", "'.' or '..'"),
            ("a/./b", "'.' or '..'"),
            ("../x", "'.' or '..'"),
            ("a\\b", "'\\'"),
            ("nul\0byte", "control"),
            ("tab\there", "control"),
            ("new\nline", "control"),
            ("del\u{7f}", "control"),
            ("c1\u{85}", "control"),
            ("C:/x", "\" : < > | * ?"),
            ("x:stream", "\" : < > | * ?"),
            ("what?.md", "\" : < > | * ?"),
            ("star*.md", "\" : < > | * ?"),
            ("a<b", "\" : < > | * ?"),
            ("a>b", "\" : < > | * ?"),
            ("a|b", "\" : < > | * ?"),
            ("say \"hi\"", "\" : < > | * ?"),
            ("rtl\u{202E}txt.exe", "format"),
            ("iso\u{2066}late", "format"),
            ("zero\u{200B}width", "format"),
            ("zwj\u{200D}", "format"),
            ("lrm\u{200E}", "format"),
            ("bom\u{FEFF}", "format"),
            ("arabic\u{061C}mark", "format"),
            ("soft\u{00AD}hyphen", "format"),
            ("word\u{2060}joiner", "format"),
            ("tag\u{E0041}", "format"),
            ("line\u{2028}sep", "separator"),
            ("para\u{2029}sep", "separator"),
            ("unassigned\u{0378}", "unassigned"),
            ("nonchar\u{FFFF}", "unassigned"),
            ("CON", "device"),
            ("con", "device"),
            ("docs/Con.txt", "device"),
            ("nul.tar.gz", "device"),
            ("PRN", "device"),
            ("aux/x", "device"),
            ("COM1", "device"),
            ("com9.log", "device"),
            ("COM0", "device"),
            ("lpt1", "device"),
            ("LPT¹", "device"),
            ("com³.txt", "device"),
            ("CON .txt", "device"),
            ("conin$", "device"),
            ("trailing.", "end in '.'"),
            ("dir./x", "end in '.'"),
            ("trailing ", "end in '.' or a space"),
            ("dir /x", "end in '.' or a space"),
            ("...", "end in '.'"),
        ];
        for (bad, rule) in cases {
            match ArtifactPath::parse(bad) {
                Err(Error::BadRequest { field, reason }) => {
                    assert_eq!(field, "path", "{bad:?}");
                    assert!(reason.contains(rule), "{bad:?}: {reason}");
                }
                other => panic!("{bad:?} -> {other:?}"),
            }
        }
        for (bad, rule) in [
            ("a".repeat(513), "at most 512 bytes"),
            ("a".repeat(256), "at most 255 bytes"),
            (vec!["s"; MAX_PATH_DEPTH + 1].join("/"), "at most 32"),
        ] {
            match ArtifactPath::parse(&bad) {
                Err(Error::BadRequest { field, reason }) => {
                    assert_eq!(field, "path");
                    assert!(reason.contains(rule), "{reason}");
                }
                other => panic!("{bad:?} -> {other:?}"),
            }
        }
    }

    #[test]
    fn fold_keys_equate_what_some_file_system_equates() {
        let same = [
            ("README.md", "readme.md"),
            ("README.md", "ReadMe.MD"),
            // NFC vs NFD (macOS stores NFD-ish forms; both must be one name).
            ("caf\u{e9}.txt", "cafe\u{301}.txt"),
            ("CAF\u{c9}.txt", "cafe\u{301}.txt"),
            ("\u{212b}ngstr\u{f6}m", "\u{c5}ngstro\u{308}m"),
            // Kelvin sign, long s, final sigma, dotless i (Windows upper-cases it to I).
            ("\u{212a}elvin", "kelvin"),
            ("\u{17f}tate", "state"),
            ("\u{3c3}\u{3c2}", "\u{3a3}\u{3a3}"),
            ("\u{131}ndex", "Index"),
            ("stra\u{df}e", "STRASSE"),
            ("Docs/A.md", "docs/a.md"),
        ];
        for (a, b) in same {
            assert_eq!(fold_key(a), fold_key(b), "{a:?} vs {b:?}");
        }
        for (a, b) in [
            ("a.md", "b.md"),
            ("a/b", "a_b"),
            ("cafe.txt", "caf\u{e9}.txt"),
            ("\u{2460}.txt", "1.txt"), // compatibility forms stay apart (NFC, not NFKC)
        ] {
            assert_ne!(fold_key(a), fold_key(b), "{a:?} vs {b:?}");
        }
        assert_eq!(fold_key("A/B/C"), "a/b/c");
    }

    #[test]
    fn claims_are_every_directory_then_the_file() {
        let p = ArtifactPath::parse("Docs/Sub/README.md").unwrap();
        let claims = p.claims();
        let shown: Vec<_> = claims
            .iter()
            .map(|c| (c.kind, c.path, c.key.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (NameKind::Dir, "Docs", "docs"),
                (NameKind::Dir, "Docs/Sub", "docs/sub"),
                (NameKind::File, "Docs/Sub/README.md", "docs/sub/readme.md"),
            ]
        );
        assert_eq!(ArtifactPath::parse("x").unwrap().claims().len(), 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A segment drawn from a mix of harmless, tricky and forbidden
        /// characters, so both outcomes of `parse` are common.
        fn segment() -> impl Strategy<Value = String> {
            let chars = prop_oneof![
                8 => proptest::char::range('a', 'z'),
                2 => proptest::char::range('A', 'Z'),
                2 => prop::sample::select(vec!['.', ' ', '-', '_', '$', '0', '1', '9', '¹']),
                2 => prop::sample::select(vec!['é', 'É', '\u{301}', 'ß', 'ı', 'K', 'Σ', 'ς', '日', '🦀']),
                1 => prop::sample::select(vec![
                    '"', ':', '<', '>', '|', '*', '?', '\\', '\0', '\n', '\u{7f}',
                    '\u{200B}', '\u{202E}', '\u{FEFF}', '\u{00AD}', '\u{2028}', '\u{0378}',
                ]),
            ];
            prop::collection::vec(chars, 0..12).prop_map(|v| v.into_iter().collect())
        }

        fn path() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => prop::collection::vec(segment(), 1..6).prop_map(|v| v.join("/")),
                1 => prop::sample::select(vec!["CON", "nul", "com1", "LPT²", "aux"])
                    .prop_flat_map(|d| (Just(d), segment()))
                    .prop_map(|(d, ext)| format!("x/{d}.{ext}")),
                1 => any::<String>(),
            ]
        }

        /// An independent statement of the rules, character by character.
        fn obeys_the_rules(p: &str) -> bool {
            let reserved = |seg: &str| {
                let stem = seg.split('.').next().unwrap_or("").trim_end_matches(' ');
                let upper = stem.to_ascii_uppercase();
                matches!(
                    upper.as_str(),
                    "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
                ) || ((upper.starts_with("COM") || upper.starts_with("LPT"))
                    && upper.chars().count() == 4
                    && upper
                        .chars()
                        .nth(3)
                        .is_some_and(|c| c.is_ascii_digit() || "¹²³".contains(c)))
            };
            let bad_char = |c: char| {
                use icu_properties::props::GeneralCategory as Gc;
                "\"\\:<>|*?".contains(c)
                    || matches!(
                        icu_properties::CodePointMapData::<Gc>::new().get(c),
                        Gc::Control
                            | Gc::Format
                            | Gc::LineSeparator
                            | Gc::ParagraphSeparator
                            | Gc::Unassigned
                    )
            };
            (1..=MAX_PATH_BYTES).contains(&p.len())
                && !p.chars().any(bad_char)
                && p.split('/').count() <= MAX_PATH_DEPTH
                && p.split('/').all(|seg| {
                    !seg.is_empty()
                        && seg != "."
                        && seg != ".."
                        && seg.len() <= MAX_SEGMENT_BYTES
                        && !seg.ends_with('.')
                        && !seg.ends_with(' ')
                        && !reserved(seg)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn parse_accepts_exactly_the_rules(p in path()) {
                let parsed = ArtifactPath::parse(&p);
                prop_assert_eq!(parsed.is_ok(), obeys_the_rules(&p), "{:?}: {:?}", p, parsed);
                match parsed {
                    Ok(ok) => prop_assert_eq!(ok.as_str(), p.as_str()),
                    Err(Error::BadRequest { field, .. }) => prop_assert_eq!(field, "path"),
                    Err(other) => prop_assert!(false, "{:?}", other),
                }
            }

            #[test]
            fn a_valid_path_is_safe_for_zip_entries_and_file_names(p in path()) {
                if let Ok(ok) = ArtifactPath::parse(&p) {
                    let s = ok.as_str();
                    prop_assert!(!s.starts_with('/') && !s.contains('\\') && !s.contains(':'));
                    prop_assert!(s.split('/').all(|seg| !seg.is_empty() && seg != ".." && seg != "."));
                    prop_assert_eq!(ok.claims().len(), s.split('/').count());
                    prop_assert_eq!(ok.file_name(), s.rsplit('/').next().unwrap_or(s));
                }
            }

            #[test]
            fn fold_keys_are_stable_and_ignore_case_and_normal_form(p in path()) {
                let key = fold_key(&p);
                // Idempotent: a key is its own key.
                prop_assert_eq!(fold_key(&key), key.clone());
                // Case and normalization variants share the key.
                let nfd = icu_normalizer::DecomposingNormalizerBorrowed::new_nfd();
                let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc();
                prop_assert_eq!(fold_key(&p.to_uppercase()), key.clone());
                prop_assert_eq!(fold_key(&p.to_lowercase()), key.clone());
                prop_assert_eq!(fold_key(&nfd.normalize(&p)), key.clone());
                prop_assert_eq!(fold_key(&nfc.normalize(&p)), key.clone());
                // Segments stay segments.
                prop_assert_eq!(key.split('/').count(), p.split('/').count());
            }
        }
    }

    #[test]
    fn file_name_is_last_segment() {
        assert_eq!(ArtifactPath::parse("a/b/c.tf").unwrap().file_name(), "c.tf");
        assert_eq!(ArtifactPath::parse("c.tf").unwrap().file_name(), "c.tf");
    }

    #[test]
    fn workflow_ids() {
        assert!(validate_workflow_id("run-2024.01:abc_1").is_ok());
        for bad in ["", "a/b", "a#b", "a b", &"x".repeat(129)] {
            assert!(validate_workflow_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_types() {
        for ok in [
            "text/plain",
            "application/vnd.api+json",
            "text/plain; charset=utf-8",
        ] {
            assert!(validate_content_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "text",
            "/plain",
            "text/",
            "te xt/plain",
            "text/plain\r\nX: y",
        ] {
            assert!(validate_content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_limits() {
        let mut m = BTreeMap::new();
        m.insert("owner".to_string(), "team-a".to_string());
        assert!(validate_metadata(&m).is_ok());
        m.insert("big".to_string(), "x".repeat(2048));
        assert!(validate_metadata(&m).is_err());
        let mut bad_key = BTreeMap::new();
        bad_key.insert("Owner".to_string(), "x".to_string());
        assert!(validate_metadata(&bad_key).is_err());
    }

    #[test]
    fn label_keys_and_values() {
        let one = |k: &str, v: &str| validate_metadata(&BTreeMap::from([(k.into(), v.into())]));
        for good in ["env", "app.kubernetes.io", "a-b_c.9", &"k".repeat(64)] {
            assert!(one(good, "v").is_ok(), "{good}");
        }
        for bad in ["", "Env", "a b", "a=b", "a/b", "é", &"k".repeat(65)] {
            assert!(one(bad, "v").is_err(), "{bad:?}");
        }
        assert!(one("k", &"v".repeat(MAX_LABEL_VALUE_BYTES)).is_ok());
        assert!(one("k", &"v".repeat(MAX_LABEL_VALUE_BYTES + 1)).is_err());
        assert!(one("k", &"é".repeat(129)).is_err(), "bytes, not characters");
        // 2 KiB in all.
        let many: BTreeMap<String, String> =
            (0..9).map(|i| (format!("k{i}"), "v".repeat(250))).collect();
        assert!(validate_metadata(&many).is_err());
    }

    #[test]
    fn artifact_ids() {
        let id = new_artifact_id();
        assert_eq!(parse_artifact_id(&id).unwrap(), id);
        for bad in [
            "",
            "xyz",
            &id.to_uppercase(),
            &format!("{id}0"),
            "../../etc/passwd",
        ] {
            assert!(
                matches!(parse_artifact_id(bad), Err(Error::NotFound(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-01-01T00:00:00.000Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }
}
