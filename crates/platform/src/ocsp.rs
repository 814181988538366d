//! The OCSP responder service (RFC 6960, with RFC 5019's lightweight profile in mind): one delegated
//! responder per CA, answers from the in-memory [`StatusIndex`], and a cache of signed answers.
//!
//! Design, for throughput: most relying parties ask about one certificate without a nonce (RFC 5019).
//! That answer depends only on the CertID and the certificate's status, so it is signed once and
//! served from the cache until half of its validity has passed, or until the certificate's status
//! changes ([`OcspService::set_status`] drops it at once, so a revocation is never answered "good"
//! from the cache). Requests with a nonce, or about several certificates, are signed on demand. The
//! responder key may be EC (P-384 signs several times faster than RSA-2048 on these machines).
//!
//! After a CA key rollover every root generation still in force keeps its own delegated responder
//! and its own snapshot of the certificates it issued: a CertID names its issuer by the hashes of
//! the issuing root's name and key, so a certificate of generation 1 is answered by generation 1's
//! responder. Generations are added while the service runs ([`OcspService::add_generation`]).
//!
//! A request about a certificate of a CA this service does not serve, or about certificates of two
//! CAs (or two generations of one) at once (one delegated responder cannot speak for both), is
//! answered `unauthorized` (RFC 6960 §2.3); a request that does not parse, `malformedRequest`.
//!
//! Freshness: the snapshot is kept current by whoever follows the registry's change log and calls
//! [`OcspService::mark_synced`] after each successful read. When it falls more than a second
//! behind, answers carry the time of the last sync as thisUpdate (the status was known correct
//! then, RFC 6960 §4.2.2.1); past [`OcspService::with_max_staleness`] the service answers
//! `tryLater` rather than a status it can no longer vouch for.
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use jpki_model::{CertKind, RevocationReason};
use jpki_pki::ocsp::{
    CertId, CertIdHash, CertStatus, IssuerHashes, OcspRequest, OcspResponseStatus, Responder, SingleStatus,
    error_response,
};
use time::{Duration, OffsetDateTime};

use crate::status::{Lookup, StatusIndex, strip};

/// One generation of one CA as the responder serves it.
#[derive(Debug)]
struct Ca {
    kind: CertKind,
    /// The root generation (1 for a CA that was never rolled over).
    generation: u32,
    /// Its root (DER).
    root: Vec<u8>,
    hashes: IssuerHashes,
    /// Swapped when the authority renews the responder certificate; `None` while the generation
    /// has none (its certificates are looked up, but OCSP about them is `unauthorized`).
    responder: RwLock<Option<Arc<Responder>>>,
    index: RwLock<StatusIndex>,
    cache: Mutex<HashMap<(CertIdHash, Vec<u8>), Cached>>,
    /// Bumped by every status change, so an answer signed from a status read before the change is
    /// never put into the cache after the change dropped the old one.
    epoch: AtomicU64,
}

#[derive(Debug, Clone)]
struct Cached {
    body: Vec<u8>,
    refresh_at: OffsetDateTime,
    lookup: Lookup,
}

/// What one answered certificate was, for metering and the access record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// Which CA's certificate.
    pub kind: CertKind,
    /// Its serial (unsigned big-endian, no leading zeros).
    pub serial: Vec<u8>,
    /// The status given.
    pub lookup: Lookup,
}

/// The service's answer to one request.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// The OCSPResponse, DER (`application/ocsp-response`).
    pub body: Vec<u8>,
    /// The responseStatus.
    pub status: OcspResponseStatus,
    /// The certificates answered (empty unless successful).
    pub answered: Vec<Answered>,
    /// Whether the body came from the cache.
    pub cached: bool,
}

impl OcspAnswer {
    fn error(status: OcspResponseStatus) -> Self {
        Self {
            body: error_response(status).to_vec(),
            status,
            answered: Vec::new(),
            cached: false,
        }
    }
}

/// Cache entries before the cache is emptied (a crude bound on memory: about 1.5 KB each).
const CACHE_LIMIT: usize = 200_000;

