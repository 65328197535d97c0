//! Session rules: envelope, ordering, authentication, lockdown, time.

mod cfms_support;

use cfms_support::Harness;
use naslink_core::cfms::{
    Config, ConnectionEvent, Desync, Error, Event, LoginError, MessageKind, RequestError, Seq,
    Status, TwoFactorMethod,
};
use naslink_core::connection;
use naslink_core::time::Duration;
use naslink_core::ws;
use serde_json::json;

#[test]
fn server_info_must_come_first() {
    let mut h = Harness::new(Config::default());
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.list_directory(h.now, None, &mut buf),
        Err(Error::ServerInfoFirst)
    );
    assert_eq!(
        h.session.login(h.now, "a", "b", &mut buf),
        Err(Error::ServerInfoFirst)
    );
    h.handshake(3);
    assert_eq!(h.session.protocol_version(), Some(3));
    assert!(matches!(
        h.events[..],
        [Event::ServerInfo {
            protocol_version: 3,
            lockdown: false,
            ..
        }]
    ));
}

#[test]
fn protocol_versions_outside_3_to_5_are_refused_clearly() {
    let mut h = Harness::new(Config::default());
    h.handshake(13);
    assert_eq!(
        h.events,
        vec![Event::ProtocolUnsupported { version: Some(13) }]
    );
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.server_info(h.now, &mut buf),
        Err(Error::ProtocolUnsupported { version: Some(13) })
    );
}

#[test]
fn a_framed_binary_answer_to_server_info_is_refused_as_a_newer_protocol() {
    let mut h = Harness::new(Config::default());
    h.req(|s, n, b| s.server_info(n, b));
    let framed = b"\x00\x00\x00\x01\x01{\"code\":200}";
    h.offer(MessageKind::Binary, framed, &[]);
    assert!(
        matches!(h.refused[..], [Error::Malformed(_)]),
        "{:?}",
        h.refused
    );
    assert_eq!(h.events, vec![Event::ProtocolUnsupported { version: None }]);
}

#[test]
fn responses_match_requests_in_fifo_order() {
    let mut h = Harness::logged_in(3);
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    let (b, _) = h.req(|s, n, b| s.get_document_info(n, "doc", b));
    assert_eq!(b.seq, Seq(a.seq.0 + 1));
    let e1 = h.recv_json(json!({"code": 200, "data": {"parent_id": null, "documents": [], "folders": []}, "message": "Directory listing successful"}));
    assert_eq!(
        e1,
        vec![Event::Reply {
            seq: a.seq,
            status: Status::Ok
        }]
    );
    assert!(h.response().data().get("folders").is_some());
    let e2 = h.recv_json(json!({"code": 404, "data": {}, "message": "Document not found"}));
    assert_eq!(
        e2,
        vec![Event::Reply {
            seq: b.seq,
            status: Status::NotFound
        }]
    );
}

#[test]
fn the_queue_is_bounded_by_its_capacity() {
    let mut h = Harness::logged_in(3);
    for _ in 0..cfms_support::Q {
        h.req(|s, n, b| s.list_directory(n, None, b));
    }
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.list_directory(h.now, None, &mut buf),
        Err(Error::Busy)
    );
}

#[test]
fn lockdown_push_between_request_and_response_is_not_the_response() {
    let mut h = Harness::logged_in(5);
    let (listen, _) = h.req(|s, n, b| s.register_listener(n, b));
    h.ok(json!({}));
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    let e = h.recv(
        MessageKind::Binary,
        br#"{"action": "lockdown", "status": true}"#,
    );
    assert_eq!(e, vec![Event::Lockdown { on: true }]);
    assert_eq!(h.session.lockdown(), Some(true));
    let e = h.recv_json(json!({"code": 999, "data": {}, "message": "lockdown"}));
    assert_eq!(
        e,
        vec![Event::Reply {
            seq: a.seq,
            status: Status::Lockdown
        }]
    );
    assert!(h.events.contains(&Event::Reply {
        seq: listen.seq,
        status: Status::Ok
    }));
}

