//! Acceptance tests of `selfhost_agent` and `selfhost_network_policy`
//! against the test bed's REAL kube-apiserver (`testbed/testbed env`; kwok
//! nodes make pods Ready, so Deployments reach their ready replicas),
//! driven by every real Terraform/OpenTofu CLI. What the provider did is
//! checked with the real `kubectl`, never with the provider's own code.
//!
//! Each test works in its own namespace `acc-<test>-<random>` and removes
//! it. Without the bed every test SKIPs loudly; with `CI` set it fails.
//!
//! `cargo test --test acceptance_agent -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value as Json;
use support::kube::{KubeBed, kube_bed, namespace_with_kubeconfig};
use support::netpol::{Flow, Peer, assert_truth_table, evaluator};
use support::{Workdir, for_each_cli, state_values};

const AGENT: &str = "selfhost_agent.research";
const POLICY: &str = "selfhost_network_policy.research";
const SECRET_VALUE: &str = "sk-acceptance-4f1c9b7e2d";
const IMAGE: &str = "registry.k8s.io/pause:3.10";

/// The cluster DNS as NetworkPolicies see it (the bed runs no CoreDNS).
const DNS: Peer = Peer::Pod {
    namespace: "kube-system",
    labels: &[("k8s-app", "kube-dns")],
    ip: "10.96.0.10",
};

const HEADER: &str = r#"terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}
"#;

/// The canonical agent (with config files, a probe and storage) and
/// policy, plus a second agent `gateway` without `replicas` (left to
/// others), in `ns`; `token` adds the gateway token kept in a Secret.
fn platform(kubeconfig: &str, ns: &str, token: bool) -> String {
    let mut tf = format!(
        r#"{HEADER}
locals {{
  kubeconfig = file("{kubeconfig}")
}}

resource "selfhost_agent" "research" {{
  kubeconfig = local.kubeconfig
  namespace  = "{ns}"
  name       = "research"
  image      = "{IMAGE}"
  replicas   = 1
  env        = {{ LOG_LEVEL = "info" }}
  secret_env = {{ OPENAI_API_KEY = "{SECRET_VALUE}" }}
  config_files = {{ "agent.yaml" = "model: small\n" }}
  port {{
    name = "http"
    port = 8080
  }}
  resources {{
    cpu_request    = "250m"
    cpu_limit      = "1"
    memory_request = "256Mi"
    memory_limit   = "512Mi"
  }}
  readiness_probe {{
    http_path = "/healthz"
  }}
  storage {{
    size       = "1Gi"
    mount_path = "/data"
  }}
  ingress {{
    host = "research.example.com"
    tls  = true
  }}
  wait_for_rollout = true
}}

resource "selfhost_agent" "gateway" {{
  kubeconfig    = local.kubeconfig
  namespace     = "{ns}"
  name          = "gateway"
  image         = "{IMAGE}"
  node_selector = {{ "kubernetes.io/hostname" = "kwok-node-2" }}
  port {{
    name = "http"
    port = 8080
  }}
  liveness_probe {{
    command = ["true"]
  }}
  toleration {{
    key      = "dedicated"
    operator = "Equal"
    value    = "agents"
    effect   = "NoSchedule"
  }}
  security {{
    run_as_user               = 1000
    read_only_root_filesystem = false
  }}
}}

resource "selfhost_network_policy" "research" {{
  kubeconfig   = local.kubeconfig
  namespace    = "{ns}"
  name         = "research-isolation"
  agents       = ["research"]
  default_deny = ["ingress", "egress"]
  allow_dns    = true
  ingress {{
    from_agents = ["gateway"]
    ports       = ["8080/tcp"]
  }}
  egress {{
    to_cidrs = ["0.0.0.0/0"]
    except   = ["10.0.0.0/8"]
    ports    = ["443/tcp"]
  }}
}}
"#
    );
    if token {
        tf.push_str(&format!(
            r#"
resource "selfhost_gateway_token" "gw" {{
  length        = 48
  rotation_days = 90
  keepers       = {{ gateway = "v1" }}
  secret {{
    kubeconfig = local.kubeconfig
    namespace  = "{ns}"
    name       = "gateway-token"
    key        = "token"
  }}
}}
"#
        ));
    }
    tf
}

fn apply(wd: &Workdir) -> support::Outcome {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"])
}

fn expect_empty_plan(wd: &Workdir, why: &str) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "{why}: the plan must be empty (exit 0)\n{o}");
}

/// The plan must show the drift `needle` on `address`, as an in-place update.
fn expect_drift(wd: &Workdir, address: &str, needle: &str, why: &str) {
    let o = wd.run(&[
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        "-out=drift.tfplan",
    ]);
    assert_eq!(o.code, Some(2), "{why}: the plan must show the drift (exit 2)\n{o}");
    assert!(o.stdout.contains(needle), "{why}: the plan must name {needle:?}\n{o}");
    let plan = wd.show_json(Some("drift.tfplan"));
    let rc = support::resource_change(&plan, address);
    assert_eq!(rc["change"]["actions"], serde_json::json!(["update"]), "{why}: {rc:#}");
}

/// A PersistentVolume reserved for the claim `ns/claim` (the bed has no
/// storage provisioner); deleted on drop.
struct Volume {
    bed: KubeBed,
    name: String,
}

impl Volume {
    fn for_claim(bed: &KubeBed, ns: &str, claim: &str) -> Volume {
        let name = format!("{ns}-{claim}");
        bed.apply(&format!(
            r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: ""
  hostPath: {{path: /tmp/{name}}}
  claimRef: {{namespace: {ns}, name: {claim}}}
"#
        ));
        Volume { bed: bed.clone(), name }
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = self.bed.run(&["delete", "pv", &self.name, "--wait=false"], None);
    }
}

fn get(bed: &KubeBed, kind: &str, ns: &str, name: &str) -> Json {
    bed.get_json(kind, ns, name)
        .unwrap_or_else(|| panic!("{kind} {ns}/{name} must exist"))
}