/// The OCSP responder for the authority's CAs.
#[derive(Debug)]
pub struct OcspService {
    /// Every served generation of every CA; grows when a rollover is taken up.
    cas: RwLock<Vec<Arc<Ca>>>,
    /// Bumped whenever a generation is added (see [`OcspService::roots`]).
    roots_version: AtomicU64,
    validity: Duration,
    /// When the snapshot was last known to match the registry (Unix milliseconds; `i64::MIN`
    /// before the first [`OcspService::mark_synced`]).
    synced_at: AtomicI64,
    max_staleness: Option<Duration>,
}

/// The snapshot may lag this much before answers name the last sync time as thisUpdate.
const LAG_SHOWN_AFTER: Duration = Duration::seconds(1);

fn single(lookup: Lookup, now: OffsetDateTime, validity: Duration) -> SingleStatus {
    SingleStatus {
        status: match lookup {
            Lookup::Good => CertStatus::Good,
            Lookup::Unknown => CertStatus::Unknown,
            Lookup::Revoked { at, reason } => CertStatus::Revoked {
                at,
                reason: Some(reason),
            },
        },
        this_update: now,
        next_update: Some(now + validity),
    }
}

impl OcspService {
    /// A service whose answers are valid for `validity` (nextUpdate − thisUpdate).
    pub fn new(validity: Duration) -> Self {
        Self {
            cas: RwLock::new(Vec::new()),
            roots_version: AtomicU64::new(0),
            validity,
            synced_at: AtomicI64::new(i64::MIN),
            max_staleness: None,
        }
    }

