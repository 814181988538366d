//! Identifying numbers: check-digit vectors, error messages and round trips.

use jpki_model::{CardId, CorporateNumber, IndividualNumber, ModelError, ResidentRecordCode, Serial};
use proptest::prelude::*;
use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::Error as DeError;

/// The error message, or `""` when parsing unexpectedly succeeded.
fn err<T>(r: Result<T, ModelError>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

/// Replaces the digit at `index` of `s` with `digit`.
fn with_digit(s: &str, index: usize, digit: u8) -> String {
    s.char_indices()
        .map(|(i, c)| if i == index { char::from(b'0' + digit) } else { c })
        .collect()
}

#[test]
fn individual_number_vector_and_every_wrong_check_digit() {
    let n: IndividualNumber = "123456789018".parse().unwrap();
    assert_eq!(n.as_str(), "123456789018");
    assert_eq!(n.to_string(), "123456789018");
    assert_eq!(
        IndividualNumber::check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]),
        8
    );
    for d in (0..=9).filter(|&d| d != 8) {
        assert_eq!(
            err(with_digit("123456789018", 11, d).parse::<IndividualNumber>()),
            format!("individual number: check digit is {d} but should be 8")
        );
    }
}

#[test]
fn individual_number_check_digit_zero_cases() {
    // r = 0 and r = 1 both give check digit 0.
    assert_eq!(IndividualNumber::check_digit(&[0; 11]), 0);
    assert!("000000000000".parse::<IndividualNumber>().is_ok());
    // 00000000001: sum = 1*2 = 2, r = 2, check = 9.
    assert_eq!(
        IndividualNumber::check_digit(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        9
    );
}

#[test]
fn individual_number_format_errors() {
    assert_eq!(
        err("12345678901".parse::<IndividualNumber>()),
        "individual number: 11 characters, must be exactly 12 digits"
    );
    assert_eq!(
        err("1234-5678-9018".parse::<IndividualNumber>()),
        "individual number: 14 characters, must be exactly 12 digits"
    );
    assert_eq!(
        err("12345678901a".parse::<IndividualNumber>()),
        "individual number: character 'a' at position 12 is not a digit 0-9"
    );
    assert_eq!(
        err("１23456789018".parse::<IndividualNumber>()),
        "individual number: character '１' at position 1 is not a digit 0-9"
    );
    assert_eq!(
        err(IndividualNumber::from_base([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1])),
        "individual number: value 10 at position 10 is not a digit 0-9"
    );
    assert_eq!(
        "".parse::<IndividualNumber>().unwrap_err().field(),
        "individual number"
    );
}

#[test]
fn individual_number_from_base_and_debug_mask() {
    let n = IndividualNumber::from_base([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]).unwrap();
    assert_eq!(n.as_str(), "123456789018");
    assert_eq!(format!("{n:?}"), "IndividualNumber(********9018)");
    assert_eq!(
        IndividualNumber::from_random_bytes([255; 11]).as_str()[..11],
        *"55555555555"
    );
}

#[test]
fn individual_number_deserializes_with_validation() {
    let ok = IndividualNumber::deserialize(
        "123456789018".into_deserializer() as serde::de::value::StrDeserializer<'_, DeError>
    );
    assert_eq!(ok.unwrap().as_str(), "123456789018");
    let bad = IndividualNumber::deserialize(
        "123456789017".into_deserializer() as serde::de::value::StrDeserializer<'_, DeError>
    );
    assert!(
        bad.unwrap_err()
            .to_string()
            .starts_with("individual number: check digit")
    );
}

#[test]
fn corporate_number_vectors_and_every_wrong_check_digit() {
    for v in ["4011001098993", "7123456789012", "2120901007402"] {
        let n: CorporateNumber = v.parse().unwrap();
        assert_eq!(n.as_str(), v);
        assert_eq!(n.to_string(), v);
        assert_eq!(format!("{n:?}"), format!("CorporateNumber({v:?})"));
        let good = v.as_bytes()[0] - b'0';
        for d in (0..=9).filter(|&d| d != good) {
            assert_eq!(
                err(with_digit(v, 0, d).parse::<CorporateNumber>()),
                format!("corporate number: check digit is {d} but should be {good}")
            );
        }
    }
    assert_eq!(
        CorporateNumber::from_base([0, 1, 1, 0, 0, 1, 0, 9, 8, 9, 9, 3])
            .unwrap()
            .as_str(),
        "4011001098993"
    );
}

#[test]
fn corporate_number_format_errors() {
    assert_eq!(
        err("401100109899".parse::<CorporateNumber>()),
        "corporate number: 12 characters, must be exactly 13 digits"
    );
    assert_eq!(
        err("40110010989 3".parse::<CorporateNumber>()),
        "corporate number: character ' ' at position 12 is not a digit 0-9"
    );
    assert_eq!(
        err(CorporateNumber::from_base([0, 1, 1, 0, 0, 1, 0, 9, 8, 9, 9, 30])),
        "corporate number: value 30 at position 12 is not a digit 0-9"
    );
}

#[test]
fn resident_record_code_vector_errors_and_mask() {
    // Base 1234567890: 0*2 + 9*3 + 8*4 + 7*5 + 6*6 + 5*7 + 4*2 + 3*3 + 2*4 + 1*5 = 195, r = 8, check 3.
    assert_eq!(
        ResidentRecordCode::check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0]),
        3
    );
    let c: ResidentRecordCode = "12345678903".parse().unwrap();
    assert_eq!(c.to_string(), "12345678903");
    assert_eq!(format!("{c:?}"), "ResidentRecordCode(*******8903)");
    for d in (0..=9).filter(|&d| d != 3) {
        assert_eq!(
            err(with_digit("12345678903", 10, d).parse::<ResidentRecordCode>()),
            format!("resident record code: check digit is {d} but should be 3")
        );
    }
    assert_eq!(
        err("1234567890".parse::<ResidentRecordCode>()),
        "resident record code: 10 characters, must be exactly 11 digits"
    );
    assert_eq!(
        err("1234567890x".parse::<ResidentRecordCode>()),
        "resident record code: character 'x' at position 11 is not a digit 0-9"
    );
}

