//! Validation reports modelled on ETSI EN 319 102-1 (and the EU DSS "simple report"): a main
//! indication, a sub-indication naming the reason in the standard's words, plain-language reasons,
//! and what the verdict rests on (signing time and its proof, signer, chain, revocation source).
use serde::Serialize;

use jpki_pki::JpkiSan;

/// The main status (EN 319 102-1 §5.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    /// Every check passed.
    TotalPassed,
    /// The signature is proven invalid (tampered, not by this key, signed after revocation, …).
    TotalFailed,
    /// The checks could not conclude either way (missing chain, revocation, proof of time, …).
    Indeterminate,
}

impl Indication {
    /// The standard's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TotalPassed => "TOTAL_PASSED",
            Self::TotalFailed => "TOTAL_FAILED",
            Self::Indeterminate => "INDETERMINATE",
        }
    }
}

/// Sub-indications of EN 319 102-1 Table 5 and 6 that this verifier reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum SubIndication {
    /// FAILED: the signature is not in the format it claims (not CAdES/PAdES baseline).
    FormatFailure,
    /// FAILED: the signed data's digest does not match (content changed).
    HashFailure,
    /// FAILED: the signature value does not verify with the signer's public key.
    SigCryptoFailure,
    /// FAILED: the signing certificate was revoked and the signature is proven to be made later.
    Revoked,
    /// INDETERMINATE: the signing certificate had expired when the signature is proven to be made
    /// (EN 319 102-1 V1.3.1 and pyHanko file EXPIRED under INDETERMINATE: a later renewal of the
    /// validation data cannot fix it, but the signer may hold another proof).
    Expired,
    /// FAILED: the signature was made before the signing certificate was valid.
    NotYetValid,
    /// INDETERMINATE: the signing certificate cannot be identified or does not match the reference
    /// the signature carries.
    NoSigningCertificateFound,
    /// INDETERMINATE: no chain from the signing certificate to a trust anchor.
    NoCertificateChainFound,
    /// INDETERMINATE: the chain breaks a validation constraint (certificate kind, key usage, CA rules).
    ChainConstraintsFailure,
    /// INDETERMINATE: the signing certificate is revoked and nothing proves the signature existed before.
    RevokedNoPoe,
    /// INDETERMINATE: an intermediate CA is revoked and nothing proves the signature existed before.
    RevokedCaNoPoe,
    /// INDETERMINATE: the signing certificate is outside its validity period now and nothing proves
    /// the signature was made within it.
    OutOfBoundsNoPoe,
    /// INDETERMINATE: revocation status cannot be decided now (no, stale, or on-hold information).
    TryLater,
}

impl SubIndication {
    /// The standard's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FormatFailure => "FORMAT_FAILURE",
            Self::HashFailure => "HASH_FAILURE",
            Self::SigCryptoFailure => "SIG_CRYPTO_FAILURE",
            Self::Revoked => "REVOKED",
            Self::Expired => "EXPIRED",
            Self::NotYetValid => "NOT_YET_VALID",
            Self::NoSigningCertificateFound => "NO_SIGNING_CERTIFICATE_FOUND",
            Self::NoCertificateChainFound => "NO_CERTIFICATE_CHAIN_FOUND",
            Self::ChainConstraintsFailure => "CHAIN_CONSTRAINTS_FAILURE",
            Self::RevokedNoPoe => "REVOKED_NO_POE",
            Self::RevokedCaNoPoe => "REVOKED_CA_NO_POE",
            Self::OutOfBoundsNoPoe => "OUT_OF_BOUNDS_NO_POE",
            Self::TryLater => "TRY_LATER",
        }
    }

    /// The main indication this sub-indication belongs to.
    pub fn indication(self) -> Indication {
        match self {
            Self::FormatFailure
            | Self::HashFailure
            | Self::SigCryptoFailure
            | Self::Revoked
            | Self::NotYetValid => Indication::TotalFailed,
            _ => Indication::Indeterminate,
        }
    }
}

