//! Packages kept installed. Revert leaves them installed: removing a package
//! other software came to depend on is not a safe undo.

use std::collections::BTreeSet;

use super::{Change, apt_install};
use crate::host::facts::Facts;
use crate::host::quote::PackageName;

pub(crate) fn observe(want: &BTreeSet<String>, f: &Facts) -> BTreeSet<String> {
    want.iter()
        .filter(|p| f.packages.get(*p).is_some_and(Option::is_some))
        .cloned()
        .collect()
}

pub(crate) fn converge(want: &[PackageName], f: &Facts) -> Option<Change> {
    let missing: Vec<&str> = want
        .iter()
        .map(PackageName::as_str)
        .filter(|p| !f.packages.get(*p).is_some_and(Option::is_some))
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(Change {
        summary: format!("packages: installing {}", missing.join(", ")),
        script: apt_install(&missing),
    })
}