#[test]
fn card_id() {
    let id: CardId = "012345678901234".parse().unwrap();
    assert_eq!(id.as_str(), "012345678901234");
    assert_eq!(id.to_string(), "012345678901234");
    assert_eq!(
        err("01234567890123".parse::<CardId>()),
        "card ID: 14 characters, must be exactly 15 digits"
    );
    assert_eq!(
        err("01234567890123x".parse::<CardId>()),
        "card ID: character 'x' at position 15 is not a digit 0-9"
    );
    assert_eq!(CardId::from_random_bytes([19; 15]).as_str(), "999999999999999");
}

#[test]
fn serial_bytes_hex_and_der() {
    let s = Serial::from_be_bytes(&[0, 0, 0x0a, 0xbc]).unwrap();
    assert_eq!(s.as_be_bytes(), [0x0a, 0xbc]);
    assert_eq!(s.to_hex(), "abc");
    assert_eq!(s.to_string(), "abc");
    assert_eq!(format!("{s:?}"), "Serial(0xabc)");
    assert_eq!(s.to_der_int_bytes(), [0x0a, 0xbc]);
    for text in ["abc", "ABC", "0xabc", "0X0ABC", "0000000abc"] {
        assert_eq!(text.parse::<Serial>().unwrap(), s, "{text}");
    }
    let high = Serial::from_be_bytes(&[0x80]).unwrap();
    assert_eq!(high.to_der_int_bytes(), [0x00, 0x80]);
    assert_eq!(high.to_hex(), "80");
    assert_eq!(Serial::from_be_bytes(&[1]).unwrap().to_hex(), "1");
}

#[test]
fn serial_errors_name_the_field() {
    let zero = "serial: must be a positive number, not zero";
    assert_eq!(err(Serial::from_be_bytes(&[])), zero);
    assert_eq!(err(Serial::from_be_bytes(&[0, 0])), zero);
    assert_eq!(err("0x000".parse::<Serial>()), zero);
    let not_hex = "serial: must be hexadecimal digits 0-9 a-f, optionally prefixed with 0x";
    for text in ["", "0x", "xyz", "12 34", "-1", "+1", "0xg"] {
        assert_eq!(err(text.parse::<Serial>()), not_hex, "{text:?}");
    }
    let too_long = "serial: longer than the 20 octets RFC 5280 allows (at most 2^159 - 1)";
    assert_eq!(err(Serial::from_be_bytes(&[1; 21])), too_long);
    assert_eq!(err(Serial::from_be_bytes(&[0x80; 20])), too_long);
    assert_eq!(err(format!("1{}", "0".repeat(40)).parse::<Serial>()), too_long);
    let max = Serial::from_be_bytes(&[0x7f; 20]).unwrap();
    assert_eq!(max.to_der_int_bytes().len(), 20);
    assert_eq!(
        format!("{}{}", "0".repeat(50), "7f".repeat(20))
            .parse::<Serial>()
            .unwrap(),
        max
    );
}

#[test]
fn serial_orders_numerically() {
    let two = Serial::from_be_bytes(&[2]).unwrap();
    let big = Serial::from_be_bytes(&[1, 0]).unwrap();
    assert!(two < big);
    assert!(Serial::from_be_bytes(&[1, 1]).unwrap() > big);
}

