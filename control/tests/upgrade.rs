//! Upgrading in place: the control plane starts on a store written by the
//! release before workspaces (`tests/fixtures/store-2026-12-01.tar.gz`, see
//! its README) without creating a new key or owner; the old admin and
//! read-only keys keep working with their scopes; the first owner signs in
//! with the old password and owns the default workspace, which holds the old
//! links (the deleted one included), domain and keys; a new workspace sees
//! none of them; and a second start changes nothing (nothing is migrated twice).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ricochet_control::test_util::{ApiClient, ApiResponse};
use ricochet_control::{ControlConfig, ControlPlane};
use ricochet_model::bus::LocalBus;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The fixture's secrets (from its README).
const ADMIN_KEY: &str = "rk_fmq9sAUi0IVo_h7vY6uWZNtbU4zn4icqgimFqHClgDU6GyTpBjqNh";
const ADMIN_KEY_ID: &str = "fmq9sAUi0IVo";
const CI_KEY: &str = "rk_zhmz0BnIISsL_F3UFbXP56HQI2Nla1gI533uLby79R7rOPF0Jaa54";
const CI_KEY_ID: &str = "zhmz0BnIISsL";
const OWNER_EMAIL: &str = "owner@ricochet.local";
const OWNER_PASSWORD: &str = "rhPfwK4Y5xdzyzKkUEbcVuPC";

/// The old store, extracted into a temporary directory.
struct OldStore {
    _dir: TempDir,
    data_dir: PathBuf,
}

impl OldStore {
    fn extract() -> Self {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-2026-12-01.tar.gz");
        let dir = tempfile::tempdir().expect("temporary directory");
        let data_dir = dir.path().join("control");
        std::fs::create_dir(&data_dir).unwrap();
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&fixture)
            .arg("-C")
            .arg(&data_dir)
            .status()
            .expect("tar runs");
        assert!(status.success(), "tar -xzf {} failed", fixture.display());
        Self {
            _dir: dir,
            data_dir,
        }
    }

    /// Starts a control plane on the store; it must create no key and no owner.
    fn start(&self) -> ControlPlane {
        let mut config = ControlConfig::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.workers = 1;
        config.storage.data_dir = self.data_dir.clone();
        let control = ControlPlane::start(config, Arc::new(LocalBus::new()))
            .expect("starts on the old store");
        assert!(
            control.bootstrap_key().is_none(),
            "no new bootstrap key on an existing store"
        );
        assert!(
            control.first_owner().is_none(),
            "no new owner on a store that has one"
        );
        control
    }
}

fn base(control: &ControlPlane) -> String {
    format!("http://{}", control.addr())
}

fn admin_key(control: &ControlPlane) -> ApiClient {
    ApiClient::new(&base(control), Some(ADMIN_KEY))
}

/// The first owner, signed in with the old password.
fn signed_in_owner(control: &ControlPlane) -> ApiClient {
    let anonymous = ApiClient::new(&base(control), None);
    let answer = anonymous.post(
        "/api/v1/auth/sign-in",
        &json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    anonymous.signed_in(&answer)
}

fn ok(response: ApiResponse) -> Value {
    assert!(
        (200..300).contains(&response.status),
        "{} {}",
        response.status,
        response.text
    );
    response.body
}

fn links(client: &ApiClient, query: &str) -> Vec<Value> {
    ok(client.get(&format!("/api/v1/links?limit=10{query}")))["links"]
        .as_array()
        .unwrap()
        .clone()
}

fn by_code<'a>(links: &'a [Value], code: &str) -> &'a Value {
    links
        .iter()
        .find(|l| l["code"] == code)
        .unwrap_or_else(|| panic!("no link {code} in {links:?}"))
}

