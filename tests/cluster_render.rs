//! The kubeadm configuration files `src/cluster/` renders, checked by the
//! REAL kubeadm of the test bed's bundle (`kubeadm config validate`), for
//! the bed's settings and for a real VPS's defaults. The bundle comes from
//! `testbed/testbed env` (SELFHOST_TEST_K8S_BUNDLE); without it a loud SKIP,
//! except under CI, where it fails.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use terraform_provider_selfhost::cluster::kubeadm::{JoinCredentials, init_config, join_config};
use terraform_provider_selfhost::cluster::spec::ImageSource;
use terraform_provider_selfhost::cluster::{CgroupDriver, ClusterSpec, NodeSettings};
use terraform_provider_selfhost::host::validate;

#[path = "support/required.rs"]
mod required;

fn kubeadm(test: &str) -> Option<PathBuf> {
    let bundle = required::required_var(
        test,
        "SELFHOST_TEST_K8S_BUNDLE",
        "Build it: `testbed/testbed bundle`, then `eval \"$(testbed/testbed env)\"`",
    )?;
    Some(PathBuf::from(bundle).join("kubernetes/bin/linux/amd64/kubeadm"))
}

fn validate_with(kubeadm: &PathBuf, text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("kubeadm.yaml");
    std::fs::write(&file, text).expect("write config");
    let out = Command::new(kubeadm)
        .args(["config", "validate", "--config"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", kubeadm.display()));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn specs() -> Vec<ClusterSpec> {
    let bed = NodeSettings {
        snapshotter: "native".into(),
        restrict_oom_score_adj: true,
        containerd_oom_score_adjust: Some(0),
        cgroup_driver: CgroupDriver::Cgroupfs,
        cgroup_root: Some("/{node}".into()),
        kubelet_extra: [("failCgroupV1".to_string(), json!(false))].into(),
        kube_proxy_extra: [(
            "conntrack".to_string(),
            json!({"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"}),
        )]
        .into(),
        ignore_preflight_errors: ["SystemVerification".to_string()].into(),
    };
    vec![
        ClusterSpec::new(
            "v1.36.3",
            "10.77.0.101",
            "10.244.0.0/16",
            "10.96.0.0/12",
            ImageSource::Bundle,
            bed,
        )
        .expect("bed spec"),
        ClusterSpec::new(
            "v1.36.3",
            "k8s.example.com",
            "10.42.0.0/16",
            "10.43.0.0/16",
            ImageSource::Registry,
            NodeSettings::default(),
        )
        .expect("vps spec"),
    ]
}

#[test]
fn rendered_init_and_join_configs_pass_the_real_kubeadm() {
    let Some(kubeadm) = kubeadm("rendered_init_and_join_configs_pass_the_real_kubeadm") else {
        return;
    };
    let node = validate::hostname("cp-1").expect("name");
    let creds = JoinCredentials::from_join_command(
        "kubeadm join 10.77.0.101:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:8c2bbd6e04ed8a57ba3a0e2f0ea2a6a3c4bb9d2d6e51f0a4f8e1c1f7d5c3b2a1",
    )
    .expect("join command");
    for spec in specs() {
        let init = init_config(&spec, &node);
        validate_with(&kubeadm, &init).unwrap_or_else(|e| panic!("init config refused: {e}\n{init}"));
        let join = join_config(&spec, &node, &creds);
        validate_with(&kubeadm, &join).unwrap_or_else(|e| panic!("join config refused: {e}\n{join}"));
    }
    // The check can fail: a wrongly typed kubelet field is refused.
    let mut spec = specs().remove(0);
    spec.settings.kubelet_extra.insert("failCgroupV1".into(), json!("no"));
    let err = validate_with(&kubeadm, &init_config(&spec, &node)).expect_err("refused");
    assert!(err.contains("failCgroupV1"), "{err}");
}

#[test]
fn the_bundle_has_the_layout_the_install_script_reads() {
    let test = "the_bundle_has_the_layout_the_install_script_reads";
    let Some(kubeadm) = kubeadm(test) else { return };
    use terraform_provider_selfhost::cluster::bundle::{layout, pause_image};
    let bundle = kubeadm
        .ancestors()
        .nth(5)
        .expect("the bundle directory above kubernetes/bin/linux/amd64/kubeadm")
        .to_path_buf();
    for path in [
        layout::MANIFEST,
        layout::SHA256SUMS,
        layout::KUBELET_UNIT,
        layout::KUBEADM_DROP_IN,
        layout::CONTAINERD_UNIT,
        layout::RUNC,
        layout::IMAGE_LIST,
        layout::FLANNEL_MANIFEST,
    ] {
        assert!(bundle.join(path).is_file(), "{} is missing from the bundle", path);
    }
    for dir in [
        layout::KUBE_BIN,
        layout::CONTAINERD_BIN,
        layout::CNI_BIN,
        layout::IMAGES,
    ] {
        assert!(bundle.join(dir).is_dir(), "{dir}/ is missing from the bundle");
    }
    let list = std::fs::read_to_string(bundle.join(layout::IMAGE_LIST)).expect("images.txt");
    let pause = pause_image(&list).expect("a pause image in images.txt");
    assert!(pause.starts_with("registry.k8s.io/pause:"), "{pause}");
    for line in list.lines() {
        let file = line.split('\t').nth(1).expect("reference<TAB>file<TAB>digest");
        assert!(
            bundle.join(layout::IMAGES).join(file).is_file(),
            "{file} listed but missing"
        );
    }
}
