//! The table survives restarts, readiness waits for the load, the change
//! intake is atomic and ordered, and a crash mid-write leaves a store that
//! opens at some applied version.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use ricochet_engine::intake::ChangeIntake;
use ricochet_engine::stats::EngineStats;
use ricochet_engine::store::LinkStore;
use ricochet_engine::test_util::{Client, TestEngine, eventually, link};
use ricochet_engine::{IntakeError, LinkTable, StartOptions};
use ricochet_model::{Change, ChangeOp, LinkKey, LinkState, RedirectStatus};

fn upsert(version: u64, domain: &str, code: &str, url: &str) -> Change {
    let mut record = link(domain, code, url);
    record.version = version;
    Change {
        version,
        op: ChangeOp::Upsert { link: record },
    }
}

#[test]
fn a_restart_serves_the_same_table_from_disk() {
    let mut engine = TestEngine::start();
    for i in 0..50 {
        engine.add(
            "localhost",
            &format!("c{i}"),
            &format!("https://example.com/{i}"),
        );
    }
    let mut permanent = link("brand.example", "p", "https://brand.example/");
    permanent.status = RedirectStatus::PermanentRedirect;
    engine.upsert(permanent);
    let mut off = link("localhost", "off", "https://example.com/");
    off.state = LinkState::Disabled;
    engine.upsert(off);
    engine.purge("localhost", "c49");
    let version = engine.engine().intake().last_applied();

    engine.restart();
    for i in 0..49 {
        let response = engine.get(&format!("/c{i}"), "localhost");
        assert_eq!(
            response.header("location"),
            Some(format!("https://example.com/{i}"))
        );
    }
    assert_eq!(engine.get("/c49", "localhost").status, 404);
    assert_eq!(engine.get("/off", "localhost").status, 410);
    assert_eq!(engine.get("/p", "brand.example").status, 308);
    assert_eq!(engine.engine().intake().last_applied(), version);
    assert_eq!(engine.metric("ricochet_engine_loaded_links"), Some(51.0));
    assert_eq!(
        engine.metric("ricochet_engine_last_applied_version"),
        Some(version as f64)
    );
}

#[test]
fn readyz_is_503_and_redirects_wait_until_the_table_is_loaded() {
    let mut engine = TestEngine::start();
    engine.add("localhost", "r", "https://example.com/r");
    let (release, hold) = mpsc::channel::<()>();
    let started = engine.start_again_with(StartOptions {
        before_load: Some(Box::new(move || {
            let _ = hold.recv();
        })),
        ..StartOptions::default()
    });
    let (admin, redirect) = (started.admin_addr(), started.redirect_addr());
    assert!(!started.is_ready());
    let readyz = Client::connect(admin).get("/readyz", "admin");
    assert_eq!(readyz.status, 503);
    assert_eq!(Client::connect(admin).get("/healthz", "admin").status, 200);

    // A redirect request made while loading is answered once loaded, never with 404.
    let waiting = std::thread::spawn(move || Client::connect(redirect).get("/r", "localhost"));
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !waiting.is_finished(),
        "no answer before the table is loaded"
    );
    release.send(()).unwrap();
    let response = waiting.join().unwrap();
    assert_eq!(response.status, 302);
    assert!(eventually(Duration::from_secs(5), || {
        Client::connect(admin).get("/readyz", "admin").status == 200
    }));
}

fn open_intake(dir: &std::path::Path) -> ChangeIntake {
    let store = LinkStore::open(dir).unwrap();
    ChangeIntake::new(
        store,
        Arc::new(LinkTable::new(None)),
        Arc::new(EngineStats::default()),
    )
    .unwrap()
}

#[test]
fn the_intake_skips_duplicates_and_refuses_gaps_and_invalid_links_whole() {
    let dir = tempfile::tempdir().unwrap();
    let intake = open_intake(dir.path());
    let applied = intake
        .apply(&[
            upsert(1, "a.example", "x", "https://one.example/"),
            upsert(2, "a.example", "y", "https://two.example/"),
        ])
        .unwrap();
    assert_eq!(
        (applied.applied, applied.skipped, applied.last_applied),
        (2, 0, 2)
    );

    // Redelivered versions are skipped; the new one is applied.
    let applied = intake
        .apply(&[
            upsert(2, "a.example", "y", "https://stale.example/"),
            upsert(3, "a.example", "z", "https://three.example/"),
        ])
        .unwrap();
    assert_eq!(
        (applied.applied, applied.skipped, applied.last_applied),
        (1, 1, 3)
    );
    let key = LinkKey::new("a.example", "y").unwrap();
    assert_eq!(
        intake.store().get(&key).unwrap().unwrap().url,
        "https://two.example/"
    );

    // A gap refuses the whole batch: nothing of it is written.
    let err = intake
        .apply(&[
            upsert(4, "a.example", "g1", "https://g.example/"),
            upsert(6, "a.example", "g2", "https://g.example/"),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            IntakeError::Gap {
                last_applied: 4,
                got: 6
            }
        ),
        "{err}"
    );
    assert_eq!(intake.last_applied(), 3);
    assert!(
        intake
            .store()
            .get(&LinkKey::new("a.example", "g1").unwrap())
            .unwrap()
            .is_none()
    );

    // An invalid record refuses the whole batch too.
    let mut bad = upsert(5, "a.example", "ok", "https://ok.example/");
    if let ChangeOp::Upsert { link } = &mut bad.op {
        link.url = "javascript:alert(1)".into();
    }
    let err = intake
        .apply(&[upsert(4, "a.example", "fine", "https://fine.example/"), bad])
        .unwrap_err();
    assert!(
        matches!(err, IntakeError::Invalid { version: 5, .. }),
        "{err}"
    );
    assert_eq!(intake.last_applied(), 3);
    assert!(
        intake
            .store()
            .get(&LinkKey::new("a.example", "fine").unwrap())
            .unwrap()
            .is_none()
    );

    // Reopening sees exactly what was applied.
    drop(intake);
    let reopened = open_intake(dir.path());
    assert_eq!(reopened.last_applied(), 3);
    let loaded = reopened.load_table().unwrap();
    assert_eq!((loaded.links, loaded.errors), (3, 0));
}

