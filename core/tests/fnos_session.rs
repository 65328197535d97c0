//! The fnOS session driven through whole scenarios with hand-written server
//! replies. The test plays the server: it decrypts the login envelopes with
//! the vector key's private half (via the `rsa` crate, dev-only) and answers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use naslink_core::fnos::device_token;
use naslink_core::fnos::envelope::LoginKey;
use naslink_core::fnos::heartbeat::HeartbeatConfig;
use naslink_core::fnos::sign::{Secret, Signer};
use naslink_core::fnos::{
    Config, Credentials, DeviceToken, Errno, Event, LoginFailure, LoginMethod, Push, Request,
    Session, State,
};
use naslink_core::random;
use naslink_core::time::{Duration, Instant};
use rsa::pkcs8::DecodePrivateKey;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/vectors/fnos.json"
));
/// 2025-11-13 07:09:16 UTC, the seconds of the vector reqids.
const UNIX_SECS: u64 = 1_763_017_756;
const SECRET_HEX: &str = "8d2f5c0b9e61a4d37f10c2e9b85a4f6f";

fn vectors() -> serde_json::Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn rng() -> impl random::Entropy {
    let mut state = 0x2545_f491_u32;
    random::from_fn(move |buf: &mut [u8]| {
        for b in buf {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *b = state as u8;
        }
    })
}

/// The server side of the test.
struct Server {
    private: rsa::RsaPrivateKey,
    get_rsa_pub: String,
}

impl Server {
    fn new() -> Self {
        let v = vectors();
        Server {
            private: rsa::RsaPrivateKey::from_pkcs8_pem(
                v["rsa_test_key"]["private_pem_pkcs8"].as_str().unwrap(),
            )
            .unwrap(),
            get_rsa_pub: v["frames"]["getRSAPub_response_example"]
                .as_str()
                .unwrap()
                .to_owned(),
        }
    }

    /// A `getRSAPub` answer for `reqid` with session id `si`.
    fn rsa_pub(&self, reqid: &str, si: &str) -> String {
        let mut reply: serde_json::Value = serde_json::from_str(&self.get_rsa_pub).unwrap();
        reply["reqid"] = reqid.into();
        reply["si"] = si.into();
        reply.to_string()
    }

    /// Open an `encrypted` envelope: the login key and the inner JSON.
    fn open(&self, wire: &str) -> (LoginKey, serde_json::Value) {
        let env: serde_json::Value = serde_json::from_str(wire).expect("envelope is JSON");
        assert_eq!(env["req"], "encrypted");
        assert!(env.get("reqid").is_none(), "no outer reqid");
        let b64 = |k: &str| {
            let mut out = vec![0u8; 1024];
            let n = STANDARD
                .decode_slice(env[k].as_str().unwrap(), &mut out)
                .unwrap();
            out.truncate(n);
            out
        };
        let key = self
            .private
            .decrypt(rsa::Pkcs1v15Encrypt, &b64("rsa"))
            .unwrap();
        let key: [u8; 32] = key.try_into().unwrap();
        assert!(key.iter().all(u8::is_ascii_alphanumeric), "web-style key");
        let iv: [u8; 16] = b64("iv").try_into().unwrap();
        let login_key = LoginKey::new(key, iv);
        let mut aes = b64("aes");
        let n = login_key.decrypt_in_place(&mut aes).unwrap();
        let inner = serde_json::from_slice(&aes[..n]).expect("inner login JSON");
        (login_key, inner)
    }

    /// A successful login answer whose `secret` is `secret` encrypted with
    /// the envelope's key.
    fn granted(key: &LoginKey, reqid: &str, secret: &[u8], back_id: &str) -> String {
        let mut buf = vec![0u8; secret.len() + 16];
        buf[..secret.len()].copy_from_slice(secret);
        let n = key.encrypt_in_place(&mut buf, secret.len()).unwrap();
        let mut b64 = vec![0u8; 64];
        let m = STANDARD.encode_slice(&buf[..n], &mut b64).unwrap();
        let secret = std::str::from_utf8(&b64[..m]).unwrap().replace('/', "\\/");
        format!(
            r#"{{"uid":1000,"admin":true,"token":"tok\/1","longToken":"long\/1","secret":"{secret}","backId":"{back_id}","machineId":"m","result":"succ","reqid":"{reqid}"}}"#
        )
    }
}

