//! UTM fields of a link: `utm_source`, `utm_medium`, `utm_campaign`,
//! `utm_term` and `utm_content` in the destination's query. They are kept in
//! the destination itself, so engines redirect to it as it is and an export
//! carries them; the API shows them as the link's `utm` object.
//!
//! Precedence: a UTM field given on the link replaces a parameter of the same
//! name already in the destination (in place); the destination's other
//! parameters stay byte for byte; a visitor's query, when the link forwards
//! it, comes after all of them (so for a repeated name, servers that read
//! the first value read the link's).

use url::Url;
use url::form_urlencoded;

use super::LinkError;

/// The fields, as (API name, query parameter).
pub const FIELDS: [(&str, &str); 5] = [
    ("source", "utm_source"),
    ("medium", "utm_medium"),
    ("campaign", "utm_campaign"),
    ("term", "utm_term"),
    ("content", "utm_content"),
];

/// Longest UTM value, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

/// Changes to a link's UTM fields, by API name: `Some(value)` sets one,
/// `None` removes it; fields not listed stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UtmChanges(pub Vec<(&'static str, Option<String>)>);

impl UtmChanges {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parameter(field: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, parameter)| *parameter)
}

/// `destination` (already validated) with `changes` applied to its query.
pub fn apply(destination: &str, changes: &UtmChanges) -> Result<String, LinkError> {
    if changes.is_empty() {
        return Ok(destination.to_owned());
    }
    let mut url = Url::parse(destination).map_err(|_| LinkError::InvalidUtm { field: "url" })?;
    let mut pieces: Vec<String> = url
        .query()
        .filter(|q| !q.is_empty())
        .map(|q| q.split('&').map(str::to_owned).collect())
        .unwrap_or_default();
    for (field, value) in &changes.0 {
        let name = parameter(field).ok_or(LinkError::InvalidUtm { field: "utm" })?;
        if let Some(value) = value {
            check_value(field, value)?;
        }
        let is_it = |piece: &String| piece.split('=').next() == Some(name);
        let at = pieces.iter().position(is_it);
        pieces.retain(|piece| !is_it(piece));
        if let Some(value) = value {
            let piece = format!(
                "{name}={}",
                form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
            );
            match at {
                Some(at) => pieces.insert(at.min(pieces.len()), piece),
                None => pieces.push(piece),
            }
        }
    }
    if pieces.is_empty() {
        url.set_query(None);
    } else {
        url.set_query(Some(&pieces.join("&")));
    }
    Ok(url.into())
}

fn check_value(field: &'static str, value: &str) -> Result<(), LinkError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_VALUE_CHARS || value.chars().any(char::is_control) {
        return Err(LinkError::InvalidUtm { field });
    }
    Ok(())
}

/// The UTM fields of `destination`, by API name (the first value of each).
pub fn read(destination: &str) -> [(&'static str, Option<String>); 5] {
    let query = Url::parse(destination)
        .ok()
        .and_then(|url| url.query().map(str::to_owned))
        .unwrap_or_default();
    FIELDS.map(|(field, name)| {
        let value = form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned());
        (field, value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&'static str, Option<&str>)]) -> UtmChanges {
        UtmChanges(
            pairs
                .iter()
                .map(|(field, value)| (*field, value.map(str::to_owned)))
                .collect(),
        )
    }

    #[test]
    fn fields_join_the_query_and_replace_their_own_names_in_place() {
        let applied = apply(
            "https://e.com/p?a=1,2&utm_source=old&b=%22q%22#top",
            &set(&[
                ("source", Some("news letter")),
                ("campaign", Some("spring&co")),
            ]),
        )
        .unwrap();
        assert_eq!(
            applied,
            "https://e.com/p?a=1,2&utm_source=news+letter&b=%22q%22&utm_campaign=spring%26co#top"
        );
        let read = read(&applied);
        assert_eq!(read[0], ("source", Some("news letter".to_owned())));
        assert_eq!(read[2], ("campaign", Some("spring&co".to_owned())));
        assert_eq!(read[1], ("medium", None));
        let removed = apply(&applied, &set(&[("source", None), ("campaign", None)])).unwrap();
        assert_eq!(removed, "https://e.com/p?a=1,2&b=%22q%22#top");
        let emptied = apply("https://e.com/?utm_term=x", &set(&[("term", None)])).unwrap();
        assert_eq!(emptied, "https://e.com/");
    }

    #[test]
    fn bad_values_name_their_field() {
        for value in ["", "a\nb", &"x".repeat(201)] {
            assert!(matches!(
                apply("https://e.com/", &set(&[("medium", Some(value))])),
                Err(LinkError::InvalidUtm { field: "medium" })
            ));
        }
    }
}
