//! The command line: every command, its options and its help text.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jpki_model::{
    Address, AssistPin, AuthPin, IndividualNumber, Name, RevocationReason, Serial, Sex, SignPassword,
};

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
    /// The key that seals card files on this device (created on first use).
    #[arg(long, global = true, env = "JPKI_DEVICE_KEY", value_name = "FILE")]
    pub device_key: Option<PathBuf>,
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
    /// The operator audit trail: every operator action (who, what, when, about whom), oldest
    /// first, with its hash chain checked. Exit status 1 if a row was changed or removed.
    Audit(AuditArgs),
    /// Back up the authority into one encrypted file (AES-256-GCM under a key from the authority
    /// passphrase): every registry table, including the per-person secrets behind pairwise
    /// identifiers, the CA, card-data and service keys, and the platform's stores.
    Backup {
        /// The backup file to write (mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a backup into a new, empty data directory (--data), its registry in SQLite or,
    /// with --db, in PostgreSQL. The authority passphrase opens it.
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Restore the registry into this PostgreSQL database instead of SQLite.
        #[arg(long, env = "JPKI_DB", value_name = "postgres://…", hide_env_values = true)]
        db: Option<String>,
    },
    /// National-scale simulation on a new data directory: registers residents, issues their cards
    /// and plays simulated years of life events (moves, renewals, deaths, lost cards, births)
    /// through the authority's own operations; reports storage per certificate, issuance rate,
    /// CRL shard sizes and lookup latency. A pool of pre-generated key pairs stands in for
    /// on-card key generation.
    Sim(crate::sim::SimArgs),
    /// Sign a document with the card's signature key: a detached CAdES signature (FILE.p7s) or,
    /// with --pdf, a PAdES-signed copy of a PDF.
    Sign(SignArgs),
    /// Validate a signature (CAdES .p7s with its content, or a signed PDF) and print a validation
    /// report after ETSI EN 319 102-1. Exit status: 0 passed, 1 failed, 3 indeterminate.
    Verify(VerifyArgs),
    /// The authority's RFC 3161 time-stamp authority.
    #[command(subcommand)]
    Tsa(TsaCmd),
    /// The platform's relying parties: register them, list them, manage their API keys.
    #[command(subcommand)]
    Rp(RpCmd),
    /// Consents to serial linkage: the person signs one for a relying party with the card's
    /// signature key (`make`); the relying party submits it to POST /v1/consents. Operators list and
    /// revoke them.
    #[command(subcommand)]
    Consent(ConsentCmd),
    /// A person's access records: every check a relying party made about any of their
    /// certificates (who, which certificate, what, why, the answer), with the log's integrity
    /// checked against its signed head. Exit status 1 if a record was modified or removed.
    AccessLog(SerialArg),
    /// Notices in マイナポータル: push-type messages from an agency or the operator.
    #[command(subcommand)]
    Notice(NoticeCmd),
    /// The post box in マイナポータル: signed documents sent to a person.
    #[command(subcommand)]
    Postbox(PostboxCmd),
    /// Serve the platform over HTTP until SIGTERM or Ctrl-C: OCSP for both CAs (at the URLs the
    /// certificates name), the time-stamp authority and /healthz.
    Serve(ServeArgs),
    /// Walk through the whole system end to end, narrating each step.
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum RpCmd {
    /// Register a relying party. Prints its rp_id and its first API key, which is shown only once
    /// (the platform keeps a hash).
    Add {
        /// The name people will read in their access records.
        #[arg(long)]
        name: String,
        /// Capabilities, comma-separated: auth-status, sign-status, personal-data, linkage, age,
        /// liveness, signature-verify, augment, oidc (log people in with the card: needs
        /// --redirect-uri).
        #[arg(long, value_delimiter = ',', required = true)]
        allow: Vec<jpki_platform::Capability>,
        /// With oidc: a redirect URI of the client (exact match; https, or http on 127.0.0.1,
        /// [::1] or localhost). Repeat for several.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// With oidc: the client's public keys (a JWKS file) for private_key_jwt. Without
        /// --jwks or --jwks-uri a client secret is made (client_secret_basic, for development).
        #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
        jwks: Option<std::path::PathBuf>,
        /// With oidc: where the client publishes its public keys (https).
        #[arg(long, value_name = "URL")]
        jwks_uri: Option<String>,
        /// With oidc: what its ID tokens are signed with.
        #[arg(long, value_name = "ALG", default_value = "RS256", value_parser = ["RS256", "ES256"])]
        id_token_alg: String,
        /// The ages the RP may ask about (with the age capability), comma-separated.
        #[arg(long, value_delimiter = ',')]
        age_thresholds: Vec<u8>,
        /// Why it checks certificates (e.g. "口座開設の本人確認"), shown to people in their access
        /// records for its checks that state no purpose of their own (OCSP requests cannot).
        #[arg(long, value_name = "TEXT")]
        purpose: Option<String>,
    },
    /// List the relying parties.
    List,
    /// Make an additional API key for a relying party (rotation: make one, switch, then revoke).
    NewKey {
        /// The relying party.
        #[arg(long, value_name = "RP_ID")]
        rp: String,
    },
    /// The invoice of a relying party for a month (JST): checks by certificate kind at 20 yen
    /// (signature) and 2 yen (authentication), with the marginal bulk-discount tiers of
    /// DATA/tariff.json (default: 10 % off from the 100,001st check, 20 % from the 1,000,001st).
    Invoice {
        /// The relying party.
        #[arg(long, value_name = "RP_ID")]
        rp: String,
        /// The month, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        /// Print CSV (kind,checks,unit_yen,yen and a total line) instead of text.
        #[arg(long)]
        csv: bool,
    },
    /// Revoke every API key and client certificate of a relying party; refused from the next
    /// request on.
    RevokeKey {
        /// The relying party.
        #[arg(long, value_name = "RP_ID")]
        rp: String,
    },
    /// Register a client certificate a relying party authenticates with over mutual TLS, instead
    /// of an API key (`jpki serve --tls-client-ca` names the CA its certificates come from).
    AddClientCert {
        /// The relying party.
        #[arg(long, value_name = "RP_ID")]
        rp: String,
        /// The certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConsentCmd {
    /// Sign a consent statement with the card's signature key: "relying party RP_ID may link my
    /// certificates (the one before a renewed certificate, the other one of the same card)". Writes a
    /// CAdES signature with the statement attached (.p7s), for the relying party to submit.
    Make {
        #[command(flatten)]
        access: CardAccess,
        /// The relying party the consent is for (its rp_id, from `jpki rp add`).
        #[arg(long, value_name = "RP_ID")]
        rp: String,
        /// Output file.
        #[arg(long, value_name = "FILE.p7s", default_value = "consent.p7s")]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
        /// The signing password, 6–16 characters A–Z and 0–9 (else env JPKI_SIGN_PASSWORD, else a prompt).
        #[arg(long, env = "JPKI_SIGN_PASSWORD", hide_env_values = true, value_name = "PW")]
        sign_password: Option<SignPassword>,
    },
    /// List the consents on file (newest first), all or one relying party's.
    List {
        /// Only this relying party's.
        #[arg(long, value_name = "RP_ID")]
        rp: Option<String>,
    },
    /// Revoke a consent (operator): linkage for its person and relying party stops at once.
    Revoke {
        /// The consent's identifier (cns-…).
        #[arg(long, value_name = "CONSENT_ID")]
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7700")]
    pub listen: std::net::SocketAddr,
    /// Answer OCSP requests and serve CRLs to anyone. By default revocation information is for
    /// registered relying parties only (the law protects it).
    #[arg(long)]
    pub public_revocation: bool,
    /// Serve the CRLs and CA certificates published here (by `jpki crl publish --out DIR`) at the
    /// URLs the certificates name. Default: DATA/public.
    #[arg(long, value_name = "DIR")]
    pub publish_dir: Option<PathBuf>,
    /// Speak HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// On the first run (no authority in the data directory yet): the public URL the new CA
    /// certificates name for OCSP and CRLs. Default: where this server listens (loopback for an
    /// unspecified address), https with --tls-cert.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Also let relying parties authenticate with client certificates issued under these CAs
    /// (PEM; mutual TLS, optional per connection; register each with `jpki rp add-client-cert`).
    #[arg(long, value_name = "FILE.pem", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// On the first run: keep the registry in this PostgreSQL database instead of SQLite in the
    /// data directory (as `jpki init --db`). Later runs must name the same one or none. With
    /// `--role verifier`: the authority's database to verify from.
    #[arg(long, env = "JPKI_DB", value_name = "postgres://…", hide_env_values = true)]
    pub db: Option<String>,
    /// What this process does. `all` (the single-machine default): everything below in one
    /// process. `authority`: the only role holding the CA keys: publishes CRLs (and republishes
    /// them before they go stale), issues and renews the OCSP-responder and TSA certificates, and
    /// serves CRLs and CA certificates. `verifier`: answers OCSP, the JSON API and the TSA from an
    /// in-memory snapshot kept fresh from the shared registry's change log; needs no CA key (the
    /// service keys come from the registry, opened with the authority passphrase). Run any
    /// number of verifiers against one PostgreSQL registry.
    #[arg(long, value_enum, default_value = "all")]
    pub role: ServeRole,
    /// Stop answering (OCSP tryLater, JSON API 503, /healthz 503) once the revocation snapshot
    /// is this many seconds behind the registry (the database is unreachable); until then answers
    /// name the time of the last sync as OCSP thisUpdate.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub max_staleness: u32,
    /// The URL people's browsers reach this server at, for "log in with the card": the OpenID
    /// Connect issuer is URL/oidc, and the card signs for this origin. Default: where this server
    /// listens (https with --tls-cert).
    #[arg(long, value_name = "URL")]
    pub login_url: Option<String>,
    /// The card agent login pages send people's browsers to (`jpki card agent` on their machine).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:48620")]
    pub card_agent: String,
}

/// `jpki serve --role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServeRole {
    /// Authority and verifier in one process (one machine).
    All,
    /// CA keys: CRL publication, service certificates; serves CRLs and CA certificates.
    Authority,
    /// OCSP, JSON API and TSA from the shared registry; no CA keys.
    Verifier,
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
    /// Keep the registry in this PostgreSQL database (postgres://user[:password]@host[:port]/db)
    /// instead of SQLite in the data directory. The URL is kept in DATA/database (0600) for every
    /// later command.
    #[arg(long, env = "JPKI_DB", value_name = "postgres://…", hide_env_values = true)]
    pub db: Option<String>,
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
    /// Issue a card: the card generates its key pairs; the authority certifies the public keys and
    /// writes the certificates and the signed text-assist and card-face data onto it.
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
    /// Show a card's certificates and their status (from the registry).
    Show {
        /// Card identifier.
        #[arg(long, value_name = "ID")]
        card_id: String,
    },
    /// What the card says about itself: card ID, certificates, PIN counters, common-AP record.
    Info(CardAccess),
    /// Read a certificate from the card and write it as PEM.
    ReadCert {
        #[command(flatten)]
        access: CardAccess,
        /// Which certificate (the signature certificate needs the signing password).
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Output file.
        #[arg(long, value_name = "FILE.pem")]
        out: PathBuf,
        /// The signing password (else env JPKI_SIGN_PASSWORD, else a prompt).
        #[arg(long, env = "JPKI_SIGN_PASSWORD", hide_env_values = true, value_name = "PW")]
        sign_password: Option<SignPassword>,
    },
    /// Read the four basic facts and the individual number from the text-assist AP, and check the
    /// authority's signature over them.
    ReadInfo {
        #[command(flatten)]
        access: CardAccess,
        /// The text-assist PIN (else env JPKI_ASSIST_PIN, else a prompt).
        #[arg(long, env = "JPKI_ASSIST_PIN", hide_env_values = true, value_name = "4DIGITS")]
        assist_pin: Option<AssistPin>,
        /// The authority's card-data CV certificate to check against (default: the one in --data).
        #[arg(long, value_name = "FILE.cvc")]
        trust: Option<PathBuf>,
    },
    /// Read the card face (images of name and address, photo, security code) with 照合番号B and
    /// write it to a directory.
    ReadFace {
        #[command(flatten)]
        access: CardAccess,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// 照合番号B: birth date as era YYMMDD, expiry year, security code (else env
        /// JPKI_COLLATION_B, else a prompt).
        #[arg(
            long,
            env = "JPKI_COLLATION_B",
            hide_env_values = true,
            value_name = "14DIGITS"
        )]
        collation_b: Option<String>,
        /// The authority's card-data CV certificate to check against (default: the one in --data).
        #[arg(long, value_name = "FILE.cvc")]
        trust: Option<PathBuf>,
    },
    /// PIN counters and PIN changes.
    #[command(subcommand)]
    Pin(PinCmd),
    /// Sign a SHA-256 digest with the card (PKCS#1 v1.5), as a relying party's challenge.
    SignDigest {
        #[command(flatten)]
        access: CardAccess,
        /// Which key.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The SHA-256 digest, 64 hex digits.
        #[arg(long, value_name = "HEX")]
        digest: String,
        #[command(flatten)]
        secrets: KindSecrets,
    },
    /// Authority side, after identity proofing: unblock a locked PIN or password on the card (with
    /// the card's management key), optionally setting a new one.
    Unblock {
        #[command(flatten)]
        access: CardAccess,
        /// Which PIN.
        #[arg(long, value_enum)]
        kind: PinKind,
        /// A new value (else the old one stays and only the counter is reset); env JPKI_NEW_PIN.
        #[arg(long, env = "JPKI_NEW_PIN", hide_env_values = true, value_name = "PIN")]
        new_pin: Option<String>,
    },
    /// Run the card agent until stopped: a small server on loopback that login pages ("log in
    /// with the card", `jpki serve`'s OpenID Connect provider) hand their challenge to. It shows
    /// which site asks, takes the PIN on its own page and has the card sign.
    Agent {
        #[command(flatten)]
        access: CardAccess,
        /// Where to listen (loopback only).
        #[arg(long, value_name = "127.0.0.1:PORT", default_value = "127.0.0.1:48620")]
        listen: std::net::SocketAddr,
        /// A provider whose sign transactions the agent accepts (repeatable): signing documents
        /// with the signature key is only for the sites named here. Logins are bound to the
        /// asking site's origin and need no listing.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:7700")]
        provider: Vec<String>,
    },
    /// Connect a card file to pcscd's vpcd driver until stopped, so any PC/SC program (OpenSC,
    /// pyscard, JPKI clients) sees a JPKI card in reader "Virtual PCD 00 00".
    Plug {
        /// The card file.
        #[arg(long, value_name = "CARDFILE")]
        card: PathBuf,
        /// pcscd's vpcd address.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:35963")]
        vpcd: String,
        /// Give up after this many seconds without reaching pcscd (default: keep trying).
        #[arg(long, value_name = "SECONDS")]
        max_wait: Option<u64>,
    },
}

