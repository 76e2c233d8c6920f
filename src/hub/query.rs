//! Listings and views: `listPlugins`/`listCases` (filters, full text, sort orders, keyset
//! cursors), `getPlugin`/`getCase`, statistics.
//!
//! Every query joins the attached account database: submissions of accounts that are
//! deactivated, taken down or gone are left out, and handles come from there.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};

use super::store::Kind;
use super::{Error, HubIndex, Result};

/// Most words of a full-text query.
const MAX_TERMS: usize = 8;

/// Listing order. Every order ends with the URI, so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Featured first, then most downloads (plugins) or newest (cases).
    Featured,
    /// Most downloads first (plugins only).
    Downloads,
    /// Newest `createdAt` first.
    New,
    /// By name (plugins) or title (cases), case-insensitively.
    Name,
}

impl Sort {
    pub fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "featured" => Sort::Featured,
            "downloads" => Sort::Downloads,
            "new" => Sort::New,
            "name" => Sort::Name,
            _ => return None,
        })
    }
}

/// Which moderation status to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Approved,
    Pending,
    Rejected,
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<StatusFilter> {
        Some(match s {
            "approved" => StatusFilter::Approved,
            "pending" => StatusFilter::Pending,
            "rejected" => StatusFilter::Rejected,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Approved => "approved",
            StatusFilter::Pending => "pending",
            StatusFilter::Rejected => "rejected",
        }
    }
}

/// A listing request (already authorised).
#[derive(Debug, Clone)]
pub struct ListOptions {
    pub category: Option<String>,
    pub q: Option<String>,
    pub sort: Sort,
    pub status: StatusFilter,
    /// 1..=100.
    pub limit: u32,
    pub cursor: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when the page is full (there may be more).
    pub cursor: Option<String>,
}

/// Who is asking (for the visibility of submissions that are not approved).
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub did: Option<String>,
    pub moderator: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Author {
    pub did: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// `cn.pocketbase.hub.defs#pluginView`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    pub uri: String,
    pub cid: String,
    pub slug: String,
    pub author: Author,
    pub record: Value,
    pub category: String,
    pub status: String,
    pub featured: bool,
    pub downloads: i64,
    pub indexed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    pub screenshots: Vec<String>,
}

/// `cn.pocketbase.hub.defs#caseView`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseView {
    pub uri: String,
    pub cid: String,
    pub author: Author,
    pub record: Value,
    pub category: String,
    pub status: String,
    pub featured: bool,
    pub indexed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    pub screenshots: Vec<String>,
}

/// `getStats`' figures (approved, visible submissions).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub plugins: i64,
    pub cases: i64,
    pub downloads: i64,
    pub plugin_categories: Vec<CategoryCount>,
    pub case_categories: Vec<CategoryCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_downloads: Option<Vec<DayCount>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    pub category: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    pub day: String,
    pub count: i64,
}

/// A row of either table, before it becomes a view.
struct Row_ {
    uri: String,
    cid: String,
    did: String,
    handle: Option<String>,
    rkey: String,
    record: String,
    category: String,
    status: String,
    featured: bool,
    downloads: i64,
    indexed_at: String,
    image: Option<String>,
    screenshots: String,
    created_at: String,
    name_key: String,
}

fn read_row(row: &SqliteRow) -> Result<Row_, sqlx::Error> {
    Ok(Row_ {
        uri: row.try_get(0)?,
        cid: row.try_get(1)?,
        did: row.try_get(2)?,
        handle: row.try_get(3)?,
        rkey: row.try_get(4)?,
        record: row.try_get(5)?,
        category: row.try_get(6)?,
        status: row.try_get(7)?,
        featured: row.try_get::<i64, _>(8)? == 1,
        downloads: row.try_get(9)?,
        indexed_at: row.try_get(10)?,
        image: row.try_get(11)?,
        screenshots: row.try_get(12)?,
        created_at: row.try_get(13)?,
        name_key: row.try_get(14)?,
    })
}

