//! Ages, card expiry and certificate validity, checked against independent day-by-day models.
// The model helpers below are not `#[test]` functions but only ever see dates far inside the
// representable range.
#![allow(clippy::unwrap_used)]

use jpki_model::validity::{
    JST, SIGNATURE_CERT_MIN_AGE, age_on, birthday_in_year, card_expiry, certificate_last_day, jst_date,
    jst_end_of_day, jst_start_of_day, may_hold_signature_certificate, nth_birthday_after,
};
use proptest::prelude::*;
use time::macros::{date, datetime};
use time::{Date, Duration, Month, UtcOffset};

const LAST_ISSUE_DAY: Date = date!(2100 - 12 - 31);

fn ymd(year: i32, month: Month, day: u8) -> Date {
    Date::from_calendar_date(year, month, day).unwrap()
}

// ---- Independent models -------------------------------------------------------------------

/// A day is a birthday when it has the birth's month and day, or it is 28 February of a common
/// year and the birth was on 29 February.
fn is_birthday_model(birth: Date, d: Date) -> bool {
    let same = (d.month(), d.day()) == (birth.month(), birth.day());
    let feb29_substitute = (birth.month(), birth.day()) == (Month::February, 29)
        && (d.month(), d.day()) == (Month::February, 28)
        && !time::util::is_leap_year(d.year());
    same || feb29_substitute
}

/// Walks day by day from the day after `issued`, returning the `n`-th birthday.
fn nth_birthday_model(birth: Date, issued: Date, n: u32) -> Date {
    let mut d = issued;
    let mut seen = 0;
    loop {
        d = d.next_day().unwrap();
        if d > birth && is_birthday_model(birth, d) {
            seen += 1;
            if seen == n {
                return d;
            }
        }
    }
}

/// Age by 民法 §143 period counting: the k-th year of life ends on the day before the day in year
/// `birth.year + k` corresponding to the birth day, or, when that month has no such day, on the
/// last day of the month. The age is the number of such periods that ended before `on`.
fn age_model(birth: Date, on: Date) -> u32 {
    let mut age = 0;
    for k in 1.. {
        let year = birth.year() + k;
        let end = match Date::from_calendar_date(year, birth.month(), birth.day()) {
            Ok(corresponding) => corresponding.previous_day().unwrap(),
            Err(_) => ymd(year, birth.month(), birth.month().length(year)),
        };
        if end >= on {
            break;
        }
        age += 1;
    }
    age
}

// ---- Strategies ---------------------------------------------------------------------------

fn any_birth() -> impl Strategy<Value = Date> {
    let span = (date!(2030 - 01 - 01) - date!(1900 - 01 - 01)).whole_days();
    prop_oneof![
        3 => (0..span).prop_map(|d| date!(1900 - 01 - 01) + Duration::days(d)),
        1 => (0i32..32).prop_map(|k| ymd(1904 + 4 * k, Month::February, 29)),
        1 => (1900i32..2030, any::<bool>()).prop_map(|(y, last)| if last {
            ymd(y, Month::December, 31)
        } else {
            ymd(y, Month::January, 1)
        }),
    ]
}

/// Issue dates on or after the birth, with extra weight around birthdays, the end of February and
/// the turn of the year.
fn birth_and_issue() -> impl Strategy<Value = (Date, Date)> {
    any_birth().prop_flat_map(|birth| {
        let span = (LAST_ISSUE_DAY - birth).whole_days();
        let anywhere = (0..=span).prop_map(move |d| birth + Duration::days(d));
        let near = |month: Option<(Month, u8)>| {
            (birth.year()..=2100, -2i64..=2).prop_map(move |(y, delta)| {
                let (m, day) = month.unwrap_or((birth.month(), birth.day()));
                let base = Date::from_calendar_date(y, m, day.min(m.length(y))).unwrap_or(ymd(
                    y,
                    Month::February,
                    28,
                ));
                (base + Duration::days(delta)).clamp(birth, LAST_ISSUE_DAY)
            })
        };
        let issue = prop_oneof![
            2 => anywhere,
            2 => near(None),
            1 => near(Some((Month::March, 1))),
            1 => near(Some((Month::January, 1))),
        ];
        (Just(birth), issue)
    })
}

