//! containerd's `/etc/containerd/config.toml` (config version 2, read by
//! containerd 1.6 to 2.x) and its unit drop-in. Only validated values go
//! in: the snapshotter is a checked word, the sandbox image a reference
//! from the bundle's own list, written as a TOML basic string.

use super::spec::{CgroupDriver, ClusterSpec};

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The whole config file. `sandbox_image` is the pause image kubeadm
/// expects (`registry.k8s.io/pause:3.10.2`).
pub fn config_toml(spec: &ClusterSpec, sandbox_image: &str) -> String {
    let s = &spec.settings;
    format!(
        r#"# Written by terraform-provider-selfhost (selfhost_k8s_cluster).
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox}
  restrict_oom_score_adj = {restrict}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = {snapshotter}
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = {systemd}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
"#,
        sandbox = toml_string(sandbox_image),
        restrict = s.restrict_oom_score_adj,
        snapshotter = toml_string(&s.snapshotter),
        systemd = s.cgroup_driver == CgroupDriver::Systemd,
    )
}

/// containerd.service's drop-in, when a setting needs one.
pub fn unit_drop_in(spec: &ClusterSpec) -> Option<String> {
    spec.settings
        .containerd_oom_score_adjust
        .map(|adj| format!("[Service]\nOOMScoreAdjust={adj}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::spec::{ImageSource, NodeSettings};

    fn spec(settings: NodeSettings) -> ClusterSpec {
        ClusterSpec::new(
            "v1.36.3",
            "10.0.0.1",
            "10.244.0.0/16",
            "10.96.0.0/12",
            ImageSource::Bundle,
            settings,
        )
        .expect("valid")
    }

    #[test]
    fn defaults_fit_a_systemd_vps() {
        let text = config_toml(&spec(NodeSettings::default()), "registry.k8s.io/pause:3.10.2");
        assert!(text.contains("sandbox_image = \"registry.k8s.io/pause:3.10.2\""));
        assert!(text.contains("restrict_oom_score_adj = false"));
        assert!(text.contains("snapshotter = \"overlayfs\""));
        assert!(text.contains("SystemdCgroup = true"));
        assert_eq!(unit_drop_in(&spec(NodeSettings::default())), None);
    }

    #[test]
    fn bed_settings_and_strings_stay_strings() {
        let s = spec(NodeSettings {
            snapshotter: "native".into(),
            restrict_oom_score_adj: true,
            containerd_oom_score_adjust: Some(0),
            cgroup_driver: crate::cluster::CgroupDriver::Cgroupfs,
            ..NodeSettings::default()
        });
        let text = config_toml(&s, "x\"\n[evil]");
        assert!(text.contains("sandbox_image = \"x\\\"\\u000A[evil]\""), "{text}");
        assert!(text.contains("SystemdCgroup = false"));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert_eq!(unit_drop_in(&s).as_deref(), Some("[Service]\nOOMScoreAdjust=0\n"));
    }
}
