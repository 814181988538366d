//! 現況確認 and link data as the platform reads them: facts changed, newer certificate, the
//! predecessor of a renewed certificate and the card's pair, never old → new.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::Engine;
use std::sync::{Arc, Mutex};

use jpki_authority::{Authority, AuthorityError, CardKeys, InitOptions, Linkage, Liveness, Renewal};
use jpki_model::{BasicFour, CertKind, Serial};
use jpki_pki::{Endpoints, KeyType, SigningKey, SubjectPublicKey};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const PASS: &[u8] = b"test passphrase";

fn authority(engine: &Engine) -> (tempfile::TempDir, Authority, Arc<Mutex<OffsetDateTime>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions::new(KeyType::P384, Endpoints::new("http://127.0.0.1:7700").unwrap());
    opts.kdf_iterations = 1000;
    opts.shards = 4;
    let mut a = common::init(engine, dir.path(), &opts, PASS);
    let clock = Arc::new(Mutex::new(datetime!(2026-11-21 03:00:00 UTC)));
    let c = clock.clone();
    a.set_clock(move || *c.lock().unwrap());
    (dir, a, clock)
}

fn keys() -> CardKeys {
    let spki = || {
        SubjectPublicKey::from_der(&SigningKey::generate(KeyType::P384).unwrap().spki_der().unwrap()).unwrap()
    };
    CardKeys {
        auth: spki(),
        sign: spki(),
    }
}

fn facts() -> BasicFour {
    BasicFour {
        name: "山田　花子".parse().unwrap(),
        address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
        birth_date: jpki_model::parse_birth_date("1985-04-01").unwrap(),
        sex: "2".parse().unwrap(),
    }
}

fn b(s: &Serial) -> Vec<u8> {
    s.as_be_bytes().to_vec()
}

fn tick(clock: &Mutex<OffsetDateTime>) {
    *clock.lock().unwrap() += Duration::minutes(1);
}

#[test]
fn liveness_says_whether_facts_changed_and_a_newer_certificate_exists() {
    common::each_engine(liveness_says_whether_facts_changed_and_a_newer_certificate_exists_on);
}

fn liveness_says_whether_facts_changed_and_a_newer_certificate_exists_on(engine: &Engine) {
    let (_d, mut a, clock) = authority(engine);
    let issuers = a.issuers(PASS).unwrap();
    let r = a.add_resident(&facts(), None).unwrap();
    let card = a.issue_card(r.resident_id, &keys(), &issuers).unwrap();
    let s1 = card.sign.unwrap().serial;
    let unchanged = Liveness {
        facts_changed: false,
        newer_certificate: false,
    };
    assert_eq!(a.liveness(&b(&s1)).unwrap(), Some(unchanged));
    assert_eq!(a.liveness(&[0x40, 1, 2]).unwrap(), None, "unknown serial");
    assert!(
        matches!(a.liveness(&b(&card.auth.serial)), Err(AuthorityError::State(_))),
        "an authentication certificate carries no facts"
    );

    // Renewal without a change: newer certificate, same facts.
    tick(&clock);
    let ren = a
        .renew(
            card.card_id.as_str(),
            &keys(),
            Renewal {
                auth: false,
                sign: true,
            },
            &issuers,
        )
        .unwrap();
    let s2 = ren.sign.unwrap().serial;
    assert_eq!(
        a.liveness(&b(&s1)).unwrap(),
        Some(Liveness {
            facts_changed: false,
            newer_certificate: true
        })
    );
    assert_eq!(a.liveness(&b(&s2)).unwrap(), Some(unchanged));

    // A move: both signature certificates' facts are out of date; the old one already had a
    // successor, the current one (revoked now) has none yet.
    tick(&clock);
    a.move_resident(r.resident_id, &"大阪府大阪市北区1-1".parse().unwrap())
        .unwrap();
    assert_eq!(
        a.liveness(&b(&s2)).unwrap(),
        Some(Liveness {
            facts_changed: true,
            newer_certificate: false
        })
    );
    assert!(a.liveness(&b(&s1)).unwrap().unwrap().facts_changed);
    // Reissued with the new address: the new certificate is current, the old one has a newer one.
    tick(&clock);
    let s3 = a
        .renew(
            card.card_id.as_str(),
            &keys(),
            Renewal {
                auth: false,
                sign: true,
            },
            &issuers,
        )
        .unwrap()
        .sign
        .unwrap()
        .serial;
    assert_eq!(a.liveness(&b(&s3)).unwrap(), Some(unchanged));
    assert_eq!(
        a.liveness(&b(&s2)).unwrap(),
        Some(Liveness {
            facts_changed: true,
            newer_certificate: true
        })
    );
    // Moving back to the old address is still a change since s1/s2 were issued, and one for s3.
    tick(&clock);
    a.move_resident(r.resident_id, &"東京都千代田区霞が関2-1-2".parse().unwrap())
        .unwrap();
    assert!(a.liveness(&b(&s2)).unwrap().unwrap().facts_changed);
    assert!(a.liveness(&b(&s3)).unwrap().unwrap().facts_changed);
    // A name change as well.
    tick(&clock);
    let s4 = a
        .renew(
            card.card_id.as_str(),
            &keys(),
            Renewal {
                auth: false,
                sign: true,
            },
            &issuers,
        )
        .unwrap()
        .sign
        .unwrap()
        .serial;
    assert_eq!(a.liveness(&b(&s4)).unwrap(), Some(unchanged));
    tick(&clock);
    a.rename_resident(r.resident_id, &"鈴木　花子".parse().unwrap())
        .unwrap();
    assert!(a.liveness(&b(&s4)).unwrap().unwrap().facts_changed);
}

