//! The bodies of the cargo-fuzz targets in `fuzz/`: one function per target, named after it, taking
//! the fuzzer's bytes. `fuzz/fuzz_targets/NAME.rs` only calls `jpki_fuzzing::NAME`, and
//! `tests/regressions.rs` feeds every file of `fuzz/regressions/NAME/` to the same function under a
//! plain `cargo test`, so an input that once crashed a target stays a test on the stable toolchain.
//!
//! Each function is total over its input: a panic (an `assert!`, or an `expect` on something a
//! parser promised) is the finding. Nothing here touches the network; only `card_transmit` uses a
//! temporary file (the card file it starts from).
// A fuzzing harness is test code: a failed expectation is exactly what it reports.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::{Arc, OnceLock};

use jpki_card::{CardFile, DeviceKey, HolderSecrets, VirtualCard};
use jpki_model::{CertKind, Serial};
use jpki_pki::ocsp::{OcspRequest, Responder, parse_response};
use jpki_pki::path::TrustAnchors;
use jpki_pki::revocation::{CrlStore, ParsedCrl};
use jpki_pki::x509::{CertCore, ParsedCert};
use jpki_pki::{Endpoints, Issuer, KeyType, RootSpec, SigningKey, SubjectPublicKey, issue_root};
use jpki_platform::api::Rights;
use jpki_platform::{Api, OcspService, StatusIndex};
use jpki_sig::signed_data::{DigestAlg, ParsedSignedData};
use jpki_sig::tsp::{TimeStampAuthority, TimeStampRequest, TimeStampToken, token_from_response};
use jpki_sig::validate::Verifier;
use time::{Duration, OffsetDateTime};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by name: the `[[bin]]` names of `fuzz/Cargo.toml` and the directories of
/// `fuzz/regressions/`.
pub const TARGETS: [(&str, Target); 17] = [
    ("apdu", apdu),
    ("api_body", api_body),
    ("card_answer", card_answer),
    ("card_layout", card_layout),
    ("card_transmit", card_transmit),
    ("certificate", certificate),
    ("cms_signature", cms_signature),
    ("consent_statement", consent_statement),
    ("crl", crl),
    ("model_text", model_text),
    ("ocsp_request", ocsp_request),
    ("ocsp_response", ocsp_response),
    ("oidc_request", oidc_request),
    ("pdf_signatures", pdf_signatures),
    ("subject_public_key", subject_public_key),
    ("tsa_reply", tsa_reply),
    ("tsa_request", tsa_request),
];

/// The target function named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

// ---------------------------------------------------------------------------------------------------
// Fixtures: one signature CA with a delegated OCSP responder and a TSA, made once per process.
// ---------------------------------------------------------------------------------------------------

/// The time the fixtures are issued at; the targets run one day later.
pub const ISSUED: OffsetDateTime = OffsetDateTime::UNIX_EPOCH.saturating_add(Duration::days(20_000));

/// When the targets that need a clock run: a fixed time, so that a regression replays the same way.
pub const NOW: OffsetDateTime = ISSUED.saturating_add(Duration::days(1));

/// What the fuzz targets that need an authority share.
#[derive(Debug)]
pub struct Fixtures {
    /// The signature CA's root certificate (DER).
    pub root: Vec<u8>,
    /// The CA (signs CRLs).
    pub issuer: Issuer,
    /// Its delegated OCSP responder.
    pub responder: Responder,
    /// A TSA under the root.
    pub tsa: TimeStampAuthority,
    /// The time-stamp requests `tsa_reply` checks answers against: SHA-256 of `b"content"`, one
    /// with a nonce and certificates asked for, one with neither.
    pub tsa_requests: [TimeStampRequest; 2],
}

/// A delegated OCSP responder of `issuer` with certificate serial `serial`.
fn new_responder(issuer: &Issuer, serial: u8) -> Responder {
    let key = SigningKey::generate(KeyType::P384).expect("key");
    let spki = SubjectPublicKey::from_der(&key.spki_der().expect("spki")).expect("spki");
    let cert = issuer
        .issue_ocsp_responder(
            &Serial::from_be_bytes(&[serial]).expect("serial"),
            &spki,
            ISSUED,
            ISSUED + Duration::days(90),
            &Endpoints::new("http://127.0.0.1:7700").expect("URL"),
        )
        .expect("responder certificate");
    Responder::new(key, cert).expect("responder")
}