fn select(kind: Kind) -> &'static str {
    match kind {
        Kind::Plugin => {
            "SELECT p.uri, p.cid, p.did, a.handle, p.rkey, p.record, p.category, \
             p.status, p.featured, p.downloads, p.indexedAt, \
             p.logo, p.screenshots, p.createdAt, p.nameKey \
             FROM hub_plugin p JOIN acct.actor a ON a.did = p.did \
             WHERE a.takedownRef IS NULL AND a.deactivatedAt IS NULL"
        }
        Kind::Case => {
            "SELECT p.uri, p.cid, p.did, a.handle, p.rkey, p.record, p.category, \
             p.status, p.featured, 0, p.indexedAt, \
             p.thumbnail, p.screenshots, p.createdAt, p.titleKey \
             FROM hub_case p JOIN acct.actor a ON a.did = p.did \
             WHERE a.takedownRef IS NULL AND a.deactivatedAt IS NULL"
        }
    }
}

/// The sort key expressions of `sort` (all descending, or all ascending for `Name`).
fn sort_keys(kind: Kind, sort: Sort) -> Result<(&'static [&'static str], bool)> {
    Ok(match (kind, sort) {
        (Kind::Plugin, Sort::Featured) => (&["p.featured", "p.downloads", "p.uri"], true),
        (Kind::Case, Sort::Featured) => (&["p.featured", "p.createdAt", "p.uri"], true),
        (Kind::Plugin, Sort::Downloads) => (&["p.downloads", "p.uri"], true),
        (Kind::Case, Sort::Downloads) => {
            return Err(Error::BadRequest(
                "Case studies cannot be sorted by downloads".to_owned(),
            ));
        }
        (_, Sort::New) => (&["p.createdAt", "p.uri"], true),
        (Kind::Plugin, Sort::Name) => (&["p.nameKey", "p.uri"], false),
        (Kind::Case, Sort::Name) => (&["p.titleKey", "p.uri"], false),
    })
}

/// The cursor values of a row for `sort`, in key order.
fn cursor_of(kind: Kind, sort: Sort, row: &Row_) -> Vec<Value> {
    let uri = Value::from(row.uri.clone());
    match (kind, sort) {
        (Kind::Plugin, Sort::Featured) => vec![
            Value::from(i64::from(row.featured)),
            Value::from(row.downloads),
            uri,
        ],
        (Kind::Case, Sort::Featured) => vec![
            Value::from(i64::from(row.featured)),
            Value::from(row.created_at.clone()),
            uri,
        ],
        (_, Sort::Downloads) => vec![Value::from(row.downloads), uri],
        (_, Sort::New) => vec![Value::from(row.created_at.clone()), uri],
        (_, Sort::Name) => vec![Value::from(row.name_key.clone()), uri],
    }
}

fn encode_cursor(values: &[Value]) -> String {
    URL_SAFE_NO_PAD.encode(Value::from(values.to_vec()).to_string())
}

