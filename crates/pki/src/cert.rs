//! Certificates of the JPKI profile: the two self-signed roots and the two end-entity kinds, and the
//! link certificates that join the generations of a root across a CA key rollover.
//!
//! # Root generations and key rollover
//!
//! Each hierarchy (signature, authentication) has one root per key *generation*. Generation 1 is the
//! first key, named by [`name::authority`] and published under the URLs [`Endpoints`] always had; its
//! certificates are byte-for-byte what they were before generations existed. A rollover makes
//! generation n+1: a new key and a new self-signed root ([`RootSpec::generation`]) whose name differs
//! from the others in the last OU only (`OU=OpenJPKI Certification Authority G2`, the marker LGPKI
//! gives its later root generations, e.g. "APCA G3"), so that verifiers that index CRLs, OCSP
//! issuers or anchors by name keep the generations apart (the key identifiers differ too). Every
//! generation has its own ARL, CRLs, OCSP URL and certificate URL ([`Endpoints::ca_label`]); an
//! [`Issuer`] reads its generation from its certificate's name and uses them.
//!
//! Relying parties do not all learn the new root at once, so the old and new keys certify each other
//! with *link certificates* (RFC 4210 §4.4, 「リンク証明書」 in J-LIS's LGPKI and the GPKI):
//!
//! * NewWithOld, `old.issue_link(new_root)`: the new root's name and key, signed by the old key. A
//!   relying party that trusts only the old root validates EE ← NewWithOld ← old root.
//! * OldWithNew, `new.issue_link(old_root)`: the old root's name and key, signed by the new key. A
//!   relying party that trusts only the new root validates certificates issued before the rollover:
//!   EE ← OldWithNew ← new root.
//! * NewWithNew is simply the new self-signed root ([`issue_root`] with the next generation).
//!
//! A link certificate is a CA certificate (basicConstraints cA, keyUsage keyCertSign and cRLSign,
//! both critical) whose subject, subjectPublicKeyInfo and subjectKeyIdentifier are the subject
//! root's, whose authorityKeyIdentifier is the issuing key's, whose validity lies within both roots',
//! and whose CRL distribution point is the issuing generation's ARL: revoking it means listing its
//! serial on that ARL ([`crate::CrlScope::Authority`]), which a verifier that checks every CA
//! certificate of the path (as `jpki-sig` does) then refuses.
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
    /// Key generation, from 1: 1 is the original root (its name and URLs as before rollover existed),
    /// each CA key rollover makes the next ([`name::authority_gen`], [`Endpoints::ca_label`]).
    pub generation: u32,
}

/// Issues a self-signed root following the JPKI profile: keyCertSign+cRLSign and CA (both critical),
/// SAN directoryName of the service, CRL DP to the ARL of its generation, SKI (= AKI).
pub fn issue_root(spec: &RootSpec<'_>) -> Result<Vec<u8>, PkiError> {
    let spki_der = spec.key.spki_der()?;
    let spki = SubjectPublicKey::from_der(&spki_der)?;
    let kid = key_identifier(spki.bits());
    let subject = name::authority_gen(spec.kind, spec.generation)?;
    let url = spec
        .endpoints
        .url(&Endpoints::arl_path_gen(spec.kind, spec.generation));
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
            &distribution_point(
                name::arl_distribution_point_gen(spec.kind, spec.generation)?,
                &url,
            )?,
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

/// A CA ready to sign: its key, certificate, name, key identifier and generation.
#[derive(Debug)]
pub struct Issuer {
    kind: CertKind,
    key: SigningKey,
    cert_der: Vec<u8>,
    name: Name,
    key_id: Vec<u8>,
    generation: u32,
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
        // Our roots name their generation; any other CA (a test corpus's intermediate) is treated
        // as generation 1 and publishes under generation 1's URLs, as before generations existed.
        let generation = name::authority_generation(kind, tbs.subject()).unwrap_or(1);
        Ok(Self {
            kind,
            key,
            name: tbs.subject().clone(),
            cert_der,
            key_id,
            generation,
        })
    }

    /// The key generation this CA's certificate names (1 for the original root and for any CA whose
    /// name is not one of our roots').
    pub fn generation(&self) -> u32 {
        self.generation
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

    fn ca_cert_url(&self, endpoints: &Endpoints) -> String {
        endpoints.url(&Endpoints::ca_cert_path_gen(self.kind, self.generation))
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
                access_location: uri(&endpoints.ocsp_url_gen(self.kind, self.generation))?,
            },
            AccessDescription {
                access_method: oid::AD_CA_ISSUERS,
                access_location: uri(&self.ca_cert_url(endpoints))?,
            },
        ]);
        let crl_url = endpoints.url(&Endpoints::shard_crl_path_gen(self.kind, self.generation, shard));
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
                &distribution_point(
                    name::crl_distribution_point_gen(self.kind, self.generation)?,
                    &crl_url,
                )?,
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
            access_location: uri(&self.ca_cert_url(endpoints))?,
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
                extensions::crl_distribution_point(&endpoints.url(&Endpoints::shard_crl_path_gen(
                    self.kind,
                    self.generation,
                    shard,
                )))?,
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
            access_location: uri(&self.ca_cert_url(endpoints))?,
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

