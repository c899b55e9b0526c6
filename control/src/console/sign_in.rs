//! Signing in and out of the console: the email and password form (the
//! API's sign-in underneath: same throttles, same session cookie), and the
//! sign-out button.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::page::{self, Layout};
use crate::api::AppState;
use crate::api::accounts::{cookie, open_session};
use crate::api::auth::session_token;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    layout: Layout,
    next: String,
    email: String,
    expired: bool,
    errors: FieldErrors,
}

/// Where to go after signing in: a console path, never another site.
fn safe_next(next: &str) -> String {
    let inside = next.starts_with(super::PREFIX)
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.starts_with(&format!("{}/sign-", super::PREFIX));
    if inside {
        next.to_owned()
    } else {
        format!("{}/links", super::PREFIX)
    }
}

/// `GET /console/sign-in`: the form (or on to the console when signed in).
pub async fn page(request: HttpRequest) -> HttpResponse {
    let query = FormData::parse(request.query_string().as_bytes());
    let next = safe_next(query.get("next"));
    if session_token(&request).is_some()
        && super::Console::authenticate(&request, None).await.is_ok()
    {
        return page::see_other(&next);
    }
    page::render(
        200,
        &SignInPage {
            layout: Layout::public("Sign in").with_notice(query.optional("notice")),
            next,
            email: String::new(),
            expired: query.get("expired") == "1",
            errors: FieldErrors::none(),
        },
    )
}

/// `POST /console/sign-in`: a session cookie and on to `next`, or the form
/// again with the error.
pub async fn submit(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let form = FormData::read(&request, payload, state.max_body_bytes).await?;
    let next = safe_next(form.get("next"));
    let email = form.get("email").to_owned();
    let password = form.raw("password").to_owned();
    let refused = |errors: FieldErrors, status: u16| {
        page::render(
            status,
            &SignInPage {
                layout: Layout::public("Sign in"),
                next: next.clone(),
                email: email.clone(),
                expired: false,
                errors,
            },
        )
    };
    if email.is_empty() {
        return Ok(refused(
            FieldErrors::on("email", "Enter your email address."),
            400,
        ));
    }
    if password.is_empty() {
        return Ok(refused(
            FieldErrors::on("password", "Enter your password."),
            400,
        ));
    }
    match open_session(&state, &request, &email, password.clone()).await {
        Ok((opened, _, _)) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", next.as_str()))
            .insert_header(("Set-Cookie", cookie(&state, &request, Some(&opened.token))))
            .insert_header(("Cache-Control", "no-store"))
            .finish()),
        Err(error) => {
            let mut response = refused(FieldErrors::from_api(&error, &["email"]), error.status);
            if let Some(seconds) = error.retry_after {
                response.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(seconds),
                );
            }
            Ok(response)
        }
    }
}

/// `POST /console/sign-out`: ends the session and clears the cookie.
pub async fn sign_out(
    submitted: Submitted,
    request: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let console = submitted.console;
    let state = console.state.clone();
    let user_id = console.user.id.clone();
    let crate::api::auth::Identity::Session { session, .. } = &console.caller.identity else {
        return Err(crate::api::error::ApiError::internal().into());
    };
    let session_id = session.id.clone();
    let worker = state.clone();
    crate::api::blocking(move || worker.accounts.revoke(&user_id, &session_id)).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("{}/sign-in?notice=signed-out", super::PREFIX),
        ))
        .insert_header(("Set-Cookie", cookie(&state, &request, None)))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_paths_are_followed_after_signing_in() {
        assert_eq!(safe_next("/console/links?q=a"), "/console/links?q=a");
        assert_eq!(safe_next("/console/domains"), "/console/domains");
        for foreign in [
            "https://evil.example/",
            "//evil.example/console",
            "/\\evil.example",
            "/console\\@evil.example",
            "/api/v1/links",
            "/console/sign-in?next=/console",
            "",
        ] {
            assert_eq!(safe_next(foreign), "/console/links", "{foreign:?}");
        }
    }
}
