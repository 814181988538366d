//! The platform that relying parties call (the part a platform operator runs): the OCSP responder
//! service over an in-memory status index, and the tamper-evident access records every check leaves
//! for the person to read. Pure logic, no I/O; storage and HTTP sit above it.
pub mod access_log;
pub mod access_store;
pub mod api;
pub mod api_linkage;
pub mod api_login;
pub mod api_signatures;
pub mod consent;
mod error;
pub mod fees;
pub mod ocsp;
pub mod oidc_clients;
pub mod portal;
pub mod rp;
pub mod status;
#[cfg(test)]
mod testing;

pub use access_log::{AccessRecord, CheckRecord, SignedBatch, SignedHead, Tamper};
pub use access_store::{AccessStore, Integrity, Recorder, Seen, StreamLog};
pub use api::Api;
pub use api_login::{CardLogin, CardProof};
pub use consent::{Consent, NewConsent, Revoker, Statement};
pub use error::PlatformError;
pub use fees::{Meter, Tariff};
pub use ocsp::{Answered, OcspAnswer, OcspService};
pub use oidc_clients::{NewOidcClient, OidcClient};
pub use portal::{Delivery, Notice};
pub use rp::{ApiKey, Capability, NewRelyingParty, Registry, RelyingParty};
pub use status::{Lookup, StatusIndex};
