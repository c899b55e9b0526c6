//! Link-in-bio page routes:
//! - `GET|POST /api/v1/pages` (scopes `links:read`, `links:write`)
//! - `GET|PATCH|DELETE /api/v1/pages/{id}`
//! - `POST /api/v1/pages/{id}/reorder` (the items' order in one call)
//! - `GET /api/v1/pages/{id}/qr?format&size&margin&ecc&download` (the page's URL)
//! - `GET /api/v1/pages/{id}/analytics?from&to` (scope `analytics:read`):
//!   views, clicks per item and click-through rates

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_clickstore::{Counts, Interval};
use ricochet_model::now_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::analytics::CountsView;
use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::types::{optional_field, to_datetime, to_millis};
use super::{AppState, blocking, schema};
use crate::pages::content::{ItemKind, PageCard, PageRecord};
use crate::pages::input::{ColorsInput, ContentInput, ItemInput, SocialInput, ThemeInput};
use crate::pages::{NewPage, PageChanges, PageError};
use crate::service::LinkError;

/// A new page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePage {
    /// The page's path on its domain: 1 to 64 of `A-Z a-z 0-9 _ -`, not a
    /// reserved word, and not taken by a link or another page.
    #[schema(example = "ada")]
    pub handle: String,
    /// A verified domain of the workspace; the default domain when absent.
    pub domain: Option<String>,
    /// Serve the page at the domain's root too (a domain of the workspace
    /// dedicated to it; another page there leaves the root).
    #[serde(default)]
    pub at_root: bool,
    /// The display name (1 to 80 characters).
    #[schema(example = "Ada Lovelace")]
    pub title: String,
    /// Up to 300 characters; line breaks are kept.
    pub bio: Option<String>,
    /// An http(s) image URL.
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub theme: ThemeBody,
    /// Up to 12, one per network.
    #[serde(default)]
    pub socials: Vec<SocialBody>,
    /// Up to 100, in order.
    #[serde(default)]
    pub items: Vec<ItemBody>,
    #[serde(default)]
    pub card: CardBody,
}

/// An edit; absent fields stay, `null` clears `bio` and `avatar_url`.
/// `items` replaces the whole list: give an existing item's `id` to keep it.
/// A page's handle and domain do not change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPage {
    pub at_root: Option<bool>,
    pub title: Option<String>,
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(value_type = Option<String>)]
    pub bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    pub theme: Option<ThemeBody>,
    pub socials: Option<Vec<SocialBody>>,
    pub items: Option<Vec<ItemBody>>,
    pub card: Option<CardBody>,
}

/// The look of a page.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThemeBody {
    /// `classic` (default), `sunset`, `forest`, `ocean` or `mono`.
    #[schema(example = "ocean")]
    pub preset: Option<String>,
    /// `auto` (default: the visitor's preference), `light` or `dark`.
    #[schema(example = "auto")]
    pub appearance: Option<String>,
    /// Colours of one's own, replacing the preset's.
    pub colors: Option<ColorsBody>,
}

/// Each `#rrggbb` (or `#rgb`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColorsBody {
    #[schema(example = "#0f172a")]
    pub background: String,
    #[schema(example = "#f8fafc")]
    pub text: String,
    #[schema(example = "#38bdf8")]
    pub button: String,
    #[schema(example = "#0f172a")]
    pub button_text: String,
}

/// A social icon.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocialBody {
    /// `instagram`, `x`, `tiktok`, `youtube`, `github`, `linkedin`,
    /// `mastodon`, `facebook`, `twitch`, `bluesky`, `website` or `email`.
    #[schema(example = "github")]
    pub network: String,
    /// An http(s) URL; for `email`, an address or a `mailto:` URL.
    #[schema(example = "https://github.com/ada")]
    pub url: String,
}

/// An item of the list: a button to one of the workspace's short links
/// (`type` `link`), or a heading (`type` `header`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    /// An existing item's id keeps it (and its place in analytics); absent
    /// for a new item.
    pub id: Option<String>,
    /// `link` or `header`.
    #[serde(rename = "type")]
    #[schema(example = "link")]
    pub kind: String,
    /// The short link (`type` `link`): clicks on the button are its clicks.
    pub link_id: Option<u64>,
    /// The button's text (`type` `link`); absent: the link's title, else
    /// its short URL.
    pub label: Option<String>,
    /// The heading (`type` `header`).
    pub text: Option<String>,
    /// Shown from this instant on.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub visible_from: Option<OffsetDateTime>,
    /// Shown until this instant (a link's own expiry also ends it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub visible_until: Option<OffsetDateTime>,
}