/// The shared fixtures.
pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let endpoints = Endpoints::new("http://127.0.0.1:7700").expect("URL");
        let root_key = SigningKey::generate(KeyType::P384).expect("key");
        let root = issue_root(&RootSpec {
            kind: CertKind::Signature,
            key: &root_key,
            serial: &Serial::from_be_bytes(&[1]).expect("serial"),
            not_before: ISSUED,
            not_after: ISSUED + Duration::days(3650),
            endpoints: &endpoints,
            generation: 1,
        })
        .expect("root");
        let issuer = Issuer::new(CertKind::Signature, root_key, root.clone()).expect("issuer");
        let responder = new_responder(&issuer, 2);
        let tsa_key = SigningKey::generate(KeyType::P384).expect("key");
        let tsa_cert = issuer
            .issue_tsa(
                &Serial::generate([7; 16], 0),
                &SubjectPublicKey::from_der(&tsa_key.spki_der().expect("spki")).expect("spki"),
                ISSUED,
                ISSUED + Duration::days(365),
                &endpoints,
            )
            .expect("TSA certificate");
        let tsa = TimeStampAuthority::new(tsa_key, tsa_cert, vec![root.clone()]).expect("TSA");
        let digest = DigestAlg::Sha256.digest(b"content");
        let tsa_requests = [
            TimeStampRequest::for_digest(DigestAlg::Sha256, &digest, Some([0x42; 8]), true).expect("request"),
            TimeStampRequest::for_digest(DigestAlg::Sha256, &digest, None, false).expect("request"),
        ];
        Fixtures {
            root,
            issuer,
            responder,
            tsa,
            tsa_requests,
        }
    })
}

// ---------------------------------------------------------------------------------------------------
// The targets
// ---------------------------------------------------------------------------------------------------

/// Command and response APDUs from a client or reader: parse, and re-encode whatever parses.
pub fn apdu(data: &[u8]) {
    if let Ok(c) = jpki_card::apdu::Command::parse(data) {
        assert_eq!(
            c.to_bytes().ok().as_deref(),
            Some(data),
            "parse then encode must give the input back"
        );
    }
    if let Ok(r) = jpki_card::apdu::Response::parse(data) {
        assert_eq!(r.to_bytes(), data);
    }
}

/// The operations `api_body` sends bodies to (its first byte picks one).
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
        let f = fixtures();
        let service = OcspService::new(Duration::hours(1))
            .with_ca(
                CertKind::Signature,
                &f.root,
                new_responder(&f.issuer, 3),
                StatusIndex::build(std::iter::empty()),
            )
            .expect("service");
        Api::new(Arc::new(service), &[(CertKind::Signature, f.root.clone())]).expect("api")
    })
}

/// JSON API request bodies from relying parties (`POST /v1/{operation}`): the first byte picks the
/// operation, the rest is the body, from a caller with every capability. Never a panic, and every
/// answer is a JSON object with a status the API documents (200 or a 4xx).
pub fn api_body(data: &[u8]) {
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
    let answer = api().call(operation, body, &rights, NOW);
    assert!(answer.body.is_object());
    assert!(
        answer.status == 200 || (400..500).contains(&answer.status),
        "{} {}",
        answer.status,
        answer.body
    );
}

/// The parsers of card data a client reads from a card it does not trust (ours or a real one):
/// BER-TLV, CV certificates, the text-assist and card-face files. Total: errors, never panics.
pub fn card_layout(data: &[u8]) {
    use jpki_card::layout;
    let _ = layout::parse_tlvs(data);
    let _ = layout::ber_total_len(data);
    let _ = layout::CvCert::parse(data);
    let _ = layout::parse_assist_ef0001(data);
    let _ = layout::parse_assist_ef0002(data);
    let _ = layout::parse_face_ef0001(data);
    let _ = layout::parse_face_ef0002(data);
    let _ = layout::parse_face_ef0003(data);
    let _ = layout::parse_face_ef0005(data);
    let _ = layout::parse_common_record(data);
    let _ = layout::parse_juki_ef0001(data);
    let _ = layout::parse_token_ef0008(data);
    let _ = layout::token_info_label(data);
    let _ = layout::rsa_components_from_spki(data);
}

/// The card file `card_transmit` starts every input from.
fn card_template() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let card = VirtualCard::manufacture(&HolderSecrets {
            auth_pin: b"1234",
            sign_password: b"ABCDEF12",
            assist_pin: None,
        })
        .expect("manufacture");
        drop(
            CardFile::create(&dir.path().join("f.card"), DeviceKey::from_bytes([3; 32]), card)
                .expect("create"),
        );
        dir
    })
    .path()
}

