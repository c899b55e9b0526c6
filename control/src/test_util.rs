//! Test helpers (feature `test-util`): a control plane on loopback with a temporary store.