type Fnos<'c> = Session<'c, 4>;

fn config() -> Config<'static> {
    let mut c = Config::new("admin", "P@ssw0rd!");
    c.device.device_name = "Windows-Google Chrome";
    c.heartbeat = HeartbeatConfig {
        interval: Duration::from_secs(30),
        missed_pong_limit: 2,
    };
    c
}

fn transmit(s: &mut Fnos<'_>, now: Instant) -> String {
    let mut buf = [0u8; 2048];
    let n = s
        .poll_transmit(now, &mut rng(), &mut buf)
        .unwrap()
        .expect("a message to send");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn nothing_to_transmit(s: &mut Fnos<'_>, now: Instant) {
    let mut buf = [0u8; 2048];
    assert_eq!(s.poll_transmit(now, &mut rng(), &mut buf).unwrap(), None);
}

fn reqid_of(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["reqid"].as_str().unwrap().to_owned()
}

/// Split a signed message and check its signature with `secret`.
fn verify_signed<'a>(wire: &'a str, secret: &[u8]) -> &'a str {
    let (sig, json) = wire.split_at(44);
    let expected = Signer::new(&Secret::new(secret).unwrap()).signature(json.as_bytes());
    assert_eq!(
        sig.as_bytes(),
        &expected[..],
        "signature over the exact bytes of {json}"
    );
    json
}

/// Connect and log in with the password; returns the session at `Ready`.
fn logged_in<'c>(server: &Server, config: Config<'c>) -> Session<'c, 4> {
    let mut s = Session::new(config);
    s.set_unix_time(at(0), UNIX_SECS);
    s.handle_connect(at(0));
    let get = transmit(&mut s, at(0));
    let reply = server.rsa_pub(&reqid_of(&get), "72057615512764624");
    assert_eq!(s.handle_text(at(0), reply.as_bytes()).unwrap(), None);
    let (key, inner) = server.open(&transmit(&mut s, at(0)));
    let reply = Server::granted(
        &key,
        inner["reqid"].as_str().unwrap(),
        &hex(SECRET_HEX),
        "6915841b00000044",
    );
    assert!(matches!(
        s.handle_text(at(0), reply.as_bytes()).unwrap(),
        Some(Event::LoggedIn {
            method: LoginMethod::Password,
            uid: Some(1000),
            admin: Some(true)
        })
    ));
    s
}

#[test]
fn key_exchange_request_is_the_recorded_unsigned_frame() {
    let mut s: Fnos<'_> = Session::new(config());
    s.set_unix_time(at(0), UNIX_SECS);
    s.handle_connect(at(0));
    assert_eq!(s.state(), State::KeyExchange);
    assert_eq!(
        transmit(&mut s, at(0)),
        vectors()["frames"]["getRSAPub_request"].as_str().unwrap()
    );
    nothing_to_transmit(&mut s, at(0));
}

#[test]
fn password_login_sends_the_web_ui_plaintext_with_si_as_a_string() {
    let server = Server::new();
    let mut s: Fnos<'_> = Session::new(config());
    s.set_unix_time(at(0), UNIX_SECS);
    s.handle_connect(at(0));
    let get = transmit(&mut s, at(0));
    s.handle_text(
        at(0),
        server
            .rsa_pub(&reqid_of(&get), "72057615512764624")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::Password));
    assert_eq!(s.si(), "72057615512764624");

    let (_, inner) = server.open(&transmit(&mut s, at(0)));
    assert_eq!(
        inner.to_string(),
        r#"{"deviceName":"Windows-Google Chrome","deviceType":"Browser","password":"P@ssw0rd!","req":"user.login","reqid":"6915841c00000000000000000002","si":"72057615512764624","stay":true,"user":"admin"}"#
    );
}

