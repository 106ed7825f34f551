//! Helpers for the acceptance tests: find the real Terraform/OpenTofu CLIs,
//! put this test build of the provider in a filesystem mirror (with
//! `scripts/install-provider`, the script users run), and run CLI commands in
//! throwaway working directories with a hermetic environment.
//!
//! CLIs come from `SELFHOST_TEST_CLIS` (absolute paths separated by spaces,
//! as `testbed/testbed env` prints them), else from `testbed/testbed clis`,
//! which installs them (cached by version). When neither gives any CLI, the
//! tests fail if `CI` is set and otherwise print a loud SKIP banner.

#![allow(dead_code)] // each test file uses a different part of this module

pub mod api_security;
pub mod bed;
pub mod cluster_lifecycle;
pub mod cluster_security;
pub mod faults;
pub mod host_reset;
pub mod host_side;
pub mod k8s;
pub mod kube;
pub mod netpol;
pub mod release_mirror;
pub mod required;

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// The provider binary cargo built for this test run.
pub const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-selfhost");
/// The repository root.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Cargo's scratch directory for integration tests (under `target/`).
const TMP: &str = env!("CARGO_TARGET_TMPDIR");
/// No single CLI command may take longer than this; a hung provider fails
/// the test instead of hanging CI.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Which CLI family a binary belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Terraform,
    OpenTofu,
}

/// One real CLI.
#[derive(Clone, Debug)]
pub struct Cli {
    pub path: PathBuf,
    pub kind: Kind,
    /// `1.8.5`
    pub version: String,
}

impl Cli {
    /// E.g. `terraform 1.0.3`.
    pub fn label(&self) -> String {
        let name = match self.kind {
            Kind::Terraform => "terraform",
            Kind::OpenTofu => "tofu",
        };
        format!("{name} {}", self.version)
    }

    /// The version as numbers, for feature checks.
    pub fn version_tuple(&self) -> (u64, u64, u64) {
        let mut parts = self
            .version
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse().unwrap_or(0));
        (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    fn probe(path: PathBuf) -> Result<Cli, String> {
        if !path.is_file() {
            return Err(format!("{} does not exist", path.display()));
        }
        let out = Command::new(&path)
            .args(["version", "-json"])
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let json: Json = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{} version -json gave no JSON ({e}): {}",
                path.display(),
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        let version = json["terraform_version"]
            .as_str()
            .ok_or_else(|| format!("{} version -json has no terraform_version: {json}", path.display()))?
            .to_owned();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let kind = if name.starts_with("tofu") {
            Kind::OpenTofu
        } else {
            Kind::Terraform
        };
        Ok(Cli { path, kind, version })
    }
}

/// Why no CLI list could be had.
enum Missing {
    /// `SELFHOST_TEST_CLIS` names something that is not a working CLI: a
    /// mistake to report, never a reason to skip.
    Broken(String),
    /// No list given and the test bed could not install the CLIs.
    Unavailable(String),
}

fn discover() -> Result<Vec<Cli>, Missing> {
    if let Ok(list) = std::env::var("SELFHOST_TEST_CLIS")
        && !list.trim().is_empty()
    {
        return list
            .split_whitespace()
            .map(|p| Cli::probe(PathBuf::from(p)))
            .collect::<Result<_, _>>()
            .map_err(|e| Missing::Broken(format!("SELFHOST_TEST_CLIS={list:?}: {e}")));
    }
    installed_by_testbed().map_err(Missing::Unavailable)
}

fn installed_by_testbed() -> Result<Vec<Cli>, String> {
    let testbed = Path::new(REPO).join("testbed/testbed");
    eprintln!(
        "acceptance: SELFHOST_TEST_CLIS is not set; running {} clis",
        testbed.display()
    );
    // stderr goes straight to the terminal: a cold install builds
    // Terraform and OpenTofu from the Go proxy and takes minutes.
    let out = Command::new(&testbed)
        .arg("clis")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", testbed.display()))?;
    if !out.status.success() {
        return Err(format!("`{} clis` failed ({})", testbed.display(), out.status));
    }
    let paths: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        return Err("`testbed/testbed clis` printed no CLI paths".into());
    }
    paths.into_iter().map(Cli::probe).collect()
}

/// The CLIs to test with, or an empty list after a loud SKIP banner for
/// `test` (never in CI: there, missing CLIs fail the test).
pub fn clis_or_skip(test: &str) -> &'static [Cli] {
    static CLIS: OnceLock<Result<Vec<Cli>, Missing>> = OnceLock::new();
    match CLIS.get_or_init(discover) {
        Ok(clis) => clis,
        Err(Missing::Broken(why)) => panic!("acceptance test {test}: {why}"),
        Err(Missing::Unavailable(why)) if std::env::var_os("CI").is_some() => {
            panic!("acceptance test {test}: no Terraform/OpenTofu CLI available and CI is set: {why}")
        }
        Err(Missing::Unavailable(why)) => {
            eprintln!(
                "\n{bar}\nSKIP {test}: no Terraform/OpenTofu CLI available ({why}).\n\
                 Set SELFHOST_TEST_CLIS or make `testbed/testbed clis` work; with CI set this fails.\n{bar}\n",
                bar = "#".repeat(78)
            );
            &[]
        }
    }
}

