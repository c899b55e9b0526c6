//! Signing in and the signed-in user's sessions. Routes:
//! - `POST /api/v1/auth/sign-in` (email + password → session cookie, user, CSRF token)
//! - `POST /api/v1/auth/sign-out`
//! - `GET /api/v1/auth/session` (the current user, session and CSRF token)
//! - `GET /api/v1/auth/sessions`, `DELETE /api/v1/auth/sessions/{id}`
//! - `POST /api/v1/auth/password` (ends the user's other sessions)
//!
//! Hashing and verification run on the blocking pool. Passwords, hashes and
//! session tokens are never answered or logged; the token only travels in
//! `Set-Cookie`.

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{SESSION_COOKIE, SignedIn};
use super::error::{ApiError, ErrorBody};
use super::types::to_datetime;
use super::{AppState, blocking};
use crate::accounts::{
    AccountError, ClientInfo, OpenedSession, csrf_token, email::normalize_email,
};
use crate::store::{Role, SessionRecord, StoreError, UserRecord, WorkspaceRecord};

/// Longest password accepted in a request, in characters (the policy's byte
/// limit always fits in it).
pub(super) const MAX_PASSWORD_CHARS: usize = 1024;

/// Email and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(max_length = 254, example = "owner@ricochet.local")]
    pub email: String,
    #[schema(max_length = 1024)]
    pub password: String,
}

/// The current password and a new one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[schema(max_length = 1024)]
    pub current_password: String,
    /// At least 12 characters, at most 1024 bytes, not a common password.
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

/// A user as the API shows them (never their password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub password_changed_at: OffsetDateTime,
}

/// A session as the API shows it (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: OffsetDateTime,
    /// When it expires if it stays unused (idle or absolute expiry, the earlier).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    pub user_agent: String,
    pub client_address: String,
    /// Whether this is the session of the request.
    pub current: bool,
}

/// The signed-in user, their session, the workspace it acts in, and the
/// session's CSRF token to send as `X-CSRF-Token` with every request that
/// changes state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub user: UserView,
    pub session: SessionView,
    /// Where workspace-scoped routes act; `null` when the user belongs to none.
    pub workspace: Option<CurrentWorkspace>,
    pub csrf_token: String,
}

/// The workspace a session acts in, and the user's role there.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentWorkspace {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "owner")]
    pub role: String,
}

/// A user's own settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: String,
}

/// The signed-in user's live sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            created_at: to_datetime(user.created_at),
            password_changed_at: to_datetime(user.password_changed_at),
        }
    }
}

fn session_view(state: &AppState, session: &SessionRecord, current: &str) -> SessionView {
    SessionView {
        id: session.id.clone(),
        created_at: to_datetime(session.created_at),
        last_seen_at: to_datetime(session.last_seen_at),
        expires_at: to_datetime(state.accounts.expires_at(session)),
        user_agent: session.user_agent.clone(),
        client_address: session.client_address.clone(),
        current: session.id == current,
    }
}

pub(super) fn session_info(
    state: &AppState,
    user: &UserRecord,
    session: &SessionRecord,
    token: &str,
    workspace: Option<(WorkspaceRecord, Role)>,
) -> SessionInfo {
    SessionInfo {
        user: UserView::from(user),
        session: session_view(state, session, &session.id),
        workspace: workspace.map(|(workspace, role)| CurrentWorkspace {
            id: workspace.id,
            name: workspace.name,
            role: role.as_str().to_owned(),
        }),
        csrf_token: csrf_token(token),
    }
}

/// The workspace `session` acts in and the user's role there, if any.
fn session_workspace(
    state: &AppState,
    user: &UserRecord,
    session: &SessionRecord,
) -> Result<Option<(WorkspaceRecord, Role)>, StoreError> {
    match &session.workspace_id {
        Some(id) => Ok(
            match (
                state.workspaces.live(id)?,
                state.workspaces.role_of(id, &user.id)?,
            ) {
                (Some(workspace), Some(role)) => Some((workspace, role)),
                _ => None,
            },
        ),
        None => state.workspaces.first_of(&user.id),
    }
}

