//! The operators' web console: server-rendered pages under `/console/` on the
//! API's port, on the same service layer as the API (no rule is implemented
//! twice). Templates are askama files in `control/templates/console/`,
//! checked at compile time and escaped by default; forms work without
//! JavaScript, and `console.js` only enhances them. Routes:
//! - `GET|POST /console/sign-in`, `POST /console/sign-out`, `GET|POST /console/invite`
//! - `GET /console/links` (search, filters, sort, pages), `POST /console/links/bulk`,
//!   `GET|POST /console/links/new`, `GET /console/links/{id}`,
//!   `GET|POST /console/links/{id}/edit`, `GET /console/links/{id}/qr`,
//!   `GET|POST /console/links/import`, `GET /console/links/export`
//! - `GET|POST /console/pages`, `GET|POST /console/pages/{id}/edit`,
//!   `POST /console/pages/{id}/preview` (the editor's unsaved page, rendered),
//!   `GET /console/pages/{id}/qr`, `POST /console/pages/{id}/delete`
//! - `GET /console/analytics` (workspace overview and top links)
//! - `GET /console/activity` (the workspace's events, live)
//! - `GET|POST /console/domains`, `GET /console/domains/{domain}`,
//!   `POST /console/domains/{domain}/{verify,delete}`
//! - `GET /console/members`, `POST /console/members/{invite,role,remove,revoke}`
//! - `GET|POST /console/keys`, `POST /console/keys/{id}/revoke`
//! - `GET|POST /console/webhooks`, `POST /console/webhooks/{id}/{test,pause,resume,delete}`,
//!   `POST /console/webhooks/deliveries/{id}/redeliver`
//! - `GET /console/settings`, `POST /console/settings/{name,password,sessions/end}`,
//!   `POST /console/workspaces/{switch,create}`
//! - `GET /console/assets/{name}` (CSS, script, licence)

pub mod activity;
pub mod analytics;
pub mod assets;
pub mod chart;
pub mod domains;
pub mod error;
pub mod form;
pub mod keys;
pub mod link_form;
pub mod links;
pub mod members;
pub mod page;
pub mod page_form;
pub mod pages;
pub mod session;
pub mod settings;
pub mod sign_in;
pub mod transfer;
pub mod webhooks;

use actix_web::{HttpResponse, web};

pub use error::ConsoleError;
pub use form::Submitted;
pub use session::Console;

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// Registers the console's routes (before the API's, whose unknown-route
/// answer is JSON).
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::scope(PREFIX)
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/assets/{name}", web::get().to(assets::serve))
            .route("/sign-in", web::get().to(sign_in::page))
            .route("/sign-in", web::post().to(sign_in::submit))
            .route("/sign-out", web::post().to(sign_in::sign_out))
            .route("/links", web::get().to(links::list))
            .route("/links/bulk", web::post().to(links::bulk))
            .route("/links/import", web::get().to(transfer::import_page))
            .route("/links/import", web::post().to(transfer::import))
            .route("/links/export", web::get().to(transfer::export))
            .route("/links/new", web::get().to(links::new_page))
            .route("/links/new", web::post().to(links::create))
            .route("/links/{id}", web::get().to(links::detail))
            .route("/links/{id}/edit", web::get().to(links::edit_page))
            .route("/links/{id}/edit", web::post().to(links::update))
            .route("/links/{id}/qr", web::get().to(links::qr))
            .route("/pages", web::get().to(pages::list))
            .route("/pages", web::post().to(pages::create))
            .route("/pages/{id}/edit", web::get().to(pages::edit_page))
            .route("/pages/{id}/edit", web::post().to(pages::update))
            .route("/pages/{id}/preview", web::post().to(pages::preview))
            .route("/pages/{id}/qr", web::get().to(pages::qr))
            .route("/pages/{id}/delete", web::post().to(pages::remove))
            .route("/analytics", web::get().to(analytics::overview))
            .route("/activity", web::get().to(activity::page))
            .route("/domains", web::get().to(domains::list))
            .route("/domains", web::post().to(domains::add))
            .route("/domains/{domain}", web::get().to(domains::detail))
            .route("/domains/{domain}/verify", web::post().to(domains::verify))
            .route("/domains/{domain}/delete", web::post().to(domains::remove))
            .route("/members", web::get().to(members::list))
            .route("/members/invite", web::post().to(members::invite))
            .route("/members/role", web::post().to(members::change_role))
            .route("/members/remove", web::post().to(members::remove))
            .route("/members/revoke", web::post().to(members::revoke))
            .route("/invite", web::get().to(members::invite_page))
            .route("/invite", web::post().to(members::accept))
            .route("/keys", web::get().to(keys::list))
            .route("/keys", web::post().to(keys::create))
            .route("/keys/{id}/revoke", web::post().to(keys::revoke))
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks", web::post().to(webhooks::create))
            .route(
                "/webhooks/deliveries/{id}/redeliver",
                web::post().to(webhooks::redeliver),
            )
            .route("/webhooks/{id}/{action}", web::post().to(webhooks::act))
            .route("/settings", web::get().to(settings::page))
            .route("/settings/name", web::post().to(settings::rename))
            .route(
                "/settings/password",
                web::post().to(settings::change_password),
            )
            .route(
                "/settings/sessions/end",
                web::post().to(settings::end_session),
            )
            .route(
                "/workspaces/switch",
                web::post().to(settings::switch_workspace),
            )
            .route(
                "/workspaces/create",
                web::post().to(settings::create_workspace),
            )
            .default_service(web::to(error::not_found)),
    );
}

async fn home(console: Console) -> HttpResponse {
    let _ = console;
    page::see_other(&format!("{PREFIX}/links"))
}
