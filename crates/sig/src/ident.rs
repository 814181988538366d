//! Identifying the signing certificate against already-parsed certificates: the SignerInfo's sid and
//! the signing-certificate(-v2) reference compared with [`ParsedCert`] fields (and its cached
//! SHA-256), so a batch of signatures by one signer never decodes the certificate again.
use jpki_pki::x509::ParsedCert;

use crate::signed_data::{DigestAlg, EssCertId, SignerId};

fn strip(mut s: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = s {
        s = rest;
    }
    s
}

/// Whether the SignerInfo's sid names `cert`.
pub(crate) fn sid_matches(sid: &SignerId<'_>, cert: &ParsedCert) -> bool {
    match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            issuer.as_ref() == cert.issuer_der.as_slice() && strip(serial) == cert.serial.as_slice()
        }
        SignerId::SubjectKeyId(kid) => cert.subject_key_id.as_deref() == Some(kid.as_ref()),
    }
}

/// Whether an ESS certificate reference (signing-certificate-v2, or v1 with SHA-1) names `cert`.
pub(crate) fn ess_matches(ess: &EssCertId, cert: &ParsedCert) -> Result<bool, crate::SigError> {
    let hash_ok = if DigestAlg::from_oid(&ess.hash_algorithm) == Some(DigestAlg::Sha256) {
        ess.cert_hash == cert.sha256
    } else {
        return ess.matches(cert.der());
    };
    Ok(hash_ok
        && ess.issuer_serial.as_ref().is_none_or(|is| {
            strip(&is.serial) == cert.serial.as_slice() && is.directory_names.contains(&cert.issuer_der)
        }))
}
