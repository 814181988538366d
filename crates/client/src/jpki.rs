//! The JPKI operations, in APDUs, as public clients send them: select an application, read its
//! files with a short header read and 256-byte chunks, query and verify PINs, sign a DigestInfo.
//! Everything here works the same over any [`Transport`], a real card included.

use jpki_card::apdu::{Command, Response, Sw};
use jpki_card::{Ap, Secret, jpki_ef, layout};
use jpki_model::CertKind;

use crate::{ClientError, Transport};

/// A PIN's state as the card reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PinState {
    /// Attempts left before it locks.
    pub tries_left: u8,
    /// Whether it is locked (no attempts left).
    pub locked: bool,
}

/// A connection to a card through a transport.
#[derive(Debug)]
pub struct CardSession<T: Transport> {
    t: T,
    /// The AP selected last, to avoid reselecting (reselecting clears verification).
    current: Option<Ap>,
}

fn status_error(what: &str, sw: Sw) -> ClientError {
    ClientError::Status {
        what: what.to_owned(),
        sw: sw.0,
        meaning: sw.meaning(),
    }
}

fn cmd(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], ne: Option<usize>) -> Command<'_> {
    Command {
        cla,
        ins,
        p1,
        p2,
        data,
        ne,
        extended: false,
    }
}

impl<T: Transport> CardSession<T> {
    /// A session over `transport`; the card is reset first so no earlier state carries over.
    pub fn new(mut transport: T) -> Result<Self, ClientError> {
        transport.reset()?;
        Ok(Self {
            t: transport,
            current: None,
        })
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.t
    }

    /// Sends one command; follows 61xx with GET RESPONSE and 6Cxx by resending with the exact Le.
    pub fn exchange(&mut self, command: &Command<'_>) -> Result<Response, ClientError> {
        let bytes = command
            .to_bytes()
            .map_err(|e| ClientError::Malformed(format!("cannot encode command: {e}")))?;
        let mut r =
            Response::parse(&self.t.transmit(&bytes)?).map_err(|e| ClientError::Malformed(e.to_string()))?;
        if r.sw.sw1() == 0x6C {
            let exact = match r.sw.sw2() {
                0 => 256,
                n => usize::from(n),
            };
            let retry = Command {
                ne: Some(exact),
                ..*command
            };
            let bytes = retry
                .to_bytes()
                .map_err(|e| ClientError::Malformed(format!("cannot encode command: {e}")))?;
            r = Response::parse(&self.t.transmit(&bytes)?)
                .map_err(|e| ClientError::Malformed(e.to_string()))?;
        }
        let mut data = std::mem::take(&mut r.data);
        // Bounded: a card that keeps answering 61xx forever would otherwise never end.
        for _ in 0..1024 {
            if r.sw.sw1() != 0x61 {
                break;
            }
            let le = match r.sw.sw2() {
                0 => 256,
                n => usize::from(n),
            };
            let get = cmd(0x00, 0xC0, 0, 0, &[], Some(le))
                .to_bytes()
                .map_err(|e| ClientError::Malformed(e.to_string()))?;
            r = Response::parse(&self.t.transmit(&get)?)
                .map_err(|e| ClientError::Malformed(e.to_string()))?;
            data.append(&mut r.data);
        }
        Ok(Response { data, sw: r.sw })
    }

    fn expect_ok(&mut self, what: &str, command: &Command<'_>) -> Result<Vec<u8>, ClientError> {
        let r = self.exchange(command)?;
        if r.sw != Sw::OK {
            return Err(status_error(what, r.sw));
        }
        Ok(r.data)
    }

    /// Selects an application (clears its security status when it was already selected).
    pub fn select_ap(&mut self, ap: Ap) -> Result<(), ClientError> {
        self.expect_ok(
            &format!("select the {ap:?} application"),
            &cmd(0x00, 0xA4, 0x04, 0x0C, ap.aid(), None),
        )?;
        self.current = Some(ap);
        Ok(())
    }

    /// Selects `ap` unless it is the current AP (keeps PINs verified in this session).
    fn enter(&mut self, ap: Ap) -> Result<(), ClientError> {
        if self.current != Some(ap) {
            self.select_ap(ap)?;
        }
        Ok(())
    }

    /// Selects an EF of the current application.
    pub fn select_ef(&mut self, fid: u16) -> Result<Sw, ClientError> {
        Ok(self
            .exchange(&cmd(0x00, 0xA4, 0x02, 0x0C, &fid.to_be_bytes(), None))?
            .sw)
    }

