//! Authentication and rate limiting of API requests: the API key from
//! `Authorization: Bearer rk_…` (or `X-Api-Key`), or else the session cookie
//! `ricochet_session`; 401 when missing, unknown, revoked or expired, 403 when
//! the caller lacks the scope or a cookie-authenticated request that changes
//! state lacks the session's `X-CSRF-Token`, 429 with `Retry-After` over the
//! caller's token bucket. Handlers declare what they need with the
//! [`Authorized`] extractor (e.g. `Authorized<scope::LinksWrite>`), routes
//! about the signed-in user with [`SignedIn`], and engines' routes with
//! [`ClusterMember`]. Sign-in attempts are throttled by [`SignInLimits`].
//!
//! Every authorized caller acts in one workspace ([`Caller::workspace`]): an
//! API key in its own, a session in the one it switched to. What it may do is
//! its role there ([`role_allows`]); a key also needs the scope, and a key a
//! user created stops when that user leaves the workspace.

use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::accounts::csrf_matches;
use crate::keys::{KeyRing, Scope, allows};
use crate::store::{ApiKeyRecord, Role, SessionRecord, UserRecord, WorkspaceRecord};
use crate::workspaces::{Actor, role_allows};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ricochet_session";
/// Header carrying the session's CSRF token on requests that change state.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Token buckets, one per API key.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second.max(1)).unwrap())
            .allow_burst(NonZeroU32::new(burst.max(1)).unwrap());
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `key`, or says how long to wait.
    fn take(&self, key: &str) -> Result<(), ApiError> {
        take(
            &self.limiter,
            &self.clock,
            key,
            "rate_limited",
            "too many requests for this API key",
        )
    }
}

/// Takes one token for `key` from `limiter`, or answers 429 with `Retry-After`.
fn take(
    limiter: &DefaultKeyedRateLimiter<String>,
    clock: &DefaultClock,
    key: &str,
    code: &'static str,
    what: &str,
) -> Result<(), ApiError> {
    match limiter.check_key(&key.to_owned()) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(clock.now());
            let mut error = ApiError::new(
                429,
                code,
                format!("{what}; retry in {} ms", wait.as_millis()),
            );
            error.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            Err(error)
        }
    }
}

/// Sign-in throttles: one bucket per email and one per client address.
pub struct SignInLimits {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for SignInLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLimits").finish_non_exhaustive()
    }
}

impl SignInLimits {
    /// `per_account` and `per_address` attempts a minute, each as a burst.
    pub fn new(per_account: u32, per_address: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap());
        Self {
            per_account: DefaultKeyedRateLimiter::keyed(quota(per_account)),
            per_address: DefaultKeyedRateLimiter::keyed(quota(per_address)),
            clock: DefaultClock::default(),
        }
    }

    /// Charges an attempt to the client address, then to the (normalized) email.
    pub fn take(&self, email: &str, address: &str) -> Result<(), ApiError> {
        for limiter in [&self.per_account, &self.per_address] {
            if limiter.len() > 100_000 {
                limiter.retain_recent();
            }
        }
        take(
            &self.per_address,
            &self.clock,
            address,
            "too_many_sign_ins",
            "too many sign-in attempts from this address",
        )?;
        take(
            &self.per_account,
            &self.clock,
            email,
            "too_many_sign_ins",
            "too many sign-in attempts for this account",
        )
    }

    /// Charges an attempt from a client address (invitation tokens).
    pub fn take_address(&self, address: &str) -> Result<(), ApiError> {
        take(
            &self.per_address,
            &self.clock,
            address,
            "too_many_attempts",
            "too many attempts from this address",
        )
    }

    /// Charges an attempt at the current password of `email` (password changes).
    pub fn take_account(&self, email: &str) -> Result<(), ApiError> {
        take(
            &self.per_account,
            &self.clock,
            email,
            "too_many_sign_ins",
            "too many password attempts for this account",
        )
    }
}

fn bearer(request: &HttpRequest) -> Option<&str> {
    if let Some(value) = request.headers().get("authorization") {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    request
        .headers()
        .get("x-api-key")?
        .to_str()
        .ok()
        .map(str::trim)
}

/// Who presented credentials: an API key, or a user signed in with a
/// session cookie. Its `Debug` leaves the token out.
#[derive(Clone)]
pub enum Identity {
    Key(ApiKeyRecord),
    Session {
        user: UserRecord,
        session: SessionRecord,
        /// The cookie's token (never answered; the CSRF token derives from it).
        token: String,
    },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(key) => f.debug_tuple("Key").field(&key.id).finish(),
            Self::Session { user, session, .. } => f
                .debug_struct("Session")
                .field("user", &user.id)
                .field("session", &session.id)
                .finish_non_exhaustive(),
        }
    }
}

