//! fnOS device tokens end to end (issue 12): `naslink login --device-token`
//! prints a token, the other commands log in with it alone, and a token the
//! NAS no longer accepts is a clear refusal with exit status 1.

use std::time::Duration;

use assert_cmd::Command;
use naslink_sim::fnos::Config;
use naslink_tokio::core::fnos::DeviceToken;
use serde_json::Value;

mod support;

use support::FnosSim as Sim;

/// `naslink` with nothing inherited: no password, no token.
fn naslink(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("naslink").unwrap();
    cmd.env_remove("NASLINK_URL")
        .env_remove("NASLINK_USER")
        .env_remove("NASLINK_PASSWORD")
        .env_remove("NASLINK_TOKEN")
        .args(["--url", url, "--timeout", "10"])
        .timeout(Duration::from_secs(30));
    cmd
}

/// A token from `naslink login --device-token` (password in the environment).
fn make_token(sim: &Sim) -> String {
    let out = naslink(&sim.url())
        .env("NASLINK_PASSWORD", "admin")
        .args(["login", "--device-token"])
        .assert()
        .success()
        .get_output()
        .clone();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn login_device_token_prints_only_the_token_on_stdout() {
    let sim = Sim::start(Config::default());
    let stdout = make_token(&sim);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout:?}");
    assert!(lines[0].starts_with("nlt1."), "{stdout:?}");
    let token = DeviceToken::parse(lines[0]).expect("a valid device token");
    assert_eq!(token.user(), "admin");
    assert!(token.credentials().can_token_login());
}

#[test]
fn status_works_with_the_token_alone() {
    let sim = Sim::start(Config::default());
    let token = make_token(&sim);
    let out = naslink(&sim.url())
        .env("NASLINK_TOKEN", token.trim())
        .args(["--json", "status"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let status: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status["host"], "fnos-sim", "{status}");
    // A named variable works too, and the trailing newline of a file is fine.
    naslink(&sim.url())
        .env("PANEL_TOKEN", &token)
        .args(["--token-env", "PANEL_TOKEN", "info"])
        .assert()
        .success();
}

#[test]
fn the_token_wins_over_a_wrong_password() {
    let sim = Sim::start(Config::default());
    let token = make_token(&sim);
    naslink(&sim.url())
        .env("NASLINK_TOKEN", token.trim())
        .env("NASLINK_PASSWORD", "wrong")
        .arg("info")
        .assert()
        .success();
}

#[test]
fn a_revoked_token_exits_1_and_says_the_nas_refused_it() {
    let sim = Sim::start(Config::default());
    let token = make_token(&sim);
    assert_eq!(sim.handle.revoke_long_tokens(), 1);
    naslink(&sim.url())
        .env("NASLINK_TOKEN", token.trim())
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "the NAS refused the device token (revoked or expired)",
        ))
        .stderr(predicates::str::contains("naslink login --device-token"));
}

#[test]
fn an_expired_token_exits_1_too() {
    let sim = Sim::start(Config {
        long_token_lifetime: Some(Duration::from_millis(200)),
        ..Config::default()
    });
    let token = make_token(&sim);
    std::thread::sleep(Duration::from_millis(300));
    naslink(&sim.url())
        .env("NASLINK_TOKEN", token.trim())
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("refused the device token"));
}

#[test]
fn a_damaged_token_is_a_usage_error_naming_the_variable() {
    let sim = Sim::start(Config::default());
    let token = make_token(&sim);
    let mut bytes = token.trim().as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    naslink(&sim.url())
        .env("NASLINK_TOKEN", String::from_utf8(bytes).unwrap())
        .arg("info")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "NASLINK_TOKEN: the device token is damaged",
        ));
    naslink(&sim.url())
        .args(["--token-env", "NOT_SET_ANYWHERE", "info"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("NOT_SET_ANYWHERE is not set"));
}

#[test]
fn raw_user_logout_with_the_token_revokes_it() {
    let sim = Sim::start(Config::default());
    let token = make_token(&sim);
    naslink(&sim.url())
        .env("NASLINK_TOKEN", token.trim())
        .args(["raw", "user.logout"])
        .assert()
        .success();
    naslink(&sim.url())
        .env("NASLINK_TOKEN", token.trim())
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("refused the device token"));
}
