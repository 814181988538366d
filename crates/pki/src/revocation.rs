//! Revocation status from CRLs (RFC 5280 §5, §6.3), as a verifier needs it: any issuer's CRLs,
//! complete or partitioned by issuingDistributionPoint (our shards), delta CRLs applied on top of their
//! base, signatures checked against the issuer before an entry is believed, and an answer that says
//! where it came from.
use std::collections::HashMap;
use std::sync::Mutex;

use const_oid::ObjectIdentifier as Oid;
use der::asn1::{AnyRef, BitString, UintRef};
use der::{Decode, Encode, Tag, Tagged};
use jpki_model::RevocationReason;
use time::OffsetDateTime;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, CrlReason};
use x509_cert::time::Time;

use crate::x509::{ParsedCert, PublicKey};
use crate::{PkiError, oid, time::from_x509};

/// Largest CRL accepted (a complete CRL of a million entries is about 40 MiB).
pub const MAX_CRL_LEN: usize = 512 * 1024 * 1024;

/// One entry of a CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// revocationDate.
    pub at: OffsetDateTime,
    /// reasonCode (unspecified when absent).
    pub reason: RevocationReason,
}

/// A decoded CRL whose entries can be looked up by serial.
#[derive(Debug)]
pub struct ParsedCrl {
    der_len: usize,
    tbs_der: Vec<u8>,
    signature_algorithm: Oid,
    signature: Vec<u8>,
    /// Issuer DN, DER.
    pub issuer_der: Vec<u8>,
    /// Issuer DN, text.
    pub issuer: String,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: Option<OffsetDateTime>,
    /// cRLNumber.
    pub number: Option<u64>,
    /// deltaCRLIndicator (the base CRL number) for a delta CRL.
    pub delta_base: Option<u64>,
    /// authorityKeyIdentifier keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// issuingDistributionPoint full-name URIs (empty: the CRL covers every certificate of the issuer).
    pub scope_urls: Vec<String>,
    /// onlyContainsCACerts.
    pub only_ca: bool,
    /// onlyContainsUserCerts.
    pub only_user: bool,
    /// Where the CRL was read from (file name or URL), for reports.
    pub source: String,
    description: String,
    entries: HashMap<Vec<u8>, Revoked>,
}

#[derive(der::Sequence)]
struct SignedRef<'a> {
    tbs: AnyRef<'a>,
    algorithm: spki::AlgorithmIdentifierOwned,
    signature: BitString,
}

#[derive(der::Sequence)]
struct TbsCrlRef<'a> {
    version: Option<u8>,
    signature: spki::AlgorithmIdentifierOwned,
    issuer: x509_cert::name::Name,
    this_update: Time,
    next_update: Option<Time>,
    revoked: Option<Vec<EntryRef<'a>>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

#[derive(der::Sequence)]
struct EntryRef<'a> {
    serial: UintRef<'a>,
    date: Time,
    extensions: Option<Vec<Extension>>,
}

fn bad(e: der::Error) -> PkiError {
    PkiError::Der {
        what: "CRL",
        source: e,
    }
}

fn reason_of(r: CrlReason) -> RevocationReason {
    match r {
        CrlReason::KeyCompromise => RevocationReason::KeyCompromise,
        CrlReason::CaCompromise => RevocationReason::CaCompromise,
        CrlReason::AffiliationChanged => RevocationReason::AffiliationChanged,
        CrlReason::Superseded => RevocationReason::Superseded,
        CrlReason::CessationOfOperation => RevocationReason::CessationOfOperation,
        CrlReason::CertificateHold => RevocationReason::CertificateHold,
        CrlReason::RemoveFromCRL => RevocationReason::RemoveFromCrl,
        CrlReason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        CrlReason::AaCompromise => RevocationReason::AaCompromise,
        CrlReason::Unspecified => RevocationReason::Unspecified,
    }
}

fn strip(mut s: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = s {
        s = rest;
    }
    s
}

