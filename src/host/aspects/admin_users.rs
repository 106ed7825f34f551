//! Administrator accounts: the account (created with `useradd -m`), the
//! exact set of keys in ~/.ssh/authorized_keys, and passwordless sudo via
//! /etc/sudoers.d/selfhost-<name> (checked with `visudo -cf` before it is
//! moved into place, so a bad file never breaks sudo).

use super::{Change, restore_file};
use crate::host::facts::Facts;
use crate::host::manifest::{Backups, backup};
use crate::host::quote::{PublicKey, UserName, quote};
use crate::host::spec::AdminUser;

/// The sudoers rule we write: key-only accounts have no password to type.
pub(crate) fn sudoers_line(name: &str) -> String {
    format!("{name} ALL=(ALL:ALL) NOPASSWD:ALL\n")
}

fn norm(key: &str) -> String {
    key.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The keys in an authorized_keys text: non-empty, non-comment lines.
fn keys_in(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(norm)
        .collect()
}

/// The users of `want` that exist, in `want`'s order and spelling where the
/// host agrees.
pub(crate) fn observe(want: &[AdminUser], f: &Facts) -> Vec<AdminUser> {
    let mut out = Vec::new();
    for u in want {
        let Some(uf) = f.users.get(u.name.as_str()).filter(|uf| uf.exists()) else {
            continue;
        };
        let found = uf.authorized_keys.as_deref().map(keys_in).unwrap_or_default();
        let wanted: Vec<String> = u.authorized_keys.iter().map(|k| norm(k)).collect();
        out.push(AdminUser {
            name: u.name.clone(),
            authorized_keys: if found == wanted {
                u.authorized_keys.clone()
            } else {
                found
            },
            sudo: uf
                .sudoers
                .as_deref()
                .is_some_and(|s| s.trim() == sudoers_line(u.name.as_str()).trim()),
            shell: u.shell.as_ref().map(|_| uf.shell.clone().unwrap_or_default()),
        });
    }
    out
}

/// A validated admin user.
pub(crate) struct ValidUser {
    pub name: UserName,
    pub keys: Vec<PublicKey>,
    pub sudo: bool,
    pub shell: Option<String>,
    pub spec: AdminUser,
}

pub(crate) fn converge(want: &[ValidUser], f: &Facts, b: &mut Backups) -> Option<Change> {
    let specs: Vec<AdminUser> = want.iter().map(|u| u.spec.clone()).collect();
    let seen = observe(&specs, f);
    let mut script = String::new();
    let mut changed = Vec::new();
    for u in want {
        if seen.contains(&u.spec) {
            continue;
        }
        changed.push(u.name.as_str());
        let uf = f.users.get(u.name.as_str());
        let exists = uf.is_some_and(|uf| uf.exists());
        backup(b, format!("user:{}", u.name), exists.then(|| "existed".to_owned()));
        if let Some(uf) = uf.filter(|uf| uf.exists()) {
            let home = uf.home.clone().unwrap_or_default();
            backup(
                b,
                format!("file:{home}/.ssh/authorized_keys"),
                uf.authorized_keys.clone(),
            );
        }
        let mut keys = String::new();
        for k in &u.keys {
            keys.push_str(k.as_str());
            keys.push('\n');
        }
        let shell = u.shell.as_deref().unwrap_or("/bin/bash");
        script.push_str(&format!(
            "u={name}\nkeys={keys}\nshell={shell}\nset_shell={set_shell}\nsudo={sudo}\n{USER}",
            name = u.name.word(),
            keys = quote(&keys),
            shell = quote(shell),
            set_shell = if u.shell.is_some() { "yes" } else { "no" },
            sudo = if u.sudo { "yes" } else { "no" },
        ));
    }
    if changed.is_empty() {
        return None;
    }
    Some(Change {
        summary: format!("admin_users: {}", changed.join(", ")),
        script,
    })
}

/// Per user; `$u` is a validated user name. New accounts get the password
/// `*` (no password can match) rather than useradd's `!` (locked), which
/// sshd refuses even for key logins when UsePAM is off.
const USER: &str = r#"if ! getent passwd "$u" >/dev/null; then
  useradd -m -s "$shell" "$u"
  usermod -p '*' "$u"
fi
[ "$set_shell" = yes ] && usermod -s "$shell" "$u"
home=$(getent passwd "$u" | cut -d: -f6)
group=$(id -gn "$u")
install -d -m 700 -o "$u" -g "$group" "$home/.ssh"
printf '%s' "$keys" > "$home/.ssh/authorized_keys.selfhost-new"
chown "$u:$group" "$home/.ssh/authorized_keys.selfhost-new"
chmod 600 "$home/.ssh/authorized_keys.selfhost-new"
mv -f "$home/.ssh/authorized_keys.selfhost-new" "$home/.ssh/authorized_keys"
if [ "$sudo" = yes ]; then
  # sudo ignores names with a dot, so the temporary file is never read.
  tmp="/etc/sudoers.d/.selfhost-$u.new"
  printf '%s ALL=(ALL:ALL) NOPASSWD:ALL\n' "$u" > "$tmp"
  chmod 440 "$tmp"
  if ! visudo -cf "$tmp" >/dev/null; then rm -f "$tmp"; echo "sudoers rule for $u rejected by visudo" >&2; exit 1; fi
  mv -f "$tmp" "/etc/sudoers.d/selfhost-$u"
else
  rm -f "/etc/sudoers.d/selfhost-$u"
fi
"#;

pub(crate) fn revert(managed: &[AdminUser], f: &Facts, b: &Backups) -> Option<Change> {
    let mut script = String::new();
    for u in managed {
        let key = format!("user:{}", u.name);
        let Some(before) = b.get(&key) else { continue };
        let name = u.name.word();
        script.push_str(&format!(
            "rm -f {}\n",
            quote(&format!("/etc/sudoers.d/selfhost-{}", u.name))
        ));
        match before {
            // We created it: remove it with its home (it holds only what we wrote
            // and what its owner put there under this resource).
            None => script.push_str(&format!(
                "if getent passwd {name} >/dev/null; then userdel -r -f {name} 2>/dev/null || userdel -f {name}; fi\n"
            )),
            Some(_) => {
                if let Some(home) = f.users.get(u.name.as_str()).and_then(|uf| uf.home.clone()) {
                    let path = format!("{home}/.ssh/authorized_keys");
                    script.push_str(&restore_file(&path, b.get(&format!("file:{path}"))));
                    script.push_str(&format!(
                        "[ -f {p} ] && chown {name}: {p} && chmod 600 {p}\n",
                        p = quote(&path)
                    ));
                }
            }
        }
    }
    (!script.is_empty()).then(|| Change {
        summary: "admin_users: reverted".into(),
        script,
    })
}
