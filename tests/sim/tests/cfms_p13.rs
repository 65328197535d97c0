//! The protocol-13 emulator: framing, stream ids, malformed input, answers
//! in completion order, detection against 3–5, the envelope checks and the
//! lockdown event (`shared/protocol/cfms-13.md` §2–§7, §11).

mod cfms13_support;

use std::time::Duration;

use cfms13_support::{CONCLUSION, Client, Got, PROCESS, QUIET, frame, now, start, start13};
use naslink_sim::cfms::{Config, UserSpec, totp_code};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn code(answer: &Value) -> i64 {
    answer["code"].as_i64().expect("code")
}

#[tokio::test]
async fn server_info_comes_back_as_a_conclusion_on_the_request_stream() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.send_json(1, &json!({"action": "server_info", "data": {}}))
        .await;
    let answer = c.conclusion(1).await;
    assert_eq!(code(&answer), 200);
    assert_eq!(answer["data"]["protocol_version"], 13);
    assert_eq!(answer["data"]["version"], "0.3.0.260519_alpha");
    assert_eq!(answer["data"]["lockdown"], false);
    assert!(answer["timestamp"].is_f64());
}

#[tokio::test]
async fn text_json_is_never_answered_but_header_shaped_text_is_served() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    let old_style = r#"{"action":"server_info","data":{},"username":"","token":""}"#;
    c.send_raw(Message::Text(old_style.into())).await;
    assert!(c.quiet(QUIET).await, "JSON text is dropped silently");
    let header_text = "\u{0}\u{1}\u{0}\u{1}\u{0}{\"action\": \"server_info\", \"data\": {}}";
    c.send_raw(Message::Text(header_text.into())).await;
    let answer = c.conclusion(65537).await;
    assert_eq!(code(&answer), 200);
}

#[tokio::test]
async fn malformed_frames_get_no_answer_and_the_connection_stays_usable() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.send_raw(Message::Binary(vec![0, 0, 1].into())).await;
    let bad_type = frame(101, 7, br#"{"action":"server_info","data":{}}"#);
    c.send_raw(Message::Binary(bad_type.into())).await;
    c.send(125, PROCESS, b"{not json").await;
    assert!(
        c.quiet(QUIET).await,
        "short, bad-type and non-JSON frames are ignored"
    );
    // The non-JSON id stays bound: a request on it is swallowed.
    c.send_json(125, &json!({"action": "server_info", "data": {}}))
        .await;
    assert!(c.quiet_on(125, QUIET).await);
    // Any id opens a stream, even ones included, and a request sent as a
    // CONCLUSION is answered.
    c.send_json(1000, &json!({"action": "server_info", "data": {}}))
        .await;
    assert_eq!(code(&c.conclusion(1000).await), 200);
    c.send(127, CONCLUSION, br#"{"action":"server_info","data":{}}"#)
        .await;
    assert_eq!(code(&c.conclusion(127).await), 200);
    // A concluded id is forgotten: reusing it opens a new stream.
    c.send_json(127, &json!({"action": "server_info", "data": {}}))
        .await;
    assert_eq!(code(&c.conclusion(127).await), 200);
}

#[tokio::test]
async fn frames_to_a_dead_stream_wedge_the_connection_but_not_the_others() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.send(1, PROCESS, b"not json").await;
    for _ in 0..110 {
        c.send(1, PROCESS, b"x").await;
    }
    c.send_json(3, &json!({"action": "server_info", "data": {}}))
        .await;
    assert!(c.quiet_on(3, Duration::from_secs(1)).await, "wedged");
    let mut other = Client::connect(&server).await;
    other
        .send_json(1, &json!({"action": "server_info", "data": {}}))
        .await;
    assert_eq!(code(&other.conclusion(1).await), 200);
}

#[tokio::test]
async fn answers_come_back_in_completion_order() {
    let server = start13().await;
    server.set_action_delay("login", Some(Duration::from_millis(600)));
    let mut c = Client::connect(&server).await;
    let login = json!({"action": "login", "data": {"username": "admin", "password": "admin"}});
    c.send_json(1, &login).await;
    c.send_json(3, &json!({"action": "server_info", "data": {}}))
        .await;
    let first = c.next_within(Duration::from_secs(5)).await;
    assert!(
        matches!(first, Some(Got::Frame(3, CONCLUSION, _))),
        "{first:?}"
    );
    assert_eq!(code(&c.conclusion(1).await), 200);
}

