//! HdrHistogram interval logs (`.hlog`) beside the report, so results open
//! in HdrHistogram's own tools: each generator thread keeps a latency
//! histogram per second of the run (sealed into compact V2 bytes when the
//! second ends), merged after the run, written with the crate's log writer.

use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::{
    Deserializer, Serializer as _, V2DeflateSerializer, V2Serializer,
};

use crate::error::{Error, Result};
use crate::stats::HISTOGRAM_MAX_US;

/// One second of latencies, in microseconds, serialized (V2, uncompressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalHistogram {
    /// Seconds since the run's start.
    pub second: usize,
    pub encoded: Vec<u8>,
}

/// One thread's per-second latency histograms, recorded beside the run's
/// whole histogram: one more histogram record per response, and one
/// serialization a second.
#[derive(Debug, Clone)]
pub struct IntervalRecorder {
    current: Histogram<u64>,
    second: usize,
    sealed: Vec<IntervalHistogram>,
}

impl Default for IntervalRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl IntervalRecorder {
    pub fn new() -> Self {
        Self {
            // The run histogram's bounds: one per thread, reset each second
            // (only the sealed seconds accumulate, compact).
            current: Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)
                .expect("valid histogram bounds"),
            second: 0,
            sealed: Vec::new(),
        }
    }

    /// A latency (µs) answered in `second` of the run.
    #[inline]
    pub fn record(&mut self, second: usize, latency_us: u64) {
        if second != self.second {
            self.seal();
            self.second = second;
        }
        self.current
            .saturating_record(latency_us.clamp(1, HISTOGRAM_MAX_US));
    }

    /// Ends the current second.
    fn seal(&mut self) {
        if self.current.is_empty() {
            return;
        }
        if let Some(encoded) = encode(&self.current) {
            self.sealed.push(IntervalHistogram {
                second: self.second,
                encoded,
            });
        }
        self.current.reset();
    }

    /// Adds another thread's seconds.
    pub fn merge(&mut self, other: &IntervalRecorder) {
        self.seal();
        let mut all = std::mem::take(&mut self.sealed);
        all.extend(other.sealed.iter().cloned());
        if !other.current.is_empty()
            && let Some(encoded) = encode(&other.current)
        {
            all.push(IntervalHistogram {
                second: other.second,
                encoded,
            });
        }
        all.sort_by_key(|h| h.second);
        let mut merged: Vec<IntervalHistogram> = Vec::with_capacity(all.len());
        for interval in all {
            match merged.last_mut() {
                Some(last) if last.second == interval.second => {
                    let sum = decode(&last.encoded).and_then(|mut sum| {
                        sum.add(decode(&interval.encoded)?).ok()?;
                        encode(&sum)
                    });
                    if let Some(sum) = sum {
                        last.encoded = sum;
                    }
                }
                _ => merged.push(interval),
            }
        }
        self.sealed = merged;
    }

    /// A recorder holding `seconds` already sealed (a worker's, received),
    /// merged later like a thread's.
    pub fn from_seconds(mut seconds: Vec<IntervalHistogram>) -> Self {
        seconds.sort_by_key(|h| h.second);
        let mut recorder = Self::new();
        recorder.sealed = seconds;
        recorder
    }

    /// The seconds so far, the current one included, in order, leaving the
    /// recorder as it was.
    pub fn seconds(&self) -> Vec<IntervalHistogram> {
        self.clone().finish()
    }

    /// Every second with answers, in order.
    pub fn finish(mut self) -> Vec<IntervalHistogram> {
        self.seal();
        self.sealed
    }
}

fn encode(histogram: &Histogram<u64>) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(histogram, &mut bytes).ok()?;
    Some(bytes)
}

/// A histogram from its V2 bytes (compressed or not), auto-resizing.
pub fn decode(bytes: &[u8]) -> Option<Histogram<u64>> {
    let mut histogram: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).ok()?;
    histogram.auto(true);
    Some(histogram)
}

/// A run's per-second latencies and when it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyIntervals {
    /// When second 0 of the run began (wall clock).
    pub started: Option<SystemTime>,
    pub seconds: Vec<IntervalHistogram>,
}

/// Writes `intervals` as an HdrHistogram interval log: Java's header lines
/// (format version, StartTime, BaseTime, legend), then one deflated V2
/// histogram per second, timestamps in seconds from the run's start,
/// values in microseconds (the Interval_Max column in milliseconds).
pub fn write_log(intervals: &LatencyIntervals, comment: &str, path: &Path) -> Result<()> {
    let failed = |e: std::io::Error| Error::io(format!("cannot write {}", path.display()), e);
    let started = intervals.started.unwrap_or(SystemTime::UNIX_EPOCH);
    let mut text: Vec<u8> = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment(&comment.replace(['\r', '\n'], " "))
        .add_comment("Latency in microseconds (Interval_Max in milliseconds), one histogram per second of the run")
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(started)
        .with_base_time(started)
        .begin_log_with(&mut text, &mut serializer)
        .map_err(failed)?;
    text.extend_from_slice(
        b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );
    let mut writer = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut text, &mut serializer)
        .map_err(failed)?;
    for interval in &intervals.seconds {
        let histogram = decode(&interval.encoded).ok_or_else(|| {
            Error::Invalid(format!(
                "second {} of the run's latencies does not decode",
                interval.second
            ))
        })?;
        writer
            .write_histogram(
                &histogram,
                Duration::from_secs(interval.second as u64),
                Duration::from_secs(1),
                None,
            )
            .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))?;
    }
    std::fs::write(path, text).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_merge_by_second() {
        let mut a = IntervalRecorder::new();
        let mut b = IntervalRecorder::new();
        for (second, us) in [(0, 100), (0, 200), (1, 300), (3, 5_000_000)] {
            a.record(second, us);
        }
        for (second, us) in [(1, 50), (2, 60)] {
            b.record(second, us);
        }
        a.merge(&b);
        let seconds = a.finish();
        let counts: Vec<(usize, u64)> = seconds
            .iter()
            .map(|s| (s.second, decode(&s.encoded).unwrap().len()))
            .collect();
        assert_eq!(counts, [(0, 2), (1, 2), (2, 1), (3, 1)]);
        let max = decode(&seconds[3].encoded).unwrap().max();
        assert!(max.abs_diff(5_000_000) < 5_000, "{max}");
    }
}