#[test]
fn serial_generate_layout() {
    let s = Serial::generate([0xff; 16], 0x1234);
    assert_eq!(s.as_be_bytes()[..3], [0x7f, 0x12, 0x34]);
    assert_eq!(s.shard(), Some(0x1234));
    let s = Serial::generate([0; 16], 0);
    assert_eq!(s.as_be_bytes().len(), 16);
    assert_eq!(s.as_be_bytes()[0], 0x40);
    assert_eq!(s.shard(), Some(0));
    assert_eq!(Serial::from_be_bytes(&[0x3f; 16]).unwrap().shard(), None);
    assert_eq!(Serial::from_be_bytes(&[0x40; 15]).unwrap().shard(), None);
    assert_eq!(Serial::from_be_bytes(&[0x40; 17]).unwrap().shard(), None);
}

proptest! {
    #[test]
    fn individual_number_from_random_bytes_parses_back(bytes in any::<[u8; 11]>()) {
        let n = IndividualNumber::from_random_bytes(bytes);
        prop_assert_eq!(n.as_str().parse::<IndividualNumber>().unwrap(), n.clone());
        let base: [u8; 11] = bytes.map(|b| b % 10);
        prop_assert_eq!(IndividualNumber::from_base(base).unwrap(), n);
    }

    #[test]
    fn individual_number_single_wrong_check_digit_is_rejected(bytes in any::<[u8; 11]>(), d in 0u8..10) {
        let n = IndividualNumber::from_random_bytes(bytes);
        let good = n.as_str().as_bytes()[11] - b'0';
        let altered = with_digit(n.as_str(), 11, d);
        prop_assert_eq!(altered.parse::<IndividualNumber>().is_ok(), d == good);
    }

    #[test]
    fn corporate_and_resident_and_card_round_trip(
        base in any::<[u8; 12]>().prop_map(|b| b.map(|x| x % 10)),
        rr in any::<[u8; 10]>(),
        card in any::<[u8; 15]>(),
    ) {
        let c = CorporateNumber::from_base(base).unwrap();
        prop_assert_eq!(c.as_str().parse::<CorporateNumber>().unwrap(), c);
        let r = ResidentRecordCode::from_random_bytes(rr);
        prop_assert_eq!(r.as_str().parse::<ResidentRecordCode>().unwrap(), r);
        let id = CardId::from_random_bytes(card);
        prop_assert_eq!(id.as_str().parse::<CardId>().unwrap(), id);
    }

    #[test]
    fn serial_hex_round_trip(bytes in proptest::collection::vec(any::<u8>(), 1..=20), zeros in 0usize..5) {
        prop_assume!(bytes.iter().any(|&b| b != 0));
        let Ok(s) = Serial::from_be_bytes(&bytes) else {
            // Only 20 magnitude bytes with the top bit set are too long.
            let start = bytes.iter().position(|&b| b != 0).unwrap();
            prop_assert!(bytes.len() - start == 20 && bytes[start] >= 0x80);
            return Ok(());
        };
        prop_assert_ne!(s.as_be_bytes()[0], 0);
        let hex = s.to_hex();
        prop_assert!(!hex.starts_with('0'));
        prop_assert_eq!(hex.parse::<Serial>().unwrap(), s.clone());
        let padded = format!("0X{}{}", "0".repeat(zeros), hex.to_uppercase());
        prop_assert_eq!(padded.parse::<Serial>().unwrap(), s.clone());
        let der = s.to_der_int_bytes();
        prop_assert!(der.len() <= 20 && der[0] < 0x80);
        prop_assert_eq!(Serial::from_be_bytes(&der).unwrap(), s);
    }

    #[test]
    fn serial_order_matches_integers(a in 1u128.., b in 1u128..) {
        let sa = Serial::from_be_bytes(&a.to_be_bytes()).unwrap();
        let sb = Serial::from_be_bytes(&b.to_be_bytes()).unwrap();
        prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
        prop_assert_eq!(sa.to_hex(), format!("{a:x}"));
    }

    #[test]
    fn serial_generate_is_16_bytes_and_keeps_shard(random in any::<[u8; 16]>(), shard in any::<u16>()) {
        let s = Serial::generate(random, shard);
        prop_assert_eq!(s.as_be_bytes().len(), 16);
        prop_assert!((0x40..=0x7f).contains(&s.as_be_bytes()[0]));
        prop_assert_eq!(&s.as_be_bytes()[3..], &random[3..]);
        prop_assert_eq!(s.shard(), Some(shard));
        prop_assert_eq!(s.to_hex().parse::<Serial>().unwrap().shard(), Some(shard));
    }
}
