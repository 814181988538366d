//! Where the platform publishes what certificates point to: CRLs (full, sharded, delta), ARLs,
//! OCSP and CA certificates, all under one public base URL.
//!
//! Every CA key generation (see [`crate::cert`] on rollover) has its own set: generation 1 keeps the
//! paths it always had (`crl/sign-arl.crl`, `crl/sign/7.crl`, `ca/sign.cer`, `ocsp/sign`); generation
//! n ≥ 2 inserts `-g<n>` after the kind (`crl/sign-g2-arl.crl`, `crl/sign-g2/7.crl`, `ca/sign-g2.cer`,
//! `ocsp/sign-g2`). Link certificates are published at `ca/sign-link-g1-g2.cer` (issuer generation
//! first).
use jpki_model::CertKind;

use crate::PkiError;

/// The public base URL and the layout of everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    base: String,
}

impl Endpoints {
    /// Default base URL, also `jpki serve`'s default listen address.
    pub const DEFAULT_BASE: &'static str = "http://127.0.0.1:7700";

    /// Checks that `base` is an absolute http(s) URL of printable ASCII without query or fragment.
    pub fn new(base: &str) -> Result<Self, PkiError> {
        let b = base.trim_end_matches('/');
        let rest = b
            .strip_prefix("http://")
            .or_else(|| b.strip_prefix("https://"))
            .ok_or_else(|| PkiError::Url(format!("{base:?} must start with http:// or https://")))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(PkiError::Url(format!("{base:?} has no host")));
        }
        if let Some(c) = b
            .chars()
            .find(|c| !c.is_ascii_graphic() || matches!(c, '?' | '#' | '"' | '<' | '>' | '\\'))
        {
            return Err(PkiError::Url(format!("{base:?} contains {c:?}")));
        }
        Ok(Self { base: b.to_owned() })
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The absolute URL of a published path.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// The path segment that names one CA: `sign` / `auth` for generation 1 (the layout before key
    /// rollover existed, unchanged), `sign-g2` / `auth-g2` … for later generations, so that every
    /// generation publishes its CRLs, ARL, certificate and OCSP under its own URLs. Generation 0 does
    /// not exist (names and certificates refuse it); here it reads as 1.
    pub fn ca_label(kind: CertKind, generation: u32) -> String {
        match generation {
            0 | 1 => kind.as_str().to_owned(),
            g => format!("{}-g{g}", kind.as_str()),
        }
    }

    /// Path of the complete CRL of `kind` (every certificate the CA issued).
    pub fn full_crl_path(kind: CertKind) -> String {
        Self::full_crl_path_gen(kind, 1)
    }

    /// [`Self::full_crl_path`] of generation `generation`.
    pub fn full_crl_path_gen(kind: CertKind, generation: u32) -> String {
        format!("crl/{}.crl", Self::ca_label(kind, generation))
    }

    /// Path of CRL shard `shard` of `kind` (named in each end-entity certificate's CRL DP).
    pub fn shard_crl_path(kind: CertKind, shard: u16) -> String {
        Self::shard_crl_path_gen(kind, 1, shard)
    }

    /// [`Self::shard_crl_path`] of generation `generation`.
    pub fn shard_crl_path_gen(kind: CertKind, generation: u32, shard: u16) -> String {
        format!("crl/{}/{shard}.crl", Self::ca_label(kind, generation))
    }

    /// Path of the delta CRL of `kind` against the previous complete CRL.
    pub fn delta_crl_path(kind: CertKind) -> String {
        Self::delta_crl_path_gen(kind, 1)
    }

    /// [`Self::delta_crl_path`] of generation `generation`.
    pub fn delta_crl_path_gen(kind: CertKind, generation: u32) -> String {
        format!("crl/{}-delta.crl", Self::ca_label(kind, generation))
    }

    /// Path of the authority revocation list of the root of `kind`.
    pub fn arl_path(kind: CertKind) -> String {
        Self::arl_path_gen(kind, 1)
    }

    /// Path of the ARL of the root of `kind`, generation `generation`: it lists the link
    /// certificates that generation's key issued (named in their CRL DP) once they are revoked.
    pub fn arl_path_gen(kind: CertKind, generation: u32) -> String {
        format!("crl/{}-arl.crl", Self::ca_label(kind, generation))
    }