#[test]
fn bad_request_exposes_validator_details() {
    let mut h = Harness::logged_in(3);
    let (a, _) = h.req(|s, n, b| s.request(n, "list_directory", b"{}", b));
    let e = h.recv_json(json!({"code": 400, "data": {"validator": "required", "validator_value": ["folder_id"]}, "message": "'folder_id' is a required property"}));
    assert_eq!(
        e,
        vec![Event::Reply {
            seq: a.seq,
            status: Status::BadRequest
        }]
    );
    let r = h.response();
    let v = r.validator().unwrap();
    assert!(v.name.eq_str("required"));
    assert!(
        v.value
            .items()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .eq_str("folder_id")
    );
}

#[test]
fn login_200_keeps_the_token_and_exposes_nickname_and_permissions() {
    let mut h = Harness::logged_in(3);
    let expires_in = Duration::from_secs(3600);
    assert!(h.events.contains(&Event::LoggedIn { expires_in }));
    assert_eq!(h.session.token(), "tok.en.1");
    let r = h.response();
    let mut nick = [0u8; 16];
    assert_eq!(
        r.data()
            .get("nickname")
            .unwrap()
            .as_str()
            .unwrap()
            .decode_into(&mut nick)
            .unwrap(),
        "管理员"
    );
    let (_, req) = h.req(|s, n, b| s.list_directory(n, None, b));
    assert_eq!(
        req,
        json!({"action": "list_directory", "data": {"folder_id": null}, "username": "admin", "token": "tok.en.1"})
    );
}

#[test]
fn refresh_is_scheduled_before_exp_through_poll_timeout() {
    let mut h = Harness::logged_in(3);
    let at = h.session.poll_timeout().expect("refresh scheduled");
    // 80 % of the 3600 s lifetime.
    assert_eq!(at - h.now, Duration::from_secs(2880));
    h.now = at;
    h.session.handle_timeout(h.now);
    let sent = h.transmit_json();
    assert_eq!(
        sent,
        vec![
            json!({"action": "refresh_token", "data": {}, "username": "admin", "token": "tok.en.1"})
        ]
    );
    let e = h.recv_json(json!({"code": 200, "data": {"token": "tok.en.2", "exp": 1795312047.0}, "message": "Token refreshed successfully", "timestamp": 1795308447.0}));
    assert_eq!(
        e,
        vec![Event::TokenRefreshed {
            expires_in: Duration::from_secs(3600)
        }]
    );
    assert_eq!(h.session.token(), "tok.en.2");
}

#[test]
fn expired_token_on_refresh_leads_to_a_new_login() {
    let mut h = Harness::logged_in(3);
    h.now = h.session.poll_timeout().unwrap();
    h.session.handle_timeout(h.now);
    h.transmit();
    let e = h.recv_json(json!({"code": 400, "data": {}, "message": "Invalid or expired token"}));
    assert_eq!(e, vec![Event::TokenRejected { relogin: true }]);
    let sent = h.transmit_json();
    assert_eq!(
        sent,
        vec![
            json!({"action": "login", "data": {"username": "admin", "password": "pw"}, "username": "", "token": ""})
        ]
    );
}

#[test]
fn rejected_token_on_a_request_leads_to_a_new_login() {
    let mut h = Harness::logged_in(3);
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    let e = h.recv_json(json!({"code": 401, "data": {}, "message": "Invalid user or token"}));
    assert_eq!(
        e,
        vec![
            Event::Reply {
                seq: a.seq,
                status: Status::Unauthorized
            },
            Event::TokenRejected { relogin: true }
        ]
    );
    assert!(!h.session.is_logged_in());
    let sent = h.transmit_json();
    assert_eq!(sent[0]["action"], "login");
    let e = h.recv_json(json!({"code": 200, "data": {"token": "tok.en.3", "exp": 1795308447.0}, "message": "Login successful", "timestamp": 1795304847.0}));
    assert!(matches!(e[..], [Event::LoggedIn { .. }]));
    assert_eq!(h.session.token(), "tok.en.3");
}