/// Run `f` for every CLI, in order, printing which one; every CLI runs even
/// when an earlier one fails, and the test fails naming all that failed.
pub fn for_each_cli(test: &str, f: impl Fn(&'static Cli)) {
    let clis = clis_or_skip(test);
    let mut failed = Vec::new();
    for cli in clis {
        eprintln!("==== {test}: {} ({})", cli.label(), cli.path.display());
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| f(cli))) {
            Ok(()) => eprintln!("==== {test}: {} passed in {:.1?}", cli.label(), started.elapsed()),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!("==== {test}: {} FAILED: {msg}", cli.label());
                failed.push(cli.label());
            }
        }
    }
    assert!(failed.is_empty(), "{test} failed with: {}", failed.join(", "));
}

/// The filesystem mirror holding this test build of the provider, and the
/// CLI configuration that points at it.
pub struct Mirror {
    pub dir: PathBuf,
    pub cli_config: String,
}

/// Built once per test process with `scripts/install-provider`, in a
/// directory of this test binary's own: `install-provider` replaces the
/// mirror's contents, so two suites run at once must not share one (a
/// `terraform init` would read a package half replaced).
pub fn mirror() -> &'static Mirror {
    static MIRROR: OnceLock<Mirror> = OnceLock::new();
    MIRROR.get_or_init(|| {
        let dir = Path::new(TMP).join(format!("acceptance-mirror-{}", env!("CARGO_CRATE_NAME")));
        let out = Command::new(Path::new(REPO).join("scripts/install-provider"))
            .arg("--binary")
            .arg(PROVIDER_BIN)
            .arg("--mirror")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/install-provider");
        assert!(
            out.status.success(),
            "scripts/install-provider failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let cli_config = String::from_utf8(out.stdout).expect("utf-8 CLI config");
        assert!(cli_config.contains("filesystem_mirror"), "{cli_config}");
        Mirror { dir, cli_config }
    })
}

/// What one CLI command did.
#[derive(Debug)]
pub struct Outcome {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// stdout and stderr together.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// A throwaway working directory for one CLI: its own CLI configuration
/// (the mirror, nothing else), its own HOME, no plugin cache. Kept on disk
/// (and its path printed) when the test panics, for a look afterwards.
pub struct Workdir {
    pub cli: &'static Cli,
    pub path: PathBuf,
    dir: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
    label: String,
    step_timeout: Duration,
}

impl Workdir {
    /// A fresh directory labelled `label` in step logs.
    pub fn new(cli: &'static Cli, label: &str) -> Workdir {
        Workdir::with_cli_config(cli, label, &mirror().cli_config)
    }

    /// A fresh directory whose CLI configuration is `cli_config` instead of
    /// the filesystem mirror's (e.g. a network mirror).
    pub fn with_cli_config(cli: &'static Cli, label: &str, cli_config: &str) -> Workdir {
        std::fs::create_dir_all(TMP).expect("create CARGO_TARGET_TMPDIR");
        let dir = tempfile::Builder::new()
            .prefix(&format!("acc-{label}-"))
            .tempdir_in(TMP)
            .expect("create work dir");
        let path = dir.path().to_path_buf();
        let home = path.join(".home");
        std::fs::create_dir_all(&home).expect("create HOME");
        let config_file = path.join(".home/cli.tfrc");
        std::fs::write(&config_file, cli_config).expect("write CLI config");
        let env = vec![
            ("TF_CLI_CONFIG_FILE".to_owned(), config_file.display().to_string()),
            ("HOME".to_owned(), home.display().to_string()),
            ("CHECKPOINT_DISABLE".to_owned(), "1".to_owned()),
            ("TF_IN_AUTOMATION".to_owned(), "1".to_owned()),
        ];
        Workdir {
            cli,
            path,
            dir: Some(dir),
            env,
            label: format!("{} {label}", cli.label()),
            step_timeout: STEP_TIMEOUT,
        }
    }

    /// Set an environment variable for every later command.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// How long one CLI command may run before the test fails (a cluster
    /// bootstrap takes longer than the default).
    pub fn set_step_timeout(&mut self, limit: Duration) {
        self.step_timeout = limit;
    }

    /// Remove an environment variable set with [`Workdir::set_env`].
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Write `content` to `name` in the directory.
    pub fn write(&self, name: &str, content: &str) {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(p, content).expect("write file");
    }

