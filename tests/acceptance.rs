//! Acceptance tests: this build of the provider, installed through a
//! filesystem mirror, driven by REAL Terraform and OpenTofu CLIs (every CLI
//! from `SELFHOST_TEST_CLIS`, else from `testbed/testbed clis`).
//!
//! The lifecycle follows terraform-plugin-testing: init → apply → a second
//! plan that must be empty → a change that must replace → apply → import
//! into a fresh state and compare → destroy → nothing left.
//!
//! Run one test with its step log:
//! `cargo test --test acceptance -- --nocapture gateway_token_lifecycle`.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use support::{Cli, REPO, Workdir, for_each_cli, line_of, mirror, resource_change, state_resources, state_values};

const GW: &str = "selfhost_gateway_token.gw";

/// The `terraform {}` block every test configuration starts with.
const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}
"#;

/// A gateway token with the given keepers value, and outputs reading it.
fn token_config(keepers: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "selfhost" {{}}

resource "selfhost_gateway_token" "gw" {{
  length  = 32
  keepers = {{ gateway = "{keepers}" }}
}}

output "id" {{
  value = selfhost_gateway_token.gw.id
}}

output "fingerprint" {{
  value = selfhost_gateway_token.gw.fingerprint
}}

output "expires_at" {{
  value = selfhost_gateway_token.gw.expires_at
}}
"#
    )
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The token of `values`, checked against the attributes derived from it.
fn checked_token(values: &Json) -> String {
    let token = values["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {values:#}"));
    assert_eq!(token.chars().count(), 32, "token length");
    assert_eq!(
        values["fingerprint"],
        sha256_hex(token),
        "fingerprint is sha256 hex of the token"
    );
    token.to_owned()
}

/// `plan -detailed-exitcode` must exit 0: nothing to do.
fn expect_empty_plan(wd: &Workdir) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        o.code,
        Some(0),
        "the plan after apply must be empty (exit 0, 2 = changes)\n{o}"
    );
}

fn apply(wd: &Workdir) {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
}

