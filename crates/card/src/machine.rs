//! The card as a pure state machine: command APDU bytes in, response APDU bytes out.
//!
//! [`VirtualCard::transmit`] is the one entry point every client uses; nothing here does I/O.
//! Commands that change what the card remembers (a PIN attempt, a PIN change, an unblock) set a
//! flag, [`VirtualCard::take_dirty`], that the card file (`store`) uses to make the new state
//! durable before the response leaves the card.

use std::collections::BTreeSet;

use jpki_model::CertKind;

use crate::CardError;
use crate::apdu::{Command, Response, Sw};
use crate::rsa;
use crate::state::{Ap, KeySlot, STATE_VERSION, Secret, State};

/// The answer-to-reset of the JPKI card, which OpenSC's `jpki` driver matches.
pub const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];

/// GET DATA tags of the MF.
pub mod tag {
    /// The card ID (15 ASCII digits).
    pub const CARD_ID: u16 = 0x0045;
    /// The municipality that issued the card (6 ASCII digits).
    pub const MUNICIPALITY: u16 = 0x00F0;
    /// The card's expiry date (YYYYMMDD).
    pub const EXPIRY: u16 = 0x00F2;
    /// The authority's card-data CV certificate.
    pub const CV_CERT: u16 = 0x7F21;
    /// The same certificate under the tag some clients ask for.
    pub const CV_CERT_CHAIN: u16 = 0x00F8;
}

/// JPKI AP elementary files.
pub mod jpki_ef {
    /// The signature certificate (after the signing password).
    pub const SIGN_CERT: u16 = 0x0001;
    /// The signature CA certificate.
    pub const SIGN_CA: u16 = 0x0002;
    /// PKCS#11 token information.
    pub const TOKEN_INFO: u16 = 0x0006;
    /// Which certificates the card holds.
    pub const CERT_FLAGS: u16 = 0x0008;
    /// The user-authentication certificate (free read).
    pub const AUTH_CERT: u16 = 0x000A;
    /// The user-authentication CA certificate.
    pub const AUTH_CA: u16 = 0x000B;
    /// The user-authentication private key.
    pub const AUTH_KEY: u16 = 0x0017;
    /// The signature private key.
    pub const SIGN_KEY: u16 = 0x001A;
}

/// Who may read an EF.
#[derive(Debug, Clone, Copy)]
enum Access {
    Always,
    AnyOf(&'static [Secret]),
}

/// What an EF is.
#[derive(Debug, Clone, Copy)]
enum Ef {
    Binary(Access),
    Key(Secret),
    PrivateKey(KeySlot),
    Record,
}

/// The card's file system: which EFs each AP has, and their access conditions.
fn ef(ap: Ap, fid: u16) -> Option<Ef> {
    use Access::{Always, AnyOf};
    use Secret as S;
    if let Some(secret) = Secret::at(ap, fid) {
        return Some(Ef::Key(secret));
    }
    Some(match (ap, fid) {
        (Ap::Jpki, 0x0001) => Ef::Binary(AnyOf(&[S::SignPassword])),
        (Ap::Jpki, 0x0002 | 0x0006 | 0x0008 | 0x000A | 0x000B) => Ef::Binary(Always),
        (Ap::Jpki, 0x0017) => Ef::PrivateKey(KeySlot::Auth),
        (Ap::Jpki, 0x001A) => Ef::PrivateKey(KeySlot::Sign),
        (Ap::Assist, 0x0001) => Ef::Binary(AnyOf(&[S::AssistPin, S::AssistA])),
        (Ap::Assist, 0x0002) => Ef::Binary(AnyOf(&[S::AssistPin, S::AssistB])),
        (Ap::Assist, 0x0003) => Ef::Binary(AnyOf(&[S::AssistPin, S::AssistA, S::AssistB])),
        (Ap::Assist | Ap::Face, 0x0004) => Ef::Binary(Always),
        (Ap::Face, 0x0001) => Ef::Binary(AnyOf(&[S::FaceBirth])),
        (Ap::Face, 0x0002) => Ef::Binary(AnyOf(&[S::FaceA, S::FaceB])),
        (Ap::Face, 0x0003) => Ef::Binary(Always),
        (Ap::Face, 0x0005) => Ef::Binary(AnyOf(&[S::FaceA])),
        (Ap::Juki, 0x0001) => Ef::Binary(AnyOf(&[S::JukiPin])),
        (Ap::Common, 0x0001) => Ef::Record,
        (Ap::Common, 0x0019) => Ef::PrivateKey(KeySlot::Card),
        _ => return None,
    })
}

/// What one power-on session remembers; lost on reset or power-off.
#[derive(Default)]
struct Session {
    ap: Option<Ap>,
    ef: Option<u16>,
    verified: BTreeSet<Secret>,
    management: bool,
    challenge: Option<Vec<u8>>,
    /// Response bytes waiting for GET RESPONSE (after 61xx).
    pending: Vec<u8>,
}

/// The holder's secrets chosen at issuance.
pub struct HolderSecrets<'a> {
    /// The 4-digit user-authentication PIN (also the 住基 and common-AP PIN).
    pub auth_pin: &'a [u8],
    /// The signing password.
    pub sign_password: &'a [u8],
    /// The text-assist PIN; the auth PIN when not given.
    pub assist_pin: Option<&'a [u8]>,
}

