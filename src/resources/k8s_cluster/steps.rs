//! The steps of bringing a node into the cluster and out of it, over SSH:
//! prepare (configuration files, prerequisites, the bundle), `kubeadm
//! init`, the CNI, `kubeadm join`, drain, reset. Each is idempotent, so
//! an apply after a failure picks up where the last one stopped.

use std::collections::BTreeSet;

use crate::cluster::bundle::{self, layout};
use crate::cluster::kubeadm::{self, JoinCredentials};
use crate::cluster::node::{self as node_scripts, BUNDLE_DIR, CNI_MANIFEST, INIT_CONFIG, JOIN_CONFIG, UPGRADE_CONFIG};
use crate::cluster::{ClusterSpec, reset, upgrade};
use crate::framework::Diagnostic;
use crate::framework::resource::Context;
use crate::network::Hostname;
use crate::shell::quote;

use super::node::{NodeHandle, error};
use super::payload::{Bytes, Payload, PayloadFile};

/// Binaries, configuration files, prerequisites and images on `node`
/// (only the payload files it lacks are uploaded).
pub async fn prepare(
    ctx: &Context,
    node: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
    payload: &Payload,
) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: preparing the node (containerd, kubelet, kubeadm {})", spec.version);
    let mkdirs: Vec<String> = node_scripts::CONFIG_DIRS.iter().map(|d| quote(d)).collect();
    node.run(
        ctx,
        "creating directories",
        &format!("mkdir -p {}", mkdirs.join(" ")),
        b"",
    )
    .await?;

    upload_payload(ctx, node, payload).await?;
    tracing::info!(host = %label, "{label}: installing binaries and units");
    node.run(ctx, "installing binaries", &bundle::install_script(BUNDLE_DIR), b"")
        .await?;

    let pause_image = match &payload.pause_image {
        Some(p) => p.clone(),
        None => {
            let out = node
                .run(
                    ctx,
                    "asking kubeadm for its pause image",
                    &bundle::pause_query_script(&spec.version.to_string()),
                    b"",
                )
                .await?;
            valid_image(out.trim()).ok_or_else(|| {
                error(
                    "Cluster step failed: pause image",
                    format!(
                        "{label}: `kubeadm config images list` named no usable pause image ({:?}).",
                        out.trim()
                    ),
                    Some(node.role.path()),
                )
            })?
        }
    };
    let (write, remove) = node_scripts::files(spec, name, &pause_image);
    for f in &write {
        node.upload(ctx, f.path, f.contents.as_bytes(), f.mode).await?;
    }
    let rm: Vec<String> = remove.iter().map(|p| quote(p)).collect();
    if !rm.is_empty() {
        node.run(ctx, "removing stale files", &format!("rm -f {}", rm.join(" ")), b"")
            .await?;
    }
    node.run(
        ctx,
        "kubeadm prerequisites (modules, sysctl)",
        &node_scripts::prerequisites_script(),
        b"",
    )
    .await?;
    tracing::info!(host = %label, "{label}: starting containerd, importing images");
    node.run(
        ctx,
        "starting containerd and importing images",
        &bundle::start_runtime_script(BUNDLE_DIR, &spec.settings.snapshotter),
        b"",
    )
    .await?;
    Ok(())
}

