//! Issue 21's namespace security on a REAL cluster, as a step of a
//! cluster test's flow (no cluster of its own: creating one is slow):
//! Pod Security Admission labels enforced by the API server, an agent that
//! still runs under "restricted", a deployer kubeconfig that can deploy in
//! its namespace and nothing else, drift of labels and Role shown and
//! repaired, the level turned down and back, bad values refused at plan,
//! long-lived tokens and the deployer's removal. Checked with the real
//! kubectl, never the provider's code.

#![allow(dead_code)] // each test binary uses a different part of the support

use super::Workdir;
use super::k8s::K8sBed;
use super::kube::KubeBed;

/// Namespaces and resources added to the cluster configuration: a
/// restricted namespace with a deployer, a baseline one, an agent in the
/// restricted "agents" namespace of the base configuration.
fn extra_namespaces(deployer: &str, other_level: &str) -> String {
    format!(
        r#"  namespace {{
    name = "deploy"
{deployer}  }}

  namespace {{
    name         = "other"
    pod_security = "{other_level}"
  }}

"#
    )
}

const AGENT_AND_OUTPUT: &str = r#"
resource "selfhost_agent" "web" {
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "web"
  image      = "selfhost.test/echo:1"
  port {
    name = "http"
    port = 8080
  }
}

output "deployer" {
  value     = selfhost_k8s_cluster.main.deployer_kubeconfigs["deploy"]
  sensitive = true
}
"#;

const SHORT_LIVED: &str = "    deployer {\n      token_duration = \"1h\"\n    }\n";
const LONG_LIVED: &str = "    deployer {\n      long_lived_token = true\n    }\n";

/// `base` (a cluster configuration with the `timeouts {` block of
/// [`super::k8s::cluster_config`]) with `cluster_lines` and the extra
/// namespaces before that block, and `extra` after the configuration.
fn with(base: &str, cluster_lines: &str, extra: &str) -> String {
    let anchor = "  timeouts {\n    create = \"25m\"";
    assert!(base.contains(anchor), "the cluster block's timeouts moved");
    let mut hcl = base.replacen(anchor, &format!("{cluster_lines}{anchor}"), 1);
    hcl.push_str(extra);
    hcl
}

fn apply(wd: &Workdir) {
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "{o}");
}

fn expect_empty_plan(wd: &Workdir, why: &str) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "{why}: the plan must be empty\n{o}");
}

fn label(kc: &KubeBed, ns: &str, key: &str) -> String {
    kc.ok(&[
        "get",
        "namespace",
        ns,
        "-o",
        &format!("jsonpath={{.metadata.labels.pod-security\\.kubernetes\\.io/{key}}}"),
    ])
}

/// A pod with `security` as its container's securityContext (YAML flow).
fn pod(ns: &str, name: &str, pod_security: &str, security: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
  securityContext: {pod_security}
  containers:
  - name: c
    image: selfhost.test/client:1
    imagePullPolicy: Never
    command: [sleep, "3600"]
    securityContext: {security}
"#
    )
}

use super::k8s::{RESTRICTED_CONTAINER as COMPLIANT_CONTAINER, RESTRICTED_POD as COMPLIANT_POD};

/// A privileged pod is refused by admission in a restricted namespace,
/// with kubectl's error naming the policy.
fn privileged_pod_refused(kc: &KubeBed, ns: &str, policy: &str) {
    let (ok, out, err) = kc.run(
        &["apply", "-f", "-"],
        Some(&pod(ns, "psa-probe", "{}", "{privileged: true}")),
    );
    assert!(!ok, "a privileged pod was admitted in {ns}:\n{out}");
    assert!(err.contains("Forbidden") || err.contains("forbidden"), "{err}");
    assert!(err.contains(&format!("violates PodSecurity \"{policy}")), "{err}");
    assert!(err.contains("privileged"), "{err}");
}

/// `kubectl` with the deployer's kubeconfig (the `deployer` output).
fn deployer_kubectl(k: &K8sBed, wd: &Workdir, file: &str) -> KubeBed {
    let path = wd.path.join(file);
    std::fs::write(&path, wd.ok(&["output", "-raw", "deployer"]).stdout).expect("write the deployer kubeconfig");
    KubeBed {
        kubectl: k.kubectl.clone(),
        kubeconfig: path.display().to_string(),
    }
}

fn forbidden(kc: &KubeBed, args: &[&str]) {
    let (ok, out, err) = kc.run(args, None);
    assert!(!ok, "kubectl {args:?} must be refused:\n{out}");
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "kubectl {args:?}: {err}"
    );
}

/// The deployer can deploy in its namespace, and nothing else.
fn deployer_scope(dk: &KubeBed) {
    let deployment = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: shipped, namespace: deploy}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: shipped}}}}
  template:
    metadata: {{labels: {{app: shipped}}}}
    spec:
      securityContext: {COMPLIANT_POD}
      containers:
      - name: echo
        image: selfhost.test/echo:1
        imagePullPolicy: Never
        securityContext: {COMPLIANT_CONTAINER}