/// The card state machine fed arbitrary APDU sequences (APDUs separated by a 0xFF 0xFE marker): it
/// must answer every one with a status word and never panic.
pub fn card_transmit(data: &[u8]) {
    let path = card_template().join("f.card");
    let mut card = CardFile::open(&path, DeviceKey::from_bytes([3; 32]))
        .expect("open")
        .into_card();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == [0xFF, 0xFE])
            .unwrap_or(rest.len());
        let response = card.transmit(&rest[..end]);
        assert!(response.len() >= 2, "every command gets a status word");
        rest = rest.get(end + 2..).unwrap_or(&[]);
    }
}

/// Certificates read back (`jpki cert show`, verifiers), including the JPKI subjectAltName, and the
/// platform's fast reader of a presented certificate's core (`POST /v1/certificates/validity`):
/// never a panic, and where both readers accept, they agree.
pub fn certificate(data: &[u8]) {
    let _ = jpki_pki::CertificateInfo::from_der(data);
    let _ = jpki_pki::JpkiSan::from_der(data);
    if let (Ok(core), Ok(full)) = (CertCore::from_der(data), ParsedCert::from_der(data)) {
        assert_eq!(core.serial, full.serial.as_slice());
        assert_eq!(core.issuer_der, full.issuer_der.as_slice());
        assert_eq!(
            (core.not_before, core.not_after),
            (full.not_before, full.not_after)
        );
    }
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| Verifier::new(TrustAnchors::new(), Arc::new(CrlStore::new())))
}

/// CMS signatures from outside (`jpki verify FILE.p7s`, a PDF's /Contents, a time-stamp token, a
/// signature sent to `signatures/augment`): parse, read what augmenting needs, and run the whole
/// validation on whatever parses — with no trust anchors and no CRLs, so every path ends in a
/// report, never a panic.
pub fn cms_signature(data: &[u8]) {
    if let Ok(parsed) = ParsedSignedData::parse(data) {
        let _ = jpki_sig::augment::cades_validation_data(&parsed);
    }
    let _ = jpki_sig::tsp::TimeStampToken::parse(data);
    let _ = jpki_sig::augment::cades_needs(data);
    let _ = verifier().verify_cades(data, Some(b"content"), OffsetDateTime::UNIX_EPOCH);
}

/// The linkage consent a person signs (`POST /v1/consents`): the statement inside the CMS (JSON) and
/// the digest of the signed attributes read from the CMS. A statement that parses re-encodes to one
/// that parses to the same.
pub fn consent_statement(data: &[u8]) {
    use jpki_platform::Statement;
    if let Ok(s) = Statement::parse(data) {
        let again = Statement::parse(&s.to_bytes()).expect("a parsed statement re-encodes");
        assert_eq!(again, s);
    }
    let _ = jpki_platform::consent::signed_digest(data);
}

/// CRLs from anywhere (`--crl` files, CRL distribution points, CRLs embedded in a signature or a
/// PDF's DSS): parse (DER or PEM), and use what parses as verifiers do.
pub fn crl(data: &[u8]) {
    let Ok(crl) = ParsedCrl::from_der(data, "fuzz") else {
        return;
    };
    let _ = crl.describe().len();
    let _ = (crl.len(), crl.is_empty(), crl.der_len());
    let _ = crl.lookup(&[1]);
    let _ = crl.lookup(&[]);
    if let Ok(root) = ParsedCert::from_der(&fixtures().root) {
        let _ = crl.is_issued_by(&root);
        let _ = crl.covers(&root);
    }
    let mut store = CrlStore::new();
    store.add(crl);
    assert_eq!(store.len(), 1);
}

/// Every text a person or script types: numbers, serials, facts, dates, secrets.
pub fn model_text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = s.parse::<jpki_model::IndividualNumber>();
    let _ = s.parse::<jpki_model::CorporateNumber>();
    let _ = s.parse::<jpki_model::Serial>();
    let _ = s.parse::<jpki_model::Name>().map(|n| n.substitution_flags());
    let _ = s
        .parse::<jpki_model::Address>()
        .map(|a| (a.prefecture().map(str::len), a.city().map(str::len)));
    let _ = s.parse::<jpki_model::Sex>();
    let _ = s.parse::<jpki_model::RevocationReason>();
    let _ = s.parse::<jpki_model::AuthPin>();
    let _ = s.parse::<jpki_model::SignPassword>();
    let _ = jpki_model::parse_birth_date(s);
}

/// OCSP requests from the network (`POST /ocsp`, or the base64 path of a GET): parse them, and what
/// parses must build back into a request that parses to the same CertIDs and nonce.
pub fn ocsp_request(data: &[u8]) {
    if let Ok(req) = OcspRequest::parse(data) {
        let again =
            OcspRequest::build(&req.cert_ids, req.nonce.as_deref()).expect("a parsed request re-encodes");
        let back = OcspRequest::parse(&again).expect("a re-encoded request parses");
        assert_eq!(back.cert_ids, req.cert_ids);
        assert_eq!(back.nonce, req.nonce);
        let _ = req.cacheable_id();
    }
}

