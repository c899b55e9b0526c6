//! Domain settings over real sockets: a domain's root and unknown codes go
//! where its settings say (302, not cached), links still win over them, the
//! default domain has them too, clearing them brings the 404 page back, and
//! a restart serves them from the engine's own store.

use ricochet_engine::test_util::{Client, TestEngine, link};
use ricochet_model::DomainSettings;

fn settings(domain: &str, root: Option<&str>, not_found: Option<&str>) -> DomainSettings {
    DomainSettings {
        root_url: root.map(str::to_owned),
        not_found_url: not_found.map(str::to_owned),
        ..DomainSettings::empty(domain)
    }
}

fn assert_redirect(engine: &TestEngine, path: &str, host: &str, location: &str) {
    let response = engine.get(path, host);
    assert_eq!(response.status, 302, "{host}{path}");
    assert_eq!(
        response.header("location").as_deref(),
        Some(location),
        "{host}{path}"
    );
    assert_eq!(
        response.header("cache-control").as_deref(),
        Some("no-store")
    );
}

#[test]
fn root_and_unknown_codes_follow_the_domain_settings() {
    let mut engine = TestEngine::start();
    engine.upsert(link(
        "brand.example",
        "spring",
        "https://example.com/spring",
    ));
    engine.set_domain(settings(
        "brand.example",
        Some("https://www.brand.example/"),
        Some("https://www.brand.example/missing"),
    ));

    assert_redirect(&engine, "/", "brand.example", "https://www.brand.example/");
    assert_redirect(
        &engine,
        "/?utm=x",
        "Brand.Example:8080",
        "https://www.brand.example/",
    );
    assert_redirect(
        &engine,
        "/nope",
        "brand.example",
        "https://www.brand.example/missing",
    );
    // A path that can be no code is an unknown code too.
    assert_redirect(
        &engine,
        "/a/b.png",
        "brand.example",
        "https://www.brand.example/missing",
    );
    // A link answers as itself.
    let hit = engine.get("/spring", "brand.example");
    assert_eq!(hit.status, 302);
    assert_eq!(
        hit.header("location").as_deref(),
        Some("https://example.com/spring")
    );
    // HEAD gets the same answer without a body.
    let head = Client::connect(engine.addr()).head("/", "brand.example");
    assert_eq!(head.status, 302);
    assert_eq!(
        head.header("location").as_deref(),
        Some("https://www.brand.example/")
    );

    // The default domain (`localhost` here) answers hosts it does not know;
    // it has no settings yet, so they get the 404 page.
    assert_eq!(engine.get("/", "unknown.example").status, 404);
    engine.set_domain(settings("localhost", None, Some("https://example.com/404")));
    assert_redirect(
        &engine,
        "/gone",
        "unknown.example",
        "https://example.com/404",
    );
    // Only the unknown-code destination is set: the root keeps the 404 page.
    assert_eq!(engine.get("/", "localhost").status, 404);

    // A restart serves the settings from the engine's store.
    engine.restart();
    assert_redirect(&engine, "/", "brand.example", "https://www.brand.example/");
    assert_redirect(&engine, "/gone", "localhost", "https://example.com/404");
    assert_eq!(
        engine.metric("ricochet_engine_domains_redirecting_misses"),
        Some(2.0)
    );

    // Clearing them brings the 404 page back, also after a restart.
    engine.set_domain(DomainSettings::empty("brand.example"));
    assert_eq!(engine.get("/", "brand.example").status, 404);
    assert_eq!(engine.get("/nope", "brand.example").status, 404);
    engine.restart();
    assert_eq!(engine.get("/", "brand.example").status, 404);
    assert_eq!(
        engine.metric("ricochet_engine_domains_redirecting_misses"),
        Some(1.0)
    );
}

#[test]
fn a_domain_with_settings_and_no_links_is_served_as_itself() {
    let engine = TestEngine::start();
    engine.upsert(link("localhost", "a", "https://example.com/a"));
    // Before it has settings, an unknown host is served from the default domain.
    assert_eq!(engine.get("/a", "fresh.example").status, 302);
    engine.set_domain(settings(
        "fresh.example",
        Some("https://fresh.example.org/"),
        None,
    ));
    assert_redirect(&engine, "/", "fresh.example", "https://fresh.example.org/");
    // Now the host is its own domain: the default domain's codes are not its.
    assert_eq!(engine.get("/a", "fresh.example").status, 404);
}

#[test]
fn invalid_settings_are_refused_on_intake() {
    let engine = TestEngine::start();
    let intake = engine.engine().intake();
    let before = intake.last_applied();
    for bad in [
        settings("brand.example", Some("javascript:alert(1)"), None),
        settings(
            "brand.example",
            None,
            Some("https://example.com/\r\nSet-Cookie: a=b"),
        ),
        settings("Brand.Example", Some("https://example.com/"), None),
    ] {
        let change = ricochet_model::Change {
            version: before + 1,
            op: ricochet_model::ChangeOp::Domain { settings: bad },
        };
        assert!(intake.apply(&[change]).is_err());
    }
    assert_eq!(intake.last_applied(), before);
    assert_eq!(engine.get("/", "brand.example").status, 404);
}
