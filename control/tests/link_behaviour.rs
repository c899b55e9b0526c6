//! Link behaviour over the API (real HTTP, real store): rules, variants,
//! fallback URL, card, ios and android on create, bulk, get and patch; every
//! bad value answered 400 with its full field path and nothing stored;
//! destinations on the installation's short domains refused at their path;
//! the change log engines read carries the extensions.

use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl};
use serde_json::{Value, json};

/// The issue's example body.
fn full_body() -> Value {
    json!({
        "url": "https://example.com/default", "code": "spring",
        "rules": [
            {"url": "https://example.com/ios", "conditions": [{"type": "os", "value": "ios"}]},
            {"url": "https://example.com/fr", "conditions": [
                {"type": "language", "value": "fr"},
                {"type": "query-param", "key": "ref", "value": "mail"}]}
        ],
        "variants": [{"url": "https://example.com/a", "weight": 50},
                     {"url": "https://example.com/b", "weight": 50}],
        "fallback_url": "https://example.com/gone",
        "card": {"title": "Spring", "description": "Half price", "image": "https://img.example/s.png"},
        "ios": "https://apps.apple.com/app/id1",
        "android": "https://play.google.com/store/apps/details?id=a"
    })
}

fn rule(url: &str, conditions: Value) -> Value {
    json!({"url": url, "conditions": conditions})
}

fn os_rule() -> Value {
    rule(
        "https://example.com/r",
        json!([{"type": "os", "value": "ios"}]),
    )
}

fn assert_refused(response: &ApiResponse, code: &str, field: &str, what: &str) {
    assert_eq!(response.status, 400, "{what}: {}", response.text);
    assert_eq!(response.error_code(), code, "{what}: {}", response.text);
    assert_eq!(
        response.body["error"]["field"], field,
        "{what}: {}",
        response.text
    );
    assert!(
        response.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {}",
        response.text
    );
}

