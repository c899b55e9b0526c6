//! Workspaces, members and invitations. Routes:
//! - `GET|POST /api/v1/workspaces`, `GET|PATCH|DELETE /api/v1/workspaces/{id}`,
//!   `POST /api/v1/workspaces/{id}/restore`, `POST /api/v1/workspaces/{id}/switch`
//! - `GET /api/v1/workspaces/{id}/members`, `PATCH|DELETE /api/v1/workspaces/{id}/members/{user_id}`
//! - `GET|POST /api/v1/workspaces/{id}/invitations`,
//!   `DELETE /api/v1/workspaces/{id}/invitations/{invitation_id}`
//! - `POST /api/v1/invitations/preview`, `POST /api/v1/invitations/accept`
//!
//! A session may name any workspace its user belongs to; an API key only its
//! own. Any other workspace is answered 404, as one that does not exist.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::accounts::{
    MAX_PASSWORD_CHARS, SessionInfo, client_info, cookie, session_info, too_long,
};
use super::auth::{Authenticated, Caller, Identity, SignedIn, act_in};
use super::error::{ApiError, ErrorBody};
use super::types::to_datetime;
use super::{AppState, blocking};
use crate::keys::Scope;
use crate::mailer::InvitationMail;
use crate::store::{InvitationRecord, Role, WorkspaceRecord};
use crate::workspaces::{Member, WorkspaceError};

/// A workspace and the caller's role in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    /// The caller's role: owner, admin, member or viewer.
    #[schema(value_type = String, example = "owner")]
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it was deleted; `null` while it is live.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<OffsetDateTime>,
    /// Until when a deleted workspace can be restored; `null` while it is live.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub restorable_until: Option<OffsetDateTime>,
}

/// The caller's workspaces, oldest membership first (deleted ones only for their owners).
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

/// A workspace's name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceName {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, example = "Marketing")]
    pub name: String,
}

/// A member and their role.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    #[schema(value_type = String, example = "member")]
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: OffsetDateTime,
}

/// The members of a workspace, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

/// A role to give.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// owner, admin, member or viewer.
    #[schema(example = "viewer")]
    pub role: String,
}

/// Whom to invite, with which role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    #[schema(max_length = 254, example = "teammate@example.com")]
    pub email: String,
    /// owner (owners only), admin, member or viewer.
    #[schema(example = "member")]
    pub role: String,
}

/// A pending invitation (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    #[schema(value_type = String, example = "member")]
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// An invitation just created, with its token and link, shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedInvitation {
    pub invitation: InvitationView,
    /// Accepts the invitation once (`POST /api/v1/invitations/accept`).
    pub token: String,
    /// The link to send: `<accounts.console_url>/invite#<token>`.
    pub url: String,
    /// Whether the link was also mailed to the invited address
    /// (`accounts.smtp_url`); `false` when no SMTP server is configured.
    pub mailed: bool,
    /// Why mailing failed, when it did (the invitation stands; send the link yourself).
    pub mail_error: Option<String>,
}

/// Pending invitations, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<InvitationView>,
}

/// An invitation's token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    #[schema(max_length = 200)]
    pub token: String,
}

/// What an invitation offers, before accepting it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreview {
    pub workspace_name: String,
    pub email: String,
    #[schema(value_type = String)]
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// Whether the invited email has an account: then sign in as it and
    /// accept; otherwise accept with a display name and a password.
    pub has_account: bool,
}

/// Accepting an invitation: signed in as the invited user (token only), or
/// as someone new (token, display name and password create the account).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    #[schema(max_length = 200)]
    pub token: String,
    #[schema(max_length = 100)]
    pub display_name: Option<String>,
    /// At least 12 characters, not a common password.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
}

/// The workspace joined; a new user also gets a session (cookie and CSRF token).
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedInvitation {
    pub workspace: WorkspaceView,
    pub session: Option<SessionInfo>,
}

fn view(state: &AppState, workspace: &WorkspaceRecord, role: Role) -> WorkspaceView {
    WorkspaceView {
        id: workspace.id.clone(),
        name: workspace.name.clone(),
        role: role.as_str().to_owned(),
        created_at: to_datetime(workspace.created_at),
        deleted_at: workspace.deleted_at.map(to_datetime),
        restorable_until: workspace.deleted_at.map(|at| {
            to_datetime(at.saturating_add(state.workspaces.settings().deletion_retention_ms))
        }),
    }
}

