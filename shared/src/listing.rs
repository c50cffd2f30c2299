//! Listing (SPEC §4, the `list` function): a workflow's artifacts and the
//! org-wide artifact library, page by page, metadata only — never content.
//!
//! # Access patterns (keys: [`crate::metadata`])
//!
//! | route | read | order |
//! |---|---|---|
//! | `GET /v1/workflows/{workflowId}/artifacts` | Query, base table, pk `{org}#W#{workflowId}`, `begins_with(sk, "P#{prefix}")`, strongly consistent | path |
//! | `GET /v1/artifacts` | Query, index [`LIBRARY_INDEX`], gsi1pk `{org}#L`, `gsi1sk` between the dates | newest first |
//! | `GET /v1/artifacts?workflowId=…` | Query, index [`LIBRARY_INDEX`], gsi1pk `{org}#W#{workflowId}`, same | newest first |
//! | `GET /v1/artifacts?sort=size` | Query, index [`SIZE_INDEX`], gsi5pk `{org}#L` (with `workflowId`: `{org}#W#{workflowId}`) | size, then id |
//! | `GET /v1/artifacts?sort=path` | Query, index [`PATH_INDEX`], gsi6pk `{org}#L`, `begins_with(gsi6sk, prefix)` | path, then workflow, then id |
//! | `GET /v1/artifacts?workflowId=…&sort=path` | Query, base table, as the workflow listing | path |
//!
//! `order=desc` reverses an order exactly (a backwards Query), ties included.
//! On the size and path indexes the dates (and, by size, the prefix) are
//! filter expressions over `createdAt` (and `path`).
//!
//! Nothing scans: every read is a Query on one partition that belongs to the
//! caller's org, and every item read is an artifact item that is returned,
//! except those a filter drops (`artifactType` everywhere, `prefix` on the
//! library: DynamoDB filter expressions). A page that a filter left short is
//! topped up with further Queries, sized by the match rate seen so far, at
//! most [`MAX_ROUNDS`] of them; only a listing that matches almost nothing
//! can end a page short, and then it still carries a `nextCursor`.
//!
//! # Totals
//!
//! `count` and `totalSize` describe the whole filtered listing when they are
//! cheap to know, and are `null` (with `totalsExact: false`) when not: the
//! first page computes them from the page itself when the listing fits in
//! it, else by reading on past the page, projected to `size`, for at most
//! [`TOTALS_BUDGET`] more items; a listing that does not end within that
//! budget has no totals. So the first page reads at most the page (see
//! above) plus [`TOTALS_BUDGET`] items, whatever the listing's size. The
//! cursor carries the totals (or their absence) to the following pages,
//! which read only what they return. They are a snapshot as of the first
//! page.
//!
//! Totals kept at write time were weighed and not taken: a per-workflow or
//! per-org counter updated in every version commit would make every write of
//! a workflow (or of an org) contend for one item, and could not answer the
//! filtered listings (`artifactType`, `prefix`, dates) anyway.
//!
//! # Cursors
//!
//! `base64url(json)` of the key to continue after, the totals, and a check
//! value: SHA-256 over the format version, the org, the route and the
//! normalized filters, the key and the totals. A cursor used by another org,
//! with other filters or on the other route, or changed or cut in any way, does
//! not check and is a 400 (field `cursor`). There is no secret to MAC it with
//! (SPEC: none in code or configuration), so a cursor made by someone who
//! knows this scheme would check; it is then only honoured if its key lies in
//! the caller's own org and inside the partition and key range of the query,
//! so it can move within the caller's listing, never out of it.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::metadata::{
    self, ARTIFACT_SK, CONTENT_INDEX, LIBRARY_INDEX, Metadata, PATH_INDEX, SIZE_INDEX, artifact_pk,
    library_pk, workflow_pk,
};
use crate::model::{self, Artifact, MAX_PATH_BYTES, Version};
use crate::search::{self, Search, Sort};
use crate::store::Store;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Queries one page may take to fill up when a filter drops items.
pub const MAX_ROUNDS: usize = 10;
/// Items one of those Queries is asked to evaluate, at most.
const MAX_ROUND_LIMIT: usize = 1000;
/// Artifacts whose versions are read at the same time (`includeVersions`).
const VERSION_READS_IN_FLIGHT: usize = 16;
/// Versions per Query when embedding them.
const VERSIONS_PER_QUERY: u32 = 1000;
/// Items the first page may read beyond itself to learn the totals (one page
/// of the largest size); a longer listing has none (see the module doc).
pub const TOTALS_BUDGET: usize = MAX_LIMIT;
const CURSOR_FORMAT: u8 = 2;

const WORKFLOW_PARAMS: &[&str] = &[
    "artifactType",
    "prefix",
    "includeVersions",
    "limit",
    "cursor",
];
const LIBRARY_PARAMS: &[&str] = &[
    "artifactType",
    "prefix",
    "includeVersions",
    "limit",
    "cursor",
    "workflowId",
    "createdAfter",
    "createdBefore",
    "state",
];

/// What is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// `GET /v1/workflows/{workflowId}/artifacts`: by path.
    Workflow(String),
    /// `GET /v1/artifacts`: newest first, optionally within one workflow.
    Library { workflow_id: Option<String> },
}

/// A validated listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub listing: Listing,
    pub artifact_type: Option<String>,
    pub prefix: Option<String>,
    /// Only artifacts created strictly after / before these instants (UTC).
    pub created_after: Option<OffsetDateTime>,
    pub created_before: Option<OffsetDateTime>,
    pub limit: usize,
    pub include_versions: bool,
    pub cursor: Option<String>,
    /// `state=deleted` on the library: the org's trash (SPEC §12), newest
    /// deletion first; `createdAfter`/`createdBefore` then bound `deletedAt`.
    pub trash: bool,
    /// The search filters and the library's order (SPEC §14).
    pub search: Search,
    /// Queries a page may take to fill up ([`MAX_ROUNDS`]; lower only in
    /// measurements of what the bound does).
    pub max_rounds: usize,
}