#[tokio::test]
async fn sixteen_requests_in_flight_are_all_answered() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let mut ids = Vec::new();
    for _ in 0..16 {
        ids.push(c.start("list_directory", json!({"folder_id": null})).await);
    }
    for id in ids {
        assert_eq!(code(&c.conclusion(id).await), 200);
    }
}

#[tokio::test]
async fn an_unanswered_action_stays_silent_while_others_are_served() {
    let server = start13().await;
    server.set_unanswered("list_directory", true);
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let silent = c.start("list_directory", json!({"folder_id": null})).await;
    assert_eq!(code(&c.call("server_info", json!({})).await), 200);
    assert!(c.quiet_on(silent, QUIET).await);
    server.set_unanswered("list_directory", false);
    let answer = c.call("list_directory", json!({"folder_id": null})).await;
    assert_eq!(code(&answer), 200);
}

async fn probe(protocol: u32) -> Got {
    let server = start(Config {
        protocol_version: protocol,
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    c.send_json(1, &json!({"action": "server_info", "data": {}}))
        .await;
    c.next_within(Duration::from_secs(5))
        .await
        .expect("an answer or a close")
}

#[tokio::test]
async fn a_binary_probe_is_closed_by_3_and_5_and_answered_by_13() {
    for protocol in [3, 5] {
        assert_eq!(
            probe(protocol).await,
            Got::Close(Some(1000)),
            "protocol {protocol}"
        );
    }
    let Got::Frame(1, CONCLUSION, payload) = probe(13).await else {
        panic!("protocol 13 answers the probe");
    };
    let answer: Value = serde_json::from_slice(&payload).expect("JSON");
    assert_eq!(answer["data"]["protocol_version"], 13);
}

#[tokio::test]
async fn envelope_schema_failures_are_400_in_the_recorded_words() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    let cases = [
        (
            json!({"action": "server_info"}),
            "Invalid request format: 'data' is a required property",
        ),
        (
            json!({"action": "server_info", "data": {}, "username": "admin"}),
            "Invalid request format: 'token' is a dependency of 'username'",
        ),
        (
            json!([1, 2]),
            "Invalid request format: [1, 2] is not of type 'object'",
        ),
        (
            json!({"action": "register_listener", "data": {}}),
            "Unknown action: register_listener",
        ),
        (
            json!({"action": "login", "data": {"username": "admin"}}),
            "'password' is a required property",
        ),
    ];
    for (request, message) in cases {
        let id = c.id();
        c.send_json(id, &request).await;
        let answer = c.conclusion(id).await;
        assert_eq!(code(&answer), 400, "{request}");
        assert_eq!(answer["message"], message);
    }
}

#[tokio::test]
async fn replay_protection_checks_nonce_and_timestamp_of_authenticated_requests() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let (user, token) = (c.username.clone(), c.token.clone());
    let list = |extra: Value| {
        let mut r = json!({"action": "list_directory", "data": {"folder_id": null},
                           "username": user, "token": token});
        for (k, v) in extra.as_object().expect("object") {
            r[k] = v.clone();
        }
        r
    };
    let nonce = cfms13_support::nonce();
    let cases = [
        (
            list(json!({})),
            400,
            "Missing or invalid nonce for replay protection",
        ),
        (
            list(json!({"nonce": "123456789012345", "timestamp": now()})),
            400,
            "Missing or invalid nonce for replay protection",
        ),
        (
            list(json!({"nonce": cfms13_support::nonce()})),
            400,
            "Missing or invalid timestamp for replay protection",
        ),
        (
            list(json!({"nonce": cfms13_support::nonce(), "timestamp": now() - 60.0})),
            1001,
            "Request timestamp is outside the acceptable time window",
        ),
        (
            list(json!({"nonce": cfms13_support::nonce(), "timestamp": now() + 60.0})),
            1001,
            "Request timestamp is outside the acceptable time window",
        ),
        (
            list(json!({"nonce": nonce, "timestamp": now()})),
            200,
            "Directory listing successful",
        ),
        (
            list(json!({"nonce": nonce, "timestamp": now()})),
            1001,
            "Duplicate nonce detected: possible replay attack",
        ),
    ];
    for (request, expected, message) in cases {
        let id = c.id();
        c.send_json(id, &request).await;
        let answer = c.conclusion(id).await;
        assert_eq!(code(&answer), expected, "{request}");
        assert_eq!(answer["message"], message);
    }
    // The nonce is spent before the action is looked at, and for everyone.
    let spent = cfms13_support::nonce();
    let mut unknown = list(json!({"nonce": spent, "timestamp": now()}));
    unknown["action"] = json!("no_such_action");
    c.send_json(101, &unknown).await;
    assert_eq!(
        c.conclusion(101).await["message"],
        "Unknown action: no_such_action"
    );
    let mut other = Client::connect(&server).await;
    other
        .send_json(1, &list(json!({"nonce": spent, "timestamp": now()})))
        .await;
    assert_eq!(code(&other.conclusion(1).await), 1001);
    // Unauthenticated requests need neither.
    assert_eq!(code(&other.call("server_info", json!({})).await), 200);
    // A bad token is refused first, on every action.
    let bad = json!({"action": "login", "data": {"username": "admin", "password": "admin"},
                     "username": "admin", "token": "not-a-jwt"});
    other.send_json(3, &bad).await;
    let answer = other.conclusion(3).await;
    assert_eq!(
        (code(&answer), answer["message"].as_str()),
        (401, Some("Invalid user or token"))
    );
    // Unauthenticated list: 401 Authentication required.
    let answer = other
        .call("list_directory", json!({"folder_id": null}))
        .await;
    assert_eq!(answer["message"], "Authentication required");
}

