//! Imports into a store without links take the bulk path (rows sorted and
//! written as tables); imports into a store with links go through the intake
//! in batches. Both must leave the same links behind, keep versions
//! contiguous for the changes that follow, and survive a restart.

use std::path::Path;
use std::sync::Arc;

use ricochet_engine::import::{ImportOptions, ImportSummary, import_file};
use ricochet_engine::intake::ChangeIntake;
use ricochet_engine::stats::EngineStats;
use ricochet_engine::store::LinkStore;
use ricochet_engine::table::LinkTable;
use ricochet_model::{Change, ChangeOp, LinkKey, LinkRecord};

fn intake_in(dir: &Path) -> ChangeIntake {
    let store = LinkStore::open(dir).expect("store opens");
    ChangeIntake::new(
        store,
        Arc::new(LinkTable::new(None)),
        Arc::new(EngineStats::default()),
    )
    .expect("intake")
}

fn import(intake: &ChangeIntake, file: &Path) -> ImportSummary {
    import_file(
        intake,
        file,
        &ImportOptions {
            format: None,
            default_domain: Some("localhost".into()),
            progress: false,
            serving: true,
        },
    )
    .expect("the import runs")
}

fn stored(intake: &ChangeIntake, domain: &str, code: &str) -> LinkRecord {
    intake
        .store()
        .get(&LinkKey::new(domain, code).unwrap())
        .unwrap()
        .unwrap_or_else(|| panic!("{domain}/{code} is stored"))
}

/// Rows in random key order, one key three times (the second row giving
/// `created_at`), one bad row, one domain row with settings.
const ROWS: &str = "\
{\"code\":\"zeta\",\"url\":\"https://example.com/z\"}
{\"code\":\"alpha\",\"url\":\"https://example.com/a1\",\"tags\":[\"one\"]}
{\"code\":\"mid\",\"url\":\"https://example.com/m\",\"status\":301,\"state\":\"disabled\"}
{\"code\":\"bad code\",\"url\":\"https://example.com/\"}
{\"code\":\"alpha\",\"url\":\"https://example.com/a2\",\"created_at\":\"2023-11-14T22:13:20Z\"}
{\"domain\":\"brand.example\",\"code\":\"alpha\",\"url\":\"https://example.com/brand\"}
{\"code\":\"alpha\",\"url\":\"https://example.com/a3\",\"status\":308}
{\"kind\":\"domain\",\"domain\":\"brand.example\",\"root_url\":\"https://example.com/root\"}
";

#[test]
fn bulk_and_batched_imports_leave_the_same_links() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.jsonl");
    std::fs::write(&file, ROWS).unwrap();

    // A store without links: the bulk path.
    let bulk_dir = dir.path().join("bulk");
    let bulk = intake_in(&bulk_dir);
    let summary = import(&bulk, &file);
    assert_eq!((summary.created, summary.updated), (4, 2));
    assert_eq!(summary.rejections.len(), 1);
    assert_eq!(summary.rejections[0].line, 4);
    // Seven rows accepted, seven versions.
    assert_eq!(summary.last_applied, 7);
    assert_eq!(bulk.last_applied(), 7);

    // A store holding one link: the batched path, every version one later.
    let batch_dir = dir.path().join("batch");
    let batched = intake_in(&batch_dir);
    let existing = ricochet_engine::test_util::link("localhost", "other", "https://example.com/o");
    batched
        .apply(&[Change {
            version: 1,
            op: ChangeOp::Upsert {
                link: LinkRecord {
                    version: 1,
                    id: 1,
                    ..existing
                },
            },
        }])
        .unwrap();
    let summary = import(&batched, &file);
    assert_eq!((summary.created, summary.updated), (4, 2));
    assert_eq!(summary.last_applied, 8);

    for (domain, code) in [
        ("localhost", "alpha"),
        ("localhost", "zeta"),
        ("localhost", "mid"),
        ("brand.example", "alpha"),
    ] {
        let from_bulk = stored(&bulk, domain, code);
        let mut from_batches = stored(&batched, domain, code);
        from_batches.id -= 1;
        from_batches.version -= 1;
        // Both imports read the clock once at their start.
        from_batches.updated_at = from_bulk.updated_at;
        if from_bulk.created_at != 1_700_000_000_000 {
            from_batches.created_at = from_bulk.created_at;
        }
        assert_eq!(from_bulk, from_batches, "{domain}/{code}");
    }

    // The key given three times: the last row's fields, the first row's id,
    // the created_at the second row gave, the last row's version.
    let alpha = stored(&bulk, "localhost", "alpha");
    assert_eq!(alpha.url, "https://example.com/a3");
    assert_eq!(alpha.status.code(), 308);
    assert_eq!(alpha.id, 2);
    assert_eq!(alpha.version, 6);
    assert_eq!(alpha.created_at, 1_700_000_000_000);
    assert!(alpha.tags.is_empty(), "the last row's tags");
    let mid = stored(&bulk, "localhost", "mid");
    assert_eq!(mid.state, ricochet_model::LinkState::Disabled);

    // The domain row's settings are stored and in the table.
    let settings = bulk.store().domain_settings().unwrap();
    assert_eq!(settings.len(), 1);
    let settings = settings[0].as_ref().unwrap();
    assert_eq!(
        (settings.domain.as_str(), settings.root_url.as_deref()),
        ("brand.example", Some("https://example.com/root"))
    );

    // The table serves what the bulk load wrote.
    let table = bulk.table();
    assert_eq!(table.len(), 4);
    assert!(table.contains(&LinkKey::new("brand.example", "alpha").unwrap()));
}

#[test]
fn changes_follow_a_bulk_load_and_a_restart_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    let mut csv = String::from("domain,code,url\n");
    for i in (0..5_000).rev() {
        csv.push_str(&format!("localhost,c{i},https://example.com/{i}\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let store_dir = dir.path().join("store");
    {
        let intake = intake_in(&store_dir);
        let summary = import(&intake, &file);
        assert_eq!(summary.created, 5_000);
        assert_eq!(summary.last_applied, 5_000);
        // The next change is the next version; a gap is still refused.
        let link = stored(&intake, "localhost", "c42");
        let changed = LinkRecord {
            url: "https://example.com/changed".into(),
            version: 5_001,
            ..link
        };
        let applied = intake
            .apply(&[Change {
                version: 5_001,
                op: ChangeOp::Upsert { link: changed },
            }])
            .unwrap();
        assert_eq!(applied.last_applied, 5_001);
        let gap = intake.apply(&[Change {
            version: 5_003,
            op: ChangeOp::Purge {
                key: LinkKey::new("localhost", "c1").unwrap(),
            },
        }]);
        assert!(gap.is_err());
        // A second import finds links and goes through batches.
        std::fs::write(
            &file,
            "domain,code,url\nlocalhost,c7,https://example.com/seven\n",
        )
        .unwrap();
        let summary = import(&intake, &file);
        assert_eq!((summary.created, summary.updated), (0, 1));
        assert_eq!(summary.last_applied, 5_002);
        assert_eq!(stored(&intake, "localhost", "c7").id, 4_993);
    }
    let intake = intake_in(&store_dir);
    assert_eq!(intake.last_applied(), 5_002);
    let loaded = intake.load_table().unwrap();
    assert_eq!((loaded.links, loaded.errors), (5_000, 0));
    assert_eq!(
        stored(&intake, "localhost", "c42").url,
        "https://example.com/changed"
    );
    assert_eq!(
        stored(&intake, "localhost", "c7").url,
        "https://example.com/seven"
    );
}
