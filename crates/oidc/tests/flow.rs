//! The authorization-code flow end to end against the provider's logic, and every refusal the
//! issue names: missing PKCE, a wrong code_verifier, a reused code, a wrong redirect_uri, a bad
//! client assertion (other key, other audience, replayed, expired), plus client_secret_basic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jpki_oidc::{
    AuthorizeError, Client, ClientAuth, Clients, Config, Provider, Scope, SigningAlg, SigningKeys, Subject,
    UserClaims, pkce,
};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const ISSUER: &str = "http://127.0.0.1:7700/oidc";
const REDIRECT: &str = "http://127.0.0.1:9000/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Registered(HashMap<String, Client>);

impl Clients for Registered {
    fn client(&self, id: &str) -> Option<Client> {
        self.0.get(id).cloned()
    }
}

/// A relying party's own P-256 key: its private half (to sign assertions) and public JWK.
fn rp_key(kid: &str) -> (EncodingKey, Jwk) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.into());
    (key, jwk)
}

struct World {
    provider: Provider,
    rp_signing: EncodingKey,
    other_signing: EncodingKey,
    now: OffsetDateTime,
}

fn world() -> World {
    let (rp_signing, rp_jwk) = rp_key("rp-1");
    let (other_signing, _) = rp_key("rp-1");
    let mut clients = HashMap::new();
    clients.insert(
        "bank".to_owned(),
        Client {
            id: "bank".into(),
            name: "Bank".into(),
            redirect_uris: vec![REDIRECT.into()],
            auth: ClientAuth::PrivateKeyJwt(JwkSet { keys: vec![rp_jwk] }),
            id_token_alg: SigningAlg::ES256,
        },
    );
    let secret_hash: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"s3cret:+/")
        .as_ref()
        .try_into()
        .unwrap();
    clients.insert(
        "dev".to_owned(),
        Client {
            id: "dev".into(),
            name: "Dev shop".into(),
            redirect_uris: vec![REDIRECT.into()],
            auth: ClientAuth::SecretBasic(secret_hash),
            id_token_alg: SigningAlg::RS256,
        },
    );
    World {
        provider: Provider::new(
            Config::new(ISSUER),
            SigningKeys::generate().unwrap(),
            Box::new(Registered(clients)),
        ),
        rp_signing,
        other_signing,
        now: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    }
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn auth_request(client: &str, scope: &str) -> Vec<(String, String)> {
    params(&[
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-1"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &pkce::s256(VERIFIER)),
        ("code_challenge_method", "S256"),
    ])
}

fn without(mut p: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    p.retain(|(k, _)| k != name);
    p
}

fn replace(mut p: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    for (k, v) in &mut p {
        if k == name {
            *v = value.to_owned();
        }
    }
    p
}

fn query(location: &str) -> HashMap<String, String> {
    let (_, q) = location.split_once('?').unwrap();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn subject(now: OffsetDateTime) -> Subject {
    Subject {
        sub: "0123456789abcdef0123456789abcdef".into(),
        claims: UserClaims {
            name: Some("山田　花子".into()),
            address: Some("東京都千代田区霞が関2-1-2".into()),
            birthdate: Some("1980-04-04".into()),
            gender: Some("female".into()),
        },
        auth_time: now,
    }
}

/// A code for `client` with `scope`, issued after the card login.
fn code(w: &World, client: &str, scope: &str) -> String {
    let req = w.provider.authorize(&auth_request(client, scope)).unwrap();
    let location = w.provider.grant(&req, subject(w.now), w.now).unwrap();
    assert!(location.starts_with(REDIRECT));
    let q = query(&location);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], ISSUER, "RFC 9207");
    q["code"].clone()
}

fn assertion(key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rp-1".into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn good_claims(w: &World, jti: &str) -> Value {
    json!({
        "iss": "bank", "sub": "bank",
        "aud": format!("{ISSUER}/protocol/openid-connect/token"),
        "exp": (w.now + Duration::minutes(5)).unix_timestamp(),
        "iat": w.now.unix_timestamp(),
        "jti": jti,
    })
}

fn token_params(code: &str, assertion: &str) -> Vec<(String, String)> {
    params(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ])
}

