//! The typed model of `selfhost_vps_host` and its mapping to the host
//! layer's [`HostSpec`]: configuration → desired spec, observed spec →
//! state. Defaults of the schema are applied here too, so a configuration
//! and the plan it produced map to the same spec.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::framework::{AttributePath, Value};
use crate::host::spec::{AdminUser, Firewall, HostSpec, Invalid, Rule, SshHardening};
use crate::host::validate;
use crate::resources::connection::{ConnectionConfig, DEFAULT_PORT};

/// `ssh_hardening {}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SshHardeningModel {
    pub password_authentication: Option<bool>,
    pub permit_root_login: Option<String>,
    pub pubkey_authentication: Option<bool>,
    pub x11_forwarding: Option<bool>,
    pub max_auth_tries: Option<i64>,
}

/// One `allow {}` of `firewall {}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AllowModel {
    pub port: String,
    pub protocol: Option<String>,
    pub sources: Option<Vec<String>>,
}

/// `firewall {}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FirewallModel {
    #[serde(default)]
    pub allow: Vec<AllowModel>,
}

/// One `admin_user {}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdminUserModel {
    pub name: String,
    pub authorized_keys: Vec<String>,
    pub sudo: Option<bool>,
}

/// The managed aspects as configured (or stored).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AspectsModel {
    pub hostname: Option<String>,
    pub timezone: Option<String>,
    pub packages: Option<BTreeSet<String>>,
    pub unattended_upgrades: Option<bool>,
    pub swap: Option<bool>,
    pub kernel_modules: Option<BTreeSet<String>>,
    pub sysctl: Option<BTreeMap<String, String>>,
    pub container_runtime: Option<String>,
    pub ssh_hardening: Option<SshHardeningModel>,
    pub firewall: Option<FirewallModel>,
    /// A list block: empty when there are none (null in some plans).
    pub admin_user: Option<Vec<AdminUserModel>>,
}

/// The `ssh` output object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SshObject {
    pub host: String,
    pub port: i64,
    pub user: String,
    pub host_key: String,
}

/// Facts every host reports (computed attributes).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FactsModel {
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub cpus: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    pub machine_id: Option<String>,
}

/// The whole stored state. `timeouts` is carried as a raw value: it is
/// configuration, never read back from the host. (Flat rather than
/// `#[serde(flatten)]`: flatten buffers values through serde's untyped
/// content, which loses our typed conversion.)
#[derive(Clone, Serialize, Deserialize)]
pub struct HostState {
    pub id: Option<String>,
    #[serde(rename = "ssh_connection")]
    pub connection: ConnectionConfig,
    pub hostname: Option<String>,
    pub timezone: Option<String>,
    pub packages: Option<BTreeSet<String>>,
    pub unattended_upgrades: Option<bool>,
    pub swap: Option<bool>,
    pub kernel_modules: Option<BTreeSet<String>>,
    pub sysctl: Option<BTreeMap<String, String>>,
    pub container_runtime: Option<String>,
    pub ssh_hardening: Option<SshHardeningModel>,
    pub firewall: Option<FirewallModel>,
    pub admin_user: Option<Vec<AdminUserModel>>,
    pub on_destroy: Option<String>,
    pub ssh: Option<SshObject>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub cpus: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    pub machine_id: Option<String>,
}

impl HostState {
    /// The managed aspects held in this state.
    pub fn aspects(&self) -> AspectsModel {
        AspectsModel {
            hostname: self.hostname.clone(),
            timezone: self.timezone.clone(),
            packages: self.packages.clone(),
            unattended_upgrades: self.unattended_upgrades,
            swap: self.swap,
            kernel_modules: self.kernel_modules.clone(),
            sysctl: self.sysctl.clone(),
            container_runtime: self.container_runtime.clone(),
            ssh_hardening: self.ssh_hardening.clone(),
            firewall: self.firewall.clone(),
            admin_user: self.admin_user.clone(),
        }
    }

    /// A state for `connection` holding `aspects` and `facts`.
    pub fn new(
        connection: ConnectionConfig,
        a: AspectsModel,
        facts: FactsModel,
        on_destroy: String,
        ssh: SshObject,
    ) -> Self {
        HostState {
            id: facts.machine_id.clone(),
            connection,
            hostname: a.hostname,
            timezone: a.timezone,
            packages: a.packages,
            unattended_upgrades: a.unattended_upgrades,
            swap: a.swap,
            kernel_modules: a.kernel_modules,
            sysctl: a.sysctl,
            container_runtime: a.container_runtime,
            ssh_hardening: a.ssh_hardening,
            firewall: a.firewall,
            admin_user: a.admin_user,
            on_destroy: Some(on_destroy),
            ssh: Some(ssh),
            os: facts.os,
            kernel: facts.kernel,
            arch: facts.arch,
            cpus: facts.cpus,
            memory_mb: facts.memory_mb,
            disk_gb: facts.disk_gb,
            machine_id: facts.machine_id,
        }
    }
}