#[test]
fn a_refresh_due_when_the_token_is_rejected_is_not_sent_before_the_new_login() {
    let mut h = Harness::logged_in(3);
    // The refresh comes due while a request waits for its answer.
    h.now = h.session.poll_timeout().unwrap();
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    h.session.handle_timeout(h.now);
    // The answer rejecting the token comes before the refresh is written.
    let e = h.recv_json(json!({"code": 401, "data": {}, "message": "Invalid user or token"}));
    assert_eq!(
        e,
        vec![
            Event::Reply {
                seq: a.seq,
                status: Status::Unauthorized
            },
            Event::TokenRejected { relogin: true }
        ]
    );
    let sent = h.transmit_json();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["action"], "login");
}

#[test]
fn a_refresh_refused_behind_a_rejected_request_does_not_log_in_twice() {
    let mut h = Harness::logged_in(3);
    // The refresh comes due while a request waits for its answer.
    h.now = h.session.poll_timeout().unwrap();
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    h.session.handle_timeout(h.now);
    let sent = h.transmit_json();
    assert_eq!(sent[0]["action"], "refresh_token");
    let e = h.recv_json(json!({"code": 401, "data": {}, "message": "Invalid user or token"}));
    assert!(e.contains(&Event::Reply {
        seq: a.seq,
        status: Status::Unauthorized
    }));
    assert!(e.contains(&Event::TokenRejected { relogin: true }));
    let sent = h.transmit_json();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["action"], "login");
    // The refresh's own refusal: the re-login is already under way.
    let e = h.recv_json(json!({"code": 400, "data": {}, "message": "Invalid or expired token"}));
    assert!(e.is_empty(), "{e:?}");
    assert!(h.transmit().is_empty());
    let e = h.recv_json(json!({"code": 200, "data": {"token": "tok.en.3", "exp": 1795308447.0}, "message": "Login successful", "timestamp": 1795304847.0}));
    assert!(matches!(e[..], [Event::LoggedIn { .. }]));
    assert_eq!(h.session.token(), "tok.en.3");
}

#[test]
fn without_relogin_the_password_is_not_kept() {
    let mut h = Harness::new(Config {
        relogin: false,
        ..Config::default()
    });
    h.handshake(3);
    h.req(|s, n, b| s.login(n, "admin", "pw", b));
    h.ok(json!({"token": "t", "exp": 1795308447.0}));
    h.req(|s, n, b| s.list_directory(n, None, b));
    let e = h.recv_json(json!({"code": 403, "data": {}, "message": "Invalid user or token"}));
    assert!(e.contains(&Event::TokenRejected { relogin: false }));
    assert!(h.transmit().is_empty());
}

#[test]
fn two_factor_202_is_answered_with_a_code_in_a_repeated_login() {
    let mut h = Harness::new(Config::default());
    h.handshake(5);
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.submit_two_factor(h.now, "123456", &mut buf),
        Err(Error::NoTwoFactorPending)
    );
    h.req(|s, n, b| s.login(n, "admin", "NewAdminPass-123", b));
    let e = h.recv_json(json!({"code": 202, "data": {"method": "totp"}, "message": "Two-factor authentication required"}));
    assert_eq!(
        e,
        vec![Event::TwoFactorRequired {
            method: TwoFactorMethod::Totp
        }]
    );
    let (_, req) = h.req(|s, n, b| s.submit_two_factor(n, "123456", b));
    assert_eq!(
        req,
        json!({"action": "login", "data": {"username": "admin", "password": "NewAdminPass-123", "2fa_token": "123456"}, "username": "", "token": ""})
    );
    let e = h.recv_json(
        json!({"code": 401, "data": {}, "message": "Invalid two-factor authentication token"}),
    );
    assert_eq!(
        e,
        vec![Event::LoginFailed(LoginError::InvalidTwoFactorCode)]
    );
}

#[test]
fn wrong_password_is_invalid_credentials() {
    let mut h = Harness::new(Config::default());
    h.handshake(3);
    h.req(|s, n, b| s.login(n, "admin", "wrong-password", b));
    let e = h.recv_json(json!({"code": 401, "data": {}, "message": "Invalid credentials"}));
    assert_eq!(e, vec![Event::LoginFailed(LoginError::InvalidCredentials)]);
}