#[test]
fn a_login_yields_an_id_token_the_jwks_verifies_and_userinfo_by_scope() {
    let w = world();
    let d = w.provider.discovery();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["subject_types_supported"], json!(["pairwise"]));
    let code = code(&w, "bank", "openid name birthdate");
    let a = assertion(&w.rp_signing, &good_claims(&w, "j-1"));
    let t = w.provider.token(&token_params(&code, &a), None, w.now).unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "openid name birthdate");
    // The ID token verifies with the JWKS key its kid names, and says what OIDC Core requires.
    let id_token = t["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256, "the client registered ES256");
    let jwks: JwkSet = serde_json::from_value(w.provider.jwks()).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&["bank"]);
    v.set_issuer(&[ISSUER]);
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "0123456789abcdef0123456789abcdef");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["exp"], (w.now + Duration::minutes(10)).unix_timestamp());
    assert!(claims.get("name").is_none(), "facts come from userinfo only");
    // userinfo: sub plus the facts of the scopes granted, nothing else.
    let info = w
        .provider
        .userinfo(t["access_token"].as_str(), w.now + Duration::minutes(1))
        .unwrap();
    assert_eq!(
        info,
        json!({ "sub": "0123456789abcdef0123456789abcdef", "name": "山田　花子", "birthdate": "1980-04-04" })
    );
    assert_eq!(
        w.provider
            .userinfo(t["access_token"].as_str(), w.now + Duration::minutes(11))
            .unwrap_err()
            .error,
        "invalid_token",
        "expired"
    );
    assert_eq!(w.provider.userinfo(Some("nope"), w.now).unwrap_err().status, 401);
}

#[test]
fn authorization_requests_missing_what_the_profile_requires_are_refused() {
    let w = world();
    let base = auth_request("bank", "openid");
    // The client and redirect URI are checked first, and never redirected to.
    for bad in [
        replace(base.clone(), "client_id", "nobody"),
        replace(base.clone(), "redirect_uri", "http://127.0.0.1:9000/other"),
        without(base.clone(), "redirect_uri"),
    ] {
        let e = w.provider.authorize(&bad).unwrap_err();
        assert!(matches!(e, AuthorizeError::NoRedirect(_)), "{e:?}");
        assert_eq!(w.provider.error_location(&e), None);
    }
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (without(base.clone(), "code_challenge"), "invalid_request"),
        (
            replace(base.clone(), "code_challenge_method", "plain"),
            "invalid_request",
        ),
        (without(base.clone(), "code_challenge_method"), "invalid_request"),
        (without(base.clone(), "state"), "invalid_request"),
        (without(base.clone(), "nonce"), "invalid_request"),
        (replace(base.clone(), "scope", "name"), "invalid_scope"),
        (replace(base.clone(), "scope", "openid email"), "invalid_scope"),
        (
            replace(base.clone(), "response_type", "token"),
            "unsupported_response_type",
        ),
        (
            {
                let mut p = base.clone();
                p.push(("prompt".into(), "none".into()));
                p
            },
            "login_required",
        ),
        (
            {
                let mut p = base.clone();
                p.push(("state".into(), "again".into()));
                p
            },
            "invalid_request",
        ),
    ];
    for (bad, want) in cases {
        let e = w.provider.authorize(&bad).unwrap_err();
        let AuthorizeError::Redirect { error, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*error, want, "{bad:?}");
        let location = w.provider.error_location(&e).unwrap();
        assert!(location.starts_with(REDIRECT));
        assert_eq!(query(&location)["error"], want);
    }
    let ok = w
        .provider
        .authorize(&auth_request("bank", "openid gender name"))
        .unwrap();
    assert_eq!(ok.scopes, vec![Scope::OpenId, Scope::Name, Scope::Gender]);
    assert!(ok.wants_personal_data());
    assert!(!w.provider.authorize(&base).unwrap().wants_personal_data());
    let denied = query(&w.provider.deny(&ok));
    assert_eq!(
        (denied["error"].as_str(), denied["state"].as_str()),
        ("access_denied", "st-1")
    );
}

