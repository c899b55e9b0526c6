//! Authentication and rate limiting of API requests: the API key from
//! `Authorization: Bearer rk_…` (or `X-Api-Key`), 401 when missing or unknown,
//! 403 when it lacks the scope, 429 with `Retry-After` over its token bucket.
//! Handlers declare what they need with the [`Authorized`] extractor (e.g.
//! `Authorized<scope::LinksWrite>`), and engines' routes with [`ClusterMember`].

use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::keys::{KeyRing, Scope, allows};
use crate::store::{ApiKeyRecord, ControlStore};

/// Token buckets, one per API key.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second.max(1)).unwrap())
            .allow_burst(NonZeroU32::new(burst.max(1)).unwrap());
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `key`, or says how long to wait.
    fn take(&self, key: &str) -> Result<(), ApiError> {
        match self.limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let mut error = ApiError::new(
                    429,
                    "rate_limited",
                    format!(
                        "too many requests for this API key; retry in {} ms",
                        wait.as_millis()
                    ),
                );
                error.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
                Err(error)
            }
        }
    }
}

fn bearer(request: &HttpRequest) -> Option<&str> {
    if let Some(value) = request.headers().get("authorization") {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    request
        .headers()
        .get("x-api-key")?
        .to_str()
        .ok()
        .map(str::trim)
}

/// Authenticates `token`, charges its key's rate limit, and checks `scope`.
fn authorize(
    token: Option<&str>,
    store: &ControlStore,
    limits: &RateLimits,
    scope: Scope,
) -> Result<ApiKeyRecord, ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            401,
            "missing_api_key",
            "send an API key as `Authorization: Bearer <key>`",
        ));
    };
    let Some(key) = KeyRing::new(store).authenticate(token)? else {
        return Err(ApiError::new(
            401,
            "invalid_api_key",
            "the API key is unknown or revoked",
        ));
    };
    limits.take(&key.id)?;
    if !allows(&key.scopes, scope) {
        return Err(ApiError::new(
            403,
            "insufficient_scope",
            format!("this API key lacks the {} scope", scope.as_str()),
        ));
    }
    Ok(key)
}

/// A scope a route requires, as a type: `Authorized<scope::LinksRead>`.
pub trait ScopeMarker: 'static {
    const SCOPE: Scope;
}

/// The scopes as types, one per [`Scope`].
pub mod scope {
    use super::{Scope, ScopeMarker};

    macro_rules! scopes {
        ($($name:ident),*) => {$(
            #[doc = concat!("Requires [`Scope::", stringify!($name), "`].")]
            #[derive(Debug)]
            pub struct $name;

            impl ScopeMarker for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }

    scopes!(LinksRead, LinksWrite, AnalyticsRead, DomainsWrite, Admin);
}

/// The caller's API key, authenticated, charged and holding scope `S`;
/// extracting it answers 401, 403 or 429 otherwise. The key lookup runs on the
/// blocking pool, off actix's threads.
#[derive(Debug)]
pub struct Authorized<S: ScopeMarker> {
    pub key: ApiKeyRecord,
    scope: PhantomData<S>,
}

type Extraction<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl<S: ScopeMarker> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(request).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            let key = super::blocking(move || {
                authorize(
                    token.as_deref(),
                    state.service.store(),
                    &state.limits,
                    S::SCOPE,
                )
            })
            .await?;
            Ok(Self {
                key,
                scope: PhantomData,
            })
        })
    }
}

/// An engine holding the cluster token (for `/internal/v1/changes`); 401 otherwise.
#[derive(Debug)]
pub struct ClusterMember;

impl FromRequest for ClusterMember {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = request
            .app_data::<web::Data<AppState>>()
            .map_or("", |state| state.cluster_token.as_str());
        std::future::ready(authorize_cluster(request, token).map(|()| ClusterMember))
    }
}

/// Checks the cluster token engines send to `/internal/v1/changes`.
fn authorize_cluster(request: &HttpRequest, token: &str) -> Result<(), ApiError> {
    let sent = bearer(request).unwrap_or("");
    let matches: bool = sent.as_bytes().ct_eq(token.as_bytes()).into();
    if matches && !token.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "invalid_cluster_token",
            "a valid cluster token is required",
        ))
    }
}
