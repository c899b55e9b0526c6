//! Console forms: reading a submitted form (URL-encoded, at most the API's
//! body limit), refusing one from another origin or without the session's
//! CSRF token ([`Submitted`]), and showing the API's errors next to the
//! fields they name ([`FieldErrors`]).

use std::collections::BTreeMap;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::error::ConsoleError;
use super::session::Console;
use crate::api::AppState;
use crate::api::error::ApiError;

/// Name of the hidden field carrying the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// The fields of a submitted form, in order (a name may repeat).
#[derive(Debug, Clone, Default)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// The first value of `name` as sent (passwords keep their spaces).
    pub fn raw(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// The first value of `name`, trimmed, when not empty.
    pub fn optional(&self, name: &str) -> Option<&str> {
        Some(self.get(name)).filter(|value| !value.is_empty())
    }

    /// Every value of `name` (checkbox lists).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.pairs
            .iter()
            .any(|(key, value)| key == name && value != "off")
    }

    /// Reads the body of `payload` as a form.
    pub async fn read(
        request: &HttpRequest,
        payload: web::Payload,
        limit: usize,
    ) -> Result<Self, ConsoleError> {
        check_origin(request)?;
        let media = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "application/x-www-form-urlencoded" {
            return Err(ApiError::new(
                415,
                "unsupported_media_type",
                "Forms are sent as application/x-www-form-urlencoded.",
            )
            .into());
        }
        let body = crate::api::read_body(payload, limit).await?;
        Ok(Self::parse(&body))
    }
}

/// Refuses a request whose `Origin` (sent by browsers on every form post) is
/// another site: together with the CSRF token and `SameSite=Lax` cookies,
/// forged cross-site forms are refused, the sign-in form included.
pub fn check_origin(request: &HttpRequest) -> Result<(), ConsoleError> {
    let Some(origin) = request
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let host = request.connection_info().host().to_owned();
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    if origin_host.eq_ignore_ascii_case(&host) {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "foreign_origin",
        format!("a form from {origin} may not act on this console"),
    )
    .into())
}

/// A form submitted by a signed-in user, its CSRF token checked.
#[derive(Debug)]
pub struct Submitted {
    pub console: Console,
    pub form: FormData,
}

impl FromRequest for Submitted {
    type Error = ConsoleError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = web::Payload::from_request(&request, payload);
        Box::pin(async move {
            let payload = payload.await.map_err(|_| ApiError::internal())?;
            let limit = request
                .app_data::<web::Data<AppState>>()
                .map_or(1 << 20, |state| state.max_body_bytes);
            let form = FormData::read(&request, payload, limit).await?;
            let csrf = form.get(CSRF_FIELD).to_owned();
            let console = Console::authenticate(&request, Some(csrf)).await?;
            Ok(Self { console, form })
        })
    }
}

/// Errors shown on a form: next to the field the API error names, or above
/// the form when it names none the form has.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    fields: BTreeMap<String, String>,
    pub general: Vec<String>,
}

impl FieldErrors {
    /// No errors.
    pub fn none() -> Self {
        Self::default()
    }

    /// `error` placed on its field when it is one of `fields` (a nested
    /// field such as `rules[2].url` goes on `rules`).
    pub fn from_api(error: &ApiError, fields: &[&str]) -> Self {
        let mut errors = Self::default();
        let placed = error.field.as_deref().and_then(|field| {
            let top = field
                .split(['[', '.'])
                .next()
                .filter(|top| !top.is_empty())
                .unwrap_or(field);
            [field, top]
                .into_iter()
                .find(|candidate| fields.contains(candidate))
        });
        match placed {
            Some(field) => {
                errors
                    .fields
                    .insert(field.to_owned(), error.message.clone());
            }
            None => errors.general.push(error.message.clone()),
        }
        errors
    }

    /// One error on `field`.
    pub fn on(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.fields.insert(field.to_owned(), message.into());
        errors
    }

    /// The error of `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_read_repeated_trimmed_and_ticked_fields() {
        let form = FormData::parse(b"id=1&id=2&title=+a+b+&password=+x+&box=on&empty=");
        assert_eq!(form.all("id"), ["1", "2"]);
        assert_eq!(form.get("title"), "a b");
        assert_eq!(form.raw("password"), " x ");
        assert!(form.checked("box"));
        assert!(!form.checked("other"));
        assert_eq!(form.optional("empty"), None);
        assert_eq!(form.get("missing"), "");
    }

    #[test]
    fn an_api_error_lands_on_its_field_or_above_the_form() {
        let error = ApiError::bad_request("invalid_rule", "bad").with_field("rules[2].url");
        let errors = FieldErrors::from_api(&error, &["url", "rules"]);
        assert_eq!(errors.get("rules"), Some("bad"));
        assert!(errors.general.is_empty());
        let error = ApiError::bad_request("invalid_utm", "bad utm").with_field("utm.source");
        let errors = FieldErrors::from_api(&error, &["utm.source", "utm"]);
        assert_eq!(errors.get("utm.source"), Some("bad utm"));
        let error = ApiError::new(409, "code_taken", "taken");
        let errors = FieldErrors::from_api(&error, &["code"]);
        assert_eq!(errors.general, ["taken"]);
        assert!(!errors.is_empty());
    }
}
