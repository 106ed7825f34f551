//! The on-host manifest, /var/lib/selfhost/host.json (0600 root): which
//! aspects and items this provider manages on the host, and what was there
//! before it first changed them. An import reads `managed` to know what to
//! look at (so a host hardened by this provider imports with an empty plan);
//! a revert reads `backups` to put things back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::spec::HostSpec;

/// Where the manifest lives on the host.
pub const PATH: &str = "/var/lib/selfhost/host.json";

/// Previous states, recorded the first time an aspect changes something.
/// Keys: `file:<path>` (text, `None` = the file did not exist), and
/// aspect-specific ones (`hostname`, `localtime`, `sysctl:<key>`,
/// `user:<name>` = `Some("existed")` or `None` = we created it, `swap`).
pub type Backups = BTreeMap<String, Option<String>>;

/// The manifest document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Document format (1).
    pub format: u32,
    /// The aspects and items managed, in the spec's shape.
    pub managed: HostSpec,
    /// What was there before.
    #[serde(default)]
    pub backups: Backups,
}

/// Record `value` under `key` unless a backup is already there: the first
/// state seen is the one a revert must restore.
pub(crate) fn backup(backups: &mut Backups, key: String, value: Option<String>) {
    backups.entry(key).or_insert(value);
}
