//! Link pages: the list (search, filters, sort, cursor pages, bulk
//! actions), creating and editing with every field the API has, and a
//! link's page (short URL, QR code, clicks over time and breakdowns).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ricochet_model::{LinkState, now_millis};

use super::analytics::{LinkAnalytics, link_analytics};
use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::link_form::{self, LinkForm};
use super::page::{self, Layout};
use super::session::Console;
use crate::api::error::ApiError;
use crate::api::links::{parse_sort, parse_state};
use crate::api::types::{CreateLink, LinkView, PatchLink};
use crate::api::{blocking, from_json_value};
use crate::keys::Scope;
use crate::service::{LinkChanges, LinkQuery, NewLink};
use crate::store::LinkFilter;

/// Links per page.
const PAGE_SIZE: usize = 50;

/// A link as a row of the list.
#[derive(Debug, Clone)]
pub struct LinkRow {
    pub id: u64,
    pub short_url: String,
    pub url: String,
    pub title: String,
    pub tags: Vec<String>,
    pub state: &'static str,
    /// The listed host, when a destination is blocked.
    pub blocked: Option<String>,
    pub created: String,
}

fn state_name(state: LinkState) -> &'static str {
    match state {
        LinkState::Active => "active",
        LinkState::Disabled => "disabled",
        LinkState::Deleted => "deleted",
    }
}

/// The list's query, as the page shows it back.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub q: String,
    pub domain: String,
    pub tag: String,
    pub state: String,
    pub sort: String,
}

impl ListFilters {
    fn read(query: &FormData) -> Self {
        Self {
            q: query.get("q").to_owned(),
            domain: query.get("domain").to_owned(),
            tag: query.get("tag").to_owned(),
            state: query.get("state").to_owned(),
            sort: query.get("sort").to_owned(),
        }
    }

    /// The query string of these filters (for the next page and export).
    pub fn query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &self.q),
            ("domain", &self.domain),
            ("tag", &self.tag),
            ("state", &self.state),
            ("sort", &self.sort),
        ] {
            if !value.is_empty() {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }
}

impl ListPage {
    /// How many links a filtered page looks through, for people.
    fn max_examined(&self) -> String {
        let digits = crate::store::MAX_EXAMINED.to_string();
        let mut out = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        out
    }
}

#[derive(Template)]
#[template(path = "console/links.html")]
struct ListPage {
    layout: Layout,
    filters: ListFilters,
    domains: Vec<String>,
    rows: Vec<LinkRow>,
    next: Option<String>,
    /// The page stopped early; more links may match after `next`.
    partial: bool,
    first_page: bool,
    error: Option<String>,
}

/// `GET /console/links`.
pub async fn list(console: Console, request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let query = FormData::parse(request.query_string().as_bytes());
    let filters = ListFilters::read(&query);
    let parsed =
        parse_sort(Some(filters.sort.as_str()).filter(|s| !s.is_empty())).and_then(|sort| {
            Ok((
                sort,
                parse_state(Some(filters.state.as_str()).filter(|s| !s.is_empty()))?,
            ))
        });
    let cursor = query.optional("cursor").map(str::to_owned);
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let list_filters = filters.clone();
    let (domains, found) = blocking(move || {
        let domains = service
            .domains(&workspace)?
            .into_iter()
            .map(|d| d.name)
            .collect::<Vec<_>>();
        let found = match parsed {
            Err(error) => Err(error),
            Ok((sort, state)) => {
                let query = LinkQuery {
                    filter: LinkFilter {
                        workspace: None,
                        domain: Some(list_filters.domain).filter(|d| !d.is_empty()),
                        tag: Some(list_filters.tag).filter(|t| !t.is_empty()),
                        state,
                        search: Some(list_filters.q).filter(|q| !q.is_empty()),
                    },
                    sort,
                    cursor,
                    limit: PAGE_SIZE,
                };
                match service.list(&workspace, &query) {
                    Ok(page) => {
                        let rows = page
                            .links
                            .iter()
                            .map(|link| {
                                Ok(LinkRow {
                                    id: link.id,
                                    short_url: service.short_url(link)?,
                                    url: link.url.clone(),
                                    title: link.title.clone().unwrap_or_default(),
                                    tags: link.tags.clone(),
                                    state: state_name(link.state),
                                    blocked: link
                                        .extensions
                                        .blocked
                                        .as_ref()
                                        .map(|block| block.host.clone()),
                                    created: page::date_time(link.created_at),
                                })
                            })
                            .collect::<Result<Vec<_>, crate::service::LinkError>>()?;
                        Ok((rows, page.next_cursor, page.partial))
                    }
                    Err(error) => Err(ApiError::from(error)),
                }
            }
        };
        Ok::<_, ApiError>((domains, found))
    })
    .await?;
    let (rows, next, partial, error) = match found {
        Ok((rows, next, partial)) => (rows, next, partial, None),
        Err(error) if error.status < 500 => (Vec::new(), None, false, Some(error.message)),
        Err(error) => return Err(error.into()),
    };
    let filter_query = filters.query();
    let next = next.map(|cursor| {
        let separator = if filter_query.is_empty() { "" } else { "&" };
        format!(
            "{}/links?{filter_query}{separator}cursor={}",
            super::PREFIX,
            page::encode(&cursor)
        )
    });
    let layout = Layout::of(&console, "Links", "links").with_notice(query.optional("notice"));
    Ok(page::render(
        if error.is_some() { 400 } else { 200 },
        &ListPage {
            layout,
            filters,
            domains,
            rows,
            next,
            partial,
            first_page: query.optional("cursor").is_none(),
            error,
        },
    ))
}