impl Issuer {
    /// Issues a link certificate (RFC 4210 §4.4.1, 「リンク証明書」): `subject_root_der`, the
    /// self-signed root of another generation of this hierarchy, certified by this root's key.
    /// NewWithOld is `old.issue_link(new_root)`, OldWithNew is `new.issue_link(old_root)`; see the
    /// module documentation for the paths they make.
    ///
    /// The certificate carries the subject root's name and subjectPublicKeyInfo (copied as they
    /// are), its subjectKeyIdentifier, this key's authorityKeyIdentifier, basicConstraints cA and
    /// keyUsage keyCertSign and cRLSign (both critical, no path length, as the roots), the service's
    /// subjectAltName as the roots have it, and a CRL distribution point at this generation's ARL,
    /// where it is listed when revoked. Its validity is `not_before..not_after` cut to both roots'
    /// validity (a relying party cannot use the link outside either root's life); an empty window is
    /// an error. `serial` is this CA's like any other (its shard is not used: the ARL covers CA
    /// certificates whatever their serial).
    ///
    /// Refused: an issuer that is not one of our roots, a subject that is not a self-signed root of
    /// the same hierarchy, a subject of the same generation, and the issuer's own key.
    pub fn issue_link(
        &self,
        subject_root_der: &[u8],
        serial: &Serial,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        endpoints: &Endpoints,
    ) -> Result<Vec<u8>, PkiError> {
        use crate::x509::ParsedCert;
        let what = "link certificate subject root";
        if name::authority_generation(self.kind, &self.name) != Some(self.generation) {
            return Err(PkiError::Certificate(format!(
                "link certificates are issued by a root of the {} hierarchy, not by {}",
                self.kind.as_str(),
                crate::x509::name_text(&self.name)
            )));
        }
        let root = Certificate::from_der(subject_root_der).map_err(PkiError::der(what))?;
        let parsed = ParsedCert::from_der(subject_root_der)?;
        let tbs = root.tbs_certificate();
        let subject_generation = name::authority_generation(self.kind, tbs.subject()).ok_or_else(|| {
            PkiError::Certificate(format!(
                "a link certificate certifies a root of the {} hierarchy, not {}",
                self.kind.as_str(),
                parsed.subject
            ))
        })?;
        if subject_generation == self.generation {
            return Err(PkiError::Certificate(format!(
                "a link certificate joins two generations; {} is this CA's own generation {}",
                parsed.subject, self.generation
            )));
        }
        if !(parsed.is_self_issued() && parsed.is_signed_by(&parsed.public_key) && parsed.is_ca) {
            return Err(PkiError::Certificate(format!(
                "{} (generation {subject_generation}) is not a self-signed CA certificate",
                parsed.subject
            )));
        }
        let spki = tbs.subject_public_key_info();
        if spki.to_der().map_err(PkiError::der(what))? == self.key.spki_der()? {
            return Err(PkiError::Certificate(
                "a link certificate certifies another generation's key, not the issuer's own".into(),
            ));
        }
        let own = ParsedCert::from_der(&self.cert_der)?;
        let not_before = not_before.max(own.not_before).max(parsed.not_before);
        let not_after = not_after.min(own.not_after).min(parsed.not_after);
        if not_before >= not_after {
            return Err(PkiError::Certificate(format!(
                "the link certificate's validity is empty once cut to both roots' validity \
                 ({not_before} to {not_after})"
            )));
        }
        let ski = parsed
            .subject_key_id
            .clone()
            .unwrap_or_else(|| key_identifier(&spki.subject_public_key));
        let url = endpoints.url(&Endpoints::arl_path_gen(self.kind, self.generation));
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
            ext(oid::ext::SKI, false, &SubjectKeyIdentifier(octets(&ski)?))?,
            ext(oid::ext::AKI, false, &self.aki()?)?,
            ext(
                oid::ext::SAN,
                false,
                &SubjectAltName(vec![GeneralName::DirectoryName(name::service()?)]),
            )?,
            ext(
                oid::ext::CRL_DP,
                false,
                &distribution_point(
                    name::arl_distribution_point_gen(self.kind, self.generation)?,
                    &url,
                )?,
            )?,
        ];
        let tbs = Tbs {
            version: Version::V3,
            serial_number: serial_uint(serial)?,
            signature: self.key.key_type().signature_algorithm(),
            issuer: self.name.clone(),
            validity: Validity::new(to_x509("notBefore", not_before)?, to_x509("notAfter", not_after)?),
            subject: tbs.subject().clone(),
            subject_public_key_info: spki.clone(),
            extensions,
        };
        sign_der(
            &tbs.to_der().map_err(PkiError::der("link certificate"))?,
            &self.key,
            "link certificate",
        )
    }
}
