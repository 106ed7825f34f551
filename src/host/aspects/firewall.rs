//! Input firewall: the nftables table `inet selfhost`, chain `input`
//! accepting established/related, loopback, ICMP/ICMPv6, then one rule per
//! (allow rule, source), each commented `selfhost-allow-<n>` so observe can
//! group the live rules back into the spec's rules, then a final `drop`.
//!
//! Why a final `drop` rule and not `policy drop`: both drop the same
//! packets, but `nft flush table inet selfhost` (a common hand-made "reset")
//! keeps a chain's policy while removing its rules. With `policy drop` a
//! flush drops everything, the established SSH session included, and the
//! host is unreachable until reboot: drift nobody can observe or repair
//! (seen on the bed). With the final rule a flushed table accepts, observes
//! as no rules, and the next apply restores it.
//!
//! Persistence: /etc/nftables.d/selfhost.nft, loaded at boot by our own
//! oneshot unit selfhost-firewall.service (before network-pre.target). Why
//! not Debian's nftables.service + an `include` in /etc/nftables.conf: that
//! file starts with `flush ruleset`, which would wipe the tables of Docker,
//! kube-proxy or the hoster's own rules at each load; our file only replaces
//! our table (create-if-missing, delete, define: one atomic transaction).
//!
//! Only the input hook is filtered: forwarded (container, pod) traffic is
//! not this table's business. Protocols are numbers (1, 58) because minimal
//! hosts have no /etc/protocols for nft to resolve names.

use super::{Change, HEADER, Warnings, write_file};
use crate::host::facts::Facts;
use crate::host::quote::{Cidr, PortRange, Protocol};
use crate::host::spec::{Firewall, Rule};
use crate::host::validate;

const FILE: &str = "/etc/nftables.d/selfhost.nft";
const UNIT: &str = "/etc/systemd/system/selfhost-firewall.service";

/// A validated rule.
pub(crate) struct ValidRule {
    pub port: PortRange,
    pub protocol: Protocol,
    pub sources: Vec<Cidr>,
}

pub(crate) fn render(rules: &[ValidRule]) -> String {
    let mut s = format!(
        "#!/usr/sbin/nft -f\n{HEADER}table inet selfhost\ndelete table inet selfhost\ntable inet selfhost {{\n\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tct state established,related accept\n\t\tiif \"lo\" accept\n\t\tmeta l4proto 1 accept\n\t\tmeta l4proto 58 accept\n"
    );
    for (i, r) in rules.iter().enumerate() {
        let tail = format!(
            "{} dport {} accept comment \"selfhost-allow-{i}\"",
            r.protocol.as_str(),
            r.port
        );
        if r.sources.is_empty() {
            s.push_str(&format!("\t\t{tail}\n"));
        }
        for src in &r.sources {
            s.push_str(&format!("\t\t{} saddr {src} {tail}\n", src.nft_family()));
        }
    }
    s.push_str("\t\tdrop comment \"selfhost-default-drop\"\n\t}\n}\n");
    s
}

fn unit() -> String {
    format!(
        "{HEADER}[Unit]\nDescription=selfhost firewall (nftables table inet selfhost)\nDefaultDependencies=no\nWants=network-pre.target\nBefore=network-pre.target shutdown.target\nConflicts=shutdown.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/sbin/nft -f {FILE}\n\n[Install]\nWantedBy=sysinit.target\n"
    )
}