#[test]
fn login_plaintext_matches_the_vector_byte_for_byte() {
    use naslink_core::fnos::login::write_password_login;
    use naslink_core::fnos::reqid::Reqid;
    let v = vectors();
    let reqid = Reqid::from_bytes(b"6915842000000000000000000003").unwrap();
    let device = naslink_core::fnos::Device {
        device_type: "Browser",
        device_name: "Windows-Google Chrome",
        did: None,
        stay: true,
    };
    let mut buf = [0u8; 512];
    let n = write_password_login(
        &reqid,
        "admin",
        "P@ssw0rd!",
        &device,
        "72057615512764624",
        &mut buf,
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        v["login_web_style"]["login_plaintext_json"]
            .as_str()
            .unwrap()
    );
}

#[test]
fn requests_after_login_are_signed_with_the_decrypted_secret_and_back_id() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    assert_eq!(s.state(), State::Ready);
    assert_eq!(s.back_id().as_str(), "6915841b00000044");
    assert_eq!(s.credentials().token, "tok/1");
    assert_eq!(s.credentials().long_token, "long/1");

    let mut buf = [0u8; 256];
    let (reqid, n) = s
        .send(
            at(0),
            &Request::file_ls(Some("vol1/1000/Documents")),
            &mut buf,
        )
        .unwrap();
    assert_eq!(reqid.as_str(), "6915841c6915841b000000440003");
    let signing = &vectors()["signing"]["cases"][1];
    assert_eq!(&buf[..n], signing["wire_text"].as_str().unwrap().as_bytes());
}

#[test]
fn multi_frame_answer_is_delivered_frame_by_frame_until_result() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    let mut buf = [0u8; 256];
    let (reqid, _) = s.send(at(0), &Request::file_ls(None), &mut buf).unwrap();
    let partial = format!(r#"{{"files":[{{"name":"a\u00e9"}}],"reqid":"{reqid}"}}"#);
    match s.handle_text(at(1), partial.as_bytes()).unwrap() {
        Some(Event::Reply(r)) => {
            assert!(!r.is_final());
            let files = r.get("files").unwrap().as_array().unwrap();
            let name = files
                .iter()
                .next()
                .unwrap()
                .get("name")
                .unwrap()
                .as_str()
                .unwrap();
            assert!(name.eq_str("a\u{e9}"));
        }
        other => panic!("{other:?}"),
    }
    let last = format!(r#"{{"files":[],"uver":3,"result":"succ","reqid":"{reqid}"}}"#);
    assert!(
        matches!(s.handle_text(at(1), last.as_bytes()).unwrap(), Some(Event::Reply(r)) if r.is_final())
    );
    assert!(matches!(
        s.handle_text(at(1), last.as_bytes()).unwrap(),
        Some(Event::UnmatchedReply(_))
    ));
}

#[test]
fn failure_replies_carry_the_typed_errno() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    let mut buf = [0u8; 256];
    let (reqid, _) = s.send(at(0), &Request::resmon_mem(), &mut buf).unwrap();
    let fail = format!(r#"{{"errno":4352,"result":"fail","reqid":"{reqid}"}}"#);
    match s.handle_text(at(0), fail.as_bytes()).unwrap() {
        Some(Event::Reply(r)) => assert_eq!(r.errno(), Some(Errno::PermissionDenied)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pushes_and_unknown_reqids_are_events_not_errors() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    assert!(matches!(
        s.handle_text(
            at(0),
            br#"{"sysNotify":"taskInfo","taskId":5,"percent":50}"#
        )
        .unwrap(),
        Some(Event::Push(Push::TaskInfo { .. }))
    ));
    assert!(matches!(
        s.handle_text(
            at(0),
            br#"{"result":"succ","reqid":"ffffffff000000000000000000ff"}"#
        )
        .unwrap(),
        Some(Event::UnmatchedReply(_))
    ));
    assert!(s.handle_text(at(0), b"not json").is_err());
    assert_eq!(s.state(), State::Ready, "bad input is not fatal");
    assert!(matches!(
        s.handle_text(at(0), br#"{"sysNotify":"tokenExpired"}"#)
            .unwrap(),
        Some(Event::Push(Push::TokenExpired))
    ));
    assert!(
        s.credentials().token.is_empty(),
        "an expired token is not offered again"
    );
}

#[test]
fn unanswered_request_times_out_through_handle_timeout() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    let mut buf = [0u8; 256];
    let (reqid, _) = s.send(at(10), &Request::user_info(), &mut buf).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(30)), "heartbeat first");
    s.handle_timeout(at(30));
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.poll_timeout(), Some(at(40)));
    s.handle_timeout(at(40));
    assert_eq!(s.poll_event(), Some(Event::RequestTimedOut(reqid)));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn full_request_table_answers_busy_without_overwriting() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    let mut buf = [0u8; 256];
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(s.send(at(0), &Request::get_uptime(), &mut buf).unwrap().0);
    }
    assert_eq!(
        s.send(at(0), &Request::get_uptime(), &mut buf),
        Err(naslink_core::fnos::Error::Busy)
    );
    for id in ids {
        let done = format!(r#"{{"data":{{"uptime":1}},"result":"succ","reqid":"{id}"}}"#);
        assert!(matches!(
            s.handle_text(at(0), done.as_bytes()).unwrap(),
            Some(Event::Reply(_))
        ));
    }
}

