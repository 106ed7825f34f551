//! `scripts/release` end to end: this test build of the provider (debug
//! information stripped) packaged the way a release is (`--binary`, so no
//! release build runs here), signed
//! with a throwaway GPG key made here, served as a provider network mirror by
//! a local HTTPS server, and installed by every real CLI with `init`, which
//! checks the zip against the mirror's `zh:` hash. A zip with other bytes
//! under the same name must be refused.
//!
//! Run it with its step log:
//! `cargo test --test release_install -- --nocapture`.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use support::{Cli, Kind, PROVIDER_BIN, REPO, Workdir, for_each_cli};
use terraform_provider_selfhost::plugin::handshake::SUPPORTED_PROTOCOL_VERSIONS;

/// The version the test release gets: Cargo.toml's, as a real release has.
const VERSION: &str = env!("CARGO_PKG_VERSION");
const NAME: &str = "terraform-provider-selfhost";
const PASSPHRASE: &str = "throwaway release-test passphrase";

fn scratch() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("release-install")
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `sha256sum`'s digest of `path` (this test is built without optimization,
/// and hashes files of 80 MB: coreutils is many times faster).
fn sha256_file(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg("--binary").arg(path));
    let text = String::from_utf8(out.stdout).unwrap();
    let digest = text.split_whitespace().next().unwrap_or_default();
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "sha256sum {}: {text}",
        path.display()
    );
    digest.to_owned()
}

/// Whether a tool this test runs is there: without it the test fails in CI
/// and SKIPs loudly elsewhere (scripts/test installs gnupg).
fn have_tool(test: &str, tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: `{tool}` is not installed and CI is set (scripts/test installs it)"
        );
        eprintln!(
            "\n{bar}\nSKIP {test}: `{tool}` is not installed\n{bar}\n",
            bar = "#".repeat(78)
        );
    }
    found
}

/// A throwaway signing key: its armored private key (protected by
/// [`PASSPHRASE`]) and armored public key. Made once per test process in a
/// GNUPGHOME of its own, whose agent is stopped afterwards.
struct Key {
    secret: String,
    public: String,
}

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let home = scratch().join("gnupg-keygen");
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let gpg = |args: &[&str]| {
            let out = run_ok(Command::new("gpg").env("GNUPGHOME", &home).arg("--batch").args(args));
            String::from_utf8(out.stdout).unwrap()
        };
        gpg(&[
            "--passphrase",
            PASSPHRASE,
            "--quick-gen-key",
            "selfhost release test <release-test@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]);
        let secret = gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            PASSPHRASE,
            "--armor",
            "--export-secret-keys",
        ]);
        let public = gpg(&["--armor", "--export"]);
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &home)
            .args(["--kill", "all"])
            .status();
        let _ = std::fs::remove_dir_all(&home);
        assert!(secret.contains("BEGIN PGP PRIVATE KEY BLOCK"), "{secret}");
        assert!(public.contains("BEGIN PGP PUBLIC KEY BLOCK"), "{public}");
        Key { secret, public }
    })
}

/// `scripts/release VERSION --binary linux_amd64=<this test build> --mirror-layout --out <out>`.
fn package(out: &Path, binary: &Path) -> Output {
    let key = key();
    run(Command::new(Path::new(REPO).join("scripts/release"))
        .arg(VERSION)
        .arg("--binary")
        .arg(format!("linux_amd64={}", binary.display()))
        .arg("--mirror-layout")
        .arg("--out")
        .arg(out)
        .env("SELFHOST_RELEASE_GPG_KEY", &key.secret)
        .env("SELFHOST_RELEASE_GPG_PASSPHRASE", PASSPHRASE))
}

fn package_ok(out: &Path, binary: &Path) {
    let o = package(out, binary);
    assert!(
        o.status.success(),
        "scripts/release failed ({})\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    // stdout is the output directory, nothing else
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), out.display().to_string());
}

fn zip_name() -> String {
    format!("{NAME}_{VERSION}_linux_amd64.zip")
}

