//! Why a console request failed, as a page (never a JSON body or a bare
//! 500): signed-out visitors and expired sessions go to the sign-in page;
//! refusals (a role that does not allow the action, a forged or stale form,
//! another workspace's record) get a page that says so in words.

use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::page::{self, Layout};
use crate::api::error::ApiError;

/// A console request's failure.
#[derive(Debug)]
pub enum ConsoleError {
    /// Not signed in, or the session ended: to the sign-in page, then back.
    SignIn { next: String, expired: bool },
    /// An error page with the API error's status and message.
    Api(ApiError),
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn { .. } => f.write_str("sign in first"),
            Self::Api(error) => f.write_str(&error.message),
        }
    }
}

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<crate::service::LinkError> for ConsoleError {
    fn from(error: crate::service::LinkError) -> Self {
        Self::Api(error.into())
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    heading: &'a str,
    message: &'a str,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            Self::SignIn { .. } => actix_web::http::StatusCode::SEE_OTHER,
            Self::Api(error) => actix_web::http::StatusCode::from_u16(error.status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { next, expired } => {
                let mut location = format!("{}/sign-in?next={}", super::PREFIX, page::encode(next));
                if *expired {
                    location.push_str("&expired=1");
                }
                page::see_other(&location)
            }
            Self::Api(error) => {
                let heading = match error.status {
                    403 => "Not allowed",
                    404 => "Not found",
                    409 => "Conflict",
                    429 => "Too many requests",
                    500..=599 => "Something went wrong",
                    _ => "That did not work",
                };
                let message = match error.code {
                    "csrf_token_missing" | "csrf_token_invalid" | "foreign_origin" => {
                        "This form is stale or did not come from this console. Reload the \
                         page and try again."
                    }
                    "no_workspace" => {
                        "You belong to no workspace yet. Ask an owner or admin to invite \
                         you, then open the link from your invitation."
                    }
                    _ => error.message.as_str(),
                };
                let mut response = page::render(
                    error.status,
                    &ErrorPage {
                        layout: Layout::public(heading),
                        status: error.status,
                        heading,
                        message,
                    },
                );
                if let Some(seconds) = error.retry_after {
                    response.headers_mut().insert(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from(seconds),
                    );
                }
                response
            }
        }
    }
}

/// Unknown console paths and methods: a 404 page.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::Api(ApiError::not_found(format!(
        "There is no console page at {}.",
        request.path()
    ))))
}
