//! A link-in-bio page as engines receive it: the HTML the control plane
//! rendered when the page or one of its links last changed, cut into parts
//! so an item shown only between two instants appears and disappears on
//! time without an edit. An engine joins the parts visible at an instant;
//! it never renders anything itself.
//!
//! A page travels as a link record (its handle is the record's code, so a
//! handle and a code can never collide) whose
//! [`LinkExtensions::page`](crate::LinkExtensions::page) holds a
//! [`PageBody`].

use serde::{Deserialize, Serialize};

use crate::UnixMillis;
use crate::behaviour::check::FieldError;

/// Most parts a page body may have (a head and a tail, and a few per item).
pub const MAX_PARTS: usize = 512;
/// Most bytes of HTML a page body may hold, all parts together.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The rendered page: its parts in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageBody {
    pub parts: Vec<PagePart>,
}

/// Some of a page's HTML, shown while its window holds the instant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PagePart {
    pub html: String,
    /// Shown from this instant on (`None`: always was).
    pub from: Option<UnixMillis>,
    /// Shown before this instant (`None`: never ends).
    pub until: Option<UnixMillis>,
}

impl PagePart {
    /// A part shown at every instant.
    pub fn always(html: impl Into<String>) -> Self {
        Self {
            html: html.into(),
            from: None,
            until: None,
        }
    }

    /// Whether the part is shown at `now`.
    pub fn shown_at(&self, now: UnixMillis) -> bool {
        self.from.is_none_or(|from| from <= now) && self.until.is_none_or(|until| now < until)
    }
}

impl PageBody {
    /// The page at `now`: the HTML of the parts shown then, in order.
    pub fn render_at(&self, now: UnixMillis) -> String {
        let mut html = String::with_capacity(self.parts.iter().map(|p| p.html.len()).sum());
        for part in self.parts.iter().filter(|part| part.shown_at(now)) {
            html.push_str(&part.html);
        }
        html
    }

    /// The instants after `now` at which the page changes, ascending and
    /// without repeats.
    pub fn boundaries_after(&self, now: UnixMillis) -> Vec<UnixMillis> {
        let mut instants: Vec<UnixMillis> = self
            .parts
            .iter()
            .flat_map(|part| [part.from, part.until])
            .flatten()
            .filter(|&at| at > now)
            .collect();
        instants.sort_unstable();
        instants.dedup();
        instants
    }

    /// Checks the limits engines rely on: at most [`MAX_PARTS`] parts and
    /// [`MAX_BODY_BYTES`] of HTML, no NUL byte, and each window's start
    /// before its end.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.parts.is_empty() || self.parts.len() > MAX_PARTS {
            return Err(FieldError::new(
                "page",
                format!("a page body has 1 to {MAX_PARTS} parts"),
            ));
        }
        let bytes: usize = self.parts.iter().map(|p| p.html.len()).sum();
        if bytes > MAX_BODY_BYTES {
            return Err(FieldError::new(
                "page",
                format!("a page body holds at most {MAX_BODY_BYTES} bytes of HTML"),
            ));
        }
        for (index, part) in self.parts.iter().enumerate() {
            if part.html.contains('\0') {
                return Err(FieldError::new(
                    &format!("page.parts[{index}].html"),
                    "NUL byte in a page's HTML",
                ));
            }
            if let (Some(from), Some(until)) = (part.from, part.until)
                && from >= until
            {
                return Err(FieldError::new(
                    &format!("page.parts[{index}]"),
                    "a part's window must start before it ends",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> PageBody {
        PageBody {
            parts: vec![
                PagePart::always("<head>"),
                PagePart {
                    html: "[a]".into(),
                    from: Some(100),
                    until: Some(200),
                },
                PagePart {
                    html: "[b]".into(),
                    from: None,
                    until: Some(150),
                },
                PagePart {
                    html: "[c]".into(),
                    from: Some(200),
                    until: None,
                },
                PagePart::always("</tail>"),
            ],
        }
    }

    #[test]
    fn parts_show_inside_their_windows_only() {
        let body = body();
        assert_eq!(body.render_at(0), "<head>[b]</tail>");
        assert_eq!(body.render_at(100), "<head>[a][b]</tail>");
        assert_eq!(body.render_at(149), "<head>[a][b]</tail>");
        assert_eq!(body.render_at(150), "<head>[a]</tail>");
        assert_eq!(body.render_at(199), "<head>[a]</tail>");
        assert_eq!(body.render_at(200), "<head>[c]</tail>");
    }

    #[test]
    fn boundaries_are_the_future_instants_once_each() {
        let body = body();
        assert_eq!(body.boundaries_after(0), [100, 150, 200]);
        assert_eq!(body.boundaries_after(150), [200]);
        assert!(body.boundaries_after(200).is_empty());
    }

    #[test]
    fn checks_refuse_what_engines_cannot_serve() {
        assert!(body().check().is_ok());
        assert!(PageBody::default().check().is_err());
        let mut backwards = body();
        backwards.parts[1].until = Some(100);
        assert_eq!(backwards.check().unwrap_err().field, "page.parts[1]");
        let mut nul = body();
        nul.parts[0].html.push('\0');
        assert!(nul.check().is_err());
        let huge = PageBody {
            parts: vec![PagePart::always("x".repeat(MAX_BODY_BYTES + 1))],
        };
        assert!(huge.check().is_err());
    }
}
