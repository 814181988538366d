//! Certification path building (RFC 5280 §6, RFC 4158 in its simple form): from an end-entity
//! certificate through any intermediates offered with it to a configured trust anchor, checking
//! each link's name, key identifier and signature, and the CA constraints of every intermediate.
//! Time and revocation are judged by the caller, who knows which time matters (the signature
//! validation of ETSI EN 319 102-1 judges them at the best proven signing time).
//!
//! Across CA key generations nothing special is needed: a link certificate ([`crate::Issuer::issue_link`])
//! is an ordinary CA intermediate whose name and key identifier lead from an end entity of one
//! generation to the root of another, so a verifier that trusts only one generation's root builds
//! EE ← NewWithOld ← old root or EE ← OldWithNew ← new root when the link is offered, and a verifier
//! that trusts every generation's root needs no link. A link's revocation is on its issuer's ARL,
//! which the caller checks like any other CRL (`tests/rollover.rs`).
use std::sync::Arc;

use x509_cert::ext::pkix::KeyUsages;

use crate::PkiError;
use crate::x509::{ParsedCert, certificates_from_pem_or_der};

/// The longest path tried (end entity + intermediates + anchor).
pub const MAX_DEPTH: usize = 8;

/// Trusted root certificates (configuration, not only our own authority's roots).
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    anchors: Vec<Arc<ParsedCert>>,
}

impl TrustAnchors {
    /// No anchors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every certificate of a PEM bundle or one DER certificate.
    pub fn add_pem_or_der(&mut self, data: &[u8]) -> Result<usize, PkiError> {
        let certs = certificates_from_pem_or_der(data)?;
        let n = certs.len();
        for der in certs {
            self.add_der(&der)?;
        }
        Ok(n)
    }

    /// Adds one DER certificate.
    pub fn add_der(&mut self, der: &[u8]) -> Result<(), PkiError> {
        let cert = ParsedCert::from_der(der)?;
        if !self.anchors.iter().any(|a| a.sha256 == cert.sha256) {
            self.anchors.push(Arc::new(cert));
        }
        Ok(())
    }

    /// The anchors.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ParsedCert>> {
        self.anchors.iter()
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// A built path: the end entity first, the trust anchor last.
#[derive(Debug, Clone)]
pub struct CertPath {
    /// The certificates, end entity first, anchor last.
    pub certs: Vec<Arc<ParsedCert>>,
}

impl CertPath {
    /// The end-entity certificate.
    pub fn end_entity(&self) -> &ParsedCert {
        &self.certs[0]
    }

    /// The trust anchor.
    pub fn anchor(&self) -> &ParsedCert {
        // A path always holds at least the end entity; for a self-signed anchor used directly as
        // the end entity the two are the same certificate.
        &self.certs[self.certs.len() - 1]
    }

    /// (certificate, its issuer) for every link below the anchor.
    pub fn links(&self) -> impl Iterator<Item = (&ParsedCert, &ParsedCert)> {
        self.certs.windows(2).map(|w| (&*w[0], &*w[1]))
    }
}

/// Why no path was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// No chain to any trust anchor (unknown issuer, missing intermediate, signature by another key).
    NoChain(String),
    /// A chain exists but breaks a constraint (an intermediate that is not a CA, path length,
    /// keyCertSign missing, an unknown critical extension).
    Constraints(String),
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoChain(s) | Self::Constraints(s) => f.write_str(s),
        }
    }
}

fn links_to(cert: &ParsedCert, issuer: &ParsedCert) -> bool {
    cert.issuer_der == issuer.subject_der
        && match (&cert.authority_key_id, &issuer.subject_key_id) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
}

/// Builds a path from `ee` to one of `anchors`, trying the `intermediates` (e.g. the certificates a
/// CMS signature carries). The first path whose every signature verifies and whose CAs satisfy the
/// constraints wins; when none does, the error explains the most specific failure met.
pub fn build(
    ee: Arc<ParsedCert>,
    intermediates: &[Arc<ParsedCert>],
    anchors: &TrustAnchors,
) -> Result<CertPath, PathError> {
    if anchors.is_empty() {
        return Err(PathError::NoChain(
            "no trust anchors are configured (--trust)".into(),
        ));
    }
    if let Some(id) = ee.unknown_critical.first() {
        return Err(PathError::Constraints(format!(
            "the certificate {} has an unsupported critical extension {id}",
            ee.subject
        )));
    }
    // A trust anchor offered as the end entity itself.
    if anchors.iter().any(|a| a.sha256 == ee.sha256) {
        return Ok(CertPath { certs: vec![ee] });
    }
    let mut best_err: Option<PathError> = None;
    let mut path = vec![ee];
    if search(&mut path, intermediates, anchors, &mut best_err) {
        return Ok(CertPath { certs: path });
    }
    Err(best_err.unwrap_or_else(|| {
        PathError::NoChain(format!(
            "no trust anchor issued {} (issuer {})",
            path[0].subject, path[0].issuer
        ))
    }))
}