fn actions(change: &Json) -> Vec<String> {
    change["change"]["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn gateway_token_lifecycle() {
    for_each_cli("gateway_token_lifecycle", |cli| {
        let wd = Workdir::new(cli, "lifecycle");
        wd.write("main.tf", &token_config("v1"));
        wd.init();

        // Create.
        apply(&wd);
        let v1 = state_values(&wd.show_json(None), GW).clone();
        let token1 = checked_token(&v1);
        let outputs: Json = serde_json::from_str(&wd.ok(&["output", "-json", "-no-color"]).stdout).unwrap();
        assert_eq!(outputs["id"]["value"], v1["id"], "output id");
        assert_eq!(outputs["fingerprint"]["value"], v1["fingerprint"], "output fingerprint");
        assert_eq!(v1["keepers"]["gateway"], "v1");

        // Nothing to do on a second plan.
        expect_empty_plan(&wd);

        // A changed keeper must replace the token.
        wd.write("main.tf", &token_config("v2"));
        wd.ok(&["plan", "-input=false", "-no-color", "-out=replace.tfplan"]);
        let plan = wd.show_json(Some("replace.tfplan"));
        let rc = resource_change(&plan, GW);
        let acts = actions(rc);
        assert!(
            acts == ["delete", "create"] || acts == ["create", "delete"],
            "keepers change must replace, got {acts:?}: {rc:#}"
        );
        assert_eq!(
            rc["change"]["after_unknown"]["token"], true,
            "new token unknown until apply: {rc:#}"
        );
        match rc["change"].get("replace_paths").and_then(Json::as_array) {
            Some(paths) => assert!(
                paths.iter().any(|p| p[0] == "keepers"),
                "replace_paths must name keepers: {paths:?}"
            ),
            None => eprintln!("[{}] note: this CLI does not report replace_paths", cli.label()),
        }

        wd.ok(&["apply", "-input=false", "-no-color", "replace.tfplan"]);
        let v2 = state_values(&wd.show_json(None), GW).clone();
        let token2 = checked_token(&v2);
        assert_ne!(token1, token2, "replacement must generate a new token");
        assert_eq!(v2["keepers"]["gateway"], "v2");
        expect_empty_plan(&wd);

        import_round_trip(cli, &token_config("v2"), &v2);

        // Destroy leaves nothing.
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        let after = wd.show_json(None);
        assert!(state_resources(&after).is_empty(), "state after destroy: {after:#}");
        let list = wd.ok(&["state", "list"]);
        assert!(list.stdout.trim().is_empty(), "state list after destroy: {list}");
    });
}

/// Attributes an imported gateway token cannot know: keepers and
/// rotation_days live only in configuration (the first plan adopts them in
/// place), the alphabet is inferred as the narrowest that fits, and the
/// timestamps start at import time.
const IMPORT_IGNORE: &[&str] = &["keepers", "rotation_days", "alphabet", "created_at", "expires_at"];

/// Import `original` into a FRESH state (as terraform-plugin-testing's
/// ImportState step does), compare attributes, and check the next plan keeps
/// the imported object.
fn import_round_trip(cli: &'static Cli, config: &str, original: &Json) {
    let wd = Workdir::new(cli, "import");
    wd.write("main.tf", config);
    wd.init();
    let token = original["token"].as_str().expect("token in state");
    // The gateway token imports by value; `env:NAME` keeps it out of argv.
    let o = wd.run_env(
        &[
            "import",
            "-input=false",
            "-no-color",
            GW,
            "env:SELFHOST_ACC_IMPORT_TOKEN",
        ],
        &[("SELFHOST_ACC_IMPORT_TOKEN", token)],
    );
    assert_eq!(o.code, Some(0), "every resource supports import: {o}");
    let imported = wd.show_json(None);
    let got = state_values(&imported, GW);
    let want = original.as_object().expect("state values are an object");
    for (k, v) in want {
        if IMPORT_IGNORE.contains(&k.as_str()) {
            continue;
        }
        assert_eq!(&got[k], v, "attribute {k} after import");
    }
    wd.ok(&["plan", "-input=false", "-no-color", "-out=import.tfplan"]);
    let plan = wd.show_json(Some("import.tfplan"));
    let acts = actions(resource_change(&plan, GW));
    assert!(
        !acts.iter().any(|a| a == "delete" || a == "create"),
        "the plan after import must keep the imported token, got {acts:?}"
    );
    // Applying it adopts the configuration around the same token, and then
    // nothing is left to do.
    wd.ok(&["apply", "-input=false", "-no-color", "import.tfplan"]);
    let adopted = wd.show_json(None);
    assert_eq!(
        state_values(&adopted, GW)["token"],
        original["token"],
        "import keeps the token"
    );
    expect_empty_plan(&wd);
}

/// `validate -json` must fail with an error located at `needle`'s line, and
/// the human-readable form must name `attr`. Returns the error's text.
fn expect_validate_error(wd: &Workdir, config: &str, needle: &str, attr: &str) -> String {
    wd.write("main.tf", config);
    let o = wd.run(&["validate", "-json", "-no-color"]);
    assert_ne!(o.code, Some(0), "validate must fail:\n{o}");
    let j: Json = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("validate -json: {e}\n{o}"));
    assert_eq!(j["valid"], false, "{j:#}");
    let line = line_of(config, needle);
    let diags = j["diagnostics"].as_array().cloned().unwrap_or_default();
    let at_line: Vec<&Json> = diags
        .iter()
        .filter(|d| d["severity"] == "error" && d["range"]["start"]["line"] == line)
        .collect();
    assert!(
        !at_line.is_empty(),
        "no error at main.tf line {line} ({needle:?}); the attribute path must reach the CLI: {j:#}"
    );
    let human = wd.run(&["validate", "-no-color"]);
    assert_ne!(human.code, Some(0), "{human}");
    assert!(
        human.output().contains(attr),
        "validate output must name {attr}: {human}"
    );
    at_line
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["summary"].as_str().unwrap_or(""),
                d["detail"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn validate_rejects_bad_input_at_the_attribute() {
    for_each_cli("validate_rejects_bad_input_at_the_attribute", |cli| {
        let wd = Workdir::new(cli, "validate");
        let short = format!("{REQUIRED_PROVIDERS}\nresource \"selfhost_gateway_token\" \"gw\" {{\n  length = 8\n}}\n");
        wd.write("main.tf", &short);
        wd.init();
        let text = expect_validate_error(&wd, &short, "length = 8", "length");
        assert!(
            text.contains("16") && text.contains("512"),
            "the error must give the allowed range 16–512: {text}"
        );

        let computed = format!(
            "{REQUIRED_PROVIDERS}\nresource \"selfhost_gateway_token\" \"gw\" {{\n  length = 32\n  token  = \"chosen-by-hand-0123456789\"\n}}\n"
        );
        let text = expect_validate_error(&wd, &computed, "token  =", "token");
        assert!(!text.is_empty());

        // And the valid form passes, so the two failures above are about
        // the values, not the harness.
        wd.write(
            "main.tf",
            &format!("{REQUIRED_PROVIDERS}\nresource \"selfhost_gateway_token\" \"gw\" {{\n  length = 32\n}}\n"),
        );
        wd.ok(&["validate", "-no-color"]);
    });
}

#[test]
fn trace_logs_never_contain_the_token() {
    for_each_cli("trace_logs_never_contain_the_token", |cli| {
        let mut wd = Workdir::new(cli, "trace");
        wd.write("main.tf", &token_config("v1"));
        wd.init();
        let log = wd.path.join("trace.log");
        let log_path = log.display().to_string();
        let traced = |wd: &mut Workdir| {
            wd.set_env("TF_LOG", "TRACE");
            wd.set_env("TF_LOG_PATH", &log_path);
        };

        let mut captured = Vec::new();
        traced(&mut wd);
        captured.push(wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]));
        captured.push(wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]));
        // Read the token from state (it is sensitive, so only the state JSON
        // has it) without tracing, so the check below stays honest.
        wd.unset_env("TF_LOG");
        wd.unset_env("TF_LOG_PATH");
        let token = checked_token(state_values(&wd.show_json(None), GW));
        traced(&mut wd);
        captured.push(wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]));

        let log_text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {log_path}: {e}"));
        assert!(log_text.len() > 1000, "TF_LOG_PATH file is nearly empty: {log_text}");
        for o in &captured {
            assert!(
                !o.output().contains(&token),
                "the token leaked in the output of `{}`",
                o.command
            );
        }
        assert!(
            !log_text.contains(&token),
            "the token leaked into the TRACE log {log_path}"
        );
        // The provider's own hclog lines, parsed by the CLI (a line it could
        // not parse would appear as raw JSON with "@module":"...").
        assert!(
            log_text.contains("@module=provider.terraform-provider-selfhost"),
            "no provider log lines (@module=provider.terraform-provider-selfhost) in the TRACE log {log_path}"
        );
    });
}

