//! The OpenAPI document, generated from the handlers' annotations and served
//! at `/api/v1/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{error, types};

#[derive(OpenApi)]
#[openapi(
    info(title = "Ricochet control plane API", description = "Links, domains and keys of a Ricochet installation."),
    paths(
        super::links::create_link,
        super::links::list_links,
        super::links::get_link,
        super::links::patch_link,
        super::links::delete_link,
        super::links::restore_link,
        super::links::bulk_create,
        super::domains::create_domain,
        super::domains::list_domains,
        super::analytics::series,
        super::analytics::breakdown,
        super::analytics::top_links,
        super::analytics::overview,
    ),
    components(schemas(
        types::CreateLink, types::PatchLink, types::LinkView, types::LinkList, types::BulkItem,
        types::BulkResult, types::CreateDomain, types::DomainView, types::DomainList,
        error::ErrorBody, error::ErrorDetail,
        super::analytics::Series, super::analytics::SeriesPoint, super::analytics::Breakdown,
        super::analytics::BreakdownValue, super::analytics::TopLinks, super::analytics::TopLink,
        super::analytics::Overview, super::analytics::CountsView
    )),
    modifiers(&ApiKeyAuth)
)]
pub struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
