//! What the card remembers between power cycles: its applications' files, its private keys, and
//! its PINs with their retry counters. The card file (`store`) keeps this encrypted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

use crate::CardError;

/// The card's applications (APs), by AID (docs: card-interface.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ap {
    /// 公的個人認証AP: the two certificates and their keys.
    Jpki,
    /// 券面事項入力補助AP: number and the four facts as text, for filling in forms.
    Assist,
    /// 券面事項確認AP: the card face as images.
    Face,
    /// 住基AP: the resident record code.
    Juki,
    /// 共通カードAP.
    Common,
}

impl Ap {
    /// Every AP, in AID order of the reference.
    pub const ALL: [Self; 5] = [Self::Jpki, Self::Assist, Self::Face, Self::Juki, Self::Common];

    /// The application identifier.
    pub const fn aid(self) -> &'static [u8] {
        match self {
            Self::Jpki => &[0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01],
            Self::Assist => &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08],
            Self::Face => &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02],
            Self::Juki => &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x01],
            Self::Common => &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x01, 0x00],
        }
    }

    /// The AP with this AID, if the card has it.
    pub fn from_aid(aid: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|ap| ap.aid() == aid)
    }
}

/// A secret the card checks: PINs, the signing password and the 照合番号 the card-face APs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Secret {
    /// JPKI AP key EF 0018: the 4-digit user-authentication PIN.
    AuthPin,
    /// JPKI AP key EF 001B: the 6–16 character signing password.
    SignPassword,
    /// Text-assist AP key EF 0011: its 4-digit PIN.
    AssistPin,
    /// Text-assist AP key EF 0012: blocked at issuance.
    AssistReserved,
    /// Text-assist AP key EF 0014: 照合番号A (the 12-digit individual number).
    AssistA,
    /// Text-assist AP key EF 0015: 照合番号B (birth YYMMDD in era years, expiry year, security code).
    AssistB,
    /// Card-face AP key EF 0011: the birth date as era YYMMDD.
    FaceBirth,
    /// Card-face AP key EF 0012: 照合番号B.
    FaceB,
    /// Card-face AP key EF 0013: 照合番号A.
    FaceA,
    /// 住基AP key EF 001C: its 4-digit PIN.
    JukiPin,
    /// 共通カードAP key EF 001C: its 4-digit PIN.
    CommonPin,
}

/// What a secret looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Exactly this many ASCII digits.
    Digits(usize),
    /// 6–16 characters A–Z and 0–9 (the signing password).
    Password,
}

impl Format {
    /// Whether `value` has this format.
    pub fn accepts(self, value: &[u8]) -> bool {
        match self {
            Self::Digits(n) => value.len() == n && value.iter().all(u8::is_ascii_digit),
            Self::Password => {
                (6..=16).contains(&value.len())
                    && value.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
        }
    }
}

impl Secret {
    /// Every secret the card holds.
    pub const ALL: [Self; 11] = [
        Self::AuthPin,
        Self::SignPassword,
        Self::AssistPin,
        Self::AssistReserved,
        Self::AssistA,
        Self::AssistB,
        Self::FaceBirth,
        Self::FaceB,
        Self::FaceA,
        Self::JukiPin,
        Self::CommonPin,
    ];

    /// The AP and key EF that hold it.
    pub const fn location(self) -> (Ap, u16) {
        match self {
            Self::AuthPin => (Ap::Jpki, 0x0018),
            Self::SignPassword => (Ap::Jpki, 0x001B),
            Self::AssistPin => (Ap::Assist, 0x0011),
            Self::AssistReserved => (Ap::Assist, 0x0012),
            Self::AssistA => (Ap::Assist, 0x0014),
            Self::AssistB => (Ap::Assist, 0x0015),
            Self::FaceBirth => (Ap::Face, 0x0011),
            Self::FaceB => (Ap::Face, 0x0012),
            Self::FaceA => (Ap::Face, 0x0013),
            Self::JukiPin => (Ap::Juki, 0x001C),
            Self::CommonPin => (Ap::Common, 0x001C),
        }
    }

    /// The secret in key EF `fid` of `ap`.
    pub fn at(ap: Ap, fid: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.location() == (ap, fid))
    }

    /// Attempts allowed before it locks (the 照合番号 limit of 10 is inferred, not published).
    pub const fn max_tries(self) -> u8 {
        match self {
            Self::SignPassword => 5,
            Self::AssistA | Self::AssistB | Self::FaceBirth | Self::FaceB | Self::FaceA => 10,
            _ => 3,
        }
    }

    /// Its format (what CHANGE REFERENCE DATA and the unblock accept as a new value).
    pub const fn format(self) -> Format {
        match self {
            Self::SignPassword => Format::Password,
            Self::AssistA | Self::FaceA => Format::Digits(12),
            Self::AssistB | Self::FaceB => Format::Digits(14),
            Self::FaceBirth => Format::Digits(6),
            _ => Format::Digits(4),
        }
    }

    /// Whether the holder may change it with CHANGE REFERENCE DATA (the 照合番号 follow from the
    /// card's data and cannot be changed).
    pub const fn changeable(self) -> bool {
        matches!(
            self,
            Self::AuthPin | Self::SignPassword | Self::AssistPin | Self::JukiPin | Self::CommonPin
        )
    }

    /// Its name in messages.
    pub const fn label(self) -> &'static str {
        match self {
            Self::AuthPin => "user-authentication PIN",
            Self::SignPassword => "signing password",
            Self::AssistPin => "text-assist PIN",
            Self::AssistReserved => "text-assist reserved key",
            Self::AssistA => "照合番号A (text-assist AP)",
            Self::AssistB => "照合番号B (text-assist AP)",
            Self::FaceBirth => "birth-date key (card-face AP)",
            Self::FaceB => "照合番号B (card-face AP)",
            Self::FaceA => "照合番号A (card-face AP)",
            Self::JukiPin => "住基 PIN",
            Self::CommonPin => "共通カード PIN",
        }
    }
}