/// `POST /console/links/bulk`: disable, enable, delete, restore, tag or
/// untag the ticked links, each through the service like one edit.
pub async fn bulk(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::LinksWrite)?;
    let ids: Vec<u64> = form
        .all("id")
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
    let action = form.get("action").to_owned();
    let tag = form.get("tag").to_owned();
    let back = format!("{}/links?{}", super::PREFIX, form.get("return_query"));
    if ids.is_empty() {
        return Err(ApiError::bad_request("no_links", "Tick at least one link first.").into());
    }
    if matches!(action.as_str(), "tag" | "untag") && tag.is_empty() {
        return Err(ApiError::bad_request("invalid_tag", "Type the tag to add or remove.").into());
    }
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    blocking(move || {
        let now = now_millis();
        for id in ids {
            match action.as_str() {
                "delete" => {
                    service.delete(&workspace, id, now)?;
                }
                "restore" => {
                    service.restore(&workspace, id, now)?;
                }
                "disable" | "enable" => {
                    let changes = LinkChanges {
                        state: Some(if action == "disable" {
                            LinkState::Disabled
                        } else {
                            LinkState::Active
                        }),
                        ..LinkChanges::default()
                    };
                    service.update(&workspace, id, &changes, now)?;
                }
                "tag" | "untag" => {
                    let link = service.link(&workspace, id)?;
                    let mut tags = link.tags.clone();
                    tags.retain(|t| *t != tag);
                    if action == "tag" {
                        tags.push(tag.clone());
                    }
                    if tags != link.tags {
                        let changes = LinkChanges {
                            tags: Some(tags),
                            ..LinkChanges::default()
                        };
                        service.update(&workspace, id, &changes, now)?;
                    }
                }
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_action",
                        format!("There is no bulk action {other:?}."),
                    ));
                }
            }
        }
        Ok(())
    })
    .await?;
    let separator = if back.ends_with('?') { "" } else { "&" };
    Ok(page::see_other(&format!(
        "{back}{separator}notice=links-updated"
    )))
}

#[derive(Template)]
#[template(path = "console/link_form.html")]
struct FormPage {
    layout: Layout,
    /// `None` for a new link.
    id: Option<u64>,
    form: LinkForm,
    domains: Vec<String>,
    errors: FieldErrors,
    utm: [(&'static str, &'static str, String); 5],
}

impl FormPage {
    fn new(
        layout: Layout,
        id: Option<u64>,
        form: LinkForm,
        domains: Vec<String>,
        errors: FieldErrors,
    ) -> Self {
        let utm = std::array::from_fn(|i| {
            let (name, label) = link_form::UTM[i];
            (name, label, form.utm[i].clone())
        });
        Self {
            layout,
            id,
            form,
            domains,
            errors,
            utm,
        }
    }
}

/// Domains a link of the workspace may live on (verified ones).
async fn usable_domains(console: &Console) -> Result<Vec<String>, ConsoleError> {
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    Ok(blocking(move || domain_names(&service, &workspace)).await?)
}

/// Names of the domains `workspace` may create links (and pages) on: the
/// default one first, then its verified ones.
pub(super) fn domain_names(
    service: &crate::service::LinkService,
    workspace: &str,
) -> Result<Vec<String>, crate::api::error::ApiError> {
    let mut domains: Vec<_> = service
        .domains(workspace)?
        .into_iter()
        .filter(|d| d.is_default || d.verification.is_verified())
        .collect();
    domains.sort_by_key(|d| !d.is_default);
    Ok(domains.into_iter().map(|d| d.name).collect())
}

/// `GET /console/links/new`.
pub async fn new_page(console: Console) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksWrite)?;
    let domains = usable_domains(&console).await?;
    let form = LinkForm {
        domain: domains.first().cloned().unwrap_or_default(),
        ..LinkForm::default()
    };
    let layout = Layout::of(&console, "New link", "links");
    Ok(page::render(
        200,
        &FormPage::new(layout, None, form, domains, FieldErrors::none()),
    ))
}

