//! Container runtime. `containerd`: Debian's package plus
//! /etc/containerd/config.toml from `containerd config default` with
//! `SystemdCgroup = true` in the runc options (kubelet's default cgroup
//! driver is systemd; config version 2 path
//! `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options`),
//! then a restart. `docker`: the docker.io package. `none`: nothing is
//! installed or removed.
//!
//! What is observed is what converge guarantees: package installed and
//! configuration right. Whether the service RUNS depends on the machine too
//! (container hosts without writable cgroups cannot start it), so a stopped
//! service is a warning, not drift and not a failed apply: a second apply
//! could not change it.

use super::{Change, Warnings, apt_install};
use crate::host::facts::Facts;
use crate::host::manifest::Backups;

fn installed(f: &Facts, pkg: &str) -> bool {
    f.packages.get(pkg).is_some_and(Option::is_some)
}

/// Whether `SystemdCgroup = true` sits in a `...runtimes.runc.options]`
/// table of the config.
pub(crate) fn systemd_cgroup(config: &str) -> bool {
    let mut in_runc = false;
    for l in config.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            in_runc = t.contains("runtimes.runc.options]") || t.contains("runtimes.'runc'.options]");
        } else if in_runc {
            let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
            if compact == "SystemdCgroup=true" {
                return true;
            }
        }
    }
    false
}

fn containerd_ready(f: &Facts) -> bool {
    installed(f, "containerd") && f.containerd_config.as_deref().is_some_and(systemd_cgroup)
}

pub(crate) fn observe(want: &str, f: &Facts, w: &mut Warnings) -> String {
    let seen = match want {
        "none" => "none",
        "docker" if installed(f, "docker.io") => "docker",
        "containerd" if containerd_ready(f) => "containerd",
        _ if installed(f, "docker.io") => "docker",
        _ if containerd_ready(f) => "containerd",
        _ => "none",
    };
    let (active, unit) = match seen {
        "containerd" => (f.containerd_active, "containerd.service"),
        "docker" => (f.docker_active, "docker.service"),
        _ => (true, ""),
    };
    if !active && seen == want {
        w.push(
            &["container_runtime"],
            format!(
                "{seen} is installed and configured but {unit} is not running{}",
                if f.capabilities.container.is_some() {
                    " (this host is a container; without writable cgroups the runtime cannot start)"
                } else {
                    "; see `journalctl -u` on the host"
                }
            ),
        );
    }
    seen.to_owned()
}

pub(crate) fn converge(want: &str, f: &Facts, b: &mut Backups) -> Option<Change> {
    if observe(want, f, &mut Warnings::default()) == want {
        return None;
    }
    let mut script = String::new();
    match want {
        "containerd" => {
            if !installed(f, "containerd") {
                script.push_str(&apt_install(&["containerd"]));
            }
            // The backup is taken on the host, after the install: the
            // package may ship its own config.toml, which facts gathered
            // before the install could not see.
            b.insert("containerd".into(), Some("configured".into()));
            script.push_str(CONTAINERD);
        }
        "docker" => {
            script.push_str(&apt_install(&["docker.io"]));
            script.push_str(
                "if [ -d /run/systemd/system ]; then systemctl enable --now docker.service || echo 'warning: docker.service did not start' >&2; fi\n",
            );
        }
        _ => return None,
    }
    Some(Change {
        summary: format!("container_runtime: {want}"),
        script,
    })
}

/// Generated from the installed containerd so the file matches its version.
const CONTAINERD: &str = r#"mkdir -p /etc/containerd
if [ ! -e /etc/containerd/.selfhost-orig ]; then
  if [ -e /etc/containerd/config.toml ]; then cp -p /etc/containerd/config.toml /etc/containerd/.selfhost-orig; else : > /etc/containerd/.selfhost-absent; cp /dev/null /etc/containerd/.selfhost-orig; fi
fi
containerd config default > /etc/containerd/config.toml.selfhost-new
sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml.selfhost-new
grep -q 'SystemdCgroup = true' /etc/containerd/config.toml.selfhost-new || { echo 'containerd config default has no SystemdCgroup option' >&2; exit 1; }
mv -f /etc/containerd/config.toml.selfhost-new /etc/containerd/config.toml
if [ -d /run/systemd/system ]; then
  systemctl enable containerd.service >/dev/null 2>&1 || true
  systemctl restart containerd.service || echo 'warning: containerd.service did not start; see journalctl -u containerd' >&2
fi
"#;

pub(crate) fn revert(b: &Backups) -> Option<Change> {
    b.get("containerd")?;
    let mut script = String::from(
        "if [ -e /etc/containerd/.selfhost-absent ]; then rm -f /etc/containerd/config.toml; elif [ -e /etc/containerd/.selfhost-orig ]; then cp -p /etc/containerd/.selfhost-orig /etc/containerd/config.toml; fi\nrm -f /etc/containerd/.selfhost-orig /etc/containerd/.selfhost-absent\n",
    );
    script.push_str("if [ -d /run/systemd/system ] && systemctl is-active --quiet containerd.service; then systemctl restart containerd.service || true; fi\n");
    Some(Change {
        summary: "container_runtime: containerd config restored (package kept)".into(),
        script,
    })
}
