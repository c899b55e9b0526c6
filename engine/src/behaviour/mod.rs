//! Link behaviour on the engine: targeting rules, A/B splits, `ios` and
//! `android` destinations, cards for link-preview crawlers and fallbacks for
//! gone links. A link with any of these is compiled once, when its change
//! arrives, into a [`Compiled`] answer plan owned by its table entry; the
//! request path then only evaluates what the plan needs (a link without
//! language conditions never parses Accept-Language, one without device,
//! OS, browser conditions or a card never looks at the User-Agent, one
//! without country or city conditions never reads the GeoIP database).
//! Plain links have no plan and pay one flag test.
//!
//! Order of evaluation: gone → fallback or 410; a password without a valid
//! pass → the form; crawler and a card → the card page; `ios`, `android`, the rules in order (first match wins); the
//! link's own split or destination. A link with a click limit (`max_clicks`,
//! see `crate::limits`) declines prefetches before choosing, and redirects
//! only once its counter granted a use (else the fallback, 410 or 503).
//!
//! - [`compile`]: records into plans ([`Compiled`], [`Target`], [`Choice`]).
//! - [`visitor`]: what a request tells about its visitor, read lazily, and conditions checked against it.
//! - [`agent`]: user agents into device, OS, browser and crawler, cached per worker thread.
//! - [`split`]: A/B picks, sticky through a signed cookie.
//! - [`key`]: the key those cookies are signed with.
//! - [`bio_page`]: link-in-bio pages, one document per stretch between scheduled items' instants.
//! - [`page`]: the card page, the password form and the page of a gone link.
//! - [`password`]: password gates, their passes and the verifier thread.

pub mod agent;
pub mod bio_page;
pub mod compile;
pub mod key;
pub mod page;
pub mod password;
pub mod split;
pub mod visitor;

pub use compile::{Choice, Compiled, Target};
pub use key::CookieKey;
pub use split::SplitRef;
pub use visitor::Visitor;
