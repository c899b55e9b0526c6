//! The SSRF-safe fetcher against real local servers: what a policy lets it
//! reach and what it refuses before connecting (loopback literals and names,
//! cloud metadata, a redirect from an allowed host to a private one), the
//! redirect limit, the body cap and the time limit.
//!
//! Every server here listens on loopback. A "public" host is a name the
//! resolver hook points at 127.0.0.1 with that one address listed as an
//! allowed network, so a redirect from it to 127.0.0.2 (a second server) is
//! a redirect from an allowed host to a private one.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ricochet_control::fetch::{
    FetchError, FetchPolicy, FetchRequest, Fetcher, Method, NonPublic, StaticResolver,
};
use ricochet_control::test_util::pages::{PageServer, Reply};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The default policy: public addresses only.
fn strict() -> Fetcher {
    Fetcher::new(FetchPolicy::default())
}

fn private_allowed() -> Fetcher {
    Fetcher::new(FetchPolicy {
        allow_private: true,
        ..FetchPolicy::default()
    })
}

fn refused_range(result: Result<ricochet_control::fetch::Fetched, FetchError>) -> NonPublic {
    match result {
        Err(error @ FetchError::NotPublic { range, .. }) => {
            assert!(error.is_refusal());
            range
        }
        other => panic!("expected a NotPublic refusal, got {other:?}"),
    }
}

#[test]
fn a_page_on_an_allowed_address_is_fetched_with_its_status_headers_and_body() {
    let server = PageServer::start("127.0.0.1", |path| match path {
        "/page" => Reply::html("<title>Hello</title>"),
        "/hop" => Reply::redirect("/page"),
        _ => Reply::Page {
            status: 404,
            content_type: "text/plain".into(),
            body: b"missing".to_vec(),
        },
    });
    let fetcher = private_allowed();
    let page = fetcher
        .fetch(&FetchRequest::get(&server.url("/page")))
        .unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.media_type().as_deref(), Some("text/html"));
    assert_eq!(page.body, b"<title>Hello</title>");
    assert!(!page.truncated);
    assert_eq!(page.redirects, 0);

    let followed = fetcher
        .fetch(&FetchRequest::get(&server.url("/hop")))
        .unwrap();
    assert_eq!((followed.status, followed.redirects), (200, 1));
    assert_eq!(followed.url.as_str(), server.url("/page"));

    let missing = fetcher
        .fetch(&FetchRequest::get(&server.url("/nope")))
        .unwrap();
    assert_eq!((missing.status, missing.is_success()), (404, false));
    assert_eq!(server.paths(), ["/page", "/hop", "/page", "/nope"]);
    let sent = &server.requests()[0];
    assert!(
        sent.header("user-agent")
            .is_some_and(|ua| ua.starts_with("Ricochet/")),
        "{sent:?}"
    );
    assert_eq!(sent.header("accept-encoding"), None, "no compressed bodies");
}