/// Upload the payload files `node` lacks (by checksum) to the staging
/// directory, and the node's `SHA256SUMS` of exactly the payload.
pub async fn upload_payload(ctx: &Context, node: &NodeHandle, payload: &Payload) -> Result<(), Diagnostic> {
    let label = &node.label;
    let sums = payload.sums();
    let present: BTreeSet<String> = node
        .run(
            ctx,
            "checking installed files",
            &bundle::present_script(BUNDLE_DIR),
            sums.as_bytes(),
        )
        .await?
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&PayloadFile> = payload.files.iter().filter(|f| !present.contains(&f.path)).collect();
    if !missing.is_empty() {
        let bytes: u64 = missing.iter().map(|f| f.len()).sum();
        tracing::info!(host = %label, "{label}: uploading {} files ({} MiB)", missing.len(), bytes >> 20);
        let dirs: BTreeSet<String> = missing
            .iter()
            .filter_map(|f| {
                f.path
                    .rsplit_once('/')
                    .map(|(d, _)| quote(&format!("{BUNDLE_DIR}/{d}")))
            })
            .collect();
        let dirs: Vec<String> = dirs.into_iter().collect();
        node.run(
            ctx,
            "creating payload directories",
            &format!("mkdir -p {}", dirs.join(" ")),
            b"",
        )
        .await?;
        for f in missing {
            let remote = format!("{BUNDLE_DIR}/{}", f.path);
            match &f.bytes {
                Bytes::File(local) => node.upload_file(ctx, local, &remote, 0o644).await?,
                Bytes::Embedded(text) => node.upload(ctx, &remote, text.as_bytes(), 0o644).await?,
            }
        }
    }
    node.upload(
        ctx,
        &format!("{BUNDLE_DIR}/{}", layout::SHA256SUMS),
        sums.as_bytes(),
        0o644,
    )
    .await?;
    Ok(())
}

/// An image reference as kubeadm prints one (it reaches containerd's TOML
/// through the renderer, which quotes it; this keeps garbage out).
fn valid_image(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.contains("/pause:")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b':' | b'@'));
    ok.then(|| s.to_owned())
}

/// An upgrade's first step on `node`: the new release's payload uploaded
/// (only what it lacks), its kubeadm installed and its images imported;
/// the running kubelet, containerd and pods are left alone.
pub async fn stage(ctx: &Context, node: &NodeHandle, spec: &ClusterSpec, payload: &Payload) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: staging Kubernetes {} (kubeadm and images; nothing restarted)", spec.version);
    upload_payload(ctx, node, payload).await?;
    node.run(
        ctx,
        "staging the new release",
        &bundle::stage_script(BUNDLE_DIR, &spec.settings.snapshotter),
        b"",
    )
    .await
    .map(drop)
}

/// The node's `UpgradeConfiguration` (the version, its preflight choices
/// and patch directory), which every `kubeadm upgrade` command reads.
async fn write_upgrade_config(ctx: &Context, node: &NodeHandle, spec: &ClusterSpec) -> Result<(), Diagnostic> {
    node.upload(ctx, UPGRADE_CONFIG, kubeadm::upgrade_config(spec).as_bytes(), 0o600)
        .await
}

/// `kubeadm upgrade plan` (its report at DEBUG) and `kubeadm upgrade
/// apply` on the control plane, from the provider's UpgradeConfiguration.
pub async fn upgrade_control_plane(ctx: &Context, cp: &NodeHandle, spec: &ClusterSpec) -> Result<(), Diagnostic> {
    let label = &cp.label;
    write_upgrade_config(ctx, cp, spec).await?;
    let plan = cp
        .run(ctx, "kubeadm upgrade plan", &upgrade::plan_script(), b"")
        .await?;
    tracing::debug!(host = %label, "{label}: kubeadm upgrade plan:\n{plan}");
    tracing::info!(host = %label, "{label}: kubeadm upgrade apply {} (etcd, API server, controller manager, scheduler, CoreDNS, kube-proxy)", spec.version);
    let out = cp
        .run(ctx, "kubeadm upgrade apply", &upgrade::apply_script(), b"")
        .await?;
    tracing::debug!(host = %label, "{label}: kubeadm upgrade apply:\n{out}");
    let backups = upgrade::backups(&out);
    tracing::info!(
        host = %label,
        "{label}: control plane at {}; kubeadm's backups (the old static pod manifests; etcd's data when etcd was upgraded): {}",
        spec.version,
        if backups.is_empty() { "/etc/kubernetes/tmp (it named no directory)".to_owned() } else { backups.join(", ") }
    );
    Ok(())
}

/// `kubeadm upgrade node` on a drained worker (its kubelet configuration
/// from the cluster's, with the node's patch).
pub async fn upgrade_worker(ctx: &Context, node: &NodeHandle, spec: &ClusterSpec) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: kubeadm upgrade node");
    write_upgrade_config(ctx, node, spec).await?;
    let out = node
        .run(ctx, "kubeadm upgrade node", &upgrade::node_script(), b"")
        .await?;
    tracing::debug!(host = %label, "{label}: kubeadm upgrade node:\n{out}");
    Ok(())
}

