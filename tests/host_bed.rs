//! The host layer against REAL systemd hosts of the test bed (tb-host1 and
//! tb-host2 only; tb-host3 belongs to another suite), over real sshd with
//! verified host keys. Scripts run through the system OpenSSH client
//! (tests/support/openssh_exec.rs) with one master connection per host, as
//! the provider's pooled connection would. Without the bed: a loud SKIP,
//! except under CI, where it fails.
//!
//! Set SELFHOST_RECORD_FACTS=1 to rewrite the recorded facts under
//! src/host/testdata from tb-host1 (fresh only when the host is still
//! pristine, i.e. curl is not installed; converged always).

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/host_reset.rs"]
mod host_reset;
#[path = "support/openssh_exec.rs"]
mod openssh_exec;
#[path = "support/required.rs"]
mod required;

use std::collections::BTreeSet;

use openssh_exec::{Bed, OpenSsh};
use terraform_provider_selfhost::host::spec::{AdminUser, Firewall, Rule, SshHardening};
use terraform_provider_selfhost::host::{self, Facts, HostError, HostSpec, facts};
use tokio_util::sync::CancellationToken;

/// tb-host2 is shared by the tests below that change it: one at a time.
static HOST2: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn rule(port: &str, sources: &[&str]) -> Rule {
    Rule {
        port: port.into(),
        protocol: "tcp".into(),
        sources: sources.iter().map(|s| s.to_string()).collect(),
    }
}

/// The canonical example of DESIGN.md, with the bed's key for `ops`.
fn canonical(ops_key: &str) -> HostSpec {
    HostSpec {
        hostname: Some("cp-1".into()),
        timezone: Some("Europe/Paris".into()),
        packages: Some(["curl".to_string(), "jq".to_string()].into()),
        swap: Some(false),
        kernel_modules: Some(["overlay".to_string(), "br_netfilter".to_string()].into()),
        sysctl: Some([("net.ipv4.ip_forward".to_string(), "1".to_string())].into()),
        ssh_hardening: Some(SshHardening {
            password_authentication: Some(false),
            permit_root_login: Some("prohibit-password".into()),
            ..SshHardening::default()
        }),
        firewall: Some(Firewall {
            allow: vec![
                rule("22", &[]),
                rule("80", &[]),
                rule("443", &[]),
                rule("6443", &["10.0.0.0/8"]),
                rule("30000-32767", &[]),
            ],
        }),
        admin_users: Some(vec![AdminUser {
            name: host::validate::user_name("ops").expect("valid name"),
            authorized_keys: vec![ops_key.into()],
            sudo: true,
            shell: None,
        }]),
        container_runtime: Some("containerd".into()),
        ..HostSpec::default()
    }
}

async fn gather(exec: &OpenSsh, spec: &HostSpec) -> Facts {
    host::gather_facts(exec, spec, &CancellationToken::new())
        .await
        .expect("facts")
}

