//! Desired spec + facts → the steps that make the host match
//! ([`converge`]), or that undo what this provider wrote ([`revert`]).
//! Pure: the scripts are built here and run by the caller through
//! [`crate::host::Exec`], in order.

use super::HostError;
use super::aspects::{self, Change, admin_users::ValidUser, firewall::ValidRule};
use super::facts::{self, Facts};
use super::manifest::{self, Manifest};
use super::quote::quote;
use super::spec::{AdminUser, HostSpec};
use super::validate;

/// One idempotent script for one aspect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The aspect (`"firewall"`).
    pub aspect: &'static str,
    /// One line for INFO logs (`"firewall: 5 allow rules applied"`).
    pub summary: String,
    /// POSIX sh, run as root.
    pub script: String,
    /// The script's stdin (the manifest; never shown in logs).
    pub stdin: Vec<u8>,
}

/// Fails unless the host is one we can provision (apt-based: Debian 12,
/// Ubuntu 22.04/24.04 are the tested ones).
///
/// # Errors
/// [`HostError::UnsupportedOs`] naming the OS.
pub fn check_supported(facts: &Facts) -> Result<(), HostError> {
    let debian_like = matches!(facts.os.id.as_str(), "debian" | "ubuntu")
        || facts
            .os
            .id_like
            .split_whitespace()
            .any(|i| i == "debian" || i == "ubuntu");
    if debian_like && facts.has_apt {
        return Ok(());
    }
    let name = if facts.os.pretty_name.is_empty() {
        facts.os.id.clone()
    } else {
        facts.os.pretty_name.clone()
    };
    Err(HostError::UnsupportedOs(if name.is_empty() {
        "an OS without /etc/os-release".into()
    } else {
        name
    }))
}

/// Plan-time refusal of a firewall that would close the SSH port in use: no
/// tcp allow rule covers `ssh_port`.
///
/// # Errors
/// The attribute path (`["firewall"]`) and a message saying what to add.
pub fn check_firewall_keeps_ssh(spec: &HostSpec, ssh_port: u16) -> Result<(), (Vec<String>, String)> {
    let Some(fw) = &spec.firewall else { return Ok(()) };
    let covered = fw
        .allow
        .iter()
        .any(|r| matches!(r.parsed(), Ok((range, super::quote::Protocol::Tcp)) if range.contains(ssh_port)));
    if covered {
        Ok(())
    } else {
        Err((
            vec!["firewall".into()],
            format!(
                "no allow rule covers tcp port {ssh_port}, the SSH port this provider manages the host through; applying it would lock the provider (and you) out. Add allow {{ port = \"{ssh_port}\" }}"
            ),
        ))
    }
}

fn invalid(errs: Vec<(Vec<String>, String)>) -> Result<(), HostError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(HostError::Invalid(errs))
    }
}

/// Copy `aspect`'s field from `from` to `to` (also how a resource records
/// that one step of an interrupted apply finished).
pub fn set_managed(to: &mut HostSpec, from: &HostSpec, aspect: &str) {
    match aspect {
        "hostname" => to.hostname = from.hostname.clone(),
        "timezone" => to.timezone = from.timezone.clone(),
        "packages" => to.packages = from.packages.clone(),
        "unattended_upgrades" => to.unattended_upgrades = from.unattended_upgrades,
        "swap" => to.swap = from.swap,
        "kernel_modules" => to.kernel_modules = from.kernel_modules.clone(),
        "sysctl" => to.sysctl = from.sysctl.clone(),
        "ssh_hardening" => to.ssh_hardening = from.ssh_hardening.clone(),
        "firewall" => to.firewall = from.firewall.clone(),
        "admin_users" | "admin_user" => to.admin_users = from.admin_users.clone(),
        "container_runtime" => to.container_runtime = from.container_runtime.clone(),
        _ => {}
    }
}

/// Order matters: packages before the things that use them; users and
/// their keys before sshd stops accepting passwords; sshd before the
/// firewall; the firewall last but one (the runtime's apt run is the slowest).
const ORDER: &[&str] = &[
    "hostname",
    "timezone",
    "packages",
    "unattended_upgrades",
    "admin_users",
    "ssh_hardening",
    "swap",
    "kernel_modules",
    "sysctl",
    "firewall",
    "container_runtime",
];

/// Prologue of every step: strict mode, a known PATH and locale, and the
/// manifest (on stdin) written first, so a step that fails half-way is
/// still recorded as managed, with its backups. The manifest is replaced
/// atomically (a new file, synced, renamed over the old one) and only by a
/// JSON object: a truncated stdin leaves the old manifest and fails.
fn prologue(query: &str) -> String {
    format!(
        "set -eu\nexport LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\numask 022\nmkdir -p /var/lib/selfhost\nchmod 700 /var/lib/selfhost\n(umask 077; cat > {m}.new)\nif [ \"$(head -c 1 {m}.new)\" != '{{' ] || [ \"$(tail -c 1 {m}.new)\" != '}}' ]; then rm -f {m}.new; echo 'the host manifest sent is not a JSON object: {m} left as it was' >&2; exit 1; fi\nsync {m}.new 2>/dev/null || true\nmv -f {m}.new {m}\nprintf '%s' {q} > /var/lib/selfhost/query\n",
        m = manifest::PATH,
        q = quote(query)
    )
}