/// The binary the test releases: this test build of the provider without
/// its debug information (`strip --strip-debug`; the same program, a quarter
/// of the size, so zipping, serving and unpacking it four times stay quick).
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = scratch().join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        let stripped = dir.join(NAME);
        run_ok(
            Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&stripped)
                .arg(PROVIDER_BIN),
        );
        let version = run_ok(Command::new(&stripped).arg("version"));
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("{NAME} {VERSION}"),
            "the stripped copy must still run"
        );
        stripped
    })
}

/// The release directory of this test build, packaged once per process.
fn release() -> &'static Path {
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let out = scratch().join("release-a");
        let _ = std::fs::remove_dir_all(&out);
        let started = Instant::now();
        package_ok(&out, binary());
        eprintln!(
            "release_install: packaged {} in {:.1?}",
            out.display(),
            started.elapsed()
        );
        out
    })
}

/// The zip's entries as Python's zipfile reads them: name, Unix mode, time
/// stamp, size and SHA-256 of the contents.
fn zip_entries(zip: &Path) -> Json {
    let out = run_ok(
        Command::new("python3")
            .arg("-c")
            .arg(
                r#"import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    print(json.dumps([{"name": i.filename, "mode": oct(i.external_attr >> 16), "date_time": list(i.date_time),
                       "create_system": i.create_system, "size": i.file_size,
                       "sha256": hashlib.sha256(z.read(i)).hexdigest()} for i in z.infolist()]))"#,
            )
            .arg(zip),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The artefacts: the zip holds exactly the binary under the registry's name,
/// SHA256SUMS lists the zip and the manifest with their real digests, its
/// signature verifies with the public key alone (and not for other bytes),
/// the manifest announces the protocol the provider serves, and packaging
/// again gives the same zip bytes.
#[test]
fn release_artifacts_are_reproducible_and_signed() {
    let test = "release_artifacts_are_reproducible_and_signed";
    if !have_tool(test, "gpg") || !have_tool(test, "python3") {
        return;
    }
    let out = release();
    let zip = out.join(zip_name());

    // the zip: one entry, the registry's binary name, mode 0755, our bytes,
    // stamped with the HEAD commit's time
    let entries = zip_entries(&zip);
    let commit_time: i64 =
        String::from_utf8(run_ok(Command::new("git").args(["-C", REPO, "log", "-1", "--format=%ct"])).stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    let t = time::OffsetDateTime::from_unix_timestamp(commit_time).unwrap();
    // zip stores even seconds
    let expected_time = json!([
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second() / 2 * 2
    ]);
    let expected = json!([{
        "name": format!("{NAME}_v{VERSION}"),
        "mode": "0o100755",
        "date_time": expected_time,
        "create_system": 3,
        "size": std::fs::metadata(binary()).unwrap().len(),
        "sha256": sha256_file(binary()),
    }]);
    assert_eq!(entries, expected, "entries of {}", zip.display());

    // SHA256SUMS: sorted, sha256sum's format, every digest right
    let sums_path = out.join(format!("{NAME}_{VERSION}_SHA256SUMS"));
    let sums = std::fs::read_to_string(&sums_path).unwrap();
    let manifest_name = format!("{NAME}_{VERSION}_manifest.json");
    let expected_sums = format!(
        "{}  {}\n{}  {}\n",
        sha256_file(&zip),
        zip_name(),
        sha256_file(&out.join(&manifest_name)),
        manifest_name
    );
    assert_eq!(sums, expected_sums, "{}", sums_path.display());
    run_ok(
        Command::new("sha256sum")
            .arg("--check")
            .arg("--strict")
            .arg(&sums_path)
            .current_dir(out),
    );

    // the manifest: what the registry reads to know the plugin protocol
    let manifest: Json = serde_json::from_slice(&std::fs::read(out.join(&manifest_name)).unwrap()).unwrap();
    let served: Vec<String> = SUPPORTED_PROTOCOL_VERSIONS.iter().map(|v| format!("{v}.0")).collect();
    assert_eq!(
        manifest,
        json!({"version": 1, "metadata": {"protocol_versions": served}}),
        "{manifest_name} must announce the protocol versions the provider serves"
    );

    // the signature, checked with only the public key
    let verify_home = scratch().join("gnupg-verify");
    let _ = std::fs::remove_dir_all(&verify_home);
    std::fs::create_dir_all(&verify_home).unwrap();
    std::fs::set_permissions(&verify_home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let public = verify_home.join("public.asc");
    std::fs::write(&public, &key().public).unwrap();
    let gpg = || {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &verify_home).arg("--batch");
        c
    };
    run_ok(gpg().arg("--import").arg(&public));
    let sig = out.join(format!("{NAME}_{VERSION}_SHA256SUMS.sig"));
    let sig_bytes = std::fs::read(&sig).unwrap();
    assert!(
        !sig_bytes.starts_with(b"-----BEGIN"),
        "the registry wants a binary signature, not an armored one"
    );
    let good = run_ok(gpg().args(["--status-fd", "1", "--verify"]).arg(&sig).arg(&sums_path));
    let status = String::from_utf8_lossy(&good.stdout);
    assert!(status.contains("[GNUPG:] GOODSIG "), "{status}");
    assert!(status.contains("[GNUPG:] VALIDSIG "), "{status}");
    let forged = verify_home.join("SHA256SUMS.forged");
    std::fs::write(&forged, sums.replacen(&sha256_file(&zip), &"0".repeat(64), 1)).unwrap();
    let bad = run(gpg().args(["--status-fd", "1", "--verify"]).arg(&sig).arg(&forged));
    assert!(!bad.status.success(), "a changed SHA256SUMS must not verify");
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("[GNUPG:] BADSIG "),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &verify_home)
        .args(["--kill", "all"])
        .status();

    // reproducible: a second packaging of the same binary, same zip bytes
    let again = scratch().join("release-b");
    let _ = std::fs::remove_dir_all(&again);
    package_ok(&again, binary());
    assert_eq!(
        sha256_file(&again.join(zip_name())),
        sha256_file(&zip),
        "packaging the same binary twice gave different zips"
    );
    assert_eq!(
        std::fs::read_to_string(again.join(sums_path.file_name().unwrap())).unwrap(),
        sums
    );
    let _ = std::fs::remove_dir_all(&again);

    // no key, no signature: refused before anything is written
    let unsigned = scratch().join("release-nokey");
    let o = run(Command::new(Path::new(REPO).join("scripts/release"))
        .arg(VERSION)
        .arg("--binary")
        .arg(format!("linux_amd64={}", binary().display()))
        .arg("--out")
        .arg(&unsigned)
        .env_remove("SELFHOST_RELEASE_GPG_KEY"));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("SELFHOST_RELEASE_GPG_KEY is not set") && stderr.contains("--unsigned"),
        "{stderr}"
    );
    assert!(!unsigned.exists(), "nothing may be written without a key");
}

