//! The operator dashboard's hub moderation queue: the PocketBase.cn plugins and case
//! studies waiting for review, decided (approve, reject, approve and feature, with a note)
//! by writing the same `cn.pocketbase.hub.review` record a moderator's app writes, into the
//! repository of a moderator hosted here, through the same validation and hub-indexed
//! commit as `com.atproto.repo.createRecord`.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::json;

use super::admin::{Admin, FormData, admin_page, admin_session, error_page, refused};
use super::i18n::{Lang, Text};
use super::layout::{notice, redirect};
use crate::error::XrpcError;
use crate::hub::{self, ListOptions, Moderator, Sort, StatusFilter};
use crate::repo::repository::Write;
use crate::server::AppState;
use crate::syntax::{Did, Nsid, RecordKey, TidClock};

/// Submissions shown per kind.
const QUEUE_LEN: u32 = 50;

/// One submission waiting for review.
struct Pending {
    uri: String,
    cid: String,
    title: String,
    author: String,
    indexed_at: String,
}

/// Pending plugins, pending cases, and the local moderators.
type Queue = (Vec<Pending>, Vec<Pending>, Vec<Moderator>);

fn options() -> ListOptions {
    ListOptions {
        category: None,
        q: None,
        sort: Sort::New,
        status: StatusFilter::Pending,
        limit: QUEUE_LEN,
        cursor: None,
    }
}

/// The moderators whose repositories are on this server (a review is written there).
async fn local_moderators(state: &AppState) -> Result<Vec<Moderator>, XrpcError> {
    let mut local = Vec::new();
    for moderator in state.hub().moderators().await? {
        let Ok(did) = moderator.did.parse::<Did>() else {
            continue;
        };
        if state
            .repo()
            .stores()
            .open(&did)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            local.push(moderator);
        }
    }
    Ok(local)
}

#[derive(serde::Deserialize)]
pub(super) struct PageQuery {
    done: Option<String>,
}

/// `GET /admin/hub`.
pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let admin = match admin_session(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    let outcome = query.done.is_some().then_some(Ok(()));
    queue_page(&state, &admin, outcome, StatusCode::OK).await
}

async fn queue_page(
    state: &AppState,
    admin: &Admin,
    outcome: Option<Result<(), String>>,
    status: StatusCode,
) -> Response {
    let lang = admin.lang;
    let loaded: Result<Queue, XrpcError> = async {
        let plugins = state
            .hub()
            .list_plugins(&options())
            .await?
            .items
            .into_iter()
            .map(|p| Pending {
                title: p.record["name"].as_str().unwrap_or(&p.slug).to_owned(),
                author: p.author.handle.clone().unwrap_or(p.author.did.clone()),
                uri: p.uri,
                cid: p.cid,
                indexed_at: p.indexed_at,
            })
            .collect();
        let cases = state
            .hub()
            .list_cases(&options())
            .await?
            .items
            .into_iter()
            .map(|c| Pending {
                title: c.record["title"].as_str().unwrap_or(&c.uri).to_owned(),
                author: c.author.handle.clone().unwrap_or(c.author.did.clone()),
                uri: c.uri,
                cid: c.cid,
                indexed_at: c.indexed_at,
            })
            .collect();
        Ok((plugins, cases, local_moderators(state).await?))
    }
    .await;
    let (plugins, cases, moderators) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => return error_page(admin, &err),
    };
    let body = html! {
        h1 { (lang.t(Text::Hub)) }
        @match &outcome {
            Some(Ok(())) => (notice(true, lang.t(Text::Done))),
            Some(Err(message)) => (notice(false, message)),
            None => {},
        }
        @if moderators.is_empty() {
            (notice(false, lang.t(Text::NoModerators)))
        }
        h2 { (lang.t(Text::PendingPlugins)) }
        (queue(lang, admin, &plugins, &moderators))
        h2 { (lang.t(Text::PendingCases)) }
        (queue(lang, admin, &cases, &moderators))
    };
    admin_page(admin, status, lang.t(Text::Hub), body)
}

fn queue(lang: Lang, admin: &Admin, items: &[Pending], moderators: &[Moderator]) -> Markup {
    html! {
        @if items.is_empty() {
            p { (lang.t(Text::NothingPending)) }
        }
        @for (i, item) in items.iter().enumerate() {
            @let id = format!("{}-{i}", if item.uri.contains("/cn.pocketbase.hub.case/") { "case" } else { "plugin" });
            section.card {
                h3 { (item.title) }
                dl {
                    dt { (lang.t(Text::Author)) } dd { (item.author) }
                    dt { "URI" } dd { code { (item.uri) } }
                    dt { (lang.t(Text::Created)) } dd { (item.indexed_at) }
                }
                @if !moderators.is_empty() {
                    form method="post" action="/admin/hub" {
                        (admin.csrf_field())
                        input type="hidden" name="uri" value=(item.uri);
                        input type="hidden" name="cid" value=(item.cid);
                        label for=(format!("{id}-moderator")) { (lang.t(Text::Moderator)) }
                        select id=(format!("{id}-moderator")) name="moderator" {
                            @for m in moderators {
                                option value=(m.did) { (m.handle.as_deref().unwrap_or(&m.did)) }
                            }
                        }
                        label for=(format!("{id}-note")) { (lang.t(Text::Note)) }
                        input id=(format!("{id}-note")) type="text" name="note" maxlength="1000";
                        button type="submit" name="decision" value="approve" { (lang.t(Text::Approve)) }
                        button type="submit" name="decision" value="feature" { (lang.t(Text::Feature)) }
                        button.danger type="submit" name="decision" value="reject" { (lang.t(Text::Reject)) }
                    }
                }
            }
        }
    }
}

/// `POST /admin/hub`: writes the review record into the chosen moderator's repository.
pub(super) async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let admin = match admin_session(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    if !admin.form_ok(&form) {
        return refused(&admin);
    }
    let field = |name: &str| form.get(name).map(|v| v.trim()).unwrap_or_default();
    let result: Result<(), XrpcError> = async {
        let (status, featured) = match field("decision") {
            "approve" => ("approved", false),
            "feature" => ("approved", true),
            "reject" => ("rejected", false),
            _ => return Err(XrpcError::invalid_request("unknown decision")),
        };
        let moderator = local_moderators(&state)
            .await?
            .into_iter()
            .find(|m| m.did == field("moderator"))
            .ok_or_else(|| XrpcError::invalid_request("not a hub moderator hosted here"))?;
        let did: Did = moderator
            .did
            .parse()
            .map_err(|_| XrpcError::invalid_request("not a hub moderator hosted here"))?;
        let mut record = json!({
            "$type": hub::REVIEW,
            "subject": { "uri": field("uri"), "cid": field("cid") },
            "status": status,
            "featured": featured,
            "createdAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        if !field("note").is_empty() {
            record["reason"] = json!(field("note"));
        }
        let collection: Nsid = hub::REVIEW.parse().map_err(XrpcError::internal)?;
        let rkey: RecordKey = TidClock::default()
            .next()
            .to_string()
            .parse()
            .map_err(XrpcError::internal)?;
        let prepared = crate::xrpc::repo::write::prepare_record(
            state.catalog(),
            &collection,
            &rkey,
            record,
            Some(true),
        )?;
        let write = Write::Create {
            collection,
            rkey,
            record: prepared.value,
        };
        state
            .repo()
            .apply_writes(&did, vec![write.into()], None)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => redirect("/admin/hub?done=1", &[]),
        Err(err) if err.status.is_server_error() => error_page(&admin, &err),
        Err(err) => queue_page(&state, &admin, Some(Err(err.message)), err.status).await,
    }
}
