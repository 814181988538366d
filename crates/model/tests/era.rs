//! Eras, the certificate birth date and 照合番号B.

use jpki_model::era::{cert_birth_date, collation_birth};
use jpki_model::{CollationNumberB, Era};
use proptest::prelude::*;
use time::macros::date;
use time::{Date, Duration};

#[test]
fn eras_and_digits() {
    let expected = [
        (Era::Meiji, 1, "明治", date!(1868 - 01 - 25)),
        (Era::Taisho, 2, "大正", date!(1912 - 07 - 30)),
        (Era::Showa, 3, "昭和", date!(1926 - 12 - 25)),
        (Era::Heisei, 4, "平成", date!(1989 - 01 - 08)),
        (Era::Reiwa, 5, "令和", date!(2019 - 05 - 01)),
    ];
    for (era, digit, name, start) in expected {
        assert_eq!(era.digit(), digit);
        assert_eq!(era.name_ja(), name);
        assert_eq!(era.to_string(), name);
        assert_eq!(era.start(), start);
    }
    assert_eq!(Era::of(date!(1868 - 01 - 24)), None);
    assert_eq!(Era::year_of(date!(1980 - 02 - 17)), Some((Era::Showa, 55)));
    assert_eq!(Era::year_of(date!(1989 - 01 - 07)), Some((Era::Showa, 64)));
    assert_eq!(Era::year_of(date!(1989 - 01 - 08)), Some((Era::Heisei, 1)));
    assert_eq!(Era::year_of(date!(2019 - 04 - 30)), Some((Era::Heisei, 31)));
    assert_eq!(Era::year_of(date!(2019 - 05 - 01)), Some((Era::Reiwa, 1)));
    assert_eq!(Era::year_of(date!(2026 - 01 - 01)), Some((Era::Reiwa, 8)));
}

#[test]
fn certificate_and_collation_birth_dates() {
    assert_eq!(cert_birth_date(date!(1980 - 02 - 17)), "319800217");
    assert_eq!(Era::cert_birth_date(date!(2019 - 05 - 01)), "520190501");
    assert_eq!(cert_birth_date(date!(1868 - 01 - 24)), "018680124");
    assert_eq!(cert_birth_date(date!(1900 - 01 - 01)), "119000101");
    assert_eq!(collation_birth(date!(1980 - 02 - 17)).as_deref(), Some("550217"));
    assert_eq!(
        Era::collation_birth(date!(2020 - 01 - 05)).as_deref(),
        Some("020105")
    );
    assert_eq!(collation_birth(date!(1868 - 01 - 24)), None);
    assert_eq!(collation_birth(date!(2117 - 12 - 31)).as_deref(), Some("991231"));
    assert_eq!(collation_birth(date!(2118 - 01 - 01)), None);
}

#[test]
fn collation_number_b() {
    let c = CollationNumberB::new(date!(1980 - 02 - 17), 2035, "2285").unwrap();
    assert_eq!(c.as_str(), "55021720352285");
    assert_eq!(c.as_bytes(), b"55021720352285");
    assert_eq!(format!("{c:?}"), "CollationNumberB(**************)");
    assert_eq!(
        c,
        CollationNumberB::new(date!(1980 - 02 - 17), 2035, "2285").unwrap()
    );
    assert_ne!(
        c,
        CollationNumberB::new(date!(1980 - 02 - 17), 2035, "2286").unwrap()
    );
}

#[test]
fn collation_number_b_errors_name_the_field() {
    let e = |birth: Date, year: i32, code: &str| {
        CollationNumberB::new(birth, year, code).unwrap_err().to_string()
    };
    let birth = date!(1980 - 02 - 17);
    assert_eq!(
        e(date!(1850 - 01 - 01), 2035, "2285"),
        "birth date: 1850-01-01 is before the Meiji era (1868-01-25)"
    );
    assert_eq!(
        e(date!(2200 - 01 - 01), 2235, "2285"),
        "birth date: era year is above 99 and does not fit in 照合番号B"
    );
    assert_eq!(
        e(birth, 999, "2285"),
        "card expiry year: 999 is not between 1000 and 9999"
    );
    assert_eq!(
        e(birth, 10000, "2285"),
        "card expiry year: 10000 is not between 1000 and 9999"
    );
    for code in ["228", "22855", "22a5", "", "２２８５"] {
        assert_eq!(e(birth, 2035, code), "security code: must be exactly 4 digits");
    }
}

fn day_before(d: Date) -> Date {
    d - Duration::days(1)
}

proptest! {
    #[test]
    fn era_boundaries(offset in 0i64..3) {
        for era in Era::ALL {
            let start = era.start();
            let previous = Era::ALL.into_iter().rev().find(|e| *e < era);
            // The day before the start (and earlier days close to it) belong to the previous era.
            prop_assert_eq!(Era::of(day_before(start) - Duration::days(offset)), previous);
            prop_assert_eq!(Era::of(start + Duration::days(offset)), Some(era));
            prop_assert_eq!(Era::year_of(start + Duration::days(offset)).map(|(_, y)| y), Some(1));
            if let Some(prev) = previous {
                let (e, y) = Era::year_of(day_before(start)).unwrap();
                prop_assert_eq!(e, prev);
                prop_assert_eq!(y, start.year() - prev.start().year() + 1);
                prop_assert_eq!(&cert_birth_date(day_before(start))[..1], prev.digit().to_string());
            } else {
                prop_assert_eq!(&cert_birth_date(day_before(start))[..1], "0");
            }
            prop_assert_eq!(&cert_birth_date(start)[..1], era.digit().to_string());
        }
    }

    #[test]
    fn cert_birth_date_is_era_digit_plus_gregorian(days in 0i64..120_000) {
        let d = date!(1850 - 01 - 01) + Duration::days(days);
        let s = cert_birth_date(d);
        prop_assert_eq!(s.len(), 9);
        let gregorian = format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day());
        prop_assert_eq!(&s[1..], gregorian.as_str());
        let digit = Era::of(d).map_or(0, Era::digit);
        prop_assert_eq!(&s[..1], digit.to_string());
        if let Some(c) = collation_birth(d) {
            prop_assert_eq!(c.len(), 6);
            prop_assert_eq!(&c[2..], &gregorian[4..]);
        }
    }
}
