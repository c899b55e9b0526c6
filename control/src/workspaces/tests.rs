use std::sync::Arc;

use ricochet_model::{ChangeOp, LinkState};

use super::*;
use crate::accounts::{Accounts, SessionSettings};
use crate::service::{LinkChanges, LinkService, LinkSettings, NewLink};

const DAY: i64 = DAY_MS;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<ControlStore>,
    accounts: Accounts,
    workspaces: Workspaces,
    links: LinkService,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ControlStore::open(dir.path()).unwrap());
    let accounts = Accounts::new(
        store.clone(),
        SessionSettings {
            idle_timeout_ms: DAY,
            absolute_timeout_ms: 30 * DAY,
        },
    );
    let workspaces = Workspaces::new(store.clone(), WorkspaceSettings::default());
    // Domains these tests register take links at once (verification has its
    // own tests: control/tests/domain_verification.rs).
    let links = LinkService::new(
        store.clone(),
        LinkSettings::new("localhost", 7, 100, &[]).with_dns_verification(false),
    );
    links.register_default_domain(0).unwrap();
    World {
        _dir: dir,
        store,
        accounts,
        workspaces,
        links,
    }
}

fn user(world: &World, email: &str) -> UserRecord {
    world
        .accounts
        .create_user(email, "Someone", "tangerine-ladder-41", 1)
        .unwrap()
}

fn owner_of(user: &UserRecord) -> Actor {
    Actor {
        user_id: Some(user.id.clone()),
        role: Role::Owner,
    }
}

#[test]
fn roles_map_to_scopes() {
    assert!(role_allows(Role::Viewer, Scope::LinksRead));
    assert!(role_allows(Role::Viewer, Scope::AnalyticsRead));
    assert!(!role_allows(Role::Viewer, Scope::LinksWrite));
    assert!(role_allows(Role::Member, Scope::LinksWrite));
    assert!(role_allows(Role::Member, Scope::DomainsWrite));
    assert!(!role_allows(Role::Member, Scope::Admin));
    assert!(role_allows(Role::Admin, Scope::Admin));
}

#[test]
fn the_default_workspace_is_made_once_for_the_first_user() {
    let world = world();
    assert!(
        world.workspaces.ensure_default(5).unwrap().is_none(),
        "no user yet"
    );
    let first = user(&world, "first@example.com");
    world
        .accounts
        .create_user("second@example.com", "Second", "tangerine-ladder-41", 2)
        .unwrap();
    let created = world.workspaces.ensure_default(6).unwrap().unwrap();
    assert_eq!(created.id, DEFAULT_WORKSPACE);
    assert_eq!(
        world
            .workspaces
            .role_of(DEFAULT_WORKSPACE, &first.id)
            .unwrap(),
        Some(Role::Owner)
    );
    assert!(world.workspaces.ensure_default(7).unwrap().is_none());
}

#[test]
fn invitations_work_once_for_the_invited_email_until_they_expire() {
    let world = world();
    let owner = user(&world, "owner@example.com");
    let workspace = world.workspaces.create(&owner.id, "Team", 10).unwrap();
    let invited = world
        .workspaces
        .invite(
            &owner_of(&owner),
            &workspace.id,
            "New@Example.com",
            Role::Member,
            20,
        )
        .unwrap();
    assert_eq!(invited.invitation.email, "new@example.com");
    assert!(
        !invited
            .invitation
            .secret_hash
            .contains(&invited.token[21..])
    );

    let stranger = user(&world, "stranger@example.com");
    assert!(matches!(
        world.workspaces.accept(&invited.token, &stranger, 30),
        Err(WorkspaceError::InvitationForAnotherUser)
    ));
    let (new_user, joined, membership) = world
        .workspaces
        .accept_as_new_user(
            &world.accounts,
            &invited.token,
            "New",
            "orchard-velvet-93",
            30,
        )
        .unwrap();
    assert_eq!(joined.id, workspace.id);
    assert_eq!(membership.role, Role::Member);
    assert_eq!(new_user.email, "new@example.com");
    assert!(matches!(
        world.workspaces.accept(&invited.token, &new_user, 31),
        Err(WorkspaceError::InvitationInvalid)
    ));

    let late = world
        .workspaces
        .invite(
            &owner_of(&owner),
            &workspace.id,
            "stranger@example.com",
            Role::Viewer,
            40,
        )
        .unwrap();
    let expiry = late.invitation.expires_at;
    assert!(matches!(
        world.workspaces.accept(&late.token, &stranger, expiry),
        Err(WorkspaceError::InvitationInvalid)
    ));
    let mut forged = late.token.clone();
    forged.pop();
    forged.push(if late.token.ends_with('a') { 'b' } else { 'a' });
    assert!(matches!(
        world.workspaces.accept(&forged, &stranger, 41),
        Err(WorkspaceError::InvitationInvalid)
    ));
    world.workspaces.accept(&late.token, &stranger, 41).unwrap();
}

