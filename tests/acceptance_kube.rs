//! Acceptance tests of the Kubernetes side against the test bed's REAL
//! kube-apiserver (v1.36, `testbed/testbed env`), driven by every real
//! Terraform/OpenTofu CLI: `selfhost_gateway_token` with `secret {}`.
//! Checks go through the real `kubectl`, never through the provider's code.
//!
//! Each test works in its own namespace `acc-<test>-<random>` and removes
//! it. Without the bed every test SKIPs loudly; with `CI` set it fails.
//!
//! `cargo test --test acceptance_kube -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value as Json;
use support::kube::{KubeBed, kube_bed, namespace_with_kubeconfig};
use support::{Workdir, for_each_cli, state_values};

const GW: &str = "selfhost_gateway_token.gw";

/// A token stored in `namespace`/`name` at key `token`, the kubeconfig read
/// from `kubeconfig_path`.
fn config(kubeconfig_path: &str, namespace: &str, name: &str, keepers: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    selfhost = {{ source = "selfhost/selfhost" }}
  }}
}}

resource "selfhost_gateway_token" "gw" {{
  length  = 40
  keepers = {{ gateway = "{keepers}" }}
  secret {{
    kubeconfig = file("{kubeconfig_path}")
    namespace  = "{namespace}"
    name       = "{name}"
    key        = "token"
  }}
}}
"#
    )
}

fn apply(wd: &Workdir) {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
}

/// `plan -detailed-exitcode` must exit 0.
fn expect_empty_plan(wd: &Workdir, why: &str) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        o.code,
        Some(0),
        "{why}: the plan must be empty (exit 0; 2 = changes)\n{o}"
    );
}

/// `plan -detailed-exitcode` must exit 2 (changes) with an in-place update
/// naming `stored_fingerprint`, never a replacement (no new token).
fn expect_repair_plan(wd: &Workdir, why: &str) {
    let o = wd.run(&[
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        "-out=repair.tfplan",
    ]);
    assert_eq!(o.code, Some(2), "{why}: the plan must show the drift (exit 2)\n{o}");
    assert!(
        o.stdout.contains("stored_fingerprint"),
        "{why}: the diff must name stored_fingerprint\n{o}"
    );
    let plan = wd.show_json(Some("repair.tfplan"));
    let rc = support::resource_change(&plan, GW);
    assert_eq!(
        rc["change"]["actions"],
        serde_json::json!(["update"]),
        "{why}: an in-place update: {rc:#}"
    );
}

fn token_of(wd: &Workdir) -> String {
    state_values(&wd.show_json(None), GW)["token"]
        .as_str()
        .expect("token in state")
        .to_owned()
}