/// OCSP responses from outside (a responder's answer, responses embedded in a B-LT signature or a
/// PDF's DSS, the ones sent to `signatures/augment`): parse, and check the signature with the
/// responder's key and with every certificate the response carries, as verifiers do.
pub fn ocsp_response(data: &[u8]) {
    let Ok(resp) = parse_response(data) else {
        return;
    };
    let Some(basic) = resp.basic else {
        return;
    };
    if let Ok(responder) = ParsedCert::from_der(fixtures().responder.cert_der()) {
        let _ = basic.is_signed_by(&responder.public_key);
    }
    for cert in basic.certs.iter().take(4) {
        if let Ok(c) = ParsedCert::from_der(cert) {
            let _ = basic.is_signed_by(&c.public_key);
        }
    }
    for (id, _) in basic.responses.iter().take(4) {
        let _ = id.serial_magnitude();
    }
}

/// PDF signatures of untrusted documents (`signatures`, the DSS `signatures/augment` reads), and
/// preparing untrusted documents for signing: whatever `prepare` accepts must, once finished, show
/// the new signature as covering the whole new revision.
pub fn pdf_signatures(data: &[u8]) {
    use jpki_sig::pdf::{Coverage, SignOptions, prepare, signatures};
    if let Ok(sigs) = signatures(data) {
        for s in &sigs {
            if let Coverage::WholeRevision { revision_end, .. } = s.coverage {
                assert!(revision_end <= data.len());
                assert!(s.digest_sha256.is_some());
            }
        }
        let _ = jpki_sig::augment::pdf_signatures_needs(&sigs);
    }
    let _ = jpki_sig::augment::pdf_dss(data);
    let mut opts = SignOptions::new(OffsetDateTime::UNIX_EPOCH);
    opts.reserved = 64;
    if let Ok(p) = prepare(data, &opts) {
        let name = p.field_name().to_owned();
        let out = p
            .finish(&[0x30, 0x03, 0x02, 0x01, 0x05])
            .expect("a 5-byte CMS fits in 64");
        let sigs = signatures(&out).expect("our update of a readable PDF is readable");
        let ours = sigs
            .iter()
            .find(|s| s.field_name == name)
            .expect("the new field is found");
        assert!(
            matches!(
                ours.coverage,
                Coverage::WholeRevision {
                    later_revisions: false,
                    ..
                }
            ),
            "{:?}",
            ours.coverage
        );
    }
}

/// The public key a card presents for certification (outside input to the authority).
pub fn subject_public_key(data: &[u8]) {
    let _ = SubjectPublicKey::from_der(data);
}

fn check_token(token: &TimeStampToken) {
    let _ = token.imprint_matches(b"content");
    let _ = token.accuracy.map(|a| a.as_duration());
    if let Some(cert) = token.signer_certificate(&[]) {
        let _ = token.verify(&cert);
    }
    let _ = token.verify(fixtures().tsa.cert_der());
}

/// What a TSA server sends back to a signer (`jpki sign --tsa URL`): a TimeStampResp checked
/// against the request it answers, and the token in it parsed and verified against the
/// certificates it names; and the input as a bare token.
pub fn tsa_reply(data: &[u8]) {
    for request in &fixtures().tsa_requests {
        if let Ok(token) = token_from_response(data, request) {
            let parsed = TimeStampToken::parse(&token).expect("an accepted token parses");
            assert_eq!(parsed.nonce, request.nonce);
            check_token(&parsed);
        }
    }
    if let Ok(token) = TimeStampToken::parse(data) {
        check_token(&token);
    }
}

/// Time-stamp requests from the network (`POST /tsa`): parse them, and answer each with a
/// TimeStampResp that parses back (granted or a rejection), whatever the request.
pub fn tsa_request(data: &[u8]) {
    let parsed = TimeStampRequest::parse(data);
    let resp = fixtures().tsa.respond(data, NOW, &[0x42; 8]);
    assert!(!resp.is_empty(), "every request gets a TimeStampResp");
    if let Ok(req) = parsed {
        // A request we parsed is either granted with a token that matches it, or refused.
        let _ = token_from_response(&resp, &req);
    }
}

