//! The go-plugin handshake: the magic cookie that says a CLI started us, the
//! protocol version both sides speak, and the one line written to stdout
//! that tells the CLI where to connect and which certificate to trust.

use std::fmt;

use base64::Engine as _;

/// Environment variable carrying the magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The cookie value Terraform and OpenTofu both set.
pub const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// Environment variable listing the protocol versions the CLI speaks ("5,6").
pub const PROTOCOL_VERSIONS_KEY: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// go-plugin's own protocol version, the first field of the handshake line.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The plugin protocol versions this provider serves (tfplugin6 only:
/// Terraform 1.0+ and OpenTofu all speak it).
pub const SUPPORTED_PROTOCOL_VERSIONS: &[u32] = &[6];

/// Why the handshake cannot proceed. The Display text is what the user
/// reads on stderr, so it says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// Started by hand, not by a CLI.
    #[error(
        "This binary is a plugin for Terraform/OpenTofu and is not meant to be run directly.\n\
         Terraform or OpenTofu start it themselves: declare the provider in a configuration \
         (required_providers {{ selfhost = {{ source = \"selfhost/selfhost\" }} }}) and run \
         `terraform init` (or `tofu init`), then `terraform plan`.\n\
         Other commands: `terraform-provider-selfhost version`, `terraform-provider-selfhost docs`."
    )]
    NotLaunchedByCli,
    /// The CLI speaks no protocol version we serve.
    #[error(
        "This provider speaks plugin protocol 6 only, but the CLI offered protocol version(s) \
         {offered:?}. Use Terraform 1.0 or newer, or OpenTofu 1.6 or newer."
    )]
    NoCommonVersion {
        /// The CLI's `PLUGIN_PROTOCOL_VERSIONS` as given.
        offered: String,
    },
}

/// Checks the magic cookie from the environment.
///
/// # Errors
/// [`HandshakeError::NotLaunchedByCli`] when it is absent or wrong.
pub fn check_cookie(value: Option<&str>) -> Result<(), HandshakeError> {
    match value {
        Some(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(HandshakeError::NotLaunchedByCli),
    }
}

/// Chooses the highest protocol version both sides speak. An absent or
/// empty list means a legacy client that did not say: go-plugin then serves
/// its default, which for us is 6. Entries that are not numbers are ignored,
/// as go-plugin does.
///
/// # Errors
/// [`HandshakeError::NoCommonVersion`] when the client offers versions but
/// none we serve.
pub fn negotiate_version(offered: Option<&str>) -> Result<u32, HandshakeError> {
    let ours = SUPPORTED_PROTOCOL_VERSIONS.iter().copied().max().unwrap_or(6);
    let Some(list) = offered.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(ours);
    };
    list.split(',')
        .filter_map(|v| v.trim().parse::<u32>().ok())
        .filter(|v| SUPPORTED_PROTOCOL_VERSIONS.contains(v))
        .max()
        .ok_or_else(|| HandshakeError::NoCommonVersion {
            offered: list.to_owned(),
        })
}

/// The line printed on stdout once the server listens:
/// `CORE|APP|NETWORK|ADDRESS|grpc|CERT`, where CERT is the server
/// certificate's DER in standard base64 without padding (empty without TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeLine {
    /// The negotiated plugin protocol version.
    pub protocol_version: u32,
    /// `unix` or `tcp`.
    pub network: &'static str,
    /// Socket path or `host:port`.
    pub address: String,
    /// The server certificate's DER, when serving TLS.
    pub server_cert_der: Option<Vec<u8>>,
}

impl fmt::Display for HandshakeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cert = self
            .server_cert_der
            .as_deref()
            .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
            .unwrap_or_default();
        write!(
            f,
            "{CORE_PROTOCOL_VERSION}|{}|{}|{}|grpc|{cert}",
            self.protocol_version, self.network, self.address
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_must_match_exactly() {
        assert_eq!(check_cookie(Some(MAGIC_COOKIE_VALUE)), Ok(()));
        assert_eq!(check_cookie(None), Err(HandshakeError::NotLaunchedByCli));
        assert_eq!(check_cookie(Some("")), Err(HandshakeError::NotLaunchedByCli));
        assert_eq!(
            check_cookie(Some(&MAGIC_COOKIE_VALUE[1..])),
            Err(HandshakeError::NotLaunchedByCli)
        );
    }

    #[test]
    fn version_negotiation() {
        let cases: &[(Option<&str>, Result<u32, ()>)] = &[
            (Some("5,6"), Ok(6)),
            (Some("6,5"), Ok(6)),
            (Some(" 6 "), Ok(6)),
            (Some("5,6,7"), Ok(6)),
            (Some("x,6"), Ok(6)),
            (None, Ok(6)),
            (Some(""), Ok(6)),
            (Some("4,5"), Err(())),
            (Some("7"), Err(())),
            (Some("junk"), Err(())),
        ];
        for (offered, want) in cases {
            let got = negotiate_version(*offered).map_err(|_| ());
            assert_eq!(&got, want, "offered {offered:?}");
        }
    }

    #[test]
    fn no_common_version_names_what_was_offered() {
        let msg = negotiate_version(Some("4,5")).unwrap_err().to_string();
        assert!(msg.contains("\"4,5\""), "{msg}");
        assert!(msg.contains("protocol 6"), "{msg}");
    }

    #[test]
    fn handshake_line_format() {
        let line = HandshakeLine {
            protocol_version: 6,
            network: "unix",
            address: "/tmp/plugin1/plugin.sock".into(),
            // 4 bytes: standard base64 would end in "==".
            server_cert_der: Some(vec![0xfb, 0xff, 0x00, 0x01]),
        };
        assert_eq!(line.to_string(), "1|6|unix|/tmp/plugin1/plugin.sock|grpc|+/8AAQ");
        let plain = HandshakeLine {
            server_cert_der: None,
            ..line
        };
        assert_eq!(plain.to_string(), "1|6|unix|/tmp/plugin1/plugin.sock|grpc|");
    }
}