/// What link previews (Open Graph, Twitter Card) show; each field falls
/// back to the title, bio and avatar.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    pub title: Option<String>,
    pub description: Option<String>,
    /// An http(s) image URL.
    pub image: Option<String>,
}

/// The items' new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderItems {
    /// Every item id of the page, each once.
    pub item_ids: Vec<String>,
}

/// A page.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageView {
    pub id: u64,
    pub domain: String,
    pub handle: String,
    /// Also served at the domain's root.
    pub at_root: bool,
    /// Where the page is served.
    #[schema(example = "https://go.example.com/ada")]
    pub url: String,
    /// Whether engines serve it (false while its workspace is deleted).
    pub live: bool,
    pub title: String,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub theme: ThemeBody,
    pub socials: Vec<SocialBody>,
    pub items: Vec<ItemBody>,
    pub card: CardBody,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// The workspace's pages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageList {
    pub pages: Vec<PageView>,
}

/// A page's views and its items' clicks over `[from, to)`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageAnalytics {
    pub page_id: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    /// Visits of the page (revalidations included; HEAD and prefetches not).
    pub views: CountsView,
    /// Human clicks on the page's link items over human views.
    pub click_through_rate: f64,
    /// The page's link items now, in order.
    pub items: Vec<ItemClicks>,
}

/// One link item's clicks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemClicks {
    pub item_id: String,
    pub link_id: u64,
    /// Every click of the link over the range (from the page and anywhere
    /// else the link is shared).
    pub clicks: CountsView,
    /// Human clicks over the page's human views.
    pub click_through_rate: f64,
}

/// Query of a page's analytics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageAnalyticsQuery {
    /// Start (RFC 3339); default 24 hours before `to`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_start)]
    pub from: Option<OffsetDateTime>,
    /// End, excluded (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_end)]
    pub to: Option<OffsetDateTime>,
}

impl From<PageError> for ApiError {
    fn from(error: PageError) -> Self {
        let message = error.to_string();
        match error {
            PageError::Invalid(invalid) => {
                Self::bad_request("invalid_page", invalid.message).with_field(invalid.field)
            }
            PageError::Link(LinkError::CodeTaken { .. }) => {
                Self::new(409, "handle_taken", message).with_field("handle")
            }
            PageError::Link(LinkError::Reserved { .. }) => {
                Self::bad_request("reserved_handle", message).with_field("handle")
            }
            // Handles are checked apart: an invalid value here is the domain.
            PageError::Link(LinkError::Invalid(invalid)) => {
                Self::from(invalid).with_field("domain")
            }
            PageError::Link(other) => {
                let field = match &other {
                    LinkError::UnknownDomain { .. } | LinkError::DomainNotVerified { .. } => {
                        Some("domain")
                    }
                    _ => None,
                };
                let error = Self::from(other);
                match field {
                    Some(field) => error.with_field(field),
                    None => error,
                }
            }
            PageError::NotFound { .. } => Self::not_found(message),
            PageError::UnknownLink { field, .. } => {
                Self::bad_request("unknown_link", message).with_field(field)
            }
            PageError::BadOrder { .. } => {
                Self::bad_request("invalid_order", message).with_field("item_ids")
            }
            PageError::Store(store) => Self::from_fault(&store),
        }
    }
}

fn theme_input(theme: ThemeBody) -> ThemeInput {
    ThemeInput {
        preset: theme.preset,
        appearance: theme.appearance,
        colors: theme.colors.map(|colors| ColorsInput {
            background: colors.background,
            text: colors.text,
            button: colors.button,
            button_text: colors.button_text,
        }),
    }
}

fn socials_input(socials: Vec<SocialBody>) -> Vec<SocialInput> {
    socials
        .into_iter()
        .map(|social| SocialInput {
            network: social.network,
            url: social.url,
        })
        .collect()
}

fn card_input(card: CardBody) -> PageCard {
    PageCard {
        title: card.title,
        description: card.description,
        image: card.image,
    }
}

/// The items as the service takes them; a missing `link_id` or `text`, or
/// an unknown `type`, is refused naming it.
fn items_input(items: Vec<ItemBody>) -> Result<Vec<ItemInput>, ApiError> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let missing = |what: &str, kind: &str| {
                ApiError::bad_request(
                    "invalid_page",
                    format!("an item of type {kind} needs {what}"),
                )
                .with_field(format!("items[{index}].{what}"))
            };
            let kind = match item.kind.as_str() {
                "link" => ItemKind::Link {
                    link_id: item.link_id.ok_or_else(|| missing("link_id", "link"))?,
                    label: item.label,
                },
                "header" => ItemKind::Header {
                    text: item.text.ok_or_else(|| missing("text", "header"))?,
                },
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_page",
                        "type must be link or header",
                    )
                    .with_field(format!("items[{index}].type")));
                }
            };
            Ok(ItemInput {
                id: item.id,
                kind,
                visible_from: item.visible_from.map(to_millis),
                visible_until: item.visible_until.map(to_millis),
            })
        })
        .collect()
}

