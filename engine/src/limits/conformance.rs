//! The conformance suite every click-limit counter passes (feature
//! `test-util`): exact limits, raised and lowered limits, independent links,
//! and concurrent takes from many threads never granting one use too many.
//! Each counter's tests call `run` on a fresh, empty counter.

use std::sync::atomic::{AtomicU64, Ordering};

use ricochet_model::LinkId;

use super::{CountError, LimitCounter, Taken};

/// Takes one use of `link` under `limit` and waits for the outcome.
pub fn take_one(counter: &dyn LimitCounter, link: LinkId, limit: u64) -> Result<Taken, CountError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(counter.take(link, limit).outcome())
}

/// Takes `granted` uses of `link` under `limit`, each granted, then one more
/// that is refused when `granted` reaches the limit's remainder.
pub fn take_all(counter: &dyn LimitCounter, link: LinkId, limit: u64, granted: u64) {
    for n in 0..granted {
        assert_eq!(
            take_one(counter, link, limit),
            Ok(Taken::Granted),
            "take {n} of link {link} under {limit}"
        );
    }
}

/// Runs the whole suite; panics on the first difference.
pub fn run(counter: &dyn LimitCounter) {
    // Exact: three uses, then refused, and refusals do not count.
    assert_eq!(counter.used(1), Ok(0));
    take_all(counter, 1, 3, 3);
    for _ in 0..3 {
        assert_eq!(take_one(counter, 1, 3), Ok(Taken::Reached));
    }
    assert_eq!(counter.used(1), Ok(3));

    // A raised limit grants the difference; a lowered one refuses at once.
    take_all(counter, 1, 5, 2);
    assert_eq!(take_one(counter, 1, 5), Ok(Taken::Reached));
    assert_eq!(take_one(counter, 1, 2), Ok(Taken::Reached));
    assert_eq!(counter.used(1), Ok(5));

    // Links are counted apart; a limit of 0 grants nothing.
    take_all(counter, 2, 1, 1);
    assert_eq!(take_one(counter, 2, 1), Ok(Taken::Reached));
    assert_eq!(take_one(counter, 3, 0), Ok(Taken::Reached));
    assert_eq!(counter.used(3), Ok(0));
    assert_eq!(counter.used(1), Ok(5));

    // Many threads, each with its own event loop like a worker: exactly the
    // limit is granted.
    let granted = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("a current-thread runtime builds");
                let outcomes = runtime.block_on(async {
                    let takes: Vec<_> = (0..25).map(|_| counter.take(4, 10)).collect();
                    let mut outcomes = Vec::new();
                    for take in takes {
                        outcomes.push(take.outcome().await);
                    }
                    outcomes
                });
                for outcome in outcomes {
                    match outcome {
                        Ok(Taken::Granted) => {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Taken::Reached) => {}
                        Err(error) => panic!("a take failed: {error}"),
                    }
                }
            });
        }
    });
    assert_eq!(granted.load(Ordering::Relaxed), 10);
    assert_eq!(counter.used(4), Ok(10));
}