#[test]
fn heartbeat_pings_every_interval_and_declares_the_connection_dead() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    nothing_to_transmit(&mut s, at(0));
    s.handle_timeout(at(30));
    assert_eq!(
        transmit(&mut s, at(30)),
        r#"{"req":"ping"}"#,
        "ping is never signed"
    );
    assert_eq!(s.handle_text(at(31), br#"{"res":"pong"}"#).unwrap(), None);
    for t in [60, 90] {
        s.handle_timeout(at(t));
        assert_eq!(transmit(&mut s, at(t)), r#"{"req":"ping"}"#);
        assert_eq!(s.poll_event(), None);
    }
    s.handle_timeout(at(120));
    assert_eq!(
        s.poll_event(),
        Some(Event::ConnectionDead { missed_pongs: 2 })
    );
}

#[test]
fn disconnect_aborts_pending_requests_and_keeps_the_credentials() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    let mut buf = [0u8; 256];
    let (reqid, _) = s.send(at(0), &Request::user_info(), &mut buf).unwrap();
    s.handle_disconnect(at(1));
    assert_eq!(s.state(), State::Disconnected);
    assert_eq!(s.poll_event(), Some(Event::RequestAborted(reqid)));
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.poll_timeout(), None);
    assert!(s.credentials().can_auth_token());
    assert_eq!(
        s.send(at(1), &Request::user_info(), &mut buf),
        Err(naslink_core::fnos::Error::NotConnected)
    );
}

/// Reconnect: getRSAPub again with a zero backId and the counter back at 1.
fn reconnect(server: &Server, s: &mut Fnos<'_>, now: Instant, si: &str) {
    s.handle_disconnect(now);
    while s.poll_event().is_some() {}
    s.handle_connect(now);
    let get = transmit(s, now);
    assert_eq!(
        reqid_of(&get),
        format!(
            "{:08x}00000000000000000001",
            UNIX_SECS + now.total_millis() / 1000
        )
    );
    assert_eq!(
        s.handle_text(now, server.rsa_pub(&reqid_of(&get), si).as_bytes())
            .unwrap(),
        None
    );
}

#[test]
fn reconnect_logs_in_with_auth_token_signed_by_the_stored_secret() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    reconnect(&server, &mut s, at(100), "72057615512764999");
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::AuthToken));
    let wire = transmit(&mut s, at(100));
    let json = verify_signed(&wire, &hex(SECRET_HEX));
    let reqid = reqid_of(json);
    assert_eq!(
        json,
        format!(
            r#"{{"reqid":"{reqid}","token":"tok/1","si":"72057615512764999","main":true,"req":"user.authToken"}}"#
        )
    );
    let ok = format!(
        r#"{{"uid":1000,"admin":true,"backId":"6915841b00000045","result":"succ","reqid":"{reqid}"}}"#
    );
    assert!(matches!(
        s.handle_text(at(100), ok.as_bytes()).unwrap(),
        Some(Event::LoggedIn {
            method: LoginMethod::AuthToken,
            ..
        })
    ));
    assert_eq!(s.back_id().as_str(), "6915841b00000045");
    let mut buf = [0u8; 256];
    let (id, n) = s.send(at(100), &Request::user_info(), &mut buf).unwrap();
    assert!(id.as_str().contains("6915841b00000045"));
    verify_signed(std::str::from_utf8(&buf[..n]).unwrap(), &hex(SECRET_HEX));
}

