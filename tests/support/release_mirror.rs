//! A local HTTP server laid out like the official release downloads
//! (dl.k8s.io/release, and the containerd, runc and CNI-plugin GitHub
//! releases), serving the test bed bundle's own binaries with checksum
//! files computed here. It is a plain `python3 -m http.server`: the
//! provider fetches from it exactly as it would from upstream, and its
//! request log shows what was fetched.

#![allow(dead_code)] // used by the download acceptance tests only

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Versions the mirror files the bundle's runtime under (the bundle's
/// Debian packages: containerd 1.6.20, runc 1.1.5, CNI plugins 1.1.1).
pub const CONTAINERD: &str = "1.6.20";
pub const RUNC: &str = "1.1.5";
pub const CNI_PLUGINS: &str = "1.1.1";

pub struct ReleaseMirror {
    pub root: PathBuf,
    pub url: String,
    log: PathBuf,
    server: Child,
    _dir: tempfile::TempDir,
}

fn sh(script: &str) {
    let out = Command::new("sh").arg("-ec").arg(script).output().expect("run sh");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

impl ReleaseMirror {
    /// Lay out the bundle's binaries for Kubernetes `version` and serve them.
    pub fn start(bundle: &str, version: &str) -> ReleaseMirror {
        let dir = tempfile::Builder::new()
            .prefix("release-mirror-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("mirror dir");
        let root = dir.path().join("www");
        let b = Path::new(bundle);
        let k8s = root.join(format!("k8s/{version}/bin/linux/amd64"));
        let cd = root.join(format!("containerd/v{CONTAINERD}"));
        let runc = root.join(format!("runc/v{RUNC}"));
        let cni = root.join(format!("cni/v{CNI_PLUGINS}"));
        let kb = b.join("kubernetes/bin/linux/amd64");
        sh(&format!(
            r#"mkdir -p {k8s} {cd} {runc} {cni}
for n in kubeadm kubelet kubectl; do cp {kb}/$n {k8s}/$n; (cd {k8s} && sha256sum $n | cut -d' ' -f1 > $n.sha256); done
tar -czf {cd}/containerd-{CONTAINERD}-linux-amd64.tar.gz -C {bcd} bin
(cd {cd} && sha256sum containerd-{CONTAINERD}-linux-amd64.tar.gz > containerd-{CONTAINERD}-linux-amd64.tar.gz.sha256sum)
cp {brunc} {runc}/runc.amd64
(cd {runc} && printf '%s  runc.arm64\n' {zeros} > runc.sha256sum && sha256sum runc.amd64 >> runc.sha256sum)
tar -czf {cni}/cni-plugins-linux-amd64-v{CNI_PLUGINS}.tgz -C {bcni} .
(cd {cni} && sha256sum cni-plugins-linux-amd64-v{CNI_PLUGINS}.tgz > cni-plugins-linux-amd64-v{CNI_PLUGINS}.tgz.sha256)
"#,
            k8s = q(&k8s),
            cd = q(&cd),
            runc = q(&runc),
            cni = q(&cni),
            kb = q(&kb),
            bcd = q(&b.join("containerd")),
            brunc = q(&b.join("runc/runc.amd64")),
            bcni = q(&b.join("cni/bin")),
            zeros = "0".repeat(64),
        ));
        serve(dir, root)
    }

    /// Lay out the bundle's `k3s/k3s` as the k3s release `release`
    /// (`k3s/<release>/k3s` and its `sha256sum-amd64.txt`, which lists other
    /// assets too, as upstream's does) and serve it.
    pub fn start_k3s(bundle: &str, release: &str) -> ReleaseMirror {
        let dir = tempfile::Builder::new()
            .prefix("release-mirror-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("mirror dir");
        let root = dir.path().join("www");
        let rel = root.join(format!("k3s/{release}"));
        sh(&format!(
            r#"mkdir -p {rel}
cp {bin} {rel}/k3s
(cd {rel} && printf '%s  k3s-airgap-images-amd64.tar.zst\n' {zeros} > sha256sum-amd64.txt && sha256sum k3s >> sha256sum-amd64.txt)
"#,
            rel = q(&rel),
            bin = q(&Path::new(bundle).join("k3s/k3s")),
            zeros = "0".repeat(64),
        ));
        serve(dir, root)
    }

    /// The `install {}` attributes pointing at this mirror.
    pub fn install_hcl(&self, image_archives: &str) -> String {
        format!(
            r#"  install {{
    source              = "download"
    base_url            = "{u}/k8s"
    containerd_url      = "{u}/containerd"
    containerd_version  = "{CONTAINERD}"
    runc_url            = "{u}/runc"
    runc_version        = "{RUNC}"
    cni_plugins_url     = "{u}/cni"
    cni_plugins_version = "{CNI_PLUGINS}"
    image_archives      = "{image_archives}"
  }}"#,
            u = self.url
        )
    }

    /// The paths requested so far (`GET /x`), in order.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split("\"GET ").nth(1))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_owned)
            .collect()
    }

    /// Replace a served file's bytes (its checksum file keeps the old sum).
    pub fn tamper(&self, rel: &str) -> Vec<u8> {
        let p = self.root.join(rel);
        let good = std::fs::read(&p).expect("read served file");
        let mut bad = good.clone();
        bad.extend_from_slice(b"\0tampered");
        std::fs::write(&p, bad).expect("tamper");
        good
    }

    pub fn restore(&self, rel: &str, good: &[u8]) {
        std::fs::write(self.root.join(rel), good).expect("restore");
    }
}

impl Drop for ReleaseMirror {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Serve `root` (inside `dir`) with `python3 -m http.server` on a free
/// loopback port, its request log kept.
fn serve(dir: tempfile::TempDir, root: PathBuf) -> ReleaseMirror {
    let log = dir.path().join("requests.log");
    let port = free_port();
    let server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(&root)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("python3 -m http.server");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the mirror did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    ReleaseMirror {
        root,
        url,
        log,
        server,
        _dir: dir,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
