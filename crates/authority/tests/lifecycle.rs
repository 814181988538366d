//! The authority's life-event rules, link data and CRL contents, through the library API and
//! for both authority key types.
// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use common::Engine;
use std::sync::OnceLock;

use der::Decode;
use jpki_authority::{Authority, AuthorityError, CardKeys, CertStatus, InitOptions, Renewal};
use jpki_model::{BasicFour, CertKind, RevocationReason, Serial};
use jpki_pki::{CertificateInfo, Endpoints, KeyType, SigningKey, SubjectPublicKey};
use time::macros::datetime;
use x509_cert::crl::CertificateList;

const PASS: &[u8] = b"test passphrase";

/// Subject keys are slow to make; a few shared ones are enough (the registry never sees them twice
/// in one test in a way that matters).
fn pool() -> &'static Vec<Vec<u8>> {
    static POOL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..6)
            .map(|_| {
                SigningKey::generate(KeyType::Rsa2048)
                    .unwrap()
                    .spki_der()
                    .unwrap()
            })
            .collect()
    })
}

fn keys(i: usize) -> CardKeys {
    let p = pool();
    CardKeys {
        auth: SubjectPublicKey::from_der(&p[i % p.len()]).unwrap(),
        sign: SubjectPublicKey::from_der(&p[(i + 1) % p.len()]).unwrap(),
    }
}

fn authority(engine: &Engine, kt: KeyType) -> (tempfile::TempDir, Authority) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions::new(kt, Endpoints::new("http://127.0.0.1:7700").unwrap());
    opts.kdf_iterations = 1000;
    opts.shards = 4;
    let mut a = common::init(engine, dir.path(), &opts, PASS);
    a.set_clock(|| datetime!(2026-11-21 03:00:00 UTC));
    (dir, a)
}

fn facts(birth: &str) -> BasicFour {
    BasicFour {
        name: "山田　太郎".parse().unwrap(),
        address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
        birth_date: jpki_model::parse_birth_date(birth).unwrap(),
        sex: "1".parse().unwrap(),
    }
}

fn status(a: &Authority, s: &Serial) -> (CertStatus, Option<RevocationReason>) {
    let c = a.certificate(s).unwrap();
    (c.status, c.reason)
}

fn crl_serials(der: &[u8]) -> Vec<(String, Option<u8>)> {
    let crl: CertificateList = CertificateList::from_der(der).unwrap();
    crl.tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let reason = r.crl_entry_extensions.as_ref().and_then(|exts| {
                exts.iter()
                    .find(|e| e.extn_id == jpki_pki::oid::ext::REASON_CODE)
                    .map(|e| *e.extn_value.as_bytes().last().unwrap())
            });
            (
                Serial::from_be_bytes(r.serial_number.as_bytes())
                    .unwrap()
                    .to_hex(),
                reason,
            )
        })
        .collect()
}

#[test]
fn life_events_follow_the_seeds() {
    common::each_engine(life_events_follow_the_seeds_on);
}

