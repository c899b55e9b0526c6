//! `settle`: CPU the target uses after the load ends (work it defers, such as
//! an engine writing its last click window) counts with the run, once the
//! target is idle again; without `settle` it does not.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{NEVER, load};
use ricochet_loadtest::test_util::TestServer;
use ricochet_loadtest::{KeySet, RunSpec, TrafficShape, run};

/// A process that idles, burns about 0.3 s of CPU starting 0.8 s after it
/// starts (after the load ends), then idles again: the target's deferred work.
fn deferred_worker() -> Child {
    Command::new("sh")
        .args([
            "-c",
            "sleep 0.8; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 60",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh starts")
}

fn measure(settle: Duration) -> (f64, f64) {
    let server = TestServer::builder()
        .redirect("/a", 301, "https://a.example/")
        .start();
    let mut worker = deferred_worker();
    let mut spec_load = load(4, 200);
    spec_load.settle = settle;
    let spec = RunSpec {
        target: "test".into(),
        phase: "main".into(),
        round: 1,
        addr: server.addr(),
        host: "localhost".into(),
        tls: false,
        load: spec_load,
        shape: TrafficShape::default(),
        keys: Arc::new(
            KeySet::parse(
                "domain,code,url,status\n,a,https://a.example/,301\n",
                "keys",
            )
            .expect("keys parse"),
        ),
        server_pid: Some(worker.id()),
    };
    let result = run(&spec, &NEVER, &mut |_| {}).expect("run completes");
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(result.responses > 0);
    let server = result.server.expect("the target's CPU is measured");
    let per_request_s = 1e-6 * result.responses as f64;
    (
        server.cpu_s,
        server.deferred_cpu_per_request_us * per_request_s,
    )
}

#[test]
fn settle_counts_what_the_target_does_after_the_load() {
    let (cpu, deferred) = measure(Duration::from_secs(1));
    assert!(cpu > 0.15, "the burn after the load is counted: {cpu} s");
    assert!(
        deferred > 0.15 && deferred <= cpu + 1e-6,
        "and reported as deferred: {deferred} of {cpu} s"
    );

    let (cpu, deferred) = measure(Duration::ZERO);
    assert!(
        cpu < 0.1,
        "without settle the CPU is read when the load ends: {cpu} s"
    );
    assert_eq!(deferred, 0.0);
}