#[test]
fn create_get_and_patch_every_behaviour_field() {
    let test = TestControl::start();
    let api = test.client();

    let plain = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/plain"}),
    );
    assert_eq!(plain.status, 201, "{}", plain.text);
    for (field, unset) in [
        ("rules", json!([])),
        ("variants", json!([])),
        ("fallback_url", Value::Null),
        ("card", Value::Null),
        ("ios", Value::Null),
        ("android", Value::Null),
    ] {
        assert_eq!(plain.body[field], unset, "{field}: {}", plain.text);
    }

    let created = api.post("/api/v1/links", &full_body());
    assert_eq!(created.status, 201, "{}", created.text);
    let expected_rules = json!([
        {"url": "https://example.com/ios", "conditions": [{"type": "os", "value": "ios"}],
         "variants": []},
        {"url": "https://example.com/fr", "conditions": [
            {"type": "language", "value": "fr"},
            {"type": "query-param", "key": "ref", "value": "mail"}],
         "variants": []}
    ]);
    assert_eq!(created.body["rules"], expected_rules);
    assert_eq!(created.body["variants"], full_body()["variants"]);
    assert_eq!(created.body["fallback_url"], "https://example.com/gone");
    assert_eq!(created.body["card"], full_body()["card"]);
    assert_eq!(created.body["ios"], "https://apps.apple.com/app/id1");
    assert_eq!(
        created.body["android"],
        "https://play.google.com/store/apps/details?id=a"
    );
    let id = created.body["id"].as_u64().unwrap();
    let path = format!("/api/v1/links/{id}");
    let fetched = api.get(&path);
    assert_eq!(fetched.body, created.body, "GET shows what POST answered");

    // Values come back normalized.
    let normalized = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/n",
                "rules": [rule("https://Example.com/R", json!([
                    {"type": "country", "value": "fr"},
                    {"type": "ip", "value": "10.1.2.3/8"},
                    {"type": "device", "value": "Mobile"},
                    {"type": "after", "value": "2026-12-24T18:00:00+01:00"},
                    {"type": "schedule", "value": {"timezone": "Europe/Paris", "days": ["FRI", "mon"], "from": "09:00"}}
                ]))],
                "card": {"title": "  ", "description": "only this"},
                "ios": "https://APPS.example"}),
    );
    assert_eq!(normalized.status, 201, "{}", normalized.text);
    assert_eq!(
        normalized.body["rules"][0],
        json!({"url": "https://example.com/R", "variants": [], "conditions": [
            {"type": "country", "value": "FR"},
            {"type": "ip", "value": "10.0.0.0/8"},
            {"type": "device", "value": "mobile"},
            {"type": "after", "value": "2026-12-24T17:00:00Z"},
            {"type": "schedule", "value": {"timezone": "Europe/Paris", "days": ["mon", "fri"],
                                           "from": "09:00", "to": "24:00"}}
        ]})
    );
    assert_eq!(
        normalized.body["card"],
        json!({"title": null, "description": "only this", "image": null})
    );
    assert_eq!(normalized.body["ios"], "https://apps.example/");

    // A field given replaces; absent fields stay.
    let version = created.body["version"].as_u64().unwrap();
    let patched = api.patch(
        &path,
        &json!({"ios": "https://apps.apple.com/app/id2",
                "rules": [{"url": "https://example.com/split",
                           "conditions": [{"type": "any-value-query-param", "key": "promo"}],
                           "variants": [{"url": "https://example.com/s1", "weight": 30},
                                        {"url": "https://example.com/s2", "weight": 70}]}]}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["ios"], "https://apps.apple.com/app/id2");
    assert_eq!(
        patched.body["rules"][0]["variants"][1],
        json!({"url": "https://example.com/s2", "weight": 70})
    );
    assert_eq!(
        patched.body["rules"][0]["conditions"][0],
        json!({"type": "any-value-query-param", "key": "promo"})
    );
    for field in [
        "variants",
        "fallback_url",
        "card",
        "android",
        "url",
        "title",
    ] {
        assert_eq!(patched.body[field], created.body[field], "{field} stays");
    }
    assert!(patched.body["version"].as_u64().unwrap() > version);

    // `null` clears each field, and `[]` clears a list.
    let cleared = api.patch(
        &path,
        &json!({"rules": null, "variants": [], "fallback_url": null, "card": null,
                "ios": null, "android": null}),
    );
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    for field in [
        "rules",
        "variants",
        "fallback_url",
        "card",
        "ios",
        "android",
    ] {
        assert_eq!(cleared.body[field], plain.body[field], "{field} cleared");
    }
    let emptied = api.patch(&path, &json!({"rules": [os_rule()]}));
    assert_eq!(emptied.body["rules"].as_array().unwrap().len(), 1);
    let emptied = api.patch(&path, &json!({"rules": [], "card": {}}));
    assert_eq!(emptied.body["rules"], json!([]), "{}", emptied.text);
    assert_eq!(
        emptied.body["card"],
        Value::Null,
        "an empty card is no card"
    );

    // utm fields merge into `url` only; rule and variant URLs stay as given.
    let utm = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/u", "utm": {"source": "news"},
                "rules": [os_rule()],
                "variants": [{"url": "https://example.com/a", "weight": 50},
                             {"url": "https://example.com/b", "weight": 50}]}),
    );
    assert_eq!(utm.status, 201, "{}", utm.text);
    assert_eq!(utm.body["url"], "https://example.com/u?utm_source=news");
    assert_eq!(utm.body["rules"][0]["url"], "https://example.com/r");
    assert_eq!(utm.body["variants"][0]["url"], "https://example.com/a");
}

