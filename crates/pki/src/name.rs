//! Distinguished names of our hierarchy. The structure follows the public JPKI profile
//! (C=JP, O=…, OU=… for digital signature | user authentication, OU=<authority>); the values are our
//! own so that nothing we issue can be mistaken for the real J-LIS hierarchy.
//!
//! Roots come in key generations (see [`crate::cert`]): generation 1 is named exactly as before
//! rollover existed; generation n ≥ 2 appends ` G<n>` to the last OU ([`authority_gen`]), and its
//! CRL and ARL distribution point directoryNames carry the same marker.
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

/// The subject (and issuer) of the generation-1 root of `kind`.
pub fn authority(kind: CertKind) -> Result<Name, PkiError> {
    authority_gen(kind, 1)
}

/// `text` for generation 1, `text G<n>` for generation n ≥ 2 (the marker LGPKI gives its later
/// root generations, e.g. "APCA G3"); generation 0 does not exist.
fn with_generation(text: &str, generation: u32) -> Result<String, PkiError> {
    match generation {
        0 => Err(PkiError::Certificate("CA generations are numbered from 1".into())),
        1 => Ok(text.to_owned()),
        g => Ok(format!("{text} G{g}")),
    }
}

/// The last OU of the root of generation `generation`: [`AUTHORITY_UNIT`] for generation 1,
/// `"OpenJPKI Certification Authority G<n>"` after the n-th key (n ≥ 2).
pub fn authority_unit(generation: u32) -> Result<String, PkiError> {
    with_generation(AUTHORITY_UNIT, generation)
}

/// The subject (and issuer) of the root of `kind`, generation `generation` (1 = the first key; every
/// CA key rollover makes the next). Generation 1 is exactly [`authority`]; later generations differ in
/// the last OU only, so the generations are told apart by name as well as by key identifier.
pub fn authority_gen(kind: CertKind, generation: u32) -> Result<Name, PkiError> {
    let unit = authority_unit(generation)?;
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(hierarchy_unit(kind)),
        Attr::Ou(&unit),
    ])
}

/// Which generation of our root of `kind` `name` names, if it names one.
pub fn authority_generation(kind: CertKind, name: &Name) -> Option<u32> {
    use der::Encode;
    let rdns: &RdnSequence = name.as_ref();
    let rdns: &Vec<RelativeDistinguishedName> = rdns.as_ref();
    let last = rdns.last()?;
    let atvs: &der::asn1::SetOfVec<AttributeTypeAndValue> = last.as_ref();
    let atv = atvs.iter().next()?;
    if atv.oid != at::OU {
        return None;
    }
    let unit = Utf8StringRef::try_from(&atv.value).ok()?;
    let unit = unit.as_str();
    let generation = if unit == AUTHORITY_UNIT {
        1
    } else {
        let n = unit.strip_prefix(AUTHORITY_UNIT)?.strip_prefix(" G")?;
        // Canonical decimal only ("G2", not "G02" or "G+2"), and never 0 or 1.
        if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse::<u32>().ok().filter(|&g| g >= 2)?
    };
    let expected = authority_gen(kind, generation).ok()?;
    (expected.to_der().ok()? == name.to_der().ok()?).then_some(generation)
}

/// The directoryName of the CRL distribution point for end-entity certificates of `kind`.
///
/// Deliberate deviation from the real profile: no OU=<prefecture>, CN=<city> here. The real
/// authentication certificate would otherwise tell every relying party where its holder lives.
pub fn crl_distribution_point(kind: CertKind) -> Result<Name, PkiError> {
    crl_distribution_point_gen(kind, 1)
}

/// [`crl_distribution_point`] for end-entity certificates of generation `generation` (the last OU
/// carries the same `G<n>` marker as the root's name from generation 2 on).
pub fn crl_distribution_point_gen(kind: CertKind, generation: u32) -> Result<Name, PkiError> {
    let unit = with_generation("CRL Distribution Points", generation)?;
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(hierarchy_unit(kind)),
        Attr::Ou(&unit),
    ])
}

/// The directoryName of the ARL distribution point of the generation-1 root of `kind`.
pub fn arl_distribution_point(kind: CertKind) -> Result<Name, PkiError> {
    arl_distribution_point_gen(kind, 1)
}

/// The directoryName of the ARL distribution point of the root of `kind`, generation `generation`:
/// named in that root and in every link certificate that generation's key issues.
pub fn arl_distribution_point_gen(kind: CertKind, generation: u32) -> Result<Name, PkiError> {
    let unit = with_generation("ARL Distribution Points", generation)?;
    build(&[
        Attr::C("JP"),
        Attr::O(ORGANIZATION),
        Attr::Ou(hierarchy_unit(kind)),
        Attr::Ou(&unit),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use der::Encode;

    use super::*;

    #[test]
    fn generations_are_named_and_read_back() {
        for kind in [CertKind::Signature, CertKind::Authentication] {
            assert_eq!(
                authority_gen(kind, 1).unwrap().to_der().unwrap(),
                authority(kind).unwrap().to_der().unwrap()
            );
            assert_eq!(
                arl_distribution_point_gen(kind, 1).unwrap().to_der().unwrap(),
                arl_distribution_point(kind).unwrap().to_der().unwrap()
            );
            assert_eq!(
                crl_distribution_point_gen(kind, 1).unwrap().to_der().unwrap(),
                crl_distribution_point(kind).unwrap().to_der().unwrap()
            );
            for g in [1, 2, 3, 10, u32::MAX] {
                let n = authority_gen(kind, g).unwrap();
                assert_eq!(authority_generation(kind, &n), Some(g));
                let other = match kind {
                    CertKind::Signature => CertKind::Authentication,
                    CertKind::Authentication => CertKind::Signature,
                };
                assert_eq!(authority_generation(other, &n), None, "the other hierarchy");
            }
            assert!(authority_gen(kind, 0).is_err());
        }
        assert_eq!(
            authority_gen(CertKind::Signature, 2).unwrap().to_string(),
            "OU=OpenJPKI Certification Authority G2,OU=OpenJPKI for digital signature,O=OpenJPKI,C=JP"
        );
        // Only the canonical spelling names a generation.
        let unit = |u: &str| {
            build(&[
                Attr::C("JP"),
                Attr::O(ORGANIZATION),
                Attr::Ou(hierarchy_unit(CertKind::Signature)),
                Attr::Ou(u),
            ])
            .unwrap()
        };
        for bad in ["G1", "G0", "G02", "G+2", "G", "G2 ", "G99999999999"] {
            let n = unit(&format!("{AUTHORITY_UNIT} {bad}"));
            assert_eq!(authority_generation(CertKind::Signature, &n), None, "{bad}");
        }
        for other in [
            time_stamping_authority().unwrap(),
            ocsp_responder(CertKind::Signature).unwrap(),
            custom(&[("C", "JP"), ("OU", AUTHORITY_UNIT)]).unwrap(),
            Name::default(),
        ] {
            assert_eq!(authority_generation(CertKind::Signature, &other), None);
        }
    }
}
