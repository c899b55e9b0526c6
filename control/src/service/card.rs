//! A new link's card read from its destination (`links.fetch_card_metadata`):
//! for a create without card values, the page is fetched once, before the
//! write transaction (never holding the store's writer), and what it
//! declares becomes the `card` the create stores, validated like any card.
//! A fetch that is refused, fails or finds nothing leaves the create as it
//! was asked. Imports never fetch (they do not come through here).

use std::borrow::Cow;

use ricochet_model::behaviour::Card;
use ricochet_model::behaviour::check;
use ricochet_model::validate;
use serde_json::Value;

use super::{LinkService, NewLink};

impl LinkService {
    /// `input` with the card its destination's page gives, when card
    /// fetching is on and `input` sets no card value.
    pub(super) fn with_fetched_card<'a>(&self, input: &'a NewLink) -> Cow<'a, NewLink> {
        let (Some(cards), Some(url)) = (&self.cards, self.card_destination(input)) else {
            return Cow::Borrowed(input);
        };
        with_card(input, cards.card_for(&url))
    }

    /// [`with_fetched_card`](Self::with_fetched_card) for a bulk create,
    /// fetched a few at a time within one time limit; items `skip` names
    /// (refused already) are not fetched.
    pub(super) fn with_fetched_cards<'a>(
        &self,
        inputs: &'a [NewLink],
        skip: impl Fn(usize) -> bool,
    ) -> Vec<Cow<'a, NewLink>> {
        let Some(cards) = &self.cards else {
            return inputs.iter().map(Cow::Borrowed).collect();
        };
        let urls: Vec<Option<String>> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                if skip(index) {
                    return None;
                }
                self.card_destination(input)
            })
            .collect();
        let found = if urls.iter().any(Option::is_some) {
            cards.cards_for(&urls)
        } else {
            vec![None; inputs.len()]
        };
        inputs
            .iter()
            .zip(found)
            .map(|(input, card)| with_card(input, card))
            .collect()
    }

    /// The destination to read a card from: `input`'s own URL (without the
    /// UTM fields, which would count the fetch as a campaign visit), when
    /// fetching is on, `input` sets no card value, and the create would
    /// not be refused for its URL anyway.
    fn card_destination(&self, input: &NewLink) -> Option<String> {
        self.cards.as_ref()?;
        if has_card_values(input.behaviour.card.as_ref()) {
            return None;
        }
        let url = validate::validate_destination(&input.url).ok()?;
        self.refuse_short_domain("url", &url).ok()?;
        Some(url)
    }
}

/// Whether a create's `card` sets anything (an invalid card counts: the
/// create is refused for it, so nothing is fetched).
fn has_card_values(card: Option<&Value>) -> bool {
    match card {
        None | Some(Value::Null) => false,
        Some(value) => check::parse_card(value).map_or(true, |card| !card.is_empty()),
    }
}

fn with_card(input: &NewLink, card: Option<Card>) -> Cow<'_, NewLink> {
    let Some(value) = card.and_then(|card| serde_json::to_value(card).ok()) else {
        return Cow::Borrowed(input);
    };
    let mut filled = input.clone();
    filled.behaviour.card = Some(value);
    Cow::Owned(filled)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_create_without_card_values_fetches() {
        assert!(!has_card_values(None));
        assert!(!has_card_values(Some(&Value::Null)));
        assert!(!has_card_values(Some(&json!({}))));
        assert!(!has_card_values(Some(
            &json!({"title": "  ", "image": null})
        )));
        assert!(has_card_values(Some(&json!({"title": "Mine"}))));
        assert!(has_card_values(Some(
            &json!({"image": "https://img.example/a.png"})
        )));
        assert!(
            has_card_values(Some(&json!({"colour": "red"}))),
            "refused anyway"
        );
        assert!(has_card_values(Some(&json!("title"))), "refused anyway");
    }
}