/// `python3`'s HTTPS file server on 127.0.0.1 serving `root`, with a
/// certificate for 127.0.0.1 issued by a CA made here; every request is
/// logged as `METHOD PATH STATUS` in `log`.
struct MirrorServer {
    base: String,
    ca_file: PathBuf,
    log: PathBuf,
    child: Child,
}

const SERVER: &str = r#"import functools, http.server, ssl, sys
root, cert, key, log = sys.argv[1:5]
logf = open(log, "a", buffering=1)
class Handler(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code="-", size="-"):
        logf.write(f"{self.command} {self.path} {int(code)}\n")
    def log_message(self, fmt, *args):
        sys.stderr.write(fmt % args + "\n")
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

impl MirrorServer {
    fn start(root: &Path, dir: &Path) -> MirrorServer {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "selfhost release test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).unwrap();
        let ca_file = dir.join("ca.pem");
        let cert_file = dir.join("server.pem");
        let key_file = dir.join("server.key");
        let log = dir.join("requests.log");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        std::fs::write(&log, "").unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .arg(root)
            .arg(&cert_file)
            .arg(&key_file)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 HTTPS server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the HTTPS server printed no port: {line:?}"));
        MirrorServer {
            base: format!("https://127.0.0.1:{port}/"),
            ca_file,
            log,
            child,
        }
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for MirrorServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config() -> String {
    format!(
        r#"terraform {{
  required_providers {{
    selfhost = {{ source = "selfhost/selfhost", version = "= {VERSION}" }}
  }}
}}

resource "selfhost_gateway_token" "gw" {{
  length = 32
}}
"#
    )
}

