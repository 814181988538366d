//! Certificates of the JPKI profile: the two self-signed roots and the two end-entity kinds.
use der::asn1::{AnyRef, BitString, Ia5String, OctetString, Uint};
use der::{Decode, Encode};
use jpki_model::{BasicFour, CertKind, Serial};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::time::Validity;

use crate::endpoints::Endpoints;
use crate::key::{SigningKey, SubjectPublicKey, key_identifier};
use crate::san::JpkiSan;
use crate::{PkiError, name, oid, time::to_x509};

#[derive(der::Sequence)]
struct Tbs {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: Uint,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// Certificate or CertificateList: `SEQUENCE { tbs, signatureAlgorithm, signature }`.
#[derive(der::Sequence)]
struct Signed<'a> {
    tbs: AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// Signs DER `tbs` with `key` and wraps it as a Certificate or CertificateList.
pub(crate) fn sign_der(tbs: &[u8], key: &SigningKey, what: &'static str) -> Result<Vec<u8>, PkiError> {
    let sig = key.sign(tbs)?;
    Signed {
        tbs: AnyRef::from_der(tbs).map_err(PkiError::der(what))?,
        algorithm: key.key_type().signature_algorithm(),
        signature: BitString::from_bytes(&sig).map_err(PkiError::der(what))?,
    }
    .to_der()
    .map_err(PkiError::der(what))
}

pub(crate) fn ext<T: Encode>(
    id: const_oid::ObjectIdentifier,
    critical: bool,
    v: &T,
) -> Result<Extension, PkiError> {
    let value = v.to_der().map_err(PkiError::der("extension"))?;
    Ok(Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(value).map_err(PkiError::der("extension"))?,
    })
}

pub(crate) fn uri(s: &str) -> Result<GeneralName, PkiError> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(s).map_err(PkiError::der("URI"))?,
    ))
}

fn serial_uint(serial: &Serial) -> Result<Uint, PkiError> {
    Uint::new(serial.as_be_bytes()).map_err(PkiError::der("serial number"))
}

fn distribution_point(dir: Name, url: &str) -> Result<CrlDistributionPoints, PkiError> {
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::DirectoryName(dir),
            uri(url)?,
        ])),
        reasons: None,
        crl_issuer: None,
    }]))
}

/// What a root certificate needs.
#[derive(Debug)]
pub struct RootSpec<'a> {
    /// Which hierarchy.
    pub kind: CertKind,
    /// The root's own key.
    pub key: &'a SigningKey,
    /// Serial number of the root certificate.
    pub serial: &'a Serial,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Public URLs.
    pub endpoints: &'a Endpoints,
}

/// Issues a self-signed root following the JPKI profile: keyCertSign+cRLSign and CA (both critical),
/// SAN directoryName of the service, CRL DP to the ARL, SKI (= AKI).
pub fn issue_root(spec: &RootSpec<'_>) -> Result<Vec<u8>, PkiError> {
    let spki_der = spec.key.spki_der()?;
    let spki = SubjectPublicKey::from_der(&spki_der)?;
    let kid = key_identifier(spki.bits());
    let subject = name::authority(spec.kind)?;
    let url = spec.endpoints.url(&Endpoints::arl_path(spec.kind));
    let extensions = vec![
        ext(
            oid::ext::BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
        )?,
        ext(
            oid::ext::KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        )?,
        ext(oid::ext::SKI, false, &SubjectKeyIdentifier(octets(&kid)?))?,
        ext(oid::ext::AKI, false, &aki(&kid)?)?,
        ext(
            oid::ext::SAN,
            false,
            &SubjectAltName(vec![GeneralName::DirectoryName(name::service()?)]),
        )?,
        ext(
            oid::ext::CRL_DP,
            false,
            &distribution_point(name::arl_distribution_point(spec.kind)?, &url)?,
        )?,
    ];
    let tbs = Tbs {
        version: Version::V3,
        serial_number: serial_uint(spec.serial)?,
        signature: spec.key.key_type().signature_algorithm(),
        issuer: subject.clone(),
        validity: Validity::new(
            to_x509("notBefore", spec.not_before)?,
            to_x509("notAfter", spec.not_after)?,
        ),
        subject,
        subject_public_key_info: spki.spki().clone(),
        extensions,
    };
    sign_der(
        &tbs.to_der().map_err(PkiError::der("root certificate"))?,
        spec.key,
        "root certificate",
    )
}

