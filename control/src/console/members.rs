//! Members and invitations: who is in the workspace and with what role,
//! changing roles and removing members (admins and owners), inviting by
//! email (the link is shown once, and mailed when SMTP is set up), and the
//! page where the invited person accepts.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ricochet_model::now_millis;

use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::page::{self, Layout};
use super::session::Console;
use crate::api::accounts::{client_info, cookie};
use crate::api::auth::session_token;
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::store::Role;
use crate::workspaces::WorkspaceError;

/// A member as the page shows them.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub joined: String,
    pub is_me: bool,
}

/// A pending invitation.
#[derive(Debug, Clone)]
pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub expires: String,
}

/// An invitation just made: its link, shown once.
#[derive(Debug, Clone)]
pub struct Issued {
    pub email: String,
    pub url: String,
    pub mailed: bool,
    pub mail_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/members.html")]
struct MembersPage {
    layout: Layout,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    roles: Vec<&'static str>,
    issued: Option<Issued>,
    invite_email: String,
    invite_role: String,
    errors: FieldErrors,
}

async fn rows(console: &Console) -> Result<(Vec<MemberRow>, Vec<InvitationRow>), ConsoleError> {
    let state = console.state.clone();
    let workspace = console.workspace_id().to_owned();
    let me = console.user.id.clone();
    let admin = console.caller.allows(crate::keys::Scope::Admin);
    Ok(blocking(move || {
        let members = state
            .workspaces
            .members(&workspace)?
            .into_iter()
            .map(|member| MemberRow {
                is_me: member.user.id == me,
                user_id: member.user.id,
                name: member.user.display_name,
                email: member.user.email,
                role: member.membership.role.as_str(),
                joined: page::date_time(member.membership.joined_at),
            })
            .collect();
        let invitations = if admin {
            state
                .workspaces
                .pending_invitations(&workspace, now_millis())?
                .into_iter()
                .map(|invitation| InvitationRow {
                    id: invitation.id,
                    email: invitation.email,
                    role: invitation.role.as_str(),
                    expires: page::date_time(invitation.expires_at),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok::<_, ApiError>((members, invitations))
    })
    .await?)
}

async fn members_page(
    console: &Console,
    status: u16,
    notice: Option<&str>,
    issued: Option<Issued>,
    invite: (String, String),
    errors: FieldErrors,
) -> Result<HttpResponse, ConsoleError> {
    let (members, invitations) = rows(console).await?;
    let roles = Role::ALL
        .into_iter()
        .filter(|role| *role != Role::Owner || console.caller.role == Role::Owner)
        .map(Role::as_str)
        .collect();
    Ok(page::render(
        status,
        &MembersPage {
            layout: Layout::of(console, "Members", "members").with_notice(notice),
            members,
            invitations,
            roles,
            issued,
            invite_email: invite.0,
            invite_role: invite.1,
            errors,
        },
    ))
}

/// `GET /console/members`.
pub async fn list(console: Console, request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let query = FormData::parse(request.query_string().as_bytes());
    members_page(
        &console,
        200,
        query.optional("notice"),
        None,
        (String::new(), "member".to_owned()),
        FieldErrors::none(),
    )
    .await
}

fn role_of(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| {
        ApiError::from(WorkspaceError::InvalidRole(text.chars().take(40).collect()))
            .with_field("role")
    })
}

/// `POST /console/members/invite`: the invitation's link, shown once.
pub async fn invite(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let email = form.get("email").to_owned();
    let role_text = form.get("role").to_owned();
    let state = console.state.clone();
    let caller = console.caller.clone();
    let wanted = email.clone();
    let issued = blocking(move || {
        let role = role_of(&role_text)?;
        let crate::api::workspaces::Invited {
            issued,
            url,
            mailing,
        } = crate::api::workspaces::invite(&state, &caller, &wanted, role)?;
        Ok::<_, ApiError>(Issued {
            email: issued.invitation.email,
            url,
            mailed: matches!(mailing, Some(Ok(()))),
            mail_error: mailing.and_then(Result::err),
        })
    })
    .await;
    match issued {
        Ok(issued) => {
            members_page(
                &console,
                201,
                None,
                Some(issued),
                (String::new(), "member".to_owned()),
                FieldErrors::none(),
            )
            .await
        }
        Err(error) if error.status < 500 && error.status != 403 => {
            let errors = FieldErrors::from_api(&error, &["email", "role"]);
            members_page(
                &console,
                error.status,
                None,
                None,
                (email, form.get("role").to_owned()),
                errors,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /console/members/role`: `user_id`, `role`.
pub async fn change_role(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let user_id = form.get("user_id").to_owned();
    let role = role_of(form.get("role"))?;
    let state = console.state.clone();
    let caller = console.caller.clone();
    blocking(move || {
        state
            .workspaces
            .change_role(&caller.actor(), caller.workspace_id(), &user_id, role)
    })
    .await?;
    Ok(page::see_other(&format!(
        "{}/members?notice=member-updated",
        super::PREFIX
    )))
}

/// `POST /console/members/remove`: `user_id` (anyone may remove themselves).
pub async fn remove(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let user_id = form.get("user_id").to_owned();
    let leaving = user_id == console.user.id;
    let state = console.state.clone();
    let caller = console.caller.clone();
    blocking(move || {
        state.workspaces.remove_member(
            &caller.actor(),
            caller.workspace_id(),
            &user_id,
            now_millis(),
        )
    })
    .await?;
    let next = if leaving {
        format!("{}/links", super::PREFIX)
    } else {
        format!("{}/members?notice=member-removed", super::PREFIX)
    };
    Ok(page::see_other(&next))
}

/// `POST /console/members/revoke`: an invitation's `invitation_id`.
pub async fn revoke(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    let id = form.get("invitation_id").to_owned();
    let state = console.state.clone();
    let caller = console.caller.clone();
    blocking(move || {
        state
            .workspaces
            .revoke_invitation(&caller.actor(), caller.workspace_id(), &id)
    })
    .await?;
    Ok(page::see_other(&format!(
        "{}/members?notice=invitation-revoked",
        super::PREFIX
    )))
}

#[derive(Template)]
#[template(path = "console/invite.html")]
struct InvitePage {
    layout: Layout,
    token: String,
    /// The signed-in user's email, when signed in.
    signed_in_as: Option<String>,
    display_name: String,
    errors: FieldErrors,
}

/// `GET /console/invite`: the invited person's page. The token travels
/// after `#` (never sent to servers or logs); the script puts it in the form.
pub async fn invite_page(request: HttpRequest) -> HttpResponse {
    let signed_in = Console::authenticate(&request, None).await.ok();
    let layout = match &signed_in {
        Some(console) => Layout::of(console, "Invitation", ""),
        None => Layout::public("Invitation"),
    };
    page::render(
        200,
        &InvitePage {
            layout,
            token: String::new(),
            signed_in_as: signed_in.map(|console| console.user.email),
            display_name: String::new(),
            errors: FieldErrors::none(),
        },
    )
}

/// `POST /console/invite`: accepts as the signed-in user, or creates the
/// invited user's account (display name and password) and signs them in.
pub async fn accept(
    state: web::Data<crate::api::AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let form = FormData::read(&request, payload, state.max_body_bytes).await?;
    let token = form.get("token").to_owned();
    let client = client_info(&request);
    state.sign_in_limits.take_address(&client.address)?;
    let now = now_millis();
    let signed_in = match session_token(&request) {
        Some(_) => Some(
            Console::authenticate(&request, Some(form.get(super::form::CSRF_FIELD).to_owned()))
                .await?,
        ),
        None => None,
    };
    let display_name = form.get("display_name").to_owned();
    let refused = |layout: Layout, error: ApiError, signed_in_as: Option<String>| {
        page::render(
            error.status,
            &InvitePage {
                layout,
                token: token.clone(),
                signed_in_as,
                display_name: display_name.clone(),
                errors: FieldErrors::from_api(&error, &["token", "display_name", "password"]),
            },
        )
    };
    if token.is_empty() {
        let error = ApiError::bad_request("invalid_token", "Paste the invitation code.")
            .with_field("token");
        let layout = match &signed_in {
            Some(console) => Layout::of(console, "Invitation", ""),
            None => Layout::public("Invitation"),
        };
        return Ok(refused(layout, error, signed_in.map(|c| c.user.email)));
    }
    if let Some(console) = signed_in {
        let worker = state.clone();
        let user = console.user.clone();
        let wanted = token.clone();
        let identity = console.caller.identity.clone();
        let accepted = blocking(move || {
            let (workspace, _) = worker.workspaces.accept(&wanted, &user, now)?;
            if let crate::api::auth::Identity::Session { session, .. } = &identity {
                worker
                    .accounts
                    .set_workspace(session, Some(&workspace.id))?;
            }
            Ok::<_, ApiError>(())
        })
        .await;
        return match accepted {
            Ok(()) => Ok(page::see_other(&format!(
                "{}/links?notice=invitation-accepted",
                super::PREFIX
            ))),
            Err(error) if error.status < 500 => Ok(refused(
                Layout::of(&console, "Invitation", ""),
                error,
                Some(console.user.email.clone()),
            )),
            Err(error) => Err(error.into()),
        };
    }
    let password = form.raw("password").to_owned();
    let worker = state.clone();
    let wanted = token.clone();
    let name = display_name.clone();
    let opened = blocking(move || {
        let (user, workspace, _) = worker.workspaces.accept_as_new_user(
            &worker.accounts,
            &wanted,
            &name,
            &password,
            now,
        )?;
        let opened = worker.accounts.open_session_for(user, &client, now)?;
        worker
            .accounts
            .set_workspace(&opened.session, Some(&workspace.id))?;
        Ok::<_, ApiError>(opened)
    })
    .await;
    match opened {
        Ok(opened) => Ok(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!("{}/links?notice=invitation-accepted", super::PREFIX),
            ))
            .insert_header(("Set-Cookie", cookie(&state, &request, Some(&opened.token))))
            .finish()),
        Err(error) if error.status < 500 => {
            let error = match error.code {
                "weak_password" => error.with_field("password"),
                _ => error,
            };
            Ok(refused(Layout::public("Invitation"), error, None))
        }
        Err(error) => Err(error.into()),
    }
}