#[test]
fn refused_tokens_fall_back_to_token_login_then_password_then_two_factor() {
    let server = Server::new();
    let mut c = config();
    c.device.did = Some("dev-1");
    let mut s = logged_in(&server, c);
    reconnect(&server, &mut s, at(200), "5");

    // user.authToken refused with 135168 -> user.tokenLogin with the long token.
    let auth = transmit(&mut s, at(200));
    let json = verify_signed(&auth, &hex(SECRET_HEX)).to_owned();
    let refused = format!(
        r#"{{"errno":135168,"result":"fail","reqid":"{}"}}"#,
        reqid_of(&json)
    );
    assert_eq!(s.handle_text(at(200), refused.as_bytes()).unwrap(), None);
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::TokenLogin));
    assert!(s.credentials().token.is_empty());
    let token_login = transmit(&mut s, at(200));
    let json = verify_signed(&token_login, &hex(SECRET_HEX)).to_owned();
    let reqid = reqid_of(&json);
    assert_eq!(
        json,
        format!(
            r#"{{"reqid":"{reqid}","token":"long/1","deviceType":"Browser","deviceName":"Windows-Google Chrome","did":"dev-1","si":"5","req":"user.tokenLogin"}}"#
        )
    );

    // user.tokenLogin refused -> password login in a fresh envelope.
    let refused = format!(r#"{{"errno":135168,"result":"fail","reqid":"{reqid}"}}"#);
    assert_eq!(s.handle_text(at(200), refused.as_bytes()).unwrap(), None);
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::Password));
    let (_, inner) = server.open(&transmit(&mut s, at(200)));
    assert_eq!(inner["did"], "dev-1");
    assert_eq!(inner["si"], "5");

    // Two-factor challenge: accessToken without token or secret.
    let challenge = format!(
        r#"{{"accessToken":"acc\/1","isBindTwofaSecret":true,"isTrustedDevice":false,"isTwofaEnforced":true,"result":"succ","reqid":"{}"}}"#,
        inner["reqid"].as_str().unwrap()
    );
    assert_eq!(
        s.handle_text(at(200), challenge.as_bytes()).unwrap(),
        Some(Event::TwoFactorRequired)
    );
    assert_eq!(s.state(), State::AwaitingTwoFactorCode);
    nothing_to_transmit(&mut s, at(200));

    // A wrong code is refused; the session waits for another.
    s.submit_two_factor_code("000000", false).unwrap();
    let (_, inner) = server.open(&transmit(&mut s, at(201)));
    assert_eq!(inner["req"], "user.2fa.loginVerify");
    assert_eq!(inner["code"], "000000");
    assert_eq!(inner["accessToken"], "acc/1");
    let wrong = format!(
        r#"{{"errno":102570104,"result":"fail","reqid":"{}"}}"#,
        inner["reqid"].as_str().unwrap()
    );
    assert_eq!(
        s.handle_text(at(201), wrong.as_bytes()).unwrap(),
        Some(Event::TwoFactorRejected(Some(Errno::WrongTwoFactorCode)))
    );
    assert_eq!(s.state(), State::AwaitingTwoFactorCode);

    // The right code gets a session with a new secret, used from then on.
    s.submit_two_factor_code("123456", true).unwrap();
    let (key, inner) = server.open(&transmit(&mut s, at(202)));
    assert_eq!(inner["code"], "123456");
    assert_eq!(inner["isTrustedDevice"], true);
    let new_secret = [0x42u8; 16];
    let ok = Server::granted(
        &key,
        inner["reqid"].as_str().unwrap(),
        &new_secret,
        "6915841b00000046",
    );
    assert!(matches!(
        s.handle_text(at(202), ok.as_bytes()).unwrap(),
        Some(Event::LoggedIn {
            method: LoginMethod::TwoFactor,
            ..
        })
    ));
    let mut buf = [0u8; 256];
    let (_, n) = s.send(at(202), &Request::user_info(), &mut buf).unwrap();
    verify_signed(std::str::from_utf8(&buf[..n]).unwrap(), &new_secret);
}