fn octets(b: &[u8]) -> Result<OctetString, PkiError> {
    OctetString::new(b).map_err(PkiError::der("key identifier"))
}

fn aki(kid: &[u8]) -> Result<AuthorityKeyIdentifier, PkiError> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(octets(kid)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

/// A CA ready to sign: its key, certificate, name and key identifier.
#[derive(Debug)]
pub struct Issuer {
    kind: CertKind,
    key: SigningKey,
    cert_der: Vec<u8>,
    name: Name,
    key_id: Vec<u8>,
}

/// What an end-entity certificate needs besides the issuer.
#[derive(Debug)]
pub struct EndEntitySpec<'a> {
    /// Serial number (carries the CRL shard).
    pub serial: &'a Serial,
    /// The card's public key.
    pub subject_key: &'a SubjectPublicKey,
    /// The subject's CN: an identifier that says nothing about the person.
    pub subject_id: &'a str,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity (23:59:59 JST of the last day).
    pub not_after: OffsetDateTime,
    /// The basic four information: required for signature certificates, refused for authentication.
    pub facts: Option<&'a BasicFour>,
}

impl Issuer {
    /// Pairs a CA key with its certificate; fails when they do not match.
    pub fn new(kind: CertKind, key: SigningKey, cert_der: Vec<u8>) -> Result<Self, PkiError> {
        let cert = Certificate::from_der(&cert_der).map_err(PkiError::der("CA certificate"))?;
        let tbs = cert.tbs_certificate();
        let spki_der = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(PkiError::der("CA certificate"))?;
        if spki_der != key.spki_der()? {
            return Err(PkiError::Key(
                "the authority key does not match its CA certificate".into(),
            ));
        }
        let key_id = key_identifier(&tbs.subject_public_key_info().subject_public_key);
        Ok(Self {
            kind,
            key,
            name: tbs.subject().clone(),
            cert_der,
            key_id,
        })
    }

    /// Which hierarchy this CA heads.
    pub fn kind(&self) -> CertKind {
        self.kind
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The CA's key identifier (SKI).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The CA's signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn aki(&self) -> Result<AuthorityKeyIdentifier, PkiError> {
        aki(&self.key_id)
    }

    /// Issues an end-entity certificate of this CA's kind.
    pub fn issue(&self, spec: &EndEntitySpec<'_>, endpoints: &Endpoints) -> Result<Vec<u8>, PkiError> {
        let serial = spec.serial;
        let shard = serial
            .shard()
            .ok_or_else(|| PkiError::Certificate(format!("serial {serial} carries no CRL shard")))?;
        let (subject, policy, key_usage, san) = match (self.kind, spec.facts) {
            (CertKind::Signature, Some(f)) => {
                let locality: Vec<&str> = [f.address.prefecture(), f.address.city()]
                    .into_iter()
                    .flatten()
                    .collect();
                (
                    name::end_entity(spec.subject_id, &locality)?,
                    oid::POLICY_SIGN,
                    KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
                    Some(JpkiSan::from_facts(f).to_der()?),
                )
            }
            (CertKind::Signature, None) => {
                return Err(PkiError::Certificate(
                    "a signature certificate needs the basic four information".into(),
                ));
            }
            (CertKind::Authentication, None) => (
                name::end_entity(spec.subject_id, &[])?,
                oid::POLICY_AUTH,
                KeyUsage(KeyUsages::DigitalSignature.into()),
                None,
            ),
            (CertKind::Authentication, Some(_)) => {
                return Err(PkiError::Certificate(
                    "an authentication certificate carries no personal information".into(),
                ));
            }
        };
        let cps = Ia5String::new(&endpoints.cps_url()).map_err(PkiError::der("CPS URI"))?;
        let policies = CertificatePolicies(vec![PolicyInformation {
            policy_identifier: policy,
            policy_qualifiers: Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: oid::QT_CPS,
                qualifier: Some(der::Any::encode_from(&cps).map_err(PkiError::der("CPS URI"))?),
            }]),
        }]);
        let aia = AuthorityInfoAccessSyntax(vec![
            AccessDescription {
                access_method: oid::AD_OCSP,
                access_location: uri(&endpoints.ocsp_url(self.kind))?,
            },
            AccessDescription {
                access_method: oid::AD_CA_ISSUERS,
                access_location: uri(&endpoints.url(&Endpoints::ca_cert_path(self.kind)))?,
            },
        ]);
        let crl_url = endpoints.url(&Endpoints::shard_crl_path(self.kind, shard));
        let mut extensions = vec![
            ext(oid::ext::KEY_USAGE, true, &key_usage)?,
            ext(oid::ext::CERT_POLICIES, true, &policies)?,
            ext(
                oid::ext::SKI,
                false,
                &SubjectKeyIdentifier(octets(&key_identifier(spec.subject_key.bits()))?),
            )?,
            ext(oid::ext::AKI, false, &self.aki()?)?,
            ext(
                oid::ext::CRL_DP,
                false,
                &distribution_point(name::crl_distribution_point(self.kind)?, &crl_url)?,
            )?,
            ext(oid::ext::AIA, false, &aia)?,
        ];
        if let Some(san) = san {
            extensions.push(Extension {
                extn_id: oid::ext::SAN,
                critical: false,
                extn_value: OctetString::new(san).map_err(PkiError::der("subjectAltName"))?,
            });
        }
        let tbs = Tbs {
            version: Version::V3,
            serial_number: serial_uint(serial)?,
            signature: self.key.key_type().signature_algorithm(),
            issuer: self.name.clone(),
            validity: Validity::new(
                to_x509("notBefore", spec.not_before)?,
                to_x509("notAfter", spec.not_after)?,
            ),
            subject,
            subject_public_key_info: spec.subject_key.spki().clone(),
            extensions,
        };
        sign_der(
            &tbs.to_der().map_err(PkiError::der("certificate"))?,
            &self.key,
            "certificate",
        )
    }
}

