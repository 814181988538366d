//! The authority: the part J-LIS plays. It keeps the registry (residents, cards, certificates,
//! status history, link data), issues each card its two certificates, revokes them on life events
//! and publishes revocation as CRLs.
//!
//! Every write is one registry transaction (SQLite in WAL with `synchronous=FULL` by default, or
//! PostgreSQL: `jpki init --db postgres://…`; see the `jpki_db` crate), so a crash at any point leaves
//! either all of an operation or none of it, and an operation that returned has been made durable.
//! The authority sees only the public keys a card generated; private keys never come here.

mod audit;
mod authority;
mod backup;
mod carddata;
mod error;
mod lookups;
mod publish;
mod rollover;
mod schema;
mod services;
mod store;

pub use audit::{AuditCheck, AuditEntry};
pub use authority::{
    Authority, CardKeys, CardStatus, CertRecord, CertStatus, InitOptions, IssuedCard, IssuedCert, Issuers,
    RegistryStats, Renewal, RenewedCard, ResidentRecord, ResidentStatus, Revoked, RunOptions, Settings,
};
pub use backup::{BackupHeader, REGISTRY_STORE, StoreSummary};
pub use carddata::{CARD_DATA_CVC, CardDataSigner, MUNICIPALITY};
pub use error::AuthorityError;
pub use lookups::{Linkage, Liveness};
pub use publish::{PublishReport, PublishedFile};
pub use rollover::RolloverReport;
pub use schema::VERSION as SCHEMA_VERSION;
pub use services::{GenerationResponder, ServiceCredentials, TsaCredentials};
pub use store::{DATABASE_FILE, REGISTRY_SCHEMA, registry_location, write_atomically};
