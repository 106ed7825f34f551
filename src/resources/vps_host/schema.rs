//! The schema of `selfhost_vps_host`: the canonical attribute names of
//! DESIGN.md, the connection block, and the computed facts.

use std::time::Duration;

use crate::framework::plan_modifier::UseStateForUnknown;
use crate::framework::timeouts::{self, Operation};
use crate::framework::validator::{Check, IntBetween, OneOf};
use crate::framework::{Attribute, Block, NestedBlock, Nesting, Schema, Type};
use crate::host::validate;
use crate::resources::connection::resource_connection_block;

/// Default time limits: package installs over a slow mirror take minutes.
pub const TIMEOUTS: [(Operation, Duration); 4] = [
    (Operation::Create, Duration::from_secs(20 * 60)),
    (Operation::Read, Duration::from_secs(5 * 60)),
    (Operation::Update, Duration::from_secs(20 * 60)),
    (Operation::Delete, Duration::from_secs(10 * 60)),
];

pub const ON_DESTROY: &[&str] = &["keep", "revert"];
pub const CONTAINER_RUNTIMES: &[&str] = &["containerd", "docker", "none"];

fn drop_value<T>(r: Result<T, String>) -> Result<(), String> {
    r.map(drop)
}

/// The `ssh` object other resources (the cluster) consume.
pub fn ssh_object_type() -> Type {
    Type::object([
        ("host".to_owned(), Type::String),
        ("port".to_owned(), Type::Number),
        ("user".to_owned(), Type::String),
        ("host_key".to_owned(), Type::String),
    ])
}

fn computed_fact(a: Attribute, description: &str) -> Attribute {
    a.computed().description(description).plan_modifier(UseStateForUnknown)
}

/// Facts every host reports; shared with `selfhost_host_facts`.
pub fn fact_attributes(block: Block) -> Block {
    block
        .attribute(computed_fact(
            Attribute::string("os"),
            "Operating system, e.g. \"Debian GNU/Linux 12 (bookworm)\".",
        ))
        .attribute(computed_fact(
            Attribute::string("kernel"),
            "Kernel release (`uname -r`).",
        ))
        .attribute(computed_fact(
            Attribute::string("arch"),
            "Machine architecture (`uname -m`), e.g. \"x86_64\".",
        ))
        .attribute(computed_fact(Attribute::number("cpus"), "Online CPUs."))
        .attribute(computed_fact(Attribute::number("memory_mb"), "Total memory in MiB."))
        .attribute(computed_fact(
            Attribute::number("disk_gb"),
            "Size of the root file system in GiB.",
        ))
        .attribute(computed_fact(
            Attribute::string("machine_id"),
            "`/etc/machine-id`: stable for the life of the installation.",
        ))
}

fn ssh_hardening_block() -> NestedBlock {
    let b = Block::new()
        .description("sshd settings, written as a drop-in (`/etc/ssh/sshd_config.d/00-selfhost.conf`) that is checked with `sshd -t` before sshd is reloaded; the managing session survives the reload. Unset settings are left to the host. Drift is read from sshd's effective configuration (`sshd -T`), so a setting overridden elsewhere shows in the plan.")
        .attribute(
            Attribute::bool("password_authentication")
                .optional()
                .description("`PasswordAuthentication` (false also turns off `KbdInteractiveAuthentication`)."),
        )
        .attribute(
            Attribute::string("permit_root_login")
                .optional()
                .validator(Check::values(
                    "Invalid permit_root_login",
                    "must be yes, no, prohibit-password or forced-commands-only",
                    |s| drop_value(validate::permit_root_login(s)),
                ))
                .description("`PermitRootLogin`: \"yes\", \"no\", \"prohibit-password\" or \"forced-commands-only\"."),
        )
        .attribute(Attribute::bool("pubkey_authentication").optional().description("`PubkeyAuthentication`."))
        .attribute(Attribute::bool("x11_forwarding").optional().description("`X11Forwarding`."))
        .attribute(
            Attribute::number("max_auth_tries")
                .optional()
                .validator(IntBetween { min: 1, max: 100 })
                .description("`MaxAuthTries`."),
        );
    NestedBlock::new("ssh_hardening", Nesting::Single, b)
}

fn firewall_block() -> NestedBlock {
    let allow = Block::new()
        .description("Traffic allowed in; everything else is dropped.")
        .attribute(
            Attribute::string("port")
                .required()
                .validator(Check::values(
                    "Invalid port",
                    "must be a port (\"22\") or a range (\"30000-32767\") within 1-65535",
                    |s| drop_value(validate::port_range(s)),
                ))
                .description("A port (\"22\") or an inclusive range (\"30000-32767\")."),
        )
        .attribute(
            Attribute::string("protocol")
                .optional()
                .computed()
                .default_value("tcp")
                .validator(OneOf(&["tcp", "udp"]))
                .description("\"tcp\" (default) or \"udp\"."),
        )
        .attribute(
            Attribute::of_type("sources", Type::list(Type::String))
                .optional()
                .validator(Check::values(
                    "Invalid CIDR",
                    "must be an IPv4 or IPv6 network such as \"10.0.0.0/8\"",
                    |s| drop_value(validate::cidr(s)),
                ))
                .description("Source networks (CIDR); empty or unset means from anywhere."),
        );
    let b = Block::new()
        .description("An nftables firewall in its own table (`inet selfhost`): established traffic, loopback, ICMP and the `allow` rules pass; everything else is dropped by a final rule (not the chain policy, so a table flushed by hand leaves the host reachable and the drift shows in the next plan). Persisted across reboots. A rule set that would close the SSH port this provider connects on is refused at plan time.")
        .block(NestedBlock::new("allow", Nesting::List, allow));
    NestedBlock::new("firewall", Nesting::Single, b)
}

