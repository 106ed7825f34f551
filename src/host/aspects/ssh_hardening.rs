//! sshd settings in /etc/ssh/sshd_config.d/00-selfhost.conf. sshd keeps the
//! FIRST value it reads for a keyword, so the drop-in sorts first (00-); a
//! drop-in sorting even earlier that sets one of our keywords has that line
//! commented out (`#selfhost-disabled# `, undone by revert). Observed from
//! `sshd -T` (the effective values), so any override shows as drift. The
//! new file is checked with `sshd -t` before the reload; on failure the
//! previous drop-in is put back and sshd never sees the bad one. A reload
//! keeps established sessions, including the one managing the host.

use super::{Change, HEADER, Warnings, restore_file};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};
use crate::host::quote::quote;
use crate::host::spec::SshHardening;

const DIR: &str = "/etc/ssh/sshd_config.d";
const FILE: &str = "/etc/ssh/sshd_config.d/00-selfhost.conf";

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(crate) fn observe(want: &SshHardening, f: &Facts, w: &mut Warnings) -> SshHardening {
    let Some(eff) = &f.sshd_effective else {
        w.push(
            &["ssh_hardening"],
            format!(
                "sshd -T failed, so the effective settings are unknown: {}",
                f.sshd_error.as_deref().unwrap_or("")
            ),
        );
        return SshHardening::default();
    };
    let get = |k: &str| eff.get(k).map(|v| v.lines().next().unwrap_or_default().to_owned());
    let flag = |k: &str| get(k).map(|v| v == "yes");
    SshHardening {
        password_authentication: want.password_authentication.and(flag("passwordauthentication")),
        permit_root_login: want.permit_root_login.as_ref().and_then(|_| {
            get("permitrootlogin").map(|v| {
                if v == "without-password" {
                    "prohibit-password".into()
                } else {
                    v
                }
            })
        }),
        pubkey_authentication: want.pubkey_authentication.and(flag("pubkeyauthentication")),
        x11_forwarding: want.x11_forwarding.and(flag("x11forwarding")),
        max_auth_tries: want
            .max_auth_tries
            .and(get("maxauthtries").and_then(|v| v.parse().ok())),
    }
}

/// `(keyword, value)` lines of the drop-in.
fn directives(want: &SshHardening) -> Vec<(&'static str, String)> {
    let mut d = Vec::new();
    if let Some(p) = want.password_authentication {
        d.push(("PasswordAuthentication", yes_no(p).to_owned()));
        if !p {
            // PAM's keyboard-interactive prompt is the other way to type a password.
            d.push(("KbdInteractiveAuthentication", "no".to_owned()));
        }
    }
    if let Some(p) = &want.permit_root_login {
        d.push(("PermitRootLogin", p.clone()));
    }
    if let Some(p) = want.pubkey_authentication {
        d.push(("PubkeyAuthentication", yes_no(p).to_owned()));
    }
    if let Some(p) = want.x11_forwarding {
        d.push(("X11Forwarding", yes_no(p).to_owned()));
    }
    if let Some(n) = want.max_auth_tries {
        d.push(("MaxAuthTries", n.to_string()));
    }
    d
}

pub(crate) fn render(want: &SshHardening) -> String {
    let mut s = HEADER.to_owned();
    for (k, v) in directives(want) {
        s.push_str(&format!("{k} {v}\n"));
    }
    s
}

fn include_present(f: &Facts) -> bool {
    f.sshd_config.as_deref().is_some_and(|c| {
        c.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next().is_some_and(|k| k.eq_ignore_ascii_case("include"))
                && w.any(|p| p == "/etc/ssh/sshd_config.d/*.conf")
        })
    })
}

/// Reload sshd: ssh.service on Debian/Ubuntu (sshd.service elsewhere). With
/// Ubuntu 24.04's socket activation and no sshd running yet, there is
/// nothing to reload: the next connection starts sshd with the new files.
const RELOAD: &str = r#"if [ -d /run/systemd/system ]; then
  for unit in ssh.service sshd.service; do
    if systemctl is-active --quiet "$unit"; then systemctl reload "$unit"; break; fi
  done
elif [ -s /run/sshd.pid ]; then
  kill -HUP "$(cat /run/sshd.pid)"
fi
# On SIGHUP sshd re-executes itself and reopens its listening socket: wait
# (5 s at most) until it listens again, so the next connection is not refused.
port=$(sshd -T 2>/dev/null | awk '$1 == "port" { print $2; exit }')
hex=$(printf '%04X' "${port:-22}")
i=0
while [ "$i" -lt 50 ] && ! grep -Eqs ":$hex [0-9A-F]+:0000 0A" /proc/net/tcp /proc/net/tcp6; do
  sleep 0.1
  i=$((i + 1))
done
"#;

pub(crate) fn converge(want: &SshHardening, f: &Facts, b: &mut Backups) -> Option<Change> {
    let rendered = render(want);
    let ok = observe(want, f, &mut Warnings::default()) == *want
        && f.sshd_dropin.as_deref() == Some(rendered.as_str())
        && include_present(f);
    if ok {
        return None;
    }
    backup(b, format!("file:{FILE}"), f.sshd_dropin.clone());
    let mut script = format!("dir={DIR}\nfile={FILE}\nmkdir -p \"$dir\"\n");
    if !include_present(f) {
        backup(b, "file:/etc/ssh/sshd_config".into(), f.sshd_config.clone());
        script.push_str("sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config\n");
    }
    let keywords: Vec<&str> = directives(want).iter().map(|(k, _)| *k).collect();
    script.push_str(&format!(
        "keywords={}\nnew={}\n{CONVERGE}{RELOAD}",
        quote(&keywords.join("|")),
        quote(&rendered)
    ));
    Some(Change {
        summary: format!("ssh_hardening: {} set in 00-selfhost.conf", keywords.join(", ")),
        script,
    })
}

/// `$keywords` holds only our fixed keyword names.
const CONVERGE: &str = r#"if [ -f "$file" ]; then cp -p "$file" "$file.selfhost-prev"; else rm -f "$file.selfhost-prev"; fi
printf '%s' "$new" > "$file.selfhost-new"
chmod 644 "$file.selfhost-new"
mv -f "$file.selfhost-new" "$file"
for other in "$dir"/*.conf; do
  [ "$other" = "$file" ] && break
  [ -f "$other" ] || continue
  sed -i -E "s/^([[:space:]]*($keywords)([[:space:]]|=))/#selfhost-disabled# \1/I" "$other"
done
if ! err=$(sshd -t 2>&1); then
  if [ -f "$file.selfhost-prev" ]; then mv -f "$file.selfhost-prev" "$file"; else rm -f "$file"; fi
  echo "sshd -t rejected the new settings (previous drop-in restored, sshd not reloaded): $err" >&2
  exit 1
fi
rm -f "$file.selfhost-prev"
"#;

pub(crate) fn revert(f: &Facts, b: &Backups) -> Option<Change> {
    let key = format!("file:{FILE}");
    if !b.contains_key(&key) && f.sshd_disabled_in.is_empty() {
        return None;
    }
    let mut script = restore_file(FILE, b.get(&key));
    script.push_str(&restore_file(
        "/etc/ssh/sshd_config",
        b.get("file:/etc/ssh/sshd_config"),
    ));
    script.push_str(&format!(
        "for other in {DIR}/*.conf; do [ -f \"$other\" ] && sed -i 's/^#selfhost-disabled# //' \"$other\"; done\nsshd -t\n{RELOAD}"
    ));
    Some(Change {
        summary: "ssh_hardening: drop-in removed, sshd reloaded".into(),
        script,
    })
}
