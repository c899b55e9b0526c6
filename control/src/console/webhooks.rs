//! Webhooks of the workspace (admins and owners): the endpoints with their
//! health, adding one (its signing secret shown once, on the answer page
//! only), sending a test event, pausing, resuming and removing one, and the
//! recent deliveries with the dead-letter list's redelivery. Everything goes
//! through [`crate::webhooks::Webhooks`], as the API does.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ricochet_model::now_millis;

use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::page::{self, Layout};
use super::session::Console;
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::events::EventKind;
use crate::keys::Scope;
use crate::store::{DeliveryRecord, EndpointRecord};
use crate::webhooks::{EndpointInput, EndpointPatch, delivery_id, parse_delivery_id};

/// Deliveries the page lists.
const RECENT: usize = 20;

/// An endpoint as listed (never its secret).
#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub enabled: bool,
    /// Why it is off: paused by someone, or disabled for failing.
    pub state: String,
    pub last_success: String,
    pub last_failure: String,
}

/// A delivery as listed.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub endpoint: String,
    pub event: String,
    pub state: &'static str,
    pub attempts: u32,
    /// The last attempt: status (or error) and latency.
    pub last: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    endpoints: Vec<EndpointRow>,
    deliveries: Vec<DeliveryRow>,
    dead: Vec<DeliveryRow>,
    /// (type, checked) for the form.
    events: Vec<(&'static str, bool)>,
    url: String,
    description: String,
    /// The new endpoint's secret, shown once.
    secret: Option<String>,
    errors: FieldErrors,
}

fn endpoint_row(endpoint: EndpointRecord) -> EndpointRow {
    let state = match (&endpoint.disabled_reason, endpoint.enabled) {
        (_, true) => "active".to_owned(),
        (Some(reason), false) => format!("disabled: {reason}"),
        (None, false) => "paused".to_owned(),
    };
    EndpointRow {
        id: endpoint.id,
        url: endpoint.url,
        description: endpoint.description.unwrap_or_default(),
        events: if endpoint.events.len() == EventKind::SUBSCRIBABLE.len() {
            "all events".to_owned()
        } else {
            endpoint
                .events
                .iter()
                .map(|kind| kind.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
        enabled: endpoint.enabled,
        state,
        last_success: endpoint
            .last_success_at
            .map(page::date_time)
            .unwrap_or_else(|| "never".into()),
        last_failure: endpoint
            .last_failure_at
            .map(page::date_time)
            .unwrap_or_else(|| "never".into()),
    }
}

fn delivery_row(delivery: &DeliveryRecord) -> DeliveryRow {
    let last = delivery.log.last().map_or_else(
        || "not attempted yet".to_owned(),
        |attempt| match (attempt.status, &attempt.error) {
            (Some(status), None) => format!("{status} in {} ms", attempt.latency_ms),
            (Some(status), Some(_)) => format!("{status} in {} ms", attempt.latency_ms),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".to_owned(),
        },
    );
    DeliveryRow {
        id: delivery_id(delivery.id),
        endpoint: delivery.endpoint_id.clone(),
        event: delivery.event_type.as_str().to_owned(),
        state: delivery.state.as_str(),
        attempts: delivery.attempts,
        last,
        created: page::date_time(delivery.created_at),
    }
}

/// What the form held, to show again with its errors.
struct Form {
    url: String,
    description: String,
    events: Vec<String>,
}

impl Form {
    fn empty() -> Self {
        Self {
            url: String::new(),
            description: String::new(),
            events: vec!["link.created".into()],
        }
    }
}

async fn webhooks_page(
    console: &Console,
    status: u16,
    notice: Option<&str>,
    secret: Option<String>,
    form: Form,
    errors: FieldErrors,
) -> Result<HttpResponse, ConsoleError> {
    let webhooks = console.state.webhooks.clone();
    let workspace = console.workspace_id().to_owned();
    let (endpoints, deliveries, dead) = blocking(move || {
        let endpoints = webhooks.list(&workspace)?;
        let recent = webhooks.workspace_deliveries(&workspace, None, None, RECENT)?;
        let dead = webhooks.workspace_deliveries(
            &workspace,
            Some(crate::store::DeliveryState::Dead),
            None,
            RECENT,
        )?;
        Ok::<_, crate::webhooks::WebhookError>((endpoints, recent, dead))
    })
    .await?;
    Ok(page::render(
        status,
        &WebhooksPage {
            layout: Layout::of(console, "Webhooks", "webhooks").with_notice(notice),
            endpoints: endpoints.into_iter().map(endpoint_row).collect(),
            deliveries: deliveries.iter().map(delivery_row).collect(),
            dead: dead.iter().map(delivery_row).collect(),
            events: EventKind::SUBSCRIBABLE
                .iter()
                .map(|kind| {
                    (
                        kind.as_str(),
                        form.events.iter().any(|e| e == kind.as_str()),
                    )
                })
                .collect(),
            url: form.url,
            description: form.description,
            secret,
            errors,
        },
    ))
}

/// `GET /console/webhooks`.
pub async fn list(console: Console, request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::Admin)?;
    let query = FormData::parse(request.query_string().as_bytes());
    webhooks_page(
        &console,
        200,
        query.optional("notice"),
        None,
        Form::empty(),
        FieldErrors::none(),
    )
    .await
}

/// `POST /console/webhooks`: a new endpoint, its secret shown on this page only.
pub async fn create(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::Admin)?;
    let input = Form {
        url: form.get("url").to_owned(),
        description: form.get("description").to_owned(),
        events: form.all("events").into_iter().map(str::to_owned).collect(),
    };
    let webhooks = console.state.webhooks.clone();
    let workspace = console.workspace_id().to_owned();
    let endpoint = EndpointInput {
        url: input.url.clone(),
        events: input.events.clone(),
        description: (!input.description.trim().is_empty()).then(|| input.description.clone()),
    };
    let created =
        blocking(move || Ok::<_, ApiError>(webhooks.create(&workspace, endpoint, now_millis())))
            .await?;
    match created {
        Ok(endpoint) => {
            webhooks_page(
                &console,
                201,
                None,
                Some(endpoint.secret),
                Form::empty(),
                FieldErrors::none(),
            )
            .await
        }
        Err(error) => {
            let error = ApiError::from(error);
            if error.status >= 500 {
                return Err(error.into());
            }
            let errors = FieldErrors::from_api(&error, &["url", "events", "description"]);
            webhooks_page(&console, error.status, None, None, input, errors).await
        }
    }
}