fn life_events_follow_the_seeds_on(engine: &Engine) {
    for kt in [KeyType::Rsa2048, KeyType::P384] {
        let (_d, mut a) = authority(engine, kt);
        let issuers = a.issuers(PASS).unwrap();
        let r = a.add_resident(&facts("1980-02-17"), None).unwrap();
        let card = a.issue_card(r.resident_id, &keys(0), &issuers).unwrap();
        let sign = card.sign.clone().unwrap();
        let auth = card.auth.clone();

        // Validity: 23:59:59 JST on the 5th birthday after issue (2031-02-17).
        assert_eq!(sign.not_after, datetime!(2031-02-17 14:59:59 UTC));
        assert_eq!(auth.not_after, sign.not_after);
        // Link data: the card's sign ↔ auth pair.
        assert!(
            a.links(&sign.serial)
                .unwrap()
                .iter()
                .any(|(l, f, t)| l == "pair" && *f == sign.serial && *t == auth.serial)
        );

        // Address change: sign revoked (affiliationChanged), auth stays.
        a.move_resident(r.resident_id, &"大阪府大阪市北区1-1".parse().unwrap())
            .unwrap();
        assert_eq!(
            status(&a, &sign.serial),
            (CertStatus::Revoked, Some(RevocationReason::AffiliationChanged))
        );
        assert_eq!(status(&a, &auth.serial).0, CertStatus::Good);

        // Reissue of the sign certificate: new serial, new address, old → new link.
        let ren = a
            .renew(
                card.card_id.as_str(),
                &keys(2),
                Renewal {
                    auth: false,
                    sign: true,
                },
                &issuers,
            )
            .unwrap();
        let new_sign = ren.sign.unwrap();
        assert_ne!(new_sign.serial, sign.serial);
        let info = CertificateInfo::from_der(&new_sign.der).unwrap();
        assert_eq!(info.jpki.unwrap().address.as_deref(), Some("大阪府大阪市北区1-1"));
        assert!(
            a.links(&new_sign.serial)
                .unwrap()
                .iter()
                .any(|(l, f, t)| l == "renewal" && *f == sign.serial && *t == new_sign.serial)
        );

        // Loss: both on hold at once; found lifts; confirmed loss revokes with keyCompromise.
        let held = a.report_lost(card.card_id.as_str(), false).unwrap();
        assert_eq!(held.changed.len(), 2);
        assert_eq!(
            status(&a, &auth.serial),
            (CertStatus::Hold, Some(RevocationReason::CertificateHold))
        );
        a.card_found(card.card_id.as_str()).unwrap();
        assert_eq!(status(&a, &auth.serial), (CertStatus::Good, None));
        a.report_lost(card.card_id.as_str(), false).unwrap();
        a.report_lost(card.card_id.as_str(), true).unwrap();
        assert_eq!(
            status(&a, &auth.serial),
            (CertStatus::Revoked, Some(RevocationReason::KeyCompromise))
        );
        assert_eq!(
            status(&a, &new_sign.serial),
            (CertStatus::Revoked, Some(RevocationReason::KeyCompromise))
        );
        assert!(matches!(
            a.card_found(card.card_id.as_str()),
            Err(AuthorityError::State(_))
        ));

        // A new card supersedes nothing live now, but links old → new per kind.
        let card2 = a.issue_card(r.resident_id, &keys(3), &issuers).unwrap();
        assert!(card2.superseded.is_empty());
        assert!(
            a.links(&card2.auth.serial)
                .unwrap()
                .iter()
                .any(|(l, f, _)| l == "renewal" && *f == auth.serial)
        );

        // Death: everything revoked with cessationOfOperation; nothing more is issued.
        a.decease(r.resident_id).unwrap();
        assert_eq!(
            status(&a, &card2.auth.serial),
            (CertStatus::Revoked, Some(RevocationReason::CessationOfOperation))
        );
        assert!(a.issue_card(r.resident_id, &keys(4), &issuers).is_err());
        assert_eq!(a.check().unwrap(), Vec::<String>::new());
    }
}

#[test]
fn emigration_keeps_the_auth_certificate_and_children_get_no_signature_certificate() {
    common::each_engine(emigration_keeps_the_auth_certificate_and_children_get_no_signature_certificate_on);
}

fn emigration_keeps_the_auth_certificate_and_children_get_no_signature_certificate_on(engine: &Engine) {
    let (_d, mut a) = authority(engine, KeyType::Rsa2048);
    let issuers = a.issuers(PASS).unwrap();
    let adult = a.add_resident(&facts("1990-06-30"), None).unwrap();
    let card = a.issue_card(adult.resident_id, &keys(0), &issuers).unwrap();
    a.emigrate(adult.resident_id).unwrap();
    assert_eq!(
        status(&a, &card.sign.as_ref().unwrap().serial).0,
        CertStatus::Revoked
    );
    assert_eq!(status(&a, &card.auth.serial).0, CertStatus::Good);
    // Abroad: renewal of the auth certificate works, a signature certificate is refused.
    a.renew(
        card.card_id.as_str(),
        &keys(1),
        Renewal {
            auth: true,
            sign: false,
        },
        &issuers,
    )
    .unwrap();
    assert!(
        a.renew(
            card.card_id.as_str(),
            &keys(2),
            Renewal {
                auth: false,
                sign: true
            },
            &issuers
        )
        .is_err()
    );

    // Turns 15 on 2026-11-21 (today in the test clock) → eligible; a day later born → not.
    let fifteen = a.add_resident(&facts("2011-11-21"), None).unwrap();
    assert!(
        a.issue_card(fifteen.resident_id, &keys(3), &issuers)
            .unwrap()
            .sign
            .is_some()
    );
    let fourteen = a.add_resident(&facts("2011-11-22"), None).unwrap();
    let c = a.issue_card(fourteen.resident_id, &keys(4), &issuers).unwrap();
    assert!(c.sign.is_none());
    // Minors' cards last five years: the auth certificate ends on the 5th birthday too.
    assert_eq!(c.expires_on, "2030-11-22");
    assert_eq!(c.auth.not_after, datetime!(2030-11-22 14:59:59 UTC));
}