fn step(aspect: &'static str, change: Change, m: &Manifest) -> Result<Step, HostError> {
    let mut query = String::new();
    for l in facts::query_lines(&m.managed) {
        query.push_str(&l);
        query.push('\n');
    }
    // The manifest holds the revert backups: a step never runs without it.
    let stdin = serde_json::to_vec_pretty(m).map_err(|e| HostError::Manifest(format!("cannot encode it: {e}")))?;
    Ok(Step {
        aspect,
        summary: change.summary,
        script: format!("{}{}", prologue(&query), change.script),
        stdin,
    })
}

/// The steps that bring the host from `facts` to `desired`: one per aspect
/// that differs (none when the host already matches), each also recording
/// the aspect in the manifest. Run them in order; stop at the first failure.
///
/// # Errors
/// [`HostError::UnsupportedOs`], [`HostError::Invalid`] (values that do not
/// validate), [`HostError::WouldLockOut`] (the firewall would drop the
/// managing session), [`HostError::Manifest`] (unreadable manifest).
pub fn converge(desired: &HostSpec, facts: &Facts) -> Result<Vec<Step>, HostError> {
    check_supported(facts)?;
    invalid(desired.validate())?;
    let mut m = match &facts.manifest {
        Some(Ok(m)) => m.clone(),
        Some(Err(e)) => return Err(HostError::Manifest(e.clone())),
        None => Manifest {
            format: 1,
            ..Manifest::default()
        },
    };
    m.format = 1;
    if let (Some(fw), Some(session)) = (&desired.firewall, facts.ssh_session) {
        let keeps = fw.allow.iter().any(|r| {
            matches!(r.parsed(), Ok((range, super::quote::Protocol::Tcp)) if range.contains(session.port))
                && (r.sources.is_empty()
                    || r.sources
                        .iter()
                        .any(|s| validate::cidr(s).is_ok_and(|c| c.contains(session.peer))))
        });
        if !keeps {
            return Err(HostError::WouldLockOut {
                port: session.port,
                peer: session.peer.to_string(),
            });
        }
    }
    let mut steps = Vec::new();
    for &aspect in ORDER {
        let before = m.managed.clone();
        let change = aspect_change(aspect, desired, &before, facts, &mut m.backups)?;
        set_managed(&mut m.managed, desired, aspect);
        match change {
            Some(c) => steps.push(step(aspect, c, &m)?),
            None if before != m.managed => {
                // The host already matches but the manifest does not say so
                // (or it names an aspect no longer configured, which is left
                // as it is): record that, so an import sees the truth.
                let summary = if !aspect_set(&m.managed, aspect) {
                    format!("{aspect}: no longer managed (left as it is)")
                } else {
                    format!("{aspect}: recorded as managed")
                };
                steps.push(step(
                    aspect,
                    Change {
                        summary,
                        script: String::new(),
                    },
                    &m,
                )?);
            }
            None => {}
        }
    }
    Ok(steps)
}

/// Whether `spec` manages `aspect`.
fn aspect_set(spec: &HostSpec, aspect: &str) -> bool {
    let mut probe = HostSpec::default();
    set_managed(&mut probe, spec, aspect);
    probe != HostSpec::default()
}

