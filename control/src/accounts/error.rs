//! Why an account operation was refused, in the domain's terms; the API maps
//! these to its one error shape. Messages never name a password or a hash.

use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum AccountError {
    #[error("invalid email address: {0}")]
    InvalidEmail(&'static str),
    #[error("invalid display name: {0}")]
    InvalidName(&'static str),
    #[error("weak password: {0}")]
    WeakPassword(&'static str),
    /// Unknown email, wrong password or disabled user: one answer for all.
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccountError {
    /// The input field at fault, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidEmail(_) | Self::EmailTaken => Some("email"),
            Self::InvalidName(_) => Some("display_name"),
            Self::WeakPassword(_) => Some("password"),
            Self::WrongCurrentPassword => Some("current_password"),
            Self::InvalidCredentials | Self::Store(_) => None,
        }
    }
}
