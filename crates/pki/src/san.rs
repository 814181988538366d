//! The JPKI subjectAltName: six otherNames (1.2.392.200149.8.5.5.1–6) carrying the basic four
//! information. Only ever in signature certificates.
use der::asn1::{Any, Utf8StringRef};
use der::{Decode, Encode};
use jpki_model::{BasicFour, era};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::{GeneralName, OtherName};

use crate::{PkiError, oid};

/// The JPKI SAN fields as strings, exactly as carried in the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct JpkiSan {
    /// 氏名.
    pub name: Option<String>,
    /// One '0'/'1' per character of the name: '1' marks a character outside JIS X 0208.
    pub name_flags: Option<String>,
    /// Sex code (JIS X 0303).
    pub sex: Option<String>,
    /// Birth date EYYYYMMDD: era digit (1 Meiji … 5 Reiwa, 0 unknown) + Gregorian date.
    pub birth_date: Option<String>,
    /// 住所.
    pub address: Option<String>,
    /// One '0'/'1' per character of the address.
    pub address_flags: Option<String>,
}

impl JpkiSan {
    /// The fields for a person's basic four information.
    pub fn from_facts(f: &BasicFour) -> Self {
        Self {
            name: Some(f.name.as_str().to_owned()),
            name_flags: Some(f.name.substitution_flags()),
            sex: Some(f.sex.code().to_string()),
            birth_date: Some(era::cert_birth_date(f.birth_date)),
            address: Some(f.address.as_str().to_owned()),
            address_flags: Some(f.address.substitution_flags()),
        }
    }

    /// True when no field is present.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn fields(&self) -> [(const_oid::ObjectIdentifier, &Option<String>); 6] {
        [
            (oid::SAN_NAME, &self.name),
            (oid::SAN_NAME_FLAGS, &self.name_flags),
            (oid::SAN_SEX, &self.sex),
            (oid::SAN_BIRTH, &self.birth_date),
            (oid::SAN_ADDRESS, &self.address),
            (oid::SAN_ADDRESS_FLAGS, &self.address_flags),
        ]
    }

    /// DER of the subjectAltName extension value.
    pub fn to_der(&self) -> Result<Vec<u8>, PkiError> {
        let mut names = Vec::new();
        for (type_id, v) in self.fields() {
            if let Some(v) = v {
                let value =
                    Any::encode_from(&Utf8StringRef::new(v).map_err(PkiError::der("subjectAltName"))?)
                        .map_err(PkiError::der("subjectAltName"))?;
                names.push(GeneralName::OtherName(OtherName { type_id, value }));
            }
        }
        SubjectAltName(names)
            .to_der()
            .map_err(PkiError::der("subjectAltName"))
    }

    /// Reads the JPKI otherNames out of a subjectAltName extension value; other names are ignored.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let san = SubjectAltName::from_der(der).map_err(PkiError::der("subjectAltName"))?;
        let mut out = Self::default();
        for gn in san.0 {
            let GeneralName::OtherName(on) = gn else { continue };
            let value = on
                .value
                .decode_as::<Utf8StringRef<'_>>()
                .map_err(PkiError::der("subjectAltName otherName"))?
                .as_str()
                .to_owned();
            let slot = match on.type_id {
                t if t == oid::SAN_NAME => &mut out.name,
                t if t == oid::SAN_NAME_FLAGS => &mut out.name_flags,
                t if t == oid::SAN_SEX => &mut out.sex,
                t if t == oid::SAN_BIRTH => &mut out.birth_date,
                t if t == oid::SAN_ADDRESS => &mut out.address,
                t if t == oid::SAN_ADDRESS_FLAGS => &mut out.address_flags,
                _ => continue,
            };
            *slot = Some(value);
        }
        Ok(out)
    }
}
