//! What a host is and has, gathered by ONE script in ONE exec ([`SCRIPT`])
//! and parsed here without I/O ([`parse`]). The script prints a fixed JSON
//! skeleton whose texts are base64, so it needs only coreutils on the host;
//! all interpretation happens in Rust, where it is unit-tested on recorded
//! outputs of real hosts (src/host/testdata).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::manifest::Manifest;
use super::spec::HostSpec;

/// The facts script: POSIX sh, run as root; the query on stdin (see
/// [`query`]).
pub const SCRIPT: &str = include_str!("facts.sh");

/// The facts output could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// Not the JSON skeleton the script prints (a shell profile printing
    /// text, a truncated transfer).
    #[error("the facts script printed something other than its JSON document")]
    NotJson(#[source] serde_json::Error),
    /// A format this provider does not know (a newer script?).
    #[error("the facts script printed format {0}; this provider reads format 1")]
    Format(u32),
    /// A field that must be base64 was not.
    #[error("facts field {0:?} is not base64")]
    Base64(String),
}

/// `/etc/os-release` fields that matter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsInfo {
    /// `ID` (debian, ubuntu, ...).
    pub id: String,
    /// `ID_LIKE`.
    pub id_like: String,
    /// `VERSION_ID` (12, 24.04).
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
}

/// What the host allows us to change (container hosts allow less).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// systemd is PID 1 (systemctl works).
    pub systemd: bool,
    /// The container technology when the host is a container
    /// (`systemd-detect-virt --container`), e.g. `systemd-nspawn`, `lxc`.
    pub container: Option<String>,
    /// Modules can be loaded: CAP_SYS_MODULE in the bounding set, module
    /// loading not disabled, and the running kernel's modules on disk.
    pub can_load_modules: bool,
    /// Swap can be switched: not a container (swap belongs to the machine
    /// hosting a container; swapon/swapoff are refused inside).
    pub swap_controllable: bool,
}

/// The SSH session the facts were gathered through (`$SSH_CONNECTION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SshSession {
    /// The client's address as the host sees it.
    pub peer: IpAddr,
    /// The server port the session came in on.
    pub port: u16,
}

/// A queried user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFacts {
    /// `getent passwd` fields, when the user exists.
    pub home: Option<String>,
    /// Login shell.
    pub shell: Option<String>,
    /// `~/.ssh/authorized_keys` text, when the file exists.
    pub authorized_keys: Option<String>,
    /// `/etc/sudoers.d/selfhost-<name>` text, when it exists.
    pub sudoers: Option<String>,
}

impl UserFacts {
    /// Whether the account exists.
    pub fn exists(&self) -> bool {
        self.home.is_some()
    }
}

/// A queried sysctl key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SysctlFacts {
    /// Running value (whitespace collapsed); `None` when the key does not
    /// exist on this kernel.
    pub value: Option<String>,
    /// Whether its /proc/sys file is writable (false on read-only /proc/sys).
    pub writable: bool,
}

/// Everything [`crate::host::observe`], [`crate::host::converge`] and
/// [`crate::host::revert`] look at. Texts of files are `None` when the file
/// is absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Facts {
    pub os: OsInfo,
    pub kernel: String,
    pub arch: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub machine_id: String,
    /// Running (kernel) host name.
    pub hostname: String,
    pub etc_hostname: Option<String>,
    pub etc_hosts: Option<String>,
    /// Zone named by the /etc/localtime symlink.
    pub localtime_zone: Option<String>,
    pub etc_timezone: Option<String>,
    /// Active swap devices/files (/proc/swaps).
    pub swaps_active: Vec<String>,
    pub fstab: Option<String>,
    pub modules_load: Option<String>,
    pub sysctl_conf: Option<String>,
    /// `sshd -T` lowercased keys; several values of a key joined by `\n`.
    pub sshd_effective: Option<BTreeMap<String, String>>,
    /// `sshd -T`'s message when it failed.
    pub sshd_error: Option<String>,
    pub sshd_dropin: Option<String>,
    pub sshd_config: Option<String>,
    /// Drop-ins holding directives we disabled (`#selfhost-disabled# `).
    pub sshd_disabled_in: Vec<String>,
    /// `nft list table inet selfhost` when the table exists.
    pub nft_table: Option<String>,
    pub nft_file: Option<String>,
    pub firewall_unit_enabled: bool,
    pub has_nft: bool,
    pub auto_upgrades: Option<String>,
    pub containerd_config: Option<String>,
    pub containerd_active: bool,
    pub docker_active: bool,
    pub capabilities: Capabilities,
    pub ssh_session: Option<SshSession>,
    /// The on-host manifest; `Err` holds why it could not be read.
    pub manifest: Option<Result<Manifest, String>>,
    pub has_apt: bool,
    /// Queried packages: installed version when installed (`ii`).
    pub packages: BTreeMap<String, Option<String>>,
    pub users: BTreeMap<String, UserFacts>,
    pub sysctl: BTreeMap<String, SysctlFacts>,
    /// Queried modules: loaded (present in /sys/module).
    pub modules: BTreeMap<String, bool>,
    /// Queried time zones: known to the host's tzdata.
    pub zones: BTreeMap<String, bool>,
}