#[tokio::test]
async fn lockdown_sends_an_event_on_a_new_even_id_to_every_connection() {
    let server = start13().await;
    let mut admin = Client::connect(&server).await;
    admin.login("admin", "admin").await;
    let created = admin
        .call(
            "create_user",
            json!({"username": "bob", "password": "Bob-Pass-1234",
                                    "groups": [{"group_name": "user", "start_time": 0}]}),
        )
        .await;
    assert_eq!(code(&created), 200, "{created}");
    let mut bob = Client::connect(&server).await;
    assert_eq!(code(&bob.login("bob", "Bob-Pass-1234").await), 200);
    let mut anon = Client::connect(&server).await;
    assert_eq!(code(&anon.call("server_info", json!({})).await), 200);
    let pre = admin
        .call("create_document", json!({"title": "pre.bin"}))
        .await;
    let task = pre["data"]["task_data"]["task_id"]
        .as_str()
        .expect("task")
        .to_owned();

    let id = admin.start("lockdown", json!({"status": true})).await;
    let first = admin.next_within(Duration::from_secs(5)).await;
    assert!(
        matches!(first, Some(Got::Frame(i, CONCLUSION, _)) if i == id),
        "the 200 first: {first:?}"
    );
    for c in [&mut admin, &mut bob, &mut anon] {
        let (kind, payload) = c.frame_on(2).await;
        assert_eq!(kind, CONCLUSION);
        let event: Value = serde_json::from_slice(&payload).expect("JSON");
        assert_eq!(
            event,
            json!({"event": "lockdown", "data": {"status": true}})
        );
    }
    assert!(server.lockdown());
    assert_eq!(
        code(&bob.call("list_directory", json!({"folder_id": null})).await),
        999
    );
    assert_eq!(
        code(
            &anon
                .call("list_directory", json!({"folder_id": null}))
                .await
        ),
        999
    );
    assert_eq!(code(&anon.call("no_such_action", json!({})).await), 999);
    let info = bob.call("server_info", json!({})).await;
    assert_eq!(info["data"]["lockdown"], true);
    assert_eq!(
        code(
            &admin
                .call("list_directory", json!({"folder_id": null}))
                .await
        ),
        200
    );
    let stale = admin.call("upload_file", json!({"task_id": task})).await;
    assert_eq!(
        stale["message"],
        "Task is either not started yet or has already ended"
    );

    server.set_lockdown(false);
    for c in [&mut admin, &mut bob, &mut anon] {
        let (_, payload) = c.frame_on(4).await;
        let event: Value = serde_json::from_slice(&payload).expect("JSON");
        assert_eq!(event["data"]["status"], false);
    }
    assert_eq!(
        code(&bob.call("list_directory", json!({"folder_id": null})).await),
        200
    );
}