/// Every directory under `examples/` holding `.tf` files.
fn example_dirs() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        if entries.iter().any(|p| p.extension().is_some_and(|e| e == "tf")) {
            out.push(dir.to_path_buf());
        }
        for p in entries.iter().filter(|p| p.is_dir()) {
            walk(p, out);
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(REPO).join("examples"), &mut out);
    out
}

#[test]
fn examples_validate() {
    let dirs = example_dirs();
    assert!(!dirs.is_empty(), "no examples found under {REPO}/examples");
    mirror();
    let root = Path::new(REPO).join("examples");
    for_each_cli("examples_validate", |cli| {
        // The examples tree as it is in the repository (its `.tf` files), so
        // that relative module sources (`../modules/platform`) resolve.
        let wd = Workdir::new(cli, "examples");
        let rels: Vec<String> = dirs
            .iter()
            .map(|d| d.strip_prefix(&root).unwrap_or(d).display().to_string())
            .collect();
        for (dir, rel) in dirs.iter().zip(&rels) {
            let mut has_terraform_block = false;
            for entry in std::fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "tf") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    has_terraform_block |= text.contains("required_providers");
                    wd.write(
                        &format!("examples/{rel}/{}", p.file_name().unwrap().to_str().unwrap()),
                        &text,
                    );
                }
            }
            // Snippets for the docs (examples/resources/*) carry no
            // terraform block; give them the provider's source address.
            if !has_terraform_block {
                wd.write(&format!("examples/{rel}/zz_required_providers.tf"), REQUIRED_PROVIDERS);
            }
        }
        for rel in &rels {
            let chdir = format!("-chdir=examples/{rel}");
            eprintln!("[{}] validating examples/{rel}", cli.label());
            let o = wd.run(&[&chdir, "init", "-input=false", "-no-color"]);
            assert_eq!(
                o.code,
                Some(0),
                "examples/{rel}: init failed with {}:\n{o}",
                cli.label()
            );
            let o = wd.run(&[&chdir, "validate", "-no-color"]);
            assert_eq!(
                o.code,
                Some(0),
                "examples/{rel} does not validate with {}:\n{o}",
                cli.label()
            );
        }
    });
}

/// The README's complete configurations (its `hcl` code blocks that carry
/// a `terraform {}` block) validate with every CLI: the first example a
/// newcomer copies must not be wrong.
#[test]
fn readme_examples_validate() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).expect("read README.md");
    let blocks: Vec<&str> = readme
        .split("```hcl\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .filter(|block| block.contains("required_providers"))
        .collect();
    assert!(!blocks.is_empty(), "no complete hcl example in README.md");
    mirror();
    for_each_cli("readme_examples_validate", |cli| {
        for (i, block) in blocks.iter().enumerate() {
            let wd = Workdir::new(cli, "readme");
            wd.write("main.tf", block);
            // `file("~/.ssh/id_ed25519")` must find a file (validate
            // evaluates it); its content is never parsed there.
            wd.write(".home/.ssh/id_ed25519", "placeholder\n");
            wd.init();
            let o = wd.run(&["validate", "-no-color"]);
            assert_eq!(
                o.code,
                Some(0),
                "README.md's hcl example #{} does not validate with {}:\n{o}",
                i + 1,
                cli.label()
            );
        }
    });
}
