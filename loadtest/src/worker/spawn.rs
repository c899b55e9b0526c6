//! Local workers (`--spawn-workers N`): N `ricochet-loadtest worker`
//! processes on free loopback ports, each pinned to its own CPU, stopped
//! when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::error::{Error, Result};

/// What a worker prints first on stdout, followed by its address.
pub const LISTENING: &str = "listening on ";

/// Worker processes this one started.
#[derive(Debug)]
pub struct LocalWorkers {
    children: Vec<Child>,
    addresses: Vec<String>,
}

impl LocalWorkers {
    /// Starts `count` workers of the binary `exe`; worker i is pinned to
    /// `cpus[i]` when given, else to the i-th CPU from the last (servers
    /// are usually pinned from the first).
    pub fn spawn(exe: &Path, count: usize, cpus: &[usize]) -> Result<Self> {
        if !cpus.is_empty() && cpus.len() < count {
            return Err(Error::Invalid(format!(
                "{count} workers need {count} CPUs, not {}",
                cpus.len()
            )));
        }
        let available: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut workers = Self {
            children: Vec::with_capacity(count),
            addresses: Vec::with_capacity(count),
        };
        for index in 0..count {
            let cpu = match cpus.get(index) {
                Some(&cpu) => Some(cpu),
                None if available.is_empty() => None,
                None => Some(available[available.len() - 1 - index % available.len()]),
            };
            let mut command = Command::new(exe);
            command.args(["worker", "--listen", "127.0.0.1:0"]);
            if let Some(cpu) = cpu {
                command.args(["--cpu", &cpu.to_string()]);
            }
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| Error::io(format!("cannot start {}", exe.display()), e))?;
            let first = child.stdout.take().map(|out| {
                let mut line = String::new();
                let _ = BufReader::new(out).read_line(&mut line);
                line
            });
            workers.children.push(child);
            let address = first
                .as_deref()
                .and_then(|line| line.trim().strip_prefix(LISTENING))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "worker {index} did not say where it listens (it printed {first:?})"
                    ))
                })?;
            workers.addresses.push(address.to_owned());
        }
        Ok(workers)
    }

    /// Their addresses, for `LoadSpec::workers`.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Their process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Kills worker `index` at once (SIGKILL), as a crash would.
    pub fn kill(&mut self, index: usize) -> Result<()> {
        let child = self
            .children
            .get_mut(index)
            .ok_or_else(|| Error::Invalid(format!("no worker {index}")))?;
        child
            .kill()
            .map_err(|e| Error::io(format!("cannot kill worker {index}"), e))?;
        let _ = child.wait();
        Ok(())
    }
}

impl Drop for LocalWorkers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