fn decode_cursor(cursor: &str, arity: usize) -> Result<Vec<Value>> {
    let bad = || Error::BadRequest("Malformed cursor".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let values: Vec<Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let shapes_ok =
        values.len() == arity && values.iter().all(|v| v.is_string() || v.as_i64().is_some());
    if shapes_ok { Ok(values) } else { Err(bad()) }
}

fn push_value(qb: &mut QueryBuilder<Sqlite>, v: &Value) {
    match v {
        Value::String(s) => qb.push_bind(s.clone()),
        other => qb.push_bind(other.as_i64().unwrap_or_default()),
    };
}

/// Escapes `%`, `_` and `\` for `LIKE … ESCAPE '\'`.
fn like_pattern(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Adds the full-text condition for `q`: every word must occur in the indexed text. Words
/// of three characters or more go through the trigram index (`MATCH`); shorter ones (two
/// Chinese characters are a whole word) through `LIKE` over the same text.
fn push_text_filter(qb: &mut QueryBuilder<Sqlite>, kind: Kind, q: &str) {
    let fts = match kind {
        Kind::Plugin => "hub_plugin_fts",
        Kind::Case => "hub_case_fts",
    };
    let terms: Vec<&str> = q.split_whitespace().take(MAX_TERMS).collect();
    if terms.is_empty() {
        return;
    }
    let (long, short): (Vec<&str>, Vec<&str>) =
        terms.into_iter().partition(|t| t.chars().count() >= 3);
    qb.push(format!(" AND p.id IN (SELECT rowid FROM {fts} WHERE 1"));
    if !long.is_empty() {
        let expr = long
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" AND ");
        qb.push(format!(" AND {fts} MATCH "));
        qb.push_bind(expr);
    }
    for t in short {
        qb.push(" AND text LIKE ");
        qb.push_bind(like_pattern(t));
        qb.push(" ESCAPE '\\'");
    }
    qb.push(")");
}

impl HubIndex {
    async fn list(&self, kind: Kind, opts: &ListOptions) -> Result<(Vec<Row_>, Option<String>)> {
        let (keys, desc) = sort_keys(kind, opts.sort)?;
        self.caught_up().await;
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(select(kind));
        qb.push(" AND p.status = ");
        qb.push_bind(opts.status.as_str());
        if let Some(category) = &opts.category {
            qb.push(" AND p.category = ");
            qb.push_bind(category.clone());
        }
        if let Some(q) = &opts.q {
            push_text_filter(&mut qb, kind, q);
        }
        if let Some(cursor) = &opts.cursor {
            let values = decode_cursor(cursor, keys.len())?;
            qb.push(format!(" AND ({}) ", keys.join(", ")));
            qb.push(if desc { "< (" } else { "> (" });
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    qb.push(", ");
                }
                push_value(&mut qb, v);
            }
            qb.push(")");
        }
        let dir = if desc { " DESC" } else { " ASC" };
        let order: Vec<String> = keys.iter().map(|k| format!("{k}{dir}")).collect();
        qb.push(format!(" ORDER BY {} LIMIT ", order.join(", ")));
        let limit = opts.limit.clamp(1, 100);
        qb.push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(self.pool()).await?;
        let rows: Vec<Row_> = rows
            .iter()
            .map(read_row)
            .collect::<Result<_, sqlx::Error>>()?;
        let cursor = (rows.len() == limit as usize)
            .then(|| {
                rows.last()
                    .map(|r| encode_cursor(&cursor_of(kind, opts.sort, r)))
            })
            .flatten();
        Ok((rows, cursor))
    }

    async fn get(&self, kind: Kind, uri: &str, viewer: &Viewer) -> Result<Option<Row_>> {
        self.caught_up().await;
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(select(kind));
        qb.push(" AND p.uri = ");
        qb.push_bind(uri.to_owned());
        let row = qb.build().fetch_optional(self.pool()).await?;
        let Some(row) = row.as_ref().map(read_row).transpose()? else {
            return Ok(None);
        };
        let visible = row.status == "approved"
            || viewer.moderator
            || viewer.did.as_deref() == Some(row.did.as_str());
        Ok(visible.then_some(row))
    }

    pub async fn list_plugins(&self, opts: &ListOptions) -> Result<Page<PluginView>> {
        let (rows, cursor) = self.list(Kind::Plugin, opts).await?;
        Ok(Page {
            items: rows.into_iter().map(|r| self.plugin_view(r)).collect(),
            cursor,
        })
    }

    pub async fn list_cases(&self, opts: &ListOptions) -> Result<Page<CaseView>> {
        let (rows, cursor) = self.list(Kind::Case, opts).await?;
        Ok(Page {
            items: rows.into_iter().map(|r| self.case_view(r)).collect(),
            cursor,
        })
    }

    /// The plugin at `uri`, if indexed and visible to `viewer`.
    pub async fn get_plugin(&self, uri: &str, viewer: &Viewer) -> Result<Option<PluginView>> {
        Ok(self
            .get(Kind::Plugin, uri, viewer)
            .await?
            .map(|r| self.plugin_view(r)))
    }

    /// The case study at `uri`, if indexed and visible to `viewer`.
    pub async fn get_case(&self, uri: &str, viewer: &Viewer) -> Result<Option<CaseView>> {
        Ok(self
            .get(Kind::Case, uri, viewer)
            .await?
            .map(|r| self.case_view(r)))
    }

    fn screenshots(&self, did: &str, json: &str) -> Vec<String> {
        serde_json::from_str::<Vec<String>>(json)
            .unwrap_or_default()
            .iter()
            .map(|cid| self.blob_url(did, cid))
            .collect()
    }

    fn plugin_view(&self, r: Row_) -> PluginView {
        PluginView {
            screenshots: self.screenshots(&r.did, &r.screenshots),
            logo: r.image.as_deref().map(|cid| self.blob_url(&r.did, cid)),
            record: serde_json::from_str(&r.record).unwrap_or(Value::Null),
            uri: r.uri,
            cid: r.cid,
            slug: r.rkey,
            author: Author {
                did: r.did,
                handle: r.handle,
            },
            category: r.category,
            status: r.status,
            featured: r.featured,
            downloads: r.downloads,
            indexed_at: r.indexed_at,
        }
    }

    fn case_view(&self, r: Row_) -> CaseView {
        CaseView {
            screenshots: self.screenshots(&r.did, &r.screenshots),
            thumbnail: r.image.as_deref().map(|cid| self.blob_url(&r.did, cid)),
            record: serde_json::from_str(&r.record).unwrap_or(Value::Null),
            uri: r.uri,
            cid: r.cid,
            author: Author {
                did: r.did,
                handle: r.handle,
            },
            category: r.category,
            status: r.status,
            featured: r.featured,
            indexed_at: r.indexed_at,
        }
    }

    /// Totals per category of approved, visible submissions; with `plugin`, its downloads
    /// per day since `since_day` (`YYYY-MM-DD`).
    pub async fn stats(&self, plugin: Option<&str>, since_day: &str) -> Result<Stats> {
        self.caught_up().await;
        let mut conn = self.pool().acquire().await?;
        let mut categories = Vec::new();
        for table in ["hub_plugin", "hub_case"] {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT p.category, COUNT(*) FROM {table} p \
                 JOIN acct.actor a ON a.did = p.did \
                 WHERE p.status = 'approved' \
                 AND a.takedownRef IS NULL AND a.deactivatedAt IS NULL \
                 GROUP BY p.category ORDER BY p.category"
            )))
            .fetch_all(&mut *conn)
            .await?;
            let counts = rows
                .iter()
                .map(|row| {
                    Ok(CategoryCount {
                        category: row.try_get(0)?,
                        count: row.try_get(1)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            categories.push(counts);
        }
        let downloads: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(p.downloads), 0) FROM hub_plugin p \
             JOIN acct.actor a ON a.did = p.did \
             WHERE p.status = 'approved' \
             AND a.takedownRef IS NULL AND a.deactivatedAt IS NULL",
        )
        .fetch_one(&mut *conn)
        .await?;
        let plugin_downloads = match plugin {
            None => None,
            Some(uri) => {
                let rows = sqlx::query(
                    "SELECT day, count FROM hub_download_day WHERE uri = ? AND day >= ? \
                     ORDER BY day",
                )
                .bind(uri)
                .bind(since_day)
                .fetch_all(&mut *conn)
                .await?;
                Some(
                    rows.iter()
                        .map(|row| {
                            Ok(DayCount {
                                day: row.try_get(0)?,
                                count: row.try_get(1)?,
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()?,
                )
            }
        };
        let case_categories = categories.pop().unwrap_or_default();
        let plugin_categories = categories.pop().unwrap_or_default();
        Ok(Stats {
            plugins: plugin_categories.iter().map(|c| c.count).sum(),
            cases: case_categories.iter().map(|c| c.count).sum(),
            downloads,
            plugin_categories,
            case_categories,
            plugin_downloads,
        })
    }
}