/// A private key on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeySlot {
    /// JPKI AP EF 0017: the user-authentication key (auth PIN).
    Auth,
    /// JPKI AP EF 001A: the signature key (signing password).
    Sign,
    /// The card's own key: signs for the text-assist and card-face APs (80 2A with P2=00) and
    /// answers INTERNAL AUTHENTICATE in the common AP (key EF 0019); no credential. One key pair
    /// stands in for the per-AP card keys of the real card.
    Card,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

mod two_digits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &u8, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}", v.min(&99)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A stored secret: a keyed hash of its value and its retry counter.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PinRecord {
    #[serde(with = "b64")]
    pub(crate) verifier: Vec<u8>,
    /// Written as two digits, so a right and a wrong attempt seal to files of the same length.
    #[serde(with = "two_digits")]
    pub(crate) tries_left: u8,
}

/// An elementary file's content.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    pub(crate) ap: Ap,
    pub(crate) fid: u16,
    #[serde(with = "b64")]
    pub(crate) data: Vec<u8>,
}

/// A private key, PKCS#8.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyEntry {
    pub(crate) slot: KeySlot,
    #[serde(with = "b64")]
    pub(crate) pkcs8: Vec<u8>,
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.pkcs8);
    }
}

/// GET DATA objects of the MF.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DataObject {
    pub(crate) tag: u16,
    #[serde(with = "b64")]
    pub(crate) value: Vec<u8>,
}

/// The card's persistent state.
#[derive(Serialize, Deserialize)]
pub(crate) struct State {
    /// Layout version of this structure.
    pub(crate) version: u32,
    /// Set at personalisation.
    pub(crate) card_id: Option<String>,
    /// Whom the issuer made the card for, before personalisation (resuming an interrupted
    /// issuance checks it).
    #[serde(default)]
    pub(crate) issuance_ref: Option<String>,
    /// Keys the PIN verifiers (HMAC-SHA-256), random per card.
    #[serde(with = "b64")]
    pub(crate) pin_key: Vec<u8>,
    /// Authenticates the authority for unblocking (EXTERNAL AUTHENTICATE); set at personalisation.
    #[serde(with = "b64", default)]
    pub(crate) management_key: Vec<u8>,
    pub(crate) keys: Vec<KeyEntry>,
    pub(crate) pins: BTreeMap<Secret, PinRecord>,
    pub(crate) files: Vec<FileEntry>,
    /// 共通カードAP EF 0001, record 1.
    #[serde(with = "b64", default)]
    pub(crate) common_record: Vec<u8>,
    pub(crate) data_objects: Vec<DataObject>,
}

impl Drop for State {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.pin_key);
        zeroize::Zeroize::zeroize(&mut self.management_key);
    }
}

pub(crate) const STATE_VERSION: u32 = 1;

impl State {
    pub(crate) fn file(&self, ap: Ap, fid: u16) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.ap == ap && f.fid == fid)
            .map(|f| f.data.as_slice())
    }

    pub(crate) fn set_file(&mut self, ap: Ap, fid: u16, data: Vec<u8>) {
        match self.files.iter_mut().find(|f| f.ap == ap && f.fid == fid) {
            Some(f) => f.data = data,
            None => self.files.push(FileEntry { ap, fid, data }),
        }
    }

    pub(crate) fn remove_file(&mut self, ap: Ap, fid: u16) {
        self.files.retain(|f| !(f.ap == ap && f.fid == fid));
    }

    pub(crate) fn key(&self, slot: KeySlot) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|k| k.slot == slot)
            .map(|k| k.pkcs8.as_slice())
    }

    pub(crate) fn set_key(&mut self, slot: KeySlot, pkcs8: &[u8]) {
        self.keys.retain(|k| k.slot != slot);
        self.keys.push(KeyEntry {
            slot,
            pkcs8: pkcs8.to_vec(),
        });
    }

    pub(crate) fn data_object(&self, tag: u16) -> Option<&[u8]> {
        self.data_objects
            .iter()
            .find(|d| d.tag == tag)
            .map(|d| d.value.as_slice())
    }

    pub(crate) fn set_data_object(&mut self, tag: u16, value: Vec<u8>) {
        self.data_objects.retain(|d| d.tag != tag);
        self.data_objects.push(DataObject { tag, value });
    }

    /// The keyed hash a secret's value is stored as.
    pub(crate) fn verifier(&self, secret: Secret, value: &[u8]) -> Vec<u8> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.pin_key);
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        ctx.update(format!("{secret:?}").as_bytes());
        ctx.update(&[0]);
        ctx.update(value);
        ctx.sign().as_ref().to_vec()
    }

    /// Sets a secret's value and gives it its full counter.
    pub(crate) fn set_secret(&mut self, secret: Secret, value: &[u8]) {
        let verifier = self.verifier(secret, value);
        self.pins.insert(
            secret,
            PinRecord {
                verifier,
                tries_left: secret.max_tries(),
            },
        );
    }

    /// A secret no value opens (random verifier) that is locked from the start.
    pub(crate) fn set_locked_secret(&mut self, secret: Secret) -> Result<(), CardError> {
        let mut random = Zeroizing::new([0u8; 32]);
        crate::random(random.as_mut())?;
        let verifier = self.verifier(secret, random.as_ref());
        self.pins.insert(
            secret,
            PinRecord {
                verifier,
                tries_left: 0,
            },
        );
        Ok(())
    }
}