impl ParsedCrl {
    /// Decodes a DER (or PEM "X509 CRL") CRL. `source` names it in reports.
    pub fn from_der(data: &[u8], source: &str) -> Result<Self, PkiError> {
        if data.len() > MAX_CRL_LEN {
            return Err(PkiError::Certificate(format!(
                "CRL {source}: {} bytes is over the limit of {MAX_CRL_LEN} bytes",
                data.len()
            )));
        }
        let pem;
        let der = if data.starts_with(b"-----BEGIN") {
            let (label, d) = der::pem::decode_vec(data).map_err(|e| PkiError::Der {
                what: "PEM CRL",
                source: e.into(),
            })?;
            if label != "X509 CRL" {
                return Err(PkiError::Certificate(format!(
                    "{source}: PEM label {label} is not X509 CRL"
                )));
            }
            pem = d;
            &pem[..]
        } else {
            data
        };
        let signed = SignedRef::from_der(der).map_err(bad)?;
        if signed.tbs.tag() != Tag::Sequence {
            return Err(PkiError::Certificate(format!("{source}: not a CRL")));
        }
        let tbs_der = signed.tbs.to_der().map_err(bad)?;
        let tbs = TbsCrlRef::from_der(&tbs_der).map_err(bad)?;
        let mut crl = Self {
            der_len: der.len(),
            tbs_der: Vec::new(),
            signature_algorithm: signed.algorithm.oid,
            signature: signed.signature.raw_bytes().to_vec(),
            issuer_der: tbs.issuer.to_der().map_err(bad)?,
            issuer: tbs.issuer.to_string(),
            this_update: from_x509(&tbs.this_update)?,
            next_update: tbs.next_update.as_ref().map(from_x509).transpose()?,
            number: None,
            delta_base: None,
            authority_key_id: None,
            scope_urls: Vec::new(),
            only_ca: false,
            only_user: false,
            source: source.to_owned(),
            description: String::new(),
            entries: HashMap::new(),
        };
        for e in tbs.extensions.iter().flatten() {
            let v = e.extn_value.as_bytes();
            match e.extn_id {
                id if id == oid::ext::CRL_NUMBER => {
                    crl.number = u64_of(CrlNumber::from_der(v).map_err(bad)?.0.as_bytes());
                }
                id if id == oid::ext::DELTA_CRL_INDICATOR => {
                    crl.delta_base = u64_of(BaseCrlNumber::from_der(v).map_err(bad)?.0.as_bytes());
                }
                id if id == oid::ext::AKI => {
                    crl.authority_key_id = AuthorityKeyIdentifier::from_der(v)
                        .map_err(bad)?
                        .key_identifier
                        .map(|k| k.into_bytes().into_vec());
                }
                id if id == oid::ext::IDP => {
                    let idp = IssuingDistributionPoint::from_der(v).map_err(bad)?;
                    crl.only_ca = idp.only_contains_ca_certs;
                    crl.only_user = idp.only_contains_user_certs;
                    if let Some(DistributionPointName::FullName(names)) = idp.distribution_point {
                        crl.scope_urls = names
                            .iter()
                            .filter_map(|g| match g {
                                GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                                _ => None,
                            })
                            .collect();
                    }
                }
                id if e.critical => {
                    return Err(PkiError::Certificate(format!(
                        "CRL {source}: unsupported critical extension {id}"
                    )));
                }
                _ => {}
            }
        }
        for entry in tbs.revoked.into_iter().flatten() {
            let mut reason = RevocationReason::Unspecified;
            for e in entry.extensions.iter().flatten() {
                if e.extn_id == oid::ext::REASON_CODE {
                    reason = reason_of(CrlReason::from_der(e.extn_value.as_bytes()).map_err(bad)?);
                }
            }
            crl.entries.insert(
                strip(entry.serial.as_bytes()).to_vec(),
                Revoked {
                    at: from_x509(&entry.date)?,
                    reason,
                },
            );
        }
        crl.tbs_der = tbs_der;
        crl.description = crl.describe_now();
        Ok(crl)
    }

    /// Whether the CRL is signed by `issuer` (name, key identifier and signature all match).
    pub fn is_issued_by(&self, issuer: &ParsedCert) -> bool {
        self.issuer_der == issuer.subject_der
            && match (&self.authority_key_id, &issuer.subject_key_id) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            }
            && self.verify_signature(&issuer.public_key)
    }

    fn verify_signature(&self, key: &PublicKey) -> bool {
        key.verify(&self.signature_algorithm, &self.tbs_der, &self.signature)
            .unwrap_or(false)
    }

    /// The entry for a serial (big-endian, leading zeros ignored).
    pub fn lookup(&self, serial: &[u8]) -> Option<Revoked> {
        self.entries.get(strip(serial)).copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the CRL lists nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Size of the DER.
    pub fn der_len(&self) -> usize {
        self.der_len
    }

    /// Whether this (complete or partitioned, not delta) CRL speaks for `cert`: an unscoped CRL covers
    /// every certificate of its issuer; a scoped one only certificates naming one of its URIs as a
    /// distribution point; onlyContainsCACerts/onlyContainsUserCerts restrict it further.
    pub fn covers(&self, cert: &ParsedCert) -> bool {
        if (self.only_ca && !cert.is_ca) || (self.only_user && cert.is_ca) {
            return false;
        }
        self.scope_urls.is_empty() || self.scope_urls.iter().any(|u| cert.crl_urls.contains(u))
    }

    /// A one-line description for reports: kind, number, source, thisUpdate and nextUpdate.
    pub fn describe(&self) -> &str {
        &self.description
    }

    fn describe_now(&self) -> String {
        let number = self.number.map(|n| format!(" #{n}")).unwrap_or_default();
        let kind = if self.delta_base.is_some() {
            "delta CRL"
        } else {
            "CRL"
        };
        let next = self
            .next_update
            .map(|t| format!(", next update {}", rfc3339(t)))
            .unwrap_or_default();
        format!(
            "{kind}{number} {} (issued {}{next})",
            self.source,
            rfc3339(self.this_update)
        )
    }
}