/// What users see in the cluster after the first apply.
fn check_objects(bed: &KubeBed, ns: &str) {
    ready_deployments(bed, ns, 2);
    let d = get(bed, "deployment", ns, "research");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], IMAGE);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        !d.to_string().contains(SECRET_VALUE),
        "the secret value stays out of the Deployment"
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert_eq!(mounts, vec!["/tmp", "/config", "/data"]);

    let svc = get(bed, "service", ns, "research");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(
        bed.secret_value(ns, "research-env", "OPENAI_API_KEY").as_deref(),
        Some(SECRET_VALUE)
    );
    let cm = get(bed, "configmap", ns, "research-config");
    assert_eq!(cm["data"]["agent.yaml"], "model: small\n");
    let pvc = get(bed, "pvc", ns, "research-data");
    assert_eq!(pvc["status"]["phase"], "Bound");
    // Routed by the cluster's traefik: HTTPS with a certificate from its
    // ACME resolver, which traefik keeps itself (no secretName).
    let ing = get(bed, "ingress", ns, "research");
    let a = &ing["metadata"]["annotations"];
    assert_eq!(a["traefik.ingress.kubernetes.io/router.entrypoints"], "websecure");
    assert_eq!(a["traefik.ingress.kubernetes.io/router.tls"], "true");
    assert_eq!(a["traefik.ingress.kubernetes.io/router.tls.certresolver"], "acme");
    assert!(ing["spec"].get("tls").is_none(), "{ing}");

    // The gateway's placement and explicit security overrides.
    let g = get(bed, "deployment", ns, "gateway");
    let gpod = &g["spec"]["template"]["spec"];
    assert_eq!(gpod["securityContext"]["runAsUser"], 1000);
    assert_eq!(gpod["securityContext"]["runAsNonRoot"], true, "other defaults kept");
    assert_eq!(
        gpod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        false
    );
    assert!(gpod.get("volumes").is_none(), "no /tmp volume without a read-only root");
    assert_eq!(gpod["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        gpod["containers"][0]["livenessProbe"]["exec"]["command"],
        serde_json::json!(["true"])
    );
    let pods: Json = serde_json::from_str(&bed.ok(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        "selfhost.dev/agent=gateway",
        "-o",
        "json",
    ]))
    .expect("pods JSON");
    assert_eq!(
        pods["items"][0]["spec"]["nodeName"], "kwok-node-2",
        "node_selector honoured"
    );

    let np = get(bed, "networkpolicy", ns, "research-isolation");
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["egress"][0]["to"][0]["ipBlock"],
        serde_json::json!({"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]})
    );
    for (kind, name) in [
        ("deployment", "research"),
        ("service", "research"),
        ("secret", "research-env"),
        ("configmap", "research-config"),
        ("pvc", "research-data"),
        ("ingress", "research"),
        ("networkpolicy", "research-isolation"),
    ] {
        let o = get(bed, kind, ns, name);
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "terraform-provider-selfhost",
            "{kind}/{name} carries the ownership label"
        );
    }
}