/// Writes a CSV of `rows` links on crash.example.
fn crash_csv(dir: &Path, name: &str, rows: usize) -> PathBuf {
    let file = dir.join(name);
    let mut csv = String::from("domain,code,url\n");
    for i in 0..rows {
        csv.push_str(&format!("crash.example,k{i},https://example.com/{i}\n"));
    }
    std::fs::write(&file, csv).unwrap();
    file
}

/// `ricochet-engine import` of `file` into `data`, with its progress lines
/// on a pipe.
fn spawn_import(data: &Path, file: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_ricochet-engine"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "import",
            file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's progress until `stop` accepts a line, then kills it
/// with SIGKILL. Returns the lines read.
fn kill_when(mut child: std::process::Child, stop: impl Fn(&str) -> bool) -> Vec<String> {
    let progress = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in progress.lines() {
        let line = line.unwrap();
        let done = stop(&line);
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    seen
}

/// Links in the store and the highest version among them.
fn stored_links(intake: &ChangeIntake) -> (u64, u64) {
    let mut count = 0u64;
    let mut newest = 0u64;
    intake
        .store()
        .for_each_record(|record| {
            let record = record.expect("every stored record decodes");
            newest = newest.max(record.version);
            count += 1;
        })
        .unwrap();
    (count, newest)
}

/// Kills an import into a store that holds links (applied in batches of
/// 10,000) with SIGKILL while it writes, then checks the store opens and
/// holds exactly the links of the versions it says it applied.
#[test]
fn a_crash_mid_batched_import_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("engine");
    // One link first, so the big import is not a bulk load.
    let seed = crash_csv(dir.path(), "seed.csv", 1);
    let status = spawn_import(&data, &seed).wait().unwrap();
    assert!(status.success());
    let rows = 300_000;
    let file = crash_csv(dir.path(), "links.csv", rows);
    let seen = kill_when(spawn_import(&data, &file), |line| {
        line.starts_with("import progress:") && line.contains(", version ")
    });
    let batches = seen
        .iter()
        .filter(|line| line.starts_with("import progress:"))
        .count();
    assert!(batches >= 1, "the import reported progress: {seen:?}");

    let intake = open_intake(&data);
    let version = intake.last_applied();
    let (count, newest) = stored_links(&intake);
    // The seed's k0 is rewritten by the import: versions outnumber links by one
    // once a batch has been applied.
    assert_eq!(
        count + 1,
        version,
        "one link per applied version, none half-written"
    );
    assert!(newest <= version);
    assert_eq!((version - 1) % 10_000, 0, "whole batches only: {version}");
    assert!(
        (10_001..rows as u64).contains(&version),
        "interrupted after a batch: {version}"
    );
    // An engine starts on it and serves what was applied.
    let table = intake.table().clone();
    let loaded = intake.load_table().unwrap();
    assert_eq!(loaded.links, count);
    assert!(table.get_record_parts("crash.example", "k0").is_some());
}

/// Kills a bulk import (into an empty store) with SIGKILL once it writes,
/// then checks the store holds all of it or none of it, and that the
/// import, run again, completes.
#[test]
fn a_crash_mid_bulk_import_leaves_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("engine");
    let rows = 300_000u64;
    let file = crash_csv(dir.path(), "links.csv", rows as usize);
    let seen = kill_when(spawn_import(&data, &file), |line| {
        line.starts_with("import progress: sorting and writing")
    });
    assert!(
        seen.iter()
            .any(|line| line.starts_with("import progress: sorting and writing")),
        "the import reached its writing: {seen:?}"
    );

    let intake = open_intake(&data);
    let version = intake.last_applied();
    let (count, newest) = stored_links(&intake);
    assert!(
        (version, count) == (0, 0) || (version, count, newest) == (rows, rows, rows),
        "all or nothing: version {version}, {count} links, newest {newest}"
    );
    drop(intake);

    let again = spawn_import(&data, &file).wait_with_output().unwrap();
    assert!(again.status.success(), "{again:?}");
    let intake = open_intake(&data);
    let (count, _) = stored_links(&intake);
    assert_eq!(count, rows);
    assert!(intake.last_applied() >= rows);
    let table = intake.table().clone();
    assert_eq!(intake.load_table().unwrap().links, rows);
    assert!(table.get_record_parts("crash.example", "k299999").is_some());
}
