//! hyper 1.x HTTP/1 on a tokio current-thread runtime, `pipeline_flush(true)`
//! (without it hyper stalls on pipelined input): `GET /{code}` → 301.

use std::convert::Infallible;
use std::rc::Rc;

use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ricochet_stacks::{Args, load_links};

fn main() {
    let args = Args::parse();
    // Static header values: cloning one per hit neither allocates nor counts
    // references (the engine likewise renders a link's bytes once).
    let links = Rc::new(load_links(&args.links, |url| {
        HeaderValue::from_static(Box::leak(url.into()))
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .expect("bind");
        eprintln!("hyper listening on {}", args.listen);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let links = links.clone();
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let response = match links.get(request.uri().path()) {
                        Some(location) => Response::builder()
                            .status(StatusCode::MOVED_PERMANENTLY)
                            .header(LOCATION, location.clone())
                            .body(Empty::<Bytes>::new()),
                        None => Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Empty::<Bytes>::new()),
                    };
                    async move { Ok::<_, Infallible>(response.expect("valid response")) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .pipeline_flush(true)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
