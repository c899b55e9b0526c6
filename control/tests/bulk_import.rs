//! An import into a store without links is one bulk load (sorted tables
//! written in chunks, the code index at the end); an import into a store with
//! links goes through transactions. Both leave the same links, code index,
//! ownership and change log; a bulk load that never finished is undone when
//! the store is opened again.

use std::path::Path;
use std::sync::Arc;

use ricochet_control::service::{LinkQuery, LinkService, LinkSettings, NewLink};
use ricochet_control::store::{ControlStore, DEFAULT_WORKSPACE, LinkFilter, LinkSort};
use ricochet_control::transfer::{self, Format};
use ricochet_model::{ChangeOp, LinkKey, LinkRecord};

fn service_in(dir: &Path, chunk: usize) -> LinkService {
    let store = Arc::new(ControlStore::open(dir).unwrap());
    store.set_bulk_chunk(chunk);
    let service = LinkService::new(store, LinkSettings::new("localhost", 7, 1000, &[]));
    service.register_default_domain(1).unwrap();
    service
}

fn links_of(store: &ControlStore) -> Vec<LinkRecord> {
    let mut links = Vec::new();
    store
        .for_each_link(|link| {
            links.push(link);
            true
        })
        .unwrap();
    links.sort_by_key(|link| link.id);
    links
}

/// 2,500 rows with codes in random order, 40 without a code, a code given
/// twice (the second refused) and a bad row.
fn rows(file: &Path) {
    let mut text = String::new();
    for i in 0..2_500u32 {
        let code = format!("k{:05}", (i * 7_919) % 2_500);
        text.push_str(&format!(
            "{{\"code\":\"{code}\",\"url\":\"https://example.com/{i}\",\"tags\":[\"t{}\"]}}\n",
            i % 3
        ));
    }
    for i in 0..40 {
        text.push_str(&format!("{{\"url\":\"https://example.com/random/{i}\"}}\n"));
    }
    text.push_str("{\"code\":\"k00007\",\"url\":\"https://example.com/again\"}\n");
    text.push_str("{\"code\":\"bad code\",\"url\":\"https://example.com/\"}\n");
    std::fs::write(file, text).unwrap();
}

