//! The aspects of a host this provider manages, as one enum: the converge
//! order, the names steps and logs use, and which field of a
//! [`HostSpec`] each one is.

use super::spec::HostSpec;

/// One managed aspect of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aspect {
    /// The static host name.
    Hostname,
    /// The time zone.
    Timezone,
    /// Debian packages kept installed.
    Packages,
    /// Unattended security upgrades.
    UnattendedUpgrades,
    /// Administrator accounts.
    AdminUsers,
    /// The sshd drop-in.
    SshHardening,
    /// Swap off (or left).
    Swap,
    /// Kernel modules loaded now and at boot.
    KernelModules,
    /// sysctl keys.
    Sysctl,
    /// The nftables input firewall.
    Firewall,
    /// containerd or docker.
    ContainerRuntime,
}

impl Aspect {
    /// The converge order. Packages before the things that use them; users
    /// and their keys before sshd stops accepting passwords; sshd before
    /// the firewall; the firewall last but one (the runtime's apt run is
    /// the slowest).
    pub const ORDER: [Aspect; 11] = [
        Aspect::Hostname,
        Aspect::Timezone,
        Aspect::Packages,
        Aspect::UnattendedUpgrades,
        Aspect::AdminUsers,
        Aspect::SshHardening,
        Aspect::Swap,
        Aspect::KernelModules,
        Aspect::Sysctl,
        Aspect::Firewall,
        Aspect::ContainerRuntime,
    ];

    /// The name steps, logs and the spec's fields use (`"admin_users"`).
    pub const fn name(self) -> &'static str {
        match self {
            Aspect::Hostname => "hostname",
            Aspect::Timezone => "timezone",
            Aspect::Packages => "packages",
            Aspect::UnattendedUpgrades => "unattended_upgrades",
            Aspect::AdminUsers => "admin_users",
            Aspect::SshHardening => "ssh_hardening",
            Aspect::Swap => "swap",
            Aspect::KernelModules => "kernel_modules",
            Aspect::Sysctl => "sysctl",
            Aspect::Firewall => "firewall",
            Aspect::ContainerRuntime => "container_runtime",
        }
    }

    /// The aspect a step or an attribute names (`admin_user`, the block's
    /// name in HCL, is `admin_users`).
    pub fn from_name(name: &str) -> Option<Aspect> {
        if name == "admin_user" {
            return Some(Aspect::AdminUsers);
        }
        Aspect::ORDER.into_iter().find(|a| a.name() == name)
    }

    /// Copy this aspect's field from `from` to `to`.
    pub fn copy(self, to: &mut HostSpec, from: &HostSpec) {
        match self {
            Aspect::Hostname => to.hostname = from.hostname.clone(),
            Aspect::Timezone => to.timezone = from.timezone.clone(),
            Aspect::Packages => to.packages = from.packages.clone(),
            Aspect::UnattendedUpgrades => to.unattended_upgrades = from.unattended_upgrades,
            Aspect::Swap => to.swap = from.swap,
            Aspect::KernelModules => to.kernel_modules = from.kernel_modules.clone(),
            Aspect::Sysctl => to.sysctl = from.sysctl.clone(),
            Aspect::SshHardening => to.ssh_hardening = from.ssh_hardening.clone(),
            Aspect::Firewall => to.firewall = from.firewall.clone(),
            Aspect::AdminUsers => to.admin_users = from.admin_users.clone(),
            Aspect::ContainerRuntime => to.container_runtime = from.container_runtime.clone(),
        }
    }

    /// Whether `spec` manages this aspect.
    pub fn is_managed_by(self, spec: &HostSpec) -> bool {
        let mut probe = HostSpec::default();
        self.copy(&mut probe, spec);
        probe != HostSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_each_aspect_is_one_field() {
        let everything = HostSpec {
            hostname: Some("h".into()),
            timezone: Some("UTC".into()),
            packages: Some(Default::default()),
            unattended_upgrades: Some(true),
            swap: Some(false),
            kernel_modules: Some(Default::default()),
            sysctl: Some(Default::default()),
            ssh_hardening: Some(Default::default()),
            firewall: Some(Default::default()),
            admin_users: Some(Vec::new()),
            container_runtime: Some("containerd".into()),
        };
        let mut rebuilt = HostSpec::default();
        for a in Aspect::ORDER {
            assert_eq!(Aspect::from_name(a.name()), Some(a));
            assert!(a.is_managed_by(&everything), "{a:?}");
            assert!(!a.is_managed_by(&rebuilt), "{a:?} copied twice");
            a.copy(&mut rebuilt, &everything);
        }
        assert_eq!(rebuilt, everything, "the aspects cover every field");
        assert_eq!(Aspect::from_name("admin_user"), Some(Aspect::AdminUsers));
        assert_eq!(Aspect::from_name("manifest"), None);
    }
}
