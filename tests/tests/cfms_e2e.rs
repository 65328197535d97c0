//! End to end: the core's WebSocket client and CFMS session over a real TCP
//! socket against the CFMS emulator of `naslink-sim` (which shares no code
//! with the core). Login, two-factor login (TOTP and backup codes), token
//! refresh and re-login, keep-alive, lockdown pushes and 999, pipelined
//! requests matched first-in first-out, uploads and downloads compared byte
//! for byte (streamed 2 MiB chunks through a 64 KiB buffer), a corrupted
//! chunk, and the failure paths: wrong password, expired password, a
//! protocol the session does not speak, malformed JSON, a missed deadline,
//! an oversized answer, connections lost mid-request and mid-transfer.
//!
//! Every test starts its own emulator on loopback (plain `ws://`) and runs
//! the blocking client beside it; driver glue is in `cfms_support`.

mod cfms_support;
mod support;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use cfms_support::{CfmsLink, Seen, totp};
use naslink_core::cfms::{
    Config, DecryptError, Desync, DownloadError, Error, Event, LoginError, RequestError, Seq,
    Status, TwoFactorMethod, UploadError, UploadSource, UploadWriteError, sha256_of,
};
use naslink_core::time::Duration;
use naslink_core::ws::{CloseCode, Closed};
use naslink_sim::cfms::{Config as SimConfig, DownloadFault, Handle, Server, UserSpec};
use support::{os_entropy, unix_secs};

const SECS: StdDuration = StdDuration::from_secs(1);

async fn emulator(config: SimConfig) -> Arc<Handle> {
    Arc::new(Server::start(config).await.expect("emulator starts"))
}

/// Run blocking client code beside the emulator's runtime.
async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