fn domain_names(client: &ApiClient) -> Vec<String> {
    ok(client.get("/api/v1/domains"))["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap().to_owned())
        .collect()
}

fn key_ids(client: &ApiClient) -> Vec<String> {
    ok(client.get("/api/v1/keys"))["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_error(response: &ApiResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.error_code(), code, "{}", response.text);
}

#[test]
fn the_old_keys_links_and_domains_keep_working() {
    let store = OldStore::extract();
    let control = store.start();
    let admin = admin_key(&control);

    let all = links(&admin, "");
    assert_eq!(all.len(), 3, "{all:?}");
    let one = by_code(&all, "one");
    assert_eq!(one["domain"], "localhost");
    assert_eq!(one["title"], "First");
    assert_eq!(one["tags"], json!(["a"]));
    assert_eq!(one["state"], "active");
    let two = by_code(&all, "two");
    assert_eq!(two["domain"], "go.example.com");
    assert_eq!(two["state"], "active");
    let three = by_code(&all, "three");
    assert_eq!(three["domain"], "localhost");
    assert_eq!(three["state"], "deleted");
    let deleted = links(&admin, "&state=deleted");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["code"], "three");
    let on_go = links(&admin, "&domain=go.example.com");
    assert_eq!(on_go.len(), 1, "{on_go:?}");
    assert_eq!(on_go[0]["code"], "two");
    let read = ok(admin.get(&format!("/api/v1/links/{}", one["id"])));
    assert_eq!(&read, one);

    let domains = domain_names(&admin);
    for domain in ["go.example.com", "localhost"] {
        assert!(domains.iter().any(|d| d == domain), "{domains:?}");
    }
    // A domain registered before verification existed counts as verified
    // (this control plane runs with DNS verification, the default).
    let go = ok(admin.get("/api/v1/domains/go.example.com"));
    assert_eq!(go["verification"]["status"], "verified", "{go}");
    assert_eq!(go["verification"]["method"], "existing", "{go}");
    let workspaces = ok(admin.get("/api/v1/workspaces"));
    assert_eq!(
        workspaces["workspaces"].as_array().unwrap().len(),
        1,
        "{workspaces}"
    );
    assert_eq!(workspaces["workspaces"][0]["id"], "default", "{workspaces}");

    // The admin key still writes, in the default workspace.
    let four = admin.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/four", "domain": "go.example.com", "code": "four"}),
    );
    assert_eq!(four.status, 201, "{}", four.text);
    let taken = admin.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/again", "code": "one"}),
    );
    assert_error(&taken, 409, "code_taken");

    // The ci key reads and is refused writes.
    let ci = ApiClient::new(&base(&control), Some(CI_KEY));
    let seen = links(&ci, "");
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_error(
        &ci.post("/api/v1/links", &json!({"url": "https://example.com/ci"})),
        403,
        "insufficient_scope",
    );
    assert_error(
        &ci.patch(
            &format!("/api/v1/links/{}", one["id"]),
            &json!({"title": "changed"}),
        ),
        403,
        "insufficient_scope",
    );
    assert_error(
        &ci.delete(&format!("/api/v1/links/{}", two["id"])),
        403,
        "insufficient_scope",
    );
    assert_error(
        &ci.post("/api/v1/domains", &json!({"domain": "ci.example.com"})),
        403,
        "insufficient_scope",
    );
    assert_error(&ci.get("/api/v1/keys"), 403, "insufficient_scope");
    assert_eq!(ok(admin.get(&format!("/api/v1/links/{}", one["id"]))), read);
}