/// What the authority writes to a card at issuance, besides the certificates.
#[derive(Clone, Default)]
pub struct Personalization {
    /// The card ID (15 digits).
    pub card_id: String,
    /// The per-card management key the authority derives (EXTERNAL AUTHENTICATE for unblocking).
    pub management_key: Vec<u8>,
    /// JPKI AP EF 000B.
    pub auth_ca: Vec<u8>,
    /// JPKI AP EF 0002.
    pub sign_ca: Vec<u8>,
    /// Text-assist AP EF 0001–0003.
    pub assist: [Vec<u8>; 3],
    /// The authority's card-data CV certificate (EF 0004 of both card-face APs, GET DATA 7F21).
    pub cv_cert: Vec<u8>,
    /// Card-face AP EF 0001, 0002, 0003, 0005.
    pub face: [Vec<u8>; 4],
    /// 住基AP EF 0001.
    pub juki: Vec<u8>,
    /// 共通カードAP EF 0001 record 1.
    pub common_record: Vec<u8>,
    /// 照合番号A: the individual number, 12 digits.
    pub collation_a: String,
    /// 照合番号B: 14 digits.
    pub collation_b: String,
    /// The birth date as era YYMMDD (card-face AP key 0011).
    pub birth_key: String,
    /// 6-digit municipality code (GET DATA F0).
    pub municipality: String,
    /// YYYYMMDD (GET DATA F2).
    pub expiry: String,
}

impl std::fmt::Debug for HolderSecrets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HolderSecrets(..)")
    }
}

impl std::fmt::Debug for Personalization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The 照合番号 and the management key are secrets.
        f.debug_struct("Personalization")
            .field("card_id", &self.card_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Personalization {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.management_key);
        zeroize::Zeroize::zeroize(&mut self.collation_a);
        zeroize::Zeroize::zeroize(&mut self.collation_b);
        zeroize::Zeroize::zeroize(&mut self.birth_key);
    }
}

impl Personalization {
    /// Stand-in card data with valid 照合番号 and placeholder EF contents (card ID
    /// 123456789012345, management key of 32 bytes 0x07): for tests, benchmarks and fuzzing,
    /// where only the card's behaviour matters, not an authority's signatures.
    pub fn placeholder() -> Self {
        let ef = |s: &str| s.as_bytes().to_vec();
        Self {
            card_id: "123456789012345".into(),
            management_key: vec![7; 32],
            auth_ca: ef("auth-ca"),
            sign_ca: ef("sign-ca"),
            assist: [ef("a1"), ef("a2"), ef("a3")],
            cv_cert: ef("cvc"),
            face: [ef("f1"), ef("f2"), ef("f3"), ef("f5")],
            juki: ef("juki"),
            common_record: ef("\u{1}\u{1c}1234567890123451310120350217"),
            collation_a: "123456789018".into(),
            collation_b: "55021720352285".into(),
            birth_key: "550217".into(),
            municipality: "131016".into(),
            expiry: "20350217".into(),
        }
    }
}

/// The card.
pub struct VirtualCard {
    state: State,
    session: Session,
    dirty: bool,
}

impl std::fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualCard")
            .field("card_id", &self.state.card_id)
            .finish_non_exhaustive()
    }
}

fn status(sw: Sw) -> Response {
    Response::status(sw)
}

/// Constant-time equality of two byte strings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

impl VirtualCard {
    /// A new card for a holder: its three key pairs are generated on it, the holder's PINs set.
    /// It has no certificates or card data until the authority personalises it.
    pub fn manufacture(secrets: &HolderSecrets<'_>) -> Result<Self, CardError> {
        let mut pin_key = vec![0u8; 32];
        crate::random(&mut pin_key)?;
        let mut state = State {
            version: STATE_VERSION,
            card_id: None,
            issuance_ref: None,
            pin_key,
            management_key: Vec::new(),
            keys: Vec::new(),
            pins: Default::default(),
            files: Vec::new(),
            common_record: Vec::new(),
            data_objects: Vec::new(),
        };
        for slot in [KeySlot::Auth, KeySlot::Sign, KeySlot::Card] {
            let (pkcs8, _) = rsa::generate()?;
            state.set_key(slot, &pkcs8);
        }
        let check = |secret: Secret, v: &[u8]| {
            if secret.format().accepts(v) {
                Ok(())
            } else {
                Err(CardError::Refused(format!(
                    "{} has the wrong format",
                    secret.label()
                )))
            }
        };
        check(Secret::AuthPin, secrets.auth_pin)?;
        check(Secret::SignPassword, secrets.sign_password)?;
        let assist = secrets.assist_pin.unwrap_or(secrets.auth_pin);
        check(Secret::AssistPin, assist)?;
        state.set_secret(Secret::AuthPin, secrets.auth_pin);
        state.set_secret(Secret::SignPassword, secrets.sign_password);
        state.set_secret(Secret::AssistPin, assist);
        state.set_secret(Secret::JukiPin, secrets.auth_pin);
        state.set_secret(Secret::CommonPin, secrets.auth_pin);
        state.set_locked_secret(Secret::AssistReserved)?;
        state.set_file(
            Ap::Jpki,
            jpki_ef::TOKEN_INFO,
            crate::layout::token_info("JPKIAPICCTOKEN2").to_vec(),
        );
        state.set_file(
            Ap::Jpki,
            jpki_ef::CERT_FLAGS,
            crate::layout::token_ef0008(false).to_vec(),
        );
        Ok(Self {
            state,
            session: Session::default(),
            dirty: true,
        })
    }

