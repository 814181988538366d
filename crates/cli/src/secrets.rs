//! Secrets, one scheme everywhere: a flag (for scripts, as myna and pkcs11-tool allow), an
//! environment variable, or a no-echo prompt on a terminal. Never printed or logged.
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use jpki_model::{AuthPin, SignPassword};
use zeroize::Zeroizing;

use crate::Failure;

/// Environment variable holding the authority passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "JPKI_AUTHORITY_PASSPHRASE";

/// Where `jpki init --demo` keeps a generated passphrase.
pub(crate) fn passphrase_file(data: &Path) -> PathBuf {
    data.join("authority-passphrase")
}

fn prompt(label: &str, hint: &str) -> Result<Zeroizing<String>, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{label}: not given ({hint}) and no terminal to ask on"
        )));
    }
    Ok(Zeroizing::new(rpassword::prompt_password(format!("{label}: "))?))
}

/// The passphrase that opens the CA keys: env, the demo file, or a prompt.
pub(crate) fn authority_passphrase(data: &Path) -> Result<Zeroizing<String>, Failure> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Zeroizing::new(p));
    }
    let file = passphrase_file(data);
    if file.exists() {
        let p = Zeroizing::new(
            std::fs::read_to_string(&file)
                .map_err(|e| Failure::Failed(format!("{}: {e}", file.display())))?,
        );
        return Ok(Zeroizing::new(p.trim_end().to_owned()));
    }
    prompt("authority passphrase", &format!("set {PASSPHRASE_ENV}"))
}

/// The passphrase for a new authority: generated and stored (0600) with `--demo`, else from the
/// environment or asked twice.
pub(crate) fn new_authority_passphrase(data: &Path, demo: bool) -> Result<Zeroizing<String>, Failure> {
    if demo {
        let mut raw = [0u8; 24];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| Failure::Failed("random generator failed".into()))?;
        let p = Zeroizing::new(hex::encode(raw));
        std::fs::create_dir_all(data).map_err(|e| Failure::Failed(format!("{}: {e}", data.display())))?;
        jpki_authority::write_atomically(&passphrase_file(data), p.as_bytes(), 0o600)?;
        return Ok(p);
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        if p.len() < 8 {
            return Err(Failure::Usage(format!("{PASSPHRASE_ENV}: at least 8 characters")));
        }
        return Ok(Zeroizing::new(p));
    }
    let hint = format!("set {PASSPHRASE_ENV} or use --demo");
    let a = prompt("new authority passphrase", &hint)?;
    let b = prompt("repeat the passphrase", &hint)?;
    if a != b {
        return Err(Failure::Usage(
            "authority passphrase: the two entries differ".into(),
        ));
    }
    if a.len() < 8 {
        return Err(Failure::Usage(
            "authority passphrase: at least 8 characters".into(),
        ));
    }
    Ok(a)
}

/// The auth PIN: flag or env (parsed by clap), else a prompt.
pub(crate) fn auth_pin(given: Option<AuthPin>) -> Result<AuthPin, Failure> {
    match given {
        Some(p) => Ok(p),
        None => Ok(prompt("auth PIN (4 digits)", "give --auth-pin or set JPKI_AUTH_PIN")?.parse()?),
    }
}

/// The signing password by prompt (flag and env are parsed by clap).
pub(crate) fn sign_password() -> Result<SignPassword, Failure> {
    Ok(prompt(
        "signing password (6-16 of A-Z 0-9)",
        "give --sign-password or set JPKI_SIGN_PASSWORD",
    )?
    .parse()?)
}

/// An unusable random password for a card whose signature slot will not be certified.
pub(crate) fn random_sign_password() -> Result<SignPassword, Failure> {
    let mut raw = [0u8; 16];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| Failure::Failed("random generator failed".into()))?;
    const A: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let s: Zeroizing<String> =
        Zeroizing::new(raw.iter().map(|b| char::from(A[usize::from(*b) % 36])).collect());
    Ok(s.parse()?)
}

/// The text-assist PIN: given, or asked.
pub(crate) fn assist_pin(given: Option<jpki_model::AssistPin>) -> Result<jpki_model::AssistPin, Failure> {
    match given {
        Some(p) => Ok(p),
        None => Ok(prompt(
            "text-assist PIN (4 digits)",
            "give --assist-pin or set JPKI_ASSIST_PIN",
        )?
        .parse()?),
    }
}

/// A secret with no model type (照合番号B): given, or asked.
pub(crate) fn plain(given: Option<String>, label: &str, hint: &str) -> Result<Zeroizing<String>, Failure> {
    match given {
        Some(p) => Ok(Zeroizing::new(p)),
        None => prompt(label, hint),
    }
}

/// A new PIN or password: given, or asked twice.
pub(crate) fn new_secret(given: Option<String>, label: &str) -> Result<Zeroizing<String>, Failure> {
    if let Some(p) = given {
        return Ok(Zeroizing::new(p));
    }
    let first = prompt(&format!("new {label}"), "give --new or set JPKI_NEW_PIN")?;
    let second = prompt(&format!("new {label} again"), "give --new or set JPKI_NEW_PIN")?;
    if first != second {
        return Err(Failure::Usage(format!("new {label}: the two entries differ")));
    }
    Ok(first)
}