#[test]
fn agent_and_policy_lifecycle() {
    let Some(bed) = kube_bed("agent_and_policy_lifecycle") else {
        return;
    };
    for_each_cli("agent_and_policy_lifecycle", |cli| {
        let mut wd = Workdir::new(cli, "agent");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "agent", &wd.path);
        let _pv = Volume::for_claim(&bed, &ns.name, "research-data");
        wd.write("main.tf", &platform(&kubeconfig, &ns.name, true));
        wd.init();

        // Create, traced: the secret value never reaches logs or output.
        let log = wd.path.join("trace.log");
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &log.display().to_string());
        let out = apply(&wd);
        wd.unset_env("TF_LOG");
        wd.unset_env("TF_LOG_PATH");
        let trace = std::fs::read_to_string(&log).expect("read the TRACE log");
        assert!(
            trace.contains("applied the agent's objects"),
            "provider steps are logged"
        );
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(SECRET_VALUE)
        };
        let sa_token: String = std::fs::read_to_string(&kubeconfig)
            .expect("read the test kubeconfig")
            .lines()
            .find_map(|l| l.trim().strip_prefix("token:"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        assert!(sa_token.len() > 100, "a ServiceAccount token in the kubeconfig");
        for needle in [SECRET_VALUE, b64.as_str(), sa_token.as_str()] {
            assert!(
                !trace.contains(needle),
                "the secret leaked into the TRACE log {}",
                log.display()
            );
            assert!(!out.output().contains(needle), "the secret leaked into CLI output");
        }

        check_objects(&bed, &ns.name);
        let show = wd.show_json(None);
        let research = state_values(&show, AGENT);
        assert_eq!(research["id"], format!("{}/research", ns.name));
        assert_eq!(
            research["service_dns"],
            format!("research.{}.svc.cluster.local", ns.name)
        );
        expect_empty_plan(&wd, "after create");

        // The policy allows exactly the flows the HCL intends, as an
        // independent evaluator reads it from the API server.
        if let Some(eval) = evaluator("agent_and_policy_lifecycle") {
            use Peer::{Agent, Ip};
            assert_truth_table(
                &eval,
                &bed,
                &ns.name,
                &[
                    (Flow::new(Agent("gateway"), Agent("research"), 8080, "TCP"), true),
                    (Flow::new(Agent("gateway"), Agent("research"), 9090, "TCP"), false),
                    (Flow::new(Ip("203.0.113.5"), Agent("research"), 8080, "TCP"), false),
                    (Flow::new(Agent("research"), Ip("1.1.1.1"), 443, "TCP"), true),
                    (Flow::new(Agent("research"), Ip("10.1.2.3"), 443, "TCP"), false),
                    (Flow::new(Agent("research"), Ip("1.1.1.1"), 80, "TCP"), false),
                    (Flow::new(Agent("research"), DNS, 53, "UDP"), true),
                    (Flow::new(Agent("research"), DNS, 53, "TCP"), true),
                    (Flow::new(Agent("research"), Agent("gateway"), 8080, "TCP"), false),
                    (Flow::new(Agent("gateway"), Ip("1.1.1.1"), 80, "TCP"), true),
                ],
                &wd.path,
            );
        }

        // Another field manager's changes to fields we do not manage: no diff.
        bed.ok(&["annotate", "deployment", "-n", &ns.name, "research", "team=platform"]);
        bed.ok(&["label", "service", "-n", &ns.name, "research", "tier=backend"]);
        bed.ok(&[
            "patch",
            "deployment",
            "-n",
            &ns.name,
            "research",
            "--field-manager=someone-else",
            "--type=merge",
            "-p",
            r#"{"spec":{"revisionHistoryLimit":3}}"#,
        ]);
        // `gateway` has no `replicas`: an autoscaler's scaling is not drift.
        bed.ok(&["scale", "deployment", "-n", &ns.name, "gateway", "--replicas=2"]);
        expect_empty_plan(&wd, "after other managers' edits of unmanaged fields");

        // A managed field edited with kubectl: drift in the plan, repaired.
        bed.ok(&[
            "set",
            "image",
            "deployment/research",
            "-n",
            &ns.name,
            "research=registry.k8s.io/pause:3.9",
        ]);
        expect_drift(
            &wd,
            AGENT,
            "Deployment/research: spec.template.spec.containers[0].image",
            "after kubectl set image",
        );
        wd.ok(&["apply", "-input=false", "-no-color", "drift.tfplan"]);
        let d = get(&bed, "deployment", &ns.name, "research");
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], IMAGE);
        assert_eq!(
            d["metadata"]["annotations"]["team"], "platform",
            "others' annotation kept"
        );
        expect_empty_plan(&wd, "after repairing the image");

        // The Service deleted: drift, re-created.
        bed.ok(&["delete", "service", "-n", &ns.name, "research"]);
        expect_drift(&wd, AGENT, "Service/research: missing", "after deleting the Service");
        wd.ok(&["apply", "-input=false", "-no-color", "drift.tfplan"]);
        assert!(bed.get_json("service", &ns.name, "research").is_some());
        expect_empty_plan(&wd, "after re-creating the Service");

        // The policy's managed field edited: drift, repaired.
        bed.ok(&[
            "patch",
            "networkpolicy",
            "-n",
            &ns.name,
            "research-isolation",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ingress/0/ports/0/port","value":9090}]"#,
        ]);
        expect_drift(
            &wd,
            POLICY,
            "NetworkPolicy/research-isolation: spec.ingress[0].ports[0].port",
            "after editing the policy",
        );
        wd.ok(&["apply", "-input=false", "-no-color", "drift.tfplan"]);
        let np = get(&bed, "networkpolicy", &ns.name, "research-isolation");
        assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], 8080);
        expect_empty_plan(&wd, "after repairing the policy");

        // Import into a fresh state: both round-trip to an empty plan.
        let imp = Workdir::new(cli, "agent-import");
        imp.write("main.tf", &platform(&kubeconfig, &ns.name, false));
        imp.init();
        for (address, id) in [
            (AGENT, format!("{}/research", ns.name)),
            ("selfhost_agent.gateway", format!("{}/gateway", ns.name)),
            (POLICY, format!("{}/research-isolation", ns.name)),
        ] {
            let o = imp.run_env(
                &["import", "-input=false", "-no-color", address, &id],
                &[("KUBECONFIG", &kubeconfig)],
            );
            assert_eq!(o.code, Some(0), "import {address}: {o}");
        }
        expect_empty_plan(&imp, "after import");
        let imported = imp.show_json(None);
        assert_eq!(
            state_values(&imported, AGENT)["secret_env"]["OPENAI_API_KEY"],
            SECRET_VALUE,
            "secret values come back from the Secret"
        );
        for address in [AGENT, "selfhost_agent.gateway", POLICY] {
            imp.ok(&["state", "rm", address]);
        }

        // Destroy: everything the agent created is gone, pods included.
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        for (kind, name) in [
            ("deployment", "research"),
            ("service", "research"),
            ("secret", "research-env"),
            ("configmap", "research-config"),
            ("pvc", "research-data"),
            ("ingress", "research"),
            ("networkpolicy", "research-isolation"),
            ("deployment", "gateway"),
            ("secret", "gateway-token"),
        ] {
            assert!(
                bed.get_json(kind, &ns.name, name).is_none(),
                "{kind}/{name} must be gone after destroy"
            );
        }
        let pods = bed.ok(&["get", "pods", "-n", &ns.name, "-o", "name"]);
        assert!(pods.trim().is_empty(), "no pods left: {pods}");
    });
}

/// An agent `scaled` kept by a HorizontalPodAutoscaler (`autoscaling`
/// Some) or with a fixed `replicas = 1` (None).
fn autoscaled_agent(kubeconfig: &str, ns: &str, autoscaling: Option<&str>) -> String {
    let scaling = match autoscaling {
        Some(block) => format!("  autoscaling {{\n{block}\n  }}"),
        None => "  replicas = 1".to_owned(),
    };
    format!(
        r#"{HEADER}
resource "selfhost_agent" "scaled" {{
  kubeconfig = file("{kubeconfig}")
  namespace  = "{ns}"
  name       = "scaled"
  image      = "{IMAGE}"
  resources {{
    cpu_request  = "50m"
    memory_limit = "64Mi"
  }}
{scaling}
}}
"#
    )
}

