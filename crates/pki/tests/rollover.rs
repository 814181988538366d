//! CA key rollover (RFC 4210 §4.4): two generations of each hierarchy (signature, authentication)
//! for each key type (RSA-2048, P-384), joined by link certificates, NewWithOld (the new root's key
//! certified by the old key) and OldWithNew (the old root's key certified by the new key).
//!
//! Proven here: the shape of the link certificates and of a generation-2 root; what `issue_link`
//! refuses; path building across generations (only the old root trusted, only the new one, both); a
//! link certificate listed on its issuer's ARL failing revocation checking; the same paths and the
//! same revocation accepted and refused by `openssl verify`; and pkilint finding no error in link
//! certificates, generation-2 roots and end-entity certificates, and ARLs that list links.
//!
//! The interop tests are skipped, with a message, when openssl (on the PATH) or pkilint (in
//! `$JPKI_VENV`, default `<workspace>/.venv`) is missing, unless `JPKI_REQUIRE_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use der::{Decode, Encode};
use jpki_model::{BasicFour, CertKind, RevocationReason, Serial};
use jpki_pki::path::{self, CertPath, PathError, TrustAnchors};
use jpki_pki::revocation::{CrlStore, ParsedCrl, RevocationSource, Status};
use jpki_pki::x509::ParsedCert;
use jpki_pki::{
    CrlEntry, CrlScope, CrlSpec, CustomSpec, EndEntitySpec, Endpoints, Issuer, KeyType, RootSpec, SigningKey,
    SubjectPublicKey, extensions, issue_root, name,
};
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

const COMBOS: [(KeyType, CertKind); 4] = [
    (KeyType::Rsa2048, CertKind::Signature),
    (KeyType::Rsa2048, CertKind::Authentication),
    (KeyType::P384, CertKind::Signature),
    (KeyType::P384, CertKind::Authentication),
];

fn endpoints() -> Endpoints {
    Endpoints::new("http://127.0.0.1:7700").unwrap()
}

/// Now, whole seconds: openssl judges validity by its own clock.
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
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

