//! The names the cluster's traefik ingress add-on (installed by
//! `selfhost_k8s_cluster`) and the agents routed through it
//! (`selfhost_agent`) must agree on, in one place. A leaf: no imports.

/// The IngressClass of the traefik add-on, made the cluster's default: an
/// Ingress without `ingressClassName` is served by traefik.
pub const TRAEFIK_INGRESS_CLASS: &str = "traefik";

/// The traefik entrypoint for plain HTTP (port 80); the add-on redirects
/// it to [`TRAEFIK_WEBSECURE`]. Also where ACME HTTP-01 challenges arrive.
pub const TRAEFIK_WEB: &str = "web";

/// The traefik entrypoint for HTTPS (port 443).
pub const TRAEFIK_WEBSECURE: &str = "websecure";

/// The traefik ACME certificate resolver (HTTP-01 challenge): traefik
/// obtains, stores and renews the certificate of a router that names it.
pub const ACME_RESOLVER: &str = "acme";

/// Ingress annotation: the traefik entrypoints the Ingress's router listens on.
pub const ROUTER_ENTRYPOINTS_ANNOTATION: &str = "traefik.ingress.kubernetes.io/router.entrypoints";

/// Ingress annotation: the router terminates TLS (`"true"`).
pub const ROUTER_TLS_ANNOTATION: &str = "traefik.ingress.kubernetes.io/router.tls";

/// Ingress annotation: the certificate resolver that obtains the router's certificate.
pub const ROUTER_CERTRESOLVER_ANNOTATION: &str = "traefik.ingress.kubernetes.io/router.tls.certresolver";