fn u64_of(b: &[u8]) -> Option<u64> {
    let b = strip(b);
    (b.len() <= 8).then(|| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// What revocation information says about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not listed by a CRL that covers it.
    Good {
        /// The CRL (and delta) that says so.
        source: String,
        /// thisUpdate of that CRL.
        this_update: OffsetDateTime,
        /// nextUpdate of that CRL.
        next_update: Option<OffsetDateTime>,
    },
    /// Revoked (for good) or on hold.
    Revoked {
        /// When.
        at: OffsetDateTime,
        /// Why (certificateHold for a hold).
        reason: RevocationReason,
        /// The CRL that says so.
        source: String,
    },
    /// No usable revocation information.
    Unknown {
        /// Why, in one line.
        why: String,
    },
}

/// Revocation information a verifier can ask. CRLs today; the platform's online service later.
pub trait RevocationSource: Send + Sync {
    /// The status of `cert` issued by `issuer`, as of the newest information held.
    fn status(&self, cert: &ParsedCert, issuer: &ParsedCert) -> Status;
}

/// CRLs held in memory, with each CRL's signature checked once per issuer certificate.
#[derive(Debug, Default)]
pub struct CrlStore {
    crls: Vec<ParsedCrl>,
    /// (crl index, issuer sha256) → signature verified.
    verified: Mutex<HashMap<(usize, [u8; 32]), bool>>,
}

impl CrlStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a CRL.
    pub fn add(&mut self, crl: ParsedCrl) {
        self.crls.push(crl);
    }

    /// Reads every `*.crl` file under `dir` (recursively). Returns how many were loaded; a file that is
    /// not a CRL is an error naming it.
    pub fn load_dir(&mut self, dir: &std::path::Path) -> Result<usize, PkiError> {
        let mut n = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let rd = std::fs::read_dir(&d)
                .map_err(|e| PkiError::Certificate(format!("CRL directory {}: {e}", d.display())))?;
            let mut paths: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .extension()
                    .is_some_and(|e| e == "crl" || e == "der" || e == "pem")
                {
                    let data = std::fs::read(&p)
                        .map_err(|e| PkiError::Certificate(format!("CRL {}: {e}", p.display())))?;
                    let shown = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
                    self.add(
                        ParsedCrl::from_der(&data, &shown)
                            .map_err(|e| PkiError::Certificate(format!("CRL {}: {e}", p.display())))?,
                    );
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Number of CRLs held.
    pub fn len(&self) -> usize {
        self.crls.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.crls.is_empty()
    }

    fn signed_by(&self, i: usize, issuer: &ParsedCert) -> bool {
        let key = (i, issuer.sha256);
        if let Ok(cache) = self.verified.lock()
            && let Some(&v) = cache.get(&key)
        {
            return v;
        }
        let v = self.crls.get(i).is_some_and(|c| c.is_issued_by(issuer));
        if let Ok(mut cache) = self.verified.lock() {
            cache.insert(key, v);
        }
        v
    }
}

impl RevocationSource for CrlStore {
    fn status(&self, cert: &ParsedCert, issuer: &ParsedCert) -> Status {
        // The newest covering complete CRL, then the newest delta on top of a base it can extend.
        let mut best: Option<usize> = None;
        let mut wrong_signer = 0;
        for (i, crl) in self.crls.iter().enumerate() {
            if crl.delta_base.is_some() || crl.issuer_der != cert.issuer_der || !crl.covers(cert) {
                continue;
            }
            if !self.signed_by(i, issuer) {
                wrong_signer += 1;
                continue;
            }
            if best.is_none_or(|b| newer(crl, &self.crls[b])) {
                best = Some(i);
            }
        }
        let Some(b) = best else {
            let why = if wrong_signer > 0 {
                format!(
                    "{wrong_signer} CRL(s) name {} as issuer but are not signed by its key",
                    issuer.subject
                )
            } else {
                format!("no CRL from {} covers this certificate", issuer.subject)
            };
            return Status::Unknown { why };
        };
        let base = &self.crls[b];
        let mut answer = base.lookup(&cert.serial);
        let mut source = base.describe().to_owned();
        let mut this_update = base.this_update;
        let mut next_update = base.next_update;
        let base_number = base.number.unwrap_or(0);
        let delta = self
            .crls
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                d.delta_base.is_some_and(|db| db <= base_number)
                    && d.number.is_some_and(|n| n > base_number)
                    && d.issuer_der == cert.issuer_der
                    && (d.scope_urls.is_empty() || d.covers(cert))
            })
            .filter(|(i, _)| self.signed_by(*i, issuer))
            .max_by_key(|(_, d)| d.number);
        if let Some((_, d)) = delta {
            match d.lookup(&cert.serial) {
                Some(r) if r.reason == RevocationReason::RemoveFromCrl => answer = None,
                Some(r) => answer = Some(r),
                None => {}
            }
            source = format!("{source} + {}", d.describe());
            this_update = d.this_update;
            next_update = d.next_update;
        }
        match answer {
            Some(r) => Status::Revoked {
                at: r.at,
                reason: r.reason,
                source,
            },
            None => Status::Good {
                source,
                this_update,
                next_update,
            },
        }
    }
}

fn newer(a: &ParsedCrl, b: &ParsedCrl) -> bool {
    (a.number, a.this_update) > (b.number, b.this_update)
}
