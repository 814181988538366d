//! The card state machine against the reference's status words and access rules, and the card
//! file's durability and integrity.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use jpki_card::apdu::Response;
use jpki_card::{Ap, CardFile, DeviceKey, HolderSecrets, Personalization, Secret, VirtualCard};
use jpki_model::CertKind;

const AUTH_CERT: &[u8] = b"\x30\x82\x01\x00fake-auth-certificate";
const SIGN_CERT: &[u8] = b"\x30\x82\x01\x00fake-sign-certificate";

/// One personalised card, built once (key generation is the slow part) and cloned via its state.
fn fresh() -> VirtualCard {
    static TEMPLATE: OnceLock<(Vec<u8>, tempfile::TempDir)> = OnceLock::new();
    let (bytes, _dir) = TEMPLATE.get_or_init(|| {
        let mut card = VirtualCard::manufacture(&HolderSecrets {
            auth_pin: b"1234",
            sign_password: b"ABCDEF12",
            assist_pin: Some(b"5678"),
        })
        .unwrap();
        card.personalize(&Personalization::placeholder()).unwrap();
        card.install_certificate(CertKind::Authentication, Some(AUTH_CERT));
        card.install_certificate(CertKind::Signature, Some(SIGN_CERT));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.card");
        drop(CardFile::create(&path, key(), card).unwrap());
        (std::fs::read(&path).unwrap(), dir)
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.card");
    std::fs::write(&path, bytes).unwrap();
    CardFile::open(&path, key()).unwrap().into_card()
}

fn key() -> DeviceKey {
    DeviceKey::from_bytes([42; 32])
}

fn hexs(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn send(card: &mut VirtualCard, apdu: &str) -> Response {
    Response::parse(&card.transmit(&hexs(apdu))).unwrap()
}

fn sw(card: &mut VirtualCard, apdu: &str) -> u16 {
    send(card, apdu).sw.0
}

const SELECT_JPKI: &str = "00A4040C0A D392F000260100000001";

#[test]
fn unknown_aids_get_6a82_whatever_p1_p2_and_known_ones_select() {
    let mut c = fresh();
    for p2 in ["00", "0C", "04"] {
        assert_eq!(sw(&mut c, &format!("00A404{p2}05A000000308")), 0x6A82);
    }
    assert_eq!(sw(&mut c, "00A4040007A0000000030000"), 0x6A82);
    assert_eq!(
        sw(&mut c, "00A40000023F00"),
        0x6A82,
        "3F00 does not select the MF"
    );
    for ap in Ap::ALL {
        let apdu = format!("00A4040C{:02X}{}", ap.aid().len(), hex::encode(ap.aid()));
        assert_eq!(sw(&mut c, &apdu), 0x9000, "{ap:?}");
    }
    assert_eq!(sw(&mut c, SELECT_JPKI), 0x9000);
    assert_eq!(sw(&mut c, "00A4020C020099"), 0x6A82);
    // GET DATA of a tag the card lacks, and the odd GET DATA some drivers probe.
    assert_eq!(sw(&mut c, "00CADF3005"), 0x6A88);
    assert_eq!(sw(&mut c, "00CB3FFF04 5C02 3FFF 00"), 0x6D00);
    assert_eq!(send(&mut c, "00CA004500").data, b"123456789012345");
}

#[test]
fn pin_counter_statuses_follow_the_reference() {
    let mut c = fresh();
    sw(&mut c, SELECT_JPKI);
    assert_eq!(sw(&mut c, "00A4020C020018"), 0x9000);
    assert_eq!(sw(&mut c, "00200080"), 0x63C3, "empty VERIFY reads the counter");
    assert_eq!(sw(&mut c, "00200080"), 0x63C3, "and spends no attempt");
    assert_eq!(sw(&mut c, "002000800439393939"), 0x63C2);
    assert_eq!(sw(&mut c, "002000800439393939"), 0x63C1);
    assert_eq!(sw(&mut c, "002000800439393939"), 0x63C0);
    assert_eq!(
        sw(&mut c, "002000800431323334"),
        0x6984,
        "blocked even for the right PIN"
    );
    assert_eq!(
        sw(&mut c, "00200080"),
        0x63C0,
        "an empty VERIFY on a locked PIN is 63C0, never 6984"
    );
    assert_eq!(c.tries_left(Secret::AuthPin), Some(0));
    // The signing password has its own counter of 5, named by SFI in P2.
    assert_eq!(sw(&mut c, "0020009B"), 0x63C5);
}

#[test]
fn a_right_pin_restores_the_counter_and_selecting_the_ap_logs_out() {
    let mut c = fresh();
    sw(&mut c, SELECT_JPKI);
    sw(&mut c, "00A4020C020018");
    assert_eq!(sw(&mut c, "002000800439393939"), 0x63C2);
    assert_eq!(sw(&mut c, "002000800431323334"), 0x9000);
    assert_eq!(sw(&mut c, "00200080"), 0x63C3);
    sw(&mut c, "00A4020C020017");
    let info = jpki_card::sha256_digest_info(&[1; 32]);
    let sign = format!("802A0080{:02X}{}00", info.len(), hex::encode(&info));
    let r = send(&mut c, &sign);
    assert_eq!((r.sw.0, r.data.len()), (0x9000, 256));
    sw(&mut c, SELECT_JPKI);
    sw(&mut c, "00A4020C020017");
    assert_eq!(sw(&mut c, &sign), 0x6982, "reselecting the AP clears the PIN");
}

#[test]
fn reads_follow_access_rules_offsets_sfi_and_le() {
    let mut c = fresh();
    sw(&mut c, SELECT_JPKI);
    // Auth certificate: free; 4-byte header, offset reads, SFI read, extended Le.
    sw(&mut c, "00A4020C02000A");
    assert_eq!(send(&mut c, "00B0000004").data, &AUTH_CERT[..4]);
    assert_eq!(send(&mut c, "00B0000404").data, &AUTH_CERT[4..8]);
    let whole = send(&mut c, "00B00000000000");
    assert_eq!((whole.sw.0, whole.data.as_slice()), (0x9000, AUTH_CERT));
    let short = send(&mut c, "00B0000000");
    assert_eq!(
        (short.sw.0, short.data.as_slice()),
        (0x9000, AUTH_CERT),
        "Le 00 = all up to 256"
    );
    let past = send(&mut c, "00B0001040");
    assert_eq!(past.sw.0, 0x6282, "fewer bytes than an explicit Le");
    assert_eq!(sw(&mut c, "00B0100000"), 0x6B00, "offset beyond the end");
    sw(&mut c, SELECT_JPKI);
    assert_eq!(
        send(&mut c, "00B08A0004").data,
        &AUTH_CERT[..4],
        "SFI 0A without SELECT"
    );
    assert_eq!(sw(&mut c, "00B0E00004"), 0x6A86, "SFI byte with bits 6-7 set");
    // Signature certificate only after the password; private keys never.
    sw(&mut c, "00A4020C020001");
    assert_eq!(sw(&mut c, "00B0000004"), 0x6982);
    sw(&mut c, "00A4020C02001B");
    assert_eq!(sw(&mut c, "00200080084142434445463132"), 0x9000);
    assert_eq!(send(&mut c, "00B0810000").data, SIGN_CERT);
    for key in ["0017", "001A"] {
        sw(&mut c, &format!("00A4020C02{key}"));
        let r = send(&mut c, "00B0000000");
        assert!(r.data.is_empty() && r.sw.0 == 0x6981, "key {key}: {r:?}");
    }
    // Token info and flags.
    sw(&mut c, "00A4020C020006");
    assert_eq!(send(&mut c, "00B0000000").data.len(), 160);
    sw(&mut c, "00A4020C020008");
    assert_eq!(send(&mut c, "00B0000000").data, [0x8F, 0x8F, 0x00]);
    // Common AP record.
    let aid = Ap::Common.aid();
    sw(&mut c, &format!("00A4040C{:02X}{}", aid.len(), hex::encode(aid)));
    let rec = send(&mut c, "00B2010C00");
    assert_eq!((rec.sw.0, rec.data.len()), (0x9000, 30));
    assert_eq!(
        sw(&mut c, "00B2010C10"),
        0x6C1E,
        "Le too short names the exact length"
    );
}

#[test]
fn signing_variants_and_get_response() {
    let mut c = fresh();
    sw(&mut c, SELECT_JPKI);
    sw(&mut c, "00A4020C020018");
    sw(&mut c, "002000800431323334");
    let digest = hex::encode([9u8; 32]);
    // P2 names the key by SFI; P1 02 wraps the digest into a DigestInfo, as P1 00 with one given.
    let p1_02 = send(&mut c, &format!("802A029720{digest}00"));
    let info = hex::encode(jpki_card::sha256_digest_info(&[9; 32]));
    let p1_00 = send(&mut c, &format!("802A009733{info}00"));
    assert_eq!(p1_02, p1_00);
    assert_eq!(sw(&mut c, &format!("802A099720{digest}00")), 0x6A86);
    // The PSS variant works; no Le → 61 00 and the signature comes with GET RESPONSE.
    assert_eq!(send(&mut c, &format!("802A049720{digest}00")).data.len(), 256);
    let r = send(&mut c, &format!("802A009733{info}"));
    assert_eq!(r.sw.0, 0x6100);
    let rest = send(&mut c, "00C0000000");
    assert_eq!(rest.data, p1_00.data);
    // Signature key without the password.
    assert_eq!(sw(&mut c, &format!("802A009A33{info}00")), 0x6982);
}

#[test]
fn changing_and_unblocking_a_pin() {
    let mut c = fresh();
    sw(&mut c, SELECT_JPKI);
    sw(&mut c, "00A4020C020018");
    assert_eq!(
        sw(&mut c, "002401800439393939"),
        0x6982,
        "change needs a VERIFY first"
    );
    sw(&mut c, "002000800431323334");
    assert_eq!(sw(&mut c, "00240180023132"), 0x6A80, "a 2-digit PIN is refused");
    assert_eq!(sw(&mut c, "002401800439393939"), 0x9000);
    for _ in 0..3 {
        sw(&mut c, "002000800431323334");
    }
    assert_eq!(sw(&mut c, "002000800439393939"), 0x6984);
    // The holder cannot unblock: RESET RETRY COUNTER needs the authority's management key.
    assert_eq!(sw(&mut c, "002C0398"), 0x6982);
    let challenge = send(&mut c, "0084000008").data;
    assert_eq!(
        sw(&mut c, &format!("0082008120{}", hex::encode([0u8; 32]))),
        0x6300
    );
    let challenge2 = send(&mut c, "0084000008").data;
    assert_ne!(challenge, challenge2);
    let resp = jpki_card::management_response(&[7; 32], &challenge2, "123456789012345");
    assert_eq!(sw(&mut c, &format!("0082008120{}", hex::encode(resp))), 0x9000);
    assert_eq!(sw(&mut c, "002C02980431313131"), 0x9000);
    assert_eq!(sw(&mut c, "00200098"), 0x63C3);
    assert_eq!(sw(&mut c, "002000980431313131"), 0x9000);
}

#[test]
fn card_file_keeps_counters_and_detects_edits_and_other_device_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.card");
    let card = VirtualCard::manufacture(&HolderSecrets {
        auth_pin: b"1234",
        sign_password: b"ABCDEF12",
        assist_pin: None,
    })
    .unwrap();
    let mut f = CardFile::create(&path, key(), card).unwrap();
    assert!(
        CardFile::open(&path, key()).is_err(),
        "a second opener is refused while the card is held"
    );
    for apdu in [SELECT_JPKI, "00A4020C020018", "002000800439393939"] {
        f.transmit(&hexs(apdu));
    }
    // No save call: the attempt was written before its answer.
    drop(f);
    let f = CardFile::open(&path, key()).unwrap();
    assert_eq!(f.card().tries_left(Secret::AuthPin), Some(2));
    drop(f);
    let other = CardFile::open(&path, DeviceKey::from_bytes([1; 32])).unwrap_err();
    assert!(other.to_string().contains("another device key"), "{other}");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(
        CardFile::open(&path, key()).is_err(),
        "an edited card file is refused"
    );
    // Nothing secret is visible in the file.
    assert!(!bytes.windows(4).any(|w| w == b"1234"));
    assert!(!bytes.windows(6).any(|w| w == b"pkcs8\"" || w == b"verifi"));
}

#[test]
fn signing_names_its_key_by_p2_80_or_sfi_only() {
    let mut c = fresh();
    let aid = Ap::Common.aid();
    sw(&mut c, &format!("00A4040C{:02X}{}", aid.len(), hex::encode(aid)));
    sw(&mut c, "00A4020C020019");
    // P2 with bit 8 clear names no key (found by the random-APDU property test).
    assert_eq!(sw(&mut c, "802A0001010000"), 0x6A86);
    assert_eq!(sw(&mut c, "0088000101AA00"), 0x6A86);
    assert_eq!(
        send(&mut c, "0088009901AA00").data.len(),
        256,
        "INTERNAL AUTHENTICATE with key 0019"
    );
}

#[test]
fn a_failed_save_withholds_the_answer_and_stops_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.card");
    let mut f = CardFile::create(&path, key(), fresh()).unwrap();
    // A directory where the temporary file goes makes every save fail.
    std::fs::create_dir(dir.path().join(".c.card.tmp")).unwrap();
    for apdu in [SELECT_JPKI, "00A4020C020018"] {
        assert_eq!(&f.transmit(&hexs(apdu))[..], [0x90, 0x00]);
    }
    assert_eq!(f.transmit(&hexs("002000800431323334")), [0x65, 0x81]);
    // Nothing after that answers: the right PIN must not show through a signature.
    let info = hex::encode(jpki_card::sha256_digest_info(&[1; 32]));
    for apdu in ["00A4020C020017", &format!("802A009733{info}00"), SELECT_JPKI] {
        assert_eq!(f.transmit(&hexs(apdu)), [0x65, 0x81], "{apdu}");
    }
    drop(f);
    std::fs::remove_dir(dir.path().join(".c.card.tmp")).unwrap();
    let f = CardFile::open(&path, key()).unwrap();
    assert_eq!(f.card().tries_left(Secret::AuthPin), Some(3));
}

#[test]
fn right_and_wrong_attempts_write_files_of_the_same_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.card");
    let mut f = CardFile::create(&path, key(), fresh()).unwrap();
    let aid = Ap::Face.aid();
    f.transmit(&hexs(&format!("00A4040C{:02X}{}", aid.len(), hex::encode(aid))));
    let mut sizes = Vec::new();
    // 照合番号B (10 tries): wrong (10 → 9), right (9 → 10), wrong again.
    for code in ["55021720359999", "55021720352285", "55021720359999"] {
        let r = f.transmit(&hexs(&format!("002000920E{}", hex::encode(code))));
        assert!(r == [0x90, 0x00] || r[0] == 0x63, "{r:02X?}");
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
}
