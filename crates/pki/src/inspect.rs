//! Reading certificates back: what `jpki cert show` prints and what tests assert on.
use aws_lc_rs::signature;
use der::{Decode, Encode};
use jpki_model::Serial;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, BasicConstraints, CertificatePolicies, CrlDistributionPoints, KeyUsage,
};

use crate::san::JpkiSan;
use crate::{PkiError, oid, time::from_x509};

/// A decoded certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateInfo {
    /// Serial, lowercase hex without leading zeros.
    pub serial: String,
    /// "sign", "auth" (by policy OID), "ca", or "other".
    pub kind: &'static str,
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// Issuer DN (RFC 4514).
    pub issuer: String,
    /// notBefore, RFC 3339 UTC.
    pub not_before: String,
    /// notAfter, RFC 3339 UTC.
    pub not_after: String,
    /// "RSA-2048", "P-384", ….
    pub public_key: String,
    /// Signature algorithm OID name.
    pub signature_algorithm: String,
    /// Key usages.
    pub key_usage: Vec<String>,
    /// Certificate policy OIDs.
    pub policies: Vec<String>,
    /// HTTP(S) CRL distribution point URIs.
    pub crl_urls: Vec<String>,
    /// OCSP responder URIs.
    pub ocsp_urls: Vec<String>,
    /// The JPKI subjectAltName fields (signature certificates only).
    pub jpki: Option<JpkiSan>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
}

fn bad(e: der::Error) -> PkiError {
    PkiError::Der {
        what: "certificate",
        source: e,
    }
}

/// Whether `sig` is an RSA PKCS#1 v1.5 SHA-256 signature over `msg` by the key of the DER
/// certificate `cert_der` (how a relying party checks a card's login signature).
pub fn verify_signed_by_key(cert_der: &[u8], msg: &[u8], sig: &[u8]) -> Result<bool, PkiError> {
    let cert = Certificate::from_der(cert_der).map_err(bad)?;
    let key = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    Ok(
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key)
            .verify(msg, sig)
            .is_ok(),
    )
}

/// The DER SubjectPublicKeyInfo of a DER certificate.
pub fn subject_public_key_der(cert_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    use der::Encode as _;
    let cert = Certificate::from_der(cert_der).map_err(bad)?;
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(bad)
}

impl CertificateInfo {
    /// Decodes a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let cert = Certificate::from_der(der).map_err(bad)?;
        let tbs = cert.tbs_certificate();
        let serial = Serial::from_be_bytes(tbs.serial_number().as_bytes())
            .map_err(|e| PkiError::Certificate(e.to_string()))?
            .to_hex();
        let mut info = Self {
            serial,
            kind: "other",
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            not_before: rfc3339(from_x509(&tbs.validity().not_before)?),
            not_after: rfc3339(from_x509(&tbs.validity().not_after)?),
            public_key: key_name(tbs.subject_public_key_info()),
            signature_algorithm: oid_name(&cert.signature_algorithm().oid),
            key_usage: Vec::new(),
            policies: Vec::new(),
            crl_urls: Vec::new(),
            ocsp_urls: Vec::new(),
            jpki: None,
            sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)),
        };
        for e in tbs.extensions().into_iter().flatten() {
            let v = e.extn_value.as_bytes();
            match e.extn_id {
                id if id == oid::ext::BASIC_CONSTRAINTS && BasicConstraints::from_der(v).map_err(bad)?.ca => {
                    info.kind = "ca";
                }
                id if id == oid::ext::KEY_USAGE => {
                    info.key_usage = KeyUsage::from_der(v)
                        .map_err(bad)?
                        .0
                        .into_iter()
                        .map(|u| format!("{u:?}"))
                        .collect();
                }
                id if id == oid::ext::CERT_POLICIES => {
                    for p in CertificatePolicies::from_der(v).map_err(bad)?.0 {
                        info.policies.push(p.policy_identifier.to_string());
                    }
                }
                id if id == oid::ext::CRL_DP => {
                    for dp in CrlDistributionPoints::from_der(v).map_err(bad)?.0 {
                        if let Some(DistributionPointName::FullName(names)) = dp.distribution_point {
                            info.crl_urls.extend(names.iter().filter_map(uri_of));
                        }
                    }
                }
                id if id == oid::ext::AIA => {
                    for ad in AuthorityInfoAccessSyntax::from_der(v).map_err(bad)?.0 {
                        if ad.access_method == oid::AD_OCSP {
                            info.ocsp_urls.extend(uri_of(&ad.access_location));
                        }
                    }
                }
                id if id == oid::ext::SAN => {
                    let san = JpkiSan::from_der(v)?;
                    if !san.is_empty() {
                        info.jpki = Some(san);
                    }
                }
                _ => {}
            }
        }
        if info.kind == "other" {
            if info.policies.iter().any(|p| *p == oid::POLICY_SIGN.to_string()) {
                info.kind = "sign";
            } else if info.policies.iter().any(|p| *p == oid::POLICY_AUTH.to_string()) {
                info.kind = "auth";
            }
        }
        Ok(info)
    }
}

fn uri_of(g: &GeneralName) -> Option<String> {
    match g {
        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
        _ => None,
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn oid_name(o: &const_oid::ObjectIdentifier) -> String {
    match *o {
        x if x == oid::SHA256_WITH_RSA => "sha256WithRSAEncryption".into(),
        x if x == oid::ECDSA_WITH_SHA384 => "ecdsa-with-SHA384".into(),
        x => x.to_string(),
    }
}

fn key_name(spki: &spki::SubjectPublicKeyInfoOwned) -> String {
    if spki.algorithm.oid == oid::RSA_ENCRYPTION {
        // The modulus length decides the name; 2048-bit keys have a 256-byte modulus (+ sign byte).
        let n = spki.subject_public_key.raw_bytes().len();
        if (268..=272).contains(&n) {
            "RSA-2048".into()
        } else {
            format!("RSA ({n}-byte key)")
        }
    } else if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
        "P-384".into()
    } else {
        spki.algorithm.oid.to_string()
    }
}

/// Checks the signature of a DER Certificate or CertificateList against the issuer certificate's key.
pub fn verify_signed_by(signed_der: &[u8], issuer_cert_der: &[u8]) -> Result<bool, PkiError> {
    #[derive(der::Sequence)]
    struct Signed<'a> {
        tbs: der::asn1::AnyRef<'a>,
        algorithm: spki::AlgorithmIdentifierOwned,
        signature: der::asn1::BitString,
    }
    let s = Signed::from_der(signed_der).map_err(bad)?;
    let issuer = Certificate::from_der(issuer_cert_der).map_err(bad)?;
    let key = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    let alg: &'static dyn signature::VerificationAlgorithm = match s.algorithm.oid {
        x if x == oid::SHA256_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
        x if x == oid::ECDSA_WITH_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        x => {
            return Err(PkiError::Certificate(format!(
                "unsupported signature algorithm {x}"
            )));
        }
    };
    let tbs = s.tbs.to_der().map_err(bad)?;
    Ok(signature::UnparsedPublicKey::new(alg, key)
        .verify(&tbs, s.signature.raw_bytes())
        .is_ok())
}