// ---- Properties ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fifth_birthday_matches_day_by_day_model((birth, issued) in birth_and_issue()) {
        prop_assert_eq!(nth_birthday_after(birth, issued, 5), nth_birthday_model(birth, issued, 5));
    }

    #[test]
    fn nth_birthday_matches_model_for_any_n((birth, issued) in birth_and_issue(), n in 1u32..=10) {
        let got = nth_birthday_after(birth, issued, n);
        prop_assert_eq!(got, nth_birthday_model(birth, issued, n));
        prop_assert_eq!(got, birthday_in_year(birth, got.year()));
    }

    #[test]
    fn certificate_fits_inside_card_and_five_years((birth, issued) in birth_and_issue()) {
        let card = card_expiry(birth, issued);
        let last = certificate_last_day(birth, issued, card);
        prop_assert!(last <= card);
        prop_assert!(last > issued);
        // Five years hold at most two 29 Februaries: 5 * 365 + 2 days.
        prop_assert!(last <= issued + Duration::days(5 * 365 + 2), "{} -> {}", issued, last);
        prop_assert_eq!(last, nth_birthday_model(birth, issued, 5));
    }

    #[test]
    fn card_expiry_matches_model((birth, issued) in birth_and_issue()) {
        let n = if age_model(birth, issued) >= 18 { 10 } else { 5 };
        prop_assert_eq!(card_expiry(birth, issued), nth_birthday_model(birth, issued, n));
    }

    #[test]
    fn certificate_is_capped_by_an_earlier_card_expiry((birth, issued) in birth_and_issue(), days in 1i64..2000) {
        let card = issued + Duration::days(days);
        let last = certificate_last_day(birth, issued, card);
        prop_assert_eq!(last, nth_birthday_model(birth, issued, 5).min(card));
    }

    #[test]
    fn age_matches_civil_law_model((birth, on) in birth_and_issue()) {
        let age = age_on(birth, on);
        prop_assert_eq!(age, age_model(birth, on));
        prop_assert_eq!(may_hold_signature_certificate(birth, on), age >= SIGNATURE_CERT_MIN_AGE);
        let next = age_on(birth, on.next_day().unwrap());
        prop_assert!(next == age || next == age + 1);
        if birth > date!(1900 - 01 - 01) {
            prop_assert_eq!(age_on(birth, birth.previous_day().unwrap()), 0);
        }
    }
}

// ---- Worked examples ----------------------------------------------------------------------

#[test]
fn leap_day_birth_issued_after_the_birthday() {
    let birth = date!(2000 - 02 - 29);
    let issued = date!(2024 - 03 - 01);
    // 2025-02-28, 2026-02-28, 2027-02-28, 2028-02-29, 2029-02-28.
    assert_eq!(nth_birthday_after(birth, issued, 1), date!(2025 - 02 - 28));
    assert_eq!(nth_birthday_after(birth, issued, 4), date!(2028 - 02 - 29));
    assert_eq!(nth_birthday_after(birth, issued, 5), date!(2029 - 02 - 28));
    assert_eq!(card_expiry(birth, issued), date!(2034 - 02 - 28));
    assert_eq!(
        certificate_last_day(birth, issued, card_expiry(birth, issued)),
        date!(2029 - 02 - 28)
    );
}

#[test]
fn leap_day_birth_issued_around_28_february() {
    let birth = date!(2000 - 02 - 29);
    // In a common year 28 February is the birthday, so issuing on it does not count it.
    assert_eq!(
        nth_birthday_after(birth, date!(2023 - 02 - 28), 1),
        date!(2024 - 02 - 29)
    );
    assert_eq!(
        nth_birthday_after(birth, date!(2023 - 02 - 27), 1),
        date!(2023 - 02 - 28)
    );
    // In a leap year 28 February is not.
    assert_eq!(
        nth_birthday_after(birth, date!(2024 - 02 - 28), 1),
        date!(2024 - 02 - 29)
    );
    assert_eq!(
        nth_birthday_after(birth, date!(2024 - 02 - 29), 1),
        date!(2025 - 02 - 28)
    );
    assert_eq!(birthday_in_year(birth, 2023), date!(2023 - 02 - 28));
    assert_eq!(birthday_in_year(birth, 2024), date!(2024 - 02 - 29));
    assert_eq!(birthday_in_year(birth, 2100), date!(2100 - 02 - 28));
    assert_eq!(birthday_in_year(birth, 12_000), date!(9999 - 02 - 28));
}

#[test]
fn issued_on_the_birthday_itself() {
    let birth = date!(1990 - 06 - 15);
    assert_eq!(
        nth_birthday_after(birth, date!(2024 - 06 - 15), 1),
        date!(2025 - 06 - 15)
    );
    assert_eq!(
        nth_birthday_after(birth, date!(2024 - 06 - 15), 5),
        date!(2029 - 06 - 15)
    );
    assert_eq!(
        nth_birthday_after(birth, date!(2024 - 06 - 14), 5),
        date!(2028 - 06 - 15)
    );
}