#[test]
fn bad_input_writes_nothing() {
    common::each_engine(bad_input_writes_nothing_on);
}

fn bad_input_writes_nothing_on(engine: &Engine) {
    let (_d, mut a) = authority(engine, KeyType::Rsa2048);
    let issuers = a.issuers(PASS).unwrap();
    let r = a
        .add_resident(&facts("1980-01-01"), Some("123456789018".parse().unwrap()))
        .unwrap();
    assert!(matches!(
        a.add_resident(&facts("1980-01-01"), Some("123456789018".parse().unwrap())),
        Err(AuthorityError::NumberInUse)
    ));
    assert!(
        a.add_resident(&facts("2030-01-01"), None).is_err(),
        "future birth date"
    );
    assert!(matches!(a.resident(99), Err(AuthorityError::NotFound { .. })));
    let unknown: Serial = "abcdef".parse().unwrap();
    assert!(matches!(
        a.revoke(&unknown, RevocationReason::KeyCompromise),
        Err(AuthorityError::NotFound { .. })
    ));
    let card = a.issue_card(r.resident_id, &keys(0), &issuers).unwrap();
    a.revoke(&card.auth.serial, RevocationReason::KeyCompromise)
        .unwrap();
    assert!(
        a.revoke(&card.auth.serial, RevocationReason::Superseded).is_err(),
        "revoked is final"
    );
    assert_eq!(
        status(&a, &card.auth.serial),
        (CertStatus::Revoked, Some(RevocationReason::KeyCompromise))
    );
    // The next resident gets the next id: the refused writes left nothing behind.
    assert_eq!(
        a.add_resident(&facts("1981-01-01"), None).unwrap().resident_id,
        r.resident_id + 1
    );
    assert!(matches!(
        Authority::init(
            a.dir(),
            &InitOptions::new(KeyType::Rsa2048, Endpoints::new("http://x").unwrap()),
            PASS
        ),
        Err(AuthorityError::AlreadyInitialised(_))
    ));
    assert!(matches!(a.issuers(b"wrong"), Err(AuthorityError::Pki(_))));
    assert_eq!(a.check().unwrap(), Vec::<String>::new());
}

#[test]
fn crls_complete_sharded_delta_and_numbers() {
    common::each_engine(crls_complete_sharded_delta_and_numbers_on);
}

