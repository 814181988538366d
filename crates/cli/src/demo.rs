//! `jpki demo`: the whole authority end to end on the embedded registry, narrated.
use std::fmt::Write as _;
use std::path::Path;

use jpki_authority::{Authority, CardKeys, InitOptions, Renewal};
use jpki_card::Card;
use jpki_model::{BasicFour, CertKind};
use jpki_pki::{CertificateInfo, Endpoints, KeyType, SubjectPublicKey};
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

fn keys(card: &Card) -> Result<CardKeys, Failure> {
    Ok(CardKeys {
        auth: SubjectPublicKey::from_der(&card.public_key(CertKind::Authentication)?)?,
        sign: SubjectPublicKey::from_der(&card.public_key(CertKind::Signature)?)?,
    })
}

pub(crate) fn run(data: &Path, key_type: KeyType) -> Result<Report, Failure> {
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
    let mut card_a = Card::manufacture(&"1234".parse()?, &"DEMO2024".parse()?)?;
    let issued_a = auth.issue_card(a.resident_id, &keys(&card_a)?, &issuers)?;
    for (k, der) in [
        (CertKind::Authentication, Some(&issued_a.auth.der)),
        (CertKind::Signature, issued_a.sign.as_ref().map(|s| &s.der)),
    ] {
        if let Some(der) = der {
            card_a.install(issued_a.card_id.as_str(), k, der);
        }
    }
    let file_a = cards.join(format!("{}.card", issued_a.card_id));
    card_a.save(&file_a)?;
    let sign_a = issued_a
        .sign
        .as_ref()
        .ok_or_else(|| Failure::Failed("adult got no signature certificate".into()))?;
    n.say(format!(
        "Issued card {} to #{}: the card generated two RSA-2048 key pairs, only the public keys went to the authority. \
         Authentication certificate {} (no personal data), signature certificate {}; both valid to {} \
         (23:59:59 JST on the fifth birthday after issue).",
        issued_a.card_id,
        a.resident_id,
        issued_a.auth.serial,
        sign_a.serial,
        crate::rfc3339(Some(sign_a.not_after)).unwrap_or_default()
    ));
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

    let card_c = Card::manufacture(&"5678".parse()?, &secrets::random_sign_password()?)?;
    let issued_c = auth.issue_card(c.resident_id, &keys(&card_c)?, &issuers)?;
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
    card_a.regenerate_key(CertKind::Signature)?;
    let renewed = auth.renew(
        issued_a.card_id.as_str(),
        &keys(&card_a)?,
        Renewal {
            auth: false,
            sign: true,
        },
        &issuers,
    )?;
    if let Some(s) = &renewed.sign {
        card_a.install(issued_a.card_id.as_str(), CertKind::Signature, &s.der);
        n.say(format!(
            "The card generated a new signature key pair; the authority issued {} with the new address and recorded the \
             old → new link (新旧紐付け) from {}.",
            s.serial, sign_a.serial
        ));
    }
    card_a.save(&file_a)?;

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
