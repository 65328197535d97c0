//! The C ABI against the fnOS emulator: every call goes through the
//! `extern "C"` functions, as from C.

mod support;

use std::sync::Arc;

use naslink_capi::*;
use naslink_sim::fnos::{Config as SimConfig, Handle, KeySource, Push, Server};
use support::{Client, FnosConfig, ok};

use naslink_event_kind as K;

async fn emulator() -> Arc<Handle> {
    emulator_with(SimConfig::default()).await
}

async fn emulator_with(config: SimConfig) -> Arc<Handle> {
    Arc::new(
        Server::start(SimConfig {
            key: KeySource::Fixture,
            host_name: "c-panel".into(),
            ..config
        })
        .await
        .expect("emulator"),
    )
}

async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_then_panel_and_raw_requests_succeed_and_a_push_arrives() {
    let sim = emulator().await;
    let url = sim.url();
    let pusher = sim.clone();
    client(move || {
        let mut nas = Client::connect(&FnosConfig::new(&url, "admin", "admin"));
        let (e, _) = nas.wait_for(K::NASLINK_EVENT_CONNECTED);
        assert_eq!(e.reqid, "");
        let (e, before) = nas.wait_for(K::NASLINK_EVENT_LOGGED_IN);
        assert!(before.is_empty(), "{before:?}");
        assert_eq!(e.login_method, naslink_login_method::NASLINK_LOGIN_PASSWORD);
        assert_eq!((e.uid, e.admin), (1000, 1));

        // The brief's own example: a command name and no parameters.
        let id = nas.request("appcgi.resmon.cpu", None);
        assert_eq!(id.len(), 28);
        let reply = nas.final_reply(&id);
        assert_eq!(
            reply.status,
            naslink_reply_status::NASLINK_STATUS_SUCCESS,
            "{reply:?}"
        );
        assert_eq!(reply.errno_code, -1);

        let id = nas.panel(naslink_fnos_panel::NASLINK_PANEL_HOST_NAME);
        let reply = nas.final_reply(&id);
        assert_eq!(reply.get("data.hostName").as_deref(), Some("\"c-panel\""));

        let id = nas.panel(naslink_fnos_panel::NASLINK_PANEL_RESMON_GEN);
        let reply = nas.final_reply(&id);
        let cpu: f64 = reply.get("data.item.cpuBusy").unwrap().parse().unwrap();
        assert!((0.0..=100.0).contains(&cpu));

        let id = nas.panel(naslink_fnos_panel::NASLINK_PANEL_STORAGE);
        let reply = nas.final_reply(&id);
        let size: u64 = reply.get("stor.0.fssize").unwrap().parse().unwrap();
        assert!(size > 0);

        // Parameters as a JSON object.
        let id = nas.request("file.ls", Some(r#"{"path":"vol1/1000"}"#));
        let reply = nas.final_reply(&id);
        assert_eq!(
            reply.status,
            naslink_reply_status::NASLINK_STATUS_SUCCESS,
            "{reply:?}"
        );

        pusher.push(Push::StorageChanged);
        let (push, _) = nas.wait_for(K::NASLINK_EVENT_PUSH);
        assert_eq!(push.push, naslink_push_kind::NASLINK_PUSH_STORAGE_CHANGED);
        assert_eq!(push.get("sysNotify").as_deref(), Some("\"storageChanged\""));

        // SAFETY: conn from init.
        ok(unsafe { naslink_close(nas.conn, nas.now()) });
        // The emulator drops the TCP connection on a Close frame without
        // answering it, so the close is not clean; it must still end.
        let (closed, _) = nas.wait_for(K::NASLINK_EVENT_CLOSED);
        assert!(!closed.detail.is_empty(), "{closed:?}");
        // SAFETY: conn from init.
        let again = unsafe { naslink_close(nas.conn, nas.now()) };
        assert_eq!(again, naslink_result::NASLINK_ERR_CLOSING);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_ends_in_login_failed_with_the_servers_errno() {
    let sim = emulator().await;
    let url = sim.url();
    client(move || {
        let mut nas = Client::connect(&FnosConfig::new(&url, "admin", "wrong"));
        let (e, _) = nas.wait_for(K::NASLINK_EVENT_LOGIN_FAILED);
        assert_eq!(e.login_method, naslink_login_method::NASLINK_LOGIN_PASSWORD);
        assert_eq!(e.errno_code, naslink_sim::fnos::ERRNO_WRONG_PASSWORD as i64);
        assert!(!e.detail.is_empty());
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_stream_aborts_requests_in_flight_then_closes() {
    let sim = emulator().await;
    let url = sim.url();
    client(move || {
        let mut nas = Client::connect(&FnosConfig::new(&url, "admin", "admin"));
        nas.wait_for(K::NASLINK_EVENT_LOGGED_IN);
        let id = nas.request("appcgi.resmon.mem", None);
        // The transport breaks before the answer is read.
        // SAFETY: conn from init.
        ok(unsafe { naslink_handle_eof(nas.conn, nas.now()) });
        let (aborted, _) = nas.wait_for(K::NASLINK_EVENT_REQUEST_ABORTED);
        assert_eq!(aborted.reqid, id);
        let (closed, _) = nas.wait_for(K::NASLINK_EVENT_CLOSED);
        assert_eq!(closed.close_code, -1);
        let mut reqid = naslink_reqid::EMPTY;
        // SAFETY: conn from init; a closed connection refuses requests.
        let r = unsafe {
            naslink_fnos_request(
                nas.conn,
                nas.now(),
                c"appcgi.resmon.cpu".as_ptr(),
                std::ptr::null(),
                &mut reqid,
            )
        };
        assert_eq!(r, naslink_result::NASLINK_ERR_CLOSING);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_factor_challenge_is_answered_with_the_code_after_a_wrong_one() {
    let sim = emulator_with(SimConfig {
        two_factor_code: Some("123456".into()),
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = Client::connect(&FnosConfig::new(&url, "admin", "admin"));
        // SAFETY: (every call here) conn from init, NUL-terminated codes.
        unsafe {
            assert_eq!(
                naslink_fnos_submit_two_factor_code(nas.conn, c"000000".as_ptr(), false),
                naslink_result::NASLINK_ERR_NO_CODE_REQUESTED
            );
            nas.wait_for(K::NASLINK_EVENT_TWO_FACTOR_REQUIRED);
            ok(naslink_fnos_submit_two_factor_code(
                nas.conn,
                c"000000".as_ptr(),
                false,
            ));
            let (rejected, _) = nas.wait_for(K::NASLINK_EVENT_TWO_FACTOR_REJECTED);
            assert_eq!(
                rejected.errno_code,
                naslink_sim::fnos::ERRNO_WRONG_TWO_FACTOR_CODE as i64
            );
            ok(naslink_fnos_submit_two_factor_code(
                nas.conn,
                c"123456".as_ptr(),
                true,
            ));
        }
        let (e, _) = nas.wait_for(K::NASLINK_EVENT_LOGGED_IN);
        assert_eq!(
            e.login_method,
            naslink_login_method::NASLINK_LOGIN_TWO_FACTOR
        );
    })
    .await;
    sim.shutdown().await;
}
