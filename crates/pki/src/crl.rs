//! Certificate revocation lists (RFC 5280 §5): complete, sharded (partitioned by the shard each
//! serial carries, named in the certificate's CRL DP and the CRL's issuingDistributionPoint, as
//! Let's Encrypt's Boulder does), delta (with removeFromCRL for lifted holds) and the ARL.
use der::asn1::{AnyRef, Uint, UintRef};
use der::{Decode, Encode, Tag};
use jpki_model::{RevocationReason, Serial};
use time::OffsetDateTime;
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint};
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::{BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl};
use x509_cert::name::Name;
use x509_cert::time::Time;

use crate::cert::{Issuer, ext, sign_der, uri};
use crate::endpoints::Endpoints;
use crate::{PkiError, oid, time::to_x509};

/// One revoked (or held, or released) certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// The certificate's serial.
    pub serial: Serial,
    /// When it was revoked or put on hold.
    pub revoked_at: OffsetDateTime,
    /// Why. `RemoveFromCrl` only in a delta CRL.
    pub reason: RevocationReason,
}

/// Which certificates a CRL speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlScope {
    /// Every certificate of the CA (no issuingDistributionPoint; points to the delta by freshestCRL).
    Complete,
    /// End-entity certificates whose serial carries this shard.
    Shard(u16),
    /// Changes since the complete CRL with this number.
    Delta {
        /// CRL number of the base complete CRL.
        base: u64,
    },
    /// CA certificates only (the authority revocation list): the link certificates this CA's key
    /// issued to the roots of its other generations ([`Issuer::issue_link`]). onlyContainsCACerts, and
    /// the IDP names this generation's ARL URL, which is the CRL DP of those link certificates.
    Authority,
}

/// The header of a CRL.
#[derive(Debug, Clone)]
pub struct CrlSpec<'a> {
    /// Scope.
    pub scope: CrlScope,
    /// cRLNumber, strictly increasing per CA.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// Public URLs (for the IDP and freshestCRL).
    pub endpoints: &'a Endpoints,
}

#[derive(der::Sequence)]
struct TbsCrl<'a> {
    version: Version,
    signature: spki::AlgorithmIdentifierOwned,
    issuer: Name,
    this_update: Time,
    next_update: Option<Time>,
    revoked: Option<AnyRef<'a>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

#[derive(der::Sequence)]
struct EntryRef<'a> {
    serial: UintRef<'a>,
    date: Time,
    extensions: Option<AnyRef<'a>>,
}

/// Pre-encoded `crlEntryExtensions` for each reason (unspecified carries none, as RFC 5280 §5.3.1 asks).
struct ReasonExtensions(Vec<Option<Vec<u8>>>);

impl ReasonExtensions {
    fn new() -> Result<Self, PkiError> {
        let mut v = Vec::new();
        for code in 0u8..=10 {
            let r = RevocationReason::from_code(code);
            let crl_reason = match r {
                None | Some(RevocationReason::Unspecified) => None,
                Some(r) => Some(crl_reason(r)),
            };
            v.push(match crl_reason {
                Some(cr) => Some(
                    vec![ext(oid::ext::REASON_CODE, false, &cr)?]
                        .to_der()
                        .map_err(PkiError::der("CRL entry"))?,
                ),
                None => None,
            });
        }
        Ok(Self(v))
    }

    fn get(&self, r: RevocationReason) -> Option<&[u8]> {
        self.0.get(usize::from(r.code())).and_then(|o| o.as_deref())
    }
}

fn crl_reason(r: RevocationReason) -> CrlReason {
    match r {
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
        _ => CrlReason::Unspecified,
    }
}

impl Issuer {
    /// Builds and signs a CRL over `entries` (any order; the caller filters them to the scope).
    pub fn crl<'e>(
        &self,
        spec: &CrlSpec<'_>,
        entries: impl IntoIterator<Item = &'e CrlEntry>,
    ) -> Result<Vec<u8>, PkiError> {
        let reasons = ReasonExtensions::new()?;
        let mut body = Vec::new();
        for e in entries {
            if e.reason == RevocationReason::RemoveFromCrl && !matches!(spec.scope, CrlScope::Delta { .. }) {
                return Err(PkiError::Certificate(
                    "removeFromCRL belongs only in a delta CRL".into(),
                ));
            }
            let exts = match reasons.get(e.reason) {
                Some(b) => Some(AnyRef::from_der(b).map_err(PkiError::der("CRL entry"))?),
                None => None,
            };
            EntryRef {
                serial: UintRef::new(e.serial.as_be_bytes()).map_err(PkiError::der("CRL entry serial"))?,
                date: to_x509("revocationDate", e.revoked_at)?,
                extensions: exts,
            }
            .encode_to_vec(&mut body)
            .map_err(PkiError::der("CRL entry"))?;
        }
        let number = Uint::new(&spec.number.to_be_bytes()).map_err(PkiError::der("cRLNumber"))?;
        let mut extensions = vec![
            ext(oid::ext::AKI, false, &self.aki()?)?,
            ext(oid::ext::CRL_NUMBER, false, &CrlNumber(number))?,
        ];
        let kind = self.kind();
        let generation = self.generation();
        let idp = |path: String, users: bool, cas: bool| -> Result<Extension, PkiError> {
            let idp = IssuingDistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(&spec
                    .endpoints
                    .url(&path))?])),
                only_contains_user_certs: users,
                only_contains_ca_certs: cas,
                only_some_reasons: None,
                indirect_crl: false,
                only_contains_attribute_certs: false,
            };
            ext(oid::ext::IDP, true, &idp)
        };
        match spec.scope {
            CrlScope::Complete => extensions.push(ext(
                oid::ext::FRESHEST_CRL,
                false,
                &FreshestCrl(vec![DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![uri(&spec
                        .endpoints
                        .url(&Endpoints::delta_crl_path_gen(kind, generation)))?])),
                    reasons: None,
                    crl_issuer: None,
                }]),
            )?),
            CrlScope::Shard(s) => extensions.push(idp(
                Endpoints::shard_crl_path_gen(kind, generation, s),
                true,
                false,
            )?),
            CrlScope::Authority => {
                extensions.push(idp(Endpoints::arl_path_gen(kind, generation), false, true)?);
            }
            CrlScope::Delta { base } => {
                let base = Uint::new(&base.to_be_bytes()).map_err(PkiError::der("BaseCRLNumber"))?;
                extensions.push(ext(oid::ext::DELTA_CRL_INDICATOR, true, &BaseCrlNumber(base))?);
            }
        }
        let revoked = if body.is_empty() {
            None
        } else {
            Some(
                AnyRef::new(Tag::Sequence, &body)
                    .map_err(PkiError::der("CRL (too many entries for one CRL; use shards)"))?,
            )
        };
        let tbs = TbsCrl {
            version: Version::V2,
            signature: self.key().key_type().signature_algorithm(),
            issuer: self.name().clone(),
            this_update: to_x509("thisUpdate", spec.this_update)?,
            next_update: Some(to_x509("nextUpdate", spec.next_update)?),
            revoked,
            extensions: Some(extensions),
        };
        sign_der(&tbs.to_der().map_err(PkiError::der("CRL"))?, self.key(), "CRL")
    }
}
