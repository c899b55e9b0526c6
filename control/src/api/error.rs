//! The one error shape of the API: `{"error":{"code":…,"message":…,"field":…}}`
//! with an HTTP status, and the mapping of the service's domain errors to it.
//! Internal failures are logged and answered as a generic 500 that leaks nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use ricochet_model::ValidationError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::AccountError;
use crate::service::LinkError;
use crate::store::StoreError;
use crate::workspaces::WorkspaceError;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_url`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, or `null`.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "internal",
            "internal error; see the control plane's log",
        )
    }

    /// A failure of ours: logged, answered without details.
    pub(crate) fn from_fault(error: &dyn std::error::Error) -> Self {
        tracing::error!(%error, "store failure");
        Self::internal()
    }

    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.to_owned(),
            message: self.message.clone(),
            field: self.field.clone(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.detail(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::bad_request(error.code(), error.to_string()).with_field(error.field())
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        let message = error.to_string();
        let answer = match &error {
            LinkError::Invalid(invalid) => return Self::from(invalid.clone()),
            LinkError::Store(_) => return Self::from_fault(&error),
            LinkError::UnknownDomain { .. } => Self::new(
                422,
                "unknown_domain",
                format!("{message}; add it with POST /api/v1/domains"),
            ),
            LinkError::Reserved { .. } => Self::bad_request("reserved_code", message),
            LinkError::CodeTaken { .. } => Self::new(409, "code_taken", message),
            LinkError::DomainExists { .. } => Self::new(409, "domain_exists", message),
            LinkError::DomainNotFound { .. } => Self::new(404, "domain_not_found", message),
            LinkError::DomainNotOwned { .. } => Self::new(403, "domain_not_owned", message),
            LinkError::DomainNotVerified { .. } => Self::new(422, "domain_not_verified", message),
            LinkError::VerificationExpired { .. } => {
                Self::new(409, "verification_expired", message)
            }
            LinkError::DefaultDomain { .. } => Self::new(409, "default_domain", message),
            LinkError::DomainHasLinks { .. } => Self::new(409, "domain_has_links", message),
            LinkError::AlreadyVerified { .. } => Self::new(409, "domain_already_verified", message),
            LinkError::NotFound { .. } => Self::not_found(message),
            LinkError::PointsToShortDomain { .. } => {
                Self::bad_request("destination_is_short_link", message)
            }
            LinkError::DestinationBlocked { .. } => {
                Self::bad_request("destination_blocked", message)
            }
            LinkError::ExpiryInPast => Self::bad_request("invalid_expires_at", message),
            LinkError::InvalidUtm { field } => {
                return Self::bad_request("invalid_utm", message)
                    .with_field(format!("utm.{field}"));
            }
            LinkError::TooMany { .. } => Self::new(413, "too_many_items", message),
            LinkError::IdempotencyKeyReused => {
                return Self::new(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )
                .with_field("Idempotency-Key");
            }
            LinkError::BadCursor => {
                Self::bad_request("invalid_cursor", "the cursor is not one this API issued")
            }
            LinkError::CodeSpaceExhausted => Self::new(503, "code_space_exhausted", message),
        };
        match error.field() {
            Some(field) => answer.with_field(field),
            None => answer,
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let message = error.to_string();
        let answer = match &error {
            AccountError::Store(_) => return Self::from_fault(&error),
            AccountError::InvalidEmail(_) => Self::bad_request("invalid_email", message),
            AccountError::InvalidName(_) => Self::bad_request("invalid_display_name", message),
            AccountError::WeakPassword(_) => Self::bad_request("weak_password", message),
            AccountError::WrongCurrentPassword => Self::bad_request("wrong_password", message),
            AccountError::InvalidCredentials => Self::new(401, "invalid_credentials", message),
            AccountError::EmailTaken => Self::new(409, "email_taken", message),
        };
        match error.field() {
            Some(field) => answer.with_field(field),
            None => answer,
        }
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(error: WorkspaceError) -> Self {
        let error = match error {
            WorkspaceError::Account(error) => return Self::from(error),
            WorkspaceError::Link(error) => return Self::from(error),
            other => other,
        };
        let message = error.to_string();
        let answer = match &error {
            WorkspaceError::Store(_) => return Self::from_fault(&error),
            WorkspaceError::Account(_) | WorkspaceError::Link(_) => return Self::internal(),
            WorkspaceError::NotFound { .. }
            | WorkspaceError::MemberNotFound { .. }
            | WorkspaceError::InvitationNotFound { .. } => Self::not_found(message),
            WorkspaceError::InvalidName(_) => Self::bad_request("invalid_name", message),
            WorkspaceError::InvalidRole(_) => Self::bad_request("invalid_role", message),
            WorkspaceError::Forbidden(_) => Self::new(403, "insufficient_role", message),
            WorkspaceError::LastOwner => Self::new(409, "last_owner", message),
            WorkspaceError::AlreadyMember { .. } => Self::new(409, "already_member", message),
            WorkspaceError::InvitationInvalid => Self::new(404, "invalid_invitation", message),
            WorkspaceError::InvitationForAnotherUser => {
                Self::new(403, "invitation_for_another_user", message)
            }
            WorkspaceError::SignInToAccept => Self::new(409, "sign_in_to_accept", message),
            WorkspaceError::NotDeleted => Self::new(409, "not_deleted", message),
            WorkspaceError::RestoreWindowOver { .. } => {
                Self::new(410, "restore_window_over", message)
            }
        };
        match error.field() {
            Some(field) => answer.with_field(field),
            None => answer,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::from_fault(&error)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(self.body())
    }
}
