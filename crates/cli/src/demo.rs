//! `jpki demo`: the whole authority end to end on the embedded registry, narrated.
use std::fmt::Write as _;
use std::path::Path;

use jpki_authority::{Authority, InitOptions, Renewal};
use jpki_card::{CardFile, DeviceKey, HolderSecrets, VirtualCard};
use jpki_client::{CardSession, FileTransport};
use jpki_model::{BasicFour, CertKind};
use jpki_pki::{CertificateInfo, Endpoints, KeyType};
use serde_json::json;

use crate::{Failure, Report, secrets};

struct Narrator {
    text: String,
    step: usize,
    quiet: bool,
}

impl Narrator {
    fn say(&mut self, s: impl AsRef<str>) {
        self.step += 1;
        let line = format!("{:>2}. {}", self.step, s.as_ref());
        if !self.quiet {
            eprintln!("{line}");
        }
        let _ = writeln!(self.text, "{line}");
    }
}

pub(crate) fn run(data: &Path, device_key: &Path, key_type: KeyType) -> Result<Report, Failure> {
    let mut n = Narrator {
        text: String::new(),
        step: 0,
        quiet: true,
    };
    let mut auth = match Authority::open(data) {
        Ok(a) => {
            n.say(format!("Opened the existing authority in {}.", data.display()));
            a
        }
        Err(_) => {
            let pass = secrets::new_authority_passphrase(data, true)?;
            let a = Authority::init(
                data,
                &InitOptions::new(key_type, Endpoints::new(Endpoints::DEFAULT_BASE)?),
                pass.as_bytes(),
            )?;
            n.say(format!(
                "Initialised an authority in {} with {} CA keys: a signature root and a user-authentication root, \
                 keys encrypted at rest (demo passphrase in {}).",
                data.display(),
                key_type.as_str(),
                secrets::passphrase_file(data).display()
            ));
            a
        }
    };
    let pass = secrets::authority_passphrase(data)?;
    let issuers = auth.issuers(pass.as_bytes())?;
    let signer = auth.card_data_signer(pass.as_bytes())?;
    let device = DeviceKey::load_or_create(device_key)?;

    let adult = BasicFour {
        name: "山田　太郎".parse()?,
        address: "東京都千代田区霞が関２丁目１番２号".parse()?,
        birth_date: jpki_model::parse_birth_date("1980-02-17")?,
        sex: "1".parse()?,
    };
    let child = BasicFour {
        name: "山田　花子".parse()?,
        address: adult.address.clone(),
        birth_date: jpki_model::parse_birth_date("2016-02-29")?,
        sex: "2".parse()?,
    };
    let a = auth.add_resident(&adult, None)?;
    let c = auth.add_resident(&child, None)?;
    n.say(format!(
        "Registered two residents from the resident register: #{} (born 1980-02-17) and #{} (born 2016-02-29). \
         Each got an individual number, which identifies but never authenticates and never enters a certificate.",
        a.resident_id, c.resident_id
    ));

    let cards = data.join("demo-cards");
    let manufacture = |pin: &str, password: &[u8]| {
        VirtualCard::manufacture(&HolderSecrets {
            auth_pin: pin.as_bytes(),
            sign_password: password,
            assist_pin: None,
        })
    };
    let mut card_a = manufacture("1234", b"DEMO2024")?;
    let (issued_a, _, _) = crate::issue_onto(&mut auth, &issuers, &signer, a.resident_id, &mut card_a, None)?;
    let file_a = cards.join(format!("{}.card", issued_a.card_id));
    let mut file = CardFile::create(&file_a, device.clone(), card_a)?;
    let sign_a = issued_a
        .sign
        .as_ref()
        .ok_or_else(|| Failure::Failed("adult got no signature certificate".into()))?;
    n.say(format!(
        "Issued card {} to #{} → {}: the card generated its RSA-2048 key pairs, only the public keys went to the \
         authority. Authentication certificate {} (no personal data), signature certificate {}; both valid to {} \
         (23:59:59 JST on the fifth birthday after issue). The authority also wrote the text-assist and card-face \
         data, signed with its card-data key. The card file is encrypted under this device's key.",
        issued_a.card_id,
        a.resident_id,
        file_a.display(),
        issued_a.auth.serial,
        sign_a.serial,
        crate::rfc3339(Some(sign_a.not_after)).unwrap_or_default()
    ));
    file.card_mut().reset();
    let mut session = CardSession::new(FileTransport::new(file))?;
    let challenge = jpki_card::sha256(b"login challenge from a relying party");
    let sig = session.sign_digest(CertKind::Authentication, b"1234", &challenge)?;
    let cert = session.read_certificate(CertKind::Authentication, None)?;
    let ok = jpki_pki::verify_signed_by_key(&cert, b"login challenge from a relying party", &sig)?;
    let left = session.pin_status(jpki_card::Secret::AuthPin)?.tries_left;
    n.say(format!(
        "Logged in with the card over APDUs: SELECT the JPKI AP, VERIFY the PIN ({left} tries left), sign a 32-byte \
         challenge (80 2A), READ BINARY the authentication certificate; the signature {} with its public key.",
        if ok { "verifies" } else { "does NOT verify" }
    ));
    // A contract signed with the signature key and time-stamped by the authority's TSA (PAdES-T).
    let tsa_creds = auth.tsa_credentials(pass.as_bytes())?;
    let tsa = jpki_sig::tsp::TimeStampAuthority::new(tsa_creds.key, tsa_creds.cert_der, tsa_creds.chain)?;
    let contract = jpki_sig::pdf::minimal_pdf("Contract: the holder agrees to open an account.");
    let signing_time = crate::docsig::now();
    let prepared = jpki_sig::pdf::prepare(&contract, &jpki_sig::pdf::SignOptions::new(signing_time))?;
    let digest = prepared.digest_sha256();
    let signed = crate::docsig::sign_document(
        &mut session,
        b"DEMO2024",
        &digest,
        Some(prepared),
        signing_time,
        &crate::docsig::Stamper::Local(&tsa),
    )?;
    let contract_file = data.join("demo-contract.signed.pdf");
    jpki_authority::write_atomically(&contract_file, &signed.bytes, 0o644)?;
    n.say(format!(
        "Signed a contract PDF with the signature key after the signing password ({}: /SubFilter \
         /ETSI.CAdES.detached, signature time-stamp from the authority's TSA) → {}.",
        signed.format,
        contract_file.display()
    ));
    drop(session);
    // Revocation times have whole-second precision; let the clock move on so that the move below
    // happens provably after the time-stamp.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let info = CertificateInfo::from_der(&sign_a.der)?;
    if let Some(j) = &info.jpki {
        n.say(format!(
            "The signature certificate's subjectAltName carries the basic four information: name 「{}」, address 「{}」, \
             birth {} (era digit 3 = Shōwa), sex {}. The authentication certificate's subject is only {}.",
            j.name.as_deref().unwrap_or(""),
            j.address.as_deref().unwrap_or(""),
            j.birth_date.as_deref().unwrap_or(""),
            j.sex.as_deref().unwrap_or(""),
            CertificateInfo::from_der(&issued_a.auth.der)?.subject
        ));
    }

    let mut card_c = manufacture("5678", secrets::random_sign_password()?.as_bytes())?;
    let (issued_c, _, _) = crate::issue_onto(&mut auth, &issuers, &signer, c.resident_id, &mut card_c, None)?;
    CardFile::create(
        &cards.join(format!("{}.card", issued_c.card_id)),
        device.clone(),
        card_c,
    )?;
    n.say(format!(
        "Issued card {} to #{} (under 15): authentication certificate {} only, as in the real system.",
        issued_c.card_id, c.resident_id, issued_c.auth.serial
    ));

    let moved = auth.move_resident(a.resident_id, &"大阪府大阪市北区中之島１丁目３番２０号".parse()?)?;
    n.say(format!(
        "#{} moved to Osaka: the signature certificate {} was revoked (affiliationChanged, its facts changed); \
         the authentication certificate stays valid.",
        a.resident_id,
        moved.changed.iter().map(|(s, _, _)| s.to_hex()).collect::<Vec<_>>().join(", ")
    ));
    let mut file = CardFile::open(&file_a, device)?;
    file.card_mut().regenerate_key(CertKind::Signature)?;
    file.save()?;
    let renewed = auth.renew(
        issued_a.card_id.as_str(),
        &crate::card_keys(file.card())?,
        Renewal {
            auth: false,
            sign: true,
        },
        &issuers,
    )?;
    if let Some(s) = &renewed.sign {
        file.card_mut()
            .install_certificate(CertKind::Signature, Some(&s.der));
        n.say(format!(
            "The card generated a new signature key pair; the authority issued {} with the new address and recorded the \
             old → new link (新旧紐付け) from {}.",
            s.serial, sign_a.serial
        ));
    }
    file.save()?;
    drop(file);

    let held = auth.report_lost(issued_c.card_id.as_str(), false)?;
    n.say(format!(
        "Card {} reported lost at the 24-hour call centre: {} put on hold (certificateHold).",
        issued_c.card_id,
        held.changed.len()
    ));
    let out = data.join("public");
    let first = auth.publish_crls(&out, &issuers, |_, _| {})?;
    n.say(format!(
        "Published CRLs to {}: complete, {} shards, ARL and CA certificate per CA (CRL number {}).",
        out.display(),
        auth.settings().shards,
        first.first().map_or(0, |r| r.crl_number)
    ));
    auth.card_found(issued_c.card_id.as_str())?;
    let second = auth.publish_crls(&out, &issuers, |_, _| {})?;
    n.say(format!(
        "The card was found and the hold lifted; the next publication's delta CRL lists it as removeFromCRL \
         (CRL number {}, delta against {}).",
        second.first().map_or(0, |r| r.crl_number),
        second.first().and_then(|r| r.delta_base).unwrap_or(0)
    ));
    let mut anchors = jpki_pki::path::TrustAnchors::new();
    anchors.add_der(&auth.ca_cert(CertKind::Signature)?)?;
    let mut crls = jpki_pki::revocation::CrlStore::new();
    crls.load_dir(&out.join("crl"))?;
    let verifier = jpki_sig::validate::Verifier::new(anchors, std::sync::Arc::new(crls));
    let report = verifier
        .verify_pdf(&signed.bytes, crate::docsig::now())?
        .into_iter()
        .next()
        .ok_or_else(|| Failure::Failed("the signed contract carries no signature".into()))?;
    let why = if report.indication == jpki_sig::report::Indication::TotalPassed {
        "its signature certificate has been revoked since (the move), but the time-stamp proves the signature \
         was made before"
            .to_owned()
    } else {
        report.reasons.first().cloned().unwrap_or_default()
    };
    n.say(format!(
        "Verified the contract like a platform operator: {}{} — {why}. `jpki verify {} --crl-dir {}` prints the \
         whole report.",
        report.indication.as_str(),
        report.sub_indication.map(|s| format!(" / {}", s.as_str())).unwrap_or_default(),
        contract_file.display(),
        out.join("crl").display()
    ));
    let ca = out.join(Endpoints::ca_cert_path(CertKind::Signature));
    let crl = out.join(Endpoints::full_crl_path(CertKind::Signature));
    n.say(format!(
        "Check it with OpenSSL: `jpki --data {d} cert export --serial {s} --out old.pem && openssl verify -crl_check \
         -CAfile <(openssl x509 -inform DER -in {ca}) -CRLfile <(openssl crl -inform DER -in {crl}) old.pem` \
         → certificate revoked.",
        d = data.display(),
        s = sign_a.serial,
        ca = ca.display(),
        crl = crl.display()
    ));
    let problems = auth.check()?;
    n.say(if problems.is_empty() {
        "The registry is consistent.".to_owned()
    } else {
        format!("Registry problems: {problems:?}")
    });
    Ok(Report::new(
        json!({ "data": data, "residents": [a.resident_id, c.resident_id], "cards": [issued_a.card_id, issued_c.card_id],
                "revoked": moved.changed.iter().map(|(s, _, _)| s).collect::<Vec<_>>(), "published": out, "consistent": problems.is_empty() }),
        n.text,
    ))
}