    /// Run the CLI with `args`; the environment is the test process's minus
    /// every `TF_*`/`TOFU_*` variable (the machine may point
    /// `TF_CLI_CONFIG_FILE` at a missing file, or set a plugin cache), plus
    /// this directory's settings and `extra`.
    pub fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
        let cmd = self.command(args, extra);
        let command = format!("{} {}", self.cli.label(), args.join(" "));
        let started = Instant::now();
        let outcome = run_with_timeout(cmd, &command, self.step_timeout);
        eprintln!(
            "[{}] $ {} -> exit {:?} in {:.1?}",
            self.label,
            args.join(" "),
            outcome.code,
            started.elapsed()
        );
        outcome
    }

    /// The CLI command [`Workdir::run_env`] runs, for a test that starts
    /// it itself (e.g. to interrupt it).
    pub fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&self.cli.path);
        cmd.args(args).current_dir(&self.path).stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("TF_") || k.starts_with("TOFU_") {
                cmd.env_remove(&*k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// [`Workdir::run_env`] without extra variables.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_env(args, &[])
    }

    /// Run and require exit status 0.
    pub fn ok(&self, args: &[&str]) -> Outcome {
        let o = self.run(args);
        assert_eq!(o.code, Some(0), "{o}");
        o
    }

    /// `init` against the mirror only.
    pub fn init(&self) -> Outcome {
        self.ok(&["init", "-input=false", "-no-color"])
    }

    /// `show -json [plan]`, parsed.
    pub fn show_json(&self, plan: Option<&str>) -> Json {
        let mut args = vec!["show", "-json", "-no-color"];
        args.extend(plan);
        let o = self.ok(&args);
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("show -json is not JSON ({e}): {o}"))
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "[{}] kept work dir for inspection: {}",
                self.label,
                dir.keep().display()
            );
        }
    }
}

/// Run `cmd` to completion, killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, command: &str, timeout: Duration) -> Outcome {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for CLI") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{command}` did not finish within {timeout:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Outcome {
        command: command.to_owned(),
        code: status.code(),
        stdout,
        stderr,
    }
}

/// The resources in a `show -json` of a state (root module only).
pub fn state_resources(show: &Json) -> Vec<&Json> {
    show["values"]["root_module"]["resources"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The attribute values of `address` in a `show -json` of a state.
pub fn state_values<'a>(show: &'a Json, address: &str) -> &'a Json {
    state_resources(show)
        .into_iter()
        .find(|r| r["address"] == address)
        .map(|r| &r["values"])
        .unwrap_or_else(|| panic!("{address} not in state: {show:#}"))
}

/// The `resource_changes[]` entry of `address` in a `show -json` of a saved
/// plan (`change.actions`, `change.replace_paths`, `action_reason`, ...).
pub fn resource_change<'a>(plan: &'a Json, address: &str) -> &'a Json {
    plan["resource_changes"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["address"] == address))
        .unwrap_or_else(|| panic!("{address} not in the plan's resource_changes: {plan:#}"))
}

/// The 1-based line of the first line of `text` containing `needle`.
/// Run `validate -json` in `wd` on the configuration `tf` and require an
/// error diagnostic at the line of each of `needles` (the HCL line the
/// user must fix). Returns the CLI's JSON for further checks.
pub fn assert_validate_errors_at(wd: &Workdir, tf: &str, needles: &[&str]) -> Json {
    let o = wd.run(&["validate", "-json", "-no-color"]);
    assert_ne!(o.code, Some(0), "{o}");
    let j: Json = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("validate -json: {e}\n{o}"));
    let lines: Vec<u64> = j["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["severity"] == "error")
        .filter_map(|d| d["range"]["start"]["line"].as_u64())
        .collect();
    for needle in needles {
        let line = line_of(tf, needle);
        assert!(lines.contains(&line), "an error at line {line} ({needle}): {j:#}");
    }
    j
}

/// The 1-based line of the first line of `text` containing `needle`.
/// `terraform validate` of `hcl` fails on every CLI, and each `message`
/// is said at the line of its `needle` (Terraform wraps diagnostic text,
/// so messages are compared with whitespace collapsed).
pub fn expect_invalid_at(test: &str, workdir: &str, hcl: &str, expected: &[(&str, &str)]) {
    for_each_cli(test, |cli| {
        let wd = Workdir::new(cli, workdir);
        wd.write("main.tf", hcl);
        wd.init();
        let o = wd.run(&["validate", "-no-color"]);
        assert_eq!(o.code, Some(1), "{o}");
        let out = o.output();
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        for (needle, message) in expected {
            assert!(flat.contains(message), "{message:?} missing:\n{out}");
            assert!(
                out.contains(&format!("main.tf line {}", line_of(hcl, needle))),
                "no diagnostic at the line of {needle:?}:\n{out}"
            );
        }
    });
}

pub fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
}
