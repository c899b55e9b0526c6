//! may_minihttp (one may worker): `GET /{code}` → 301 with a `Location` line
//! rendered at load time (may_minihttp only takes `&'static str` headers).

use std::io;
use std::sync::Arc;

use may_minihttp::{HttpServer, HttpService, Request, Response};
use ricochet_stacks::{Args, LinkMap, load_links};

#[derive(Clone)]
struct Redirects {
    links: Arc<LinkMap<&'static str>>,
}

impl HttpService for Redirects {
    fn call(&mut self, request: Request, response: &mut Response) -> io::Result<()> {
        match self.links.get(request.path()) {
            Some(location) => {
                response
                    .status_code(301, "Moved Permanently")
                    .header(location);
            }
            None => {
                response
                    .status_code(404, "Not Found")
                    .body("no link here\n");
            }
        }
        Ok(())
    }
}

fn main() {
    let args = Args::parse();
    may::config().set_workers(1);
    let links = load_links(&args.links, |url| {
        &*Box::leak(format!("Location: {url}").into_boxed_str())
    });
    let server = HttpServer(Redirects {
        links: Arc::new(links),
    })
    .start(args.listen)
    .expect("bind");
    eprintln!("may_minihttp listening on {}", args.listen);
    server.join().ok();
}
