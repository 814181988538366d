//! Card commands that talk to the card in APDUs, over the card file (`--card FILE`) or a PC/SC
//! reader (`--reader NAME`) alike: info, read-cert, read-info, read-face, pin, sign-digest,
//! unblock, and `plug`, which puts a card file into pcscd's virtual reader.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use jpki_card::layout::{self, CvCert};
use jpki_card::{Ap, CardFile, DeviceKey, Secret, tag};
use jpki_client::{CardSession, ClientError, FileTransport, PinState, Transport};
use jpki_model::CertKind;
use jpki_pki::CertificateInfo;
use serde_json::json;

use crate::args::{CardAccess, KindArg, KindSecrets, PinCmd, PinKind};
use crate::{Failure, Report, secrets, write_pem};

/// The device key file: `--device-key`, `JPKI_DEVICE_KEY`, or the default location.
pub(crate) fn device_key_path(given: Option<&Path>) -> PathBuf {
    given.map_or_else(DeviceKey::default_path, Path::to_path_buf)
}

pub(crate) type Session = CardSession<Box<dyn Transport>>;

/// Opens the card named by `--card` or `--reader`.
pub(crate) fn open(access: &CardAccess, device_key: &Path) -> Result<Session, Failure> {
    let transport: Box<dyn Transport> = match (&access.card, &access.reader) {
        (Some(path), None) => Box::new(FileTransport::open(path, device_key)?),
        (None, Some(reader)) => open_reader(reader)?,
        _ => {
            return Err(Failure::Usage(
                "give exactly one of --card FILE or --reader NAME".into(),
            ));
        }
    };
    Ok(CardSession::new(transport)?)
}

#[cfg(feature = "pcsc")]
fn open_reader(reader: &str) -> Result<Box<dyn Transport>, Failure> {
    Ok(Box::new(jpki_client::pcsc::PcscTransport::connect(reader)?))
}

#[cfg(not(feature = "pcsc"))]
fn open_reader(_reader: &str) -> Result<Box<dyn Transport>, Failure> {
    Err(Failure::Usage(
        "--reader: this jpki was built without PC/SC support (feature \"pcsc\")".into(),
    ))
}

fn pin_secret(kind: PinKind) -> Secret {
    match kind {
        PinKind::Auth => Secret::AuthPin,
        PinKind::Sign => Secret::SignPassword,
        PinKind::Assist => Secret::AssistPin,
    }
}

/// The secret that unlocks the key of `kind`, from flag, env or prompt.
fn key_secret(kind: CertKind, s: KindSecrets) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    Ok(zeroize::Zeroizing::new(match kind {
        CertKind::Authentication => secrets::auth_pin(s.pin)?.as_bytes().to_vec(),
        CertKind::Signature => match s.sign_password {
            Some(p) => p.as_bytes().to_vec(),
            None => secrets::sign_password()?.as_bytes().to_vec(),
        },
    }))
}

fn pin_json(p: Option<PinState>) -> serde_json::Value {
    p.map_or(
        serde_json::Value::Null,
        |p| json!({ "tries_left": p.tries_left, "locked": p.locked }),
    )
}

fn pin_text(p: Option<PinState>) -> String {
    match p {
        None => "not present".into(),
        Some(p) if p.locked => "LOCKED (0 tries left; the authority can unblock it)".into(),
        Some(p) => format!("{} tries left", p.tries_left),
    }
}

