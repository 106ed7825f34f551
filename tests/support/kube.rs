//! The test bed's Kubernetes API server as tests see it: through
//! `testbed/testbed env` variables (`KUBECONFIG`, `SELFHOST_TEST_KUBECTL`)
//! and the real `kubectl` (never the provider's own client, so checks of
//! what the provider did are independent of it). Every test works in its
//! own namespaces (`acc-<test>-<random>`), deleted when it ends.

#![allow(dead_code)] // each test file uses a different part of this module

use std::process::{Command, Stdio};

use super::bed::bed_var;

/// The bed's cluster.
#[derive(Clone, Debug)]
pub struct KubeBed {
    /// Path of the admin kubeconfig.
    pub kubeconfig: String,
    pub kubectl: String,
}

/// The cluster, or `None` after a loud SKIP (a panic under CI).
pub fn kube_bed(test: &str) -> Option<KubeBed> {
    let kubeconfig = bed_var(test, "KUBECONFIG")?;
    let kubectl = bed_var(test, "SELFHOST_TEST_KUBECTL")?;
    Some(KubeBed { kubeconfig, kubectl })
}

impl KubeBed {
    /// Run kubectl with `args` (and `stdin`), returning (success, stdout, stderr).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(text.as_bytes());
        }
        let out = child.wait_with_output().expect("wait for kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// kubectl that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args, None);
        assert!(ok, "kubectl {} failed:\n{out}{err}", args.join(" "));
        out
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) {
        let (ok, out, err) = self.run(&["apply", "-f", "-"], Some(yaml));
        assert!(ok, "kubectl apply failed:\n{out}{err}\n{yaml}");
    }

    /// A fresh namespace `acc-<label>-<random>`, deleted on drop.
    pub fn namespace(&self, label: &str) -> Namespace {
        let suffix: String = {
            let mut b = [0u8; 4];
            getrandom::fill(&mut b).expect("random");
            hex::encode(b)
        };
        let name = format!("acc-{label}-{suffix}");
        self.ok(&["create", "namespace", &name]);
        Namespace {
            bed: self.clone(),
            name,
        }
    }

    /// The object as JSON, or `None` when it does not exist.
    pub fn get_json(&self, kind: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let (ok, out, err) = self.run(
            &[
                "get",
                kind,
                "-n",
                namespace,
                name,
                "-o",
                "json",
                "--show-managed-fields",
            ],
            None,
        );
        if !ok {
            assert!(
                err.contains("NotFound") || err.contains("not found"),
                "kubectl get failed: {err}"
            );
            return None;
        }
        Some(serde_json::from_str(&out).expect("kubectl get -o json gives JSON"))
    }

    /// The decoded value of a Secret's data key, or `None`.
    pub fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        use base64::Engine;
        let s = self.get_json("secret", namespace, name)?;
        let b64 = s["data"][key].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("Secret data is base64");
        Some(String::from_utf8(bytes).expect("UTF-8 secret value"))
    }

    /// A kubeconfig (text) for the ServiceAccount `sa` of `namespace`, with
    /// a short-lived token: same server and CA as the admin one. `role`, when
    /// given, is a ClusterRole bound to it in that namespace only.
    pub fn service_account_kubeconfig(&self, namespace: &str, sa: &str, role: Option<&str>) -> String {
        self.ok(&["create", "serviceaccount", "-n", namespace, sa]);
        if let Some(role) = role {
            let sa_ref = format!("{namespace}:{sa}");
            let binding = format!("{sa}-{role}");
            self.ok(&[
                "create",
                "rolebinding",
                &binding,
                "-n",
                namespace,
                "--clusterrole",
                role,
                "--serviceaccount",
                &sa_ref,
            ]);
        }
        let token = self.ok(&["create", "token", "-n", namespace, sa, "--duration", "1h"]);
        let server = self.ok(&[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ]);
        let ca = self.ok(&[
            "config",
            "view",
            "--minify",
            "--raw",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ]);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bed\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: sa\n  context: {{cluster: bed, user: sa, namespace: {namespace}}}\ncurrent-context: sa\nusers:\n- name: sa\n  user:\n    token: {}\n",
            token.trim()
        )
    }
}

/// A namespace of its own for one test, and a kubeconfig file (in `dir`)
/// whose ServiceAccount may do everything in it (ClusterRole `admin` bound
/// in the namespace only). Why not the bed's admin kubeconfig: its client
/// certificate is X.509 v1, which rustls refuses (docs/development.md, "What is real").
pub fn namespace_with_kubeconfig(bed: &KubeBed, label: &str, dir: &std::path::Path) -> (Namespace, String) {
    let ns = bed.namespace(label);
    let text = bed.service_account_kubeconfig(&ns.name, "provider", Some("admin"));
    let path = dir.join(format!("{}.kubeconfig", ns.name));
    std::fs::write(&path, text).expect("write the test kubeconfig");
    (ns, path.display().to_string())
}

/// A namespace deleted (without waiting) when dropped.
pub struct Namespace {
    bed: KubeBed,
    pub name: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.bed.run(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}
