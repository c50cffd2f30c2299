//! Search filters of both listings (SPEC §14): labels, content type,
//! creator, path substring, content hash, library, and the library's sort.
//!
//! Each filter is a DynamoDB filter expression over the Query a listing
//! makes anyway ([`crate::listing`]), except `sha256=`, which picks the
//! Query itself: the content index ([`crate::metadata::CONTENT_INDEX`]).
//! Nothing scans. The expressions read exactly the attributes a version
//! commit (and `PATCH`) writes: labels are the `metadata` map, the library
//! flag is the BOOL `library` (absent: not published); `q=` reads
//! `pathLower`, which the commit derives from the path (a path never
//! changes, so nothing else has to keep it).
//!
//! A selective filter drops most of what a Query evaluates; the listing
//! tops a short page up within a bounded number of Queries and says when
//! that bound ended a page early (`stoppedEarly`, `nextCursor` still exact).

use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::{Error, Result};
use crate::model::{self, MAX_LABEL_VALUE_BYTES};

/// `q=` is at most this many bytes.
pub const MAX_Q_BYTES: usize = 256;
/// `label=` filters one listing may combine.
pub const MAX_LABEL_FILTERS: usize = 10;
/// The query parameters this module reads (besides the repeatable `label`).
pub const PARAMS: &[&str] = &["contentType", "createdBy", "q", "sha256", "library"];
/// The library listing's ordering parameters.
pub const SORT_PARAMS: &[&str] = &["sort", "order"];

/// One `label=` filter: the key exists, or has exactly this value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label {
    pub key: String,
    pub value: Option<String>,
}

impl Label {
    /// `key=value` or `key`; the key is a label key, the value any label value.
    pub fn parse(text: &str) -> Result<Label> {
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (text, None),
        };
        if !model::is_label_key(key) {
            return Err(Error::bad_request(
                "label",
                "must be key=value or key, the key 1-64 characters of a-z 0-9 . _ -",
            ));
        }
        if let Some(v) = value
            && (v.len() > MAX_LABEL_VALUE_BYTES || v.chars().any(char::is_control))
        {
            return Err(Error::bad_request(
                "label",
                format!(
                    "values must be at most {MAX_LABEL_VALUE_BYTES} bytes without control characters"
                ),
            ));
        }
        Ok(Label {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        })
    }
}

/// What the library is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    CreatedAt,
    Path,
    Size,
}

/// The validated search of one listing request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Search {
    /// Sorted and without repeats: every one must match.
    pub labels: Vec<Label>,
    /// Exact, or (when `content_family`) the `type/` that starts it.
    pub content_type: Option<String>,
    pub content_family: bool,
    pub created_by: Option<String>,
    /// Lower-cased.
    pub q: Option<String>,
    /// Lower-case hex.
    pub sha256: Option<String>,
    pub library: Option<bool>,
    pub sort: Sort,
    /// Ascending; `None`: the sort's default (newest first, paths A-Z,
    /// smallest first).
    pub ascending: Option<bool>,
}

/// Filter expression parts (joined with `AND` by the listing).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub clauses: Vec<String>,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, AttributeValue)>,
}

