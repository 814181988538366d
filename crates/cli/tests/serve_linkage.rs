//! 現況確認, serial linkage and the consents it needs, through the real binary: `jpki consent make`
//! with a card, `jpki serve`'s /v1/certificates/liveness, /v1/certificates/linkage, /v1/consents and
//! /v1/consents/revoke, and `jpki consent list/revoke`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::{Jpki, Person, Served, describe, have, s};
use serde_json::{Value, json};

/// `curl` POSTing JSON to `url` with `key`; returns (HTTP status, parsed body).
fn post_json(url: &str, key: &str, body: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "--data-binary", body])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n').unwrap();
    let (code, v): (u16, Value) = (
        code.parse().unwrap(),
        serde_json::from_str(json).unwrap_or(Value::Null),
    );
    if code != 200 {
        conforms("Error", &v);
    }
    (code, v)
}

/// Asserts that `v` has exactly the shape `/openapi.json` gives the schema `name`: no undocumented
/// field, every required one, each of its documented type (or null where nullable).
fn conforms(name: &str, v: &Value) {
    let doc: Value = serde_json::from_str(include_str!("../../server/src/openapi.json")).unwrap();
    let schema = &doc["components"]["schemas"][name];
    let props = schema["properties"].as_object().unwrap();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object: {v}"));
    for r in schema["required"].as_array().unwrap() {
        assert!(obj.contains_key(r.as_str().unwrap()), "{name}: no {r}: {v}");
    }
    for (k, val) in obj {
        let p = props
            .get(k)
            .unwrap_or_else(|| panic!("{name}: undocumented {k}: {v}"));
        let p = match p.get("$ref").and_then(Value::as_str) {
            Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
            None => p,
        };
        let ty = p["type"].as_str().unwrap();
        let ok = match val {
            Value::Null => p["nullable"] == true,
            Value::Bool(_) => ty == "boolean",
            Value::String(_) => ty == "string",
            Value::Number(_) => ty == "integer" || ty == "number",
            Value::Object(_) => ty == "object",
            Value::Array(_) => ty == "array",
        };
        assert!(ok, "{name}.{k}: {val} is not {ty}");
        if let Some(allowed) = p["enum"].as_array() {
            assert!(allowed.contains(val), "{name}.{k}: {val} not in {allowed:?}");
        }
    }
}