#[test]
fn refused_password_ends_the_login_with_the_errno() {
    let server = Server::new();
    let mut s: Fnos<'_> = Session::new(config());
    s.handle_connect(at(0));
    let get = transmit(&mut s, at(0));
    s.handle_text(at(0), server.rsa_pub(&reqid_of(&get), "1").as_bytes())
        .unwrap();
    let (_, inner) = server.open(&transmit(&mut s, at(0)));
    let fail = format!(
        r#"{{"errno":131072,"result":"fail","reqid":"{}"}}"#,
        inner["reqid"].as_str().unwrap()
    );
    assert_eq!(
        s.handle_text(at(0), fail.as_bytes()).unwrap(),
        Some(Event::LoginFailed(LoginFailure::Rejected {
            method: LoginMethod::Password,
            errno: Some(Errno::WrongUserOrPassword)
        }))
    );
    assert_eq!(s.state(), State::LoginFailed);
}

#[test]
fn unanswered_login_step_fails_with_a_timeout() {
    let mut s: Fnos<'_> = Session::new(config());
    s.handle_connect(at(0));
    transmit(&mut s, at(0));
    assert_eq!(s.poll_timeout(), Some(at(30)));
    s.handle_timeout(at(30));
    assert_eq!(
        s.poll_event(),
        Some(Event::LoginFailed(LoginFailure::TimedOut))
    );
    assert_eq!(s.state(), State::LoginFailed);
}

#[test]
fn restored_credentials_without_password_use_token_login_only() {
    let server = Server::new();
    let mut c = config();
    c.password = None;
    let mut s: Fnos<'_> = Session::new(c);
    let mut creds = Credentials::default();
    creds.long_token.push_str("long/9").unwrap();
    creds.secret = Secret::new(&hex(SECRET_HEX));
    s.set_credentials(creds);
    s.handle_connect(at(0));
    let get = transmit(&mut s, at(0));
    s.handle_text(at(0), server.rsa_pub(&reqid_of(&get), "1").as_bytes())
        .unwrap();
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::TokenLogin));
    let json = verify_signed(&transmit(&mut s, at(0)), &hex(SECRET_HEX)).to_owned();
    let fail = format!(
        r#"{{"errno":135168,"result":"fail","reqid":"{}"}}"#,
        reqid_of(&json)
    );
    assert_eq!(
        s.handle_text(at(0), fail.as_bytes()).unwrap(),
        Some(Event::LoginFailed(LoginFailure::DeviceTokenRefused {
            errno: Some(Errno::InvalidCredential)
        }))
    );
}

/// A device token made from a `stay` login's credentials, read back as a
/// fresh device would from its text.
fn device_token_of(s: &Fnos<'_>, did: Option<&str>) -> DeviceToken {
    let token = DeviceToken::new("admin", did, s.credentials()).unwrap();
    let mut text = [0u8; device_token::MAX_TEXT_LEN];
    let n = token.encode(&mut text).unwrap();
    DeviceToken::parse(std::str::from_utf8(&text[..n]).unwrap()).unwrap()
}

#[test]
fn a_device_token_logs_in_with_token_login_signed_with_its_secret_and_did() {
    let server = Server::new();
    let issuer = logged_in(&server, config());
    let token = device_token_of(&issuer, Some("panel-7"));
    let mut s: Fnos<'_> = Session::from_device_token(Config::from_device_token(&token), &token);
    s.handle_connect(at(0));
    let get = transmit(&mut s, at(0));
    s.handle_text(at(0), server.rsa_pub(&reqid_of(&get), "5").as_bytes())
        .unwrap();
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::TokenLogin));
    let json = verify_signed(&transmit(&mut s, at(0)), &hex(SECRET_HEX)).to_owned();
    let sent: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(sent["req"], "user.tokenLogin");
    assert_eq!(sent["token"], "long/1");
    assert_eq!(sent["did"], "panel-7");
    assert_eq!(sent["si"], "5");
    let granted = format!(
        r#"{{"uid":1000,"admin":true,"token":"tok2","backId":"6915841b00000045","result":"succ","reqid":"{}"}}"#,
        reqid_of(&json)
    );
    assert!(matches!(
        s.handle_text(at(0), granted.as_bytes()).unwrap(),
        Some(Event::LoggedIn {
            method: LoginMethod::TokenLogin,
            ..
        })
    ));
    let (_, n) = s
        .send(at(0), &Request::get_host_name(), &mut [0u8; 512])
        .unwrap();
    assert!(n > 44, "requests are signed once logged in");
}

