//! `GET /api/v1/links/{id}/qr` over real HTTP: PNG and SVG images of exactly
//! the requested size whose code (decoded with rqrr) is the link's short URL,
//! the caching and download headers, and the refusals: 400 naming the
//! parameter, 404 for another workspace's or an unknown link, 401 without a key.

use std::sync::Arc;

use ricochet_control::test_util::{ApiClient, TestControl};
use ricochet_model::bus::LocalBus;
use serde_json::{Value, json};

/// Short URLs on the default domain start with this (`links.short_url_base`).
const BASE: &str = "https://sho.rt";

/// An answer with its body as bytes (images are not JSON).
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `method path` against `base`, with `key` as the bearer token when given.
fn send(base: &str, key: Option<&str>, method: &str, path: &str) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    let mut response = agent
        .run(request.body(()).unwrap())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body_mut().read_to_vec().unwrap_or_default(),
    }
}

fn started() -> TestControl {
    TestControl::start_with(
        |config| config.links.short_url_base = format!("{BASE}/"),
        Arc::new(LocalBus::new()),
    )
}

/// Creates a link; its id and code.
fn create_link(api: &ApiClient, body: Value) -> (u64, String) {
    let created = api.post("/api/v1/links", &body);
    assert_eq!(created.status, 201, "{}", created.text);
    (
        created.body["id"].as_u64().unwrap(),
        created.body["code"].as_str().unwrap().to_owned(),
    )
}

/// The text of the one QR code in a PNG, and the image's width and height.
fn decode_png(png: &[u8]) -> (String, (u32, u32)) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .to_luma8();
    let dimensions = image.dimensions();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, text) = grids[0].decode().expect("the code reads");
    (text, dimensions)
}

/// The start tag of the document's root `<svg>`.
fn root_tag(svg: &str) -> &str {
    let start = svg.find("<svg").expect("an <svg> element");
    &svg[start..start + svg[start..].find('>').unwrap() + 1]
}

/// Checks that `svg` is well-formed as far as its tags go: each opened tag
/// is closed in order, the declaration comes first, nothing is left open.
fn assert_tags_balance(svg: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg;
    assert!(rest.starts_with("<?xml "), "{svg}");
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>').expect("a tag ends");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') {
            assert!(tag.ends_with('?') && open.is_empty(), "<{tag}> in {svg}");
        } else if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "</{name}> in {svg}");
        } else if !tag.ends_with('/') {
            open.push(tag.split_whitespace().next().unwrap());
        }
    }
    assert!(open.is_empty(), "left open: {open:?}");
    assert_eq!(rest, "", "text after the root element");
}

#[test]
fn png_carries_the_short_url_at_exactly_the_requested_size() {
    let test = started();
    let api = test.client();
    let (id, code) = create_link(&api, json!({"url": "https://example.com/spring"}));
    let base = test.base_url();

    let answer = send(
        &base,
        Some(&test.admin_key),
        "GET",
        &format!("/api/v1/links/{id}/qr?format=png&size=300&margin=2"),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), "image/png");
    assert_eq!(answer.header("cache-control"), "private, max-age=300");
    assert_eq!(
        answer.header("content-disposition"),
        format!("inline; filename=\"{code}.png\"")
    );
    let (text, dimensions) = decode_png(&answer.body);
    assert_eq!(text, format!("{BASE}/{code}"));
    assert_eq!(dimensions, (300, 300));

    // Every size is exact, and error correction levels all read back.
    for (size, margin, ecc) in [(64, 0, "L"), (333, 4, "H"), (1000, 16, "q")] {
        let answer = send(
            &base,
            Some(&test.admin_key),
            "GET",
            &format!("/api/v1/links/{id}/qr?format=png&size={size}&margin={margin}&ecc={ecc}"),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let (text, dimensions) = decode_png(&answer.body);
        assert_eq!(text, format!("{BASE}/{code}"), "{size} {margin} {ecc}");
        assert_eq!(dimensions, (size, size));
    }

    // `download=1` asks browsers to save the file.
    let download = send(
        &base,
        Some(&test.admin_key),
        "GET",
        &format!("/api/v1/links/{id}/qr?format=png&download=1"),
    );
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(
        download.header("content-disposition"),
        format!("attachment; filename=\"{code}.png\"")
    );
    assert_eq!(decode_png(&download.body).1, (512, 512), "default size");

    // A link on a custom domain carries that domain.
    let domain = api.post("/api/v1/domains", &json!({"domain": "go.example"}));
    assert_eq!(domain.status, 201, "{}", domain.text);
    let (custom, custom_code) = create_link(
        &api,
        json!({"url": "https://example.com/custom", "domain": "go.example", "code": "launch"}),
    );
    let answer = send(
        &base,
        Some(&test.admin_key),
        "GET",
        &format!("/api/v1/links/{custom}/qr?format=png"),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        decode_png(&answer.body).0,
        format!("http://go.example/{custom_code}")
    );
}

