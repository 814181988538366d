//! Registering OpenID Connect clients with `jpki rp add --allow oidc`: with public keys
//! (private_key_jwt) or, for development, a client secret; and one-line refusals that leave
//! nothing registered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Jpki;

#[test]
fn oidc_clients_are_registered_with_keys_or_a_development_secret() {
    let j = Jpki::new();
    j.json(&["init", "--demo", "--kdf-iterations", "1000"]);
    // A relying party's public keys, as it would publish them.
    let keys = jpki_oidc::SigningKeys::generate().unwrap();
    let jwks = j.path("rp-jwks.json");
    std::fs::write(&jwks, serde_json::to_string(&keys.jwks()).unwrap()).unwrap();
    let bank = j.json(&[
        "rp",
        "add",
        "--name",
        "Bank",
        "--allow",
        "oidc",
        "--redirect-uri",
        "https://bank.example/cb",
        "--redirect-uri",
        "http://127.0.0.1:9000/cb",
        "--jwks",
        jwks.to_str().unwrap(),
        "--id-token-alg",
        "ES256",
    ]);
    assert_eq!(bank["client_id"], bank["rp_id"]);
    assert_eq!(bank["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(bank["id_token_signed_response_alg"], "ES256");
    assert_eq!(
        bank["redirect_uris"],
        serde_json::json!(["https://bank.example/cb", "http://127.0.0.1:9000/cb"])
    );
    assert!(bank.get("client_secret").is_none());
    let dev = j.json(&[
        "rp",
        "add",
        "--name",
        "Dev shop",
        "--allow",
        "oidc",
        "--redirect-uri",
        "http://localhost:8080/cb",
    ]);
    assert_eq!(dev["token_endpoint_auth_method"], "client_secret_basic");
    assert!(dev["client_secret"].as_str().unwrap().starts_with("jpki_cs_"));
    assert_eq!(dev["id_token_signed_response_alg"], "RS256", "the default");

    // Refusals: exit 2, one line naming the problem, nothing registered.
    let mut private = serde_json::to_value(keys.jwks()).unwrap();
    private["keys"][0]["d"] = "AAAA".into();
    let private_file = j.path("private.json");
    std::fs::write(&private_file, private.to_string()).unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--allow", "oidc"], "--redirect-uri"),
        (
            &["--allow", "oidc", "--redirect-uri", "http://bank.example/cb"],
            "loopback",
        ),
        (
            &[
                "--allow",
                "auth-status",
                "--redirect-uri",
                "https://bank.example/cb",
            ],
            "oidc capability",
        ),
        (
            &[
                "--allow",
                "oidc",
                "--redirect-uri",
                "https://bank.example/cb",
                "--jwks",
                private_file.to_str().unwrap(),
            ],
            "private part",
        ),
        (
            &["--allow", "oidc", "--redirect-uri", "https://bank.example/cb#x"],
            "fragment",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["rp", "add", "--name", "Nope"];
        all.extend_from_slice(args);
        let out = j.run(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let listed = j.json(&["rp", "list"]);
    assert_eq!(listed["relying_parties"].as_array().unwrap().len(), 2, "{listed}");
}
