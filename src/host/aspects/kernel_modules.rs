//! Kernel modules: /etc/modules-load.d/selfhost.conf (loaded at boot by
//! systemd-modules-load) plus `modprobe` now. A host that cannot load
//! modules (a container without CAP_SYS_MODULE, or modules_disabled) keeps
//! the file; a module it lists then observes as present, with a warning when
//! it is not loaded — the fix is on the machine, not in a plan.

use std::collections::BTreeSet;

use super::{Change, HEADER, Warnings, restore_file, write_file};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};
use crate::host::quote::ModuleName;

const FILE: &str = "/etc/modules-load.d/selfhost.conf";

fn listed(f: &Facts) -> BTreeSet<String> {
    f.modules_load
        .as_deref()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn observe(want: &BTreeSet<String>, f: &Facts, w: &mut Warnings) -> BTreeSet<String> {
    let in_file = listed(f);
    let mut out = BTreeSet::new();
    for m in want {
        let loaded = f.modules.get(m).copied().unwrap_or(false);
        if !in_file.contains(m) {
            continue;
        }
        if loaded {
            out.insert(m.clone());
        } else if !f.capabilities.can_load_modules {
            w.push(
                &["kernel_modules", m],
                format!(
                    "module {m} is not loaded and this host cannot load modules ({}); {FILE} lists it, so it loads at boot where loading is possible. Load it on the machine hosting this one",
                    match &f.capabilities.container {
                        Some(c) => format!("a {c} container without CAP_SYS_MODULE"),
                        None => "module loading is disabled or the kernel's modules are missing".into(),
                    }
                ),
            );
            out.insert(m.clone());
        }
    }
    out
}

fn render(want: &[ModuleName]) -> String {
    let mut s = HEADER.to_owned();
    for m in want {
        s.push_str(m.as_str());
        s.push('\n');
    }
    s
}

pub(crate) fn converge(want: &[ModuleName], f: &Facts, b: &mut Backups) -> Option<Change> {
    let names: BTreeSet<String> = want.iter().map(|m| m.as_str().to_owned()).collect();
    let rendered = render(want);
    if observe(&names, f, &mut Warnings::default()) == names && f.modules_load.as_deref() == Some(rendered.as_str()) {
        return None;
    }
    backup(b, format!("file:{FILE}"), f.modules_load.clone());
    let mut script = write_file(FILE, &rendered, "644");
    if f.capabilities.can_load_modules {
        for m in want {
            script.push_str(&format!("modprobe {}\n", m.word()));
        }
    }
    Some(Change {
        summary: format!("kernel_modules: {}", names.into_iter().collect::<Vec<_>>().join(", ")),
        script,
    })
}

pub(crate) fn revert(b: &Backups) -> Option<Change> {
    let key = format!("file:{FILE}");
    b.get(&key)?;
    // Loaded modules stay loaded: unloading one in use (overlay under a
    // running container) fails or breaks it; the next boot will not load it.
    Some(Change {
        summary: "kernel_modules: selfhost.conf removed".into(),
        script: restore_file(FILE, b.get(&key)),
    })
}