/// `POST /console/webhooks/{id}/{test,pause,resume,delete}`.
pub async fn act(
    submitted: Submitted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let console = submitted.console;
    console.require(Scope::Admin)?;
    let (id, action) = path.into_inner();
    let webhooks = console.state.webhooks.clone();
    let workspace = console.workspace_id().to_owned();
    let notice = match action.as_str() {
        "test" => "webhook-test-sent",
        "pause" | "resume" => "webhook-saved",
        "delete" => "webhook-removed",
        _ => return Err(ApiError::not_found("There is no such action.").into()),
    };
    blocking(move || {
        let now = now_millis();
        match action.as_str() {
            "test" => webhooks.send_test(&workspace, &id, now).map(drop),
            "pause" | "resume" => {
                let patch = EndpointPatch {
                    enabled: Some(action == "resume"),
                    ..EndpointPatch::default()
                };
                webhooks.update(&workspace, &id, patch, now).map(drop)
            }
            _ => webhooks.delete(&workspace, &id),
        }
    })
    .await?;
    Ok(page::see_other(&format!(
        "{}/webhooks?notice={notice}",
        super::PREFIX
    )))
}

/// `POST /console/webhooks/deliveries/{id}/redeliver`.
pub async fn redeliver(
    submitted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let console = submitted.console;
    console.require(Scope::Admin)?;
    let text = id.into_inner();
    let id = parse_delivery_id(&text)
        .ok_or_else(|| ApiError::not_found(format!("There is no delivery {text:?}.")))?;
    let webhooks = console.state.webhooks.clone();
    let workspace = console.workspace_id().to_owned();
    blocking(move || webhooks.redeliver(&workspace, id, now_millis())).await?;
    Ok(page::see_other(&format!(
        "{}/webhooks?notice=delivery-redelivered",
        super::PREFIX
    )))
}
