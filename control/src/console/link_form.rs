//! The link form: every field the API has, as text the form shows back
//! ([`LinkForm`]), read from a link or a submitted form, and turned into
//! the API's own body (`CreateLink` or `PatchLink` as JSON), so the console
//! goes through the same parsing and validation as API clients.

use serde_json::{Map, Value, json};

use super::form::{FieldErrors, FormData};
use crate::api::types::LinkView;

/// Form fields that can carry an error (the API's field names).
pub const FIELDS: &[&str] = &[
    "url",
    "domain",
    "code",
    "status",
    "state",
    "title",
    "tags",
    "expires_at",
    "forward_query",
    "utm",
    "utm.source",
    "utm.medium",
    "utm.campaign",
    "utm.term",
    "utm.content",
    "password",
    "max_clicks",
    "fallback_url",
    "ios",
    "android",
    "card",
    "card.title",
    "card.description",
    "card.image",
    "rules",
    "variants",
];

/// UTM parameters, in form order: (form field, API field).
pub const UTM: [(&str, &str); 5] = [
    ("utm_source", "source"),
    ("utm_medium", "medium"),
    ("utm_campaign", "campaign"),
    ("utm_term", "term"),
    ("utm_content", "content"),
];

/// The link form's values as text.
#[derive(Debug, Clone, Default)]
pub struct LinkForm {
    pub url: String,
    pub domain: String,
    pub code: String,
    pub status: String,
    pub state: String,
    pub title: String,
    pub tags: String,
    /// `YYYY-MM-DDTHH:MM`, UTC (a `datetime-local` input).
    pub expires_at: String,
    pub forward_query: bool,
    /// Values of [`UTM`], in order.
    pub utm: [String; 5],
    pub password: String,
    pub remove_password: bool,
    pub password_protected: bool,
    pub max_clicks: String,
    pub fallback_url: String,
    pub ios: String,
    pub android: String,
    pub card_title: String,
    pub card_description: String,
    pub card_image: String,
    /// JSON arrays, as the API takes them.
    pub rules: String,
    pub variants: String,
}

impl LinkForm {
    /// The form of an existing link.
    pub fn of(link: &LinkView) -> Self {
        let pretty = |value: Value| match value {
            Value::Array(items) if items.is_empty() => String::new(),
            value => serde_json::to_string_pretty(&value).unwrap_or_default(),
        };
        let card = link.card.clone().unwrap_or_default();
        Self {
            url: link.url.clone(),
            domain: link.domain.clone(),
            code: link.code.clone(),
            status: link.status.to_string(),
            state: serde_json::to_value(link.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            title: link.title.clone().unwrap_or_default(),
            tags: link.tags.join(", "),
            expires_at: link
                .expires_at
                .map(|at| {
                    format!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}",
                        at.year(),
                        u8::from(at.month()),
                        at.day(),
                        at.hour(),
                        at.minute()
                    )
                })
                .unwrap_or_default(),
            forward_query: link.forward_query,
            utm: [
                link.utm.source.clone().unwrap_or_default(),
                link.utm.medium.clone().unwrap_or_default(),
                link.utm.campaign.clone().unwrap_or_default(),
                link.utm.term.clone().unwrap_or_default(),
                link.utm.content.clone().unwrap_or_default(),
            ],
            password: String::new(),
            remove_password: false,
            password_protected: link.password_protected,
            max_clicks: link.max_clicks.map(|n| n.to_string()).unwrap_or_default(),
            fallback_url: link.fallback_url.clone().unwrap_or_default(),
            ios: link.ios.clone().unwrap_or_default(),
            android: link.android.clone().unwrap_or_default(),
            card_title: card.title.unwrap_or_default(),
            card_description: card.description.unwrap_or_default(),
            card_image: card.image.unwrap_or_default(),
            rules: pretty(serde_json::to_value(&link.rules).unwrap_or_default()),
            variants: pretty(serde_json::to_value(&link.variants).unwrap_or_default()),
        }
    }

    /// The values a user submitted.
    pub fn read(form: &FormData) -> Self {
        Self {
            url: form.get("url").to_owned(),
            domain: form.get("domain").to_owned(),
            code: form.get("code").to_owned(),
            status: form.get("status").to_owned(),
            state: form.get("state").to_owned(),
            title: form.get("title").to_owned(),
            tags: form.get("tags").to_owned(),
            expires_at: form.get("expires_at").to_owned(),
            forward_query: form.checked("forward_query"),
            utm: UTM.map(|(name, _)| form.get(name).to_owned()),
            password: form.raw("password").to_owned(),
            remove_password: form.checked("remove_password"),
            password_protected: form.checked("password_protected"),
            max_clicks: form.get("max_clicks").to_owned(),
            fallback_url: form.get("fallback_url").to_owned(),
            ios: form.get("ios").to_owned(),
            android: form.get("android").to_owned(),
            card_title: form.get("card_title").to_owned(),
            card_description: form.get("card_description").to_owned(),
            card_image: form.get("card_image").to_owned(),
            rules: form.get("rules").to_owned(),
            variants: form.get("variants").to_owned(),
        }
    }

    /// The body of `POST /api/v1/links` for these values.
    pub fn create_body(&self) -> Result<Value, FieldErrors> {
        let mut body = Map::new();
        body.insert("url".into(), json!(self.url));
        for (field, value) in [
            ("domain", &self.domain),
            ("code", &self.code),
            ("title", &self.title),
            ("fallback_url", &self.fallback_url),
            ("ios", &self.ios),
            ("android", &self.android),
        ] {
            if !value.is_empty() {
                body.insert(field.into(), json!(value));
            }
        }
        if !self.password.is_empty() {
            body.insert("password".into(), json!(self.password));
        }
        self.common(&mut body, false)?;
        Ok(Value::Object(body))
    }

    /// The body of `PATCH /api/v1/links/{id}`: every field, an empty one
    /// removing its value; the password only when a new one is typed (or
    /// removal is ticked).
    pub fn patch_body(&self) -> Result<Value, FieldErrors> {
        let mut body = Map::new();
        body.insert("url".into(), json!(self.url));
        if !self.state.is_empty() {
            body.insert("state".into(), json!(self.state));
        }
        for (field, value) in [
            ("title", &self.title),
            ("fallback_url", &self.fallback_url),
            ("ios", &self.ios),
            ("android", &self.android),
        ] {
            body.insert(field.into(), optional(value));
        }
        if self.remove_password {
            body.insert("password".into(), Value::Null);
        } else if !self.password.is_empty() {
            body.insert("password".into(), json!(self.password));
        }
        self.common(&mut body, true)?;
        Ok(Value::Object(body))
    }

    /// Fields written the same way on create and edit.
    fn common(&self, body: &mut Map<String, Value>, patch: bool) -> Result<(), FieldErrors> {
        if !self.status.is_empty() {
            let status = self
                .status
                .parse::<u16>()
                .map_err(|_| FieldErrors::on("status", "Choose 301, 302, 307 or 308."))?;
            body.insert("status".into(), json!(status));
        }
        let tags: Vec<&str> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .collect();
        if patch || !tags.is_empty() {
            body.insert("tags".into(), json!(tags));
        }
        if !self.expires_at.is_empty() {
            body.insert("expires_at".into(), json!(expiry(&self.expires_at)?));
        } else if patch {
            body.insert("expires_at".into(), Value::Null);
        }
        body.insert("forward_query".into(), json!(self.forward_query));
        let mut utm = Map::new();
        for ((_, name), value) in UTM.iter().zip(&self.utm) {
            if !value.is_empty() {
                utm.insert((*name).into(), json!(value));
            } else if patch {
                utm.insert((*name).into(), Value::Null);
            }
        }
        if !utm.is_empty() {
            body.insert("utm".into(), Value::Object(utm));
        }
        if !self.max_clicks.is_empty() {
            let value = self
                .max_clicks
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(self.max_clicks));
            body.insert("max_clicks".into(), value);
        } else if patch {
            body.insert("max_clicks".into(), Value::Null);
        }
        let mut card = Map::new();
        for (name, value) in [
            ("title", &self.card_title),
            ("description", &self.card_description),
            ("image", &self.card_image),
        ] {
            if !value.is_empty() {
                card.insert(name.into(), json!(value));
            }
        }
        if !card.is_empty() {
            body.insert("card".into(), Value::Object(card));
        } else if patch {
            body.insert("card".into(), Value::Null);
        }
        for (field, text) in [("rules", &self.rules), ("variants", &self.variants)] {
            if text.is_empty() {
                if patch {
                    body.insert(field.into(), json!([]));
                }
                continue;
            }
            let value: Value = serde_json::from_str(text).map_err(|error| {
                FieldErrors::on(field, format!("This is not valid JSON: {error}."))
            })?;
            body.insert(field.into(), value);
        }
        Ok(())
    }
}

