//! Workspaces over real HTTP: creating and switching, invitations (single
//! use, for the invited email only, new users signing up through them),
//! roles deciding what members may do, API keys managed over the API and
//! acting for their creator, a removed member's sessions and keys stopping at
//! once, and soft deletion that suspends a workspace's links until it is
//! restored.

use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl};
use serde_json::{Value, json};

const PASSWORD: &str = "orchard-velvet-93";

fn assert_error(response: &ApiResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.error_code(), code, "{}", response.text);
    assert!(
        response.body["error"].get("field").is_some(),
        "{}",
        response.text
    );
}

fn anonymous(test: &TestControl) -> ApiClient {
    ApiClient::new(&test.base_url(), None)
}

/// Invites `email` into `workspace` as `role` and accepts as a new user;
/// returns their signed-in client and user id.
fn join(
    test: &TestControl,
    inviter: &ApiClient,
    workspace: &str,
    email: &str,
    role: &str,
) -> (ApiClient, String) {
    let invited = inviter.post(
        &format!("/api/v1/workspaces/{workspace}/invitations"),
        &json!({"email": email, "role": role}),
    );
    assert_eq!(invited.status, 201, "{}", invited.text);
    let token = invited.body["token"].as_str().unwrap();
    let accepted = anonymous(test).post(
        "/api/v1/invitations/accept",
        &json!({"token": token, "display_name": "Invitee", "password": PASSWORD}),
    );
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.body["workspace"]["id"], workspace);
    assert_eq!(accepted.body["workspace"]["role"], role);
    let user_id = accepted.body["session"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = anonymous(test)
        .signed_in(&accepted)
        .with_csrf(accepted.body["session"]["csrf_token"].as_str());
    (client, user_id)
}

fn create_link(client: &ApiClient, code: &str) -> ApiResponse {
    client.post(
        "/api/v1/links",
        &json!({"url": format!("https://example.com/{code}"), "code": code}),
    )
}