/// `jpki card info`.
pub(crate) fn info(access: &CardAccess, device_key: &Path) -> Result<Report, Failure> {
    let mut s = open(access, device_key)?;
    let card_id = s
        .get_data(tag::CARD_ID)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let token = s.read_ef(
        Ap::Jpki,
        jpki_card::jpki_ef::TOKEN_INFO,
        "read the token information",
    )?;
    let label = layout::token_info_label(&token).unwrap_or_default();
    let flags = s.read_ef(
        Ap::Jpki,
        jpki_card::jpki_ef::CERT_FLAGS,
        "read the certificate flags",
    )?;
    let has_sign = layout::parse_token_ef0008(&flags).unwrap_or(false);
    let auth_cert = s.read_certificate(CertKind::Authentication, None).ok();
    let auth_info = auth_cert
        .as_deref()
        .and_then(|d| CertificateInfo::from_der(d).ok());
    let mut pins = Vec::new();
    for secret in [Secret::AuthPin, Secret::SignPassword, Secret::AssistPin] {
        pins.push((secret, s.pin_status(secret).ok()));
    }
    let record = s
        .common_record()
        .ok()
        .and_then(|r| layout::parse_common_record(&r).ok());
    let mut text = format!(
        "Card {} (token {label})\n  authentication certificate: {}\n  signature certificate: {}\n",
        card_id.as_deref().unwrap_or("(no card ID)"),
        auth_info.as_ref().map_or("none".to_owned(), |i| format!(
            "serial {}, valid to {}",
            i.serial, i.not_after
        )),
        if has_sign {
            "present (read with the signing password)"
        } else {
            "none"
        },
    );
    for (secret, st) in &pins {
        text += &format!("  {}: {}\n", secret.label(), pin_text(*st));
    }
    if let Some(r) = &record {
        text += &format!("  card expires {} (municipality {})\n", r.expiry, r.municipality);
    }
    Ok(Report::new(
        json!({
            "card_id": card_id, "token_label": label, "sign_certificate": has_sign,
            "auth_certificate": auth_info,
            "pins": {
                "auth": pin_json(pins[0].1), "sign": pin_json(pins[1].1), "assist": pin_json(pins[2].1),
            },
            "common_record": record.map(|r| json!({ "card_id": r.card_id, "municipality": r.municipality, "expiry": r.expiry })),
        }),
        text,
    ))
}

/// `jpki card read-cert`.
pub(crate) fn read_cert(
    access: &CardAccess,
    device_key: &Path,
    kind: KindArg,
    out: &Path,
    password: Option<jpki_model::SignPassword>,
) -> Result<Report, Failure> {
    let kind = kind.kind();
    let mut s = open(access, device_key)?;
    let der = match kind {
        CertKind::Authentication => s.read_certificate(kind, None)?,
        CertKind::Signature => {
            let pw = match password {
                Some(p) => p,
                None => secrets::sign_password()?,
            };
            s.read_certificate(kind, Some(pw.as_bytes()))?
        }
    };
    let info = CertificateInfo::from_der(&der)?;
    write_pem(out, "CERTIFICATE", &der)?;
    Ok(Report::new(
        json!({ "kind": kind, "out": out, "certificate": info }),
        format!(
            "Wrote the {kind} certificate (serial {}) to {}.",
            info.serial,
            out.display()
        ),
    ))
}

/// The authority's card-data CV certificate to check card data against.
fn trusted_cvc(data: &Path, trust: Option<&Path>) -> Result<CvCert, Failure> {
    let path = trust.map_or_else(|| data.join(jpki_authority::CARD_DATA_CVC), Path::to_path_buf);
    let bytes = std::fs::read(&path).map_err(|e| {
        Failure::Failed(format!(
            "{}: {e} (the authority's card-data certificate; give --trust FILE or --data DIR)",
            path.display()
        ))
    })?;
    Ok(CvCert::parse(&bytes)?)
}

/// The card's CV certificate (EF 0004 of `ap`), checked to be the trusted one.
fn card_cvc(s: &mut Session, ap: Ap, trusted: &CvCert) -> Result<CvCert, Failure> {
    let on_card = CvCert::parse(&s.read_ef(ap, 0x0004, "read the card-data certificate")?)?;
    if on_card.to_bytes() != trusted.to_bytes() {
        return Err(Failure::Failed(
            "the card's data was signed by a card-data key this authority does not have".into(),
        ));
    }
    Ok(on_card)
}

/// `jpki card read-info`.
pub(crate) fn read_info(
    access: &CardAccess,
    device_key: &Path,
    data: &Path,
    pin: Option<jpki_model::AssistPin>,
    trust: Option<&Path>,
) -> Result<Report, Failure> {
    let trusted = trusted_cvc(data, trust)?;
    let mut s = open(access, device_key)?;
    let pin = secrets::assist_pin(pin)?;
    s.verify(Secret::AssistPin, pin.as_bytes())?;
    let ef1 = s.read_ef(Ap::Assist, 0x0001, "read the individual number")?;
    let ef2 = s.read_ef(Ap::Assist, 0x0002, "read the four facts")?;
    let ef3 = s.read_ef(Ap::Assist, 0x0003, "read the authority's signature")?;
    let cvc = card_cvc(&mut s, Ap::Assist, &trusted)?;
    layout::verify_assist(&ef1, &ef2, &ef3, &cvc)?;
    let number = layout::parse_assist_ef0001(&ef1)?;
    let f = layout::parse_assist_ef0002(&ef2)?;
    Ok(Report::new(
        json!({ "individual_number": number, "name": f.name, "address": f.address, "birth_date": f.birth,
                "sex": f.sex, "signature": "valid" }),
        format!(
            "Name     {}\nAddress  {}\nBorn     {}\nSex      {}\nNumber   {}\n(signed by the authority's card-data key: valid)",
            f.name, f.address, f.birth, f.sex, number
        ),
    ))
}