#[test]
fn linkage_follows_renewals_backwards_and_pairs_within_the_card() {
    common::each_engine(linkage_follows_renewals_backwards_and_pairs_within_the_card_on);
}

fn linkage_follows_renewals_backwards_and_pairs_within_the_card_on(engine: &Engine) {
    let (_d, mut a, clock) = authority(engine);
    let issuers = a.issuers(PASS).unwrap();
    let r = a.add_resident(&facts(), None).unwrap();
    let card = a.issue_card(r.resident_id, &keys(), &issuers).unwrap();
    let (a1, s1) = (card.auth.serial.clone(), card.sign.clone().unwrap().serial);
    assert_eq!(
        a.linkage(&b(&a1)).unwrap(),
        Some(Linkage {
            kind: CertKind::Authentication,
            predecessor: None,
            pair: Some((CertKind::Signature, b(&s1))),
        })
    );
    assert_eq!(
        a.linkage(&b(&s1)).unwrap().unwrap().pair,
        Some((CertKind::Authentication, b(&a1)))
    );
    assert_eq!(a.linkage(&[0x40, 9]).unwrap(), None);

    // Renewal of both: B's predecessor is A; the new pair is the new certificates.
    tick(&clock);
    let ren = a
        .renew(
            card.card_id.as_str(),
            &keys(),
            Renewal {
                auth: true,
                sign: true,
            },
            &issuers,
        )
        .unwrap();
    let (a2, s2) = (ren.auth.unwrap().serial, ren.sign.unwrap().serial);
    let l = a.linkage(&b(&a2)).unwrap().unwrap();
    assert_eq!(l.predecessor, Some(b(&a1)));
    assert_eq!(l.pair, Some((CertKind::Signature, b(&s2))));
    assert_eq!(a.linkage(&b(&s2)).unwrap().unwrap().predecessor, Some(b(&s1)));
    // The old certificates never lead to the new ones.
    for old in [&a1, &s1] {
        let l = a.linkage(&b(old)).unwrap().unwrap();
        assert_eq!(l.predecessor, None);
        let pair = l.pair.unwrap().1;
        assert!(pair == b(&a1) || pair == b(&s1), "old pairs with old");
    }

    // A move revokes s2; renewing the auth certificate then pairs the revoked s2 with a3 on the
    // card, but s2 (revoked before a3 existed) never yields a3.
    tick(&clock);
    a.move_resident(r.resident_id, &"大阪府大阪市北区1-1".parse().unwrap())
        .unwrap();
    tick(&clock);
    let a3 = a
        .renew(
            card.card_id.as_str(),
            &keys(),
            Renewal {
                auth: true,
                sign: false,
            },
            &issuers,
        )
        .unwrap()
        .auth
        .unwrap()
        .serial;
    assert!(
        a.links(&s2)
            .unwrap()
            .iter()
            .any(|(l, _, t)| l == "pair" && *t == a3),
        "the registry does link them"
    );
    assert_eq!(
        a.linkage(&b(&s2)).unwrap().unwrap().pair,
        Some((CertKind::Authentication, b(&a2)))
    );
    let l = a.linkage(&b(&a3)).unwrap().unwrap();
    assert_eq!(l.predecessor, Some(b(&a2)));
    assert_eq!(
        l.pair,
        Some((CertKind::Signature, b(&s2))),
        "its card's signature certificate"
    );

    // A new card: its certificates' predecessors are the old card's.
    tick(&clock);
    let card2 = a.issue_card(r.resident_id, &keys(), &issuers).unwrap();
    assert_eq!(
        a.linkage(&b(&card2.auth.serial)).unwrap().unwrap().predecessor,
        Some(b(&a3))
    );
    assert_eq!(
        a.linkage(&b(&card2.sign.unwrap().serial))
            .unwrap()
            .unwrap()
            .predecessor,
        Some(b(&s2))
    );
}