    /// Refuse to answer (`tryLater`; the JSON API 503) once the snapshot is older than `max`:
    /// never a stale "good". Without it the service answers from whatever it holds.
    pub fn with_max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = Some(max);
        self
    }

    /// The snapshot matched the registry at `at` (call after each successful read of the change
    /// log, with the time the read began).
    pub fn mark_synced(&self, at: OffsetDateTime) {
        let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        self.synced_at.fetch_max(ms, Ordering::SeqCst);
    }

    /// When the snapshot last matched the registry, if it ever did.
    pub fn synced_at(&self) -> Option<OffsetDateTime> {
        match self.synced_at.load(Ordering::SeqCst) {
            i64::MIN => None,
            ms => OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok(),
        }
    }

    /// How far behind the registry the snapshot may be at `now` (`None`: never synced).
    pub fn staleness(&self, now: OffsetDateTime) -> Option<Duration> {
        self.synced_at().map(|t| (now - t).max(Duration::ZERO))
    }

    /// Whether the snapshot is too old to answer from at `now` (see
    /// [`with_max_staleness`](Self::with_max_staleness)).
    pub fn is_stale(&self, now: OffsetDateTime) -> bool {
        self.max_staleness
            .is_some_and(|max| self.staleness(now).is_none_or(|s| s > max))
    }

    /// The most stale the snapshot may get before answers stop.
    pub fn max_staleness(&self) -> Option<Duration> {
        self.max_staleness
    }

    /// thisUpdate for an answer given at `now`: `now` while the snapshot is current, else the
    /// last time it matched the registry (whole seconds, as the answer encodes them).
    fn status_time(&self, now: OffsetDateTime) -> OffsetDateTime {
        match self.synced_at() {
            Some(t) if now - t > LAG_SHOWN_AFTER => t.replace_nanosecond(0).unwrap_or(t),
            _ => now,
        }
    }

    /// Whether this service answers for `kind`'s CA with the root `root_der` (any generation).
    pub fn serves_root(&self, kind: CertKind, root_der: &[u8]) -> bool {
        let Ok(hashes) = IssuerHashes::from_cert_der(root_der) else {
            return false;
        };
        self.all().iter().any(|ca| ca.kind == kind && ca.hashes == hashes)
    }

    /// The generations of `kind`'s CA this service answers for, oldest first.
    pub fn generations(&self, kind: CertKind) -> Vec<u32> {
        let mut g: Vec<u32> = self
            .all()
            .iter()
            .filter(|ca| ca.kind == kind)
            .map(|ca| ca.generation)
            .collect();
        g.sort_unstable();
        g
    }

    /// Replaces the delegated responder of generation `generation` of `kind`'s CA (a renewed
    /// certificate) and drops the answers it signed. Returns whether that generation is served.
    pub fn replace_responder(&self, kind: CertKind, generation: u32, responder: Responder) -> bool {
        let Some(ca) = self.ca(kind, generation) else {
            return false;
        };
        if let Ok(mut r) = ca.responder.write() {
            *r = Some(Arc::new(responder));
        }
        ca.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut cache) = ca.cache.lock() {
            cache.clear();
        }
        true
    }

    /// The generation's responder; the error to answer with when there is none.
    fn responder(ca: &Ca) -> Result<Arc<Responder>, OcspResponseStatus> {
        match ca.responder.read() {
            Ok(r) => r.clone().ok_or(OcspResponseStatus::Unauthorized),
            Err(_) => Err(OcspResponseStatus::InternalError),
        }
    }

    /// Serves `kind`'s CA whose (first-generation) root is `ca_cert_der`, answering with
    /// `responder` (whose certificate that CA issued) from `index`.
    pub fn with_ca(
        self,
        kind: CertKind,
        ca_cert_der: &[u8],
        responder: Responder,
        index: StatusIndex,
    ) -> Result<Self, jpki_pki::PkiError> {
        self.add_generation(kind, 1, ca_cert_der, Some(responder), index)?;
        Ok(self)
    }

    /// Serves (from now on, while running) generation `generation` of `kind`'s CA, whose root is
    /// `root_der`, answering with `responder` (certified by that root; `None` until it has one,
    /// see [`OcspService::replace_responder`]) from `index`: the certificates that generation
    /// issued. A generation already served is replaced.
    pub fn add_generation(
        &self,
        kind: CertKind,
        generation: u32,
        root_der: &[u8],
        responder: Option<Responder>,
        index: StatusIndex,
    ) -> Result<(), jpki_pki::PkiError> {
        let ca = Arc::new(Ca {
            kind,
            generation,
            root: root_der.to_vec(),
            hashes: IssuerHashes::from_cert_der(root_der)?,
            responder: RwLock::new(responder.map(Arc::new)),
            index: RwLock::new(index),
            cache: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        });
        if let Ok(mut cas) = self.cas.write() {
            cas.retain(|c| !(c.kind == kind && c.generation == generation));
            cas.push(ca);
        }
        self.roots_version.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The roots of every served generation of every CA (kind, DER).
    pub fn roots(&self) -> Vec<(CertKind, Vec<u8>)> {
        self.all().iter().map(|ca| (ca.kind, ca.root.clone())).collect()
    }

    /// A number that changes whenever a generation is added: whoever keeps trust anchors from
    /// [`OcspService::roots`] reloads them when it moved.
    pub fn roots_version(&self) -> u64 {
        self.roots_version.load(Ordering::SeqCst)
    }

    /// A snapshot of the served CAs (cheap: a few `Arc`s).
    fn all(&self) -> Vec<Arc<Ca>> {
        self.cas.read().map(|c| c.clone()).unwrap_or_default()
    }

    fn ca(&self, kind: CertKind, generation: u32) -> Option<Arc<Ca>> {
        self.cas.read().ok().and_then(|cas| {
            cas.iter()
                .find(|c| c.kind == kind && c.generation == generation)
                .cloned()
        })
    }

    /// Records a status change of the certificate `serial` that generation `generation` of
    /// `kind`'s CA issued (issued or hold lifted: `None`; revoked or on hold: `Some`), and drops
    /// its cached answers at once. Returns false (and records nothing) if that generation is not
    /// served.
    pub fn set_status(
        &self,
        kind: CertKind,
        generation: u32,
        serial: &[u8],
        status: Option<(OffsetDateTime, RevocationReason)>,
    ) -> bool {
        let Some(ca) = self.ca(kind, generation) else {
            return false;
        };
        if let Ok(mut index) = ca.index.write() {
            match status {
                None => index.issued(serial),
                Some((at, reason)) => index.revoked(serial, at, reason),
            }
        }
        ca.epoch.fetch_add(1, Ordering::SeqCst);
        // Cached answers are keyed by the CertID's INTEGER content: the magnitude, with a 0x00 in
        // front when its top bit is set.
        let magnitude = strip(serial);
        let mut content = Vec::with_capacity(magnitude.len() + 1);
        if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(magnitude);
        if let Ok(mut cache) = ca.cache.lock() {
            cache.remove(&(CertIdHash::Sha1, content.clone()));
            cache.remove(&(CertIdHash::Sha256, content));
        }
        true
    }

    /// The current status of a certificate of `kind`'s CA (whichever generation issued it; serials
    /// are unique across generations), as the JSON API reports it.
    pub fn lookup(&self, kind: CertKind, serial: &[u8]) -> Lookup {
        let Ok(cas) = self.cas.read() else {
            return Lookup::Unknown;
        };
        cas.iter()
            .filter(|ca| ca.kind == kind)
            .filter_map(|ca| ca.index.read().ok().map(|i| i.lookup(serial)))
            .find(|l| *l != Lookup::Unknown)
            .unwrap_or(Lookup::Unknown)
    }

    /// Answers one DER OCSPRequest at time `now` for a caller who may ask about the certificates
    /// of the CAs for which `may` says yes (a relying party with auth-status but not sign-status
    /// gets `unauthorized` for a signature certificate).
    pub fn answer(&self, request: &[u8], now: OffsetDateTime, may: impl Fn(CertKind) -> bool) -> OcspAnswer {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let Ok(req) = OcspRequest::parse(request) else {
            return OcspAnswer::error(OcspResponseStatus::MalformedRequest);
        };
        if self.is_stale(now) {
            return OcspAnswer::error(OcspResponseStatus::TryLater);
        }
        // Every CertID must name the same served CA generation.
        let mut ca: Option<Arc<Ca>> = None;
        {
            let Ok(cas) = self.cas.read() else {
                return OcspAnswer::error(OcspResponseStatus::InternalError);
            };
            for id in &req.cert_ids {
                match cas.iter().find(|c| c.hashes.matches(id)) {
                    Some(c) if ca.as_ref().is_none_or(|a| Arc::ptr_eq(a, c)) => ca = Some(Arc::clone(c)),
                    _ => return OcspAnswer::error(OcspResponseStatus::Unauthorized),
                }
            }
        }
        let Some(ca) = ca else {
            return OcspAnswer::error(OcspResponseStatus::MalformedRequest);
        };
        if !may(ca.kind) {
            return OcspAnswer::error(OcspResponseStatus::Unauthorized);
        }
        if let Some(id) = req.cacheable_id() {
            return self.answer_cached(&ca, id, now);
        }
        let lookups: Vec<Lookup> = match ca.index.read() {
            Ok(index) => req.cert_ids.iter().map(|id| lookup_id(&index, id)).collect(),
            Err(_) => return OcspAnswer::error(OcspResponseStatus::InternalError),
        };
        let entries: Vec<(CertId, SingleStatus)> = req
            .cert_ids
            .iter()
            .zip(&lookups)
            .map(|(id, l)| (id.clone(), single(*l, self.status_time(now), self.validity)))
            .collect();
        let responder = match Self::responder(&ca) {
            Ok(r) => r,
            Err(status) => return OcspAnswer::error(status),
        };
        match responder.respond(&entries, req.nonce.as_deref(), now) {
            Ok(body) => OcspAnswer {
                body,
                status: OcspResponseStatus::Successful,
                answered: req
                    .cert_ids
                    .iter()
                    .zip(lookups)
                    .map(|(id, lookup)| Answered {
                        kind: ca.kind,
                        serial: id.serial_magnitude().to_vec(),
                        lookup,
                    })
                    .collect(),
                cached: false,
            },
            Err(_) => OcspAnswer::error(OcspResponseStatus::InternalError),
        }
    }

    fn answer_cached(&self, ca: &Ca, id: &CertId, now: OffsetDateTime) -> OcspAnswer {
        let serial = id.serial_magnitude().to_vec();
        // Keyed by the INTEGER content, so a negative serial never shares an entry with the
        // positive one of the same magnitude.
        let key = (id.hash, id.serial.clone());
        let hit = ca
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).filter(|e| e.refresh_at > now).cloned());
        if let Some(e) = hit {
            return OcspAnswer {
                body: e.body,
                status: OcspResponseStatus::Successful,
                answered: vec![Answered {
                    kind: ca.kind,
                    serial,
                    lookup: e.lookup,
                }],
                cached: true,
            };
        }
        let epoch = ca.epoch.load(Ordering::SeqCst);
        let Ok(lookup) = ca.index.read().map(|i| lookup_id(&i, id)) else {
            return OcspAnswer::error(OcspResponseStatus::InternalError);
        };
        let responder = match Self::responder(ca) {
            Ok(r) => r,
            Err(status) => return OcspAnswer::error(status),
        };
        let Ok(body) = responder.prebuild(id, single(lookup, self.status_time(now), self.validity), now)
        else {
            return OcspAnswer::error(OcspResponseStatus::InternalError);
        };
        if let Ok(mut cache) = ca.cache.lock()
            && ca.epoch.load(Ordering::SeqCst) == epoch
        {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(
                key,
                Cached {
                    body: body.clone(),
                    refresh_at: now + self.validity / 2,
                    lookup,
                },
            );
        }
        OcspAnswer {
            body,
            status: OcspResponseStatus::Successful,
            answered: vec![Answered {
                kind: ca.kind,
                serial,
                lookup,
            }],
            cached: false,
        }
    }
}

