//! The CNI manifests the cluster applies: flannel from the bundle (or its
//! release), its network set to the cluster's pod CIDR.

use crate::network::Cidr;

/// flannel's default network, as its release manifest writes it.
const FLANNEL_DEFAULT: &str = "\"Network\": \"10.244.0.0/16\"";

/// The flannel manifest with its `net-conf.json` network set to `pod_cidr`.
///
/// # Errors
/// When the manifest does not hold flannel's default network exactly once
/// (a manifest from an unknown flannel release).
pub fn flannel_manifest(manifest: &str, pod_cidr: &Cidr) -> Result<String, String> {
    match manifest.matches(FLANNEL_DEFAULT).count() {
        1 => Ok(manifest.replace(FLANNEL_DEFAULT, &format!("\"Network\": \"{pod_cidr}\""))),
        n => Err(format!(
            "the flannel manifest holds {n} net-conf networks ({FLANNEL_DEFAULT}), expected exactly one"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network as validate;

    #[test]
    fn the_network_follows_the_pod_cidr() {
        let m = "data:\n  net-conf.json: |\n    {\"Network\": \"10.244.0.0/16\", \"Backend\": {\"Type\": \"vxlan\"}}\n";
        let cidr = validate::cidr("10.42.0.0/16").expect("cidr");
        let out = flannel_manifest(m, &cidr).expect("one network");
        assert!(out.contains("{\"Network\": \"10.42.0.0/16\", \"Backend\""), "{out}");
        assert!(flannel_manifest("kind: DaemonSet\n", &cidr).is_err());
    }
}
