//! The basic four information: names, addresses, sex codes and birth dates.

use jpki_model::facts::PREFECTURES;
use jpki_model::{Address, BasicFour, ModelError, Name, Sex, parse_birth_date};
use proptest::prelude::*;
use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as DeError, U8Deserializer};
use time::macros::date;

#[test]
fn name_trims_and_validates() {
    let n: Name = "\u{3000} 山田 太郎 \n".parse().unwrap();
    assert_eq!(n.as_str(), "山田 太郎");
    assert_eq!(n.to_string(), "山田 太郎");
    assert_eq!(
        "".parse::<Name>().unwrap_err().to_string(),
        "name: must not be empty"
    );
    assert_eq!(
        " \u{3000}\t".parse::<Name>().unwrap_err().to_string(),
        "name: must not be empty"
    );
    assert_eq!(
        "山".repeat(130).parse::<Name>().unwrap_err().to_string(),
        "name: 130 characters, at most 100 allowed"
    );
    assert!("山".repeat(Name::MAX_CHARS).parse::<Name>().is_ok());
    assert_eq!(
        "山田\u{7}太郎".parse::<Name>().unwrap_err().to_string(),
        "name: control character U+0007 at position 3 is not allowed"
    );
}

#[test]
fn address_validates_with_its_own_field_name() {
    assert_eq!(
        "".parse::<Address>().unwrap_err().to_string(),
        "address: must not be empty"
    );
    assert_eq!(
        "町".repeat(201).parse::<Address>().unwrap_err().to_string(),
        "address: 201 characters, at most 200 allowed"
    );
    assert!("町".repeat(Address::MAX_CHARS).parse::<Address>().is_ok());
    assert_eq!(
        "東京都\n千代田区".parse::<Address>().unwrap_err().to_string(),
        "address: control character U+000A at position 4 is not allowed"
    );
}

#[test]
fn substitution_flags_mark_characters_outside_shift_jis() {
    let n: Name = "山田太郎".parse().unwrap();
    assert_eq!(n.substitution_flags(), "0000");
    // 𠮷 (U+20BB7) and 𩸽 (U+29E3D) are not in JIS X 0208 / CP932.
    let n: Name = "𠮷田 𩸽".parse().unwrap();
    assert_eq!(n.substitution_flags(), "1001");
    // 髙 is a CP932 (IBM extension) character, so it is encodable.
    let n: Name = "髙橋 Ann".parse().unwrap();
    assert_eq!(n.substitution_flags(), "000000");
    let a: Address = "東京都千代田区霞が関2-1-2".parse().unwrap();
    assert_eq!(a.substitution_flags(), "0".repeat(15));
}

type PrefCity = (Option<String>, Option<String>);

fn pref_city(address: &str) -> Result<PrefCity, ModelError> {
    let a: Address = address.parse()?;
    Ok((a.prefecture().map(str::to_owned), a.city().map(str::to_owned)))
}

#[test]
fn prefecture_and_city() {
    let cases = [
        ("東京都千代田区霞が関2-1-2", "東京都", "千代田区"),
        ("千葉県市川市八幡1-1-1", "千葉県", "市川市"),
        ("千葉県市川市市川1-1-1", "千葉県", "市川市"),
        ("神奈川県横浜市中区日本大通1", "神奈川県", "横浜市"),
        ("北海道虻田郡倶知安町北1条東3丁目", "北海道", "虻田郡倶知安町"),
        ("北海道茅部郡森町字御幸町144", "北海道", "茅部郡森町"),
        ("東京都町田市森野2-2-22", "東京都", "町田市"),
        ("三重県津市広明町13", "三重県", "津市"),
        ("三重県四日市市諏訪町1-5", "三重県", "四日市市"),
        ("長野県大町市大町3887", "長野県", "大町市"),
        ("長崎県大村市玖島1-25", "長崎県", "大村市"),
        ("東京都東村山市本町1-2-3", "東京都", "東村山市"),
        ("奈良県大和郡山市北郡山町248-4", "奈良県", "大和郡山市"),
        ("福島県郡山市朝日1-23-7", "福島県", "郡山市"),
        ("群馬県佐波郡玉村町下新田201", "群馬県", "佐波郡玉村町"),
        ("北海道余市郡余市町朝日町4", "北海道", "余市郡余市町"),
        ("山形県北村山郡大石田町緑町1", "山形県", "北村山郡大石田町"),
        ("京都府京都市上京区", "京都府", "京都市"),
        ("大阪府大阪市北区", "大阪府", "大阪市"),
        ("和歌山県和歌山市七番丁23", "和歌山県", "和歌山市"),
        ("鹿児島県鹿児島市山下町11-1", "鹿児島県", "鹿児島市"),
        ("沖縄県島尻郡北大東村", "沖縄県", "島尻郡北大東村"),
    ];
    for (address, pref, city) in cases {
        assert_eq!(
            pref_city(address),
            Ok((Some(pref.to_owned()), Some(city.to_owned()))),
            "{address}"
        );
    }
    assert_eq!(pref_city("Somewhere 1-2-3"), Ok((None, None)));
    assert_eq!(pref_city("霞が関2-1-2 東京都"), Ok((None, None)));
    assert_eq!(pref_city("東京都"), Ok((Some("東京都".to_owned()), None)));
}