    pub(crate) fn from_state(state: State) -> Result<Self, CardError> {
        if state.version != STATE_VERSION {
            return Err(CardError::Damaged(format!(
                "card state version {} not supported",
                state.version
            )));
        }
        Ok(Self {
            state,
            session: Session::default(),
            dirty: false,
        })
    }

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// The DER SubjectPublicKeyInfo of a key pair: all that ever leaves the card of a key.
    pub fn public_key(&self, slot: KeySlot) -> Result<Vec<u8>, CardError> {
        let pkcs8 = self
            .state
            .key(slot)
            .ok_or_else(|| CardError::Damaged(format!("card has no {slot:?} key")))?;
        rsa::public_key(pkcs8)
    }

    /// A new key pair for `kind` (renewal); the old certificate is removed.
    pub fn regenerate_key(&mut self, kind: CertKind) -> Result<(), CardError> {
        let (pkcs8, _) = rsa::generate()?;
        let slot = match kind {
            CertKind::Authentication => KeySlot::Auth,
            CertKind::Signature => KeySlot::Sign,
        };
        self.state.set_key(slot, &pkcs8);
        self.install_certificate(kind, None);
        Ok(())
    }

    /// Writes (or with `None` removes) the certificate of `kind` in the JPKI AP.
    pub fn install_certificate(&mut self, kind: CertKind, der: Option<&[u8]>) {
        let fid = match kind {
            CertKind::Authentication => jpki_ef::AUTH_CERT,
            CertKind::Signature => jpki_ef::SIGN_CERT,
        };
        match der {
            Some(d) => self.state.set_file(Ap::Jpki, fid, d.to_vec()),
            None => self.state.remove_file(Ap::Jpki, fid),
        }
        let has_sign = self.state.file(Ap::Jpki, jpki_ef::SIGN_CERT).is_some();
        self.state.set_file(
            Ap::Jpki,
            jpki_ef::CERT_FLAGS,
            crate::layout::token_ef0008(has_sign).to_vec(),
        );
        self.dirty = true;
    }

    /// Writes the authority's card data: card ID, CA certificates, text-assist, card-face, 住基
    /// and common-AP data, the 照合番号 and the management key.
    pub fn personalize(&mut self, p: &Personalization) -> Result<(), CardError> {
        for (secret, value) in [
            (Secret::AssistA, &p.collation_a),
            (Secret::FaceA, &p.collation_a),
            (Secret::AssistB, &p.collation_b),
            (Secret::FaceB, &p.collation_b),
            (Secret::FaceBirth, &p.birth_key),
        ] {
            if !secret.format().accepts(value.as_bytes()) {
                return Err(CardError::Refused(format!(
                    "{} has the wrong format",
                    secret.label()
                )));
            }
            self.state.set_secret(secret, value.as_bytes());
        }
        if p.management_key.len() != 32 {
            return Err(CardError::Refused("management key must be 32 bytes".into()));
        }
        let s = &mut self.state;
        s.card_id = Some(p.card_id.clone());
        s.management_key = p.management_key.clone();
        s.set_file(Ap::Jpki, jpki_ef::AUTH_CA, p.auth_ca.clone());
        if p.sign_ca.is_empty() {
            s.remove_file(Ap::Jpki, jpki_ef::SIGN_CA);
        } else {
            s.set_file(Ap::Jpki, jpki_ef::SIGN_CA, p.sign_ca.clone());
        }
        for (fid, data) in (1u16..).zip(&p.assist) {
            s.set_file(Ap::Assist, fid, data.clone());
        }
        s.set_file(Ap::Assist, 0x0004, p.cv_cert.clone());
        s.set_file(Ap::Face, 0x0004, p.cv_cert.clone());
        for (fid, data) in [1u16, 2, 3, 5].into_iter().zip(&p.face) {
            s.set_file(Ap::Face, fid, data.clone());
        }
        s.set_file(Ap::Juki, 0x0001, p.juki.clone());
        s.common_record = p.common_record.clone();
        s.set_data_object(tag::CARD_ID, p.card_id.as_bytes().to_vec());
        s.set_data_object(tag::MUNICIPALITY, p.municipality.as_bytes().to_vec());
        s.set_data_object(tag::EXPIRY, p.expiry.as_bytes().to_vec());
        s.set_data_object(tag::CV_CERT, p.cv_cert.clone());
        s.set_data_object(tag::CV_CERT_CHAIN, p.cv_cert.clone());
        self.dirty = true;
        Ok(())
    }

