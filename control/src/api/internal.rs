//! The engines' route: `GET /internal/v1/changes?after=V&limit=N`, the change
//! log, authenticated with the cluster token rather than an operator key.

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::bus::ChangesPage;
use serde::Deserialize;

use super::auth::ClusterMember;
use super::error::ApiError;
use super::{AppState, blocking};

/// Most changes served per page.
pub const MAX_PAGE: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    after: u64,
    limit: Option<usize>,
}

pub async fn changes(
    _: ClusterMember,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: ChangesQuery = super::parse_query(&request)?;
    let limit = query.limit.unwrap_or(1000);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        )
        .with_field("limit"));
    }
    let store = state.service.store().clone();
    let page = blocking(move || {
        let latest_version = store.latest_version();
        store
            .changes_after(query.after, limit)
            .map(|changes| ChangesPage {
                changes,
                latest_version,
            })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
