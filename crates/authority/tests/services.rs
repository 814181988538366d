//! Service certificates (OCSP responders, TSA) and the status stream an OCSP responder loads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jpki_authority::{Authority, CardKeys, InitOptions};
use jpki_model::{BasicFour, CertKind, RevocationReason};
use jpki_pki::x509::ParsedCert;
use jpki_pki::{Endpoints, KeyType, SigningKey, SubjectPublicKey, oid};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const PASS: &[u8] = b"test passphrase";

fn authority(engine: &Engine, kt: KeyType) -> (tempfile::TempDir, Authority, Arc<Mutex<OffsetDateTime>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions::new(kt, Endpoints::new("http://127.0.0.1:7700").unwrap());
    opts.kdf_iterations = 1000;
    opts.shards = 4;
    let mut a = common::init(engine, dir.path(), &opts, PASS);
    let clock = Arc::new(Mutex::new(datetime!(2026-11-21 03:00:00 UTC)));
    let c = clock.clone();
    a.set_clock(move || *c.lock().unwrap());
    (dir, a, clock)
}

fn keys() -> CardKeys {
    let spki = |_| {
        SubjectPublicKey::from_der(&SigningKey::generate(KeyType::P384).unwrap().spki_der().unwrap()).unwrap()
    };
    CardKeys {
        auth: spki(0),
        sign: spki(1),
    }
}

#[test]
fn ocsp_responders_are_issued_once_per_ca_and_renewed_before_they_end() {
    common::each_engine(ocsp_responders_are_issued_once_per_ca_and_renewed_before_they_end_on);
}

fn ocsp_responders_are_issued_once_per_ca_and_renewed_before_they_end_on(engine: &Engine) {
    let (_d, mut a, clock) = authority(engine, KeyType::Rsa2048);
    for kind in [CertKind::Signature, CertKind::Authentication] {
        let creds = a.ocsp_credentials(kind, PASS).unwrap();
        let cert = ParsedCert::from_der(&creds.cert_der).unwrap();
        let root = ParsedCert::from_der(&a.ca_cert(kind).unwrap()).unwrap();
        assert_eq!(
            cert.issuer_der, root.subject_der,
            "{kind:?}: certified by its own CA"
        );
        assert!(jpki_pki::verify_signed_by(&creds.cert_der, root.der()).unwrap());
        let (eku, _) = cert.extended_key_usage.clone().unwrap();
        assert_eq!(eku, vec![oid::KP_OCSP_SIGNING], "{kind:?}");
        assert_eq!(
            creds.key.key_type(),
            KeyType::P384,
            "an EC responder key whatever the CA's"
        );
        let spki = SubjectPublicKey::from_der(&creds.key.spki_der().unwrap()).unwrap();
        assert_eq!(
            cert.subject_key_id,
            Some(jpki_pki::key::key_identifier(spki.bits()))
        );
        assert_eq!(cert.not_after - cert.not_before, Duration::days(90));
        // Asked again: the same certificate, its key decrypted without the CA keys.
        let again = a.ocsp_credentials(kind, PASS).unwrap();
        assert_eq!(again.cert_der, creds.cert_der);
    }
    let sign_responder = a.ocsp_credentials(CertKind::Signature, PASS).unwrap().cert_der;
    // 61 days on, within 30 days of its end: a new one.
    *clock.lock().unwrap() += Duration::days(61);
    let renewed = a.ocsp_credentials(CertKind::Signature, PASS).unwrap();
    assert_ne!(renewed.cert_der, sign_responder);
    // A wrong passphrase decrypts nothing.
    assert!(a.ocsp_credentials(CertKind::Signature, b"wrong").is_err());
    // The TSA is a separate service of the signature CA.
    let tsa = a.tsa_credentials(PASS).unwrap();
    assert_ne!(tsa.cert_der, renewed.cert_der);
    // The TSA certificate (ten years) is renewed within a year of its end, once.
    let tsa_end = ParsedCert::from_der(&tsa.cert_der).unwrap().not_after;
    *clock.lock().unwrap() = tsa_end - Duration::days(400);
    assert_eq!(a.tsa_credentials(PASS).unwrap().cert_der, tsa.cert_der, "not yet");
    *clock.lock().unwrap() = tsa_end - Duration::days(300);
    let new_tsa = a.tsa_credentials(PASS).unwrap();
    assert_ne!(new_tsa.cert_der, tsa.cert_der, "renewed within a year of its end");
    assert_eq!(
        a.tsa_credentials(PASS).unwrap().cert_der,
        new_tsa.cert_der,
        "once"
    );
    // Near the root's own end a renewal could not last longer: the current certificate is kept.
    let root_end = ParsedCert::from_der(&a.ca_cert(CertKind::Signature).unwrap())
        .unwrap()
        .not_after;
    *clock.lock().unwrap() = root_end - Duration::days(20);
    let late = a.tsa_credentials(PASS).unwrap();
    assert_eq!(
        a.tsa_credentials(PASS).unwrap().cert_der,
        late.cert_der,
        "not reissued on every call"
    );
}

