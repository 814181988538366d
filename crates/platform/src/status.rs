//! The platform's in-memory picture of one CA's certificates: which serials it issued and which of
//! them are revoked or on hold, now. Built from the authority's registry and updated as statuses
//! change; every OCSP and validity answer reads it.
//!
//! Size: JPKI end-entity serials are 16 bytes (see `jpki_model::Serial::generate`), so they are kept as
//! `u128` in sorted vectors: 16 bytes per issued certificate, and 16 + 8 = 24 bytes per revoked one
//! (serial; revocation time in seconds since 1970 as `u32` and the reason code, padded to 8), under
//! the issue's bar of 32 bytes per revoked certificate ([`StatusIndex::revoked_bytes_each`] measures
//! it). Lookups are binary
//! searches. Changes go to a small overlay map first and are merged into the sorted vectors when it
//! grows, so a revocation never moves a million entries. Other serial lengths (CA and service
//! certificates) go to a plain map; there are few.
use std::collections::HashMap;

use jpki_model::RevocationReason;
use time::OffsetDateTime;

/// What the index knows about one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Never issued by this CA (as far as the index knows).
    Unknown,
    /// Issued and not revoked.
    Good,
    /// Revoked (or on hold, reason certificateHold) since `at`.
    Revoked {
        /// When, to the second.
        at: OffsetDateTime,
        /// Why.
        reason: RevocationReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    secs: u32,
    reason: u8,
}

impl Packed {
    fn new(at: OffsetDateTime, reason: RevocationReason) -> Self {
        Self {
            secs: u32::try_from(at.unix_timestamp().max(0)).unwrap_or(u32::MAX),
            reason: reason.code(),
        }
    }

    fn lookup(self) -> Lookup {
        Lookup::Revoked {
            at: OffsetDateTime::from_unix_timestamp(i64::from(self.secs))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason: RevocationReason::from_code(self.reason).unwrap_or(RevocationReason::Unspecified),
        }
    }
}

/// Overlay entries before a merge.
const MERGE_AT: usize = 4096;

/// One CA's issued and revoked serials.
#[derive(Debug, Default, Clone)]
pub struct StatusIndex {
    issued: Vec<u128>,
    revoked_keys: Vec<u128>,
    revoked_info: Vec<Packed>,
    /// Changes not yet merged: `Some` revoked, `None` good again (a lifted hold) or newly issued.
    overlay: HashMap<u128, Option<Packed>>,
    /// Serials that are not 16 bytes: `Some` revoked, `None` good.
    other: HashMap<Vec<u8>, Option<Packed>>,
}

fn key(magnitude: &[u8]) -> Option<u128> {
    let bytes: [u8; 16] = magnitude.try_into().ok()?;
    Some(u128::from_be_bytes(bytes))
}

/// `s` without leading zero octets (a serial's magnitude).
pub(crate) fn strip(mut s: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = s {
        s = rest;
    }
    s
}

