//! `secrets_encryption` and `audit_log` on a k3s server, the way k3s
//! documents them: `secrets-encryption: true` (secretbox) and
//! `kube-apiserver-arg` audit flags in its configuration file, k3s's own
//! key file, and its `k3s secrets-encrypt` commands — `rotate-keys` for a
//! new key version or Secrets stored before encryption was on, `disable`
//! before encryption is turned off (k3s then rewrites every Secret itself).
//! k3s names its keys by date; [`k3s::KEY_VERSION_FILE`] records the
//! `secrets_encryption_key_version` the last rotation was for.

use crate::cluster::ClusterSpec;
use crate::cluster::apiserver;
use crate::cluster::k3s::{self, K3sRole};
use crate::cluster::node::Probe;
use crate::framework::resource::Context;
use crate::framework::{AttributePath, Diagnostic};
use crate::network::Hostname;

use super::node::{NodeHandle, at, error};

async fn encryption_enabled(ctx: &Context, cp: &NodeHandle) -> Result<bool, Diagnostic> {
    let out = cp
        .run(
            ctx,
            "asking k3s for its encryption status",
            &k3s::secrets_encrypt_script("status"),
            b"",
        )
        .await
        .map_err(at("secrets_encryption"))?;
    k3s::encryption_enabled(&out).ok_or_else(|| {
        error(
            "Unexpected k3s output",
            format!(
                "{}: `k3s secrets-encrypt status` printed no \"Encryption Status:\" line.",
                cp.label
            ),
            Some(AttributePath::root("secrets_encryption")),
        )
    })
}

async fn secrets_encrypt(ctx: &Context, cp: &NodeHandle, command: &str) -> Result<(), Diagnostic> {
    tracing::info!(host = %cp.label, "{}: k3s secrets-encrypt {command}", cp.label);
    cp.run(
        ctx,
        &format!("k3s secrets-encrypt {command}"),
        &k3s::secrets_encrypt_script(command),
        b"",
    )
    .await
    .map(drop)
    .map_err(at("secrets_encryption"))
}

async fn recorded_key_version(ctx: &Context, cp: &NodeHandle) -> Result<Option<u32>, Diagnostic> {
    let out = cp
        .run(
            ctx,
            "reading the recorded key version",
            &format!("cat {} 2>/dev/null || true", k3s::KEY_VERSION_FILE),
            b"",
        )
        .await?;
    Ok(out.trim().parse().ok())
}

/// Bring the k3s server to `spec.api_server`; nothing when the probe
/// already shows it there (unless `fresh`: the server just started).
#[allow(clippy::too_many_arguments)]
pub async fn converge(
    ctx: &Context,
    cp: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
    flannel: bool,
    probe: &Probe,
    fresh: bool,
) -> Result<(), Diagnostic> {
    let want = spec.api_server;
    if !fresh && probe.security.matches(&want) {
        return Ok(());
    }
    let label = &cp.label;
    if want.audit_log {
        cp.upload(ctx, k3s::AUDIT_POLICY, apiserver::audit_policy().as_bytes(), 0o600)
            .await
            .map_err(at("audit_log"))?;
    }
    let config = k3s::server_config(spec, name, cp.host(), flannel);
    let current = cp
        .run(
            ctx,
            "reading k3s's configuration",
            &format!("cat {} 2>/dev/null || true", k3s::CONFIG),
            b"",
        )
        .await?;
    // Off: k3s rewrites every Secret in clear while the file still holds
    // the keys to read them, then the configuration drops the setting.
    if want.encryption.is_none() && probe.security.encryption_flag && encryption_enabled(ctx, cp).await? {
        secrets_encrypt(ctx, cp, "disable").await?;
    }
    // The API server reads the audit policy only at start.
    let policy_restored = want.audit_log && probe.security.audit_flag && !probe.security.audit_on();
    if current != config || policy_restored {
        tracing::info!(host = %label, "{label}: restarting k3s with its new API server settings");
        cp.upload(ctx, k3s::CONFIG, config.as_bytes(), 0o600).await?;
        cp.run(ctx, "restarting k3s", &k3s::restart_script(K3sRole::Server), b"")
            .await?;
    }
    match want.encryption {
        Some(v) => {
            if !encryption_enabled(ctx, cp).await? {
                // a key file left by an earlier `disable`
                secrets_encrypt(ctx, cp, "enable").await?;
            }
            let recorded = recorded_key_version(ctx, cp).await?;
            if recorded != Some(v) {
                // A new server stored nothing before encryption was on;
                // otherwise Secrets may be in clear or under the old key.
                if !(fresh && recorded.is_none()) {
                    secrets_encrypt(ctx, cp, "rotate-keys").await?;
                }
                cp.upload(ctx, k3s::KEY_VERSION_FILE, format!("{v}\n").as_bytes(), 0o600)
                    .await?;
            }
        }
        None => {
            cp.run(
                ctx,
                "removing the recorded key version",
                &format!("rm -f {}", k3s::KEY_VERSION_FILE),
                b"",
            )
            .await?;
        }
    }
    if !want.audit_log {
        cp.run(
            ctx,
            "removing the audit policy",
            &format!("rm -f {}", k3s::AUDIT_POLICY),
            b"",
        )
        .await
        .map_err(at("audit_log"))?;
    }
    Ok(())
}
