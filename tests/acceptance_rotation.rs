//! Acceptance tests for the gateway token's rotation and its ephemeral form,
//! driven by the real CLIs (see tests/acceptance.rs for the harness).

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value as Json;
use support::{Kind, Workdir, for_each_cli, resource_change, state_values};

const GW: &str = "selfhost_gateway_token.gw";

fn config(rotation_days: u32) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    selfhost = {{ source = "selfhost/selfhost" }}
  }}
}}

resource "selfhost_gateway_token" "gw" {{
  rotation_days = {rotation_days}
}}
"#
    )
}

fn actions(plan: &Json) -> Vec<String> {
    resource_change(plan, GW)["change"]["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Rewind the stored token's creation time (as if it were created in 2020)
/// through `state pull` / `state push`, the way an operator would see an old
/// token.
fn age_token(wd: &Workdir) {
    let pulled = wd.ok(&["state", "pull"]);
    let mut state: Json = serde_json::from_str(&pulled.stdout).expect("state pull is JSON");
    let attrs = state["resources"][0]["instances"][0]["attributes"]
        .as_object_mut()
        .expect("token attributes in state");
    attrs.insert("created_at".into(), "2020-01-01T00:00:00Z".into());
    attrs.insert("expires_at".into(), "2020-01-31T00:00:00Z".into());
    let serial = state["serial"].as_u64().unwrap_or(0);
    state["serial"] = (serial + 1).into();
    wd.write("aged.tfstate", &state.to_string());
    wd.ok(&["state", "push", "aged.tfstate"]);
}

#[test]
fn rotation_days_change_updates_in_place_and_expired_token_is_replaced() {
    for_each_cli("rotation", |cli| {
        let wd = Workdir::new(cli, "rotation");
        wd.write("main.tf", &config(90));
        wd.init();
        wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        let v1 = state_values(&wd.show_json(None), GW).clone();

        // A new rotation period moves expires_at in place, known at plan time.
        wd.write("main.tf", &config(30));
        wd.ok(&["plan", "-input=false", "-no-color", "-out=rot.tfplan"]);
        let plan = wd.show_json(Some("rot.tfplan"));
        assert_eq!(actions(&plan), ["update"], "rotation change is an in-place update");
        let after = &resource_change(&plan, GW)["change"]["after"];
        assert!(
            after["expires_at"].is_string(),
            "expires_at is known in the plan: {after:#}"
        );
        wd.ok(&["apply", "-input=false", "-no-color", "rot.tfplan"]);
        let v2 = state_values(&wd.show_json(None), GW).clone();
        assert_eq!(v2["token"], v1["token"], "an update keeps the token");
        assert_eq!(v2["expires_at"], after["expires_at"], "applied exactly as planned");

        // Once expired, the plan replaces the token and says why.
        age_token(&wd);
        let o = wd.ok(&["plan", "-input=false", "-no-color", "-out=expired.tfplan"]);
        assert!(
            o.output().contains("Gateway token expired"),
            "the plan warns about expiry:\n{o}"
        );
        let plan = wd.show_json(Some("expired.tfplan"));
        let acts = actions(&plan);
        assert!(
            acts.contains(&"delete".to_owned()) && acts.contains(&"create".to_owned()),
            "{acts:?}"
        );
        wd.ok(&["apply", "-input=false", "-no-color", "expired.tfplan"]);
        let v3 = state_values(&wd.show_json(None), GW).clone();
        assert_ne!(v3["token"], v1["token"], "an expired token is replaced by a new one");
        assert_ne!(v3["created_at"], "2020-01-01T00:00:00Z");
        let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
        assert_eq!(o.code, Some(0), "empty plan after rotation:\n{o}");
    });
}

#[test]
fn ephemeral_token_is_opened_and_never_stored() {
    for_each_cli("ephemeral", |cli| {
        // Ephemeral resources: Terraform 1.10+, OpenTofu 1.11+.
        let (major, minor, _) = cli.version_tuple();
        let supported = match cli.kind {
            Kind::Terraform => (major, minor) >= (1, 10),
            Kind::OpenTofu => (major, minor) >= (1, 11),
        };
        if !supported {
            eprintln!("[{}] ephemeral resources need a newer CLI; not applicable", cli.label());
            return;
        }
        let wd = Workdir::new(cli, "ephemeral");
        // The postcondition reads the opened token; the control with the
        // wrong length must fail, so the check cannot pass vacuously.
        let config = |len: u32| {
            format!(
                r#"terraform {{
  required_providers {{
    selfhost = {{ source = "selfhost/selfhost" }}
  }}
}}

ephemeral "selfhost_gateway_token" "session" {{
  length   = 24
  alphabet = "hex"
  lifecycle {{
    postcondition {{
      condition     = length(self.token) == {len} && can(regex("^[0-9a-f]+$", self.token))
      error_message = "unexpected token shape"
    }}
  }}
}}
"#
            )
        };
        wd.write("main.tf", &config(24));
        wd.init();
        let o = wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert!(
            o.output().contains("Opening"),
            "the CLI opened the ephemeral token:\n{o}"
        );
        let state: Json = serde_json::from_str(&wd.ok(&["state", "pull"]).stdout).expect("state is JSON");
        assert_eq!(
            state["resources"],
            serde_json::json!([]),
            "ephemeral values never reach state: {state:#}"
        );
        wd.write("main.tf", &config(25));
        let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert_ne!(o.code, Some(0), "the control postcondition must fail:\n{o}");
        assert!(o.output().contains("unexpected token shape"), "{o}");
    });
}
