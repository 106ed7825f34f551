//! Checks of `selfhost_agent` that involve more than one attribute, each
//! pointing at the attribute to fix. Values still unknown are skipped (they
//! are checked again when known, at apply).

use std::collections::BTreeSet;

use crate::framework::{AttributePath, Diagnostics, Value};
use crate::kube::agent::{DisruptionBudgetSpec, PodCount};
use crate::kube::drift::quantity;

use super::schema::DISRUPTION_BUDGET;

fn keys(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Map(m) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// Every cross-attribute check of a configuration.
pub fn config(c: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    secrets(c, &mut d);
    ports(c, &mut d);
    resources(c, &mut d);
    autoscaling(c, &mut d);
    disruption_budget(c, &mut d);
    for probe in ["readiness_probe", "liveness_probe"] {
        self::probe(c, probe, &mut d);
    }
    if !c.attr("ingress").is_null()
        && let Value::List(ports) = c.attr("port")
        && ports.is_empty()
    {
        d.attribute_error(
            AttributePath::root("ingress"),
            "Ingress without a port",
            "An ingress routes to the agent's first port: add a `port` block.",
        );
    }
    if let (Some(mount), Some(config_path)) = (
        c.attr("storage").attr("mount_path").as_str(),
        c.attr("config_path").as_str(),
    ) && mount == config_path
        && !c.attr("config_files").is_null()
    {
        d.attribute_error(
            AttributePath::root("storage").attr("mount_path"),
            "Mount paths collide",
            format!("storage.mount_path and config_path are both {mount:?}; give them different directories."),
        );
    }
    d
}

fn secrets(c: &Value, d: &mut Diagnostics) {
    let env = keys(c.attr("env"));
    let secret = keys(c.attr("secret_env"));
    let wo = keys(c.attr("secret_env_wo"));
    for (a, b, at) in [
        (&env, &secret, "secret_env"),
        (&env, &wo, "secret_env_wo"),
        (&secret, &wo, "secret_env_wo"),
    ] {
        for k in a.intersection(b) {
            d.attribute_error(
                AttributePath::root(at).key(k),
                "Environment variable set twice",
                format!("{k} is set in more than one of env, secret_env and secret_env_wo; keep one."),
            );
        }
    }
    if !c.attr("secret_env_wo").is_null() && c.attr("secret_env_wo_version").is_null() {
        d.attribute_error(
            AttributePath::root("secret_env_wo_version"),
            "Missing secret_env_wo_version",
            "Write-only values never show in a plan, so a change of them alone would go unnoticed: set secret_env_wo_version (e.g. 1) and change it whenever the values change.",
        );
    }
}

fn ports(c: &Value, d: &mut Diagnostics) {
    let Value::List(ports) = c.attr("port") else {
        return;
    };
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if let Some(n) = p.attr("name").as_str()
            && !names.insert(n.to_owned())
        {
            d.attribute_error(
                AttributePath::root("port").index(i as i64).attr("name"),
                "Duplicate port name",
                format!("Port name {n:?} is used twice."),
            );
        }
        if let (Some(n), proto) = (p.attr("port").as_i64(), p.attr("protocol").as_str().unwrap_or("TCP"))
            && !numbers.insert((n, proto.to_owned()))
        {
            d.attribute_error(
                AttributePath::root("port").index(i as i64).attr("port"),
                "Duplicate port",
                format!("Port {n}/{proto} is listed twice."),
            );
        }
    }
}

fn resources(c: &Value, d: &mut Diagnostics) {
    let r = c.attr("resources");
    for (req, lim) in [("cpu_request", "cpu_limit"), ("memory_request", "memory_limit")] {
        if let (Some(rq), Some(lm)) = (r.attr(req).as_str(), r.attr(lim).as_str())
            && let (Some(a), Some(b)) = (quantity(rq), quantity(lm))
            && a > b
        {
            d.attribute_error(
                AttributePath::root("resources").attr(req),
                "Request above limit",
                format!("resources.{req} ({rq}) is more than resources.{lim} ({lm}); Kubernetes refuses that."),
            );
        }
    }
}