/// Packages always queried: the runtime and upgrade aspects read them.
pub const ALWAYS_QUERIED_PACKAGES: &[&str] = &["containerd", "docker.io", "unattended-upgrades"];

/// The facts script's stdin for looking at `managed`: one `kind value` line
/// per package, user, sysctl key, module and the time zone. Values that do
/// not validate are left out (the script would skip them anyway).
pub fn query(managed: &HostSpec) -> Vec<u8> {
    let mut lines = BTreeSet::new();
    for p in ALWAYS_QUERIED_PACKAGES {
        lines.insert(format!("pkg {p}"));
    }
    lines.extend(query_lines(managed));
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.into_bytes()
}

/// The query lines for the items of `managed` (also written to
/// /var/lib/selfhost/query so a facts run without stdin sees them).
pub(crate) fn query_lines(managed: &HostSpec) -> BTreeSet<String> {
    use super::validate as v;
    let mut lines = BTreeSet::new();
    for p in managed.packages.iter().flatten().filter(|p| v::package_name(p).is_ok()) {
        lines.insert(format!("pkg {p}"));
    }
    for u in managed.admin_users.iter().flatten() {
        lines.insert(format!("user {}", u.name));
    }
    for k in managed
        .sysctl
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| v::sysctl_key(k).is_ok())
    {
        lines.insert(format!("sysctl {k}"));
    }
    for m in managed
        .kernel_modules
        .iter()
        .flatten()
        .filter(|m| v::module_name(m).is_ok())
    {
        lines.insert(format!("module {m}"));
    }
    if let Some(tz) = managed.timezone.as_ref().filter(|t| v::time_zone(t).is_ok()) {
        lines.insert(format!("tz {tz}"));
    }
    if managed.unattended_upgrades.is_some() {
        lines.insert("pkg unattended-upgrades".into());
    }
    lines
}

#[derive(Deserialize)]
struct Raw {
    format: u32,
    t: BTreeMap<String, String>,
    q: Vec<RawQuery>,
}

#[derive(Deserialize)]
struct RawQuery {
    k: String,
    i: String,
    f: BTreeMap<String, String>,
}

