//! `artifacts rm` and `artifacts restore`: deleting into the trash (or
//! purging, admin) and restoring from it (SPEC §12).

use reqwest::Method;
use serde_json::{Value, json};

use crate::Ctx;
use crate::api::{enc, ok};
use crate::args::{RestoreArgs, RmArgs};
use crate::error::{Kind, Result};
use crate::refs;
use crate::ui::{self, text};

/// Run `one` for every reference; failures are printed per reference
/// (as `get` does) and their kinds returned with what succeeded.
async fn each<'a, F, Fut>(refs: &'a [String], one: F) -> (Vec<Value>, Vec<Kind>)
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<Value>>,
{
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for raw in refs {
        match one(raw).await {
            Ok(v) => done.push(v),
            Err(e) => {
                eprintln!("artifacts: {raw}: {e}");
                failures.push(e.kind);
            }
        }
    }
    (done, failures)
}

pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<Vec<Kind>> {
    let purge = args.purge;
    let (deleted, failures) = each(&args.artifacts, |raw| async move {
        let id = refs::one_id(&ctx.api, raw).await?;
        let mut url = format!("/v1/artifacts/{}", enc(&id));
        if purge {
            url.push_str("?purge=true");
        }
        ok(ctx
            .api
            .send(|| ctx.api.request(Method::DELETE, &url))
            .await?)
        .await?;
        Ok(json!(id))
    })
    .await;
    let rows: Vec<Vec<String>> = deleted
        .iter()
        .map(|id| {
            vec![
                id.as_str().unwrap_or_default().to_owned(),
                purge.to_string(),
            ]
        })
        .collect();
    if !deleted.is_empty() || failures.is_empty() {
        ui::emit(
            ctx.format,
            &json!({ "deleted": deleted, "purged": purge }),
            &["DELETED", "PURGED"],
            &rows,
        );
    }
    Ok(failures)
}

pub async fn restore(ctx: &Ctx, args: RestoreArgs) -> Result<Vec<Kind>> {
    let (restored, failures) = each(&args.artifacts, |raw| async move {
        let id = refs::one_id(&ctx.api, raw).await?;
        let url = format!("/v1/artifacts/{}/restore", enc(&id));
        ctx.api.json(|| ctx.api.request(Method::POST, &url)).await
    })
    .await;
    let rows: Vec<Vec<String>> = restored
        .iter()
        .map(|a| {
            vec![
                text(a, "workflowId"),
                text(a, "path"),
                text(a, "latestVersion"),
                text(a, "artifactId"),
            ]
        })
        .collect();
    if !restored.is_empty() || failures.is_empty() {
        ui::emit(
            ctx.format,
            &json!({ "restored": restored }),
            &["WORKFLOW", "PATH", "VERSION", "ID"],
            &rows,
        );
    }
    Ok(failures)
}
