//! actix-web with one worker: `GET /{code}` → 301 with `Location`.

use std::sync::Arc;

use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use ricochet_stacks::{Args, LinkMap, load_links};

async fn redirect(
    request: HttpRequest,
    links: web::Data<Arc<LinkMap<HeaderValue>>>,
) -> HttpResponse {
    match links.get(request.path()) {
        Some(location) => HttpResponse::MovedPermanently()
            .insert_header((LOCATION, location.clone()))
            .finish(),
        None => HttpResponse::NotFound().body("no link here\n"),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // Static header values: cloning one per hit neither allocates nor counts
    // references (the engine likewise renders a link's bytes once).
    let links = Arc::new(load_links(&args.links, |url| {
        HeaderValue::from_static(Box::leak(url.into()))
    }));
    let data = web::Data::new(links);
    eprintln!("actix-web listening on {}", args.listen);
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::get().to(redirect))
    })
    .workers(1)
    .backlog(4096)
    .bind(args.listen)?
    .run()
    .await
}