/// The autoscaler's own ranges are attribute validators; here what
/// involves more than one attribute.
fn autoscaling(c: &Value, d: &mut Diagnostics) {
    let a = c.attr("autoscaling");
    if a.is_null() || a.is_unknown() {
        return;
    }
    let at = AttributePath::root("autoscaling");
    if !c.attr("replicas").is_null() {
        d.attribute_error(
            AttributePath::root("replicas"),
            "Conflicting replica counts",
            "replicas and autoscaling both set the number of pods; with autoscaling the autoscaler keeps it between autoscaling.min_replicas and autoscaling.max_replicas: remove replicas.",
        );
    }
    // Unset: the default, 1.
    let min = match a.attr("min_replicas") {
        Value::Null => Some(1),
        v => v.as_i64(),
    };
    if let (Some(min), Some(max)) = (min, a.attr("max_replicas").as_i64())
        && max < min
    {
        d.attribute_error(
            at.clone().attr("max_replicas"),
            "Maximum below minimum",
            format!("autoscaling.max_replicas ({max}) is less than autoscaling.min_replicas ({min}); raise it or lower min_replicas."),
        );
    }
    if a.attr("cpu_percent").is_null() && a.attr("memory_percent").is_null() {
        d.attribute_error(
            at.clone(),
            "Nothing to scale on",
            "autoscaling needs a target: set cpu_percent, memory_percent or both.",
        );
    }
    // Utilisation is a percentage of the request: without one (or a limit,
    // which the request then defaults to) the autoscaler cannot compute it.
    let r = c.attr("resources");
    if r.is_unknown() {
        return;
    }
    for (percent, kind) in [("cpu_percent", "cpu"), ("memory_percent", "memory")] {
        let (request, limit) = (format!("{kind}_request"), format!("{kind}_limit"));
        if !a.attr(percent).is_null() && r.attr(&request).is_null() && r.attr(&limit).is_null() {
            d.attribute_error(
                at.clone().attr(percent),
                format!("{percent} without a {kind} request"),
                format!(
                    "autoscaling.{percent} is a percentage of the container's {kind} request, and the agent has none: set resources.{request} (or resources.{limit}, which the request then defaults to)."
                ),
            );
        }
    }
}

/// The pods a budget is judged against: the fixed `replicas`, or the
/// autoscaler's fewest (where it rests when idle); `None` when someone else
/// keeps the count or it is not yet known.
fn judged_count(c: &Value) -> Option<(i64, String)> {
    let a = c.attr("autoscaling");
    if a.is_null() {
        let n = c.attr("replicas").as_i64()?;
        return Some((n, format!("replicas = {n}")));
    }
    match a.attr("min_replicas") {
        Value::Null => Some((1, "autoscaling.min_replicas = 1 (the default)".to_owned())),
        v => v.as_i64().map(|n| (n, format!("autoscaling.min_replicas = {n}"))),
    }
}

