//! Validated network names and values — host names, CIDRs, port ranges,
//! protocols — shared by the host, cluster and Kubernetes layers, none of
//! which owns them. Each type is built only by its parser here, so holding
//! one means the value was checked.

use std::fmt;
use std::net::IpAddr;

use crate::shell::quote;

/// An RFC 1123 host name (lowercase).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

impl Hostname {
    /// The validated value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as one quoted shell word.
    pub fn word(&self) -> String {
        quote(&self.0)
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A transport protocol a firewall rule can allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The name as in configuration and in nft.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A port or an inclusive port range, `1 <= low <= high <= 65535`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    /// First port.
    pub low: u16,
    /// Last port (equal to `low` for a single port).
    pub high: u16,
}

impl PortRange {
    /// Whether `port` is inside the range.
    pub fn contains(&self, port: u16) -> bool {
        self.low <= port && port <= self.high
    }
}

impl fmt::Display for PortRange {
    /// `22` or `30000-32767`: the spelling of the configuration and of nft.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// An IPv4 or IPv6 network with its host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// `ip` for IPv4 networks, `ip6` for IPv6: the nft payload family.
    pub fn nft_family(&self) -> &'static str {
        if self.addr.is_ipv4() { "ip" } else { "ip6" }
    }
}

impl fmt::Display for Cidr {
    /// Canonical `addr/prefix` (IPv6 compressed, lowercase).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An RFC 1123 host name: dot-separated labels of 1–63 lowercase letters,
/// digits and `-`, not starting or ending with `-`, 253 characters at most.
pub fn hostname(s: &str) -> Result<Hostname, String> {
    if s.is_empty() {
        return Err("hostname is empty".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "hostname {s:?} is {} characters long; the limit is 253",
            s.len()
        ));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(format!(
                "hostname {s:?} has an empty label (two dots in a row, or a dot at an end)"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "hostname {s:?}: label {label:?} is {} characters long; the limit is 63",
                label.len()
            ));
        }
        if let Some((i, c)) = label
            .char_indices()
            .find(|&(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
        {
            let hint = if c.is_ascii_uppercase() { "; use lowercase" } else { "" };
            return Err(format!(
                "hostname {s:?}: label {label:?} has {c:?} at position {}; labels hold only lowercase letters, digits and '-'{hint}",
                i + 1
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "hostname {s:?}: label {label:?} must not start or end with '-'"
            ));
        }
    }
    Ok(Hostname(s.to_owned()))
}

/// Where to connect: an IPv4 or IPv6 address, or a DNS name (letters of
/// either case, digits, '-' and '_' in dot-separated labels; a trailing
/// dot is fine). Checked at plan time so that a pasted command, a space or
/// a newline is named at its attribute instead of failing to resolve.
pub fn address(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if s.is_empty() {
        return Err("address is empty".into());
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.len() > 253 {
        return Err(format!(
            "address {s:?} is {} characters long; a DNS name has at most 253",
            s.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "address {s:?} is neither an IP address nor a DNS name (labels are 1 to 63 characters)"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(format!(
                "address {s:?} has {c:?}; write an IP address or a DNS name (letters, digits, '-', '_' and dots)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("address {s:?}: label {label:?} must not start or end with '-'"));
        }
    }
    Ok(())
}

/// An IPv4 or IPv6 network `addr/prefix` with zero host bits. A bare address
/// means that one host (`/32` or `/128`).
pub fn cidr(s: &str) -> Result<Cidr, String> {
    let (addr_s, prefix_s) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr_s
        .parse()
        .map_err(|_| format!("{s:?} is not a CIDR: {addr_s:?} is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_s {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') => n,
            _ => {
                return Err(format!(
                    "{s:?} is not a CIDR: prefix length {p:?} must be a number from 0 to {max}"
                ));
            }
        },
    };
    let net = Cidr { addr, prefix };
    let masked = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    if masked != addr {
        return Err(format!(
            "{s:?} has host bits set after the /{prefix} prefix; did you mean \"{masked}/{prefix}\"?"
        ));
    }
    Ok(net)
}

/// A port `"22"` or an inclusive range `"30000-32767"`, ports 1–65535.
pub fn port_range(s: &str) -> Result<PortRange, String> {
    let one = |p: &str| -> Result<u16, String> {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) && !p.starts_with('+') => Ok(n as u16),
            Ok(_) => Err(format!("port {s:?}: {p} is outside 1-65535")),
            Err(_) => Err(format!(
                "port {s:?}: {p:?} is not a number; write \"22\" or a range \"30000-32767\""
            )),
        }
    };
    let (low, high) = match s.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let p = one(s)?;
            (p, p)
        }
    };
    if low > high {
        return Err(format!("port range {s:?} runs backwards; write \"{high}-{low}\""));
    }
    Ok(PortRange { low, high })
}

/// `tcp` or `udp`.
pub fn protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        _ => Err(format!("protocol {s:?} is not supported; write \"tcp\" or \"udp\"")),
    }
}
