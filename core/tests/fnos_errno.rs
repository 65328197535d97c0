//! Every row of the public errno table (`shared/protocol/fnos-errno.tsv`,
//! read when the test runs) has its own variant, an English message and
//! the table's Chinese wording.

use naslink_core::fnos::Errno;

fn table() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/protocol/fnos-errno.tsv"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rows(text: &str) -> Vec<(u32, &str)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (code, chinese) = line.split_once('\t').expect("code<TAB>message");
            (code.parse().expect("numeric code"), chinese.trim())
        })
        .collect()
}

#[test]
fn every_row_of_the_errno_table_has_its_variant_message_and_chinese_text() {
    let text = table();
    let rows = rows(&text);
    assert!(rows.len() >= 149, "the table has {} rows", rows.len());
    for (code, chinese) in rows {
        let errno = Errno::from_code(code);
        assert!(!matches!(errno, Errno::Other(_)), "{code} has no variant");
        assert_eq!(errno.code(), code);
        assert_eq!(errno.chinese(), Some(chinese), "{code}");
        let english = errno.message();
        assert!(
            !english.is_empty() && english.is_ascii() && english != "unrecognised error",
            "{code}: {english:?}"
        );
        assert_eq!(errno.to_string(), format!("{english} (errno {code})"));
    }
}

#[test]
fn the_codes_fnos_md_adds_have_variants_too() {
    for (code, errno) in [
        (135168, Errno::InvalidCredential),
        (8192, Errno::BadParameter),
        (10000002, Errno::UnknownMethod),
        (102570104, Errno::WrongTwoFactorCode),
        (102570109, Errno::TwoFactorAccessTokenExpired),
        (65534, Errno::SignatureCheckFailed),
        (131072, Errno::WrongUserOrPassword),
        (4352, Errno::PermissionDenied),
        (4224, Errno::NotLoggedIn),
    ] {
        assert_eq!(Errno::from_code(code), errno);
        assert_eq!(errno.code(), code);
    }
}

#[test]
fn every_variant_comes_from_the_table_or_fnos_md() {
    let text = table();
    let listed: Vec<u32> = rows(&text).into_iter().map(|(code, _)| code).collect();
    let from_fnos_md = [10000002, 102570104, 102570109];
    for errno in Errno::known() {
        assert!(
            listed.contains(&errno.code()) || from_fnos_md.contains(&errno.code()),
            "{errno:?} is in neither source"
        );
    }
}
