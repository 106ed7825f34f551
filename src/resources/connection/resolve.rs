//! A `ssh_connection {}` block plus the provider's `ssh {}` defaults → the SSH
//! layer's connect spec. Precedence: the resource's value, then the
//! provider's, then the built-in default.

use std::time::Duration;

use crate::framework::AttributePath;
use crate::framework::validator::parse_duration;
use crate::sensitive::Sensitive;
use crate::ssh::{Auth, ConnectSpec, DEFAULT_CONNECT_TIMEOUT as ATTEMPT_TIMEOUT, HostKeyPolicy};

use super::model::{BastionConfig, ConnectionConfig, SshDefaults};
use super::schema::DEFAULT_PORT;

/// How long to retry while a host boots when nothing is configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// A problem with the connection settings, at the attribute to fix.
pub type Invalid = (AttributePath, String);

fn port(p: Option<i64>, at: AttributePath) -> Result<u16, Invalid> {
    let p = p.unwrap_or(DEFAULT_PORT);
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or((at, format!("port {p} is not between 1 and 65535")))
}

fn auth(private_key: Option<&String>, agent: Option<bool>, defaults: &SshDefaults) -> Auth {
    let private_key = private_key.or(defaults.private_key.as_ref()).cloned();
    // The agent is used when asked for, or when no key is given at all.
    let agent = agent.or(defaults.agent).unwrap_or(private_key.is_none());
    Auth {
        private_key: private_key.map(Sensitive::new),
        agent,
        agent_socket: None,
    }
}

fn bastion_spec(
    b: &BastionConfig,
    defaults: &SshDefaults,
    policy: &HostKeyPolicy,
    timeout: Duration,
    at: AttributePath,
) -> Result<ConnectSpec, Invalid> {
    Ok(ConnectSpec {
        host: b.host.clone(),
        port: port(b.port, at.attr("port"))?,
        user: b
            .user
            .clone()
            .or_else(|| defaults.user.clone())
            .unwrap_or_else(|| "root".to_owned()),
        auth: auth(b.private_key.as_ref(), b.agent, defaults),
        host_key: policy.clone(),
        bastion: None,
        connect_timeout: ATTEMPT_TIMEOUT,
        retry_for: timeout,
    })
}

/// The connect spec for `c`. `host_key` and `bastion_key` are the policies
/// the caller derived (pinned, recorded in state, or first use);
/// `applying` admits the write-only private key, which only a
/// configuration being applied carries.
pub fn resolve_connection(
    c: &ConnectionConfig,
    defaults: &SshDefaults,
    host_key: &HostKeyPolicy,
    bastion_key: &HostKeyPolicy,
    applying: bool,
) -> Result<ConnectSpec, Invalid> {
    let conn = AttributePath::root("ssh_connection");
    let timeout = match c.connect_timeout.as_ref().or(defaults.connect_timeout.as_ref()) {
        Some(t) => parse_duration(t).map_err(|e| (conn.clone().attr("connect_timeout"), format!("{t:?}: {e}")))?,
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let key = if applying {
        c.private_key_wo.as_ref().or(c.private_key.as_ref())
    } else {
        c.private_key.as_ref()
    };
    let bastion = match c.bastion.as_ref().or(defaults.bastion.as_ref()) {
        Some(b) => Some(Box::new(bastion_spec(
            b,
            defaults,
            bastion_key,
            timeout,
            conn.clone().attr("bastion"),
        )?)),
        None => None,
    };
    Ok(ConnectSpec {
        host: c.host.clone(),
        port: port(c.port, conn.clone().attr("port"))?,
        user: c
            .user
            .clone()
            .or_else(|| defaults.user.clone())
            .unwrap_or_else(|| "root".to_owned()),
        auth: auth(key, c.agent, defaults),
        host_key: host_key.clone(),
        bastion,
        connect_timeout: ATTEMPT_TIMEOUT,
        retry_for: timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnectionConfig {
        ConnectionConfig {
            host: "10.0.0.1".into(),
            port: None,
            user: None,
            private_key: None,
            private_key_wo: Some("WO".into()),
            agent: None,
            host_key: None,
            connect_timeout: None,
            bastion: None,
        }
    }

    #[test]
    fn resource_values_win_over_provider_defaults() {
        let defaults = SshDefaults {
            user: Some("ops".into()),
            private_key: Some("PROVIDER".into()),
            agent: None,
            connect_timeout: Some("30s".into()),
            bastion: Some(BastionConfig {
                host: "jump".into(),
                port: None,
                user: None,
                private_key: None,
                agent: None,
                host_key: None,
            }),
        };
        let p = HostKeyPolicy::FirstUse;
        let s = resolve_connection(&conn(), &defaults, &p, &p, false).unwrap();
        assert_eq!((s.user.as_str(), s.port), ("ops", 22));
        assert_eq!(
            s.auth.private_key.as_ref().map(|k| k.expose().as_str()),
            Some("PROVIDER"),
            "write-only key is only for applies"
        );
        assert!(!s.auth.agent, "a key is given: no agent unless asked");
        assert_eq!(s.retry_for, Duration::from_secs(30));
        assert_eq!(s.bastion.as_ref().map(|b| b.host.as_str()), Some("jump"));
        let s = resolve_connection(&conn(), &defaults, &p, &p, true).unwrap();
        assert_eq!(s.auth.private_key.as_ref().map(|k| k.expose().as_str()), Some("WO"));
        let s = resolve_connection(&conn(), &SshDefaults::default(), &p, &p, false).unwrap();
        assert_eq!(s.user, "root");
        assert!(
            s.auth.agent && s.auth.private_key.is_none(),
            "no key anywhere: the agent"
        );
        let mut bad = conn();
        bad.connect_timeout = Some("soon".into());
        let (at, msg) = resolve_connection(&bad, &SshDefaults::default(), &p, &p, false).unwrap_err();
        assert_eq!(at, AttributePath::root("ssh_connection").attr("connect_timeout"));
        assert!(msg.contains("soon"));
    }
}
