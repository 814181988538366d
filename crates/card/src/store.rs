//! The card file: the card's state, encrypted and authenticated, written so that a crash leaves
//! the old state or the new one and so that a PIN attempt is on disk before its answer is given.
//!
//! Format (version 1): `"JPKICARD"`, a version byte, a 16-byte salt, a 12-byte nonce, then the
//! state (JSON) sealed with AES-256-GCM under HKDF-SHA-256(device key, salt, "jpki card file v1"),
//! the 37 header bytes as associated data. A fresh salt and nonce are drawn for every write.
//!
//! The device key is 32 random bytes in a separate file ([`DeviceKey::default_path`]), so a copy
//! of the card file alone (a backup, a synced folder, a mail attachment) reveals no key and no
//! PIN verifier, and any edit is detected. What it cannot do is in docs/CARD.md: whoever holds
//! both files and the machine can restore an older card file (undoing PIN attempts) or attack
//! the PINs offline; a physical card or a phone's secure element exists to stop exactly that.

use std::fs::File;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use zeroize::Zeroizing;

use crate::apdu::{Response, Sw};
use crate::machine::VirtualCard;
use crate::state::State;
use crate::{CardError, file};

const MAGIC: &[u8; 8] = b"JPKICARD";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8 + 1 + 16 + 12;
const INFO: &[u8] = b"jpki card file v1";

/// The environment variable naming the device key file.
pub const DEVICE_KEY_ENV: &str = "JPKI_DEVICE_KEY";

/// The key that seals card files on this device.
#[derive(Clone)]
pub struct DeviceKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    /// `$JPKI_DEVICE_KEY`, else `$XDG_DATA_HOME/jpki/device.key`, else
    /// `~/.local/share/jpki/device.key`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os(DEVICE_KEY_ENV).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("jpki").join("device.key")
    }

    /// Reads the device key at `path` (for opening existing card files: a missing key is an
    /// error, not a reason to make a new one that could not open them anyway).
    pub fn load(path: &Path) -> Result<Self, CardError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_file_bytes(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CardError::Refused(format!(
                "no device key at {} (card files are sealed with the key of the device that made them; \
                 set JPKI_DEVICE_KEY or --device-key)",
                path.display()
            ))),
            Err(e) => Err(CardError::io(path)(e)),
        }
    }

    /// Reads the device key at `path`, creating it (mode 0600) if there is none. Two processes
    /// racing to create it end up with the same key.
    pub fn load_or_create(path: &Path) -> Result<Self, CardError> {
        match std::fs::read(path) {
            Ok(bytes) => return Self::from_file_bytes(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CardError::io(path)(e)),
        }
        let mut key = Zeroizing::new([0u8; 32]);
        crate::random(key.as_mut())?;
        let hex = Zeroizing::new(hex::encode(key.as_ref()));
        // Written to a private temporary name, then linked into place: link fails if another
        // process got there first, and then its key is the one to use.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        file::write_atomically(&tmp, hex.as_bytes(), 0o600).map_err(CardError::io(&tmp))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Self(key)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(path).map_err(CardError::io(path))?;
                Self::from_file_bytes(path, &bytes)
            }
            Err(e) => Err(CardError::io(path)(e)),
        }
    }

    fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Self, CardError> {
        let text = Zeroizing::new(String::from_utf8_lossy(bytes).trim().to_owned());
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.as_bytes(), key.as_mut()).map_err(|_| {
            CardError::Damaged(format!("{}: not a device key (64 hex digits)", path.display()))
        })?;
        Ok(Self(key))
    }

    /// A device key from its bytes (tests, benchmarks).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(Zeroizing::new(key))
    }

    fn aead(&self, salt: &[u8]) -> Result<LessSafeKey, CardError> {
        let prk = Salt::new(HKDF_SHA256, salt).extract(self.0.as_ref());
        let okm = prk
            .expand(&[INFO], &AES_256_GCM)
            .map_err(|_| CardError::Crypto("key derivation failed".into()))?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

/// Seals a card's state into card-file bytes.
fn seal(state: &State, key: &DeviceKey) -> Result<Vec<u8>, CardError> {
    let mut buf =
        Zeroizing::new(serde_json::to_vec(state).map_err(|e| CardError::Crypto(format!("card state: {e}")))?);
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    crate::random(&mut salt)?;
    crate::random(&mut nonce)?;
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    let mut sealed = buf.to_vec();
    buf.iter_mut().for_each(|b| *b = 0);
    key.aead(&salt)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header[..]),
            &mut sealed,
        )
        .map_err(|_| CardError::Crypto("sealing the card file failed".into()))?;
    header.extend_from_slice(&sealed);
    Ok(header)
}

