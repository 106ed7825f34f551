//! Checks of `selfhost_agent` that involve more than one attribute, each
//! pointing at the attribute to fix. Values still unknown are skipped (they
//! are checked again when known, at apply).

use std::collections::BTreeSet;

use crate::framework::{AttributePath, Diagnostics, Value};
use crate::kube::drift::quantity;

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