/// The page as the API shows it.
pub(crate) fn view(page: &PageRecord, url: String, live: bool) -> PageView {
    let content = &page.content;
    PageView {
        id: page.id,
        domain: page.domain.clone(),
        handle: page.handle.clone(),
        at_root: page.at_root,
        url,
        live,
        title: content.title.clone(),
        bio: content.bio.clone(),
        avatar_url: content.avatar_url.clone(),
        theme: ThemeBody {
            preset: Some(content.theme.preset.as_str().to_owned()),
            appearance: Some(content.theme.appearance.as_str().to_owned()),
            colors: content.theme.colors.as_ref().map(|colors| ColorsBody {
                background: colors.background.clone(),
                text: colors.text.clone(),
                button: colors.button.clone(),
                button_text: colors.button_text.clone(),
            }),
        },
        socials: content
            .socials
            .iter()
            .map(|social| SocialBody {
                network: social.network.as_str().to_owned(),
                url: social.url.clone(),
            })
            .collect(),
        items: content
            .items
            .iter()
            .map(|item| {
                let (kind, link_id, label, text) = match &item.kind {
                    ItemKind::Link { link_id, label } => {
                        ("link", Some(*link_id), label.clone(), None)
                    }
                    ItemKind::Header { text } => ("header", None, None, Some(text.clone())),
                };
                ItemBody {
                    id: Some(item.id.clone()),
                    kind: kind.to_owned(),
                    link_id,
                    label,
                    text,
                    visible_from: item.visible_from.map(to_datetime),
                    visible_until: item.visible_until.map(to_datetime),
                }
            })
            .collect(),
        card: CardBody {
            title: content.card.title.clone(),
            description: content.card.description.clone(),
            image: content.card.image.clone(),
        },
        created_at: to_datetime(page.created_at),
        updated_at: to_datetime(page.updated_at),
    }
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no page with id {raw:?}")))
}

/// `page` as the API shows it (its URL and whether it is live read).
fn render_view(state: &AppState, page: &PageRecord) -> Result<PageView, ApiError> {
    let url = state.pages.url(page)?;
    let live = state.pages.is_live(page)?;
    Ok(view(page, url, live))
}

