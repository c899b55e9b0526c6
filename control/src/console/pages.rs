//! Link-in-bio pages: the workspace's pages (address, items, QR code),
//! creating and removing one, and the editor: every field of a page, its
//! items ordered by a position per row, and beside it the page as it would
//! render, in a sandboxed frame that the form's Preview button (or
//! `console.js`, as one types) fills from `POST …/preview`, storing
//! nothing ([`super::page_form`] reads the form). Everything goes through
//! [`crate::pages::PageService`], as the API does.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ricochet_model::{LinkState, now_millis};

use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::page::{self, Layout};
use super::page_form::{COLORS, EditorForm, FormError, ItemRow, Origins, optional, row_field};
use super::session::Console;
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::keys::Scope;
use crate::pages::NewPage;
use crate::pages::content::{Appearance, Network, PageRecord, ThemePreset};
use crate::pages::input::ContentInput;
use crate::service::{LinkQuery, LinkService};
use crate::store::{LinkFilter, LinkSort};

/// Links an item's menu offers: the newest, and always those on the page.
const LINK_CHOICES: usize = 500;

/// The editor's policy: the console's own, plus what its preview frame
/// needs. A `srcdoc` frame inherits its parent's policy, so the rendered
/// page's inline stylesheet and remote avatar must be allowed here; the
/// Preview button (without script) loads the preview route into the frame.
const EDITOR_POLICY: &str = "default-src 'none'; img-src 'self' data: http: https:; \
     style-src 'self' 'unsafe-inline'; script-src 'self'; form-action 'self'; frame-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";

/// A preview's policy: the page's inline stylesheet and its images, no
/// script, sandboxed, framed by the console only.
const PREVIEW_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src http: https:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox";

fn parse_id(raw: &str) -> Result<u64, ConsoleError> {
    raw.parse().map_err(|_| {
        ApiError::not_found(format!("There is no page {raw:?} in this workspace.")).into()
    })
}

/// A page as listed.
#[derive(Debug, Clone)]
pub struct PageRow {
    pub id: u64,
    pub handle: String,
    pub title: String,
    pub url: String,
    pub items: usize,
    pub live: bool,
    /// Also served at the root of its domain.
    pub at_root: bool,
}

/// The new page form's values.
#[derive(Debug, Clone, Default)]
struct NewForm {
    handle: String,
    title: String,
    domain: String,
}

#[derive(Template)]
#[template(path = "console/pages.html")]
struct ListPage {
    layout: Layout,
    pages: Vec<PageRow>,
    domains: Vec<String>,
    form: NewForm,
    errors: FieldErrors,
}

async fn list_page(
    console: &Console,
    status: u16,
    notice_code: Option<&str>,
    mut form: NewForm,
    errors: FieldErrors,
) -> Result<HttpResponse, ConsoleError> {
    let pages = console.state.pages.clone();
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let (rows, domains) = blocking(move || {
        let rows = pages
            .list(&workspace)?
            .into_iter()
            .map(|page| {
                Ok(PageRow {
                    url: pages.url(&page)?,
                    live: pages.is_live(&page)?,
                    id: page.id,
                    items: page.content.items.len(),
                    at_root: page.at_root,
                    handle: page.handle,
                    title: page.content.title,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok::<_, ApiError>((rows, super::links::domain_names(&service, &workspace)?))
    })
    .await?;
    if form.domain.is_empty() {
        form.domain = domains.first().cloned().unwrap_or_default();
    }
    let layout = Layout::of(console, "Pages", "pages").with_notice(notice_code);
    Ok(page::render(
        status,
        &ListPage {
            layout,
            pages: rows,
            domains,
            form,
            errors,
        },
    ))
}

/// `GET /console/pages`.
pub async fn list(console: Console, request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksRead)?;
    let query = FormData::parse(request.query_string().as_bytes());
    list_page(
        &console,
        200,
        query.optional("notice"),
        NewForm::default(),
        FieldErrors::none(),
    )
    .await
}

/// `POST /console/pages`: a new page with its handle and title, then its
/// editor.
pub async fn create(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::LinksWrite)?;
    let values = NewForm {
        handle: form.get("handle").to_owned(),
        title: form.get("title").to_owned(),
        domain: form.get("domain").to_owned(),
    };
    let input = NewPage {
        handle: values.handle.clone(),
        domain: optional(&values.domain),
        at_root: false,
        content: ContentInput {
            title: values.title.clone(),
            ..ContentInput::default()
        },
    };
    let pages = console.state.pages.clone();
    let workspace = console.workspace_id().to_owned();
    let created =
        blocking(move || Ok::<_, ApiError>(pages.create(&workspace, &input, now_millis()))).await?;
    match created {
        Ok(page) => Ok(page::see_other(&format!(
            "{}/pages/{}/edit?notice=page-created",
            super::PREFIX,
            page.id
        ))),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status >= 500 {
                return Err(error.into());
            }
            let errors = FieldErrors::from_api(&error, &["handle", "title", "domain"]);
            list_page(&console, error.status, None, values, errors).await
        }
    }
}

/// `POST /console/pages/{id}/delete`.
pub async fn remove(
    submitted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let console = submitted.console;
    console.require(Scope::LinksWrite)?;
    let id = parse_id(&id)?;
    let pages = console.state.pages.clone();
    let workspace = console.workspace_id().to_owned();
    blocking(move || pages.delete(&workspace, id)).await?;
    Ok(page::see_other(&format!(
        "{}/pages?notice=page-removed",
        super::PREFIX
    )))
}

/// `GET /console/pages/{id}/qr`: the QR code of the page's address
/// (`format`, `size`, `margin`, `download` as the API takes them).
pub async fn qr(
    console: Console,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksRead)?;
    let id = parse_id(&id)?;
    let pages = console.state.pages.clone();
    let workspace = console.workspace_id().to_owned();
    Ok(crate::api::qr::image_answer(&request, move || {
        let page = pages.page(&workspace, id)?;
        let url = pages.url(&page)?;
        Ok((page.handle, url))
    })
    .await?)
}