fn codes(list: &ApiResponse) -> Vec<String> {
    assert_eq!(list.status, 200, "{}", list.text);
    list.body["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_user_creates_and_switches_workspaces_and_each_keeps_its_own_links() {
    let test = TestControl::start();
    let owner = test.owner_client();
    let session = owner.get("/api/v1/auth/session");
    assert_eq!(session.body["workspace"]["id"], "default");
    assert_eq!(session.body["workspace"]["role"], "owner");
    assert_eq!(create_link(&owner, "in-default").status, 201);

    let created = owner.post("/api/v1/workspaces", &json!({"name": "  Side project "}));
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["name"], "Side project");
    assert_eq!(created.body["role"], "owner");
    let side = created.body["id"].as_str().unwrap().to_owned();
    let listed = owner.get("/api/v1/workspaces");
    let names: Vec<&str> = listed.body["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Default", "Side project"]);

    let switched = owner.post(&format!("/api/v1/workspaces/{side}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    assert_eq!(switched.body["workspace"]["id"], side.as_str());
    assert!(codes(&owner.get("/api/v1/links")).is_empty());
    assert_eq!(create_link(&owner, "in-side").status, 201);
    assert_eq!(codes(&owner.get("/api/v1/links")), ["in-side"]);
    // The bootstrap admin key stays in the default workspace.
    assert_eq!(codes(&test.client().get("/api/v1/links")), ["in-default"]);
    // Codes stay unique per domain across workspaces.
    assert_error(&create_link(&owner, "in-default"), 409, "code_taken");

    assert_error(
        &owner.post("/api/v1/workspaces", &json!({"name": ""})),
        400,
        "invalid_name",
    );
    assert_error(
        &owner.post("/api/v1/workspaces/nope/switch", &json!({})),
        404,
        "not_found",
    );
    let renamed = owner.patch(
        &format!("/api/v1/workspaces/{side}"),
        &json!({"name": "Renamed"}),
    );
    assert_eq!(renamed.body["name"], "Renamed", "{}", renamed.text);
    // Keys cannot create workspaces: that takes a signed-in user.
    assert_eq!(
        test.client()
            .post("/api/v1/workspaces", &json!({"name": "x"}))
            .status,
        401
    );
}

#[test]
fn invitations_are_single_use_for_the_invited_email_and_expire() {
    let test = TestControl::start();
    let owner = test.owner_client();
    let invited = owner.post(
        "/api/v1/workspaces/default/invitations",
        &json!({"email": "Friend@Example.com", "role": "viewer"}),
    );
    assert_eq!(invited.status, 201, "{}", invited.text);
    let token = invited.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("inv_"));
    assert_eq!(invited.body["url"], format!("/console/invite#{token}"));
    assert_eq!(invited.body["invitation"]["email"], "friend@example.com");
    let pending = owner.get("/api/v1/workspaces/default/invitations");
    assert_eq!(pending.body["invitations"].as_array().unwrap().len(), 1);
    assert!(!pending.text.contains(&token), "the token is shown once");

    let preview = anonymous(&test).post("/api/v1/invitations/preview", &json!({"token": token}));
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(preview.body["workspace_name"], "Default");
    assert_eq!(preview.body["role"], "viewer");
    assert_eq!(preview.body["has_account"], false);

    // A weak password is refused and uses nothing up.
    assert_error(
        &anonymous(&test).post(
            "/api/v1/invitations/accept",
            &json!({"token": token, "display_name": "Friend", "password": "password123"}),
        ),
        400,
        "weak_password",
    );
    // Someone else, signed in, cannot take it.
    let stranger_invite = owner.post(
        "/api/v1/workspaces/default/invitations",
        &json!({"email": "stranger@example.com", "role": "member"}),
    );
    let stranger_token = stranger_invite.body["token"].as_str().unwrap();
    let other = owner.post("/api/v1/workspaces", &json!({"name": "Other"}));
    let other_id = other.body["id"].as_str().unwrap();
    let (stranger, _) = join(&test, &owner, other_id, "stranger@example.com", "member");
    assert_error(
        &stranger.post("/api/v1/invitations/accept", &json!({"token": token})),
        403,
        "invitation_for_another_user",
    );
    // Signed in as the invited user, the token alone joins and switches.
    let joined = stranger.post(
        "/api/v1/invitations/accept",
        &json!({"token": stranger_token}),
    );
    assert_eq!(joined.status, 200, "{}", joined.text);
    assert_eq!(joined.body["session"]["workspace"]["id"], "default");
    assert_eq!(
        stranger.get("/api/v1/auth/session").body["workspace"]["id"],
        "default"
    );

    let accepted = anonymous(&test).post(
        "/api/v1/invitations/accept",
        &json!({"token": token, "display_name": "Friend", "password": PASSWORD}),
    );
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert!(accepted.session_cookie().is_some());
    let again = anonymous(&test).post(
        "/api/v1/invitations/accept",
        &json!({"token": token, "display_name": "Friend", "password": PASSWORD}),
    );
    assert_error(&again, 404, "invalid_invitation");
    assert_error(
        &anonymous(&test).post("/api/v1/invitations/preview", &json!({"token": token})),
        404,
        "invalid_invitation",
    );
    // The new user signs in like anyone else.
    let signed_in = anonymous(&test).post(
        "/api/v1/auth/sign-in",
        &json!({"email": "friend@example.com", "password": PASSWORD}),
    );
    assert_eq!(
        signed_in.body["workspace"]["role"], "viewer",
        "{}",
        signed_in.text
    );

    // An existing member cannot be invited again; bad emails and roles are refused.
    assert_error(
        &owner.post(
            "/api/v1/workspaces/default/invitations",
            &json!({"email": "friend@example.com", "role": "member"}),
        ),
        409,
        "already_member",
    );
    assert_error(
        &owner.post(
            "/api/v1/workspaces/default/invitations",
            &json!({"email": "not an email", "role": "member"}),
        ),
        400,
        "invalid_email",
    );
    assert_error(
        &owner.post(
            "/api/v1/workspaces/default/invitations",
            &json!({"email": "a@example.com", "role": "emperor"}),
        ),
        400,
        "invalid_role",
    );
    // A revoked invitation stops working.
    let revoked = owner.post(
        "/api/v1/workspaces/default/invitations",
        &json!({"email": "late@example.com", "role": "member"}),
    );
    let revoked_id = revoked.body["invitation"]["id"].as_str().unwrap();
    assert_eq!(
        owner
            .delete(&format!(
                "/api/v1/workspaces/default/invitations/{revoked_id}"
            ))
            .status,
        204
    );
    assert_error(
        &anonymous(&test).post(
            "/api/v1/invitations/preview",
            &json!({"token": revoked.body["token"]}),
        ),
        404,
        "invalid_invitation",
    );
}

