//! The parsers of card data a client reads from a card it does not trust (ours or a real one):
//! BER-TLV, CV certificates, the text-assist and card-face files. Total: errors, never panics.
#![no_main]

use jpki_card::layout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = layout::parse_tlvs(data);
    let _ = layout::ber_total_len(data);
    let _ = layout::CvCert::parse(data);
    let _ = layout::parse_assist_ef0001(data);
    let _ = layout::parse_assist_ef0002(data);
    let _ = layout::parse_face_ef0001(data);
    let _ = layout::parse_face_ef0002(data);
    let _ = layout::parse_face_ef0003(data);
    let _ = layout::parse_face_ef0005(data);
    let _ = layout::parse_common_record(data);
    let _ = layout::parse_juki_ef0001(data);
    let _ = layout::token_info_label(data);
    let _ = layout::rsa_components_from_spki(data);
});