impl AspectsModel {
    /// The desired spec, with the schema's defaults applied; the values a
    /// spec holds as validated types (user names) are checked here, each
    /// failure with its path.
    pub fn to_spec(&self) -> Result<HostSpec, Vec<Invalid>> {
        let mut invalid = Vec::new();
        let admin_users = self.admin_user.as_ref().filter(|u| !u.is_empty()).map(|users| {
            users
                .iter()
                .enumerate()
                .filter_map(|(i, u)| match validate::user_name(&u.name) {
                    Ok(name) => Some(AdminUser {
                        name,
                        authorized_keys: u.authorized_keys.clone(),
                        sudo: u.sudo.unwrap_or(false),
                        shell: None,
                    }),
                    Err(m) => {
                        invalid.push((vec!["admin_user".to_owned(), i.to_string(), "name".to_owned()], m));
                        None
                    }
                })
                .collect()
        });
        let spec = HostSpec {
            hostname: self.hostname.clone(),
            timezone: self.timezone.clone(),
            packages: self.packages.clone(),
            unattended_upgrades: self.unattended_upgrades,
            swap: self.swap,
            kernel_modules: self.kernel_modules.clone(),
            sysctl: self.sysctl.clone(),
            ssh_hardening: self.ssh_hardening.as_ref().map(|h| SshHardening {
                password_authentication: h.password_authentication,
                permit_root_login: h.permit_root_login.clone(),
                pubkey_authentication: h.pubkey_authentication,
                x11_forwarding: h.x11_forwarding,
                max_auth_tries: h.max_auth_tries.and_then(|n| u32::try_from(n).ok()),
            }),
            firewall: self.firewall.as_ref().map(|f| Firewall {
                allow: f
                    .allow
                    .iter()
                    .map(|r| Rule {
                        port: r.port.clone(),
                        protocol: r.protocol.clone().unwrap_or_else(|| "tcp".to_owned()),
                        sources: r.sources.clone().unwrap_or_default(),
                    })
                    .collect(),
            }),
            admin_users,
            container_runtime: self.container_runtime.clone(),
        };
        if invalid.is_empty() { Ok(spec) } else { Err(invalid) }
    }

    /// The state's view of an observed spec. `like` is the configuration
    /// (or prior state) the observation answers: where the host holds the
    /// same meaning in another spelling (a rule's sources unset vs empty),
    /// its spelling is kept, so only real drift reaches the plan. Without
    /// one (after an import), the shortest spelling is used.
    pub fn from_spec(spec: &HostSpec, like: &AspectsModel) -> AspectsModel {
        let like_rule = |i: usize| like.firewall.as_ref().and_then(|f| f.allow.get(i));
        AspectsModel {
            hostname: spec.hostname.clone(),
            timezone: spec.timezone.clone(),
            packages: spec.packages.clone(),
            unattended_upgrades: spec.unattended_upgrades,
            swap: spec.swap,
            kernel_modules: spec.kernel_modules.clone(),
            sysctl: spec.sysctl.clone(),
            container_runtime: spec.container_runtime.clone(),
            ssh_hardening: spec.ssh_hardening.as_ref().map(|h| SshHardeningModel {
                password_authentication: h.password_authentication,
                permit_root_login: h.permit_root_login.clone(),
                pubkey_authentication: h.pubkey_authentication,
                x11_forwarding: h.x11_forwarding,
                max_auth_tries: h.max_auth_tries.map(i64::from),
            }),
            firewall: spec.firewall.as_ref().map(|f| FirewallModel {
                allow: f
                    .allow
                    .iter()
                    .enumerate()
                    .map(|(i, r)| AllowModel {
                        port: r.port.clone(),
                        protocol: Some(r.protocol.clone()),
                        sources: if r.sources.is_empty() && like_rule(i).is_none_or(|l| l.sources.is_none()) {
                            None
                        } else {
                            Some(r.sources.clone())
                        },
                    })
                    .collect(),
            }),
            admin_user: Some(
                spec.admin_users
                    .iter()
                    .flatten()
                    .map(|u| AdminUserModel {
                        name: u.name.to_string(),
                        authorized_keys: u.authorized_keys.clone(),
                        sudo: Some(u.sudo),
                    })
                    .collect(),
            ),
        }
    }
}

/// A host layer path (`["firewall", "allow", "2", "sources", "0"]`) as an
/// attribute path of this resource. Set elements have no path: the path
/// stops at the set; map keys become keys.
pub fn attribute_path(steps: &[String]) -> AttributePath {
    let mut path = AttributePath::default();
    let mut iter = steps.iter().peekable();
    while let Some(step) = iter.next() {
        let name = match step.as_str() {
            "admin_users" => "admin_user",
            other => other,
        };
        path = path.attr(name);
        match name {
            "packages" | "kernel_modules" => break,
            "sysctl" => {
                if let Some(key) = iter.next() {
                    path = path.key(key);
                }
                break;
            }
            _ => {}
        }
        while let Some(ix) = iter.peek().and_then(|s| s.parse::<i64>().ok()) {
            path = path.index(ix);
            iter.next();
        }
    }
    path
}

/// The value of `timeouts` to carry from a plan or prior state into a new state.
pub fn timeouts_of(v: &Value) -> Value {
    v.attr(crate::framework::timeouts::BLOCK).clone()
}

impl HostState {
    /// The partial state an import starts from: the connection only; the
    /// read that follows fills in the rest from the host.
    pub fn imported(connection: ConnectionConfig) -> Self {
        HostState::new(
            connection,
            AspectsModel::default(),
            FactsModel::default(),
            "keep".to_owned(),
            SshObject {
                host: String::new(),
                port: DEFAULT_PORT,
                user: String::new(),
                host_key: String::new(),
            },
        )
    }
}

/// Names of the aspects in which `a` and `b` differ, for messages.
pub fn differing_aspects(a: &AspectsModel, b: &AspectsModel) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! cmp {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(stringify!($f));
            }
        )*};
    }
    cmp!(
        hostname,
        timezone,
        packages,
        unattended_upgrades,
        swap,
        kernel_modules,
        sysctl,
        container_runtime,
        ssh_hardening,
        firewall,
        admin_user
    );
    out
}
