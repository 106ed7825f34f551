//! One module per managed aspect. Each knows how to observe itself from the
//! facts (normalised so only real drift shows), how to converge (one
//! idempotent script built with [`crate::host::quote`]) and how to revert
//! what it wrote.

pub(crate) mod admin_users;
pub(crate) mod container_runtime;
pub(crate) mod firewall;
pub(crate) mod hostname;
pub(crate) mod kernel_modules;
pub(crate) mod packages;
pub(crate) mod ssh_hardening;
pub(crate) mod swap;
pub(crate) mod sysctl;
pub(crate) mod timezone;
pub(crate) mod unattended_upgrades;

use super::quote::quote;

/// A script body for one aspect, before the step prologue.
pub(crate) struct Change {
    /// One line for INFO logs.
    pub summary: String,
    /// Shell commands (run under `set -eu`).
    pub script: String,
}

/// Collects observation warnings with their attribute paths.
#[derive(Default)]
pub(crate) struct Warnings(pub Vec<super::AspectWarning>);

impl Warnings {
    pub(crate) fn push(&mut self, path: &[&str], message: String) {
        self.0.push(super::AspectWarning {
            path: path.iter().map(|s| s.to_string()).collect(),
            message,
        });
    }
}

/// The first of `seen` that differs from `want`, else `want`: a value read
/// from several places (running and persistent) only matches when all do.
pub(crate) fn pick(want: &str, seen: &[Option<&str>]) -> Option<String> {
    for s in seen {
        match s {
            Some(s) if *s == want => {}
            Some(s) => return Some((*s).to_owned()),
            None => return None,
        }
    }
    Some(want.to_owned())
}

/// Write `content` to `path` atomically (temp file, mode, rename).
pub(crate) fn write_file(path: &str, content: &str, mode: &str) -> String {
    let tmp = format!("{path}.selfhost-new");
    format!(
        "mkdir -p \"$(dirname {p})\"\nprintf '%s' {c} > {t}\nchmod {m} {t}\nmv -f {t} {p}\n",
        p = quote(path),
        t = quote(&tmp),
        c = quote(content),
        m = quote(mode)
    )
}

/// Put back a file from its backup: its old text, or remove it when it did
/// not exist; nothing when no backup was taken.
pub(crate) fn restore_file(path: &str, backup: Option<&Option<String>>) -> String {
    match backup {
        Some(Some(text)) => write_file(path, text, "644"),
        Some(None) => format!("rm -f {}\n", quote(path)),
        None => String::new(),
    }
}

/// Install packages with apt-get: non-interactive, keep existing config
/// files, wait for the dpkg lock (another apt run, unattended-upgrades), and
/// update the lists only when they are missing or a day old, or when the
/// install fails (stale lists name versions the mirror no longer has).
pub(crate) fn apt_install(names: &[&str]) -> String {
    let words: Vec<String> = names.iter().map(|n| quote(n)).collect();
    let words = words.join(" ");
    format!(
        "export DEBIAN_FRONTEND=noninteractive
apt_get() {{ apt-get -y -q -o DPkg::Lock::Timeout=120 -o Acquire::Retries=3 -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef \"$@\"; }}
if [ -z \"$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n 1)\" ]; then apt_get update; fi
apt_get install --no-install-recommends {words} || {{ apt_get update && apt_get install --no-install-recommends {words}; }}
"
    )
}

/// Header of every file we write.
pub(crate) const HEADER: &str =
    "# Written by terraform-provider-selfhost (selfhost_vps_host); changes here are drift.\n";
