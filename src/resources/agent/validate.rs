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
