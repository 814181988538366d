//! The holder's card commands over the card file (no reader needed): PIN changes, the card face,
//! the authority's unblock, and bad input. The same commands over PC/SC are in card_interop.rs.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Jpki, Person};

fn card_args<'a>(card: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["card"];
    v.extend_from_slice(rest);
    v.extend_from_slice(&["--card", card]);
    v
}

#[test]
fn pin_change_read_face_unblock_and_bad_input() {
    let j = Jpki::demo("rsa2048");
    let r = j.add_resident(Person::ADULT);
    let issued = j.issue_card(r);
    let card = issued.card_file.to_str().unwrap().to_owned();
    let card = card.as_str();

    // PIN changes: the old value no longer works, the new one does; counters stay full.
    j.json(&card_args(
        card,
        &[
            "pin", "change", "--kind", "auth", "--pin", "1234", "--new", "4321",
        ],
    ));
    let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    // `card sign-digest --kind auth --pin PIN` over the card file.
    let sign_args = |pin: &'static str| {
        card_args(
            card,
            &["sign-digest", "--kind", "auth", "--pin", pin, "--digest", digest],
        )
    };
    let bad = j.run(&sign_args("1234"));
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("2 tries left"));
    let sig = j.json(&sign_args("4321"));
    assert_eq!(sig["signature"].as_str().unwrap().len(), 512);
    j.json(&card_args(
        card,
        &[
            "pin",
            "change",
            "--kind",
            "sign",
            "--sign-password",
            "abcdef12",
            "--new",
            "newpass9",
        ],
    ));
    j.json(&card_args(
        card,
        &[
            "pin",
            "change",
            "--kind",
            "assist",
            "--assist-pin",
            "1234",
            "--new",
            "9999",
        ],
    ));
    let info = j.json(&card_args(card, &["read-info", "--assist-pin", "9999"]));
    assert_eq!(info["birth_date"], "19800217");
    assert_eq!(info["signature"], "valid");
    let status = j.json(&card_args(card, &["pin", "status"]));
    assert_eq!(status["auth"]["tries_left"], 3, "{status}");
    assert_eq!(status["sign"]["tries_left"], 5, "{status}");

    // The card face with 照合番号B from the issuance report.
    let code = issued.json["collation_b"].as_str().unwrap().to_owned();
    let out = j.path("face");
    let face = j.json(&card_args(
        card,
        &[
            "read-face",
            "--collation-b",
            &code,
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert_eq!(face["card_id"], issued.card_id.as_str());
    for f in [
        "name.png",
        "address.png",
        "photo.png",
        "security-code.png",
        "face.json",
    ] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert!(f.ends_with(".json") || bytes.starts_with(b"\x89PNG"), "{f}");
    }

    // Lock the auth PIN, then the authority unblocks it with a new PIN.
    for _ in 0..3 {
        j.run(&sign_args("0000"));
    }
    let locked = j.run(&sign_args("4321"));
    assert!(String::from_utf8_lossy(&locked.stderr).contains("locked"));
    let u = j.json(&card_args(
        card,
        &["unblock", "--kind", "auth", "--new-pin", "2468"],
    ));
    assert_eq!(u["tries_left"], 3);
    j.json(&sign_args("2468"));

    // Bad input: one line naming the problem, exit 2, the card untouched.
    let before = std::fs::read(&issued.card_file).unwrap();
    for (args, needle) in [
        (
            vec![
                "sign-digest",
                "--kind",
                "auth",
                "--pin",
                "2468",
                "--digest",
                "xyz",
            ],
            "--digest",
        ),
        (
            vec!["pin", "change", "--kind", "auth", "--pin", "2468", "--new", "12"],
            "new user-authentication PIN",
        ),
        (
            vec!["read-face", "--collation-b", "123", "--out", "x"],
            "--collation-b",
        ),
    ] {
        let o = j.run(&card_args(card, &args));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read(&issued.card_file).unwrap(),
        before,
        "bad input wrote nothing"
    );
    let o = j.run(&["card", "info", "--card", card, "--reader", "x"]);
    assert_eq!(o.status.code(), Some(2), "--card and --reader together");
    let o = j.run(&["card", "info", "--card", j.path("nope.card").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));

    // A renewal the authority refuses (the card is lost) leaves the card's keys as they were.
    j.json(&[
        "card",
        "report-lost",
        "--card-id",
        issued.card_id.as_str(),
        "--confirm",
    ]);
    let before = std::fs::read(&issued.card_file).unwrap();
    let o = j.run(&["card", "renew", "--card", card, "--kind", "both"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&issued.card_file).unwrap(),
        before,
        "refused renewal wrote the card"
    );
}