impl ListQuery {
    /// `GET /v1/workflows/{workflowId}/artifacts` with its query parameters.
    pub fn workflow<'a>(
        workflow_id: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        model::validate_workflow_id(workflow_id)?;
        Self::parse(Listing::Workflow(workflow_id.to_owned()), params)
    }

    /// `GET /v1/artifacts` with its query parameters.
    pub fn library<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        Self::parse(Listing::Library { workflow_id: None }, params)
    }

    /// Every parameter is checked: a name the route does not know, a repeated
    /// one, or a bad value is a 400 naming it (a misspelt filter must not
    /// silently list everything).
    fn parse<'a>(
        mut listing: Listing,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let allowed = match listing {
            Listing::Workflow(_) => WORKFLOW_PARAMS,
            Listing::Library { .. } => LIBRARY_PARAMS,
        };
        let mut params: Vec<(&str, &str)> = params.into_iter().collect();
        params.sort();
        let mut given: BTreeMap<&'static str, &str> = BTreeMap::new();
        let mut labels = Vec::new();
        let library_route = matches!(listing, Listing::Library { .. });
        for (name, value) in params {
            // The one repeatable parameter (SPEC §14).
            if name == "label" {
                labels.push(value);
                continue;
            }
            let known = allowed
                .iter()
                .chain(search::PARAMS)
                .chain(if library_route {
                    search::SORT_PARAMS
                } else {
                    &[]
                })
                .find(|&&a| a == name);
            let Some(&known) = known else {
                return Err(Error::bad_request(
                    "query",
                    format!(
                        "unknown parameter {}; this route takes {}",
                        shown(name),
                        allowed.join(", ")
                    ),
                ));
            };
            if given.insert(known, value).is_some() {
                return Err(Error::bad_request(known, "must be given at most once"));
            }
        }

        if let Some(id) = given.get("workflowId") {
            model::validate_workflow_id(id)?;
            listing = Listing::Library {
                workflow_id: Some((*id).to_owned()),
            };
        }
        let artifact_type = given.get("artifactType").map(|t| (*t).to_owned());
        if let Some(t) = &artifact_type {
            model::validate_artifact_type(t)?;
        }
        let prefix = given.get("prefix").map(|p| (*p).to_owned());
        if let Some(p) = &prefix
            && (p.is_empty() || p.len() > MAX_PATH_BYTES || p.chars().any(char::is_control))
        {
            return Err(Error::bad_request(
                "prefix",
                "must be 1-512 bytes without control characters",
            ));
        }
        let include_versions = match given.get("includeVersions").copied() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(Error::bad_request(
                    "includeVersions",
                    "must be true or false",
                ));
            }
        };
        let limit = match given.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| v.bytes().all(|b| b.is_ascii_digit()) && (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::bad_request(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let created_after = given
            .get("createdAfter")
            .map(|v| parse_instant("createdAfter", v))
            .transpose()?;
        let created_before = given
            .get("createdBefore")
            .map(|v| parse_instant("createdBefore", v))
            .transpose()?;
        if let (Some(after), Some(before)) = (created_after, created_before)
            && before <= after
        {
            return Err(Error::bad_request(
                "createdBefore",
                "must be later than createdAfter",
            ));
        }
        let cursor = given.get("cursor").map(|c| (*c).to_owned());
        let trash = match given.get("state").copied() {
            None | Some("live") => false,
            Some("deleted") if !given.contains_key("workflowId") => true,
            Some("deleted") => {
                return Err(Error::bad_request(
                    "state",
                    "the trash (state=deleted) is listed org-wide, without workflowId",
                ));
            }
            Some(_) => return Err(Error::bad_request("state", "must be live or deleted")),
        };
        let search = Search::parse(|name| given.get(name).copied(), &labels, library_route)?;
        if trash && search.sort != Sort::CreatedAt {
            return Err(Error::bad_request(
                "sort",
                "the trash (state=deleted) is ordered by deletion time; leave sort out",
            ));
        }
        Ok(ListQuery {
            trash,
            listing,
            artifact_type,
            prefix,
            created_after,
            created_before,
            limit,
            include_versions,
            cursor,
            search,
            max_rounds: MAX_ROUNDS,
        })
    }
}

/// A parameter name as it may appear in a problem detail.
pub(crate) fn shown(name: &str) -> String {
    let cut: String = name.chars().take(64).collect();
    format!("{cut:?}")
}

/// An RFC 3339 date-time (any offset) or a full date (midnight UTC), as UTC.
fn parse_instant(field: &'static str, value: &str) -> Result<OffsetDateTime> {
    let bad = || {
        Error::bad_request(
            field,
            "must be an RFC 3339 date-time like 2026-01-31T12:00:00Z or a date like 2026-01-31",
        )
    };
    let date_only = time::macros::format_description!("[year]-[month]-[day]");
    let parsed = if value.len() == 10 {
        Date::parse(value, date_only).map(|d| d.midnight().assume_utc())
    } else if value
        .as_bytes()
        .get(10)
        .is_some_and(|b| matches!(b, b'T' | b't'))
    {
        // (`time` would take any byte between the date and the time.)
        OffsetDateTime::parse(value, &Rfc3339)
    } else {
        return Err(bad());
    }
    .map_err(|_| bad())?;
    let utc = parsed.checked_to_offset(UtcOffset::UTC).ok_or_else(bad)?;
    // createdAt is kept as a 4-digit-year string; outside that range the
    // string order would not be time order.
    if !(1..=9999).contains(&utc.year()) {
        return Err(bad());
    }
    Ok(utc)
}

/// `t` in the stored `createdAt` format (UTC), rounded down to the millisecond.
fn floor_ms(t: OffsetDateTime) -> String {
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format).unwrap_or_default()
}

/// Library index sort-key bounds `(lower, upper)` for createdAt strictly
/// after / before the given instants. createdAt has millisecond precision:
/// `createdAt > t` ⟺ `createdAt > floor(t)`, `createdAt < t` ⟺ `createdAt < ceil(t)`.
/// `{time}#~` sorts after every key of that time (ids are hex), `{time}#`
/// before all of them. As `before > after` (checked when parsing),
/// `ceil(before) ≥ floor(after)` and so `lower < upper`: a valid `BETWEEN`.
fn date_bounds(
    after: Option<OffsetDateTime>,
    before: Option<OffsetDateTime>,
) -> (Option<String>, Option<String>) {
    let lower = after.map(|t| format!("{}#~", floor_ms(t)));
    let upper = before.and_then(|t| {
        let sub_ms = t.nanosecond() % 1_000_000;
        let ceil = if sub_ms == 0 {
            Some(t)
        } else {
            t.checked_add(time::Duration::nanoseconds(i64::from(1_000_000 - sub_ms)))
        };
        // Past the last representable millisecond: no upper bound needed.
        ceil.filter(|c| c.year() <= 9999)
            .map(|c| format!("{}#", floor_ms(c)))
    });
    (lower, upper)
}

/// One artifact of a page, with its versions (newest first) when asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub artifact: Artifact,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<Version>>,
}

/// DynamoDB work a page took (for logs and the benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub queries: u64,
    /// Items DynamoDB evaluated (`ScannedCount`, before filters) plus
    /// version items read for `includeVersions`.
    pub items_read: u64,
    /// The page ended short because it took its Queries' bound, not
    /// because the listing ended.
    pub stopped_early: bool,
}

/// The response of both listing routes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage {
    pub artifacts: Vec<Listed>,
    /// Where the next page starts; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Sum of the latest versions' sizes over the whole filtered listing;
    /// `null` when that is not cheap to know (see the module doc).
    pub total_size: Option<u64>,
    /// Number of artifacts in the whole filtered listing; `null` likewise.
    pub count: Option<u64>,
    /// Whether `count` and `totalSize` are given (and then exact).
    pub totals_exact: bool,
    /// Whether this page is short (or empty) because a selective filter
    /// took the Queries a page may make; more may match after
    /// `nextCursor`, which is exact either way.
    pub stopped_early: bool,
    #[serde(skip)]
    pub stats: ReadStats,
}

type Key = BTreeMap<String, String>;
type RawItem = HashMap<String, AttributeValue>;

/// How one listing reads DynamoDB.
#[derive(Debug, Clone)]
struct Plan {
    org: String,
    index: Option<&'static str>,
    key_condition: String,
    values: Vec<(&'static str, String)>,
    filter: Option<String>,
    forward: bool,
    consistent: bool,
    /// The key attributes of an item in what is queried (cursor keys).
    key_names: &'static [&'static str],
    /// The partition the query reads (`pk` or `gsi1pk`).
    partition: String,
    /// For the base table: what every `sk` starts with.
    sk_prefix: Option<String>,
    /// For the library index: `gsi1sk` bounds (exclusive-by-construction).
    lower: Option<String>,
    upper: Option<String>,
    /// Which item kind the library partition holds.
    library_of_workflow: bool,
    /// The normalized query, for the cursor check value.
    binding: Vec<Option<String>>,
    /// Names and values of the search filters (and of key conditions
    /// beyond `values`).
    names: Vec<(String, String)>,
    more_values: Vec<(String, AttributeValue)>,
}

