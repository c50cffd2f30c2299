//! `artifacts audit`: one artifact's audit trail, or the org's (SPEC §13;
//! both need the admin scope).

use reqwest::Method;
use serde_json::{Value, json};

use crate::Ctx;
use crate::api::{enc, query};
use crate::args::AuditArgs;
use crate::error::Result;
use crate::refs;
use crate::ui::{self, text};

/// Who acted, as one word: the subject, or `link:ID` for a link's holder.
fn actor(record: &Value) -> String {
    let actor = record.get("actor");
    if let Some(sub) = actor.and_then(|a| a.get("sub")).and_then(Value::as_str) {
        sub.to_owned()
    } else if let Some(link) = actor.and_then(|a| a.get("linkId")).and_then(Value::as_str) {
        format!("link:{link}")
    } else {
        String::new()
    }
}

pub async fn run(ctx: &Ctx, args: AuditArgs) -> Result<()> {
    let (path, artifact_id) = match &args.artifact {
        Some(a) => {
            let id = refs::one_id(&ctx.api, a).await?;
            (format!("/v1/artifacts/{}/audit", enc(&id)), Some(id))
        }
        None => ("/v1/audit".to_owned(), None),
    };
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("action", &args.action),
        ("subject", &args.subject),
        ("workflowId", &args.workflow),
        ("after", &args.after),
        ("before", &args.before),
    ] {
        if let Some(v) = value {
            pairs.push((name, v.clone()));
        }
    }
    match (args.limit, args.all) {
        (Some(n), _) => pairs.push(("limit", n.to_string())),
        (None, true) => pairs.push(("limit", "1000".to_owned())),
        (None, false) => {}
    }
    let mut records: Vec<Value> = Vec::new();
    let mut cursor = args.cursor.clone();
    let next = loop {
        let mut all = pairs.clone();
        if let Some(c) = &cursor {
            all.push(("cursor", c.clone()));
        }
        let url = format!("{path}{}", query(&all));
        let page = ctx.api.json(|| ctx.api.request(Method::GET, &url)).await?;
        if let Some(list) = page.get("records").and_then(Value::as_array) {
            records.extend(list.iter().cloned());
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() && args.all => cursor = Some(next.to_owned()),
            Some(next) if !next.is_empty() => break Some(next.to_owned()),
            _ => break None,
        }
    };
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                text(r, "time"),
                text(r, "action"),
                text(r, "outcome"),
                actor(r),
                text(r, "workflowId"),
                text(r, "path"),
                text(r, "version"),
                text(r, "artifactId"),
            ]
        })
        .collect();
    let doc = json!({ "artifactId": artifact_id, "records": records, "nextCursor": next });
    ui::emit(
        ctx.format,
        &doc,
        &[
            "TIME", "ACTION", "OUTCOME", "ACTOR", "WORKFLOW", "PATH", "VERSION", "ID",
        ],
        &rows,
    );
    if let Some(next) = next.filter(|_| !ctx.quiet && ctx.format == crate::args::Format::Table) {
        eprintln!("more records: --cursor {next} (or --all)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_read_as_one_word() {
        assert_eq!(actor(&json!({"actor": {"sub": "u1"}})), "u1");
        assert_eq!(actor(&json!({"actor": {"linkId": "l1"}})), "link:l1");
        assert_eq!(actor(&json!({})), "");
    }
}