/// `kubeadm init` on the control plane.
pub async fn init(ctx: &Context, cp: &NodeHandle, name: &Hostname, spec: &ClusterSpec) -> Result<(), Diagnostic> {
    let label = &cp.label;
    tracing::info!(host = %label, "{label}: kubeadm init (Kubernetes {})", spec.version);
    super::security::before_init(ctx, cp, &spec.api_server).await?;
    cp.upload(ctx, INIT_CONFIG, kubeadm::init_config(spec, name).as_bytes(), 0o600)
        .await?;
    cp.run(ctx, "kubeadm init", &node_scripts::init_script(), b"").await?;
    tracing::info!(host = %label, "{label}: control plane initialised");
    Ok(())
}

/// The admin kubeconfig (never logged).
pub async fn admin_kubeconfig(ctx: &Context, cp: &NodeHandle) -> Result<String, Diagnostic> {
    cp.run_secret(
        ctx,
        "reading the admin kubeconfig",
        &format!("cat {}", node_scripts::ADMIN_CONF),
    )
    .await
}

/// Apply the CNI manifest from the control plane (server-side, under the
/// provider's field manager: it repairs a changed or deleted object).
pub async fn apply_cni(ctx: &Context, cp: &NodeHandle, manifest: &str) -> Result<(), Diagnostic> {
    let label = &cp.label;
    tracing::info!(host = %label, "{label}: applying the CNI");
    cp.upload(ctx, CNI_MANIFEST, manifest.as_bytes(), 0o644).await?;
    let script = node_scripts::kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        crate::kube::FIELD_MANAGER,
        "-f",
        CNI_MANIFEST,
    ]);
    cp.run(ctx, "applying the CNI manifest", &script, b"").await?;
    Ok(())
}

/// `kubeadm join` of `worker` with a fresh short-lived token.
pub async fn join(
    ctx: &Context,
    cp: &NodeHandle,
    worker: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
) -> Result<(), Diagnostic> {
    let label = &worker.label;
    tracing::info!(host = %label, "{label}: kubeadm join");
    let line = cp
        .run_secret(ctx, "creating a join token", node_scripts::TOKEN_SCRIPT)
        .await?;
    let creds = JoinCredentials::from_join_command(line.trim()).map_err(|m| {
        error(
            "Cluster step failed: join token",
            format!("{}: {m}.", cp.label),
            Some(cp.role.path()),
        )
    })?;
    worker
        .upload(
            ctx,
            JOIN_CONFIG,
            kubeadm::join_config(spec, name, &creds).as_bytes(),
            0o600,
        )
        .await?;
    worker
        .run(ctx, "kubeadm join", &node_scripts::join_script(), b"")
        .await?;
    tracing::info!(host = %label, "{label}: joined as {}", name.as_str());
    Ok(())
}

/// Start containerd and (re)start kubelet.
pub async fn start_services(ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: starting containerd and kubelet");
    node.run(
        ctx,
        "starting containerd and kubelet",
        node_scripts::start_services_script(),
        b"",
    )
    .await
    .map(drop)
}

/// Drain `name` and delete its Node, from the control plane.
pub async fn drain(ctx: &Context, cp: &NodeHandle, name: &Hostname) -> Result<(), Diagnostic> {
    tracing::info!(host = %cp.label, "{}: draining and deleting node {}", cp.label, name.as_str());
    cp.run(
        ctx,
        "draining the node",
        &node_scripts::drain_script(name, node_scripts::kubectl),
        b"",
    )
    .await
    .map(drop)
}

/// Take Kubernetes off `node` entirely.
pub async fn reset(ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: kubeadm reset and removing Kubernetes files, units and interfaces");
    node.run(ctx, "resetting the node", &reset::reset_script(), b"").await?;
    tracing::info!(host = %label, "{label}: clean");
    Ok(())
}
