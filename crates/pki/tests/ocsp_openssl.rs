//! OCSP against the OpenSSL command line and pkilint: requests made by `openssl ocsp` read by
//! `OcspRequest::parse`, responses from `Responder::respond` (delegated responder certificate from
//! `Issuer::issue_ocsp_responder`) verified by `openssl ocsp -respin`, for an RSA-2048 root and a P-384
//! root, for good, revoked (keyCompromise, certificateHold) and unknown, with and without a nonce;
//! and the responses linted by pkilint's `lint_ocsp_response`.
//!
//! `openssl ocsp` exits 0 for some failures (a revoked status, a nonce mismatch warning), so every check
//! looks at the exit code and at the text. Skipped, with a message, when openssl (on the PATH) or
//! pkilint (in `$JPKI_VENV`, default `<workspace>/.venv`) is missing, unless `JPKI_REQUIRE_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use jpki_model::{CertKind, RevocationReason, Serial};
use jpki_pki::ocsp::{self, CertId, CertIdHash, CertStatus, OcspRequest, Responder, SingleStatus};
use jpki_pki::{
    EndEntitySpec, Endpoints, Issuer, KeyType, RootSpec, SigningKey, SubjectPublicKey, issue_root,
};
use time::{Duration, OffsetDateTime};

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
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(dir: &Path, exe: &Path, args: &[&str]) -> Out {
    let o = Command::new(exe).current_dir(dir).args(args).output().unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Out {
    run(dir, Path::new("openssl"), args)
}

fn endpoints() -> Endpoints {
    Endpoints::new("http://127.0.0.1:7700").unwrap()
}

/// A root of `kt`, an authentication end-entity certificate and a delegated responder, written as
/// root.pem, ee.pem and responder.pem in a fresh directory.
struct Setup {
    dir: tempfile::TempDir,
    ca: Issuer,
    ee_serial: Serial,
    ee: (SigningKey, Vec<u8>),
    responder: Responder,
    now: OffsetDateTime,
}

fn serial(shard: u16) -> Serial {
    let mut r = [0u8; 16];
    aws_lc_rs::rand::fill(&mut r).unwrap();
    Serial::generate(r, shard)
}

fn write_pem(dir: &Path, file: &str, der: &[u8]) {
    std::fs::write(dir.join(file), jpki_pki::to_pem("CERTIFICATE", der).unwrap()).unwrap();
}

fn setup(kt: KeyType) -> Setup {
    // openssl checks validity against its own clock, so these certificates are valid now.
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let key = SigningKey::generate(kt).unwrap();
    let root = issue_root(&RootSpec {
        kind: CertKind::Authentication,
        key: &key,
        serial: &Serial::from_be_bytes(&[1]).unwrap(),
        not_before: now - Duration::days(10),
        not_after: now + Duration::days(3650),
        endpoints: &endpoints(),
        generation: 1,
    })
    .unwrap();
    let ca = Issuer::new(CertKind::Authentication, key, root).unwrap();

    let ee_serial = serial(7);
    let ee_key = SigningKey::generate(KeyType::P384).unwrap();
    let ee_pk = SubjectPublicKey::from_der(&ee_key.spki_der().unwrap()).unwrap();
    let ee = ca
        .issue(
            &EndEntitySpec {
                serial: &ee_serial,
                subject_key: &ee_pk,
                subject_id: "OCSPTEST00000001",
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(365),
                facts: None,
            },
            &endpoints(),
        )
        .unwrap();

    let r_key = SigningKey::generate(kt).unwrap();
    let r_pk = SubjectPublicKey::from_der(&r_key.spki_der().unwrap()).unwrap();
    let r_cert = ca
        .issue_ocsp_responder(
            &serial(0),
            &r_pk,
            now - Duration::hours(1),
            now + Duration::days(7),
            &endpoints(),
        )
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    write_pem(dir.path(), "root.pem", ca.cert_der());
    write_pem(dir.path(), "ee.pem", &ee);
    write_pem(dir.path(), "responder.pem", &r_cert);
    Setup {
        dir,
        ca,
        ee_serial,
        ee: (ee_key, ee),
        responder: Responder::new(r_key, r_cert).unwrap(),
        now,
    }
}

impl Setup {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ee_id(&self) -> CertId {
        CertId::for_certificate(self.ca.cert_der(), self.ee_serial.as_be_bytes(), CertIdHash::Sha1).unwrap()
    }

    fn status(&self, status: CertStatus) -> SingleStatus {
        SingleStatus {
            status,
            this_update: self.now - Duration::minutes(1),
            next_update: Some(self.now + Duration::hours(12)),
        }
    }

    /// Answers `id` with `status`, writes `file`, and returns its path.
    fn respond(&self, file: &str, id: &CertId, status: CertStatus, nonce: Option<&[u8]>) -> String {
        let der = self
            .responder
            .respond(&[(id.clone(), self.status(status))], nonce, self.now)
            .unwrap();
        std::fs::write(self.path().join(file), der).unwrap();
        file.to_string()
    }
}

const KEY_TYPES: [KeyType; 2] = [KeyType::Rsa2048, KeyType::P384];

#[test]
fn openssl_requests_are_read() {
    if !have_openssl("openssl_requests_are_read") {
        return;
    }
    for kt in KEY_TYPES {
        let s = setup(kt);
        let o = openssl(
            s.path(),
            &[
                "ocsp",
                "-issuer",
                "root.pem",
                "-cert",
                "ee.pem",
                "-reqout",
                "req.der",
                "-no_nonce",
            ],
        );
        assert_eq!(o.code, Some(0), "{o}");
        let req = OcspRequest::parse(&std::fs::read(s.path().join("req.der")).unwrap()).unwrap();
        assert_eq!(
            req.cert_ids,
            vec![s.ee_id()],
            "{kt:?}: openssl sends a SHA-1 CertID"
        );
        assert_eq!((req.nonce.as_ref(), req.signed), (None, false));
        assert_eq!(req.cacheable_id(), Some(&s.ee_id()));
        let hashes = jpki_pki::IssuerHashes::from_cert_der(s.ca.cert_der()).unwrap();
        assert!(hashes.matches(&req.cert_ids[0]));
        assert_eq!(req.cert_ids[0].serial_magnitude(), s.ee_serial.as_be_bytes());

        // openssl adds a nonce by default; two certificates in one request.
        let o = openssl(
            s.path(),
            &[
                "ocsp",
                "-issuer",
                "root.pem",
                "-cert",
                "ee.pem",
                "-cert",
                "responder.pem",
                "-reqout",
                "req-nonce.der",
            ],
        );
        assert_eq!(o.code, Some(0), "{o}");
        let req = OcspRequest::parse(&std::fs::read(s.path().join("req-nonce.der")).unwrap()).unwrap();
        assert_eq!(req.cert_ids.len(), 2);
        assert_eq!(req.cert_ids[0], s.ee_id());
        assert_eq!(
            req.nonce.as_ref().map(Vec::len),
            Some(16),
            "openssl's nonce is 16 octets"
        );
        assert_eq!(req.cacheable_id(), None);

        // SHA-256 CertIDs.
        let o = openssl(
            s.path(),
            &[
                "ocsp",
                "-issuer",
                "root.pem",
                "-sha256",
                "-cert",
                "ee.pem",
                "-reqout",
                "req-256.der",
                "-no_nonce",
            ],
        );
        assert_eq!(o.code, Some(0), "{o}");
        let req = OcspRequest::parse(&std::fs::read(s.path().join("req-256.der")).unwrap()).unwrap();
        let want =
            CertId::for_certificate(s.ca.cert_der(), s.ee_serial.as_be_bytes(), CertIdHash::Sha256).unwrap();
        assert_eq!(req.cert_ids, vec![want]);
    }
}

/// `openssl ocsp -respin FILE` checking our response for ee.pem; `extra` adds options.
fn check_response(s: &Setup, resp: &str, extra: &[&str]) -> Out {
    let mut args = vec![
        "ocsp",
        "-respin",
        resp,
        "-issuer",
        "root.pem",
        "-CAfile",
        "root.pem",
        "-cert",
        "ee.pem",
        "-resp_text",
    ];
    args.extend_from_slice(extra);
    openssl(s.path(), &args)
}

fn assert_verified(o: &Out, status_line: &str, what: &str) {
    assert_eq!(o.code, Some(0), "{what}: {o}");
    assert!(o.stderr.contains("Response verify OK"), "{what}: {o}");
    assert!(
        o.stdout.contains(status_line),
        "{what}: expected {status_line:?}: {o}"
    );
    for bad in [
        "Verify Failure",
        "Nonce Verify error",
        "WARNING",
        "ERROR",
        "Status times invalid",
    ] {
        assert!(
            !o.stdout.contains(bad) && !o.stderr.contains(bad),
            "{what}: {bad:?} in {o}"
        );
    }
}

#[test]
fn openssl_verifies_our_responses() {
    if !have_openssl("openssl_verifies_our_responses") {
        return;
    }
    for kt in KEY_TYPES {
        let s = setup(kt);
        let id = s.ee_id();
        let cases: [(&str, CertStatus, &[&str]); 5] = [
            ("good", CertStatus::Good, &["ee.pem: good"]),
            (
                "keyCompromise",
                CertStatus::Revoked {
                    at: s.now - Duration::days(1),
                    reason: Some(RevocationReason::KeyCompromise),
                },
                &["ee.pem: revoked", "Reason: keyCompromise"],
            ),
            (
                "certificateHold",
                CertStatus::Revoked {
                    at: s.now - Duration::hours(2),
                    reason: Some(RevocationReason::CertificateHold),
                },
                &["ee.pem: revoked", "Reason: certificateHold"],
            ),
            (
                "no reason",
                CertStatus::Revoked {
                    at: s.now - Duration::hours(3),
                    reason: None,
                },
                &["ee.pem: revoked"],
            ),
            ("unknown", CertStatus::Unknown, &["ee.pem: unknown"]),
        ];
        for (name, status, lines) in cases {
            let what = format!("{kt:?} {name}");
            let file = s.respond(&format!("resp-{}.der", name.replace(' ', "-")), &id, status, None);
            let o = check_response(&s, &file, &["-no_nonce"]);
            for line in lines {
                assert_verified(&o, line, &what);
            }
            assert!(o.stdout.contains("Responder Id: "), "{what}: {o}");
            assert!(
                o.stdout.contains("OCSP Response Status: successful (0x0)"),
                "{what}: {o}"
            );
            if name == "no reason" {
                assert!(!o.stdout.contains("Reason:"), "{what}: {o}");
            }
        }

        // Nonce: openssl makes a request with a nonce, we answer it, openssl checks the echo (-reqin).
        let o = openssl(
            s.path(),
            &[
                "ocsp", "-issuer", "root.pem", "-cert", "ee.pem", "-reqout", "req.der",
            ],
        );
        assert_eq!(o.code, Some(0), "{o}");
        let req = OcspRequest::parse(&std::fs::read(s.path().join("req.der")).unwrap()).unwrap();
        let nonce = req.nonce.clone().unwrap();
        let file = s.respond("resp-nonce.der", &req.cert_ids[0], CertStatus::Good, Some(&nonce));
        let o = openssl(
            s.path(),
            &[
                "ocsp",
                "-reqin",
                "req.der",
                "-respin",
                &file,
                "-issuer",
                "root.pem",
                "-CAfile",
                "root.pem",
                "-resp_text",
            ],
        );
        assert_verified(&o, "Cert Status: good", &format!("{kt:?} nonce"));
        assert!(o.stdout.contains("OCSP Nonce"), "{o}");

        // A wrong nonce is caught, so the check above is real.
        let file = s.respond(
            "resp-bad-nonce.der",
            &req.cert_ids[0],
            CertStatus::Good,
            Some(b"not the nonce"),
        );
        let o = openssl(
            s.path(),
            &[
                "ocsp", "-reqin", "req.der", "-respin", &file, "-issuer", "root.pem", "-CAfile", "root.pem",
            ],
        );
        assert!(o.stderr.contains("Nonce Verify error"), "{kt:?} wrong nonce: {o}");

        // A response signed by a responder of another CA fails verification.
        let other = setup(kt);
        let der = other
            .responder
            .respond(&[(id.clone(), s.status(CertStatus::Good))], None, s.now)
            .unwrap();
        std::fs::write(s.path().join("resp-foreign.der"), der).unwrap();
        let o = check_response(&s, "resp-foreign.der", &["-no_nonce"]);
        assert!(
            o.code != Some(0) && o.stderr.contains("Response Verify Failure"),
            "{kt:?} foreign responder: {o}"
        );

        // A certificate of the same CA without id-kp-OCSPSigning is no authorised responder.
        let (ee_key, ee_der) = &s.ee;
        let ee_responder = Responder::new(
            SigningKey::from_pkcs8(&ee_key.to_pkcs8().unwrap()).unwrap(),
            ee_der.clone(),
        )
        .unwrap();
        let der = ee_responder
            .respond(&[(id.clone(), s.status(CertStatus::Good))], None, s.now)
            .unwrap();
        std::fs::write(s.path().join("resp-no-eku.der"), der).unwrap();
        let o = check_response(&s, "resp-no-eku.der", &["-no_nonce"]);
        assert!(
            o.code != Some(0)
                && o.stderr.contains("Response Verify Failure")
                && o.stderr.contains("missing ocspsigning usage"),
            "{kt:?} responder without EKU: {o}"
        );

        // An error response.
        std::fs::write(
            s.path().join("resp-try-later.der"),
            ocsp::error_response(ocsp::OcspResponseStatus::TryLater),
        )
        .unwrap();
        let o = check_response(&s, "resp-try-later.der", &["-no_nonce"]);
        assert!(
            o.stdout.contains("Responder Error: trylater (3)"),
            "{kt:?} tryLater: {o}"
        );
    }
}

#[test]
fn pkilint_finds_no_errors() {
    let lint = venv().join("bin").join("lint_ocsp_response");
    let found = Command::new(&lint)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip(
            "pkilint_finds_no_errors",
            &format!("pkilint ({})", lint.display()),
        );
        return;
    }
    for kt in KEY_TYPES {
        let s = setup(kt);
        let id = s.ee_id();
        for (name, status, nonce) in [
            ("good", CertStatus::Good, Some(&b"0123456789abcdef"[..])),
            (
                "revoked",
                CertStatus::Revoked {
                    at: s.now - Duration::days(1),
                    reason: Some(RevocationReason::KeyCompromise),
                },
                None,
            ),
            (
                "hold",
                CertStatus::Revoked {
                    at: s.now - Duration::days(1),
                    reason: Some(RevocationReason::CertificateHold),
                },
                None,
            ),
            ("unknown", CertStatus::Unknown, None),
        ] {
            let file = s.respond(&format!("lint-{name}.der"), &id, status, nonce);
            let o = run(s.path(), &lint, &["lint", "-s", "WARNING", &file]);
            let text = format!("{}{}", o.stdout, o.stderr);
            assert!(
                !text.contains("(ERROR)") && !text.contains("(FATAL)") && !text.contains("Failed to load"),
                "{kt:?} {name}: {o}"
            );
            assert_eq!(o.code, Some(0), "{kt:?} {name}: warnings: {o}");
        }
    }
}
