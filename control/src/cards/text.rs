//! Page text made fit for a card: white space collapsed, invisible and
//! control characters removed, clipped to the card's byte limit on a
//! character boundary.

/// Marks a clipped text.
const ELLIPSIS: char = '…';

/// `raw` with every run of white space (new lines included) made one space,
/// control characters and bidirectional overrides removed, trimmed, and
/// clipped to `max_bytes` (ending in `…` when clipped). `None` when nothing
/// is left.
pub fn clean(raw: &str, max_bytes: usize) -> Option<String> {
    let mut text = String::with_capacity(raw.len().min(max_bytes + 8));
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = !text.is_empty();
            continue;
        }
        if c.is_control() || is_bidi_control(c) {
            continue;
        }
        if pending_space {
            text.push(' ');
            pending_space = false;
        }
        text.push(c);
    }
    if text.is_empty() {
        return None;
    }
    Some(clip(text, max_bytes))
}

/// `text` cut to at most `max_bytes` with `…`: at the last space when one
/// is in the second half, else on a character boundary.
fn clip(mut text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let room = max_bytes.saturating_sub(ELLIPSIS.len_utf8());
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let inside_word = !text[end..].starts_with(' ');
    text.truncate(end);
    if inside_word && let Some(space) = text.rfind(' ').filter(|&at| at >= end / 2) {
        text.truncate(space);
    }
    text.truncate(text.trim_end().len());
    text.push(ELLIPSIS);
    text
}

/// Characters that reorder the text around them (U+202A–U+202E,
/// U+2066–U+2069) or mark direction invisibly (U+200E, U+200F).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_collapses_and_controls_go() {
        assert_eq!(
            clean(
                "  Spring\n\n\tsale\u{a0} \u{2028}now\u{0}\u{7f}\u{9b}!  ",
                100
            )
            .as_deref(),
            Some("Spring sale now!")
        );
        assert_eq!(clean("line\u{85}break", 100).as_deref(), Some("line break"));
        assert_eq!(
            clean("evil\u{202e}txt.exe\u{200f}", 100).as_deref(),
            Some("eviltxt.exe")
        );
        assert_eq!(clean(" \n\t\u{0} ", 100), None);
        assert_eq!(clean("", 100), None);
    }

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        let clipped = clean(&"é".repeat(400), 300).unwrap();
        assert!(clipped.len() <= 300, "{}", clipped.len());
        assert!(clipped.ends_with('…'));
        assert_eq!(clipped.chars().filter(|c| *c == 'é').count(), 148);
        let words = clean(&"word ".repeat(100), 20).unwrap();
        assert_eq!(words, "word word word…");
        assert_eq!(clean("exactly ten", 11).as_deref(), Some("exactly ten"));
        assert_eq!(clean("exactly ten!", 11).as_deref(), Some("exactly…"));
    }
}
