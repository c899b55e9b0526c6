//! The console's static files, built into the binary: its style sheet and
//! its small progressive-enhancement script (forms work without it).
//! Served with an ETag so browsers revalidate cheaply.

use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

/// (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/console.js"),
    ),
];

/// `GET /console/assets/{name}`.
pub async fn serve(request: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset\n");
    };
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..16]);
    let matches = request
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sent| sent == etag);
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(("ETag", etag))
        .insert_header(("Cache-Control", "public, max-age=300, must-revalidate"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if matches {
        return response.finish();
    }
    response.content_type(*content_type).body(*bytes)
}
