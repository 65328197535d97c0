//! Lockdown (999, allowed actions, bypass, binary pushes to listeners) and
//! two-factor login in the CFMS emulator.

mod cfms_support;

use std::time::Duration;

use cfms_support::{Client, Received, quick, start};
use naslink_sim::cfms::{Clock, Config, UserSpec, totp_code};
use serde_json::json;

fn with_bob(config: Config) -> Config {
    Config {
        users: vec![UserSpec::admin("admin"), UserSpec::user("bob", "pw")],
        ..config
    }
}

#[tokio::test]
async fn lockdown_action_pushes_binary_frames_to_listeners_only() {
    let server = start(with_bob(Config::default())).await;
    let mut listener = Client::connect(&server).await;
    let joined = listener.call("register_listener", json!({})).await;
    assert_eq!(joined["message"], "registered as a listener");
    let mut bystander = Client::connect(&server).await;
    let mut admin = Client::connect(&server).await;
    admin.login("admin", "admin").await;
    let on = admin.call("lockdown", json!({"status": true})).await;
    assert_eq!(
        (on["code"].clone(), on["message"].clone()),
        (json!(200), json!("Success"))
    );
    assert_eq!(
        listener.recv().await,
        Received::Binary(br#"{"action": "lockdown", "status": true}"#.to_vec())
    );
    server.set_lockdown(false);
    assert_eq!(
        listener.recv().await,
        Received::Binary(br#"{"action": "lockdown", "status": false}"#.to_vec())
    );
    assert_eq!(
        bystander.recv_within(Duration::from_millis(200)).await,
        None
    );
}

#[tokio::test]
async fn lockdown_answers_999_except_allowed_actions_and_bypass() {
    let server = start(with_bob(Config {
        lockdown: true,
        ..Config::default()
    }))
    .await;
    let mut bob = Client::connect(&server).await;
    let info = bob.call("server_info", json!({})).await;
    assert_eq!(info["data"]["lockdown"], true);
    bob.login("bob", "pw").await;
    assert_eq!(bob.call("refresh_token", json!({})).await["code"], 200);
    let refused = bob.call("list_directory", json!({"folder_id": null})).await;
    assert_eq!(
        refused,
        json!({"code": 999, "data": {}, "message": "lockdown",
                               "timestamp": refused["timestamp"]})
    );
    let mut admin = Client::connect(&server).await;
    admin.login("admin", "admin").await;
    let listing = admin
        .call("list_directory", json!({"folder_id": null}))
        .await;
    assert_eq!(listing["code"], 200);
}

#[tokio::test]
async fn lockdown_cancels_pending_tasks() {
    let server = start(Config::default()).await;
    let mut admin = Client::connect(&server).await;
    admin.login("admin", "admin").await;
    let id = server.put_document(None, "x", b"abc".to_vec());
    let got = admin.call("get_document", json!({"document_id": id})).await;
    let task = got["data"]["task_data"]["task_id"].clone();
    server.set_lockdown(true);
    let refused = admin.call("download_file", json!({"task_id": task})).await;
    assert_eq!(
        refused["message"],
        "Task is not in a valid state for download"
    );
}

#[tokio::test]
async fn two_factor_login_asks_202_then_accepts_totp_and_single_use_backup_codes() {
    let clock = Clock::manual(1_800_000_000.0);
    let mut admin = UserSpec::admin("pw");
    admin.totp_secret = Some("JBSWY3DPEHPK3PXP".into());
    admin.backup_codes = vec!["abcd1234".into()];
    let server = start(quick(Config {
        protocol_version: 5,
        users: vec![admin],
        clock: clock.clone(),
        ..Config::default()
    }))
    .await;
    let mut c = Client::connect(&server).await;
    let asked = c
        .call("login", json!({"username": "admin", "password": "pw"}))
        .await;
    assert_eq!(asked["code"], 202);
    assert_eq!(asked["data"], json!({"method": "totp"}));
    let login = |code: &str| json!({"username": "admin", "password": "pw", "2fa_token": code});
    let bad = c.call("login", login("000000")).await;
    assert_eq!(
        (bad["code"].clone(), bad["message"].clone()),
        (json!(401), json!("Invalid two-factor authentication token"))
    );
    let previous_step = totp_code("JBSWY3DPEHPK3PXP", clock.now() - 30.0).expect("base32");
    assert_eq!(c.call("login", login(&previous_step)).await["code"], 200);
    let too_old = totp_code("JBSWY3DPEHPK3PXP", clock.now() - 60.0).expect("base32");
    assert_eq!(c.call("login", login(&too_old)).await["code"], 401);
    assert_eq!(c.call("login", login("abcd1234")).await["code"], 200);
    assert_eq!(c.call("login", login("abcd1234")).await["code"], 401);
}

#[tokio::test]
async fn setup_and_validate_2fa_enable_it_and_disable_turns_it_off() {
    let clock = Clock::manual(1_800_000_000.0);
    let server = start(quick(Config {
        protocol_version: 5,
        clock: clock.clone(),
        ..Config::default()
    }))
    .await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let setup = c.call("setup_2fa", json!({"method": "totp"})).await;
    let secret = setup["data"]["secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        setup["data"]["backup_codes"].as_array().map(Vec::len),
        Some(10)
    );
    let wrong = c.call("validate_2fa", json!({"token": "000000"})).await;
    assert_eq!(wrong["message"], "Invalid verification code");
    let code = totp_code(&secret, clock.now()).expect("base32");
    let ok = c.call("validate_2fa", json!({"token": code})).await;
    assert_eq!(
        ok["message"],
        "Two-factor authentication enabled successfully"
    );
    let status = c.call("get_2fa_status", json!({})).await;
    assert_eq!(
        status["data"],
        json!({"enabled": true, "method": "totp", "backup_codes_count": 10})
    );
    let asked = c
        .call("login", json!({"username": "admin", "password": "admin"}))
        .await;
    assert_eq!(asked["code"], 202);
    let off = c.call("disable_2fa", json!({"password": "admin"})).await;
    assert_eq!(
        off["message"],
        "Two-factor authentication disabled successfully"
    );
    c.login("admin", "admin").await;
}

#[tokio::test]
async fn two_factor_actions_are_unknown_below_protocol_5() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let answer = c.call("get_2fa_status", json!({})).await;
    assert_eq!(answer["message"], "Unknown action: get_2fa_status");
}

#[tokio::test]
async fn push_can_arrive_between_a_request_and_its_answer() {
    let server = start(quick(Config::default())).await;
    let mut c = Client::connect(&server).await;
    c.call("register_listener", json!({})).await;
    // The wrong password is answered only after the delay; lockdown changes
    // meanwhile.
    c.send_action("login", json!({"username": "admin", "password": "bad"}))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.set_lockdown(true);
    assert_eq!(
        c.recv().await,
        Received::Binary(br#"{"action": "lockdown", "status": true}"#.to_vec())
    );
    assert_eq!(c.recv_json().await["code"], 401);
}
