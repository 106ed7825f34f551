//! observe/converge/revert on facts RECORDED from a real bed host
//! (tests/host_bed.rs records them): a fresh Debian 12 systemd-nspawn host,
//! and the same host after converging the canonical spec. No I/O.

use std::collections::BTreeMap;

use super::facts::{Facts, SysctlFacts, parse};
use super::spec::{Firewall, HostSpec};
use super::{HostError, converge, observe, revert};

const FRESH: &[u8] = include_bytes!("testdata/fresh-debian12.json");
const CONVERGED: &[u8] = include_bytes!("testdata/converged-debian12.json");

fn converged() -> Facts {
    parse(CONVERGED).expect("parse converged")
}

/// The canonical spec as the converged host's manifest recorded it (the
/// bed's own key for `ops`).
fn canonical() -> HostSpec {
    match &converged().manifest {
        Some(Ok(m)) => m.managed.clone(),
        other => panic!("recorded manifest: {other:?}"),
    }
}

fn paths(obs: &super::Observation) -> Vec<String> {
    obs.warnings.iter().map(|w| w.path.join(".")).collect()
}

#[test]
fn fresh_host_observes_every_managed_aspect_as_drift() {
    let spec = canonical();
    let obs = observe(&spec, &parse(FRESH).unwrap());
    let s = obs.spec;
    assert_eq!(s.hostname.as_deref(), Some("tb-host1"));
    assert_eq!(s.timezone.as_deref(), Some("Etc/UTC"));
    assert_eq!(s.packages, Some(Default::default()));
    assert_eq!(s.admin_users, Some(vec![]));
    assert_eq!(s.firewall, Some(Firewall { allow: vec![] }));
    assert_eq!(
        s.sysctl,
        Some([("net.ipv4.ip_forward".to_string(), "0".to_string())].into())
    );
    assert_eq!(s.kernel_modules, Some(Default::default()), "not in modules-load.d yet");
    let ssh = s.ssh_hardening.expect("ssh");
    assert_eq!(ssh.password_authentication, Some(true));
    assert_eq!(
        ssh.permit_root_login.as_deref(),
        Some("prohibit-password"),
        "without-password is read as its new name"
    );
    assert_eq!(s.container_runtime.as_deref(), Some("none"));
    assert_eq!(
        s.swap,
        Some(false),
        "no swap in fstab, and swap in a container is the machine's"
    );
}

#[test]
fn fresh_host_converges_in_dependency_order_with_the_manifest_on_stdin() {
    let spec = canonical();
    let steps = converge(&spec, &parse(FRESH).unwrap()).expect("converge");
    let aspects: Vec<&str> = steps.iter().map(|s| s.aspect).collect();
    assert_eq!(
        aspects,
        [
            "hostname",
            "timezone",
            "packages",
            "admin_users",
            "ssh_hardening",
            "swap",
            "kernel_modules",
            "sysctl",
            "firewall",
            "container_runtime"
        ]
    );
    let by = |a: &str| steps.iter().find(|s| s.aspect == a).expect(a);
    assert_eq!(by("swap").summary, "swap: recorded as managed");
    assert!(
        by("packages")
            .script
            .contains("install --no-install-recommends 'curl' 'jq'")
    );
    assert!(by("hostname").script.contains("name='cp-1'\n"));
    assert!(
        !by("kernel_modules").script.contains("modprobe"),
        "this host cannot load modules"
    );
    assert!(by("sysctl").script.contains("sysctl -q -w 'net.ipv4.ip_forward=1'"));
    assert!(by("ssh_hardening").script.contains("sshd -t"));
    assert!(by("firewall").script.contains("nft -c -f"));
    // The last step's manifest records every aspect and the first backups.
    let m: super::manifest::Manifest = serde_json::from_slice(&by("container_runtime").stdin).unwrap();
    assert_eq!(m.managed, spec);
    assert_eq!(m.backups.get("hostname"), Some(&Some("tb-host1".to_string())));
    assert_eq!(
        m.backups.get("sysctl:net.ipv4.ip_forward"),
        Some(&Some("0".to_string()))
    );
    assert_eq!(
        m.backups.get("user:ops"),
        Some(&None),
        "ops did not exist: revert removes it"
    );
    // Each earlier step carries the manifest so far, not the final one.
    let first: super::manifest::Manifest = serde_json::from_slice(&steps[0].stdin).unwrap();
    assert_eq!(
        first.managed,
        HostSpec {
            hostname: spec.hostname.clone(),
            ..HostSpec::default()
        }
    );
}

