//! Swap off (Kubernetes' kubelet refuses to start with swap by default):
//! `swapoff -a`, fstab swap lines commented out (`#selfhost-swap-off# `,
//! undone by revert) and active swap units masked so systemd does not turn
//! them back on. Inside a container swap belongs to the machine hosting it
//! and swapon/swapoff are refused: there only fstab is kept clean, and
//! active swap is reported as a warning, not as drift that could never be
//! fixed.

use super::{Change, Warnings};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};

const MASKED: &str = "/var/lib/selfhost/swap-masked.list";

fn fstab_swaps(f: &Facts) -> Vec<String> {
    f.fstab
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            !l.trim_start().starts_with('#') && w.get(2) == Some(&"swap")
        })
        .map(str::to_owned)
        .collect()
}

/// `true` when swap is (or will come back) on; `want = true` means "leave
/// it", which always matches.
pub(crate) fn observe(want: bool, f: &Facts, w: &mut Warnings) -> bool {
    if want {
        return true;
    }
    let in_fstab = !fstab_swaps(f).is_empty();
    if f.capabilities.swap_controllable {
        return in_fstab || !f.swaps_active.is_empty();
    }
    if !f.swaps_active.is_empty() {
        w.push(
            &["swap"],
            format!(
                "swap is active ({}) but belongs to the machine hosting this {} container, which cannot switch it; /etc/fstab here has no swap",
                f.swaps_active.join(", "),
                f.capabilities.container.as_deref().unwrap_or("")
            ),
        );
    }
    in_fstab
}

pub(crate) fn converge(want: bool, f: &Facts, b: &mut Backups) -> Option<Change> {
    if want || !observe(false, f, &mut Warnings::default()) {
        return None;
    }
    backup(b, "swap".into(), Some(f.swaps_active.join("\n")));
    let mut script = String::from(
        "sed -i -E 's@^([^#[:space:]][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap([[:space:]].*)?)$@#selfhost-swap-off# \\1@' /etc/fstab\n",
    );
    if f.capabilities.swap_controllable {
        script.push_str(&format!(
            "swapoff -a\nif [ -d /run/systemd/system ]; then\n  units=$(systemctl list-units --type=swap --all --plain --no-legend | awk '{{print $1}}')\n  mkdir -p /var/lib/selfhost\n  for u in $units; do systemctl mask \"$u\" >/dev/null 2>&1 && echo \"$u\" >> {MASKED}; done\nfi\n"
        ));
    }
    Some(Change {
        summary: "swap: off".into(),
        script,
    })
}

pub(crate) fn revert(f: &Facts, b: &Backups) -> Option<Change> {
    let before = b.get("swap")?;
    let mut script = format!(
        "sed -i 's/^#selfhost-swap-off# //' /etc/fstab\nif [ -f {MASKED} ]; then while read -r u; do systemctl unmask \"$u\" >/dev/null 2>&1 || true; done < {MASKED}; rm -f {MASKED}; fi\n"
    );
    if f.capabilities.swap_controllable && before.as_deref().is_some_and(|s| !s.is_empty()) {
        script.push_str("swapon -a || true\n");
    }
    Some(Change {
        summary: "swap: restored".into(),
        script,
    })
}
