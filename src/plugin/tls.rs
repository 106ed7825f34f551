//! Automatic mutual TLS as go-plugin does it: the CLI hands us its own
//! certificate in `PLUGIN_CLIENT_CERT`; we make a fresh server certificate,
//! print it in the handshake line, and accept exactly one client: the holder
//! of the key of that certificate.
//!
//! Why a custom client verifier: the CLI's certificate is self-signed with
//! `IsCA: true`, which webpki refuses as an end-entity certificate, and it
//! uses ECDSA P-521 with SHA-512, which only the aws-lc-rs provider
//! verifies. We pin the exact DER and still check the handshake signature,
//! so a peer that merely replays the public certificate is refused.

use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, ServerConfig, SignatureScheme};

/// Environment variable with the CLI's client certificate (PEM).
pub const CLIENT_CERT_KEY: &str = "PLUGIN_CLIENT_CERT";

/// Validity of the server certificate: go-plugin uses 30 years; the CLI
/// only checks the certificate it was just handed, so the span is moot.
const CERT_VALIDITY: time::Duration = time::Duration::days(30 * 365);

/// Errors while setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// No client certificate and plaintext was not asked for.
    #[error(
        "{CLIENT_CERT_KEY} is not set, so the CLI cannot be authenticated. Terraform and OpenTofu \
         always set it when they start the provider; to serve without TLS for debugging, pass \
         --insecure-plaintext explicitly."
    )]
    ClientCertMissing,
    /// The variable holds no PEM certificate.
    #[error("{CLIENT_CERT_KEY} does not hold a PEM certificate")]
    ClientCertInvalid(#[source] rustls::pki_types::pem::Error),
    /// rcgen could not make the server certificate.
    #[error("cannot generate the server certificate")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("cannot build the TLS configuration")]
    Config(#[from] TlsError),
}

/// The CLI's certificate from the environment value, if there is one.
///
/// # Errors
/// [`TlsSetupError::ClientCertMissing`] when absent (or empty) and plaintext
/// is not explicitly allowed; [`TlsSetupError::ClientCertInvalid`] when it is
/// not PEM.
pub fn client_cert_from_env(
    value: Option<&str>,
    allow_plaintext: bool,
) -> Result<Option<CertificateDer<'static>>, TlsSetupError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(pem) => CertificateDer::from_pem_slice(pem.as_bytes())
            .map(Some)
            .map_err(TlsSetupError::ClientCertInvalid),
        None if allow_plaintext => Ok(None),
        None => Err(TlsSetupError::ClientCertMissing),
    }
}

/// A freshly generated server certificate and its key.
pub struct ServerIdentity {
    /// DER of the certificate, printed in the handshake line.
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl ServerIdentity {
    /// Generates an ECDSA P-256 certificate for `localhost` (the name the
    /// CLI verifies), valid from a minute ago to absorb clock skew.
    ///
    /// It is deliberately not a CA: a self-signed leaf in the client's
    /// trust pool is accepted by Go's verifier as is, and a CA certificate
    /// used as a leaf is refused by webpki-based clients.
    ///
    /// # Errors
    /// When key generation or signing fails.
    pub fn generate() -> Result<Self, TlsSetupError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "localhost");
        dn.push(rcgen::DnType::OrganizationName, "terraform-provider-selfhost");
        params.distinguished_name = dn;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + CERT_VALIDITY;
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&key)?;
        Ok(ServerIdentity {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }
}

/// The rustls provider used on both sides: aws-lc-rs, which verifies
/// P-521/SHA-512 signatures (ring does not).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server configuration: our certificate, the pinned client certificate
/// required, ALPN `h2` (grpc-go in newer CLIs insists on it).
///
/// # Errors
/// When rustls refuses the key or the protocol versions.
pub fn server_config(
    identity: &ServerIdentity,
    client_cert: CertificateDer<'static>,
) -> Result<ServerConfig, TlsSetupError> {
    let provider = crypto_provider();
    let verifier = PinnedClientCert::new(client_cert, &provider);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![identity.cert.clone()],
            PrivateKeyDer::Pkcs8(identity.key.clone_key()),
        )?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Accepts exactly one client certificate, byte for byte, and requires the
/// client to prove it holds the key.
#[derive(Debug)]
pub struct PinnedClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCert {
    /// A verifier for `expected`, checking signatures with `provider`'s algorithms.
    pub fn new(expected: CertificateDer<'static>, provider: &CryptoProvider) -> Self {
        PinnedClientCert {
            expected,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// Refuses any certificate other than the pinned one, so a signature
    /// check can never succeed with a different key.
    fn check_pinned(&self, cert: &CertificateDer<'_>) -> Result<(), TlsError> {
        if cert.as_ref() == self.expected.as_ref() {
            Ok(())
        } else {
            Err(TlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // No CA names: the CLI has exactly one certificate and sends it anyway.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        self.check_pinned(end_entity)?;
        if !intermediates.is_empty() {
            return Err(TlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.check_pinned(cert)?;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.check_pinned(cert)?;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_client_cert_refuses_unless_plaintext_is_explicit() {
        assert!(matches!(
            client_cert_from_env(None, false),
            Err(TlsSetupError::ClientCertMissing)
        ));
        assert!(matches!(
            client_cert_from_env(Some("  "), false),
            Err(TlsSetupError::ClientCertMissing)
        ));
        assert!(matches!(client_cert_from_env(None, true), Ok(None)));
        assert!(matches!(
            client_cert_from_env(Some("not pem"), true),
            Err(TlsSetupError::ClientCertInvalid(_))
        ));
    }

    #[test]
    fn client_cert_pem_is_parsed_to_its_der() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let got = client_cert_from_env(Some(&cert.pem()), false).unwrap().unwrap();
        assert_eq!(got.as_ref(), cert.der().as_ref());
    }

    #[test]
    fn pinned_verifier_accepts_only_the_pinned_der() {
        let provider = crypto_provider();
        let make = || {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
            rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .der()
                .clone()
        };
        let (pinned, other) = (make(), make());
        let v = PinnedClientCert::new(pinned.clone(), &provider);
        assert!(v.client_auth_mandatory());
        assert!(v.root_hint_subjects().is_empty());
        assert!(v.verify_client_cert(&pinned, &[], UnixTime::now()).is_ok());
        assert!(v.verify_client_cert(&other, &[], UnixTime::now()).is_err());
        assert!(
            v.supported_verify_schemes()
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
        );
    }

    #[test]
    fn server_identity_builds_a_server_config() {
        let id = ServerIdentity::generate().unwrap();
        let client = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let config = server_config(&id, client.der().clone()).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    }
}