fn optional(value: &str) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        json!(value)
    }
}

/// A `datetime-local` value (UTC) as RFC 3339.
fn expiry(value: &str) -> Result<String, FieldErrors> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let with_seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let parsed = time::PrimitiveDateTime::parse(value, &format)
        .or_else(|_| time::PrimitiveDateTime::parse(value, &with_seconds))
        .map_err(|_| {
            FieldErrors::on(
                "expires_at",
                "Enter a date and time such as 2027-01-31T18:00 (UTC).",
            )
        })?;
    parsed
        .assume_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| FieldErrors::on("expires_at", "This date cannot be used."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_link_sends_only_what_was_filled_in() {
        let form = LinkForm {
            url: "https://example.com/".into(),
            tags: " spring, , launch ".into(),
            expires_at: "2030-01-31T18:00".into(),
            max_clicks: "10".into(),
            ..LinkForm::default()
        };
        let body = form.create_body().unwrap();
        assert_eq!(body["url"], "https://example.com/");
        assert_eq!(body["tags"], json!(["spring", "launch"]));
        assert_eq!(body["expires_at"], "2030-01-31T18:00:00Z");
        assert_eq!(body["max_clicks"], 10);
        assert!(body.get("title").is_none());
        assert!(body.get("rules").is_none());
        assert!(body.get("password").is_none());
    }

    #[test]
    fn an_edit_clears_emptied_fields_and_keeps_the_password_unless_asked() {
        let form = LinkForm {
            url: "https://example.com/".into(),
            ..LinkForm::default()
        };
        let body = form.patch_body().unwrap();
        assert_eq!(body["title"], Value::Null);
        assert_eq!(body["expires_at"], Value::Null);
        assert_eq!(body["rules"], json!([]));
        assert_eq!(body["utm"]["source"], Value::Null);
        assert!(body.get("password").is_none());
        let removal = LinkForm {
            remove_password: true,
            ..form
        };
        assert_eq!(removal.patch_body().unwrap()["password"], Value::Null);
    }

    #[test]
    fn bad_json_and_dates_are_named() {
        let form = LinkForm {
            url: "https://example.com/".into(),
            rules: "[{".into(),
            ..LinkForm::default()
        };
        assert!(form.create_body().unwrap_err().get("rules").is_some());
        let form = LinkForm {
            url: "https://example.com/".into(),
            expires_at: "tomorrow".into(),
            ..LinkForm::default()
        };
        assert!(form.create_body().unwrap_err().get("expires_at").is_some());
    }
}