/// An authenticated caller acting in a workspace: the key's workspace, or
/// the one the session switched to (else the user's first).
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub workspace: WorkspaceRecord,
    /// The most the caller may do there: the user's role; for a key, its
    /// creator's role capped at admin (admin for keys made with the CLI).
    pub role: Role,
}

impl Caller {
    /// A stable name of the caller in its workspace, for what is kept per
    /// caller (idempotency keys): the key id, or `user:<id>@<workspace>`.
    pub fn id(&self) -> String {
        match &self.identity {
            Identity::Key(key) => key.id.clone(),
            Identity::Session { user, .. } => format!("user:{}@{}", user.id, self.workspace.id),
        }
    }

    /// The workspace every route acts in.
    pub fn workspace_id(&self) -> &str {
        &self.workspace.id
    }

    /// The signed-in user, when the caller is a session.
    pub fn user(&self) -> Option<&UserRecord> {
        match &self.identity {
            Identity::Session { user, .. } => Some(user),
            Identity::Key(_) => None,
        }
    }

    /// Whether the caller may act with `scope`: a key needs the scope, and
    /// both keys and users need a role that allows it.
    pub fn allows(&self, scope: Scope) -> bool {
        let by_role = role_allows(self.role, scope);
        match &self.identity {
            Identity::Key(key) => by_role && allows(&key.scopes, scope),
            Identity::Session { .. } => by_role,
        }
    }

    /// The caller as the workspace service sees it.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user().map(|u| u.id.clone()),
            role: self.role,
        }
    }
}

/// What a request presents, read on the actix thread.
struct Credentials {
    api_key: Option<String>,
    session: Option<String>,
    csrf: Option<String>,
    changes_state: bool,
}