impl Search {
    /// The search of a listing from its single-valued parameters (`get`)
    /// and every `label=` value. `library_route`: the org-wide library,
    /// which alone takes `sort` and `order`.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        labels: &[&str],
        library_route: bool,
    ) -> Result<Search> {
        let mut search = Search::default();
        if labels.len() > MAX_LABEL_FILTERS {
            return Err(Error::bad_request(
                "label",
                format!("at most {MAX_LABEL_FILTERS} label filters"),
            ));
        }
        let mut parsed = labels
            .iter()
            .map(|l| Label::parse(l))
            .collect::<Result<Vec<_>>>()?;
        parsed.sort();
        parsed.dedup();
        search.labels = parsed;

        if let Some(ct) = get("contentType") {
            let bad = || {
                Error::bad_request(
                    "contentType",
                    "must be a media type like text/csv, or type/* like image/*",
                )
            };
            if ct.is_empty() || ct.len() > 255 || ct.chars().any(char::is_control) {
                return Err(bad());
            }
            match ct.strip_suffix("/*") {
                Some(family) => {
                    if family.is_empty() || family.contains('/') || family.contains('*') {
                        return Err(bad());
                    }
                    search.content_type = Some(format!("{}/", family.to_ascii_lowercase()));
                    search.content_family = true;
                }
                None => {
                    if !ct.contains('/') || ct.contains('*') {
                        return Err(bad());
                    }
                    search.content_type = Some(ct.to_owned());
                }
            }
        }
        if let Some(by) = get("createdBy") {
            if by.is_empty() || by.len() > 256 || by.chars().any(char::is_control) {
                return Err(Error::bad_request(
                    "createdBy",
                    "must be 1-256 bytes without control characters",
                ));
            }
            search.created_by = Some(by.to_owned());
        }
        if let Some(q) = get("q") {
            if q.is_empty() || q.len() > MAX_Q_BYTES || q.chars().any(char::is_control) {
                return Err(Error::bad_request(
                    "q",
                    format!("must be 1-{MAX_Q_BYTES} bytes without control characters"),
                ));
            }
            search.q = Some(q.to_lowercase());
        }
        if let Some(h) = get("sha256") {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::bad_request("sha256", "must be 64 hex digits"));
            }
            search.sha256 = Some(h.to_ascii_lowercase());
        }
        search.library = match get("library") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(Error::bad_request("library", "must be true or false")),
        };
        if library_route {
            search.sort = match get("sort") {
                None | Some("createdAt") => Sort::CreatedAt,
                Some("path") => Sort::Path,
                Some("size") => Sort::Size,
                Some(_) => {
                    return Err(Error::bad_request(
                        "sort",
                        "must be createdAt, path or size",
                    ));
                }
            };
            search.ascending = match get("order") {
                None => None,
                Some("asc") => Some(true),
                Some("desc") => Some(false),
                Some(_) => return Err(Error::bad_request("order", "must be asc or desc")),
            };
            // What an index can answer (no scans, SPEC §14): every order
            // has one (crate::metadata), the content index only its own.
            if get("sort").is_some() && search.sha256.is_some() {
                return Err(Error::bad_request(
                    "sort",
                    "sha256 results come in workflow and path order; leave sort out",
                ));
            }
        }
        Ok(search)
    }

    /// Whether newest first / Z-A (a backwards Query).
    pub fn descending(&self) -> bool {
        match self.sort {
            Sort::CreatedAt => self.ascending != Some(true),
            Sort::Path | Sort::Size => self.ascending == Some(false),
        }
    }

    /// The normalized search, for the cursor's check value (order included:
    /// a cursor of one order is no position in the other).
    pub fn binding(&self) -> String {
        serde_json::json!([
            self.labels
                .iter()
                .map(|l| (l.key.as_str(), l.value.as_deref()))
                .collect::<Vec<_>>(),
            self.content_type,
            self.content_family,
            self.created_by,
            self.q,
            self.sha256,
            self.library,
            format!("{:?}", self.sort),
            self.descending(),
        ])
        .to_string()
    }

    /// The filter expression clauses of everything but `sha256` (a key).
    pub fn filter(&self) -> Filter {
        let mut f = Filter::default();
        let s = |v: &str| AttributeValue::S(v.to_owned());
        if !self.labels.is_empty() {
            f.names.push(("#meta".into(), "metadata".into()));
        }
        for (i, label) in self.labels.iter().enumerate() {
            let name = format!("#lk{i}");
            f.names.push((name.clone(), label.key.clone()));
            match &label.value {
                Some(v) => {
                    let value = format!(":lv{i}");
                    f.clauses.push(format!("#meta.{name} = {value}"));
                    f.values.push((value, s(v)));
                }
                None => f.clauses.push(format!("attribute_exists(#meta.{name})")),
            }
        }
        if let Some(ct) = &self.content_type {
            f.names.push(("#ctype".into(), "contentType".into()));
            f.clauses.push(if self.content_family {
                "begins_with(#ctype, :ctype)".into()
            } else {
                "#ctype = :ctype".into()
            });
            f.values.push((":ctype".into(), s(ct)));
        }
        if let Some(by) = &self.created_by {
            f.names.push(("#cby".into(), "createdBy".into()));
            f.clauses.push("#cby = :cby".into());
            f.values.push((":cby".into(), s(by)));
        }
        if let Some(q) = &self.q {
            f.names.push(("#plower".into(), "pathLower".into()));
            f.clauses.push("contains(#plower, :q)".into());
            f.values.push((":q".into(), s(q)));
        }
        if let Some(library) = self.library {
            f.names.push(("#lib".into(), "library".into()));
            f.values.push((":lib".into(), AttributeValue::Bool(true)));
            f.clauses.push(if library {
                "#lib = :lib".into()
            } else {
                "(attribute_not_exists(#lib) OR #lib <> :lib)".into()
            });
        }
        f
    }

    /// Whether `artifact` matches every filter but `sha256` — the rules
    /// [`Search::filter`] gives DynamoDB, for tests to compare against.
    pub fn matches(&self, a: &crate::model::Artifact) -> bool {
        self.labels.iter().all(|l| match &l.value {
            Some(v) => a.metadata.get(&l.key) == Some(v),
            None => a.metadata.contains_key(&l.key),
        }) && self.content_type.as_ref().is_none_or(|ct| {
            if self.content_family {
                a.content_type.starts_with(ct.as_str())
            } else {
                a.content_type == *ct
            }
        }) && self
            .created_by
            .as_ref()
            .is_none_or(|by| a.created_by == *by)
            && self
                .q
                .as_ref()
                .is_none_or(|q| a.path.to_lowercase().contains(q.as_str()))
            && self.sha256.as_ref().is_none_or(|h| a.sha256 == *h)
            && self.library.is_none_or(|l| a.lifecycle.library == l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)], labels: &[&str]) -> Result<Search> {
        let get = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        Search::parse(get, labels, true)
    }

    fn field(r: Result<Search>) -> &'static str {
        match r {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn labels_parse_sort_and_dedupe() {
        let s = parse(&[], &["env=prod", "team", "env=prod", "a.b=x=y", "e="]).unwrap();
        let shown: Vec<_> = s
            .labels
            .iter()
            .map(|l| (l.key.as_str(), l.value.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("a.b", Some("x=y")),
                ("e", Some("")),
                ("env", Some("prod")),
                ("team", None)
            ]
        );
    }

    #[test]
    fn bad_filters_name_their_parameter() {
        for bad in [
            "",
            "=v",
            "Env=prod",
            "a b",
            &format!("k={}", "v".repeat(257)),
        ] {
            assert_eq!(field(parse(&[], &[bad])), "label", "{bad:?}");
        }
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}")).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        assert_eq!(field(parse(&[], &eleven)), "label");
        let long_q: &'static str = Box::leak("q".repeat(257).into_boxed_str());
        let cases: &[(&[(&'static str, &'static str)], &str)] = &[
            (&[("q", long_q)], "q"),
            (&[("q", "")], "q"),
            (&[("contentType", "text")], "contentType"),
            (&[("contentType", "*/*")], "contentType"),
            (&[("contentType", "/*")], "contentType"),
            (&[("contentType", "a/b/*")], "contentType"),
            (&[("createdBy", "")], "createdBy"),
            (&[("sha256", "abc")], "sha256"),
            (&[("sha256", &*"g".repeat(64).leak())], "sha256"),
            (&[("library", "yes")], "library"),
            (&[("sort", "name")], "sort"),
            (
                &[("sort", "size"), ("sha256", &*"a".repeat(64).leak())],
                "sort",
            ),
            (&[("sort", "Size")], "sort"),
            (&[("sort", "")], "sort"),
            (&[("order", "up")], "order"),
        ];
        for (pairs, f) in cases {
            assert_eq!(field(parse(pairs, &[])), *f, "{pairs:?}");
        }
        assert!(parse(&[("q", &*"q".repeat(256).leak())], &[]).is_ok());
    }

    #[test]
    fn filters_are_expressions_over_the_written_attributes() {
        let s = parse(
            &[
                ("contentType", "Image/*"),
                ("createdBy", "u1"),
                ("q", "READ"),
                ("library", "true"),
            ],
            &["env=prod", "team"],
        )
        .unwrap();
        let f = s.filter();
        assert_eq!(
            f.clauses,
            [
                "#meta.#lk0 = :lv0",
                "attribute_exists(#meta.#lk1)",
                "begins_with(#ctype, :ctype)",
                "#cby = :cby",
                "contains(#plower, :q)",
                "#lib = :lib"
            ]
        );
        assert!(
            f.values
                .contains(&(":ctype".into(), AttributeValue::S("image/".into())))
        );
        assert!(
            f.values
                .contains(&(":q".into(), AttributeValue::S("read".into())))
        );
        assert!(Search::default().filter().clauses.is_empty());
    }

    #[test]
    fn order_defaults_and_binding() {
        let newest = parse(&[], &[]).unwrap();
        assert!(newest.descending());
        let oldest = parse(&[("order", "asc")], &[]).unwrap();
        assert!(!oldest.descending());
        assert_ne!(newest.binding(), oldest.binding());
        for sort in ["path", "size"] {
            let asc = parse(&[("sort", sort)], &[]).unwrap();
            assert!(!asc.descending(), "{sort}: smallest / A-Z first");
            let desc = parse(&[("sort", sort), ("order", "desc")], &[]).unwrap();
            assert!(desc.descending());
            assert_ne!(asc.binding(), desc.binding());
            assert_ne!(asc.binding(), newest.binding());
        }
        let size = parse(&[("sort", "size")], &[]).unwrap();
        let path = parse(&[("sort", "path")], &[]).unwrap();
        assert_ne!(size.binding(), path.binding());
    }
}