/// When the signature was made, and how that is known.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SigningTime {
    /// The time the signer claims (CMS signing-time attribute, or the PDF's /M), RFC 3339.
    pub claimed: Option<String>,
    /// The time proven by a valid signature time-stamp, RFC 3339.
    pub proven: Option<String>,
    /// What proves it, in words ("time-stamp token serial … by …", or "none: …").
    pub proof: String,
}

/// The signer's basic four information, decoded from the JPKI subjectAltName.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// 氏名.
    pub name: Option<String>,
    /// 住所.
    pub address: Option<String>,
    /// Birth date, ISO 8601 (`YYYY-MM-DD`), when known.
    pub birth_date: Option<String>,
    /// The era of the birth date as the certificate records it (明治, 大正, 昭和, 平成, 令和, or unknown).
    pub birth_era: Option<String>,
    /// Sex: "male", "female", "not applicable" or "unknown" (JIS X 0303 codes 1, 2, 9, 0).
    pub sex: Option<String>,
    /// The raw SAN fields, as carried.
    pub raw: JpkiSan,
}

impl Facts {
    /// Decodes the SAN fields.
    pub fn from_san(san: &JpkiSan) -> Self {
        let (birth_date, birth_era) = match san.birth_date.as_deref() {
            Some(b) if b.len() == 9 && b.is_ascii() => {
                let era = match &b[..1] {
                    "1" => "明治 (Meiji)",
                    "2" => "大正 (Taishō)",
                    "3" => "昭和 (Shōwa)",
                    "4" => "平成 (Heisei)",
                    "5" => "令和 (Reiwa)",
                    _ => "unknown",
                };
                (
                    Some(format!("{}-{}-{}", &b[1..5], &b[5..7], &b[7..9])),
                    Some(era.to_owned()),
                )
            }
            _ => (None, None),
        };
        let sex = san.sex.as_deref().map(|s| {
            match s {
                "1" => "male",
                "2" => "female",
                "9" => "not applicable",
                _ => "unknown",
            }
            .to_owned()
        });
        Self {
            name: san.name.clone(),
            address: san.address.clone(),
            birth_date,
            birth_era,
            sex,
            raw: san.clone(),
        }
    }
}

/// The signing certificate.
#[derive(Debug, Clone, Serialize)]
pub struct Signer {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// "sign" (JPKI signature certificate), "auth" (user authentication), "ca" or "other".
    pub kind: String,
    /// Key type ("RSA-2048", "P-384", …).
    pub key: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// SHA-256 of the certificate, hex.
    pub sha256: String,
    /// The basic four information (signature certificates only).
    pub facts: Option<Facts>,
}

/// The revocation answer the verdict rests on.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    /// "good", "revoked", "on-hold" or "unknown".
    pub status: String,
    /// Where the answer came from (CRL number and file, thisUpdate, nextUpdate; or why there is none).
    pub source: String,
    /// Revocation time, RFC 3339.
    pub revoked_at: Option<String>,
    /// RFC 5280 reason name.
    pub reason: Option<String>,
}

/// A signature time-stamp found on the signature.
#[derive(Debug, Clone, Serialize)]
pub struct Timestamp {
    /// genTime, RFC 3339.
    pub time: String,
    /// The TSA certificate's subject.
    pub tsa: Option<String>,
    /// Token serial, hex.
    pub serial: String,
    /// "valid", or "invalid: why".
    pub status: String,
}

/// The validation report of one signature.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Main indication.
    pub indication: Indication,
    /// Sub-indication (none when passed).
    pub sub_indication: Option<SubIndication>,
    /// Why, in plain words; the first explains the sub-indication.
    pub reasons: Vec<String>,
    /// Things worth knowing that did not decide the verdict.
    pub warnings: Vec<String>,
    /// "CAdES-BASELINE-B", "CAdES-BASELINE-T", "CAdES-BASELINE-LT" (time-stamped and carrying
    /// revocation data), "PAdES-BASELINE-B/T/LT", "CMS", ….
    pub format: String,
    /// For PDFs: the signature field's name.
    pub field: Option<String>,
    /// The time the validation was made for (the verifier's now), RFC 3339.
    pub validation_time: String,
    /// Signing time and its proof.
    pub signing_time: SigningTime,
    /// The signing certificate, when found.
    pub signer: Option<std::sync::Arc<Signer>>,
    /// The certification path, signer first, trust anchor last (subjects).
    pub chain: Vec<String>,
    /// The signing certificate's revocation status.
    pub revocation: Option<Revocation>,
    /// The signature time-stamp, when present.
    pub timestamp: Option<Timestamp>,
    /// Digest algorithm of the signature.
    pub digest_algorithm: Option<String>,
}