#[test]
fn token_requests_are_refused_per_the_specs() {
    let w = world();
    let a = |jti: &str| assertion(&w.rp_signing, &good_claims(&w, jti));
    // Missing PKCE verifier and a wrong one.
    let c = code(&w, "bank", "openid");
    let e = w
        .provider
        .token(
            &without(token_params(&c, &a("p-1")), "code_verifier"),
            None,
            w.now,
        )
        .unwrap_err();
    assert_eq!((e.status, e.error), (400, "invalid_request"));
    let e = w
        .provider
        .token(
            &replace(token_params(&c, &a("p-2")), "code_verifier", &"x".repeat(43)),
            None,
            w.now,
        )
        .unwrap_err();
    assert_eq!(e.error, "invalid_grant");
    // A wrong redirect_uri.
    let e = w
        .provider
        .token(
            &replace(
                token_params(&c, &a("p-3")),
                "redirect_uri",
                "http://127.0.0.1:9000/other",
            ),
            None,
            w.now,
        )
        .unwrap_err();
    assert_eq!(e.error, "invalid_grant");
    // The right exchange works once; a second one is refused and revokes the token.
    let t = w
        .provider
        .token(&token_params(&c, &a("p-4")), None, w.now)
        .unwrap();
    let e = w
        .provider
        .token(&token_params(&c, &a("p-5")), None, w.now)
        .unwrap_err();
    assert_eq!(e.error, "invalid_grant");
    assert!(e.description.contains("already used"), "{e}");
    assert!(
        w.provider.userinfo(t["access_token"].as_str(), w.now).is_err(),
        "the first token is revoked"
    );
    // An expired code.
    let old = code(&w, "bank", "openid");
    let e = w
        .provider
        .token(
            &token_params(&old, &a("p-6")),
            None,
            w.now + Duration::seconds(61),
        )
        .unwrap_err();
    assert_eq!(e.error, "invalid_grant");

    // Bad client assertions: 401 invalid_client, and the code stays usable.
    let c = code(&w, "bank", "openid");
    let bad_assertions = [
        assertion(&w.other_signing, &good_claims(&w, "b-1")),
        assertion(&w.rp_signing, &{
            let mut c = good_claims(&w, "b-2");
            c["aud"] = json!("http://elsewhere/token");
            c
        }),
        assertion(&w.rp_signing, &{
            let mut c = good_claims(&w, "b-3");
            c["exp"] = json!((w.now - Duration::minutes(5)).unix_timestamp());
            c
        }),
        assertion(&w.rp_signing, &{
            let mut c = good_claims(&w, "b-4");
            c["sub"] = json!("someone-else");
            c
        }),
        assertion(&w.rp_signing, &{
            let mut c = good_claims(&w, "b-5");
            c.as_object_mut().unwrap().remove("jti");
            c
        }),
        "not.a.jwt".to_owned(),
        // alg confusion: unsigned, and HMAC keyed with something public.
        {
            use base64::Engine as _;
            let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "rp-1"})),
                b64(&good_claims(&w, "b-6"))
            )
        },
        {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("rp-1".into());
            jsonwebtoken::encode(
                &header,
                &good_claims(&w, "b-7"),
                &EncodingKey::from_secret(b"rp-1"),
            )
            .unwrap()
        },
        {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some("unknown-kid".into());
            jsonwebtoken::encode(&header, &good_claims(&w, "b-8"), &w.rp_signing).unwrap()
        },
        assertion(&w.rp_signing, &{
            let mut c = good_claims(&w, "b-9");
            c["exp"] = json!(253_402_300_799_i64);
            c
        }),
    ];
    for bad in &bad_assertions {
        let e = w.provider.token(&token_params(&c, bad), None, w.now).unwrap_err();
        assert_eq!((e.status, e.error), (401, "invalid_client"), "{e}");
    }
    let replayed = a("r-1");
    w.provider
        .token(&token_params(&c, &replayed), None, w.now)
        .unwrap();
    let c2 = code(&w, "bank", "openid");
    let e = w
        .provider
        .token(&token_params(&c2, &replayed), None, w.now)
        .unwrap_err();
    assert!(e.description.contains("replay"), "{e}");
    // No client authentication at all.
    let e = w
        .provider
        .token(&without(token_params(&c2, ""), "client_assertion"), None, w.now)
        .unwrap_err();
    assert_eq!(e.status, 401);
    // Another client cannot redeem the bank's code.
    let e = w
        .provider
        .token(
            &without(
                without(token_params(&c2, ""), "client_assertion"),
                "client_assertion_type",
            ),
            Some(&basic("dev", "s3cret:+/")),
            w.now,
        )
        .unwrap_err();
    assert_eq!(e.error, "invalid_grant");
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

#[test]
fn development_clients_use_client_secret_basic_and_get_rs256() {
    let w = world();
    let c = code(&w, "dev", "openid address");
    let form = params(&[
        ("grant_type", "authorization_code"),
        ("code", &c),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    let e = w
        .provider
        .token(&form, Some(&basic("dev", "wrong")), w.now)
        .unwrap_err();
    assert_eq!((e.status, e.error), (401, "invalid_client"));
    let t = w
        .provider
        .token(&form, Some(&basic("dev", "s3cret:+/")), w.now)
        .unwrap();
    let header = jsonwebtoken::decode_header(t["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let info = w.provider.userinfo(t["access_token"].as_str(), w.now).unwrap();
    assert_eq!(info["address"]["formatted"], "東京都千代田区霞が関2-1-2");
    // A client with keys may not fall back to a secret.
    let c = code(&w, "bank", "openid");
    let mut form = form;
    for (k, v) in &mut form {
        if k == "code" {
            *v = c.clone();
        }
    }
    let e = w
        .provider
        .token(&form, Some(&basic("bank", "anything")), w.now)
        .unwrap_err();
    assert_eq!(e.status, 401);
}