    /// Records whom the card is being issued for (before personalisation).
    pub fn set_issuance_ref(&mut self, reference: &str) {
        self.state.issuance_ref = Some(reference.to_owned());
        self.dirty = true;
    }

    /// Whom the card was being issued for, if recorded.
    pub fn issuance_ref(&self) -> Option<&str> {
        self.state.issuance_ref.as_deref()
    }

    /// The card ID, once personalised.
    pub fn card_id(&self) -> Option<&str> {
        self.state.card_id.as_deref()
    }

    /// The certificate of `kind` on the card, if written.
    pub fn certificate(&self, kind: CertKind) -> Option<&[u8]> {
        self.state.file(
            Ap::Jpki,
            match kind {
                CertKind::Authentication => jpki_ef::AUTH_CERT,
                CertKind::Signature => jpki_ef::SIGN_CERT,
            },
        )
    }

    /// Attempts left for a secret (None if the card has no such secret).
    pub fn tries_left(&self, secret: Secret) -> Option<u8> {
        self.state.pins.get(&secret).map(|p| p.tries_left)
    }

    /// A warm reset or power cycle: no AP selected, every security status cleared.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Whether the persistent state changed since the last call (and clears the flag).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// One command APDU in, one response APDU out. Never fails: malformed input gets an error
    /// status word.
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.process(apdu).to_bytes()
    }

    /// [`transmit`](Self::transmit) with the response parsed.
    pub fn process(&mut self, apdu: &[u8]) -> Response {
        let Ok(cmd) = Command::parse(apdu) else {
            self.session.pending.clear();
            return status(Sw::WRONG_LENGTH);
        };
        if cmd.ins != 0xC0 {
            self.session.pending.clear();
        }
        if cmd.cla & 0x0C != 0 {
            return status(Sw::SM_NOT_SUPPORTED);
        }
        match (cmd.cla, cmd.ins) {
            (0x00, 0xA4) => self.select(&cmd),
            (0x00, 0xB0) => self.read_binary(&cmd),
            (0x00, 0xB2) => self.read_record(&cmd),
            (0x00, 0x20) => self.verify(&cmd),
            (0x00, 0x24) => self.change(&cmd, 0x01),
            (0x80, 0x32) => self.change(&cmd, 0x00),
            (0x80, 0x2A) => self.sign(&cmd),
            (0x00, 0x84) => self.get_challenge(&cmd),
            (0x00, 0x88) => self.internal_authenticate(&cmd),
            (0x00, 0x82) => self.external_authenticate(&cmd),
            (0x00, 0x2C) => self.reset_retry_counter(&cmd),
            (0x00, 0xCA) => self.get_data(&cmd),
            (0x00, 0xC0) => self.get_response(&cmd),
            (0x00 | 0x80, _) => status(Sw::INS_NOT_SUPPORTED),
            _ => status(Sw::CLA_NOT_SUPPORTED),
        }
    }

    /// Answers `data` within Ne; what does not fit waits for GET RESPONSE (61xx).
    fn answer(&mut self, mut data: Vec<u8>, ne: Option<usize>) -> Response {
        let fits = ne.unwrap_or(0);
        if data.len() <= fits {
            return Response::ok(data);
        }
        let rest = data.split_off(fits);
        let sw = Sw::more_available(rest.len());
        self.session.pending = rest;
        Response { data, sw }
    }

    fn get_response(&mut self, cmd: &Command<'_>) -> Response {
        if (cmd.p1, cmd.p2) != (0, 0) {
            return status(Sw::WRONG_P1P2);
        }
        let Some(ne) = cmd.ne else {
            return status(Sw::WRONG_LENGTH);
        };
        if self.session.pending.is_empty() {
            return status(Sw::CONDITIONS_NOT_SATISFIED);
        }
        let pending = std::mem::take(&mut self.session.pending);
        self.answer(pending, Some(ne))
    }

    fn select(&mut self, cmd: &Command<'_>) -> Response {
        match cmd.p1 {
            0x04 => {
                let Some(ap) = Ap::from_aid(cmd.data) else {
                    return status(Sw::NOT_FOUND);
                };
                if !matches!(cmd.p2, 0x00 | 0x0C) {
                    return status(Sw::WRONG_P1P2);
                }
                self.session = Session {
                    ap: Some(ap),
                    ..Session::default()
                };
                status(Sw::OK)
            }
            0x00 | 0x02 => {
                let [hi, lo] = cmd.data else {
                    return status(if cmd.data.is_empty() {
                        Sw::NOT_FOUND
                    } else {
                        Sw::WRONG_LENGTH
                    });
                };
                let fid = u16::from_be_bytes([*hi, *lo]);
                if !matches!(cmd.p2, 0x00 | 0x0C) {
                    return status(Sw::WRONG_P1P2);
                }
                match self.session.ap {
                    Some(ap) if self.exists(ap, fid) => {
                        self.session.ef = Some(fid);
                        status(Sw::OK)
                    }
                    _ => status(Sw::NOT_FOUND),
                }
            }
            _ => status(Sw::WRONG_P1P2),
        }
    }

    fn exists(&self, ap: Ap, fid: u16) -> bool {
        match ef(ap, fid) {
            None => false,
            Some(Ef::Binary(_)) => self.state.file(ap, fid).is_some(),
            Some(Ef::Key(s)) => self.state.pins.contains_key(&s),
            Some(Ef::PrivateKey(slot)) => self.state.key(slot).is_some(),
            Some(Ef::Record) => !self.state.common_record.is_empty(),
        }
    }

    fn allowed(&self, access: Access) -> bool {
        match access {
            Access::Always => true,
            Access::AnyOf(list) => list.iter().any(|s| self.session.verified.contains(s)),
        }
    }

    /// The EF a command names: P1/P2 with bit 8 set and a 5-bit SFI, or the current EF.
    fn sfi_or_current(&self, sfi_byte: u8) -> Result<(Ap, u16), Sw> {
        let ap = self.session.ap.ok_or(Sw::NOT_FOUND)?;
        if sfi_byte & 0x80 != 0 {
            if sfi_byte & 0x60 != 0 {
                return Err(Sw::WRONG_P1P2);
            }
            let fid = u16::from(sfi_byte & 0x1F);
            if !self.exists(ap, fid) {
                return Err(Sw::NOT_FOUND);
            }
            Ok((ap, fid))
        } else {
            self.session.ef.map(|fid| (ap, fid)).ok_or(Sw::NOT_ALLOWED)
        }
    }

    fn read_binary(&mut self, cmd: &Command<'_>) -> Response {
        let (target, offset) = if cmd.p1 & 0x80 != 0 {
            (self.sfi_or_current(cmd.p1), usize::from(cmd.p2))
        } else {
            (
                self.sfi_or_current(0),
                usize::from(u16::from_be_bytes([cmd.p1 & 0x7F, cmd.p2])),
            )
        };
        let (ap, fid) = match target {
            Ok(t) => t,
            Err(sw) => return status(sw),
        };
        let Some(ne) = cmd.ne else {
            return status(Sw::WRONG_LENGTH);
        };
        let access = match ef(ap, fid) {
            Some(Ef::Binary(a)) => a,
            Some(_) => return status(Sw::INCOMPATIBLE_FILE),
            None => return status(Sw::NOT_FOUND),
        };
        if !self.allowed(access) {
            return status(Sw::SECURITY_NOT_SATISFIED);
        }
        self.session.ef = Some(fid);
        let Some(file) = self.state.file(ap, fid) else {
            return status(Sw::NOT_FOUND);
        };
        if offset >= file.len() {
            return status(Sw::OFFSET_OUT_OF_RANGE);
        }
        let end = file.len().min(offset.saturating_add(ne));
        let data = file[offset..end].to_vec();
        // Le of all zeros asks for everything available up to the maximum (ISO/IEC 7816-4 §5.1):
        // a shorter answer is complete, not a warning.
        let wildcard = (ne == 256 && !cmd.extended) || ne == 65_536;
        let sw = if data.len() < ne && !wildcard {
            Sw::END_OF_FILE
        } else {
            Sw::OK
        };
        Response { data, sw }
    }

    fn read_record(&mut self, cmd: &Command<'_>) -> Response {
        if cmd.p2 & 0x07 != 0x04 {
            return status(Sw::WRONG_P1P2);
        }
        let sfi = cmd.p2 >> 3;
        let target = if sfi == 0 {
            self.sfi_or_current(0)
        } else {
            self.sfi_or_current(0x80 | sfi)
        };
        let (ap, fid) = match target {
            Ok(t) => t,
            Err(sw) => return status(sw),
        };
        if !matches!(ef(ap, fid), Some(Ef::Record)) {
            return status(Sw::INCOMPATIBLE_FILE);
        }
        self.session.ef = Some(fid);
        if cmd.p1 != 1 || self.state.common_record.is_empty() {
            return status(Sw::RECORD_NOT_FOUND);
        }
        let Some(ne) = cmd.ne else {
            return status(Sw::WRONG_LENGTH);
        };
        let record = self.state.common_record.clone();
        let wildcard = (ne == 256 && !cmd.extended) || ne == 65_536;
        if ne < record.len() && !wildcard {
            return status(Sw::wrong_le(record.len()));
        }
        Response::ok(record)
    }

    /// The key EF a VERIFY / CHANGE / RESET RETRY COUNTER names in P2.
    fn key_ref(&self, p2: u8) -> Result<Secret, Sw> {
        let ap = self.session.ap.ok_or(Sw::DATA_NOT_FOUND)?;
        let fid = match p2 {
            0x80 => self.session.ef.ok_or(Sw::DATA_NOT_FOUND)?,
            p if p & 0xE0 == 0x80 => u16::from(p & 0x1F),
            _ => return Err(Sw::WRONG_P1P2),
        };
        match Secret::at(ap, fid) {
            Some(s) if self.state.pins.contains_key(&s) => Ok(s),
            _ => Err(Sw::DATA_NOT_FOUND),
        }
    }

    fn verify(&mut self, cmd: &Command<'_>) -> Response {
        if cmd.p1 != 0 {
            return status(Sw::WRONG_P1P2);
        }
        let secret = match self.key_ref(cmd.p2) {
            Ok(s) => s,
            Err(sw) => return status(sw),
        };
        let verifier = self.state.verifier(secret, cmd.data);
        let Some(rec) = self.state.pins.get_mut(&secret) else {
            return status(Sw::DATA_NOT_FOUND);
        };
        if cmd.data.is_empty() {
            // A status query: the counter, never a spent attempt; 63C0 (not 6984) when locked, or
            // OpenSC gives up on the whole card.
            return status(Sw::tries_left(rec.tries_left));
        }
        if rec.tries_left == 0 {
            return status(Sw::BLOCKED);
        }
        let ok = ct_eq(&verifier, &rec.verifier);
        // The new counter is written whatever the outcome, so a wrong attempt cannot be told
        // from a right one by watching for a write and cancelling it.
        self.dirty = true;
        if ok {
            rec.tries_left = secret.max_tries();
            self.session.verified.insert(secret);
            status(Sw::OK)
        } else {
            rec.tries_left -= 1;
            let left = rec.tries_left;
            self.session.verified.remove(&secret);
            status(Sw::tries_left(left))
        }
    }

    /// CHANGE REFERENCE DATA (00 24 01 P2) and the 住基/common AP's CHANGE KEY (80 32 00 P2):
    /// after a VERIFY in this session, the data field is the new value.
    fn change(&mut self, cmd: &Command<'_>, want_p1: u8) -> Response {
        if cmd.p1 != want_p1 {
            return status(Sw::WRONG_P1P2);
        }
        let secret = match self.key_ref(cmd.p2) {
            Ok(s) => s,
            Err(sw) => return status(sw),
        };
        if !secret.changeable() {
            return status(Sw::NOT_ALLOWED);
        }
        if self.tries_left(secret) == Some(0) {
            return status(Sw::BLOCKED);
        }
        if !self.session.verified.contains(&secret) {
            return status(Sw::SECURITY_NOT_SATISFIED);
        }
        if !secret.format().accepts(cmd.data) {
            return status(Sw::WRONG_DATA);
        }
        self.state.set_secret(secret, cmd.data);
        self.dirty = true;
        status(Sw::OK)
    }

    fn sign(&mut self, cmd: &Command<'_>) -> Response {
        let Some(ap) = self.session.ap else {
            return status(Sw::NOT_FOUND);
        };
        let slot = match (ap, cmd.p2) {
            (Ap::Assist | Ap::Face, 0x00) => KeySlot::Card,
            (_, p2) if p2 & 0x80 == 0 => return status(Sw::WRONG_P1P2),
            (_, p2) => match self.sfi_or_current(if p2 == 0x80 { 0 } else { p2 }) {
                // The card key answers INTERNAL AUTHENTICATE here, not the JPKI signing command.
                Ok((ap, fid)) => match ef(ap, fid) {
                    Some(Ef::PrivateKey(KeySlot::Card)) => return status(Sw::INCOMPATIBLE_FILE),
                    Some(Ef::PrivateKey(slot)) => slot,
                    _ => return status(Sw::INCOMPATIBLE_FILE),
                },
                Err(sw) => return status(sw),
            },
        };
        let needed = match slot {
            KeySlot::Auth => Some(Secret::AuthPin),
            KeySlot::Sign => Some(Secret::SignPassword),
            KeySlot::Card => None,
        };
        if let Some(s) = needed
            && !self.session.verified.contains(&s)
        {
            return status(Sw::SECURITY_NOT_SATISFIED);
        }
        if cmd.data.is_empty() {
            return status(Sw::WRONG_LENGTH);
        }
        let Some(pkcs8) = self.state.key(slot) else {
            return status(Sw::NOT_FOUND);
        };
        let digest32 = || <&[u8; 32]>::try_from(cmd.data).ok();
        let signed = match cmd.p1 {
            0x00 if cmd.data.len() <= rsa::MAX_PKCS1_INPUT => rsa::sign_pkcs1(pkcs8, cmd.data),
            0x01 => match digest32() {
                Some(d) => rsa::sign_pkcs1(pkcs8, d),
                None => return status(Sw::WRONG_LENGTH),
            },
            0x02 => match digest32() {
                Some(d) => rsa::sign_pkcs1(pkcs8, &rsa::sha256_digest_info(d)),
                None => return status(Sw::WRONG_LENGTH),
            },
            0x03 => rsa::sign_pkcs1(pkcs8, &rsa::sha256_digest_info(&rsa::sha256(cmd.data))),
            0x04 => match digest32() {
                Some(d) => rsa::sign_pss_sha256(pkcs8, d),
                None => return status(Sw::WRONG_LENGTH),
            },
            0x05 => rsa::sign_pss_sha256(pkcs8, &rsa::sha256(cmd.data)),
            0x00 => return status(Sw::WRONG_LENGTH),
            _ => return status(Sw::WRONG_P1P2),
        };
        match signed {
            Ok(sig) => self.answer(sig, cmd.ne),
            Err(_) => status(Sw::UNKNOWN),
        }
    }

    fn internal_authenticate(&mut self, cmd: &Command<'_>) -> Response {
        if cmd.p1 != 0 || cmd.p2 & 0x80 == 0 {
            return status(Sw::WRONG_P1P2);
        }
        let slot = match self.sfi_or_current(if cmd.p2 == 0x80 { 0 } else { cmd.p2 }) {
            Ok((ap, fid)) => match ef(ap, fid) {
                Some(Ef::PrivateKey(KeySlot::Card)) => KeySlot::Card,
                _ => return status(Sw::INCOMPATIBLE_FILE),
            },
            Err(sw) => return status(sw),
        };
        if cmd.data.is_empty() {
            return status(Sw::WRONG_LENGTH);
        }
        let Some(pkcs8) = self.state.key(slot) else {
            return status(Sw::NOT_FOUND);
        };
        match rsa::sign_pkcs1(pkcs8, &rsa::sha256_digest_info(&rsa::sha256(cmd.data))) {
            Ok(sig) => self.answer(sig, cmd.ne),
            Err(_) => status(Sw::UNKNOWN),
        }
    }

    fn get_challenge(&mut self, cmd: &Command<'_>) -> Response {
        if (cmd.p1, cmd.p2) != (0, 0) {
            return status(Sw::WRONG_P1P2);
        }
        let Some(ne) = cmd.ne else {
            return status(Sw::WRONG_LENGTH);
        };
        let mut challenge = vec![0u8; ne.min(256)];
        if crate::random(&mut challenge).is_err() {
            return status(Sw::UNKNOWN);
        }
        self.session.challenge = Some(challenge.clone());
        Response::ok(challenge)
    }

    /// EXTERNAL AUTHENTICATE 00 82 00 81: the authority proves it holds this card's management
    /// key with HMAC-SHA-256(key, challenge ‖ card ID) over the last GET CHALLENGE.
    fn external_authenticate(&mut self, cmd: &Command<'_>) -> Response {
        if (cmd.p1, cmd.p2) != (0x00, 0x81) {
            return status(Sw::WRONG_P1P2);
        }
        let Some(challenge) = self.session.challenge.take() else {
            return status(Sw::CONDITIONS_NOT_SATISFIED);
        };
        if self.state.management_key.is_empty() {
            return status(Sw::CONDITIONS_NOT_SATISFIED);
        }
        let want = management_response(
            &self.state.management_key,
            &challenge,
            self.state.card_id.as_deref().unwrap_or(""),
        );
        if challenge.len() < 8 || !ct_eq(&want, cmd.data) {
            self.session.management = false;
            return status(Sw::VERIFY_FAILED);
        }
        self.session.management = true;
        status(Sw::OK)
    }

    /// RESET RETRY COUNTER 00 2C: with management authentication, P1=03 restores the counter and
    /// P1=02 also sets a new value (the data field).
    fn reset_retry_counter(&mut self, cmd: &Command<'_>) -> Response {
        let secret = match self.key_ref(cmd.p2) {
            Ok(s) => s,
            Err(sw) => return status(sw),
        };
        if !self.session.management {
            return status(Sw::SECURITY_NOT_SATISFIED);
        }
        if secret == Secret::AssistReserved {
            return status(Sw::NOT_ALLOWED);
        }
        match cmd.p1 {
            0x03 if cmd.data.is_empty() => {
                if let Some(rec) = self.state.pins.get_mut(&secret) {
                    rec.tries_left = secret.max_tries();
                }
            }
            0x02 if secret.format().accepts(cmd.data) => self.state.set_secret(secret, cmd.data),
            0x02 | 0x03 => return status(Sw::WRONG_DATA),
            _ => return status(Sw::WRONG_P1P2),
        }
        self.dirty = true;
        status(Sw::OK)
    }

    fn get_data(&mut self, cmd: &Command<'_>) -> Response {
        let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
        let Some(value) = self.state.data_object(tag).map(<[u8]>::to_vec) else {
            return status(Sw::DATA_NOT_FOUND);
        };
        let ne = cmd.ne.unwrap_or(0);
        self.answer(value, Some(ne))
    }
}

