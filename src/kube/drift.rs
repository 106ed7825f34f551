//! Drift judged only on what this provider manages: the fields present in
//! the object it applies. Server defaults, status, and other writers'
//! labels, annotations or fields are not in that object and never count.
//! Pure: no I/O.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use serde_json::Value as Json;

/// Paths (`spec.template.spec.containers[0].image`) where `live` differs
/// from `desired`, looking only at what `desired` sets. Lists compare
/// element by element; resource quantities compare by value ("1000m" is
/// "1", as the API server canonicalises them).
pub fn drift_paths(desired: &Json, live: &Json) -> Vec<String> {
    let mut out = Vec::new();
    walk("", desired, live, false, &mut out);
    out
}

fn walk(path: &str, desired: &Json, live: &Json, quantities: bool, out: &mut Vec<String>) {
    match (desired, live) {
        (Json::Object(d), Json::Object(l)) => {
            for (k, dv) in d {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let q = quantities || k == "requests" || k == "limits";
                match l.get(k) {
                    Some(lv) => walk(&p, dv, lv, q, out),
                    None if is_empty(dv) => {}
                    None => out.push(p),
                }
            }
        }
        (Json::Array(d), Json::Array(l)) => {
            if d.len() != l.len() {
                out.push(path.to_owned());
                return;
            }
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                walk(&format!("{path}[{i}]"), dv, lv, quantities, out);
            }
        }
        (Json::String(d), Json::String(l)) if quantities => {
            if !same_quantity(d, l) {
                out.push(path.to_owned());
            }
        }
        (d, l) => {
            if d != l && !(is_empty(d) && is_empty(l)) {
                out.push(path.to_owned());
            }
        }
    }
}

/// `{}`, `[]`, `false` and null that the server may drop.
fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Object(m) => m.is_empty(),
        Json::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    a == b || matches!((quantity(a), quantity(b)), (Some(x), Some(y)) if x == y)
}

/// The largest decimal exponent (`1e64`) a quantity may have.
const MAX_EXPONENT: i64 = 64;

/// The value of a Kubernetes quantity ("250m", "1.5", "512Mi", "1G", "1e3").
pub fn quantity(s: &str) -> Option<BigDecimal> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n = BigDecimal::from_str(num).ok()?;
    let pow = |base: u64, exp: u32| BigDecimal::from(base.pow(exp));
    let factor = match suffix {
        "" => BigDecimal::from(1),
        "m" => BigDecimal::from_str("0.001").ok()?,
        "k" => pow(1000, 1),
        "M" => pow(1000, 2),
        "G" => pow(1000, 3),
        "T" => pow(1000, 4),
        "P" => pow(1000, 5),
        "E" => pow(1000, 6),
        "Ki" => pow(1024, 1),
        "Mi" => pow(1024, 2),
        "Gi" => pow(1024, 3),
        "Ti" => pow(1024, 4),
        "Pi" => pow(1024, 5),
        "Ei" => pow(1024, 6),
        e if e.starts_with(['e', 'E']) => {
            // Bounded (seen writing fuzz/quantity): `e-9223372036854775808`
            // overflowed the negation, and `1e999999999999` made every
            // comparison with another quantity build 10^999999999999 and
            // hang the plan. Kubernetes keeps int64 nano units anyway
            // (1e-9 to 9.2e18), so ±64 loses nothing real.
            let exp: i64 = e[1..]
                .parse()
                .ok()
                .filter(|x| (-MAX_EXPONENT..=MAX_EXPONENT).contains(x))?;
            BigDecimal::new(1.into(), -exp)
        }
        _ => return None,
    };
    Some(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn huge_exponents_are_refused_not_compared() {
        assert_eq!(quantity("1e-9223372036854775808"), None);
        assert_eq!(quantity("1e999999999999"), None);
        assert_eq!(quantity("1E-65"), None);
        assert_eq!(quantity("1e64"), quantity("1e64"));
        assert!(quantity("1e3") == quantity("1k"));
        assert!(!same_quantity("1e999999999999", "1"));
    }

    #[test]
    fn only_managed_fields_count() {
        let desired = json!({
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "terraform-provider-selfhost"}},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "img:1",
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}]}}}
        });
        // Server defaults, status, another writer's annotation and label: no drift.
        let live = json!({
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "terraform-provider-selfhost", "team": "x"},
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "a", "image": "img:1",
                "imagePullPolicy": "IfNotPresent",
                "resources": {"limits": {"cpu": "1000m", "memory": "0.5Gi"}}}], "dnsPolicy": "ClusterFirst"}}},
            "status": {"readyReplicas": 1}
        });
        assert_eq!(drift_paths(&desired, &live), Vec::<String>::new());
    }

    #[test]
    fn edits_of_managed_fields_are_drift() {
        let desired = json!({"spec": {"containers": [{"image": "img:1", "args": ["a"]}], "labels": {"k": "v"}}});
        let live = json!({"spec": {"containers": [{"image": "img:2", "args": ["a", "b"]}], "labels": {}}});
        assert_eq!(
            drift_paths(&desired, &live),
            vec!["spec.containers[0].args", "spec.containers[0].image", "spec.labels.k"]
        );
    }

    #[test]
    fn quantities() {
        for (a, b) in [
            ("1", "1000m"),
            ("0.5Gi", "512Mi"),
            ("1k", "1000"),
            ("1e3", "1k"),
            ("250m", "0.25"),
        ] {
            assert!(same_quantity(a, b), "{a} = {b}");
        }
        assert!(!same_quantity("1", "2"));
        assert!(quantity("12x").is_none());
    }
}