fn quick(config: SimConfig) -> SimConfig {
    SimConfig {
        bad_password_delay: StdDuration::from_millis(300),
        ..config
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_answers_token_exp_and_permissions_and_token_authenticates() {
    let sim = emulator(quick(SimConfig::default())).await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        assert_eq!(nas.server_info(), 3);
        assert_eq!(nas.session.protocol_version(), Some(3));
        assert_eq!(nas.session.lockdown(), Some(false));

        nas.send(|s, c, b| s.login(c.now(), "admin", "admin", b));
        let (event, body) = nas.wait_event(5 * SECS, |e| {
            matches!(e, Event::LoggedIn { .. } | Event::LoginFailed(_))
        });
        let Event::LoggedIn { expires_in } = event else {
            panic!("login failed: {event:?}")
        };
        // exp is 3600 s after issue; allow for the clocks' rounding.
        let secs = expires_in.total_millis() / 1000;
        assert!((3590..=3600).contains(&secs), "expires in {secs} s");
        let body = cfms_support::json(&body.expect("login body"));
        assert_eq!(body["data"]["nickname"], "管理员");
        assert!(
            body["data"]["permissions"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p == "bypass_lockdown"))
        );
        assert!(nas.session.is_logged_in());
        assert_eq!(nas.session.token(), body["data"]["token"]);

        // The token rides in the envelope of the next request.
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (status, body) = nas.reply(seq);
        assert_eq!(status, Status::Ok, "{body}");
        assert!(body["data"]["documents"].is_array());
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_login_answers_202_then_totp_code_logs_in() {
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let sim = emulator(quick(SimConfig {
        protocol_version: 5,
        users: vec![UserSpec {
            totp_secret: Some(SECRET.into()),
            ..UserSpec::user("carol", "carol-pass")
        }],
        ..SimConfig::default()
    }))
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        assert_eq!(nas.server_info(), 5);
        nas.send(|s, c, b| s.login(c.now(), "carol", "carol-pass", b));
        let (event, _) = nas.wait_event(5 * SECS, |e| {
            matches!(
                e,
                Event::LoggedIn { .. } | Event::LoginFailed(_) | Event::TwoFactorRequired { .. }
            )
        });
        assert_eq!(
            event,
            Event::TwoFactorRequired {
                method: TwoFactorMethod::Totp
            }
        );
        assert!(!nas.session.is_logged_in());

        // A wrong code is refused after the delay and may be retried.
        // Not the code of any step the server accepts (±1 around now).
        let now = unix_secs();
        let near: Vec<String> = [now - 30, now, now + 30]
            .iter()
            .map(|&t| totp(SECRET, t))
            .collect();
        let wrong = ["000000", "111111", "222222", "333333"]
            .into_iter()
            .find(|c| !near.iter().any(|n| n == c))
            .expect("four codes cannot all be near")
            .to_owned();
        nas.send(move |s, c, b| s.submit_two_factor(c.now(), &wrong, b));
        let (event, _) = nas.wait_event(5 * SECS, |e| {
            matches!(e, Event::LoggedIn { .. } | Event::LoginFailed(_))
        });
        assert_eq!(event, Event::LoginFailed(LoginError::InvalidTwoFactorCode));

        let code = totp(SECRET, unix_secs());
        nas.send(move |s, c, b| s.submit_two_factor(c.now(), &code, b));
        let (event, _) = nas.wait_event(5 * SECS, |e| {
            matches!(e, Event::LoggedIn { .. } | Event::LoginFailed(_))
        });
        assert!(matches!(event, Event::LoggedIn { .. }), "{event:?}");
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        assert_eq!(nas.reply(seq).0, Status::Ok);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_code_in_one_step_login_works_once() {
    let sim = emulator(quick(SimConfig {
        protocol_version: 5,
        users: vec![UserSpec {
            totp_secret: Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
            backup_codes: vec!["backup-0001".into(), "backup-0002".into()],
            ..UserSpec::user("erin", "erin-pass")
        }],
        ..SimConfig::default()
    }))
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        assert_eq!(nas.server_info(), 5);
        let outcome = |nas: &mut CfmsLink<_>| {
            nas.wait_event(5 * SECS, |e| {
                matches!(
                    e,
                    Event::LoggedIn { .. }
                        | Event::LoginFailed(_)
                        | Event::TwoFactorRequired { .. }
                )
            })
            .0
        };
        nas.send(|s, c, b| s.login_with_two_factor(c.now(), "erin", "erin-pass", "backup-0001", b));
        assert!(matches!(outcome(&mut nas), Event::LoggedIn { .. }));
        // Spent: the same code is refused (after the delay).
        nas.send(|s, c, b| s.login_with_two_factor(c.now(), "erin", "erin-pass", "backup-0001", b));
        assert_eq!(
            outcome(&mut nas),
            Event::LoginFailed(LoginError::InvalidTwoFactorCode)
        );
        // The refused code leaves the login open for another one.
        nas.send(|s, c, b| s.submit_two_factor(c.now(), "backup-0002", b));
        assert!(matches!(outcome(&mut nas), Event::LoggedIn { .. }));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_past_its_deadline_fails_and_the_connection_is_desynchronized() {
    let sim = emulator(SimConfig {
        bad_password_delay: StdDuration::from_millis(1500),
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let config = Config {
            request_timeout: Duration::from_millis(400),
            ..Config::default()
        };
        let mut nas = CfmsLink::connect(&url, config, os_entropy());
        nas.server_info();
        // The clock the session sees counts whole milliseconds (truncated),
        // so the deadline may fall up to 1 ms before 400 ms of real time
        // after the send: measure from before the send, allow that 1 ms.
        let start = StdInstant::now();
        let login = nas.send(|s, c, b| s.login(c.now(), "admin", "wrong", b));
        let (_, all) = nas.wait_for(3 * SECS, |s| {
            matches!(s.event(), Some(Event::Desynchronized(_)))
        });
        let took = start.elapsed();
        assert!(
            (StdDuration::from_millis(399)..StdDuration::from_millis(1500)).contains(&took),
            "deadline after {took:?}"
        );
        let events: Vec<Event> = all.iter().filter_map(|s| s.event().copied()).collect();
        assert_eq!(
            events,
            [
                Event::RequestFailed {
                    seq: login,
                    error: RequestError::Timeout
                },
                Event::Desynchronized(Desync::Timeout),
            ]
        );
        // A late answer could be taken for the next request's: refuse to send.
        let mut buf = [0u8; 256];
        assert_eq!(
            nas.session.server_info(nas.clock.now(), &mut buf),
            Err(Error::Broken)
        );
        // The late 401 still arrives; it is refused, not matched to anything.
        let (late, _) = nas.wait_for(3 * SECS, |s| matches!(s, Seen::Refused(_)));
        assert_eq!(late, Seen::Refused(Error::Unsolicited));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_server_info_notices_lockdown_without_a_listener() {
    let sim = emulator(quick(SimConfig::default())).await;
    let url = sim.url();
    let control = sim.clone();
    client(move || {
        let config = Config {
            keep_alive: Some(Duration::from_millis(300)),
            ..Config::default()
        };
        let mut nas = CfmsLink::connect(&url, config, os_entropy());
        nas.login("admin", "admin");
        assert_eq!(nas.session.lockdown(), Some(false));
        control.set_lockdown(true);
        // No listener, no request from the application: the session's own
        // quiet server_info learns it.
        let (event, _) = nas.wait_event(3 * SECS, |e| matches!(e, Event::Lockdown { .. }));
        assert_eq!(event, Event::Lockdown { on: true });
        assert_eq!(nas.session.lockdown(), Some(true));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_refreshed_before_exp_by_the_session_and_new_token_works() {
    let lifetime = StdDuration::from_secs(2);
    let sim = emulator(quick(SimConfig {
        token_lifetime: lifetime,
        ..SimConfig::default()
    }))
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        let logged_in = StdInstant::now();
        let first = nas.session.token().to_owned();

        // Nobody calls refresh_token: the timer does, at 80 % of 2 s.
        let (event, _) = nas.wait_event(3 * SECS, |e| {
            matches!(
                e,
                Event::TokenRefreshed { .. } | Event::TokenRejected { .. }
            )
        });
        let refreshed_after = logged_in.elapsed();
        let Event::TokenRefreshed { expires_in } = event else {
            panic!("refresh failed: {event:?}")
        };
        assert!(
            refreshed_after < lifetime,
            "refreshed only after {refreshed_after:?}"
        );
        assert!(
            expires_in.total_millis() > 1500,
            "new lifetime {expires_in:?}"
        );
        let second = nas.session.token().to_owned();
        assert_ne!(first, second, "a refresh hands out a new token");

        // Past the first token's exp, requests still pass: the new token is used.
        nas.idle((lifetime + StdDuration::from_millis(200)).saturating_sub(logged_in.elapsed()));
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (status, body) = nas.reply(seq);
        assert_eq!(status, Status::Ok, "{body}");
        assert!(nas.session.is_logged_in());
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_past_exp_is_rejected_and_the_session_logs_in_again_with_the_kept_password() {
    let lifetime = StdDuration::from_secs(2);
    let sim = emulator(quick(SimConfig {
        token_lifetime: lifetime,
        ..SimConfig::default()
    }))
    .await;
    let url = sim.url();
    client(move || {
        let config = Config {
            refresh_at_percent: 100,
            ..Config::default()
        };
        let mut nas = CfmsLink::connect(&url, config, os_entropy());
        nas.login("admin", "admin");
        let stale = nas.session.token().to_owned();
        // A device that slept through its refresh: nothing is pumped.
        std::thread::sleep(lifetime + StdDuration::from_millis(300));

        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (_, all) = nas.wait_for(5 * SECS, |s| {
            matches!(
                s.event(),
                Some(Event::LoggedIn { .. } | Event::LoginFailed(_))
            )
        });
        let reply = all.iter().find_map(|s| match s {
            Seen::Event {
                event: Event::Reply { seq: r, status },
                body,
            } if *r == seq => Some((*status, body.clone())),
            _ => None,
        });
        let (status, body) = reply.unwrap_or_else(|| panic!("no reply to the listing: {all:#?}"));
        assert!(
            matches!(status, Status::Unauthorized | Status::Forbidden),
            "{status:?}"
        );
        assert_eq!(
            cfms_support::json(&body.expect("body"))["message"],
            "Invalid user or token"
        );
        assert!(
            all.iter()
                .any(|s| s.event() == Some(&Event::TokenRejected { relogin: true })),
            "{all:#?}"
        );
        assert!(
            matches!(
                all.last().and_then(Seen::event),
                Some(Event::LoggedIn { .. })
            ),
            "{all:#?}"
        );
        assert_ne!(nas.session.token(), stale);

        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (status, body) = nas.reply(seq);
        assert_eq!(status, Status::Ok, "{body}");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_falling_due_during_a_download_waits_for_its_end_then_relogin_replaces_the_expired_token()
 {
    const CHUNK: usize = 64 * 1024;
    let lifetime = StdDuration::from_secs(1);
    let sim = emulator(quick(SimConfig {
        chunk_size: CHUNK,
        token_lifetime: lifetime,
        ..SimConfig::default()
    }))
    .await;
    let data: Vec<u8> = (0..16 * CHUNK).map(|i| (i % 241) as u8).collect();
    let id = sim.put_document(None, "long.bin", data.clone());
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        let logged_in = StdInstant::now();
        let task = nas.download_task(&id);
        let seq = nas.start_download(&task);
        nas.wait_event(
            5 * SECS,
            |e| matches!(e, Event::DownloadChunk { seq: s, index: 0, .. } if *s == seq),
        );
        // The application is slow to read: the refresh falls due (80 %)
        // and the token expires while chunks are still on their way.
        std::thread::sleep(
            (lifetime + StdDuration::from_millis(300)).saturating_sub(logged_in.elapsed()),
        );

        // Nothing may be sent behind a transfer, so the download ends intact…
        let (end, all) = nas.wait_for(10 * SECS, |s| {
            matches!(
                s.event(),
                Some(Event::DownloadFinished { .. } | Event::DownloadFailed { .. })
            )
        });
        assert!(
            !all.iter().any(|s| matches!(
                s.event(),
                Some(Event::TokenRefreshed { .. } | Event::TokenRejected { .. })
            )),
            "{all:#?}"
        );
        let Some(Event::DownloadFinished { key, .. }) = end.event() else {
            panic!("download failed: {end:?}")
        };
        assert!(nas.decrypt(key).expect("verifies") == data);

        // …and only then is the refresh sent: too late, so the session logs
        // in again with the kept password.
        let (_, all) = nas.wait_for(5 * SECS, |s| {
            matches!(
                s.event(),
                Some(Event::LoggedIn { .. } | Event::LoginFailed(_))
            )
        });
        let events: Vec<Event> = all.iter().filter_map(|s| s.event().copied()).collect();
        assert_eq!(
            events[0],
            Event::TokenRejected { relogin: true },
            "{all:#?}"
        );
        assert!(matches!(events.last(), Some(Event::LoggedIn { .. })));
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        assert_eq!(nas.reply(seq).0, Status::Ok);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_push_between_request_and_answer_is_an_event_and_answers_stay_matched() {
    let sim = emulator(SimConfig {
        bad_password_delay: StdDuration::from_millis(800),
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    let control = sim.clone();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.server_info();
        let seq = nas.send(|s, c, b| s.register_listener(c.now(), b));
        assert_eq!(nas.reply(seq).0, Status::Ok);

        // The wrong password holds its answer back; a server_info queues behind it.
        nas.send(|s, c, b| s.login(c.now(), "admin", "wrong", b));
        let info = nas.send(|s, c, b| s.server_info(c.now(), b));
        let start = StdInstant::now();
        while start.elapsed() < StdDuration::from_millis(200) {
            assert_eq!(nas.pump(StdDuration::from_millis(20)), vec![]);
        }
        control.set_lockdown(true);

        let (_, all) = nas.wait_for(
            5 * SECS,
            |s| matches!(s.event(), Some(Event::ServerInfo { seq: Some(s), .. }) if *s == info),
        );
        let events: Vec<Event> = all.iter().filter_map(|s| s.event().copied()).collect();
        assert_eq!(
            events,
            vec![
                Event::Lockdown { on: true },
                Event::LoginFailed(LoginError::InvalidCredentials),
                Event::ServerInfo {
                    seq: Some(info),
                    protocol_version: 3,
                    lockdown: true
                },
            ],
            "everything seen: {all:#?}"
        );
        assert_eq!(nas.session.lockdown(), Some(true));

        control.set_lockdown(false);
        nas.wait_event(5 * SECS, |e| *e == Event::Lockdown { on: false });
        assert_eq!(nas.session.lockdown(), Some(false));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_answers_999_to_forbidden_actions_but_lets_login_through() {
    let sim = emulator(quick(SimConfig {
        users: vec![UserSpec::admin("admin"), UserSpec::user("bob", "bob-pass")],
        ..SimConfig::default()
    }))
    .await;
    let url = sim.url();
    let control = sim.clone();
    client(move || {
        control.set_lockdown(true);
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        // login is on the lockdown allow-list.
        nas.login("bob", "bob-pass");
        assert_eq!(nas.session.lockdown(), Some(true));
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (status, body) = nas.reply(seq);
        assert_eq!(status, Status::Lockdown);
        assert_eq!(status.code(), 999);
        assert_eq!(body["message"], "lockdown");
        // The 999 is not a token rejection: the session stays logged in.
        assert!(nas.session.is_logged_in());

        control.set_lockdown(false);
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        assert_eq!(nas.reply(seq).0, Status::Ok);
    })
    .await;
    sim.shutdown().await;
}

/// Upload every size, download it again and compare byte for byte.
fn round_trip(sim: &Handle, config: Config, sizes: &[usize], chunk_size: usize) {
    let frame = if sim.config().protocol_version >= 4 {
        config.upload_frame
    } else {
        8192
    };
    let mut nas = CfmsLink::connect(&sim.url(), config, os_entropy());
    nas.login("admin", "admin");
    for &size in sizes {
        // Not a repeating pattern, so misplaced bytes cannot go unnoticed.
        let data: Vec<u8> = (0..size)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let title = format!("file-{size}.bin");
        let id = nas.upload(&title, &data);
        // An empty file is answered `stop`: no frames at all.
        let expected_frame = (size > 0).then_some(frame);
        assert_eq!(nas.frame_size, expected_frame, "{size} B");
        // What the server stored, seen from its side.
        assert!(
            sim.document_content(&id).as_deref() == Some(&data[..]),
            "{size} B stored differently"
        );
        let pieces_before = nas.pieces;
        let d = nas.download(&id);
        let pieces = nas.pieces - pieces_before;
        let key = d
            .key
            .unwrap_or_else(|e| panic!("download of {size} B failed: {e}"));
        let total = size.div_ceil(chunk_size);
        assert_eq!(d.started, Some((size as u64, total as u32)), "header");
        assert_eq!(key.total_chunks as usize, total);
        assert_eq!(key.chunk_size as usize, chunk_size);
        let expected: Vec<(u32, u32)> = (0..total)
            .map(|i| (i as u32, (size - i * chunk_size).min(chunk_size) as u32))
            .collect();
        assert_eq!(d.chunks, expected, "chunks of {size} B");
        assert_eq!(nas.ciphertext.len(), size);
        // Chunk messages larger than the 64 KiB receive buffer arrive in
        // pieces (a 2 MiB chunk is about 2.8 MB of JSON).
        if chunk_size.min(size) * 4 / 3 > cfms_support::WS_RX {
            assert!(
                pieces > total,
                "{size} B: {pieces} pieces for {total} chunks"
            );
        }
        let plain = nas
            .decrypt(&key)
            .unwrap_or_else(|e| panic!("{size} B: {e}"));
        assert!(plain == data, "{size} B differ after the round trip");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_download_is_byte_identical_at_0_1_8192_8193_bytes_and_5_mib() {
    const CHUNK: usize = 256 * 1024;
    let sim = emulator(quick(SimConfig {
        chunk_size: CHUNK,
        ..SimConfig::default()
    }))
    .await;
    let peer = sim.clone();
    client(move || {
        round_trip(
            &peer,
            Config::default(),
            &[0, 1, 8192, 8193, 5 * 1024 * 1024],
            CHUNK,
        )
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_streams_2_mib_chunks_through_a_64_kib_receive_buffer() {
    let sim = emulator(quick(SimConfig::default())).await;
    assert_eq!(sim.config().chunk_size, 2 * 1024 * 1024);
    let peer = sim.clone();
    client(move || {
        round_trip(
            &peer,
            Config::default(),
            &[5 * 1024 * 1024],
            2 * 1024 * 1024,
        )
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_frames_follow_the_ready_threshold_from_max_chunk_size_at_protocol_5() {
    const CHUNK: usize = 64 * 1024;
    let sim = emulator(quick(SimConfig {
        protocol_version: 5,
        seed_hello: false,
        chunk_size: CHUNK,
        ..SimConfig::default()
    }))
    .await;
    let peer = sim.clone();
    client(move || {
        // 1000-byte frames: the session announces max_chunk_size 1000, the
        // server answers `ready 1000`, and a file of exactly 1000 bytes ends
        // with an empty frame (`feed` counts them).
        let config = Config {
            upload_frame: 1000,
            ..Config::default()
        };
        round_trip(
            &peer,
            config,
            &[0, 1, 999, 1000, 1001, 3000, 200_000],
            CHUNK,
        )
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_lost_mid_download_fails_the_download_and_a_new_connection_downloads_again() {
    const CHUNK: usize = 64 * 1024;
    let sim = emulator(quick(SimConfig {
        chunk_size: CHUNK,
        ..SimConfig::default()
    }))
    .await;
    let data: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let id = sim.put_document(None, "big.bin", data.clone());
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        let task = nas.download_task(&id);
        let seq = nas.start_download(&task);
        nas.wait_event(
            10 * SECS,
            |e| matches!(e, Event::DownloadChunk { seq: s, index: 0, .. } if *s == seq),
        );
        let seen = nas.drop_transport();
        assert_eq!(
            seen,
            vec![Seen::Event {
                event: Event::DownloadFailed {
                    seq,
                    error: DownloadError::Disconnected
                },
                body: None
            }]
        );

        // The same session on a new connection: server_info, login, download.
        nas.reconnect();
        nas.login("admin", "admin");
        let d = nas.download(&id);
        let key = d.key.expect("second download completes");
        assert!(nas.decrypt(&key).expect("verifies") == data);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_whose_bytes_differ_from_the_announced_sha256_fails_as_source_changed() {
    let sim = emulator(quick(SimConfig::default())).await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        let hashed = vec![7u8; 10_000];
        let mut sent = hashed.clone();
        sent[9_999] = 8; // the file changed between the two passes
        let source = UploadSource {
            size: hashed.len() as u64,
            sha256: Some(sha256_of(&hashed)),
        };
        let (seq, end) = nas.upload_as("changed.bin", source, &sent);
        assert_eq!(
            end,
            Event::UploadFailed {
                seq,
                error: UploadError::SourceChanged {
                    announced: sha256_of(&hashed),
                    sent: sha256_of(&sent),
                }
            }
        );
        // The verdict was consumed: the connection stays aligned.
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (status, body) = nas.reply(seq);
        assert_eq!(status, Status::Ok, "{body}");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_cancels_a_pending_download_task_and_the_failure_names_the_status() {
    let sim = emulator(quick(SimConfig::default())).await;
    let data = vec![42u8; 5000];
    let id = sim.put_document(None, "cancelled.bin", data.clone());
    let url = sim.url();
    let control = sim.clone();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        let task = nas.download_task(&id);
        control.set_lockdown(true);
        control.set_lockdown(false);
        // download_file passes lockdown, but the task was cancelled by it.
        let seq = nas.start_download(&task);
        let d = nas.finish_download(seq);
        assert_eq!(d.started, None);
        assert_eq!(
            d.key,
            Err(format!("{:?}", DownloadError::Server(Status::BadRequest)))
        );
        // A fresh task works on the same connection.
        let d = nas.download(&id);
        let key = d.key.expect("fresh task downloads");
        assert!(nas.decrypt(&key).expect("verifies") == data);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_matched_first_in_first_out() {
    let sim = emulator(quick(SimConfig::default())).await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        // Five requests on the wire before the first answer is read.
        let a = nas.send(|s, c, b| s.create_directory(c.now(), None, "alpha", None, b));
        let unknown = nas.send(|s, c, b| s.request(c.now(), "no_such_action", b"{}", b));
        let b_ = nas.send(|s, c, b| s.create_directory(c.now(), None, "beta", None, b));
        let invalid = nas.send(|s, c, b| s.request(c.now(), "create_directory", b"{}", b));
        let listing = nas.send(|s, c, b| s.list_directory(c.now(), None, b));

        let (_, all) = nas.wait_for(
            5 * SECS,
            |s| matches!(s.event(), Some(Event::Reply { seq, .. }) if *seq == listing),
        );
        let replies: Vec<(Seq, Status, serde_json::Value)> = all
            .iter()
            .filter_map(|s| match s {
                Seen::Event {
                    event: Event::Reply { seq, status },
                    body,
                } => Some((*seq, *status, cfms_support::json(body.as_deref()?))),
                _ => None,
            })
            .collect();
        let order: Vec<(Seq, Status)> = replies.iter().map(|(q, s, _)| (*q, *s)).collect();
        assert_eq!(
            order,
            [
                (a, Status::Ok),
                (unknown, Status::BadRequest),
                (b_, Status::Ok),
                (invalid, Status::BadRequest),
                (listing, Status::Ok),
            ]
        );
        assert_eq!(replies[0].2["data"]["name"], "alpha");
        assert_eq!(replies[1].2["message"], "Unknown action: no_such_action");
        assert_eq!(replies[2].2["data"]["name"], "beta");
        assert_eq!(replies[3].2["data"]["validator"], "required");
        let body = &replies[4].2;
        let mut names: Vec<&str> = body["data"]["folders"]
            .as_array()
            .expect("folders")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["alpha", "beta"]);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_larger_than_the_ws_buffer_is_assembled_and_one_beyond_the_session_buffer_fails_alone()
 {
    let sim = emulator(quick(SimConfig::default())).await;
    for i in 0..600 {
        sim.put_document(None, &format!("document-{i:04}.txt"), vec![b'x'; i % 7]);
    }
    let url = sim.url();
    client(move || {
        // 256 KiB for answers: the ~140 KB listing arrives in WebSocket
        // pieces (64 KiB buffer) and is put together by the session.
        let mut nas = CfmsLink::connect_with_rx(&url, Config::default(), os_entropy(), 256 * 1024);
        nas.login("admin", "admin");
        let pieces = nas.pieces;
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (status, body) = nas.reply(seq);
        assert_eq!(status, Status::Ok);
        assert!(nas.pieces - pieces >= 3, "{} pieces", nas.pieces - pieces);
        let docs = body["data"]["documents"].as_array().expect("documents");
        assert_eq!(docs.len(), 600);

        // 64 KiB for answers: the listing cannot be held. Only that request
        // fails; the next answer still goes to the next request.
        let mut small = CfmsLink::connect(&url, Config::default(), os_entropy());
        small.login("admin", "admin");
        let listing = small.send(|s, c, b| s.list_directory(c.now(), None, b));
        let info = small.send(|s, c, b| s.server_info(c.now(), b));
        let (event, _) = small.wait_event(5 * SECS, |e| {
            matches!(e, Event::RequestFailed { .. } | Event::Reply { .. })
        });
        assert_eq!(
            event,
            Event::RequestFailed {
                seq: listing,
                error: RequestError::ResponseTooLarge {
                    capacity: cfms_support::SESSION_RX
                }
            }
        );
        small.wait_event(
            5 * SECS,
            |e| matches!(e, Event::ServerInfo { seq: Some(s), .. } if *s == info),
        );
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_lost_mid_upload_fails_the_upload_and_further_writes_are_refused() {
    let sim = emulator(quick(SimConfig::default())).await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        let data = vec![3u8; 100_000];
        let source = UploadSource {
            size: data.len() as u64,
            sha256: Some(sha256_of(&data)),
        };
        let (seq, event) = nas.begin_upload("interrupted.bin", source);
        assert_eq!(
            event,
            Event::UploadReady {
                seq,
                frame_size: 8192
            }
        );
        // Three of the thirteen frames go out, then the socket is gone.
        let mut offset = 0;
        for _ in 0..3 {
            let w = nas
                .session
                .upload_write(nas.clock.now(), &data[offset..])
                .expect("sending");
            assert!(w.message_start && w.message_end && w.accepted == 8192);
            let link = nas.link.as_mut().expect("connected");
            link.ws
                .send_binary(&data[offset..offset + w.accepted])
                .expect("ws send");
            link.flush(&nas.clock);
            offset += w.accepted;
        }
        assert_eq!(
            nas.drop_transport(),
            vec![Seen::Event {
                event: Event::UploadFailed {
                    seq,
                    error: UploadError::Disconnected
                },
                body: None
            }]
        );
        assert_eq!(
            nas.session.upload_write(nas.clock.now(), &data[offset..]),
            Err(Error::Upload(UploadWriteError::NotSending))
        );

        // A new connection uploads the whole file under the same session.
        nas.reconnect();
        nas.login("admin", "admin");
        let id = nas.upload("second-try.bin", &data);
        let d = nas.download(&id);
        assert!(nas.decrypt(&d.key.expect("downloads")).expect("verifies") == data);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_chunk_fails_its_hash_check_naming_the_chunk() {
    const CHUNK: usize = 64 * 1024;
    let sim = emulator(quick(SimConfig {
        chunk_size: CHUNK,
        ..SimConfig::default()
    }))
    .await;
    let data: Vec<u8> = (0..4 * CHUNK + 100).map(|i| (i % 251) as u8).collect();
    let id = sim.put_document(None, "victim.bin", data.clone());
    let url = sim.url();
    let control = sim.clone();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");

        for fault in [
            DownloadFault::FlipCiphertext { index: 2 },
            DownloadFault::FlipHash { index: 3 },
        ] {
            control.set_download_fault(Some(fault));
            let d = nas.download(&id);
            let key = d.key.expect("the transfer itself completes");
            let index = match fault {
                DownloadFault::FlipCiphertext { index } | DownloadFault::FlipHash { index } => {
                    index as u32
                }
            };
            assert_eq!(
                nas.decrypt(&key),
                Err(DecryptError::ChunkHashMismatch { index }),
                "{fault:?}"
            );
        }

        control.set_download_fault(None);
        let d = nas.download(&id);
        let key = d.key.expect("clean download");
        assert!(nas.decrypt(&key).expect("clean file verifies") == data);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_answers_401_invalid_credentials_after_the_delay() {
    let delay = StdDuration::from_millis(700);
    let sim = emulator(SimConfig {
        bad_password_delay: delay,
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.server_info();
        let start = StdInstant::now();
        nas.send(|s, c, b| s.login(c.now(), "admin", "not-the-password", b));
        let (event, _) = nas.wait_event(5 * SECS, |e| {
            matches!(e, Event::LoggedIn { .. } | Event::LoginFailed(_))
        });
        let took = start.elapsed();
        assert_eq!(event, Event::LoginFailed(LoginError::InvalidCredentials));
        assert!(took >= delay, "answered after {took:?}");
        assert!(!nas.session.is_logged_in());
        // Logged out: authenticated actions are refused locally.
        let mut buf = [0u8; 256];
        assert_eq!(
            nas.session.list_directory(nas.clock.now(), None, &mut buf),
            Err(Error::NotLoggedIn)
        );
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_password_answers_403_until_set_passwd_then_login_works() {
    let sim = emulator(quick(SimConfig {
        users: vec![UserSpec {
            password_expired: true,
            ..UserSpec::user("dave", "initial-pass")
        }],
        ..SimConfig::default()
    }))
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.server_info();
        nas.send(|s, c, b| s.login(c.now(), "dave", "initial-pass", b));
        let (event, _) = nas.wait_event(5 * SECS, |e| {
            matches!(e, Event::LoggedIn { .. } | Event::LoginFailed(_))
        });
        assert_eq!(event, Event::LoginFailed(LoginError::PasswordExpired));

        let seq =
            nas.send(|s, c, b| s.set_passwd(c.now(), "dave", "initial-pass", "Fresh-Pass-42", b));
        let (status, body) = nas.reply(seq);
        assert_eq!(status, Status::Ok, "{body}");

        nas.send(|s, c, b| s.login(c.now(), "dave", "Fresh-Pass-42", b));
        let (event, _) = nas.wait_event(5 * SECS, |e| {
            matches!(e, Event::LoggedIn { .. } | Event::LoginFailed(_))
        });
        assert!(matches!(event, Event::LoggedIn { .. }), "{event:?}");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_at_protocol_12_is_refused_clearly() {
    let sim = emulator(quick(SimConfig {
        // The emulator speaks the binary framing from 13 on; 12 is only reported.
        protocol_version: 12,
        ..SimConfig::default()
    }))
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.send(|s, c, b| s.server_info(c.now(), b));
        let (event, _) = nas.wait_event(5 * SECS, |e| {
            matches!(
                e,
                Event::ServerInfo { .. } | Event::ProtocolUnsupported { .. }
            )
        });
        assert_eq!(event, Event::ProtocolUnsupported { version: Some(12) });
        assert_eq!(nas.session.protocol_version(), None);
        let mut buf = [0u8; 512];
        assert_eq!(
            nas.session
                .login(nas.clock.now(), "admin", "admin", &mut buf),
            Err(Error::ProtocolUnsupported { version: Some(12) })
        );
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_closes_with_1000_and_the_pending_request_fails_as_disconnected() {
    let sim = emulator(quick(SimConfig::default())).await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        // The server reads in order: the broken message comes first, so the
        // request behind it is never answered.
        nas.send_raw_text(r#"{"action": "server_info", "data": {"#);
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (_, all) = nas.wait_for(5 * SECS, |s| {
            matches!(
                s,
                Seen::Event {
                    event: Event::RequestFailed { .. } | Event::Reply { .. },
                    ..
                }
            )
        });
        assert_eq!(
            all,
            vec![
                Seen::Closed(Closed::Clean {
                    code: Some(CloseCode::NORMAL)
                }),
                Seen::Event {
                    event: Event::RequestFailed {
                        seq,
                        error: RequestError::Disconnected
                    },
                    body: None
                },
            ]
        );
        assert!(nas.link.is_none(), "the transport is dropped");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_fails_pending_requests_and_a_new_connection_resumes() {
    let sim = emulator(SimConfig {
        bad_password_delay: StdDuration::from_secs(2),
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    let control = sim.clone();
    client(move || {
        let mut nas = CfmsLink::connect(&url, Config::default(), os_entropy());
        nas.login("admin", "admin");
        // In flight: a login held back by the delay, a listing queued behind it.
        let login = nas.send(|s, c, b| s.login(c.now(), "admin", "wrong", b));
        let listing = nas.send(|s, c, b| s.server_info(c.now(), b));
        nas.idle(StdDuration::from_millis(100));
        control.drop_connections();
        let (_, all) = nas.wait_for(5 * SECS, |s| {
            matches!(
                s,
                Seen::Event {
                    event: Event::RequestFailed { seq, .. },
                    ..
                } if *seq == listing
            )
        });
        let failed: Vec<&Seen> = all
            .iter()
            .filter(|s| !matches!(s, Seen::Closed(_)))
            .collect();
        assert_eq!(
            failed,
            vec![
                &Seen::Event {
                    event: Event::RequestFailed {
                        seq: login,
                        error: RequestError::Disconnected
                    },
                    body: None
                },
                &Seen::Event {
                    event: Event::RequestFailed {
                        seq: listing,
                        error: RequestError::Disconnected
                    },
                    body: None
                },
            ]
        );
        assert!(
            all.iter()
                .any(|s| matches!(s, Seen::Closed(Closed::Abnormal))),
            "{all:?}"
        );
        // Nothing is left waiting; a new connection starts with server_info.
        assert_eq!(nas.session.protocol_version(), None);
        nas.reconnect();
        nas.login("admin", "admin");
        let seq = nas.send(|s, c, b| s.list_directory(c.now(), None, b));
        assert_eq!(nas.reply(seq).0, Status::Ok);
    })
    .await;
    sim.shutdown().await;
}