#[test]
fn gateway_token_secret_lifecycle() {
    let Some(bed) = kube_bed("gateway_token_secret_lifecycle") else {
        return;
    };
    for_each_cli("gateway_token_secret_lifecycle", |cli| {
        let wd = Workdir::new(cli, "gw-secret");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "gwsecret", &wd.path);
        let tf = config(&kubeconfig, &ns.name, "gateway-token", "v1");
        wd.write("main.tf", &tf);
        wd.init();

        // Create: the Secret holds the token in state, labelled as ours.
        apply(&wd);
        let token = token_of(&wd);
        assert_eq!(token.len(), 40);
        assert_eq!(
            bed.secret_value(&ns.name, "gateway-token", "token").as_deref(),
            Some(token.as_str())
        );
        let s = bed
            .get_json("secret", &ns.name, "gateway-token")
            .expect("Secret exists");
        assert_eq!(
            s["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "terraform-provider-selfhost"
        );
        let managers: Vec<&str> = s["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(
            managers.contains(&"terraform-provider-selfhost"),
            "field manager: {managers:?}"
        );
        expect_empty_plan(&wd, "after create");

        // Another writer's label and key: not ours, no diff.
        bed.ok(&["label", "secret", "-n", &ns.name, "gateway-token", "team=platform"]);
        bed.ok(&[
            "patch",
            "secret",
            "-n",
            &ns.name,
            "gateway-token",
            "--type",
            "merge",
            "-p",
            r#"{"stringData":{"other":"kept"}}"#,
        ]);
        expect_empty_plan(&wd, "after another manager's unmanaged edits");

        // Drift 1: the value changed out of band; apply writes the token in state back.
        bed.ok(&[
            "patch",
            "secret",
            "-n",
            &ns.name,
            "gateway-token",
            "--type",
            "merge",
            "-p",
            r#"{"stringData":{"token":"tampered-by-hand"}}"#,
        ]);
        expect_repair_plan(&wd, "after the value was edited");
        wd.ok(&["apply", "-input=false", "-no-color", "repair.tfplan"]);
        assert_eq!(token_of(&wd), token, "repair keeps the token");
        assert_eq!(
            bed.secret_value(&ns.name, "gateway-token", "token").as_deref(),
            Some(token.as_str())
        );
        assert_eq!(
            bed.secret_value(&ns.name, "gateway-token", "other").as_deref(),
            Some("kept")
        );
        expect_empty_plan(&wd, "after repairing the value");

        // Drift 2: the Secret deleted; apply re-creates it with the same token.
        bed.ok(&["delete", "secret", "-n", &ns.name, "gateway-token"]);
        expect_repair_plan(&wd, "after the Secret was deleted");
        wd.ok(&["apply", "-input=false", "-no-color", "repair.tfplan"]);
        assert_eq!(token_of(&wd), token, "repair keeps the token");
        assert_eq!(
            bed.secret_value(&ns.name, "gateway-token", "token").as_deref(),
            Some(token.as_str())
        );
        expect_empty_plan(&wd, "after re-creating the Secret");

        // A rotation (keepers change) writes the new token to the Secret.
        wd.write("main.tf", &config(&kubeconfig, &ns.name, "gateway-token", "v2"));
        apply(&wd);
        let rotated = token_of(&wd);
        assert_ne!(rotated, token);
        assert_eq!(
            bed.secret_value(&ns.name, "gateway-token", "token").as_deref(),
            Some(rotated.as_str())
        );
        expect_empty_plan(&wd, "after rotation");

        // Import into a fresh state: the first apply is in place and keeps the token.
        let imp = Workdir::new(cli, "gw-secret-import");
        imp.write("main.tf", &config(&kubeconfig, &ns.name, "gateway-token", "v2"));
        imp.init();
        imp.run_env(
            &["import", "-input=false", "-no-color", GW, "env:SELFHOST_ACC_TOKEN"],
            &[("SELFHOST_ACC_TOKEN", &rotated)],
        );
        imp.ok(&["plan", "-input=false", "-no-color", "-out=import.tfplan"]);
        let plan = imp.show_json(Some("import.tfplan"));
        let rc = support::resource_change(&plan, GW);
        assert_eq!(rc["change"]["actions"], serde_json::json!(["update"]), "{rc:#}");
        imp.ok(&["apply", "-input=false", "-no-color", "import.tfplan"]);
        assert_eq!(token_of(&imp), rotated, "import keeps the token");
        expect_empty_plan(&imp, "after import");
        // Leave the Secret to the first state.
        imp.ok(&["state", "rm", GW]);

        // Destroy: the other writer's key stays, ours goes; without other
        // keys the Secret is deleted.
        // (The deletion above took the other writer's key with it: add it again.)
        bed.ok(&[
            "patch",
            "secret",
            "-n",
            &ns.name,
            "gateway-token",
            "--type",
            "merge",
            "-p",
            r#"{"stringData":{"other":"kept"}}"#,
        ]);
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        assert_eq!(
            bed.secret_value(&ns.name, "gateway-token", "token"),
            None,
            "our key removed"
        );
        assert_eq!(
            bed.secret_value(&ns.name, "gateway-token", "other").as_deref(),
            Some("kept")
        );
        bed.ok(&["delete", "secret", "-n", &ns.name, "gateway-token"]);
        apply(&wd);
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        assert!(
            bed.get_json("secret", &ns.name, "gateway-token").is_none(),
            "Secret deleted"
        );
    });
}

/// Apply must fail; its output must contain every one of `needles`.
fn expect_apply_error(wd: &Workdir, needles: &[&str]) -> String {
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(o.code, Some(0), "apply must fail:\n{o}");
    let text = o.output();
    for n in needles {
        assert!(text.contains(n), "the error must contain {n:?}:\n{o}");
    }
    text
}

#[test]
fn gateway_token_secret_refusals_are_clear() {
    let Some(bed) = kube_bed("gateway_token_secret_refusals_are_clear") else {
        return;
    };
    for_each_cli("gateway_token_secret_refusals_are_clear", |cli| {
        let wd = Workdir::new(cli, "gw-refuse");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "gwrefuse", &wd.path);

        // 403: a ServiceAccount without any RBAC.
        let sa_kubeconfig = wd.path.join("sa.kubeconfig");
        std::fs::write(&sa_kubeconfig, bed.service_account_kubeconfig(&ns.name, "nobody", None)).unwrap();
        wd.write(
            "main.tf",
            &config(&sa_kubeconfig.display().to_string(), &ns.name, "gw", "v1"),
        );
        wd.init();
        expect_apply_error(
            &wd,
            &[
                "Forbidden by the Kubernetes API server",
                &format!("apply of Secret {}/gw", ns.name),
                "cannot patch resource \"secrets\"",
                "RBAC",
            ],
        );
        // The token exists only in the failed create's state; drop it.
        let _ = wd.run(&["state", "rm", GW]);

        // 403 from a quota: no Secrets allowed in the namespace.
        bed.apply(&format!(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: no-secrets, namespace: {}}}\nspec:\n  hard: {{count/secrets: \"0\"}}\n",
            ns.name
        ));
        // The quota controller must have observed usage before it enforces.
        for _ in 0..50 {
            let q = bed.get_json("resourcequota", &ns.name, "no-secrets").expect("quota");
            if q["status"]["hard"].is_object() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        wd.write("main.tf", &config(&kubeconfig, &ns.name, "gw", "v1"));
        expect_apply_error(
            &wd,
            &["Refused by a Kubernetes resource quota", "no-secrets", "exceeded quota"],
        );
        let _ = wd.run(&["state", "rm", GW]);
        bed.ok(&["delete", "resourcequota", "-n", &ns.name, "no-secrets"]);

        // 422: the named Secret exists with another type (immutable).
        bed.ok(&[
            "create",
            "secret",
            "generic",
            "typed",
            "-n",
            &ns.name,
            "--type",
            "example.com/custom",
            "--from-literal=a=b",
        ]);
        wd.write("main.tf", &config(&kubeconfig, &ns.name, "typed", "v1"));
        expect_apply_error(
            &wd,
            &["Refused as invalid by the Kubernetes API server", "422", "immutable"],
        );
        let _ = wd.run(&["state", "rm", GW]);

        // The bed's admin kubeconfig has an X.509 v1 client certificate,
        // which rustls refuses: the diagnostic says so and what to do.
        wd.write("main.tf", &config(&bed.kubeconfig, &ns.name, "gw", "v1"));
        expect_apply_error(&wd, &["Unusable kubeconfig", "X.509 v1"]);
        let _ = wd.run(&["state", "rm", GW]);
    });
}