/// `jpki card read-face`.
pub(crate) fn read_face(
    access: &CardAccess,
    device_key: &Path,
    data: &Path,
    out: &Path,
    code: Option<String>,
    trust: Option<&Path>,
) -> Result<Report, Failure> {
    let trusted = trusted_cvc(data, trust)?;
    let code = secrets::plain(
        code,
        "照合番号B (14 digits)",
        "give --collation-b or set JPKI_COLLATION_B",
    )?;
    if !jpki_card::Format::Digits(14).accepts(code.as_bytes()) {
        return Err(Failure::Usage("--collation-b: must be 14 digits".into()));
    }
    let mut s = open(access, device_key)?;
    s.verify(Secret::FaceB, code.as_bytes())?;
    let ef2 = s.read_ef(Ap::Face, 0x0002, "read the card face")?;
    let ef3 = s.read_ef(Ap::Face, 0x0003, "read the card-face information")?;
    let cvc = card_cvc(&mut s, Ap::Face, &trusted)?;
    let face = layout::verify_face(&ef2, &cvc)?;
    let card = layout::parse_face_ef0003(&ef3)?;
    std::fs::create_dir_all(out).map_err(|e| Failure::Failed(format!("{}: {e}", out.display())))?;
    let mut written = Vec::new();
    for (name, bytes) in [
        ("name.png", &face.name_png),
        ("address.png", &face.address_png),
        ("photo.png", &face.photo),
        ("security-code.png", &face.security_code_png),
    ] {
        let p = out.join(name);
        jpki_authority::write_atomically(&p, bytes, 0o600)?;
        written.push(p);
    }
    let summary = json!({ "birth_date": face.birth, "sex": face.sex, "expiry": face.expiry,
                          "card_id": card.card_id, "issued": card.issued, "municipality": card.municipality,
                          "signature": "valid", "files": written });
    let p = out.join("face.json");
    jpki_authority::write_atomically(&p, summary.to_string().as_bytes(), 0o600)?;
    Ok(Report::new(
        summary.clone(),
        format!(
            "Card face of card {} (valid to {}), signature valid; wrote {} images and face.json to {}.",
            card.card_id,
            face.expiry,
            written.len(),
            out.display()
        ),
    ))
}

/// `jpki card pin …`.
pub(crate) fn pin(cmd: PinCmd, device_key: &Path) -> Result<Report, Failure> {
    match cmd {
        PinCmd::Status(access) => {
            let mut s = open(&access, device_key)?;
            let mut j = serde_json::Map::new();
            let mut text = String::new();
            for (key, secret) in [
                ("auth", Secret::AuthPin),
                ("sign", Secret::SignPassword),
                ("assist", Secret::AssistPin),
                ("juki", Secret::JukiPin),
            ] {
                let st = s.pin_status(secret).ok();
                j.insert(key.into(), pin_json(st));
                text += &format!("{:<26} {}\n", secret.label(), pin_text(st));
            }
            Ok(Report::new(serde_json::Value::Object(j), text))
        }
        PinCmd::Change {
            access,
            kind,
            secrets: ks,
            assist_pin,
            new,
        } => {
            let secret = pin_secret(kind);
            let current = match kind {
                PinKind::Auth => key_secret(CertKind::Authentication, ks)?,
                PinKind::Sign => key_secret(CertKind::Signature, ks)?,
                PinKind::Assist => {
                    zeroize::Zeroizing::new(secrets::assist_pin(assist_pin)?.as_bytes().to_vec())
                }
            };
            let mut new = secrets::new_secret(new, secret.label())?;
            if kind == PinKind::Sign {
                new = zeroize::Zeroizing::new(new.to_ascii_uppercase());
            }
            if !secret.format().accepts(new.as_bytes()) {
                return Err(Failure::Usage(format!(
                    "new {}: {}",
                    secret.label(),
                    match secret.format() {
                        jpki_card::Format::Password => "6–16 characters A–Z and 0–9",
                        _ => "4 digits",
                    }
                )));
            }
            let mut s = open(&access, device_key)?;
            s.change_secret(secret, &current, new.as_bytes())?;
            Ok(Report::new(
                json!({ "changed": secret.label() }),
                format!("Changed the {}.", secret.label()),
            ))
        }
    }
}