impl Report {
    /// The process exit status `jpki verify` uses: 0 passed, 1 failed, 3 indeterminate.
    pub fn exit_code(&self) -> u8 {
        match self.indication {
            Indication::TotalPassed => 0,
            Indication::TotalFailed => 1,
            Indication::Indeterminate => 3,
        }
    }

    /// Human-readable text, one fact per line.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let head = match &self.field {
            Some(f) => format!("Signature {f}"),
            None => "Signature".to_owned(),
        };
        let _ = match self.sub_indication {
            Some(sub) => writeln!(s, "{head}: {} / {}", self.indication.as_str(), sub.as_str()),
            None => writeln!(s, "{head}: {}", self.indication.as_str()),
        };
        for r in &self.reasons {
            let _ = writeln!(s, "  Reason: {r}");
        }
        let _ = writeln!(s, "  Format: {}", self.format);
        if let Some(signer) = &self.signer {
            let kind = match signer.kind.as_str() {
                "sign" => "JPKI signature certificate",
                "auth" => "JPKI user-authentication certificate",
                "ca" => "CA certificate",
                _ => "certificate outside the JPKI profile",
            };
            let _ = writeln!(
                s,
                "  Signer: {} ({kind}, serial {})",
                signer.subject, signer.serial
            );
            let _ = writeln!(
                s,
                "  Certificate: {} issued by {}, valid {} to {}",
                signer.key, signer.issuer, signer.not_before, signer.not_after
            );
            if let Some(f) = &signer.facts {
                let na = || "-".to_owned();
                let _ = writeln!(s, "  Name: {}", f.name.clone().unwrap_or_else(na));
                let _ = writeln!(s, "  Address: {}", f.address.clone().unwrap_or_else(na));
                let _ = writeln!(
                    s,
                    "  Birth date: {}{}",
                    f.birth_date.clone().unwrap_or_else(na),
                    f.birth_era
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
                let _ = writeln!(s, "  Sex: {}", f.sex.clone().unwrap_or_else(na));
            }
        }
        let st = &self.signing_time;
        match (&st.proven, &st.claimed) {
            (Some(p), Some(c)) => {
                let _ = writeln!(s, "  Signing time: {p} (proven by {}; claimed {c})", st.proof);
            }
            (Some(p), None) => {
                let _ = writeln!(s, "  Signing time: {p} (proven by {})", st.proof);
            }
            (None, Some(c)) => {
                let _ = writeln!(
                    s,
                    "  Signing time: {c} (claimed by the signer, not proven: {})",
                    st.proof
                );
            }
            (None, None) => {
                let _ = writeln!(s, "  Signing time: unknown ({})", st.proof);
            }
        }
        if let Some(t) = &self.timestamp {
            let _ = writeln!(
                s,
                "  Time-stamp: {} by {}, serial {}: {}",
                t.time,
                t.tsa.as_deref().unwrap_or("unknown TSA"),
                t.serial,
                t.status
            );
        }
        if let Some(r) = &self.revocation {
            let when = r
                .revoked_at
                .as_ref()
                .map(|t| {
                    format!(
                        " at {t}{}",
                        r.reason.as_ref().map(|x| format!(" ({x})")).unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(s, "  Revocation: {}{when}, from {}", r.status, r.source);
        }
        if !self.chain.is_empty() {
            let _ = writeln!(s, "  Chain: {}", self.chain.join(" <- "));
        }
        let _ = writeln!(s, "  Validation time: {}", self.validation_time);
        for w in &self.warnings {
            let _ = writeln!(s, "  Warning: {w}");
        }
        s
    }
}