#[test]
fn an_expired_invitation_is_refused() {
    let test = TestControl::start_with(
        |config| config.accounts.invitation_ttl = std::time::Duration::from_secs(60),
        std::sync::Arc::new(ricochet_model::bus::LocalBus::new()),
    );
    let store = test.control().store().clone();
    let owner = test.owner_client();
    let invited = owner.post(
        "/api/v1/workspaces/default/invitations",
        &json!({"email": "late@example.com", "role": "member"}),
    );
    let id = invited.body["invitation"]["id"].as_str().unwrap();
    // Age the invitation in the store rather than waiting a minute.
    let mut record = store.invitation(id).unwrap().unwrap();
    record.expires_at = ricochet_model::now_millis() - 1;
    store.put_invitation(&record).unwrap();
    assert_error(
        &anonymous(&test).post(
            "/api/v1/invitations/accept",
            &json!({"token": invited.body["token"], "display_name": "L", "password": PASSWORD}),
        ),
        404,
        "invalid_invitation",
    );
    assert!(
        owner.get("/api/v1/workspaces/default/invitations").body["invitations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn roles_decide_what_members_may_do() {
    let test = TestControl::start();
    let owner = test.owner_client();
    let (viewer, viewer_id) = join(&test, &owner, "default", "viewer@example.com", "viewer");
    let (member, member_id) = join(&test, &owner, "default", "member@example.com", "member");
    let (admin, admin_id) = join(&test, &owner, "default", "admin@example.com", "admin");

    assert_eq!(create_link(&member, "by-member").status, 201);
    assert_eq!(codes(&viewer.get("/api/v1/links")), ["by-member"]);
    assert_error(
        &create_link(&viewer, "by-viewer"),
        403,
        "insufficient_scope",
    );
    assert_error(
        &viewer.post("/api/v1/domains", &json!({"domain": "v.example"})),
        403,
        "insufficient_scope",
    );
    assert_eq!(
        member
            .post("/api/v1/domains", &json!({"domain": "m.example"}))
            .status,
        201
    );
    assert_error(&member.get("/api/v1/keys"), 403, "insufficient_scope");
    assert_error(
        &member.post(
            "/api/v1/workspaces/default/invitations",
            &json!({"email": "x@example.com", "role": "viewer"}),
        ),
        403,
        "insufficient_scope",
    );
    assert_eq!(admin.get("/api/v1/keys").status, 200);

    // Admins manage members but not owners.
    let promoted = admin.patch(
        &format!("/api/v1/workspaces/default/members/{viewer_id}"),
        &json!({"role": "member"}),
    );
    assert_eq!(promoted.body["role"], "member", "{}", promoted.text);
    assert_eq!(create_link(&viewer, "now-allowed").status, 201);
    let owner_id = owner.get("/api/v1/auth/session").body["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        &admin.patch(
            &format!("/api/v1/workspaces/default/members/{owner_id}"),
            &json!({"role": "viewer"}),
        ),
        403,
        "insufficient_role",
    );
    assert_error(
        &admin.patch(
            &format!("/api/v1/workspaces/default/members/{member_id}"),
            &json!({"role": "owner"}),
        ),
        403,
        "insufficient_role",
    );
    assert_error(
        &admin.delete(&format!("/api/v1/workspaces/default/members/{owner_id}")),
        403,
        "insufficient_role",
    );
    assert_error(
        &admin.delete("/api/v1/workspaces/default"),
        403,
        "insufficient_role",
    );
    // The last owner stays an owner.
    assert_error(
        &owner.patch(
            &format!("/api/v1/workspaces/default/members/{owner_id}"),
            &json!({"role": "admin"}),
        ),
        409,
        "last_owner",
    );
    assert_error(
        &owner.delete(&format!("/api/v1/workspaces/default/members/{owner_id}")),
        409,
        "last_owner",
    );
    let members = owner.get("/api/v1/workspaces/default/members");
    let roles: Vec<(&str, &str)> = members.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("owner@ricochet.local", "owner"),
            ("viewer@example.com", "member"),
            ("member@example.com", "member"),
            ("admin@example.com", "admin"),
        ]
    );
    // A member leaves on their own.
    assert_eq!(
        member
            .delete(&format!("/api/v1/workspaces/default/members/{member_id}"))
            .status,
        204
    );
    let _ = admin_id;
}

