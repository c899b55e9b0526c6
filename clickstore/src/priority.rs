//! Lowering a click thread's CPU priority (Linux niceness, per thread), so
//! click work yields the core to the request workers whenever both want it
//! and runs in the gaps between requests. Set by the engine's
//! `clicks.thread_nice`.

/// Gives the calling thread niceness `nice` (at most 19), unless it already
/// runs at that niceness or lower priority (never raises it). A refusal is
/// logged and otherwise ignored.
pub fn lower_current_thread(nice: u8) {
    let nice = libc::c_int::from(nice.min(19));
    if nice <= current_nice() {
        return;
    }
    // SAFETY: setpriority takes plain integers; `who` 0 with PRIO_PROCESS
    // is the calling thread on Linux (threads have their own niceness).
    #[allow(unsafe_code)]
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if result != 0 {
        tracing::warn!(
            nice,
            error = %std::io::Error::last_os_error(),
            "cannot lower a click thread's priority"
        );
    }
}

/// The calling thread's niceness.
pub fn current_nice() -> i32 {
    // SAFETY: as above; errno is not consulted (-1 is a valid niceness).
    #[allow(unsafe_code)]
    unsafe {
        libc::getpriority(libc::PRIO_PROCESS, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_lowers_only_itself() {
        let before = current_nice();
        let lowered = std::thread::spawn(|| {
            lower_current_thread(7);
            current_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, before.max(7));
        assert_eq!(current_nice(), before, "the spawning thread is unchanged");
    }
}