/// A registered relying party: (rp_id, API key).
fn rp(j: &Jpki, name: &str, allow: &str) -> (String, String) {
    let v = j.json(&["rp", "add", "--name", name, "--allow", allow]);
    (
        v["rp_id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

/// `jpki consent make` with `card` for `rp_id`; returns the .p7s as base64.
fn make_consent(j: &Jpki, card: &std::path::Path, rp_id: &str, name: &str) -> String {
    let out = j.path(name);
    let args = [
        "consent",
        "make",
        "--card",
        s(card),
        "--rp",
        rp_id,
        "--out",
        s(&out),
        "--sign-password",
        common::SIGN_PASSWORD,
    ];
    let v = j.json(&args);
    assert_eq!(v["rp_id"], rp_id);
    assert!(
        v["statement"]
            .as_str()
            .unwrap()
            .contains("openjpki-linkage-consent/v1"),
        "{v}"
    );
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&out).unwrap())
}

#[test]
fn linkage_needs_consent_goes_backwards_only_and_liveness_follows_life_events() {
    if !have("curl") {
        return;
    }
    let j = Jpki::demo("p384");
    let alice = j.add_resident(Person::ADULT);
    let card = j.issue_card(alice);
    let (auth1, sign1) = (
        card.serial("auth").unwrap().to_owned(),
        card.serial("sign").unwrap().to_owned(),
    );
    let bob_card = j.issue_card(j.add_resident(Person {
        name: "佐藤 次郎",
        ..Person::ADULT
    }));
    // Renewal of both: new serials, old → new linked in the registry.
    let v = j.renew(&card, "both");
    let (auth2, sign2) = (
        v["auth_serial"].as_str().unwrap().to_owned(),
        v["sign_serial"].as_str().unwrap().to_owned(),
    );
    assert!(auth2 != auth1 && sign2 != sign1);
    let pem = |serial: &str, name: &str| std::fs::read_to_string(j.export_cert(serial, name)).unwrap();
    let (auth1_pem, sign1_pem, auth2_pem, sign2_pem) = (
        pem(&auth1, "auth1.pem"),
        pem(&sign1, "sign1.pem"),
        pem(&auth2, "auth2.pem"),
        pem(&sign2, "sign2.pem"),
    );

    let (bank_id, bank) = rp(&j, "Bank", "linkage");
    let (shop_id, shop) = rp(&j, "Shop", "linkage,auth-status");
    let (_, plain) = rp(&j, "Plain", "auth-status,sign-status");
    let (_, checker) = rp(&j, "Checker", "liveness");
    let server = Served::start(&j, &["serve"]);
    let url = |op: &str| format!("http://{}/v1/{op}", server.addr());
    let cert = |pem: &str| json!({ "certificate": pem }).to_string();
    let link = |key: &str, pem: &str| post_json(&url("certificates/linkage"), key, &cert(pem));
    let submit = |key: &str, statement: &str| {
        post_json(
            &url("consents"),
            key,
            &json!({ "statement": statement }).to_string(),
        )
    };

    // No consent on file: 403 naming it.
    let (code, v) = link(&bank, &auth2_pem);
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no consent"), "{v}");

    // Alice signs a consent for the bank with her card (the renewed signature certificate).
    let consent = make_consent(&j, &card.card_file, &bank_id, "consent-bank.p7s");
    let (code, v) = submit(&bank, &consent);
    assert_eq!(code, 200, "{v}");
    conforms("Consent", &v);
    let consent_id = v["consent_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (v["rp_id"].as_str(), v["signer"]["serial"].as_str()),
        (Some(&*bank_id), Some(&*sign2))
    );
    assert_eq!(
        submit(&bank, &consent).1["consent_id"],
        consent_id.as_str(),
        "filed once"
    );

    // 新旧: the new certificate's predecessor is the old one; the pair is the card's other one.
    let (code, v) = link(&bank, &auth2_pem);
    assert_eq!(code, 200, "{v}");
    conforms("Linkage", &v);
    assert_eq!(
        (
            v["kind"].as_str(),
            v["serial"].as_str(),
            v["predecessor"].as_str()
        ),
        (Some("auth"), Some(&*auth2), Some(&*auth1)),
        "{v}"
    );
    assert_eq!(v["pair"], json!({ "kind": "sign", "serial": sign2 }));
    assert_eq!(v["consent_id"], consent_id.as_str());
    let (code, v) = link(&bank, &sign2_pem);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["predecessor"], sign1.as_str());
    assert_eq!(v["pair"], json!({ "kind": "auth", "serial": auth2 }));
    // The old certificates never yield the new ones.
    for old in [&auth1_pem, &sign1_pem] {
        let (code, v) = link(&bank, old);
        assert_eq!(code, 422, "{v}");
        assert!(
            !v.to_string().contains(&auth2) && !v.to_string().contains(&sign2),
            "{v}"
        );
    }

    // A consent for another relying party, or from someone else, gives the shop nothing.
    let (code, v) = submit(&shop, &consent);
    assert_eq!(code, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not for this relying party"),
        "{v}"
    );
    let bob_consent = make_consent(&j, &bob_card.card_file, &shop_id, "consent-bob.p7s");
    let (code, v) = submit(&shop, &bob_consent);
    assert_eq!(code, 200, "Bob's own consent is filed for Bob: {v}");
    let bob_consent_id = v["consent_id"].as_str().unwrap().to_owned();
    assert_eq!(link(&shop, &auth2_pem).0, 403, "not Alice's consent");
    let other = Jpki::demo("p384");
    let stranger = other.issue_card(other.add_resident(Person::ADULT));
    let forged = make_consent(&other, &stranger.card_file, &shop_id, "consent-stranger.p7s");
    let (code, v) = submit(&shop, &forged);
    assert_eq!(code, 422, "another authority's signer: {v}");
    assert_eq!(link(&shop, &auth2_pem).0, 403);

    // Revoked by the bank (only the bank may): 403 again, and the statement cannot be reused.
    let revoke = |key: &str, id: &str| {
        post_json(
            &url("consents/revoke"),
            key,
            &json!({ "consent_id": id }).to_string(),
        )
    };
    assert_eq!(revoke(&shop, &consent_id).0, 404, "not the shop's consent");
    let (code, v) = revoke(&bank, &consent_id);
    assert_eq!(code, 200, "{v}");
    conforms("ConsentRevoked", &v);
    assert!(v["revoked_at"].is_string(), "{v}");
    assert_eq!(link(&bank, &auth2_pem).0, 403);
    let (code, v) = submit(&bank, &consent);
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");

    // Without the linkage capability: 403 for linkage and consents alike.
    assert_eq!(link(&plain, &auth2_pem).0, 403);
    assert_eq!(submit(&plain, &consent).0, 403);
    assert_eq!(revoke(&plain, &consent_id).0, 403);

    // Garbage: 400.
    for op in [
        "certificates/linkage",
        "certificates/liveness",
        "consents",
        "consents/revoke",
    ] {
        for body in ["{", "[]", r#"{"certificate": 1}"#, r#"{"statement": "%%%"}"#] {
            let (code, v) = post_json(&url(op), &bank, body);
            assert_eq!(code, 400, "{op} {body}: {v}");
        }
    }
    assert_eq!(
        post_json(&url("consents"), &bank, r#"{"statement": "bm90IGNtcw=="}"#).0,
        400
    );

    // 現況確認: unchanged; the old signature certificate has a newer one; auth certificates 422.
    let live = |pem: &str| post_json(&url("certificates/liveness"), &checker, &cert(pem));
    let (code, v) = live(&sign2_pem);
    assert_eq!(code, 200, "{v}");
    conforms("Liveness", &v);
    assert_eq!(
        (
            v["kind"].as_str(),
            v["status"].as_str(),
            v["facts_changed"].as_bool(),
            v["newer_certificate"].as_bool()
        ),
        (Some("sign"), Some("good"), Some(false), Some(false)),
        "{v}"
    );
    let (code, v) = live(&sign1_pem);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["facts_changed"].as_bool(),
            v["newer_certificate"].as_bool()
        ),
        (Some("revoked"), Some(false), Some(true)),
        "{v}"
    );
    assert_eq!(live(&auth2_pem).0, 422);
    assert_eq!(
        post_json(&url("certificates/liveness"), &bank, &cert(&sign2_pem)).0,
        403
    );
    // A move: the facts changed (never shown), and the certificate is revoked.
    let rid = alice.to_string();
    j.json(&[
        "resident",
        "move",
        "--resident",
        &rid,
        "--address",
        "大阪府大阪市北区梅田1-1",
    ]);
    std::thread::sleep(Duration::from_millis(700)); // the server follows the revocation
    let (code, v) = live(&sign2_pem);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["facts_changed"].as_bool(),
            v["newer_certificate"].as_bool()
        ),
        (Some("revoked"), Some(true), Some(false)),
        "{v}"
    );
    assert!(!v.to_string().contains("大阪"), "never the new facts: {v}");

    // The operator's view: both consents, the bank's revoked; revoking Bob's stops it.
    let all = j.json(&["consent", "list"]);
    let consents = all["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 2, "{all}");
    let bank_row = consents
        .iter()
        .find(|c| c["consent_id"] == consent_id.as_str())
        .unwrap();
    assert!(bank_row["revoked_at"].is_string(), "{all}");
    assert_eq!(
        j.json(&["consent", "list", "--rp", &shop_id])["consents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let bob_auth = pem(bob_card.serial("auth").unwrap(), "bob-auth.pem");
    let (code, v) = link(&shop, &bob_auth);
    conforms("Linkage", &v);
    assert_eq!(
        (code, &v["predecessor"]),
        (200, &Value::Null),
        "a first card: {v}"
    );
    let v = j.json(&["consent", "revoke", "--id", &bob_consent_id]);
    assert!(v["revoked_at"].is_string(), "{v}");
    assert_eq!(link(&shop, &bob_auth).0, 403, "revoked by the operator: at once");
    let bad = j.run(&["consent", "revoke", "--id", "cns-0000000000000000"]);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        describe(&["consent", "revoke"], &bad)
    );
    let bad = j.run(&["consent", "make", "--card", s(&card.card_file), "--rp", "bank"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        describe(&["consent", "make"], &bad)
    );
    drop(server);
}

/// Copies of the consent statement `cms` (DER) that the relying party holding it can make without
/// the person, each still a valid signature over the same statement by the same certificate: an
/// unsigned attribute added, and the certificates changed (only the signer's; the signer's and
/// another). (Cards sign with RSA PKCS #1 v1.5; with ECDSA, (r, n − s) would be one more.)
fn re_encodings(cms: &[u8], other_cert: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use jpki_sig::signed_data::{self, ID_DATA, ParsedSignedData, SignedDataBuilder};

    let parsed = ParsedSignedData::parse(cms).unwrap();
    let signer = &parsed.signers[0];
    let cert = parsed.find_signer_certificate(signer).unwrap().to_vec();
    let content = parsed.econtent.as_deref().unwrap();
    let signed_attrs = signer.signed_attrs_der.as_deref().unwrap();
    let rebuild = |certs: &[Vec<u8>], signature: &[u8]| {
        SignedDataBuilder::new(&cert, signer.digest_alg().unwrap(), ID_DATA)
            .content(content)
            .certificates(certs)
            .build(signed_attrs, signature)
            .unwrap()
    };
    let attr = signed_data::attribute(
        der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
        &[&[0x05, 0x00]],
    )
    .unwrap();
    let out = vec![
        (
            "an unsigned attribute added",
            signed_data::set_unsigned_attribute(cms, &attr).unwrap(),
        ),
        (
            "only the signer's certificate",
            rebuild(std::slice::from_ref(&cert), &signer.signature),
        ),
        (
            "another certificate added",
            rebuild(&[cert.clone(), other_cert.to_vec()], &signer.signature),
        ),
    ];
    for (what, der) in &out {
        assert_ne!(der.as_slice(), cms, "{what}: a different encoding");
    }
    out
}

#[test]
fn a_withdrawn_consent_stays_withdrawn_however_it_is_re_encoded_and_revoked_signers_give_none() {
    if !have("curl") {
        return;
    }
    let j = Jpki::demo("p384");
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let bob_card = j.issue_card(j.add_resident(Person {
        name: "佐藤 次郎",
        ..Person::ADULT
    }));
    let auth_pem = std::fs::read_to_string(j.export_cert(&card.auth_serial, "auth.pem")).unwrap();
    let auth_ca = std::fs::read(j.export_root("auth", "auth-ca.pem")).unwrap();
    let auth_ca = jpki_pki::x509::certificates_from_pem_or_der(&auth_ca)
        .unwrap()
        .remove(0);
    let (bank_id, bank) = rp(&j, "Bank", "linkage");
    let server = Served::start(&j, &["serve"]);
    let url = |op: &str| format!("http://{}/v1/{op}", server.addr());
    let submit = |statement: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(statement);
        post_json(&url("consents"), &bank, &json!({ "statement": b64 }).to_string())
    };
    let link = || {
        post_json(
            &url("certificates/linkage"),
            &bank,
            &json!({ "certificate": auth_pem }).to_string(),
        )
    };
    let decode = |b64: &str| base64::engine::general_purpose::STANDARD.decode(b64).unwrap();

    // While it stands, every copy of the statement is the same consent.
    let first = decode(&make_consent(&j, &card.card_file, &bank_id, "first.p7s"));
    let (code, v) = submit(&first);
    assert_eq!(code, 200, "{v}");
    let first_id = v["consent_id"].as_str().unwrap().to_owned();
    let copies = re_encodings(&first, &auth_ca);
    for (what, copy) in &copies {
        let (code, v) = submit(copy);
        assert_eq!(
            (code, v["consent_id"].as_str()),
            (200, Some(first_id.as_str())),
            "{what}: still a valid signature, and the same consent: {v}"
        );
    }
    assert_eq!(
        j.json(&["consent", "list"])["consents"].as_array().unwrap().len(),
        1
    );

    // Withdrawn: neither the statement nor any copy of it brings the consent back.
    let (code, v) = post_json(
        &url("consents/revoke"),
        &bank,
        &json!({ "consent_id": first_id }).to_string(),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(link().0, 403);
    for (what, copy) in std::iter::once(&("the statement itself", first.clone())).chain(&copies) {
        let (code, v) = submit(copy);
        assert_eq!(code, 422, "{what}: {v}");
        assert!(v["error"].as_str().unwrap().contains("revoked"), "{what}: {v}");
    }
    assert_eq!(link().0, 403, "no copy brought it back");

    // A new statement is a new consent (a second later: another given_at).
    std::thread::sleep(Duration::from_millis(1100));
    let second = decode(&make_consent(&j, &card.card_file, &bank_id, "second.p7s"));
    std::thread::sleep(Duration::from_millis(1100));
    let third = decode(&make_consent(&j, &card.card_file, &bank_id, "third.p7s"));
    let bob = decode(&make_consent(&j, &bob_card.card_file, &bank_id, "bob.p7s"));
    let (code, v) = submit(&second);
    assert_eq!(code, 200, "{v}");
    let second_id = v["consent_id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id);

    // The signer's certificate put on hold later: the consent on file stays; a statement it signed
    // before the hold is refused now. Bob's, revoked before submission, too.
    let sign = card.sign_serial.as_deref().unwrap();
    let r = j.json(&["revoke", "--serial", sign, "--reason", "certificate-hold"]);
    assert_eq!(r["status"], "hold", "{r}");
    let bob_sign = bob_card.sign_serial.as_deref().unwrap();
    let r = j.json(&["revoke", "--serial", bob_sign, "--reason", "key-compromise"]);
    assert_eq!(r["status"], "revoked", "{r}");
    std::thread::sleep(Duration::from_millis(700)); // the server follows the revocations
    let (code, v) = link();
    assert_eq!(
        (code, v["consent_id"].as_str()),
        (200, Some(second_id.as_str())),
        "a later hold of the signer leaves the consent: {v}"
    );
    let (code, v) = submit(&third);
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("on hold"), "{v}");
    let (code, v) = submit(&bob);
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
    assert_eq!(
        j.json(&["consent", "list"])["consents"].as_array().unwrap().len(),
        2,
        "only the first and the second are on file"
    );
    drop(server);
}
