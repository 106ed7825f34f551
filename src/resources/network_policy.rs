//! `selfhost_network_policy`: the flows allowed between agents, as one
//! `networking.k8s.io/v1` NetworkPolicy applied server-side, read back for
//! drift on managed fields, imported by `namespace/name`.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sNetworkPolicy;
use serde::Deserialize;

use crate::framework::private::PrivateState;
use crate::framework::resource::{
    ApplyRequest, ApplyResponse, Context, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest,
    ReadResponse, Resource,
};
use crate::framework::schema::{NestedBlock, Nesting};
use crate::framework::typed::decode;
use crate::framework::validator::Check;
use crate::framework::{Attribute, AttributePath, Block, Diagnostics, Schema, Type, Value};
use crate::kube::names::{check_label, check_label_key, check_label_value};
use crate::kube::network_policy::{LAST_APPLIED, PolicySpec, RuleSpec, assign_exceptions, check_cidr, check_port};
use crate::kube::{Deadline, Kube};
use crate::resources::kube_object::{
    DRIFT, common_attributes, diagnose, drift_lines, drift_value, from_last_applied, import_kubeconfig, last_applied,
    parse_import_id, set,
};
use crate::resources::state::kube_clients;

const LIMIT: Duration = Duration::from_secs(120);
const NOT_ANNOTATED: &[&str] = &["kubeconfig", DRIFT];

/// The resource type.
pub struct NetworkPolicy;

#[derive(Deserialize)]
struct PolicyModel {
    kubeconfig: String,
    namespace: String,
    name: String,
    agents: Option<Vec<String>>,
    agent_labels: Option<std::collections::BTreeMap<String, String>>,
    default_deny: Option<Vec<String>>,
    allow_dns: Option<bool>,
    ingress: Option<Vec<IngressModel>>,
    egress: Option<Vec<EgressModel>>,
}

