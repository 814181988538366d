//! Command and response APDUs from a client or reader: parse, and re-encode whatever parses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(c) = jpki_card::apdu::Command::parse(data) {
        assert_eq!(c.to_bytes().ok().as_deref(), Some(data), "parse then encode must give the input back");
    }
    if let Ok(r) = jpki_card::apdu::Response::parse(data) {
        assert_eq!(r.to_bytes(), data);
    }
});