/// A link an item may lead to.
#[derive(Debug, Clone)]
pub struct LinkChoice {
    pub id: String,
    pub label: String,
}

/// The newest links of `workspace`, and those of `wanted` (on the page or
/// chosen in the form) beyond them.
fn link_choices(
    service: &LinkService,
    workspace: &str,
    wanted: impl Iterator<Item = u64>,
) -> Result<Vec<LinkChoice>, ApiError> {
    let query = LinkQuery {
        filter: LinkFilter::default(),
        sort: LinkSort::NewestFirst,
        cursor: None,
        limit: LINK_CHOICES,
    };
    let mut links = service.list(workspace, &query)?.links;
    for id in wanted {
        if links.iter().any(|link| link.id == id) {
            continue;
        }
        // A link removed for good since is named by the save's error.
        if let Ok(link) = service.link(workspace, id) {
            links.push(link);
        }
    }
    Ok(links
        .iter()
        .map(|link| {
            let address = format!("{}/{}", link.domain, link.code);
            let mut label = match link.title.as_deref().filter(|t| !t.is_empty()) {
                Some(title) => format!("{title} · {address}"),
                None => address,
            };
            match link.state {
                LinkState::Active => {}
                LinkState::Disabled => label.push_str(" (disabled)"),
                LinkState::Deleted => label.push_str(" (deleted)"),
            }
            LinkChoice {
                id: link.id.to_string(),
                label,
            }
        })
        .collect())
}

/// A custom colour's input.
#[derive(Debug, Clone)]
pub struct ColorField {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub error: Option<String>,
}

/// A social icon's input.
#[derive(Debug, Clone)]
pub struct SocialField {
    pub network: &'static str,
    pub label: &'static str,
    pub value: String,
    pub error: Option<String>,
}

/// An item row with its errors.
#[derive(Debug, Clone)]
pub struct ItemField {
    /// The row's number in the form's field names.
    pub index: usize,
    pub row: ItemRow,
    pub type_error: Option<String>,
    pub link_error: Option<String>,
    pub label_error: Option<String>,
    pub from_error: Option<String>,
    pub until_error: Option<String>,
    pub position_error: Option<String>,
    pub row_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/page_form.html")]
struct EditorPage {
    layout: Layout,
    id: u64,
    handle: String,
    domain: String,
    url: String,
    live: bool,
    form: EditorForm,
    presets: Vec<&'static str>,
    appearances: Vec<&'static str>,
    colors: Vec<ColorField>,
    socials: Vec<SocialField>,
    items: Vec<ItemField>,
    links: Vec<LinkChoice>,
    errors: FieldErrors,
    /// The page as it renders (or why it cannot), for the frame's `srcdoc`.
    preview: String,
}

#[derive(Template)]
#[template(path = "console/page_preview_error.html")]
struct PreviewRefusal<'a> {
    message: &'a str,
}

/// What the preview frame shows when the page cannot render.
fn refusal(error: &FormError) -> String {
    let message = error.describe();
    PreviewRefusal { message: &message }
        .render()
        .unwrap_or_else(|_| "<!doctype html><title>Preview</title><p>Cannot preview.</p>".into())
}

