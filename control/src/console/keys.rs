//! API keys of the workspace (admins and owners): the list, creating one
//! (its secret shown once, on the answer page only), and revoking.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ricochet_model::now_millis;

use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::page::{self, Layout};
use super::session::Console;
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::api::keys::check_new_key;
use crate::keys::{KeyRing, Scope};

/// The scopes a key can have, in form order.
const SCOPES: [(&str, &str); 5] = [
    ("links:read", "Read links"),
    ("links:write", "Create and edit links"),
    ("analytics:read", "Read analytics"),
    ("domains:write", "Manage domains"),
    ("admin", "Everything (admin)"),
];

/// A key as listed (never its secret).
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    scopes: Vec<(&'static str, &'static str, bool)>,
    name: String,
    /// The new key's token, shown once.
    secret: Option<String>,
    errors: FieldErrors,
}

async fn keys_page(
    console: &Console,
    status: u16,
    notice: Option<&str>,
    secret: Option<String>,
    (name, chosen): (String, Vec<String>),
    errors: FieldErrors,
) -> Result<HttpResponse, ConsoleError> {
    let state = console.state.clone();
    let workspace = console.workspace_id().to_owned();
    let keys = blocking(move || KeyRing::new(state.service.store()).list(&workspace)).await?;
    let keys = keys
        .into_iter()
        .rev()
        .map(|key| KeyRow {
            id: key.id,
            name: key.name,
            scopes: key.scopes.join(", "),
            created: page::date_time(key.created_at),
            revoked: key.revoked_at.map(page::date_time),
        })
        .collect();
    Ok(page::render(
        status,
        &KeysPage {
            layout: Layout::of(console, "API keys", "keys").with_notice(notice),
            keys,
            scopes: SCOPES
                .iter()
                .map(|(value, label)| (*value, *label, chosen.iter().any(|c| c == value)))
                .collect(),
            name,
            secret,
            errors,
        },
    ))
}

/// `GET /console/keys`.
pub async fn list(console: Console, request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::Admin)?;
    let query = FormData::parse(request.query_string().as_bytes());
    keys_page(
        &console,
        200,
        query.optional("notice"),
        None,
        (String::new(), vec!["links:read".to_owned()]),
        FieldErrors::none(),
    )
    .await
}

/// `POST /console/keys`: a new key, its token shown on this page only.
pub async fn create(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::Admin)?;
    let name = form.get("name").to_owned();
    let scopes: Vec<String> = form.all("scopes").into_iter().map(str::to_owned).collect();
    let checked = check_new_key(&console.caller, &name, &scopes);
    let (key_name, key_scopes, created_by) = match checked {
        Ok(checked) => checked,
        Err(error) if error.status < 500 => {
            let errors = FieldErrors::from_api(&error, &["name", "scopes"]);
            return keys_page(&console, error.status, None, None, (name, scopes), errors).await;
        }
        Err(error) => return Err(error.into()),
    };
    let state = console.state.clone();
    let workspace = console.workspace_id().to_owned();
    let issued = blocking(move || {
        KeyRing::new(state.service.store()).create(
            &workspace,
            created_by.as_deref(),
            &key_name,
            &key_scopes,
            now_millis(),
        )
    })
    .await?;
    keys_page(
        &console,
        201,
        None,
        Some(issued.token),
        (String::new(), vec!["links:read".to_owned()]),
        FieldErrors::none(),
    )
    .await
}

/// `POST /console/keys/{id}/revoke`.
pub async fn revoke(
    submitted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let console = submitted.console;
    console.require(Scope::Admin)?;
    let state = console.state.clone();
    let workspace = console.workspace_id().to_owned();
    let id = id.into_inner();
    let wanted = id.clone();
    let revoked = blocking(move || {
        KeyRing::new(state.service.store()).revoke(Some(&workspace), &wanted, now_millis())
    })
    .await?;
    if revoked.is_none() {
        return Err(
            ApiError::not_found(format!("There is no API key {id:?} in this workspace.")).into(),
        );
    }
    Ok(page::see_other(&format!(
        "{}/keys?notice=key-revoked",
        super::PREFIX
    )))
}
