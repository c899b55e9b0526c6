//! The OpenAPI document, generated from the handlers' annotations, completed
//! with what every authenticated operation can answer (401, 403, 429, 500),
//! the session cookie as an alternative to an API key, and this
//! installation's settings, rendered once at start and served at
//! `/api/v1/openapi.json`.

use actix_web::{HttpResponse, web};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{AppState, behaviour_schema, error, types};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ricochet control plane API",
        description = "Links, domains and click analytics of a Ricochet installation, \
            kept in workspaces: every link, domain, analytics and key route acts in the \
            caller's workspace (an API key's own, or the one a session switched to) and \
            answers 404 for anything of another workspace. \
            Every error has the shape `{\"error\":{\"code\",\"message\",\"field\"}}`. \
            Every GET also answers HEAD; another method on a known path gets 405 with `Allow`. \
            Authenticate with an API key (`Authorization: Bearer rk_…`) or the `ricochet_session` \
            cookie from `POST /api/v1/auth/sign-in`; with the cookie, every POST, PUT, PATCH and \
            DELETE must also send the session's `X-CSRF-Token` header."
    ),
    paths(
        super::links::create_link,
        super::links::list_links,
        super::links::get_link,
        super::links::patch_link,
        super::links::delete_link,
        super::links::restore_link,
        super::links::bulk_create,
        super::qr::link_qr,
        super::domains::create_domain,
        super::domains::list_domains,
        super::domains::get_domain,
        super::domains::patch_domain,
        super::domains::delete_domain,
        super::domains::verify_domain,
        super::domains::restart_verification,
        super::domains::put_certificate,
        super::domains::delete_certificate,
        super::domains::get_default_certificate,
        super::domains::put_default_certificate,
        super::domains::delete_default_certificate,
        super::analytics::series,
        super::analytics::breakdown,
        super::analytics::top_links,
        super::analytics::overview,
        super::accounts::sign_in,
        super::accounts::sign_out,
        super::accounts::current_session,
        super::accounts::list_sessions,
        super::accounts::revoke_session,
        super::accounts::change_password,
        super::accounts::update_user,
        super::workspaces::list_workspaces,
        super::workspaces::create_workspace,
        super::workspaces::get_workspace,
        super::workspaces::rename_workspace,
        super::workspaces::delete_workspace,
        super::workspaces::restore_workspace,
        super::workspaces::switch_workspace,
        super::workspaces::list_members,
        super::workspaces::change_role,
        super::workspaces::remove_member,
        super::workspaces::list_invitations,
        super::workspaces::create_invitation,
        super::workspaces::revoke_invitation,
        super::workspaces::preview_invitation,
        super::workspaces::accept_invitation,
        super::keys::list_keys,
        super::keys::create_key,
        super::keys::revoke_key,
        super::denylist::list,
        super::denylist::add,
        super::denylist::remove,
        super::denylist::check,
        super::pages::create_page,
        super::pages::list_pages,
        super::pages::get_page,
        super::pages::patch_page,
        super::pages::delete_page,
        super::pages::reorder_page,
        super::pages::page_qr,
        super::pages::page_analytics,
        super::events::stream_events,
        super::webhooks::list_webhooks,
        super::webhooks::create_webhook,
        super::webhooks::get_webhook,
        super::webhooks::patch_webhook,
        super::webhooks::delete_webhook,
        super::webhooks::test_webhook,
        super::webhooks::rotate_webhook_secret,
        super::webhooks::list_webhook_deliveries,
        super::webhooks::list_deliveries,
        super::webhooks::get_delivery,
        super::webhooks::redeliver_delivery,
    ),
    components(schemas(
        types::CreateLink, types::PatchLink, types::UtmInput, types::UtmView, types::LinkView, types::LinkList, types::BulkItem,
        types::BulkResult, types::CreateDomain, types::DomainView, types::DomainList,
        types::PatchDomain,
        behaviour_schema::Rule, behaviour_schema::Condition, behaviour_schema::Schedule,
        behaviour_schema::Variant, behaviour_schema::Card, behaviour_schema::RuleView,
        behaviour_schema::ConditionView, behaviour_schema::VariantView, behaviour_schema::CardView,
        error::ErrorBody, error::ErrorDetail,
        super::analytics::Series, super::analytics::SeriesPoint, super::analytics::Breakdown,
        super::analytics::BreakdownValue, super::analytics::TopLinks, super::analytics::TopLink,
        super::analytics::Overview, super::analytics::CountsView,
        super::accounts::SignIn, super::accounts::ChangePassword, super::accounts::UserView,
        super::accounts::SessionView, super::accounts::SessionInfo, super::accounts::SessionList,
        super::accounts::CurrentWorkspace, super::accounts::UserSettings,
        super::workspaces::WorkspaceView, super::workspaces::WorkspaceList,
        super::workspaces::WorkspaceName, super::workspaces::MemberView,
        super::workspaces::MemberList, super::workspaces::RoleChange,
        super::workspaces::CreateInvitation, super::workspaces::InvitationView,
        super::workspaces::IssuedInvitation, super::workspaces::InvitationList,
        super::workspaces::InvitationToken, super::workspaces::InvitationPreview,
        super::workspaces::AcceptInvitation, super::workspaces::AcceptedInvitation,
        super::keys::CreateKey, super::keys::KeyView, super::keys::IssuedKey, super::keys::KeyList,
        super::denylist::AddDeniedHost, super::denylist::DeniedHostView,
        super::denylist::DenylistFileView, super::denylist::DenylistView,
        super::denylist::DenylistChange, super::denylist::BlockView, super::denylist::CheckResult,
        super::events::EventView, super::events::EventData, super::events::LinkEventData,
        super::events::LinkExpiredData, super::events::ClicksData, super::events::LinkClicksView,
        super::events::ValueCounts, super::events::OtherLinksView, super::events::DomainEventData,
        super::events::CertificateEventData, super::events::TestEventData,
        super::events::PageEventData,
        super::webhooks::CreateWebhook, super::webhooks::PatchWebhook, super::webhooks::WebhookView,
        super::webhooks::WebhookList, super::webhooks::AttemptView, super::webhooks::DeliveryView,
        super::webhooks::DeliveryList,
        super::pages::CreatePage, super::pages::PatchPage, super::pages::ThemeBody,
        super::pages::ColorsBody, super::pages::SocialBody, super::pages::ItemBody,
        super::pages::CardBody, super::pages::ReorderItems, super::pages::PageView,
        super::pages::PageList, super::pages::PageAnalytics, super::pages::ItemClicks
    )),
    modifiers(&ApiKeyAuth, &CommonErrors)
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
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "ricochet_session",
                "The session cookie set by `POST /api/v1/auth/sign-in`. Requests that change \
                 state must also send the session's `X-CSRF-Token` header.",
            ))),
        );
        // Whatever an API key may call, a signed-in user may call too.
        let session = SecurityRequirement::new("session", Vec::<String>::new());
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let Some(security) = operation.security.as_mut() else {
                    continue;
                };
                let by_key = serde_json::to_value(&*security)
                    .is_ok_and(|value| value.to_string().contains("\"api_key\""));
                if by_key {
                    security.push(session.clone());
                }
            }
        }
    }
}