/// Every kind of bad value, with the error code and field path it gets.
fn bad_values() -> Vec<(Value, &'static str, &'static str)> {
    let url = "https://example.com/";
    let four_rules = |bad: Value| json!([os_rule(), os_rule(), os_rule(), rule(url, json!([bad]))]);
    let split = |weights: &[u64]| -> Value {
        weights
            .iter()
            .map(|w| json!({"url": "https://example.com/v", "weight": w}))
            .collect()
    };
    let many = |count: usize, item: Value| Value::from(vec![item; count]);
    let with_variants = |variants: Value| json!([{"url": url, "conditions": [{"type": "os", "value": "ios"}], "variants": variants}]);
    vec![
        (json!({"rules": {}}), "invalid_rule", "rules"),
        (json!({"rules": [3]}), "invalid_rule", "rules[0]"),
        (
            json!({"rules": four_rules(json!({"type": "os", "value": "amiga"}))}),
            "invalid_rule",
            "rules[3].conditions[0].value",
        ),
        (
            json!({"rules": four_rules(json!({"type": "planet", "value": "mars"}))}),
            "invalid_rule",
            "rules[3].conditions[0].type",
        ),
        (
            json!({"rules": four_rules(json!({"type": "device", "key": "k", "value": "mobile"}))}),
            "invalid_rule",
            "rules[3].conditions[0].key",
        ),
        (
            json!({"rules": four_rules(json!({"type": "query-param", "value": "x"}))}),
            "invalid_rule",
            "rules[3].conditions[0].key",
        ),
        (
            json!({"rules": four_rules(json!({"type": "schedule", "value": {"timezone": "Mars/Olympus"}}))}),
            "invalid_rule",
            "rules[3].conditions[0].value.timezone",
        ),
        (
            json!({"rules": four_rules(json!({"type": "after", "value": "tomorrow"}))}),
            "invalid_rule",
            "rules[3].conditions[0].value",
        ),
        (
            json!({"rules": four_rules(json!("os"))}),
            "invalid_rule",
            "rules[3].conditions[0]",
        ),
        (
            json!({"rules": [rule("javascript:alert(1)", json!([{"type": "os", "value": "ios"}]))]}),
            "invalid_rule",
            "rules[0].url",
        ),
        (
            json!({"rules": [rule(url, json!([]))]}),
            "invalid_rule",
            "rules[0].conditions",
        ),
        (
            json!({"rules": [{"url": url, "conditions": [{"type": "os", "value": "ios"}], "when": 1}]}),
            "invalid_rule",
            "rules[0].when",
        ),
        (
            json!({"rules": with_variants(split(&[60, 60]))}),
            "invalid_rule",
            "rules[0].variants",
        ),
        (
            json!({"rules": with_variants(json!([{"url": url, "weight": 50}, {"url": "ftp://x", "weight": 50}]))}),
            "invalid_rule",
            "rules[0].variants[1].url",
        ),
        // Limits.
        (
            json!({"rules": many(33, os_rule())}),
            "invalid_rule",
            "rules",
        ),
        (
            json!({"rules": [rule(url, many(17, json!({"type": "os", "value": "ios"})))]}),
            "invalid_rule",
            "rules[0].conditions",
        ),
        (
            json!({"variants": split(&[12, 12, 12, 12, 12, 10, 10, 10, 0])}),
            "invalid_variants",
            "variants",
        ),
        (
            json!({"variants": split(&[100])}),
            "invalid_variants",
            "variants",
        ),
        (
            json!({"variants": split(&[40, 40])}),
            "invalid_variants",
            "variants",
        ),
        (
            json!({"variants": split(&[50, 51])}),
            "invalid_variants",
            "variants",
        ),
        (
            json!({"variants": split(&[50, 150])}),
            "invalid_variants",
            "variants[1].weight",
        ),
        (
            json!({"variants": [{"url": url, "weight": 50.5}, {"url": url, "weight": 49.5}]}),
            "invalid_variants",
            "variants[0].weight",
        ),
        (
            json!({"variants": [{"url": url, "weight": 50}, {"url": url, "weight": 50, "label": "b"}]}),
            "invalid_variants",
            "variants[1].label",
        ),
        (json!({"variants": "a/b"}), "invalid_variants", "variants"),
        (
            json!({"fallback_url": "ftp://example.com/"}),
            "invalid_url",
            "fallback_url",
        ),
        (json!({"ios": 5}), "invalid_url", "ios"),
        (json!({"android": ""}), "invalid_url", "android"),
        (json!({"card": "title"}), "invalid_card", "card"),
        (
            json!({"card": {"title": "x".repeat(301)}}),
            "invalid_card",
            "card.title",
        ),
        (
            json!({"card": {"description": "x".repeat(1001)}}),
            "invalid_card",
            "card.description",
        ),
        (
            json!({"card": {"image": "javascript:alert(1)"}}),
            "invalid_card",
            "card.image",
        ),
        (
            json!({"card": {"colour": "red"}}),
            "invalid_card",
            "card.colour",
        ),
    ]
}