fn session_cookie(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get_all("cookie")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

impl Credentials {
    fn of(request: &HttpRequest) -> Self {
        let method = request.method();
        Self {
            api_key: bearer(request).map(str::to_owned),
            session: session_cookie(request),
            csrf: request
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            changes_state: !(method == Method::GET
                || method == Method::HEAD
                || method == Method::OPTIONS),
        }
    }
}

fn missing_credentials() -> ApiError {
    ApiError::new(
        401,
        "missing_api_key",
        "send an API key as `Authorization: Bearer <key>`, or sign in",
    )
}

/// Authenticates the request's API key (which wins when both are sent) or
/// session cookie, and charges the caller's rate limit.
fn authenticate(credentials: &Credentials, state: &AppState) -> Result<Identity, ApiError> {
    if let Some(token) = &credentials.api_key {
        let Some(key) = KeyRing::new(state.service.store()).authenticate(token)? else {
            return Err(ApiError::new(
                401,
                "invalid_api_key",
                "the API key is unknown or revoked",
            ));
        };
        state.limits.take(&key.id)?;
        return Ok(Identity::Key(key));
    }
    let Some(token) = &credentials.session else {
        return Err(missing_credentials());
    };
    let now = ricochet_model::now_millis();
    let Some((user, session)) = state.accounts.authenticate(token, now)? else {
        return Err(ApiError::new(
            401,
            "invalid_session",
            "the session has expired or was ended; sign in again",
        ));
    };
    state.limits.take(&format!("user:{}", user.id))?;
    if credentials.changes_state {
        let Some(sent) = credentials.csrf.as_deref() else {
            return Err(ApiError::new(
                403,
                "csrf_token_missing",
                "a request signed in by cookie that changes state must send the session's \
                 X-CSRF-Token header (from sign-in or GET /api/v1/auth/session)",
            )
            .with_field(CSRF_HEADER));
        };
        if !csrf_matches(token, sent.trim()) {
            return Err(ApiError::new(
                403,
                "csrf_token_invalid",
                "the X-CSRF-Token header is not this session's token",
            )
            .with_field(CSRF_HEADER));
        }
    }
    Ok(Identity::Session {
        user,
        session,
        token: token.clone(),
    })
}

fn key_stopped() -> ApiError {
    ApiError::new(401, "invalid_api_key", "the API key is unknown or revoked")
}

/// The workspace an identity acts in, and its role there.
fn resolve(identity: Identity, state: &AppState) -> Result<Caller, ApiError> {
    let workspaces = &state.workspaces;
    let (workspace, role) = match &identity {
        Identity::Key(key) => {
            // A key of a deleted workspace, or one whose creator left the
            // workspace or was disabled, stops at once.
            let workspace = workspaces
                .live(&key.workspace_id)?
                .ok_or_else(key_stopped)?;
            let role = match &key.created_by {
                None => Role::Admin,
                Some(user_id) => {
                    let active = state
                        .service
                        .store()
                        .user(user_id)?
                        .is_some_and(|user| !user.disabled);
                    let role = workspaces
                        .role_of(&workspace.id, user_id)?
                        .filter(|_| active)
                        .ok_or_else(key_stopped)?;
                    role.min(Role::Admin)
                }
            };
            (workspace, role)
        }
        Identity::Session { user, session, .. } => match &session.workspace_id {
            Some(id) => {
                let role = workspaces.role_of(id, &user.id)?.ok_or_else(|| {
                    ApiError::new(
                        403,
                        "workspace_access_revoked",
                        "you are no longer a member of this session's workspace, or it was \
                         deleted; list yours with GET /api/v1/workspaces and switch with \
                         POST /api/v1/workspaces/{id}/switch",
                    )
                })?;
                let workspace = workspaces.live(id)?.ok_or_else(ApiError::internal)?;
                (workspace, role)
            }
            None => workspaces.first_of(&user.id)?.ok_or_else(|| {
                ApiError::new(
                    403,
                    "no_workspace",
                    "you belong to no workspace; create one with POST /api/v1/workspaces \
                     or accept an invitation",
                )
            })?,
        },
    };
    Ok(Caller {
        identity,
        workspace,
        role,
    })
}

/// Authenticates the caller and checks `scope`.
fn authorize(
    credentials: &Credentials,
    state: &AppState,
    scope: Scope,
) -> Result<Caller, ApiError> {
    let caller = resolve(authenticate(credentials, state)?, state)?;
    if !caller.allows(scope) {
        let message = match &caller.identity {
            Identity::Key(key) if !allows(&key.scopes, scope) => {
                format!("this API key lacks the {} scope", scope.as_str())
            }
            Identity::Key(_) => format!(
                "the user who created this API key may not act with the {} scope in this workspace",
                scope.as_str()
            ),
            Identity::Session { .. } => format!(
                "your role in this workspace ({}) does not allow this ({})",
                caller.role.as_str(),
                scope.as_str()
            ),
        };
        return Err(ApiError::new(403, "insufficient_scope", message));
    }
    Ok(caller)
}

/// A scope a route requires, as a type: `Authorized<scope::LinksRead>`.
pub trait ScopeMarker: 'static {
    const SCOPE: Scope;
}

/// The scopes as types, one per [`Scope`].
pub mod scope {
    use super::{Scope, ScopeMarker};

    macro_rules! scopes {
        ($($name:ident),*) => {$(
            #[doc = concat!("Requires [`Scope::", stringify!($name), "`].")]
            #[derive(Debug)]
            pub struct $name;

            impl ScopeMarker for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }

    scopes!(LinksRead, LinksWrite, AnalyticsRead, DomainsWrite, Admin);
}

/// The caller (an API key or a signed-in user), authenticated, charged and
/// holding scope `S`; extracting it answers 401, 403 or 429 otherwise. The
/// lookup runs on the blocking pool, off actix's threads.
#[derive(Debug)]
pub struct Authorized<S: ScopeMarker> {
    pub caller: Caller,
    scope: PhantomData<S>,
}

type Extraction<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl<S: ScopeMarker> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let credentials = Credentials::of(request);
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            let caller = super::blocking(move || authorize(&credentials, &state, S::SCOPE)).await?;
            Ok(Self {
                caller,
                scope: PhantomData,
            })
        })
    }
}

