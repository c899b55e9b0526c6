//! CPU time and memory of processes and threads from `/proc`: the
//! generator's own threads and the target's process tree (e.g. nginx's
//! master and workers), for CPU per request and resident memory.

use std::collections::HashMap;
use std::path::Path;

/// CPU time of the calling thread in ns (`/proc/thread-self/schedstat`).
pub fn thread_cpu_ns() -> Option<u64> {
    read_schedstat(Path::new("/proc/thread-self/schedstat"))
}

fn read_schedstat(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time (ns) of all threads of `pid`.
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    let mut any = false;
    for task in tasks.flatten() {
        if let Some(ns) = read_schedstat(&task.path().join("schedstat")) {
            total += ns;
            any = true;
        }
    }
    any.then_some(total)
}

/// CPU time (ns) of every thread of a process tree at one moment, by
/// (process, thread) id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuSnapshot {
    threads: HashMap<(u32, u32), u64>,
}

impl CpuSnapshot {
    pub fn total_ns(&self) -> u64 {
        self.threads.values().sum()
    }

    /// CPU used since `earlier` by the threads alive now: each one's time
    /// minus what it had then (all of it for a thread started since).
    /// Threads that exited in between are left out: a plain sum over live
    /// threads would fall when one exits (a server's idle worker, a
    /// blocking pool's thread), hiding the run's CPU.
    pub fn since(&self, earlier: &CpuSnapshot) -> u64 {
        self.threads
            .iter()
            .map(|(thread, ns)| {
                ns.saturating_sub(earlier.threads.get(thread).copied().unwrap_or(0))
            })
            .sum()
    }
}

/// The CPU time of every thread of `pid` and its descendants.
pub fn tree_cpu(pid: u32) -> Option<CpuSnapshot> {
    let mut threads = HashMap::new();
    for member in process_tree(pid) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{member}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(ns) = read_schedstat(&task.path().join("schedstat")) {
                threads.insert((member, tid), ns);
            }
        }
    }
    (!threads.is_empty()).then_some(CpuSnapshot { threads })
}

/// `pid` and all its descendants.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the command (which may hold spaces) start after ") ".
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                continue;
            };
            if let Some(parent) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((child, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        index += 1;
    }
    tree
}

/// CPU time (ns) of `pid` and its descendants.
pub fn tree_cpu_ns(pid: u32) -> Option<u64> {
    let values: Vec<u64> = process_tree(pid)
        .into_iter()
        .filter_map(process_cpu_ns)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Resident memory (bytes) of `pid` and its descendants.
pub fn tree_rss_bytes(pid: u32) -> Option<u64> {
    let mut total = 0;
    let mut any = false;
    for member in process_tree(pid) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{member}/status")) else {
            continue;
        };
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            total += kb * 1024;
            any = true;
        }
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_since_an_earlier_snapshot_never_falls_when_a_thread_exits() {
        let snapshot = |threads: &[((u32, u32), u64)]| CpuSnapshot {
            threads: threads.iter().copied().collect(),
        };
        // Thread 2 exits after using 500 ns; thread 3 starts and uses 70.
        let before = snapshot(&[((1, 1), 1_000), ((1, 2), 500)]);
        let after = snapshot(&[((1, 1), 1_300), ((1, 3), 70)]);
        assert_eq!(after.since(&before), 370);
        assert_eq!(after.total_ns(), 1_370);
        let me = tree_cpu(std::process::id()).expect("this process");
        assert!(me.since(&CpuSnapshot::default()) > 0);
    }
}