fn crls_complete_sharded_delta_and_numbers_on(engine: &Engine) {
    let (d, mut a) = authority(engine, KeyType::P384);
    let issuers = a.issuers(PASS).unwrap();
    let out = d.path().join("pub");
    let mut cards = Vec::new();
    for i in 0..4 {
        let r = a.add_resident(&facts("1975-03-03"), None).unwrap();
        cards.push(a.issue_card(r.resident_id, &keys(i), &issuers).unwrap());
    }
    let revoked = cards[0].auth.serial.clone();
    a.revoke(&revoked, RevocationReason::KeyCompromise).unwrap();
    a.report_lost(cards[1].card_id.as_str(), false).unwrap();
    let first = a.publish_crls(&out, &issuers, |_, _| {}).unwrap();
    assert!(first.iter().all(|r| r.crl_number == 1 && r.delta_base.is_none()));
    let auth_ca = a.ca_cert(CertKind::Authentication).unwrap();
    let full = std::fs::read(out.join(Endpoints::full_crl_path(CertKind::Authentication))).unwrap();
    assert!(jpki_pki::verify_signed_by(&full, &auth_ca).unwrap());
    let entries = crl_serials(&full);
    assert!(entries.contains(&(revoked.to_hex(), Some(1))));
    assert!(entries.contains(&(cards[1].auth.serial.to_hex(), Some(6))));
    assert_eq!(entries.len(), 2);
    // Each entry is in exactly the shard its serial carries.
    for (hex, _) in &entries {
        let s: Serial = hex.parse().unwrap();
        for shard in 0..4 {
            let der =
                std::fs::read(out.join(Endpoints::shard_crl_path(CertKind::Authentication, shard))).unwrap();
            assert!(jpki_pki::verify_signed_by(&der, &auth_ca).unwrap());
            assert_eq!(
                crl_serials(&der).iter().any(|(h, _)| h == hex),
                s.shard() == Some(shard)
            );
        }
    }
    // Lift the hold, revoke another: the delta against CRL 1 has exactly these two changes.
    a.card_found(cards[1].card_id.as_str()).unwrap();
    a.revoke(&cards[2].auth.serial, RevocationReason::Superseded)
        .unwrap();
    let second = a.publish_crls(&out, &issuers, |_, _| {}).unwrap();
    assert!(
        second
            .iter()
            .all(|r| r.crl_number == 2 && r.delta_base == Some(1))
    );
    let delta = std::fs::read(out.join(Endpoints::delta_crl_path(CertKind::Authentication))).unwrap();
    let mut d_entries = crl_serials(&delta);
    d_entries.sort();
    let mut want = vec![
        (cards[1].auth.serial.to_hex(), Some(8)),
        (cards[2].auth.serial.to_hex(), Some(4)),
    ];
    want.sort();
    assert_eq!(d_entries, want);
    let full = std::fs::read(out.join(Endpoints::full_crl_path(CertKind::Authentication))).unwrap();
    assert_eq!(
        crl_serials(&full).len(),
        2,
        "released hold is off the complete CRL"
    );
}

/// `issue_cards` and `issue_run` sign outside the write transaction; what they store must be what a
/// card-at-a-time issuance stores, including when a resident appears twice (the second card's plan
/// is stale by the time it commits and is redone under the lock).
#[test]
fn batch_and_pipelined_issuance_store_consistent_cards() {
    common::each_engine(batch_and_pipelined_issuance_store_consistent_cards_on);
}

fn batch_and_pipelined_issuance_store_consistent_cards_on(engine: &Engine) {
    for kt in [KeyType::Rsa2048, KeyType::P384] {
        let (_d, mut a) = authority(engine, kt);
        let issuers = a.issuers(PASS).unwrap();
        let adult = a.add_resident(&facts("1980-02-17"), None).unwrap().resident_id;
        let child = a.add_resident(&facts("2016-05-05"), None).unwrap().resident_id;
        let other = a.add_resident(&facts("1950-12-31"), None).unwrap().resident_id;
        let k: Vec<CardKeys> = (0..6).map(keys).collect();

        // One batch, the adult twice: the second card supersedes the first.
        let cards = a
            .issue_cards(&[(adult, &k[0]), (child, &k[1]), (adult, &k[2])], &issuers)
            .unwrap();
        assert_eq!(cards.len(), 3);
        assert!(cards[1].sign.is_none(), "under-15 gets no signature certificate");
        let (first, second) = (&cards[0], &cards[2]);
        assert_ne!(first.card_id, second.card_id);
        let first_sign = first.sign.as_ref().unwrap().serial.clone();
        assert_eq!(
            second.superseded,
            vec![first.auth.serial.clone(), first_sign.clone()]
        );
        assert_eq!(
            status(&a, &first_sign),
            (CertStatus::Revoked, Some(RevocationReason::Superseded))
        );
        let links = a.links(&second.sign.as_ref().unwrap().serial).unwrap();
        assert!(
            links
                .iter()
                .any(|(l, from, _)| l == "renewal" && *from == first_sign),
            "{links:?}"
        );
        assert!(
            links
                .iter()
                .any(|(l, _, to)| l == "pair" && *to == second.auth.serial),
            "{links:?}"
        );
        for c in &cards {
            let info = CertificateInfo::from_der(&c.auth.der).unwrap();
            assert_eq!(info.serial, c.auth.serial.to_hex());
            assert_eq!(a.certificate(&c.auth.serial).unwrap().der, c.auth.der);
        }

        // A failing request (unknown resident) leaves the whole batch unissued.
        let before = a.card_certificates(cards[1].card_id.as_str()).unwrap().len();
        let err = a
            .issue_cards(&[(child, &k[3]), (9_999, &k[4])], &issuers)
            .unwrap_err();
        assert!(matches!(err, AuthorityError::NotFound { .. }), "{err}");
        assert_eq!(
            a.card_certificates(cards[1].card_id.as_str()).unwrap().len(),
            before
        );
        assert_eq!(
            status(&a, &cards[1].auth.serial).0,
            CertStatus::Good,
            "the failed batch superseded nothing"
        );

        // A pipelined run over several batches and workers, with repeats across batch boundaries.
        let requests: Vec<(i64, &CardKeys)> = (0..11)
            .map(|i| ([adult, child, other][i % 3], &k[i % k.len()]))
            .collect();
        let mut batches = Vec::new();
        let n = a
            .issue_run(
                &requests,
                &issuers,
                jpki_authority::RunOptions { batch: 4, workers: 3 },
                &mut |cards| {
                    batches.push(cards);
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(n, 11);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 3]);
        let issued: Vec<_> = batches.concat();
        for (c, (rid, _)) in issued.iter().zip(&requests) {
            assert_eq!(c.resident_id, *rid, "cards come back in request order");
        }
        // Only each resident's last card is live; every earlier one was superseded.
        for rid in [adult, child, other] {
            let mine: Vec<_> = issued.iter().filter(|c| c.resident_id == rid).collect();
            let (last, earlier) = mine.split_last().unwrap();
            assert_eq!(status(&a, &last.auth.serial).0, CertStatus::Good);
            for c in earlier {
                assert_eq!(status(&a, &c.auth.serial).0, CertStatus::Revoked);
            }
        }
        assert_eq!(a.check().unwrap(), Vec::<String>::new());
    }
}

