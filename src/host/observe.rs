//! Facts → the host's state in the spec's shape, restricted to what is
//! managed, normalised so that only real drift differs from the desired
//! spec. Never fails: what cannot be known or done becomes a warning.

use super::aspects::{self, Warnings};
use super::facts::Facts;
use super::spec::HostSpec;

/// A note for the user about one attribute: the host cannot do something,
/// or a value could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AspectWarning {
    /// Attribute path, e.g. `["sysctl", "kernel.panic"]`.
    pub path: Vec<String>,
    /// What is the matter and what to do.
    pub message: String,
}

/// What [`observe`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The host's state, only for the aspects and items `managed` names.
    pub spec: HostSpec,
    /// Things the user should know.
    pub warnings: Vec<AspectWarning>,
}

/// Read the managed aspects of `managed` from `facts`. Drift is
/// `observation.spec != desired`.
pub fn observe(managed: &HostSpec, facts: &Facts) -> Observation {
    let mut w = Warnings::default();
    let f = facts;
    let spec = HostSpec {
        hostname: managed.hostname.as_deref().map(|h| aspects::hostname::observe(h, f)),
        timezone: managed
            .timezone
            .as_deref()
            .map(|t| aspects::timezone::observe(t, f, &mut w)),
        packages: managed.packages.as_ref().map(|p| aspects::packages::observe(p, f)),
        unattended_upgrades: managed
            .unattended_upgrades
            .map(|_| aspects::unattended_upgrades::observe(f)),
        swap: managed.swap.map(|s| aspects::swap::observe(s, f, &mut w)),
        kernel_modules: managed
            .kernel_modules
            .as_ref()
            .map(|m| aspects::kernel_modules::observe(m, f, &mut w)),
        sysctl: managed.sysctl.as_ref().map(|s| aspects::sysctl::observe(s, f, &mut w)),
        ssh_hardening: managed
            .ssh_hardening
            .as_ref()
            .map(|s| aspects::ssh_hardening::observe(s, f, &mut w)),
        firewall: managed
            .firewall
            .as_ref()
            .map(|fw| aspects::firewall::observe(fw, f, &mut w)),
        admin_users: managed
            .admin_users
            .as_ref()
            .map(|u| aspects::admin_users::observe(u, f)),
        container_runtime: managed
            .container_runtime
            .as_deref()
            .map(|c| aspects::container_runtime::observe(c, f, &mut w)),
    };
    Observation { spec, warnings: w.0 }
}
