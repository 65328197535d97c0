//! Envelope, authentication, tokens, directories and connection rules of the
//! CFMS emulator.

mod cfms_support;

use std::time::{Duration, Instant};

use cfms_support::{Client, Received, quick, start};
use naslink_sim::cfms::{Clock, Config, UserSpec};
use serde_json::{Value, json};

#[tokio::test]
async fn server_info_reports_name_version_protocol_and_lockdown_with_timestamp() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    let answer = c.call("server_info", json!({})).await;
    assert_eq!(answer["code"], 200);
    assert_eq!(
        answer["message"],
        "Server information retrieved successfully"
    );
    assert_eq!(
        answer["data"],
        json!({"server_name": "CFMS WebSocket Server", "version": "0.1.0.250919_alpha",
               "protocol_version": 3, "lockdown": false})
    );
    assert!(answer["timestamp"].is_f64());
    assert!(answer.get("protocol_version").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn server_info_reports_a_configured_higher_protocol_version() {
    let config = Config {
        // 13 speaks its own framing (cfms_p13.rs); 6 to 12 are only reported.
        protocol_version: 12,
        ..Config::default()
    };
    let server = start(config).await;
    let mut c = Client::connect(&server).await;
    let answer = c.call("server_info", json!({})).await;
    assert_eq!(answer["data"]["protocol_version"], 12);
}

#[tokio::test]
async fn wrong_password_answers_401_after_the_configured_delay() {
    let server = start(quick(Config::default())).await;
    let mut c = Client::connect(&server).await;
    let began = Instant::now();
    let answer = c
        .call("login", json!({"username": "admin", "password": "nope"}))
        .await;
    assert_eq!(answer["code"], 401);
    assert_eq!(answer["message"], "Invalid credentials");
    assert!(began.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn expired_password_answers_403_until_set_passwd() {
    let mut admin = UserSpec::admin("old");
    admin.password_expired = true;
    let server = start(Config {
        users: vec![admin],
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let answer = c
        .call("login", json!({"username": "admin", "password": "old"}))
        .await;
    assert_eq!(answer["code"], 403);
    assert_eq!(
        answer["message"],
        "Password should be changed because it's expired"
    );
    let set = c
        .call(
            "set_passwd",
            json!({"username": "admin", "old_passwd": "old", "new_passwd": "new"}),
        )
        .await;
    assert_eq!(
        (set["code"].clone(), set["message"].clone()),
        (json!(200), json!("Password set successfully"))
    );
    let login = c.login("admin", "new").await;
    assert_eq!(login["data"]["nickname"], "管理员");
    assert_eq!(login["data"]["groups"], json!(["sysop", "user"]));
    assert!(login["data"]["exp"].is_f64());
}

#[tokio::test]
async fn token_exp_is_the_configured_lifetime_ahead_and_expires_on_the_clock() {
    let clock = Clock::manual(1_800_000_000.25);
    let server = start(Config {
        clock: clock.clone(),
        token_lifetime: Duration::from_secs(60),
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let login = c.login("admin", "admin").await;
    assert_eq!(login["data"]["exp"], json!(1_800_000_060.25));
    let refreshed = c.call("refresh_token", json!({})).await;
    assert_eq!(refreshed["message"], "Token refreshed successfully");
    clock.advance(61.0);
    let listing = c.call("list_directory", json!({"folder_id": null})).await;
    assert_eq!(
        (listing["code"].clone(), listing["message"].clone()),
        (json!(401), json!("Invalid user or token"))
    );
    let refresh = c.call("refresh_token", json!({})).await;
    assert_eq!(
        (refresh["code"].clone(), refresh["message"].clone()),
        (json!(400), json!("Invalid or expired token"))
    );
    c.token.clear();
    let empty = c.call("refresh_token", json!({})).await;
    assert_eq!(empty["message"], "missing or invalid token");
}

#[tokio::test]
async fn envelope_errors_match_the_recorded_server() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    c.send_json(&json!({"data": {}})).await;
    assert_eq!(
        c.recv_json().await["message"],
        "No action specified in request"
    );
    let unknown = c.call("frobnicate", json!({})).await;
    assert_eq!(
        (unknown["code"].clone(), unknown["message"].clone()),
        (json!(400), json!("Unknown action: frobnicate"))
    );
    c.send_json(&json!({"action": "list_directory"})).await;
    let missing = c.recv_json().await;
    assert_eq!(missing["message"], "'folder_id' is a required property");
    assert_eq!(
        missing["data"],
        json!({"validator": "required", "validator_value": ["folder_id"]})
    );
    let extra = c
        .call("get_document", json!({"document_id": "x", "extra": 1}))
        .await;
    assert_eq!(
        extra["message"],
        "Additional properties are not allowed ('extra' was unexpected)"
    );
    assert_eq!(
        extra["data"],
        json!({"validator": "additionalProperties", "validator_value": false})
    );
}

#[tokio::test]
async fn protocol_3_refuses_missing_credentials_401_for_directories_403_for_documents() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    let dir = c.call("list_directory", json!({"folder_id": null})).await;
    assert_eq!(
        (dir["code"].clone(), dir["message"].clone()),
        (json!(401), json!("Invalid user or token"))
    );
    let doc = c
        .call("get_document", json!({"document_id": "hello"}))
        .await;
    assert_eq!(
        (doc["code"].clone(), doc["message"].clone()),
        (json!(403), json!("Invalid user or token"))
    );
}

#[tokio::test]
async fn protocol_5_names_missing_credentials() {
    let server = start(Config {
        protocol_version: 5,
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let doc = c
        .call("get_document", json!({"document_id": "hello"}))
        .await;
    assert_eq!(
        (doc["code"].clone(), doc["message"].clone()),
        (json!(401), json!("Authentication required"))
    );
}

#[tokio::test]
async fn malformed_json_closes_with_1000_and_sends_nothing() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    c.send_text("this is {not json").await;
    assert_eq!(c.recv().await, Received::Close(Some(1000)));
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = start(quick(Config::default())).await;
    let mut c = Client::connect(&server).await;
    // The slow (delayed) wrong-password answer must still come first.
    c.send_action("login", json!({"username": "admin", "password": "bad"}))
        .await;
    c.send_action("server_info", json!({})).await;
    c.send_action("frobnicate", json!({})).await;
    assert_eq!(c.recv_json().await["code"], 401);
    assert_eq!(c.recv_json().await["code"], 200);
    assert_eq!(c.recv_json().await["code"], 400);
}

#[tokio::test]
async fn directories_root_is_null_or_empty_and_root_string_is_404() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let root = c.call("list_directory", json!({"folder_id": "root"})).await;
    assert_eq!(
        (root["code"].clone(), root["message"].clone()),
        (json!(404), json!("Directory not found"))
    );
    let made = c
        .call("create_directory", json!({"parent_id": null, "name": "a"}))
        .await;
    assert_eq!(made["message"], "Directory created successfully");
    let id = made["data"]["id"].as_str().expect("id").to_owned();
    let dup = c
        .call("create_directory", json!({"parent_id": "", "name": "a"}))
        .await;
    assert_eq!(
        dup["message"],
        "A folder with the same name already exists in the target directory"
    );
    let listing = c.call("list_directory", json!({"folder_id": ""})).await;
    assert_eq!(listing["data"]["parent_id"], Value::Null);
    assert_eq!(listing["data"]["folders"][0]["id"], json!(id));
    let inner = c.call("list_directory", json!({"folder_id": id})).await;
    assert_eq!(inner["data"]["parent_id"], "/");
    let info = c
        .call("get_directory_info", json!({"directory_id": id}))
        .await;
    assert_eq!(info["data"]["name"], "a");
    assert_eq!(info["data"]["parent_id"], Value::Null);
    let renamed = c
        .call(
            "rename_directory",
            json!({"folder_id": id, "new_name": "b"}),
        )
        .await;
    assert_eq!(renamed["code"], 200);
    let deleted = c.call("delete_directory", json!({"folder_id": id})).await;
    assert_eq!(deleted["code"], 200);
    let gone = c
        .call("get_directory_info", json!({"directory_id": id}))
        .await;
    assert_eq!(gone["code"], 404);
}

#[tokio::test]
async fn ordinary_user_is_refused_admin_actions() {
    let server = start(Config {
        users: vec![UserSpec::admin("admin"), UserSpec::user("bob", "pw")],
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let login = c.login("bob", "pw").await;
    assert_eq!(login["data"]["permissions"], json!(["set_passwd"]));
    let users = c.call("list_users", json!({})).await;
    assert_eq!(
        (users["code"].clone(), users["message"].clone()),
        (
            json!(403),
            json!("You do not have permission to list users")
        )
    );
    let doc = c.call("create_document", json!({"title": "nope"})).await;
    assert_eq!(
        (doc["code"].clone(), doc["message"].clone()),
        (json!(403), json!("Permission denied"))
    );
}

#[tokio::test]
async fn client_that_never_answers_ping_is_dropped_after_pong_timeout() {
    let server = start(Config {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    // Not reading means tungstenite never answers the PING.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(c.recv().await, Received::Gone);
}

#[tokio::test]
async fn client_that_answers_pings_stays_connected() {
    let server = start(Config {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    // Reading answers each PING.
    assert_eq!(c.recv_within(Duration::from_millis(800)).await, None);
    assert_eq!(c.call("server_info", json!({})).await["code"], 200);
}

#[tokio::test]
async fn drop_connections_ends_connections_without_close_frame() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    assert_eq!(c.call("server_info", json!({})).await["code"], 200);
    server.drop_connections();
    assert_eq!(c.recv().await, Received::Gone);
}

#[tokio::test]
async fn create_user_makes_an_expired_account_and_admin_listings_show_it() {
    let server = start(Config::default()).await;
    let mut admin = Client::connect(&server).await;
    admin.login("admin", "admin").await;
    let groups = json!([{"group_name": "user", "start_time": 0.0}]);
    let created = admin
        .call(
            "create_user",
            json!({"username": "bob", "password": "pw", "nickname": "Bob", "groups": groups}),
        )
        .await;
    assert_eq!(created["message"], "User created successfully");
    let users = admin.call("list_users", json!({})).await;
    let names: Vec<&str> = users["data"]["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["admin", "bob"]);
    let listed = admin.call("list_groups", json!({})).await;
    assert_eq!(
        listed["data"]["groups"][1],
        json!({"name": "user", "permissions": ["set_passwd"]})
    );
    let logs = admin
        .call("view_audit_logs", json!({"offset": 0, "count": 1}))
        .await;
    assert_eq!(logs["data"]["logs"][0]["action"], "list_groups");
    let mut bob = Client::connect(&server).await;
    let login = bob
        .call("login", json!({"username": "bob", "password": "pw"}))
        .await;
    assert_eq!(login["code"], 403);
}

#[tokio::test]
async fn shutdown_action_answers_then_stops_the_server() {
    let server = start(Config::default()).await;
    let mut admin = Client::connect(&server).await;
    admin.login("admin", "admin").await;
    let answer = admin.call("shutdown", json!({})).await;
    assert_eq!(answer["code"], 200);
    assert_eq!(admin.recv().await, Received::Gone);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(server.addr()).await.is_err());
}

/// Answers recorded live from the real d059bc7 (protocol 3) server on
/// 2026-12-04 (`helper-notes/real13.md`): an empty login name and an empty
/// directory id are schema 400s, a rename to the current name is refused,
/// and a document may not take the name of a folder beside it.
#[tokio::test]
async fn empty_ids_same_name_renames_and_folder_named_documents_answer_as_d059bc7() {
    let server = start(Config::default()).await;
    let mut c = Client::connect(&server).await;
    let min_length = json!({"validator": "minLength", "validator_value": 1});
    let empty = c
        .call("login", json!({"username": "", "password": "x"}))
        .await;
    assert_eq!(
        (&empty["code"], &empty["message"], &empty["data"]),
        (&json!(400), &json!("'' should be non-empty"), &min_length)
    );
    c.login("admin", "admin").await;
    let blank = c
        .call("get_directory_info", json!({"directory_id": ""}))
        .await;
    assert_eq!(
        (&blank["code"], &blank["message"], &blank["data"]),
        (&json!(400), &json!("'' should be non-empty"), &min_length)
    );
    let made = c
        .call("create_directory", json!({"parent_id": null, "name": "a"}))
        .await;
    let id = made["data"]["id"].as_str().expect("id").to_owned();
    let same = c
        .call(
            "rename_directory",
            json!({"folder_id": id, "new_name": "a"}),
        )
        .await;
    assert_eq!(
        (&same["code"], &same["message"]),
        (
            &json!(400),
            &json!("New name is the same as the current name")
        )
    );
    let clash = c
        .call("create_document", json!({"title": "a", "folder_id": null}))
        .await;
    assert_eq!(
        (&clash["code"], &clash["message"]),
        (
            &json!(400),
            &json!("A folder with the same name already exists in the target directory")
        )
    );
    server.shutdown().await;
}
