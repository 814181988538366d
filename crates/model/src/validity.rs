//! Ages, card expiry and certificate validity.
//!
//! All dates are civil dates in Japan Standard Time; callers convert instants with [`jst_date`]
//! and back with [`jst_start_of_day`] / [`jst_end_of_day`]. Dates beyond year 9999 are clamped.

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

/// Japan Standard Time, UTC+09:00 (no daylight saving).
pub const JST: UtcOffset = time::macros::offset!(+9);

/// The youngest age at which a signature certificate may be issued.
pub const SIGNATURE_CERT_MIN_AGE: u32 = 15;

/// The age at which the card is issued for 10 birthdays instead of 5.
pub const ADULT_CARD_AGE: u32 = 18;

/// Age in completed years on the day `on` (`0` when `on` is before `birth`).
///
/// Under the 年齢計算ニ関スル法律 and 民法 §143 the age increases at the end of the day before the
/// anniversary, so it has increased on the anniversary itself. For a 29 February birth in a common
/// year the period ends with 28 February, so the new age applies from 1 March.
pub fn age_on(birth: Date, on: Date) -> u32 {
    if on < birth {
        return 0;
    }
    let years = on.year() - birth.year();
    let anniversary_passed = if is_feb_29(birth) && !time::util::is_leap_year(on.year()) {
        (on.month(), on.day()) >= (Month::March, 1)
    } else {
        (on.month(), on.day()) >= (birth.month(), birth.day())
    };
    u32::try_from(years - i32::from(!anniversary_passed)).unwrap_or(0)
}

/// The birthday in `year`, as certificate validity counts it: the same month and day, except that
/// a 29 February birth has its birthday on 28 February in common years. (This is the card and
/// certificate convention; it differs from [`age_on`], where the new age starts on 1 March.)
pub fn birthday_in_year(birth: Date, year: i32) -> Date {
    let year = year.clamp(Date::MIN.year(), Date::MAX.year());
    birth
        .replace_year(year)
        .or_else(|_| birth.replace_day(28).and_then(|d| d.replace_year(year)))
        .unwrap_or(Date::MAX)
}

/// The `n`-th birthday (per [`birthday_in_year`]) strictly after `issued`: an issue on the birthday
/// itself does not count that day. The day of birth is not a birthday, so an `issued` before
/// `birth` counts from the birth. `n = 0` gives `issued` itself.
pub fn nth_birthday_after(birth: Date, issued: Date, n: u32) -> Date {
    if n == 0 {
        return issued;
    }
    let from = issued.max(birth);
    let mut year = from.year();
    if birthday_in_year(birth, year) <= from {
        year += 1;
    }
    let n = i32::try_from(n - 1).unwrap_or(i32::MAX);
    birthday_in_year(birth, year.saturating_add(n))
}

/// The last day of validity of a card issued on `issued`: the 10th birthday after issue when the
/// holder is 18 or older on the issue day, otherwise the 5th.
pub fn card_expiry(birth: Date, issued: Date) -> Date {
    let n = if age_on(birth, issued) >= ADULT_CARD_AGE {
        10
    } else {
        5
    };
    nth_birthday_after(birth, issued, n)
}

/// The last day of validity of a certificate issued on `issued`: the 5th birthday after issue,
/// capped by the card's own expiry. The certificate ends at 23:59:59 JST on that day
/// (see [`jst_end_of_day`]).
pub fn certificate_last_day(birth: Date, issued: Date, card_expiry: Date) -> Date {
    nth_birthday_after(birth, issued, 5).min(card_expiry)
}

/// Whether the holder is old enough (15) for a signature certificate on the day `on`.
pub fn may_hold_signature_certificate(birth: Date, on: Date) -> bool {
    age_on(birth, on) >= SIGNATURE_CERT_MIN_AGE
}

/// The civil date in Japan at the instant `t`.
pub fn jst_date(t: OffsetDateTime) -> Date {
    t.to_offset(JST).date()
}

/// 00:00:00 JST on `d`, expressed in UTC.
pub fn jst_start_of_day(d: Date) -> OffsetDateTime {
    in_utc(d.with_time(Time::MIDNIGHT).assume_offset(JST))
}

/// 23:59:59 JST on `d`, expressed in UTC (14:59:59Z the same day).
pub fn jst_end_of_day(d: Date) -> OffsetDateTime {
    in_utc(d.with_time(time::macros::time!(23:59:59)).assume_offset(JST))
}

/// The same instant with a UTC offset, or unchanged at the very edge of the representable range.
fn in_utc(t: OffsetDateTime) -> OffsetDateTime {
    t.checked_to_offset(UtcOffset::UTC).unwrap_or(t)
}

fn is_feb_29(d: Date) -> bool {
    d.month() == Month::February && d.day() == 29
}