/// What any operation that takes an API key can answer besides its own statuses.
const COMMON: [(&str, &str, &str); 4] = [
    (
        "401",
        "Unauthorized",
        "No API key or session cookie, or an unknown, revoked or expired one",
    ),
    (
        "403",
        "Forbidden",
        "The API key lacks the operation's scope, the caller's role in the workspace \
         does not allow it, the session's workspace is gone, or a request signed in by \
         cookie that changes state lacks the session's `X-CSRF-Token` header",
    ),
    (
        "429",
        "RateLimited",
        "The caller is over its rate limit; retry after `Retry-After` seconds",
    ),
    (
        "500",
        "InternalError",
        "A failure of the control plane (logged)",
    ),
];

struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description) in COMMON {
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
            if status == "429" {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(1)),
                        )
                        .description(Some("Seconds to wait"))
                        .build(),
                );
            }
            components
                .responses
                .insert(name.to_owned(), response.build().into());
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, name, _) in COMMON {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

/// The document with this installation's settings: a bulk call's size limit.
pub fn render(max_bulk: usize) -> web::Bytes {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("serializes");
    let bulk = &mut document["paths"]["/api/v1/links/bulk"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    bulk["maxItems"] = max_bulk.into();
    web::Bytes::from(serde_json::to_vec(&document).expect("serializes"))
}

pub async fn serve(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}