"#
    );
    dk.apply(&deployment);
    dk.ok(&["-n", "deploy", "get", "deployment", "shipped"]);
    dk.ok(&[
        "-n",
        "deploy",
        "create",
        "configmap",
        "shipped-config",
        "--from-literal=a=b",
    ]);
    forbidden(dk, &["-n", "agents", "get", "secrets"]);
    forbidden(dk, &["get", "nodes"]);
    forbidden(dk, &["-n", "kube-system", "get", "pods"]);
    forbidden(
        dk,
        &["-n", "kube-system", "create", "configmap", "x", "--from-literal=a=b"],
    );
    forbidden(
        dk,
        &[
            "-n",
            "deploy",
            "create",
            "role",
            "more",
            "--verb=get",
            "--resource=pods",
        ],
    );
}

/// The scenario, from a cluster made by `base` (the flow's own
/// configuration) and applied; ends with `base` applied again and an
/// empty plan.
pub fn namespace_security(k: &K8sBed, wd: &Workdir, base: &str) {
    let admin = super::k8s::cluster_kubectl(k, wd);

    // 1. Defaults: "agents" (no pod_security anywhere) is restricted,
    //    pinned to the cluster's minor; the block's override applies.
    wd.write(
        "main.tf",
        &with(base, &extra_namespaces(SHORT_LIVED, "baseline"), AGENT_AND_OUTPUT),
    );
    let traced = wd.run_env(
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &[("TF_LOG", "TRACE")],
    );
    assert_eq!(traced.code, Some(0), "{traced}");
    for mode in ["enforce", "warn", "audit"] {
        assert_eq!(label(&admin, "agents", mode), "restricted");
        assert_eq!(label(&admin, "agents", &format!("{mode}-version")), "v1.36");
        assert_eq!(label(&admin, "other", mode), "baseline");
    }
    assert_ne!(
        label(&admin, "kube-system", "enforce"),
        "restricted",
        "kube-system left alone"
    );
    privileged_pod_refused(&admin, "agents", "restricted:v1.36");
    privileged_pod_refused(&admin, "deploy", "restricted:v1.36");
    // a pod following the restricted rules is admitted and runs
    admin.apply(&pod("agents", "psa-compliant", COMPLIANT_POD, COMPLIANT_CONTAINER));
    admin.ok(&[
        "-n",
        "agents",
        "wait",
        "--for=condition=Ready",
        "pod/psa-compliant",
        "--timeout=180s",
    ]);
    admin.ok(&["-n", "agents", "delete", "pod", "psa-compliant", "--wait=false"]);
    // the agent, with its defaults, runs under "restricted"
    admin.ok(&["-n", "agents", "rollout", "status", "deployment/web", "--timeout=180s"]);
    expect_empty_plan(wd, "after adding namespaces with pod_security and a deployer");

    // 2. The deployer kubeconfig: its namespace only.
    let state = wd.show_json(None);
    let v = super::state_values(&state, "selfhost_k8s_cluster.main");
    let expiry = v["deployer_token_expiry"]["deploy"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(expiry.ends_with('Z') && expiry.contains('T'), "RFC 3339 expiry: {v}");
    let dk = deployer_kubectl(k, wd, "deployer.kubeconfig");
    let text = std::fs::read_to_string(&dk.kubeconfig).expect("read");
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .map(|t| t.trim_matches('"').to_owned())
        .unwrap_or_default();
    assert!(token.len() > 40, "the kubeconfig has a token");
    assert!(!traced.output().contains(&token), "the deployer token reached the log");
    assert!(
        !traced.output().contains(&token[token.len() - 20..]),
        "part of the deployer token reached the log"
    );
    assert!(
        text.contains(&format!("server: \"https://{}:6443\"", k.hosts[0].addr)),
        "{text}"
    );
    deployer_scope(&dk);
    assert_eq!(
        admin.ok(&[
            "-n",
            "deploy",
            "get",
            "role",
            "selfhost-deployer",
            "-o",
            "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}"
        ]),
        "terraform-provider-selfhost"
    );

    // 3. Drift: a label changed and one removed by hand, a Role rule
    //    removed; the plan shows both, apply restores them.
    admin.ok(&[
        "label",
        "namespace",
        "agents",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=privileged",
    ]);
    admin.ok(&["label", "namespace", "agents", "pod-security.kubernetes.io/warn-"]);
    admin.ok(&[
        "-n",
        "deploy",
        "patch",
        "role",
        "selfhost-deployer",
        "--type=json",
        "-p",
        r#"[{"op": "remove", "path": "/rules/0"}]"#,
    ]);
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(2), "the drift must show\n{o}");
    assert!(o.stdout.contains("pod_security_labels"), "{o}");
    assert!(o.stdout.contains("pod-security.kubernetes.io/warn"), "{o}");
    assert!(o.stdout.contains("deployer_rbac"), "{o}");
    assert!(!o.stdout.contains("must be replaced"), "{o}");
    apply(wd);
    assert_eq!(label(&admin, "agents", "enforce"), "restricted");
    assert_eq!(label(&admin, "agents", "warn"), "restricted");
    let rules = admin.ok(&[
        "-n",
        "deploy",
        "get",
        "role",
        "selfhost-deployer",
        "-o",
        "jsonpath={.rules[*].resources}",
    ]);
    assert!(rules.contains("deployments"), "{rules}");
    expect_empty_plan(wd, "after repairing the drift");
    privileged_pod_refused(&admin, "agents", "restricted:v1.36");

    // 4. The cluster's level down to "baseline" and back.
    let baseline = with(
        base,
        &format!(
            "  pod_security = \"baseline\"\n\n{}",
            extra_namespaces(SHORT_LIVED, "baseline")
        ),
        AGENT_AND_OUTPUT,
    );
    wd.write("main.tf", &baseline);
    apply(wd);
    assert_eq!(label(&admin, "agents", "enforce"), "baseline");
    // root without seccomp passes baseline, privileged still does not
    admin.apply(&pod("agents", "psa-root", "{}", "{}"));
    admin.ok(&["-n", "agents", "delete", "pod", "psa-root", "--wait=false"]);
    privileged_pod_refused(&admin, "agents", "baseline:v1.36");
    expect_empty_plan(wd, "after turning pod_security to baseline");
    wd.write(
        "main.tf",
        &with(base, &extra_namespaces(SHORT_LIVED, "baseline"), AGENT_AND_OUTPUT),
    );
    apply(wd);
    assert_eq!(label(&admin, "agents", "enforce"), "restricted");
    expect_empty_plan(wd, "after turning pod_security back to restricted");

    // 5. Bad values are refused at plan, at their attribute.
    let bad = with(
        base,
        "  pod_security = \"strict\"\n\n  namespace {\n    name   = \"web\"\n    labels = { \"pod-security.kubernetes.io/enforce\" = \"privileged\" }\n    deployer {\n      token_duration = \"5m\"\n    }\n  }\n\n",
        "",
    );
    wd.write("main.tf", &bad);
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(1), "{o}");
    let out = o.output();
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for (needle, message) in [
        ("pod_security = \"strict\"", "must be one of"),
        (
            "\"pod-security.kubernetes.io/enforce\" = \"privileged\"",
            "Reserved namespace labels",
        ),
        ("token_duration = \"5m\"", "shorter than 10m"),
    ] {
        assert!(flat.contains(message), "{message:?} missing:\n{out}");
        assert!(
            out.contains(&format!("main.tf line {}", super::line_of(&bad, needle))),
            "no diagnostic at the line of {needle:?}:\n{out}"
        );
    }

    // 6. A long-lived token, then the deployer removed: its objects are
    //    deleted and its token stops working.
    wd.write(
        "main.tf",
        &with(base, &extra_namespaces(LONG_LIVED, "baseline"), AGENT_AND_OUTPUT),
    );
    apply(wd);
    let state = wd.show_json(None);
    let v = super::state_values(&state, "selfhost_k8s_cluster.main");
    assert!(v["deployer_token_expiry"].get("deploy").is_none(), "no expiry: {v}");
    let lk = deployer_kubectl(k, wd, "deployer-long.kubeconfig");
    lk.ok(&["-n", "deploy", "get", "deployment", "shipped"]);
    admin.ok(&["-n", "deploy", "get", "secret", "selfhost-deployer-token"]);
    expect_empty_plan(wd, "after switching to a long-lived token");
    wd.write("main.tf", &with(base, &extra_namespaces("", "baseline"), ""));
    apply(wd);
    for kind in ["serviceaccount", "role", "rolebinding", "secret"] {
        let name = if kind == "secret" {
            "selfhost-deployer-token"
        } else {
            "selfhost-deployer"
        };
        let (found, out, _) = admin.run(&["-n", "deploy", "get", kind, name], None);
        assert!(!found, "{kind} {name} still there after removing the deployer: {out}");
    }
    // Refused at once (its Role is gone: 403); 401 once the API server's
    // token cache (10 s for a valid token) has forgotten it.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (ok, out, err) = lk.run(&["-n", "deploy", "get", "deployments"], None);
        assert!(!ok, "the removed deployer's token still works:\n{out}");
        if err.contains("Unauthorized") {
            break;
        }
        assert!(err.contains("Forbidden") || err.contains("forbidden"), "{err}");
        assert!(
            std::time::Instant::now() < until,
            "the long-lived token still authenticates: {err}"
        );
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    expect_empty_plan(wd, "after removing the deployer");

    // Back to the flow's configuration (the extra namespaces deleted).
    wd.write("main.tf", base);
    apply(wd);
    expect_empty_plan(wd, "after the security scenario");
}
