//! Why a workspace operation was refused, in the domain's terms; the API maps
//! these to its one error shape.

use thiserror::Error;

use crate::accounts::AccountError;
use crate::service::LinkError;
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum WorkspaceError {
    /// No such workspace, or the caller is not a member: one answer for both.
    #[error("no workspace with id {id:?}")]
    NotFound { id: String },
    #[error("invalid workspace name: {0}")]
    InvalidName(&'static str),
    #[error("invalid role {0:?}: use owner, admin, member or viewer")]
    InvalidRole(String),
    /// The caller's role does not allow the operation.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("a workspace keeps at least one owner; make someone else an owner first")]
    LastOwner,
    #[error("no member with id {id:?} in this workspace")]
    MemberNotFound { id: String },
    #[error("{email} is already a member of this workspace")]
    AlreadyMember { email: String },
    /// Unknown, used, revoked or expired: one answer for all.
    #[error("the invitation is unknown, already used, revoked or expired")]
    InvitationInvalid,
    #[error("this invitation is for another email address; sign in as the invited user")]
    InvitationForAnotherUser,
    #[error("a user with the invited email exists; sign in as them, then accept")]
    SignInToAccept,
    #[error("no invitation with id {id:?} in this workspace")]
    InvitationNotFound { id: String },
    #[error("the workspace is not deleted")]
    NotDeleted,
    #[error("the workspace was deleted more than {days} days ago and can no longer be restored")]
    RestoreWindowOver { days: i64 },
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WorkspaceError {
    /// The input field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidName(_) => Some("name"),
            Self::InvalidRole(_) => Some("role"),
            Self::AlreadyMember { .. } | Self::SignInToAccept => Some("email"),
            Self::InvitationInvalid | Self::InvitationForAnotherUser => Some("token"),
            Self::Account(error) => error.field(),
            Self::Link(error) => error.field(),
            _ => None,
        }
    }
}