impl StatusIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index from every certificate the CA issued: its serial (unsigned big-endian) and
    /// its current revocation, if any.
    pub fn build<'a>(
        certs: impl IntoIterator<Item = (&'a [u8], Option<(OffsetDateTime, RevocationReason)>)>,
    ) -> Self {
        let mut s = Self::new();
        let mut revoked: Vec<(u128, Packed)> = Vec::new();
        for (serial, status) in certs {
            let serial = strip(serial);
            let packed = status.map(|(at, r)| Packed::new(at, r));
            match key(serial) {
                Some(k) => {
                    s.issued.push(k);
                    if let Some(p) = packed {
                        revoked.push((k, p));
                    }
                }
                None => {
                    s.other.insert(serial.to_vec(), packed);
                }
            }
        }
        s.issued.sort_unstable();
        s.issued.dedup();
        s.issued.shrink_to_fit();
        revoked.sort_unstable_by_key(|(k, _)| *k);
        revoked.dedup_by_key(|(k, _)| *k);
        s.revoked_keys = revoked.iter().map(|(k, _)| *k).collect();
        s.revoked_info = revoked.iter().map(|(_, p)| *p).collect();
        s
    }

    /// The status of `serial` (unsigned big-endian; leading zeros ignored).
    pub fn lookup(&self, serial: &[u8]) -> Lookup {
        let serial = strip(serial);
        let Some(k) = key(serial) else {
            return match self.other.get(serial) {
                None => Lookup::Unknown,
                Some(None) => Lookup::Good,
                Some(Some(p)) => p.lookup(),
            };
        };
        if let Some(change) = self.overlay.get(&k) {
            return change.map_or(Lookup::Good, Packed::lookup);
        }
        if let Ok(i) = self.revoked_keys.binary_search(&k) {
            return self.revoked_info.get(i).map_or(Lookup::Unknown, |p| p.lookup());
        }
        if self.issued.binary_search(&k).is_ok() {
            Lookup::Good
        } else {
            Lookup::Unknown
        }
    }

    /// Records a newly issued certificate.
    pub fn issued(&mut self, serial: &[u8]) {
        self.set(serial, None);
    }

    /// Records a revocation (or a hold, with reason certificateHold).
    pub fn revoked(&mut self, serial: &[u8], at: OffsetDateTime, reason: RevocationReason) {
        self.set(serial, Some(Packed::new(at, reason)));
    }

    /// Records that a hold was lifted: the certificate is good again.
    pub fn lifted(&mut self, serial: &[u8]) {
        self.set(serial, None);
    }

    fn set(&mut self, serial: &[u8], state: Option<Packed>) {
        let serial = strip(serial);
        match key(serial) {
            Some(k) => {
                self.overlay.insert(k, state);
                if self.overlay.len() >= MERGE_AT {
                    self.merge();
                }
            }
            None => {
                self.other.insert(serial.to_vec(), state);
            }
        }
    }

    /// Folds the overlay into the sorted vectors.
    pub fn merge(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        let mut changes: Vec<(u128, Option<Packed>)> = self.overlay.drain().collect();
        changes.sort_unstable_by_key(|(k, _)| *k);
        let mut issued = Vec::with_capacity(self.issued.len() + changes.len());
        merge_sorted(&self.issued, changes.iter().map(|(k, _)| *k), &mut issued);
        self.issued = issued;
        let mut revoked: Vec<(u128, Packed)> = Vec::with_capacity(self.revoked_keys.len() + changes.len());
        let mut old = self
            .revoked_keys
            .iter()
            .copied()
            .zip(self.revoked_info.iter().copied())
            .peekable();
        for (k, state) in changes {
            while let Some((ok, op)) = old.next_if(|(ok, _)| *ok < k) {
                revoked.push((ok, op));
            }
            old.next_if(|(ok, _)| *ok == k);
            if let Some(p) = state {
                revoked.push((k, p));
            }
        }
        revoked.extend(old);
        self.revoked_keys = revoked.iter().map(|(k, _)| *k).collect();
        self.revoked_info = revoked.iter().map(|(_, p)| *p).collect();
    }

    /// How many certificates are known (issued), and how many of them are revoked or on hold now
    /// (merging pending changes first).
    pub fn counts(&mut self) -> (usize, usize) {
        self.merge();
        let other_revoked = self.other.values().filter(|v| v.is_some()).count();
        (
            self.issued.len() + self.other.len(),
            self.revoked_keys.len() + other_revoked,
        )
    }

    /// Bytes of memory the sorted revoked entries hold (allocated capacity), per revoked certificate
    /// in them (the issue's bar: at most 32); `None` when there are none.
    pub fn revoked_bytes_each(&self) -> Option<usize> {
        let bytes = self.revoked_keys.capacity() * std::mem::size_of::<u128>()
            + self.revoked_info.capacity() * std::mem::size_of::<Packed>();
        bytes.checked_div(self.revoked_keys.len())
    }
}

