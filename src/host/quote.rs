//! The validated newtypes that are the only way package names, user names,
//! keys and the like reach a script. A newtype can only be built through
//! [`crate::host::validate`], so a script generator holding one knows the
//! value was checked; [`quote`] (the crate's one quoting rule,
//! [`crate::shell::quote`]) then makes it one inert word anyway, so even
//! a validator mistake cannot turn a name into a command.

use std::fmt;

pub use crate::network::{Cidr, Hostname, PortRange, Protocol};
pub use crate::shell::quote;

macro_rules! word_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) String);

        impl $name {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as one quoted shell word.
            pub fn word(&self) -> String {
                quote(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

word_newtype!(
    /// An IANA time zone name by syntax (`UTC`, `Area/Location`); whether the
    /// host's tzdata has it is checked at apply time.
    TimeZone
);
word_newtype!(
    /// A Debian package name (no version, no architecture qualifier).
    PackageName
);
word_newtype!(
    /// A POSIX (Debian `useradd`) user name.
    UserName
);
word_newtype!(
    /// A kernel module name.
    ModuleName
);
word_newtype!(
    /// A sysctl key in dotted form (`net.ipv4.ip_forward`).
    SysctlKey
);
word_newtype!(
    /// A sysctl value: one line, whitespace collapsed to single spaces.
    SysctlValue
);
word_newtype!(
    /// One OpenSSH public key line: `type base64 [comment]`, whitespace
    /// collapsed.
    PublicKey
);

/// In the on-host manifest a user name is a plain JSON string, and reading
/// one back validates it again: a manifest edited on the host cannot put a
/// name that is not a user name into a script.
impl serde::Serialize for UserName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for UserName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::host::validate::user_name(&s).map_err(serde::de::Error::custom)
    }
}

impl SysctlKey {
    /// The key's file under `/proc/sys`, relative: dots become slashes and
    /// slashes (the sysctl(8) spelling of a dot inside a name, e.g. a VLAN
    /// interface `eth0.100`) become dots.
    pub fn proc_path(&self) -> String {
        self.0
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect()
    }
}

impl ModuleName {
    /// The name as the kernel lists it in /sys/module (`-` reads as `_`).
    pub fn kernel_name(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl PublicKey {
    /// Key type and base64 blob, the part that identifies the key.
    pub fn identity(&self) -> (&str, &str) {
        let mut it = self.0.split(' ');
        (it.next().unwrap_or_default(), it.next().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_proc_path_swaps_dots_and_slashes() {
        assert_eq!(
            SysctlKey("net.ipv4.ip_forward".into()).proc_path(),
            "net/ipv4/ip_forward"
        );
        assert_eq!(
            SysctlKey("net.ipv4.conf.eth0/100.rp_filter".into()).proc_path(),
            "net/ipv4/conf/eth0.100/rp_filter"
        );
    }

    #[test]
    fn cidr_contains() {
        let net = Cidr {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        };
        assert!(net.contains("10.77.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let any = Cidr {
            addr: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        assert!(any.contains("192.0.2.1".parse().unwrap()));
        let v6 = Cidr {
            addr: "fd00::".parse().unwrap(),
            prefix: 8,
        };
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    }
}