/// One development client (client_secret_basic, secret "s") and one with a P-256 key
/// (private_key_jwt), both redirecting to `http://127.0.0.1:9/cb`.
fn oidc_provider() -> &'static jpki_oidc::Provider {
    static PROVIDER: OnceLock<jpki_oidc::Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        struct Fixed(Vec<jpki_oidc::Client>);
        impl jpki_oidc::Clients for Fixed {
            fn client(&self, id: &str) -> Option<jpki_oidc::Client> {
                self.0.iter().find(|c| c.id == id).cloned()
            }
        }
        let (ec, _) = jpki_oidc::generate_pkcs8().expect("keys");
        let key = jsonwebtoken::EncodingKey::from_ec_der(&ec);
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some("k".into());
        let secret: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"s")
            .as_ref()
            .try_into()
            .expect("32 bytes");
        let client = |id: &str, auth| jpki_oidc::Client {
            id: id.into(),
            name: id.into(),
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
            auth,
            id_token_alg: jpki_oidc::SigningAlg::ES256,
        };
        jpki_oidc::Provider::new(
            jpki_oidc::Config::new("http://127.0.0.1:7700/oidc"),
            jpki_oidc::SigningKeys::generate().expect("signing keys"),
            Box::new(Fixed(vec![
                client("dev", jpki_oidc::ClientAuth::SecretBasic(secret)),
                client(
                    "rp",
                    jpki_oidc::ClientAuth::PrivateKeyJwt(jsonwebtoken::jwk::JwkSet { keys: vec![jwk] }),
                ),
            ])),
        )
    })
}

/// The OpenID Connect endpoints' input: the bytes up to the first newline are the Authorization
/// header (if not empty), the rest a form body / query string. It goes to the authorization
/// endpoint, the token endpoint and userinfo. Never a panic; a refusal of a token request is 400
/// or 401, and one of an authorization request that names a redirect has one of the registered URIs.
pub fn oidc_request(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let header = std::str::from_utf8(header).ok().filter(|h| !h.is_empty());
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let provider = oidc_provider();
    let now = OffsetDateTime::now_utc();
    match provider.authorize(&params) {
        Ok(request) => {
            assert!(request.scopes.contains(&jpki_oidc::Scope::OpenId));
            assert_eq!(request.redirect_uri, "http://127.0.0.1:9/cb");
        }
        Err(e) => {
            if let Some(location) = provider.error_location(&e) {
                assert!(location.starts_with("http://127.0.0.1:9/cb?"), "{location}");
            }
        }
    }
    match provider.token(&params, header, now) {
        Ok(_) => panic!("a token without a code granted"),
        Err(e) => assert!(matches!(e.status, 400 | 401), "{e:?}"),
    }
    let bearer = header.and_then(|h| h.strip_prefix("Bearer "));
    assert!(provider.userinfo(bearer, now).is_err(), "no token was issued");
}

/// Nobody is anybody's person here (the fuzzer's certificates never reach a registry).
struct NoPeople;

impl jpki_platform::api::PersonRefs for NoPeople {
    fn person_ref(&self, _serial: &[u8]) -> Option<String> {
        None
    }
}

/// What a card agent posts back to the provider (a login's or a sign transaction's answer, as a
/// form), and a relying party's sign-transaction fields: read as the provider reads them. Nothing
/// the fuzzer makes is a valid proof: every check refuses, none panics.
pub fn card_answer(data: &[u8]) {
    use base64::Engine as _;
    let form: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |name: &str| field(name).and_then(|v| b64.decode(v).ok()).unwrap_or_default();
    let (cert, sig) = (decode("auth_cert"), decode("auth_sig"));
    let origin = field("return_to").and_then(jpki_oidc::origin_of);
    if let Some(o) = &origin {
        assert!(o.starts_with("http://") || o.starts_with("https://"), "{o}");
    }
    let statement = jpki_oidc::statement(origin.as_deref().unwrap_or("http://127.0.0.1"), &sig);
    let sign = (decode("sign_cert"), decode("sign_sig"));
    let sign_proof = (!sign.0.is_empty()).then_some(jpki_platform::CardProof {
        certificate: &sign.0,
        signature: &sign.1,
    });
    let login = api().card_login(
        &statement,
        jpki_platform::CardProof {
            certificate: &cert,
            signature: &sig,
        },
        sign_proof,
        &NoPeople,
        NOW,
    );
    assert!(login.is_err(), "a forged card answer was accepted");
    let digest = field("digest")
        .and_then(jpki_oidc::sign::parse_digest)
        .unwrap_or([0; 32]);
    assert!(api().sign_transaction(&digest, &sign.0, &sign.1, NOW).is_err());
    if let Some(d) = field("description") {
        let _ = jpki_oidc::sign::check_description(d);
    }
}
