//! Desired spec + facts → the steps that make the host match
//! ([`converge`]), or that undo what this provider wrote ([`revert`]).
//! Pure: the scripts are built here and run by the caller through
//! [`crate::host::Exec`], in order.

use super::HostError;
use super::aspect::Aspect;
use super::aspects::{self, Change, admin_users::ValidUser};
use super::facts::{self, Facts};
use super::manifest::{self, Manifest};
use super::quote::quote;
use super::spec::{AdminUser, HostSpec};
use super::valid_spec::ValidSpec;
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
/// that one step of an interrupted apply finished); `aspect` is a step's
/// name, anything else is ignored.
pub fn set_managed(to: &mut HostSpec, from: &HostSpec, aspect: &str) {
    if let Some(a) = Aspect::from_name(aspect) {
        a.copy(to, from);
    }
}

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
    let valid = ValidSpec::parse(desired)?;
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
    for aspect in Aspect::ORDER {
        let before = m.managed.clone();
        let change = aspect_change(aspect, &valid, desired, &before, facts, &mut m.backups);
        aspect.copy(&mut m.managed, desired);
        let name = aspect.name();
        match change {
            Some(c) => steps.push(step(name, c, &m)?),
            None if before != m.managed => {
                // The host already matches but the manifest does not say so
                // (or it names an aspect no longer configured, which is left
                // as it is): record that, so an import sees the truth.
                let summary = if aspect.is_managed_by(&m.managed) {
                    format!("{name}: recorded as managed")
                } else {
                    format!("{name}: no longer managed (left as it is)")
                };
                steps.push(step(
                    name,
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

/// What `aspect` needs on the host, from the validated values `v` (and
/// `d`, the same spec, for the aspects without any); `before` is what the
/// manifest said was managed.
fn aspect_change(
    aspect: Aspect,
    v: &ValidSpec,
    d: &HostSpec,
    before: &HostSpec,
    f: &Facts,
    b: &mut manifest::Backups,
) -> Option<Change> {
    match aspect {
        Aspect::Hostname => v.hostname.as_ref().and_then(|h| aspects::hostname::converge(h, f, b)),
        Aspect::Timezone => v.timezone.as_ref().and_then(|t| aspects::timezone::converge(t, f, b)),
        Aspect::Packages => v.packages.as_deref().and_then(|p| aspects::packages::converge(p, f)),
        Aspect::UnattendedUpgrades => d
            .unattended_upgrades
            .and_then(|u| aspects::unattended_upgrades::converge(u, f, b)),
        Aspect::Swap => d.swap.and_then(|s| aspects::swap::converge(s, f, b)),
        Aspect::KernelModules => v
            .kernel_modules
            .as_deref()
            .and_then(|m| aspects::kernel_modules::converge(m, f, b)),
        Aspect::Sysctl => v.sysctl.as_deref().and_then(|kv| aspects::sysctl::converge(kv, f, b)),
        Aspect::SshHardening => d
            .ssh_hardening
            .as_ref()
            .and_then(|s| aspects::ssh_hardening::converge(s, f, b)),
        Aspect::Firewall => match (&d.firewall, &v.firewall) {
            (Some(fw), Some(rules)) => aspects::firewall::converge(fw, rules, f),
            _ => None,
        },
        Aspect::AdminUsers => match (&d.admin_users, &v.admin_users) {
            (Some(us), Some(users)) => admin_users_change(us, users, before, f, b),
            _ => None,
        },
        Aspect::ContainerRuntime => d
            .container_runtime
            .as_deref()
            .and_then(|c| aspects::container_runtime::converge(c, f, b)),
    }
}

/// The listed users converged, and the ones dropped from the list since
/// `before` lose what we gave them (keys, sudo), and go if we created them:
/// an admin removed from the list must not keep root.
fn admin_users_change(
    us: &[AdminUser],
    users: &[ValidUser],
    before: &HostSpec,
    f: &Facts,
    b: &mut manifest::Backups,
) -> Option<Change> {
    let mut change = aspects::admin_users::converge(users, f, b);
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

/// What undoes `aspect` on the host: what this provider wrote removed,
/// the manifest's backups put back. Packages stay installed.
fn revert_change(aspect: Aspect, managed: &HostSpec, facts: &Facts, b: &manifest::Backups) -> Option<Change> {
    match aspect {
        Aspect::ContainerRuntime => aspects::container_runtime::revert(b),
        Aspect::Firewall => aspects::firewall::revert(facts),
        Aspect::Sysctl => aspects::sysctl::revert(facts, b),
        Aspect::KernelModules => aspects::kernel_modules::revert(b),
        Aspect::Swap => aspects::swap::revert(facts, b),
        Aspect::SshHardening => aspects::ssh_hardening::revert(facts, b),
        Aspect::AdminUsers => managed
            .admin_users
            .as_deref()
            .and_then(|users| aspects::admin_users::revert(users, facts, b)),
        Aspect::UnattendedUpgrades => aspects::unattended_upgrades::revert(b),
        Aspect::Timezone => aspects::timezone::revert(b),
        Aspect::Hostname => aspects::hostname::revert(b),
        Aspect::Packages => None,
    }
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
    // In the reverse of the converge order.
    let changes = Aspect::ORDER
        .into_iter()
        .rev()
        .filter(|a| a.is_managed_by(managed))
        .map(|a| (a.name(), revert_change(a, managed, facts, b)));
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