#[test]
fn a_refused_device_token_ends_the_login_by_name_and_never_tries_a_password() {
    let server = Server::new();
    let issuer = logged_in(&server, config());
    let token = device_token_of(&issuer, None);
    // Even a config that has a password: the device-token session drops it.
    let mut s: Fnos<'_> = Session::from_device_token(config(), &token);
    s.handle_connect(at(0));
    let get = transmit(&mut s, at(0));
    s.handle_text(at(0), server.rsa_pub(&reqid_of(&get), "1").as_bytes())
        .unwrap();
    let json = verify_signed(&transmit(&mut s, at(0)), &hex(SECRET_HEX)).to_owned();
    let fail = format!(
        r#"{{"errno":135168,"result":"fail","reqid":"{}"}}"#,
        reqid_of(&json)
    );
    assert_eq!(
        s.handle_text(at(0), fail.as_bytes()).unwrap(),
        Some(Event::LoginFailed(LoginFailure::DeviceTokenRefused {
            errno: Some(Errno::InvalidCredential)
        }))
    );
    assert_eq!(s.state(), State::LoginFailed);
    nothing_to_transmit(&mut s, at(0));
    assert!(
        s.credentials().long_token.is_empty(),
        "the refused token is forgotten"
    );
}

#[test]
fn a_device_token_session_refused_after_a_reconnect_says_so_too() {
    let server = Server::new();
    let issuer = logged_in(&server, config());
    let token = device_token_of(&issuer, None);
    let mut s: Fnos<'_> = Session::from_device_token(Config::from_device_token(&token), &token);
    s.handle_connect(at(0));
    let get = transmit(&mut s, at(0));
    s.handle_text(at(0), server.rsa_pub(&reqid_of(&get), "1").as_bytes())
        .unwrap();
    let json = verify_signed(&transmit(&mut s, at(0)), &hex(SECRET_HEX)).to_owned();
    let granted = format!(
        r#"{{"uid":1000,"token":"tok2","result":"succ","reqid":"{}"}}"#,
        reqid_of(&json)
    );
    s.handle_text(at(0), granted.as_bytes()).unwrap();
    assert_eq!(s.state(), State::Ready);
    // Next connection: user.authToken first, then user.tokenLogin, both refused.
    s.handle_disconnect(at(1));
    s.handle_connect(at(1));
    let get = transmit(&mut s, at(1));
    s.handle_text(at(1), server.rsa_pub(&reqid_of(&get), "2").as_bytes())
        .unwrap();
    for method in ["user.authToken", "user.tokenLogin"] {
        let json = verify_signed(&transmit(&mut s, at(1)), &hex(SECRET_HEX)).to_owned();
        assert!(json.contains(method), "{json}");
        let fail = format!(
            r#"{{"errno":135168,"result":"fail","reqid":"{}"}}"#,
            reqid_of(&json)
        );
        let event = s.handle_text(at(1), fail.as_bytes()).unwrap();
        if method == "user.tokenLogin" {
            assert_eq!(
                event,
                Some(Event::LoginFailed(LoginFailure::DeviceTokenRefused {
                    errno: Some(Errno::InvalidCredential)
                }))
            );
        }
    }
    nothing_to_transmit(&mut s, at(1));
}

#[test]
fn requests_before_login_go_out_unsigned() {
    let mut s: Fnos<'_> = Session::new(config());
    s.set_unix_time(at(0), UNIX_SECS);
    s.handle_connect(at(0));
    let mut buf = [0u8; 256];
    let (_, n) = s.send(at(0), &Request::get_host_name(), &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        br#"{"reqid":"6915841c00000000000000000001","req":"appcgi.sysinfo.getHostName"}"#
    );
}