fn root(
    kt: KeyType,
    kind: CertKind,
    generation: u32,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Issuer {
    let key = SigningKey::generate(kt).unwrap();
    let cert = issue_root(&RootSpec {
        kind,
        key: &key,
        serial: &serial(0),
        not_before,
        not_after,
        endpoints: &endpoints(),
        generation,
    })
    .unwrap();
    Issuer::new(kind, key, cert).unwrap()
}

fn ee(issuer: &Issuer, s: &Serial, now: OffsetDateTime) -> Vec<u8> {
    let key = SigningKey::generate(KeyType::P384).unwrap();
    let pk = SubjectPublicKey::from_der(&key.spki_der().unwrap()).unwrap();
    let f = facts();
    issuer
        .issue(
            &EndEntitySpec {
                serial: s,
                subject_key: &pk,
                subject_id: "ROLLOVER00000001",
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(365),
                facts: (issuer.kind() == CertKind::Signature).then_some(&f),
            },
            &endpoints(),
        )
        .unwrap()
}

/// Generation 1 (made 400 days ago, valid ten years) and generation 2 (made a day ago, valid
/// fifteen years) of one hierarchy, the two link certificates, and an end entity of each.
struct Rollover {
    now: OffsetDateTime,
    old: Issuer,
    new: Issuer,
    new_with_old: Vec<u8>,
    new_with_old_serial: Serial,
    old_with_new: Vec<u8>,
    old_with_new_serial: Serial,
    old_ee: Vec<u8>,
    new_ee: Vec<u8>,
}

fn rollover(kt: KeyType, kind: CertKind) -> Rollover {
    let now = now();
    let old = root(
        kt,
        kind,
        1,
        now - Duration::days(400),
        now + Duration::days(3650 - 400),
    );
    let new = root(kt, kind, 2, now - Duration::days(1), now + Duration::days(5475));
    let (new_with_old_serial, old_with_new_serial) = (serial(0), serial(0));
    // Asked for far more than either root lives: cut to both roots' validity.
    let new_with_old = old
        .issue_link(
            new.cert_der(),
            &new_with_old_serial,
            now - Duration::days(1000),
            now + Duration::days(10000),
            &endpoints(),
        )
        .unwrap();
    let old_with_new = new
        .issue_link(
            old.cert_der(),
            &old_with_new_serial,
            now - Duration::days(1000),
            now + Duration::days(10000),
            &endpoints(),
        )
        .unwrap();
    Rollover {
        now,
        old_ee: ee(&old, &serial(3), now),
        new_ee: ee(&new, &serial(3), now),
        old,
        new,
        new_with_old,
        new_with_old_serial,
        old_with_new,
        old_with_new_serial,
    }
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

fn crl(issuer: &Issuer, scope: CrlScope, number: u64, entries: &[CrlEntry], now: OffsetDateTime) -> Vec<u8> {
    issuer
        .crl(
            &CrlSpec {
                scope,
                number,
                this_update: now - Duration::minutes(5),
                next_update: now + Duration::days(1),
                endpoints: &endpoints(),
            },
            entries,
        )
        .unwrap()
}

fn revoked(s: &Serial, now: OffsetDateTime, reason: RevocationReason) -> CrlEntry {
    CrlEntry {
        serial: s.clone(),
        revoked_at: now - Duration::hours(1),
        reason,
    }
}

/// (critical, DER value) of extension `id`.
fn extension(der: &[u8], id: const_oid::ObjectIdentifier) -> Option<(bool, Vec<u8>)> {
    let c = Certificate::from_der(der).unwrap();
    c.tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .find(|e| e.extn_id == id)
        .map(|e| (e.critical, e.extn_value.as_bytes().to_vec()))
}

fn spki_der(der: &[u8]) -> Vec<u8> {
    Certificate::from_der(der)
        .unwrap()
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap()
}

const BASIC_CONSTRAINTS: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.5.29.15");

// ---------------------------------------------------------------------------------------------
// Pure: names, URLs, the link certificates' contents, refusals

#[test]
fn generation_two_roots_are_named_and_published_apart() {
    let ep = endpoints();
    for (kt, kind) in COMBOS {
        let r = rollover(kt, kind);
        let k = kind.as_str();
        let (old, new) = (parsed(r.old.cert_der()), parsed(r.new.cert_der()));
        assert_eq!((r.old.generation(), r.new.generation()), (1, 2));
        assert_eq!(old.subject_der, name::authority(kind).unwrap().to_der().unwrap());
        assert_eq!(
            new.subject_der,
            name::authority_gen(kind, 2).unwrap().to_der().unwrap()
        );
        assert!(
            new.subject.contains("OU=OpenJPKI Certification Authority G2"),
            "{}",
            new.subject
        );
        assert!(new.is_self_issued() && new.is_signed_by(&new.public_key) && new.is_ca);
        assert_ne!(old.subject_key_id, new.subject_key_id);
        assert_eq!(old.crl_urls, [ep.url(&format!("crl/{k}-arl.crl"))]);
        assert_eq!(new.crl_urls, [ep.url(&format!("crl/{k}-g2-arl.crl"))]);

        // A generation-2 end entity points at generation 2's shard CRL, OCSP and certificate.
        let e = parsed(&r.new_ee);
        assert_eq!(e.issuer_der, new.subject_der);
        assert_eq!(e.authority_key_id, new.subject_key_id);
        assert_eq!(e.crl_urls, [ep.url(&format!("crl/{k}-g2/3.crl"))]);
        let aia = extension(
            &r.new_ee,
            const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1"),
        )
        .unwrap()
        .1;
        let aia = String::from_utf8_lossy(&aia);
        assert!(aia.contains(&format!("/ocsp/{k}-g2")), "{aia}");
        assert!(aia.contains(&format!("/ca/{k}-g2.cer")), "{aia}");
        // …and generation 1's at generation 1's, as before rollover existed.
        assert_eq!(parsed(&r.old_ee).crl_urls, [ep.url(&format!("crl/{k}/3.crl"))]);
    }
    // Generation 0 does not exist.
    let key = SigningKey::generate(KeyType::P384).unwrap();
    let now = now();
    let e = issue_root(&RootSpec {
        kind: CertKind::Signature,
        key: &key,
        serial: &serial(0),
        not_before: now,
        not_after: now + Duration::days(1),
        endpoints: &ep,
        generation: 0,
    })
    .unwrap_err();
    assert!(e.to_string().contains("from 1"), "{e}");
}

#[test]
fn link_certificates_have_the_rfc4210_shape() {
    let ep = endpoints();
    for (kt, kind) in COMBOS {
        let r = rollover(kt, kind);
        let k = kind.as_str();
        let (old, new) = (parsed(r.old.cert_der()), parsed(r.new.cert_der()));
        for (what, link_der, link_serial, issuer, subject, arl) in [
            (
                "NewWithOld",
                &r.new_with_old,
                &r.new_with_old_serial,
                &old,
                &new,
                format!("crl/{k}-arl.crl"),
            ),
            (
                "OldWithNew",
                &r.old_with_new,
                &r.old_with_new_serial,
                &new,
                &old,
                format!("crl/{k}-g2-arl.crl"),
            ),
        ] {
            let l = parsed(link_der);
            let ctx = format!("{kt:?} {kind:?} {what}");
            assert_eq!(l.serial, link_serial.as_be_bytes(), "{ctx}");
            assert_eq!(l.subject_der, subject.subject_der, "{ctx}: subject");
            assert_eq!(l.issuer_der, issuer.subject_der, "{ctx}: issuer");
            assert!(!l.is_self_issued(), "{ctx}: the generations' names differ");
            let subject_der = if what == "NewWithOld" {
                r.new.cert_der()
            } else {
                r.old.cert_der()
            };
            assert_eq!(spki_der(link_der), spki_der(subject_der), "{ctx}: SPKI");
            assert_eq!(l.subject_key_id, subject.subject_key_id, "{ctx}: SKI");
            assert_eq!(l.authority_key_id, issuer.subject_key_id, "{ctx}: AKI");
            assert!(l.is_signed_by(&issuer.public_key), "{ctx}: signed by the issuer");
            assert!(!l.is_signed_by(&subject.public_key), "{ctx}");
            assert!(l.is_ca && l.path_len.is_none(), "{ctx}: basicConstraints");
            assert_eq!(
                l.key_usage,
                Some(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
                "{ctx}"
            );
            assert!(extension(link_der, BASIC_CONSTRAINTS).unwrap().0, "{ctx}");
            assert!(extension(link_der, KEY_USAGE).unwrap().0, "{ctx}");
            assert_eq!(l.crl_urls, [ep.url(&arl)], "{ctx}: CRL DP = issuer's ARL");
            assert!(l.unknown_critical.is_empty() && l.policies.is_empty(), "{ctx}");
            // Validity asked for was -1000 d .. +10000 d: cut to the intersection of both roots.
            assert_eq!(l.not_before, old.not_before.max(new.not_before), "{ctx}");
            assert_eq!(l.not_after, old.not_after.min(new.not_after), "{ctx}");
            assert_eq!(l.not_before, r.now - Duration::days(1), "{ctx}");
            assert_eq!(l.not_after, r.now + Duration::days(3250), "{ctx}");
        }
    }
}

#[test]
fn issue_link_refuses_what_is_not_a_rollover() {
    let ep = endpoints();
    let r = rollover(KeyType::P384, CertKind::Signature);
    let now = r.now;
    let link = |issuer: &Issuer, subject: &[u8]| {
        issuer
            .issue_link(subject, &serial(0), now, now + Duration::days(30), &ep)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    // Its own certificate, or another root of the same generation.
    assert!(link(&r.old, r.old.cert_der()).contains("own generation"));
    let other_gen1 = root(
        KeyType::P384,
        CertKind::Signature,
        1,
        now - Duration::days(1),
        now + Duration::days(100),
    );
    assert!(link(&r.old, other_gen1.cert_der()).contains("own generation"));
    // The other hierarchy's root.
    let auth2 = root(
        KeyType::P384,
        CertKind::Authentication,
        2,
        now - Duration::days(1),
        now + Duration::days(100),
    );
    assert!(link(&r.old, auth2.cert_der()).contains("certifies a root of the sign hierarchy"));
    // Not a root: an end entity, a link certificate, garbage.
    assert!(link(&r.old, &r.new_ee).contains("certifies a root"));
    assert!(link(&r.old, &r.old_with_new).contains("own generation"));
    assert!(link(&r.new, &r.new_with_old).contains("own generation"));
    assert!(link(&r.old, b"\x30\x00").contains("malformed"));
    // A certificate with a root's name that is not self-signed (the NewWithOld, offered to a
    // generation-3 root) is refused.
    let g3 = root(
        KeyType::P384,
        CertKind::Signature,
        3,
        now - Duration::days(1),
        now + Duration::days(100),
    );
    assert!(link(&g3, &r.new_with_old).contains("not a self-signed"));
    // The same key under a second generation's name.
    let same_key = SigningKey::from_pkcs8(&r.old.key().to_pkcs8().unwrap()).unwrap();
    let renamed = issue_root(&RootSpec {
        kind: CertKind::Signature,
        key: &same_key,
        serial: &serial(0),
        not_before: now - Duration::days(1),
        not_after: now + Duration::days(100),
        endpoints: &ep,
        generation: 5,
    })
    .unwrap();
    assert!(link(&r.old, &renamed).contains("not the issuer's own"));
    // Validity windows that do not meet.
    let later = root(
        KeyType::P384,
        CertKind::Signature,
        4,
        now + Duration::days(5000),
        now + Duration::days(6000),
    );
    assert!(link(&r.old, later.cert_der()).contains("empty"));
    // An issuer that is not one of our roots (an intermediate of a test corpus).
    let key = SigningKey::generate(KeyType::P384).unwrap();
    let pk = SubjectPublicKey::from_der(&key.spki_der().unwrap()).unwrap();
    let mid = r
        .old
        .issue_custom(CustomSpec {
            serial: &serial(0),
            subject: name::custom(&[("C", "JP"), ("O", "Test"), ("CN", "Intermediate")]).unwrap(),
            subject_key: &pk,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(100),
            extensions: vec![
                extensions::basic_constraints(true, None).unwrap(),
                extensions::key_usage(KeyUsage(KeyUsages::KeyCertSign.into())).unwrap(),
            ],
        })
        .unwrap();
    let mid = Issuer::new(CertKind::Signature, key, mid).unwrap();
    assert_eq!(mid.generation(), 1);
    assert!(link(&mid, r.new.cert_der()).contains("issued by a root"));
}

// ---------------------------------------------------------------------------------------------
// Path building and revocation across generations

#[test]
fn paths_across_generations() {
    for (kt, kind) in COMBOS {
        let r = rollover(kt, kind);
        let ctx = format!("{kt:?} {kind:?}");
        let (old_ee, new_ee) = (parsed(&r.old_ee), parsed(&r.new_ee));
        let (nwo, own) = (parsed(&r.new_with_old), parsed(&r.old_with_new));
        let subjects = |p: &CertPath| p.certs.iter().map(|c| c.sha256).collect::<Vec<_>>();

        // (a) Only the old root trusted: a new end entity through NewWithOld.
        let only_old = anchors(&[&r.old]);
        let p = path::build(new_ee.clone(), std::slice::from_ref(&nwo), &only_old).unwrap();
        assert_eq!(
            subjects(&p),
            [new_ee.sha256, nwo.sha256, parsed(r.old.cert_der()).sha256],
            "{ctx}"
        );
        let e = path::build(new_ee.clone(), &[], &only_old).unwrap_err();
        assert!(matches!(e, PathError::NoChain(_)), "{ctx}: {e:?}");
        // The wrong link (OldWithNew) does not help it.
        assert!(path::build(new_ee.clone(), std::slice::from_ref(&own), &only_old).is_err());

        // (b) Only the new root trusted: an old end entity through OldWithNew.
        let only_new = anchors(&[&r.new]);
        let p = path::build(old_ee.clone(), std::slice::from_ref(&own), &only_new).unwrap();
        assert_eq!(
            subjects(&p),
            [old_ee.sha256, own.sha256, parsed(r.new.cert_der()).sha256],
            "{ctx}"
        );
        assert!(path::build(old_ee.clone(), &[], &only_new).is_err(), "{ctx}");
        assert!(path::build(old_ee.clone(), std::slice::from_ref(&nwo), &only_new).is_err());

        // Everything offered at once (links and the untrusted other root, as a CMS bag may carry):
        // the untrusted root is passed over, the link is used.
        let bag = [parsed(r.new.cert_der()), nwo.clone(), own.clone()];
        let p = path::build(new_ee.clone(), &bag, &only_old).unwrap();
        assert_eq!(p.certs.len(), 3, "{ctx}");
        let bag = [parsed(r.old.cert_der()), nwo.clone(), own.clone()];
        let p = path::build(old_ee.clone(), &bag, &only_new).unwrap();
        assert_eq!(p.certs.len(), 3, "{ctx}");

        // (c) Both roots trusted, no links: each end entity straight to its own generation.
        let both = anchors(&[&r.old, &r.new]);
        let p = path::build(old_ee.clone(), &[], &both).unwrap();
        assert_eq!(p.anchor().der(), r.old.cert_der(), "{ctx}");
        let p = path::build(new_ee.clone(), &[], &both).unwrap();
        assert_eq!(p.anchor().der(), r.new.cert_der(), "{ctx}");
        // …and the direct path wins over a longer one through a link.
        let p = path::build(new_ee.clone(), &[nwo.clone(), own.clone()], &both).unwrap();
        assert_eq!(p.certs.len(), 2, "{ctx}");
    }
}

/// What a verifier does after building a path (jpki-sig's validation does the same): the status of
/// every certificate below the anchor, from CRLs of the certificate above it.
fn validate(
    ee: Arc<ParsedCert>,
    intermediates: &[Arc<ParsedCert>],
    anchors: &TrustAnchors,
    crls: &CrlStore,
) -> Result<CertPath, String> {
    let p = path::build(ee, intermediates, anchors).map_err(|e| e.to_string())?;
    for (cert, issuer) in p.links() {
        match crls.status(cert, issuer) {
            Status::Good { .. } => {}
            s => return Err(format!("{}: {s:?}", cert.subject)),
        }
    }
    Ok(p)
}

#[test]
fn revoked_link_on_the_arl_breaks_the_path() {
    for (kt, kind) in COMBOS {
        let r = rollover(kt, kind);
        let ctx = format!("{kt:?} {kind:?}");
        let now = r.now;
        let (old_ee, new_ee) = (parsed(&r.old_ee), parsed(&r.new_ee));
        let (nwo, own) = (parsed(&r.new_with_old), parsed(&r.old_with_new));
        let store = |old_arl: &[CrlEntry], new_arl: &[CrlEntry]| {
            let mut s = CrlStore::new();
            for (der, src) in [
                (crl(&r.old, CrlScope::Authority, 1, old_arl, now), "old ARL"),
                (crl(&r.new, CrlScope::Authority, 1, new_arl, now), "new ARL"),
                (crl(&r.old, CrlScope::Shard(3), 1, &[], now), "old shard 3"),
                (crl(&r.new, CrlScope::Shard(3), 1, &[], now), "new shard 3"),
            ] {
                s.add(ParsedCrl::from_der(&der, src).unwrap());
            }
            s
        };

        // Empty ARLs: both cross-generation paths validate, revocation included.
        let clean = store(&[], &[]);
        validate(
            new_ee.clone(),
            std::slice::from_ref(&nwo),
            &anchors(&[&r.old]),
            &clean,
        )
        .unwrap();
        validate(
            old_ee.clone(),
            std::slice::from_ref(&own),
            &anchors(&[&r.new]),
            &clean,
        )
        .unwrap();
        // Each generation's shard CRL speaks for its own end entities only (names differ).
        assert!(matches!(
            clean.status(&new_ee, &nwo),
            Status::Good { ref source, .. } if source.contains("new shard 3")
        ));
        assert!(matches!(
            clean.status(&old_ee, &own),
            Status::Good { ref source, .. } if source.contains("old shard 3")
        ));

        // NewWithOld on the old generation's ARL, OldWithNew on the new generation's.
        let nwo_entry = revoked(&r.new_with_old_serial, now, RevocationReason::CaCompromise);
        let own_entry = revoked(&r.old_with_new_serial, now, RevocationReason::Superseded);
        let old_arl = ParsedCrl::from_der(
            &crl(
                &r.old,
                CrlScope::Authority,
                2,
                std::slice::from_ref(&nwo_entry),
                now,
            ),
            "old ARL",
        )
        .unwrap();
        assert!(old_arl.only_ca && !old_arl.only_user, "{ctx}");
        assert_eq!(old_arl.scope_urls, nwo.crl_urls, "{ctx}: IDP = the link's CRL DP");
        assert!(old_arl.covers(&nwo) && !old_arl.covers(&new_ee), "{ctx}");
        assert!(old_arl.lookup(&nwo.serial).is_some(), "{ctx}");
        let revoked_store = store(std::slice::from_ref(&nwo_entry), std::slice::from_ref(&own_entry));
        assert!(matches!(
            revoked_store.status(&nwo, &parsed(r.old.cert_der())),
            Status::Revoked { reason: RevocationReason::CaCompromise, ref source, .. } if source.contains("old ARL")
        ));
        let e = validate(
            new_ee.clone(),
            std::slice::from_ref(&nwo),
            &anchors(&[&r.old]),
            &revoked_store,
        )
        .unwrap_err();
        assert!(e.contains("CaCompromise"), "{ctx}: {e}");
        let e = validate(
            old_ee.clone(),
            std::slice::from_ref(&own),
            &anchors(&[&r.new]),
            &revoked_store,
        )
        .unwrap_err();
        assert!(e.contains("Superseded"), "{ctx}: {e}");
        // Relying parties that trust the end entity's own generation do not need the link.
        validate(new_ee.clone(), &[], &anchors(&[&r.new]), &revoked_store).unwrap();
        validate(old_ee.clone(), &[], &anchors(&[&r.old]), &revoked_store).unwrap();
        // Serials of the end entities are still good (an ARL lists CA certificates only).
        assert!(matches!(
            revoked_store.status(&new_ee, &parsed(r.new.cert_der())),
            Status::Good { .. }
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// openssl and pkilint

fn interop_required() -> bool {
    std::env::var("JPKI_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn skip(test: &str, what: &str) {
    assert!(
        !interop_required(),
        "{test}: {what} not found and JPKI_REQUIRE_INTEROP=1 (run scripts/test.sh to install it)"
    );
    eprintln!("SKIPPED {test}: {what} not found (set JPKI_REQUIRE_INTEROP=1 to make this a failure)");
}

fn have_openssl(test: &str) -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(test, "the openssl CLI");
    }
    ok
}

fn venv() -> PathBuf {
    std::env::var_os("JPKI_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
        PathBuf::from,
    )
}

struct Out {
    code: Option<i32>,
    text: String,
}

fn run(dir: &Path, exe: &Path, args: &[&str]) -> Out {
    let o = Command::new(exe).current_dir(dir).args(args).output().unwrap();
    Out {
        code: o.status.code(),
        text: format!(
            "{} {}\nexit {:?}\n--- stdout\n{}--- stderr\n{}",
            exe.display(),
            args.join(" "),
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

fn write(dir: &Path, file: &str, label: &'static str, der: &[u8]) {
    std::fs::write(dir.join(file), jpki_pki::to_pem(label, der).unwrap()).unwrap();
}

/// `openssl verify` exits 0 and says "OK" only for a chain it accepts.
fn verify(dir: &Path, args: &[&str]) -> Out {
    let mut a = vec!["verify"];
    a.extend_from_slice(args);
    run(dir, Path::new("openssl"), &a)
}

fn accepted(o: &Out, ee: &str) -> bool {
    o.code == Some(0) && o.text.contains(&format!("{ee}: OK"))
}

#[test]
fn openssl_verifies_across_generations() {
    if !have_openssl("openssl_verifies_across_generations") {
        return;
    }
    for (kt, kind) in COMBOS {
        let r = rollover(kt, kind);
        let ctx = format!("{kt:?} {kind:?}");
        let now = r.now;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "old_root.pem", "CERTIFICATE", r.old.cert_der());
        write(d, "new_root.pem", "CERTIFICATE", r.new.cert_der());
        write(d, "new_with_old.pem", "CERTIFICATE", &r.new_with_old);
        write(d, "old_with_new.pem", "CERTIFICATE", &r.old_with_new);
        write(d, "old_ee.pem", "CERTIFICATE", &r.old_ee);
        write(d, "new_ee.pem", "CERTIFICATE", &r.new_ee);
        std::fs::write(
            d.join("both_roots.pem"),
            std::fs::read_to_string(d.join("old_root.pem")).unwrap()
                + &std::fs::read_to_string(d.join("new_root.pem")).unwrap(),
        )
        .unwrap();

        // (e) The two cross-generation paths, with nothing but -CAfile and -untrusted.
        let o = verify(
            d,
            &[
                "-CAfile",
                "old_root.pem",
                "-untrusted",
                "new_with_old.pem",
                "new_ee.pem",
            ],
        );
        assert!(accepted(&o, "new_ee.pem"), "{ctx}: {}", o.text);
        let o = verify(
            d,
            &[
                "-CAfile",
                "new_root.pem",
                "-untrusted",
                "old_with_new.pem",
                "old_ee.pem",
            ],
        );
        assert!(accepted(&o, "old_ee.pem"), "{ctx}: {}", o.text);
        // Without the link, or with the wrong one: refused.
        for (ca, untrusted, ee) in [
            ("old_root.pem", None, "new_ee.pem"),
            ("new_root.pem", None, "old_ee.pem"),
            ("old_root.pem", Some("old_with_new.pem"), "new_ee.pem"),
            ("new_root.pem", Some("new_with_old.pem"), "old_ee.pem"),
        ] {
            let mut args = vec!["-CAfile", ca];
            if let Some(u) = untrusted {
                args.extend(["-untrusted", u]);
            }
            args.push(ee);
            let o = verify(d, &args);
            assert!(!accepted(&o, ee), "{ctx}: {}", o.text);
        }
        // (c) Both roots trusted, no links.
        for ee in ["old_ee.pem", "new_ee.pem"] {
            let o = verify(d, &["-CAfile", "both_roots.pem", ee]);
            assert!(accepted(&o, ee), "{ctx}: {}", o.text);
        }
        // The link certificates themselves verify under their issuer's root.
        let o = verify(d, &["-CAfile", "old_root.pem", "new_with_old.pem"]);
        assert!(accepted(&o, "new_with_old.pem"), "{ctx}: {}", o.text);
        let o = verify(d, &["-CAfile", "new_root.pem", "old_with_new.pem"]);
        assert!(accepted(&o, "old_with_new.pem"), "{ctx}: {}", o.text);

        // (d) Revocation of the whole chain: the end entity's shard CRL (its own generation) and the
        // link's issuer's ARL. Empty ARL: accepted; the link on the ARL: refused as revoked at depth 1
        // (the link; openssl does not ask for a CRL of the self-signed anchor).
        let write_crl = |file: &str, der: Vec<u8>| write(d, file, "X509 CRL", &der);
        write_crl("new_shard.pem", crl(&r.new, CrlScope::Shard(3), 1, &[], now));
        write_crl("old_shard.pem", crl(&r.old, CrlScope::Shard(3), 1, &[], now));
        write_crl("old_arl.pem", crl(&r.old, CrlScope::Authority, 1, &[], now));
        write_crl("new_arl.pem", crl(&r.new, CrlScope::Authority, 1, &[], now));
        write_crl(
            "old_arl_revoked.pem",
            crl(
                &r.old,
                CrlScope::Authority,
                2,
                &[revoked(
                    &r.new_with_old_serial,
                    now,
                    RevocationReason::CaCompromise,
                )],
                now,
            ),
        );
        write_crl(
            "new_arl_revoked.pem",
            crl(
                &r.new,
                CrlScope::Authority,
                2,
                &[revoked(&r.old_with_new_serial, now, RevocationReason::Superseded)],
                now,
            ),
        );
        let checked = |ca: &str, link: &str, shard: &str, arl: &str, ee: &str| {
            verify(
                d,
                &[
                    "-crl_check_all",
                    "-CAfile",
                    ca,
                    "-untrusted",
                    link,
                    "-CRLfile",
                    shard,
                    "-CRLfile",
                    arl,
                    ee,
                ],
            )
        };
        let o = checked(
            "old_root.pem",
            "new_with_old.pem",
            "new_shard.pem",
            "old_arl.pem",
            "new_ee.pem",
        );
        assert!(accepted(&o, "new_ee.pem"), "{ctx}: {}", o.text);
        let o = checked(
            "new_root.pem",
            "old_with_new.pem",
            "old_shard.pem",
            "new_arl.pem",
            "old_ee.pem",
        );
        assert!(accepted(&o, "old_ee.pem"), "{ctx}: {}", o.text);
        let o = checked(
            "old_root.pem",
            "new_with_old.pem",
            "new_shard.pem",
            "old_arl_revoked.pem",
            "new_ee.pem",
        );
        assert!(
            !accepted(&o, "new_ee.pem") && o.text.contains("error 23 at 1 depth lookup: certificate revoked"),
            "{ctx}: {}",
            o.text
        );
        let o = checked(
            "new_root.pem",
            "old_with_new.pem",
            "old_shard.pem",
            "new_arl_revoked.pem",
            "old_ee.pem",
        );
        assert!(
            !accepted(&o, "old_ee.pem") && o.text.contains("error 23 at 1 depth lookup: certificate revoked"),
            "{ctx}: {}",
            o.text
        );
    }
}

#[test]
fn pkilint_finds_no_errors() {
    let test = "pkilint_finds_no_errors";
    let cert_lint = venv().join("bin").join("lint_pkix_cert");
    let crl_lint = venv().join("bin").join("lint_crl");
    for exe in [&cert_lint, &crl_lint] {
        let found = Command::new(exe)
            .arg("--help")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            skip(test, &format!("pkilint ({})", exe.display()));
            return;
        }
    }
    let mut report = String::from("pkilint WARNING and NOTICE findings (rollover)\n");
    let mut errors = Vec::new();
    for (kt, kind) in COMBOS {
        let r = rollover(kt, kind);
        let now = r.now;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let arl = |issuer: &Issuer, s: &Serial| {
            crl(
                issuer,
                CrlScope::Authority,
                2,
                &[revoked(s, now, RevocationReason::CaCompromise)],
                now,
            )
        };
        let objects: [(&str, bool, Vec<u8>); 7] = [
            ("generation-2 root", true, r.new.cert_der().to_vec()),
            ("NewWithOld", true, r.new_with_old.clone()),
            ("OldWithNew", true, r.old_with_new.clone()),
            ("generation-2 end entity", true, r.new_ee.clone()),
            (
                "generation-1 ARL listing NewWithOld",
                false,
                arl(&r.old, &r.new_with_old_serial),
            ),
            (
                "generation-2 ARL listing OldWithNew",
                false,
                arl(&r.new, &r.old_with_new_serial),
            ),
            (
                "generation-2 shard CRL",
                false,
                crl(&r.new, CrlScope::Shard(3), 1, &[], now),
            ),
        ];
        for (i, (what, is_cert, der)) in objects.iter().enumerate() {
            let file = format!("{i}.pem");
            write(d, &file, if *is_cert { "CERTIFICATE" } else { "X509 CRL" }, der);
            let mut args = vec!["lint", "-s", "INFO"];
            if !is_cert {
                let t = if what.contains("ARL") { "ARL" } else { "CRL" };
                args.extend(["-t", t, "-p", "PKIX"]);
            }
            args.push(&file);
            // One run at INFO (pkilint starts slowly); its exit code counts the findings shown.
            let o = run(d, if *is_cert { &cert_lint } else { &crl_lint }, &args);
            let stdout = o
                .text
                .split_once("--- stdout\n")
                .and_then(|(_, t)| t.split_once("--- stderr\n"))
                .map_or("", |(t, _)| t);
            let bad = o.text.contains("(ERROR)")
                || o.text.contains("(FATAL)")
                || o.text.contains("Traceback")
                || o.text.contains("Failed to");
            // Proof that pkilint decoded a certificate: the INFO finding every method-1 SKI gets.
            let decoded = !is_cert || stdout.contains("pkix.subject_key_identifier_method_1_identified");
            if bad || !decoded {
                errors.push(format!("{kt:?} {kind:?} {what}: {}", o.text));
            }
            let findings: Vec<&str> = stdout
                .lines()
                .filter(|l| l.contains("(WARNING)") || l.contains("(NOTICE)"))
                .map(str::trim)
                .collect();
            report += &format!(
                "== {kt:?} {kind:?} {what}: {}\n",
                if findings.is_empty() {
                    "none".to_owned()
                } else {
                    findings.join(", ")
                }
            );
        }
    }
    eprintln!("{report}");
    assert!(
        errors.is_empty(),
        "pkilint ERROR/FATAL findings:\n{}",
        errors.join("\n")
    );
}
