//! A [`HostSpec`] whose values are checked once, before any step is built:
//! each aspect's script generator then receives validated newtypes and
//! never validates again (nor can it forget to).

use super::HostError;
use super::aspect::Aspect;
use super::aspects::admin_users::ValidUser;
use super::aspects::firewall::ValidRule;
use super::quote::{Hostname, ModuleName, PackageName, SysctlKey, SysctlValue, TimeZone};
use super::spec::HostSpec;
use super::validate;

/// The validated values of the aspects that have any (the others are
/// booleans or checked enums and are read from the spec as they are).
pub(crate) struct ValidSpec {
    pub hostname: Option<Hostname>,
    pub timezone: Option<TimeZone>,
    pub packages: Option<Vec<PackageName>>,
    pub kernel_modules: Option<Vec<ModuleName>>,
    pub sysctl: Option<Vec<(SysctlKey, SysctlValue)>>,
    pub firewall: Option<Vec<ValidRule>>,
    pub admin_users: Option<Vec<ValidUser>>,
}

/// Validate every item of an optional list with `f`.
fn each<T, U>(
    items: Option<impl IntoIterator<Item = T>>,
    f: impl Fn(T) -> Result<U, String>,
) -> Result<Option<Vec<U>>, String> {
    items.map(|i| i.into_iter().map(f).collect()).transpose()
}

impl ValidSpec {
    /// # Errors
    /// [`HostError::Invalid`] at the first aspect with a value that does
    /// not validate.
    pub fn parse(d: &HostSpec) -> Result<ValidSpec, HostError> {
        let at = |aspect: Aspect| move |e: String| HostError::Invalid(vec![(vec![aspect.name().to_owned()], e)]);
        Ok(ValidSpec {
            hostname: d
                .hostname
                .as_deref()
                .map(validate::hostname)
                .transpose()
                .map_err(at(Aspect::Hostname))?,
            timezone: d
                .timezone
                .as_deref()
                .map(validate::time_zone)
                .transpose()
                .map_err(at(Aspect::Timezone))?,
            packages: each(d.packages.as_ref(), |n| validate::package_name(n)).map_err(at(Aspect::Packages))?,
            kernel_modules: each(d.kernel_modules.as_ref(), |n| validate::module_name(n))
                .map_err(at(Aspect::KernelModules))?,
            sysctl: each(d.sysctl.as_ref(), |(k, v)| {
                Ok((validate::sysctl_key(k)?, validate::sysctl_value(k, v)?))
            })
            .map_err(at(Aspect::Sysctl))?,
            firewall: each(d.firewall.as_ref().map(|f| &f.allow), |r| {
                let (port, protocol) = r.parsed()?;
                let sources = r.sources.iter().map(|s| validate::cidr(s)).collect::<Result<_, _>>()?;
                Ok(ValidRule {
                    port,
                    protocol,
                    sources,
                })
            })
            .map_err(at(Aspect::Firewall))?,
            admin_users: each(d.admin_users.as_ref(), |u| {
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
            .map_err(at(Aspect::AdminUsers))?,
        })
    }
}