/// A certificate of any shape under an [`Issuer`]: for the authority's service certificates (the
/// time-stamp authority, later OCSP responders), intermediate CAs, and test corpora that need
/// certificates outside the card profile (wrong key usage, odd validity).
#[derive(Debug)]
pub struct CustomSpec<'a> {
    /// Serial number.
    pub serial: &'a Serial,
    /// Subject name.
    pub subject: Name,
    /// Subject public key.
    pub subject_key: &'a SubjectPublicKey,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Extensions besides subjectKeyIdentifier and authorityKeyIdentifier, which are always added.
    pub extensions: Vec<Extension>,
}

/// Builders for the extensions a [`CustomSpec`] carries.
pub mod extensions {
    use super::*;

    /// keyUsage (critical).
    pub fn key_usage(usages: KeyUsage) -> Result<Extension, PkiError> {
        ext(oid::ext::KEY_USAGE, true, &usages)
    }

    /// basicConstraints (critical).
    pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Result<Extension, PkiError> {
        ext(
            oid::ext::BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca,
                path_len_constraint: path_len,
            },
        )
    }

    /// extendedKeyUsage.
    pub fn extended_key_usage(
        purposes: Vec<const_oid::ObjectIdentifier>,
        critical: bool,
    ) -> Result<Extension, PkiError> {
        ext(
            oid::EXT_KEY_USAGE,
            critical,
            &x509_cert::ext::pkix::ExtendedKeyUsage(purposes),
        )
    }

    /// certificatePolicies (critical, as the JPKI profile marks it) with one policy and no qualifier.
    pub fn policy(policy: const_oid::ObjectIdentifier) -> Result<Extension, PkiError> {
        ext(
            oid::ext::CERT_POLICIES,
            true,
            &CertificatePolicies(vec![PolicyInformation {
                policy_identifier: policy,
                policy_qualifiers: None,
            }]),
        )
    }

    /// cRLDistributionPoints with one URI.
    pub fn crl_distribution_point(url: &str) -> Result<Extension, PkiError> {
        ext(
            oid::ext::CRL_DP,
            false,
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                reasons: None,
                crl_issuer: None,
            }]),
        )
    }

    /// The JPKI subjectAltName carrying the basic four information.
    pub fn jpki_san(facts: &BasicFour) -> Result<Extension, PkiError> {
        Ok(Extension {
            extn_id: oid::ext::SAN,
            critical: false,
            extn_value: OctetString::new(JpkiSan::from_facts(facts).to_der()?)
                .map_err(PkiError::der("subjectAltName"))?,
        })
    }
}

