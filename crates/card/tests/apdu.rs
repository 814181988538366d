//! The APDU codec: the encodings public clients send (card-interface.md), every ISO 7816-3 case,
//! and properties over arbitrary bytes.
// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use jpki_card::CardError;
use jpki_card::apdu::{Command, Response, Sw};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn commands_public_clients_send() {
    // SELECT the JPKI AP: case 3S.
    let b = hex("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01");
    let c = Command::parse(&b).unwrap();
    assert_eq!((c.cla, c.ins, c.p1, c.p2), (0x00, 0xA4, 0x04, 0x0C));
    assert_eq!(c.data, &hex("D392F000260100000001")[..]);
    assert_eq!((c.ne, c.extended), (None, false));

    // Empty VERIFY (counter query): case 1.
    let b = hex("00 20 00 80");
    let c = Command::parse(&b).unwrap();
    assert_eq!((c.data.len(), c.ne), (0, None));

    // READ BINARY, 4-byte header read and a 256-byte chunk (Le 00): case 2S.
    assert_eq!(Command::parse(&hex("00 B0 00 00 04")).unwrap().ne, Some(4));
    assert_eq!(Command::parse(&hex("00 B0 01 00 00")).unwrap().ne, Some(256));

    // Whole-file read by SFI with extended Le 0000 (jsapdu): case 2E, Ne 65,536.
    let b = hex("00 B0 8A 00 00 00 00");
    let c = Command::parse(&b).unwrap();
    assert_eq!((c.p1, c.ne, c.extended), (0x8A, Some(65_536), true));

    // The JPKI signing command with a SHA-256 DigestInfo and Le 00: case 4S.
    let digest_info = hex("3031300d060960864801650304020105000420")
        .into_iter()
        .chain([0xAB; 32])
        .collect::<Vec<_>>();
    let mut b = hex("80 2A 00 80 33");
    b.extend_from_slice(&digest_info);
    b.push(0x00);
    let c = Command::parse(&b).unwrap();
    assert_eq!(
        (c.cla, c.ins, c.data, c.ne),
        (0x80, 0x2A, &digest_info[..], Some(256))
    );
    assert_eq!(c.to_bytes().unwrap(), b);
}

#[test]
fn extended_cases() {
    let data = vec![0x5A; 300];
    // 3E.
    let mut b = hex("00 D6 00 00 00 01 2C");
    b.extend_from_slice(&data);
    let c = Command::parse(&b).unwrap();
    assert_eq!((c.data.len(), c.ne, c.extended), (300, None, true));
    assert_eq!(c.to_bytes().unwrap(), b);
    // 4E with Le 0102.
    b.extend_from_slice(&[0x01, 0x02]);
    let c = Command::parse(&b).unwrap();
    assert_eq!((c.data.len(), c.ne), (300, Some(258)));
    assert_eq!(c.to_bytes().unwrap(), b);
}

#[test]
fn malformed_commands_are_named() {
    for (bytes, what) in [
        ("", "shorter than the 4-byte header"),
        ("00 A4 04", "shorter than the 4-byte header"),
        ("00 A4 04 0C 0A D3 92", "Lc disagrees"),
        ("00 A4 04 0C 02 D3 92 00 00", "Lc disagrees"),
        ("00 B0 00 00 00 00", "fits no case"),
        ("00 D6 00 00 00 00 00 12", "extended Lc is 0000"),
        ("00 D6 00 00 00 00 05 01 02", "extended Lc disagrees"),
    ] {
        match Command::parse(&hex(bytes)) {
            Err(CardError::Apdu(reason)) => assert!(reason.contains(what), "{bytes}: {reason}"),
            other => panic!("{bytes}: {other:?}"),
        }
    }
    let too_long = Command {
        cla: 0,
        ins: 0xD6,
        p1: 0,
        p2: 0,
        data: &[0; 65_536],
        ne: None,
        extended: true,
    };
    assert!(too_long.to_bytes().is_err());
    // "Extended" case 1 does not exist: it encodes as the bare header.
    let case1 = Command {
        data: &[],
        ..too_long
    };
    assert_eq!(case1.to_bytes().unwrap(), hex("00 D6 00 00"));
}

#[test]
fn status_words() {
    assert_eq!(Sw::tries_left(2), Sw(0x63C2));
    assert_eq!(Sw::tries_left(0), Sw(0x63C0));
    assert_eq!(Sw::tries_left(200), Sw(0x63CF));
    assert_eq!(Sw::more_available(0x1F), Sw(0x611F));
    assert_eq!(Sw::more_available(256), Sw(0x6100));
    assert_eq!(Sw::wrong_le(4), Sw(0x6C04));
    assert_eq!(Sw::BLOCKED.to_string(), "6984");
    assert_eq!((Sw::NOT_FOUND.sw1(), Sw::NOT_FOUND.sw2()), (0x6A, 0x82));
    let r = Response::ok(vec![0x30, 0x82, 0x04, 0x00]);
    assert_eq!(r.to_bytes(), hex("30 82 04 00 90 00"));
    assert_eq!(Response::parse(&r.to_bytes()).unwrap(), r);
    assert_eq!(
        Response::parse(&hex("69 84")).unwrap(),
        Response::status(Sw::BLOCKED)
    );
    assert!(Response::parse(&[0x90]).is_err());
}

fn command() -> impl Strategy<Value = (u8, u8, u8, u8, Vec<u8>, Option<usize>, bool)> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop_oneof![
            Just(Vec::new()),
            proptest::collection::vec(any::<u8>(), 0..=255),
            proptest::collection::vec(any::<u8>(), 256..700)
        ],
        prop_oneof![
            Just(None),
            (1usize..=65_536).prop_map(Some),
            (1usize..=256).prop_map(Some)
        ],
        any::<bool>(),
    )
}

proptest! {
    /// Encoding then parsing gives the command back, with short fields exactly when they suffice.
    #[test]
    fn encode_parse_round_trip((cla, ins, p1, p2, data, ne, extended) in command()) {
        let c = Command { cla, ins, p1, p2, data: &data, ne, extended };
        let bytes = c.to_bytes().unwrap();
        let back = Command::parse(&bytes).unwrap();
        let needs_extended = (extended || data.len() > 255 || ne.is_some_and(|n| n > 256))
            && (!data.is_empty() || ne.is_some());
        prop_assert_eq!(back, Command { extended: needs_extended, ..c });
    }

    /// Any bytes: parsing never panics, and whatever parses re-encodes to the same bytes.
    #[test]
    fn parse_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(c) = Command::parse(&bytes) {
            prop_assert_eq!(c.to_bytes().unwrap(), bytes);
        }
    }

    /// Short-header shapes specifically (random bytes rarely hit a consistent Lc).
    #[test]
    fn short_shapes_parse(header in any::<[u8; 4]>(), data in proptest::collection::vec(any::<u8>(), 1..=255), le in proptest::option::of(any::<u8>())) {
        let mut bytes = header.to_vec();
        bytes.push(data.len() as u8);
        bytes.extend_from_slice(&data);
        bytes.extend(le);
        let c = Command::parse(&bytes).unwrap();
        prop_assert_eq!(c.data, &data[..]);
        prop_assert_eq!(c.ne, le.map(|b| if b == 0 { 256 } else { usize::from(b) }));
        prop_assert_eq!(c.to_bytes().unwrap(), bytes);
    }
}