/// The live rules, grouped back into spec rules. A missing table, or one
/// whose skeleton is not ours (base rules or the final drop gone), reads as
/// no allow rules: converge then rewrites the whole table.
fn live_rules(f: &Facts, w: &mut Warnings) -> Vec<Rule> {
    let Some(table) = &f.nft_table else { return Vec::new() };
    let skeleton = [
        "ct state established,related accept",
        "iif \"lo\" accept",
        "drop comment \"selfhost-default-drop\"",
    ];
    if let Some(missing) = skeleton.iter().find(|s| !table.contains(*s)) {
        w.push(
            &["firewall"],
            format!("table inet selfhost lacks `{missing}`: it was changed by hand and will be rewritten"),
        );
        return Vec::new();
    }
    let mut rules: Vec<(usize, Rule)> = Vec::new();
    for line in table.lines() {
        let Some((body, comment)) = line.trim().split_once(" comment \"selfhost-allow-") else {
            continue;
        };
        let Some(idx) = comment.trim_end_matches('"').parse::<usize>().ok() else {
            continue;
        };
        let words: Vec<&str> = body.split_whitespace().collect();
        let Some(d) = words.iter().position(|w| *w == "dport") else {
            continue;
        };
        let (Some(proto), Some(port)) = (d.checked_sub(1).and_then(|p| words.get(p)), words.get(d + 1)) else {
            continue;
        };
        let source = words
            .iter()
            .position(|w| *w == "saddr")
            .and_then(|s| words.get(s + 1))
            .map(|a| {
                validate::cidr(a)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|_| (*a).to_owned())
            });
        match rules.iter_mut().find(|(i, _)| *i == idx) {
            Some((_, r)) => r.sources.extend(source),
            None => rules.push((
                idx,
                Rule {
                    port: (*port).to_owned(),
                    protocol: (*proto).to_owned(),
                    sources: source.into_iter().collect(),
                },
            )),
        }
    }
    rules.sort_by_key(|(i, _)| *i);
    rules.into_iter().map(|(_, r)| r).collect()
}

/// Canonical form of a spec rule (sources as canonical CIDRs), for
/// comparing meaning rather than spelling.
fn canonical(r: &Rule) -> Rule {
    Rule {
        port: validate::port_range(&r.port)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| r.port.clone()),
        protocol: r.protocol.clone(),
        sources: r
            .sources
            .iter()
            .map(|s| validate::cidr(s).map(|c| c.to_string()).unwrap_or_else(|_| s.clone()))
            .collect(),
    }
}

pub(crate) fn observe(want: &Firewall, f: &Facts, w: &mut Warnings) -> Firewall {
    if !f.has_nft {
        w.push(
            &["firewall"],
            "nft is not installed on the host (package nftables)".into(),
        );
    }
    let live = live_rules(f, w);
    let wanted: Vec<Rule> = want.allow.iter().map(canonical).collect();
    if live == wanted {
        want.clone()
    } else {
        Firewall { allow: live }
    }
}

pub(crate) fn converge(want: &Firewall, rules: &[ValidRule], f: &Facts) -> Option<Change> {
    let rendered = render(rules);
    let ok = observe(want, f, &mut Warnings::default()) == *want
        && f.nft_file.as_deref() == Some(rendered.as_str())
        && f.firewall_unit_enabled;
    if ok {
        return None;
    }
    let mut script = String::new();
    if !f.has_nft {
        script.push_str(&super::apt_install(&["nftables"]));
    }
    script.push_str(&write_file(&format!("{FILE}.check"), &rendered, "600"));
    // Check the whole file first, so a rejected rule set leaves the live one.
    script.push_str(&format!(
        "nft -c -f {FILE}.check\nmv -f {FILE}.check {FILE}\nchmod 644 {FILE}\nnft -f {FILE}\n"
    ));
    script.push_str(&write_file(UNIT, &unit(), "644"));
    script.push_str(
        "if [ -d /run/systemd/system ]; then systemctl daemon-reload; systemctl enable selfhost-firewall.service >/dev/null 2>&1; fi\n",
    );
    Some(Change {
        summary: format!("firewall: {} allow rules applied", rules.len()),
        script,
    })
}

pub(crate) fn revert(f: &Facts) -> Option<Change> {
    if f.nft_table.is_none() && f.nft_file.is_none() && !f.firewall_unit_enabled {
        return None;
    }
    Some(Change {
        summary: "firewall: table inet selfhost removed".into(),
        script: format!(
            "nft delete table inet selfhost 2>/dev/null || true\nif [ -d /run/systemd/system ]; then systemctl disable selfhost-firewall.service >/dev/null 2>&1 || true; fi\nrm -f {UNIT} {FILE}\nif [ -d /run/systemd/system ]; then systemctl daemon-reload; fi\n"
        ),
    })
}
