//! Host name: the running name, /etc/hostname and the 127.0.1.1 line of
//! /etc/hosts (Debian's convention, so the name resolves without DNS).

use super::{Change, pick, restore_file};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};
use crate::host::quote::{Hostname, quote};

pub(crate) fn observe(want: &str, f: &Facts) -> String {
    let file = f.etc_hostname.as_deref().map(str::trim);
    pick(want, &[Some(f.hostname.as_str()), file]).unwrap_or_default()
}

pub(crate) fn converge(want: &Hostname, f: &Facts, b: &mut Backups) -> Option<Change> {
    if observe(want.as_str(), f) == want.as_str() {
        return None;
    }
    backup(b, "hostname".into(), Some(f.hostname.clone()));
    backup(b, "file:/etc/hostname".into(), f.etc_hostname.clone());
    backup(b, "file:/etc/hosts".into(), f.etc_hosts.clone());
    Some(Change {
        summary: format!("hostname: set to {want}"),
        script: format!("name={}\n{SET}", want.word()),
    })
}

/// `$name` is a validated host name (letters, digits, '-', '.'), so it is
/// safe inside the sed expression too.
const SET: &str = r#"printf '%s\n' "$name" > /etc/hostname
hostnamectl set-hostname "$name" 2>/dev/null || hostname "$name"
if grep -q '^127\.0\.1\.1[[:space:]]' /etc/hosts; then
  sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$name/" /etc/hosts
else
  printf '127.0.1.1\t%s\n' "$name" >> /etc/hosts
fi
"#;

pub(crate) fn revert(b: &Backups) -> Option<Change> {
    let old = b.get("hostname").cloned().flatten()?;
    let mut script = restore_file("/etc/hostname", b.get("file:/etc/hostname"));
    script.push_str(&restore_file("/etc/hosts", b.get("file:/etc/hosts")));
    script.push_str(&format!("hostname {}\n", quote(&old)));
    Some(Change {
        summary: format!("hostname: restored {old}"),
        script,
    })
}
