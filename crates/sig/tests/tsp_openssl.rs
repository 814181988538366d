//! Interoperability with the OpenSSL command line: `openssl ts` queries answered by our time-stamp
//! authority and verified by `openssl ts -verify`, our requests answered by `openssl ts -reply` and
//! verified by us, and CMS signatures in both directions (`openssl cms -sign` / `-verify`).
//!
//! Skipped, with a message, when `openssl` is not on the PATH, unless `JPKI_REQUIRE_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use der::asn1::{BitString, OctetString, Uint, Utf8StringRef};
use der::{Decode, Encode};
use jpki_pki::{KeyType, SigningKey, oid};
use jpki_sig::signed_data::{
    self, DigestAlg, ID_DATA, ParsedSignedData, SignedDataBuilder, attr_content_type, attr_message_digest,
    attr_signing_certificate_v2, attr_signing_time, signed_attributes_der, verify_signer,
};
use jpki_sig::tsp::{TimeStampAuthority, TimeStampRequest, TimeStampToken, token_from_response};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::macros::datetime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::time::Validity;

const DATA: &[u8] = b"openjpki time-stamp interop\n";
const SERIAL: &[u8] = &[0x12, 0x34, 0xab, 0xcd];

// ---------------------------------------------------------------------------------------------------
// openssl
// ---------------------------------------------------------------------------------------------------

