//! The desired state of a host, typed: what `selfhost_vps_host` asks for and
//! what [`crate::host::observe`] reports in the same shape. Every aspect is
//! an `Option`: `None` means "not managed", never "absent". The same type is
//! stored in the on-host manifest (serde), so an import knows what to read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::quote::{PortRange, Protocol, UserName};
use super::validate;

/// Desired (or observed) state of the managed aspects of one host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSpec {
    /// Static host name (RFC 1123).
    pub hostname: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Debian packages kept installed.
    pub packages: Option<BTreeSet<String>>,
    /// Unattended security upgrades on (`true`) or off (`false`).
    pub unattended_upgrades: Option<bool>,
    /// `Some(false)`: swap off and kept off. `Some(true)`: left as it is.
    pub swap: Option<bool>,
    /// Kernel modules loaded now and at boot.
    pub kernel_modules: Option<BTreeSet<String>>,
    /// sysctl keys and values, applied now and at boot.
    pub sysctl: Option<BTreeMap<String, String>>,
    /// sshd settings in our drop-in.
    pub ssh_hardening: Option<SshHardening>,
    /// The nftables input firewall.
    pub firewall: Option<Firewall>,
    /// Administrator accounts.
    pub admin_users: Option<Vec<AdminUser>>,
    /// `containerd`, `docker` or `none`.
    pub container_runtime: Option<String>,
}

/// sshd settings; each `None` field is left to the host's own configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SshHardening {
    /// `PasswordAuthentication` (also sets `KbdInteractiveAuthentication no`
    /// when false, the other way PAM asks for a password).
    pub password_authentication: Option<bool>,
    /// `PermitRootLogin`: yes, no, prohibit-password, forced-commands-only.
    pub permit_root_login: Option<String>,
    /// `PubkeyAuthentication`.
    pub pubkey_authentication: Option<bool>,
    /// `X11Forwarding`.
    pub x11_forwarding: Option<bool>,
    /// `MaxAuthTries`.
    pub max_auth_tries: Option<u32>,
}

/// The allow rules of the input firewall; everything else is dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Firewall {
    /// Allow rules, in order.
    pub allow: Vec<Rule>,
}

/// One allow rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// `"22"` or `"30000-32767"`.
    pub port: String,
    /// `"tcp"` or `"udp"`.
    pub protocol: String,
    /// Source networks; empty means from anywhere.
    #[serde(default)]
    pub sources: Vec<String>,
}

/// An administrator account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    /// POSIX user name, validated wherever it comes from (configuration
    /// or the on-host manifest), so it can only reach a script as a word.
    pub name: UserName,
    /// The exact set of keys in `~/.ssh/authorized_keys`.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// Passwordless sudo through `/etc/sudoers.d/selfhost-<name>`.
    #[serde(default)]
    pub sudo: bool,
    /// Login shell; `None` leaves it (`/bin/bash` for accounts we create).
    #[serde(default)]
    pub shell: Option<String>,
}

/// A validation failure: the attribute path (as in HCL, e.g.
/// `["firewall", "allow", "2", "sources", "0"]`) and the message.
pub type Invalid = (Vec<String>, String);

impl HostSpec {
    /// Every value checked by [`crate::host::validate`]; all failures, each
    /// with its path, so a plan shows them all at once.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut errs = Vec::new();
        let mut check = |path: &[&str], r: Result<(), String>| {
            if let Err(m) = r {
                errs.push((path.iter().map(|s| s.to_string()).collect(), m));
            }
        };
        if let Some(h) = &self.hostname {
            check(&["hostname"], validate::hostname(h).map(drop));
        }
        if let Some(t) = &self.timezone {
            check(&["timezone"], validate::time_zone(t).map(drop));
        }
        for p in self.packages.iter().flatten() {
            check(&["packages", p], validate::package_name(p).map(drop));
        }
        for m in self.kernel_modules.iter().flatten() {
            check(&["kernel_modules", m], validate::module_name(m).map(drop));
        }
        for (k, v) in self.sysctl.iter().flatten() {
            check(&["sysctl", k], validate::sysctl_key(k).map(drop));
            check(&["sysctl", k], validate::sysctl_value(k, v).map(drop));
        }
        if let Some(s) = &self.ssh_hardening {
            if let Some(p) = &s.permit_root_login {
                check(
                    &["ssh_hardening", "permit_root_login"],
                    validate::permit_root_login(p).map(drop),
                );
            }
            if s.max_auth_tries == Some(0) {
                check(
                    &["ssh_hardening", "max_auth_tries"],
                    Err("max_auth_tries must be at least 1".into()),
                );
            }
        }
        if let Some(fw) = &self.firewall {
            for (i, r) in fw.allow.iter().enumerate() {
                let i = i.to_string();
                check(
                    &["firewall", "allow", &i, "port"],
                    validate::port_range(&r.port).map(drop),
                );
                check(
                    &["firewall", "allow", &i, "protocol"],
                    validate::protocol(&r.protocol).map(drop),
                );
                for (j, s) in r.sources.iter().enumerate() {
                    check(
                        &["firewall", "allow", &i, "sources", &j.to_string()],
                        validate::cidr(s).map(drop),
                    );
                }
            }
        }
        if let Some(users) = &self.admin_users {
            let mut seen = BTreeSet::new();
            for (i, u) in users.iter().enumerate() {
                let i = i.to_string();
                check(
                    &["admin_user", &i, "name"],
                    validate::admin_user_name(u.name.as_str()).map(drop),
                );
                if !seen.insert(u.name.as_str()) {
                    check(
                        &["admin_user", &i, "name"],
                        Err(format!("admin_user {:?} is declared twice", u.name)),
                    );
                }
                for (j, k) in u.authorized_keys.iter().enumerate() {
                    check(
                        &["admin_user", &i, "authorized_keys", &j.to_string()],
                        validate::public_key(k).map(drop),
                    );
                }
                if let Some(sh) = &u.shell
                    && (!sh.starts_with('/') || sh.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':'))
                {
                    check(
                        &["admin_user", &i, "shell"],
                        Err(format!("shell {sh:?} must be an absolute path such as \"/bin/bash\"")),
                    );
                }
            }
        }
        if let Some(c) = &self.container_runtime {
            check(&["container_runtime"], validate::container_runtime(c).map(drop));
        }
        errs
    }
}

impl Rule {
    /// Port range and protocol, validated.
    pub fn parsed(&self) -> Result<(PortRange, Protocol), String> {
        Ok((validate::port_range(&self.port)?, validate::protocol(&self.protocol)?))
    }
}
