//! Path building and CRL status: anchors, intermediates, constraint failures, wrong signers, complete,
//! sharded and delta CRLs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use jpki_model::{BasicFour, CertKind, RevocationReason, Serial};
use jpki_pki::path::{self, PathError, TrustAnchors};
use jpki_pki::revocation::{CrlStore, ParsedCrl, RevocationSource, Status};
use jpki_pki::x509::ParsedCert;
use jpki_pki::{
    CrlEntry, CrlScope, CrlSpec, CustomSpec, EndEntitySpec, Endpoints, Issuer, KeyType, RootSpec, SigningKey,
    SubjectPublicKey, extensions, issue_root, name,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

const NOW: OffsetDateTime = datetime!(2026-11-21 03:00:00 UTC);

fn endpoints() -> Endpoints {
    Endpoints::new("http://127.0.0.1:7700").unwrap()
}

fn root(kt: KeyType, kind: CertKind) -> Issuer {
    let key = SigningKey::generate(kt).unwrap();
    let cert = issue_root(&RootSpec {
        kind,
        key: &key,
        serial: &Serial::from_be_bytes(&[1]).unwrap(),
        not_before: NOW - Duration::days(10),
        not_after: NOW + Duration::days(3650),
        endpoints: &endpoints(),
        generation: 1,
    })
    .unwrap();
    Issuer::new(kind, key, cert).unwrap()
}

fn serial(shard: u16) -> Serial {
    let mut r = [0u8; 16];
    aws_lc_rs::rand::fill(&mut r).unwrap();
    Serial::generate(r, shard)
}

fn facts() -> BasicFour {
    BasicFour {
        name: "山田　太郎".parse().unwrap(),
        address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
        birth_date: jpki_model::parse_birth_date("1980-04-01").unwrap(),
        sex: "1".parse().unwrap(),
    }
}

fn ee(issuer: &Issuer, s: &Serial) -> Vec<u8> {
    let key = SigningKey::generate(KeyType::Rsa2048).unwrap();
    let pk = SubjectPublicKey::from_der(&key.spki_der().unwrap()).unwrap();
    let f = facts();
    issuer
        .issue(
            &EndEntitySpec {
                serial: s,
                subject_key: &pk,
                subject_id: "TESTID0123456789",
                not_before: NOW - Duration::days(1),
                not_after: NOW + Duration::days(365),
                facts: (issuer.kind() == CertKind::Signature).then_some(&f),
            },
            &endpoints(),
        )
        .unwrap()
}

fn parsed(der: &[u8]) -> Arc<ParsedCert> {
    Arc::new(ParsedCert::from_der(der).unwrap())
}

fn anchors(roots: &[&Issuer]) -> TrustAnchors {
    let mut t = TrustAnchors::new();
    for r in roots {
        t.add_der(r.cert_der()).unwrap();
    }
    t
}

fn intermediate(parent: &Issuer, ca: bool, ku: KeyUsage, path_len: Option<u8>) -> Issuer {
    let key = SigningKey::generate(KeyType::Rsa2048).unwrap();
    let pk = SubjectPublicKey::from_der(&key.spki_der().unwrap()).unwrap();
    let cert = parent
        .issue_custom(CustomSpec {
            serial: &serial(0),
            subject: name::custom(&[("C", "JP"), ("O", "Test"), ("CN", "Intermediate")]).unwrap(),
            subject_key: &pk,
            not_before: NOW - Duration::days(5),
            not_after: NOW + Duration::days(1000),
            extensions: vec![
                extensions::basic_constraints(ca, path_len).unwrap(),
                extensions::key_usage(ku).unwrap(),
            ],
        })
        .unwrap();
    Issuer::new(CertKind::Signature, key, cert).unwrap()
}

#[test]
fn paths_for_both_key_types_and_intermediates() {
    for kt in [KeyType::Rsa2048, KeyType::P384] {
        let r = root(kt, CertKind::Signature);
        let cert = parsed(&ee(&r, &serial(3)));
        let p = path::build(cert.clone(), &[], &anchors(&[&r])).unwrap();
        assert_eq!(p.certs.len(), 2);
        assert_eq!(p.anchor().der(), r.cert_der());
        assert_eq!(cert.jpki_kind(), "sign");
        assert!(cert.jpki_san.is_some());

        // Another root with the same name: the signature decides.
        let other = root(kt, CertKind::Signature);
        let e = path::build(cert.clone(), &[], &anchors(&[&other])).unwrap_err();
        assert!(
            matches!(e, PathError::NoChain(ref s) if s.contains("another key")),
            "{e:?}"
        );
        assert!(path::build(cert, &[], &TrustAnchors::new()).is_err());

        // Through an intermediate: found when offered, NoChain when missing.
        let mid = intermediate(
            &r,
            true,
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            Some(0),
        );
        let leaf = parsed(&ee(&mid, &serial(1)));
        let mid_cert = parsed(mid.cert_der());
        let p = path::build(leaf.clone(), std::slice::from_ref(&mid_cert), &anchors(&[&r])).unwrap();
        assert_eq!(p.certs.len(), 3);
        let e = path::build(leaf, &[], &anchors(&[&r])).unwrap_err();
        assert!(
            matches!(e, PathError::NoChain(ref s) if s.contains("neither a trust anchor")),
            "{e:?}"
        );
    }
}

#[test]
fn intermediate_constraints() {
    let r = root(KeyType::Rsa2048, CertKind::Signature);
    let ta = anchors(&[&r]);
    let not_ca = intermediate(&r, false, KeyUsage(KeyUsages::KeyCertSign.into()), None);
    let leaf = parsed(&ee(&not_ca, &serial(1)));
    let e = path::build(leaf, &[parsed(not_ca.cert_der())], &ta).unwrap_err();
    assert!(
        matches!(e, PathError::Constraints(ref s) if s.contains("not a CA")),
        "{e:?}"
    );

    let no_certsign = intermediate(&r, true, KeyUsage(KeyUsages::DigitalSignature.into()), None);
    let leaf = parsed(&ee(&no_certsign, &serial(1)));
    let e = path::build(leaf, &[parsed(no_certsign.cert_der())], &ta).unwrap_err();
    assert!(
        matches!(e, PathError::Constraints(ref s) if s.contains("keyCertSign")),
        "{e:?}"
    );

    // pathLen 0 on the upper intermediate forbids a second one below it.
    let upper = intermediate(&r, true, KeyUsage(KeyUsages::KeyCertSign.into()), Some(0));
    let lower = intermediate(&upper, true, KeyUsage(KeyUsages::KeyCertSign.into()), None);
    let leaf = parsed(&ee(&lower, &serial(1)));
    let e = path::build(leaf, &[parsed(lower.cert_der()), parsed(upper.cert_der())], &ta).unwrap_err();
    assert!(
        matches!(e, PathError::Constraints(ref s) if s.contains("allows 0")),
        "{e:?}"
    );
}

fn crl(issuer: &Issuer, scope: CrlScope, number: u64, entries: &[CrlEntry]) -> ParsedCrl {
    let der = issuer
        .crl(
            &CrlSpec {
                scope,
                number,
                this_update: NOW,
                next_update: NOW + Duration::days(1),
                endpoints: &endpoints(),
            },
            entries,
        )
        .unwrap();
    ParsedCrl::from_der(&der, &format!("crl-{number}")).unwrap()
}

#[test]
fn crl_status_complete_shard_delta_and_wrong_signer() {
    let r = root(KeyType::P384, CertKind::Signature);
    let root_cert = parsed(r.cert_der());
    let (s_good, s_rev, s_hold) = (serial(2), serial(2), serial(5));
    let good = parsed(&ee(&r, &s_good));
    let revoked = parsed(&ee(&r, &s_rev));
    let held = parsed(&ee(&r, &s_hold));
    let at = NOW - Duration::hours(2);
    let entry = |s: &Serial, reason| CrlEntry {
        serial: s.clone(),
        revoked_at: at,
        reason,
    };

    let mut store = CrlStore::new();
    assert!(matches!(store.status(&good, &root_cert), Status::Unknown { .. }));

    // A shard CRL covers only certificates naming its URL.
    store.add(crl(
        &r,
        CrlScope::Shard(2),
        7,
        &[entry(&s_rev, RevocationReason::KeyCompromise)],
    ));
    assert!(matches!(store.status(&good, &root_cert), Status::Good { .. }));
    assert!(matches!(
        store.status(&revoked, &root_cert),
        Status::Revoked { reason: RevocationReason::KeyCompromise, at: t, .. } if t == at
    ));
    assert!(
        matches!(store.status(&held, &root_cert), Status::Unknown { .. }),
        "shard 5 not loaded"
    );

    // The complete CRL, then a delta that puts one on hold and a later one that lifts it.
    store.add(crl(
        &r,
        CrlScope::Complete,
        7,
        &[entry(&s_rev, RevocationReason::KeyCompromise)],
    ));
    assert!(matches!(store.status(&held, &root_cert), Status::Good { .. }));
    store.add(crl(
        &r,
        CrlScope::Delta { base: 7 },
        8,
        &[entry(&s_hold, RevocationReason::CertificateHold)],
    ));
    assert!(matches!(
        store.status(&held, &root_cert),
        Status::Revoked { reason: RevocationReason::CertificateHold, ref source, .. } if source.contains("delta")
    ));
    store.add(crl(
        &r,
        CrlScope::Delta { base: 7 },
        9,
        &[entry(&s_hold, RevocationReason::RemoveFromCrl)],
    ));
    assert!(matches!(store.status(&held, &root_cert), Status::Good { .. }));

    // A CRL with the right name but another key is never believed.
    let impostor = root(KeyType::P384, CertKind::Signature);
    let mut only_forged = CrlStore::new();
    only_forged.add(crl(&impostor, CrlScope::Complete, 99, &[]));
    assert!(matches!(
        only_forged.status(&revoked, &root_cert),
        Status::Unknown { ref why } if why.contains("not signed")
    ));
}

#[test]
fn garbage_crls_and_certificates_are_errors() {
    for bad in [
        &b""[..],
        b"\x30\x00",
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    ] {
        assert!(ParsedCrl::from_der(bad, "x").is_err());
        assert!(ParsedCert::from_der(bad).is_err());
    }
    let r = root(KeyType::Rsa2048, CertKind::Signature);
    let der = r.cert_der();
    for cut in [1, der.len() / 2, der.len() - 1] {
        assert!(ParsedCert::from_der(&der[..cut]).is_err());
    }
}