/// Where a request came from, kept with a new session.
pub(crate) fn client_info(request: &HttpRequest) -> ClientInfo {
    ClientInfo {
        user_agent: request
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        address: request
            .peer_addr()
            .map(|addr| addr.ip().to_string())
            .unwrap_or_default(),
    }
}

/// The cookie carrying `token` (or, when `None`, one that clears it):
/// HttpOnly, SameSite=Lax, Path=/, and Secure over HTTPS.
pub(crate) fn cookie(state: &AppState, request: &HttpRequest, token: Option<&str>) -> String {
    let max_age = match token {
        Some(_) => state.accounts.settings().absolute_timeout_ms / 1000,
        None => 0,
    };
    let secure = state.behind_https || request.connection_info().scheme() == "https";
    format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        token.unwrap_or(""),
        if secure { "; Secure" } else { "" }
    )
}

/// A password field over [`MAX_PASSWORD_CHARS`].
pub(super) fn too_long(field: &'static str) -> ApiError {
    ApiError::bad_request(
        "invalid_field",
        format!("{field} is over {MAX_PASSWORD_CHARS} characters"),
    )
    .with_field(field)
}

/// Signs in with email and password: sets the `ricochet_session` cookie and
/// answers the user and the CSRF token.
#[utoipa::path(
    post, path = "/api/v1/auth/sign-in", tag = "auth", request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the session", body = SessionInfo,
            headers(("Set-Cookie" = String, description = "`ricochet_session=…; Path=/; HttpOnly; SameSite=Lax; Max-Age=…` (and `Secure` over HTTPS)"))),
        (status = 400, description = "Invalid body or email address", body = ErrorBody),
        (status = 401, description = "The email or password is wrong (one answer for both)", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 429, description = "Too many attempts for this email or from this address; retry after `Retry-After` seconds", body = ErrorBody)
    )
)]
pub async fn sign_in(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: SignIn = super::read_json(&request, payload, state.max_body_bytes).await?;
    if input.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(too_long("password"));
    }
    let (opened, session, workspace) =
        open_session(&state, &request, &input.email, input.password).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Set-Cookie", cookie(&state, &request, Some(&opened.token))))
        .insert_header(("Cache-Control", "no-store"))
        .json(session_info(
            &state,
            &opened.user,
            &session,
            &opened.token,
            workspace,
        )))
}

/// Checks the email and password (throttled per address and per email) and
/// opens a session acting in the user's first workspace; the API and the
/// console sign in through here.
pub(crate) async fn open_session(
    state: &web::Data<AppState>,
    request: &HttpRequest,
    email: &str,
    password: String,
) -> Result<
    (
        OpenedSession,
        SessionRecord,
        Option<(WorkspaceRecord, Role)>,
    ),
    ApiError,
> {
    let email = normalize_email(email)
        .map_err(|reason| ApiError::from(AccountError::InvalidEmail(reason)))?;
    let client = client_info(request);
    state.sign_in_limits.take(&email, &client.address)?;
    let worker = state.clone();
    // The session acts in the user's first workspace until they switch; if
    // they are removed from it, the session stops acting there at once.
    let (opened, session, workspace) = blocking(move || {
        let opened = worker
            .accounts
            .sign_in(&email, &password, &client, now_millis())?;
        let workspace = worker.workspaces.first_of(&opened.user.id)?;
        let session = worker.accounts.set_workspace(
            &opened.session,
            workspace.as_ref().map(|(w, _)| w.id.as_str()),
        )?;
        Ok::<_, ApiError>((opened, session, workspace))
    })
    .await?;
    Ok((opened, session, workspace))
}

