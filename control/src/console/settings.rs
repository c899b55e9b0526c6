//! The signed-in user's settings (display name, password, live sessions)
//! and their workspaces (switching, creating one).

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use ricochet_model::now_millis;

use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::page::{self, Layout};
use super::session::Console;
use crate::accounts::AccountError;
use crate::api::auth::{Identity, act_in};
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::keys::Scope;

/// A live session of the user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_agent: String,
    pub address: String,
    pub last_seen: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    layout: Layout,
    display_name: String,
    sessions: Vec<SessionRow>,
    new_workspace: String,
    errors: FieldErrors,
}

fn session_id(console: &Console) -> String {
    match &console.caller.identity {
        Identity::Session { session, .. } => session.id.clone(),
        Identity::Key(_) => String::new(),
    }
}

async fn settings_page(
    console: &Console,
    status: u16,
    notice: Option<&str>,
    display_name: Option<String>,
    new_workspace: String,
    errors: FieldErrors,
) -> Result<HttpResponse, ConsoleError> {
    let state = console.state.clone();
    let user_id = console.user.id.clone();
    let current = session_id(console);
    let sessions = blocking(move || state.accounts.sessions(&user_id, now_millis())).await?;
    let sessions = sessions
        .into_iter()
        .map(|session| SessionRow {
            current: session.id == current,
            id: session.id,
            user_agent: session.user_agent,
            address: session.client_address,
            last_seen: page::date_time(session.last_seen_at),
        })
        .collect();
    Ok(page::render(
        status,
        &SettingsPage {
            layout: Layout::of(console, "Settings", "settings").with_notice(notice),
            display_name: display_name.unwrap_or_else(|| console.user.display_name.clone()),
            sessions,
            new_workspace,
            errors,
        },
    ))
}

/// `GET /console/settings`.
pub async fn page(console: Console, request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let query = FormData::parse(request.query_string().as_bytes());
    settings_page(
        &console,
        200,
        query.optional("notice"),
        None,
        String::new(),
        FieldErrors::none(),
    )
    .await
}

/// Fields of the settings forms.
const FIELDS: &[&str] = &[
    "display_name",
    "current_password",
    "new_password",
    "workspace_name",
];

/// The settings page again with `error` next to its field.
async fn refused(
    console: &Console,
    error: ApiError,
    display_name: Option<String>,
    new_workspace: String,
) -> Result<HttpResponse, ConsoleError> {
    if error.status >= 500 {
        return Err(error.into());
    }
    let errors = FieldErrors::from_api(&error, FIELDS);
    settings_page(
        console,
        error.status,
        None,
        display_name,
        new_workspace,
        errors,
    )
    .await
}

/// `POST /console/settings/name`.
pub async fn rename(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let name = form.get("display_name").to_owned();
    let state = console.state.clone();
    let user_id = console.user.id.clone();
    let wanted = name.clone();
    match blocking(move || state.accounts.rename(&user_id, &wanted)).await {
        Ok(_) => Ok(page::see_other(&format!(
            "{}/settings?notice=settings-saved",
            super::PREFIX
        ))),
        Err(error) => {
            let error = match error.field {
                None => error.with_field("display_name"),
                Some(_) => error,
            };
            refused(&console, error, Some(name), String::new()).await
        }
    }
}

/// `POST /console/settings/password`: ends the user's other sessions.
pub async fn change_password(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let current = form.raw("current_password").to_owned();
    let new = form.raw("new_password").to_owned();
    if let Err(reason) = crate::accounts::password::check_policy(&new, &console.user.email) {
        let error = ApiError::from(AccountError::WeakPassword(reason)).with_field("new_password");
        return refused(&console, error, None, String::new()).await;
    }
    if let Err(error) = console
        .state
        .sign_in_limits
        .take_account(&console.user.email)
    {
        return Err(error.into());
    }
    let state = console.state.clone();
    let user_id = console.user.id.clone();
    let session = session_id(&console);
    let changed = blocking(move || {
        state
            .accounts
            .change_password(&user_id, &current, &new, &session, now_millis())
    })
    .await;
    match changed {
        Ok(_) => Ok(page::see_other(&format!(
            "{}/settings?notice=password-changed",
            super::PREFIX
        ))),
        Err(error) => {
            let error = match (error.code, &error.field) {
                ("weak_password", _) => error.with_field("new_password"),
                (_, None) => error.with_field("current_password"),
                _ => error,
            };
            refused(&console, error, None, String::new()).await
        }
    }
}

/// `POST /console/settings/sessions/end`: `session_id`.
pub async fn end_session(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let id = form.get("session_id").to_owned();
    let state = console.state.clone();
    let user_id = console.user.id.clone();
    let wanted = id.clone();
    if !blocking(move || state.accounts.revoke(&user_id, &wanted)).await? {
        return Err(ApiError::not_found("There is no such session of yours.").into());
    }
    Ok(page::see_other(&format!(
        "{}/settings?notice=session-ended",
        super::PREFIX
    )))
}

/// `POST /console/workspaces/switch`: `workspace_id`, one of the user's.
pub async fn switch_workspace(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let id = form.get("workspace_id").to_owned();
    let state = console.state.clone();
    let identity = console.caller.identity.clone();
    blocking(move || {
        let Identity::Session { session, .. } = &identity else {
            return Err(ApiError::internal());
        };
        let session = session.clone();
        let caller = act_in(&state, identity, &id, Scope::LinksRead, false)?;
        state
            .accounts
            .set_workspace(&session, Some(caller.workspace_id()))?;
        Ok(())
    })
    .await?;
    Ok(page::see_other(&format!(
        "{}/links?notice=workspace-switched",
        super::PREFIX
    )))
}

/// `POST /console/workspaces/create`: `workspace_name`; the user owns it
/// and the session switches to it.
pub async fn create_workspace(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let name = form.get("workspace_name").to_owned();
    let state = console.state.clone();
    let user_id = console.user.id.clone();
    let identity = console.caller.identity.clone();
    let wanted = name.clone();
    let created = blocking(move || {
        let workspace = state.workspaces.create(&user_id, &wanted, now_millis())?;
        if let Identity::Session { session, .. } = &identity {
            state.accounts.set_workspace(session, Some(&workspace.id))?;
        }
        Ok::<_, ApiError>(())
    })
    .await;
    match created {
        Ok(()) => Ok(page::see_other(&format!(
            "{}/links?notice=workspace-created",
            super::PREFIX
        ))),
        Err(error) => {
            let error = match error.field {
                None => error.with_field("workspace_name"),
                Some(_) => error.with_field("workspace_name"),
            };
            refused(&console, error, None, name).await
        }
    }
}
