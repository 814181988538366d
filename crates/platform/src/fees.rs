//! Fees (seed 000): every answered check is metered per relying party, month (JST) and certificate
//! kind, and invoiced at 20 yen per signature-certificate check and 2 yen per auth-certificate
//! check, with marginal bulk-discount tiers: each tier's discount applies only to the checks of the
//! month that fall within it (like income-tax brackets), per kind.
//!
//! Counting is in memory ([`Meter`], a few nanoseconds under a mutex) and flushed into the
//! registry's `metered_checks` table in batches ([`Registry::add_metered`]), so metering never
//! puts a database write on the path of an OCSP answer.
use std::collections::HashMap;
use std::sync::Mutex;

use jpki_model::CertKind;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One discount tier: from the `from`-th check of a month on (1-based), `percent_off` off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// The first check (1-based count within the month and kind) the tier applies to.
    pub from: u64,
    /// The discount, percent (0–100).
    pub percent_off: u8,
}

/// Prices and tiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// Yen per signature-certificate check.
    pub sign_yen: u64,
    /// Yen per user-authentication-certificate check.
    pub auth_yen: u64,
    /// Discount tiers, by ascending `from`.
    pub tiers: Vec<Tier>,
}

impl Default for Tariff {
    /// Seed 000's prices, and tiers of 10 % from the 100,001st and 20 % from the 1,000,001st check
    /// of a month.
    fn default() -> Self {
        Self {
            sign_yen: 20,
            auth_yen: 2,
            tiers: vec![
                Tier {
                    from: 100_001,
                    percent_off: 10,
                },
                Tier {
                    from: 1_000_001,
                    percent_off: 20,
                },
            ],
        }
    }
}

/// One invoice line: a certificate kind's checks of the month and what they cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceLine {
    /// "sign" or "auth".
    pub kind: &'static str,
    /// Checks in the month.
    pub checks: u64,
    /// Yen per check before discounts.
    pub unit_yen: u64,
    /// Yen, after the marginal tiers (each tier's subtotal rounded down to the yen).
    pub yen: u64,
}

impl Tariff {
    /// Checks that the tiers are ascending, start after the first check and discount at most 100 %.
    pub fn validate(&self) -> Result<(), String> {
        let mut last = 1;
        for t in &self.tiers {
            if t.from <= last || t.percent_off > 100 {
                return Err(format!(
                    "tariff: tier from {} ({} % off) must start after {last} and take at most 100 %",
                    t.from, t.percent_off
                ));
            }
            last = t.from;
        }
        Ok(())
    }

    /// The price of `checks` checks at `unit` yen each within one month and kind.
    pub fn price(&self, checks: u64, unit: u64) -> u64 {
        // Bands: [1, first tier) at full price, then each tier up to the next.
        let mut bounds: Vec<(u64, u64)> = vec![(1, 0)];
        bounds.extend(self.tiers.iter().map(|t| (t.from, u64::from(t.percent_off))));
        let mut total = 0u64;
        for (i, (from, off)) in bounds.iter().enumerate() {
            let until = bounds.get(i + 1).map_or(u64::MAX, |(next, _)| *next);
            if checks < *from {
                break;
            }
            // Saturating: a tariff that skipped `validate` gives nonsense, never a panic.
            let n = checks
                .min(until.saturating_sub(1))
                .saturating_sub(*from)
                .saturating_add(1);
            total = total
                .saturating_add(n.saturating_mul(unit).saturating_mul(100u64.saturating_sub(*off)) / 100);
        }
        total
    }

    /// The invoice lines for a month with `sign` and `auth` checks.
    pub fn invoice(&self, sign: u64, auth: u64) -> Vec<InvoiceLine> {
        vec![
            InvoiceLine {
                kind: "sign",
                checks: sign,
                unit_yen: self.sign_yen,
                yen: self.price(sign, self.sign_yen),
            },
            InvoiceLine {
                kind: "auth",
                checks: auth,
                unit_yen: self.auth_yen,
                yen: self.price(auth, self.auth_yen),
            },
        ]
    }
}

/// The month (JST) a check at `at` counts in: `YYYY-MM`.
pub fn month_of(at: OffsetDateTime) -> String {
    let d = at.to_offset(time::macros::offset!(+9)).date();
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

/// Key of a metered count: relying party, month, certificate kind, check.
pub type MeterKey = (String, String, CertKind, &'static str);

/// In-memory counts waiting to be written.
#[derive(Debug, Default)]
pub struct Meter(Mutex<HashMap<MeterKey, u64>>);

impl Meter {
    /// Counts `n` answered checks of `check` about `kind` certificates for `rp` at `at`.
    pub fn add(&self, rp: &str, kind: CertKind, check: &'static str, n: u64, at: OffsetDateTime) {
        if n == 0 {
            return;
        }
        if let Ok(mut m) = self.0.lock() {
            *m.entry((rp.to_owned(), month_of(at), kind, check)).or_insert(0) += n;
        }
    }

    /// Takes the counts so far (to write them).
    pub fn take(&self) -> Vec<(MeterKey, u64)> {
        self.0.lock().map(|mut m| m.drain().collect()).unwrap_or_default()
    }

    /// Puts counts taken by [`Self::take`] back (their write failed; the next flush retries).
    pub fn restore(&self, counts: Vec<(MeterKey, u64)>) {
        if let Ok(mut m) = self.0.lock() {
            for (k, n) in counts {
                *m.entry(k).or_insert(0) += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn marginal_tiers_to_the_yen() {
        let t = Tariff::default();
        assert_eq!(t.price(0, 20), 0);
        assert_eq!(t.price(1, 20), 20);
        assert_eq!(t.price(100_000, 20), 2_000_000);
        // The 100,001st check is 10 % off; only the checks above the threshold are.
        assert_eq!(t.price(100_001, 20), 2_000_000 + 18);
        assert_eq!(t.price(1_000_000, 20), 2_000_000 + 900_000 * 18);
        assert_eq!(t.price(1_000_002, 20), 2_000_000 + 900_000 * 18 + 2 * 16);
        // Auth checks at 2 yen: 10 % of 2 yen per check, rounded down per tier subtotal.
        assert_eq!(t.price(100_003, 2), 200_000 + 3 * 2 * 90 / 100);
        let flat = Tariff {
            tiers: vec![],
            ..Tariff::default()
        };
        assert_eq!(flat.price(5_000_000, 2), 10_000_000);
    }

    #[test]
    fn bad_tariffs_are_named() {
        let mut t = Tariff::default();
        t.tiers.reverse();
        assert!(t.validate().unwrap_err().contains("must start after"));
        let over = Tariff {
            tiers: vec![Tier {
                from: 10,
                percent_off: 101,
            }],
            ..Tariff::default()
        };
        assert!(over.validate().is_err());
        assert!(Tariff::default().validate().is_ok());
    }

    #[test]
    fn months_are_counted_in_jst() {
        let t = OffsetDateTime::from_unix_timestamp(1_798_729_200).unwrap(); // 2026-12-31T15:00Z
        assert_eq!(month_of(t), "2027-01");
        assert_eq!(month_of(t - time::Duration::SECOND), "2026-12");
    }
}
