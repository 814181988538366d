//! マイナポータル end to end in a real browser: headless Chromium (Debian's, driven by Selenium
//! through chromedriver) logs in through `jpki card agent` with the keyboard, finds the check a
//! relying party made beforehand (with its purpose) and the log's integrity, the notices, the post
//! box with a good and a tampered document, withdraws a consent, and logs out. Screenshots of the
//! main pages go to $JPKI_SCREENSHOTS when set (docs/screenshots is made so). Then the card is
//! reported lost: logging in is refused with the hold and how to lift it; once found, it works again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::{
    Jpki, Person, SIGN_PASSWORD, Served, interop_required, minimal_pdf, post_json, s, venv_python_with,
};
use serde_json::json;

fn browser() -> Option<PathBuf> {
    let python = venv_python_with("selenium")?;
    (Path::new("/usr/bin/chromium").is_file() && Path::new("/usr/bin/chromedriver").is_file())
        .then_some(python)
}

#[test]
fn chromium_logs_into_the_portal_and_sees_records_notices_and_the_post_box() {
    let Some(python) = browser() else {
        assert!(
            !interop_required(),
            "chromium, chromedriver or selenium is missing (scripts/test.sh installs them)"
        );
        eprintln!("skipped: no chromium/chromedriver/selenium");
        return;
    };
    let j = Jpki::demo("rsa2048");
    let alice = j.issue_card(j.add_resident(Person::ADULT));
    let official = j.issue_card(j.add_resident(Person {
        name: "佐藤 花子",
        address: "東京都千代田区九段南1-2-1",
        birth: "1975-06-01",
        sex: "2",
    }));
    let bank = j.json(&[
        "rp",
        "add",
        "--name",
        "みらい銀行",
        "--allow",
        "auth-status,linkage",
    ]);
    let (bank_id, bank_key) = (bank["rp_id"].as_str().unwrap(), bank["api_key"].as_str().unwrap());

    // Notices: one to Alice, one to everyone.
    j.json(&[
        "notice",
        "send",
        "--serial",
        &alice.auth_serial,
        "--from",
        "国税庁",
        "--title",
        "確定申告のお知らせ",
        "--body",
        "申告期限は3月15日です。",
    ]);
    j.json(&[
        "notice",
        "send",
        "--all",
        "--from",
        "運用者",
        "--title",
        "メンテナンスのお知らせ",
        "--body",
        "日曜 2時〜4時",
    ]);
    // The post box: a PDF the city signed with an official's card, and a tampered copy.
    let pdf = j.path("juminhyo.pdf");
    std::fs::write(&pdf, minimal_pdf()).unwrap();
    let signed = j.path("juminhyo.signed.pdf");
    j.json(&[
        "sign",
        "--card",
        s(&official.card_file),
        "--sign-password",
        SIGN_PASSWORD,
        "--pdf",
        "--out",
        s(&signed),
        s(&pdf),
    ]);
    let bytes = std::fs::read(&signed).unwrap();
    let at = bytes.windows(7).position(|w| w == b"595 842").unwrap();
    let mut tampered = bytes.clone();
    tampered[at + 6] = b'3';
    let tampered_file = j.path("tampered.pdf");
    std::fs::write(&tampered_file, &tampered).unwrap();
    for (title, file) in [("住民票の写し", &signed), ("改ざんされた文書", &tampered_file)] {
        j.json(&[
            "postbox",
            "send",
            "--serial",
            &alice.auth_serial,
            "--from",
            "千代田区",
            "--title",
            title,
            s(file),
        ]);
    }
    // Refusals leave nothing behind: an unknown person, an empty title.
    assert_eq!(
        j.run(&[
            "notice", "send", "--serial", "abcdef", "--from", "x", "--title", "t", "--body", "b"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        j.run(&[
            "notice", "send", "--all", "--from", "x", "--title", " ", "--body", "b"
        ])
        .status
        .code(),
        Some(2)
    );

    let agent = Served::start(&j, &["card", "agent", "--card", s(&alice.card_file)]);
    let server = Served::start(
        &j,
        &["serve", "--card-agent", agent.ready["url"].as_str().unwrap()],
    );
    let base = format!("http://{}", server.addr());
    assert_eq!(server.ready["portal"], format!("{base}/portal"));

    // The bank checks Alice's authentication certificate, saying why; and files her consent to
    // serial linkage.
    let auth_pem = j.export_cert(&alice.auth_serial, "alice-auth.pem");
    let body = json!({ "certificate": std::fs::read_to_string(&auth_pem).unwrap(), "purpose": "口座開設の本人確認" });
    let (code, v) = post_json(
        &format!("{base}/v1/certificates/validity"),
        Some(bank_key),
        &body.to_string(),
    );
    assert_eq!(code, 200, "{v}");
    let consent_file = j.path("consent.p7s");
    j.json(&[
        "consent",
        "make",
        "--card",
        s(&alice.card_file),
        "--rp",
        bank_id,
        "--out",
        s(&consent_file),
        "--sign-password",
        SIGN_PASSWORD,
    ]);
    let statement = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&consent_file).unwrap());
    let (code, v) = post_json(
        &format!("{base}/v1/consents"),
        Some(bank_key),
        &json!({ "statement": statement }).to_string(),
    );
    assert!(code == 200 || code == 201, "{code} {v}");
    // The access record is written within a second.
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let shots = std::env::var_os("JPKI_SCREENSHOTS").map_or_else(|| j.path("shots"), PathBuf::from);
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/portal_browser.py");
    let out = Command::new(&python)
        .arg(script)
        .args([&format!("{base}/portal"), common::AUTH_PIN, s(&shots)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "portal_browser.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let page = |name: &str| {
        pages[name]
            .as_str()
            .unwrap_or_else(|| panic!("no page {name}: {pages}"))
            .to_owned()
    };

    assert!(
        page("agent").contains(&base),
        "the agent shows which site asks: {}",
        page("agent")
    );
    let home = page("home");
    for want in [
        Person::ADULT.name,
        Person::ADULT.address,
        "1980-02-17",
        alice.auth_serial.as_str(),
        "有効",
    ] {
        assert!(home.contains(want), "home lacks {want:?}: {home}");
    }
    let records = page("records");
    for want in [
        "みらい銀行",
        "口座開設の本人確認",
        "validity",
        "改ざんされていません",
    ] {
        assert!(records.contains(want), "records lack {want:?}: {records}");
    }
    let notices = page("notices");
    assert!(
        notices.contains("確定申告のお知らせ") && notices.contains("メンテナンスのお知らせ"),
        "{notices}"
    );
    let postbox = page("postbox");
    let line = |title: &str| {
        postbox
            .lines()
            .find(|l| l.contains(title))
            .unwrap_or_else(|| panic!("{title}: {postbox}"))
            .to_owned()
    };
    assert!(line("住民票の写し").contains("署名は有効です"), "{postbox}");
    assert!(
        line("改ざんされた文書").contains("署名を検証できません"),
        "the tampered document fails: {postbox}"
    );
    assert!(page("consents").contains("みらい銀行"), "{}", page("consents"));
    assert!(
        page("withdrawn").contains("同意を撤回しました"),
        "{}",
        page("withdrawn")
    );
    let listed = j.json(&["consent", "list", "--rp", bank_id]);
    assert!(
        listed["consents"][0]["revoked_at"].is_string(),
        "withdrawn in the registry: {listed}"
    );
    assert!(
        page("after_logout").contains("カードでログイン"),
        "logged out: {}",
        page("after_logout")
    );
    for shot in ["portal-home.png", "portal-records.png", "portal-postbox.png"] {
        assert!(shots.join(shot).is_file(), "{shot}");
    }

    // The card is reported lost: logging in says the certificate is on hold and how to lift it;
    // once found, it logs in again.
    let portal_login_from = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc_rp.py"))
            .args(["portal-login", &format!("{base}/portal"), common::AUTH_PIN])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let portal_login = || portal_login_from(&[]);
    // Login CSRF: a card answer for a login another browser started is refused.
    let elsewhere = portal_login_from(&["--elsewhere"]);
    assert_eq!(elsewhere["status"], 422, "{elsewhere}");
    assert!(
        elsewhere["alert"].as_str().unwrap().contains("another browser"),
        "{elsewhere}"
    );
    let until = |want: bool| {
        // The server follows the registry within a second.
        for _ in 0..20 {
            let v = portal_login();
            if v["logged_in"] == want {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!("the portal never saw the change");
    };
    j.json(&["card", "report-lost", "--card-id", &alice.card_id]);
    let held = until(false);
    assert_eq!(held["status"], 422, "{held}");
    let alert = held["alert"].as_str().unwrap();
    assert!(
        alert.contains("一時停止") && alert.contains("jpki card found"),
        "{alert}"
    );
    j.json(&["card", "found", "--card-id", &alice.card_id]);
    assert_eq!(until(true)["logged_in"], true);
}