#[test]
fn expired_password_403_says_to_use_set_passwd_with_an_empty_envelope() {
    let mut h = Harness::new(Config::default());
    h.handshake(3);
    h.req(|s, n, b| s.login(n, "admin", "1zjs:{>D-x/StGW]", b));
    let e = h.recv_json(json!({"code": 403, "data": {}, "message": "Password should be changed because it's expired"}));
    assert_eq!(e, vec![Event::LoginFailed(LoginError::PasswordExpired)]);
    assert!(
        LoginError::PasswordExpired
            .to_string()
            .contains("set_passwd")
    );
    let (_, req) =
        h.req(|s, n, b| s.set_passwd(n, "admin", "1zjs:{>D-x/StGW]", "NewAdminPass-123", b));
    assert_eq!(
        req,
        json!({"action": "set_passwd", "data": {"username": "admin", "old_passwd": "1zjs:{>D-x/StGW]", "new_passwd": "NewAdminPass-123"}, "username": "", "token": ""})
    );
}

#[test]
fn operations_need_a_login() {
    let mut h = Harness::new(Config::default());
    h.handshake(3);
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.list_directory(h.now, None, &mut buf),
        Err(Error::NotLoggedIn)
    );
}

#[test]
fn a_missed_deadline_fails_every_request_and_marks_the_connection_broken() {
    let mut h = Harness::logged_in(3);
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    let (b, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    h.now = h.session.poll_timeout().unwrap();
    h.session.handle_timeout(h.now);
    h.drain();
    let tail = &h.events[h.events.len() - 3..];
    assert_eq!(
        tail,
        [
            Event::RequestFailed {
                seq: a.seq,
                error: RequestError::Timeout
            },
            Event::RequestFailed {
                seq: b.seq,
                error: RequestError::Timeout
            },
            Event::Desynchronized(Desync::Timeout),
        ]
    );
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.list_directory(h.now, None, &mut buf),
        Err(Error::Broken)
    );
}

#[test]
fn disconnect_fails_all_pending_requests_and_keeps_the_token() {
    let mut h = Harness::logged_in(3);
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    h.session.handle_disconnect(h.now);
    h.drain();
    assert_eq!(
        h.events.last(),
        Some(&Event::RequestFailed {
            seq: a.seq,
            error: RequestError::Disconnected
        })
    );
    assert_eq!(h.session.token(), "tok.en.1");
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.list_directory(h.now, None, &mut buf),
        Err(Error::ServerInfoFirst)
    );
}

