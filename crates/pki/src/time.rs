//! Conversion between `time` date-times and X.509 `Time` (RFC 5280 §4.1.2.5: UTCTime through 2049,
//! GeneralizedTime from 2050).
use der::DateTime;
use der::asn1::{GeneralizedTime, UtcTime};
use time::OffsetDateTime;
use x509_cert::time::Time;

use crate::PkiError;

/// Encodes `when` as RFC 5280 requires, to whole seconds.
pub fn to_x509(what: &'static str, when: OffsetDateTime) -> Result<Time, PkiError> {
    let bad = || PkiError::Time {
        what,
        when: when.to_string(),
    };
    let secs = u64::try_from(when.unix_timestamp()).map_err(|_| bad())?;
    let dt = DateTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(|_| bad())?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_date_time(dt).map_err(|_| bad())?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// Decodes an X.509 `Time`.
pub fn from_x509(t: &Time) -> Result<OffsetDateTime, PkiError> {
    let secs = t.to_unix_duration().as_secs();
    let secs = i64::try_from(secs).map_err(|_| PkiError::Certificate("time out of range".into()))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| PkiError::Certificate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn utc_before_2050_generalized_after() {
        assert!(matches!(
            to_x509("t", datetime!(2049-12-31 23:59:59 UTC)).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            to_x509("t", datetime!(2050-01-01 00:00:00 UTC)).unwrap(),
            Time::GeneralTime(_)
        ));
        let t = datetime!(2031-05-09 14:59:59 UTC);
        assert_eq!(from_x509(&to_x509("t", t).unwrap()).unwrap(), t);
    }
}