#[test]
fn loopback_destinations_are_refused_without_a_connection() {
    let server = PageServer::start("127.0.0.1", |_| Reply::html("secret"));
    let port = server.addr().port();
    let fetcher = strict();
    for url in [
        server.url("/"),
        format!("http://localhost:{port}/"),
        format!("http://LOCALHOST.:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        // 127.0.0.1 written as one number, in hex and in octal.
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("https://127.1:{port}/"),
    ] {
        let range = refused_range(fetcher.fetch(&FetchRequest::get(&url)));
        assert_eq!(range, NonPublic::Loopback, "{url}");
    }
    let range =
        refused_range(fetcher.fetch(&FetchRequest::get(&format!("http://0.0.0.0:{port}/"))));
    assert_eq!(range, NonPublic::Unspecified);
    assert_eq!(server.connections(), 0, "nothing connected to the server");
}

#[test]
fn cloud_metadata_is_refused_before_any_connection_even_with_private_allowed() {
    // A name pointing at the metadata address, and one pointing at both an
    // allowed server and the metadata address: the whole name is refused,
    // so the allowed server sees nothing either.
    let server = PageServer::start("127.0.0.1", |_| Reply::html("ok"));
    let resolver = StaticResolver::new()
        .with("metadata.test", [ip("169.254.169.254")])
        .with("mixed.test", [ip("127.0.0.1"), ip("169.254.169.254")]);
    for allow_private in [false, true] {
        let fetcher = Fetcher::with_resolver(
            FetchPolicy {
                allow_private,
                allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
                ..FetchPolicy::default()
            },
            Arc::new(resolver.clone()),
        );
        let port = server.addr().port();
        for url in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
            "http://[::ffff:169.254.169.254]/latest/meta-data/".to_owned(),
            "http://[::ffff:a9fe:a9fe]/".to_owned(),
            "http://[64:ff9b::a9fe:a9fe]/".to_owned(),
            "http://2852039166/".to_owned(),
            "http://metadata.test/computeMetadata/v1/".to_owned(),
            format!("http://mixed.test:{port}/"),
        ] {
            let range = refused_range(fetcher.fetch(&FetchRequest::get(&url)));
            assert_eq!(
                range,
                NonPublic::LinkLocal,
                "{url} (allow_private {allow_private})"
            );
        }
        // AWS's IPv6 metadata address is unique-local: refused unless
        // private addresses are allowed, so only check the strict policy.
        if !allow_private {
            let range = refused_range(fetcher.fetch(&FetchRequest::get("http://[fd00:ec2::254]/")));
            assert_eq!(range, NonPublic::UniqueLocal);
        }
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_redirect_from_an_allowed_host_to_a_private_one_is_refused_at_the_redirect() {
    let private = PageServer::start("127.0.0.2", |_| Reply::html("internal"));
    let private_port = private.addr().port();
    let public = PageServer::start("127.0.0.1", move |path| match path {
        "/to-private-ip" => Reply::redirect(format!("http://127.0.0.2:{private_port}/admin")),
        "/to-private-name" => Reply::redirect(format!("http://intranet.test:{private_port}/")),
        "/to-metadata" => Reply::Redirect {
            status: 307,
            location: "http://169.254.169.254/latest/meta-data/".into(),
        },
        "/to-file" => Reply::redirect("file:///etc/passwd"),
        "/to-gopher" => Reply::redirect("gopher://public.test/"),
        "/chain" => Reply::redirect("/to-private-ip"),
        _ => Reply::html("public page"),
    });
    let resolver = StaticResolver::new()
        .with("public.test", [ip("127.0.0.1")])
        .with("intranet.test", [ip("127.0.0.2")]);
    let fetcher = Fetcher::with_resolver(
        FetchPolicy {
            allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
            ..FetchPolicy::default()
        },
        Arc::new(resolver),
    );
    let url = |path: &str| format!("http://public.test:{}{path}", public.addr().port());

    let page = fetcher.fetch(&FetchRequest::get(&url("/"))).unwrap();
    assert_eq!(page.body, b"public page");
    for (path, range) in [
        ("/to-private-ip", NonPublic::Loopback),
        ("/to-private-name", NonPublic::Loopback),
        ("/to-metadata", NonPublic::LinkLocal),
        ("/chain", NonPublic::Loopback),
    ] {
        let range_found = refused_range(fetcher.fetch(&FetchRequest::get(&url(path))));
        assert_eq!(range_found, range, "{path}");
    }
    for path in ["/to-file", "/to-gopher"] {
        let error = fetcher.fetch(&FetchRequest::get(&url(path))).unwrap_err();
        assert!(
            matches!(error, FetchError::Scheme { .. }),
            "{path}: {error:?}"
        );
        assert!(error.is_refusal());
    }
    assert_eq!(
        private.connections(),
        0,
        "the private server was never reached"
    );
    assert_eq!(
        public.paths(),
        [
            "/",
            "/to-private-ip",
            "/to-private-name",
            "/to-metadata",
            "/chain",
            "/to-private-ip",
            "/to-file",
            "/to-gopher"
        ]
    );
}

#[test]
fn at_most_five_redirects_are_followed() {
    let server = PageServer::start("127.0.0.1", |path| {
        let hops: u32 = path.trim_start_matches("/hop/").parse().unwrap_or(0);
        if hops == 0 {
            Reply::html("arrived")
        } else {
            Reply::redirect(format!("/hop/{}", hops - 1))
        }
    });
    let fetcher = private_allowed();
    let five = fetcher
        .fetch(&FetchRequest::get(&server.url("/hop/5")))
        .unwrap();
    assert_eq!((five.redirects, five.body.as_slice()), (5, &b"arrived"[..]));
    let six = fetcher
        .fetch(&FetchRequest::get(&server.url("/hop/6")))
        .unwrap_err();
    assert_eq!(six, FetchError::TooManyRedirects { max: 5 });
    assert!(six.is_refusal());
    // 6 requests for the first fetch, then the 6 allowed for the second
    // (its seventh, /hop/0, is never asked for).
    assert_eq!(server.connections(), 12);
}

#[test]
fn redirects_change_the_method_as_browsers_do_and_keep_credentials_home() {
    let other = PageServer::start("127.0.0.1", |_| Reply::html("elsewhere"));
    let other_url = other.url("/landing");
    let server = PageServer::start("127.0.0.1", move |path| match path {
        "/see-other" => Reply::Redirect {
            status: 303,
            location: "/done".into(),
        },
        "/temporary" => Reply::Redirect {
            status: 307,
            location: "/done".into(),
        },
        "/away" => Reply::redirect(other_url.clone()),
        _ => Reply::html("done"),
    });
    let fetcher = private_allowed();
    let post = |path: &str| {
        FetchRequest::post(&server.url(path), b"{\"event\":1}".to_vec())
            .header("Content-Type", "application/json")
            .header("Authorization", "Bearer secret")
    };
    fetcher.fetch(&post("/see-other")).unwrap();
    fetcher.fetch(&post("/temporary")).unwrap();
    let mut away = post("/away");
    away.method = Method::Get;
    away.body.clear();
    fetcher.fetch(&away).unwrap();
    let seen: Vec<(String, String, usize, bool)> = server
        .requests()
        .into_iter()
        .map(|r| {
            let authorized = r.header("authorization").is_some();
            (r.method, r.path, r.body.len(), authorized)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("POST".into(), "/see-other".into(), 11, true),
            ("GET".into(), "/done".into(), 0, true),
            ("POST".into(), "/temporary".into(), 11, true),
            ("POST".into(), "/done".into(), 11, true),
            ("GET".into(), "/away".into(), 0, true),
        ]
    );
    let landed = other.requests();
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].header("authorization"), None, "another origin");
}

