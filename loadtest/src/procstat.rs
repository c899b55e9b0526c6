//! CPU time and memory of processes and threads from `/proc`: the
//! generator's own threads and the target's process tree (e.g. nginx's
//! master and workers), for CPU per request and resident memory.

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
