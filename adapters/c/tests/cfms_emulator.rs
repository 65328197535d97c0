//! The C ABI's CFMS half against the CFMS emulator, through the
//! `extern "C"` functions only: the same session at protocols 3, 5 and
//! 13, negotiated as a C program does it (`cfms-13.md` §11), pinned
//! versions, and the versions refused by name.

mod support;

use std::ffi::CStr;

use naslink_capi::*;
use naslink_sim::cfms::{Config as SimConfig, Handle, Server};
use support::{Client, Memory, os_rng, strerror};

use naslink_event_kind as K;

async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

/// An emulator speaking `protocol_version` (13 and above: frames).
async fn sim(protocol_version: u32) -> Handle {
    Server::start(SimConfig {
        protocol_version,
        bad_password_delay: std::time::Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await
    .expect("emulator")
}

/// The session a C program runs, on a connection opened at `protocol`:
/// server information, login (and the listener at 3–5), an action with
/// JSON data, a refusal with its code, and the lockdown push.
fn session(nas: &mut Client, protocol: u32) {
    let (info, _) = nas.wait_for(K::NASLINK_EVENT_SERVER_INFO);
    assert_eq!((info.protocol_version, info.lockdown), (protocol, 0));
    assert!(info.get("data.server_name").is_some(), "{info:?}");
    assert_eq!(nas.cfms_protocol_version(), protocol);
    let (login, _) = nas.wait_for(K::NASLINK_EVENT_LOGGED_IN);
    assert!(login.expires_in_ms > 0, "{login:?}");
    if protocol != 13 {
        let (listener, _) = nas.wait_for(K::NASLINK_EVENT_LISTENER_REGISTERED);
        assert_eq!(listener.errno_code, 200);
    }

    let id = nas.cfms_request("list_directory", Some(r#"{"folder_id":null}"#));
    let (reply, seen) = nas.wait_for(K::NASLINK_EVENT_REPLY);
    assert!(
        seen.iter()
            .all(|e| e.kind != K::NASLINK_EVENT_LISTENER_REGISTERED),
        "protocol 13 registers no listener: {seen:?}"
    );
    assert_eq!(reply.reqid, id);
    assert_eq!(
        reply.status,
        naslink_reply_status::NASLINK_STATUS_SUCCESS,
        "{reply:?}"
    );
    assert_eq!(reply.errno_code, 200);
    assert!(reply.get("data.folders").is_some(), "{reply:?}");

    // A refusal is a reply with the server's code.
    let id = nas.cfms_request("get_document", Some(r#"{"document_id":"nope"}"#));
    let (reply, _) = nas.wait_for(K::NASLINK_EVENT_REPLY);
    assert_eq!(reply.reqid, id);
    assert_eq!(reply.status, naslink_reply_status::NASLINK_STATUS_FAILURE);
    assert_eq!(reply.errno_code, 404, "{reply:?}");

    let id = nas.cfms_request("lockdown", Some(r#"{"status":true}"#));
    let (push, seen) = nas.wait_for(K::NASLINK_EVENT_LOCKDOWN);
    assert_eq!(push.lockdown, 1);
    let replied = seen
        .iter()
        .any(|e| e.kind == K::NASLINK_EVENT_REPLY && e.reqid == id)
        || nas.wait_for(K::NASLINK_EVENT_REPLY).0.reqid == id;
    assert!(replied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_session_at_protocols_3_5_and_13_negotiated() {
    for protocol in [3, 5, 13] {
        let sim = sim(protocol).await;
        let url = sim.url();
        client(move || {
            let (mut nas, pin) = Client::negotiate_cfms(&url, "admin", "admin");
            // A 13 server keeps the probed connection; a 3–5 one closes it
            // and the C program reconnects speaking text.
            assert_eq!(pin, if protocol == 13 { 0 } else { 3 }, "at {protocol}");
            session(&mut nas, protocol);
        })
        .await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_13_server_answers_the_probe_on_the_first_connection() {
    let sim = sim(13).await;
    let url = sim.url();
    client(move || {
        let mut nas = Client::connect_cfms_at(&url, "admin", "admin", 0);
        assert_eq!(nas.cfms_protocol_version(), 0, "unknown before the answer");
        let (info, seen) = nas.wait_for(K::NASLINK_EVENT_SERVER_INFO);
        let kinds: Vec<_> = seen.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [K::NASLINK_EVENT_CONNECTED]);
        assert_eq!(info.protocol_version, 13);
        assert_eq!(nas.cfms_protocol_version(), 13);
        nas.wait_for(K::NASLINK_EVENT_LOGGED_IN);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_server_closes_the_probe_and_the_caller_is_told_to_reconnect_at_text() {
    let sim = sim(3).await;
    let url = sim.url();
    client(move || {
        let mut nas = Client::connect_cfms_at(&url, "admin", "admin", 0);
        let kinds = |n: &mut Client| {
            let mut kinds = Vec::new();
            loop {
                let e = n.next_event(std::time::Duration::from_secs(20));
                kinds.push(e.kind);
                if e.kind == K::NASLINK_EVENT_RECONNECT_TEXT {
                    assert_eq!(e.protocol_version, 3, "{e:?}");
                    assert!(e.detail.contains("reconnect"), "{e:?}");
                }
                if e.kind == K::NASLINK_EVENT_CLOSED {
                    assert_eq!(e.close_code, 1000, "{e:?}");
                    return kinds;
                }
            }
        };
        // The session's own server_info (the probe) is aborted by the
        // close, before the advice.
        assert_eq!(
            kinds(&mut nas),
            [
                K::NASLINK_EVENT_CONNECTED,
                K::NASLINK_EVENT_REQUEST_ABORTED,
                K::NASLINK_EVENT_RECONNECT_TEXT,
                K::NASLINK_EVENT_CLOSED
            ]
        );
        assert_eq!(nas.cfms_protocol_version(), 0);
        // Nothing more: the connection is over.
        let mut ev = support::naslink_event_none();
        // SAFETY: conn from init; ev writable.
        support::ok(unsafe { naslink_poll_event(nas.conn, &mut ev) });
        assert_eq!(ev.kind, K::NASLINK_EVENT_NONE);
        drop(nas);
        // The reconnect pinned to text: the server_info is answered.
        let mut nas = Client::connect_cfms_at(&url, "admin", "admin", 3);
        let (info, _) = nas.wait_for(K::NASLINK_EVENT_SERVER_INFO);
        assert_eq!(info.protocol_version, 3);
        nas.wait_for(K::NASLINK_EVENT_LISTENER_REGISTERED);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_version_skips_the_probe() {
    for protocol in [3, 5, 13] {
        let sim = sim(protocol).await;
        let url = sim.url();
        client(move || {
            // A 3–5 server would close a probe: the first connection
            // staying open shows none was sent.
            let pin = if protocol == 13 { 13 } else { 3 };
            let mut nas = Client::connect_cfms_at(&url, "admin", "admin", pin);
            session(&mut nas, protocol);
        })
        .await;
        sim.shutdown().await;
    }
    // Pinned to 13 against a text server: no negotiation, so no
    // reconnect advice, only the close.
    let sim = sim(3).await;
    let url = sim.url();
    client(move || {
        let mut nas = Client::connect_cfms_at(&url, "admin", "admin", 13);
        let (closed, seen) = nas.wait_for(K::NASLINK_EVENT_CLOSED);
        assert!(
            seen.iter()
                .all(|e| e.kind != K::NASLINK_EVENT_RECONNECT_TEXT),
            "{seen:?} {closed:?}"
        );
    })
    .await;
    sim.shutdown().await;
}

#[test]
fn versions_6_to_12_and_above_13_are_refused_by_name_at_init() {
    let init = |protocol_version: u32| {
        let mem = Memory::new(naslink_cfms_size(), naslink_cfms_align());
        let config = naslink_cfms_config {
            url: c"ws://127.0.0.1:5104/".as_ptr(),
            user: c"admin".as_ptr(),
            password: c"admin".as_ptr(),
            now_ms: 0,
            unix_time_s: 0,
            request_timeout_ms: 0,
            listener: true,
            protocol_version,
        };
        let mut conn = std::ptr::null_mut();
        // SAFETY: memory of the right size and alignment, valid config.
        let r = unsafe {
            naslink_cfms_init(
                mem.ptr.cast(),
                mem.len(),
                &config,
                Some(os_rng),
                std::ptr::null_mut(),
                &mut conn,
            )
        };
        if r == naslink_result::NASLINK_OK {
            // SAFETY: conn from init.
            unsafe { naslink_deinit(conn) };
        }
        r
    };
    for v in [0, 3, 4, 5, 13] {
        assert_eq!(init(v), naslink_result::NASLINK_OK, "{v}");
    }
    for v in [1, 2, 6, 9, 10, 12, 14, 24, u32::MAX] {
        assert_eq!(
            init(v),
            naslink_result::NASLINK_ERR_PROTOCOL_UNSUPPORTED,
            "{v}"
        );
    }
    let text = strerror(naslink_result::NASLINK_ERR_PROTOCOL_UNSUPPORTED);
    assert!(text.contains("3, 4, 5 or 13"), "{text}");
    // SAFETY: a static C string.
    let named = unsafe { CStr::from_ptr(naslink_strerror(-18)) };
    assert_eq!(named.to_str().unwrap(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_announcing_14_or_10_is_refused_with_its_version() {
    // 14 speaks frames (the probe is answered), 10 here speaks text (the
    // probe is closed, the text server_info names 10).
    for (protocol, pin) in [(14, 0), (10, 3)] {
        let sim = sim(protocol).await;
        let url = sim.url();
        client(move || {
            let (mut nas, got) = Client::negotiate_cfms(&url, "admin", "admin");
            assert_eq!(got, pin, "at {protocol}");
            let (refused, seen) = nas.wait_for(K::NASLINK_EVENT_PROTOCOL_UNSUPPORTED);
            assert_eq!(refused.protocol_version, protocol, "{refused:?}");
            assert!(refused.detail.contains("3-5, 13"), "{refused:?}");
            assert!(
                seen.iter().all(|e| e.kind != K::NASLINK_EVENT_LOGGED_IN),
                "{seen:?}"
            );
            assert_eq!(nas.cfms_protocol_version(), 0);
        })
        .await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refusals_carry_the_server_code_at_3_and_13() {
    // (protocol, what the emulator is told, the code the C caller sees)
    type Fault = fn(&Handle);
    let cases: [(u32, Fault, i64); 5] = [
        (3, |s| s.set_password_expired("admin", true), 403),
        (13, |s| s.set_password_expired("admin", true), 4002),
        (13, |s| s.set_password_weak("admin", true), 4001),
        (13, |s| s.set_user_active("admin", false), 4003),
        (13, |_| {}, 401),
    ];
    for (protocol, fault, code) in cases {
        let sim = sim(protocol).await;
        fault(&sim);
        let url = sim.url();
        let password = if code == 401 { "wrong" } else { "admin" };
        client(move || {
            let (mut nas, _) = Client::negotiate_cfms(&url, "admin", password);
            let (failed, _) = nas.wait_for(K::NASLINK_EVENT_LOGIN_FAILED);
            assert_eq!(failed.errno_code, code, "at {protocol}: {failed:?}");
            assert!(!failed.detail.is_empty());
        })
        .await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_failed_logins_at_13_give_429() {
    let sim = sim(13).await;
    let url = sim.url();
    client(move || {
        let mut codes = Vec::new();
        for _ in 0..6 {
            let mut nas = Client::connect_cfms_at(&url, "admin", "wrong", 13);
            let (failed, _) = nas.wait_for(K::NASLINK_EVENT_LOGIN_FAILED);
            codes.push(failed.errno_code);
        }
        assert_eq!(codes, [401, 401, 401, 401, 401, 429]);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cfms_and_fnos_calls_do_not_mix() {
    let sim = sim(3).await;
    let url = sim.url();
    client(move || {
        let nas = Client::connect_cfms(&url, "admin", "admin");
        let mut reqid = naslink_reqid {
            text: [0; NASLINK_REQID_CAPACITY],
        };
        let req = std::ffi::CString::new("appcgi.resmon.cpu").unwrap();
        // SAFETY: a CFMS connection handed to an fnOS function: refused.
        let r = unsafe {
            naslink_fnos_request(nas.conn, 0, req.as_ptr(), std::ptr::null(), &mut reqid)
        };
        assert_eq!(r, naslink_result::NASLINK_ERR_WRONG_CONNECTION);
        // SAFETY: valid pointers. Before the login, CFMS requests wait.
        let r = unsafe {
            naslink_cfms_request(nas.conn, 0, req.as_ptr(), std::ptr::null(), &mut reqid)
        };
        assert_eq!(r, naslink_result::NASLINK_ERR_BUSY);
        // SAFETY: a NULL out-pointer is refused, never written.
        let r = unsafe { naslink_cfms_protocol_version(nas.conn, std::ptr::null_mut()) };
        assert_eq!(r, naslink_result::NASLINK_ERR_NULL);
        let mut version = 0u32;
        // SAFETY: a NULL connection is refused.
        let r = unsafe { naslink_cfms_protocol_version(std::ptr::null_mut(), &mut version) };
        assert_eq!(r, naslink_result::NASLINK_ERR_NULL);
        // An fnOS connection has no CFMS protocol version.
        let mem = Memory::fnos();
        let config = support::FnosConfig::new("ws://127.0.0.1:5666/", "admin", "admin");
        let mut fnos = std::ptr::null_mut();
        // SAFETY: memory of the right size and alignment, valid config.
        support::ok(unsafe {
            naslink_fnos_init(
                mem.ptr.cast(),
                mem.len(),
                &config.raw(0),
                Some(os_rng),
                std::ptr::null_mut(),
                &mut fnos,
            )
        });
        // SAFETY: valid pointers.
        let r = unsafe { naslink_cfms_protocol_version(fnos, &mut version) };
        assert_eq!(r, naslink_result::NASLINK_ERR_WRONG_CONNECTION);
        // SAFETY: conn from init.
        unsafe { naslink_deinit(fnos) };
    })
    .await;
    sim.shutdown().await;
}
