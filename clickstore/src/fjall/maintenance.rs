//! Keeps an embedded store tidy on its own thread: rolls finished windows up
//! into minutes, hours and days every few seconds, and prunes each level to
//! its retention once an hour (and at start). The thread ends with the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{FjallSink, Retention};

const ROLL_UP_EVERY: Duration = Duration::from_secs(5);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the `ricochet-clicks-rollup` thread for `store`; it holds only a
/// weak reference, so dropping the last `Arc` of the store ends it.
pub fn spawn_maintenance(
    store: &Arc<FjallSink>,
    retention: Retention,
    nice: u8,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let weak = Arc::downgrade(store);
    std::thread::Builder::new()
        .name("ricochet-clicks-rollup".to_owned())
        .spawn(move || {
            crate::priority::lower_current_thread(nice);
            let mut last_prune: Option<Instant> = None;
            loop {
                let Some(store) = weak.upgrade() else { return };
                let now = ricochet_model::now_millis();
                match store.roll_up(now) {
                    Ok(0) => {}
                    Ok(rolled) => tracing::debug!(rolled, "rolled up click buckets"),
                    Err(error) => tracing::warn!(%error, "rolling up clicks failed"),
                }
                if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    last_prune = Some(Instant::now());
                    match store.prune(&retention, now) {
                        Ok(0) => {}
                        Ok(removed) => {
                            tracing::info!(removed, "pruned click rows past their retention")
                        }
                        Err(error) => tracing::warn!(%error, "pruning click rows failed"),
                    }
                }
                drop(store);
                std::thread::sleep(ROLL_UP_EVERY);
            }
        })
}
