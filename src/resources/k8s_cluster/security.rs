//! `secrets_encryption` and `audit_log` on a kubeadm control plane: the
//! files before `kubeadm init`, and on an existing cluster the documented
//! sequence (write the files, have kubeadm regenerate the API server's
//! static pod, rewrite every Secret) from wherever the last apply stopped.
//! What to write and in which order is [`crate::cluster::apiserver`]'s.

use crate::cluster::ClusterSpec;
use crate::cluster::apiserver::{
    self, AUDIT_POLICY, ApiServerSecurity, ENCRYPTION_CONFIG, EncryptionKey, EncryptionLayout, EncryptionStep,
    MANIFEST_PATCH, SECURITY_DIR,
};
use crate::cluster::kubeadm;
use crate::cluster::node::{ADMIN_CONF, INIT_CONFIG, Probe};
use crate::framework::resource::Context;
use crate::framework::{AttributePath, Diagnostic};
use crate::network::Hostname;

use super::node::{NodeHandle, at, error};

/// How long the API server may take to come back after its manifest
/// changed (the script's own limit; the operation's `timeouts` still apply).
const RESTART_LIMIT_SECS: u32 = 300;

/// The encryption file as the control plane has it (`None`: no file).
/// Read as a secret: its text never reaches a log or a diagnostic.
async fn read_layout(ctx: &Context, cp: &NodeHandle) -> Result<Option<EncryptionLayout>, Diagnostic> {
    let text = cp
        .run_secret(
            ctx,
            "reading the encryption configuration",
            &format!("if [ -e {ENCRYPTION_CONFIG} ]; then cat {ENCRYPTION_CONFIG}; fi"),
        )
        .await
        .map_err(at("secrets_encryption"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    EncryptionLayout::parse(&text).map(Some).map_err(|why| {
        error(
            "Unexpected encryption configuration",
            format!(
                "{}: {ENCRYPTION_CONFIG} was not written by this provider ({why}). It may hold keys that existing Secrets need; move it away only once the API server no longer uses it.",
                cp.label
            ),
            Some(AttributePath::root("secrets_encryption")),
        )
    })
}

fn new_key(version: u32) -> Result<EncryptionKey, Diagnostic> {
    EncryptionKey::generate(version).map_err(|e| {
        error(
            "No random source",
            format!("The operating system's random source failed ({e}); no key was made."),
            Some(AttributePath::root("secrets_encryption")),
        )
    })
}

async fn write_layout(ctx: &Context, cp: &NodeHandle, layout: &EncryptionLayout) -> Result<(), Diagnostic> {
    cp.upload(ctx, ENCRYPTION_CONFIG, layout.render().as_bytes(), 0o600)
        .await
        .map_err(at("secrets_encryption"))
}

async fn make_dir(ctx: &Context, cp: &NodeHandle) -> Result<(), Diagnostic> {
    cp.run(
        ctx,
        "creating the API server's configuration directory",
        &format!("set -e\ninstall -d -m 0700 -o root -g root {SECURITY_DIR}\nchmod 0700 {SECURITY_DIR}\n"),
        b"",
    )
    .await
    .map(drop)
}

/// The files a new control plane's `kubeadm init` reads: the audit policy,
/// the encryption file (a key made now, or kept from an init that failed
/// half-way) and the manifest patch that names its keys.
pub async fn before_init(ctx: &Context, cp: &NodeHandle, sec: &ApiServerSecurity) -> Result<(), Diagnostic> {
    make_dir(ctx, cp).await?;
    if sec.audit_log {
        cp.upload(ctx, AUDIT_POLICY, apiserver::audit_policy().as_bytes(), 0o600)
            .await
            .map_err(at("audit_log"))?;
    }
    let layout = match sec.encryption {
        Some(v) => {
            let layout = match read_layout(ctx, cp).await? {
                Some(l) if l.is_final_for(v) => l,
                _ => EncryptionLayout {
                    identity_first: false,
                    keys: vec![new_key(v)?],
                },
            };
            write_layout(ctx, cp, &layout).await?;
            Some(layout)
        }
        None => None,
    };
    cp.upload(
        ctx,
        MANIFEST_PATCH,
        apiserver::manifest_patch(layout.as_ref()).as_bytes(),
        0o644,
    )
    .await
}

/// Regenerate the API server's static pod from kubeadm's configuration;
/// when the manifest changed (or `force`: a file it reads only at start
/// changed), wait until the old process is gone and the new one answers
/// `/readyz`. With `force` and an unchanged manifest the process is
/// stopped and the kubelet starts it again.
fn reload_script(force: bool) -> String {
    format!(
        r#"set -eu
m={manifest}
before=$(sha256sum "$m" | cut -d' ' -f1)
old=$(pgrep -xo kube-apiserver || true)
kubeadm init phase control-plane apiserver --config {INIT_CONFIG} >/dev/null
after=$(sha256sum "$m" | cut -d' ' -f1)
if [ "$before" = "$after" ]; then
  if [ {force} = no ] || [ -z "$old" ]; then echo unchanged; exit 0; fi
  kill "$old"
fi
i=0
while [ "$i" -lt {limit} ]; do
  i=$((i + 2)); sleep 2
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then continue; fi
  pgrep -x kube-apiserver >/dev/null || continue
  if [ "$(kubectl --kubeconfig {ADMIN_CONF} --request-timeout=5s get --raw /readyz 2>/dev/null)" = ok ]; then
    echo restarted; exit 0
  fi
done
echo "the API server did not answer /readyz within {limit} s of its new manifest; see 'journalctl -u kubelet' and the kube-apiserver container's log on this node" >&2
exit 1
"#,
        manifest = apiserver::MANIFEST,
        limit = RESTART_LIMIT_SECS,
        force = if force { "yes" } else { "no" },
    )
}

/// Rewrite every Secret through the API (the documented
/// `kubectl get secrets -A -o json | kubectl replace -f -`), so each is
/// stored as the encryption file's first provider says. The values stay on
/// the node: nothing is printed. Conflicts (a Secret written meanwhile)
/// are retried.
fn rewrite_script() -> String {
    format!(
        r#"set -u
k="kubectl --kubeconfig {ADMIN_CONF} --request-timeout=60s"
for i in 1 2 3 4 5; do
  n=$($k get secrets --all-namespaces -o name | wc -l) || n=
  [ "$n" = 0 ] && exit 0
  if [ -n "$n" ] && $k get secrets --all-namespaces -o json | $k replace -f - >/dev/null; then
    echo "rewrote $n secrets"; exit 0
  fi
  sleep 3
done
echo "rewriting the Secrets failed 5 times" >&2
exit 1
"#
    )
}

/// Bring the API server's flags to `flags` (and the manifest's key names to
/// `layout`), restarting it when they change.
async fn reload(
    ctx: &Context,
    cp: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
    flags: ApiServerSecurity,
    layout: Option<&EncryptionLayout>,
    force: bool,
) -> Result<(), Diagnostic> {
    let mut spec = spec.clone();
    spec.api_server = flags;
    cp.upload(ctx, MANIFEST_PATCH, apiserver::manifest_patch(layout).as_bytes(), 0o644)
        .await?;
    cp.upload(ctx, INIT_CONFIG, kubeadm::init_config(&spec, name).as_bytes(), 0o600)
        .await?;
    let out = cp
        .run(
            ctx,
            "regenerating the API server's static pod",
            &reload_script(force),
            b"",
        )
        .await?;
    if out.trim() == "restarted" {
        tracing::info!(host = %cp.label, "{}: API server restarted with its new settings", cp.label);
    }
    Ok(())
}

/// Bring a running control plane to `spec.api_server`; nothing when the
/// probe already shows it there (unless `fresh`: just initialised, the
/// probe predates it).
pub async fn converge(
    ctx: &Context,
    cp: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
    probe: &Probe,
    fresh: bool,
) -> Result<(), Diagnostic> {
    let want = spec.api_server;
    if !fresh && probe.security.matches(&want) {
        return Ok(());
    }
    let label = &cp.label;
    tracing::info!(
        host = %label,
        "{label}: API server security: encryption {}, audit log {}",
        want.encryption.map_or_else(|| "off".to_owned(), |v| format!("on (key{v})")),
        if want.audit_log { "on" } else { "off" }
    );
    make_dir(ctx, cp).await?;
    if want.audit_log {
        cp.upload(ctx, AUDIT_POLICY, apiserver::audit_policy().as_bytes(), 0o600)
            .await
            .map_err(at("audit_log"))?;
    }
    let mut layout = read_layout(ctx, cp).await?;
    let steps = apiserver::encryption_steps(layout.as_ref(), want.encryption, new_key)?;
    let any_key = want
        .encryption
        .or_else(|| layout.as_ref().and_then(|l| l.keys.first().map(|k| k.version)))
        .unwrap_or(1);
    for step in steps {
        match step {
            EncryptionStep::Write(l) => {
                write_layout(ctx, cp, &l).await?;
                tracing::info!(host = %label, "{label}: encryption configuration now {}", l.describe());
                layout = Some(l);
            }
            EncryptionStep::Reload { flag } => {
                let flags = ApiServerSecurity {
                    encryption: flag.then_some(any_key),
                    audit_log: want.audit_log,
                };
                reload(ctx, cp, name, spec, flags, layout.as_ref(), false)
                    .await
                    .map_err(at("secrets_encryption"))?;
            }
            EncryptionStep::RewriteSecrets => {
                let out = cp
                    .run(ctx, "rewriting every Secret", &rewrite_script(), b"")
                    .await
                    .map_err(at("secrets_encryption"))?;
                tracing::info!(host = %label, "{label}: {}", out.trim());
            }
            EncryptionStep::Remove => {
                cp.run(
                    ctx,
                    "removing the encryption configuration",
                    &format!("rm -f {ENCRYPTION_CONFIG}"),
                    b"",
                )
                .await
                .map_err(at("secrets_encryption"))?;
                layout = None;
            }
        }
    }
    // The flags as configured (a no-op when the steps left them so; a
    // restart when the policy was changed by hand: the API server reads it
    // only at start), and kubeadm's record of them for `kubeadm upgrade`.
    let policy_restored = want.audit_log && probe.security.audit_flag && !probe.security.audit_on();
    reload(ctx, cp, name, spec, want, layout.as_ref(), policy_restored && !fresh)
        .await
        .map_err(at(if want.audit_log {
            "audit_log"
        } else {
            "secrets_encryption"
        }))?;
    if !want.audit_log {
        cp.run(ctx, "removing the audit policy", &format!("rm -f {AUDIT_POLICY}"), b"")
            .await
            .map_err(at("audit_log"))?;
    }
    cp.run(
        ctx,
        "recording the API server's settings in kubeadm-config",
        &format!("kubeadm init phase upload-config kubeadm --config {INIT_CONFIG} >/dev/null\n"),
        b"",
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_valid_sh_and_print_no_secret() {
        for s in [reload_script(true), reload_script(false), rewrite_script()] {
            crate::shell::assert_valid_sh(&s);
        }
        assert!(rewrite_script().contains("| $k replace -f - >/dev/null"));
    }
}