/// `POST /console/links/new`: the link's page, or the form again with the
/// error next to its field.
pub async fn create(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::LinksWrite)?;
    let values = LinkForm::read(&form);
    let created = match values.create_body() {
        Err(errors) => Err((400, errors)),
        Ok(body) => match from_json_value::<CreateLink>(body) {
            Err(error) => Err((
                error.status,
                FieldErrors::from_api(&error, link_form::FIELDS),
            )),
            Ok(input) => {
                let input = NewLink::from(input);
                let service = console.state.service.clone();
                let workspace = console.workspace_id().to_owned();
                blocking(move || service.create(&workspace, &input, now_millis()))
                    .await
                    .map_err(|error| {
                        (
                            error.status,
                            FieldErrors::from_api(&error, link_form::FIELDS),
                        )
                    })
            }
        },
    };
    match created {
        Ok(link) => Ok(page::see_other(&format!(
            "{}/links/{}?notice=link-created",
            super::PREFIX,
            link.id
        ))),
        Err((status, errors)) => {
            let domains = usable_domains(&console).await?;
            let layout = Layout::of(&console, "New link", "links");
            Ok(page::render(
                status,
                &FormPage::new(layout, None, values, domains, errors),
            ))
        }
    }
}

fn parse_id(raw: &str) -> Result<u64, ConsoleError> {
    raw.parse().map_err(|_| {
        ApiError::not_found(format!("There is no link {raw:?} in this workspace.")).into()
    })
}

/// `GET /console/links/{id}/edit`.
pub async fn edit_page(
    console: Console,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksWrite)?;
    let id = parse_id(&id)?;
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let link = blocking(move || service.link(&workspace, id)).await?;
    let form = LinkForm::of(&LinkView::from(&link));
    let layout = Layout::of(&console, format!("Edit {}", link.code), "links");
    Ok(page::render(
        200,
        &FormPage::new(layout, Some(id), form, Vec::new(), FieldErrors::none()),
    ))
}

/// `POST /console/links/{id}/edit`.
pub async fn update(
    submitted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::LinksWrite)?;
    let id = parse_id(&id)?;
    let mut values = LinkForm::read(&form);
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let current = blocking(move || service.link(&workspace, id)).await?;
    values.domain = current.domain.clone();
    values.code = current.code.clone();
    let updated = match values.patch_body() {
        Err(errors) => Err((400, errors)),
        Ok(body) => match from_json_value::<PatchLink>(body) {
            Err(error) => Err((
                error.status,
                FieldErrors::from_api(&error, link_form::FIELDS),
            )),
            Ok(patch) => {
                let changes = LinkChanges::from(patch);
                let service = console.state.service.clone();
                let workspace = console.workspace_id().to_owned();
                blocking(move || service.update(&workspace, id, &changes, now_millis()))
                    .await
                    .map_err(|error| {
                        (
                            error.status,
                            FieldErrors::from_api(&error, link_form::FIELDS),
                        )
                    })
            }
        },
    };
    match updated {
        Ok(_) => Ok(page::see_other(&format!(
            "{}/links/{id}?notice=link-saved",
            super::PREFIX
        ))),
        Err((status, errors)) => {
            values.password = String::new();
            let layout = Layout::of(&console, format!("Edit {}", current.code), "links");
            Ok(page::render(
                status,
                &FormPage::new(layout, Some(id), values, Vec::new(), errors),
            ))
        }
    }
}

#[derive(Template)]
#[template(path = "console/link.html")]
struct DetailPage {
    layout: Layout,
    link: LinkView,
    short_url: String,
    link_state: &'static str,
    expires: Option<String>,
    rules_json: String,
    variants_json: String,
    analytics: LinkAnalytics,
}

/// `GET /console/links/{id}`: the link, its QR code and its clicks.
pub async fn detail(
    console: Console,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_id(&id)?;
    let query = FormData::parse(request.query_string().as_bytes());
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let (link, short_url) = blocking(move || {
        let link = service.link(&workspace, id)?;
        let short_url = service.short_url(&link)?;
        Ok::<_, crate::service::LinkError>((link, short_url))
    })
    .await?;
    let analytics = link_analytics(&console, id, &query).await?;
    let view = LinkView::from(&link);
    let pretty =
        |value: serde_json::Value| serde_json::to_string_pretty(&value).unwrap_or_default();
    let layout = Layout::of(&console, format!("{} · link", link.code), "links")
        .with_notice(query.optional("notice"));
    Ok(page::render(
        200,
        &DetailPage {
            layout,
            rules_json: pretty(serde_json::to_value(&view.rules).unwrap_or_default()),
            variants_json: pretty(serde_json::to_value(&view.variants).unwrap_or_default()),
            link_state: state_name(link.state),
            expires: link.expires_at.map(page::date_time),
            link: view,
            short_url,
            analytics,
        },
    ))
}

/// `GET /console/links/{id}/qr`: the link's QR code (`format`, `size`,
/// `margin`, `download` as the API's `/links/{id}/qr` takes them).
pub async fn qr(
    console: Console,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    Ok(crate::api::qr::answer(&console.state, console.workspace_id(), &id, &request).await?)
}
