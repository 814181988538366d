//! PAdES interoperability with pyHanko (PyPI `pyhanko` + `pyhanko-cli`), both ways.
//!
//! * Our update, signed with `openssl cms -sign -binary -cades` over the covered bytes and put in
//!   place with `finish`, is validated by `pyhanko sign validate --no-revocation-check --trust
//!   root.pem --trust-replace`: exit 0, `Signature1:<sha256>:INTACT:TRUSTED,UNTOUCHED`, for the
//!   classic cross-reference table and the cross-reference stream variant. A copy with one byte of
//!   the page content changed gives `INVALID` and exit 1, and our digest of it differs from the
//!   signed one.
//! * Signing twice with our update (the second on the first's output) validates too: pyHanko
//!   judges the first signature `INTACT:TRUSTED,EXTENDED_WITH_FORM_FILLING,ACCEPTABLE_MODIFICATIONS`
//!   (its diff analysis accepts our second update — a new signature field, new versions of the page
//!   and the catalog — as form filling) and the second `INTACT:TRUSTED,UNTOUCHED`. The same for our
//!   signature added after two pyHanko ones: all three `INTACT:TRUSTED`, exit 0.
//! * pyHanko's own signatures (`pyhanko sign addsig --use-pades pemder`) on our classic and
//!   xref-stream documents are found by `signatures()`: SubFilter `ETSI.CAdES.detached`, the whole
//!   revision covered, `/Contents` parsed as a CMS `ContentInfo` whose `messageDigest` attribute is
//!   our SHA-256 of the covered bytes; after a second pyHanko signature the first reports
//!   `later_revisions`.
//!
//! Quirks seen: pyHanko keeps `openssl cms`'s signingTime signed attribute (PAdES baseline forbids
//! it) without complaint; it zero-pads `/Contents` as we do, so `signatures()` has to cut the CMS at
//! the end of its outer TLV; it writes `/ByteRange` with padding spaces as we do.
//!
//! Skipped with a message when pyHanko (in `$JPKI_VENV`, default `<workspace>/.venv`) or openssl
//! is missing, unless `JPKI_REQUIRE_INTEROP=1`, which makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use der::{Decode, Encode};
use jpki_sig::pdf::{self, Coverage, PdfSignature, SignOptions};
use time::macros::datetime;

// ---------------------------------------------------------------------------------------------
// Tools