/// The registry host a short source `selfhost/selfhost` means to `cli`.
fn registry_host(cli: &Cli) -> &'static str {
    match cli.kind {
        Kind::Terraform => "registry.terraform.io",
        Kind::OpenTofu => "registry.opentofu.org",
    }
}

fn workdir(cli: &'static Cli, label: &str, server: &MirrorServer, mirror: &str) -> Workdir {
    let cli_config = format!(
        "provider_installation {{\n  network_mirror {{\n    url = \"{}{mirror}/\"\n  }}\n}}\n",
        server.base
    );
    let mut wd = Workdir::with_cli_config(cli, label, &cli_config);
    // Go reads the trusted roots from here on Linux: only the test CA.
    wd.set_env("SSL_CERT_FILE", &server.ca_file.display().to_string());
    wd.unset_env("SSL_CERT_DIR");
    wd.write("main.tf", &config());
    wd
}

/// The `h1:`/`zh:` strings of a lock file's `hashes`, in order.
fn lock_hashes(lock: &str) -> Vec<String> {
    lock.lines()
        .map(|l| l.trim().trim_end_matches(',').trim_matches('"'))
        .filter(|l| l.starts_with("h1:") || l.starts_with("zh:"))
        .map(str::to_owned)
        .collect()
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every CLI installs the release from the HTTPS network mirror (verifying
/// the zip against the mirror's `zh:` hash), locks the package's hashes, and
/// runs the installed provider; a zip with other bytes under the same name
/// is refused with the CLI's checksum error.
#[test]
fn cli_installs_release_from_https_network_mirror() {
    let test = "cli_installs_release_from_https_network_mirror";
    if !have_tool(test, "gpg") || !have_tool(test, "python3") {
        return;
    }
    let clis = support::clis_or_skip(test);
    if clis.is_empty() {
        return;
    }
    let release = release();
    let zip = zip_name();
    let good_hash = sha256_file(&release.join(&zip));

    // The web root: good/ is the release directory as written; tampered/ is
    // the same, but its zip holds a binary with one byte more (a valid zip,
    // same name, other bytes), while its index still carries the good hash.
    let site = scratch().join("site");
    let _ = std::fs::remove_dir_all(&site);
    std::fs::create_dir_all(&site).unwrap();
    run_ok(Command::new("cp").arg("-a").arg(release).arg(site.join("good")));
    let tampered_bin = scratch().join(format!("{NAME}_v{VERSION}"));
    let mut bytes = std::fs::read(binary()).unwrap();
    bytes.push(0);
    std::fs::write(&tampered_bin, bytes).unwrap();
    std::fs::set_permissions(&tampered_bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tampered_release = scratch().join("release-tampered");
    let _ = std::fs::remove_dir_all(&tampered_release);
    package_ok(&tampered_release, &tampered_bin);
    run_ok(Command::new("cp").arg("-a").arg(release).arg(site.join("tampered")));
    std::fs::copy(tampered_release.join(&zip), site.join("tampered").join(&zip)).unwrap();
    let tampered_hash = sha256_file(&site.join("tampered").join(&zip));
    assert_ne!(tampered_hash, good_hash);
    // the index the CLI reads carries the good hash, as written by scripts/release
    for host in ["registry.terraform.io", "registry.opentofu.org"] {
        let index: Json = serde_json::from_slice(
            &std::fs::read(site.join(format!("tampered/{host}/selfhost/selfhost/{VERSION}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            index,
            json!({"archives": {"linux_amd64": {"url": format!("../../../{zip}"), "hashes": [format!("zh:{good_hash}")]}}}),
            "{host}"
        );
        let versions: Json = serde_json::from_slice(
            &std::fs::read(site.join(format!("tampered/{host}/selfhost/selfhost/index.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(versions, json!({"versions": {VERSION: {}}}), "{host}");
    }

    let server = MirrorServer::start(&site, &scratch().join("server"));
    eprintln!("release_install: mirror at {} (root {})", server.base, site.display());
    let provider_hash = sha256_file(binary());
    // The CLIs' h1: hash of a package (Go's dirhash.Hash1 over the zip's
    // entries): base64 of the SHA-256 of "<sha256 hex>  <name>\n" per file.
    let h1 = format!(
        "h1:{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            Sha256::digest(format!("{provider_hash}  {NAME}_v{VERSION}\n").as_bytes())
        )
    );

    for_each_cli(test, |cli| {
        let host = registry_host(cli);
        let dir = format!("{host}/selfhost/selfhost");

        // the good release
        let before = server.requests().len();
        let wd = workdir(cli, "release-good", &server, "good");
        let init = wd.init();
        let out = init.output();
        assert!(
            out.contains(&format!("Installed selfhost/selfhost v{VERSION} (verified checksum)")),
            "init must report the package checked against the mirror's hash: {init}"
        );
        let requests = server.requests()[before..].to_vec();
        for wanted in [
            format!("GET /good/{dir}/index.json 200"),
            format!("GET /good/{dir}/{VERSION}.json 200"),
            format!("GET /good/{zip} 200"),
        ] {
            assert!(
                requests.contains(&wanted),
                "the CLI did not request `{wanted}` from the mirror; it requested: {requests:#?}"
            );
        }
        let lock = std::fs::read_to_string(wd.path.join(".terraform.lock.hcl")).unwrap();
        assert!(
            lock.contains(&format!("provider \"{host}/selfhost/selfhost\"")),
            "lock file:\n{lock}"
        );
        assert!(
            lock.contains(&format!("version     = \"{VERSION}\"")),
            "lock file:\n{lock}"
        );
        // Terraform records only the h1: hash it computed from the unpacked
        // package (it adds zh: hashes for registry-signed packages only);
        // OpenTofu adds the mirror's zh: hash, which it checked.
        let expected_hashes = match cli.kind {
            Kind::Terraform => vec![h1.clone()],
            Kind::OpenTofu => vec![h1.clone(), format!("zh:{good_hash}")],
        };
        assert_eq!(lock_hashes(&lock), expected_hashes, "hashes in the lock file:\n{lock}");
        let installed = wd.path.join(format!(
            ".terraform/providers/{dir}/{VERSION}/linux_amd64/{NAME}_v{VERSION}"
        ));
        assert_eq!(
            sha256_file(&installed),
            provider_hash,
            "{} is not the packaged binary",
            installed.display()
        );
        // the installed provider answers: validate, and a plan of its resource
        let validate = wd.ok(&["validate", "-no-color"]);
        assert!(validate.stdout.contains("Success!"), "{validate}");
        let plan = wd.ok(&["plan", "-input=false", "-no-color"]);
        assert!(
            plan.stdout.contains("selfhost_gateway_token.gw will be created")
                && plan.stdout.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
            "{plan}"
        );

        // the tampered zip, in a clean directory
        let before = server.requests().len();
        let wd = workdir(cli, "release-tampered", &server, "tampered");
        let init = wd.run(&["init", "-input=false", "-no-color"]);
        assert_eq!(init.code, Some(1), "init must refuse the tampered zip: {init}");
        let requests = server.requests()[before..].to_vec();
        assert!(
            requests.contains(&format!("GET /tampered/{zip} 200")),
            "the CLI never fetched the tampered zip, so it refused nothing: {requests:#?}"
        );
        let message = collapse_whitespace(&init.output());
        let expected = format!("provider package doesn't match the expected checksum \"zh:{good_hash}\"");
        assert!(
            message.contains(&expected),
            "init must fail with the CLI's checksum error `{expected}`: {init}"
        );
        eprintln!(
            "[{}] tampered zip refused: {}",
            cli.label(),
            message.find("Error").map_or(message.as_str(), |i| &message[i..])
        );
        let package_dir = wd
            .path
            .join(format!(".terraform/providers/{dir}/{VERSION}/linux_amd64"));
        assert!(
            !package_dir.exists(),
            "nothing may be installed from the tampered zip, but {} exists",
            package_dir.display()
        );
        assert!(
            !wd.path.join(".terraform.lock.hcl").exists(),
            "no lock file may be written for a refused package"
        );
    });
    // passed (for_each_cli panics otherwise): drop the copies, 80 MB each
    drop(server);
    let _ = std::fs::remove_dir_all(&site);
    let _ = std::fs::remove_dir_all(&tampered_release);
    let _ = std::fs::remove_file(&tampered_bin);
}