#[test]
fn the_status_stream_names_every_certificate_and_its_revocation() {
    common::each_engine(the_status_stream_names_every_certificate_and_its_revocation_on);
}

fn the_status_stream_names_every_certificate_and_its_revocation_on(engine: &Engine) {
    let (_d, mut a, _clock) = authority(engine, KeyType::P384);
    let issuers = a.issuers(PASS).unwrap();
    let facts = BasicFour {
        name: "山田　太郎".parse().unwrap(),
        address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
        birth_date: jpki_model::parse_birth_date("1975-03-03").unwrap(),
        sex: "1".parse().unwrap(),
    };
    let mut cards = Vec::new();
    for _ in 0..3 {
        let r = a.add_resident(&facts, None).unwrap();
        cards.push(a.issue_card(r.resident_id, &keys(), &issuers).unwrap());
    }
    let position = a.status_history_position().unwrap();
    a.revoke(
        &cards[0].sign.as_ref().unwrap().serial,
        RevocationReason::KeyCompromise,
    )
    .unwrap();
    a.report_lost(cards[1].card_id.as_str(), false).unwrap();
    // The change log a running responder follows: the revocation and both holds since then.
    let mut changes = Vec::new();
    let end = a
        .status_changes_since(position, |kind, generation, serial, status| {
            assert_eq!(generation, 1);
            changes.push((kind, serial.to_vec(), status.map(|(_, r)| r)));
        })
        .unwrap();
    assert_eq!(end, a.status_history_position().unwrap());
    let sign = |i: usize| cards[i].sign.as_ref().unwrap().serial.as_be_bytes().to_vec();
    let auth = |i: usize| cards[i].auth.serial.as_be_bytes().to_vec();
    changes.sort();
    let mut want = vec![
        (
            CertKind::Signature,
            sign(0),
            Some(RevocationReason::KeyCompromise),
        ),
        (
            CertKind::Authentication,
            auth(1),
            Some(RevocationReason::CertificateHold),
        ),
        (
            CertKind::Signature,
            sign(1),
            Some(RevocationReason::CertificateHold),
        ),
    ];
    want.sort();
    assert_eq!(changes, want);
    assert_eq!(
        a.status_changes_since(end, |_, _, _, _| panic!("no change"))
            .unwrap(),
        end
    );
    for kind in [CertKind::Signature, CertKind::Authentication] {
        let mut seen = HashMap::new();
        a.for_each_certificate_status(kind, |generation, serial, status| {
            assert_eq!(generation, 1);
            seen.insert(serial.to_vec(), status.map(|(_, r)| r));
        })
        .unwrap();
        assert_eq!(seen.len(), 3, "{kind:?}");
        let cert = |i: usize| match kind {
            CertKind::Signature => cards[i].sign.as_ref().unwrap(),
            CertKind::Authentication => &cards[i].auth,
        };
        let want0 = (kind == CertKind::Signature).then_some(RevocationReason::KeyCompromise);
        assert_eq!(seen[cert(0).serial.as_be_bytes()], want0);
        assert_eq!(
            seen[cert(1).serial.as_be_bytes()],
            Some(RevocationReason::CertificateHold)
        );
        assert_eq!(seen[cert(2).serial.as_be_bytes()], None);
    }
}

#[test]
fn after_a_rollover_each_generation_keeps_a_responder_of_its_own() {
    common::each_engine(after_a_rollover_each_generation_keeps_a_responder_of_its_own_on);
}

