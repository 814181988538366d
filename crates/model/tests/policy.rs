//! Certificate kinds, revocation reasons and secrets.

use jpki_model::{AssistPin, AuthPin, CertKind, RevocationReason, SignPassword};
use proptest::prelude::*;
use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as DeError, StrDeserializer};

fn de<'a, T: Deserialize<'a>>(s: &'a str) -> Result<T, DeError> {
    T::deserialize(s.into_deserializer() as StrDeserializer<'a, DeError>)
}

#[test]
fn cert_kind() {
    for (s, k) in [("sign", CertKind::Signature), ("auth", CertKind::Authentication)] {
        assert_eq!(s.parse::<CertKind>().unwrap(), k);
        assert_eq!(k.as_str(), s);
        assert_eq!(k.to_string(), s);
        assert_eq!(de::<CertKind>(s).unwrap(), k);
    }
    assert_eq!(
        "Sign".parse::<CertKind>().unwrap_err().to_string(),
        "certificate kind: Sign is not one of sign, auth"
    );
    assert!(
        de::<CertKind>("x")
            .unwrap_err()
            .to_string()
            .starts_with("certificate kind: x")
    );
}

#[test]
fn revocation_reasons() {
    let table = [
        (0, "unspecified", "unspecified"),
        (1, "key-compromise", "keyCompromise"),
        (2, "ca-compromise", "cACompromise"),
        (3, "affiliation-changed", "affiliationChanged"),
        (4, "superseded", "superseded"),
        (5, "cessation-of-operation", "cessationOfOperation"),
        (6, "certificate-hold", "certificateHold"),
        (8, "remove-from-crl", "removeFromCRL"),
        (9, "privilege-withdrawn", "privilegeWithdrawn"),
        (10, "aa-compromise", "aACompromise"),
    ];
    assert_eq!(RevocationReason::ALL.len(), table.len());
    for (reason, (code, cli, rfc)) in RevocationReason::ALL.into_iter().zip(table) {
        assert_eq!(reason.code(), code);
        assert_eq!(RevocationReason::from_code(code), Some(reason));
        assert_eq!(reason.cli_name(), cli);
        assert_eq!(reason.to_string(), cli);
        assert_eq!(reason.rfc_name(), rfc);
        assert_eq!(cli.parse::<RevocationReason>().unwrap(), reason);
        assert_eq!(de::<RevocationReason>(cli).unwrap(), reason);
    }
    for code in [7, 11, 255] {
        assert_eq!(RevocationReason::from_code(code), None);
    }
    assert_eq!(
        "keyCompromise"
            .parse::<RevocationReason>()
            .unwrap_err()
            .to_string(),
        "reason: keyCompromise is not one of unspecified, key-compromise, ca-compromise, \
         affiliation-changed, superseded, cessation-of-operation, certificate-hold, remove-from-crl, \
         privilege-withdrawn, aa-compromise"
    );
}

#[test]
fn pins() {
    let pin: AuthPin = "0123".parse().unwrap();
    assert_eq!(pin.as_bytes(), b"0123");
    assert_eq!(format!("{pin:?}"), "AuthPin(****)");
    assert_eq!(pin, "0123".parse().unwrap());
    assert_ne!(pin, "0124".parse().unwrap());
    let assist: AssistPin = "9999".parse().unwrap();
    assert_eq!(assist.as_bytes(), b"9999");
    assert_eq!(format!("{assist:?}"), "AssistPin(****)");
    for bad in ["", "123", "12345", "12a4", " 123", "１２３４"] {
        assert_eq!(
            bad.parse::<AuthPin>().unwrap_err().to_string(),
            "auth PIN: must be exactly 4 digits"
        );
        assert_eq!(
            bad.parse::<AssistPin>().unwrap_err().to_string(),
            "assist PIN: must be exactly 4 digits"
        );
    }
}

#[test]
fn sign_password() {
    let pw: SignPassword = "abc123".parse().unwrap();
    assert_eq!(pw.as_bytes(), b"ABC123");
    assert_eq!(pw, "ABC123".parse().unwrap());
    assert_eq!(format!("{pw:?}"), "SignPassword(****)");
    assert!("A".repeat(16).parse::<SignPassword>().is_ok());
    for bad in [
        "ABC12",
        &"A".repeat(17),
        "ABC 123",
        "ABC-123",
        "ÄBC123",
        "ＡＢＣ１２３",
        "",
    ] {
        let msg = bad.parse::<SignPassword>().unwrap_err().to_string();
        assert_eq!(msg, "signing password: must be 6 to 16 characters of A-Z and 0-9");
    }
}

proptest! {
    #[test]
    fn secrets_never_leak_through_errors_or_debug(
        s in prop_oneof!["[0-9]{3,20}", "[a-zA-Z]{1,8}[0-9]{1,8}[a-zA-Z0-9]{0,8}"],
    ) {
        let shown = [
            s.parse::<AuthPin>().map(|p| format!("{p:?}")).unwrap_or_else(|e| e.to_string()),
            s.parse::<AssistPin>().map(|p| format!("{p:?}")).unwrap_or_else(|e| e.to_string()),
            s.parse::<SignPassword>().map(|p| format!("{p:?}")).unwrap_or_else(|e| e.to_string()),
        ];
        for msg in shown {
            prop_assert!(!msg.contains(s.as_str()) && !msg.contains(&s.to_ascii_uppercase()), "{}", msg);
        }
    }

    #[test]
    fn sign_password_accepts_exactly_its_alphabet(s in "[A-Za-z0-9]{6,16}") {
        let pw: SignPassword = s.parse().unwrap();
        let upper = s.to_ascii_uppercase();
        prop_assert_eq!(pw.as_bytes(), upper.as_bytes());
    }
}
