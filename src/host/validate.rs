//! Plan-time validators: pure functions from configuration text to the
//! validated newtypes of [`crate::host::quote`]. Each error is one precise
//! sentence that names the value and says what to write instead, ready to be
//! a diagnostic's detail on the attribute's path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub use crate::network::{cidr, hostname, port_range, protocol};

use super::quote::{ModuleName, PackageName, PublicKey, SysctlKey, SysctlValue, TimeZone, UserName};

/// Areas of the IANA tz database (plus the `backward` file's legacy ones).
const TZ_AREAS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
    "US",
    "Canada",
    "Brazil",
    "Chile",
    "Mexico",
];

/// An IANA time zone by syntax: `UTC`, `GMT`, or `Area/Location[/Sub]` with
/// a known area and segments of letters, digits, `_`, `-`, `+`.
///
/// Why syntax and not the full zone list: the list changes with every tzdata
/// release and a build machine's copy is not the host's. Whether the host
/// knows the zone is checked at apply time against its /usr/share/zoneinfo
/// (the facts carry it), where the answer is the one that matters.
pub fn time_zone(s: &str) -> Result<TimeZone, String> {
    if matches!(s, "UTC" | "GMT" | "Etc/UTC") {
        return Ok(TimeZone(s.to_owned()));
    }
    let mut parts = s.split('/');
    let area = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return Err(format!(
            "time zone {s:?} is not an IANA name; write Area/Location such as \"Europe/Paris\", or \"UTC\""
        ));
    }
    if !TZ_AREAS.contains(&area) {
        return Err(format!(
            "time zone {s:?}: unknown area {area:?}; IANA areas are {} (case matters)",
            TZ_AREAS[..11].join(", ")
        ));
    }
    for seg in &rest {
        let ok_chars = seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'));
        if seg.is_empty() || !ok_chars || !seg.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(format!(
                "time zone {s:?}: {seg:?} is not a zone name part; parts start with a letter and hold letters, digits, '_', '-', '+' (spaces are written '_', as in \"America/New_York\")"
            ));
        }
    }
    Ok(TimeZone(s.to_owned()))
}