/// Creates a page.
#[utoipa::path(
    post, path = "/api/v1/pages", tag = "pages", request_body = CreatePage,
    responses(
        (status = 201, body = PageView),
        (status = 400, description = "A field is invalid (`field` names it)", body = ErrorBody),
        (status = 409, description = "The handle is taken by a link or a page", body = ErrorBody),
        (status = 422, description = "The domain is not verified", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_page(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreatePage = super::read_json(&request, payload, state.max_body_bytes).await?;
    let input = NewPage {
        handle: body.handle,
        domain: body.domain,
        at_root: body.at_root,
        content: ContentInput {
            title: body.title,
            bio: body.bio,
            avatar_url: body.avatar_url,
            theme: theme_input(body.theme),
            socials: socials_input(body.socials),
            items: items_input(body.items)?,
            card: card_input(body.card),
        },
    };
    let workspace = caller.caller.workspace_id().to_owned();
    let view = blocking(move || {
        let page = state.pages.create(&workspace, &input, now_millis())?;
        render_view(&state, &page)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// The workspace's pages, oldest first.
#[utoipa::path(
    get, path = "/api/v1/pages", tag = "pages",
    responses((status = 200, body = PageList)),
    security(("api_key" = []))
)]
pub async fn list_pages(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let workspace = caller.caller.workspace_id().to_owned();
    let list = blocking(move || {
        let pages = state.pages.list(&workspace)?;
        let pages = pages
            .iter()
            .map(|page| render_view(&state, page))
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok::<_, ApiError>(PageList { pages })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One page.
#[utoipa::path(
    get, path = "/api/v1/pages/{id}", tag = "pages",
    params(("id" = u64, Path, description = "Page id")),
    responses((status = 200, body = PageView), (status = 404, description = "No such page", body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_page(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let workspace = caller.caller.workspace_id().to_owned();
    let view = blocking(move || {
        let page = state.pages.page(&workspace, id)?;
        render_view(&state, &page)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Edits a page; engines serve the new version within moments.
#[utoipa::path(
    patch, path = "/api/v1/pages/{id}", tag = "pages", request_body = PatchPage,
    params(("id" = u64, Path, description = "Page id")),
    responses(
        (status = 200, body = PageView),
        (status = 400, description = "A field is invalid (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such page", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn patch_page(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let body: PatchPage = super::read_json(&request, payload, state.max_body_bytes).await?;
    let changes = PageChanges {
        at_root: body.at_root,
        title: body.title,
        bio: body.bio,
        avatar_url: body.avatar_url,
        theme: body.theme.map(theme_input),
        socials: body.socials.map(socials_input),
        items: body.items.map(items_input).transpose()?,
        card: body.card.map(card_input),
    };
    let workspace = caller.caller.workspace_id().to_owned();
    let view = blocking(move || {
        let page = state.pages.update(&workspace, id, &changes, now_millis())?;
        render_view(&state, &page)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Puts the page's items in a new order in one call.
#[utoipa::path(
    post, path = "/api/v1/pages/{id}/reorder", tag = "pages", request_body = ReorderItems,
    params(("id" = u64, Path, description = "Page id")),
    responses(
        (status = 200, body = PageView),
        (status = 400, description = "`item_ids` is not each item id exactly once", body = ErrorBody),
        (status = 404, description = "No such page", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn reorder_page(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let body: ReorderItems = super::read_json(&request, payload, state.max_body_bytes).await?;
    let order = body.item_ids;
    let workspace = caller.caller.workspace_id().to_owned();
    let view = blocking(move || {
        let page = state.pages.reorder(&workspace, id, &order, now_millis())?;
        render_view(&state, &page)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Removes a page for good: its handle answers 404 and is free again. The
/// links it showed stay.
#[utoipa::path(
    delete, path = "/api/v1/pages/{id}", tag = "pages",
    params(("id" = u64, Path, description = "Page id")),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such page", body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn delete_page(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let workspace = caller.caller.workspace_id().to_owned();
    blocking(move || state.pages.delete(&workspace, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A QR code of the page's URL, as an SVG or PNG image (the same options
/// as a link's).
#[utoipa::path(
    get, path = "/api/v1/pages/{id}/qr", tag = "pages",
    params(("id" = u64, Path, description = "Page id"), super::qr::QrQuery),
    responses(
        (status = 200, description = "The QR code", content(("image/svg+xml"), ("image/png"))),
        (status = 400, description = "Bad or unknown query parameter (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such page", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn page_qr(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let workspace = caller.caller.workspace_id().to_owned();
    let pages = state.pages.clone();
    super::qr::image_answer(&request, move || {
        let page = pages.page(&workspace, id)?;
        let url = pages.url(&page)?;
        Ok((page.handle, url))
    })
    .await
}

/// The page's views and its link items' clicks, with click-through rates.
#[utoipa::path(
    get, path = "/api/v1/pages/{id}/analytics", tag = "pages",
    params(("id" = u64, Path, description = "Page id"), PageAnalyticsQuery),
    responses(
        (status = 200, body = PageAnalytics), (status = 400, description = "Bad query", body = ErrorBody),
        (status = 404, description = "No such page", body = ErrorBody),
        (status = 503, description = "No click store, or it did not answer", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn page_analytics(
    caller: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query: PageAnalyticsQuery = super::parse_query(&request)?;
    let id = parse_id(&id)?;
    let (from, to) = super::analytics::range(query.from, query.to)?;
    let reader = super::analytics::reader(&state)?;
    let workspace = caller.caller.workspace_id().to_owned();
    let answer = blocking(move || {
        let page = state.pages.page(&workspace, id)?;
        let total = |link: u64| -> Result<Counts, ApiError> {
            let mut sum = Counts::default();
            for (_, counts) in reader.series(link, from, to, Interval::Day)? {
                sum.humans += counts.humans;
                sum.bots += counts.bots;
            }
            Ok(sum)
        };
        let views = total(page.id)?;
        let rate = |clicks: u64| match views.humans {
            0 => 0.0,
            humans => clicks as f64 / humans as f64,
        };
        let mut items = Vec::new();
        let mut clicked = 0;
        for item in &page.content.items {
            let ItemKind::Link { link_id, .. } = item.kind else {
                continue;
            };
            let clicks = total(link_id)?;
            clicked += clicks.humans;
            items.push(ItemClicks {
                item_id: item.id.clone(),
                link_id,
                click_through_rate: rate(clicks.humans),
                clicks: clicks.into(),
            });
        }
        Ok::<_, ApiError>(PageAnalytics {
            page_id: page.id,
            from: to_datetime(from),
            to: to_datetime(to),
            click_through_rate: rate(clicked),
            views: views.into(),
            items,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}