#[test]
fn keys_are_managed_over_the_api_and_act_for_their_creator() {
    let test = TestControl::start();
    let owner = test.owner_client();
    let (admin, admin_id) = join(&test, &owner, "default", "admin@example.com", "admin");
    let created = admin.post(
        "/api/v1/keys",
        &json!({"name": "deploys", "scopes": ["links:read", "links:write"]}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let key_id = created.body["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["key"]["created_by"], admin_id.as_str());
    let listed = owner.get("/api/v1/keys");
    assert!(listed.text.contains(&key_id));
    assert!(
        !listed.text.contains(&token[16..]),
        "the secret is shown once"
    );
    let by_key = ApiClient::new(&test.base_url(), Some(&token));
    assert_eq!(create_link(&by_key, "by-key").status, 201);
    assert_error(&by_key.get("/api/v1/keys"), 403, "insufficient_scope");

    // Scopes beyond the key's own, unknown scopes, and empty names are refused.
    let admin_key = admin.post(
        "/api/v1/keys",
        &json!({"name": "admin", "scopes": ["admin"]}),
    );
    assert_eq!(admin_key.status, 201, "{}", admin_key.text);
    let limited = ApiClient::new(&test.base_url(), Some(&token));
    assert_eq!(
        limited
            .post(
                "/api/v1/keys",
                &json!({"name": "x", "scopes": ["links:read"]})
            )
            .status,
        403
    );
    assert_error(
        &admin.post("/api/v1/keys", &json!({"name": "x", "scopes": ["root"]})),
        400,
        "invalid_scope",
    );
    assert_error(
        &admin.post("/api/v1/keys", &json!({"name": " ", "scopes": ["admin"]})),
        400,
        "invalid_name",
    );

    // Demoting the creator narrows their keys at once.
    let demoted = owner.patch(
        &format!("/api/v1/workspaces/default/members/{admin_id}"),
        &json!({"role": "viewer"}),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.text);
    assert_error(
        &create_link(&by_key, "after-demotion"),
        403,
        "insufficient_scope",
    );
    assert_eq!(by_key.get("/api/v1/links").status, 200);

    // Revoking stops a key at once.
    let revoked = owner.delete(&format!("/api/v1/keys/{key_id}"));
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.body["revoked_at"].is_string());
    assert_error(&by_key.get("/api/v1/links"), 401, "invalid_api_key");
    assert_error(&owner.delete("/api/v1/keys/nope"), 404, "not_found");
}

#[test]
fn a_removed_member_loses_sessions_and_keys_at_once() {
    let test = TestControl::start();
    let owner = test.owner_client();
    let (member, member_id) = join(&test, &owner, "default", "member@example.com", "admin");
    let key = member.post(
        "/api/v1/keys",
        &json!({"name": "mine", "scopes": ["links:read"]}),
    );
    let by_key = ApiClient::new(&test.base_url(), Some(key.body["token"].as_str().unwrap()));
    assert_eq!(member.get("/api/v1/links").status, 200);
    assert_eq!(by_key.get("/api/v1/links").status, 200);

    let removed = owner.delete(&format!("/api/v1/workspaces/default/members/{member_id}"));
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_error(
        &member.get("/api/v1/links"),
        403,
        "workspace_access_revoked",
    );
    assert_error(
        &create_link(&member, "after"),
        403,
        "workspace_access_revoked",
    );
    assert_error(&by_key.get("/api/v1/links"), 401, "invalid_api_key");
    assert_error(
        &member.get("/api/v1/workspaces/default/members"),
        404,
        "not_found",
    );
    let keys = owner.get("/api/v1/keys");
    let mine = keys.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "mine")
        .unwrap();
    assert!(mine["revoked_at"].is_string(), "{mine}");
    // They can still sign in, see they belong nowhere, and make a workspace.
    let listed = member.get("/api/v1/workspaces");
    assert_eq!(listed.body["workspaces"], json!([]), "{}", listed.text);
    let own = member.post("/api/v1/workspaces", &json!({"name": "Mine"}));
    let own_id = own.body["id"].as_str().unwrap();
    assert_eq!(
        member
            .post(&format!("/api/v1/workspaces/{own_id}/switch"), &json!({}))
            .status,
        200
    );
    assert!(codes(&member.get("/api/v1/links")).is_empty());
}

#[test]
fn deleting_a_workspace_suspends_it_until_it_is_restored() {
    let test = TestControl::start();
    let owner = test.owner_client();
    let created = owner.post("/api/v1/workspaces", &json!({"name": "Campaign"}));
    let id = created.body["id"].as_str().unwrap().to_owned();
    owner.post(&format!("/api/v1/workspaces/{id}/switch"), &json!({}));
    let live = create_link(&owner, "spring");
    let paused = create_link(&owner, "paused");
    let paused_id = paused.body["id"].as_u64().unwrap();
    owner.patch(
        &format!("/api/v1/links/{paused_id}"),
        &json!({"state": "disabled"}),
    );
    let key = owner.post(
        "/api/v1/keys",
        &json!({"name": "campaign", "scopes": ["links:read"]}),
    );
    let by_key = ApiClient::new(&test.base_url(), Some(key.body["token"].as_str().unwrap()));
    assert_eq!(by_key.get("/api/v1/links").status, 200);

    let deleted = owner.delete(&format!("/api/v1/workspaces/{id}"));
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert!(deleted.body["deleted_at"].is_string());
    assert!(deleted.body["restorable_until"].is_string());
    assert_error(&by_key.get("/api/v1/links"), 401, "invalid_api_key");
    assert_error(&owner.get("/api/v1/links"), 403, "workspace_access_revoked");
    let store = test.control().store().clone();
    let state = |id: u64| store.link(id).unwrap().unwrap().state;
    let live_id = live.body["id"].as_u64().unwrap();
    assert_eq!(state(live_id), ricochet_model::LinkState::Deleted);
    assert_eq!(state(paused_id), ricochet_model::LinkState::Deleted);
    // Its owner still sees it, as deleted, and restores it.
    let listed = owner.get("/api/v1/workspaces");
    let campaign: &Value = listed.body["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == id.as_str())
        .unwrap();
    assert!(campaign["deleted_at"].is_string());
    let restored = owner.post(&format!("/api/v1/workspaces/{id}/restore"), &json!({}));
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert!(restored.body["deleted_at"].is_null());
    assert_eq!(state(live_id), ricochet_model::LinkState::Active);
    assert_eq!(state(paused_id), ricochet_model::LinkState::Disabled);
    assert_eq!(by_key.get("/api/v1/links").status, 200);
    assert_eq!(
        codes(&owner.get("/api/v1/links?sort=code")),
        ["paused", "spring"]
    );
    assert_error(
        &owner.post(&format!("/api/v1/workspaces/{id}/restore"), &json!({})),
        409,
        "not_deleted",
    );
}