/// The status of the certificate a CertID names: a negative serial (no certificate has one) is
/// unknown.
fn lookup_id(index: &StatusIndex, id: &CertId) -> Lookup {
    if id.serial.first().is_some_and(|b| b & 0x80 != 0) {
        return Lookup::Unknown;
    }
    index.lookup(id.serial_magnitude())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use jpki_model::Serial;
    use jpki_pki::ocsp::parse_response;
    use jpki_pki::{Endpoints, Issuer, KeyType, RootSpec, SigningKey, SubjectPublicKey, issue_root};

    struct Fixture {
        service: OcspService,
        roots: Vec<Vec<u8>>,
        now: OffsetDateTime,
    }

    fn serial(i: u8) -> Vec<u8> {
        let mut b = [i; 16];
        b[0] = 0x40;
        b.to_vec()
    }

    fn fixture() -> Fixture {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let endpoints = Endpoints::new("http://127.0.0.1:7700").unwrap();
        let mut service = OcspService::new(Duration::hours(1));
        let mut roots = Vec::new();
        for (n, kind) in [CertKind::Signature, CertKind::Authentication]
            .into_iter()
            .enumerate()
        {
            let key = SigningKey::generate(KeyType::P384).unwrap();
            let root = issue_root(&RootSpec {
                kind,
                key: &key,
                serial: &Serial::from_be_bytes(&[1]).unwrap(),
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(3650),
                endpoints: &endpoints,
                generation: 1,
            })
            .unwrap();
            let issuer = Issuer::new(kind, key, root.clone()).unwrap();
            let rkey = SigningKey::generate(KeyType::P384).unwrap();
            let spki = SubjectPublicKey::from_der(&rkey.spki_der().unwrap()).unwrap();
            let rcert = issuer
                .issue_ocsp_responder(
                    &Serial::from_be_bytes(&[9]).unwrap(),
                    &spki,
                    now - Duration::days(1),
                    now + Duration::days(90),
                    &endpoints,
                )
                .unwrap();
            let revoked_at = now - Duration::hours(3);
            let a = serial(1 + n as u8 * 10);
            let b = serial(2 + n as u8 * 10);
            let index = StatusIndex::build([
                (a.as_slice(), None),
                (b.as_slice(), Some((revoked_at, RevocationReason::KeyCompromise))),
            ]);
            service = service
                .with_ca(kind, &root, Responder::new(rkey, rcert).unwrap(), index)
                .unwrap();
            roots.push(root);
        }
        Fixture { service, roots, now }
    }

    fn request(root: &[u8], serials: &[Vec<u8>], nonce: Option<&[u8]>) -> Vec<u8> {
        let h = IssuerHashes::from_cert_der(root).unwrap();
        let ids: Vec<CertId> = serials.iter().map(|s| h.cert_id(CertIdHash::Sha1, s)).collect();
        OcspRequest::build(&ids, nonce).unwrap()
    }

    fn statuses(body: &[u8]) -> Vec<CertStatus> {
        let r = parse_response(body).unwrap();
        r.basic
            .unwrap()
            .responses
            .into_iter()
            .map(|(_, s)| s.status)
            .collect()
    }

    #[test]
    fn answers_good_revoked_unknown_and_caches_only_nonce_free_single_requests() {
        let f = fixture();
        let root = &f.roots[0];
        let a = f
            .service
            .answer(&request(root, &[serial(1)], None), f.now, |_| true);
        assert_eq!(a.status, OcspResponseStatus::Successful);
        assert!(!a.cached);
        assert_eq!(statuses(&a.body), vec![CertStatus::Good]);
        let again = f.service.answer(
            &request(root, &[serial(1)], None),
            f.now + Duration::minutes(5),
            |_| true,
        );
        assert!(again.cached);
        assert_eq!(again.body, a.body, "the cached answer is served as signed");

        let r = f.service.answer(
            &request(root, &[serial(2), serial(3)], Some(&[7; 16])),
            f.now,
            |_| true,
        );
        assert!(!r.cached);
        assert!(matches!(
            statuses(&r.body).as_slice(),
            [
                CertStatus::Revoked {
                    reason: Some(RevocationReason::KeyCompromise),
                    ..
                },
                CertStatus::Unknown
            ]
        ));
        assert_eq!(
            parse_response(&r.body).unwrap().basic.unwrap().nonce.as_deref(),
            Some(&[7u8; 16][..])
        );
        assert_eq!(r.answered.len(), 2);
        assert_eq!(r.answered[0].kind, CertKind::Signature);

        // After half the validity the cached answer is re-signed.
        let later = f.service.answer(
            &request(root, &[serial(1)], None),
            f.now + Duration::minutes(31),
            |_| true,
        );
        assert!(!later.cached);
    }

    /// A snapshot that fell behind says so in thisUpdate; past the bound it answers tryLater, and
    /// a sync brings answers back. A renewed responder signs from then on.
    #[test]
    fn a_stale_snapshot_answers_try_later_never_good() {
        let Fixture { service, roots, now } = fixture();
        let service = service.with_max_staleness(Duration::seconds(5));
        let ask = |s: &OcspService, at: OffsetDateTime| {
            s.answer(&request(&roots[0], &[serial(1)], None), at, |_| true)
        };
        assert_eq!(
            ask(&service, now).status,
            OcspResponseStatus::TryLater,
            "never synced"
        );
        service.mark_synced(now - Duration::seconds(3));
        let lagging = ask(&service, now);
        assert_eq!(lagging.status, OcspResponseStatus::Successful);
        let basic = parse_response(&lagging.body).unwrap().basic.unwrap();
        assert_eq!(
            basic.responses[0].1.this_update,
            now - Duration::seconds(3),
            "thisUpdate is the last sync"
        );
        assert_eq!(service.staleness(now), Some(Duration::seconds(3)));
        let later = now + Duration::seconds(3);
        assert_eq!(
            ask(&service, later).status,
            OcspResponseStatus::TryLater,
            "cached or not"
        );
        service.mark_synced(later);
        assert_eq!(ask(&service, later).status, OcspResponseStatus::Successful);
        // Signed now (a nonce bypasses the cache of answers signed while lagging): thisUpdate is now.
        let fresh = service.answer(&request(&roots[0], &[serial(1)], Some(&[1; 16])), later, |_| true);
        let basic = parse_response(&fresh.body).unwrap().basic.unwrap();
        assert_eq!(basic.responses[0].1.this_update, later);
        // Marking an older sync never moves the mark back.
        service.mark_synced(now - Duration::hours(1));
        assert!(!service.is_stale(later));
    }

    #[test]
    fn a_revocation_is_never_answered_good_from_the_cache() {
        let f = fixture();
        let root = &f.roots[1];
        let first = f
            .service
            .answer(&request(root, &[serial(11)], None), f.now, |_| true);
        assert_eq!(statuses(&first.body), vec![CertStatus::Good]);
        f.service.set_status(
            CertKind::Authentication,
            1,
            &serial(11),
            Some((f.now, RevocationReason::CertificateHold)),
        );
        let after = f.service.answer(
            &request(root, &[serial(11)], None),
            f.now + Duration::seconds(1),
            |_| true,
        );
        assert!(!after.cached);
        assert!(matches!(
            statuses(&after.body).as_slice(),
            [CertStatus::Revoked {
                reason: Some(RevocationReason::CertificateHold),
                ..
            }]
        ));
        f.service
            .set_status(CertKind::Authentication, 1, &serial(11), None);
        let lifted = f.service.answer(
            &request(root, &[serial(11)], None),
            f.now + Duration::seconds(2),
            |_| true,
        );
        assert_eq!(statuses(&lifted.body), vec![CertStatus::Good]);
    }

    #[test]
    fn a_caller_gets_only_the_cas_it_may_ask_about() {
        let f = fixture();
        let auth_only = |k: CertKind| k == CertKind::Authentication;
        let sign = f
            .service
            .answer(&request(&f.roots[0], &[serial(1)], None), f.now, auth_only);
        assert_eq!(sign.status, OcspResponseStatus::Unauthorized);
        assert!(sign.answered.is_empty(), "nothing answered, nothing metered");
        let auth = f
            .service
            .answer(&request(&f.roots[1], &[serial(11)], None), f.now, auth_only);
        assert_eq!(auth.status, OcspResponseStatus::Successful);
    }

    #[test]
    fn a_negative_serial_is_unknown_and_never_answers_for_the_positive_one() {
        let f = fixture();
        let high = [0xC0u8; 16];
        f.service.set_status(CertKind::Signature, 1, &high, None);
        let h = IssuerHashes::from_cert_der(&f.roots[0]).unwrap();
        let positive = h.cert_id(CertIdHash::Sha1, &high);
        assert_eq!(positive.serial.first(), Some(&0), "a 0x00 keeps it positive");
        let negative = CertId {
            serial: high.to_vec(),
            ..positive.clone()
        };
        let neg = f
            .service
            .answer(&OcspRequest::build(&[negative], None).unwrap(), f.now, |_| true);
        assert_eq!(statuses(&neg.body), vec![CertStatus::Unknown]);
        let pos = f
            .service
            .answer(&OcspRequest::build(&[positive], None).unwrap(), f.now, |_| true);
        assert!(!pos.cached, "not the negative serial's cached answer");
        assert_eq!(statuses(&pos.body), vec![CertStatus::Good]);
    }

    /// After a rollover each generation answers for what it issued, signed by its own responder;
    /// a generation added while running answers at once.
    #[test]
    fn each_root_generation_answers_for_its_own_certificates() {
        let f = fixture();
        let endpoints = Endpoints::new("http://127.0.0.1:7700").unwrap();
        let key = SigningKey::generate(KeyType::P384).unwrap();
        let root2 = issue_root(&RootSpec {
            kind: CertKind::Signature,
            key: &key,
            serial: &Serial::from_be_bytes(&[2]).unwrap(),
            not_before: f.now - Duration::days(1),
            not_after: f.now + Duration::days(3650),
            endpoints: &endpoints,
            generation: 2,
        })
        .unwrap();
        let issuer = Issuer::new(CertKind::Signature, key, root2.clone()).unwrap();
        let rkey = SigningKey::generate(KeyType::P384).unwrap();
        let spki = SubjectPublicKey::from_der(&rkey.spki_der().unwrap()).unwrap();
        let rcert = issuer
            .issue_ocsp_responder(
                &Serial::from_be_bytes(&[10]).unwrap(),
                &spki,
                f.now - Duration::days(1),
                f.now + Duration::days(90),
                &endpoints,
            )
            .unwrap();
        assert!(!f.service.serves_root(CertKind::Signature, &root2));
        f.service
            .add_generation(
                CertKind::Signature,
                2,
                &root2,
                Some(Responder::new(rkey, rcert.clone()).unwrap()),
                StatusIndex::build(std::iter::empty()),
            )
            .unwrap();
        assert!(f.service.serves_root(CertKind::Signature, &root2));
        assert!(f.service.serves_root(CertKind::Signature, &f.roots[0]));
        assert_eq!(f.service.generations(CertKind::Signature), vec![1, 2]);
        let new = serial(5);
        assert!(f.service.set_status(CertKind::Signature, 2, &new, None));
        assert!(
            !f.service.set_status(CertKind::Signature, 3, &new, None),
            "not served"
        );

        // Generation 2's certificate through generation 2's responder.
        let a = f
            .service
            .answer(&request(&root2, std::slice::from_ref(&new), None), f.now, |_| {
                true
            });
        assert_eq!(statuses(&a.body), vec![CertStatus::Good]);
        let signer = parse_response(&a.body).unwrap().basic.unwrap();
        assert_eq!(signer.certs, vec![rcert], "signed by generation 2's responder");
        // Generation 1's certificate still through generation 1.
        let old = f
            .service
            .answer(&request(&f.roots[0], &[serial(1)], None), f.now, |_| true);
        assert_eq!(statuses(&old.body), vec![CertStatus::Good]);
        // A serial of one generation named under the other is not that generation's certificate.
        let cross = f
            .service
            .answer(&request(&root2, &[serial(1)], None), f.now, |_| true);
        assert_eq!(statuses(&cross.body), vec![CertStatus::Unknown]);
        // Both generations in one request: no one responder speaks for both.
        let h1 = IssuerHashes::from_cert_der(&f.roots[0]).unwrap();
        let h2 = IssuerHashes::from_cert_der(&root2).unwrap();
        let mixed = OcspRequest::build(
            &[
                h1.cert_id(CertIdHash::Sha1, &serial(1)),
                h2.cert_id(CertIdHash::Sha1, &new),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            f.service.answer(&mixed, f.now, |_| true).status,
            OcspResponseStatus::Unauthorized
        );
        // The JSON API's lookup finds either generation's certificate.
        assert_eq!(f.service.lookup(CertKind::Signature, &new), Lookup::Good);
        assert!(matches!(
            f.service.lookup(CertKind::Signature, &serial(2)),
            Lookup::Revoked { .. }
        ));
        assert_eq!(f.service.lookup(CertKind::Authentication, &new), Lookup::Unknown);

        // A generation without a responder yet: its certificates are looked up, OCSP about them
        // is unauthorized until one arrives.
        let key3 = SigningKey::generate(KeyType::P384).unwrap();
        let root3 = issue_root(&RootSpec {
            kind: CertKind::Signature,
            key: &key3,
            serial: &Serial::from_be_bytes(&[3]).unwrap(),
            not_before: f.now - Duration::days(1),
            not_after: f.now + Duration::days(3650),
            endpoints: &endpoints,
            generation: 3,
        })
        .unwrap();
        let third = serial(7);
        f.service
            .add_generation(
                CertKind::Signature,
                3,
                &root3,
                None,
                StatusIndex::build([(third.as_slice(), None)]),
            )
            .unwrap();
        assert_eq!(f.service.lookup(CertKind::Signature, &third), Lookup::Good);
        let none = f.service.answer(
            &request(&root3, std::slice::from_ref(&third), None),
            f.now,
            |_| true,
        );
        assert_eq!(none.status, OcspResponseStatus::Unauthorized);
        let issuer3 = Issuer::new(CertKind::Signature, key3, root3.clone()).unwrap();
        let rkey3 = SigningKey::generate(KeyType::P384).unwrap();
        let rcert3 = issuer3
            .issue_ocsp_responder(
                &Serial::from_be_bytes(&[11]).unwrap(),
                &SubjectPublicKey::from_der(&rkey3.spki_der().unwrap()).unwrap(),
                f.now - Duration::days(1),
                f.now + Duration::days(90),
                &endpoints,
            )
            .unwrap();
        assert!(
            f.service
                .replace_responder(CertKind::Signature, 3, Responder::new(rkey3, rcert3).unwrap())
        );
        let now_answered = f
            .service
            .answer(&request(&root3, &[third], None), f.now, |_| true);
        assert_eq!(statuses(&now_answered.body), vec![CertStatus::Good]);
    }

    #[test]
    fn bad_and_foreign_requests() {
        let f = fixture();
        assert_eq!(
            f.service.answer(b"garbage", f.now, |_| true).status,
            OcspResponseStatus::MalformedRequest
        );
        assert_eq!(
            f.service.answer(&[], f.now, |_| true).status,
            OcspResponseStatus::MalformedRequest
        );
        // Certificates of both CAs in one request: no one responder may answer.
        let h0 = IssuerHashes::from_cert_der(&f.roots[0]).unwrap();
        let h1 = IssuerHashes::from_cert_der(&f.roots[1]).unwrap();
        let mixed = OcspRequest::build(
            &[
                h0.cert_id(CertIdHash::Sha1, &serial(1)),
                h1.cert_id(CertIdHash::Sha1, &serial(11)),
            ],
            None,
        )
        .unwrap();
        let m = f.service.answer(&mixed, f.now, |_| true);
        assert_eq!(m.status, OcspResponseStatus::Unauthorized);
        assert_eq!(m.body, error_response(OcspResponseStatus::Unauthorized).to_vec());
        // Another CA altogether.
        let other = IssuerHashes::from_parts(b"\x30\x00", b"not our key");
        let foreign = OcspRequest::build(&[other.cert_id(CertIdHash::Sha256, &serial(1))], None).unwrap();
        assert_eq!(
            f.service.answer(&foreign, f.now, |_| true).status,
            OcspResponseStatus::Unauthorized
        );
    }
}