#[test]
fn svg_is_a_sized_document_with_a_view_box() {
    let test = started();
    let api = test.client();
    let (id, code) = create_link(&api, json!({"url": "https://example.com/svg"}));
    let base = test.base_url();

    for (query, size) in [("", 512), ("?format=svg&size=300&margin=2&ecc=H", 300)] {
        let path = format!("/api/v1/links/{id}/qr{query}");
        let answer = send(&base, Some(&test.admin_key), "GET", &path);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("content-type"), "image/svg+xml");
        assert_eq!(answer.header("cache-control"), "private, max-age=300");
        assert_eq!(
            answer.header("content-disposition"),
            format!("inline; filename=\"{code}.svg\"")
        );
        let svg = String::from_utf8(answer.body.clone()).expect("UTF-8");
        assert_tags_balance(&svg);
        let root = root_tag(&svg);
        for attribute in [
            r#"xmlns="http://www.w3.org/2000/svg""#.to_owned(),
            format!(r#"width="{size}""#),
            format!(r#"height="{size}""#),
            format!(r#"viewBox="0 0 {size} {size}""#),
            r#"shape-rendering="crispEdges""#.to_owned(),
        ] {
            assert!(root.contains(&attribute), "{attribute} in {root}");
        }
        assert!(svg.contains("<path "), "dark modules are drawn: {svg}");

        // HEAD: the same headers, no body.
        let head = send(&base, Some(&test.admin_key), "HEAD", &path);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), "image/svg+xml");
        assert!(head.body.is_empty());
    }
    let download = send(
        &base,
        Some(&test.admin_key),
        "GET",
        &format!("/api/v1/links/{id}/qr?download=1"),
    );
    assert_eq!(
        download.header("content-disposition"),
        format!("attachment; filename=\"{code}.svg\"")
    );
}

#[test]
fn bad_parameters_are_refused_naming_them() {
    let test = started();
    let api = test.client();
    let (id, _) = create_link(&api, json!({"url": "https://example.com/bad"}));
    let base = test.base_url();
    for (query, field, code) in [
        ("format=gif", "format", "invalid_format"),
        ("format=jpeg&size=300", "format", "invalid_format"),
        ("size=10", "size", "invalid_size"),
        ("size=4097", "size", "invalid_size"),
        ("size=big", "size", "invalid_size"),
        ("size=-64", "size", "invalid_size"),
        ("margin=99", "margin", "invalid_margin"),
        ("margin=1.5", "margin", "invalid_margin"),
        ("ecc=Z", "ecc", "invalid_ecc"),
        ("download=yes", "download", "invalid_download"),
        ("colour=red", "colour", "invalid_query"),
        ("format=png&sise=300", "sise", "invalid_query"),
        ("size=100&size=200", "size", "invalid_query"),
    ] {
        let answer = send(
            &base,
            Some(&test.admin_key),
            "GET",
            &format!("/api/v1/links/{id}/qr?{query}"),
        );
        let body = answer.json();
        assert_eq!(answer.status, 400, "{query}: {}", answer.text());
        assert_eq!(answer.header("content-type"), "application/json", "{query}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{query}: {message}");
    }
    let answer = send(
        &base,
        Some(&test.admin_key),
        "GET",
        &format!("/api/v1/links/{id}/qr?size=10"),
    );
    assert_eq!(
        answer.json()["error"]["message"],
        "size must be a whole number of pixels from 64 to 4096, not \"10\""
    );
}

#[test]
fn other_workspaces_links_and_unknown_ids_are_404_and_no_key_is_401() {
    let test = started();
    let api = test.client();
    let (id, _) = create_link(&api, json!({"url": "https://example.com/mine"}));
    let base = test.base_url();

    // A key of workspace B.
    let owner = test.owner_client();
    let workspace = owner.post("/api/v1/workspaces", &json!({"name": "B"}));
    assert_eq!(workspace.status, 201, "{}", workspace.text);
    let b_id = workspace.body["id"].as_str().unwrap();
    let owner_in_b = test.owner_client();
    let switched = owner_in_b.post(&format!("/api/v1/workspaces/{b_id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    let key = owner_in_b.post(
        "/api/v1/keys",
        &json!({"name": "b-reader", "scopes": ["links:read"]}),
    );
    assert_eq!(key.status, 201, "{}", key.text);
    let b_key = key.body["token"].as_str().unwrap();

    let admin = test.admin_key.as_str();
    let mine = format!("/api/v1/links/{id}/qr?format=png");
    assert_eq!(send(&base, Some(admin), "GET", &mine).status, 200);
    for (key, path) in [
        (b_key, mine.clone()),
        (b_key, format!("/api/v1/links/{id}/qr")),
        (admin, "/api/v1/links/987654321/qr".to_owned()),
        (admin, "/api/v1/links/not-an-id/qr".to_owned()),
    ] {
        let answer = send(&base, Some(key), "GET", &path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert_eq!(answer.json()["error"]["code"], "not_found", "{path}");
    }
    // B's own links are B's to draw.
    let b_link = owner_in_b.post("/api/v1/links", &json!({"url": "https://example.com/b"}));
    assert_eq!(b_link.status, 201, "{}", b_link.text);
    let b_link = b_link.body["id"].as_u64().unwrap();
    let drawn = send(
        &base,
        Some(b_key),
        "GET",
        &format!("/api/v1/links/{b_link}/qr"),
    );
    assert_eq!(drawn.status, 200, "{}", drawn.text());

    let anonymous = send(&base, None, "GET", &mine);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert_eq!(anonymous.header("content-type"), "application/json");
    let wrong = send(&base, Some("rk_not_a_key"), "GET", &mine);
    assert_eq!(wrong.status, 401, "{}", wrong.text());
}
