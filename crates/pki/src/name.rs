//! Distinguished names of our hierarchy. The structure follows the public JPKI profile
//! (C=JP, O=…, OU=… for digital signature | user authentication, OU=<authority>); the values are our
//! own so that nothing we issue can be mistaken for the real J-LIS hierarchy.
use der::asn1::{Any, PrintableStringRef, Utf8StringRef};
use jpki_model::CertKind;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::{PkiError, oid::at};

/// organizationName of our authority.
pub const ORGANIZATION: &str = "OpenJPKI";
/// The last OU of our authority's names (the real one names J-LIS).
pub const AUTHORITY_UNIT: &str = "OpenJPKI Certification Authority";
/// The organisation in the CA's subjectAltName directoryName (the real one is 公的個人認証サービス).
pub const SERVICE_NAME: &str = "公的個人認証サービス (OpenJPKI)";

/// The OU that names the hierarchy of `kind`.
pub fn hierarchy_unit(kind: CertKind) -> &'static str {
    match kind {
        CertKind::Signature => "OpenJPKI for digital signature",
        CertKind::Authentication => "OpenJPKI for user authentication",
    }
}

/// One attribute of a name; `C` is a PrintableString, everything else a UTF8String (RFC 5280 §4.1.2.4).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attr<'a> {
    C(&'a str),
    O(&'a str),
    Ou(&'a str),
    L(&'a str),
    Cn(&'a str),
}

pub(crate) fn build(attrs: &[Attr<'_>]) -> Result<Name, PkiError> {
    let mut seq = RdnSequence::default();
    for a in attrs {
        let (oid, value) = match *a {
            Attr::C(v) => (
                at::C,
                Any::encode_from(&PrintableStringRef::new(v).map_err(PkiError::der("country"))?),
            ),
            Attr::O(v) => (at::O, utf8(v)),
            Attr::Ou(v) => (at::OU, utf8(v)),
            Attr::L(v) => (at::L, utf8(v)),
            Attr::Cn(v) => (at::CN, utf8(v)),
        };
        let atv = AttributeTypeAndValue {
            oid,
            value: value.map_err(PkiError::der("name attribute"))?,
        };
        seq.push(RelativeDistinguishedName::try_from(vec![atv]).map_err(PkiError::der("name"))?);
    }
    Ok(Name::hazmat_from_rdn_sequence(seq))
}

fn utf8(v: &str) -> der::Result<Any> {
    Any::encode_from(&Utf8StringRef::new(v)?)
}

/// The subject (and issuer) of the root of `kind`.
pub fn authority(kind: CertKind) -> Result<Name, PkiError> {
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(hierarchy_unit(kind)),
        Attr::Ou(AUTHORITY_UNIT),
    ])
}

/// The directoryName of the CRL distribution point for end-entity certificates of `kind`.
///
/// Deliberate deviation from the real profile: no OU=<prefecture>, CN=<city> here. The real
/// authentication certificate would otherwise tell every relying party where its holder lives.
pub fn crl_distribution_point(kind: CertKind) -> Result<Name, PkiError> {
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(hierarchy_unit(kind)),
        Attr::Ou("CRL Distribution Points"),
    ])
}

/// The directoryName of the ARL distribution point of the root of `kind`.
pub fn arl_distribution_point(kind: CertKind) -> Result<Name, PkiError> {
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(hierarchy_unit(kind)),
        Attr::Ou("ARL Distribution Points"),
    ])
}

/// The directoryName in the CA's subjectAltName.
pub fn service() -> Result<Name, PkiError> {
    build(&[Attr::O(SERVICE_NAME)])
}

/// Subject of an end-entity certificate: `C=JP, CN=<id>` for authentication (nothing about the
/// person), `C=JP, L=<prefecture>, L=<city>, CN=<id>` for signature as the real profile has it.
pub fn end_entity(id: &str, locality: &[&str]) -> Result<Name, PkiError> {
    let mut attrs = vec![Attr::C("JP")];
    attrs.extend(locality.iter().map(|l| Attr::L(l)));
    attrs.push(Attr::Cn(id));
    build(&attrs)
}

/// Subject of the authority's time-stamp authority certificate.
pub fn time_stamping_authority() -> Result<Name, PkiError> {
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(AUTHORITY_UNIT),
        Attr::Cn("OpenJPKI Time-Stamping Authority"),
    ])
}

/// Subject of the delegated OCSP responder certificate of the hierarchy `kind` (RFC 6960 §4.2.2.2).
pub fn ocsp_responder(kind: CertKind) -> Result<Name, PkiError> {
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(hierarchy_unit(kind)),
        Attr::Ou(AUTHORITY_UNIT),
        Attr::Cn("OpenJPKI OCSP Responder"),
    ])
}

/// A name of any attributes, in order: `("C", "JP")`, `("O", …)`, `("OU", …)`, `("L", …)`, `("CN", …)`.
/// For intermediate CAs and test corpora.
pub fn custom(attrs: &[(&str, &str)]) -> Result<Name, PkiError> {
    let mut out = Vec::new();
    for &(t, v) in attrs {
        out.push(match t {
            "C" => Attr::C(v),
            "O" => Attr::O(v),
            "OU" => Attr::Ou(v),
            "L" => Attr::L(v),
            "CN" => Attr::Cn(v),
            other => {
                return Err(PkiError::Certificate(format!(
                    "name attribute {other:?} is not C, O, OU, L or CN"
                )));
            }
        });
    }
    build(&out)
}
