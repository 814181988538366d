//! Where the platform publishes what certificates point to: CRLs (full, sharded, delta), ARLs,
//! OCSP and CA certificates, all under one public base URL.
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

    /// Path of the complete CRL of `kind` (every certificate the CA issued).
    pub fn full_crl_path(kind: CertKind) -> String {
        format!("crl/{}.crl", kind.as_str())
    }

    /// Path of CRL shard `shard` of `kind` (named in each end-entity certificate's CRL DP).
    pub fn shard_crl_path(kind: CertKind, shard: u16) -> String {
        format!("crl/{}/{shard}.crl", kind.as_str())
    }

    /// Path of the delta CRL of `kind` against the previous complete CRL.
    pub fn delta_crl_path(kind: CertKind) -> String {
        format!("crl/{}-delta.crl", kind.as_str())
    }

    /// Path of the authority revocation list of the root of `kind`.
    pub fn arl_path(kind: CertKind) -> String {
        format!("crl/{}-arl.crl", kind.as_str())
    }

    /// Path of the root certificate of `kind` (DER), named in AIA caIssuers.
    pub fn ca_cert_path(kind: CertKind) -> String {
        format!("ca/{}.cer", kind.as_str())
    }

    /// OCSP responder URL for certificates of `kind`.
    pub fn ocsp_url(&self, kind: CertKind) -> String {
        self.url(&format!("ocsp/{}", kind.as_str()))
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
