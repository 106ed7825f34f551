//! CIDRs (`network::cidr`), port ranges (`network::port_range`, the host
//! firewall's) and network-policy ports (`kube::network_policy::parse_port`):
//! never panic; an accepted CIDR has no host bits, contains its own address
//! and re-parses from its canonical text; an accepted port range has
//! 1 <= low <= high <= 65535 and re-parses from its text; a policy port
//! renders back to the same spec.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use terraform_provider_selfhost::kube::network_policy::parse_port;
use terraform_provider_selfhost::network::{cidr, port_range, protocol};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = cidr(s) {
        let max = if c.addr.is_ipv4() { 32 } else { 128 };
        assert!(c.prefix <= max, "{s:?}: /{}", c.prefix);
        assert!(c.contains(c.addr), "{s:?} does not contain its address");
        assert_eq!(cidr(&c.to_string()), Ok(c), "{s:?} -> {c}");
        let addr: IpAddr = s.split('/').next().unwrap_or(s).parse().expect("the address parsed");
        assert_eq!(addr, c.addr, "{s:?}: host bits were dropped silently");
    }
    if let Ok(r) = port_range(s) {
        assert!(1 <= r.low && r.low <= r.high, "{s:?}: {r:?}");
        assert!(r.contains(r.low) && r.contains(r.high));
        assert_eq!(port_range(&r.to_string()), Ok(r), "{s:?} -> {r}");
    }
    if let Ok(p) = protocol(s) {
        assert_eq!(p.as_str(), s);
    }
    if let Ok(p) = parse_port(s) {
        assert!(p.port >= 1, "{s:?}: {p:?}");
        if let Some(end) = p.end_port {
            assert!(p.port < end, "{s:?}: {p:?}");
        }
        assert!(matches!(p.protocol.as_str(), "TCP" | "UDP" | "SCTP"), "{s:?}");
        let text = match p.end_port {
            Some(end) => format!("{}-{end}/{}", p.port, p.protocol.to_ascii_lowercase()),
            None => format!("{}/{}", p.port, p.protocol),
        };
        assert_eq!(parse_port(&text).as_ref(), Ok(&p), "{s:?} -> {text:?}");
    }
});
