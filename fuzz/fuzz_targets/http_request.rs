//! Feeds arbitrary bytes, in arbitrary read sizes, to the engine's connection
//! loop (`serve_connection`) over an in-memory stream. It must never panic,
//! and what it writes back must be a sequence of well-formed HTTP/1.x
//! responses, one per request answered plus at most one refusal.
#![no_main]

#[path = "duplex.rs"]
mod duplex;

use std::sync::OnceLock;

use duplex::Duplex;
use libfuzzer_sys::fuzz_target;
use ricochet_engine::http::{
    ConnectionLimits, ConnectionObserver, DeferredAnswer, Handled, Handler, Method, Request,
    ResponseWriter, serve_connection,
};

/// Answers every request from what was parsed, deferring POSTs as password
/// checks do; remembers which requests were HEAD, whose answers carry no body.
#[derive(Default)]
struct Echo {
    head_only: Vec<bool>,
}

impl Handler for Echo {
    fn handle(&mut self, request: &Request<'_>, response: ResponseWriter<'_>) -> Handled {
        self.head_only.push(request.method == Method::Head);
        let body = format!(
            "{:?} {} {} {} {}\n",
            request.method,
            String::from_utf8_lossy(request.path),
            String::from_utf8_lossy(request.query),
            String::from_utf8_lossy(request.host.unwrap_or_default()),
            request.body.len(),
        );
        match request.method {
            Method::Get | Method::Head => Handled::Answered(response.text(200, &body)),
            Method::Post => {
                let answer: DeferredAnswer = Box::new(move |writer| writer.text(303, &body));
                Handled::Deferred(Box::pin(async move { answer }))
            }
            Method::Other => Handled::Answered(response.text(405, "method not allowed\n")),
        }
    }
}

struct Quiet;

impl ConnectionObserver for Quiet {
    fn response(&self, _: u16) {}
    fn header_timeout(&self) {}
    fn idle_timeout(&self) {}
    fn bad_request(&self) {}
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

/// Checks `output` is whole responses, each with one `Content-Length` and
/// exactly that body (none after HEAD), and no more of them than requests
/// answered plus one refusal.
fn check_responses(mut output: &[u8], head_only: &[bool]) {
    let mut index = 0;
    while !output.is_empty() {
        assert!(
            index <= head_only.len(),
            "more responses than requests answered plus a refusal"
        );
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(output) {
            Ok(httparse::Status::Complete(head)) => head,
            other => panic!(
                "malformed response {other:?}: {:?}",
                String::from_utf8_lossy(output)
            ),
        };
        let status = response.code.expect("a status code");
        assert!((100..600).contains(&status), "status {status}");
        let lengths: Vec<&[u8]> = response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| h.value)
            .collect();
        assert_eq!(lengths.len(), 1, "one Content-Length");
        let length: usize = std::str::from_utf8(lengths[0])
            .ok()
            .and_then(|text| text.parse().ok())
            .expect("a decimal Content-Length");
        let body = if head_only.get(index).copied().unwrap_or(false) {
            0
        } else {
            length
        };
        assert!(output.len() >= head + body, "truncated body");
        output = &output[head + body..];
        index += 1;
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Some((&first, input)) = bytes.split_first() else {
        return;
    };
    let mut stream = Duplex {
        input,
        chunk: usize::from(first).max(1) * 16,
        output: Vec::new(),
    };
    let mut handler = Echo::default();
    let limits = ConnectionLimits::default();
    runtime().block_on(serve_connection(
        &mut stream,
        None,
        false,
        &mut handler,
        &Quiet,
        &limits,
    ));
    check_responses(&stream.output, &handler.head_only);
});