fn member_view(member: &Member) -> MemberView {
    MemberView {
        user_id: member.user.id.clone(),
        email: member.user.email.clone(),
        display_name: member.user.display_name.clone(),
        role: member.membership.role.as_str().to_owned(),
        joined_at: to_datetime(member.membership.joined_at),
    }
}

fn invitation_view(invitation: &InvitationRecord) -> InvitationView {
    InvitationView {
        id: invitation.id.clone(),
        email: invitation.email.clone(),
        role: invitation.role.as_str().to_owned(),
        created_at: to_datetime(invitation.created_at),
        expires_at: to_datetime(invitation.expires_at),
    }
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text)
        .ok_or_else(|| WorkspaceError::InvalidRole(text.chars().take(40).collect()).into())
}

/// The caller's workspaces.
#[utoipa::path(
    get, path = "/api/v1/workspaces", tag = "workspaces",
    responses((status = 200, description = "A session's workspaces, or an API key's own", body = WorkspaceList)),
    security(("api_key" = []))
)]
pub async fn list_workspaces(
    caller: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let workspaces = blocking(move || match &caller.identity {
        Identity::Session { user, .. } => worker.workspaces.list_for(&user.id),
        Identity::Key(key) => Ok(worker
            .workspaces
            .live(&key.workspace_id)?
            .map(|w| (w, Role::Admin))
            .into_iter()
            .collect()),
    })
    .await?;
    let mut list = Vec::with_capacity(workspaces.len());
    for (workspace, role) in &workspaces {
        list.push(view(&state, workspace, *role));
    }
    Ok(HttpResponse::Ok().json(WorkspaceList { workspaces: list }))
}

/// Creates a workspace; the signed-in user becomes its owner.
#[utoipa::path(
    post, path = "/api/v1/workspaces", tag = "workspaces", request_body = WorkspaceName,
    responses(
        (status = 201, body = WorkspaceView),
        (status = 400, description = "Invalid body or name", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("session" = []))
)]
pub async fn create_workspace(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: WorkspaceName = super::read_json(&request, payload, state.max_body_bytes).await?;
    let worker = state.clone();
    let workspace = blocking(move || {
        worker
            .workspaces
            .create(&signed_in.user.id, &input.name, now_millis())
    })
    .await?;
    Ok(HttpResponse::Created().json(view(&state, &workspace, Role::Owner)))
}

/// One workspace.
#[utoipa::path(
    get, path = "/api/v1/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, body = WorkspaceView),
        (status = 404, description = "No such workspace among the caller's", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn get_workspace(
    caller: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let caller =
        blocking(move || act_in(&worker, caller.identity, &id, Scope::LinksRead, true)).await?;
    Ok(HttpResponse::Ok().json(view(&state, &caller.workspace, caller.role)))
}

/// Renames a workspace (admins and owners).
#[utoipa::path(
    patch, path = "/api/v1/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")), request_body = WorkspaceName,
    responses(
        (status = 200, body = WorkspaceView),
        (status = 400, description = "Invalid body or name", body = ErrorBody),
        (status = 404, description = "No such workspace among the caller's", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn rename_workspace(
    caller: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let worker = state.clone();
    let caller =
        blocking(move || act_in(&worker, caller.identity, &id, Scope::Admin, false)).await?;
    let input: WorkspaceName = super::parse_json(&request, &body)?;
    let worker = state.clone();
    let role = caller.role;
    let workspace = blocking(move || {
        worker
            .workspaces
            .rename(&caller.actor(), caller.workspace_id(), &input.name)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view(&state, &workspace, role)))
}

/// Deletes a workspace (owners): it leaves its members' requests, its API
/// keys stop, and its links answer 410 Gone. It can be restored, links as
/// they were, for `accounts.workspace_retention` (30 days); then it is purged.
#[utoipa::path(
    delete, path = "/api/v1/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Deleted; `restorable_until` says for how long", body = WorkspaceView),
        (status = 404, description = "No such workspace among the caller's", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn delete_workspace(
    caller: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let (workspace, role) = blocking(move || {
        let caller = act_in(&worker, caller.identity, &id, Scope::Admin, true)?;
        let workspace =
            worker
                .workspaces
                .delete(&caller.actor(), caller.workspace_id(), now_millis())?;
        Ok::<_, ApiError>((workspace, caller.role))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view(&state, &workspace, role)))
}

/// Restores a deleted workspace within its retention (owners, signed in).
#[utoipa::path(
    post, path = "/api/v1/workspaces/{id}/restore", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Live again, links as they were", body = WorkspaceView),
        (status = 404, description = "No such workspace among the caller's", body = ErrorBody),
        (status = 409, description = "The workspace is not deleted", body = ErrorBody),
        (status = 410, description = "Deleted longer ago than the retention", body = ErrorBody)
    ),
    security(("session" = []))
)]
pub async fn restore_workspace(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let identity = signed_in.identity();
    let (workspace, role) = blocking(move || {
        let caller = act_in(&worker, identity, &id, Scope::Admin, true)?;
        let workspace =
            worker
                .workspaces
                .restore(&caller.actor(), caller.workspace_id(), now_millis())?;
        Ok::<_, ApiError>((workspace, caller.role))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view(&state, &workspace, role)))
}