#[test]
fn a_response_larger_than_the_receive_buffer_fails_only_its_request() {
    let mut h = Harness::with_buffers(Config::default(), 300, 1);
    h.handshake(3);
    h.req(|s, n, b| s.login(n, "admin", "pw", b));
    h.ok(json!({"token": "t", "exp": 1795308447.0}));
    let (a, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    let big = json!({"code": 200, "data": {"folders": vec!["x".repeat(50); 10]}, "message": "ok"});
    // Only a message that arrives in pieces is collected in the session's
    // buffer (a whole one is read where the WebSocket holds it).
    let big = serde_json::to_vec(&big).unwrap();
    let e = h.recv_pieces(MessageKind::Text, &big, &[big.len() / 2]);
    assert_eq!(
        e,
        vec![Event::RequestFailed {
            seq: a.seq,
            error: RequestError::ResponseTooLarge { capacity: 300 }
        }]
    );
    let (b, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    assert_eq!(
        h.ok(json!({})),
        vec![Event::Reply {
            seq: b.seq,
            status: Status::Ok
        }]
    );
}

#[test]
fn a_message_split_into_pieces_is_reassembled() {
    let mut h = Harness::logged_in(3);
    let (a, _) = h.req(|s, n, b| s.get_document_info(n, "d", b));
    let msg = br#"{"code": 200, "data": {"title": "caf\u00e9\/x"}, "message": "Document info retrieved successfully"}"#;
    let cuts: Vec<usize> = (7..msg.len()).step_by(7).collect();
    h.recv_pieces(MessageKind::Text, msg, &cuts);
    assert_eq!(
        h.events.last(),
        Some(&Event::Reply {
            seq: a.seq,
            status: Status::Ok
        })
    );
    let mut out = [0u8; 16];
    let title = h.response().data().get("title").unwrap().as_str().unwrap();
    assert_eq!(title.decode_into(&mut out).unwrap(), "café/x");
}

#[test]
fn undrained_reply_events_block_the_next_message() {
    let mut h = Harness::logged_in(3);
    h.req(|s, n, b| s.list_directory(n, None, b));
    h.req(|s, n, b| s.list_directory(n, None, b));
    let msg = br#"{"code": 200, "data": {}, "message": "ok"}"#;
    let message = connection::Message {
        kind: ws::MessageKind::Text,
        data: msg,
        first: true,
        last: true,
    };
    // A driver that hands in the next message before taking the events
    // that borrow this one is told so.
    assert!(connection::Session::handle_message(
        &mut h.session,
        h.now,
        message
    ));
    connection::Session::handle_message(&mut h.session, h.now, message);
    let (mut refused, mut replies) = (None, 0);
    while let Some(e) = connection::Session::poll_event(&mut h.session, Some(message)) {
        match e {
            // The first message's answer is still whole.
            ConnectionEvent::Reply { response, .. } => {
                assert!(response.status().is_ok());
                replies += 1;
            }
            ConnectionEvent::BadMessage(e) => refused = Some(e),
            _ => {}
        }
    }
    assert_eq!((replies, refused), (1, Some(Error::EventsNotDrained)));
}

#[test]
fn keep_alive_sends_a_quiet_server_info_after_idleness() {
    let mut h = Harness::new(Config {
        keep_alive: Some(Duration::from_secs(15)),
        ..Config::default()
    });
    h.handshake(3);
    let at = h.session.poll_timeout().unwrap();
    assert_eq!(at - h.now, Duration::from_secs(15));
    h.now = at;
    h.session.handle_timeout(h.now);
    assert_eq!(
        h.transmit_json(),
        vec![json!({"action": "server_info", "data": {}, "username": "", "token": ""})]
    );
    let before = h.events.len();
    h.ok(json!({"server_name": "s", "version": "v", "protocol_version": 3, "lockdown": true}));
    // Quiet: only the lockdown change is reported.
    assert_eq!(&h.events[before..], [Event::Lockdown { on: true }]);
}

#[test]
fn unsolicited_text_is_reported_not_matched() {
    let mut h = Harness::logged_in(3);
    h.offer(MessageKind::Text, br#"{"code": 200, "data": {}}"#, &[]);
    assert_eq!(h.refused, vec![Error::Unsolicited]);
}

#[test]
fn without_a_server_timestamp_the_caller_wall_clock_dates_the_token() {
    let mut h = Harness::new(Config::default());
    h.handshake(3);
    h.session.set_unix_time(h.now, 1795304847.0);
    h.advance(Duration::from_secs(100));
    h.req(|s, n, b| s.login(n, "admin", "pw", b));
    // No `timestamp`: exp − (unix now) = 3600 − 100 s.
    let e = h.recv_json(json!({"code": 200, "data": {"token": "t", "exp": 1795308447.0}, "message": "Login successful"}));
    assert_eq!(
        e,
        vec![Event::LoggedIn {
            expires_in: Duration::from_secs(3500)
        }]
    );
}

#[test]
fn a_login_cut_off_by_a_disconnect_is_reported_by_its_seq() {
    let mut h = Harness::new(Config::default());
    h.handshake(3);
    let (sent, _) = h.req(|s, n, b| s.login(n, "admin", "pw", b));
    h.session.handle_disconnect(h.now);
    h.drain();
    assert_eq!(
        h.events.last(),
        Some(&Event::RequestFailed {
            seq: sent.seq,
            error: RequestError::Disconnected
        })
    );
}

#[test]
fn connect_failures_name_the_silent_step() {
    use naslink_core::cfms::{NoAnswer, State};
    let silent = NoAnswer {
        step: State::ServerInfo,
        waited: naslink_core::time::Duration::from_secs(5),
    };
    assert_eq!(
        silent.to_string(),
        "no answer to the server information request within 5 s: \
         not a CFMS server, or a protocol-13 server asked in protocol 3-5 text?"
    );
    let cut = NoAnswer {
        step: State::LoggingIn,
        waited: naslink_core::time::Duration::from_millis(400),
    };
    assert_eq!(cut.to_string(), "no answer to the login within 0.4 s");
}
