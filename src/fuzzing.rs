//! Entry points for the fuzz targets (`fuzz/`) into parsers that are not
//! public otherwise. Not an API: hidden from the docs, may change any time.

/// The cluster CA (PEM) the `k8s_cluster` resource reads from a kubeconfig.
pub fn ca_certificate(kubeconfig: &str) -> Option<String> {
    crate::resources::ca_certificate(kubeconfig)
}

/// Whether `text` parses as a kubeconfig, as the Kubernetes client builder
/// parses the `kubeconfig` attribute before anything else.
pub fn kubeconfig_parses(text: &str) -> bool {
    kube::config::Kubeconfig::from_yaml(text).is_ok()
}
