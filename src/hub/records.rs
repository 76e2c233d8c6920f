//! The hub's records read from their data-model values: the rules the lexicons cannot
//! express (slug record keys, GitHub repository URLs) and the fields the index keeps.

use crate::repo::cbor::{BlobRef, Ipld, value_to_json};

/// `cn.pocketbase.hub.plugin`
pub const PLUGIN: &str = "cn.pocketbase.hub.plugin";
/// `cn.pocketbase.hub.case`
pub const CASE: &str = "cn.pocketbase.hub.case";
/// `cn.pocketbase.hub.review`
pub const REVIEW: &str = "cn.pocketbase.hub.review";

/// The plugin categories the lexicon knows; others are listed as `other`.
pub(crate) const PLUGIN_CATEGORIES: [&str; 5] = ["auth", "storage", "api", "ui", "utils"];
/// The case-study categories the lexicon knows.
pub(crate) const CASE_CATEGORIES: [&str; 5] = ["saas", "mobile", "iot", "internal", "other"];

/// Whether `collection` is one of the hub's.
pub(crate) fn is_hub_collection(collection: &str) -> bool {
    matches!(collection, PLUGIN | CASE | REVIEW)
}

/// A plugin slug: lowercase ASCII letters, digits and `-`, 2 to 64 characters.
pub(crate) fn is_slug(rkey: &str) -> bool {
    (2..=64).contains(&rkey.len())
        && rkey
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `https://github.com/OWNER/REPO` (optionally ending in `/` or `.git`): an owner of
/// letters, digits and single inner `-` (at most 39), a repository of letters, digits,
/// `.`, `_` and `-` (at most 100, not `.` or `..`).
pub(crate) fn is_github_repo_url(url: &str) -> bool {
    let Some(path) = url.strip_prefix("https://github.com/") else {
        return false;
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    let Some((owner, repo)) = path.split_once('/') else {
        return false;
    };
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    let owner_ok = (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--");
    let repo_ok = (1..=100).contains(&repo.len())
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && repo != "."
        && repo != "..";
    owner_ok && repo_ok
}

/// Checks the hub rules of a record about to be written to `collection` under `rkey`;
/// `Err` is the message of an `InvalidRequest`. Other collections pass.
pub(crate) fn check_write(collection: &str, rkey: &str, value: &Ipld) -> Result<(), String> {
    match collection {
        PLUGIN => {
            if !is_slug(rkey) {
                return Err(format!(
                    "Invalid plugin slug {rkey:?}: the record key must be 2 to 64 lowercase letters, digits or '-'"
                ));
            }
            check_github(value, true)
        }
        CASE => check_github(value, false),
        _ => Ok(()),
    }
}

fn check_github(value: &Ipld, required: bool) -> Result<(), String> {
    match field(value, "githubUrl") {
        Some(Ipld::String(url)) if is_github_repo_url(url) => Ok(()),
        Some(Ipld::String(url)) => Err(format!(
            "Invalid githubUrl {url:?}: must be https://github.com/OWNER/REPO"
        )),
        None if !required => Ok(()),
        _ => Err("Record/githubUrl must be https://github.com/OWNER/REPO".to_owned()),
    }
}

fn field<'a>(value: &'a Ipld, name: &str) -> Option<&'a Ipld> {
    match value {
        Ipld::Map(map) => map.get(name),
        _ => None,
    }
}

fn string(value: &Ipld, name: &str) -> Option<String> {
    match field(value, name) {
        Some(Ipld::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn strings(value: &Ipld, name: &str) -> Vec<String> {
    match field(value, name) {
        Some(Ipld::List(items)) => items
            .iter()
            .filter_map(|i| match i {
                Ipld::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn blob_cid(value: Option<&Ipld>) -> Option<String> {
    value
        .and_then(BlobRef::from_value)
        .map(|b| b.cid.to_string())
}

fn blob_cids(value: &Ipld, name: &str) -> Vec<String> {
    match field(value, name) {
        Some(Ipld::List(items)) => items.iter().filter_map(|i| blob_cid(Some(i))).collect(),
        _ => Vec::new(),
    }
}

/// A datetime normalised to UTC with milliseconds, so that it sorts as text; unparseable
/// text (the lexicon admits a few forms chrono does not) is kept as written.
pub(crate) fn normalize_datetime(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        })
        .unwrap_or_else(|_| text.to_owned())
}

fn category(value: &Ipld, known: &[&str]) -> String {
    match string(value, "category") {
        Some(c) if known.contains(&c.as_str()) => c,
        _ => "other".to_owned(),
    }
}

/// What the index keeps of a plugin or case record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Submission {
    /// The name (plugin) or title (case), lowercased: the `name` sort key.
    pub name_key: String,
    pub category: String,
    /// Normalised `createdAt`; the record's `indexedAt` when it has none.
    pub created_at: String,
    /// The record as JSON text.
    pub record: String,
    /// The logo (plugin) or thumbnail (case) blob CID.
    pub image: Option<String>,
    pub screenshots: Vec<String>,
    /// The text the full-text index searches.
    pub text: String,
}

impl Submission {
    /// Reads a plugin (`is_plugin`) or case record; `indexed_at` stands in for a missing
    /// `createdAt`.
    pub(crate) fn read(value: &Ipld, is_plugin: bool, indexed_at: &str) -> Submission {
        let (name, known, image, text_fields): (_, &[&str], _, &[&str]) = if is_plugin {
            (
                "name",
                &PLUGIN_CATEGORIES,
                "logo",
                &["name", "description", "descriptionZh", "readme"],
            )
        } else {
            (
                "title",
                &CASE_CATEGORIES,
                "thumbnail",
                &[
                    "title",
                    "titleZh",
                    "description",
                    "descriptionZh",
                    "content",
                ],
            )
        };
        let mut text: Vec<String> = text_fields
            .iter()
            .filter_map(|f| string(value, f))
            .collect();
        text.extend(strings(value, if is_plugin { "tags" } else { "techStack" }));
        Submission {
            name_key: string(value, name).unwrap_or_default().to_lowercase(),
            category: category(value, known),
            created_at: string(value, "createdAt")
                .map(|t| normalize_datetime(&t))
                .unwrap_or_else(|| indexed_at.to_owned()),
            record: value_to_json(value).to_string(),
            image: blob_cid(field(value, image)),
            screenshots: blob_cids(value, "screenshots"),
            text: text.join("\n"),
        }
    }
}

/// What the index keeps of a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Review {
    /// The AT-URI of the reviewed plugin or case.
    pub subject: String,
    /// `approved` or `rejected`.
    pub status: String,
    pub featured: bool,
    pub created_at: String,
}

impl Review {
    /// `None` unless the subject is a plugin or case URI and the status one of the two.
    pub(crate) fn read(value: &Ipld) -> Option<Review> {
        let subject = match field(value, "subject") {
            Some(subject) => string(subject, "uri")?,
            None => return None,
        };
        let parsed: crate::syntax::AtUri = subject.parse().ok()?;
        let collection = parsed.collection().map(|c| c.as_str().to_owned());
        if !matches!(collection.as_deref(), Some(PLUGIN | CASE)) {
            return None;
        }
        let status = string(value, "status")?;
        if status != "approved" && status != "rejected" {
            return None;
        }
        let featured = matches!(field(value, "featured"), Some(Ipld::Bool(true)));
        Some(Review {
            subject,
            status,
            featured,
            created_at: normalize_datetime(&string(value, "createdAt")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["ab", "pb-auth", "x1", &"a".repeat(64)] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["a", "Ab", "a_b", "a.b", "名字", &"a".repeat(65), ""] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn github_urls() {
        for ok in [
            "https://github.com/pocketbase/pocketbase",
            "https://github.com/a-b/c.d_e-f",
            "https://github.com/owner/repo/",
            "https://github.com/owner/repo.git",
        ] {
            assert!(is_github_repo_url(ok), "{ok}");
        }
        for bad in [
            "http://github.com/owner/repo",
            "https://gitlab.com/owner/repo",
            "https://github.com/owner",
            "https://github.com/owner/repo/tree/main",
            "https://github.com/-owner/repo",
            "https://github.com/ow--ner/repo",
            "https://github.com/owner/..",
            "https://github.com//repo",
            "https://github.com.evil.com/owner/repo",
        ] {
            assert!(!is_github_repo_url(bad), "{bad}");
        }
    }

    #[test]
    fn datetimes_normalise_to_utc() {
        assert_eq!(
            normalize_datetime("2024-01-02T11:04:05+08:00"),
            "2024-01-02T03:04:05.000Z"
        );
        assert_eq!(
            normalize_datetime("2024-01-02T03:04:05.123456Z"),
            "2024-01-02T03:04:05.123Z"
        );
    }
}
