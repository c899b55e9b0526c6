//! Shared by the integration tests: one run against an address with a key
//! set and a load, no progress output.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ricochet_engine::import::{ImportOptions, import_file};
use ricochet_engine::test_util::TestEngine;
use ricochet_loadtest::{KeySet, LoadSpec, RunResult, RunSpec, TrafficShape, run};

pub static NEVER: AtomicBool = AtomicBool::new(false);

pub fn load(connections: usize, duration_ms: u64) -> LoadSpec {
    LoadSpec {
        connections,
        duration: Duration::from_millis(duration_ms),
        timeout: Duration::from_millis(500),
        grace: Duration::from_millis(500),
        ..LoadSpec::default()
    }
}

pub fn run_once(addr: SocketAddr, keys: &str, load: LoadSpec, shape: TrafficShape) -> RunResult {
    let spec = RunSpec {
        target: "test".into(),
        phase: "main".into(),
        round: 1,
        addr,
        host: "localhost".into(),
        tls: false,
        load,
        shape,
        keys: Arc::new(KeySet::parse(keys, "test keys").expect("keys parse")),
        server_pid: None,
    };
    run(&spec, &NEVER, &mut |_| {}).expect("run completes")
}

/// Imports a JSON Lines file into `engine` as a suite's setup does (rows
/// without a domain on `localhost`); every row must be accepted. Returns
/// the links created.
pub fn import_jsonl(engine: &TestEngine, jsonl: &std::path::Path) -> u64 {
    let summary = import_file(
        engine.engine().intake(),
        jsonl,
        &ImportOptions {
            format: None,
            default_domain: Some("localhost".into()),
            progress: false,
            serving: true,
        },
    )
    .expect("the import runs");
    assert!(summary.rejections.is_empty(), "{:?}", summary.rejections);
    summary.created
}

/// Runs `suite` as the `suite` command does, with `work` as its work
/// directory, no ceiling and no progress output.
pub fn execute_in(
    work: &std::path::Path,
    suite: &ricochet_loadtest::suite::Suite,
) -> ricochet_loadtest::Result<ricochet_loadtest::report::Report> {
    let options = ricochet_loadtest::compare::ExecOptions {
        work_dir: work.to_path_buf(),
        ceiling: None,
        command: "test".into(),
        stop: &NEVER,
    };
    ricochet_loadtest::compare::execute(suite, &options, &mut |_, _| {})
}