impl Plan {
    fn new(org: &str, q: &ListQuery) -> Plan {
        let mut values = Vec::new();
        let mut filters = Vec::new();
        if let Some(t) = &q.artifact_type {
            filters.push("artifactType = :type");
            values.push((":type", t.clone()));
        }
        let (lower, upper) = date_bounds(q.created_after, q.created_before);
        if !q.trash {
            // The lifecycle gate, as a filter (see crate::lifecycle).
            let (live, now) = crate::lifecycle::listing_filter(OffsetDateTime::now_utc());
            filters.push(live);
            values.push((":lcnow", now));
        }
        let found = q.search.filter();
        filters.extend(found.clauses.iter().map(String::as_str));
        let mut binding = vec![
            Some(if q.trash { "trash" } else { "live" }.to_owned()),
            Some(CURSOR_FORMAT.to_string()),
            Some(org.to_owned()),
            Some(
                match &q.listing {
                    Listing::Workflow(_) => "workflow",
                    Listing::Library { .. } => "library",
                }
                .to_owned(),
            ),
            match &q.listing {
                Listing::Workflow(w) => Some(w.clone()),
                Listing::Library { workflow_id } => workflow_id.clone(),
            },
            q.artifact_type.clone(),
            q.prefix.clone(),
            lower.clone(),
            upper.clone(),
        ];
        binding.push(Some(q.search.binding()));
        let (names, more_values) = (found.names.clone(), found.values.clone());
        if let Some(sha256) = &q.search.sha256 {
            return Plan::by_content(
                org,
                q,
                sha256,
                (filters, values, binding),
                (names, more_values),
            );
        }
        // The library by size, and by path across workflows: their indexes.
        let by_size = matches!(q.listing, Listing::Library { .. }) && q.search.sort == Sort::Size;
        let org_wide_path = matches!(q.listing, Listing::Library { workflow_id: None })
            && q.search.sort == Sort::Path;
        if by_size || org_wide_path {
            return Plan::by_order(org, q, (filters, values, binding), (names, more_values));
        }
        // The library of one workflow by path: its base-table partition,
        // as the workflow listing reads it (dates become filters).
        let by_path = match &q.listing {
            Listing::Workflow(w) => Some(w),
            Listing::Library {
                workflow_id: Some(w),
            } if q.search.sort == Sort::Path => Some(w),
            Listing::Library { .. } => None,
        };
        let mut more_values = more_values;
        if by_path.is_some() && matches!(q.listing, Listing::Library { .. }) {
            date_filters(&lower, &upper, &mut filters, &mut more_values);
        }
        match by_path {
            Some(workflow_id) => {
                let partition = workflow_pk(org, workflow_id);
                let sk_prefix = metadata::path_sk(q.prefix.as_deref().unwrap_or(""));
                values.push((":pk", partition.clone()));
                values.push((":sk", sk_prefix.clone()));
                Plan {
                    org: org.to_owned(),
                    index: None,
                    key_condition: "pk = :pk AND begins_with(sk, :sk)".into(),
                    values,
                    filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
                    forward: matches!(q.listing, Listing::Workflow(_)) || !q.search.descending(),
                    consistent: true,
                    key_names: &["pk", "sk"],
                    partition,
                    sk_prefix: Some(sk_prefix),
                    lower: None,
                    upper: None,
                    library_of_workflow: false,
                    binding,
                    names,
                    more_values,
                }
            }
            None => {
                let workflow_id = match &q.listing {
                    Listing::Library { workflow_id } => workflow_id,
                    Listing::Workflow(_) => &None,
                };
                let partition = match workflow_id {
                    Some(w) => workflow_pk(org, w),
                    None if q.trash => metadata::trash_pk(org),
                    None => library_pk(org),
                };
                if let Some(p) = &q.prefix {
                    filters.push("begins_with(#path, :prefix)");
                    values.push((":prefix", p.clone()));
                }
                values.push((":pk", partition.clone()));
                let range = match (&lower, &upper) {
                    (Some(lo), Some(hi)) => {
                        values.push((":lo", lo.clone()));
                        values.push((":hi", hi.clone()));
                        " AND gsi1sk BETWEEN :lo AND :hi"
                    }
                    (Some(lo), None) => {
                        values.push((":lo", lo.clone()));
                        " AND gsi1sk > :lo"
                    }
                    (None, Some(hi)) => {
                        values.push((":hi", hi.clone()));
                        " AND gsi1sk < :hi"
                    }
                    (None, None) => "",
                };
                Plan {
                    org: org.to_owned(),
                    index: Some(LIBRARY_INDEX),
                    key_condition: format!("gsi1pk = :pk{range}"),
                    values,
                    filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
                    forward: !q.search.descending(),
                    // Index reads are eventually consistent (SPEC §5 allows it
                    // off the read-after-write path).
                    consistent: false,
                    key_names: &["gsi1pk", "gsi1sk", "pk", "sk"],
                    partition,
                    sk_prefix: None,
                    lower,
                    upper,
                    library_of_workflow: workflow_id.is_some(),
                    binding,
                    names,
                    more_values,
                }
            }
        }
    }

    /// Whether `key` is a position inside this listing: the caller's org,
    /// the queried partition, the key range, and the item kind it holds.
    fn owns(&self, key: &Key) -> bool {
        let names_match = key.len() == self.key_names.len()
            && self.key_names.iter().all(|n| key.contains_key(*n));
        if !names_match {
            return false;
        }
        let get = |name: &str| key.get(name).map(String::as_str).unwrap_or_default();
        match self.index {
            Some(SIZE_INDEX) => {
                let sort = get("gsi5sk");
                let Some((size, id)) = sort.split_once('#') else {
                    return false;
                };
                let item_ok = if self.library_of_workflow {
                    get("pk") == self.partition && get("sk").starts_with("P#")
                } else {
                    get("pk") == artifact_pk(&self.org, id) && get("sk") == ARTIFACT_SK
                };
                get("gsi5pk") == self.partition
                    && size.len() == 20
                    && size.bytes().all(|b| b.is_ascii_digit())
                    && model::parse_artifact_id(id).is_ok()
                    && item_ok
            }
            Some(PATH_INDEX) => {
                let sort = get("gsi6sk");
                let mut parts = sort.rsplitn(3, metadata::PATH_ORDER_SEP);
                let (Some(id), Some(workflow_id), Some(path)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return false;
                };
                get("gsi6pk") == self.partition
                    && model::parse_artifact_id(id).is_ok()
                    && model::validate_workflow_id(workflow_id).is_ok()
                    && self
                        .sk_prefix
                        .as_deref()
                        .is_none_or(|p| sort.starts_with(p))
                    && get("pk") == workflow_pk(&self.org, workflow_id)
                    && get("sk") == metadata::path_sk(path)
            }
            Some(CONTENT_INDEX) => {
                let sort = get("gsi3sk");
                let Some((workflow_id, path)) = sort.split_once('/') else {
                    return false;
                };
                get("gsi3pk") == self.partition
                    && self
                        .sk_prefix
                        .as_deref()
                        .is_none_or(|p| sort.starts_with(p))
                    && model::validate_workflow_id(workflow_id).is_ok()
                    && get("pk") == workflow_pk(&self.org, workflow_id)
                    && get("sk") == metadata::path_sk(path)
            }
            None => {
                get("pk") == self.partition
                    && self
                        .sk_prefix
                        .as_deref()
                        .is_some_and(|p| get("sk").starts_with(p))
            }
            Some(_) => {
                let sort = get("gsi1sk");
                let Some((created_at, id)) = sort.rsplit_once('#') else {
                    return false;
                };
                let item_ok = if self.library_of_workflow {
                    get("pk") == self.partition && get("sk").starts_with("P#")
                } else {
                    get("pk") == artifact_pk(&self.org, id) && get("sk") == ARTIFACT_SK
                };
                get("gsi1pk") == self.partition
                    && model::parse_artifact_id(id).is_ok()
                    && created_at.len() == "2026-01-01T00:00:00.000Z".len()
                    && self.lower.as_deref().is_none_or(|lo| sort > lo)
                    && self.upper.as_deref().is_none_or(|hi| sort < hi)
                    && item_ok
            }
        }
    }