#[test]
fn converged_host_has_no_drift_and_only_capability_warnings() {
    let spec = canonical();
    let obs = observe(&spec, &converged());
    assert_eq!(obs.spec, spec);
    assert_eq!(paths(&obs), ["kernel_modules.br_netfilter", "kernel_modules.overlay"]);
}

#[test]
fn converge_is_idempotent_on_the_converged_host() {
    assert_eq!(converge(&canonical(), &converged()).expect("converge"), vec![]);
}

#[test]
fn import_reads_the_manifest_and_sees_no_drift() {
    let f = converged();
    let Some(Ok(m)) = &f.manifest else {
        panic!("no manifest")
    };
    assert_eq!(observe(&m.managed, &f).spec, m.managed);
}

#[test]
fn revert_undoes_in_reverse_order_and_removes_the_manifest() {
    let steps = revert(&canonical(), &converged()).expect("revert");
    let aspects: Vec<&str> = steps.iter().map(|s| s.aspect).collect();
    assert_eq!(
        aspects,
        [
            "container_runtime",
            "firewall",
            "sysctl",
            "kernel_modules",
            "ssh_hardening",
            "admin_users",
            "timezone",
            "hostname",
            "manifest"
        ]
    );
    let by = |a: &str| steps.iter().find(|s| s.aspect == a).expect(a);
    assert!(by("sysctl").script.contains("sysctl -q -w 'net.ipv4.ip_forward=0'"));
    assert!(by("admin_users").script.contains("userdel -r -f 'ops'"));
    assert!(by("hostname").script.contains("hostname 'tb-host1'"));
    assert!(by("firewall").script.contains("nft delete table inet selfhost"));
}

#[test]
fn a_flushed_table_observes_as_no_rules() {
    let mut f = converged();
    f.nft_table = Some(
        "table inet selfhost {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n"
            .into(),
    );
    let spec = canonical();
    let obs = observe(&spec, &f);
    assert_eq!(obs.spec.firewall, Some(Firewall { allow: vec![] }));
    assert!(paths(&obs).contains(&"firewall".to_string()));
    f.nft_table = None;
    assert_eq!(observe(&spec, &f).spec.firewall, Some(Firewall { allow: vec![] }));
    let steps = converge(&spec, &f).unwrap();
    assert_eq!(steps.iter().map(|s| s.aspect).collect::<Vec<_>>(), ["firewall"]);
}

#[test]
fn a_read_only_sysctl_observes_as_its_file_with_a_warning_not_a_perpetual_diff() {
    let mut f = converged();
    f.sysctl.insert(
        "kernel.panic".into(),
        SysctlFacts {
            value: Some("0".into()),
            writable: false,
        },
    );
    let mut spec = canonical();
    let want: BTreeMap<String, String> = [
        ("net.ipv4.ip_forward".to_string(), "1".to_string()),
        ("kernel.panic".to_string(), "10".to_string()),
    ]
    .into();
    spec.sysctl = Some(want.clone());
    // Before the file has it: drift (the file is what converge can fix).
    let steps = converge(&spec, &f).unwrap();
    let sysctl = steps.iter().find(|s| s.aspect == "sysctl").expect("sysctl step");
    assert!(sysctl.script.contains("kernel.panic = 10"));
    assert!(
        !sysctl.script.contains("'kernel.panic=10'"),
        "no sysctl -w on a read-only key"
    );
    // After: the file is right, the running value cannot be: a warning.
    f.sysctl_conf = Some(format!(
        "{}kernel.panic = 10\nnet.ipv4.ip_forward = 1\n",
        super::aspects::HEADER
    ));
    let obs = observe(&spec, &f);
    assert_eq!(obs.spec.sysctl, Some(want));
    assert!(paths(&obs).contains(&"sysctl.kernel.panic".to_string()));
    assert!(obs.warnings.iter().any(|w| w.message.contains("read-only")));
}

