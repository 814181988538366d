//! PKCE (RFC 7636) with the S256 method only, and the syntax checks on the values a client sends.
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

/// Whether `c` is an RFC 3986 unreserved character (what verifiers and challenges are made of).
fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// A syntactically valid code_verifier: 43 to 128 unreserved characters (RFC 7636 §4.1).
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(unreserved)
}

/// A syntactically valid S256 code_challenge: the base64url (unpadded) of 32 bytes.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(unreserved)
}

/// The S256 challenge of `verifier`: BASE64URL(SHA-256(ASCII(verifier))).
pub fn s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Whether `verifier` is well formed and its S256 challenge is `challenge` (compared in constant
/// time).
pub fn verify(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier) && bool::from(s256(verifier).as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn the_rfc_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!verify("short", &s256("short")), "a verifier under 43 characters");
        assert!(valid_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!valid_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c="));
    }

    proptest! {
        #[test]
        fn every_valid_verifier_matches_only_its_own_challenge(
            v in "[A-Za-z0-9._~-]{43,128}",
            w in "[A-Za-z0-9._~-]{43,128}",
        ) {
            prop_assert!(valid_verifier(&v));
            prop_assert!(valid_challenge(&s256(&v)));
            prop_assert!(verify(&v, &s256(&v)));
            if v != w {
                prop_assert!(!verify(&w, &s256(&v)));
            }
        }

        #[test]
        fn anything_else_is_refused(v in ".{0,200}") {
            let ok = (43..=128).contains(&v.len()) && v.bytes().all(unreserved);
            prop_assert_eq!(valid_verifier(&v), ok);
        }
    }
}