/// Opens card-file bytes.
fn unseal(bytes: &[u8], key: &DeviceKey, path: &Path) -> Result<State, CardError> {
    let damaged = |why: &str| CardError::Damaged(format!("{}: {why}", path.display()));
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(damaged("not a card file"));
    }
    if bytes[8] != VERSION {
        return Err(damaged(&format!("card file version {} not supported", bytes[8])));
    }
    let (header, body) = bytes.split_at(HEADER_LEN);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&header[25..37]);
    let mut buf = Zeroizing::new(body.to_vec());
    let plain = key
        .aead(&header[9..25])?
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(header), &mut buf)
        .map_err(|_| damaged("altered, damaged, or sealed with another device key (see JPKI_DEVICE_KEY)"))?;
    serde_json::from_slice(plain).map_err(|e| damaged(&format!("card state unreadable ({e})")))
}

/// A card backed by its file: every state change is durable before the response leaves.
pub struct CardFile {
    path: PathBuf,
    key: DeviceKey,
    card: VirtualCard,
    /// Set when a state change could not be saved: from then on the card answers nothing but
    /// 6581, so an answer can never outrun the state it depends on.
    failed: bool,
    _lock: File,
}

impl std::fmt::Debug for CardFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardFile")
            .field("path", &self.path)
            .field("card", &self.card)
            .finish_non_exhaustive()
    }
}

/// Takes the card file's lock: one process at a time holds a card, as one reader holds a
/// physical card. The lock is a sibling `.NAME.lock` file, since saving replaces the card file.
fn lock(path: &Path) -> Result<File, CardError> {
    let name = path
        .file_name()
        .ok_or_else(|| CardError::Damaged(format!("{}: not a file path", path.display())))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let lock_path = dir.join(format!(".{}.lock", name.to_string_lossy()));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(CardError::io(&lock_path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(CardError::InUse(path.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(CardError::io(&lock_path)(e)),
    }
}

impl CardFile {
    /// Writes a new card to `path`, which must not exist yet.
    pub fn create(path: &Path, key: DeviceKey, card: VirtualCard) -> Result<Self, CardError> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(CardError::io(dir))?;
        }
        let lock = lock(path)?;
        // Checked under the lock, so two creators cannot both see no file.
        if path.exists() {
            return Err(CardError::Refused(format!("{}: already exists", path.display())));
        }
        let mut me = Self {
            path: path.to_owned(),
            key,
            card,
            failed: false,
            _lock: lock,
        };
        me.save()?;
        Ok(me)
    }

    /// Opens the card file at `path`.
    pub fn open(path: &Path, key: DeviceKey) -> Result<Self, CardError> {
        let lock = lock(path)?;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(CardError::io(path))?);
        let state = unseal(&bytes, &key, path)?;
        Ok(Self {
            path: path.to_owned(),
            key,
            card: VirtualCard::from_state(state)?,
            failed: false,
            _lock: lock,
        })
    }

    /// The card.
    pub fn card(&self) -> &VirtualCard {
        &self.card
    }

    /// The card, for issuance-time writes; call [`save`](Self::save) after.
    pub fn card_mut(&mut self) -> &mut VirtualCard {
        &mut self.card
    }

    /// Closes the file (releasing its lock) and keeps the card in memory.
    pub fn into_card(self) -> VirtualCard {
        self.card
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the card's state atomically (temporary file, fsync, rename, directory fsync).
    pub fn save(&mut self) -> Result<(), CardError> {
        let bytes = seal(self.card.state(), &self.key)?;
        file::write_atomically(&self.path, &bytes, 0o600).map_err(CardError::io(&self.path))?;
        self.card.take_dirty();
        Ok(())
    }

    /// One APDU through the card; a changed state is saved before the response is returned.
    /// If it cannot be saved the card answers 6581 (memory failure) instead of the result.
    ///
    /// After a failed save the in-memory state is ahead of the disk (a right PIN verified, a wrong
    /// one counted only in memory), so the session is cleared and the card stops answering until
    /// the file is opened again: no later command can reveal what the lost write decided.
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        if self.failed {
            return Response::status(Sw::MEMORY_FAILURE).to_bytes();
        }
        let response = self.card.transmit(apdu);
        if self.card.take_dirty() && self.save().is_err() {
            self.failed = true;
            self.card.reset();
            return Response::status(Sw::MEMORY_FAILURE).to_bytes();
        }
        response
    }

    /// A warm reset.
    pub fn reset(&mut self) {
        self.card.reset();
    }
}
