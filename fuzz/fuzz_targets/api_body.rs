//! JSON API request bodies from relying parties (`POST /v1/{operation}`): any bytes, to any
//! operation, from a caller with every capability — never a panic, and every answer is a JSON
//! object with a status the API documents (200 or a 4xx).
#![no_main]
use std::sync::{Arc, OnceLock};

use jpki_model::{CertKind, Serial};
use jpki_pki::ocsp::Responder;
use jpki_pki::{Endpoints, Issuer, KeyType, RootSpec, SigningKey, SubjectPublicKey, issue_root};
use jpki_platform::api::Rights;
use jpki_platform::{Api, OcspService, StatusIndex};
use time::OffsetDateTime;

const OPERATIONS: [&str; 10] = [
    "certificates/validity",
    "certificates/age",
    "certificates/pairwise-id",
    "certificates/liveness",
    "certificates/linkage",
    "consents",
    "consents/revoke",
    "signatures/verify",
    "signatures/augment",
    "no/such/operation",
];

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let now = OffsetDateTime::now_utc();
        let key = SigningKey::generate(KeyType::P384).expect("key");
        let root = issue_root(&RootSpec {
            kind: CertKind::Signature,
            key: &key,
            serial: &Serial::from_be_bytes(&[1]).expect("serial"),
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(365),
            endpoints: &Endpoints::new("http://127.0.0.1:7700").expect("url"),
        })
        .expect("root");
        let endpoints = Endpoints::new("http://127.0.0.1:7700").expect("url");
        let issuer = Issuer::new(CertKind::Signature, key, root.clone()).expect("issuer");
        let responder_key = SigningKey::generate(KeyType::P384).expect("key");
        let responder_cert = issuer
            .issue_ocsp_responder(
                &Serial::from_be_bytes(&[2]).expect("serial"),
                &SubjectPublicKey::from_der(&responder_key.spki_der().expect("spki")).expect("spki"),
                now - time::Duration::days(1),
                now + time::Duration::days(90),
                &endpoints,
            )
            .expect("responder certificate");
        let service = OcspService::new(time::Duration::hours(1))
            .with_ca(
                CertKind::Signature,
                &root,
                Responder::new(responder_key, responder_cert).expect("responder"),
                StatusIndex::build(std::iter::empty()),
            )
            .expect("service");
        Api::new(Arc::new(service), &[(CertKind::Signature, root)]).expect("api")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let operation = OPERATIONS[usize::from(which) % OPERATIONS.len()];
    let may = |_| true;
    let rights = Rights {
        rp_id: "rp-0123456789abcdef",
        may: &may,
        age_thresholds: &[18, 20],
    };
    let answer = api().call(operation, body, &rights, OffsetDateTime::now_utc());
    assert!(answer.body.is_object());
    assert!(answer.status == 200 || (400..500).contains(&answer.status), "{} {}", answer.status, answer.body);
});