async fn raw_facts(exec: &OpenSsh, spec: &HostSpec) -> Vec<u8> {
    use host::Exec;
    let out = exec
        .run(facts::SCRIPT, &facts::query(spec), &CancellationToken::new())
        .await
        .expect("facts");
    assert_eq!(out.status, Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

async fn sh(exec: &OpenSsh, script: &str) -> String {
    use host::Exec;
    let out = exec.run(script, b"", &CancellationToken::new()).await.expect("exec");
    assert_eq!(
        out.status,
        Some(0),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn converge(exec: &OpenSsh, spec: &HostSpec) -> Vec<&'static str> {
    let f = gather(exec, spec).await;
    let steps = host::converge(spec, &f).expect("converge");
    host::run_steps(exec, &steps, &CancellationToken::new())
        .await
        .expect("steps")
}

/// Everything converge may touch, as text: compared before and after revert.
const SNAPSHOT: &str = r#"for f in /etc/hostname /etc/hosts /etc/timezone /etc/fstab /etc/ssh/sshd_config \
  /etc/ssh/sshd_config.d/00-selfhost.conf /etc/sysctl.d/99-selfhost.conf /etc/modules-load.d/selfhost.conf \
  /etc/nftables.d/selfhost.nft /etc/systemd/system/selfhost-firewall.service /etc/sudoers.d/selfhost-ops \
  /var/lib/selfhost/host.json; do
  echo "== $f"; cat "$f" 2>/dev/null || echo ABSENT
done
echo "== localtime $(readlink /etc/localtime)"
echo "== hostname $(hostname)"
echo "== sshd_config.d"; ls /etc/ssh/sshd_config.d/
echo "== ip_forward $(cat /proc/sys/net/ipv4/ip_forward)"
echo "== nft"; nft list tables
echo "== ops $(getent passwd ops || echo none)"
echo "== sshd"; sshd -T | grep -E '^(passwordauthentication|permitrootlogin|kbdinteractiveauthentication) '
echo "== unit $(systemctl is-enabled selfhost-firewall.service 2>&1)"
"#;

const CONTAINERD_CONFIG: &str = "cat /etc/containerd/config.toml 2>/dev/null || echo ABSENT";

fn record(name: &str, bytes: &[u8]) {
    if std::env::var_os("SELFHOST_RECORD_FACTS").is_some() {
        let path = format!("{}/src/host/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, bytes).expect("write recorded facts");
        eprintln!("recorded {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canonical_host_converges_observes_drift_and_reverts_on_a_real_host() {
    let test = "canonical_host_converges_observes_drift_and_reverts_on_a_real_host";
    let Some(bed) = Bed::from_env(test) else { return };
    // tb-host1 by default; SELFHOST_HOST_TEST_N=2 runs the same flow on tb-host2.
    let n = match std::env::var("SELFHOST_HOST_TEST_N").as_deref() {
        Ok("2") => 2,
        _ => 1,
    };
    let addr = bed.host(n);
    let root = OpenSsh::new(&bed, &addr, &bed.user);
    let ops_key = std::fs::read_to_string(format!("{}.pub", bed.key)).expect("the bed key's .pub");
    let spec = canonical(ops_key.trim());

    // Whatever ran on this host before (another suite, a run that stopped
    // half-way) is undone, so the snapshot below is the host as it was
    // before this provider.
    sh(&root, host_reset::RESET_HOST).await;
    let before = sh(&root, SNAPSHOT).await;
    let config_before = sh(&root, CONTAINERD_CONFIG).await;
    let containerd_before = gather(&root, &spec).await.packages["containerd"].clone();
    // Only a pristine host makes a "fresh" recording (a previous run
    // installed packages, which revert keeps).
    let fresh_raw = raw_facts(&root, &spec).await;
    if n == 1 && facts::parse(&fresh_raw).expect("parse").packages.get("curl") == Some(&None) {
        record("fresh-debian12.json", &fresh_raw);
    }
    let master = root.master_pid();
    assert!(master.is_some(), "the OpenSSH master connection is up");

    // 1. Converge the canonical spec.
    let done = converge(&root, &spec).await;
    eprintln!("converged: {done:?}");
    for aspect in [
        "hostname",
        "timezone",
        "packages",
        "admin_users",
        "ssh_hardening",
        "firewall",
        "sysctl",
        "kernel_modules",
        "container_runtime",
    ] {
        assert!(done.contains(&aspect), "{aspect} missing from {done:?}");
    }
    // The managing session survived the sshd reload and the firewall:
    // the same master connection is still the one in use.
    assert_eq!(root.master_pid(), master, "the managing SSH connection was replaced");
    // New sessions work too: root over a fresh connection, and ops with its key and sudo.
    let fresh = root.run_fresh("hostname").await.expect("fresh root session");
    assert_eq!(String::from_utf8_lossy(&fresh.stdout).trim(), "cp-1");
    let ops = OpenSsh::new(&bed, &addr, "ops");
    let whoami = ops.run_fresh("id -un").await.expect("ops session through sudo");
    assert_eq!(
        (whoami.status, String::from_utf8_lossy(&whoami.stdout).trim()),
        (Some(0), "root"),
        "ops logs in with its key and sudo -n works"
    );
    // Through sudo, the facts still find the managing session (sudo drops
    // SSH_CONNECTION; the script reads it from the login shell).
    let via_sudo = gather(&ops, &spec).await;
    assert_eq!(
        via_sudo.ssh_session.map(|s| (s.peer.to_string(), s.port)),
        Some((bed.gateway(), 22))
    );
    ops.close();

    // 2. No drift, and only the warnings this kind of host must give.
    let converged_raw = raw_facts(&root, &spec).await;
    if n == 1 {
        record("converged-debian12.json", &converged_raw);
    }
    let f = facts::parse(&converged_raw).expect("parse");
    let obs = host::observe(&spec, &f);
    assert_eq!(
        obs.spec, spec,
        "drift right after converge; warnings: {:#?}",
        obs.warnings
    );
    let allowed: BTreeSet<Vec<String>> = [
        vec!["kernel_modules".to_string(), "overlay".into()],
        vec!["kernel_modules".to_string(), "br_netfilter".into()],
        vec!["container_runtime".to_string()],
    ]
    .into();
    for w in &obs.warnings {
        assert!(allowed.contains(&w.path), "unexpected warning {w:?}");
        eprintln!("warning {:?}: {}", w.path, w.message);
    }
    if f.capabilities.container.is_some() && !f.capabilities.can_load_modules {
        assert!(
            obs.warnings
                .iter()
                .any(|w| w.path == ["kernel_modules", "br_netfilter"])
                || f.modules["br_netfilter"]
        );
    }
    // The runtime: installed, SystemdCgroup on; `ctr version` answers when it runs.
    assert!(f.packages["containerd"].is_some());
    assert!(
        f.containerd_config
            .as_deref()
            .is_some_and(|c| c.contains("SystemdCgroup = true"))
    );
    if f.containerd_active {
        sh(&root, "ctr version >/dev/null").await;
    }
    // 3. Idempotent: the same facts give no steps.
    assert_eq!(host::converge(&spec, &f).expect("converge"), Vec::new());

    // 4. Tamper; observe shows exactly those drifts.
    sh(
        &root,
        "sysctl -q -w net.ipv4.ip_forward=0
nft flush table inet selfhost
printf 'PasswordAuthentication yes\n' > /etc/ssh/sshd_config.d/0-tamper.conf
: > /home/ops/.ssh/authorized_keys",
    )
    .await;
    // A flushed table leaves the host reachable (the final drop rule went
    // with the flush): a NEW connection gets in.
    let fresh = root.run_fresh("true").await.expect("fresh session after the flush");
    assert_eq!(fresh.status, Some(0));
    let f = gather(&root, &spec).await;
    let mut drifted = spec.clone();
    drifted.sysctl = Some([("net.ipv4.ip_forward".to_string(), "0".to_string())].into());
    drifted.firewall = Some(Firewall { allow: vec![] });
    drifted.ssh_hardening.as_mut().unwrap().password_authentication = Some(true);
    drifted.admin_users.as_mut().unwrap()[0].authorized_keys = vec![];
    assert_eq!(host::observe(&spec, &f).spec, drifted);

    // 5. Converge again: exactly those aspects change, then no drift.
    let steps = host::converge(&spec, &f).expect("converge");
    let aspects: BTreeSet<&str> = steps.iter().map(|s| s.aspect).collect();
    assert_eq!(aspects, ["admin_users", "firewall", "ssh_hardening", "sysctl"].into());
    host::run_steps(&root, &steps, &CancellationToken::new())
        .await
        .expect("steps");
    assert_eq!(root.master_pid(), master, "the managing SSH connection was replaced");
    let f = gather(&root, &spec).await;
    assert_eq!(host::observe(&spec, &f).spec, spec);
    assert_eq!(host::converge(&spec, &f).expect("converge"), Vec::new());
    let tamper = sh(&root, "cat /etc/ssh/sshd_config.d/0-tamper.conf").await;
    assert_eq!(tamper, "#selfhost-disabled# PasswordAuthentication yes\n");
    let fresh = root
        .run_fresh("true")
        .await
        .expect("fresh session after the second converge");
    assert_eq!(fresh.status, Some(0));

    // 6. Revert: every touched file and setting as before.
    sh(&root, "rm -f /etc/ssh/sshd_config.d/0-tamper.conf").await;
    let steps = host::revert(&spec, &f).expect("revert");
    host::run_steps(&root, &steps, &CancellationToken::new())
        .await
        .expect("revert steps");
    let after = sh(&root, SNAPSHOT).await;
    assert_eq!(after, before);
    // containerd's config.toml: as before when containerd was installed
    // before; otherwise the package's own conffile (revert keeps packages),
    // which `dpkg -V` confirms unmodified.
    let config_after = sh(&root, CONTAINERD_CONFIG).await;
    if containerd_before.is_some() {
        assert_eq!(config_after, config_before);
    } else {
        let verify = sh(&root, "dpkg -V containerd | grep config.toml || true").await;
        assert_eq!(verify, "", "config.toml differs from the package's: {config_after}");
    }
    assert_eq!(
        sh(&root, "ls -A /etc/containerd").await.trim(),
        "config.toml",
        "no backup files left"
    );
    let fresh = root.run_fresh("true").await.expect("fresh session after revert");
    assert_eq!(fresh.status, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firewall_without_the_session_port_is_refused_before_anything_runs() {
    let test = "a_firewall_without_the_session_port_is_refused_before_anything_runs";
    let Some(bed) = Bed::from_env(test) else { return };
    let root = OpenSsh::new(&bed, &bed.host(2), &bed.user);
    let spec = HostSpec {
        firewall: Some(Firewall {
            allow: vec![rule("22", &["192.0.2.0/24"]), rule("443", &[])],
        }),
        ..HostSpec::default()
    };
    let f = gather(&root, &spec).await;
    assert!(
        host::check_firewall_keeps_ssh(&spec, 22).is_ok(),
        "port 22 is covered at plan time"
    );
    // ... but not for the address this session comes from: refused at apply.
    match host::converge(&spec, &f) {
        Err(HostError::WouldLockOut { port: 22, peer }) => assert_eq!(peer, bed.gateway()),
        other => panic!("expected WouldLockOut, got {other:?}"),
    }
    let none = HostSpec {
        firewall: Some(Firewall {
            allow: vec![rule("443", &[])],
        }),
        ..HostSpec::default()
    };
    let (path, msg) = host::check_firewall_keeps_ssh(&none, 22).expect_err("refused");
    assert_eq!(path, ["firewall"]);
    assert!(msg.starts_with("no allow rule covers tcp port 22"), "{msg}");
}

/// The other outcome of a sysctl: a key whose /proc/sys file is read-only
/// on this host (nspawn mounts /proc/sys read-only except net.*). The
/// persistent file is written, the key observes as desired with a warning
/// (never a perpetual diff), and revert removes the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sysctl_is_persisted_with_a_warning_on_a_real_host() {
    let test = "a_read_only_sysctl_is_persisted_with_a_warning_on_a_real_host";
    let Some(bed) = Bed::from_env(test) else { return };
    let _host2 = HOST2.lock().await;
    let root = OpenSsh::new(&bed, &bed.host(2), &bed.user);
    sh(&root, host_reset::RESET_HOST).await;
    let current = sh(&root, "cat /proc/sys/kernel/panic").await.trim().to_owned();
    let want = if current == "7" { "8" } else { "7" };
    let spec = HostSpec {
        sysctl: Some([("kernel.panic".to_string(), want.to_string())].into()),
        ..HostSpec::default()
    };
    let f = gather(&root, &spec).await;
    if f.sysctl["kernel.panic"].writable {
        eprintln!(
            "*** {test}: /proc/sys/kernel is writable on this host; the read-only outcome cannot be shown here ***"
        );
        return;
    }
    let steps = host::converge(&spec, &f).expect("converge");
    assert_eq!(steps.len(), 1);
    host::run_steps(&root, &steps, &CancellationToken::new())
        .await
        .expect("steps");
    let f = gather(&root, &spec).await;
    let obs = host::observe(&spec, &f);
    assert_eq!(obs.spec, spec, "the file is right: no diff");
    assert_eq!(obs.warnings.len(), 1, "{:?}", obs.warnings);
    assert_eq!(obs.warnings[0].path, ["sysctl", "kernel.panic"]);
    assert!(
        obs.warnings[0].message.contains("read-only"),
        "{}",
        obs.warnings[0].message
    );
    assert_eq!(
        host::converge(&spec, &f).expect("converge"),
        Vec::new(),
        "no step can fix the machine's value"
    );
    assert_eq!(sh(&root, "cat /proc/sys/kernel/panic").await.trim(), current);
    let steps = host::revert(&spec, &f).expect("revert");
    host::run_steps(&root, &steps, &CancellationToken::new())
        .await
        .expect("revert");
    assert_eq!(
        sh(
            &root,
            "ls /etc/sysctl.d/99-selfhost.conf /var/lib/selfhost 2>&1 || true"
        )
        .await
        .matches("No such file")
        .count(),
        2
    );
}

/// A manifest edited on the host (by someone with root there, or a bug)
/// names an admin user that is a command. Dropping the users would have
/// written `rm -f /etc/sudoers.d/selfhost-<name>` with the raw name; now the
/// manifest is refused, nothing runs, and the error says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_user_name_in_the_manifest_never_reaches_a_shell_on_a_real_host() {
    let test = "a_hostile_user_name_in_the_manifest_never_reaches_a_shell_on_a_real_host";
    let Some(bed) = Bed::from_env(test) else { return };
    let _host2 = HOST2.lock().await;
    let root = OpenSsh::new(&bed, &bed.host(2), &bed.user);
    sh(&root, host_reset::RESET_HOST).await;
    sh(
        &root,
        r#"rm -f /tmp/pwned
mkdir -p /var/lib/selfhost && chmod 700 /var/lib/selfhost
cat > /var/lib/selfhost/host.json <<'JSON'
{"format":1,"managed":{"admin_users":[{"name":"x;touch /tmp/pwned;","authorized_keys":[],"sudo":true}]},
 "backups":{"user:x;touch /tmp/pwned;":null}}
JSON
chmod 600 /var/lib/selfhost/host.json"#,
    )
    .await;
    let drop_all = HostSpec {
        admin_users: Some(vec![]),
        ..HostSpec::default()
    };
    let f = gather(&root, &drop_all).await;
    let outcome = host::converge(&drop_all, &f);
    if let Ok(steps) = &outcome {
        let _ = host::run_steps(&root, steps, &CancellationToken::new()).await;
    }
    let pwned = sh(&root, "[ -e /tmp/pwned ] && echo PWNED || echo safe").await;
    sh(&root, "rm -f /tmp/pwned").await;
    sh(&root, host_reset::RESET_HOST).await;
    assert_eq!(pwned.trim(), "safe", "a user name from the manifest ran as a command");
    match outcome {
        Err(HostError::Manifest(m)) => assert!(m.contains("user name \"x;touch /tmp/pwned;\" has ';'"), "{m}"),
        other => panic!("expected the manifest to be refused, got {other:?}"),
    }
}