/// Signs out: ends the session of the cookie and clears the cookie.
#[utoipa::path(
    post, path = "/api/v1/auth/sign-out", tag = "auth",
    responses((status = 204, description = "Signed out; the cookie is cleared")),
    security(("session" = []))
)]
pub async fn sign_out(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    blocking(move || {
        worker
            .accounts
            .revoke(&signed_in.user.id, &signed_in.session.id)
    })
    .await?;
    Ok(HttpResponse::NoContent()
        .insert_header(("Set-Cookie", cookie(&state, &request, None)))
        .finish())
}

/// The signed-in user, their session and its CSRF token.
#[utoipa::path(
    get, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 200, body = SessionInfo)),
    security(("session" = []))
)]
pub async fn current_session(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let (user, session) = (signed_in.user.clone(), signed_in.session.clone());
    let workspace = blocking(move || session_workspace(&worker, &user, &session)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(session_info(
            &state,
            &signed_in.user,
            &signed_in.session,
            &signed_in.token,
            workspace,
        )))
}

/// Changes the signed-in user's own settings (their display name).
#[utoipa::path(
    patch, path = "/api/v1/auth/user", tag = "auth", request_body = UserSettings,
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "Invalid body or display name", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("session" = []))
)]
pub async fn update_user(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: UserSettings = super::read_json(&request, payload, state.max_body_bytes).await?;
    let worker = state.clone();
    let user = blocking(move || {
        worker
            .accounts
            .rename(&signed_in.user.id, &input.display_name)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// The signed-in user's live sessions, the current one flagged.
#[utoipa::path(
    get, path = "/api/v1/auth/sessions", tag = "auth",
    responses((status = 200, body = SessionList)),
    security(("session" = []))
)]
pub async fn list_sessions(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let user_id = signed_in.user.id.clone();
    let sessions = blocking(move || worker.accounts.sessions(&user_id, now_millis())).await?;
    let sessions = sessions
        .iter()
        .map(|session| session_view(&state, session, &signed_in.session.id))
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// Ends one of the signed-in user's sessions at once (the current one too).
#[utoipa::path(
    delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "A session id from `GET /api/v1/auth/sessions`")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "The user has no such session", body = ErrorBody)
    ),
    security(("session" = []))
)]
pub async fn revoke_session(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let current = id == signed_in.session.id;
    let worker = state.clone();
    let user_id = signed_in.user.id.clone();
    let target = id.clone();
    if !blocking(move || worker.accounts.revoke(&user_id, &target)).await? {
        return Err(ApiError::not_found(format!("no session with id {id:?}")));
    }
    let mut response = HttpResponse::NoContent();
    if current {
        response.insert_header(("Set-Cookie", cookie(&state, &request, None)));
    }
    Ok(response.finish())
}

/// Changes the signed-in user's password and ends their other sessions.
#[utoipa::path(
    post, path = "/api/v1/auth/password", tag = "auth", request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; every other session of the user has ended"),
        (status = 400, description = "Invalid body, wrong current password, or a weak new password", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("session" = []))
)]
pub async fn change_password(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: ChangePassword = super::read_json(&request, payload, state.max_body_bytes).await?;
    for (field, value) in [
        ("current_password", &input.current_password),
        ("new_password", &input.new_password),
    ] {
        if value.chars().count() > MAX_PASSWORD_CHARS {
            return Err(too_long(field));
        }
    }
    // A weak new password is refused before the attempt is charged: only
    // guesses at the current password count against the account's throttle.
    crate::accounts::password::check_policy(&input.new_password, &signed_in.user.email).map_err(
        |reason| ApiError::from(AccountError::WeakPassword(reason)).with_field("new_password"),
    )?;
    state.sign_in_limits.take_account(&signed_in.user.email)?;
    let worker = state.clone();
    blocking(move || {
        worker.accounts.change_password(
            &signed_in.user.id,
            &input.current_password,
            &input.new_password,
            &signed_in.session.id,
            now_millis(),
        )
    })
    .await
    .map_err(|error| match error.code {
        "weak_password" => error.with_field("new_password"),
        _ => error,
    })?;
    Ok(HttpResponse::NoContent().finish())
}