#[test]
fn tampered_sshd_and_keys_show_as_drift() {
    let mut f = converged();
    f.sshd_effective
        .as_mut()
        .unwrap()
        .insert("passwordauthentication".into(), "yes".into());
    f.users.get_mut("ops").unwrap().authorized_keys = Some(String::new());
    let spec = canonical();
    let obs = observe(&spec, &f).spec;
    assert_eq!(obs.ssh_hardening.unwrap().password_authentication, Some(true));
    assert_eq!(obs.admin_users.unwrap()[0].authorized_keys, Vec::<String>::new());
    let steps = converge(&spec, &f).unwrap();
    assert_eq!(
        steps.iter().map(|s| s.aspect).collect::<Vec<_>>(),
        ["admin_users", "ssh_hardening"]
    );
}

#[test]
fn a_non_apt_os_is_refused_by_name() {
    let mut f = converged();
    f.os.id = "fedora".into();
    f.os.id_like = String::new();
    f.os.pretty_name = "Fedora Linux 40 (Server Edition)".into();
    let err = converge(&canonical(), &f).expect_err("refused");
    assert!(matches!(err, HostError::UnsupportedOs(_)));
    assert_eq!(
        err.to_string(),
        "Fedora Linux 40 (Server Edition) is not supported: selfhost_vps_host provisions Debian 12 and Ubuntu 22.04/24.04 (apt-based hosts)"
    );
}

