//! `artifacts link`, `links`, `revoke`: expiring download links (SPEC §8).

use reqwest::Method;
use serde_json::{Value, json};

use crate::Ctx;
use crate::api::{enc, ok};
use crate::args::{LinkArgs, LinksArgs, RevokeArgs};
use crate::error::{CliError, Result};
use crate::refs;
use crate::ui::{self, text};

/// `3600`, `90s`, `15m`, `1h`, `7d` → seconds.
pub fn seconds(s: &str) -> Result<u64> {
    let bad = || {
        CliError::usage(format!(
            "--expires {s:?}: expected e.g. 3600, 90s, 15m, 1h or 7d"
        ))
    };
    let s = s.trim();
    let (number, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

pub async fn link(ctx: &Ctx, args: LinkArgs) -> Result<()> {
    let expires = args.expires.as_deref().map(seconds).transpose()?;
    let id = refs::one_id(&ctx.api, &args.artifact).await?;
    let mut body = json!({});
    if let Some(v) = args.version {
        body["version"] = json!(v);
    }
    if let Some(e) = expires {
        body["expiresIn"] = json!(e);
    }
    let url = format!("/v1/artifacts/{}/links", enc(&id));
    let created = ctx
        .api
        .json(|| ctx.api.request(Method::POST, &url).json(&body))
        .await?;
    let rows = vec![vec![
        text(&created, "linkId"),
        text(&created, "version"),
        text(&created, "expiresAt"),
        text(&created, "url"),
    ]];
    ui::emit(
        ctx.format,
        &created,
        &["LINK", "VERSION", "EXPIRES", "URL"],
        &rows,
    );
    Ok(())
}

pub async fn links(ctx: &Ctx, args: LinksArgs) -> Result<()> {
    let id = refs::one_id(&ctx.api, &args.artifact).await?;
    let url = format!("/v1/artifacts/{}/links", enc(&id));
    let listed = ctx.api.json(|| ctx.api.request(Method::GET, &url)).await?;
    let rows: Vec<Vec<String>> = listed
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| {
            vec![
                text(l, "linkId"),
                text(l, "version"),
                text(l, "createdAt"),
                text(l, "expiresAt"),
                text(l, "uses"),
                text(l, "lastUsedAt"),
            ]
        })
        .collect();
    ui::emit(
        ctx.format,
        &listed,
        &["LINK", "VERSION", "CREATED", "EXPIRES", "USES", "LAST USED"],
        &rows,
    );
    Ok(())
}

pub async fn revoke(ctx: &Ctx, args: RevokeArgs) -> Result<()> {
    let url = format!("/v1/links/{}", enc(&args.link_id));
    ok(ctx
        .api
        .send(|| ctx.api.request(Method::DELETE, &url))
        .await?)
    .await?;
    ui::emit(
        ctx.format,
        &json!({ "revoked": args.link_id }),
        &["REVOKED"],
        &[vec![args.link_id.clone()]],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(seconds("3600").unwrap(), 3600);
        assert_eq!(seconds("90s").unwrap(), 90);
        assert_eq!(seconds("15m").unwrap(), 900);
        assert_eq!(seconds("1h").unwrap(), 3600);
        assert_eq!(seconds("7d").unwrap(), 604_800);
        for bad in ["", "h", "1w", "-1h", "1.5h"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
