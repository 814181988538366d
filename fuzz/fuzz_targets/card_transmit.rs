//! The card state machine fed arbitrary APDU sequences: it must answer every one with a status
//! word and never panic. Input: APDUs separated by a 0xFF 0xFE marker.
#![no_main]

use std::sync::OnceLock;

use jpki_card::{CardFile, DeviceKey, HolderSecrets, VirtualCard};
use libfuzzer_sys::fuzz_target;

fn template() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let card = VirtualCard::manufacture(&HolderSecrets {
            auth_pin: b"1234",
            sign_password: b"ABCDEF12",
            assist_pin: None,
        })
        .expect("manufacture");
        drop(CardFile::create(&dir.path().join("f.card"), DeviceKey::from_bytes([3; 32]), card).expect("create"));
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let path = template().join("f.card");
    let mut card = CardFile::open(&path, DeviceKey::from_bytes([3; 32])).expect("open").into_card();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.windows(2).position(|w| w == [0xFF, 0xFE]).unwrap_or(rest.len());
        let response = card.transmit(&rest[..end]);
        assert!(response.len() >= 2, "every command gets a status word");
        rest = rest.get(end + 2..).unwrap_or(&[]);
    }
});