#[test]
fn a_body_over_the_cap_is_cut_there() {
    let big = "x".repeat(600 * 1024);
    let server = PageServer::start("127.0.0.1", move |path| match path {
        "/exact" => Reply::html("y".repeat(512 * 1024)),
        _ => Reply::html(big.clone()),
    });
    let fetcher = private_allowed();
    let cut = fetcher
        .fetch(&FetchRequest::get(&server.url("/big")))
        .unwrap();
    assert_eq!(cut.body.len(), 512 * 1024);
    assert!(cut.truncated);
    let exact = fetcher
        .fetch(&FetchRequest::get(&server.url("/exact")))
        .unwrap();
    assert_eq!(exact.body.len(), 512 * 1024);
    assert!(!exact.truncated);

    let small = Fetcher::new(FetchPolicy {
        allow_private: true,
        max_body_bytes: 10,
        ..FetchPolicy::default()
    });
    let page = small
        .fetch(&FetchRequest::get(&server.url("/big")))
        .unwrap();
    assert_eq!((page.body.len(), page.truncated), (10, true));
}

#[test]
fn a_stalling_server_is_abandoned_at_the_time_limit() {
    let server = PageServer::start("127.0.0.1", |path| match path {
        "/stall" => Reply::Stall,
        "/stall-body" => Reply::StallBody {
            first: b"<title>half".to_vec(),
            total: 10_000,
        },
        _ => Reply::redirect("/stall"),
    });
    let limit = Duration::from_millis(300);
    let fetcher = Fetcher::new(FetchPolicy {
        allow_private: true,
        timeout: limit,
        ..FetchPolicy::default()
    });
    for path in ["/stall", "/stall-body", "/redirect-then-stall"] {
        let started = Instant::now();
        let error = fetcher
            .fetch(&FetchRequest::get(&server.url(path)))
            .unwrap_err();
        assert_eq!(error, FetchError::Timeout { limit }, "{path}");
        assert!(!error.is_refusal());
        // Not a speed target: proof the limit ended the wait (the server
        // would hold the connection until the test ends).
        assert!(started.elapsed() < Duration::from_secs(5), "{path}");
    }
}

#[test]
fn only_http_and_https_urls_are_fetched() {
    let fetcher = strict();
    for url in [
        "file:///etc/passwd",
        "ftp://files.example/",
        "gopher://x.example/",
        "data:text/html,hi",
    ] {
        let error = fetcher.fetch(&FetchRequest::get(url)).unwrap_err();
        assert!(
            matches!(error, FetchError::Scheme { .. }),
            "{url}: {error:?}"
        );
    }
    for url in ["not a url", "/relative", "http://"] {
        let error = fetcher.fetch(&FetchRequest::get(url)).unwrap_err();
        assert_eq!(error, FetchError::InvalidUrl, "{url}");
    }
    let unknown = Fetcher::with_resolver(FetchPolicy::default(), Arc::new(StaticResolver::new()));
    let error = unknown
        .fetch(&FetchRequest::get("http://nowhere.test/"))
        .unwrap_err();
    assert!(matches!(error, FetchError::Unresolved { .. }), "{error:?}");
    assert!(
        !error.to_string().contains("/"),
        "no path in messages: {error}"
    );
}

#[test]
fn ipv6_literals_connect_to_the_checked_address() {
    let server = PageServer::start("::1", |_| Reply::html("six"));
    let page = private_allowed()
        .fetch(&FetchRequest::get(&server.url("/v6")))
        .unwrap();
    assert_eq!(page.body, b"six");
    assert_eq!(server.paths(), ["/v6"]);
}

#[test]
fn https_is_spoken_with_tls_and_never_falls_back() {
    // A server that answers a TLS handshake in plain HTTP: the fetch fails
    // on the way (no panic, no fallback to plain HTTP).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut stream, b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
    });
    let error = private_allowed()
        .fetch(&FetchRequest::get(&url))
        .unwrap_err();
    assert!(matches!(error, FetchError::Connection { .. }), "{error:?}");
    assert!(!error.is_refusal());
    server.join().unwrap();
}