/// `fields` merged into `base`.
fn with(base: Value, fields: &Value) -> Value {
    let mut body = base;
    for (name, value) in fields.as_object().unwrap() {
        body[name] = value.clone();
    }
    body
}

#[test]
fn bad_behaviour_gets_400_with_its_path_and_stores_nothing() {
    let test = TestControl::start();
    let api = test.client();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/kept", "title": "kept", "rules": [os_rule()]}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/api/v1/links/{}", created.body["id"]);
    let before = test.control().store().latest_version();

    for (fields, code, field) in bad_values() {
        let what = fields.to_string();
        let what: String = what.chars().take(200).collect();
        let body = with(json!({"url": "https://example.com/new"}), &fields);
        assert_refused(
            &api.post("/api/v1/links", &body),
            code,
            field,
            &format!("POST {what}"),
        );
        // On a patch, with a good change beside it: nothing half-applied.
        let patch = with(
            json!({"title": "changed", "ios": "https://apps.example/"}),
            &fields,
        );
        assert_refused(
            &api.patch(&path, &patch),
            code,
            field,
            &format!("PATCH {what}"),
        );
    }
    // A patch whose last rule is bad changes nothing.
    let rules = json!([
        os_rule(),
        os_rule(),
        rule(
            "https://example.com/",
            json!([{"type": "country", "value": "FRA"}])
        )
    ]);
    assert_refused(
        &api.patch(&path, &json!({"rules": rules, "title": "changed"})),
        "invalid_rule",
        "rules[2].conditions[0].value",
        "last rule",
    );
    assert_eq!(
        test.control().store().latest_version(),
        before,
        "nothing stored"
    );
    let unchanged = api.get(&path);
    assert_eq!(unchanged.body, created.body, "the link is as it was");

    // Request bodies still refuse unknown fields.
    let unknown = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/", "rule": [os_rule()]}),
    );
    assert_refused(&unknown, "invalid_field", "rule", "unknown field");
}

#[test]
fn destinations_on_short_domains_are_refused_at_their_path() {
    let test = TestControl::start();
    let api = test.client();
    assert_eq!(
        api.post("/api/v1/domains", &json!({"domain": "go.example.com"}))
            .status,
        201
    );
    let looped = "https://go.example.com/loop";
    let split =
        json!([{"url": "https://example.com/a", "weight": 50}, {"url": looped, "weight": 50}]);
    let cases = [
        (
            json!({"rules": [os_rule(), rule(looped, json!([{"type": "os", "value": "ios"}]))]}),
            "rules[1].url",
        ),
        (
            json!({"rules": [{"url": "https://example.com/", "conditions": [{"type": "os", "value": "ios"}],
                              "variants": split}]}),
            "rules[0].variants[1].url",
        ),
        (json!({"variants": split}), "variants[1].url"),
        (
            json!({"fallback_url": "http://LOCALHOST/demo"}),
            "fallback_url",
        ),
        (json!({"ios": looped}), "ios"),
        (
            json!({"android": "https://go.example.com:8443/"}),
            "android",
        ),
    ];
    let created = api.post("/api/v1/links", &json!({"url": "https://example.com/"}));
    let path = format!("/api/v1/links/{}", created.body["id"]);
    let before = test.control().store().latest_version();
    for (fields, field) in cases {
        let body = with(json!({"url": "https://example.com/"}), &fields);
        let what = format!("{fields}");
        assert_refused(
            &api.post("/api/v1/links", &body),
            "destination_is_short_link",
            field,
            &what,
        );
        assert_refused(
            &api.patch(&path, &fields),
            "destination_is_short_link",
            field,
            &what,
        );
    }
    assert_eq!(test.control().store().latest_version(), before);
    // A host that merely ends like a short domain is someone else's.
    let elsewhere = api.patch(&path, &json!({"ios": "https://notgo.example.com/"}));
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
}

