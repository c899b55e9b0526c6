//! The signed-in operator of a console page: the session cookie checked as
//! the API checks it (expiry, rate limit, the workspace it acts in and the
//! role there), plus the workspaces for the switcher. A session whose
//! workspace was deleted or left moves to the user's first workspace.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::error::ConsoleError;
use crate::accounts::csrf_token;
use crate::api::auth::{Caller, Identity, session_caller, session_token};
use crate::api::error::ApiError;
use crate::api::{AppState, blocking};
use crate::keys::Scope;
use crate::store::{Role, UserRecord, WorkspaceRecord};

/// A signed-in user acting in a workspace.
pub struct Console {
    pub caller: Caller,
    pub user: UserRecord,
    /// The session's CSRF token, sent back by every form.
    pub csrf: String,
    /// Every workspace of the user, for the switcher.
    pub workspaces: Vec<(WorkspaceRecord, Role)>,
    pub state: web::Data<AppState>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("user", &self.user.id)
            .field("workspace", &self.caller.workspace.id)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The workspace the page acts in.
    pub fn workspace_id(&self) -> &str {
        &self.caller.workspace.id
    }

    /// Refuses with a page when the user's role does not allow `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ConsoleError> {
        if self.caller.allows(scope) {
            return Ok(());
        }
        Err(ApiError::new(
            403,
            "insufficient_scope",
            format!(
                "Your role in {} ({}) does not allow this.",
                self.caller.workspace.name,
                self.caller.role.as_str()
            ),
        )
        .into())
    }

    /// The signed-in user of `request`, with `csrf` checked when the request
    /// changes state.
    pub(super) async fn authenticate(
        request: &HttpRequest,
        csrf: Option<String>,
    ) -> Result<Self, ConsoleError> {
        let next = match request.query_string() {
            "" => request.path().to_owned(),
            query => format!("{}?{query}", request.path()),
        };
        let next = if request.method() == actix_web::http::Method::GET {
            next
        } else {
            super::PREFIX.to_owned()
        };
        let state = request
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(ApiError::internal)?;
        let Some(token) = session_token(request) else {
            return Err(ConsoleError::SignIn {
                next,
                expired: false,
            });
        };
        let changes_state = csrf.is_some();
        let worker = state.clone();
        let found = blocking(move || {
            let caller = match session_caller(&worker, &token, csrf.clone(), changes_state) {
                Err(error) if error.code == "workspace_access_revoked" => {
                    move_to_first_workspace(&worker, &token)?;
                    session_caller(&worker, &token, csrf, changes_state)?
                }
                other => other?,
            };
            let Identity::Session { user, .. } = &caller.identity else {
                return Err(ApiError::internal());
            };
            let workspaces = worker.workspaces.list_for(&user.id)?;
            Ok::<_, ApiError>((caller, workspaces, csrf_token(&token)))
        })
        .await;
        let (caller, workspaces, csrf) = match found {
            Ok(found) => found,
            Err(error) if error.status == 401 => {
                return Err(ConsoleError::SignIn {
                    next,
                    expired: true,
                });
            }
            Err(error) => return Err(error.into()),
        };
        let user = caller.user().cloned().ok_or_else(ApiError::internal)?;
        Ok(Self {
            caller,
            user,
            csrf,
            workspaces,
            state,
        })
    }
}

/// Points the session of `token` at the user's first workspace (none when
/// they have none left).
fn move_to_first_workspace(state: &AppState, token: &str) -> Result<(), ApiError> {
    let now = ricochet_model::now_millis();
    let Some((user, session)) = state.accounts.authenticate(token, now)? else {
        return Err(ApiError::new(401, "invalid_session", "sign in again"));
    };
    let first = state.workspaces.first_of(&user.id)?;
    state
        .accounts
        .set_workspace(&session, first.as_ref().map(|(w, _)| w.id.as_str()))?;
    Ok(())
}

type Extraction<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ConsoleError>>>>;

impl FromRequest for Console {
    type Error = ConsoleError;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move { Self::authenticate(&request, None).await })
    }
}