/// Where the card is: a card file in this process, or a PC/SC reader.
#[derive(Debug, Args)]
pub(crate) struct CardAccess {
    /// The card file (the card runs in this process).
    #[arg(
        long,
        value_name = "CARDFILE",
        conflicts_with = "reader",
        required_unless_present = "reader"
    )]
    pub card: Option<PathBuf>,
    /// A PC/SC reader: its name or a unique part of it (a real card, or one plugged with `jpki card plug`).
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
}

/// The secret of a key: the auth PIN or the signing password.
#[derive(Debug, Args)]
pub(crate) struct KindSecrets {
    /// The 4-digit user-authentication PIN (else env JPKI_AUTH_PIN, else a prompt).
    #[arg(
        long,
        alias = "auth-pin",
        env = "JPKI_AUTH_PIN",
        hide_env_values = true,
        value_name = "4DIGITS"
    )]
    pub pin: Option<AuthPin>,
    /// The signing password, 6–16 characters A–Z and 0–9 (else env JPKI_SIGN_PASSWORD, else a prompt).
    #[arg(long, env = "JPKI_SIGN_PASSWORD", hide_env_values = true, value_name = "PW")]
    pub sign_password: Option<SignPassword>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PinKind {
    /// The user-authentication PIN (JPKI AP).
    Auth,
    /// The signing password (JPKI AP).
    Sign,
    /// The text-assist PIN.
    Assist,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PinCmd {
    /// Attempts left for each PIN (no attempt is spent).
    Status(CardAccess),
    /// Change a PIN or the signing password (the current one is verified first).
    Change {
        #[command(flatten)]
        access: CardAccess,
        /// Which PIN.
        #[arg(long, value_enum)]
        kind: PinKind,
        #[command(flatten)]
        secrets: KindSecrets,
        /// The current text-assist PIN (else env JPKI_ASSIST_PIN, else a prompt).
        #[arg(long, env = "JPKI_ASSIST_PIN", hide_env_values = true, value_name = "4DIGITS")]
        assist_pin: Option<AssistPin>,
        /// The new value (else env JPKI_NEW_PIN, else asked twice).
        #[arg(long, env = "JPKI_NEW_PIN", hide_env_values = true, value_name = "NEW")]
        new: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CardIssueArgs {
    /// The resident.
    #[arg(long, value_name = "ID")]
    pub resident: i64,
    /// Where to write the card file. If it holds a card whose issuance was interrupted, issuance
    /// resumes with that card (keeping the PINs chosen when it was made).
    #[arg(long, value_name = "CARDFILE")]
    pub out: PathBuf,
    /// The auth PIN (also the 住基 PIN) and the signing password.
    #[command(flatten)]
    pub secrets: KindSecrets,
    /// The 4-digit text-assist PIN (else env JPKI_ASSIST_PIN; default: the auth PIN).
    #[arg(long, env = "JPKI_ASSIST_PIN", hide_env_values = true, value_name = "4DIGITS")]
    pub assist_pin: Option<AssistPin>,
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
        /// Which generation (default: the newest).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        generation: Option<u32>,
    },
    /// CA key rollover: a new key and root generation for both CAs, with link certificates
    /// old-with-new and new-with-old (RFC 4210 §4.4). The newest generation issues from then on;
    /// every generation keeps publishing the CRLs of what it issued (`jpki crl publish` also writes
    /// the roots and links under ca/).
    Rollover {
        /// Validity of the new roots in years.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=50))]
        root_years: u8,
        /// PBKDF2-HMAC-SHA256 iterations protecting the new keys.
        #[arg(long, default_value_t = 600_000, value_parser = clap::value_parser!(u32).range(1_000..))]
        kdf_iterations: u32,
    },
    /// Write the link certificates between root generations as PEM files into a directory
    /// (`{kind}-link-gA-gB.pem`: generation B's key certified by generation A).
    Links {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LevelArg {
    /// Baseline B-B: signed attributes only.
    B,
    /// Baseline B-T: plus an RFC 3161 signature time-stamp (needs --tsa).
    T,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub access: CardAccess,
    /// The document to sign.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Write a PAdES-signed PDF (incremental update, /SubFilter /ETSI.CAdES.detached) instead of a
    /// detached .p7s.
    #[arg(long)]
    pub pdf: bool,
    /// Baseline level; T needs --tsa.
    #[arg(long, value_enum, default_value = "b")]
    pub level: LevelArg,
    /// The time-stamp authority (RFC 3161 over HTTP), e.g. http://127.0.0.1:7701/tsa. Giving it
    /// implies --level T.
    #[arg(long, value_name = "URL")]
    pub tsa: Option<String>,
    /// Output file (default: FILE.p7s, or FILE with .signed.pdf for --pdf).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// The signing password, 6–16 characters A–Z and 0–9 (else env JPKI_SIGN_PASSWORD, else a prompt).
    #[arg(long, env = "JPKI_SIGN_PASSWORD", hide_env_values = true, value_name = "PW")]
    pub sign_password: Option<SignPassword>,
    /// PDF only: the reason shown in the signature dictionary.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The signature: a .p7s (DER or PEM CMS) or a signed PDF.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The signed content of a detached .p7s.
    #[arg(long, value_name = "FILE")]
    pub content: Option<PathBuf>,
    /// A trust anchor (PEM bundle or DER root certificate); repeatable. Default: both roots of the
    /// authority in --data, when there is one.
    #[arg(long, value_name = "FILE.pem")]
    pub trust: Vec<PathBuf>,
    /// A directory of CRLs (searched recursively for *.crl), e.g. the output of `jpki crl publish`.
    #[arg(long, value_name = "DIR")]
    pub crl_dir: Vec<PathBuf>,
    /// Extra certificates for path building (intermediate CAs, the TSA's), PEM or DER; repeatable.
    #[arg(long, value_name = "FILE.pem")]
    pub cert: Vec<PathBuf>,
    /// Validate as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TsaCmd {
    /// Serve RFC 3161 time-stamps over HTTP (POST application/timestamp-query to /tsa) until
    /// SIGTERM or Ctrl-C. The TSA key is created and certified by the signature CA on first use.
    Serve {
        /// Address to listen on (loopback by default; port 0 picks a free port).
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7701")]
        listen: std::net::SocketAddr,
    },
    /// Write the TSA certificate (PEM), creating the TSA key and certificate if there is none.
    Cert {
        /// Output file.
        #[arg(long, value_name = "FILE.pem")]
        out: PathBuf,
    },
}

/// `jpki audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Show rows after this position (0: from the start).
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// Show at most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NoticeCmd {
    /// Send a notice to the holder of a certificate (any of theirs), or to everyone.
    Send {
        /// The person: the serial of any of their certificates (hex).
        #[arg(
            long,
            value_name = "HEX",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        serial: Option<Serial>,
        /// Everyone.
        #[arg(long)]
        all: bool,
        /// Who sends it (an agency's or the operator's name).
        #[arg(long, value_name = "NAME")]
        from: String,
        /// The subject.
        #[arg(long, value_name = "TEXT")]
        title: String,
        /// The message.
        #[arg(long, value_name = "TEXT")]
        body: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PostboxCmd {
    /// Put a signed document (a signed PDF, or CMS SignedData with its content inside) into a
    /// person's post box; it is validated each time they look at it.
    Send {
        /// The person: the serial of any of their certificates (hex).
        #[arg(long, value_name = "HEX")]
        serial: Serial,
        /// Who sends it.
        #[arg(long, value_name = "NAME")]
        from: String,
        /// Its title.
        #[arg(long, value_name = "TEXT")]
        title: String,
        /// The signed document.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}