fn note(best: &mut Option<PathError>, e: PathError) {
    // Constraint failures are more specific than "no chain": keep the first of them.
    match (&*best, &e) {
        (None, _) | (Some(PathError::NoChain(_)), PathError::Constraints(_)) => *best = Some(e),
        _ => {}
    }
}

fn search(
    path: &mut Vec<Arc<ParsedCert>>,
    intermediates: &[Arc<ParsedCert>],
    anchors: &TrustAnchors,
    best: &mut Option<PathError>,
) -> bool {
    let Some(current) = path.last().cloned() else {
        return false;
    };
    for anchor in anchors.iter() {
        if !links_to(&current, anchor) {
            if current.issuer_der == anchor.subject_der {
                note(
                    best,
                    PathError::NoChain(format!(
                        "{} names the trust anchor {} as issuer but was issued by another key of that name \
                         (authority key identifier differs)",
                        current.subject, anchor.subject
                    )),
                );
            }
            continue;
        }
        if !current.is_signed_by(&anchor.public_key) {
            note(
                best,
                PathError::NoChain(format!(
                    "{} names the trust anchor {} as issuer but its signature does not verify with that \
                     anchor's key",
                    current.subject, anchor.subject
                )),
            );
            continue;
        }
        // RFC 5280 §6.1.4: the anchor's own constraints are not checked (it is configuration); the
        // path length is counted from the certificates below it.
        path.push(anchor.clone());
        if let Err(e) = check_ca_constraints(path) {
            path.pop();
            note(best, e);
            continue;
        }
        return true;
    }
    if path.len() >= MAX_DEPTH {
        note(
            best,
            PathError::NoChain(format!("no trust anchor within {MAX_DEPTH} certificates")),
        );
        return false;
    }
    for ca in intermediates {
        if path.iter().any(|c| c.sha256 == ca.sha256) || !links_to(&current, ca) {
            continue;
        }
        if ca.is_self_issued()
            && ca.is_signed_by(&ca.public_key)
            && !anchors.iter().any(|a| a.sha256 == ca.sha256)
        {
            note(
                best,
                PathError::NoChain(format!(
                    "{} is a root that is not among the trust anchors",
                    ca.subject
                )),
            );
            continue;
        }
        if !current.is_signed_by(&ca.public_key) {
            note(
                best,
                PathError::NoChain(format!(
                    "{} names {} as issuer but its signature does not verify with that certificate's key",
                    current.subject, ca.subject
                )),
            );
            continue;
        }
        path.push(ca.clone());
        if search(path, intermediates, anchors, best) {
            return true;
        }
        path.pop();
    }
    if current.is_self_issued() && current.is_signed_by(&current.public_key) {
        note(
            best,
            PathError::NoChain(format!(
                "{} is a root that is not among the trust anchors",
                current.subject
            )),
        );
    } else {
        note(
            best,
            PathError::NoChain(format!(
                "the issuer of {} ({}) is neither a trust anchor nor among the certificates offered",
                current.subject, current.issuer
            )),
        );
    }
    false
}

/// CA checks for every intermediate (not the end entity, not the anchor): cA true, keyCertSign when
/// keyUsage is present, pathLenConstraint, no unknown critical extension.
fn check_ca_constraints(path: &[Arc<ParsedCert>]) -> Result<(), PathError> {
    let n = path.len();
    for (i, ca) in path.iter().enumerate().take(n - 1).skip(1) {
        if !ca.is_ca {
            return Err(PathError::Constraints(format!(
                "{} issued a certificate but is not a CA (basicConstraints)",
                ca.subject
            )));
        }
        if !ca.allows(KeyUsages::KeyCertSign) {
            return Err(PathError::Constraints(format!(
                "{} issued a certificate but its keyUsage lacks keyCertSign",
                ca.subject
            )));
        }
        if let Some(id) = ca.unknown_critical.first() {
            return Err(PathError::Constraints(format!(
                "{} has an unsupported critical extension {id}",
                ca.subject
            )));
        }
        // Intermediates below this CA, not counting the end entity (RFC 5280 §4.2.1.9).
        let below = i - 1;
        if let Some(max) = ca.path_len
            && below > usize::from(max)
        {
            return Err(PathError::Constraints(format!(
                "{} allows {max} intermediate CA(s) below it, the path has {below}",
                ca.subject
            )));
        }
    }
    Ok(())
}