    async fn query(
        &self,
        md: &Metadata,
        start: Option<&Key>,
        limit: Option<usize>,
        sizes_only: bool,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput> {
        let mut q = md
            .client()
            .query()
            .table_name(md.table())
            .set_index_name(self.index.map(str::to_owned))
            .key_condition_expression(&self.key_condition)
            .scan_index_forward(self.forward)
            .consistent_read(self.consistent)
            .set_exclusive_start_key(start.map(|k| {
                k.iter()
                    .map(|(n, v)| (n.clone(), AttributeValue::S(v.clone())))
                    .collect()
            }))
            .set_limit(limit.map(|l| l.min(i32::MAX as usize) as i32))
            .set_filter_expression(self.filter.clone());
        for (name, value) in &self.values {
            q = q.expression_attribute_values(*name, AttributeValue::S(value.clone()));
        }
        if self.filter.as_deref().is_some_and(|f| f.contains("#path")) {
            q = q.expression_attribute_names("#path", "path");
        }
        for (name, attribute) in &self.names {
            q = q.expression_attribute_names(name, attribute);
        }
        for (name, value) in &self.more_values {
            q = q.expression_attribute_values(name, value.clone());
        }
        if sizes_only {
            q = q
                .projection_expression("#size")
                .expression_attribute_names("#size", "size");
        }
        q.send().await.map_err(|e| Error::upstream("dynamodb", e))
    }

    /// Up to `limit` matching items after `start`, and the key to continue
    /// after when more may remain.
    async fn page(
        &self,
        md: &Metadata,
        start: Option<Key>,
        limit: usize,
        rounds: usize,
        stats: &mut ReadStats,
    ) -> Result<(Vec<RawItem>, Option<Key>)> {
        // One item more than the page: a full page then knows whether it is
        // the last one, so the last page never comes back empty.
        let want = limit + 1;
        let mut items: Vec<RawItem> = Vec::new();
        let mut start = start;
        let mut ask = want;
        let mut evaluated = 0u64;
        for _ in 0..rounds.max(1) {
            let out = self.query(md, start.as_ref(), Some(ask), false).await?;
            stats.queries += 1;
            let scanned = u64::try_from(out.scanned_count()).unwrap_or_default();
            stats.items_read += scanned;
            evaluated += scanned;
            items.extend(out.items.unwrap_or_default());
            start = out
                .last_evaluated_key
                .map(|k| key_strings(&k))
                .transpose()?;
            if items.len() >= want || start.is_none() {
                break;
            }
            ask = next_round_limit(want - items.len(), evaluated, items.len(), ask);
        }
        stats.stopped_early = items.len() < want && start.is_some();
        if items.len() > limit {
            items.truncate(limit);
            let last = items.last().ok_or_else(|| malformed("page"))?;
            let key = self
                .key_names
                .iter()
                .map(|n| match last.get(*n) {
                    Some(AttributeValue::S(v)) => Ok(((*n).to_owned(), v.clone())),
                    _ => Err(malformed(n)),
                })
                .collect::<Result<Key>>()?;
            return Ok((items, Some(key)));
        }
        Ok((items, start))
    }

    /// `(count, totalSize)` of what matches from `start` (exclusive) to the
    /// end of the listing, reading `size` only — if the end is within
    /// `budget` items read; `None` otherwise.
    async fn totals_after(
        &self,
        md: &Metadata,
        start: Key,
        budget: usize,
        stats: &mut ReadStats,
    ) -> Result<Option<(u64, u64)>> {
        let (mut count, mut size) = (0u64, 0u64);
        let mut start = start;
        let mut left = budget;
        while left > 0 {
            let out = self.query(md, Some(&start), Some(left), true).await?;
            stats.queries += 1;
            let scanned = u64::try_from(out.scanned_count()).unwrap_or_default();
            stats.items_read += scanned;
            left = left.saturating_sub(usize::try_from(scanned).unwrap_or(usize::MAX));
            for item in out.items() {
                count += 1;
                size += match item.get("size") {
                    Some(AttributeValue::N(n)) => {
                        n.parse::<u64>().map_err(|_| malformed("size"))?
                    }
                    _ => return Err(malformed("size")),
                };
            }
            match out.last_evaluated_key {
                Some(k) => start = key_strings(&k)?,
                None => return Ok(Some((count, size))),
            }
        }
        Ok(None)
    }
}

/// Filters, key values and cursor binding of a plan being built.
type PlanParts<'a> = (
    Vec<&'a str>,
    Vec<(&'static str, String)>,
    Vec<Option<String>>,
);
/// Expression attribute names and values of the search filters.
type SearchParts = (Vec<(String, String)>, Vec<(String, AttributeValue)>);

impl Plan {
    /// `sha256=` (SPEC §14): the content index's partition of that hash,
    /// narrowed to a workflow (and path prefix) by its sort key when the
    /// listing names one; in workflow and path order. The other filters,
    /// dates included, are filter expressions.
    fn by_content(
        org: &str,
        q: &ListQuery,
        sha256: &str,
        (mut filters, mut values, binding): PlanParts<'_>,
        (names, mut more_values): SearchParts,
    ) -> Plan {
        let partition = metadata::content_pk(org, sha256);
        let (lower, upper) = date_bounds(q.created_after, q.created_before);
        date_filters(&lower, &upper, &mut filters, &mut more_values);
        let workflow_id = match &q.listing {
            Listing::Workflow(w) => Some(w),
            Listing::Library { workflow_id } => workflow_id.as_ref(),
        };
        let sk_prefix =
            workflow_id.map(|w| metadata::content_sk(w, q.prefix.as_deref().unwrap_or("")));
        // Without a workflow a path prefix is a filter (the library's is
        // already one).
        if workflow_id.is_none()
            && q.prefix.is_some()
            && !filters.contains(&"begins_with(#path, :prefix)")
        {
            filters.push("begins_with(#path, :prefix)");
            values.push((":prefix", q.prefix.clone().unwrap_or_default()));
        }
        values.push((":pk", partition.clone()));
        let key_condition = match &sk_prefix {
            Some(p) => {
                values.push((":sk", p.clone()));
                "gsi3pk = :pk AND begins_with(gsi3sk, :sk)"
            }
            None => "gsi3pk = :pk",
        };
        Plan {
            org: org.to_owned(),
            index: Some(CONTENT_INDEX),
            key_condition: key_condition.into(),
            values,
            filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
            forward: true,
            consistent: false,
            key_names: &["gsi3pk", "gsi3sk", "pk", "sk"],
            partition,
            sk_prefix,
            lower: None,
            upper: None,
            library_of_workflow: false,
            binding,
            names,
            more_values,
        }
    }
}

impl Plan {
    /// `sort=size` (either listing of the library) and `sort=path` across
    /// workflows: the size index ([`SIZE_INDEX`]) of the org's by-id items
    /// or of the workflow's by-path items, or the path index
    /// ([`PATH_INDEX`]) of the org's by-path items. A path prefix is a key
    /// condition on the path index (its sort key starts with the path) and
    /// a filter on the size index; dates and the search are filters.
    fn by_order(
        org: &str,
        q: &ListQuery,
        (mut filters, mut values, binding): PlanParts<'_>,
        (names, mut more_values): SearchParts,
    ) -> Plan {
        let (lower, upper) = date_bounds(q.created_after, q.created_before);
        date_filters(&lower, &upper, &mut filters, &mut more_values);
        let workflow_id = match &q.listing {
            Listing::Library { workflow_id } => workflow_id.as_deref(),
            Listing::Workflow(w) => Some(w.as_str()),
        };
        let by_size = q.search.sort == Sort::Size;
        let partition = match (by_size, workflow_id) {
            (true, Some(w)) => workflow_pk(org, w),
            _ => library_pk(org),
        };
        values.push((":pk", partition.clone()));
        let (index, key_names, key_condition, sk_prefix): (_, &'static [&'static str], _, _) =
            if by_size {
                if let Some(p) = &q.prefix {
                    filters.push("begins_with(#path, :prefix)");
                    values.push((":prefix", p.clone()));
                }
                (
                    SIZE_INDEX,
                    &["gsi5pk", "gsi5sk", "pk", "sk"],
                    "gsi5pk = :pk",
                    None,
                )
            } else {
                let condition = match &q.prefix {
                    Some(p) => {
                        values.push((":sk", p.clone()));
                        "gsi6pk = :pk AND begins_with(gsi6sk, :sk)"
                    }
                    None => "gsi6pk = :pk",
                };
                (
                    PATH_INDEX,
                    &["gsi6pk", "gsi6sk", "pk", "sk"],
                    condition,
                    q.prefix.clone(),
                )
            };
        Plan {
            org: org.to_owned(),
            index: Some(index),
            key_condition: key_condition.into(),
            values,
            filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
            forward: !q.search.descending(),
            consistent: false,
            key_names,
            partition,
            sk_prefix,
            lower: None,
            upper: None,
            library_of_workflow: by_size && workflow_id.is_some(),
            binding,
            names,
            more_values,
        }
    }
}