    /// Path of the root certificate of `kind` (DER), named in AIA caIssuers.
    pub fn ca_cert_path(kind: CertKind) -> String {
        Self::ca_cert_path_gen(kind, 1)
    }

    /// [`Self::ca_cert_path`] of generation `generation`.
    pub fn ca_cert_path_gen(kind: CertKind, generation: u32) -> String {
        format!("ca/{}.cer", Self::ca_label(kind, generation))
    }

    /// Path of the link certificate (RFC 4210 §4.4) in which generation `issuer_gen`'s key certifies
    /// generation `subject_gen`'s root key: `ca/sign-link-g1-g2.cer` is NewWithOld for the rollover
    /// from generation 1 to 2, `ca/sign-link-g2-g1.cer` its OldWithNew.
    pub fn link_cert_path(kind: CertKind, issuer_gen: u32, subject_gen: u32) -> String {
        format!("ca/{}-link-g{issuer_gen}-g{subject_gen}.cer", kind.as_str())
    }

    /// OCSP responder URL for certificates of `kind`.
    pub fn ocsp_url(&self, kind: CertKind) -> String {
        self.ocsp_url_gen(kind, 1)
    }

    /// OCSP responder URL for certificates of `kind` issued by generation `generation` (a delegated
    /// responder is certified by the key that issued the certificates it answers for, RFC 6960
    /// §4.2.2.2, so each generation has its own).
    pub fn ocsp_url_gen(&self, kind: CertKind, generation: u32) -> String {
        self.url(&format!("ocsp/{}", Self::ca_label(kind, generation)))
    }

    /// Certification practice statement URL.
    pub fn cps_url(&self) -> String {
        self.url("cps.html")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoints::new("http://127.0.0.1:7700/").unwrap();
        assert_eq!(
            e.url(&Endpoints::shard_crl_path(CertKind::Signature, 7)),
            "http://127.0.0.1:7700/crl/sign/7.crl"
        );
        assert_eq!(
            e.ocsp_url(CertKind::Authentication),
            "http://127.0.0.1:7700/ocsp/auth"
        );
        // Generation 1 keeps the layout from before rollover; later generations get their own.
        for kind in [CertKind::Signature, CertKind::Authentication] {
            let k = kind.as_str();
            assert_eq!(Endpoints::arl_path_gen(kind, 1), Endpoints::arl_path(kind));
            assert_eq!(Endpoints::arl_path(kind), format!("crl/{k}-arl.crl"));
            assert_eq!(Endpoints::arl_path_gen(kind, 2), format!("crl/{k}-g2-arl.crl"));
            assert_eq!(Endpoints::full_crl_path(kind), format!("crl/{k}.crl"));
            assert_eq!(Endpoints::full_crl_path_gen(kind, 3), format!("crl/{k}-g3.crl"));
            assert_eq!(Endpoints::delta_crl_path(kind), format!("crl/{k}-delta.crl"));
            assert_eq!(
                Endpoints::delta_crl_path_gen(kind, 2),
                format!("crl/{k}-g2-delta.crl")
            );
            assert_eq!(Endpoints::shard_crl_path(kind, 9), format!("crl/{k}/9.crl"));
            assert_eq!(
                Endpoints::shard_crl_path_gen(kind, 2, 9),
                format!("crl/{k}-g2/9.crl")
            );
            assert_eq!(Endpoints::ca_cert_path(kind), format!("ca/{k}.cer"));
            assert_eq!(Endpoints::ca_cert_path_gen(kind, 2), format!("ca/{k}-g2.cer"));
            assert_eq!(e.ocsp_url_gen(kind, 1), e.ocsp_url(kind));
            assert_eq!(
                e.ocsp_url_gen(kind, 2),
                format!("http://127.0.0.1:7700/ocsp/{k}-g2")
            );
            assert_eq!(
                Endpoints::link_cert_path(kind, 1, 2),
                format!("ca/{k}-link-g1-g2.cer")
            );
        }
        for bad in [
            "ftp://x",
            "http://",
            "http://a b",
            "127.0.0.1:7700",
            "http://x/?q",
        ] {
            assert!(Endpoints::new(bad).is_err(), "{bad}");
        }
    }
}
