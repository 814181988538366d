//! Generation 1 stays byte-for-byte what it was before CA key rollover existed: with a fixed RSA key
//! (PKCS#1 v1.5 signatures are deterministic), fixed serials and fixed times, the root, both
//! end-entity kinds, the TSA and OCSP responder certificates and the CRLs of every scope hash to the
//! values recorded before generations were added to `RootSpec`, `Issuer` and `Endpoints`.
//!
//! The key in `tests/data/golden-test-only-rsa2048.pk8` is a throwaway test key (unencrypted PKCS#8
//! DER); it signs nothing outside this test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jpki_model::{BasicFour, CertKind, RevocationReason, Serial};
use jpki_pki::{
    CrlEntry, CrlScope, CrlSpec, EndEntitySpec, Endpoints, Issuer, RootSpec, SigningKey, SubjectPublicKey,
    issue_root,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const KEY: &[u8] = include_bytes!("data/golden-test-only-rsa2048.pk8");
const NOW: OffsetDateTime = datetime!(2026-11-21 03:00:00 UTC);

fn key() -> SigningKey {
    SigningKey::from_pkcs8(KEY).unwrap()
}

fn serial(fill: u8, shard: u16) -> Serial {
    Serial::generate([fill; 16], shard)
}

fn facts() -> BasicFour {
    BasicFour {
        name: "山田　太郎".parse().unwrap(),
        address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
        birth_date: jpki_model::parse_birth_date("1980-04-01").unwrap(),
        sex: "1".parse().unwrap(),
    }
}

fn hex_sha256(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

/// (what, SHA-256 of the DER) for everything generation 1 of `kind` issues.
fn objects(kind: CertKind) -> Vec<(String, String)> {
    let ep = Endpoints::new("http://127.0.0.1:7700").unwrap();
    let k = key();
    let root = issue_root(&RootSpec {
        kind,
        key: &k,
        serial: &serial(0x11, 0),
        not_before: NOW - Duration::days(10),
        not_after: NOW + Duration::days(3650),
        endpoints: &ep,
        generation: 1,
    })
    .unwrap();
    let issuer = Issuer::new(kind, key(), root.clone()).unwrap();
    let pk = SubjectPublicKey::from_der(&k.spki_der().unwrap()).unwrap();
    let f = facts();
    let ee = issuer
        .issue(
            &EndEntitySpec {
                serial: &serial(0x22, 3),
                subject_key: &pk,
                subject_id: "GOLDEN0123456789",
                not_before: NOW - Duration::days(1),
                not_after: NOW + Duration::days(365),
                facts: (kind == CertKind::Signature).then_some(&f),
            },
            &ep,
        )
        .unwrap();
    let tsa = issuer
        .issue_tsa(&serial(0x33, 4), &pk, NOW, NOW + Duration::days(90), &ep)
        .unwrap();
    let ocsp = issuer
        .issue_ocsp_responder(&serial(0x44, 5), &pk, NOW, NOW + Duration::days(90), &ep)
        .unwrap();
    let entries = [
        CrlEntry {
            serial: serial(0x55, 3),
            revoked_at: NOW - Duration::hours(5),
            reason: RevocationReason::KeyCompromise,
        },
        CrlEntry {
            serial: serial(0x66, 3),
            revoked_at: NOW - Duration::hours(4),
            reason: RevocationReason::CertificateHold,
        },
    ];
    let mut out = vec![
        ("root".to_owned(), hex_sha256(&root)),
        ("end entity".to_owned(), hex_sha256(&ee)),
        ("tsa".to_owned(), hex_sha256(&tsa)),
        ("ocsp responder".to_owned(), hex_sha256(&ocsp)),
    ];
    for (what, scope) in [
        ("complete CRL", CrlScope::Complete),
        ("shard CRL", CrlScope::Shard(3)),
        ("delta CRL", CrlScope::Delta { base: 6 }),
        ("ARL", CrlScope::Authority),
    ] {
        let crl = issuer
            .crl(
                &CrlSpec {
                    scope,
                    number: 7,
                    this_update: NOW,
                    next_update: NOW + Duration::days(1),
                    endpoints: &ep,
                },
                if scope == CrlScope::Authority {
                    &entries[..0]
                } else {
                    &entries[..]
                },
            )
            .unwrap();
        out.push((what.to_owned(), hex_sha256(&crl)));
    }
    out
}

/// Recorded with the code as it was before generations existed (same key, serials and times).
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "sign",
        "root",
        "69d34fb17cc4bd2497db2b077d6b565f900260922b197ea67eff3f5b2f7fc99d",
    ),
    (
        "sign",
        "end entity",
        "0b83f96044e4fef81318d08823f0ad3637bde615ccbcfbba799dee6325ddeea0",
    ),
    (
        "sign",
        "tsa",
        "fb4d20932e2251285894a9faf73113a695aca7912269e555eddd37e59e83e7ce",
    ),
    (
        "sign",
        "ocsp responder",
        "6a3b3fe5545cc216a801337e44c366fe56d6ef0402aeae992d15461792e720c2",
    ),
    (
        "sign",
        "complete CRL",
        "439a7b7625bb95b53d5bcd2a882c19d310d6b579d6f607f57f1b0004579899b7",
    ),
    (
        "sign",
        "shard CRL",
        "817ca1ab19b0d2bcfe724c7f3f3c662332b583f58d54824feecdf64bbc105f56",
    ),
    (
        "sign",
        "delta CRL",
        "a1a1208e708f029abbb7c2341c7a8c11517ab0d5e6b4af8a3298be8b5c0eef7d",
    ),
    (
        "sign",
        "ARL",
        "1c5d4e91e4de1b13f75447dc92b9963b6915280fff6a233bf2f971d6bfc4a2b7",
    ),
    (
        "auth",
        "root",
        "464c813efedb87114ae206e758185e1110a081e3f6a77b1cd995fb3e32d9e6eb",
    ),
    (
        "auth",
        "end entity",
        "2fad23e1501132d94087ba601e28413c12ff237ada3d1650443166ee49e8520e",
    ),
    (
        "auth",
        "tsa",
        "d869045cc5a111590518afae2a0af48528359a1ff1b091e96ddc24f37c5e7a37",
    ),
    (
        "auth",
        "ocsp responder",
        "abb15528b34f0bd5de93c5de1267bc075ae7bc52dd0cbe6164b75cec6494af4f",
    ),
    (
        "auth",
        "complete CRL",
        "cf738b7d07f92a7644422785555b98232f78038224165a3279b904c126a29307",
    ),
    (
        "auth",
        "shard CRL",
        "f04dcdea64baff56c8401776daf9b73f105ae3f5776ddd353d550dfb33c21e9e",
    ),
    (
        "auth",
        "delta CRL",
        "3268aad9af9daa6158a484dff1c2dd5267849e627951ec24e6f731896e4b3b73",
    ),
    (
        "auth",
        "ARL",
        "d52651e4254c2d2ca8f7852ffe6fc7e3d4fd3191f173a371e8edd27c24b45bf2",
    ),
];

#[test]
fn generation_one_output_is_unchanged() {
    let mut got = Vec::new();
    for kind in [CertKind::Signature, CertKind::Authentication] {
        for (what, h) in objects(kind) {
            got.push((kind.as_str().to_owned(), what, h));
        }
    }
    let listing: String = got
        .iter()
        .map(|(k, w, h)| format!("    (\"{k}\", \"{w}\", \"{h}\"),\n"))
        .collect();
    assert_eq!(got.len(), EXPECTED.len(), "recorded hashes:\n{listing}");
    for ((k, w, h), (ek, ew, eh)) in got.iter().zip(EXPECTED) {
        assert_eq!((k.as_str(), w.as_str()), (*ek, *ew), "{listing}");
        assert_eq!(h, eh, "{k} {w} changed; now:\n{listing}");
    }
}
