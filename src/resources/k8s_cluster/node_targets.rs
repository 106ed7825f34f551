//! Plan-time checks of the nodes' SSH targets (`control_plane` and
//! `workers`): the same rules as a host's `ssh_connection {}`, so a value
//! pasted by hand (not taken from `selfhost_vps_host.*.ssh`) that holds a
//! space, a newline or a shell word is named before anything connects.
//!
//! Both attributes are objects, and Terraform can point a diagnostic only
//! at the attribute, not inside an object expression: the detail names the
//! field (`workers[1].user: …`). `control_plane.host` is checked with the
//! rest of the cluster settings (it is the API server's endpoint too).

use crate::framework::{AttributePath, Diagnostic, Diagnostics, Value};
use crate::host::validate;

/// Every problem in `control_plane` and `workers` of `config`.
pub fn check(config: &Value) -> Vec<Diagnostic> {
    let mut d = Diagnostics::new();
    let control_plane = config.attr("control_plane");
    target(
        &mut d,
        AttributePath::root("control_plane"),
        "control_plane",
        control_plane,
        false,
    );
    if let Value::List(workers) | Value::Tuple(workers) = config.attr("workers") {
        for (i, w) in workers.iter().enumerate() {
            target(
                &mut d,
                AttributePath::root("workers").index(i as i64),
                &format!("workers[{i}]"),
                w,
                true,
            );
        }
    }
    d.0
}

fn target(d: &mut Diagnostics, path: AttributePath, name: &str, node: &Value, with_host: bool) {
    let field = |f: &str| node.attr(f).as_str().map(str::to_owned);
    let mut problems: Vec<String> = Vec::new();
    if with_host && let Some(h) = field("host") {
        problems.extend(crate::network::address(&h).err().map(|e| format!("{name}.host: {e}")));
    }
    if let Some(u) = field("user") {
        problems.extend(validate::login_name(&u).err().map(|e| format!("{name}.user: {e}")));
    }
    if let Some(k) = field("host_key") {
        problems.extend(validate::public_key(&k).err().map(|e| format!("{name}.host_key: {e}")));
    }
    for p in problems {
        d.attribute_error(path.clone(), "Invalid node connection", format!("{p}."));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Value {
        let ty = crate::resources::k8s_cluster::schema::schema().block.value_type();
        crate::framework::typed::to_value_as(&json, &ty).expect("value")
    }

    fn node(host: &str, user: &str) -> serde_json::Value {
        serde_json::json!({"host": host, "port": 22, "user": user, "host_key": null})
    }

    #[test]
    fn hostile_node_targets_are_named_at_their_attribute() {
        let config = config(serde_json::json!({
            "control_plane": node("203.0.113.10", "root$(id)"),
            "workers": [node("203.0.113.11", "root"), node("x;touch /tmp/pwned", "ops")],
        }));
        let found: Vec<(String, String)> = check(&config)
            .into_iter()
            .map(|d| (format!("{:?}", d.attribute), d.detail))
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .1
                .starts_with("control_plane.user: login user \"root$(id)\" has '$'"),
            "{found:?}"
        );
        assert!(
            found[1]
                .1
                .starts_with("workers[1].host: address \"x;touch /tmp/pwned\" has ';'"),
            "{found:?}"
        );
        assert!(found[1].0.contains("workers") && found[1].0.contains('1'), "{found:?}");
    }

    #[test]
    fn unknown_or_unset_fields_are_left_alone() {
        let config = config(serde_json::json!({
            "control_plane": {"host": "203.0.113.10", "port": 22, "user": null, "host_key": null},
        }));
        assert!(check(&config).is_empty());
    }
}