/// `jpki card sign-digest`.
pub(crate) fn sign_digest(
    access: &CardAccess,
    device_key: &Path,
    kind: KindArg,
    digest_hex: &str,
    ks: KindSecrets,
) -> Result<Report, Failure> {
    let kind = kind.kind();
    let mut digest = [0u8; 32];
    hex::decode_to_slice(digest_hex.trim(), &mut digest)
        .map_err(|_| Failure::Usage("--digest: must be 64 hex digits (a SHA-256 digest)".into()))?;
    let secret = key_secret(kind, ks)?;
    let mut s = open(access, device_key)?;
    let sig = s.sign_digest(kind, &secret, &digest)?;
    Ok(Report::new(
        json!({ "kind": kind, "algorithm": "sha256WithRSAEncryption", "digest": hex::encode(digest),
                "signature": hex::encode(&sig) }),
        hex::encode(&sig),
    ))
}

/// `jpki card unblock`: the authority authenticates to the card with its management key.
pub(crate) fn unblock(
    access: &CardAccess,
    device_key: &Path,
    data: &Path,
    kind: PinKind,
    new_pin: Option<String>,
) -> Result<Report, Failure> {
    let secret = pin_secret(kind);
    let new = new_pin.map(|p| {
        if kind == PinKind::Sign {
            p.to_ascii_uppercase()
        } else {
            p
        }
    });
    if let Some(n) = &new
        && !secret.format().accepts(n.as_bytes())
    {
        return Err(Failure::Usage(format!(
            "--new-pin: not a valid {}",
            secret.label()
        )));
    }
    let auth = jpki_authority::Authority::open(data)?;
    let pass = secrets::authority_passphrase(data)?;
    let signer = auth.card_data_signer(pass.as_bytes())?;
    let mut s = open(access, device_key)?;
    let card_id = s
        .get_data(tag::CARD_ID)?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .ok_or_else(|| Failure::Failed("the card has no card ID (never issued?)".into()))?;
    auth.card_certificates(&card_id)?;
    let key = signer.management_key(&card_id);
    s.unblock(secret, &card_id, &key, new.as_deref().map(str::as_bytes))?;
    let after = s.pin_status(secret)?;
    Ok(Report::new(
        json!({ "card_id": card_id, "unblocked": secret.label(), "new_value": new.is_some(), "tries_left": after.tries_left }),
        format!(
            "Unblocked the {} on card {card_id} ({} tries left{}).",
            secret.label(),
            after.tries_left,
            if new.is_some() { ", new value set" } else { "" }
        ),
    ))
}

/// A card file as the vpcd bridge sees it.
struct Plugged(CardFile);

impl jpki_client::vpcd::VirtualCard for Plugged {
    fn atr(&self) -> Vec<u8> {
        jpki_card::ATR.to_vec()
    }
    fn power_off(&mut self) {
        self.0.reset();
    }
    fn power_on(&mut self) {
        self.0.reset();
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    fn apdu(&mut self, command: &[u8]) -> Vec<u8> {
        self.0.transmit(command)
    }
}

/// `jpki card plug`: serves the card to pcscd until killed. Every state change is on disk before
/// its answer, so stopping it at any moment loses nothing.
pub(crate) fn plug(
    card: &Path,
    device_key: &Path,
    vpcd: &str,
    max_wait: Option<u64>,
) -> Result<Report, Failure> {
    let key = DeviceKey::load(device_key)?;
    let file = CardFile::open(card, key)?;
    let card_id = file.card().card_id().unwrap_or("(not issued)").to_owned();
    let mut plugged = Plugged(file);
    let opts = jpki_client::vpcd::PlugOptions {
        addr: vpcd.to_owned(),
        stop: Arc::new(AtomicBool::new(false)),
        retry: std::time::Duration::from_millis(500),
        max_wait: max_wait.map(std::time::Duration::from_secs),
    };
    eprintln!(
        "jpki: card {card_id} from {} → vpcd {vpcd} (stop with Ctrl-C)",
        card.display()
    );
    let mut on_event = |e: jpki_client::vpcd::PlugEvent| {
        use jpki_client::vpcd::PlugEvent;
        match e {
            PlugEvent::Connected => eprintln!("jpki: connected to pcscd"),
            PlugEvent::Disconnected => eprintln!("jpki: pcscd went away; reconnecting"),
            _ => {}
        }
    };
    jpki_client::vpcd::plug(&mut plugged, &opts, &mut on_event)
        .map_err(|e: ClientError| Failure::Failed(e.to_string()))?;
    Ok(Report::new(
        json!({ "card_id": card_id, "unplugged": true }),
        format!("Card {card_id} unplugged."),
    ))
}
