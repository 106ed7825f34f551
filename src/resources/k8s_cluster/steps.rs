//! The steps of bringing a node into the cluster and out of it, over SSH:
//! prepare (configuration files, prerequisites, the bundle), `kubeadm
//! init`, the CNI, `kubeadm join`, drain, reset. Each is idempotent, so
//! an apply after a failure picks up where the last one stopped.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cluster::bundle::{self, BundleFile, layout};
use crate::cluster::kubeadm::{self, JoinCredentials};
use crate::cluster::node::{self as node_scripts, BUNDLE_DIR, CNI_MANIFEST, INIT_CONFIG, JOIN_CONFIG};
use crate::cluster::{ClusterSpec, cni, reset};
use crate::framework::resource::Context;
use crate::framework::{AttributePath, Diagnostic};
use crate::host::quote::Hostname;
use crate::shell::quote;

use super::node::{NodeHandle, error};

/// The air-gapped bundle on the machine running Terraform.
pub struct LocalBundle {
    dir: PathBuf,
    files: Vec<BundleFile>,
    pub pause_image: String,
    flannel: String,
}

fn bundle_path() -> AttributePath {
    AttributePath::root("install").attr("bundle")
}

impl LocalBundle {
    /// Read the bundle's index files and check it holds `version`.
    pub fn load(dir: &str, version: &str) -> Result<LocalBundle, Diagnostic> {
        let dir = PathBuf::from(dir);
        let bad = |m: String| error("Unusable bundle", m, Some(bundle_path()));
        let read = |rel: &str| {
            std::fs::read_to_string(dir.join(rel))
                .map_err(|e| bad(format!("{}: cannot read {rel}: {e}.", dir.display())))
        };
        let manifest: serde_json::Value = serde_json::from_str(&read(layout::MANIFEST)?)
            .map_err(|e| bad(format!("{}: {} is not JSON: {e}.", dir.display(), layout::MANIFEST)))?;
        let held = manifest.get("kubernetes").and_then(|v| v.as_str()).unwrap_or("");
        if held != version {
            return Err(bad(format!(
                "{}: the bundle holds Kubernetes {held:?}, but `version` is {version:?}.",
                dir.display()
            )));
        }
        let files =
            bundle::node_files(&read(layout::SHA256SUMS)?).map_err(|m| bad(format!("{}: {m}.", dir.display())))?;
        let pause_image = bundle::pause_image(&read(layout::IMAGE_LIST)?).ok_or_else(|| {
            bad(format!(
                "{}: {} lists no pause image.",
                dir.display(),
                layout::IMAGE_LIST
            ))
        })?;
        let flannel = read(layout::FLANNEL_MANIFEST)?;
        Ok(LocalBundle {
            dir,
            files,
            pause_image,
            flannel,
        })
    }

    /// The CNI manifest for `spec`, `None` for `cni = "none"`.
    pub fn cni_manifest(&self, cni_name: &str, spec: &ClusterSpec) -> Result<Option<String>, Diagnostic> {
        match cni_name {
            "none" => Ok(None),
            "flannel" => cni::flannel_manifest(&self.flannel, &spec.pod_cidr)
                .map(Some)
                .map_err(|m| error("Unusable bundle", format!("{m}."), Some(bundle_path()))),
            other => Err(error(
                "CNI not available",
                format!(
                    "cni = {other:?} is not in this provider version's bundle support; use \"flannel\" or \"none\"."
                ),
                Some(AttributePath::root("cni")),
            )),
        }
    }
}

/// Configuration files, prerequisites, binaries and images on `node`
/// (only the bundle files it lacks are uploaded).
pub async fn prepare(
    ctx: &Context,
    node: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
    bundle: &LocalBundle,
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
    let (write, remove) = node_scripts::files(spec, name, &bundle.pause_image);
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

    let sums = bundle::node_sums(&bundle.files);
    let present: BTreeSet<String> = node
        .run(
            ctx,
            "checking bundle files",
            &bundle::present_script(BUNDLE_DIR),
            sums.as_bytes(),
        )
        .await?
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&BundleFile> = bundle.files.iter().filter(|f| !present.contains(&f.path)).collect();
    if !missing.is_empty() {
        let bytes: u64 = missing
            .iter()
            .filter_map(|f| std::fs::metadata(bundle.dir.join(&f.path)).ok())
            .map(|m| m.len())
            .sum();
        tracing::info!(host = %label, "{label}: uploading {} bundle files ({} MiB)", missing.len(), bytes >> 20);
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
            "creating bundle directories",
            &format!("mkdir -p {}", dirs.join(" ")),
            b"",
        )
        .await?;
        for f in missing {
            node.upload_file(
                ctx,
                &bundle.dir.join(&f.path),
                &format!("{BUNDLE_DIR}/{}", f.path),
                0o644,
            )
            .await?;
        }
    }
    node.upload(
        ctx,
        &format!("{BUNDLE_DIR}/{}", layout::SHA256SUMS),
        sums.as_bytes(),
        0o644,
    )
    .await?;
    tracing::info!(host = %label, "{label}: installing binaries and importing images");
    node.run(
        ctx,
        "installing the bundle",
        &bundle::install_script(BUNDLE_DIR, &spec.settings.snapshotter),
        b"",
    )
    .await?;
    Ok(())
}

/// `kubeadm init` on the control plane.
pub async fn init(ctx: &Context, cp: &NodeHandle, name: &Hostname, spec: &ClusterSpec) -> Result<(), Diagnostic> {
    let label = &cp.label;
    tracing::info!(host = %label, "{label}: kubeadm init (Kubernetes {})", spec.version);
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
    cp.run(ctx, "draining the node", &node_scripts::drain_script(name), b"")
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