/// A Debian package name (Debian Policy 5.6.1): lowercase letters, digits,
/// `+`, `-`, `.`, at least two characters, starting with a letter or digit.
pub fn package_name(s: &str) -> Result<PackageName, String> {
    if let Some((name, _)) = s.split_once('=') {
        return Err(format!(
            "package {s:?}: versions are not supported; write the name only ({name:?}); packages are kept present, not pinned"
        ));
    }
    if let Some((name, arch)) = s.split_once(':') {
        return Err(format!(
            "package {s:?}: architecture qualifiers (:{arch}) are not supported; write the name only ({name:?})"
        ));
    }
    if s.len() < 2 {
        return Err(format!(
            "package {s:?}: Debian package names have at least two characters"
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(format!("package {s:?} must start with a lowercase letter or a digit"));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')))
    {
        return Err(format!(
            "package {s:?} has {c:?}; Debian package names hold only lowercase letters, digits, '+', '-' and '.'"
        ));
    }
    Ok(PackageName(s.to_owned()))
}

/// The user an SSH session logs in as: an existing account, so wider than
/// [`user_name`] (accounts made by other tools may have capitals or dots),
/// but never whitespace, a quote or a shell character: 1 to 32 letters,
/// digits, '.', '_' and '-', not starting with '-'.
pub fn login_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 32 {
        return Err(format!("login user {s:?}: user names are 1 to 32 characters long"));
    }
    if s.starts_with('-') {
        return Err(format!("login user {s:?} must not start with '-'"));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "login user {s:?} has {c:?}; user names hold only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// A POSIX user name as Debian's `useradd` accepts it:
/// `^[a-z_][a-z0-9_-]{0,31}$`.
pub fn user_name(s: &str) -> Result<UserName, String> {
    if s.is_empty() {
        return Err("user name is empty".into());
    }
    if s.len() > 32 {
        return Err(format!(
            "user name {s:?} is {} characters long; the limit is 32",
            s.len()
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        return Err(format!("user name {s:?} must start with a lowercase letter or '_'"));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
    {
        return Err(format!(
            "user name {s:?} has {c:?}; user names hold only lowercase letters, digits, '_' and '-'"
        ));
    }
    Ok(UserName(s.to_owned()))
}

/// Accounts Debian creates for the system: an admin user must not be one of
/// them (its keys, shell and sudo rule would be rewritten).
const RESERVED_USERS: &[&str] = &[
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    "_apt",
    "sshd",
    "messagebus",
    "syslog",
    "ubuntu",
    "debian",
];

/// A user name usable for `admin_user`: a valid name that is not a system
/// account (`root`, `daemon`, `nobody`, `systemd-*`, ...).
pub fn admin_user_name(s: &str) -> Result<UserName, String> {
    let name = user_name(s)?;
    if RESERVED_USERS.contains(&s) || s.starts_with("systemd-") {
        return Err(format!(
            "user name {s:?} is a system account; admin_user manages a person's account, pick another name (e.g. \"ops\")"
        ));
    }
    Ok(name)
}

/// A sysctl key: dot-separated parts of `[a-z0-9_-]` (a `/` spells a dot
/// inside one part, as sysctl(8) does).
pub fn sysctl_key(s: &str) -> Result<SysctlKey, String> {
    if s.is_empty() {
        return Err("sysctl key is empty".into());
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | '/')))
    {
        return Err(format!(
            "sysctl key {s:?} has {c:?}; keys are dotted names of lowercase letters, digits, '_' and '-' such as \"net.ipv4.ip_forward\""
        ));
    }
    if !s.contains('.') {
        return Err(format!(
            "sysctl key {s:?} has no dot; write the full dotted name such as \"net.ipv4.ip_forward\""
        ));
    }
    if s.split('.').any(str::is_empty) || s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        return Err(format!("sysctl key {s:?} has an empty part"));
    }
    Ok(SysctlKey(s.to_owned()))
}

/// A sysctl value: one line of printable text (several numbers are
/// separated by spaces); whitespace is collapsed as the kernel prints it.
pub fn sysctl_value(key: &str, s: &str) -> Result<SysctlValue, String> {
    sysctl_value_line(s).map_err(|e| format!("sysctl {key}: {e}"))
}

/// [`sysctl_value`] without the key (the plan-time check on a map value,
/// whose diagnostic path already names the key).
pub fn sysctl_value_line(s: &str) -> Result<SysctlValue, String> {
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "value {s:?} holds a control character (a newline?); write one line"
        ));
    }
    let v = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if v.is_empty() {
        return Err("value is empty".to_owned());
    }
    Ok(SysctlValue(v))
}

/// A kernel module name: letters, digits, `_` and `-`, 55 characters at most.
pub fn module_name(s: &str) -> Result<ModuleName, String> {
    if s.is_empty() || s.len() > 55 {
        return Err(format!("kernel module {s:?}: names are 1 to 55 characters long"));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        let hint = if c == '.' {
            " (write the module name, not the .ko file)"
        } else {
            ""
        };
        return Err(format!(
            "kernel module {s:?} has {c:?}; module names hold only letters, digits, '_' and '-'{hint}"
        ));
    }
    Ok(ModuleName(s.to_owned()))
}

/// Key types OpenSSH 9 accepts in authorized_keys by default.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// One OpenSSH public key line `type base64 [comment]` (as in a `.pub`
/// file; a trailing newline is fine). The base64 blob is decoded and must
/// name the same key type. A private key pasted by mistake is refused
/// without echoing it.
pub fn public_key(s: &str) -> Result<PublicKey, String> {
    let t = s.trim();
    if t.contains("PRIVATE KEY") {
        return Err(
            "this is a PRIVATE key; authorized_keys takes the public key (the .pub file, e.g. file(\"~/.ssh/id_ed25519.pub\")). Treat the pasted key as exposed if this configuration was shared".into(),
        );
    }
    if t.is_empty() {
        return Err("public key is empty".into());
    }
    if t.contains('\n') {
        return Err("public key spans several lines; give one key per list element".into());
    }
    let fields: Vec<&str> = t.split_whitespace().collect();
    let kind = fields[0];
    if kind == "ssh-dss" {
        return Err("DSA keys (ssh-dss) are refused by OpenSSH 9; use an ed25519 key (ssh-keygen -t ed25519)".into());
    }
    if !KEY_TYPES.contains(&kind) {
        let shown: String = kind.chars().take(40).collect();
        return Err(format!(
            "public key starts with {shown:?}, not a key type; expected one of {} followed by the base64 key (options such as from=\"...\" are not supported)",
            KEY_TYPES.join(", ")
        ));
    }
    let Some(b64) = fields.get(1) else {
        return Err(format!("public key of type {kind} has no base64 key after the type"));
    };
    let blob = STANDARD
        .decode(b64)
        .map_err(|e| format!("public key of type {kind}: the key is not valid base64 ({e})"))?;
    let inner = blob
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|n| blob.get(4..4 + n));
    match inner {
        Some(t) if t == kind.as_bytes() => {}
        Some(t) => {
            return Err(format!(
                "public key says {kind} but its base64 blob holds a {} key; the line was edited or pieced together",
                String::from_utf8_lossy(t)
            ));
        }
        None => return Err(format!("public key of type {kind}: the base64 blob is truncated")),
    }
    Ok(PublicKey(fields.join(" ")))
}