/// Date bounds (see [`date_bounds`]) as filters on `createdAt`, for reads
/// whose key is not the creation time.
fn date_filters(
    lower: &Option<String>,
    upper: &Option<String>,
    filters: &mut Vec<&str>,
    values: &mut Vec<(String, AttributeValue)>,
) {
    if let Some(lo) = lower {
        // "{floor(after)}#~": createdAt > floor(after).
        let at = lo.trim_end_matches("#~").to_owned();
        filters.push("createdAt > :cafter");
        values.push((":cafter".into(), AttributeValue::S(at)));
    }
    if let Some(hi) = upper {
        // "{ceil(before)}#": createdAt < ceil(before).
        let at = hi.trim_end_matches('#').to_owned();
        filters.push("createdAt < :cbefore");
        values.push((":cbefore".into(), AttributeValue::S(at)));
    }
}

/// How many items the next Query should evaluate to find `missing` more
/// matches, at the rate `matched`/`evaluated` seen so far (with a margin);
/// four times the last ask while nothing matched. Never below `missing`
/// (every evaluated item may match), never above [`MAX_ROUND_LIMIT`] unless
/// `missing` itself is.
fn next_round_limit(missing: usize, evaluated: u64, matched: usize, previous: usize) -> usize {
    let estimate = if matched == 0 {
        previous.saturating_mul(4)
    } else {
        let needed = (missing as u64).saturating_mul(evaluated) / matched as u64;
        usize::try_from(needed.saturating_add(needed / 4)).unwrap_or(usize::MAX)
    };
    estimate.clamp(missing, MAX_ROUND_LIMIT.max(missing))
}

fn key_strings(key: &HashMap<String, AttributeValue>) -> Result<Key> {
    key.iter()
        .map(|(n, v)| match v {
            AttributeValue::S(s) => Ok((n.clone(), s.clone())),
            _ => Err(malformed(n)),
        })
        .collect()
}

fn malformed(what: &str) -> Error {
    Error::Integrity(format!("listing read a malformed {what}"))
}

/// The cursor's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// Format version.
    v: u8,
    /// The key to continue after.
    k: Key,
    /// count and totalSize of the listing, from its first page (`None`:
    /// not known).
    n: Option<u64>,
    s: Option<u64>,
    /// Check value: binds everything above to the org and the query.
    c: String,
}

impl Cursor {
    fn new(plan: &Plan, key: Key, count: Option<u64>, total_size: Option<u64>) -> Cursor {
        let mut cursor = Cursor {
            v: CURSOR_FORMAT,
            k: key,
            n: count,
            s: total_size,
            c: String::new(),
        };
        cursor.c = cursor.check(plan);
        cursor
    }

    fn check(&self, plan: &Plan) -> String {
        let canonical = serde_json::json!([plan.binding, self.v, self.k, self.n, self.s]);
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..16])
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The cursor `text`, if it was made for exactly this org and query and
    /// points inside it. Every failure is the same 400.
    fn decode(text: &str, plan: &Plan) -> Result<Cursor> {
        let bad = || Error::bad_request("cursor", "is not a cursor of this listing");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let expected = cursor.check(plan);
        // Nothing secret here, so a plain comparison.
        if cursor.v == CURSOR_FORMAT && cursor.c == expected && plan.owns(&cursor.k) {
            Ok(cursor)
        } else {
            Err(bad())
        }
    }
}

impl Store {
    /// One page of a workflow's artifacts or of the org's library.
    pub async fn list(&self, principal: &Principal, query: &ListQuery) -> Result<ListPage> {
        principal.require(Scope::Read)?;
        let plan = Plan::new(&principal.org, query);
        let resume = query
            .cursor
            .as_deref()
            .map(|c| Cursor::decode(c, &plan))
            .transpose()?;
        let mut stats = ReadStats::default();
        let (items, next_key) = plan
            .page(
                &self.metadata,
                resume.as_ref().map(|c| c.k.clone()),
                query.limit,
                query.max_rounds,
                &mut stats,
            )
            .await?;
        let artifacts = items
            .into_iter()
            .map(metadata::artifact_of)
            .collect::<Result<Vec<_>>>()?;
        let on_page = (
            artifacts.len() as u64,
            artifacts.iter().map(|a| a.size).sum::<u64>(),
        );
        let (count, total_size) = match (&resume, &next_key) {
            (Some(c), _) => (c.n, c.s),
            (None, None) => (Some(on_page.0), Some(on_page.1)),
            (None, Some(after)) => {
                match plan
                    .totals_after(&self.metadata, after.clone(), TOTALS_BUDGET, &mut stats)
                    .await?
                {
                    Some((n, size)) => (Some(on_page.0 + n), Some(on_page.1 + size)),
                    None => (None, None),
                }
            }
        };
        let next_cursor = next_key.map(|k| Cursor::new(&plan, k, count, total_size).encode());
        let artifacts = if query.include_versions {
            let versions = all_versions(&self.metadata, &principal.org, &artifacts).await?;
            stats.queries += versions.iter().map(|(q, _)| q).sum::<u64>();
            stats.items_read += versions.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
            artifacts
                .into_iter()
                .zip(versions)
                .map(|(artifact, (_, v))| Listed {
                    artifact,
                    versions: Some(v),
                })
                .collect()
        } else {
            artifacts
                .into_iter()
                .map(|artifact| Listed {
                    artifact,
                    versions: None,
                })
                .collect()
        };
        Ok(ListPage {
            artifacts,
            next_cursor,
            total_size,
            count,
            totals_exact: count.is_some() && total_size.is_some(),
            stopped_early: stats.stopped_early,
            stats,
        })
    }
}

/// What one run of [`Store::backfill_order_keys`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderBackfill {
    /// Library index items evaluated (the bound counts these).
    pub examined: u64,
    /// Artifacts given their size and path order keys.
    pub written: u64,
    /// Artifacts that changed meanwhile (their own write keyed them, or
    /// they went to the trash): left alone.
    pub skipped: u64,
    /// Whether the org's library holds no artifact without the keys (as of
    /// the run's start).
    pub done: bool,
    /// Where the next run continues (pass it back as `after`); `None` when
    /// done.
    pub next: Option<BTreeMap<String, String>>,
}