/// Makes a workspace the one the session acts in: every workspace-scoped
/// route (links, domains, analytics, keys) then reads and writes there.
#[utoipa::path(
    post, path = "/api/v1/workspaces/{id}/switch", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The session, now in that workspace", body = SessionInfo),
        (status = 404, description = "No such workspace among the user's", body = ErrorBody)
    ),
    security(("session" = []))
)]
pub async fn switch_workspace(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let identity = signed_in.identity();
    let token = signed_in.token.clone();
    let user = signed_in.user.clone();
    let (session, workspace) = blocking(move || {
        let caller = act_in(&worker, identity, &id, Scope::LinksRead, false)?;
        let session = worker
            .accounts
            .set_workspace(&signed_in.session, Some(caller.workspace_id()))?;
        Ok::<_, ApiError>((session, Some((caller.workspace, caller.role))))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(session_info(&state, &user, &session, &token, workspace)))
}

/// The members of a workspace.
#[utoipa::path(
    get, path = "/api/v1/workspaces/{id}/members", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, body = MemberList),
        (status = 404, description = "No such workspace among the caller's", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn list_members(
    caller: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let members = blocking(move || {
        let caller = act_in(&worker, caller.identity, &id, Scope::LinksRead, false)?;
        Ok::<_, ApiError>(worker.workspaces.members(caller.workspace_id())?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(MemberList {
        members: members.iter().map(member_view).collect(),
    }))
}

/// Changes a member's role (admins; owners for anything about owners). The
/// last owner stays an owner.
#[utoipa::path(
    patch, path = "/api/v1/workspaces/{id}/members/{user_id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id"),
        ("user_id" = String, Path, description = "The member's user id")),
    request_body = RoleChange,
    responses(
        (status = 200, body = MemberView),
        (status = 400, description = "Invalid body or role", body = ErrorBody),
        (status = 404, description = "No such workspace or member", body = ErrorBody),
        (status = 409, description = "That would leave the workspace without an owner", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn change_role(
    caller: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id, user_id) = path.into_inner();
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let worker = state.clone();
    let caller =
        blocking(move || act_in(&worker, caller.identity, &id, Scope::Admin, false)).await?;
    let input: RoleChange = super::parse_json(&request, &body)?;
    let role = parse_role(&input.role)?;
    let worker = state.clone();
    let member = blocking(move || {
        worker
            .workspaces
            .change_role(&caller.actor(), caller.workspace_id(), &user_id, role)
    })
    .await?;
    Ok(HttpResponse::Ok().json(member_view(&member)))
}

/// Removes a member (admins; owners to remove owners), or leaves the
/// workspace (any member, their own id). Their access ends at once and the
/// API keys they created there are revoked.
#[utoipa::path(
    delete, path = "/api/v1/workspaces/{id}/members/{user_id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id"),
        ("user_id" = String, Path, description = "The member's user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such workspace or member", body = ErrorBody),
        (status = 409, description = "That would leave the workspace without an owner", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn remove_member(
    caller: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user_id) = path.into_inner();
    let worker = state.clone();
    blocking(move || {
        let caller = act_in(&worker, caller.identity, &id, Scope::LinksRead, false)?;
        worker.workspaces.remove_member(
            &caller.actor(),
            caller.workspace_id(),
            &user_id,
            now_millis(),
        )?;
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pending invitations of a workspace (admins and owners).
#[utoipa::path(
    get, path = "/api/v1/workspaces/{id}/invitations", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, body = InvitationList),
        (status = 404, description = "No such workspace among the caller's", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn list_invitations(
    caller: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let invitations = blocking(move || {
        let caller = act_in(&worker, caller.identity, &id, Scope::Admin, false)?;
        Ok::<_, ApiError>(
            worker
                .workspaces
                .pending_invitations(caller.workspace_id(), now_millis())?,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(InvitationList {
        invitations: invitations.iter().map(invitation_view).collect(),
    }))
}

/// An invitation just made.
pub(crate) struct Invited {
    pub issued: crate::workspaces::IssuedInvitation,
    /// `<accounts.console_url>/invite#<token>`.
    pub url: String,
    /// Whether mailing it worked, when SMTP is set up.
    pub mailing: Option<Result<(), String>>,
}

/// Invites `email` to the caller's workspace as `role`: the invitation, its
/// link (`<accounts.console_url>/invite#<token>`) and, when SMTP is set up,
/// whether mailing it worked. The API and the console invite through here.
pub(crate) fn invite(
    state: &AppState,
    caller: &Caller,
    email: &str,
    role: Role,
) -> Result<Invited, ApiError> {
    let issued = state.workspaces.invite(
        &caller.actor(),
        caller.workspace_id(),
        email,
        role,
        now_millis(),
    )?;
    let url = format!("{}/invite#{}", state.console_url, issued.token);
    let mailing = state.mailer.as_ref().map(|mailer| {
        let expires_at = to_datetime(issued.invitation.expires_at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let sent = mailer.send_invitation(&InvitationMail {
            to: &issued.invitation.email,
            workspace: &caller.workspace.name,
            inviter: caller.user().map(|u| u.display_name.as_str()),
            role: issued.invitation.role.as_str(),
            link: &url,
            expires_at: &expires_at,
        });
        if let Err(error) = &sent {
            tracing::warn!(%error, invitation = %issued.invitation.id, "could not mail an invitation");
        }
        sent
    });
    Ok(Invited {
        issued,
        url,
        mailing,
    })
}

/// Invites someone by email (admins; owners to invite owners). The answer
/// carries the token and link, shown only here; send the link to them (with
/// `accounts.smtp_url` set, it is also mailed). It works once, until
/// `accounts.invitation_ttl` (7 days) has passed.
#[utoipa::path(
    post, path = "/api/v1/workspaces/{id}/invitations", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")), request_body = CreateInvitation,
    responses(
        (status = 201, body = IssuedInvitation),
        (status = 400, description = "Invalid body, email or role", body = ErrorBody),
        (status = 404, description = "No such workspace among the caller's", body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_invitation(
    caller: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let worker = state.clone();
    let caller =
        blocking(move || act_in(&worker, caller.identity, &id, Scope::Admin, false)).await?;
    let input: CreateInvitation = super::parse_json(&request, &body)?;
    let role = parse_role(&input.role)?;
    let worker = state.clone();
    let Invited {
        issued,
        url,
        mailing,
    } = blocking(move || invite(&worker, &caller, &input.email, role)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(IssuedInvitation {
            invitation: invitation_view(&issued.invitation),
            url,
            token: issued.token,
            mailed: matches!(mailing, Some(Ok(()))),
            mail_error: mailing.and_then(Result::err),
        }))
}

/// Revokes a pending invitation (admins and owners).
#[utoipa::path(
    delete, path = "/api/v1/workspaces/{id}/invitations/{invitation_id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id"),
        ("invitation_id" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such workspace or invitation", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn revoke_invitation(
    caller: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, invitation_id) = path.into_inner();
    let worker = state.clone();
    blocking(move || {
        let caller = act_in(&worker, caller.identity, &id, Scope::Admin, false)?;
        worker.workspaces.revoke_invitation(
            &caller.actor(),
            caller.workspace_id(),
            &invitation_id,
        )?;
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What an invitation offers (no sign-in needed; throttled per client address).
#[utoipa::path(
    post, path = "/api/v1/invitations/preview", tag = "workspaces", request_body = InvitationToken,
    responses(
        (status = 200, body = InvitationPreview),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 404, description = "The invitation is unknown, used, revoked or expired", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)
    )
)]
pub async fn preview_invitation(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: InvitationToken = super::read_json(&request, payload, state.max_body_bytes).await?;
    state
        .sign_in_limits
        .take_address(&client_info(&request).address)?;
    let worker = state.clone();
    let preview = blocking(move || {
        let (invitation, workspace) = worker.workspaces.preview(&input.token, now_millis())?;
        let has_account = worker
            .service
            .store()
            .user_by_email(&invitation.email)?
            .is_some();
        Ok::<_, ApiError>(InvitationPreview {
            workspace_name: workspace.name,
            email: invitation.email,
            role: invitation.role.as_str().to_owned(),
            expires_at: to_datetime(invitation.expires_at),
            has_account,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(preview))
}

/// Accepts an invitation. Signed in (with the session's `X-CSRF-Token`), the
/// invited user joins with the token alone, and the session switches to the
/// workspace. Not signed in, `display_name` and `password` create the
/// invited user's account and sign them in (`Set-Cookie`). Throttled per
/// client address.
#[utoipa::path(
    post, path = "/api/v1/invitations/accept", tag = "workspaces", request_body = AcceptInvitation,
    responses(
        (status = 200, body = AcceptedInvitation,
            headers(("Set-Cookie" = String, description = "The new user's session, when the account was created"))),
        (status = 400, description = "Invalid body, display name or weak password", body = ErrorBody),
        (status = 401, description = "A session cookie was sent but it has expired", body = ErrorBody),
        (status = 403, description = "Signed in as someone other than the invited user, or the CSRF token is missing", body = ErrorBody),
        (status = 404, description = "The invitation is unknown, used, revoked or expired", body = ErrorBody),
        (status = 409, description = "Already a member, or the invited email has an account: sign in first", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)
    )
)]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: AcceptInvitation = super::read_json(&request, payload, state.max_body_bytes).await?;
    if input
        .password
        .as_ref()
        .is_some_and(|p| p.chars().count() > MAX_PASSWORD_CHARS)
    {
        return Err(too_long("password"));
    }
    let client = client_info(&request);
    state.sign_in_limits.take_address(&client.address)?;
    let signed_in = if super::auth::has_session_cookie(&request) {
        Some(SignedIn::extract(&request).await?)
    } else {
        None
    };
    let worker = state.clone();
    let now = now_millis();
    if let Some(signed_in) = signed_in {
        let token = signed_in.token.clone();
        let (workspace, role, session) = blocking(move || {
            let (workspace, membership) =
                worker
                    .workspaces
                    .accept(&input.token, &signed_in.user, now)?;
            let session = worker
                .accounts
                .set_workspace(&signed_in.session, Some(&workspace.id))?;
            Ok::<_, ApiError>((workspace, membership.role, (signed_in.user, session)))
        })
        .await?;
        let info = session_info(
            &state,
            &session.0,
            &session.1,
            &token,
            Some((workspace.clone(), role)),
        );
        return Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(AcceptedInvitation {
                workspace: view(&state, &workspace, role),
                session: Some(info),
            }));
    }
    let (Some(display_name), Some(password)) = (input.display_name, input.password) else {
        return Err(ApiError::bad_request(
            "missing_field",
            "to accept without signing in, send display_name and password to create the \
             invited user's account (or sign in as them first)",
        )
        .with_field("password"));
    };
    let (workspace, role, opened) = blocking(move || {
        let (user, workspace, membership) = worker.workspaces.accept_as_new_user(
            &worker.accounts,
            &input.token,
            &display_name,
            &password,
            now,
        )?;
        let opened = worker.accounts.open_session_for(user, &client, now)?;
        let session = worker
            .accounts
            .set_workspace(&opened.session, Some(&workspace.id))?;
        Ok::<_, ApiError>((workspace, membership.role, (opened, session)))
    })
    .await?;
    let (opened, session) = opened;
    let info = session_info(
        &state,
        &opened.user,
        &session,
        &opened.token,
        Some((workspace.clone(), role)),
    );
    Ok(HttpResponse::Ok()
        .insert_header(("Set-Cookie", cookie(&state, &request, Some(&opened.token))))
        .insert_header(("Cache-Control", "no-store"))
        .json(AcceptedInvitation {
            workspace: view(&state, &workspace, role),
            session: Some(info),
        }))
}