#[test]
fn the_first_owner_owns_the_default_workspace_and_everything_in_it() {
    let store = OldStore::extract();
    let control = store.start();
    let owner = signed_in_owner(&control);

    let session = ok(owner.get("/api/v1/auth/session"));
    assert_eq!(session["user"]["email"], OWNER_EMAIL);
    assert_eq!(session["workspace"]["id"], "default", "{session}");
    let workspaces = ok(owner.get("/api/v1/workspaces"));
    let list = workspaces["workspaces"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{workspaces}");
    assert_eq!(list[0]["id"], "default");
    assert_eq!(list[0]["role"], "owner");
    assert!(list[0]["deleted_at"].is_null(), "{workspaces}");
    let members = ok(owner.get("/api/v1/workspaces/default/members"));
    let members = members["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["email"], OWNER_EMAIL);
    assert_eq!(members[0]["role"], "owner");

    // The session sees what the old admin key sees.
    let by_owner = links(&owner, "");
    assert_eq!(by_owner.len(), 3, "{by_owner:?}");
    assert_eq!(by_owner, links(&admin_key(&control), ""));
    assert_eq!(by_code(&by_owner, "three")["state"], "deleted");
    let domains = domain_names(&owner);
    assert!(domains.iter().any(|d| d == "go.example.com"), "{domains:?}");

    let keys = ok(owner.get("/api/v1/keys"));
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ci = keys
        .iter()
        .find(|k| k["id"] == CI_KEY_ID)
        .expect("the ci key");
    assert_eq!(ci["name"], "ci");
    assert_eq!(ci["scopes"], json!(["links:read"]));
    assert!(ci["revoked_at"].is_null());
    let bootstrap = keys
        .iter()
        .find(|k| k["id"] == ADMIN_KEY_ID)
        .expect("the bootstrap key");
    assert_eq!(bootstrap["scopes"], json!(["admin"]));
    assert!(bootstrap["revoked_at"].is_null());

    // A new workspace holds none of the old links, domains or keys.
    let fresh = owner.post("/api/v1/workspaces", &json!({"name": "Fresh"}));
    assert_eq!(fresh.status, 201, "{}", fresh.text);
    let fresh_id = fresh.body["id"].as_str().unwrap().to_owned();
    assert_ne!(fresh_id, "default");
    let switched = owner.post(&format!("/api/v1/workspaces/{fresh_id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    assert_eq!(links(&owner, ""), Vec::<Value>::new());
    for link in &by_owner {
        assert_error(
            &owner.get(&format!("/api/v1/links/{}", link["id"])),
            404,
            "not_found",
        );
    }
    assert_eq!(domain_names(&owner), vec!["localhost".to_owned()]);
    assert_eq!(key_ids(&owner), Vec::<String>::new());
    assert_error(
        &owner.post(
            "/api/v1/links",
            &json!({"url": "https://example.com/x", "domain": "go.example.com"}),
        ),
        422,
        "unknown_domain",
    );
    // The old keys stay in the default workspace.
    assert_error(
        &admin_key(&control).get(&format!("/api/v1/workspaces/{fresh_id}")),
        404,
        "not_found",
    );
    assert_eq!(links(&admin_key(&control), "").len(), 3);
}

/// What the admin key and the owner read, to compare across starts.
fn state(control: &ControlPlane) -> Vec<(&'static str, Value)> {
    let admin = admin_key(control);
    let owner = signed_in_owner(control);
    vec![
        ("links", json!(links(&admin, ""))),
        ("domains", ok(admin.get("/api/v1/domains"))),
        ("keys", ok(admin.get("/api/v1/keys"))),
        ("workspaces", ok(owner.get("/api/v1/workspaces"))),
        (
            "members",
            ok(owner.get("/api/v1/workspaces/default/members")),
        ),
    ]
}

#[test]
fn a_second_start_changes_nothing() {
    let store = OldStore::extract();
    let control = store.start();
    // Written after the upgrade: a workspace of its own with a link in it.
    let owner = signed_in_owner(&control);
    let fresh = owner.post("/api/v1/workspaces", &json!({"name": "Fresh"}));
    assert_eq!(fresh.status, 201, "{}", fresh.text);
    let fresh_id = fresh.body["id"].as_str().unwrap().to_owned();
    let switched = owner.post(&format!("/api/v1/workspaces/{fresh_id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    let made = owner.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/fresh"}),
    );
    assert_eq!(made.status, 201, "{}", made.text);
    let first = state(&control);
    assert_eq!(first[0].1.as_array().unwrap().len(), 3, "{}", first[0].1);
    control.shutdown();

    let again = store.start();
    let second = state(&again);
    for ((what, was), (_, is)) in first.iter().zip(&second) {
        assert_eq!(was, is, "{what} changed across a restart");
    }
    let admin = admin_key(&again);
    assert_eq!(links(&admin, "").len(), 3);
    assert_eq!(
        key_ids(&admin),
        vec![ADMIN_KEY_ID.to_owned(), CI_KEY_ID.to_owned()]
    );
    let ci = ApiClient::new(&base(&again), Some(CI_KEY));
    assert_eq!(links(&ci, "").len(), 3);
    // The new workspace and its link are still its own.
    let owner = signed_in_owner(&again);
    let switched = owner.post(&format!("/api/v1/workspaces/{fresh_id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    let fresh_links = links(&owner, "");
    assert_eq!(fresh_links.len(), 1, "{fresh_links:?}");
    assert_eq!(fresh_links[0]["id"], made.body["id"]);
    assert_eq!(fresh_links[0]["url"], "https://example.com/fresh");
}