impl Store {
    /// Give the live artifacts of `org` written before the size and path
    /// indexes existed their keys (`gsi5` on both artifact items, `gsi6` on
    /// the by-path item), evaluating at most `max_items` library index
    /// items after `after` (the previous run's `next`); run again until
    /// `done`. A Query of the org's library
    /// partition (`gsi1`, live artifacts only) filtered to items without
    /// `gsi5pk`; each artifact is one transaction of two conditional
    /// updates (still at the version read, still live, still unkeyed), so a
    /// concurrent version, delete or restore wins and the artifact is
    /// skipped (that write keyed it, or it is in the trash).
    pub async fn backfill_order_keys(
        &self,
        org: &str,
        after: Option<BTreeMap<String, String>>,
        max_items: u64,
    ) -> Result<OrderBackfill> {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update, builders::UpdateBuilder};
        let md = &self.metadata;
        let mut report = OrderBackfill::default();
        let mut start: Option<RawItem> = after.map(|k| {
            k.into_iter()
                .map(|(n, v)| (n, AttributeValue::S(v)))
                .collect()
        });
        while report.examined < max_items {
            let budget = (max_items - report.examined).min(MAX_ROUND_LIMIT as u64);
            let out = md
                .client()
                .query()
                .table_name(md.table())
                .index_name(LIBRARY_INDEX)
                .key_condition_expression("gsi1pk = :pk")
                .filter_expression("attribute_not_exists(gsi5pk)")
                .expression_attribute_values(":pk", AttributeValue::S(library_pk(org)))
                .limit(i32::try_from(budget).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::upstream("dynamodb", e))?;
            report.examined += u64::try_from(out.scanned_count()).unwrap_or_default();
            for item in out.items() {
                let artifact = metadata::artifact_of(item.clone())?;
                let [by_id, by_path] = metadata::artifact_items(org, &artifact);
                let set = |item: &RawItem, names: &[&str]| -> Result<UpdateBuilder> {
                    let mut update = Update::builder()
                        .table_name(md.table())
                        .set_key(Some(
                            ["pk", "sk"]
                                .iter()
                                .filter_map(|k| Some(((*k).to_owned(), item.get(*k)?.clone())))
                                .collect(),
                        ))
                        .update_expression(format!(
                            "SET {}",
                            names
                                .iter()
                                .map(|n| format!("{n} = :{n}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                        .expression_attribute_values(
                            ":seen",
                            AttributeValue::N(artifact.latest_version.to_string()),
                        )
                        .expression_attribute_values(
                            ":id",
                            AttributeValue::S(artifact.artifact_id.clone()),
                        );
                    for n in names {
                        let value = item.get(*n).ok_or_else(|| malformed(n))?;
                        update = update.expression_attribute_values(format!(":{n}"), value.clone());
                    }
                    Ok(update)
                };
                let by_id_update = set(&by_id, &["gsi5pk", "gsi5sk"])?.condition_expression(
                    "artifactId = :id AND latestVersion = :seen \
                     AND attribute_not_exists(deletedAt) AND attribute_not_exists(gsi5pk)",
                );
                let by_path_update = set(&by_path, &["gsi5pk", "gsi5sk", "gsi6pk", "gsi6sk"])?
                    .condition_expression("artifactId = :id AND latestVersion = :seen");
                let actions = [by_id_update, by_path_update]
                    .into_iter()
                    .map(|u| {
                        u.build()
                            .map(|u| TransactWriteItem::builder().update(u).build())
                            .map_err(|e| Error::upstream("dynamodb", e))
                    })
                    .collect::<Result<Vec<_>>>()?;
                match self.transact(actions).await? {
                    None => report.written += 1,
                    Some(_) => report.skipped += 1,
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    report.done = true;
                    return Ok(report);
                }
            }
        }
        report.next = start.as_ref().map(key_strings).transpose()?;
        Ok(report)
    }
}

/// Every version (newest first) up to the listed `latestVersion` of each
/// artifact, with the Queries each took; a few artifacts at a time.
async fn all_versions(
    md: &Metadata,
    org: &str,
    artifacts: &[Artifact],
) -> Result<Vec<(u64, Vec<Version>)>> {
    let mut results: Vec<Option<(u64, Vec<Version>)>> = vec![None; artifacts.len()];
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < artifacts.len() || !tasks.is_empty() {
        while next < artifacts.len() && tasks.len() < VERSION_READS_IN_FLIGHT {
            let (md, org, a) = (md.clone(), org.to_owned(), &artifacts[next]);
            let (index, id, latest) = (next, a.artifact_id.clone(), a.latest_version);
            tasks.spawn(async move { (index, versions_of(&md, &org, &id, latest).await) });
            next += 1;
        }
        match tasks.join_next().await {
            Some(Ok((index, result))) => results[index] = Some(result?),
            Some(Err(e)) => return Err(Error::upstream("task", e)),
            None => break,
        }
    }
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| malformed("version list")))
        .collect()
}

