//! Document signatures with JPKI certificates: CAdES baseline signatures (detached CMS SignedData),
//! PAdES signatures in PDF incremental updates, RFC 3161 time-stamps, and validation reports modelled
//! on ETSI EN 319 102-1.
//!
//! Pure logic: no clock (callers pass times), no network, no files. The private key is a caller's
//! concern (the card signs); this crate prepares what is to be signed and assembles the result.

pub mod augment;
pub mod cades;
mod error;
mod ident;
pub mod pdf;
pub mod report;
pub mod signed_data;
pub mod tsp;
pub mod validate;

pub use error::SigError;
