//! Which driver errors are worth retrying: mapped to the sink contract's
//! `Unavailable` (retry later) and `Failed` (retrying will not help).

use super::*;

pub(super) fn retryable_db_error(error: &DbError) -> bool {
    matches!(
        error,
        DbError::Overloaded
            | DbError::Unavailable { .. }
            | DbError::ReadTimeout { .. }
            | DbError::WriteTimeout { .. }
            | DbError::IsBootstrapping
            | DbError::RateLimitReached { .. }
            | DbError::ServerError
    )
}

pub(super) fn retryable_attempt(error: &RequestAttemptError) -> bool {
    match error {
        RequestAttemptError::DbError(db_error, _) => retryable_db_error(db_error),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => true,
        _ => false,
    }
}

pub(super) fn retryable_prepare(error: &PrepareError) -> bool {
    match error {
        PrepareError::ConnectionPoolError(_) => true,
        PrepareError::AllAttemptsFailed { first_attempt } => retryable_attempt(first_attempt),
        _ => false,
    }
}

pub(super) fn retryable_execution(error: &ExecutionError) -> bool {
    match error {
        ExecutionError::LastAttemptError(attempt) => retryable_attempt(attempt),
        ExecutionError::PrepareError(prepare) => retryable_prepare(prepare),
        ExecutionError::ConnectionPoolError(_)
        | ExecutionError::RequestTimeout(_)
        | ExecutionError::EmptyPlan
        | ExecutionError::SchemaAgreementError(_)
        | ExecutionError::MetadataError(_) => true,
        _ => false,
    }
}

pub(super) fn classified(retryable: bool, message: String) -> SinkError {
    if retryable {
        SinkError::Unavailable(message)
    } else {
        SinkError::Failed(message)
    }
}

/// Maps a driver execution error to the sink contract's two kinds.
pub fn classify_execution(error: &ExecutionError) -> SinkError {
    classified(retryable_execution(error), format!("scylla: {error}"))
}

/// Maps a driver prepare error to the sink contract's two kinds.
pub fn classify_prepare(error: &PrepareError) -> SinkError {
    classified(retryable_prepare(error), format!("scylla prepare: {error}"))
}

/// Maps a session creation error: unreachable clusters are retryable.
pub fn classify_connect(error: &NewSessionError) -> SinkError {
    let retryable = !matches!(
        error,
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_)
    );
    classified(retryable, format!("scylla connect: {error}"))
}