/// The budget's values are checked by their attribute validators; here
/// exactly one of the two, and whether a drain could ever proceed (a
/// budget that lets no pod go makes every drain, so every in-place
/// upgrade of the cluster, wait until it times out: refused).
fn disruption_budget(c: &Value, d: &mut Diagnostics) {
    let b = c.attr(DISRUPTION_BUDGET);
    if b.is_null() || b.is_unknown() {
        return;
    }
    let at = AttributePath::root(DISRUPTION_BUDGET);
    let (min, max) = (b.attr("min_available"), b.attr("max_unavailable"));
    let set = match (min.is_null(), max.is_null()) {
        (true, true) => {
            d.attribute_error(
                at,
                "Empty disruption budget",
                "disruption_budget needs one of min_available (pods that must stay available while nodes drain) and max_unavailable (pods that may be evicted at once): set one of them, or remove the block.",
            );
            return;
        }
        (false, false) => {
            // An unknown value may still turn out null: judged at apply.
            if !min.is_unknown() && !max.is_unknown() {
                d.attribute_error(
                    at,
                    "Conflicting disruption budget",
                    "min_available and max_unavailable are both set; a PodDisruptionBudget takes one of them: keep one.",
                );
            }
            return;
        }
        (false, true) => "min_available",
        (true, false) => "max_unavailable",
    };
    // Unknown or malformed (the attribute's validator says so): nothing more to judge.
    let Some(Ok(count)) = b.attr(set).as_str().map(PodCount::parse) else {
        return;
    };
    let spec = if set == "min_available" {
        DisruptionBudgetSpec {
            min_available: Some(count),
            max_unavailable: None,
        }
    } else {
        DisruptionBudgetSpec {
            min_available: None,
            max_unavailable: Some(count),
        }
    };
    let path = at.attr(set);
    let what = format!("disruption_budget.{set} = \"{count}\"");
    let drains = "draining a node that runs one of its pods (kubectl drain, or an in-place upgrade of selfhost_k8s_cluster, which drains each node in turn) waits until it times out";
    let one_replica = "With one pod no budget can keep the agent serving through a drain. Run 2 or more pods (then e.g. min_available = \"1\" keeps one serving while the other moves), or remove disruption_budget (the pod is then evicted and started again on another node: a short outage).";
    let Some((n, source)) = judged_count(c) else {
        if spec.never_allows_eviction() {
            d.attribute_error(
                path,
                "Disruption budget blocks every drain",
                format!("{what} lets no pod be evicted, whatever the number of replicas, so {drains}. Let at least one go: e.g. max_unavailable = \"1\" or min_available = \"50%\"."),
            );
        }
        return;
    };
    // Nothing to evict: nothing to judge.
    let Ok(n) = i32::try_from(n) else { return };
    if n <= 0 {
        return;
    }
    let autoscaled = !c.attr("autoscaling").is_null();
    let allowed = spec.evictions_allowed(n);
    if allowed == 0 {
        let fix = match (n, autoscaled) {
            (1, _) => one_replica.to_owned(),
            (_, false) => format!(
                "Let at least one go: e.g. min_available = \"{}\" or max_unavailable = \"1\".",
                n - 1
            ),
            (_, true) => format!(
                "The autoscaler adds pods for load, never for a drain. Let at least one go: e.g. min_available = \"{}\" or max_unavailable = \"1\".",
                n - 1
            ),
        };
        let pods = if n == 1 {
            "the agent's only pod".to_owned()
        } else {
            format!("any of its {n} pods")
        };
        d.attribute_error(
            path,
            "Disruption budget blocks every drain",
            format!("{what} with {source}: the budget never lets {pods} be evicted, so {drains}. {fix}"),
        );
    } else if allowed >= n {
        let fix = if n == 1 {
            one_replica.to_owned()
        } else {
            format!(
                "Keep some serving: e.g. max_unavailable = \"1\" or min_available = \"{}\".",
                n - 1
            )
        };
        d.attribute_warning(
            path,
            "Disruption budget protects nothing",
            format!("{what} with {source}: the budget lets every pod be evicted at once, so a drain may stop the agent. {fix}"),
        );
    }
}

