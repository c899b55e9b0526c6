//! The social icons of link-in-bio pages: simple glyphs drawn for Ricochet
//! (not brand artwork), each the inside of a 24×24 `<svg>` filled with
//! `currentColor`, so it takes the theme's text colour.

/// A rounded square holding a lens ring and a flash dot.
pub const INSTAGRAM: &str = r#"<path fill-rule="evenodd" d="M8 3h8a5 5 0 0 1 5 5v8a5 5 0 0 1-5 5H8a5 5 0 0 1-5-5V8a5 5 0 0 1 5-5Zm0 2a3 3 0 0 0-3 3v8a3 3 0 0 0 3 3h8a3 3 0 0 0 3-3V8a3 3 0 0 0-3-3Zm4 3a4 4 0 1 1 0 8a4 4 0 0 1 0-8Zm0 2a2 2 0 1 0 0 4a2 2 0 0 0 0-4Zm5-4a1 1 0 1 1 0 2a1 1 0 0 1 0-2Z"/>"#;

/// A bold and a thin stroke crossing.
pub const X: &str = r#"<path d="M3 3h5.5L21 21h-5.5ZM18.8 3H21L5.2 21H3Z"/>"#;

/// A music note with a hollow head and a curled flag.
pub const TIKTOK: &str =
    r#"<path d="M14 3h3a4 4 0 0 0 4 4v3a7 7 0 0 1-4-1.3V15a6 6 0 1 1-6-6v3a3 3 0 1 0 3 3Z"/>"#;

/// A play triangle cut out of a rounded rectangle.
pub const YOUTUBE: &str = r#"<path fill-rule="evenodd" d="M5 5h14a3 3 0 0 1 3 3v8a3 3 0 0 1-3 3H5a3 3 0 0 1-3-3V8a3 3 0 0 1 3-3Zm5 4v6l5-3Z"/>"#;

/// A cat's head with pointed ears and two eyes.
pub const GITHUB: &str = r#"<path fill-rule="evenodd" d="M4 3l4 3.5h8L20 3v8.5a8 8 0 0 1-5 7.4V22H9v-3.1a8 8 0 0 1-5-7.4ZM9 10.5a1.5 1.5 0 1 0 0 3a1.5 1.5 0 0 0 0-3Zm6 0a1.5 1.5 0 1 0 0 3a1.5 1.5 0 0 0 0-3Z"/>"#;

/// "in" cut out of a rounded square.
pub const LINKEDIN: &str = r#"<path fill-rule="evenodd" d="M5 3h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2Zm1 7v8h2.5v-8Zm1.25-4.5a1.5 1.5 0 1 0 0 3a1.5 1.5 0 0 0 0-3ZM10.5 10v8H13v-4.5a1.5 1.5 0 0 1 3 0V18h2.5v-5a3.5 3.5 0 0 0-5.5-2.9V10Z"/>"#;

/// An "m" cut out of a speech bubble.
pub const MASTODON: &str = r#"<path fill-rule="evenodd" d="M4 3h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-8l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2Zm3 10V9a3 3 0 0 1 5-2.2A3 3 0 0 1 17 9v4h-2V9.5a1 1 0 0 0-2 0V13h-2V9.5a1 1 0 0 0-2 0V13Z"/>"#;

/// An "f" cut out of a rounded square.
pub const FACEBOOK: &str = r#"<path fill-rule="evenodd" d="M5 3h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2Zm8 18v-7h-2.5v-3H13V9a3 3 0 0 1 3-3h2v3h-1.5a.5.5 0 0 0-.5.5V11h2l-.5 3H16v7Z"/>"#;

/// A chat box with a notched corner and two bars.
pub const TWITCH: &str =
    r#"<path fill-rule="evenodd" d="M5 2h16v11l-5 5h-4l-3 3H7v-3H3V6Zm5 5v5h2V7Zm5 0v5h2V7Z"/>"#;

/// A butterfly.
pub const BLUESKY: &str = r#"<path d="M12 11C10 7 6 3.5 3.5 3.5S2 7 3 10c.7 2 3 2.5 5 2.3-3 .6-4 2.4-2.5 4.2C8 19 10.5 17 12 14c1.5 3 4 5 6.5 2.5 1.5-1.8.5-3.6-2.5-4.2 2 .2 4.3-.3 5-2.3C22 7 23 3.5 20.5 3.5 18 3.5 14 7 12 11Z"/>"#;

/// A globe: a circle, its equator and a meridian.
pub const WEBSITE: &str = r#"<g fill="none" stroke="currentColor" stroke-width="2"><circle cx="12" cy="12" r="9"/><path d="M3 12h18M12 3c-3 3-3 15 0 18M12 3c3 3 3 15 0 18"/></g>"#;

/// An envelope.
pub const EMAIL: &str = r#"<g fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"><rect x="3" y="5" width="18" height="14" rx="2"/><path d="m3 7 9 6 9-6"/></g>"#;