/// sshd's `PermitRootLogin`: `yes`, `no`, `prohibit-password`,
/// `forced-commands-only`.
pub fn permit_root_login(s: &str) -> Result<String, String> {
    match s {
        "yes" | "no" | "prohibit-password" | "forced-commands-only" => Ok(s.to_owned()),
        "without-password" => {
            Err("permit_root_login \"without-password\" is the deprecated spelling; write \"prohibit-password\"".into())
        }
        _ => Err(format!(
            "permit_root_login {s:?}: write \"yes\", \"no\", \"prohibit-password\" or \"forced-commands-only\""
        )),
    }
}

/// `containerd`, `docker` or `none`.
pub fn container_runtime(s: &str) -> Result<String, String> {
    match s {
        "containerd" | "docker" | "none" => Ok(s.to_owned()),
        _ => Err(format!(
            "container_runtime {s:?}: write \"containerd\", \"docker\" or \"none\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{PortRange, Protocol};

    fn err<T: std::fmt::Debug>(r: Result<T, String>) -> String {
        r.expect_err("expected a validation error")
    }

    #[test]
    fn addresses_are_ips_or_dns_names_never_shell_words() {
        use crate::network::address;
        for ok in [
            "203.0.113.10",
            "2001:db8::1",
            "::1",
            "vps-1.example.com",
            "VPS_1.example.com.",
            "localhost",
        ] {
            assert_eq!(address(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("203.0.113.10;touch /tmp/pwned", "has ';'"),
            ("host name", "has ' '"),
            ("a\nb", "has '\\n'"),
            ("$(id)", "has '$'"),
            ("-oProxyCommand", "must not start or end with '-'"),
            ("a..b", "neither an IP address nor a DNS name"),
            ("", "empty"),
        ] {
            let e = err(address(bad));
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        assert!(err(address(&"a".repeat(254))).contains("at most 253"));
    }

    #[test]
    fn login_names_are_account_names() {
        for ok in ["root", "ubuntu", "Admin.User", "deploy_1", "ec2-user"] {
            assert_eq!(login_name(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("root$(id)", "has '$'"),
            ("x y", "has ' '"),
            ("-oProxyCommand", "must not start with '-'"),
            ("", "1 to 32"),
            ("o'brien", "has '\\''"),
        ] {
            let e = err(login_name(bad));
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_sysctl_value_is_one_line() {
        assert_eq!(
            sysctl_value_line(" 4096\t87380  6291456 ").map(|v| v.0),
            Ok("4096 87380 6291456".to_owned())
        );
        assert!(err(sysctl_value_line("1\ntouch /tmp/pwned")).contains("control character"));
        assert!(err(sysctl_value("vm.swappiness", "")).starts_with("sysctl vm.swappiness: value is empty"));
    }

    #[test]
    fn hostnames() {
        for ok in ["cp-1", "a", "node1.example.com", &"a".repeat(63)] {
            assert_eq!(hostname(ok).map(|h| h.as_str().to_owned()), Ok(ok.to_string()));
        }
        let cases = [
            ("", "hostname is empty"),
            (
                "cp_1",
                "hostname \"cp_1\": label \"cp_1\" has '_' at position 3; labels hold only lowercase letters, digits and '-'",
            ),
            (
                "Cp1",
                "hostname \"Cp1\": label \"Cp1\" has 'C' at position 1; labels hold only lowercase letters, digits and '-'; use lowercase",
            ),
            ("-cp", "hostname \"-cp\": label \"-cp\" must not start or end with '-'"),
            (
                "a..b",
                "hostname \"a..b\" has an empty label (two dots in a row, or a dot at an end)",
            ),
            (
                "x; reboot",
                "hostname \"x; reboot\": label \"x; reboot\" has ';' at position 2; labels hold only lowercase letters, digits and '-'",
            ),
        ];
        for (input, msg) in cases {
            assert_eq!(err(hostname(input)), msg, "{input:?}");
        }
        assert!(err(hostname(&"a".repeat(64))).contains("is 64 characters long; the limit is 63"));
    }

    #[test]
    fn time_zones() {
        for ok in [
            "UTC",
            "Europe/Paris",
            "America/New_York",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "America/Port-au-Prince",
        ] {
            assert!(time_zone(ok).is_ok(), "{ok}");
        }
        let cases = [
            (
                "Paris",
                "time zone \"Paris\" is not an IANA name; write Area/Location such as \"Europe/Paris\", or \"UTC\"",
            ),
            (
                "europe/Paris",
                "time zone \"europe/Paris\": unknown area \"europe\"; IANA areas are Africa, America, Antarctica, Arctic, Asia, Atlantic, Australia, Europe, Indian, Pacific, Etc (case matters)",
            ),
            (
                "Europe/../../etc/passwd",
                "time zone \"Europe/../../etc/passwd\": \"..\" is not a zone name part; parts start with a letter and hold letters, digits, '_', '-', '+' (spaces are written '_', as in \"America/New_York\")",
            ),
            (
                "America/New York",
                "time zone \"America/New York\": \"New York\" is not a zone name part; parts start with a letter and hold letters, digits, '_', '-', '+' (spaces are written '_', as in \"America/New_York\")",
            ),
        ];
        for (input, msg) in cases {
            assert_eq!(err(time_zone(input)), msg, "{input:?}");
        }
    }

    #[test]
    fn package_names() {
        for ok in ["curl", "g++", "libc6.1-dev", "0ad"] {
            assert!(package_name(ok).is_ok(), "{ok}");
        }
        let cases = [
            (
                "curl=7.88.1",
                "package \"curl=7.88.1\": versions are not supported; write the name only (\"curl\"); packages are kept present, not pinned",
            ),
            (
                "curl:amd64",
                "package \"curl:amd64\": architecture qualifiers (:amd64) are not supported; write the name only (\"curl\")",
            ),
            ("c", "package \"c\": Debian package names have at least two characters"),
            ("-f", "package \"-f\" must start with a lowercase letter or a digit"),
            ("Curl", "package \"Curl\" must start with a lowercase letter or a digit"),
            (
                "curl;reboot",
                "package \"curl;reboot\" has ';'; Debian package names hold only lowercase letters, digits, '+', '-' and '.'",
            ),
            (
                "a b",
                "package \"a b\" has ' '; Debian package names hold only lowercase letters, digits, '+', '-' and '.'",
            ),
        ];
        for (input, msg) in cases {
            assert_eq!(err(package_name(input)), msg, "{input:?}");
        }
    }

    #[test]
    fn user_names() {
        for ok in ["ops", "_svc", "deploy-2", &"a".repeat(32)] {
            assert!(admin_user_name(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", "user name is empty"),
            ("2ops", "user name \"2ops\" must start with a lowercase letter or '_'"),
            ("Ops", "user name \"Ops\" must start with a lowercase letter or '_'"),
            (
                "op$(id)",
                "user name \"op$(id)\" has '$'; user names hold only lowercase letters, digits, '_' and '-'",
            ),
            (
                "root",
                "user name \"root\" is a system account; admin_user manages a person's account, pick another name (e.g. \"ops\")",
            ),
            (
                "systemd-network",
                "user name \"systemd-network\" is a system account; admin_user manages a person's account, pick another name (e.g. \"ops\")",
            ),
        ];
        for (input, msg) in cases {
            assert_eq!(err(admin_user_name(input)), msg, "{input:?}");
        }
        assert!(user_name("root").is_ok());
        assert_eq!(
            err(user_name(&"a".repeat(33))),
            format!("user name {:?} is 33 characters long; the limit is 32", "a".repeat(33))
        );
    }

    #[test]
    fn sysctl_keys_and_values() {
        for ok in [
            "net.ipv4.ip_forward",
            "net.bridge.bridge-nf-call-iptables",
            "net.ipv4.conf.eth0/100.rp_filter",
        ] {
            assert!(sysctl_key(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", "sysctl key is empty"),
            (
                "kernel",
                "sysctl key \"kernel\" has no dot; write the full dotted name such as \"net.ipv4.ip_forward\"",
            ),
            ("net..ipv4", "sysctl key \"net..ipv4\" has an empty part"),
            (
                "net.ipv4.ip_forward=1",
                "sysctl key \"net.ipv4.ip_forward=1\" has '='; keys are dotted names of lowercase letters, digits, '_' and '-' such as \"net.ipv4.ip_forward\"",
            ),
        ];
        for (input, msg) in cases {
            assert_eq!(err(sysctl_key(input)), msg, "{input:?}");
        }
        assert_eq!(
            sysctl_value("k.x", " 4096\t87380  6291456 ").map(|v| v.0),
            Ok("4096 87380 6291456".to_string())
        );
        assert_eq!(
            err(sysctl_value("k.x", "1\nkernel.panic=0")),
            "sysctl k.x: value \"1\\nkernel.panic=0\" holds a control character (a newline?); write one line"
        );
        assert_eq!(err(sysctl_value("k.x", "  ")), "sysctl k.x: value is empty");
    }

    #[test]
    fn module_names() {
        assert!(module_name("br_netfilter").is_ok());
        assert!(module_name("nf-conntrack").is_ok());
        assert_eq!(
            err(module_name("overlay.ko")),
            "kernel module \"overlay.ko\" has '.'; module names hold only letters, digits, '_' and '-' (write the module name, not the .ko file)"
        );
        assert_eq!(
            err(module_name("")),
            "kernel module \"\": names are 1 to 55 characters long"
        );
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr("10.0.0.0/8").map(|c| c.to_string()), Ok("10.0.0.0/8".into()));
        assert_eq!(cidr("0.0.0.0/0").map(|c| c.to_string()), Ok("0.0.0.0/0".into()));
        assert_eq!(cidr("192.0.2.7").map(|c| c.to_string()), Ok("192.0.2.7/32".into()));
        assert_eq!(cidr("FD00::/8").map(|c| c.to_string()), Ok("fd00::/8".into()));
        let cases = [
            (
                "10.0.0.1/8",
                "\"10.0.0.1/8\" has host bits set after the /8 prefix; did you mean \"10.0.0.0/8\"?",
            ),
            (
                "10.0.0.0/33",
                "\"10.0.0.0/33\" is not a CIDR: prefix length \"33\" must be a number from 0 to 32",
            ),
            (
                "fd00::1/8",
                "\"fd00::1/8\" has host bits set after the /8 prefix; did you mean \"fd00::/8\"?",
            ),
            (
                "10.0.0/8",
                "\"10.0.0/8\" is not a CIDR: \"10.0.0\" is not an IPv4 or IPv6 address",
            ),
            ("any", "\"any\" is not a CIDR: \"any\" is not an IPv4 or IPv6 address"),
        ];
        for (input, msg) in cases {
            assert_eq!(err(cidr(input)), msg, "{input:?}");
        }
    }

    #[test]
    fn ports_and_protocols() {
        assert_eq!(port_range("22"), Ok(PortRange { low: 22, high: 22 }));
        assert_eq!(
            port_range("30000-32767"),
            Ok(PortRange {
                low: 30000,
                high: 32767
            })
        );
        let cases = [
            ("0", "port \"0\": 0 is outside 1-65535"),
            ("65536", "port \"65536\": 65536 is outside 1-65535"),
            (
                "ssh",
                "port \"ssh\": \"ssh\" is not a number; write \"22\" or a range \"30000-32767\"",
            ),
            (
                "32767-30000",
                "port range \"32767-30000\" runs backwards; write \"30000-32767\"",
            ),
            (
                "22-",
                "port \"22-\": \"\" is not a number; write \"22\" or a range \"30000-32767\"",
            ),
        ];
        for (input, msg) in cases {
            assert_eq!(err(port_range(input)), msg, "{input:?}");
        }
        assert_eq!(protocol("udp"), Ok(Protocol::Udp));
        assert_eq!(
            err(protocol("icmp")),
            "protocol \"icmp\" is not supported; write \"tcp\" or \"udp\""
        );
    }

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@laptop";

    #[test]
    fn public_keys() {
        assert_eq!(
            public_key(&format!("{ED25519}\n")).map(|k| k.0),
            Ok(ED25519.to_string())
        );
        assert_eq!(
            public_key("ssh-ed25519   AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
                .map(|k| k.0),
            Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl".into())
        );
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n";
        let msg = err(public_key(private));
        assert!(
            msg.starts_with("this is a PRIVATE key; authorized_keys takes the public key"),
            "{msg}"
        );
        assert!(
            !msg.contains("b3BlbnNzaC1rZXkt"),
            "the message must not echo the private key"
        );
        let cases = [
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
                "public key says ssh-rsa but its base64 blob holds a ssh-ed25519 key; the line was edited or pieced together",
            ),
            (
                "ssh-ed25519 not*base64",
                "public key of type ssh-ed25519: the key is not valid base64 (Invalid symbol 42, offset 3.)",
            ),
            (
                "ssh-ed25519",
                "public key of type ssh-ed25519 has no base64 key after the type",
            ),
            (
                "ssh-dss AAAA",
                "DSA keys (ssh-dss) are refused by OpenSSH 9; use an ed25519 key (ssh-keygen -t ed25519)",
            ),
            ("", "public key is empty"),
        ];
        for (input, msg) in cases {
            assert_eq!(err(public_key(input)), msg, "{input:?}");
        }
        assert!(
            err(public_key("from=\"10.0.0.1\" ssh-ed25519 AAAA"))
                .starts_with("public key starts with \"from=\\\"10.0.0.1\\\"\", not a key type")
        );
    }

    #[test]
    fn sshd_values() {
        assert!(permit_root_login("prohibit-password").is_ok());
        assert_eq!(
            err(permit_root_login("without-password")),
            "permit_root_login \"without-password\" is the deprecated spelling; write \"prohibit-password\""
        );
        assert_eq!(
            err(permit_root_login("maybe")),
            "permit_root_login \"maybe\": write \"yes\", \"no\", \"prohibit-password\" or \"forced-commands-only\""
        );
        assert_eq!(
            err(container_runtime("podman")),
            "container_runtime \"podman\": write \"containerd\", \"docker\" or \"none\""
        );
    }
}