#[test]
fn a_package_name_that_is_a_command_never_reaches_a_script() {
    let spec = HostSpec {
        packages: Some(["curl;reboot".to_string()].into()),
        ..HostSpec::default()
    };
    match converge(&spec, &converged()) {
        Err(HostError::Invalid(errs)) => {
            assert_eq!(errs[0].0, ["packages", "curl;reboot"]);
            assert!(errs[0].1.contains("has ';'"));
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn the_lockout_check_uses_the_session_port_and_peer() {
    let f = converged();
    let mut spec = canonical();
    spec.firewall.as_mut().unwrap().allow.remove(0);
    // 30000-32767 and 6443 do not cover 22.
    assert!(super::check_firewall_keeps_ssh(&spec, 22).is_err());
    assert!(matches!(
        converge(&spec, &f),
        Err(HostError::WouldLockOut { port: 22, .. })
    ));
}

#[test]
fn firewall_spellings_that_mean_the_same_rule_are_not_drift() {
    let mut f = converged();
    f.nft_table = Some(
        "table inet selfhost {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tct state established,related accept\n\t\tiif \"lo\" accept\n\t\tmeta l4proto 1 accept\n\t\tmeta l4proto 58 accept\n\t\ttcp dport 22 accept comment \"selfhost-allow-0\"\n\t\tip saddr 10.1.2.3 udp dport 53 accept comment \"selfhost-allow-1\"\n\t\tip6 saddr fd00::/8 udp dport 53 accept comment \"selfhost-allow-1\"\n\t\tdrop comment \"selfhost-default-drop\"\n\t}\n}\n"
            .into(),
    );
    let spec = HostSpec {
        firewall: Some(Firewall {
            allow: vec![
                super::spec::Rule {
                    port: "22".into(),
                    protocol: "tcp".into(),
                    sources: vec![],
                },
                super::spec::Rule {
                    port: "53".into(),
                    protocol: "udp".into(),
                    sources: vec!["10.1.2.3".into(), "FD00::/8".into()],
                },
            ],
        }),
        ..HostSpec::default()
    };
    assert_eq!(observe(&spec, &f).spec, spec, "bare address = /32, IPv6 case");
    // One source of rule 1 removed by hand: drift names what is left.
    f.nft_table = f.nft_table.map(|t| {
        t.replace(
            "\t\tip6 saddr fd00::/8 udp dport 53 accept comment \"selfhost-allow-1\"\n",
            "",
        )
    });
    let seen = observe(&spec, &f).spec.firewall.unwrap();
    assert_eq!(seen.allow[1].sources, ["10.1.2.3/32"]);
}

#[test]
fn rendered_nft_is_the_live_shape_observe_reads() {
    use super::aspects::firewall::{ValidRule, render};
    use super::validate::{cidr, port_range};
    let rules = [
        ValidRule {
            port: port_range("22").unwrap(),
            protocol: super::quote::Protocol::Tcp,
            sources: vec![],
        },
        ValidRule {
            port: port_range("30000-32767").unwrap(),
            protocol: super::quote::Protocol::Udp,
            sources: vec![cidr("10.0.0.0/8").unwrap(), cidr("fd00::/8").unwrap()],
        },
    ];
    let text = render(&rules);
    assert!(text.contains("\t\ttcp dport 22 accept comment \"selfhost-allow-0\"\n"));
    assert!(text.contains("\t\tip saddr 10.0.0.0/8 udp dport 30000-32767 accept comment \"selfhost-allow-1\"\n"));
    assert!(text.contains("\t\tip6 saddr fd00::/8 udp dport 30000-32767 accept comment \"selfhost-allow-1\"\n"));
    assert!(
        text.contains("table inet selfhost\ndelete table inet selfhost\n"),
        "replaces only our table, atomically"
    );
}

#[test]
fn unattended_upgrades_installs_the_package_and_writes_the_periodic_file() {
    let mut spec = canonical();
    spec.unattended_upgrades = Some(true);
    let steps = converge(&spec, &converged()).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].aspect, "unattended_upgrades");
    assert!(steps[0].script.contains("'unattended-upgrades'"));
    assert!(steps[0].script.contains("APT::Periodic::Unattended-Upgrade \"1\";"));
    let mut f = converged();
    f.packages.insert("unattended-upgrades".into(), Some("2.9.1".into()));
    f.auto_upgrades =
        Some("APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n".into());
    assert_eq!(observe(&spec, &f).spec.unattended_upgrades, Some(true));
    spec.unattended_upgrades = Some(false);
    assert_eq!(
        observe(&spec, &f).spec.unattended_upgrades,
        Some(true),
        "drift: it is on"
    );
}

#[test]
fn swap_on_a_machine_that_controls_it_is_switched_off_and_masked() {
    let mut f = converged();
    f.capabilities.swap_controllable = true;
    f.capabilities.container = None;
    f.swaps_active = vec!["/swapfile".into()];
    f.fstab = Some("UUID=abc / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n".into());
    let spec = canonical();
    assert_eq!(observe(&spec, &f).spec.swap, Some(true));
    let steps = converge(&spec, &f).unwrap();
    let swap = steps.iter().find(|s| s.aspect == "swap").expect("swap step");
    assert!(swap.script.contains("swapoff -a"));
    assert!(swap.script.contains("systemctl mask"));
    // In a container the same active swap is the machine's: a warning only.
    f.capabilities.swap_controllable = false;
    f.capabilities.container = Some("lxc".into());
    f.fstab = Some("UUID=abc / ext4 defaults 0 1\n".into());
    let obs = observe(&spec, &f);
    assert_eq!(obs.spec.swap, Some(false));
    assert!(paths(&obs).contains(&"swap".to_string()));
}

#[test]
fn ssh_drop_in_carries_every_managed_keyword() {
    use super::spec::SshHardening;
    let text = super::aspects::ssh_hardening::render(&SshHardening {
        password_authentication: Some(false),
        permit_root_login: Some("no".into()),
        pubkey_authentication: Some(true),
        x11_forwarding: Some(false),
        max_auth_tries: Some(3),
    });
    assert!(text.ends_with(
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\nPubkeyAuthentication yes\nX11Forwarding no\nMaxAuthTries 3\n"
    ));
}

#[test]
fn docker_is_observed_from_its_package() {
    let mut f = converged();
    let spec = HostSpec {
        container_runtime: Some("docker".into()),
        ..HostSpec::default()
    };
    assert_eq!(observe(&spec, &f).spec.container_runtime.as_deref(), Some("containerd"));
    f.packages.insert("docker.io".into(), Some("20.10.24".into()));
    let obs = observe(&spec, &f);
    assert_eq!(obs.spec.container_runtime.as_deref(), Some("docker"));
    assert_eq!(
        paths(&obs),
        ["container_runtime"],
        "docker.service is not running: a warning"
    );
}

#[test]
fn an_admin_user_dropped_from_the_list_loses_sudo_and_the_account_we_created() {
    let mut spec = canonical();
    spec.admin_users = Some(vec![]);
    let steps = converge(&spec, &converged()).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].summary, "admin_users: removed ops");
    assert!(steps[0].script.contains("rm -f '/etc/sudoers.d/selfhost-ops'"));
    assert!(steps[0].script.contains("userdel -r -f 'ops'"));
    let m: super::manifest::Manifest = serde_json::from_slice(&steps[0].stdin).unwrap();
    assert_eq!(m.managed.admin_users, Some(vec![]));
    assert!(
        !m.backups.contains_key("user:ops"),
        "a later re-add takes a fresh backup"
    );
}

