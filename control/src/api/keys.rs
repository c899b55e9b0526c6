//! API keys of the caller's workspace: `GET|POST /api/v1/keys`,
//! `DELETE /api/v1/keys/{id}` (scope `admin`: owners and admins, or an admin
//! key). A key created here acts for its creator: with at most their role,
//! and only while they stay in the workspace. Its secret is answered once.

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{Authorized, Caller, Identity, scope};
use super::error::{ApiError, ErrorBody};
use super::types::to_datetime;
use super::{AppState, blocking};
use crate::keys::{KeyRing, Scope, allows};
use crate::store::ApiKeyRecord;
use crate::workspaces::role_allows;

/// Longest key name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// 1 to 100 characters, to recognise the key by.
    #[schema(min_length = 1, max_length = 100, example = "CI")]
    pub name: String,
    /// links:read, links:write, analytics:read, domains:write, admin (all of them).
    #[schema(example = json!(["links:read", "links:write"]))]
    pub scopes: Vec<String>,
}

/// A key as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The user who created it over the API; `null` for keys made with the CLI.
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A key just created, with its token, shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKey {
    pub key: KeyView,
    /// `rk_<id>_<secret>`, for `Authorization: Bearer`.
    pub token: String,
}

/// The workspace's keys, revoked ones included, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

fn view(key: &ApiKeyRecord) -> KeyView {
    KeyView {
        id: key.id.clone(),
        name: key.name.clone(),
        scopes: key.scopes.clone(),
        created_by: key.created_by.clone(),
        created_at: to_datetime(key.created_at),
        revoked_at: key.revoked_at.map(to_datetime),
    }
}

/// The keys of the caller's workspace.
#[utoipa::path(
    get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList)),
    security(("api_key" = []))
)]
pub async fn list_keys(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let keys = blocking(move || KeyRing::new(worker.service.store()).list(&workspace)).await?;
    Ok(HttpResponse::Ok().json(KeyList {
        keys: keys.iter().map(view).collect(),
    }))
}

/// Checks a new key's name and scopes for `caller` (who may hand out only
/// what it may do itself): the trimmed name, the scopes, and the user the
/// key acts for. The API and the console create keys through here.
pub fn check_new_key(
    caller: &Caller,
    name: &str,
    scope_names: &[String],
) -> Result<(String, Vec<Scope>, Option<String>), ApiError> {
    let name = name.trim().to_owned();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a key name has 1 to 100 characters and no control characters",
        )
        .with_field("name"));
    }
    if scope_names.is_empty() {
        return Err(
            ApiError::bad_request("invalid_scope", "name at least one scope").with_field("scopes"),
        );
    }
    let mut scopes = Vec::with_capacity(scope_names.len());
    for text in scope_names {
        let scope = Scope::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_scope",
                format!(
                    "unknown scope {:?}: use links:read, links:write, analytics:read, \
                     domains:write or admin",
                    text.chars().take(40).collect::<String>()
                ),
            )
            .with_field("scopes")
        })?;
        // The caller may hand out only what it may do itself.
        let held = match &caller.identity {
            Identity::Key(key) => allows(&key.scopes, scope),
            Identity::Session { .. } => true,
        } && role_allows(caller.role, scope);
        if !held {
            return Err(ApiError::new(
                403,
                "insufficient_scope",
                format!("you cannot create a key with the {} scope", scope.as_str()),
            )
            .with_field("scopes"));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let created_by = match &caller.identity {
        Identity::Session { user, .. } => Some(user.id.clone()),
        Identity::Key(key) => key.created_by.clone(),
    };
    Ok((name, scopes, created_by))
}

/// Creates a key in the caller's workspace. Its scopes cannot exceed what
/// the caller may do; the token is answered once.
#[utoipa::path(
    post, path = "/api/v1/keys", tag = "keys", request_body = CreateKey,
    responses(
        (status = 201, body = IssuedKey),
        (status = 400, description = "Invalid body, name or scope", body = ErrorBody),
        (status = 403, description = "A scope the caller does not hold", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_key(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: CreateKey = super::read_json(&request, payload, state.max_body_bytes).await?;
    let (name, scopes, created_by) = check_new_key(&caller.caller, &input.name, &input.scopes)?;
    let workspace = caller.caller.workspace_id().to_owned();
    let worker = state.clone();
    let issued = blocking(move || {
        KeyRing::new(worker.service.store()).create(
            &workspace,
            created_by.as_deref(),
            &name,
            &scopes,
            now_millis(),
        )
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(IssuedKey {
            key: view(&issued.record),
            token: issued.token,
        }))
}

/// Revokes a key of the caller's workspace at once.
#[utoipa::path(
    delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "Revoked (or already revoked)", body = KeyView),
        (status = 404, description = "No such key in this workspace", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn revoke_key(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let workspace = caller.caller.workspace_id().to_owned();
    let worker = state.clone();
    let target = id.clone();
    let revoked = blocking(move || {
        KeyRing::new(worker.service.store()).revoke(Some(&workspace), &target, now_millis())
    })
    .await?;
    match revoked {
        Some(key) => Ok(HttpResponse::Ok().json(view(&key))),
        None => Err(ApiError::not_found(format!("no key with id {id:?}"))),
    }
}
