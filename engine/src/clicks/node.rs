//! This engine's node id: the name its click windows are keyed by. Generated
//! at first start (host name plus a random suffix) and kept in the data
//! directory, so it survives restarts and two engines sharing a host, or a
//! host name, never overwrite each other's counts.

use std::io::Write as _;
use std::path::Path;

/// The file in the data directory that keeps the id.
pub const NODE_ID_FILE: &str = "node-id";

/// The configured name, else the id kept in `data_dir` (created on first call).
pub fn node_id(configured: &str, data_dir: &Path) -> std::io::Result<String> {
    if !configured.is_empty() {
        return Ok(configured.to_owned());
    }
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let id = generate();
    // Written aside and renamed, so a crash never leaves a half-written id.
    let staging = data_dir.join(format!("{NODE_ID_FILE}.tmp"));
    let mut file = std::fs::File::create(&staging)?;
    file.write_all(format!("{id}\n").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&staging, &path)?;
    tracing::info!(node = %id, file = %path.display(), "generated this engine's node id");
    Ok(id)
}

/// `<host>-<8 random characters>`, at most 64 bytes of `[A-Za-z0-9._-]`.
fn generate() -> String {
    const ALPHABET: [char; 36] = [
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
        'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
    ];
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(48)
        .collect();
    let host = if host.is_empty() { "engine" } else { &host };
    format!("{host}-{}", nanoid::nanoid!(8, &ALPHABET))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = node_id("", dir.path()).unwrap();
        assert!(first.len() <= 64 && first.len() > 9, "{first}");
        assert_eq!(
            node_id("", dir.path()).unwrap(),
            first,
            "stable across starts"
        );
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            node_id("", other.path()).unwrap(),
            first,
            "unique per data directory"
        );
        assert_eq!(
            node_id("edge-1", dir.path()).unwrap(),
            "edge-1",
            "configured wins"
        );
    }
}