/// Whether to run: `openssl` is on the PATH, or else skip (fail if JPKI_REQUIRE_INTEROP=1).
fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("JPKI_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "openssl is not on the PATH and JPKI_REQUIRE_INTEROP=1"
        );
        eprintln!("skipping: openssl is not on the PATH");
    }
    ok
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn openssl(dir: &Path, args: &[&str]) -> Out {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn openssl_ok(dir: &Path, args: &[&str]) -> Out {
    let o = openssl(dir, args);
    assert!(o.ok, "openssl {args:?} failed:\n{}\n{}", o.stdout, o.stderr);
    o
}

// ---------------------------------------------------------------------------------------------------
// A root and a TSA certificate, built with x509-cert types
// ---------------------------------------------------------------------------------------------------

#[derive(der::Sequence)]
struct Tbs {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: Uint,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

#[derive(der::Sequence)]
struct Signed<'a> {
    tbs: der::asn1::AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

fn name(cn: &str) -> Name {
    let mut seq = RdnSequence::default();
    for (id, v) in [("2.5.4.10", "OpenJPKI Interop"), ("2.5.4.3", cn)] {
        let atv = AttributeTypeAndValue {
            oid: const_oid::ObjectIdentifier::new_unwrap(id),
            value: der::Any::encode_from(&Utf8StringRef::new(v).unwrap()).unwrap(),
        };
        seq.push(RelativeDistinguishedName::try_from(vec![atv]).unwrap());
    }
    Name::hazmat_from_rdn_sequence(seq)
}

fn ext<T: Encode>(id: const_oid::ObjectIdentifier, critical: bool, v: &T) -> Extension {
    Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(v.to_der().unwrap()).unwrap(),
    }
}

fn issue(
    cn: &str,
    spki_der: &[u8],
    issuer: (&Name, &SigningKey),
    serial: &[u8],
    exts: Vec<Extension>,
) -> Vec<u8> {
    let t = |y| jpki_pki::time::to_x509("validity", y).unwrap();
    let tbs = Tbs {
        version: Version::V3,
        serial_number: Uint::new(serial).unwrap(),
        signature: issuer.1.key_type().signature_algorithm(),
        issuer: issuer.0.clone(),
        validity: Validity::new(
            t(datetime!(2020-01-01 0:00 UTC)),
            t(datetime!(2060-01-01 0:00 UTC)),
        ),
        subject: name(cn),
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap(),
        extensions: exts,
    }
    .to_der()
    .unwrap();
    let sig = issuer.1.sign(&tbs).unwrap();
    Signed {
        tbs: der::asn1::AnyRef::from_der(&tbs).unwrap(),
        algorithm: issuer.1.key_type().signature_algorithm(),
        signature: BitString::from_bytes(&sig).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// A self-signed root CA, and under it an end-entity key and certificate with `exts`.
struct Pki {
    root: Vec<u8>,
    key: SigningKey,
    cert: Vec<u8>,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(kt: KeyType, cn: &str, exts: Vec<Extension>) -> Self {
        let root_key = SigningKey::generate(kt).unwrap();
        let root_name = name("Interop Root");
        let root = issue(
            "Interop Root",
            &root_key.spki_der().unwrap(),
            (&root_name, &root_key),
            &[1],
            vec![
                ext(
                    oid::ext::BASIC_CONSTRAINTS,
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: None,
                    },
                ),
                ext(
                    oid::ext::KEY_USAGE,
                    true,
                    &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
                ),
            ],
        );
        let key = SigningKey::generate(kt).unwrap();
        let cert = issue(
            cn,
            &key.spki_der().unwrap(),
            (&root_name, &root_key),
            &[0x0a, 0x0b],
            exts,
        );
        let dir = tempfile::tempdir().unwrap();
        let pki = Self { root, key, cert, dir };
        pki.write(
            "root.pem",
            jpki_pki::to_pem("CERTIFICATE", &pki.root).unwrap().as_bytes(),
        );
        pki.write(
            "ee.pem",
            jpki_pki::to_pem("CERTIFICATE", &pki.cert).unwrap().as_bytes(),
        );
        let pkcs8 = pki.key.to_pkcs8().unwrap();
        pki.write(
            "ee.key",
            jpki_pki::to_pem("PRIVATE KEY", &pkcs8).unwrap().as_bytes(),
        );
        pki.write("data.txt", DATA);
        pki
    }

    /// A TSA: keyUsage digitalSignature + nonRepudiation, critical extendedKeyUsage timeStamping.
    fn tsa(kt: KeyType) -> Self {
        Self::new(
            kt,
            "Interop TSA",
            vec![
                ext(
                    oid::ext::KEY_USAGE,
                    true,
                    &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
                ),
                ext(
                    oid::EXT_KEY_USAGE,
                    true,
                    &ExtendedKeyUsage(vec![oid::KP_TIME_STAMPING]),
                ),
            ],
        )
    }

    fn authority(&self) -> TimeStampAuthority {
        let key = SigningKey::from_pkcs8(&self.key.to_pkcs8().unwrap()).unwrap();
        TimeStampAuthority::new(key, self.cert.clone(), vec![self.root.clone()]).unwrap()
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn write(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.path(file), bytes).unwrap();
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap()
    }

    fn openssl(&self, args: &[&str]) -> Out {
        openssl(self.dir.path(), args)
    }

    fn openssl_ok(&self, args: &[&str]) -> Out {
        openssl_ok(self.dir.path(), args)
    }
}

// ---------------------------------------------------------------------------------------------------
// openssl asks, we answer
// ---------------------------------------------------------------------------------------------------

fn answer(pki: &Pki, query: &str, reply: &str) -> (TimeStampRequest, Vec<u8>) {
    let q = pki.read(query);
    let req = TimeStampRequest::parse(&q).unwrap();
    let resp = pki
        .authority()
        .respond(&q, datetime!(2031-05-09 14:59:59 UTC), SERIAL);
    pki.write(reply, &resp);
    (req, resp)
}

#[test]
fn openssl_verifies_our_tokens() {
    if !have_openssl() {
        return;
    }
    for kt in [KeyType::Rsa2048, KeyType::P384] {
        let pki = Pki::tsa(kt);
        pki.openssl_ok(&[
            "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", "q.tsq",
        ]);
        let (req, resp) = answer(&pki, "q.tsq", "r.tsr");
        assert!(req.cert_req);
        assert!(req.nonce.is_some());
        assert_eq!(req.hash_alg, DigestAlg::Sha256);
        assert_eq!(req.imprint, DigestAlg::Sha256.digest(DATA));

        let v = pki.openssl_ok(&[
            "ts",
            "-verify",
            "-in",
            "r.tsr",
            "-queryfile",
            "q.tsq",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "ee.pem",
        ]);
        assert!(
            v.stdout.contains("Verification: OK"),
            "{kt:?}: {}{}",
            v.stdout,
            v.stderr
        );
        let v = pki.openssl_ok(&[
            "ts",
            "-verify",
            "-data",
            "data.txt",
            "-in",
            "r.tsr",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "ee.pem",
        ]);
        assert!(
            v.stdout.contains("Verification: OK"),
            "{kt:?}: {}{}",
            v.stdout,
            v.stderr
        );
        // The token carries the certificate (certReq), so the CA file alone is enough.
        let v = pki.openssl_ok(&[
            "ts",
            "-verify",
            "-in",
            "r.tsr",
            "-queryfile",
            "q.tsq",
            "-CAfile",
            "root.pem",
        ]);
        assert!(v.stdout.contains("Verification: OK"));

        let text = pki.openssl_ok(&["ts", "-reply", "-in", "r.tsr", "-text"]).stdout;
        assert!(text.contains("Status: Granted."), "{text}");
        assert!(text.contains("Serial number: 0x1234ABCD"), "{text}");
        assert!(text.contains("Policy OID: 1.2.392.200149.8.5.1.9.1"), "{text}");
        assert!(text.contains("Time stamp: May  9 14:59:59 2031 GMT"), "{text}");
        assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");

        // Other data does not verify.
        pki.write("other.txt", b"other data");
        let v = pki.openssl(&[
            "ts",
            "-verify",
            "-data",
            "other.txt",
            "-in",
            "r.tsr",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "ee.pem",
        ]);
        assert!(!v.ok && !v.stdout.contains("Verification: OK"));

        // And our own client agrees.
        let token = token_from_response(&resp, &req).unwrap();
        let tst = TimeStampToken::parse(&token).unwrap();
        tst.verify(&pki.cert).unwrap();
        assert!(tst.imprint_matches(DATA));
        assert_eq!(tst.serial, "1234abcd");
    }
}

#[test]
fn openssl_query_variants() {
    if !have_openssl() {
        return;
    }
    let pki = Pki::tsa(KeyType::Rsa2048);
    let policy = oid::TSA_POLICY.to_string();

    // No nonce, no certificate requested, SHA-512, our policy.
    pki.openssl_ok(&[
        "ts",
        "-query",
        "-data",
        "data.txt",
        "-sha512",
        "-no_nonce",
        "-tspolicy",
        &policy,
        "-out",
        "q.tsq",
    ]);
    let (req, resp) = answer(&pki, "q.tsq", "r.tsr");
    assert_eq!(req.nonce, None);
    assert!(!req.cert_req);
    assert_eq!(req.policy, Some(oid::TSA_POLICY));
    assert_eq!(req.hash_alg, DigestAlg::Sha512);
    let tst = TimeStampToken::parse(&token_from_response(&resp, &req).unwrap()).unwrap();
    assert!(tst.certificates.is_empty());
    let v = pki.openssl_ok(&[
        "ts",
        "-verify",
        "-in",
        "r.tsr",
        "-queryfile",
        "q.tsq",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "ee.pem",
    ]);
    assert!(v.stdout.contains("Verification: OK"));
    // Without the TSA certificate at hand, openssl cannot verify a token that does not carry it.
    let v = pki.openssl(&[
        "ts",
        "-verify",
        "-in",
        "r.tsr",
        "-queryfile",
        "q.tsq",
        "-CAfile",
        "root.pem",
    ]);
    assert!(!v.ok);

    // Another policy is refused.
    pki.openssl_ok(&[
        "ts",
        "-query",
        "-data",
        "data.txt",
        "-tspolicy",
        "1.2.3.4",
        "-out",
        "p.tsq",
    ]);
    let (req, resp) = answer(&pki, "p.tsq", "p.tsr");
    assert!(
        token_from_response(&resp, &req)
            .unwrap_err()
            .to_string()
            .contains("unacceptedPolicy")
    );
    let text = pki.openssl_ok(&["ts", "-reply", "-in", "p.tsr", "-text"]).stdout;
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(
        text.contains("the requested TSA policy is not supported"),
        "{text}"
    );

    // SHA-1 is refused as badAlg.
    pki.openssl_ok(&["ts", "-query", "-data", "data.txt", "-sha1", "-out", "s.tsq"]);
    assert!(TimeStampRequest::parse(&pki.read("s.tsq")).is_err());
    let resp = pki
        .authority()
        .respond(&pki.read("s.tsq"), datetime!(2031-05-09 14:59:59 UTC), SERIAL);
    pki.write("s.tsr", &resp);
    let text = pki.openssl_ok(&["ts", "-reply", "-in", "s.tsr", "-text"]).stdout;
    assert!(text.contains("unrecognized or unsupported algorithm"), "{text}");
}

// ---------------------------------------------------------------------------------------------------
// We ask, openssl answers
// ---------------------------------------------------------------------------------------------------

fn ts_config(pki: &Pki, ess_alg: &str) {
    let config = format!(
        "[ tsa ]\ndefault_tsa = tsa_config\n\n[ tsa_config ]\n\
         serial = {serial}\n\
         signer_cert = ee.pem\n\
         certs = root.pem\n\
         signer_key = ee.key\n\
         signer_digest = sha256\n\
         default_policy = {policy}\n\
         other_policies = 1.2.3.4\n\
         digests = sha256, sha384, sha512\n\
         accuracy = secs:1, millisecs:500, microsecs:100\n\
         ordering = yes\n\
         tsa_name = yes\n\
         ess_cert_id_chain = no\n\
         ess_cert_id_alg = {ess_alg}\n",
        serial = pki.path("serial").display(),
        policy = oid::TSA_POLICY,
    );
    pki.write("ts.cnf", config.as_bytes());
}

#[test]
fn we_verify_openssl_tokens() {
    if !have_openssl() {
        return;
    }
    for (kt, ess_alg) in [(KeyType::Rsa2048, "sha256"), (KeyType::P384, "sha1")] {
        let pki = Pki::tsa(kt);
        ts_config(&pki, ess_alg);
        for cert_req in [true, false] {
            let req = TimeStampRequest::with_random_nonce(
                DigestAlg::Sha384,
                &DigestAlg::Sha384.digest(DATA),
                cert_req,
            )
            .unwrap();
            pki.write("ours.tsq", &req.to_der().unwrap());
            // openssl takes the serial in the file plus one.
            pki.write("serial", b"0badc0dd\n");
            // openssl reads our request.
            let text = pki
                .openssl_ok(&["ts", "-query", "-in", "ours.tsq", "-text"])
                .stdout;
            assert!(text.contains("Hash Algorithm: sha384"), "{text}");
            assert!(text.contains(&format!(
                "Certificate required: {}",
                if cert_req { "yes" } else { "no" }
            )));
            pki.openssl_ok(&[
                "ts",
                "-reply",
                "-config",
                "ts.cnf",
                "-queryfile",
                "ours.tsq",
                "-out",
                "theirs.tsr",
            ]);
            let token = token_from_response(&pki.read("theirs.tsr"), &req).unwrap();
            let tst = TimeStampToken::parse(&token).unwrap();
            assert_eq!(tst.policy, oid::TSA_POLICY);
            assert_eq!(tst.serial, "0badc0de");
            assert!(tst.imprint_matches(DATA));
            assert!(tst.ordering);
            assert_eq!(
                tst.accuracy.unwrap().as_duration(),
                std::time::Duration::from_micros(1_500_100)
            );
            assert!(tst.tsa_name.as_deref().unwrap().contains("CN=Interop TSA"));
            assert_eq!(tst.certificates.is_empty(), !cert_req, "{ess_alg}");
            let signer = tst.signer().unwrap();
            if ess_alg == "sha1" {
                assert!(signer.signing_certificate_v1().unwrap().is_some());
            } else {
                assert!(signer.signing_certificate_v2().unwrap().is_some());
            }
            assert_eq!(
                tst.signer_certificate(std::slice::from_ref(&pki.cert)),
                Some(pki.cert.clone())
            );
            tst.verify(&pki.cert).unwrap();
            assert!(tst.verify(&pki.root).is_err());
        }
        // openssl refuses a policy it does not know, and we report it.
        let mut req = TimeStampRequest::for_digest(DigestAlg::Sha256, &[3; 32], None, false).unwrap();
        req.policy = Some(const_oid::ObjectIdentifier::new_unwrap("1.2.3.5"));
        pki.write("bad.tsq", &req.to_der().unwrap());
        pki.openssl_ok(&[
            "ts",
            "-reply",
            "-config",
            "ts.cnf",
            "-queryfile",
            "bad.tsq",
            "-out",
            "bad.tsr",
        ]);
        let err = token_from_response(&pki.read("bad.tsr"), &req)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rejection") && err.contains("unacceptedPolicy"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// CMS signatures both ways
// ---------------------------------------------------------------------------------------------------

fn signer_pki(kt: KeyType) -> Pki {
    Pki::new(
        kt,
        "Interop Signer",
        vec![ext(
            oid::ext::KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
        )],
    )
}

#[test]
fn openssl_verifies_our_signed_data() {
    if !have_openssl() {
        return;
    }
    for kt in [KeyType::Rsa2048, KeyType::P384] {
        let pki = signer_pki(kt);
        let alg = if kt == KeyType::P384 {
            DigestAlg::Sha384
        } else {
            DigestAlg::Sha256
        };
        let attrs = [
            attr_content_type(ID_DATA).unwrap(),
            attr_message_digest(&alg.digest(DATA)).unwrap(),
            attr_signing_time(datetime!(2031-05-09 14:59:59 UTC)).unwrap(),
            attr_signing_certificate_v2(&pki.cert).unwrap(),
        ];
        let to_sign = signed_attributes_der(&attrs).unwrap();
        let sig = pki.key.sign(&to_sign).unwrap();
        let certs = [pki.cert.clone()];
        let cms = SignedDataBuilder::new(&pki.cert, alg, ID_DATA)
            .certificates(&certs)
            .build(&to_sign, &sig)
            .unwrap();
        pki.write("sig.p7s", &cms);
        let v = pki.openssl_ok(&[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.p7s",
            "-content",
            "data.txt",
            "-CAfile",
            "root.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ]);
        assert!(
            v.stderr.contains("Verification successful"),
            "{kt:?}: {}",
            v.stderr
        );
        let dump = pki
            .openssl_ok(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", "sig.p7s"])
            .stdout;
        assert!(dump.contains("id-smime-aa-signingCertificateV2"), "{dump}");

        // With a signature time-stamp from our TSA as unsigned attribute, it still verifies.
        let tsa = Pki::tsa(kt);
        let si = &ParsedSignedData::parse(&cms).unwrap().signers[0];
        let req = TimeStampRequest::for_digest(
            DigestAlg::Sha256,
            &DigestAlg::Sha256.digest(&si.signature),
            None,
            true,
        )
        .unwrap();
        let resp =
            tsa.authority()
                .respond(&req.to_der().unwrap(), datetime!(2031-05-09 15:00:00 UTC), SERIAL);
        let token = token_from_response(&resp, &req).unwrap();
        let attr = signed_data::attribute(signed_data::ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &[&token]).unwrap();
        let stamped = signed_data::set_unsigned_attribute(&cms, &attr).unwrap();
        pki.write("stamped.p7s", &stamped);
        let v = pki.openssl_ok(&[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "stamped.p7s",
            "-content",
            "data.txt",
            "-CAfile",
            "root.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ]);
        assert!(
            v.stderr.contains("Verification successful"),
            "{kt:?}: {}",
            v.stderr
        );
        let dump = pki
            .openssl_ok(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", "stamped.p7s"])
            .stdout;
        assert!(dump.contains("id-smime-aa-timeStampToken"), "{dump}");
    }
}

#[test]
fn we_verify_openssl_signed_data() {
    if !have_openssl() {
        return;
    }
    for (kt, md) in [
        (KeyType::Rsa2048, "sha256"),
        (KeyType::Rsa2048, "sha512"),
        (KeyType::P384, "sha384"),
    ] {
        let pki = signer_pki(kt);
        for (detached, flag) in [(true, "-binary"), (false, "-nodetach")] {
            pki.openssl_ok(&[
                "cms",
                "-sign",
                "-binary",
                flag,
                "-in",
                "data.txt",
                "-signer",
                "ee.pem",
                "-inkey",
                "ee.key",
                "-md",
                md,
                "-outform",
                "DER",
                "-out",
                "theirs.p7s",
            ]);
            let theirs = pki.read("theirs.p7s");
            let p = ParsedSignedData::parse(&theirs).unwrap();
            assert_eq!(p.econtent_type, ID_DATA);
            assert_eq!(p.econtent.is_none(), detached);
            if !detached {
                assert_eq!(p.econtent.as_deref(), Some(DATA));
            }
            let signer = &p.signers[0];
            let cert = p.find_signer_certificate(signer).unwrap();
            assert_eq!(cert, pki.cert.as_slice());
            assert_eq!(signer.content_type().unwrap(), Some(ID_DATA));
            assert!(signer.message_digest_matches(DATA).unwrap());
            assert!(signer.signing_time().unwrap().is_some());
            assert!(verify_signer(signer, cert).unwrap(), "{kt:?} {md}");
            assert!(!verify_signer(signer, &pki.root).unwrap());
        }
    }
}
