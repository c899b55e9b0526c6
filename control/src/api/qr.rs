//! QR code route (scope `links:read`):
//! `GET /api/v1/links/{id}/qr?format&size&margin&ecc&download`, the link's
//! short URL drawn by [`crate::qr`] as an SVG or PNG image.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::{AppState, blocking};
use crate::qr::{self, QrError, QrOptions, RequestedOptions};

/// How long clients may keep an image: a link's short URL rarely changes.
const CACHE_CONTROL: &str = "private, max-age=300";

/// Query of `GET /links/{id}/qr`. Values are read by [`QrOptions::parse`],
/// so a bad one is refused naming its parameter; empty values take the
/// default.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    #[param(schema_with = format_schema)]
    pub format: Option<String>,
    #[param(schema_with = size_schema)]
    pub size: Option<String>,
    #[param(schema_with = margin_schema)]
    pub margin: Option<String>,
    #[param(schema_with = ecc_schema)]
    pub ecc: Option<String>,
    #[param(schema_with = download_schema)]
    pub download: Option<String>,
}

/// A QR code of the link's short URL, as an SVG or PNG image.
///
/// The code carries the URL that redirects to the link (on the default
/// domain under `links.short_url_base` when set; on a custom domain,
/// `https://` once it has a certificate). The image is exactly `size` pixels
/// square: each module is the same whole number of pixels,
/// `size / (modules + 2 * margin)` rounded down, and the pixels left over
/// are light, around the code, which stays centred.
#[utoipa::path(
    get, path = "/api/v1/links/{id}/qr", tag = "links",
    params(("id" = u64, Path, description = "Link id"), QrQuery),
    responses(
        (status = 200, description = "The QR code (deleted links included)",
            content(("image/svg+xml"), ("image/png")),
            headers(
                ("Cache-Control" = String, description = "`private, max-age=300`"),
                ("Content-Disposition" = String,
                    description = "`inline; filename=\"<code>.svg\"` (or `.png`); `attachment` with `download=1`")
            )),
        (status = 400, description = "Bad or unknown query parameter (`field` names it), or a `size` too small for the code with its `margin` (each module needs a pixel)", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn link_qr(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, caller.caller.workspace_id(), &id, &request).await
}

/// The QR code of link `raw_id` of `workspace` as the request's query asks
/// for it; the API and the console answer through here.
pub(crate) async fn answer(
    state: &AppState,
    workspace: &str,
    raw_id: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(raw_id)?;
    let service = state.service.clone();
    let workspace = workspace.to_owned();
    image_answer(request, move || {
        let link = service.link(&workspace, id)?;
        let text = service.short_url(&link)?;
        Ok((link.code, text))
    })
    .await
}

/// The QR code of the URL `resolve` gives (with the file name's stem), as
/// the request's query asks for it; `resolve` runs on the blocking pool.
pub(crate) async fn image_answer(
    request: &HttpRequest,
    resolve: impl FnOnce() -> Result<(String, String), ApiError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let query = read_query(request)?;
    let options = QrOptions::parse(&RequestedOptions {
        format: query.format.as_deref(),
        size: query.size.as_deref(),
        margin: query.margin.as_deref(),
        ecc: query.ecc.as_deref(),
    })
    .map_err(refused)?;
    let disposition = disposition(query.download.as_deref())?;
    let (stem, image) = blocking(move || {
        let (stem, text) = resolve()?;
        let image = qr::render(&text, &options).map_err(refused)?;
        Ok::<_, ApiError>((stem, image))
    })
    .await?;
    let filename = format!("{stem}.{}", options.format.extension());
    Ok(HttpResponse::Ok()
        .content_type(options.format.media_type())
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{filename}\""),
        ))
        .body(image))
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no link with id {raw:?}")))
}

/// The query, refusing unknown and repeated parameters with `field` naming
/// them (serde quotes the name between backticks).
fn read_query(request: &HttpRequest) -> Result<QrQuery, ApiError> {
    super::parse_query(request).map_err(|error: ApiError| {
        let name = error
            .message
            .split('`')
            .nth(1)
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
        match name {
            Some(name) => error.with_field(name),
            None => error,
        }
    })
}

/// `inline`, or `attachment` with `download=1` (or `true`).
fn disposition(download: Option<&str>) -> Result<&'static str, ApiError> {
    match download {
        None | Some("" | "0" | "false") => Ok("inline"),
        Some("1" | "true") => Ok("attachment"),
        Some(other) => Err(ApiError::bad_request(
            "invalid_download",
            format!("download must be 1 (save as a file) or 0 (show inline), not {other:?}"),
        )
        .with_field("download")),
    }
}

/// Refused options as a 400 naming the option; a code that cannot be drawn
/// is our failure (a short URL is far shorter than any QR code's capacity).
fn refused(error: QrError) -> ApiError {
    let code = match &error {
        QrError::Format(_) => "invalid_format",
        QrError::Size(_) | QrError::SizeTooSmall { .. } => "invalid_size",
        QrError::Margin(_) => "invalid_margin",
        QrError::Ecc(_) => "invalid_ecc",
        QrError::TextTooLong { .. } | QrError::Encode(_) | QrError::Png(_) => {
            tracing::error!(%error, "cannot draw a link's QR code");
            return ApiError::internal();
        }
    };
    let answer = ApiError::bad_request(code, error.to_string());
    match error.field() {
        Some(field) => answer.with_field(field),
        None => answer,
    }
}

fn format_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["svg", "png"]))
        .default(Some("svg".into()))
        .description(Some(
            "Image format: `svg` (`image/svg+xml`, the default) or `png` (`image/png`).",
        ))
        .into()
}

fn size_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(*qr::SIZES.start()))
        .maximum(Some(*qr::SIZES.end()))
        .default(Some(qr::DEFAULT_SIZE.into()))
        .description(Some(format!(
            "Width and height of the whole image in pixels, quiet zone included \
             (default {}). It must be at least the code's modules across plus twice \
             the margin (a short URL needs 21 to about 100 modules, more at higher \
             `ecc`), else 400.",
            qr::DEFAULT_SIZE
        )))
        .into()
}

fn margin_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(*qr::MARGINS.start()))
        .maximum(Some(*qr::MARGINS.end()))
        .default(Some(qr::DEFAULT_MARGIN.into()))
        .description(Some(format!(
            "Quiet zone around the code, in modules on each side (default {}, \
             what the QR standard asks for).",
            qr::DEFAULT_MARGIN
        )))
        .into()
}

fn ecc_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["L", "M", "Q", "H"]))
        .default(Some("M".into()))
        .description(Some(
            "Error correction: how much of the code may be damaged and still read, \
             L 7 %, M 15 % (the default), Q 25 %, H 30 %. Higher levels need more modules.",
        ))
        .into()
}

fn download_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some([0, 1]))
        .default(Some(0.into()))
        .description(Some(
            "1: `Content-Disposition: attachment` (browsers save the file); 0, the \
             default: `inline`.",
        ))
        .into()
}