#[test]
fn bulk_reports_each_items_field_error() {
    let test = TestControl::start();
    let api = test.client();
    let bulk = api.post(
        "/api/v1/links/bulk",
        &json!([
            full_body(),
            {"url": "https://example.com/2", "rules": [os_rule(), rule("https://example.com/", json!([{"type": "language", "value": "français"}]))]},
            {"url": "https://example.com/3", "variants": [{"url": "http://localhost/", "weight": 50},
                                                           {"url": "https://example.com/", "weight": 50}]},
            {"url": "https://example.com/4", "card": {"image": "data:image/png,x"}},
            {"url": "https://example.com/5", "android": "https://play.example/"}
        ]),
    );
    assert_eq!(bulk.status, 200, "{}", bulk.text);
    assert_eq!(
        (bulk.body["created"].as_u64(), bulk.body["failed"].as_u64()),
        (Some(2), Some(3))
    );
    let items = bulk.body["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], 201);
    assert_eq!(items[0]["link"]["rules"].as_array().unwrap().len(), 2);
    assert_eq!(items[4]["link"]["android"], "https://play.example/");
    for (index, code, field) in [
        (1, "invalid_rule", "rules[1].conditions[0].value"),
        (2, "destination_is_short_link", "variants[0].url"),
        (3, "invalid_card", "card.image"),
    ] {
        let item = &items[index];
        assert_eq!(item["status"], 400, "{item}");
        assert_eq!(item["link"], Value::Null, "{item}");
        assert_eq!(item["error"]["code"], code, "{item}");
        assert_eq!(item["error"]["field"], field, "{item}");
    }
}

/// The changes after `version` that the engines read.
fn changes_after(test: &TestControl, version: u64) -> Vec<Value> {
    let engine = ApiClient::new(&test.base_url(), Some(test.control().cluster_token()));
    let page = engine.get(&format!("/internal/v1/changes?after={version}"));
    assert_eq!(page.status, 200, "{}", page.text);
    page.body["changes"].as_array().unwrap().clone()
}

#[test]
fn the_change_log_carries_the_extensions_to_engines() {
    let test = TestControl::start();
    let api = test.client();
    let before = test.control().store().latest_version();
    let created = api.post("/api/v1/links", &full_body());
    assert_eq!(created.status, 201, "{}", created.text);
    let changes = changes_after(&test, before);
    assert_eq!(changes.len(), 1);
    let link = &changes[0]["link"];
    assert_eq!(changes[0]["op"], "upsert");
    assert_eq!(link["id"], created.body["id"]);
    let extensions = &link["extensions"];
    assert_eq!(extensions["rules"], created.body["rules"]);
    assert_eq!(extensions["variants"], full_body()["variants"]);
    assert_eq!(extensions["fallback_url"], "https://example.com/gone");
    assert_eq!(extensions["card"], full_body()["card"]);
    assert_eq!(extensions["ios"], full_body()["ios"]);
    assert_eq!(extensions["android"], full_body()["android"]);

    let version = test.control().store().latest_version();
    let path = format!("/api/v1/links/{}", created.body["id"]);
    let cleared = api.patch(&path, &json!({"rules": null, "card": null}));
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    let changes = changes_after(&test, version);
    assert_eq!(changes.len(), 1);
    let extensions = &changes[0]["link"]["extensions"];
    assert_eq!(extensions["rules"], json!([]));
    assert_eq!(extensions["card"], Value::Null);
    assert_eq!(
        extensions["variants"],
        full_body()["variants"],
        "the rest stays"
    );
    assert_eq!(extensions["ios"], full_body()["ios"]);
}

#[test]
fn the_openapi_document_describes_behaviour_with_its_limits() {
    let test = TestControl::start();
    let document = ApiClient::new(&test.base_url(), None).get("/api/v1/openapi.json");
    assert_eq!(document.status, 200);
    let schemas = &document.body["components"]["schemas"];
    for body in ["CreateLink", "PatchLink"] {
        let properties = &schemas[body]["properties"];
        assert_eq!(properties["rules"]["maxItems"], 32, "{body}");
        assert_eq!(
            properties["rules"]["items"]["$ref"],
            "#/components/schemas/Rule"
        );
        assert_eq!(properties["variants"]["minItems"], 2, "{body}");
        assert_eq!(properties["variants"]["maxItems"], 8, "{body}");
        for url in ["fallback_url", "ios", "android"] {
            assert_eq!(properties[url]["format"], "uri", "{body} {url}");
        }
        assert!(
            properties["card"]
                .to_string()
                .contains("#/components/schemas/Card")
        );
    }
    let rule = &schemas["Rule"];
    assert_eq!(rule["properties"]["conditions"]["minItems"], 1);
    assert_eq!(rule["properties"]["conditions"]["maxItems"], 16);
    assert_eq!(rule["additionalProperties"], false);
    let weight = &schemas["Variant"]["properties"]["weight"];
    assert_eq!(
        (weight["minimum"].as_u64(), weight["maximum"].as_u64()),
        (Some(0), Some(100))
    );
    assert_eq!(schemas["Card"]["properties"]["title"]["maxLength"], 75);
    assert_eq!(
        schemas["Card"]["properties"]["description"]["maxLength"],
        250
    );
    let types: Vec<&str> = schemas["Condition"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alternative| {
            alternative["properties"]["type"]["enum"][0]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        types,
        [
            "device",
            "os",
            "browser",
            "language",
            "country",
            "city",
            "query-param",
            "any-value-query-param",
            "valueless-query-param",
            "ip",
            "after",
            "before",
            "schedule"
        ]
    );
    assert_eq!(
        schemas["ConditionView"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        13
    );
    let view = &schemas["LinkView"]["properties"];
    assert_eq!(
        view["rules"]["items"]["$ref"],
        "#/components/schemas/RuleView"
    );
    assert!(
        view["card"]
            .to_string()
            .contains("#/components/schemas/CardView")
    );
}

#[test]
fn every_documented_condition_example_is_accepted() {
    let test = TestControl::start();
    let api = test.client();
    let document = ApiClient::new(&test.base_url(), None).get("/api/v1/openapi.json");
    let schemas = &document.body["components"]["schemas"];
    let schedule = json!({"timezone": schemas["Schedule"]["properties"]["timezone"]["examples"][0],
                          "days": ["mon"], "from": "09:00", "to": "17:00"});
    let mut conditions = Vec::new();
    for alternative in schemas["Condition"]["oneOf"].as_array().unwrap() {
        let properties = &alternative["properties"];
        let mut condition = json!({"type": properties["type"]["enum"][0]});
        if properties.get("key").is_some() {
            condition["key"] = json!("ref");
        }
        let value = &properties["value"];
        let example = value["examples"][0]
            .as_str()
            .or_else(|| value["enum"][0].as_str());
        match (example, value["$ref"].as_str()) {
            (Some(example), _) => condition["value"] = json!(example),
            (None, Some(_)) => condition["value"] = schedule.clone(),
            (None, None) => {}
        }
        conditions.push(condition);
    }
    assert_eq!(conditions.len(), 13);
    // One rule per condition, so each is checked on its own.
    let rules: Vec<Value> = conditions
        .iter()
        .map(|condition| rule("https://example.com/r", json!([condition])))
        .collect();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/", "rules": rules,
                "variants": [schemas["Variant"]["examples"][0], {"url": "https://example.com/b", "weight": 50}],
                "card": schemas["Card"]["examples"][0],
                "fallback_url": schemas["CreateLink"]["properties"]["fallback_url"]["examples"][0]}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["rules"].as_array().unwrap().len(), 13);
}
