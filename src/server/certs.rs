//! Client certificates (mutual TLS, `--tls-client-ca`): the TLS layer verifies a client's certificate
//! chain against the configured CA bundle (signature, validity dates, key usage); the startup handler
//! then requires TLS and a certificate on every connection, takes an identity from the certificate
//! (its subject CN, or a subjectAltName of a configured kind), maps it to a role (itself, or through a
//! map file), and authenticates the connection as that role with no password, as PostgreSQL's `cert`
//! method does. The certificate's SHA-256 fingerprint goes into every provenance record of the session.

use pgwire::tokio::tokio_rustls::rustls;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The DER of the end-entity certificate a TLS client presented (a session extension, set when the
/// connection's TLS handshake completes).
pub struct ClientCert(pub Vec<u8>);

impl ClientCert {
    /// SHA-256 of the DER certificate, lowercase hex (`openssl x509 -noout -fingerprint -sha256`
    /// without the colons).
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.0))
    }
}

/// Which part of a certificate names the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The subject's common name (PostgreSQL's `cert` method).
    Cn,
    /// A subjectAltName dNSName.
    Dns,
    /// A subjectAltName rfc822Name (email).
    Email,
    /// A subjectAltName URI.
    Uri,
}

impl std::str::FromStr for Identity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cn" => Ok(Identity::Cn),
            "dns" => Ok(Identity::Dns),
            "email" => Ok(Identity::Email),
            "uri" => Ok(Identity::Uri),
            _ => Err(format!("unknown certificate identity {s:?} (expected cn, dns, email or uri)")),
        }
    }
}

impl Identity {
    fn name(self) -> &'static str {
        match self {
            Identity::Cn => "subject CN",
            Identity::Dns => "subjectAltName DNS name",
            Identity::Email => "subjectAltName email",
            Identity::Uri => "subjectAltName URI",
        }
    }
}

/// How client certificates authenticate.
#[derive(Debug, Clone)]
pub struct CertAuth {
    pub identity: Identity,
    /// Identity → role (`--tls-client-map`); without one, the identity is the role's name.
    pub map: Option<HashMap<String, String>>,
}

impl CertAuth {
    /// Read a map file: one `IDENTITY ROLE` pair per line (whitespace-separated, the identity may be
    /// quoted with "…" when it holds spaces), `#` comments and blank lines ignored.
    pub fn read_map(path: &Path) -> Result<HashMap<String, String>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let (identity, role) = match line.strip_prefix('"') {
                Some(rest) => match rest.split_once('"') {
                    Some((identity, role)) => (identity, role.trim()),
                    None => return Err(format!("{}:{}: unterminated quote", path.display(), n + 1)),
                },
                None => line.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((line, "")),
            };
            if role.is_empty() || role.contains(char::is_whitespace) {
                return Err(format!("{}:{}: expected `IDENTITY ROLE`", path.display(), n + 1));
            }
            map.insert(identity.to_string(), role.to_string());
        }
        Ok(map)
    }

    /// The role a certificate authenticates as, or why it authenticates none.
    pub fn role(&self, der: &[u8]) -> Result<String, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("the client certificate cannot be read: {e}"))?;
        let found: Vec<String> = match self.identity {
            Identity::Cn => cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok().map(str::to_string)).collect(),
            kind => cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|n| match (kind, n) {
                            (Identity::Dns, GeneralName::DNSName(v))
                            | (Identity::Email, GeneralName::RFC822Name(v))
                            | (Identity::Uri, GeneralName::URI(v)) => Some(v.to_string()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        let Some(identity) = found.first() else {
            return Err(format!("the client certificate has no {}", self.identity.name()));
        };
        match &self.map {
            None => Ok(identity.clone()),
            Some(map) => found.iter().find_map(|i| map.get(i).cloned()).ok_or_else(|| {
                format!("the client certificate's {} {identity:?} is not in the certificate map (--tls-client-map)", self.identity.name())
            }),
        }
    }
}

/// The verifier of client certificates: chains to a CA in `ca` (PEM bundle), within their validity
/// dates. A connection without a certificate passes the handshake and is refused at startup with a
/// PostgreSQL error (clearer than a TLS alert).
pub fn client_verifier(
    ca: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("client CA {}: {e}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c).map_err(|e| format!("client CA {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("client CA {}: no certificate in the file", ca.display()));
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client CA {}: {e}", ca.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_files_parse_and_refuse_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("map");
        std::fs::write(&p, "# identity role\napp.example.com app\n\"Jane Doe\"  jane  # quoted\n\n").unwrap();
        let m = CertAuth::read_map(&p).unwrap();
        assert_eq!(m["app.example.com"], "app");
        assert_eq!(m["Jane Doe"], "jane");
        std::fs::write(&p, "lonely\n").unwrap();
        assert!(CertAuth::read_map(&p).unwrap_err().contains(":1: expected"));
        assert_eq!("san".parse::<Identity>().unwrap_err(), "unknown certificate identity \"san\" (expected cn, dns, email or uri)");
    }
}
