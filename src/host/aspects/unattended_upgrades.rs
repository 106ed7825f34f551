//! Unattended upgrades: the `unattended-upgrades` package plus
//! /etc/apt/apt.conf.d/20auto-upgrades, the file apt's daily timer reads.
//! Off writes the file with "0" and keeps the package.

use super::{Change, HEADER, apt_install, restore_file, write_file};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};

const FILE: &str = "/etc/apt/apt.conf.d/20auto-upgrades";

fn enabled(f: &Facts) -> bool {
    let installed = f.packages.get("unattended-upgrades").is_some_and(Option::is_some);
    let on = f.auto_upgrades.as_deref().is_some_and(|t| {
        t.lines()
            .any(|l| l.trim_start().starts_with("APT::Periodic::Unattended-Upgrade") && l.contains("\"1\""))
    });
    installed && on
}

pub(crate) fn observe(f: &Facts) -> bool {
    enabled(f)
}

fn render(on: bool) -> String {
    let v = if on { 1 } else { 0 };
    format!("{HEADER}APT::Periodic::Update-Package-Lists \"{v}\";\nAPT::Periodic::Unattended-Upgrade \"{v}\";\n")
}

pub(crate) fn converge(want: bool, f: &Facts, b: &mut Backups) -> Option<Change> {
    if enabled(f) == want {
        return None;
    }
    backup(b, format!("file:{FILE}"), f.auto_upgrades.clone());
    let mut script = String::new();
    if want && !f.packages.get("unattended-upgrades").is_some_and(Option::is_some) {
        script.push_str(&apt_install(&["unattended-upgrades"]));
    }
    script.push_str(&write_file(FILE, &render(want), "644"));
    Some(Change {
        summary: format!("unattended_upgrades: {}", if want { "on" } else { "off" }),
        script,
    })
}

pub(crate) fn revert(b: &Backups) -> Option<Change> {
    let key = format!("file:{FILE}");
    b.get(&key)?;
    Some(Change {
        summary: "unattended_upgrades: restored 20auto-upgrades".into(),
        script: restore_file(FILE, b.get(&key)),
    })
}