#[derive(Deserialize)]
struct IngressModel {
    from_agents: Option<Vec<String>>,
    from_namespaces: Option<Vec<String>>,
    from_cidrs: Option<Vec<String>>,
    except: Option<Vec<String>>,
    ports: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct EgressModel {
    to_agents: Option<Vec<String>>,
    to_namespaces: Option<Vec<String>>,
    to_cidrs: Option<Vec<String>>,
    except: Option<Vec<String>>,
    ports: Option<Vec<String>>,
}

fn rule(
    agents: &Option<Vec<String>>,
    namespaces: &Option<Vec<String>>,
    cidrs: &Option<Vec<String>>,
    except: &Option<Vec<String>>,
    ports: &Option<Vec<String>>,
) -> RuleSpec {
    RuleSpec {
        agents: agents.clone().unwrap_or_default(),
        namespaces: namespaces.clone().unwrap_or_default(),
        cidrs: cidrs.clone().unwrap_or_default(),
        except: except.clone().unwrap_or_default(),
        ports: ports.clone().unwrap_or_default(),
    }
}

impl PolicyModel {
    fn spec(&self, last_applied: String) -> PolicySpec {
        let deny = self.default_deny.clone().unwrap_or_default();
        PolicySpec {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            agents: self.agents.clone().unwrap_or_default(),
            agent_labels: self.agent_labels.clone().unwrap_or_default(),
            deny_ingress: deny.iter().any(|d| d == "ingress"),
            deny_egress: deny.iter().any(|d| d == "egress"),
            allow_dns: self.allow_dns.unwrap_or(true),
            ingress: self
                .ingress
                .iter()
                .flatten()
                .map(|r| rule(&r.from_agents, &r.from_namespaces, &r.from_cidrs, &r.except, &r.ports))
                .collect(),
            egress: self
                .egress
                .iter()
                .flatten()
                .map(|r| rule(&r.to_agents, &r.to_namespaces, &r.to_cidrs, &r.except, &r.ports))
                .collect(),
            last_applied: Some(last_applied),
        }
    }
}

fn rule_block(name: &str, dir: &str, what: &str) -> NestedBlock {
    let list = |n: String, d: String| {
        Attribute::of_type(&n, Type::list(Type::String))
            .optional()
            .description(&d)
    };
    let (verb, peer) = if dir == "from" {
        ("from", "sources")
    } else {
        ("to", "destinations")
    };
    NestedBlock::new(
        name,
        Nesting::List,
        Block::new()
            .description(what)
            .attribute(
                list(
                    format!("{dir}_agents"),
                    format!("Agents (by name) of this namespace allowed {verb}."),
                )
                .validator(Check::values("Invalid agent name", "must be RFC 1123 labels", check_label)),
            )
            .attribute(
                list(
                    format!("{dir}_namespaces"),
                    format!("Namespaces (by name) whose every pod is allowed {verb}."),
                )
                .validator(Check::values("Invalid namespace", "must be RFC 1123 labels", check_label)),
            )
            .attribute(
                list(format!("{dir}_cidrs"), format!("IP networks allowed {verb}, e.g. \"10.0.0.0/8\"."))
                    .validator(Check::values("Invalid CIDR", "must be CIDRs", check_cidr)),
            )
            .attribute(
                list(
                    "except".to_owned(),
                    format!("Networks inside the {dir}_cidrs that are not allowed."),
                )
                .validator(Check::values("Invalid CIDR", "must be CIDRs", check_cidr)),
            )
            .attribute(
                list(
                    "ports".to_owned(),
                    format!(
                        "Ports allowed, e.g. \"8080/tcp\", \"53/udp\", \"8000-8100/tcp\" (\"443\" means TCP); every port when unset. With no {peer} set, any peer may use them."
                    ),
                )
                .validator(Check::values("Invalid port", "must be ports such as \"8080/tcp\"", check_port)),
            ),
    )
}

fn schema() -> Schema {
    let block = common_attributes(
        Block::new().description(
            "Allowed flows between agents, as a NetworkPolicy (`networking.k8s.io/v1`). Once a direction is isolated (denied by default, or given allow rules) only the listed flows pass; the cluster's CNI must enforce NetworkPolicy.",
        ),
        "NetworkPolicy",
    )
    .attribute(
        Attribute::of_type("agents", Type::list(Type::String))
            .optional()
            .description("Agents (by name) the policy applies to; with `agent_labels` also unset, every pod of the namespace.")
            .validator(Check::values("Invalid agent name", "must be RFC 1123 labels", check_label)),
    )
    .attribute(
        Attribute::of_type("agent_labels", Type::map(Type::String))
            .optional()
            .description("Apply to the pods carrying all these labels (with `agents`: both must match).")
            .validator(Check::keys("Invalid label key", "must be label keys", check_label_key))
            .validator(Check::values("Invalid label value", "must be label values", check_label_value)),
    )
    .attribute(
        Attribute::of_type("default_deny", Type::list(Type::String))
            .optional()
            .description("Directions denied unless allowed by a rule: \"ingress\", \"egress\".")
            .validator(Check::values(
                "Invalid direction",
                "must be \"ingress\" or \"egress\"",
                |s| match s {
                    "ingress" | "egress" => Ok(()),
                    _ => Err(format!("{s:?} is neither \"ingress\" nor \"egress\"")),
                },
            )),
    )
    .attribute(
        Attribute::bool("allow_dns")
            .optional()
            .computed()
            .default_value(true)
            .description(
                "Keep DNS (port 53, UDP and TCP, to kube-dns in kube-system only) open when egress is isolated (default true).",
            ),
    )
    .block(rule_block("ingress", "from", "Traffic allowed in, from any of the listed peers, on the listed ports."))
    .block(rule_block("egress", "to", "Traffic allowed out, to any of the listed peers, on the listed ports."));
    Schema::new(0, block)
}

/// Exceptions must lie inside one of their rule's networks.
fn validate_rules(config: &Value, block: &str, dir: &str, d: &mut Diagnostics) {
    let Value::List(rules) = config.attr(block) else {
        return;
    };
    for (i, r) in rules.iter().enumerate() {
        let strings = |v: &Value| -> Option<Vec<String>> {
            match v {
                Value::List(items) => items.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
                Value::Null => Some(Vec::new()),
                _ => None,
            }
        };
        let (Some(cidrs), Some(except)) = (strings(r.attr(&format!("{dir}_cidrs"))), strings(r.attr("except"))) else {
            continue;
        };
        if except.is_empty() || cidrs.iter().chain(&except).any(|c| check_cidr(c).is_err()) {
            continue;
        }
        if let Err(e) = assign_exceptions(&cidrs, &except) {
            d.attribute_error(
                AttributePath::root(block).index(i as i64).attr("except"),
                "Exception outside the allowed networks",
                format!("{e}."),
            );
        }
    }
}

fn spec_of(state: &Value, diags: &mut Diagnostics) -> Option<(PolicyModel, PolicySpec)> {
    let model = decode::<PolicyModel>(state, "state", diags)?;
    match last_applied(&schema(), state, NOT_ANNOTATED, &[]) {
        Ok(a) => {
            let spec = model.spec(a);
            Some((model, spec))
        }
        Err(e) => {
            diags.error(
                "Unencodable state",
                format!("{e}. This is a bug in the provider; please report it."),
            );
            None
        }
    }
}

fn fill_computed(v: &mut Value) {
    let id = match (v.attr("namespace").as_str(), v.attr("name").as_str()) {
        (Some(ns), Some(name)) => Value::from(format!("{ns}/{name}")),
        _ => Value::unknown(),
    };
    set(v, "id", id);
    set(v, DRIFT, drift_value(Vec::new()));
}

async fn client(ctx: &Context, kubeconfig: &str, diags: &mut Diagnostics) -> Option<Kube> {
    match kube_clients(ctx).client(kubeconfig).await {
        Ok(k) => Some(k),
        Err(e) => {
            diagnose(&e, Some(AttributePath::root("kubeconfig")), diags);
            None
        }
    }
}

impl NetworkPolicy {
    async fn apply(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse::default();
        let mut state = req.planned.clone();
        fill_computed(&mut state);
        let Some((model, spec)) = spec_of(&state, &mut resp.diagnostics) else {
            return resp;
        };
        let policy = match spec.render() {
            Ok(p) => p,
            Err(e) => {
                resp.diagnostics.error("Invalid network policy", format!("{e}."));
                resp.state = req.prior;
                return resp;
            }
        };
        let Some(kube) = client(ctx, &model.kubeconfig, &mut resp.diagnostics).await else {
            resp.state = req.prior;
            return resp;
        };
        let dl = Deadline::new(&ctx.cancel, LIMIT);
        match kube.apply(&policy, &dl).await {
            Ok(_) => {
                tracing::info!(policy = %format!("{}/{}", spec.namespace, spec.name), "applied the NetworkPolicy");
                resp.state = state;
            }
            Err(e) => {
                diagnose(&e, None, &mut resp.diagnostics);
                // A refused create made nothing; a refused update left the old policy.
                resp.state = req.prior;
            }
        }
        resp
    }
}

#[async_trait]
impl Resource for NetworkPolicy {
    fn type_name(&self) -> &'static str {
        "selfhost_network_policy"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        validate_rules(config, "ingress", "from", &mut d);
        validate_rules(config, "egress", "to", &mut d);
        d
    }