/// Merges the sorted, deduplicated `a` with the sorted `b` into `out`, without duplicates.
fn merge_sorted(a: &[u128], b: impl Iterator<Item = u128>, out: &mut Vec<u128>) {
    let mut a = a.iter().copied().peekable();
    for x in b {
        while let Some(y) = a.next_if(|y| *y < x) {
            out.push(y);
        }
        a.next_if(|y| *y == x);
        if out.last() != Some(&x) {
            out.push(x);
        }
    }
    out.extend(a);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(s).unwrap()
    }

    fn serial(i: u64) -> Vec<u8> {
        let mut b = [0u8; 16];
        b[0] = 0x40;
        b[8..].copy_from_slice(&i.to_be_bytes());
        b.to_vec()
    }

    #[test]
    fn statuses_of_every_kind() {
        let a = serial(1);
        let b = serial(2);
        let short = vec![0x01];
        let idx = StatusIndex::build([
            (a.as_slice(), None),
            (
                b.as_slice(),
                Some((t(1_800_000_000), RevocationReason::KeyCompromise)),
            ),
            (short.as_slice(), None),
        ]);
        assert_eq!(idx.lookup(&a), Lookup::Good);
        assert_eq!(
            idx.lookup(&b),
            Lookup::Revoked {
                at: t(1_800_000_000),
                reason: RevocationReason::KeyCompromise
            }
        );
        assert_eq!(idx.lookup(&[0, 0x01]), Lookup::Good, "leading zeros are ignored");
        assert_eq!(idx.lookup(&serial(3)), Lookup::Unknown);
        assert_eq!(idx.lookup(&[0x02]), Lookup::Unknown);
        let mut idx = idx;
        assert_eq!(idx.counts(), (3, 1));
    }

    #[test]
    fn a_revoked_certificate_takes_at_most_32_bytes() {
        let serials: Vec<Vec<u8>> = (0..100_000u64).map(serial).collect();
        let at = t(1_800_000_000);
        let mut idx = StatusIndex::build(serials.iter().enumerate().map(|(i, s)| {
            (
                s.as_slice(),
                (i % 10 == 0).then_some((at, RevocationReason::AffiliationChanged)),
            )
        }));
        assert_eq!(idx.revoked_bytes_each(), Some(24));
        // After changes merged in, the vectors may hold spare capacity; still under the bar.
        for i in 0..5_000u64 {
            idx.revoked(&serial(i * 7 + 1), at, RevocationReason::KeyCompromise);
        }
        idx.merge();
        let each = idx.revoked_bytes_each().unwrap();
        assert!(each <= 32, "{each} bytes per revoked certificate");
    }

    type Initial = (Vec<u8>, Option<(OffsetDateTime, RevocationReason)>);

    #[derive(Debug, Clone)]
    enum Op {
        Issue(u64),
        Revoke(u64, i64, u8),
        Lift(u64),
        Merge,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..200).prop_map(Op::Issue),
            (
                0u64..200,
                0i64..2_000_000_000,
                prop::sample::select(vec![0u8, 1, 3, 4, 5, 6])
            )
                .prop_map(|(s, at, r)| Op::Revoke(s, at, r)),
            (0u64..200).prop_map(Op::Lift),
            Just(Op::Merge),
        ]
    }

    proptest! {
        /// Any sequence of issuances, revocations, lifted holds and merges answers like a plain map.
        #[test]
        fn behaves_like_a_map(initial in prop::collection::vec((0u64..200, prop::option::of(0i64..2_000_000_000)), 0..100), ops in prop::collection::vec(op(), 0..300)) {
            let mut model: BTreeMap<u64, Option<(i64, u8)>> = BTreeMap::new();
            // Serials are unique per CA: the first occurrence stands.
            for (s, r) in &initial {
                model.entry(*s).or_insert(r.map(|at| (at, 4)));
            }
            let init: Vec<Initial> = model
                .iter()
                .map(|(s, r)| (serial(*s), r.map(|(at, _)| (t(at), RevocationReason::Superseded))))
                .collect();
            let mut idx = StatusIndex::build(init.iter().map(|(s, r)| (s.as_slice(), *r)));
            for op in ops {
                match op {
                    Op::Issue(s) => { idx.issued(&serial(s)); model.insert(s, None); }
                    Op::Revoke(s, at, r) => {
                        idx.revoked(&serial(s), t(at), RevocationReason::from_code(r).unwrap());
                        model.insert(s, Some((at, r)));
                    }
                    Op::Lift(s) => { idx.lifted(&serial(s)); model.insert(s, None); }
                    Op::Merge => idx.merge(),
                }
            }
            for s in 0u64..200 {
                let want = match model.get(&s) {
                    None => Lookup::Unknown,
                    Some(None) => Lookup::Good,
                    Some(Some((at, r))) => Lookup::Revoked { at: t(*at), reason: RevocationReason::from_code(*r).unwrap() },
                };
                prop_assert_eq!(idx.lookup(&serial(s)), want, "serial {}", s);
            }
        }
    }
}