fn aspect_change(
    aspect: &str,
    d: &HostSpec,
    before: &HostSpec,
    f: &Facts,
    b: &mut manifest::Backups,
) -> Result<Option<Change>, HostError> {
    let bad = |path: &str, e: String| HostError::Invalid(vec![(vec![path.to_owned()], e)]);
    Ok(match aspect {
        "hostname" => match &d.hostname {
            Some(h) => aspects::hostname::converge(&validate::hostname(h).map_err(|e| bad(aspect, e))?, f, b),
            None => None,
        },
        "timezone" => match &d.timezone {
            Some(t) => aspects::timezone::converge(&validate::time_zone(t).map_err(|e| bad(aspect, e))?, f, b),
            None => None,
        },
        "packages" => match &d.packages {
            Some(p) => {
                let names = p
                    .iter()
                    .map(|n| validate::package_name(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(aspect, e))?;
                aspects::packages::converge(&names, f)
            }
            None => None,
        },
        "unattended_upgrades" => d
            .unattended_upgrades
            .and_then(|u| aspects::unattended_upgrades::converge(u, f, b)),
        "swap" => d.swap.and_then(|s| aspects::swap::converge(s, f, b)),
        "kernel_modules" => match &d.kernel_modules {
            Some(ms) => {
                let names = ms
                    .iter()
                    .map(|n| validate::module_name(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(aspect, e))?;
                aspects::kernel_modules::converge(&names, f, b)
            }
            None => None,
        },
        "sysctl" => match &d.sysctl {
            Some(s) => {
                let kv = s
                    .iter()
                    .map(|(k, v)| Ok((validate::sysctl_key(k)?, validate::sysctl_value(k, v)?)))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| bad(aspect, e))?;
                aspects::sysctl::converge(&kv, f, b)
            }
            None => None,
        },
        "ssh_hardening" => d
            .ssh_hardening
            .as_ref()
            .and_then(|s| aspects::ssh_hardening::converge(s, f, b)),
        "firewall" => match &d.firewall {
            Some(fw) => {
                let rules = fw
                    .allow
                    .iter()
                    .map(|r| {
                        let (port, protocol) = r.parsed()?;
                        let sources = r
                            .sources
                            .iter()
                            .map(|s| validate::cidr(s))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(ValidRule {
                            port,
                            protocol,
                            sources,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| bad(aspect, e))?;
                aspects::firewall::converge(fw, &rules, f)
            }
            None => None,
        },
        "admin_users" => match &d.admin_users {
            Some(us) => {
                let users = us
                    .iter()
                    .map(|u| {
                        Ok(ValidUser {
                            name: validate::admin_user_name(u.name.as_str())?,
                            keys: u
                                .authorized_keys
                                .iter()
                                .map(|k| validate::public_key(k))
                                .collect::<Result<_, _>>()?,
                            sudo: u.sudo,
                            shell: u.shell.clone(),
                            spec: u.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| bad(aspect, e))?;
                let mut change = aspects::admin_users::converge(&users, f, b);
                // Accounts dropped from the configuration lose what we gave
                // them (keys, sudo), and go if we created them: an admin
                // removed from the list must not keep root.
                let dropped: Vec<AdminUser> = before
                    .admin_users
                    .iter()
                    .flatten()
                    .filter(|old| !us.iter().any(|u| u.name == old.name))
                    .cloned()
                    .collect();
                if let Some(r) = aspects::admin_users::revert(&dropped, f, b) {
                    let names: Vec<&str> = dropped.iter().map(|u| u.name.as_str()).collect();
                    let c = change.get_or_insert_with(|| Change {
                        summary: "admin_users:".into(),
                        script: String::new(),
                    });
                    c.summary.push_str(&format!(" removed {}", names.join(", ")));
                    c.script.push_str(&r.script);
                    for u in &dropped {
                        b.remove(&format!("user:{}", u.name));
                    }
                }
                change
            }
            None => None,
        },
        "container_runtime" => d
            .container_runtime
            .as_deref()
            .and_then(|c| aspects::container_runtime::converge(c, f, b)),
        _ => None,
    })
}

/// The steps that remove what this provider wrote for the aspects of
/// `managed` and put back what the manifest's backups recorded, in reverse
/// order; the last step removes the manifest. Packages stay installed and
/// loaded modules stay loaded (see the aspect modules for why).
///
/// # Errors
/// [`HostError::UnsupportedOs`], [`HostError::Manifest`].
pub fn revert(managed: &HostSpec, facts: &Facts) -> Result<Vec<Step>, HostError> {
    check_supported(facts)?;
    let m = match &facts.manifest {
        Some(Ok(m)) => m.clone(),
        Some(Err(e)) => return Err(HostError::Manifest(e.clone())),
        None => Manifest::default(),
    };
    let b = &m.backups;
    let mut changes: Vec<(&'static str, Option<Change>)> = Vec::new();
    if managed.container_runtime.is_some() {
        changes.push(("container_runtime", aspects::container_runtime::revert(b)));
    }
    if managed.firewall.is_some() {
        changes.push(("firewall", aspects::firewall::revert(facts)));
    }
    if managed.sysctl.is_some() {
        changes.push(("sysctl", aspects::sysctl::revert(facts, b)));
    }
    if managed.kernel_modules.is_some() {
        changes.push(("kernel_modules", aspects::kernel_modules::revert(b)));
    }
    if managed.swap.is_some() {
        changes.push(("swap", aspects::swap::revert(facts, b)));
    }
    if managed.ssh_hardening.is_some() {
        changes.push(("ssh_hardening", aspects::ssh_hardening::revert(facts, b)));
    }
    if let Some(users) = &managed.admin_users {
        changes.push(("admin_users", aspects::admin_users::revert(users, facts, b)));
    }
    if managed.unattended_upgrades.is_some() {
        changes.push(("unattended_upgrades", aspects::unattended_upgrades::revert(b)));
    }
    if managed.timezone.is_some() {
        changes.push(("timezone", aspects::timezone::revert(b)));
    }
    if managed.hostname.is_some() {
        changes.push(("hostname", aspects::hostname::revert(b)));
    }
    let mut steps: Vec<Step> = changes
        .into_iter()
        .filter_map(|(aspect, c)| {
            c.map(|c| Step {
                aspect,
                summary: c.summary,
                script: format!(
                    "set -eu\nexport LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n{}",
                    c.script
                ),
                stdin: Vec::new(),
            })
        })
        .collect();
    if facts.manifest.is_some() {
        steps.push(Step {
            aspect: "manifest",
            summary: "manifest removed".into(),
            script: format!(
                "rm -f {} /var/lib/selfhost/query\nrmdir /var/lib/selfhost 2>/dev/null || true\n",
                manifest::PATH
            ),
            stdin: Vec::new(),
        });
    }
    Ok(steps)
}