fn decode_map(m: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, FactsError> {
    m.into_iter()
        .filter(|(k, _)| k != "_")
        .map(|(k, v)| match STANDARD.decode(v.as_bytes()) {
            Ok(b) => Ok((k, String::from_utf8_lossy(&b).into_owned())),
            Err(_) => Err(FactsError::Base64(k)),
        })
        .collect()
}

/// Parse the facts script's stdout.
///
/// # Errors
/// [`FactsError`] when stdout is not the script's document; a missing or
/// odd field is never an error (it reads as absent).
pub fn parse(stdout: &[u8]) -> Result<Facts, FactsError> {
    // Login banners or profile output may precede the document.
    let start = stdout.iter().position(|&b| b == b'{').unwrap_or(0);
    let raw: Raw = serde_json::from_slice(&stdout[start..]).map_err(FactsError::NotJson)?;
    if raw.format != 1 {
        return Err(FactsError::Format(raw.format));
    }
    let t = decode_map(raw.t)?;
    let get = |k: &str| t.get(k).cloned();
    let line = |k: &str| t.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();

    let mut facts = Facts {
        os: parse_os_release(&get("os_release").unwrap_or_default()),
        kernel: line("kernel"),
        arch: line("arch"),
        cpus: line("cpus").parse().unwrap_or(0),
        memory_mb: get("meminfo").as_deref().map(parse_mem_mb).unwrap_or(0),
        disk_gb: get("df_root").as_deref().map(parse_disk_gb).unwrap_or(0),
        machine_id: line("machine_id"),
        hostname: line("hostname"),
        etc_hostname: get("etc_hostname"),
        etc_hosts: get("etc_hosts"),
        localtime_zone: get("localtime").and_then(|l| zone_from_link(l.trim())),
        etc_timezone: get("etc_timezone"),
        swaps_active: get("swaps")
            .map(|s| {
                s.lines()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        fstab: get("fstab"),
        modules_load: get("modules_load"),
        sysctl_conf: get("sysctl_conf"),
        sshd_effective: None,
        sshd_error: None,
        sshd_dropin: get("sshd_dropin"),
        sshd_config: get("sshd_config"),
        sshd_disabled_in: get("sshd_disabled")
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
        nft_table: None,
        nft_file: get("nft_file"),
        firewall_unit_enabled: line("firewall_unit") == "enabled",
        has_nft: t.contains_key("nft.status"),
        auto_upgrades: get("auto_upgrades"),
        containerd_config: get("containerd_config"),
        containerd_active: line("containerd_active") == "active",
        docker_active: line("docker_active") == "active",
        capabilities: Capabilities::default(),
        ssh_session: parse_ssh_connection(&line("ssh_connection")),
        manifest: get("manifest").map(|m| serde_json::from_str::<Manifest>(&m).map_err(|e| e.to_string())),
        has_apt: !line("apt_get").is_empty(),
        ..Facts::default()
    };
    match (get("sshd_t"), line("sshd_t.status").as_str()) {
        (Some(out), "0") => facts.sshd_effective = Some(parse_sshd_t(&out)),
        (Some(out), _) => facts.sshd_error = Some(out.trim().to_owned()),
        (None, _) => facts.sshd_error = Some("sshd is not installed".into()),
    }
    if line("nft.status") == "0" {
        facts.nft_table = get("nft");
    }
    let container = line("container");
    let container = (!container.is_empty() && container != "none").then_some(container);
    let cap_bnd = t
        .get("caps")
        .and_then(|c| c.lines().find_map(|l| l.strip_prefix("CapBnd:")))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_MODULE: u64 = 1 << 16;
    facts.capabilities = Capabilities {
        systemd: line("pid1") == "systemd",
        swap_controllable: container.is_none(),
        can_load_modules: cap_bnd & CAP_SYS_MODULE != 0
            && line("modules_disabled") != "1"
            && line("modules_dir") == "yes",
        container,
    };

    for q in raw.q {
        let item = match STANDARD.decode(q.i.as_bytes()) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => return Err(FactsError::Base64(format!("{}.i", q.k))),
        };
        let f = decode_map(q.f)?;
        let yes = |k: &str| f.get(k).is_some_and(|v| v.trim() == "yes");
        match q.k.as_str() {
            "pkg" => {
                let status = f.get("status").cloned().unwrap_or_default();
                let (abbrev, version) = status.split_once('|').unwrap_or((&status, ""));
                let installed = abbrev.trim() == "ii";
                facts
                    .packages
                    .insert(item, installed.then(|| version.trim().to_owned()));
            }
            "user" => {
                let passwd: Vec<String> = f
                    .get("passwd")
                    .map(|p| p.trim().split(':').map(str::to_owned).collect())
                    .unwrap_or_default();
                let u = UserFacts {
                    home: passwd.get(5).cloned(),
                    shell: passwd.get(6).cloned(),
                    authorized_keys: f.get("authorized_keys").cloned(),
                    sudoers: f.get("sudoers").cloned(),
                };
                facts.users.insert(item, u);
            }
            "sysctl" => {
                let s = SysctlFacts {
                    value: f
                        .get("value")
                        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")),
                    writable: yes("writable"),
                };
                facts.sysctl.insert(item, s);
            }
            "module" => {
                facts.modules.insert(item, yes("loaded"));
            }
            "tz" => {
                facts.zones.insert(item, yes("known"));
            }
            _ => {}
        }
    }
    Ok(facts)
}

fn parse_os_release(text: &str) -> OsInfo {
    let mut os = OsInfo::default();
    for l in text.lines() {
        let Some((k, v)) = l.split_once('=') else { continue };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_owned();
        match k.trim() {
            "ID" => os.id = v,
            "ID_LIKE" => os.id_like = v,
            "VERSION_ID" => os.version_id = v,
            "PRETTY_NAME" => os.pretty_name = v,
            _ => {}
        }
    }
    os
}

fn parse_mem_mb(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn parse_disk_gb(df: &str) -> u64 {
    df.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / (1024 * 1024))
}

/// `/usr/share/zoneinfo/Europe/Paris` (or `../usr/share/zoneinfo/...`) →
/// `Europe/Paris`.
fn zone_from_link(target: &str) -> Option<String> {
    target
        .split_once("zoneinfo/")
        .map(|(_, z)| z.trim_start_matches("posix/").to_owned())
}

fn parse_ssh_connection(s: &str) -> Option<SshSession> {
    let f: Vec<&str> = s.split_whitespace().collect();
    match f.as_slice() {
        [peer, _, _, port] => Some(SshSession {
            peer: peer.parse().ok()?,
            port: port.parse().ok()?,
        }),
        _ => None,
    }
}

fn parse_sshd_t(out: &str) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for l in out.lines() {
        let Some((k, v)) = l.trim().split_once(' ') else {
            continue;
        };
        let e = m.entry(k.to_ascii_lowercase()).or_default();
        if !e.is_empty() {
            e.push('\n');
        }
        e.push_str(v.trim());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: &[u8] = include_bytes!("testdata/fresh-debian12.json");

    #[test]
    fn fresh_bed_host_parses() {
        let f = parse(FRESH).expect("parse");
        assert_eq!(f.os.id, "debian");
        assert_eq!(f.os.version_id, "12");
        assert_eq!(f.os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(f.hostname, "tb-host1");
        assert_eq!(f.localtime_zone.as_deref(), Some("Etc/UTC"));
        assert!(f.cpus >= 1 && f.memory_mb > 0 && f.disk_gb > 0);
        assert_eq!(f.machine_id.len(), 32);
        assert_eq!(f.capabilities.container.as_deref(), Some("systemd-nspawn"));
        assert!(f.capabilities.systemd);
        assert!(!f.capabilities.can_load_modules, "nspawn drops CAP_SYS_MODULE");
        assert!(!f.capabilities.swap_controllable);
        assert_eq!(f.ssh_session.map(|s| s.port), Some(22));
        assert!(f.nft_table.is_none() && f.has_nft);
        assert_eq!(f.packages.get("curl"), Some(&None));
        assert!(f.users.get("ops").is_some_and(|u| !u.exists()));
        let fwd = &f.sysctl["net.ipv4.ip_forward"];
        assert_eq!((fwd.value.as_deref(), fwd.writable), (Some("0"), true));
        assert_eq!(f.zones.get("Europe/Paris"), Some(&true));
        let sshd = f.sshd_effective.as_ref().expect("sshd -T ran");
        assert_eq!(sshd["port"], "22");
        assert!(f.manifest.is_none());
        assert!(f.has_apt);
    }

    #[test]
    fn banner_before_the_document_is_skipped_and_garbage_is_an_error() {
        let mut with_banner = b"Welcome to host\n".to_vec();
        with_banner.extend_from_slice(FRESH);
        assert!(parse(&with_banner).is_ok());
        assert!(matches!(
            parse(b"sh: 1: base64: not found"),
            Err(FactsError::NotJson(_))
        ));
        assert!(matches!(
            parse(br#"{"format":2,"t":{},"q":[]}"#),
            Err(FactsError::Format(2))
        ));
        assert!(matches!(
            parse(br#"{"format":1,"t":{"kernel":"*"},"q":[]}"#),
            Err(FactsError::Base64(_))
        ));
    }

    #[test]
    fn query_lists_validated_items_only() {
        let spec = HostSpec {
            packages: Some(["curl".to_string(), "bad;name".to_string()].into()),
            timezone: Some("Europe/Paris".into()),
            ..HostSpec::default()
        };
        let q = String::from_utf8(query(&spec)).unwrap();
        assert_eq!(
            q,
            "pkg containerd\npkg curl\npkg docker.io\npkg unattended-upgrades\ntz Europe/Paris\n"
        );
    }
}
