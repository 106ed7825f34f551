//! Time zone: the /etc/localtime symlink (what glibc reads) and
//! /etc/timezone (what Debian tools read). `timedatectl` does the same two
//! writes but needs D-Bus and systemd-timedated, which minimal hosts lack.

use super::{Change, Warnings, pick, restore_file, write_file};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};
use crate::host::quote::{TimeZone, quote};

pub(crate) fn observe(want: &str, f: &Facts, w: &mut Warnings) -> String {
    if f.zones.get(want) == Some(&false) {
        w.push(
            &["timezone"],
            format!("the host's tzdata has no zone {want:?} (/usr/share/zoneinfo/{want} is missing): check the name, or install tzdata"),
        );
    }
    let file = f.etc_timezone.as_deref().map(str::trim);
    pick(want, &[f.localtime_zone.as_deref(), file]).unwrap_or_default()
}

pub(crate) fn converge(want: &TimeZone, f: &Facts, b: &mut Backups) -> Option<Change> {
    if observe(want.as_str(), f, &mut Warnings::default()) == want.as_str() {
        return None;
    }
    backup(b, "localtime".into(), f.localtime_zone.clone());
    backup(b, "file:/etc/timezone".into(), f.etc_timezone.clone());
    let zone = quote(&format!("/usr/share/zoneinfo/{want}"));
    Some(Change {
        summary: format!("timezone: set to {want}"),
        script: format!(
            "[ -f {zone} ] || {{ echo {msg} >&2; exit 1; }}\nln -sfn {zone} /etc/localtime\n{}",
            write_file("/etc/timezone", &format!("{want}\n"), "644"),
            msg = quote(&format!(
                "time zone {want} is not in this host's tzdata (/usr/share/zoneinfo); install tzdata or fix the name"
            )),
        ),
    })
}

pub(crate) fn revert(b: &Backups) -> Option<Change> {
    let old = b.get("localtime").cloned().flatten()?;
    let mut script = format!(
        "ln -sfn {} /etc/localtime\n",
        quote(&format!("/usr/share/zoneinfo/{old}"))
    );
    script.push_str(&restore_file("/etc/timezone", b.get("file:/etc/timezone")));
    Some(Change {
        summary: format!("timezone: restored {old}"),
        script,
    })
}
