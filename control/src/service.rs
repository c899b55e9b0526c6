//! Link operations on the store: creating (random or custom codes, reserved
//! words, per-domain uniqueness, bounded retries), editing, soft deleting and
//! bulk creation. Each operation is one atomic store transaction, so a failed
//! request stores and publishes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use ricochet_model::{LinkKey, LinkRecord, LinkState, RedirectStatus, validate};

use crate::api::types::{BulkItem, BulkResult, CreateLink, LinkView, PatchLink, to_millis};
use crate::error::ApiError;
use crate::keys::random_string;
use crate::store::{ControlStore, IdempotentResponse, StoreError, WriteTxn};

/// Codes nobody may take: paths engines or operators may need.
pub const BUILT_IN_RESERVED: &[&str] = &[
    "api",
    "admin",
    "internal",
    "healthz",
    "readyz",
    "metrics",
    "static",
    "assets",
    "login",
    "logout",
    "signup",
    "settings",
    "dashboard",
    "docs",
    "openapi",
    "robots",
    "favicon",
    "well-known",
    "_next",
    "app",
    "www",
];

/// Random-code attempts before giving up.
const CODE_ATTEMPTS: usize = 8;

/// Settings of link creation.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub default_domain: String,
    pub code_length: usize,
    pub max_bulk: usize,
    pub reserved: HashSet<String>,
}

impl LinkSettings {
    pub fn new(
        default_domain: &str,
        code_length: usize,
        max_bulk: usize,
        extra: &[String],
    ) -> Self {
        let reserved = BUILT_IN_RESERVED
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_lowercase()))
            .collect();
        Self {
            default_domain: default_domain.to_owned(),
            code_length,
            max_bulk,
            reserved,
        }
    }
}

/// Creates and edits links.
#[derive(Debug, Clone)]
pub struct LinkService {
    store: Arc<ControlStore>,
    settings: Arc<LinkSettings>,
}