#[test]
fn cancelled_request_frees_its_slot_and_a_late_answer_is_unmatched() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    let mut buf = [0u8; 512];
    let mut reqids = Vec::new();
    while s.has_room() {
        reqids.push(s.send(at(1), &Request::get_uptime(), &mut buf).unwrap().0);
    }
    assert_eq!(
        s.send(at(1), &Request::get_uptime(), &mut buf),
        Err(naslink_core::fnos::Error::Busy)
    );

    assert!(s.cancel(&reqids[0]));
    assert!(!s.cancel(&reqids[0]), "a second cancel finds nothing");
    assert!(s.has_room());
    let late = format!(
        r#"{{"data":{{"uptime":5}},"result":"succ","reqid":"{}"}}"#,
        reqids[0]
    );
    assert!(matches!(
        s.handle_text(at(2), late.as_bytes()).unwrap(),
        Some(Event::UnmatchedReply(_))
    ));
}

#[test]
fn debug_of_config_and_credentials_hides_secrets() {
    let config = naslink_core::fnos::Config::new("admin", "hunter2-password");
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("admin"), "{shown}");
    let mut creds = naslink_core::fnos::Credentials::default();
    creds.token.push_str("tok-SECRET-123").unwrap();
    creds.long_token.push_str("long-SECRET-456").unwrap();
    let shown = format!("{creds:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[test]
fn token_expired_push_leads_to_a_fresh_token_login_on_the_same_connection() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    assert!(matches!(
        s.handle_text(at(1), br#"{"sysNotify":"tokenExpired"}"#)
            .unwrap(),
        Some(Event::Push(Push::TokenExpired))
    ));
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::TokenLogin));
    let json = verify_signed(&transmit(&mut s, at(1)), &hex(SECRET_HEX)).to_owned();
    let sent: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(sent["req"], "user.tokenLogin");
    assert_eq!(sent["token"], "long/1");
    let granted = format!(
        r#"{{"uid":1000,"admin":true,"token":"tok2","backId":"6915841b00000045","result":"succ","reqid":"{}"}}"#,
        reqid_of(&json)
    );
    assert!(matches!(
        s.handle_text(at(1), granted.as_bytes()).unwrap(),
        Some(Event::LoggedIn {
            method: LoginMethod::TokenLogin,
            ..
        })
    ));
    assert_eq!(s.state(), State::Ready);
}

#[test]
fn token_expired_without_a_long_token_logs_in_with_the_password_again() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    let mut creds = s.credentials().clone();
    creds.long_token.clear();
    s.set_credentials(creds);
    s.handle_text(at(1), br#"{"sysNotify":"tokenExpired"}"#)
        .unwrap();
    assert_eq!(s.state(), State::LoggingIn(LoginMethod::Password));
    let (_, inner) = server.open(&transmit(&mut s, at(1)));
    assert_eq!(inner["req"], "user.login");
}

#[test]
fn kicked_push_stops_the_session_forgets_the_tokens_and_says_so() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    assert!(!s.kicked());
    assert!(matches!(
        s.handle_text(at(1), br#"{"sysNotify":"kicked"}"#).unwrap(),
        Some(Event::Push(Push::Kicked))
    ));
    assert!(s.kicked());
    assert_eq!(s.state(), State::LoginFailed);
    assert!(s.credentials().token.is_empty() && s.credentials().long_token.is_empty());
    // Only the heartbeat may go out: no login is retried by itself.
    let mut buf = [0u8; 2048];
    while let Some(n) = s.poll_transmit(at(1), &mut rng(), &mut buf).unwrap() {
        assert_eq!(&buf[..n], br#"{"req":"ping"}"#);
    }
    s.handle_disconnect(at(2));
    assert!(s.kicked(), "still kicked after the connection is gone");
    // A login the application asks for clears it.
    let s2 = logged_in(&server, config());
    assert!(!s2.kicked());
}

#[test]
fn privilege_changed_push_updates_is_admin() {
    let server = Server::new();
    let mut s = logged_in(&server, config());
    assert_eq!(s.is_admin(), Some(true));
    s.handle_text(
        at(1),
        br#"{"sysNotify":"privilegeChanged","privilege":"0"}"#,
    )
    .unwrap();
    assert_eq!(s.is_admin(), Some(false));
    s.handle_text(at(1), br#"{"sysNotify":"privilegeChanged","privilege":1}"#)
        .unwrap();
    assert_eq!(s.is_admin(), Some(true));
    s.handle_text(at(1), br#"{"sysNotify":"storageChanged"}"#)
        .unwrap();
    assert_eq!(s.state(), State::Ready, "storageChanged changes nothing");
}