#[test]
fn admins_cannot_touch_owners_and_the_last_owner_stays() {
    let world = world();
    let owner = user(&world, "owner@example.com");
    let admin = user(&world, "admin@example.com");
    let workspace = world.workspaces.create(&owner.id, "Team", 10).unwrap();
    world
        .store
        .put_membership(&MembershipRecord {
            workspace_id: workspace.id.clone(),
            user_id: admin.id.clone(),
            role: Role::Admin,
            joined_at: 11,
        })
        .unwrap();
    let as_admin = Actor {
        user_id: Some(admin.id.clone()),
        role: Role::Admin,
    };
    assert!(matches!(
        world
            .workspaces
            .change_role(&as_admin, &workspace.id, &owner.id, Role::Viewer),
        Err(WorkspaceError::Forbidden(_))
    ));
    assert!(matches!(
        world
            .workspaces
            .invite(&as_admin, &workspace.id, "x@example.com", Role::Owner, 12),
        Err(WorkspaceError::Forbidden(_))
    ));
    assert!(matches!(
        world
            .workspaces
            .remove_member(&as_admin, &workspace.id, &owner.id, 12),
        Err(WorkspaceError::Forbidden(_))
    ));
    assert!(matches!(
        world
            .workspaces
            .change_role(&owner_of(&owner), &workspace.id, &owner.id, Role::Admin),
        Err(WorkspaceError::LastOwner)
    ));
    assert!(matches!(
        world
            .workspaces
            .remove_member(&owner_of(&owner), &workspace.id, &owner.id, 12),
        Err(WorkspaceError::LastOwner)
    ));
    world
        .workspaces
        .change_role(&owner_of(&owner), &workspace.id, &admin.id, Role::Owner)
        .unwrap();
    world
        .workspaces
        .remove_member(&owner_of(&owner), &workspace.id, &owner.id, 13)
        .unwrap();
    assert_eq!(
        world.workspaces.role_of(&workspace.id, &owner.id).unwrap(),
        None
    );
}