fn admin_user_block() -> NestedBlock {
    let b = Block::new()
        .description("An administrator account: created when missing, its `~/.ssh/authorized_keys` holding exactly these keys, and passwordless sudo through `/etc/sudoers.d/` when `sudo` is true (checked with `visudo -c` before it is installed).")
        .attribute(
            Attribute::string("name")
                .required()
                .validator(Check::values(
                    "Invalid user name",
                    "must be a POSIX user name (lower case letters, digits, _ and -, at most 32 characters; not root)",
                    |s| drop_value(validate::admin_user_name(s)),
                ))
                .description("POSIX user name."),
        )
        .attribute(
            Attribute::of_type("authorized_keys", Type::list(Type::String))
                .required()
                .validator(Check::values(
                    "Invalid public key",
                    "must be an OpenSSH public key line such as \"ssh-ed25519 AAAA... comment\"",
                    |s| drop_value(validate::public_key(s)),
                ))
                .description("OpenSSH public key lines; the file holds exactly these."),
        )
        .attribute(
            Attribute::bool("sudo")
                .optional()
                .computed()
                .default_value(false)
                .description("Passwordless sudo (default false)."),
        );
    NestedBlock::new("admin_user", Nesting::List, b)
}

/// The resource schema.
pub fn schema() -> Schema {
    let block = Block::new()
        .description("Prepares and hardens an existing Linux host over SSH (Debian 12, Ubuntu 22.04 and 24.04). Each aspect is optional: unset means unmanaged. A refresh gathers every fact in one script over one connection, so drift in any managed aspect shows in the plan.")
        .attribute(computed_fact(
            Attribute::string("id"),
            "The host's machine id (`/etc/machine-id`).",
        ))
        .attribute(
            Attribute::string("hostname")
                .optional()
                .validator(Check::values(
                    "Invalid hostname",
                    "must be an RFC 1123 host name",
                    |s| drop_value(validate::hostname(s)),
                ))
                .description("Static host name (RFC 1123), also mapped to 127.0.1.1 in `/etc/hosts`."),
        )
        .attribute(
            Attribute::string("timezone")
                .optional()
                .validator(Check::values(
                    "Invalid time zone",
                    "must be an IANA time zone such as \"Europe/Paris\" or \"UTC\"",
                    |s| drop_value(validate::time_zone(s)),
                ))
                .description("IANA time zone, e.g. \"Europe/Paris\"."),
        )
        .attribute(
            Attribute::of_type("packages", Type::set(Type::String))
                .optional()
                .validator(Check::values(
                    "Invalid package name",
                    "must be Debian package names",
                    |s| drop_value(validate::package_name(s)),
                ))
                .description("Debian/Ubuntu packages kept installed (apt). Removing a name stops managing it; it is not uninstalled."),
        )
        .attribute(
            Attribute::bool("unattended_upgrades")
                .optional()
                .description("Automatic security upgrades (`unattended-upgrades`) on or off."),
        )
        .attribute(
            Attribute::bool("swap")
                .optional()
                .description("false: swap is turned off now and kept off after reboot (fstab entries commented out, swap units masked), as kubelet wants. true: swap is left as it is."),
        )
        .attribute(
            Attribute::of_type("kernel_modules", Type::set(Type::String))
                .optional()
                .validator(Check::values(
                    "Invalid module name",
                    "must be kernel module names",
                    |s| drop_value(validate::module_name(s)),
                ))
                .description("Kernel modules loaded now and at boot (`/etc/modules-load.d/selfhost.conf`). On hosts that cannot load modules (container-based VPS) a warning says so."),
        )
        .attribute(
            Attribute::of_type("sysctl", Type::map(Type::String))
                .optional()
                .validator(Check::keys(
                    "Invalid sysctl key",
                    "must be sysctl keys such as \"net.ipv4.ip_forward\"",
                    |s| drop_value(validate::sysctl_key(s)),
                ))
                .validator(Check::values(
                    "Invalid sysctl value",
                    "values must be one line",
                    |s| drop_value(validate::sysctl_value_line(s)),
                ))
                .description("Kernel parameters set now and at boot (`/etc/sysctl.d/99-selfhost.conf`). Keys the host cannot change at run time (a read-only `/proc/sys` on container-based VPS) get a warning, not a perpetual diff."),
        )
        .attribute(
            Attribute::string("container_runtime")
                .optional()
                .validator(OneOf(CONTAINER_RUNTIMES))
                .description("\"containerd\" (installed, with `SystemdCgroup = true`), \"docker\" or \"none\"."),
        )
        .attribute(
            Attribute::string("on_destroy")
                .optional()
                .computed()
                .default_value("keep")
                .validator(OneOf(ON_DESTROY))
                .description("On destroy: \"keep\" (default) leaves the host as it is; \"revert\" removes what this resource wrote (drop-ins, firewall table, sudoers files, sysctl and module files) and restores the files it replaced. Installed packages and created users are kept."),
        )
        .attribute(
            Attribute::of_type("ssh", ssh_object_type())
                .computed()
                .description("How to reach this host: `host`, `port`, `user`, `host_key` (verified). Pass it to `selfhost_k8s_cluster`."),
        )
        .block(resource_connection_block())
        .block(ssh_hardening_block())
        .block(firewall_block())
        .block(admin_user_block())
        .block(timeouts::block(&TIMEOUTS));
    Schema::new(0, fact_attributes(block))
}
