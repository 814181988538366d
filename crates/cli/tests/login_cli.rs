//! Logging in with the card, end to end with real parts: `jpki serve` as the OpenID Connect
//! provider, `jpki card agent` with a card file, and Authlib as the relying party (its ID token
//! validated with joserfc against the JWKS) with `requests` as the person's browser.
//!
//! - The flow completes and userinfo gives exactly the facts asked for.
//! - Missing PKCE, a wrong code_verifier, a reused code (whose tokens are then revoked), a wrong
//!   redirect_uri and a bad client assertion are each refused as the specs say.
//! - Two relying parties get different `sub` values for the same person; one gets the same `sub`
//!   after the person's certificates are renewed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{AUTH_PIN, Jpki, Person, SIGN_PASSWORD, Served, interop_required, s, venv_python_with};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc_rp.py")
}

/// An EC P-256 key for a relying party (openssl), and its public JWKS (joserfc).
fn rp_key(j: &Jpki, python: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = j.path(format!("{name}.key.pem"));
    let st = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let jwks = j.path(format!("{name}.jwks.json"));
    let out = Command::new(python)
        .arg(script())
        .args(["jwks", s(&key), s(&jwks)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (key, jwks)
}

fn login(
    python: &Path,
    discovery: &str,
    client: &str,
    key: &Path,
    scope: &str,
    refusals: Option<&Path>,
) -> Value {
    try_login(python, discovery, client, key, scope, refusals).unwrap_or_else(|e| panic!("{e}"))
}

fn try_login(
    python: &Path,
    discovery: &str,
    client: &str,
    key: &Path,
    scope: &str,
    refusals: Option<&Path>,
) -> Result<Value, String> {
    let mut c = Command::new(python);
    c.arg(script()).args([
        "login",
        discovery,
        client,
        s(key),
        REDIRECT,
        scope,
        AUTH_PIN,
        SIGN_PASSWORD,
    ]);
    if let Some(other) = refusals {
        c.args(["--refusals", s(other)]);
    }
    let out = c.output().unwrap();
    if !out.status.success() {
        return Err(format!(
            "oidc_rp.py login {client} {scope:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn authlib_logs_in_with_the_card_and_every_refusal_holds() {
    let Some(python) = venv_python_with("authlib, joserfc, requests") else {
        assert!(
            !interop_required(),
            "authlib and joserfc are missing from the venv (scripts/test.sh installs them)"
        );
        eprintln!("skipped: no authlib/joserfc in the venv");
        return;
    };
    let j = Jpki::demo("rsa2048");
    let person = j.add_resident(Person::ADULT);
    let card = j.issue_card(person);
    let (bank_key, bank_jwks) = rp_key(&j, &python, "bank");
    let (shop_key, shop_jwks) = rp_key(&j, &python, "shop");
    let (impostor_key, _) = rp_key(&j, &python, "impostor");
    let register = |name: &str, jwks: &Path, alg: &str| -> String {
        let v = j.json(&[
            "rp",
            "add",
            "--name",
            name,
            "--allow",
            "oidc",
            "--redirect-uri",
            REDIRECT,
            "--jwks",
            s(jwks),
            "--id-token-alg",
            alg,
        ]);
        v["client_id"].as_str().unwrap().to_owned()
    };
    let bank = register("Bank", &bank_jwks, "ES256");
    let shop = register("Shop", &shop_jwks, "RS256");

    // The agent signs documents only for the provider it is told of: the server's port is
    // chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = format!("http://127.0.0.1:{port}");
    let agent = Served::start(
        &j,
        &[
            "card",
            "agent",
            "--card",
            s(&card.card_file),
            "--provider",
            &provider,
        ],
    );
    let agent_url = agent.ready["url"].as_str().unwrap().to_owned();
    let server = Served::start_at(
        &j,
        &["serve", "--card-agent", &agent_url],
        &format!("127.0.0.1:{port}"),
    );
    let issuer = server.ready["oidc_issuer"].as_str().unwrap().to_owned();
    assert_eq!(issuer, format!("http://{}/oidc", server.addr()));
    let discovery = format!("{issuer}/.well-known/openid-configuration");

    // The bank asks for the four facts: the signature certificate and its password are used.
    let first = login(
        &python,
        &discovery,
        &bank,
        &bank_key,
        "openid name address birthdate gender",
        Some(&impostor_key),
    );
    let sub = first["id_token"]["sub"].as_str().unwrap().to_owned();
    assert_eq!(first["alg"], "ES256");
    assert_eq!(first["id_token"]["iss"], issuer.as_str());
    assert_eq!(first["userinfo"]["sub"], sub.as_str());
    assert_eq!(first["userinfo"]["name"], Person::ADULT.name);
    assert_eq!(
        first["userinfo"]["address"]["formatted"],
        Person::ADULT.address,
        "OpenID Connect Core §5.1.1"
    );
    assert_eq!(first["userinfo"]["birthdate"], Person::ADULT.birth);
    assert_eq!(first["userinfo"]["gender"], "male");
    let consent_page = first["consent_page"].as_str().unwrap();
    assert!(consent_page.contains(Person::ADULT.name) && consent_page.contains(&sub));
    let r = &first["refusals"];
    assert_eq!(r["reused_code"], "invalid_grant", "{r}");
    assert_eq!(
        r["revoked_after_reuse"], 401,
        "tokens from a reused code are revoked: {r}"
    );
    assert_eq!(r["wrong_verifier"], "invalid_grant", "{r}");
    assert_eq!(r["bad_assertion"], "invalid_client", "{r}");
    assert_eq!(
        r["missing_pkce"],
        serde_json::json!([303, ["invalid_request"]]),
        "{r}"
    );
    assert_eq!(r["wrong_redirect_uri"], serde_json::json!([400, false]), "{r}");
    assert_eq!(
        r["first_tx_decides"], 400,
        "the authorization page's id decides nothing: {r}"
    );
    assert_eq!(
        r["bad_card_answer"],
        serde_json::json!([422, ["access_denied"], true]),
        "a failed card check links back with access_denied and the state: {r}"
    );

    // A sign transaction: the bank asks this person (its sub) to sign a contract's digest; the
    // card signs with the signature key after the password; the bank fetches and verifies it.
    let out = Command::new(&python)
        .arg(script())
        .args([
            "sign",
            &discovery,
            &bank,
            s(&bank_key),
            REDIRECT,
            &sub,
            SIGN_PASSWORD,
            &shop,
            s(&shop_key),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oidc_rp.py sign: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let signed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(signed["pending"], "pending", "{signed}");
    assert_eq!(signed["shown_description"], true, "{signed}");
    assert_eq!(signed["redirect"][0], 200, "a page linking back: {signed}");
    assert_eq!(signed["redirect"][1]["state"][0], "sign-state-1", "{signed}");
    assert_eq!(signed["status"], "signed", "{signed}");
    assert_eq!(signed["verified"], true, "{signed}");
    assert_eq!(
        signed["other_client"], 400,
        "another client cannot fetch it: {signed}"
    );
    assert_eq!(
        signed["wrong_signer"],
        serde_json::json!([403, "pending"]),
        "{signed}"
    );
    assert_eq!(
        signed["declined"],
        serde_json::json!([303, ["access_denied"], "declined"]),
        "{signed}"
    );
    assert_eq!(
        signed["no_digest"],
        serde_json::json!([400, "invalid_request"]),
        "{signed}"
    );

    // The shop asks for nothing personal: only the authentication certificate, a different sub,
    // no facts.
    let shop_login = login(&python, &discovery, &shop, &shop_key, "openid", None);
    assert_eq!(shop_login["alg"], "RS256");
    let shop_sub = shop_login["id_token"]["sub"].as_str().unwrap();
    assert_ne!(shop_sub, sub, "two relying parties never share an identifier");
    assert!(
        shop_login["userinfo"].get("name").is_none(),
        "{}",
        shop_login["userinfo"]
    );

    // Renewed certificates (new keys, new serials): the bank still sees the same person.
    // The server learns of new certificates from the registry's change log within a second.
    j.renew(&card, "both");
    let mut tries = 0;
    let after = loop {
        match try_login(&python, &discovery, &bank, &bank_key, "openid", None) {
            Ok(v) => break v,
            Err(e) if tries < 10 && e.contains("certificate is unknown") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        after["id_token"]["sub"],
        sub.as_str(),
        "the same sub after renewal"
    );
    drop(server);
    drop(agent);
}
