//! Every text a person or script types: numbers, serials, facts, dates, secrets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = s.parse::<jpki_model::IndividualNumber>();
    let _ = s.parse::<jpki_model::CorporateNumber>();
    let _ = s.parse::<jpki_model::Serial>();
    let _ = s.parse::<jpki_model::Name>().map(|n| n.substitution_flags());
    let _ = s.parse::<jpki_model::Address>().map(|a| (a.prefecture().map(str::len), a.city().map(str::len)));
    let _ = s.parse::<jpki_model::Sex>();
    let _ = s.parse::<jpki_model::RevocationReason>();
    let _ = s.parse::<jpki_model::AuthPin>();
    let _ = s.parse::<jpki_model::SignPassword>();
    let _ = jpki_model::parse_birth_date(s);
});
