//! The machine's own stalls: a thread per CPU does nothing but read the
//! clock, and every gap between two readings longer than a threshold is
//! time the CPU was taken from it (another thread, an interrupt, or on a
//! virtual machine the hypervisor running something else). A server and a
//! generator on that CPU lose the same time, so a latency percentile below
//! the gaps' size is the machine's, whatever the server does. Run it on an
//! otherwise idle machine, before trusting a tail figure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::{Error, Result};

/// Gaps shorter than this are the clock read and the loop itself (and the
/// odd cache miss): not counted.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_micros(200);

/// What one CPU lost.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CpuStalls {
    pub cpu: usize,
    pub seconds: f64,
    /// Gaps over the threshold.
    pub gaps: u64,
    /// Their sum, in ms, and as a share of the time.
    pub stalled_ms: f64,
    pub stalled_share: f64,
    /// The gaps' sizes in ms (none when there were none).
    pub gap_p50_ms: f64,
    pub gap_p90_ms: f64,
    pub gap_max_ms: f64,
    /// Half the stalled time was in gaps at least this long: the size of
    /// the gap a request that meets a stall most likely meets.
    pub gap_time_median_ms: f64,
}

/// Gaps in one thread's clock readings.
#[derive(Debug)]
struct Gaps {
    threshold_ns: u64,
    sizes_us: Histogram<u64>,
    stalled_ns: u64,
}

impl Gaps {
    fn new(threshold: Duration) -> Self {
        Self {
            threshold_ns: threshold.as_nanos() as u64,
            sizes_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            stalled_ns: 0,
        }
    }

    /// The time between two consecutive clock readings.
    fn note(&mut self, gap_ns: u64) {
        if gap_ns > self.threshold_ns {
            self.stalled_ns += gap_ns;
            self.sizes_us.saturating_record((gap_ns / 1000).max(1));
        }
    }

    fn summary(&self, cpu: usize, elapsed: Duration) -> CpuStalls {
        let empty = self.sizes_us.is_empty();
        let ms = |us: u64| if empty { 0.0 } else { us as f64 / 1000.0 };
        let seconds = elapsed.as_secs_f64();
        CpuStalls {
            cpu,
            seconds,
            gaps: self.sizes_us.len(),
            stalled_ms: self.stalled_ns as f64 / 1e6,
            stalled_share: self.stalled_ns as f64 / 1e9 / seconds.max(1e-9),
            gap_p50_ms: ms(self.sizes_us.value_at_quantile(0.5)),
            gap_p90_ms: ms(self.sizes_us.value_at_quantile(0.9)),
            gap_max_ms: ms(self.sizes_us.max()),
            gap_time_median_ms: self.time_median_us() as f64 / 1000.0,
        }
    }

    /// The gap size at which the stalled time, summed from the largest
    /// gaps down, reaches half.
    fn time_median_us(&self) -> u64 {
        let times: Vec<(u64, u128)> = self
            .sizes_us
            .iter_recorded()
            .map(|v| {
                let value = v.value_iterated_to();
                (value, u128::from(value) * u128::from(v.count_at_value()))
            })
            .collect();
        let total: u128 = times.iter().map(|(_, time)| time).sum();
        let mut sum = 0u128;
        for (value, time) in times.into_iter().rev() {
            sum += time;
            if sum * 2 >= total {
                return value;
            }
        }
        0
    }
}

/// Spins on each of `cpus` at once for `duration` (or until `stop`) and
/// reports each one's gaps over `threshold`.
pub fn measure(
    cpus: &[usize],
    duration: Duration,
    threshold: Duration,
    stop: &AtomicBool,
) -> Result<Vec<CpuStalls>> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut pinned = Vec::with_capacity(cpus.len());
    for cpu in cpus {
        let core = cores
            .iter()
            .find(|core| core.id == *cpu)
            .copied()
            .ok_or_else(|| Error::Invalid(format!("CPU {cpu}: no such CPU on this machine")))?;
        pinned.push(core);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = pinned
            .into_iter()
            .map(|core| {
                scope.spawn(move || {
                    if !core_affinity::set_for_current(core) {
                        return Err(Error::Invalid(format!("cannot run on CPU {}", core.id)));
                    }
                    Ok(spin(core.id, duration, threshold, stop))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("a probe thread panicked".into())))
            })
            .collect()
    })
}