    /// Reads a whole transparent EF of `ap`: a 256-byte first read (all of a short file), then,
    /// when the file is a BER-TLV longer than that, 256-byte chunks up to its encoded length.
    pub fn read_ef(&mut self, ap: Ap, fid: u16, what: &str) -> Result<Vec<u8>, ClientError> {
        self.enter(ap)?;
        let sw = self.select_ef(fid)?;
        if sw != Sw::OK {
            return Err(status_error(what, sw));
        }
        let first = self.exchange(&cmd(0x00, 0xB0, 0, 0, &[], Some(256)))?;
        if !matches!(first.sw, Sw::OK | Sw::END_OF_FILE) {
            return Err(status_error(what, first.sw));
        }
        let mut data = first.data;
        // Certificates (30), the APs' data objects (FF xx) and CV certificates (7F21) announce
        // their length; other EFs (token information, flags) are short and came whole.
        let tlv = matches!(data.first(), Some(0x30 | 0xFF | 0x7F));
        let Some(total) = layout::ber_total_len(&data).filter(|_| tlv) else {
            return Ok(data);
        };
        if total > 0x7FFF {
            return Err(ClientError::Malformed(format!(
                "{what}: length {total} beyond what READ BINARY reaches"
            )));
        }
        while data.len() < total {
            let offset =
                u16::try_from(data.len()).map_err(|_| ClientError::Malformed(format!("{what}: too long")))?;
            let want = (total - data.len()).min(256);
            let [p1, p2] = offset.to_be_bytes();
            let r = self.exchange(&cmd(0x00, 0xB0, p1, p2, &[], Some(want)))?;
            if !matches!(r.sw, Sw::OK | Sw::END_OF_FILE) || r.data.is_empty() {
                return Err(status_error(what, r.sw));
            }
            data.extend_from_slice(&r.data);
        }
        // A short first read was the whole EF, filler included (EF 0001 of the text-assist AP is
        // hashed with its FF FF filler), so nothing read is cut off.
        Ok(data)
    }

    /// The counter of a secret (an empty VERIFY: no attempt is spent).
    pub fn pin_status(&mut self, secret: Secret) -> Result<PinState, ClientError> {
        let (ap, fid) = secret.location();
        self.enter(ap)?;
        let sw = self.select_ef(fid)?;
        if sw != Sw::OK {
            return Err(status_error(&format!("select the {}", secret.label()), sw));
        }
        let r = self.exchange(&cmd(0x00, 0x20, 0x00, 0x80, &[], None))?;
        match r.sw {
            Sw(s) if s & 0xFFF0 == 0x63C0 => {
                let tries_left = (s & 0x0F) as u8;
                Ok(PinState {
                    tries_left,
                    locked: tries_left == 0,
                })
            }
            Sw::BLOCKED => Ok(PinState {
                tries_left: 0,
                locked: true,
            }),
            // Some cards answer 9000 when the PIN is already verified: the count is not known.
            Sw::OK => Ok(PinState {
                tries_left: secret.max_tries(),
                locked: false,
            }),
            sw => Err(status_error(&format!("query the {}", secret.label()), sw)),
        }
    }

    /// Verifies a secret for this session.
    pub fn verify(&mut self, secret: Secret, value: &[u8]) -> Result<(), ClientError> {
        let (ap, fid) = secret.location();
        self.enter(ap)?;
        let sw = self.select_ef(fid)?;
        if sw != Sw::OK {
            return Err(status_error(&format!("select the {}", secret.label()), sw));
        }
        let r = self.exchange(&cmd(0x00, 0x20, 0x00, 0x80, value, None))?;
        match r.sw {
            Sw::OK => Ok(()),
            Sw::BLOCKED => Err(ClientError::Locked(secret.label().to_owned())),
            Sw(s) if s & 0xFFF0 == 0x63C0 => {
                let tries_left = (s & 0x0F) as u8;
                if tries_left == 0 {
                    Err(ClientError::Locked(secret.label().to_owned()))
                } else {
                    Err(ClientError::WrongSecret {
                        what: secret.label().to_owned(),
                        tries_left,
                    })
                }
            }
            sw => Err(status_error(&format!("verify the {}", secret.label()), sw)),
        }
    }

    /// Changes a PIN or password: VERIFY the current value, then CHANGE REFERENCE DATA (or the
    /// 住基/common AP's CHANGE KEY).
    pub fn change_secret(&mut self, secret: Secret, current: &[u8], new: &[u8]) -> Result<(), ClientError> {
        if !secret.format().accepts(new) {
            return Err(ClientError::Malformed(format!(
                "new {}: wrong format",
                secret.label()
            )));
        }
        self.verify(secret, current)?;
        let (ap, _) = secret.location();
        let command = match ap {
            Ap::Juki | Ap::Common => cmd(0x80, 0x32, 0x00, 0x80, new, None),
            _ => cmd(0x00, 0x24, 0x01, 0x80, new, None),
        };
        self.expect_ok(&format!("change the {}", secret.label()), &command)?;
        Ok(())
    }

