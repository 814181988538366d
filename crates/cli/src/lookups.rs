//! What the platform asks the authority's registry about a certificate's holder (`jpki serve`):
//! birth dates for age checks, pairwise identifiers, and (added as the JSON API grows) links and
//! liveness. Each answer is read under the registry's lock; a read error is logged and answered as
//! "not known".
use std::sync::Mutex;

use jpki_authority::Authority;
use jpki_platform::api::{BirthDates, Pairwise, PersonRefs};
use jpki_platform::api_linkage::{LinkData, Links, Liveness, LivenessFacts};

/// Birth dates, pairwise identifiers, person references, 現況確認 and link data from the authority's
/// registry (the birth date never leaves the platform; the per-person secret never leaves the
/// authority).
pub(crate) struct RegistryLookups(pub(crate) Mutex<Authority>);

impl Pairwise for RegistryLookups {
    fn pairwise_id(&self, serial: &[u8], rp_id: &str) -> Option<String> {
        let authority = self.0.lock().ok()?;
        match authority.pairwise_id(serial, rp_id) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot derive a pairwise identifier");
                None
            }
        }
    }
}

impl BirthDates for RegistryLookups {
    fn birth_date(&self, serial: &[u8]) -> Option<time::Date> {
        let authority = self.0.lock().ok()?;
        match authority.birth_date_of(serial) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a birth date");
                None
            }
        }
    }
}

impl PersonRefs for RegistryLookups {
    fn person_ref(&self, serial: &[u8]) -> Option<String> {
        let authority = self.0.lock().ok()?;
        match authority.person_ref(serial) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a person reference");
                None
            }
        }
    }
}

impl Liveness for RegistryLookups {
    fn liveness(&self, serial: &[u8]) -> Option<LivenessFacts> {
        let authority = self.0.lock().ok()?;
        match authority.liveness(serial) {
            Ok(l) => l.map(|l| LivenessFacts {
                facts_changed: l.facts_changed,
                newer_certificate: l.newer_certificate,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a certificate's liveness");
                None
            }
        }
    }
}

impl LinkData for RegistryLookups {
    fn links(&self, serial: &[u8]) -> Option<Links> {
        let authority = self.0.lock().ok()?;
        match authority.linkage(serial) {
            Ok(l) => l.map(|l| Links {
                predecessor: l.predecessor,
                pair: l.pair,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read link data");
                None
            }
        }
    }
}