/// An interrupted `card issue` finds the card the registry committed for the card's keys, and only
/// for those keys; the card data written with it verifies against the published CV certificate.
#[test]
fn find_issued_card_and_personalization() {
    common::each_engine(find_issued_card_and_personalization_on);
}

fn find_issued_card_and_personalization_on(engine: &Engine) {
    let (d, mut a) = authority(engine, KeyType::P384);
    let issuers = a.issuers(PASS).unwrap();
    let r = a.add_resident(&facts("1980-02-17"), None).unwrap();
    let card = a.issue_card(r.resident_id, &keys(2), &issuers).unwrap();
    let found = a
        .find_issued_card(r.resident_id, &pool()[2])
        .unwrap()
        .expect("the committed card");
    assert_eq!(found.card_id, card.card_id);
    assert_eq!(found.auth.der, card.auth.der);
    assert_eq!(
        found.sign.map(|s| s.der),
        card.sign.as_ref().map(|s| s.der.clone())
    );
    assert!(
        a.find_issued_card(r.resident_id, &pool()[4]).unwrap().is_none(),
        "other keys"
    );

    let signer = a.card_data_signer(PASS).unwrap();
    let cvc = std::fs::read(d.path().join(jpki_authority::CARD_DATA_CVC)).unwrap();
    assert_eq!(
        cvc,
        signer.cv_certificate(),
        "the CV certificate is published at init"
    );
    let cvc = jpki_card::layout::CvCert::parse(&cvc).unwrap();
    cvc.verify_signed_by(&cvc).unwrap();
    let (p, code) = a.personalization(&card, &pool()[5], &signer).unwrap();
    assert_eq!(p.collation_b, format!("550217{}{code}", &card.expires_on[..4]));
    jpki_card::layout::verify_assist(&p.assist[0], &p.assist[1], &p.assist[2], &cvc).unwrap();
    jpki_card::layout::verify_face(&p.face[1], &cvc).unwrap();
    let facts = jpki_card::layout::parse_assist_ef0002(&p.assist[1]).unwrap();
    assert_eq!(
        facts.address, "東京都千代田区霞が関２－１－２",
        "digits in full width"
    );
    assert_ne!(
        p.management_key,
        signer.management_key("000000000000000").to_vec()
    );
    assert_eq!(
        p.management_key,
        signer.management_key(card.card_id.as_str()).to_vec()
    );
}
