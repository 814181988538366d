//! OCSP requests from the network (`POST /ocsp`, or the base64 path of a GET): parse them, and what
//! parses must build back into a request that parses to the same CertIDs and nonce.
#![no_main]
use jpki_pki::ocsp::OcspRequest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = OcspRequest::parse(data) {
        let again =
            OcspRequest::build(&req.cert_ids, req.nonce.as_deref()).expect("a parsed request re-encodes");
        let back = OcspRequest::parse(&again).expect("a re-encoded request parses");
        assert_eq!(back.cert_ids, req.cert_ids);
        assert_eq!(back.nonce, req.nonce);
    }
});