#[test]
fn issued_on_31_december() {
    let issued = date!(2024 - 12 - 31);
    assert_eq!(
        nth_birthday_after(date!(1990 - 01 - 01), issued, 5),
        date!(2029 - 01 - 01)
    );
    assert_eq!(
        nth_birthday_after(date!(1990 - 12 - 31), issued, 5),
        date!(2029 - 12 - 31)
    );
    assert_eq!(
        nth_birthday_after(date!(1990 - 12 - 30), issued, 5),
        date!(2029 - 12 - 30)
    );
}

#[test]
fn degenerate_arguments() {
    let birth = date!(2010 - 05 - 05);
    assert_eq!(
        nth_birthday_after(birth, date!(2020 - 01 - 01), 0),
        date!(2020 - 01 - 01)
    );
    // Issued on or before the birth: the first birthday is the first anniversary.
    assert_eq!(nth_birthday_after(birth, birth, 1), date!(2011 - 05 - 05));
    assert_eq!(
        nth_birthday_after(birth, date!(2000 - 01 - 01), 1),
        date!(2011 - 05 - 05)
    );
    assert_eq!(age_on(birth, date!(2000 - 01 - 01)), 0);
}

#[test]
fn ages() {
    let leap = date!(2000 - 02 - 29);
    assert_eq!(age_on(leap, date!(2023 - 02 - 28)), 22);
    assert_eq!(age_on(leap, date!(2023 - 03 - 01)), 23);
    assert_eq!(age_on(leap, date!(2024 - 02 - 28)), 23);
    assert_eq!(age_on(leap, date!(2024 - 02 - 29)), 24);
    assert_eq!(age_on(leap, leap), 0);
    let april = date!(2000 - 04 - 01);
    assert_eq!(age_on(april, date!(2018 - 03 - 31)), 17);
    assert_eq!(age_on(april, date!(2018 - 04 - 01)), 18);
}

#[test]
fn card_expiry_depends_on_age_18_on_the_issue_day() {
    let birth = date!(2006 - 05 - 10);
    // 17 on the issue day: 5 birthdays, the first being the next day.
    assert_eq!(card_expiry(birth, date!(2024 - 05 - 09)), date!(2028 - 05 - 10));
    assert_eq!(card_expiry(birth, date!(2024 - 05 - 10)), date!(2034 - 05 - 10));
    // A child's certificate is capped by nothing earlier than its own 5th birthday.
    let child = date!(2015 - 01 - 20);
    let issued = date!(2024 - 01 - 21);
    assert_eq!(
        certificate_last_day(child, issued, card_expiry(child, issued)),
        date!(2029 - 01 - 20)
    );
    // A card expiring earlier caps the certificate.
    assert_eq!(
        certificate_last_day(child, issued, date!(2026 - 01 - 01)),
        date!(2026 - 01 - 01)
    );
}

#[test]
fn signature_certificate_age() {
    let birth = date!(2009 - 07 - 01);
    assert!(!may_hold_signature_certificate(birth, date!(2024 - 06 - 30)));
    assert!(may_hold_signature_certificate(birth, date!(2024 - 07 - 01)));
}

#[test]
fn jst_conversions() {
    assert_eq!(JST, UtcOffset::from_hms(9, 0, 0).unwrap());
    let end = jst_end_of_day(date!(2024 - 03 - 31));
    assert_eq!(end, datetime!(2024-03-31 14:59:59 UTC));
    assert_eq!(end.offset(), UtcOffset::UTC);
    let start = jst_start_of_day(date!(2024 - 03 - 31));
    assert_eq!(start, datetime!(2024-03-30 15:00:00 UTC));
    assert_eq!(start.offset(), UtcOffset::UTC);
    assert_eq!(
        jst_date(datetime!(2024-03-31 14:59:59 UTC)),
        date!(2024 - 03 - 31)
    );
    assert_eq!(
        jst_date(datetime!(2024-03-31 15:00:00 UTC)),
        date!(2024 - 04 - 01)
    );
    assert_eq!(
        jst_date(jst_end_of_day(date!(2024 - 02 - 29))),
        date!(2024 - 02 - 29)
    );
    assert_eq!(
        jst_date(jst_start_of_day(date!(2024 - 02 - 29))),
        date!(2024 - 02 - 29)
    );
    // The very first representable day cannot be put in UTC; the instant is kept in JST.
    assert_eq!(jst_start_of_day(Date::MIN).offset(), JST);
}