#[test]
fn bulk_and_transactional_imports_agree() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.jsonl");
    rows(&file);

    // Chunks of 300 links: several ingestions of records, changes, owners.
    let bulk = service_in(&dir.path().join("bulk"), 300);
    let report = transfer::import(&bulk, DEFAULT_WORKSPACE, &file, Format::Jsonl, false).unwrap();
    assert_eq!(report.created, 2_540);
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert_eq!(report.errors[0].line, 2_541);
    assert!(
        report.errors[0].reason.contains("already taken"),
        "{:?}",
        report.errors
    );
    assert!(!bulk.store().bulk_load_open());

    // The same file into a store holding one link.
    let batched = service_in(&dir.path().join("batched"), 300);
    batched
        .create(
            DEFAULT_WORKSPACE,
            &NewLink {
                url: "https://example.com/first".into(),
                code: Some("first".into()),
                ..NewLink::default()
            },
            1,
        )
        .unwrap();
    let report =
        transfer::import(&batched, DEFAULT_WORKSPACE, &file, Format::Jsonl, false).unwrap();
    assert_eq!((report.created, report.errors.len()), (2_540, 2));

    let from_bulk = links_of(bulk.store());
    let from_batches = links_of(batched.store());
    assert_eq!(from_bulk.len(), 2_540);
    assert_eq!(from_batches.len(), 2_541);
    for (a, b) in from_bulk.iter().zip(&from_batches[1..]) {
        assert_eq!((a.id + 1, a.version + 1), (b.id, b.version));
        // Codes not given are random.
        if !a.url.contains("/random/") {
            assert_eq!(a.code, b.code);
        }
        assert_eq!((&a.url, &a.tags), (&b.url, &b.tags));
        assert_eq!((a.domain.as_str(), a.state), (b.domain.as_str(), b.state));
    }

    let store = bulk.store();
    // The change log holds one upsert a link, versions 1.. without a gap.
    let changes = store.changes_after(0, 10_000).unwrap();
    assert_eq!(changes.len(), 2_540);
    for (index, change) in changes.iter().enumerate() {
        assert_eq!(change.version, index as u64 + 1);
        let ChangeOp::Upsert { link } = &change.op else {
            panic!("{change:?}")
        };
        assert_eq!(link, &from_bulk[index]);
    }
    assert_eq!(store.latest_version(), 2_540);
    // The code index and ownership answer for every link.
    for link in &from_bulk {
        let key = LinkKey::new(&link.domain, &link.code).unwrap();
        assert_eq!(store.id_for_key(&key).unwrap(), Some(link.id));
        assert_eq!(
            store.link_workspace(link.id).unwrap().as_deref(),
            Some(DEFAULT_WORKSPACE)
        );
    }
    let page = bulk
        .list(
            DEFAULT_WORKSPACE,
            &LinkQuery {
                filter: LinkFilter::default(),
                sort: LinkSort::NewestFirst,
                cursor: None,
                limit: 100,
            },
        )
        .unwrap();
    assert_eq!(page.links.len(), 100);

    // After the load, creates go through transactions and see its codes.
    let taken = bulk.create(
        DEFAULT_WORKSPACE,
        &NewLink {
            url: "https://example.com/x".into(),
            code: Some("k01234".into()),
            ..NewLink::default()
        },
        2,
    );
    assert!(taken.is_err());
    let next = bulk
        .create(
            DEFAULT_WORKSPACE,
            &NewLink {
                url: "https://example.com/x".into(),
                code: Some("after".into()),
                ..NewLink::default()
            },
            2,
        )
        .unwrap();
    assert_eq!((next.id, next.version), (2_541, 2_541));
}

#[test]
fn an_unfinished_bulk_load_is_undone_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let service = service_in(&path, 2);
        let before = service
            .create(
                DEFAULT_WORKSPACE,
                &NewLink {
                    url: "https://example.com/kept".into(),
                    code: Some("kept".into()),
                    ..NewLink::default()
                },
                1,
            )
            .unwrap();
        // A store with links (even deleted ones) takes no bulk load.
        service.delete(DEFAULT_WORKSPACE, before.id, 1).unwrap();
        assert!(!service.store().begin_bulk_load().unwrap());
    }
    let path2 = dir.path().join("store2");
    let version_before;
    {
        let service = service_in(&path2, 2);
        version_before = service.store().latest_version();
        assert!(service.store().begin_bulk_load().unwrap());
        for i in 0..7 {
            service
                .create(
                    DEFAULT_WORKSPACE,
                    &NewLink {
                        url: format!("https://example.com/{i}"),
                        code: Some(format!("lost{i}")),
                        ..NewLink::default()
                    },
                    1,
                )
                .unwrap();
        }
        // Chunks of 2: six records were ingested, the code index was not.
        assert!(service.store().link_count() >= 6);
        // The process ends without finishing the load.
    }
    let service = service_in(&path2, 2);
    let store = service.store();
    assert!(!store.bulk_load_open());
    assert_eq!(store.latest_version(), version_before);
    assert!(links_of(store).is_empty());
    assert!(store.changes_after(version_before, 100).unwrap().is_empty());
    assert_eq!(
        store
            .id_for_key(&LinkKey::new("localhost", "lost1").unwrap())
            .unwrap(),
        None
    );
    let again = service
        .create(
            DEFAULT_WORKSPACE,
            &NewLink {
                url: "https://example.com/again".into(),
                code: Some("lost1".into()),
                ..NewLink::default()
            },
            1,
        )
        .unwrap();
    assert_eq!(again.id, 1);
    assert_eq!(again.version, version_before + 1);
    // A later bulk load opens again on this store? It has a link now: no.
    assert!(!store.begin_bulk_load().unwrap());
}