impl Issuer {
    /// Issues a certificate of any shape (see [`CustomSpec`]), adding SKI and AKI.
    pub fn issue_custom(&self, spec: CustomSpec<'_>) -> Result<Vec<u8>, PkiError> {
        let mut extensions = vec![
            ext(
                oid::ext::SKI,
                false,
                &SubjectKeyIdentifier(octets(&key_identifier(spec.subject_key.bits()))?),
            )?,
            ext(oid::ext::AKI, false, &self.aki()?)?,
        ];
        extensions.extend(spec.extensions);
        let tbs = Tbs {
            version: Version::V3,
            serial_number: serial_uint(spec.serial)?,
            signature: self.key.key_type().signature_algorithm(),
            issuer: self.name.clone(),
            validity: Validity::new(
                to_x509("notBefore", spec.not_before)?,
                to_x509("notAfter", spec.not_after)?,
            ),
            subject: spec.subject,
            subject_public_key_info: spec.subject_key.spki().clone(),
            extensions,
        };
        sign_der(
            &tbs.to_der().map_err(PkiError::der("certificate"))?,
            &self.key,
            "certificate",
        )
    }

    /// Issues the authority's time-stamp authority certificate (RFC 3161 §2.3): keyUsage
    /// digitalSignature, extendedKeyUsage id-kp-timeStamping only and critical, the CRL shard of its
    /// serial and the CA certificate in AIA, so verifiers check it like any other certificate.
    pub fn issue_tsa(
        &self,
        serial: &Serial,
        subject_key: &SubjectPublicKey,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        endpoints: &Endpoints,
    ) -> Result<Vec<u8>, PkiError> {
        let shard = serial
            .shard()
            .ok_or_else(|| PkiError::Certificate(format!("serial {serial} carries no CRL shard")))?;
        let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
            access_method: oid::AD_CA_ISSUERS,
            access_location: uri(&endpoints.url(&Endpoints::ca_cert_path(self.kind)))?,
        }]);
        self.issue_custom(CustomSpec {
            serial,
            subject: name::time_stamping_authority()?,
            subject_key,
            not_before,
            not_after,
            extensions: vec![
                extensions::key_usage(KeyUsage(KeyUsages::DigitalSignature.into()))?,
                extensions::extended_key_usage(vec![oid::KP_TIME_STAMPING], true)?,
                extensions::crl_distribution_point(
                    &endpoints.url(&Endpoints::shard_crl_path(self.kind, shard)),
                )?,
                ext(oid::ext::AIA, false, &aia)?,
            ],
        })
    }

    /// Issues a delegated OCSP responder certificate for this CA (RFC 6960 §4.2.2.2): keyUsage
    /// digitalSignature, extendedKeyUsage id-kp-OCSPSigning (not critical: the RFC does not ask for it,
    /// and the CA/Browser Forum profile marks it non-critical), id-pkix-ocsp-nocheck (NULL, not
    /// critical: clients do not check this certificate's revocation, so keep its validity short), the
    /// CA certificate in AIA, SKI and AKI. No CRL distribution point: nocheck makes one pointless, and
    /// the serial need not carry a CRL shard.
    pub fn issue_ocsp_responder(
        &self,
        serial: &Serial,
        subject_key: &SubjectPublicKey,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        endpoints: &Endpoints,
    ) -> Result<Vec<u8>, PkiError> {
        let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
            access_method: oid::AD_CA_ISSUERS,
            access_location: uri(&endpoints.url(&Endpoints::ca_cert_path(self.kind)))?,
        }]);
        self.issue_custom(CustomSpec {
            serial,
            subject: name::ocsp_responder(self.kind)?,
            subject_key,
            not_before,
            not_after,
            extensions: vec![
                extensions::key_usage(KeyUsage(KeyUsages::DigitalSignature.into()))?,
                extensions::extended_key_usage(vec![oid::KP_OCSP_SIGNING], false)?,
                ext(oid::PKIX_OCSP_NOCHECK, false, &der::asn1::Null)?,
                ext(oid::ext::AIA, false, &aia)?,
            ],
        })
    }
}
