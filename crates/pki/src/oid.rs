//! Object identifiers of the public JPKI profile and of RFC 5280 used here.
use const_oid::ObjectIdentifier as Oid;

/// JPKI signature-certificate policy (本番 1.2.392.200149.8.5.1.1.20).
pub const POLICY_SIGN: Oid = Oid::new_unwrap("1.2.392.200149.8.5.1.1.20");
/// JPKI user-authentication-certificate policy.
pub const POLICY_AUTH: Oid = Oid::new_unwrap("1.2.392.200149.8.5.1.3.30");
/// SAN otherName: name (氏名).
pub const SAN_NAME: Oid = Oid::new_unwrap("1.2.392.200149.8.5.5.1");
/// SAN otherName: name substitute-character flags.
pub const SAN_NAME_FLAGS: Oid = Oid::new_unwrap("1.2.392.200149.8.5.5.2");
/// SAN otherName: sex code.
pub const SAN_SEX: Oid = Oid::new_unwrap("1.2.392.200149.8.5.5.3");
/// SAN otherName: birth date EYYYYMMDD.
pub const SAN_BIRTH: Oid = Oid::new_unwrap("1.2.392.200149.8.5.5.4");
/// SAN otherName: address.
pub const SAN_ADDRESS: Oid = Oid::new_unwrap("1.2.392.200149.8.5.5.5");
/// SAN otherName: address substitute-character flags.
pub const SAN_ADDRESS_FLAGS: Oid = Oid::new_unwrap("1.2.392.200149.8.5.5.6");

/// id-qt-cps policy qualifier.
pub const QT_CPS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.2.1");
/// id-ad-ocsp.
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers.
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// ecdsa-with-SHA384.
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// rsaEncryption (SubjectPublicKeyInfo algorithm).
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// secp384r1.
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");

/// Attribute types used in our distinguished names.
pub mod at {
    use super::Oid;
    /// countryName.
    pub const C: Oid = Oid::new_unwrap("2.5.4.6");
    /// organizationName.
    pub const O: Oid = Oid::new_unwrap("2.5.4.10");
    /// organizationalUnitName.
    pub const OU: Oid = Oid::new_unwrap("2.5.4.11");
    /// localityName.
    pub const L: Oid = Oid::new_unwrap("2.5.4.7");
    /// commonName.
    pub const CN: Oid = Oid::new_unwrap("2.5.4.3");
}

/// Extension identifiers.
pub mod ext {
    use super::Oid;
    /// subjectKeyIdentifier.
    pub const SKI: Oid = Oid::new_unwrap("2.5.29.14");
    /// keyUsage.
    pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
    /// subjectAltName.
    pub const SAN: Oid = Oid::new_unwrap("2.5.29.17");
    /// basicConstraints.
    pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
    /// cRLNumber.
    pub const CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
    /// reasonCode (CRL entry).
    pub const REASON_CODE: Oid = Oid::new_unwrap("2.5.29.21");
    /// holdInstructionCode (CRL entry).
    pub const HOLD_INSTRUCTION: Oid = Oid::new_unwrap("2.5.29.23");
    /// deltaCRLIndicator.
    pub const DELTA_CRL_INDICATOR: Oid = Oid::new_unwrap("2.5.29.27");
    /// issuingDistributionPoint.
    pub const IDP: Oid = Oid::new_unwrap("2.5.29.28");
    /// cRLDistributionPoints.
    pub const CRL_DP: Oid = Oid::new_unwrap("2.5.29.31");
    /// certificatePolicies.
    pub const CERT_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
    /// authorityKeyIdentifier.
    pub const AKI: Oid = Oid::new_unwrap("2.5.29.35");
    /// freshestCRL.
    pub const FRESHEST_CRL: Oid = Oid::new_unwrap("2.5.29.46");
    /// authorityInfoAccess.
    pub const AIA: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
}

/// id-holdinstruction-reject (RFC 5280 §5.3.2 names the arc; we use reject).
pub const HOLD_INSTRUCTION_REJECT: Oid = Oid::new_unwrap("1.2.840.10040.2.3");

/// openjpki's time-stamp policy (TSTInfo.policy), beside the JPKI policies above. The real JPKI runs no
/// public TSA, so this arc is ours; a deployment with its own policy OID changes it here.
pub const TSA_POLICY: Oid = Oid::new_unwrap("1.2.392.200149.8.5.1.9.1");
/// id-kp-timeStamping (extended key usage of a TSA certificate, RFC 3161 §2.3).
pub const KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
/// extKeyUsage extension.
pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");

/// id-pkix-ocsp (RFC 6960 §4.4): the same arc as [`AD_OCSP`], under its OCSP name.
pub const PKIX_OCSP: Oid = AD_OCSP;
/// id-pkix-ocsp-basic: the responseType of a BasicOCSPResponse.
pub const PKIX_OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 8954).
pub const PKIX_OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): a responder certificate whose revocation is not checked.
pub const PKIX_OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-kp-OCSPSigning (extended key usage of a delegated OCSP responder, RFC 6960 §4.2.2.2).
pub const KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-sha1 (the hash of most OCSP CertIDs).
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// id-sha256.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