#[test]
fn deleting_suspends_links_restoring_brings_their_states_back_and_the_sweep_purges() {
    let world = world();
    let owner = user(&world, "owner@example.com");
    let workspace = world.workspaces.create(&owner.id, "Team", 10).unwrap();
    let other = world.workspaces.create(&owner.id, "Other", 10).unwrap();
    world
        .links
        .add_domain(&workspace.id, "go.example.com", 10)
        .unwrap();
    let new = |code: &str, domain: Option<&str>| NewLink {
        url: format!("https://example.com/{code}"),
        code: Some(code.into()),
        domain: domain.map(str::to_owned),
        ..NewLink::default()
    };
    let active = world
        .links
        .create(&workspace.id, &new("active", None), 11)
        .unwrap();
    let disabled = world
        .links
        .create(&workspace.id, &new("off", Some("go.example.com")), 11)
        .unwrap();
    world
        .links
        .update(
            &workspace.id,
            disabled.id,
            &LinkChanges {
                state: Some(LinkState::Disabled),
                ..LinkChanges::default()
            },
            12,
        )
        .unwrap();
    let elsewhere = world
        .links
        .create(&other.id, &new("kept", None), 11)
        .unwrap();

    let deleted = world
        .workspaces
        .delete(&owner_of(&owner), &workspace.id, 100)
        .unwrap();
    assert_eq!(deleted.deleted_at, Some(100));
    assert!(world.workspaces.live(&workspace.id).unwrap().is_none());
    let state = |id| world.store.link(id).unwrap().unwrap().state;
    assert_eq!(state(active.id), LinkState::Deleted);
    assert_eq!(state(disabled.id), LinkState::Deleted);
    assert_eq!(state(elsewhere.id), LinkState::Active);

    world
        .workspaces
        .restore(&owner_of(&owner), &workspace.id, 200)
        .unwrap();
    assert_eq!(state(active.id), LinkState::Active);
    assert_eq!(state(disabled.id), LinkState::Disabled);
    assert!(matches!(
        world
            .workspaces
            .restore(&owner_of(&owner), &workspace.id, 201),
        Err(WorkspaceError::NotDeleted)
    ));

    world
        .workspaces
        .delete(&owner_of(&owner), &workspace.id, 300)
        .unwrap();
    let retention = world.workspaces.settings().deletion_retention_ms;
    assert!(matches!(
        world
            .workspaces
            .restore(&owner_of(&owner), &workspace.id, 300 + retention),
        Err(WorkspaceError::RestoreWindowOver { days: 30 })
    ));
    let before = world.store.latest_version();
    assert!(
        world
            .workspaces
            .sweep(300 + retention - 1)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        world.workspaces.sweep(300 + retention).unwrap(),
        vec![workspace.id.clone()]
    );
    assert!(world.store.link(active.id).unwrap().is_none());
    assert!(world.store.link(disabled.id).unwrap().is_none());
    assert!(world.store.domain("go.example.com").unwrap().is_none());
    assert!(world.store.workspace(&workspace.id).unwrap().is_none());
    assert!(world.store.link(elsewhere.id).unwrap().is_some());
    let purged: Vec<_> = world
        .store
        .changes_after(before, 100)
        .unwrap()
        .into_iter()
        .filter_map(|change| match change.op {
            ChangeOp::Purge { key } => Some(key.code),
            ChangeOp::Upsert { .. } | ChangeOp::Domain { .. } | ChangeOp::Tls { .. } => None,
        })
        .collect();
    assert_eq!(purged.len(), 2, "{purged:?}");
    // The code is free again for anyone.
    world
        .links
        .create(&other.id, &new("active", None), 400)
        .unwrap();
}

#[test]
fn links_and_domains_of_another_workspace_are_not_found() {
    let world = world();
    let owner = user(&world, "owner@example.com");
    let mine = world.workspaces.create(&owner.id, "Mine", 10).unwrap();
    let theirs = world.workspaces.create(&owner.id, "Theirs", 10).unwrap();
    world
        .links
        .add_domain(&theirs.id, "their.example", 10)
        .unwrap();
    let link = world
        .links
        .create(
            &theirs.id,
            &NewLink {
                url: "https://example.com/".into(),
                code: Some("secret".into()),
                ..NewLink::default()
            },
            11,
        )
        .unwrap();
    assert!(world.links.find(&mine.id, link.id).unwrap().is_none());
    assert!(matches!(
        world.links.delete(&mine.id, link.id, 12),
        Err(crate::service::LinkError::NotFound { .. })
    ));
    assert!(matches!(
        world.links.create(
            &mine.id,
            &NewLink {
                url: "https://example.com/".into(),
                domain: Some("their.example".into()),
                ..NewLink::default()
            },
            12,
        ),
        Err(crate::service::LinkError::UnknownDomain { .. })
    ));
    assert!(matches!(
        world.links.add_domain(&mine.id, "their.example", 12),
        Err(crate::service::LinkError::DomainExists { .. })
    ));
    let domains: Vec<String> = world
        .links
        .domains(&mine.id)
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(domains, vec!["localhost".to_owned()]);
    assert_eq!(
        world.links.link(&theirs.id, link.id).unwrap().code,
        "secret"
    );
}