/// A user signed in with a session cookie (routes about their own account
/// and sessions); 401 for API keys and anonymous callers. The same checks
/// as [`Authorized`] apply, CSRF included.
pub struct SignedIn {
    pub user: UserRecord,
    pub session: SessionRecord,
    /// The cookie's token, for the CSRF token; never answered.
    pub token: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("user", &self.user.id)
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

impl SignedIn {
    /// The same caller as an [`Identity`].
    pub fn identity(&self) -> Identity {
        Identity::Session {
            user: self.user.clone(),
            session: self.session.clone(),
            token: self.token.clone(),
        }
    }
}

/// Whether the request carries a session cookie.
pub fn has_session_cookie(request: &HttpRequest) -> bool {
    session_cookie(request).is_some()
}

impl FromRequest for SignedIn {
    type Error = ApiError;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let mut credentials = Credentials::of(request);
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            if credentials.session.is_none() {
                return Err(ApiError::new(
                    401,
                    "not_signed_in",
                    "this route is for a user signed in with a session cookie; sign in first",
                ));
            }
            credentials.api_key = None;
            match super::blocking(move || authenticate(&credentials, &state)).await? {
                Identity::Session {
                    user,
                    session,
                    token,
                } => Ok(Self {
                    user,
                    session,
                    token,
                }),
                Identity::Key(_) => Err(ApiError::internal()),
            }
        })
    }
}

/// Any authenticated caller, an API key or a session (rate limit and CSRF
/// checks included), not yet placed in a workspace: for routes that name the
/// workspace in their path ([`act_in`]) and for the workspace listing.
#[derive(Debug)]
pub struct Authenticated {
    pub identity: Identity,
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let credentials = Credentials::of(request);
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            let identity = super::blocking(move || authenticate(&credentials, &state)).await?;
            Ok(Self { identity })
        })
    }
}

/// The caller acting in workspace `workspace_id` with `scope`: a session in
/// any live workspace its user belongs to (a deleted one too when
/// `deleted_too`, for restoring it), a key in its own. Any other workspace is
/// answered 404, as one that does not exist.
pub fn act_in(
    state: &AppState,
    identity: Identity,
    workspace_id: &str,
    scope: Scope,
    deleted_too: bool,
) -> Result<Caller, ApiError> {
    let not_found = || ApiError::not_found(format!("no workspace with id {workspace_id:?}"));
    let caller = match &identity {
        Identity::Key(key) => {
            if key.workspace_id != workspace_id {
                return Err(not_found());
            }
            resolve(identity, state)?
        }
        Identity::Session { user, .. } => {
            let store = state.service.store();
            let workspace = store
                .workspace(workspace_id)?
                .filter(|w| deleted_too || w.deleted_at.is_none())
                .ok_or_else(not_found)?;
            let role = store
                .membership(workspace_id, &user.id)?
                .map(|m| m.role)
                .ok_or_else(not_found)?;
            if workspace.deleted_at.is_some() && role != Role::Owner {
                return Err(not_found());
            }
            Caller {
                identity,
                workspace,
                role,
            }
        }
    };
    if !caller.allows(scope) {
        return Err(ApiError::new(
            403,
            "insufficient_scope",
            match &caller.identity {
                Identity::Key(_) => format!(
                    "this API key may not act with the {} scope here",
                    scope.as_str()
                ),
                Identity::Session { .. } => format!(
                    "your role in this workspace ({}) does not allow this ({})",
                    caller.role.as_str(),
                    scope.as_str()
                ),
            },
        ));
    }
    Ok(caller)
}

/// The console's caller: the session of `token`, in the workspace it acts
/// in, with the rate limit charged; a request that changes state must carry
/// the session's CSRF token as `csrf` (the console's forms send it as a
/// field). Runs store reads: call it on the blocking pool.
pub fn session_caller(
    state: &AppState,
    token: &str,
    csrf: Option<String>,
    changes_state: bool,
) -> Result<Caller, ApiError> {
    let credentials = Credentials {
        api_key: None,
        session: Some(token.to_owned()),
        csrf,
        changes_state,
    };
    resolve(authenticate(&credentials, state)?, state)
}

/// The session cookie's value, if the request carries one.
pub fn session_token(request: &HttpRequest) -> Option<String> {
    session_cookie(request)
}

/// An engine holding the cluster token (for `/internal/v1/changes`); 401 otherwise.
#[derive(Debug)]
pub struct ClusterMember;

impl FromRequest for ClusterMember {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = request
            .app_data::<web::Data<AppState>>()
            .map_or("", |state| state.cluster_token.as_str());
        std::future::ready(authorize_cluster(request, token).map(|()| ClusterMember))
    }
}

/// Checks the cluster token engines send to `/internal/v1/changes`.
fn authorize_cluster(request: &HttpRequest, token: &str) -> Result<(), ApiError> {
    let sent = bearer(request).unwrap_or("");
    let matches: bool = sent.as_bytes().ct_eq(token.as_bytes()).into();
    if matches && !token.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "invalid_cluster_token",
            "a valid cluster token is required",
        ))
    }
}
