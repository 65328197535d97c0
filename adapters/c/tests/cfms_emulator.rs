//! The C ABI's CFMS half against the CFMS emulator, through the
//! `extern "C"` functions only.

mod support;

use naslink_capi::*;
use naslink_sim::cfms::{Config as SimConfig, Server};
use support::Client;

use naslink_event_kind as K;

async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_itself_then_an_action_with_json_data_and_a_lockdown_push() {
    let sim = Server::start(SimConfig::default()).await.expect("emulator");
    let url = sim.url();
    client(move || {
        let mut nas = Client::connect_cfms(&url, "admin", "admin");
        nas.wait_for(K::NASLINK_EVENT_CONNECTED);
        let (info, _) = nas.wait_for(K::NASLINK_EVENT_SERVER_INFO);
        assert_eq!((info.protocol_version, info.lockdown), (3, 0));
        assert!(info.get("data.server_name").is_some(), "{info:?}");
        let (login, _) = nas.wait_for(K::NASLINK_EVENT_LOGGED_IN);
        assert!(login.expires_in_ms > 0, "{login:?}");
        let (listener, _) = nas.wait_for(K::NASLINK_EVENT_LISTENER_REGISTERED);
        assert_eq!(listener.errno_code, 200);

        let id = nas.cfms_request("list_directory", Some(r#"{"folder_id":null}"#));
        let (reply, _) = nas.wait_for(K::NASLINK_EVENT_REPLY);
        assert_eq!(reply.reqid, id);
        assert_eq!(
            reply.status,
            naslink_reply_status::NASLINK_STATUS_SUCCESS,
            "{reply:?}"
        );
        assert_eq!(reply.errno_code, 200);

        // A refusal is a reply with the server's code.
        let id = nas.cfms_request("list_directory", None);
        let (reply, _) = nas.wait_for(K::NASLINK_EVENT_REPLY);
        assert_eq!(reply.reqid, id);
        assert_eq!(reply.status, naslink_reply_status::NASLINK_STATUS_FAILURE);
        assert_eq!(reply.errno_code, 400);

        let id = nas.cfms_request("lockdown", Some(r#"{"status":true}"#));
        let (push, seen) = nas.wait_for(K::NASLINK_EVENT_LOCKDOWN);
        assert_eq!(push.lockdown, 1);
        let replied = seen
            .iter()
            .any(|e| e.kind == K::NASLINK_EVENT_REPLY && e.reqid == id)
            || nas.wait_for(K::NASLINK_EVENT_REPLY).0.reqid == id;
        assert!(replied);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cfms_and_fnos_calls_do_not_mix() {
    let sim = Server::start(SimConfig::default()).await.expect("emulator");
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
    })
    .await;
    sim.shutdown().await;
}
