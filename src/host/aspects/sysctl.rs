//! sysctl: /etc/sysctl.d/99-selfhost.conf (applied at boot by
//! systemd-sysctl; 99- so it comes after the distribution's files) plus
//! `sysctl -w` now. Where a key's /proc/sys file is read-only (containers
//! mount /proc/sys read-only except net.*), the file is still written and
//! the key observes as the file's value, with a warning when the running
//! value differs.

use std::collections::BTreeMap;

use super::{Change, HEADER, Warnings, pick, restore_file, write_file};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};
use crate::host::quote::{SysctlKey, SysctlValue, quote};

const FILE: &str = "/etc/sysctl.d/99-selfhost.conf";

fn norm(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn in_file(f: &Facts) -> BTreeMap<String, String> {
    f.sysctl_conf
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().trim_start_matches('-').to_owned(), norm(v)))
        .collect()
}

pub(crate) fn observe(want: &BTreeMap<String, String>, f: &Facts, w: &mut Warnings) -> BTreeMap<String, String> {
    let file = in_file(f);
    let mut out = BTreeMap::new();
    for (k, v) in want {
        let v = norm(v);
        let live = f.sysctl.get(k);
        let running = live.and_then(|s| s.value.clone());
        let writable = live.is_some_and(|s| s.writable);
        let persistent = file.get(k).map(String::as_str);
        if running.is_none() {
            w.push(
                &["sysctl", k],
                format!("sysctl {k} does not exist on this kernel ({})", f.kernel),
            );
        }
        let seen = if writable {
            pick(&v, &[running.as_deref(), persistent])
        } else {
            if persistent == Some(v.as_str()) && running.as_deref().is_some_and(|r| r != v) {
                w.push(
                    &["sysctl", k],
                    format!(
                        "sysctl {k} is {} on this host and its /proc/sys file is read-only (a container?); {FILE} sets {v} for when it can apply",
                        running.as_deref().unwrap_or("")
                    ),
                );
            }
            persistent.map(str::to_owned)
        };
        if let Some(s) = seen {
            out.insert(k.clone(), s);
        }
    }
    out
}

fn render(want: &[(SysctlKey, SysctlValue)]) -> String {
    let mut s = HEADER.to_owned();
    for (k, v) in want {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s
}

pub(crate) fn converge(want: &[(SysctlKey, SysctlValue)], f: &Facts, b: &mut Backups) -> Option<Change> {
    let map: BTreeMap<String, String> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let rendered = render(want);
    if observe(&map, f, &mut Warnings::default()) == map && f.sysctl_conf.as_deref() == Some(rendered.as_str()) {
        return None;
    }
    backup(b, format!("file:{FILE}"), f.sysctl_conf.clone());
    let mut script = write_file(FILE, &rendered, "644");
    for (k, v) in want {
        let live = f.sysctl.get(k.as_str());
        backup(b, format!("sysctl:{k}"), live.and_then(|s| s.value.clone()));
        if live.is_some_and(|s| s.writable) && live.and_then(|s| s.value.as_deref()) != Some(v.as_str()) {
            script.push_str(&format!("sysctl -q -w {}\n", quote(&format!("{k}={v}"))));
        }
    }
    Some(Change {
        summary: format!(
            "sysctl: {}",
            want.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        script,
    })
}

pub(crate) fn revert(f: &Facts, b: &Backups) -> Option<Change> {
    let key = format!("file:{FILE}");
    b.get(&key)?;
    let mut script = restore_file(FILE, b.get(&key));
    for (k, v) in b
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("sysctl:")?, v.as_ref()?)))
    {
        if f.sysctl.get(k).is_some_and(|s| s.writable) {
            script.push_str(&format!("sysctl -q -w {} || true\n", quote(&format!("{k}={v}"))));
        }
    }
    Some(Change {
        summary: "sysctl: previous values restored".into(),
        script,
    })
}
