//! Fetching a URL a user gave, safe against server-side request forgery:
//! only http and https, only public addresses (checked after resolution and
//! again on every redirect, the connection pinned to the checked address),
//! a total time limit, a cap on the body read. Card metadata uses it at link
//! creation; anything else that calls out (webhooks) should too.
//!
//! - [`address`]: which addresses are public ([`classify`], [`NonPublic`]).
//! - [`policy`]: what a fetch may do ([`FetchPolicy`]).
//! - [`resolve`]: the name resolution hook ([`HostResolver`]).
//! - [`exchange`]: the request and the answer ([`FetchRequest`], [`Fetched`]).
//! - [`error`]: refusals and failures ([`FetchError`]).
//! - [`fetcher`]: the hops ([`Fetcher`]); `pinned` is the resolver ureq gets.

pub mod address;
pub mod error;
pub mod exchange;
pub mod fetcher;
mod pinned;
pub mod policy;
pub mod resolve;

pub use address::{NonPublic, classify, is_public};
pub use error::FetchError;
pub use exchange::{FetchRequest, Fetched, Method};
pub use fetcher::Fetcher;
pub use policy::FetchPolicy;
pub use resolve::{HostResolver, StaticResolver, SystemResolver};