fn spin(cpu: usize, duration: Duration, threshold: Duration, stop: &AtomicBool) -> CpuStalls {
    let mut gaps = Gaps::new(threshold);
    let start = Instant::now();
    let mut last = start;
    let mut reads: u32 = 0;
    loop {
        let now = Instant::now();
        gaps.note(now.duration_since(last).as_nanos() as u64);
        last = now;
        reads = reads.wrapping_add(1);
        // The deadline and the stop flag now and then, not on every read.
        if reads.is_multiple_of(4096)
            && (now.duration_since(start) >= duration || stop.load(Ordering::Relaxed))
        {
            return gaps.summary(cpu, now.duration_since(start));
        }
    }
}

/// The table, and what it means for tail figures.
pub fn render(stalls: &[CpuStalls], threshold: Duration) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "CPU  seconds  gaps > {:.1} ms  stalled ms  share    gap p50 ms  p90     max     half the time in gaps ≥ ms",
        threshold.as_secs_f64() * 1000.0
    );
    for s in stalls {
        let _ = writeln!(
            out,
            "{:<4} {:<8.1} {:<15} {:<11.1} {:<8} {:<11.3} {:<7.3} {:<7.3} {:.3}",
            s.cpu,
            s.seconds,
            s.gaps,
            s.stalled_ms,
            format!("{:.2} %", s.stalled_share * 100.0),
            s.gap_p50_ms,
            s.gap_p90_ms,
            s.gap_max_ms,
            s.gap_time_median_ms
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", verdict(stalls));
    out
}

/// Which percentiles the stalls put a floor under.
pub fn verdict(stalls: &[CpuStalls]) -> String {
    let Some(worst) = stalls
        .iter()
        .max_by(|a, b| a.stalled_share.total_cmp(&b.stalled_share))
    else {
        return "no CPU measured".into();
    };
    if worst.gaps == 0 {
        return "no stalls: tail figures on these CPUs are the server's and the generator's".into();
    }
    // A request arriving during a stall waits for it: the share of time
    // stalled is about the share of requests delayed, by up to a gap.
    let reaches = if worst.stalled_share >= 0.01 {
        "p99 and above"
    } else if worst.stalled_share >= 0.001 {
        "p99.9 and above"
    } else {
        "p99.99 and above"
    };
    format!(
        "CPU {} lost {:.2} % of its time, half of it in gaps of {:.1} ms or more (the largest {:.1} ms): \
         latencies at {reaches} below about {:.1} ms are this machine's, not the server's",
        worst.cpu,
        worst.stalled_share * 100.0,
        worst.gap_time_median_ms,
        worst.gap_max_ms,
        worst.gap_time_median_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_over_the_threshold_are_counted_and_summed() {
        let mut gaps = Gaps::new(Duration::from_micros(200));
        for gap_ns in [50, 150_000, 5_000_000, 7_500_000, 200_000, 1_000] {
            gaps.note(gap_ns);
        }
        let s = gaps.summary(1, Duration::from_secs(1));
        assert_eq!(s.gaps, 2);
        assert!((s.stalled_ms - 12.5).abs() < 1e-9, "{s:?}");
        assert!((s.stalled_share - 0.0125).abs() < 1e-9, "{s:?}");
        assert!((s.gap_max_ms - 7.5).abs() < 0.01, "{s:?}");
        assert!((s.gap_p50_ms - 5.0).abs() < 0.01, "{s:?}");
        // Half of the 12.5 ms was in the 7.5 ms gap.
        assert!((s.gap_time_median_ms - 7.5).abs() < 0.01, "{s:?}");
        let verdict = verdict(&[s]);
        assert!(
            verdict.contains("p99 and above below about 7.5 ms"),
            "{verdict}"
        );
    }

    #[test]
    fn a_quiet_cpu_puts_no_floor() {
        let gaps = Gaps::new(DEFAULT_THRESHOLD);
        let s = gaps.summary(0, Duration::from_secs(2));
        assert_eq!((s.gaps, s.gap_max_ms), (0, 0.0));
        assert!(verdict(&[s]).starts_with("no stalls"));
    }

    #[test]
    fn a_probe_runs_on_each_cpu_asked_for_and_refuses_others() {
        let stop = AtomicBool::new(false);
        let stalls = measure(&[0], Duration::from_millis(100), DEFAULT_THRESHOLD, &stop).unwrap();
        assert_eq!(stalls.len(), 1);
        assert_eq!(stalls[0].cpu, 0);
        assert!(stalls[0].seconds >= 0.1, "{:?}", stalls[0]);
        assert!(stalls[0].stalled_share <= 1.0);
        let error = measure(
            &[100_000],
            Duration::from_millis(10),
            DEFAULT_THRESHOLD,
            &stop,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("CPU 100000: no such CPU"), "{error}");
    }
}