/// What EXTERNAL AUTHENTICATE expects: HMAC-SHA-256(management key, challenge ‖ card ID).
pub fn management_response(key: &[u8], challenge: &[u8], card_id: &str) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(challenge);
    ctx.update(card_id.as_bytes());
    ctx.sign().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// A personalised card's state as JSON, built once; each case gets its own copy.
    fn fresh() -> VirtualCard {
        static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();
        let json = TEMPLATE.get_or_init(|| {
            let mut card = VirtualCard::manufacture(&HolderSecrets {
                auth_pin: b"1234",
                sign_password: b"ABCDEF12",
                assist_pin: None,
            })
            .unwrap();
            card.personalize(&Personalization::placeholder()).unwrap();
            card.install_certificate(CertKind::Authentication, Some(b"0\x82\x01\x00auth"));
            card.install_certificate(CertKind::Signature, Some(b"0\x82\x01\x00sign"));
            serde_json::to_vec(card.state()).unwrap()
        });
        VirtualCard::from_state(serde_json::from_slice(json).unwrap()).unwrap()
    }

    /// 24-byte windows spread over each private key's DER: any leak of key material shows one.
    fn key_windows(card: &VirtualCard) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for k in &card.state.keys {
            for start in (40..k.pkcs8.len().saturating_sub(24)).step_by(97) {
                out.push(k.pkcs8[start..start + 24].to_vec());
            }
        }
        out
    }

    /// APDUs a random client might send: real commands with random parameters, weighted toward
    /// the JPKI AP, wrong PINs, reads and signing. The right PIN and password are never sent.
    fn apdu() -> impl Strategy<Value = Vec<u8>> {
        let select_ap = prop::sample::select(Ap::ALL.to_vec()).prop_map(|ap| {
            let mut v = vec![0x00, 0xA4, 0x04, 0x0C, ap.aid().len() as u8];
            v.extend_from_slice(ap.aid());
            v
        });
        let select_ef = (0u16..0x20).prop_map(|fid| {
            let [hi, lo] = fid.to_be_bytes();
            vec![0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo]
        });
        let wrong_pin = (0u8..0x20, prop::collection::vec(b'0'..=b'9', 0..6)).prop_map(|(sfi, pin)| {
            let pin = if pin == b"1234" { b"1235".to_vec() } else { pin };
            let mut v = vec![0x00, 0x20, 0x00, 0x80 | sfi];
            if !pin.is_empty() {
                v.push(pin.len() as u8);
                v.extend_from_slice(&pin);
            }
            v
        });
        let read =
            (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(p1, p2, le)| vec![0x00, 0xB0, p1, p2, le]);
        let sign =
            (0u8..8, any::<u8>(), prop::collection::vec(any::<u8>(), 1..60)).prop_map(|(p1, p2, data)| {
                let mut v = vec![0x80, 0x2A, p1, p2, data.len() as u8];
                v.extend_from_slice(&data);
                v.push(0);
                v
            });
        let other = (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(cla, ins, p1, p2, tail)| {
                let mut v = vec![cla & 0x80, ins, p1, p2];
                v.extend_from_slice(&tail);
                v
            });
        prop_oneof![
            2 => select_ap,
            3 => select_ef,
            3 => wrong_pin,
            3 => read,
            3 => sign,
            1 => Just(vec![0x00, 0xC0, 0x00, 0x00, 0x00]),
            1 => Just(vec![0x00, 0x84, 0x00, 0x00, 0x08]),
            2 => other,
            1 => prop::collection::vec(any::<u8>(), 0..12),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a client sends without the PIN, no response carries private-key bytes or a
        /// JPKI signature, no JPKI PIN gets verified, and counters never go up.
        #[test]
        fn random_apdus_never_leak_keys_or_sign_without_the_pin(seq in prop::collection::vec(apdu(), 1..80)) {
            let mut c = fresh();
            let windows = key_windows(&c);
            let mut last = (c.tries_left(Secret::AuthPin), c.tries_left(Secret::SignPassword));
            for a in &seq {
                let r = Response::parse(&c.transmit(a)).unwrap();
                for w in &windows {
                    prop_assert!(!r.data.windows(w.len()).any(|x| x == w.as_slice()),
                        "response to {} carries key material", hex::encode(a));
                }
                prop_assert!(!c.session.verified.contains(&Secret::AuthPin));
                prop_assert!(!c.session.verified.contains(&Secret::SignPassword));
                // Only the card's own key signs without a PIN (P2=00 in the card-face APs, or
                // INTERNAL AUTHENTICATE); a JPKI key answer would be 256 bytes from another P2.
                if r.data.len() == 256 || r.sw.0 == 0x6100 {
                    let card_key = (a.get(1) == Some(&0x2A) && a.get(3) == Some(&0x00)) || a.get(1) == Some(&0x88)
                        || a.get(1) == Some(&0xC0) || a.get(1) == Some(&0xB0) || a.get(1) == Some(&0x84);
                    prop_assert!(card_key, "256-byte answer to {} without the PIN", hex::encode(a));
                }
                let now = (c.tries_left(Secret::AuthPin), c.tries_left(Secret::SignPassword));
                prop_assert!(now.0 <= last.0 && now.1 <= last.1, "a counter went up");
                last = now;
            }
        }
    }
}