#[test]
fn an_aspect_dropped_from_the_configuration_is_left_as_it_is_and_unrecorded() {
    let mut spec = canonical();
    spec.hostname = None;
    let steps = converge(&spec, &converged()).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].summary, "hostname: no longer managed (left as it is)");
    assert!(!steps[0].script.contains("hostname "), "nothing is changed on the host");
    let m: super::manifest::Manifest = serde_json::from_slice(&steps[0].stdin).unwrap();
    assert_eq!(m.managed.hostname, None);
}

/// A manifest edited on the host cannot smuggle a command in as a user
/// name: reading it back validates every name again, and converge and
/// revert refuse the unreadable manifest instead of writing a script.
#[test]
fn hostile_user_name_in_the_manifest_is_refused_before_any_script() {
    let hostile = r#"{"format":1,"managed":{"admin_users":[{"name":"x;touch /tmp/pwned;","authorized_keys":[],"sudo":true}]},"backups":{"user:x;touch /tmp/pwned;":null}}"#;
    let err = serde_json::from_str::<super::manifest::Manifest>(hostile).expect_err("refused");
    assert!(
        err.to_string().contains("user name \"x;touch /tmp/pwned;\" has ';'"),
        "{err}"
    );
    let mut f = converged();
    f.manifest = Some(serde_json::from_str(hostile).map_err(|e| e.to_string()));
    let drop_all = HostSpec {
        admin_users: Some(vec![]),
        ..HostSpec::default()
    };
    assert!(matches!(converge(&drop_all, &f), Err(HostError::Manifest(m)) if m.contains("user name")));
    assert!(matches!(revert(&drop_all, &f), Err(HostError::Manifest(_))));
}

/// Every step sends the manifest, and the script only replaces host.json
/// with a JSON object, by a rename: an empty stdin leaves it as it was.
#[test]
fn steps_replace_the_manifest_atomically_and_only_with_json() {
    let f = parse(FRESH).expect("parse fresh");
    let spec = HostSpec {
        hostname: Some("cp-1".into()),
        ..HostSpec::default()
    };
    let steps = converge(&spec, &f).expect("converge");
    assert_eq!(steps.len(), 1);
    let s = &steps[0];
    assert!(s.stdin.starts_with(b"{") && s.stdin.ends_with(b"}"));
    let check = s.script.find("is not a JSON object").expect("the JSON check");
    let rename = s
        .script
        .find("mv -f /var/lib/selfhost/host.json.new /var/lib/selfhost/host.json")
        .expect("rename");
    assert!(check < rename, "checked before it replaces the manifest");
}