/// Whether our field manager's applied fields of the Deployment include
/// `spec.replicas` (from `managedFields`, which `kubectl get` hides unless asked).
fn we_own_replicas(bed: &KubeBed, ns: &str, name: &str) -> bool {
    let d: Json = serde_json::from_str(&bed.ok(&[
        "get",
        "deployment",
        "-n",
        ns,
        name,
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .expect("deployment JSON");
    d["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["manager"] == "terraform-provider-selfhost" && m["operation"] == "Apply")
        .any(|m| !m["fieldsV1"]["f:spec"]["f:replicas"].is_null())
}

/// The autoscaler is applied, its edits and deletion show as drift and are
/// repaired, the replica count is the autoscaler's (a `kubectl scale` is no drift), import round-trips,
/// and removing the block deletes it and gives the count back.
#[test]
fn agent_autoscaling_lifecycle() {
    let Some(bed) = kube_bed("agent_autoscaling_lifecycle") else {
        return;
    };
    const SCALED: &str = "selfhost_agent.scaled";
    let block = "    min_replicas = 1\n    max_replicas = 4\n    cpu_percent  = 70\n    memory_percent = 80";
    for_each_cli("agent_autoscaling_lifecycle", |cli| {
        let wd = Workdir::new(cli, "agent-hpa");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "agenthpa", &wd.path);
        let ns = &ns.name;
        wd.write("main.tf", &autoscaled_agent(&kubeconfig, ns, Some(block)));
        wd.init();
        apply(&wd);

        let hpa = get(&bed, "hpa", ns, "scaled");
        assert_eq!(
            hpa["spec"]["scaleTargetRef"],
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"})
        );
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(hpa["spec"]["maxReplicas"], 4);
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        assert_eq!(hpa["spec"]["metrics"][1]["resource"]["name"], "memory");
        assert_eq!(
            hpa["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "terraform-provider-selfhost"
        );
        assert!(
            !we_own_replicas(&bed, ns, "scaled"),
            "the replicas are the autoscaler's"
        );
        expect_empty_plan(&wd, "after create");

        // The count changed by someone else (as the autoscaler would): no drift.
        bed.ok(&["scale", "deployment", "-n", ns, "scaled", "--replicas=3"]);
        expect_empty_plan(&wd, "after scaling the Deployment");

        // The autoscaler edited: drift, repaired.
        bed.ok(&[
            "patch",
            "hpa",
            "-n",
            ns,
            "scaled",
            "--type=merge",
            "-p",
            r#"{"spec":{"maxReplicas":9}}"#,
        ]);
        expect_drift(
            &wd,
            SCALED,
            "HorizontalPodAutoscaler/scaled: spec.maxReplicas",
            "after editing the autoscaler",
        );
        wd.ok(&["apply", "-input=false", "-no-color", "drift.tfplan"]);
        assert_eq!(get(&bed, "hpa", ns, "scaled")["spec"]["maxReplicas"], 4);
        expect_empty_plan(&wd, "after repairing the autoscaler");

        // The autoscaler deleted: drift, re-created.
        bed.ok(&["delete", "hpa", "-n", ns, "scaled"]);
        expect_drift(
            &wd,
            SCALED,
            "HorizontalPodAutoscaler/scaled: missing",
            "after deleting the autoscaler",
        );
        wd.ok(&["apply", "-input=false", "-no-color", "drift.tfplan"]);
        assert!(bed.get_json("hpa", ns, "scaled").is_some());
        expect_empty_plan(&wd, "after re-creating the autoscaler");

        // Import into a fresh state: autoscaling comes back, empty plan.
        let imp = Workdir::new(cli, "agent-hpa-import");
        imp.write("main.tf", &autoscaled_agent(&kubeconfig, ns, Some(block)));
        imp.init();
        let o = imp.run_env(
            &["import", "-input=false", "-no-color", SCALED, &format!("{ns}/scaled")],
            &[("KUBECONFIG", &kubeconfig)],
        );
        assert_eq!(o.code, Some(0), "import: {o}");
        expect_empty_plan(&imp, "after import");
        let imported = imp.show_json(None);
        assert_eq!(state_values(&imported, SCALED)["autoscaling"]["max_replicas"], 4);
        imp.ok(&["state", "rm", SCALED]);

        // The block removed, replicas set: the autoscaler goes, the count is ours.
        wd.write("main.tf", &autoscaled_agent(&kubeconfig, ns, None));
        apply(&wd);
        assert!(bed.get_json("hpa", ns, "scaled").is_none(), "the autoscaler is deleted");
        assert_eq!(get(&bed, "deployment", ns, "scaled")["spec"]["replicas"], 1);
        assert!(we_own_replicas(&bed, ns, "scaled"));
        expect_empty_plan(&wd, "after removing autoscaling");

        // Back to autoscaling, then destroy: nothing left.
        wd.write("main.tf", &autoscaled_agent(&kubeconfig, ns, Some(block)));
        apply(&wd);
        assert!(bed.get_json("hpa", ns, "scaled").is_some());
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        for kind in ["hpa", "deployment"] {
            assert!(
                bed.get_json(kind, ns, "scaled").is_none(),
                "{kind}/scaled must be gone after destroy"
            );
        }
    });
}

/// Two agents in `ns`: `budgeted` (2 replicas, with `budget` as its
/// `disruption_budget` block's body when Some) and `other` (1 replica, no
/// budget), so a budget that selected more than its agent's pods would show.
fn budgeted_agents(kubeconfig: &str, ns: &str, budget: Option<&str>) -> String {
    let block = budget.map_or_else(String::new, |b| format!("  disruption_budget {{\n    {b}\n  }}\n"));
    format!(
        r#"{HEADER}
locals {{
  kubeconfig = file("{kubeconfig}")
}}

resource "selfhost_agent" "budgeted" {{
  kubeconfig = local.kubeconfig
  namespace  = "{ns}"
  name       = "budgeted"
  image      = "{IMAGE}"
  replicas   = 2
{block}}}

resource "selfhost_agent" "other" {{
  kubeconfig = local.kubeconfig
  namespace  = "{ns}"
  name       = "other"
  image      = "{IMAGE}"
  replicas   = 1
}}
"#
    )
}

/// The budget's status once the disruption controller (the bed's real
/// kube-controller-manager) has counted its pods.
fn counted_budget(bed: &KubeBed, ns: &str, name: &str, expected_pods: i64) -> Json {
    let mut last = Json::Null;
    for _ in 0..100 {
        last = get(bed, "pdb", ns, name);
        if last["status"]["expectedPods"] == expected_pods && last["status"]["currentHealthy"] == expected_pods {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the budget {ns}/{name} never counted {expected_pods} healthy pods: {last:#}");
}

/// `disruption_budget` against the real API server and disruption
/// controller: the PodDisruptionBudget selects exactly the agent's pods,
/// min → max updates it in place, a deleted budget shows in the plan and
/// apply restores it, import round-trips, removing the block deletes it,
/// destroy leaves nothing.
#[test]
fn agent_disruption_budget_lifecycle() {
    let Some(bed) = kube_bed("agent_disruption_budget_lifecycle") else {
        return;
    };
    const BUDGETED: &str = "selfhost_agent.budgeted";
    for_each_cli("agent_disruption_budget_lifecycle", |cli| {
        let wd = Workdir::new(cli, "agent-pdb");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "agentpdb", &wd.path);
        let ns = &ns.name;
        // Written as a number: the attribute is a string, the CLI converts it.
        wd.write("main.tf", &budgeted_agents(&kubeconfig, ns, Some("min_available = 1")));
        wd.init();
        apply(&wd);

        let pdb = get(&bed, "pdb", ns, "budgeted");
        let deployment = get(&bed, "deployment", ns, "budgeted");
        assert_eq!(
            pdb["spec"]["selector"], deployment["spec"]["selector"],
            "the Deployment's selector"
        );
        assert_eq!(
            pdb["spec"]["selector"],
            serde_json::json!({"matchLabels": {"selfhost.dev/agent": "budgeted"}})
        );
        assert_eq!(pdb["spec"]["minAvailable"], 1, "an integer, not the string \"1\"");
        assert!(pdb["spec"].get("maxUnavailable").is_none(), "{pdb:#}");
        assert_eq!(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");
        assert_eq!(
            pdb["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "terraform-provider-selfhost"
        );
        assert!(
            bed.get_json("pdb", ns, "other").is_none(),
            "no budget without the block"
        );
        // The disruption controller finds exactly the agent's 2 pods (not
        // `other`'s) and lets one of them go.
        let counted = counted_budget(&bed, ns, "budgeted", 2);
        assert_eq!(counted["status"]["disruptionsAllowed"], 1, "{counted:#}");
        expect_empty_plan(&wd, "after create");

        // min → max: updated in place, minAvailable gone.
        wd.write(
            "main.tf",
            &budgeted_agents(&kubeconfig, ns, Some("max_unavailable = \"50%\"")),
        );
        apply(&wd);
        let pdb = get(&bed, "pdb", ns, "budgeted");
        assert_eq!(pdb["spec"]["maxUnavailable"], "50%");
        assert!(pdb["spec"].get("minAvailable").is_none(), "{pdb:#}");
        expect_empty_plan(&wd, "after min_available → max_unavailable");

        // Deleted by hand: drift, re-created.
        bed.ok(&["delete", "pdb", "-n", ns, "budgeted"]);
        expect_drift(
            &wd,
            BUDGETED,
            "PodDisruptionBudget/budgeted: missing",
            "after deleting the budget",
        );
        wd.ok(&["apply", "-input=false", "-no-color", "drift.tfplan"]);
        assert_eq!(get(&bed, "pdb", ns, "budgeted")["spec"]["maxUnavailable"], "50%");
        expect_empty_plan(&wd, "after re-creating the budget");

        // Edited by hand: drift, repaired.
        bed.ok(&[
            "patch",
            "pdb",
            "-n",
            ns,
            "budgeted",
            "--type=merge",
            "-p",
            r#"{"spec":{"maxUnavailable":"100%"}}"#,
        ]);
        expect_drift(
            &wd,
            BUDGETED,
            "PodDisruptionBudget/budgeted: spec.maxUnavailable",
            "after editing the budget",
        );
        wd.ok(&["apply", "-input=false", "-no-color", "drift.tfplan"]);
        assert_eq!(get(&bed, "pdb", ns, "budgeted")["spec"]["maxUnavailable"], "50%");
        expect_empty_plan(&wd, "after repairing the budget");

        // Import into a fresh state: the block comes back, empty plan.
        let imp = Workdir::new(cli, "agent-pdb-import");
        imp.write(
            "main.tf",
            &budgeted_agents(&kubeconfig, ns, Some("max_unavailable = \"50%\"")),
        );
        imp.init();
        for (address, id) in [(BUDGETED, "budgeted"), ("selfhost_agent.other", "other")] {
            let o = imp.run_env(
                &["import", "-input=false", "-no-color", address, &format!("{ns}/{id}")],
                &[("KUBECONFIG", &kubeconfig)],
            );
            assert_eq!(o.code, Some(0), "import {address}: {o}");
        }
        expect_empty_plan(&imp, "after import");
        let imported = imp.show_json(None);
        assert_eq!(
            state_values(&imported, BUDGETED)["disruption_budget"],
            serde_json::json!({"min_available": null, "max_unavailable": "50%"})
        );
        for address in [BUDGETED, "selfhost_agent.other"] {
            imp.ok(&["state", "rm", address]);
        }

        // The block removed: the budget is deleted, the agent stays.
        wd.write("main.tf", &budgeted_agents(&kubeconfig, ns, None));
        apply(&wd);
        assert!(bed.get_json("pdb", ns, "budgeted").is_none(), "the budget is deleted");
        assert!(bed.get_json("deployment", ns, "budgeted").is_some());
        expect_empty_plan(&wd, "after removing disruption_budget");

        // Back with a budget, then destroy: nothing left.
        wd.write(
            "main.tf",
            &budgeted_agents(&kubeconfig, ns, Some("min_available = \"1\"")),
        );
        apply(&wd);
        assert!(bed.get_json("pdb", ns, "budgeted").is_some());
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        for kind in ["pdb", "deployment"] {
            assert!(
                bed.get_json(kind, ns, "budgeted").is_none(),
                "{kind}/budgeted must be gone after destroy"
            );
        }
    });
}

/// Bad budgets fail `validate` (no cluster needed) at the attribute to fix.
#[test]
fn agent_disruption_budget_validation_points_at_the_attribute() {
    for_each_cli("agent_disruption_budget_validation_points_at_the_attribute", |cli| {
        let wd = Workdir::new(cli, "agent-pdb-validate");
        let agent = |name: &str, replicas: &str, budget: &str| {
            format!(
                r#"resource "selfhost_agent" "{name}" {{
  kubeconfig = "unused"
  namespace  = "agents"
  name       = "{name}"
  image      = "img:1"
  {replicas}
  disruption_budget {{
{budget}
  }}
}}
"#
            )
        };
        let tf = [
            HEADER.to_owned(),
            agent("percent", "replicas = 3", "    min_available = \"150%\""),
            agent("words", "replicas = 3", "    max_unavailable = \"one\""),
            agent("negative", "replicas = 3", "    max_unavailable = -1"),
            agent(
                "both",
                "replicas = 3",
                "    min_available   = \"1\" # both\n    max_unavailable = \"1\"",
            ),
            agent("empty", "replicas = 2", "    # empty"),
            agent("single", "replicas = 1", "    min_available = \"1\" # single"),
            agent("all", "replicas = 2", "    min_available = 2 # all"),
            agent("none", "replicas = 2", "    max_unavailable = \"0%\" # none"),
        ]
        .concat();
        wd.write("main.tf", &tf);
        wd.init();
        let j = support::assert_validate_errors_at(
            &wd,
            &tf,
            &[
                "min_available = \"150%\"",
                "max_unavailable = \"one\"",
                "max_unavailable = -1",
                "min_available = \"1\" # single",
                "min_available = 2 # all",
                "max_unavailable = \"0%\" # none",
            ],
        );
        let text: Vec<String> = j["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                format!(
                    "{}: {}",
                    d["summary"].as_str().unwrap_or(""),
                    d["detail"].as_str().unwrap_or("")
                )
            })
            .collect();
        let text = text.join("\n");
        for needle in [
            "\"150%\" is more than 100%",
            "\"one\" is not a pod count",
            "\"-1\" is not a pod count",
            "min_available and max_unavailable are both set",
            "disruption_budget needs one of min_available",
            "With one pod no budget can keep the agent serving through a drain",
            "never lets any of its 2 pods be evicted",
            "disruption_budget.max_unavailable = \"0%\" with replicas = 2",
        ] {
            assert!(text.contains(needle), "{needle:?} in:\n{text}");
        }
        // The block-level error (both set) is at the block's path; every CLI
        // tried (Terraform 1.0.3, 1.8.5, 1.13.3, OpenTofu 1.12.6) shows a
        // nested block's path at its resource's line.
        let resource_line = support::line_of(&tf, "\"both\" {");
        let block_line = resource_line + 6;
        let line = j["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["summary"] == "Conflicting disruption budget")
            .and_then(|d| d["range"]["start"]["line"].as_u64());
        eprintln!(
            "[{}] the conflict is said at line {line:?} (block {block_line}, resource {resource_line})",
            cli.label()
        );
        assert!(
            line == Some(block_line) || line == Some(resource_line),
            "the conflict is said at line {block_line} (the block) or {resource_line} (its resource): {j:#}"
        );
    });
}

/// Wait until the quota controller has computed the quota's usage (it
/// enforces nothing before).
fn wait_for_quota(bed: &KubeBed, ns: &str, name: &str) {
    for _ in 0..50 {
        let q = get(bed, "resourcequota", ns, name);
        if q["status"]["hard"].is_object() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the quota {ns}/{name} was never observed");
}

#[test]
fn agent_refused_by_a_quota_names_the_quota() {
    let Some(bed) = kube_bed("agent_refused_by_a_quota_names_the_quota") else {
        return;
    };
    for_each_cli("agent_refused_by_a_quota_names_the_quota", |cli| {
        let wd = Workdir::new(cli, "agent-quota");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "agentquota", &wd.path);
        bed.apply(&format!(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: agents-cpu, namespace: {}}}\nspec:\n  hard: {{limits.cpu: 500m}}\n",
            ns.name
        ));
        wait_for_quota(&bed, &ns.name, "agents-cpu");
        let tf = format!(
            r#"{HEADER}
resource "selfhost_agent" "big" {{
  kubeconfig = file("{kubeconfig}")
  namespace  = "{}"
  name       = "big"
  image      = "{IMAGE}"
  replicas   = 1
  resources {{
    cpu_limit = "1"
  }}
}}
"#,
            ns.name
        );
        wd.write("main.tf", &tf);
        wd.init();
        let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert_ne!(o.code, Some(0), "the apply must fail: {o}");
        let text = o.output();
        for needle in [
            "Agent's pods refused by a Kubernetes resource quota",
            "agents-cpu",
            "exceeded quota",
            "limits.cpu",
        ] {
            assert!(text.contains(needle), "the error must contain {needle:?}:\n{o}");
        }
        // The diagnostic points at the refused quantity.
        let line = support::line_of(&tf, "cpu_limit = \"1\"");
        assert!(
            text.contains(&format!("line {line}")),
            "the error points at line {line}:\n{o}"
        );
        // What was created is in state (tainted): destroy removes it.
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        assert!(bed.get_json("deployment", &ns.name, "big").is_none());
    });
}

/// Validation needs no cluster: only the CLIs.
#[test]
fn agent_validation_points_at_the_attribute() {
    for_each_cli("agent_validation_points_at_the_attribute", |cli| {
        let wd = Workdir::new(cli, "agent-validate");
        let tf = format!(
            r#"{HEADER}
resource "selfhost_agent" "bad" {{
  kubeconfig = "unused"
  namespace  = "Agents"
  name       = "bad"
  image      = "Not An Image"
  secret_env = {{ "BAD-NAME" = "x" }}
  port {{
    name     = "http"
    port     = 70000
    protocol = "ICMP"
  }}
  resources {{
    cpu_limit = "12x"
  }}
  node_selector = {{ "-bad" = "x" }}
}}

resource "selfhost_agent" "scaled" {{
  kubeconfig = "unused"
  namespace  = "agents"
  name       = "scaled"
  image      = "img:1"
  replicas   = 2
  port {{
    name = "http"
    port = 8080
  }}
  resources {{
    cpu_request = "100m"
  }}
  ingress {{
    host = "not a host!"
  }}
  autoscaling {{
    min_replicas   = 5
    max_replicas   = 3
    cpu_percent    = 150
    memory_percent = 0
  }}
}}

resource "selfhost_network_policy" "bad" {{
  kubeconfig   = "unused"
  namespace    = "agents"
  name         = "bad"
  default_deny = ["sideways"]
  egress {{
    to_cidrs = ["10.0.0.1/8"]
    ports    = ["80/icmp"]
  }}
  ingress {{
    from_cidrs = ["10.0.0.0/8"]
    except     = ["192.168.0.0/16"]
  }}
}}
"#
        );
        wd.write("main.tf", &tf);
        wd.init();
        let j = support::assert_validate_errors_at(
            &wd,
            &tf,
            &[
                "namespace  = \"Agents\"",
                "image      =",
                "secret_env =",
                "port     = 70000",
                "protocol = \"ICMP\"",
                "cpu_limit = \"12x\"",
                "node_selector =",
                "replicas   = 2",
                "host = \"not a host!\"",
                "max_replicas   = 3",
                "cpu_percent    = 150",
                "memory_percent = 0",
                "default_deny =",
                "to_cidrs =",
                "ports    = [\"80/icmp\"]",
                "except     =",
            ],
        );
        // The cross-attribute checks say which attributes to change.
        let text: Vec<String> = j["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| format!("{}: {}", d["summary"], d["detail"]))
            .collect();
        let text = text.join("\n");
        for needle in [
            "replicas and autoscaling both set the number of pods",
            "autoscaling.max_replicas (3) is less than autoscaling.min_replicas (5)",
        ] {
            assert!(text.contains(needle), "{needle:?} in:\n{text}");
        }
    });
}

/// Schema version 1 removed cert-manager's `issuer`: a configuration that
/// still sets it gets the CLI's own error at that line (the docs' upgrade
/// note says so).
#[test]
fn agent_issuer_is_an_unsupported_argument() {
    let tf = format!(
        r#"{HEADER}
resource "selfhost_agent" "old" {{
  kubeconfig = "unused"
  namespace  = "agents"
  name       = "old"
  image      = "img:1"
  port {{
    name = "http"
    port = 8080
  }}
  ingress {{
    host   = "old.example.com"
    tls    = true
    issuer = "letsencrypt"
  }}
}}
"#
    );
    support::expect_invalid_at(
        "agent_issuer_is_an_unsupported_argument",
        "agent-issuer",
        &tf,
        &[("issuer = ", "An argument named \"issuer\" is not expected here.")],
    );
}

/// An authority, ten agents that may reach it, the gateway token and the
/// policies between them, in ONE apply at the CLI's default parallelism.
/// The agents' kubeconfig is unknown at plan time (it depends on the
/// token's id, as it would on a cluster created in the same apply).
fn fleet(kubeconfig: &str, ns: &str) -> String {
    let workers: Vec<String> = (1..=10).map(|i| format!("worker-{i}")).collect();
    let quoted = workers
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut tf = format!(
        r#"{HEADER}
resource "selfhost_gateway_token" "gw" {{
  secret {{
    kubeconfig = file("{kubeconfig}")
    namespace  = "{ns}"
    name       = "gateway-token"
  }}
}}

locals {{
  # Unknown until the token exists: the plan must cope.
  kubeconfig = "${{file("{kubeconfig}")}}${{substr(selfhost_gateway_token.gw.id, 0, 0)}}"
}}

resource "selfhost_agent" "authority" {{
  kubeconfig = local.kubeconfig
  namespace  = "{ns}"
  name       = "authority"
  image      = "{IMAGE}"
  replicas   = 1
  port {{
    name = "http"
    port = 8080
  }}
  resources {{
    cpu_request    = "50m"
    memory_limit   = "64Mi"
  }}
}}

resource "selfhost_agent" "worker" {{
  for_each   = toset([{quoted}])
  kubeconfig = local.kubeconfig
  namespace  = "{ns}"
  name       = each.key
  image      = "{IMAGE}"
  replicas   = 1
  env        = {{ AUTHORITY = selfhost_agent.authority.service_dns }}
  resources {{
    cpu_request    = "50m"
    memory_limit   = "64Mi"
  }}
  # Under the CLI step limit of the tests: a stuck rollout is reported, not killed.
  timeouts {{
    create = "4m"
  }}
}}

resource "selfhost_network_policy" "deny_all" {{
  kubeconfig   = local.kubeconfig
  namespace    = "{ns}"
  name         = "deny-all"
  default_deny = ["ingress", "egress"]
}}

resource "selfhost_network_policy" "authority" {{
  kubeconfig = local.kubeconfig
  namespace  = "{ns}"
  name       = "authority-from-workers"
  agents     = ["authority"]
  ingress {{
    from_agents = [{quoted}]
    ports       = ["8080/tcp"]
  }}
}}

resource "selfhost_network_policy" "workers" {{
  kubeconfig = local.kubeconfig
  namespace  = "{ns}"
  name       = "workers-to-authority"
  agents     = [{quoted}]
  egress {{
    to_agents = ["authority"]
    ports     = ["8080/tcp"]
  }}
}}
"#
    );
    tf.push('\n');
    tf
}

/// Wait (briefly) until `n` Deployments of `ns` report a ready replica, as
/// kubectl reads them. The provider's apply already waited for each
/// rollout; the grace period covers the shared bed's kwok pods, seen under
/// heavy load to drop readiness for a moment after being Ready.
fn ready_deployments(bed: &KubeBed, ns: &str, n: usize) {
    let mut last = Json::Null;
    for _ in 0..60 {
        let out = bed.ok(&["get", "deployments", "-n", ns, "-o", "json"]);
        last = serde_json::from_str(&out).expect("kubectl get deployments -o json");
        let ready = last["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["status"]["readyReplicas"] == 1)
            .count();
        if ready == n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let statuses: Vec<String> = last["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| format!("{}: {}", d["metadata"]["name"], d["status"]))
        .collect();
    panic!("not every agent is ready:\n{}", statuses.join("\n"));
}

#[test]
fn eleven_agents_token_and_policies_in_one_apply() {
    let Some(bed) = kube_bed("eleven_agents_token_and_policies_in_one_apply") else {
        return;
    };
    for_each_cli("eleven_agents_token_and_policies_in_one_apply", |cli| {
        let wd = Workdir::new(cli, "fleet");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "fleet", &wd.path);
        wd.write("main.tf", &fleet(&kubeconfig, &ns.name));
        wd.init();
        let plan = wd.ok(&["plan", "-input=false", "-no-color"]);
        assert!(
            plan.stdout.contains("15 to add"),
            "token, 11 agents, 3 policies planned with an unknown kubeconfig:\n{plan}"
        );
        let started = std::time::Instant::now();
        apply(&wd);
        eprintln!("[{}] eleven agents applied in {:.1?}", cli.label(), started.elapsed());
        ready_deployments(&bed, &ns.name, 11);
        let w = get(&bed, "deployment", &ns.name, "worker-7");
        assert_eq!(
            w["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            format!("authority.{}.svc.cluster.local", ns.name)
        );
        let np = get(&bed, "networkpolicy", &ns.name, "authority-from-workers");
        assert_eq!(
            np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
                .as_array()
                .map(Vec::len),
            Some(10)
        );
        assert!(bed.secret_value(&ns.name, "gateway-token", "token").is_some());
        expect_empty_plan(&wd, "after the fleet's apply");

        // Workers reach the authority on 8080/tcp and DNS, nothing else.
        if let Some(eval) = evaluator("eleven_agents_token_and_policies_in_one_apply") {
            use Peer::{Agent, Ip};
            assert_truth_table(
                &eval,
                &bed,
                &ns.name,
                &[
                    (Flow::new(Agent("worker-1"), Agent("authority"), 8080, "TCP"), true),
                    (Flow::new(Agent("worker-10"), Agent("authority"), 8080, "TCP"), true),
                    (Flow::new(Agent("worker-1"), Agent("authority"), 9090, "TCP"), false),
                    (Flow::new(Agent("worker-1"), Agent("authority"), 8080, "UDP"), false),
                    (Flow::new(Agent("authority"), Agent("worker-1"), 8080, "TCP"), false),
                    (Flow::new(Agent("worker-1"), Agent("worker-2"), 8080, "TCP"), false),
                    (Flow::new(Agent("worker-3"), DNS, 53, "UDP"), true),
                    (Flow::new(Agent("authority"), DNS, 53, "TCP"), true),
                    (Flow::new(Agent("worker-3"), Ip("8.8.8.8"), 53, "UDP"), false),
                    (Flow::new(Ip("192.0.2.10"), Agent("authority"), 8080, "TCP"), false),
                ],
                &wd.path,
            );
        }
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        let left = bed.ok(&[
            "get",
            "deployments,services,networkpolicies,secrets,pods",
            "-n",
            &ns.name,
            "-o",
            "name",
        ]);
        let left: Vec<&str> = left
            .lines()
            .filter(|l| !l.contains("kube-root-ca") && !l.starts_with("secret/provider"))
            .collect();
        assert!(left.is_empty(), "everything removed: {left:?}");
    });
}

/// `secret_env_wo`: the value reaches the Secret but never plan or state;
/// changing `secret_env_wo_version` writes the new value and rolls the pods.
#[test]
fn write_only_secret_env() {
    let Some(bed) = kube_bed("write_only_secret_env") else {
        return;
    };
    for_each_cli("write_only_secret_env", |cli| {
        if cli.version_tuple() < (1, 11, 0) {
            eprintln!(
                "{}: no write-only attributes; secret_env_wo is not exercised",
                cli.label()
            );
            return;
        }
        let wd = Workdir::new(cli, "agent-wo");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "agentwo", &wd.path);
        let tf = |value: &str, version: u32| {
            format!(
                r#"{HEADER}
resource "selfhost_agent" "wo" {{
  kubeconfig            = file("{kubeconfig}")
  namespace             = "{}"
  name                  = "wo"
  image                 = "{IMAGE}"
  replicas              = 1
  secret_env_wo         = {{ API_KEY = "{value}" }}
  secret_env_wo_version = {version}
}}
"#,
                ns.name
            )
        };
        wd.write("main.tf", &tf("wo-first-value", 1));
        wd.init();
        apply(&wd);
        assert_eq!(
            bed.secret_value(&ns.name, "wo-env", "API_KEY").as_deref(),
            Some("wo-first-value")
        );
        let state = std::fs::read_to_string(wd.path.join("terraform.tfstate")).expect("local state");
        assert!(!state.contains("wo-first-value"), "write-only value in state");
        expect_empty_plan(&wd, "after create");
        let digest = |bed: &KubeBed| {
            get(bed, "deployment", &ns.name, "wo")["spec"]["template"]["metadata"]["annotations"]
                ["selfhost.dev/inputs-digest"]
                .clone()
        };
        let before = digest(&bed);
        wd.write("main.tf", &tf("wo-second-value", 2));
        apply(&wd);
        assert_eq!(
            bed.secret_value(&ns.name, "wo-env", "API_KEY").as_deref(),
            Some("wo-second-value")
        );
        assert_ne!(digest(&bed), before, "a new version rolls the pods");
        expect_empty_plan(&wd, "after the new version");
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        assert!(bed.get_json("secret", &ns.name, "wo-env").is_none());
    });
}

/// A small agent with a secret env (from the sensitive variable `token`,
/// as users pass secrets), read with `kubeconfig_path`.
fn small_agent(kubeconfig_path: &str, ns: &str, name: &str) -> String {
    format!(
        r#"{HEADER}
variable "token" {{
  type      = string
  sensitive = true
}}

resource "selfhost_agent" "a" {{
  kubeconfig = file("{kubeconfig_path}")
  namespace  = "{ns}"
  name       = "{name}"
  image      = "{IMAGE}"
  replicas   = 1
  secret_env = {{ TOKEN = var.token }}
}}
"#
    )
}

/// Apply must fail; its output (whitespace collapsed: the CLI wraps
/// diagnostics) must contain every one of `needles`.
fn expect_apply_error(wd: &Workdir, needles: &[&str]) {
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(o.code, Some(0), "apply must fail:\n{o}");
    let text = o.output().split_whitespace().collect::<Vec<_>>().join(" ");
    for n in needles {
        assert!(text.contains(n), "the error must contain {n:?}:\n{o}");
    }
    assert!(!text.contains(SECRET_VALUE), "the secret leaked into a diagnostic");
}

#[test]
fn agent_refusals_say_what_and_why() {
    let Some(bed) = kube_bed("agent_refusals_say_what_and_why") else {
        return;
    };
    for_each_cli("agent_refusals_say_what_and_why", |cli| {
        let mut wd = Workdir::new(cli, "agent-refuse");
        wd.set_env("TF_VAR_token", SECRET_VALUE);
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "agentrefuse", &wd.path);

        // 403: a ServiceAccount without any RBAC.
        let nobody = wd.path.join("nobody.kubeconfig");
        std::fs::write(&nobody, bed.service_account_kubeconfig(&ns.name, "nobody", None)).expect("write kubeconfig");
        wd.write("main.tf", &small_agent(&nobody.display().to_string(), &ns.name, "a"));
        wd.init();
        expect_apply_error(
            &wd,
            &[
                "Forbidden by the Kubernetes API server",
                &format!("apply of Secret {}/a-env", ns.name),
                "cannot patch resource \"secrets\"",
                "RBAC",
            ],
        );
        let _ = wd.run(&["state", "rm", "selfhost_agent.a"]);

        // 422: the agent's Secret name is taken by a Secret of another
        // (immutable) type.
        bed.ok(&[
            "create",
            "secret",
            "generic",
            "b-env",
            "-n",
            &ns.name,
            "--type",
            "example.com/custom",
            "--from-literal=x=y",
        ]);
        wd.write("main.tf", &small_agent(&kubeconfig, &ns.name, "b"));
        expect_apply_error(
            &wd,
            &["Refused as invalid by the Kubernetes API server", "422", "immutable"],
        );
        let _ = wd.run(&["state", "rm", "selfhost_agent.a"]);
    });
}