impl LinkService {
    pub fn new(store: Arc<ControlStore>, settings: LinkSettings) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
        }
    }

    pub fn store(&self) -> &Arc<ControlStore> {
        &self.store
    }

    pub fn settings(&self) -> &LinkSettings {
        &self.settings
    }

    /// Creates one link.
    pub fn create(&self, input: &CreateLink, now: i64) -> Result<LinkRecord, ApiError> {
        self.store.write(|txn| self.stage_create(txn, input, now))
    }

    /// Creates one link once per idempotency key: a retry with the same key
    /// and body gets the first answer; the same key with another body is refused.
    pub fn create_idempotent(
        &self,
        input: &CreateLink,
        key: &str,
        request_hash: &str,
        now: i64,
    ) -> Result<(u16, String), ApiError> {
        self.store.write(|txn| {
            if let Some(stored) = self.store.idempotent_response(key)? {
                if stored.request_hash != request_hash {
                    return Err(ApiError::new(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request",
                    )
                    .with_field("Idempotency-Key"));
                }
                return Ok((stored.status, stored.body));
            }
            let link = self.stage_create(txn, input, now)?;
            let body = serde_json::to_string(&LinkView::from(&link)).expect("serializes");
            txn.put_idempotent_response(
                key,
                &IdempotentResponse {
                    request_hash: request_hash.to_owned(),
                    status: 201,
                    body: body.clone(),
                    created_at: now,
                },
            );
            Ok((201, body))
        })
    }

    /// Creates many links in one transaction; each item succeeds or fails alone.
    pub fn create_bulk(&self, inputs: &[CreateLink], now: i64) -> Result<BulkResult, ApiError> {
        if inputs.len() > self.settings.max_bulk {
            return Err(ApiError::new(
                413,
                "too_many_items",
                format!(
                    "a bulk call takes at most {} items; got {}",
                    self.settings.max_bulk,
                    inputs.len()
                ),
            ));
        }
        self.store.write(|txn| {
            let mut items = Vec::with_capacity(inputs.len());
            for (index, input) in inputs.iter().enumerate() {
                items.push(match self.stage_create(txn, input, now) {
                    Ok(link) => BulkItem {
                        index,
                        status: 201,
                        link: Some(LinkView::from(&link)),
                        error: None,
                    },
                    Err(error) if error.status >= 500 => return Err(error),
                    Err(error) => BulkItem {
                        index,
                        status: error.status,
                        link: None,
                        error: Some(serde_json::to_value(error.body().error).expect("serializes")),
                    },
                });
            }
            let created = items.iter().filter(|i| i.status == 201).count();
            Ok::<_, ApiError>(BulkResult {
                created,
                failed: items.len() - created,
                items,
            })
        })
    }

    /// Applies a patch to link `id`.
    pub fn update(&self, id: u64, patch: &PatchLink, now: i64) -> Result<LinkRecord, ApiError> {
        self.store.write(|txn| {
            let mut link = existing(txn, id)?;
            if let Some(url) = &patch.url {
                link.url = validate::validate_destination(url)?;
            }
            if let Some(status) = patch.status {
                link.status = RedirectStatus::try_from(status)?;
            }
            if let Some(state) = patch.state {
                link.state = state;
            }
            if let Some(expires_at) = patch.expires_at {
                link.expires_at = expires_at.map(to_millis);
            }
            if let Some(title) = &patch.title {
                link.title = title.clone();
            }
            if let Some(tags) = &patch.tags {
                link.tags = tags.clone();
            }
            if let Some(forward) = patch.forward_query {
                link.forward_query = forward;
            }
            link.updated_at = now;
            link.validate()?;
            Ok(txn.put_link(link))
        })
    }

    /// Soft-deletes link `id`: engines then answer 410.
    pub fn delete(&self, id: u64, now: i64) -> Result<LinkRecord, ApiError> {
        self.store.write(|txn| {
            let mut link = existing(txn, id)?;
            if link.state == LinkState::Deleted {
                return Ok(link);
            }
            link.state = LinkState::Deleted;
            link.updated_at = now;
            Ok(txn.put_link(link))
        })
    }

    fn stage_create(
        &self,
        txn: &mut WriteTxn<'_>,
        input: &CreateLink,
        now: i64,
    ) -> Result<LinkRecord, ApiError> {
        let link = self.prepare_create(txn, input, now)?;
        Ok(txn.put_link(link))
    }

    /// The validated record a create of `input` would store (its code free,
    /// its domain registered, a new id), not yet staged: the importer sets
    /// the fields an API create cannot (state, `created_at`) before staging it.
    pub(crate) fn prepare_create(
        &self,
        txn: &mut WriteTxn<'_>,
        input: &CreateLink,
        now: i64,
    ) -> Result<LinkRecord, ApiError> {
        let domain = match &input.domain {
            Some(domain) => validate::normalize_domain(domain)?,
            None => self.settings.default_domain.clone(),
        };
        if !self.store.has_domain(&domain)? {
            return Err(ApiError::new(
                422,
                "unknown_domain",
                format!("domain {domain:?} is not registered; add it with POST /api/v1/domains"),
            )
            .with_field("domain"));
        }
        let url = validate::validate_destination(&input.url)?;
        let code = match &input.code {
            Some(code) => {
                validate::validate_code(code)?;
                if self.is_reserved(code) {
                    return Err(ApiError::bad_request(
                        "reserved_code",
                        format!("{code:?} is reserved"),
                    )
                    .with_field("code"));
                }
                let key = LinkKey {
                    domain: domain.clone(),
                    code: code.clone(),
                };
                if txn.code_owner(&key)?.is_some() {
                    return Err(ApiError::new(
                        409,
                        "code_taken",
                        format!("{code:?} is already taken on {domain}"),
                    )
                    .with_field("code"));
                }
                code.clone()
            }
            None => self.random_code(txn, &domain)?,
        };
        let mut link = LinkRecord::new(txn.next_id(), &domain, &code, &url, now)?;
        if let Some(status) = input.status {
            link.status = RedirectStatus::try_from(status)?;
        }
        link.expires_at = input.expires_at.map(to_millis);
        link.forward_query = input.forward_query.unwrap_or(false);
        link.title = input.title.clone();
        link.tags = input.tags.clone().unwrap_or_default();
        link.validate()?;
        Ok(link)
    }

    fn is_reserved(&self, code: &str) -> bool {
        self.settings.reserved.contains(&code.to_lowercase())
    }

    fn random_code(&self, txn: &WriteTxn<'_>, domain: &str) -> Result<String, ApiError> {
        for _ in 0..CODE_ATTEMPTS {
            let code = random_string(self.settings.code_length);
            if self.is_reserved(&code) {
                continue;
            }
            let key = LinkKey {
                domain: domain.to_owned(),
                code: code.clone(),
            };
            if txn.code_owner(&key)?.is_none() {
                return Ok(code);
            }
        }
        Err(ApiError::new(
            503,
            "code_space_exhausted",
            "no free random code found; raise links.code_length",
        ))
    }
}

fn existing(txn: &WriteTxn<'_>, id: u64) -> Result<LinkRecord, ApiError> {
    txn.link(id)
        .map_err(|e: StoreError| ApiError::from(e))?
        .ok_or_else(|| ApiError::not_found(format!("no link with id {id}")))
}