/// Versions `latest` down to 1 of one artifact, and the Queries it took.
async fn versions_of(
    md: &Metadata,
    org: &str,
    artifact_id: &str,
    latest: u64,
) -> Result<(u64, Vec<Version>)> {
    let mut all = Vec::new();
    let mut before = latest.saturating_add(1);
    let mut queries = 0;
    // Each round returns versions strictly below `before`: at most
    // latest / VERSIONS_PER_QUERY + 1 rounds.
    loop {
        let page = md
            .versions(org, artifact_id, VERSIONS_PER_QUERY, Some(before))
            .await?;
        queries += page.queries;
        all.extend(page.versions);
        match page.next_before {
            Some(b) if b < before => before = b,
            _ => return Ok((queries, all)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        pairs.to_vec()
    }

    fn field_of(result: Result<ListQuery>) -> &'static str {
        match result {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    fn instant(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn defaults_and_every_parameter() {
        let q = ListQuery::workflow("wf-1", params(&[])).unwrap();
        assert_eq!(q.listing, Listing::Workflow("wf-1".into()));
        assert_eq!((q.limit, q.include_versions), (DEFAULT_LIMIT, false));
        assert_eq!((q.artifact_type, q.prefix, q.cursor), (None, None, None));

        let q = ListQuery::library(params(&[
            ("workflowId", "run:7"),
            ("artifactType", "terraform"),
            ("prefix", "infra/"),
            ("includeVersions", "true"),
            ("limit", "1000"),
            ("createdAfter", "2026-01-01"),
            ("createdBefore", "2026-02-01T01:00:00+01:00"),
            ("cursor", "abc"),
        ]))
        .unwrap();
        assert_eq!(
            q.listing,
            Listing::Library {
                workflow_id: Some("run:7".into())
            }
        );
        assert_eq!(q.artifact_type.as_deref(), Some("terraform"));
        assert_eq!(q.prefix.as_deref(), Some("infra/"));
        assert!(q.include_versions);
        assert_eq!(q.limit, 1000);
        assert_eq!(q.created_after, Some(instant("2026-01-01T00:00:00Z")));
        assert_eq!(q.created_before, Some(instant("2026-02-01T00:00:00Z")));
        assert_eq!(q.cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("limit", "0")], "limit"),
            (&[("limit", "1001")], "limit"),
            (&[("limit", "-1")], "limit"),
            (&[("limit", "+5")], "limit"),
            (&[("limit", "ten")], "limit"),
            (&[("limit", "")], "limit"),
            (&[("limit", "99999999999999999999999")], "limit"),
            (&[("includeVersions", "yes")], "includeVersions"),
            (&[("includeVersions", "TRUE")], "includeVersions"),
            (&[("artifactType", "a b")], "artifactType"),
            (&[("artifactType", "")], "artifactType"),
            (&[("prefix", "")], "prefix"),
            (&[("prefix", "a\nb")], "prefix"),
            (&[("workflowId", "a/b")], "workflowId"),
            (&[("createdAfter", "yesterday")], "createdAfter"),
            (&[("createdAfter", "2026-13-01")], "createdAfter"),
            (&[("createdAfter", "2026-01-01T25:00:00Z")], "createdAfter"),
            (&[("createdAfter", "2026-01-01T00:00:00")], "createdAfter"),
            (&[("createdAfter", "2026-01-01X00:00:00Z")], "createdAfter"),
            (&[("createdAfter", "2026-01-01 00:00:00Z")], "createdAfter"),
            (
                &[("createdAfter", "2026-01-01T00:00:00 01:00")],
                "createdAfter",
            ),
            (
                &[("createdAfter", "0000-01-01T00:00:00+01:00")],
                "createdAfter",
            ),
            (&[("createdBefore", "1767225600")], "createdBefore"),
            (
                &[
                    ("createdAfter", "2026-01-02"),
                    ("createdBefore", "2026-01-01"),
                ],
                "createdBefore",
            ),
            (
                &[
                    ("createdAfter", "2026-01-01"),
                    ("createdBefore", "2026-01-01T00:00:00Z"),
                ],
                "createdBefore",
            ),
            (&[("limit", "5"), ("limit", "6")], "limit"),
            (&[("colour", "red")], "query"),
            (&[("artifacttype", "prd")], "query"),
        ];
        for (pairs, field) in cases {
            assert_eq!(
                field_of(ListQuery::library(pairs.iter().copied())),
                *field,
                "{pairs:?}"
            );
        }
        // The workflow route takes no workflowId or dates of its own.
        for name in ["workflowId", "createdAfter", "createdBefore"] {
            assert_eq!(
                field_of(ListQuery::workflow("wf", [(name, "2026-01-01")])),
                "query"
            );
        }
        assert_eq!(
            field_of(ListQuery::workflow("bad/id", params(&[]))),
            "workflowId"
        );
    }

    #[test]
    fn date_bounds_are_exact_at_millisecond_precision() {
        let at = |s: &str| Some(instant(s));
        let (lo, hi) = date_bounds(
            at("2026-01-01T00:00:00.0005Z"),
            at("2026-01-02T00:00:00.0005+00:00"),
        );
        assert_eq!(lo.as_deref(), Some("2026-01-01T00:00:00.000Z#~"));
        assert_eq!(hi.as_deref(), Some("2026-01-02T00:00:00.001Z#"));
        let id = "0123456789abcdef0123456789abcdef";
        let key = |t: &str| metadata::library_sk(t, id);
        let lo = lo.unwrap();
        let hi = hi.unwrap();
        // createdAt > 00:00:00.0005 ⟺ createdAt ≥ 00:00:00.001
        assert!(key("2026-01-01T00:00:00.000Z") < lo);
        assert!(key("2026-01-01T00:00:00.001Z") > lo);
        // createdAt < 00:00:00.0005 (next day) ⟺ createdAt ≤ 00:00:00.000
        assert!(key("2026-01-02T00:00:00.000Z") < hi);
        assert!(key("2026-01-02T00:00:00.001Z") > hi);
        // Exact instants are strict on both sides.
        let (lo, hi) = date_bounds(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:00.002Z"));
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        assert!(key("2026-01-01T00:00:00.000Z") < lo);
        assert!(key("2026-01-01T00:00:00.001Z") > lo && key("2026-01-01T00:00:00.001Z") < hi);
        assert!(key("2026-01-01T00:00:00.002Z") > hi);
        // Offsets are normalized to UTC.
        let (lo, _) = date_bounds(at("2026-01-01T01:30:00+01:30"), None);
        assert_eq!(lo.as_deref(), Some("2026-01-01T00:00:00.000Z#~"));
        // Narrower than a millisecond: a valid BETWEEN (lower ≤ upper) that
        // no millisecond createdAt falls into.
        let (lo, hi) = date_bounds(
            at("2026-01-01T00:00:00.0001Z"),
            at("2026-01-01T00:00:00.0002Z"),
        );
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        assert!(lo <= hi);
        for t in ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.001Z"] {
            assert!(!(key(t) > lo && key(t) < hi), "{t}");
        }
    }

    #[test]
    fn round_sizes_grow_with_the_filter_and_stay_bounded() {
        // Nothing matched yet: grow fourfold up to the cap.
        assert_eq!(next_round_limit(101, 101, 0, 101), 404);
        assert_eq!(next_round_limit(101, 505, 0, 404), MAX_ROUND_LIMIT);
        // 1 in 10 matched: ask for ~10x what is missing, with a margin.
        assert_eq!(next_round_limit(50, 100, 10, 100), 625);
        // Everything matched: exactly what is missing.
        assert_eq!(next_round_limit(7, 100, 100, 100), 8);
        assert!(next_round_limit(7, 100, 100, 100) >= 7);
        // Never below what is missing, even past the cap.
        assert_eq!(next_round_limit(1001, 10, 10, 1), 1001);
    }

    fn page_key(org: &str, id: &str, created: &str) -> Key {
        Key::from([
            ("gsi1pk".into(), library_pk(org)),
            ("gsi1sk".into(), metadata::library_sk(created, id)),
            ("pk".into(), artifact_pk(org, id)),
            ("sk".into(), ARTIFACT_SK.into()),
        ])
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";
    const T: &str = "2026-01-01T00:00:00.000Z";

    #[test]
    fn cursors_round_trip_for_their_query_only() {
        let q = ListQuery::library([("artifactType", "prd")]).unwrap();
        let plan = Plan::new("acme", &q);
        let cursor = Cursor::new(&plan, page_key("acme", ID, T), Some(2500), Some(123_456));
        let text = cursor.encode();
        assert_eq!(Cursor::decode(&text, &plan).unwrap(), cursor);

        let others = [
            Plan::new("other", &q),
            Plan::new(
                "acme",
                &ListQuery::library([("artifactType", "tf")]).unwrap(),
            ),
            Plan::new("acme", &ListQuery::library([]).unwrap()),
            Plan::new(
                "acme",
                &ListQuery::library([("artifactType", "prd"), ("prefix", "a")]).unwrap(),
            ),
            Plan::new(
                "acme",
                &ListQuery::library([("artifactType", "prd"), ("createdAfter", "2020-01-01")])
                    .unwrap(),
            ),
            Plan::new(
                "acme",
                &ListQuery::library([("artifactType", "prd"), ("workflowId", "wf")]).unwrap(),
            ),
            Plan::new(
                "acme",
                &ListQuery::workflow("wf", [("artifactType", "prd")]).unwrap(),
            ),
        ];
        for other in &others {
            assert!(Cursor::decode(&text, other).is_err(), "{:?}", other.binding);
        }
        // Limit and includeVersions may change between pages.
        let wider = ListQuery::library([
            ("artifactType", "prd"),
            ("limit", "7"),
            ("includeVersions", "true"),
        ])
        .unwrap();
        assert!(Cursor::decode(&text, &Plan::new("acme", &wider)).is_ok());
    }

    #[test]
    fn any_change_or_cut_of_a_cursor_is_rejected() {
        let q = ListQuery::workflow("wf-1", [("prefix", "docs/")]).unwrap();
        let plan = Plan::new("acme", &q);
        let key = Key::from([
            ("pk".into(), workflow_pk("acme", "wf-1")),
            ("sk".into(), "P#docs/a.md".into()),
        ]);
        let text = Cursor::new(&plan, key, Some(10), Some(99)).encode();
        assert!(Cursor::decode(&text, &plan).is_ok());
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..text.len() {
            for replacement in alphabet.chars().step_by(7) {
                let mut changed = text.clone().into_bytes();
                if changed[i] == replacement as u8 {
                    continue;
                }
                changed[i] = replacement as u8;
                let changed = String::from_utf8(changed).unwrap();
                assert!(Cursor::decode(&changed, &plan).is_err(), "{i}: {changed}");
            }
            assert!(Cursor::decode(&text[..i], &plan).is_err(), "cut at {i}");
        }
        for garbage in ["", "!!", "e30", &URL_SAFE_NO_PAD.encode("null")] {
            assert!(Cursor::decode(garbage, &plan).is_err(), "{garbage}");
        }
    }

    #[test]
    fn a_well_formed_cursor_is_honoured_only_inside_the_listing() {
        // A forger who knows the scheme can make the check value; the key
        // must still lie in the caller's own partition and range.
        let lib = Plan::new("acme", &ListQuery::library([]).unwrap());
        let wf = Plan::new(
            "acme",
            &ListQuery::workflow("wf", [("prefix", "a/")]).unwrap(),
        );
        let dated = Plan::new(
            "acme",
            &ListQuery::library([("createdAfter", "2026-06-01")]).unwrap(),
        );
        let forged = |plan: &Plan, key: Key| Cursor::new(plan, key, None, None).encode();
        let wf_key = |org: &str, wf: &str, sk: &str| {
            Key::from([
                ("pk".into(), workflow_pk(org, wf)),
                ("sk".into(), sk.into()),
            ])
        };

        assert!(Cursor::decode(&forged(&lib, page_key("acme", ID, T)), &lib).is_ok());
        assert!(Cursor::decode(&forged(&wf, wf_key("acme", "wf", "P#a/x")), &wf).is_ok());
        let mut mismatched = page_key("acme", ID, T);
        mismatched.insert("pk".into(), artifact_pk("acme", &"f".repeat(32)));
        let mut extra = page_key("acme", ID, T);
        extra.insert("x".into(), "y".into());
        let mut missing = page_key("acme", ID, T);
        missing.remove("sk");
        let rejected: Vec<(&Plan, Key)> = vec![
            (&lib, page_key("evil", ID, T)),
            (&lib, mismatched),
            (&lib, extra),
            (&lib, missing),
            (&lib, page_key("acme", "not-an-id", T)),
            (&lib, page_key("acme", ID, "yesterday")),
            (&dated, page_key("acme", ID, T)),
            (&wf, wf_key("evil", "wf", "P#a/x")),
            (&wf, wf_key("acme", "other", "P#a/x")),
            (&wf, wf_key("acme", "wf", "P#b/x")),
            (&wf, wf_key("acme", "wf", "V#0000000001")),
            (&wf, page_key("acme", ID, T)),
        ];
        for (plan, key) in rejected {
            assert!(
                Cursor::decode(&forged(plan, key.clone()), plan).is_err(),
                "{key:?}"
            );
        }
    }

    #[test]
    fn library_keys_are_written_on_both_artifact_items() {
        let a = Artifact {
            artifact_id: ID.into(),
            workflow_id: "wf-1".into(),
            path: "docs/prd.md".into(),
            name: "prd.md".into(),
            artifact_type: "prd".into(),
            content_type: "text/markdown".into(),
            size: 42,
            sha256: "ab".repeat(32),
            latest_version: 3,
            created_at: T.into(),
            created_by: "u1".into(),
            updated_at: T.into(),
            updated_by: "u2".into(),
            metadata: BTreeMap::new(),
            lifecycle: Default::default(),
        };
        let [by_id, by_path] = metadata::artifact_items("acme", &a);
        let s = |item: &RawItem, n: &str| match item.get(n) {
            Some(AttributeValue::S(v)) => v.clone(),
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(s(&by_id, "gsi1pk"), "acme#L");
        assert_eq!(s(&by_path, "gsi1pk"), "acme#W#wf-1");
        assert_eq!(s(&by_id, "gsi1sk"), format!("{T}#{ID}"));
        assert_eq!(s(&by_path, "gsi1sk"), format!("{T}#{ID}"));
        // Each is a position its own listing accepts.
        let lib = Plan::new("acme", &ListQuery::library([]).unwrap());
        let wf = Plan::new(
            "acme",
            &ListQuery::library([("workflowId", "wf-1")]).unwrap(),
        );
        let key_of = |item: &RawItem, plan: &Plan| -> Key {
            plan.key_names
                .iter()
                .map(|n| ((*n).to_owned(), s(item, n)))
                .collect()
        };
        assert!(lib.owns(&key_of(&by_id, &lib)));
        assert!(wf.owns(&key_of(&by_path, &wf)));
        assert!(!lib.owns(&key_of(&by_path, &lib)));
        assert!(!wf.owns(&key_of(&by_id, &wf)));
        assert_eq!(metadata::artifact_of(by_id.clone()).unwrap(), a);

        // The size and path orders: each item is a position of its listing
        // and of no other.
        assert_eq!(s(&by_id, "gsi5pk"), "acme#L");
        assert_eq!(s(&by_path, "gsi5pk"), "acme#W#wf-1");
        assert_eq!(s(&by_id, "gsi5sk"), format!("00000000000000000042#{ID}"));
        assert_eq!(s(&by_path, "gsi5sk"), s(&by_id, "gsi5sk"));
        assert_eq!(s(&by_path, "gsi6pk"), "acme#L");
        assert_eq!(
            s(&by_path, "gsi6sk"),
            format!("docs/prd.md\u{1}wf-1\u{1}{ID}")
        );
        assert!(!by_id.contains_key("gsi6pk"));
        let plan = |params: &[(&'static str, &'static str)]| {
            Plan::new("acme", &ListQuery::library(params.iter().copied()).unwrap())
        };
        let size = plan(&[("sort", "size")]);
        let size_wf = plan(&[("sort", "size"), ("workflowId", "wf-1")]);
        let size_other = plan(&[("sort", "size"), ("workflowId", "wf-2")]);
        let path = plan(&[("sort", "path"), ("order", "desc")]);
        let path_docs = plan(&[("sort", "path"), ("prefix", "docs/")]);
        let path_src = plan(&[("sort", "path"), ("prefix", "src/")]);
        assert_eq!(size.index, Some(SIZE_INDEX));
        assert_eq!(path.index, Some(PATH_INDEX));
        assert!(size.forward && !path.forward);
        assert!(size.owns(&key_of(&by_id, &size)));
        assert!(!size.owns(&key_of(&by_path, &size)));
        assert!(size_wf.owns(&key_of(&by_path, &size_wf)));
        assert!(!size_other.owns(&key_of(&by_path, &size_other)));
        assert!(path.owns(&key_of(&by_path, &path)));
        assert!(path_docs.owns(&key_of(&by_path, &path_docs)));
        assert!(!path_src.owns(&key_of(&by_path, &path_src)));
        assert_eq!(
            path_docs.key_condition,
            "gsi6pk = :pk AND begins_with(gsi6sk, :sk)"
        );
        // The sort of one key is not a position of the other sort.
        let mut forged = key_of(&by_path, &path);
        forged.insert("sk".into(), "P#other.md".into());
        assert!(!path.owns(&forged));
        let mut forged = key_of(&by_id, &size);
        forged.insert("gsi5sk".into(), format!("42#{ID}"));
        assert!(!size.owns(&forged));

        // A trashed artifact leaves the size order (its by-path item is
        // deleted, taking the path order with it).
        let mut trashed = a.clone();
        trashed.lifecycle.deleted_at = Some(T.into());
        let [by_id, _] = metadata::artifact_items("acme", &trashed);
        assert!(!by_id.contains_key("gsi5pk") && !by_id.contains_key("gsi5sk"));
        assert_eq!(
            metadata::LIVE_ONLY_INDEX_KEYS,
            "gsi5pk, gsi5sk",
            "what the delete removes"
        );
    }

    #[test]
    fn size_and_path_keys_sort_as_numbers_and_as_path_then_run() {
        let size = |n: u64| metadata::size_sk(n, ID);
        assert!(size(9) < size(10) && size(10) < size(u64::MAX));
        assert_eq!(size(u64::MAX).len(), 20 + 1 + 32);
        let key = |p: &str, w: &str| metadata::path_order_sk(p, w, ID);
        // Path first: "a" before "a b" and "a!" (as in P#{path}), then the run.
        assert!(key("a", "zz") < key("a b", "aa"));
        assert!(key("a", "zz") < key("a!", "aa"));
        assert!(key("a", "run-1") < key("a", "run-2"));
        assert!(key("a/b", "w") < key("a/c", "w"));
        // Sort is refused on the trash, where deletion time orders.
        for sort in ["size", "path"] {
            assert_eq!(
                field_of(ListQuery::library([("state", "deleted"), ("sort", sort)])),
                "sort"
            );
        }
        assert!(ListQuery::library([("state", "deleted"), ("sort", "createdAt")]).is_ok());
    }
}