/// An answer of the preview route: the page alone, sandboxed.
fn preview_answer(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", PREVIEW_POLICY))
        .insert_header(("X-Frame-Options", "SAMEORIGIN"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}

/// The content of `page` as a preview takes it (no item ids).
fn stored_input(page: &PageRecord) -> ContentInput {
    let mut input = ContentInput::from(&page.content);
    for item in &mut input.items {
        item.id = None;
    }
    input
}

/// What the editor shows.
struct Shown {
    form: Option<EditorForm>,
    errors: FieldErrors,
    /// The preview frame's document; `None`: the stored page's.
    preview: Option<String>,
}

async fn editor(
    console: &Console,
    id: u64,
    status: u16,
    notice_code: Option<&str>,
    shown: Shown,
) -> Result<HttpResponse, ConsoleError> {
    let pages = console.state.pages.clone();
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let chosen: Vec<u64> = shown
        .form
        .as_ref()
        .map(|form| form.link_ids().collect())
        .unwrap_or_default();
    let render_stored = shown.preview.is_none();
    let (page, url, live, links, stored_preview) = blocking(move || {
        let page = pages.page(&workspace, id)?;
        let url = pages.url(&page)?;
        let live = pages.is_live(&page)?;
        let on_page = page.content.items.iter().filter_map(|i| i.kind.link_id());
        let links = link_choices(&service, &workspace, on_page.chain(chosen))?;
        let preview = render_stored.then(|| {
            pages
                .preview(&workspace, &page.handle, &stored_input(&page), now_millis())
                .map_err(|error| Origins::default().place(&ApiError::from(error)))
        });
        Ok::<_, ApiError>((page, url, live, links, preview))
    })
    .await?;
    let preview = match (shown.preview, stored_preview) {
        (Some(preview), _) => preview,
        (None, Some(Ok(html))) => html,
        (None, Some(Err(error))) => refusal(&error),
        (None, None) => String::new(),
    };
    let form = shown.form.unwrap_or_else(|| EditorForm::of(&page));
    let errors = shown.errors;
    let error = |field: String| errors.get(&field).map(str::to_owned);
    let colors = COLORS
        .iter()
        .zip(&form.colors)
        .map(|((name, label, _), value)| ColorField {
            name,
            label,
            value: value.clone(),
            error: error(format!("color_{name}")),
        })
        .collect();
    let socials = Network::ALL
        .iter()
        .zip(&form.socials)
        .map(|(network, value)| SocialField {
            network: network.as_str(),
            label: network.label(),
            value: value.clone(),
            error: error(format!("social_{}", network.as_str())),
        })
        .collect();
    let items = form
        .items
        .iter()
        .enumerate()
        .map(|(index, row)| ItemField {
            index,
            row: row.clone(),
            type_error: error(row_field(index, "type")),
            link_error: error(row_field(index, "link")),
            label_error: error(row_field(index, "label")),
            from_error: error(row_field(index, "from")),
            until_error: error(row_field(index, "until")),
            position_error: error(row_field(index, "position")),
            row_error: error(row_field(index, "row")),
        })
        .collect();
    let layout =
        Layout::of(console, format!("Edit page {}", page.handle), "pages").with_notice(notice_code);
    let mut response = page::render(
        status,
        &EditorPage {
            layout,
            id,
            handle: page.handle,
            domain: page.domain,
            url,
            live,
            presets: ThemePreset::ALL.iter().map(|p| p.as_str()).collect(),
            appearances: Appearance::ALL.iter().map(|a| a.as_str()).collect(),
            colors,
            socials,
            items,
            links,
            form,
            errors,
            preview,
        },
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(EDITOR_POLICY),
    );
    Ok(response)
}

/// `GET /console/pages/{id}/edit`.
pub async fn edit_page(
    console: Console,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksWrite)?;
    let id = parse_id(&id)?;
    let query = FormData::parse(request.query_string().as_bytes());
    let shown = Shown {
        form: None,
        errors: FieldErrors::none(),
        preview: None,
    };
    editor(&console, id, 200, query.optional("notice"), shown).await
}

/// `POST /console/pages/{id}/edit`: saved, or the editor again with the
/// error next to its field and what was typed kept.
pub async fn update(
    submitted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::LinksWrite)?;
    let id = parse_id(&id)?;
    let values = EditorForm::read(&form);
    let refused = |error: FormError| Shown {
        errors: error.errors(),
        preview: Some(refusal(&error)),
        form: Some(values.clone()),
    };
    let (changes, origins) = match values.changes() {
        Ok(built) => built,
        Err(error) => return editor(&console, id, 400, None, refused(error)).await,
    };
    let pages = console.state.pages.clone();
    let workspace = console.workspace_id().to_owned();
    let saved =
        blocking(move || Ok::<_, ApiError>(pages.update(&workspace, id, &changes, now_millis())))
            .await?;
    match saved {
        Ok(_) => Ok(page::see_other(&format!(
            "{}/pages/{id}/edit?notice=page-saved",
            super::PREFIX
        ))),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status >= 500 || error.status == 404 {
                return Err(error.into());
            }
            let shown = refused(origins.place(&error));
            editor(&console, id, error.status, None, shown).await
        }
    }
}

/// `POST /console/pages/{id}/preview`: the page the submitted editor
/// describes, rendered and stored nowhere; 400 with why when it cannot be.
pub async fn preview(
    submitted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::LinksWrite)?;
    let id = parse_id(&id)?;
    let (input, origins) = match EditorForm::read(&form).content(false) {
        Ok(built) => built,
        Err(error) => return Ok(preview_answer(400, refusal(&error))),
    };
    let pages = console.state.pages.clone();
    let workspace = console.workspace_id().to_owned();
    let rendered = blocking(move || {
        let page = pages.page(&workspace, id)?;
        Ok::<_, ApiError>(pages.preview(&workspace, &page.handle, &input, now_millis()))
    })
    .await?;
    match rendered {
        Ok(html) => Ok(preview_answer(200, html)),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status >= 500 {
                return Err(error.into());
            }
            Ok(preview_answer(400, refusal(&origins.place(&error))))
        }
    }
}
