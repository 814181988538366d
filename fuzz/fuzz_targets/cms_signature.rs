//! CMS signatures from outside (`jpki verify FILE.p7s`, a PDF's /Contents, a time-stamp token):
//! parse, and run the whole validation on whatever parses — with no trust anchors and no CRLs, so
//! every path ends in a report, never a panic.
#![no_main]
use std::sync::{Arc, OnceLock};

use jpki_pki::path::TrustAnchors;
use jpki_pki::revocation::CrlStore;
use jpki_sig::validate::Verifier;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| Verifier::new(TrustAnchors::new(), Arc::new(CrlStore::new())))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jpki_sig::signed_data::ParsedSignedData::parse(data);
    let _ = jpki_sig::tsp::TimeStampToken::parse(data);
    let _ = verifier().verify_cades(data, Some(b"content"), time::OffsetDateTime::UNIX_EPOCH);
});