fn probe(c: &Value, name: &str, d: &mut Diagnostics) {
    let p = c.attr(name);
    if p.is_null() || p.is_unknown() {
        return;
    }
    let at = AttributePath::root(name);
    if !p.attr("command").is_null() && !p.attr("http_path").is_null() {
        d.attribute_error(
            at.clone().attr("http_path"),
            "Conflicting probe kinds",
            format!("{name} has both command and http_path; a probe runs one check."),
        );
    }
    if p.attr("command").is_null()
        && p.attr("port").is_null()
        && matches!(c.attr("port"), Value::List(ports) if ports.is_empty())
    {
        d.attribute_error(
            at.attr("port"),
            "Probe without a port",
            format!("{name} checks a port, but the agent has no `port` block: set {name}.port or a command."),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(j: serde_json::Value) -> Value {
        let ty = super::super::schema::schema().value_type();
        crate::framework::codec::json::decode_lenient(j.to_string().as_bytes(), &ty).unwrap()
    }

    fn paths(d: &Diagnostics) -> Vec<String> {
        d.0.iter()
            .filter_map(|x| x.attribute.as_ref().map(|p| p.to_string()))
            .collect()
    }

    #[test]
    fn cross_checks_point_at_the_attribute() {
        let good = value(json!({
            "name": "a", "namespace": "n", "image": "x",
            "env": {"A": "1"}, "secret_env": {"B": "2"},
            "port": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "resources": {"cpu_request": "250m", "cpu_limit": "1"},
            "readiness_probe": {"http_path": "/"},
            "ingress": {"host": "a.example.com"},
            "toleration": []
        }));
        assert!(config(&good).0.is_empty(), "{:?}", config(&good).0);

        let bad = value(json!({
            "name": "a", "namespace": "n", "image": "x",
            "env": {"A": "1"}, "secret_env": {"A": "2"}, "secret_env_wo": {"C": "3"},
            "port": [],
            "resources": {"memory_request": "1Gi", "memory_limit": "512Mi"},
            "readiness_probe": {"http_path": "/", "command": ["true"]},
            "liveness_probe": {"http_path": "/"},
            "ingress": {"host": "a.example.com"},
            "toleration": []
        }));
        let got = paths(&config(&bad));
        for want in [
            "secret_env[\"A\"]",
            "secret_env_wo_version",
            "resources.memory_request",
            "readiness_probe.http_path",
            "liveness_probe.port",
            "ingress",
        ] {
            assert!(got.iter().any(|p| p == want), "{want} in {got:?}");
        }
    }

    fn agent(extra: serde_json::Value) -> Value {
        let mut j = json!({
            "name": "a", "namespace": "n", "image": "x",
            "port": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "resources": {"cpu_request": "250m", "memory_limit": "512Mi"},
            "toleration": []
        });
        for (k, v) in extra.as_object().unwrap() {
            j[k] = v.clone();
        }
        value(j)
    }

    #[test]
    fn autoscaling_checks_point_at_the_attribute() {
        let good = agent(json!({"autoscaling": {"max_replicas": 3, "cpu_percent": 70, "memory_percent": 80}}));
        assert!(config(&good).0.is_empty(), "{:?}", config(&good).0);
        let equal = agent(json!({"autoscaling": {"min_replicas": 3, "max_replicas": 3, "cpu_percent": 70}}));
        assert!(config(&equal).0.is_empty(), "{:?}", config(&equal).0);

        let cases = [
            (
                "replicas together with autoscaling",
                json!({"replicas": 2, "autoscaling": {"max_replicas": 3, "cpu_percent": 70}}),
                "replicas",
            ),
            (
                "max below min",
                json!({"autoscaling": {"min_replicas": 4, "max_replicas": 3, "cpu_percent": 70}}),
                "autoscaling.max_replicas",
            ),
            (
                "no percentage",
                json!({"autoscaling": {"max_replicas": 3}}),
                "autoscaling",
            ),
            (
                "cpu without a cpu request",
                json!({"resources": {"memory_request": "1Gi"}, "autoscaling": {"max_replicas": 3, "cpu_percent": 70}}),
                "autoscaling.cpu_percent",
            ),
            (
                "memory without any resources",
                json!({"resources": null, "autoscaling": {"max_replicas": 3, "memory_percent": 70}}),
                "autoscaling.memory_percent",
            ),
        ];
        for (name, extra, want) in cases {
            let got = paths(&config(&agent(extra)));
            assert_eq!(got, vec![want.to_owned()], "{name}");
        }
    }

    #[test]
    fn autoscaling_not_yet_known_is_checked_at_apply() {
        let mut v = agent(json!({"autoscaling": {"max_replicas": 3}}));
        if let Some(slot) = v.attr_mut("autoscaling") {
            *slot = Value::unknown();
        }
        assert!(config(&v).0.is_empty());
        let mut v = agent(json!({"autoscaling": {"min_replicas": 2, "max_replicas": 3, "cpu_percent": 50}}));
        if let Some(slot) = v.attr_mut("autoscaling").and_then(|a| a.attr_mut("max_replicas")) {
            *slot = Value::unknown();
        }
        assert!(config(&v).0.is_empty(), "{:?}", config(&v).0);
    }

    fn severities(d: &Diagnostics) -> Vec<(String, bool)> {
        d.0.iter()
            .map(|x| {
                (
                    x.attribute.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    x.severity == crate::framework::diagnostics::Severity::Error,
                )
            })
            .collect()
    }

    #[test]
    fn disruption_budget_checks_point_at_the_attribute() {
        // Budgets that let at least one pod go and keep one serving: nothing to say.
        for (name, extra) in [
            (
                "min 1 of 2",
                json!({"replicas": 2, "disruption_budget": {"min_available": "1"}}),
            ),
            (
                "max 1 of 3",
                json!({"replicas": 3, "disruption_budget": {"max_unavailable": "1"}}),
            ),
            (
                "min 50% of 3",
                json!({"replicas": 3, "disruption_budget": {"min_available": "50%"}}),
            ),
            (
                "max 25% of 4",
                json!({"replicas": 4, "disruption_budget": {"max_unavailable": "25%"}}),
            ),
            (
                "autoscaled from 2, min 1",
                json!({"autoscaling": {"min_replicas": 2, "max_replicas": 5, "cpu_percent": 70}, "disruption_budget": {"min_available": "1"}}),
            ),
            (
                "count left to others",
                json!({"disruption_budget": {"min_available": "3"}}),
            ),
            (
                "no pods",
                json!({"replicas": 0, "disruption_budget": {"min_available": "1"}}),
            ),
        ] {
            let d = config(&agent(extra));
            assert!(d.0.is_empty(), "{name}: {:?}", d.0);
        }

        // (name, config, path, error rather than warning, words the detail must hold)
        let cases = [
            (
                "neither",
                json!({"replicas": 2, "disruption_budget": {}}),
                "disruption_budget",
                true,
                "needs one of min_available",
            ),
            (
                "both",
                json!({"replicas": 2, "disruption_budget": {"min_available": "1", "max_unavailable": "1"}}),
                "disruption_budget",
                true,
                "both set",
            ),
            (
                "min_available = replicas",
                json!({"replicas": 2, "disruption_budget": {"min_available": "2"}}),
                "disruption_budget.min_available",
                true,
                "never lets any of its 2 pods be evicted",
            ),
            (
                "min_available above replicas",
                json!({"replicas": 2, "disruption_budget": {"min_available": "5"}}),
                "disruption_budget.min_available",
                true,
                "min_available = \"1\"",
            ),
            (
                "one replica, min_available 1",
                json!({"replicas": 1, "disruption_budget": {"min_available": "1"}}),
                "disruption_budget.min_available",
                true,
                "With one pod no budget can keep the agent serving",
            ),
            (
                "one replica, 50% rounds up to the only pod",
                json!({"replicas": 1, "disruption_budget": {"min_available": "50%"}}),
                "disruption_budget.min_available",
                true,
                "the agent's only pod",
            ),
            (
                "max_unavailable 0",
                json!({"replicas": 3, "disruption_budget": {"max_unavailable": "0"}}),
                "disruption_budget.max_unavailable",
                true,
                "drains each node in turn",
            ),
            (
                "100% with the count left to others",
                json!({"disruption_budget": {"min_available": "100%"}}),
                "disruption_budget.min_available",
                true,
                "whatever the number of replicas",
            ),
            (
                "autoscaled: judged at min_replicas",
                json!({"autoscaling": {"min_replicas": 2, "max_replicas": 5, "cpu_percent": 70}, "disruption_budget": {"min_available": "2"}}),
                "disruption_budget.min_available",
                true,
                "autoscaling.min_replicas = 2",
            ),
            (
                "autoscaled from the default 1",
                json!({"autoscaling": {"max_replicas": 5, "cpu_percent": 70}, "disruption_budget": {"max_unavailable": "0%"}}),
                "disruption_budget.max_unavailable",
                true,
                "(the default)",
            ),
            (
                "max_unavailable = replicas protects nothing",
                json!({"replicas": 2, "disruption_budget": {"max_unavailable": "2"}}),
                "disruption_budget.max_unavailable",
                false,
                "every pod be evicted at once",
            ),
            (
                "one replica with a budget that lets it go",
                json!({"replicas": 1, "disruption_budget": {"max_unavailable": "1"}}),
                "disruption_budget.max_unavailable",
                false,
                "Run 2 or more pods",
            ),
        ];
        for (name, extra, want, error, words) in cases {
            let d = config(&agent(extra));
            assert_eq!(severities(&d), vec![(want.to_owned(), error)], "{name}: {:?}", d.0);
            assert!(
                d.0[0].detail.contains(words),
                "{name}: {words:?} in {:?}",
                d.0[0].detail
            );
        }
    }

    #[test]
    fn disruption_budget_not_yet_known_is_checked_at_apply() {
        let mut v = agent(json!({"replicas": 1, "disruption_budget": {"min_available": "1", "max_unavailable": "1"}}));
        if let Some(slot) = v
            .attr_mut(DISRUPTION_BUDGET)
            .and_then(|b| b.attr_mut("max_unavailable"))
        {
            *slot = Value::unknown();
        }
        assert!(config(&v).0.is_empty(), "{:?}", config(&v).0);
        let mut v = agent(json!({"replicas": 1, "disruption_budget": {"min_available": "1"}}));
        if let Some(slot) = v.attr_mut("replicas") {
            *slot = Value::unknown();
        }
        assert!(config(&v).0.is_empty(), "{:?}", config(&v).0);
        let mut v = agent(json!({"replicas": 1}));
        if let Some(slot) = v.attr_mut(DISRUPTION_BUDGET) {
            *slot = Value::unknown();
        }
        assert!(config(&v).0.is_empty(), "{:?}", config(&v).0);
    }

    #[test]
    fn duplicate_ports() {
        let v = value(json!({
            "port": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "http", "port": 80, "protocol": "TCP"}],
            "toleration": []
        }));
        let got = paths(&config(&v));
        assert!(got.contains(&"port[1].name".to_owned()), "{got:?}");
        assert!(got.contains(&"port[1].port".to_owned()), "{got:?}");
    }
}