#[test]
fn all_47_prefectures_are_recognised() {
    assert_eq!(PREFECTURES.len(), 47);
    for p in PREFECTURES {
        let a: Address = format!("{p}架空市1-1").parse().unwrap();
        assert_eq!(a.prefecture(), Some(p));
        assert_eq!(a.city(), Some("架空市"));
    }
}

#[test]
fn sex_codes() {
    for (s, sex, code) in [
        ("1", Sex::Male, 1),
        ("2", Sex::Female, 2),
        ("9", Sex::NotApplicable, 9),
    ] {
        assert_eq!(s.parse::<Sex>().unwrap(), sex);
        assert_eq!(sex.code(), code);
        assert_eq!(sex.code_char().to_string(), s);
        assert_eq!(Sex::from_code(code), Some(sex));
        assert_eq!(
            Sex::deserialize(U8Deserializer::<DeError>::new(code)).unwrap(),
            sex
        );
    }
    for bad in ["3", "0", "01", " 1", "male", ""] {
        let msg = bad.parse::<Sex>().unwrap_err().to_string();
        assert!(msg.starts_with("sex code: "), "{msg}");
        assert!(
            msg.ends_with("is not one of 1 (male), 2 (female), 9 (not applicable)"),
            "{msg}"
        );
    }
    assert_eq!(
        "3".parse::<Sex>().unwrap_err().to_string(),
        "sex code: 3 is not one of 1 (male), 2 (female), 9 (not applicable)"
    );
    assert_eq!(
        "".parse::<Sex>().unwrap_err().to_string(),
        "sex code: \"\" is not one of 1 (male), 2 (female), 9 (not applicable)"
    );
    assert!(
        Sex::deserialize(U8Deserializer::<DeError>::new(0))
            .unwrap_err()
            .to_string()
            .starts_with("sex code: 0")
    );
}

#[test]
fn birth_dates() {
    assert_eq!(parse_birth_date("1980-02-17").unwrap(), date!(1980 - 02 - 17));
    assert_eq!(parse_birth_date("2024-02-29").unwrap(), date!(2024 - 02 - 29));
    assert_eq!(
        parse_birth_date("2023-02-30").unwrap_err().to_string(),
        "birth date: 2023-02-30 is not a date"
    );
    assert_eq!(
        parse_birth_date("2023-02-29").unwrap_err().to_string(),
        "birth date: 2023-02-29 is not a date"
    );
    assert_eq!(
        parse_birth_date("2023-13-01").unwrap_err().to_string(),
        "birth date: 2023-13-01 is not a date"
    );
    assert_eq!(
        parse_birth_date("2023-00-10").unwrap_err().to_string(),
        "birth date: 2023-00-10 is not a date"
    );
    for bad in [
        "1980/02/17",
        "1980-2-17",
        "19800217",
        "",
        "1980-02-17 ",
        "S55-02-17",
        "１９８０-02-17",
    ] {
        let msg = parse_birth_date(bad).unwrap_err().to_string();
        assert!(
            msg.starts_with("birth date: ") && msg.ends_with("is not in the form YYYY-MM-DD"),
            "{msg}"
        );
    }
    assert_eq!(
        parse_birth_date("1980/02/17").unwrap_err().to_string(),
        "birth date: 1980/02/17 is not in the form YYYY-MM-DD"
    );
}

#[test]
fn basic_four_and_serde() {
    let four = BasicFour {
        name: "山田太郎".parse().unwrap(),
        address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
        birth_date: date!(1980 - 02 - 17),
        sex: Sex::Male,
    };
    assert_eq!(four.clone(), four);
    let name =
        Name::deserialize(" 山田花子 ".into_deserializer() as serde::de::value::StrDeserializer<'_, DeError>);
    assert_eq!(name.unwrap().as_str(), "山田花子");
}

proptest! {
    #[test]
    fn birth_date_round_trips(days in 0i32..200_000) {
        let d = date!(1800 - 01 - 01) + time::Duration::days(i64::from(days));
        prop_assert_eq!(parse_birth_date(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn names_parse_to_their_trimmed_form(s in "[ ]{0,2}[^\\p{Cc}\\s]{1,100}[ ]{0,2}") {
        let n: Name = s.parse().unwrap();
        prop_assert_eq!(n.as_str(), s.trim());
        prop_assert_eq!(n.substitution_flags().chars().count(), n.as_str().chars().count());
    }
}
