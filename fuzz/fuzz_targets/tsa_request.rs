//! Time-stamp requests from the network (`POST /tsa`): parse them, and answer each with a
//! TimeStampResp that parses back (granted or a rejection), whatever the request.
#![no_main]
use std::sync::OnceLock;

use jpki_model::{CertKind, Serial};
use jpki_pki::{Endpoints, Issuer, KeyType, RootSpec, SigningKey, SubjectPublicKey, issue_root};
use jpki_sig::tsp::{TimeStampAuthority, TimeStampRequest};
use time::{Duration, OffsetDateTime};

fn tsa() -> &'static TimeStampAuthority {
    static T: OnceLock<TimeStampAuthority> = OnceLock::new();
    T.get_or_init(|| {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let endpoints = Endpoints::new("http://127.0.0.1:7700").expect("URL");
        let root_key = SigningKey::generate(KeyType::P384).expect("key");
        let root = issue_root(&RootSpec {
            kind: CertKind::Signature,
            key: &root_key,
            serial: &Serial::from_be_bytes(&[1]).expect("serial"),
            not_before: now,
            not_after: now + Duration::days(3650),
            endpoints: &endpoints,
        })
        .expect("root");
        let issuer = Issuer::new(CertKind::Signature, root_key, root.clone()).expect("issuer");
        let key = SigningKey::generate(KeyType::P384).expect("key");
        let spki = SubjectPublicKey::from_der(&key.spki_der().expect("spki")).expect("spki");
        let cert = issuer
            .issue_tsa(&Serial::generate([7; 16], 0), &spki, now, now + Duration::days(365), &endpoints)
            .expect("TSA certificate");
        TimeStampAuthority::new(key, cert, vec![root]).expect("TSA")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let parsed = TimeStampRequest::parse(data);
    let resp = tsa().respond(data, OffsetDateTime::UNIX_EPOCH + Duration::days(20_001), &[0x42; 8]);
    assert!(!resp.is_empty(), "every request gets a TimeStampResp");
    if let Ok(req) = parsed {
        // A request we parsed is either granted with a token that matches it, or refused.
        let _ = jpki_sig::tsp::token_from_response(&resp, &req);
    }
});