    async fn modify_plan(&self, _ctx: &Context, _req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if !resp.planned.is_null() {
            fill_computed(&mut resp.planned);
        }
    }

    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.apply(ctx, req).await
    }

    async fn update(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.apply(ctx, req).await
    }

    async fn read(&self, ctx: &Context, req: ReadRequest) -> ReadResponse {
        let mut resp = ReadResponse {
            state: req.state,
            private: req.private,
            diagnostics: Diagnostics::new(),
        };
        let Some((model, spec)) = spec_of(&resp.state, &mut resp.diagnostics) else {
            return resp;
        };
        let desired = match spec.render() {
            Ok(p) => p,
            Err(e) => {
                resp.diagnostics
                    .error("Invalid network policy in state", format!("{e}."));
                return resp;
            }
        };
        let Some(kube) = client(ctx, &model.kubeconfig, &mut resp.diagnostics).await else {
            return resp;
        };
        let dl = Deadline::new(&ctx.cancel, LIMIT);
        match kube.get::<K8sNetworkPolicy>(&spec.namespace, &spec.name, &dl).await {
            Ok(Some(live)) => {
                let lines = drift_lines("NetworkPolicy", &spec.name, &desired, Some(&live));
                set(&mut resp.state, DRIFT, drift_value(lines));
            }
            Ok(None) => resp.state = Value::Null,
            Err(e) => diagnose(&e, None, &mut resp.diagnostics),
        }
        resp
    }

    async fn delete(&self, ctx: &Context, state: Value, _private: PrivateState) -> Diagnostics {
        let mut diags = Diagnostics::new();
        let Some(model) = decode::<PolicyModel>(&state, "state", &mut diags) else {
            return diags;
        };
        let Some(kube) = client(ctx, &model.kubeconfig, &mut diags).await else {
            return diags;
        };
        let dl = Deadline::new(&ctx.cancel, LIMIT);
        if let Err(e) = kube
            .delete_and_wait::<K8sNetworkPolicy>(&model.namespace, &model.name, &dl)
            .await
        {
            diagnose(&e, None, &mut diags);
        }
        diags
    }

    /// Import `namespace/name`, its configuration read back from the
    /// policy's last-applied annotation, the kubeconfig from `KUBECONFIG`.
    async fn import(&self, ctx: &Context, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        let result = async {
            let (ns, name) = parse_import_id(id)?;
            let kubeconfig = import_kubeconfig()?;
            let mut d = Diagnostics::new();
            let kube = client(ctx, &kubeconfig, &mut d).await.ok_or_else(|| d.clone())?;
            let dl = Deadline::new(&ctx.cancel, LIMIT);
            let what = format!("NetworkPolicy {ns}/{name}");
            let live = match kube.get::<K8sNetworkPolicy>(&ns, &name, &dl).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    d.error("Network policy not found", format!("There is no {what} to import."));
                    return Err(d);
                }
                Err(e) => {
                    diagnose(&e, None, &mut d);
                    return Err(d);
                }
            };
            let annotation = live.metadata.annotations.as_ref().and_then(|a| a.get(LAST_APPLIED));
            let mut state = from_last_applied(&schema(), annotation, &what)?;
            set(&mut state, "kubeconfig", Value::from(kubeconfig));
            fill_computed(&mut state);
            Ok::<Value, Diagnostics>(state)
        }
        .await;
        match result {
            Ok(state) => resp.state = state,
            Err(d) => resp.diagnostics = d,
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_well_formed() {
        assert!(schema().check().is_empty(), "{:?}", schema().check());
    }

    #[test]
    fn exceptions_outside_their_networks_point_at_except() {
        let ty = schema().value_type();
        let v = crate::framework::codec::json::decode_lenient(
            br#"{"egress": [{"to_cidrs": ["10.0.0.0/8"], "except": ["192.168.0.0/16"]}], "ingress": []}"#,
            &ty,
        )
        .unwrap();
        let mut d = Diagnostics::new();
        validate_rules(&v, "egress", "to", &mut d);
        assert_eq!(
            d.0.iter()
                .filter_map(|x| x.attribute.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>(),
            vec!["egress[0].except"]
        );
    }
}