#[test]
fn gateway_token_secret_validation_points_at_the_attribute() {
    let Some(bed) = kube_bed("gateway_token_secret_validation_points_at_the_attribute") else {
        return;
    };
    for_each_cli("gateway_token_secret_validation_points_at_the_attribute", |cli| {
        let wd = Workdir::new(cli, "gw-validate");
        let tf = config(&bed.kubeconfig, "Bad_Namespace", "gw", "v1")
            .replace("key        = \"token\"", "key        = \"a b\"");
        wd.write("main.tf", &tf);
        wd.init();
        support::assert_validate_errors_at(&wd, &tf, &["namespace  =", "key        ="]);
    });
}

#[test]
fn trace_logs_never_contain_the_token_or_the_kubeconfig() {
    let Some(bed) = kube_bed("trace_logs_never_contain_the_token_or_the_kubeconfig") else {
        return;
    };
    let kubeconfig_text = std::fs::read_to_string(&bed.kubeconfig).expect("read the bed's kubeconfig");
    // The client key of the admin kubeconfig: it must never be logged.
    let key_data: String = kubeconfig_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data:"))
        .map(|v| v.trim().chars().take(60).collect())
        .unwrap_or_default();
    for_each_cli("trace_logs_never_contain_the_token_or_the_kubeconfig", |cli| {
        let mut wd = Workdir::new(cli, "gw-trace");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "gwtrace", &wd.path);
        let sa_token: String = std::fs::read_to_string(&kubeconfig)
            .expect("read the test kubeconfig")
            .lines()
            .find_map(|l| l.trim().strip_prefix("token:"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        assert!(sa_token.len() > 100, "a ServiceAccount token in the kubeconfig");
        wd.write("main.tf", &config(&kubeconfig, &ns.name, "gw", "v1"));
        wd.init();
        let log = wd.path.join("trace.log");
        let log_path = log.display().to_string();
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &log_path);
        let mut outputs = vec![wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]).output()];
        // Drift and repair, traced too.
        bed.ok(&["delete", "secret", "-n", &ns.name, "gw"]);
        outputs.push(wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]).output());
        wd.unset_env("TF_LOG");
        wd.unset_env("TF_LOG_PATH");
        let token = token_of(&wd);
        assert_eq!(
            bed.secret_value(&ns.name, "gw", "token").as_deref(),
            Some(token.as_str())
        );
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &log_path);
        outputs.push(
            wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"])
                .output(),
        );

        let log_text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {log_path}: {e}"));
        assert!(
            log_text.contains("stored the gateway token in the Secret"),
            "provider steps are logged"
        );
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(token.as_bytes())
        };
        for (what, needle) in [
            ("token", token.as_str()),
            ("base64 token", b64.as_str()),
            ("client key", key_data.as_str()),
            ("kubeconfig token", sa_token.as_str()),
        ] {
            if needle.is_empty() {
                continue;
            }
            assert!(
                !log_text.contains(needle),
                "the {what} leaked into the TRACE log {log_path}"
            );
            assert!(
                outputs.iter().all(|o| !o.contains(needle)),
                "the {what} leaked into CLI output"
            );
        }
    });
}

/// Guard against a bed mix-up: the tests' kubectl reaches the same API
/// server as the provider (the kubeconfig file both use).
#[test]
fn bed_kubectl_reaches_the_api_server() {
    let Some(bed): Option<KubeBed> = kube_bed("bed_kubectl_reaches_the_api_server") else {
        return;
    };
    let v = bed.ok(&["version", "-o", "json"]);
    let j: Json = serde_json::from_str(&v).expect("kubectl version -o json");
    assert!(
        j["serverVersion"]["gitVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("v1.")),
        "{j:#}"
    );
}