    /// Reads a certificate from the JPKI AP (the signature certificate needs the password).
    pub fn read_certificate(
        &mut self,
        kind: CertKind,
        sign_password: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let fid = match kind {
            CertKind::Authentication => jpki_ef::AUTH_CERT,
            CertKind::Signature => jpki_ef::SIGN_CERT,
        };
        if let (CertKind::Signature, Some(pw)) = (kind, sign_password) {
            self.verify(Secret::SignPassword, pw)?;
        }
        self.read_ef(Ap::Jpki, fid, &format!("read the {kind} certificate"))
    }

    /// Reads a CA certificate from the JPKI AP.
    pub fn read_ca_certificate(&mut self, kind: CertKind) -> Result<Vec<u8>, ClientError> {
        let fid = match kind {
            CertKind::Authentication => jpki_ef::AUTH_CA,
            CertKind::Signature => jpki_ef::SIGN_CA,
        };
        self.read_ef(Ap::Jpki, fid, &format!("read the {kind} CA certificate"))
    }

    /// Signs a SHA-256 digest with the key of `kind` after verifying its PIN or password:
    /// `80 2A 00 80` with the DigestInfo, as OpenSC and the JPKI clients send it.
    pub fn sign_digest(
        &mut self,
        kind: CertKind,
        secret: &[u8],
        digest: &[u8; 32],
    ) -> Result<Vec<u8>, ClientError> {
        let (pin, key) = match kind {
            CertKind::Authentication => (Secret::AuthPin, jpki_ef::AUTH_KEY),
            CertKind::Signature => (Secret::SignPassword, jpki_ef::SIGN_KEY),
        };
        self.verify(pin, secret)?;
        let sw = self.select_ef(key)?;
        if sw != Sw::OK {
            return Err(status_error("select the private key", sw));
        }
        let info = jpki_card::sha256_digest_info(digest);
        let sig = self.expect_ok(
            &format!("sign with the {kind} key"),
            &cmd(0x80, 0x2A, 0x00, 0x80, &info, Some(256)),
        )?;
        if sig.len() != 256 {
            return Err(ClientError::Malformed(format!(
                "signature of {} bytes, not 256",
                sig.len()
            )));
        }
        Ok(sig)
    }

    /// GET DATA from the MF (no AP selected).
    pub fn get_data(&mut self, tag: u16) -> Result<Option<Vec<u8>>, ClientError> {
        let [p1, p2] = tag.to_be_bytes();
        let r = self.exchange(&cmd(0x00, 0xCA, p1, p2, &[], Some(256)))?;
        match r.sw {
            Sw::OK => Ok(Some(r.data)),
            _ => Ok(None),
        }
    }

    /// The common AP's record (card serial, municipality, expiry), freely readable.
    pub fn common_record(&mut self) -> Result<Vec<u8>, ClientError> {
        self.enter(Ap::Common)?;
        self.expect_ok(
            "read the common AP record",
            &cmd(0x00, 0xB2, 0x01, 0x0C, &[], Some(256)),
        )
    }

    /// The authority unblocks a secret: GET CHALLENGE, EXTERNAL AUTHENTICATE with the card's
    /// management key, then RESET RETRY COUNTER (with a new value, or keeping the old one).
    pub fn unblock(
        &mut self,
        secret: Secret,
        card_id: &str,
        management_key: &[u8],
        new_value: Option<&[u8]>,
    ) -> Result<(), ClientError> {
        let (ap, fid) = secret.location();
        self.select_ap(ap)?;
        let challenge = self.expect_ok("get a challenge", &cmd(0x00, 0x84, 0, 0, &[], Some(8)))?;
        let response = jpki_card::management_response(management_key, &challenge, card_id);
        let r = self.exchange(&cmd(0x00, 0x82, 0x00, 0x81, &response, None))?;
        if r.sw != Sw::OK {
            return Err(ClientError::Malformed(format!(
                "the card did not accept the authority's management key (card answered {})",
                r.sw
            )));
        }
        let p2 = 0x80 | (fid as u8 & 0x1F);
        let command = match new_value {
            Some(v) => cmd(0x00, 0x2C, 0x02, p2, v, None),
            None => cmd(0x00, 0x2C, 0x03, p2, &[], None),
        };
        self.expect_ok(&format!("unblock the {}", secret.label()), &command)?;
        // Reselect so the management status does not outlive the operation.
        self.select_ap(ap)?;
        Ok(())
    }
}
