//! The command line: every command, its options and its help text.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jpki_model::{Address, AuthPin, IndividualNumber, Name, RevocationReason, Serial, Sex, SignPassword};

/// openjpki — an open implementation of Japan's My Number card public identity system (JPKI).
///
/// This binary runs the authority: it registers residents, issues each card a signature
/// certificate (carrying the basic four information) and a user-authentication certificate
/// (carrying none), revokes them on life events and publishes CRLs.
#[derive(Debug, Parser)]
#[command(name = "jpki", version, max_term_width = 110)]
pub(crate) struct Cli {
    /// Data directory of the authority (registry, encrypted CA keys).
    #[arg(
        long,
        global = true,
        env = "JPKI_DATA",
        default_value = "jpki-data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the authority: both CA key pairs (encrypted at rest) and both self-signed roots.
    Init(InitArgs),
    /// Register residents and record their life events.
    #[command(subcommand)]
    Resident(ResidentCmd),
    /// Issue, renew and suspend cards.
    #[command(subcommand)]
    Card(CardCmd),
    /// Show and export certificates.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Export the CA (root) certificates.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Revoke (or put on hold) one certificate.
    Revoke(RevokeArgs),
    /// Publish certificate revocation lists.
    #[command(subcommand)]
    Crl(CrlCmd),
    /// Check the registry's consistency (SQLite integrity, foreign keys, status history).
    Check,
    /// Walk through the whole system end to end, narrating each step.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KeyTypeArg {
    /// RSA-2048 with SHA-256 (today's JPKI).
    Rsa2048,
    /// ECDSA P-384 with SHA-384 (planned for the next-generation card).
    P384,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Algorithm of the CA keys.
    #[arg(long, value_enum, default_value = "rsa2048")]
    pub key_type: KeyTypeArg,
    /// Where the platform serves CRLs, OCSP and CA certificates; certificates carry URLs under it.
    #[arg(long, default_value = jpki_pki::Endpoints::DEFAULT_BASE, value_name = "URL")]
    pub public_url: String,
    /// Number of CRL shards per CA (each certificate's serial carries its shard).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub shards: u16,
    /// Generate a random passphrase for the CA keys and store it (mode 0600) in the data
    /// directory. For sandboxes and demos only.
    #[arg(long)]
    pub demo: bool,
    /// PBKDF2-HMAC-SHA256 iterations protecting the CA keys (lower only for throwaway test data).
    #[arg(long, default_value_t = 600_000, value_parser = clap::value_parser!(u32).range(1_000..))]
    pub kdf_iterations: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ResidentCmd {
    /// Register a resident (住民票) and assign an individual number.
    Add(ResidentAddArgs),
    /// Show a resident's record and cards.
    Show(ResidentRef),
    /// Address change: revokes the signature certificate (affiliationChanged); auth stays.
    Move {
        #[command(flatten)]
        resident: ResidentRef,
        /// The new address.
        #[arg(long)]
        address: Address,
    },
    /// Name change: revokes the signature certificate (affiliationChanged); auth stays.
    Rename {
        #[command(flatten)]
        resident: ResidentRef,
        /// The new name.
        #[arg(long)]
        name: Name,
    },
    /// Death: revokes every certificate (cessationOfOperation).
    Decease(ResidentRef),
    /// Moving abroad: revokes the signature certificate; the card and auth certificate may be kept.
    Emigrate(ResidentRef),
}

#[derive(Debug, Args)]
pub(crate) struct ResidentRef {
    /// Resident identifier (from `resident add`).
    #[arg(long, value_name = "ID")]
    pub resident: i64,
}

#[derive(Debug, Args)]
pub(crate) struct ResidentAddArgs {
    /// Name (氏名), at most 100 characters.
    #[arg(long)]
    pub name: Name,
    /// Address (住所), at most 200 characters, beginning with the prefecture.
    #[arg(long)]
    pub address: Address,
    /// Birth date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
    pub birth: time::Date,
    /// Sex code (JIS X 0303): 1 male, 2 female, 9 not applicable.
    #[arg(long, value_name = "1|2|9")]
    pub sex: Sex,
    /// Use this individual number (12 digits with check digit) instead of drawing a fresh one.
    #[arg(long, value_name = "DIGITS")]
    pub number: Option<IndividualNumber>,
}

fn parse_date(s: &str) -> Result<time::Date, jpki_model::ModelError> {
    jpki_model::parse_birth_date(s)
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum RenewKind {
    /// Only the user-authentication certificate.
    Auth,
    /// Only the signature certificate (e.g. reissue after a move).
    Sign,
    /// Both.
    Both,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CardCmd {
    /// Issue a card: the card generates its key pairs; the authority certifies the public keys.
    Issue(CardIssueArgs),
    /// Renew (or reissue) certificates on a card with new key pairs; old ones are superseded.
    Renew {
        /// The card file.
        #[arg(long, value_name = "CARDFILE")]
        card: PathBuf,
        /// Which certificates.
        #[arg(long, value_enum, default_value = "both")]
        kind: RenewKind,
    },
    /// Report a card lost: both certificates go on hold; with --confirm they are revoked.
    ReportLost {
        /// Card identifier.
        #[arg(long, value_name = "ID")]
        card_id: String,
        /// Revoke (keyCompromise) instead of holding.
        #[arg(long)]
        confirm: bool,
    },
    /// A lost card was found: lift the holds.
    Found {
        /// Card identifier.
        #[arg(long, value_name = "ID")]
        card_id: String,
    },
    /// Show a card's certificates and their status.
    Show {
        /// Card identifier.
        #[arg(long, value_name = "ID")]
        card_id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CardIssueArgs {
    /// The resident.
    #[arg(long, value_name = "ID")]
    pub resident: i64,
    /// Where to write the card file.
    #[arg(long, value_name = "CARDFILE")]
    pub out: PathBuf,
    /// The 4-digit user-authentication PIN (else env JPKI_AUTH_PIN, else a prompt).
    #[arg(long, env = "JPKI_AUTH_PIN", hide_env_values = true, value_name = "4DIGITS")]
    pub auth_pin: Option<AuthPin>,
    /// The 6–16 character signing password, A–Z and 0–9 (else env JPKI_SIGN_PASSWORD, else a prompt).
    #[arg(long, env = "JPKI_SIGN_PASSWORD", hide_env_values = true, value_name = "PW")]
    pub sign_password: Option<SignPassword>,
    /// Replace an existing card file at --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertCmd {
    /// Decode a certificate (with its JPKI subjectAltName fields) and its registry status.
    Show(SerialArg),
    /// Write a certificate as PEM.
    Export {
        #[command(flatten)]
        serial: SerialArg,
        /// Output file.
        #[arg(long, value_name = "FILE.pem")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SerialArg {
    /// Serial number in hex.
    #[arg(long, value_name = "HEX")]
    pub serial: Serial,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KindArg {
    /// The signature hierarchy.
    Sign,
    /// The user-authentication hierarchy.
    Auth,
}

impl KindArg {
    pub(crate) fn kind(self) -> jpki_model::CertKind {
        match self {
            Self::Sign => jpki_model::CertKind::Signature,
            Self::Auth => jpki_model::CertKind::Authentication,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum CaCmd {
    /// Write a root certificate as PEM.
    Export {
        /// Which root.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Output file.
        #[arg(long, value_name = "FILE.pem")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// Serial number in hex.
    #[arg(long, value_name = "HEX")]
    pub serial: Serial,
    /// RFC 5280 reason: unspecified, key-compromise, affiliation-changed, superseded,
    /// cessation-of-operation, certificate-hold, …
    #[arg(long)]
    pub reason: RevocationReason,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CrlCmd {
    /// Write complete, sharded and delta CRLs, ARLs and CA certificates under DIR, at the paths
    /// the certificates' distribution points name.
    Publish {
        /// Output directory (mirrors the public URL).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Authority key type for a new demo authority.
    #[arg(long, value_enum, default_value = "rsa2048")]
    pub key_type: KeyTypeArg,
}