fn after_a_rollover_each_generation_keeps_a_responder_of_its_own_on(engine: &Engine) {
    let (_d, mut a, clock) = authority(engine, KeyType::P384);
    let facts = BasicFour {
        name: "山田　花子".parse().unwrap(),
        address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
        birth_date: jpki_model::parse_birth_date("1980-04-04").unwrap(),
        sex: "2".parse().unwrap(),
    };
    let r = a.add_resident(&facts, None).unwrap();
    let old_card = a
        .issue_card(r.resident_id, &keys(), &a.issuers(PASS).unwrap())
        .unwrap();
    let first = a.ocsp_responders(CertKind::Signature, PASS).unwrap();
    assert_eq!(first.len(), 1);
    // A year on, a rollover: a verifier sees only what the authority issued.
    *clock.lock().unwrap() += Duration::days(365);
    a.rollover(PASS, 1000, 20).unwrap();
    let before = a.existing_ocsp_responders(CertKind::Signature, PASS);
    assert!(before.is_err(), "the new generation has no responder yet");
    for kind in [CertKind::Signature, CertKind::Authentication] {
        let responders = a.ocsp_responders(kind, PASS).unwrap();
        assert_eq!(
            responders.iter().map(|r| r.generation).collect::<Vec<_>>(),
            vec![1, 2],
            "{kind:?}"
        );
        let roots = a.ca_certs(kind).unwrap();
        for (r, (g, root)) in responders.iter().zip(&roots) {
            assert_eq!(r.generation, *g);
            assert_eq!(&r.root, root);
            assert!(
                jpki_pki::verify_signed_by(&r.credentials.cert_der, root).unwrap(),
                "{kind:?} generation {g}: certified by its own root"
            );
            assert_eq!(r.credentials.chain, vec![root.clone()]);
        }
        let existing = a.existing_ocsp_responders(kind, PASS).unwrap();
        assert_eq!(
            existing
                .iter()
                .map(|r| r.credentials.cert_der.clone())
                .collect::<Vec<_>>(),
            responders
                .iter()
                .map(|r| r.credentials.cert_der.clone())
                .collect::<Vec<_>>(),
            "the verifier loads the same responders"
        );
    }
    let again = a.ocsp_responders(CertKind::Signature, PASS).unwrap();
    let renewed = a.existing_ocsp_responders(CertKind::Signature, PASS).unwrap();
    assert_eq!(
        again[0].credentials.cert_der, renewed[0].credentials.cert_der,
        "the old generation keeps one responder (renewed, not reissued on every call)"
    );
    assert_ne!(
        again[0].credentials.cert_der, first[0].credentials.cert_der,
        "a year on, the 90-day responder of generation 1 was renewed"
    );
    // The status stream names the generation that issued each certificate.
    let position = a.status_history_position().unwrap();
    let r2 = a.add_resident(&facts, None).unwrap();
    let new_card = a
        .issue_card(r2.resident_id, &keys(), &a.issuers(PASS).unwrap())
        .unwrap();
    a.revoke(
        &old_card.sign.as_ref().unwrap().serial,
        RevocationReason::KeyCompromise,
    )
    .unwrap();
    let mut changes = HashMap::new();
    a.status_changes_since(position, |kind, generation, serial, _| {
        changes.insert((kind, serial.to_vec()), generation);
    })
    .unwrap();
    assert_eq!(
        changes[&(
            CertKind::Signature,
            old_card.sign.as_ref().unwrap().serial.as_be_bytes().to_vec()
        )],
        1
    );
    assert_eq!(
        changes[&(
            CertKind::Authentication,
            new_card.auth.serial.as_be_bytes().to_vec()
        )],
        2
    );
    // Once a generation's root has ended it keeps no responder.
    let old_end = ParsedCert::from_der(&a.ca_certs(CertKind::Signature).unwrap()[0].1)
        .unwrap()
        .not_after;
    *clock.lock().unwrap() = old_end + Duration::days(1);
    let late = a.ocsp_responders(CertKind::Signature, PASS).unwrap();
    assert_eq!(late.iter().map(|r| r.generation).collect::<Vec<_>>(), vec![2]);
}
