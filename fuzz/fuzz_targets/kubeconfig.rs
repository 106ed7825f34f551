//! Kubeconfig text (the `kubeconfig` attributes, the admin kubeconfig k3s
//! writes): parsing it, reading the cluster CA from it
//! (`k8s_cluster`'s `ca_certificate`) and pointing it at the API endpoint
//! (`cluster::k3s::kubeconfig_for`) never panic; the rewrite leaves no local
//! address behind, keeps a kubeconfig a kubeconfig and keeps its CA.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_selfhost::cluster::k3s::{LOCAL_SERVER, kubeconfig_for};
use terraform_provider_selfhost::fuzzing::{ca_certificate, kubeconfig_parses};

/// Endpoints as `k8s_cluster` accepts them: an IP address or a DNS name.
const ENDPOINTS: &[&str] = &["10.0.0.1", "fd00::1", "api.example.com", "192.0.2.7", "::1"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let endpoint = ENDPOINTS[usize::from(first) % ENDPOINTS.len()];
    let parses = kubeconfig_parses(text);
    let ca = ca_certificate(text);
    assert!(ca.is_none() || parses, "a CA from text that is no kubeconfig");
    if let Ok(out) = kubeconfig_for(text, endpoint) {
        assert!(!out.contains(LOCAL_SERVER), "{text:?} -> {out:?}");
        if parses {
            assert!(kubeconfig_parses(&out), "{text:?} -> {out:?} no longer parses");
            assert_eq!(ca_certificate(&out), ca, "{text:?} -> {out:?} lost its CA");
        }
    }
});