#[tokio::test]
async fn login_answers_202_401_4001_4002_4003_and_429() {
    let secret = "JBSWY3DPEHPK3PXP";
    let mut carol = UserSpec::user("carol", "Carol-Pass-1234");
    carol.totp_secret = Some(secret.into());
    let server = start(Config {
        protocol_version: 13,
        users: vec![
            UserSpec::admin("admin"),
            carol,
            UserSpec::user("dave", "Dave-Pass-1234"),
        ],
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let login = |user: &str, password: &str| json!({"username": user, "password": password});
    let answer = c.call("login", login("carol", "Carol-Pass-1234")).await;
    assert_eq!(
        (code(&answer), &answer["data"]),
        (202, &json!({"method": "totp"}))
    );
    let mut with_code = login("carol", "Carol-Pass-1234");
    with_code["2fa_token"] = json!("000000");
    let answer = c.call("login", with_code.clone()).await;
    assert_eq!(answer["message"], "Invalid two-factor authentication token");
    with_code["2fa_token"] = json!(totp_code(secret, now()).expect("code"));
    assert_eq!(code(&c.call("login", with_code).await), 200);

    server.set_password_weak("dave", true);
    assert_eq!(
        code(&c.call("login", login("dave", "Dave-Pass-1234")).await),
        4001
    );
    let set =
        json!({"username": "dave", "old_passwd": "Dave-Pass-1234", "new_passwd": "Dave-Pass-5678"});
    assert_eq!(code(&c.call("set_passwd", set).await), 200);
    server.set_password_expired("dave", true);
    assert_eq!(
        code(&c.call("login", login("dave", "Dave-Pass-5678")).await),
        4002
    );
    server.set_password_expired("dave", false);
    assert_eq!(code(&c.login("dave", "Dave-Pass-5678").await), 200);
    server.set_user_active("dave", false);
    let mut fresh = Client::connect(&server).await;
    let answer = fresh.call("login", login("dave", "Dave-Pass-5678")).await;
    assert_eq!(
        (code(&answer), answer["message"].as_str()),
        (4003, Some("User account is not active"))
    );
    assert_eq!(
        code(&c.call("list_directory", json!({"folder_id": null})).await),
        401,
        "token of an inactive user"
    );
    server.set_user_active("dave", true);

    for _ in 0..5 {
        assert_eq!(
            code(&fresh.call("login", login("admin", "wrong")).await),
            401
        );
    }
    let answer = fresh.call("login", login("admin", "admin")).await;
    assert_eq!(
        (code(&answer), answer["message"].as_str()),
        (
            429,
            Some("Too many login attempts. Please try again later.")
        )
    );
}

#[tokio::test]
async fn the_root_is_slash_and_clashes_are_409() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let root = c.call("list_directory", json!({"folder_id": "/"})).await;
    assert_eq!(root["data"]["parent_id"], Value::Null);
    assert_eq!(root["data"]["documents"][0]["id"], "hello");
    assert_eq!(root["data"]["documents"][0]["size"], 0);
    let made = c
        .call(
            "create_directory",
            json!({"name": "测试目录-13", "parent_id": null}),
        )
        .await;
    assert_eq!(code(&made), 200);
    let folder = made["data"]["id"].as_str().expect("id").to_owned();
    let again = c
        .call(
            "create_directory",
            json!({"name": "测试目录-13", "parent_id": "/"}),
        )
        .await;
    assert_eq!(code(&again), 409);
    assert_eq!(
        again["data"],
        json!({"type": "directory", "id": folder, "duplicate_id": folder})
    );
    let ok = c
        .call(
            "create_directory",
            json!({"name": "测试目录-13", "parent_id": null, "exists_ok": true}),
        )
        .await;
    assert_eq!(
        (code(&ok), ok["message"].as_str()),
        (200, Some("Directory already exists"))
    );
    let sub = c.call("list_directory", json!({"folder_id": folder})).await;
    assert_eq!(sub["data"]["parent_id"], "/");
    let info = c
        .call("get_directory_info", json!({"directory_id": folder}))
        .await;
    assert_eq!(info["data"]["parent_id"], "/");
    let doc = c
        .call(
            "create_document",
            json!({"title": "x.bin", "folder_id": folder}),
        )
        .await;
    assert_eq!(doc["data"]["task_data"]["provider"], "native");
    let bug = c
        .call(
            "create_document",
            json!({"title": "测试目录-13", "folder_id": null}),
        )
        .await;
    assert_eq!(code(&bug), 500, "the recorded server bug");
    assert!(bug["data"]["log_id"].is_string());
    let gone = c
        .call("delete_directory", json!({"folder_id": folder}))
        .await;
    assert_eq!(gone["message"], "Directory marked as deleted successfully");
    assert_eq!(
        code(&c.call("delete_directory", json!({"folder_id": "/"})).await),
        404
    );
}

/// Answers recorded live from the real 6b5aa0f server on 2026-12-04
/// (`helper-notes/real13.md`, E1–E4): the root's own folder record, an
/// empty id refused by the schema, a rename to the current name, and the
/// `minLength` wording of jsonschema 4.26.
#[tokio::test]
async fn root_info_empty_ids_and_same_name_renames_answer_as_the_real_server() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    let empty = c
        .call("login", json!({"username": "", "password": "x"}))
        .await;
    assert_eq!(
        (code(&empty), empty["message"].as_str(), &empty["data"]),
        (
            400,
            Some("'' should be non-empty"),
            &json!({"validator": "minLength", "validator_value": 1})
        )
    );
    c.login("admin", "admin").await;
    let made = c
        .call(
            "create_directory",
            json!({"name": "same", "parent_id": "/"}),
        )
        .await;
    let folder = made["data"]["id"].as_str().expect("id").to_owned();

    let root = c
        .call("get_directory_info", json!({"directory_id": "/"}))
        .await;
    assert_eq!(code(&root), 200, "{root}");
    assert_eq!(root["message"], "Directory info retrieved successfully");
    let data = &root["data"];
    assert_eq!(
        (&data["directory_id"], &data["name"], &data["parent_id"]),
        (&json!("/"), &json!("/"), &Value::Null)
    );
    assert_eq!(data["info_code"], 0);
    assert!(data["created_time"].is_f64());
    // `hello` and the new folder.
    assert_eq!(data["count_of_child"], 2);
    let rules = data["access_rules"].as_array().expect("rules");
    let kinds: Vec<_> = rules.iter().map(|r| r["access_type"].clone()).collect();
    assert_eq!(kinds, [json!("write"), json!("manage")]);
    assert_eq!(
        rules[0]["rule_data"]["match_groups"][0]["groups"]["require"],
        json!(["sysop"])
    );

    let blank = c
        .call("get_directory_info", json!({"directory_id": ""}))
        .await;
    assert_eq!(
        (code(&blank), blank["message"].as_str(), &blank["data"]),
        (
            400,
            Some("'' should be non-empty"),
            &json!({"validator": "minLength", "validator_value": 1})
        )
    );

    let same = c
        .call(
            "rename_directory",
            json!({"folder_id": folder, "new_name": "same"}),
        )
        .await;
    assert_eq!(
        (code(&same), same["message"].as_str()),
        (400, Some("New name is the same as the current name"))
    );
    let same = c
        .call(
            "rename_document",
            json!({"document_id": "hello", "new_title": "Hello World"}),
        )
        .await;
    assert_eq!(
        (code(&same), same["message"].as_str()),
        (400, Some("New name is the same as the current name"))
    );
    let renamed = c
        .call(
            "rename_directory",
            json!({"folder_id": folder, "new_name": "other"}),
        )
        .await;
    assert_eq!(code(&renamed), 200);
}