fn interop_required() -> bool {
    std::env::var("JPKI_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn skip(test: &str, what: &str) {
    assert!(
        !interop_required(),
        "{test}: {what} not found and JPKI_REQUIRE_INTEROP=1 (run scripts/test.sh to install it)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} not found (set JPKI_REQUIRE_INTEROP=1 to make this a failure)"
    );
}

fn venv() -> PathBuf {
    std::env::var_os("JPKI_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
        PathBuf::from,
    )
}

fn runs(exe: &Path, arg: &str) -> bool {
    Command::new(exe)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The pyhanko CLI and openssl, or `None` after saying which is missing.
fn tools(test: &str) -> Option<Tools> {
    let pyhanko = venv().join("bin").join("pyhanko");
    if !runs(&pyhanko, "--version") {
        skip(test, &format!("pyhanko ({})", pyhanko.display()));
        return None;
    }
    let openssl = PathBuf::from("openssl");
    if !runs(&openssl, "version") {
        skip(test, "the openssl CLI");
        return None;
    }
    Some(Tools { pyhanko, openssl })
}

#[derive(Debug)]
struct Tools {
    pyhanko: PathBuf,
    openssl: PathBuf,
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(exe: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(exe)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()))
}

fn ok(exe: &Path, args: &[&str], dir: &Path) -> Output {
    let out = run(exe, args, dir);
    assert!(
        out.status.success(),
        "{}",
        show(&format!("{} {args:?}", exe.display()), &out)
    );
    out
}

/// A tempdir with an EC P-256 root (`root.pem`) and an end-entity signer (`ee.pem`, `ee.key`).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(t: &Tools) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let mut root = vec!["req", "-x509", "-new"];
        root.extend(ec);
        root.extend([
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=openjpki PAdES Test Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        ok(&t.openssl, &root, d);
        let mut csr = vec!["req", "-new"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "ee.key",
            "-out",
            "ee.csr",
            "-subj",
            "/CN=openjpki PAdES Test Signer",
        ]);
        ok(&t.openssl, &csr, d);
        std::fs::write(
            d.join("ee.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        ok(
            &t.openssl,
            &[
                "x509",
                "-req",
                "-in",
                "ee.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                "4242",
                "-days",
                "365",
                "-extfile",
                "ee.ext",
                "-out",
                "ee.pem",
            ],
            d,
        );
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Our prepare + `openssl cms -sign -cades` over the covered bytes + finish. Returns the signed
    /// PDF, the digest that was signed and the DER CMS.
    fn sign_ours(&self, t: &Tools, pdf: &[u8], opts: &SignOptions) -> (Vec<u8>, [u8; 32], Vec<u8>) {
        let prepared = pdf::prepare(pdf, opts).unwrap();
        let covered: Vec<u8> = prepared.covered().flatten().copied().collect();
        self.write("covered.bin", &covered);
        ok(
            &t.openssl,
            &[
                "cms",
                "-sign",
                "-binary",
                "-cades",
                "-md",
                "sha256",
                "-signer",
                "ee.pem",
                "-inkey",
                "ee.key",
                "-certfile",
                "root.pem",
                "-outform",
                "DER",
                "-out",
                "sig.der",
                "-in",
                "covered.bin",
            ],
            self.dir.path(),
        );
        let cms = self.read("sig.der");
        let digest = prepared.digest_sha256();
        (prepared.finish(&cms).unwrap(), digest, cms)
    }

    /// `pyhanko sign addsig --field FIELD --use-pades pemder …` on `pdf`.
    fn sign_pyhanko(&self, t: &Tools, pdf: &[u8], field: &str) -> Vec<u8> {
        self.write("in.pdf", pdf);
        ok(
            &t.pyhanko,
            &[
                "sign",
                "addsig",
                "--field",
                field,
                "--use-pades",
                "pemder",
                "--key",
                "ee.key",
                "--cert",
                "ee.pem",
                "--chain",
                "root.pem",
                "--no-pass",
                "in.pdf",
                "signed.pdf",
            ],
            self.dir.path(),
        );
        self.read("signed.pdf")
    }

    /// `pyhanko sign validate --no-revocation-check --trust root.pem --trust-replace`: exit code
    /// and stdout.
    fn validate(&self, t: &Tools, pdf: &[u8]) -> (i32, String) {
        self.write("check.pdf", pdf);
        let out = run(
            &t.pyhanko,
            &[
                "sign",
                "validate",
                "--no-revocation-check",
                "--trust",
                "root.pem",
                "--trust-replace",
                "check.pdf",
            ],
            self.dir.path(),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!(
            "pyhanko validate: rc {:?}\n{text}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().unwrap()
}

fn whole(s: &PdfSignature) -> (usize, bool) {
    match &s.coverage {
        Coverage::WholeRevision {
            revision_end,
            later_revisions,
        } => (*revision_end, *later_revisions),
        Coverage::Broken(why) => panic!("{}: broken byte range: {why}", s.field_name),
    }
}

/// The messageDigest signed attribute of the (single) signer of a CMS ContentInfo.
fn message_digest(cms: &[u8]) -> Vec<u8> {
    let ci = cms::content_info::ContentInfo::from_der(cms).unwrap();
    assert_eq!(ci.content_type, const_oid::db::rfc5911::ID_SIGNED_DATA);
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    let si = sd.signer_infos.0.iter().next().unwrap();
    let attrs = si.signed_attrs.as_ref().unwrap();
    let md = attrs
        .iter()
        .find(|a| a.oid == const_oid::db::rfc5911::ID_MESSAGE_DIGEST)
        .unwrap();
    let v: der::asn1::OctetString = md.values.iter().next().unwrap().decode_as().unwrap();
    v.as_bytes().to_vec()
}

/// Checks what `signatures()` says about a signature made over `pdf`'s ranges.
fn check_found(pdf: &[u8], s: &PdfSignature) {
    assert_eq!(s.sub_filter, "ETSI.CAdES.detached", "{}", s.field_name);
    assert!(!s.is_doc_timestamp);
    let [x, y] = s.covered(pdf).unwrap();
    let digest = sha256(&[x, y]);
    assert_eq!(s.digest_sha256, Some(digest));
    let cms = s.contents.as_ref().unwrap();
    // Exactly one TLV: re-encoding the parsed ContentInfo gives the same length back.
    let ci = cms::content_info::ContentInfo::from_der(cms).unwrap();
    assert_eq!(ci.to_der().unwrap().len(), cms.len());
    assert_eq!(
        message_digest(cms),
        digest,
        "{}: messageDigest is the digest of the ranges",
        s.field_name
    );
}

fn opts() -> SignOptions {
    let mut o = SignOptions::new(datetime!(2025-04-01 10:00:00 +09:00));
    o.reason = Some("動作確認".into());
    o.location = Some("Tokyo".into());
    o.name = Some("Test Signer".into());
    o
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn our_signature_validates_in_pyhanko() {
    let Some(t) = tools("our_signature_validates_in_pyhanko") else {
        return;
    };
    let pki = Pki::new(&t);
    for (kind, orig) in [
        ("classic xref", pdf::minimal_pdf("Signed by openjpki")),
        ("xref stream", pdf::minimal_pdf_xref_stream("Signed by openjpki")),
    ] {
        let (signed, digest, cms) = pki.sign_ours(&t, &orig, &opts());
        let (rc, out) = pki.validate(&t, &signed);
        assert_eq!(rc, 0, "{kind}: {out}");
        assert!(
            out.contains("Signature1:") && out.contains(":INTACT:TRUSTED"),
            "{kind}: {out}"
        );
        assert!(out.contains("UNTOUCHED"), "{kind}: {out}");

        let sigs = pdf::signatures(&signed).unwrap();
        assert_eq!(sigs.len(), 1);
        assert_eq!(sigs[0].contents.as_deref().unwrap(), &cms[..]);
        assert_eq!(sigs[0].digest_sha256, Some(digest));
        assert_eq!(sigs[0].reason.as_deref(), Some("動作確認"));
        check_found(&signed, &sigs[0]);

        // One byte of the page content changed.
        let at = signed.windows(7).position(|w| w == b"openjpk").unwrap();
        let mut tampered = signed.clone();
        tampered[at] = b'O';
        let (rc, out) = pki.validate(&t, &tampered);
        assert_eq!(rc, 1, "{kind}: {out}");
        assert!(out.contains("INVALID"), "{kind}: {out}");
        let s = &pdf::signatures(&tampered).unwrap()[0];
        assert_ne!(s.digest_sha256, Some(digest));
        whole(s);

        // A second signature of ours on top.
        let (twice, _, _) = pki.sign_ours(&t, &signed, &opts());
        let (rc, out) = pki.validate(&t, &twice);
        assert_eq!(rc, 0, "{kind}: {out}");
        let lines: Vec<&str> = out.lines().filter(|l| l.contains("INTACT:TRUSTED")).collect();
        assert_eq!(lines.len(), 2, "{kind}: {out}");
        assert!(
            lines[0].starts_with("Signature1:") && lines[0].contains("ACCEPTABLE_MODIFICATIONS"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("Signature2:") && lines[1].contains("UNTOUCHED"),
            "{out}"
        );
        let sigs = pdf::signatures(&twice).unwrap();
        assert_eq!(whole(&sigs[0]), (signed.len(), true));
        assert_eq!(whole(&sigs[1]), (twice.len(), false));
    }
}

#[test]
fn pyhanko_signatures_found_by_us() {
    let Some(t) = tools("pyhanko_signatures_found_by_us") else {
        return;
    };
    let pki = Pki::new(&t);
    for (kind, orig) in [
        ("classic xref", pdf::minimal_pdf("Signed by pyHanko")),
        ("xref stream", pdf::minimal_pdf_xref_stream("Signed by pyHanko")),
    ] {
        let one = pki.sign_pyhanko(&t, &orig, "Sig1");
        assert!(
            one.starts_with(&orig),
            "{kind}: pyHanko appends an incremental update"
        );
        let sigs = pdf::signatures(&one).unwrap();
        assert_eq!(sigs.len(), 1, "{kind}");
        assert_eq!(sigs[0].field_name, "Sig1");
        assert_eq!(whole(&sigs[0]), (one.len(), false), "{kind}");
        check_found(&one, &sigs[0]);
        assert!(
            sigs[0].contents.as_ref().unwrap().len()
                < (sigs[0].byte_range[2] - sigs[0].byte_range[1]) as usize / 2
        );

        let two = pki.sign_pyhanko(&t, &one, "Sig2");
        let sigs = pdf::signatures(&two).unwrap();
        let names: Vec<&str> = sigs.iter().map(|s| s.field_name.as_str()).collect();
        assert_eq!(names, ["Sig1", "Sig2"], "{kind}");
        assert_eq!(whole(&sigs[0]), (one.len(), true), "{kind}");
        assert_eq!(whole(&sigs[1]), (two.len(), false), "{kind}");
        for s in &sigs {
            check_found(&two, s);
        }
        let (rc, out) = pki.validate(&t, &two);
        assert_eq!(rc, 0, "{kind}: {out}");

        // Ours after pyHanko's: both still validate in pyHanko, and we find all three.
        let (three, _, _) = pki.sign_ours(&t, &two, &opts());
        let (rc, out) = pki.validate(&t, &three);
        assert_eq!(rc, 0, "{kind}: {out}");
        assert_eq!(
            out.lines().filter(|l| l.contains("INTACT:TRUSTED")).count(),
            3,
            "{kind}: {out}"
        );
        let sigs = pdf::signatures(&three).unwrap();
        assert_eq!(sigs.len(), 3);
        assert_eq!(sigs[2].field_name, "Signature1");
        for s in &sigs {
            check_found(&three, s);
        }
    }
}
