//! The certificate a suite's HTTPS servers share, so they are compared on
//! the same one: self-signed, ECDSA P-256, naming the suite's host, written
//! as PEM files (`{tls_cert}`, `{tls_key}`) when some target needs them.

use std::path::Path;

use crate::error::{Error, Result};
use crate::transport::{host_without_port, server_name};

/// A certificate and its private key, as PEM text.
#[derive(Debug, Clone)]
pub struct CertificatePem {
    pub certificate: String,
    pub private_key: String,
}

/// A self-signed ECDSA P-256 certificate for `name` (a host name or an IP
/// address; a port is dropped).
pub fn self_signed(name: &str) -> Result<CertificatePem> {
    let name = host_without_port(name);
    server_name(name).map_err(|e| Error::Invalid(format!("cannot make a certificate: {e}")))?;
    let failed = |e: rcgen::Error| {
        Error::Invalid(format!(
            "cannot make a certificate for {name:?}: {e} (the suite's `host` must be a host name or an IP address)"
        ))
    };
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let certificate = params.self_signed(&key).map_err(failed)?;
    Ok(CertificatePem {
        certificate: certificate.pem(),
        private_key: key.serialize_pem(),
    })
}

/// Makes a certificate for `name` and writes it and its key as PEM files.
pub fn write_self_signed(name: &str, certificate: &Path, private_key: &Path) -> Result<()> {
    let pem = self_signed(name)?;
    std::fs::write(certificate, &pem.certificate)
        .map_err(|e| Error::io(format!("cannot write {}", certificate.display()), e))?;
    std::fs::write(private_key, &pem.private_key)
        .map_err(|e| Error::io(format!("cannot write {}", private_key.display()), e))
}

/// Reads a certificate and key that [`write_self_signed`] wrote.
pub fn read(certificate: &Path, private_key: &Path) -> Result<CertificatePem> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
    };
    Ok(CertificatePem {
        certificate: read(certificate)?,
        private_key: read(private_key)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_p256_certificate_for_the_host() {
        let pem = self_signed("localhost:8443").unwrap();
        assert!(pem.certificate.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pem.private_key.contains("PRIVATE KEY"));
        let key = rcgen::KeyPair::from_pem(&pem.private_key).unwrap();
        assert!(key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
        assert!(self_signed("127.0.0.1").is_ok());
        assert!(self_signed("bad name").is_err());
    }
}
