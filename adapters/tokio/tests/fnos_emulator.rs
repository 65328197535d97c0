//! `FnosClient` against the fnOS emulator on loopback: many requests in
//! flight from many tasks, per-request deadlines, dropped request futures,
//! a forced disconnect that fails requests in flight and logs in again
//! with the stored token, the access-code gate and the HTTPS redirect.

use std::time::Duration;

use futures_util::StreamExt;
use naslink_core::fnos::{Errno, LoginMethod};
use naslink_sim::fnos::{Config, Faults, Push, Redirect};
use naslink_tokio::fnos::{FnosClient, FnosError, FnosEvent, FnosOptions};
use naslink_tokio::link::ConnectError;

mod fnos_support;
use fnos_support::{emulator, options};

/// A TCP relay in front of the emulator whose connections the test can
/// cut, so that a request is surely in flight when the link dies.
struct Relay {
    url: String,
    cut: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "ws://{}/websocket?type=main",
            listener.local_addr().unwrap()
        );
        let cut = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handles = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                handles.lock().unwrap().push(task.abort_handle());
            }
        });
        Relay { url, cut }
    }

    /// Drop every relayed connection at the TCP level.
    fn cut(&self) {
        for task in self.cut.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// Bound every test so a hang fails instead of blocking the suite.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    fnos_support::bounded(20, f).await
}

#[tokio::test]
async fn replies_are_matched_by_reqid_with_many_requests_in_flight_from_many_tasks() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&sim.url(), "admin"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let nas = nas.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    let r = nas
                        .request("appcgi.sysinfo.getHostName", None)
                        .await
                        .unwrap();
                    assert_eq!(r.get("hostName").and_then(|v| v.as_str()), Some("fnos-sim"));
                } else {
                    let r = nas.request("user.info", None).await.unwrap();
                    assert!(r.last().get("result").is_some(), "{r:?}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn multi_frame_listing_is_gathered_until_the_final_frame() {
    bounded(async {
        let sim = emulator(Config {
            entries_per_frame: 1,
            ..Config::default()
        })
        .await;
        let nas = FnosClient::connect(options(&sim.url(), "admin"))
            .await
            .unwrap();
        let reply = nas.request("file.ls", None).await.unwrap();
        assert!(reply.frames().len() > 1, "{reply:?}");
        assert!(reply.merged("files").len() >= reply.frames().len() - 1);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_request_past_its_deadline_fails_and_the_connection_keeps_working() {
    bounded(async {
        let sim = emulator(Config {
            faults: Faults {
                answer_delay: Duration::from_millis(150),
                ..Faults::default()
            },
            ..Config::default()
        })
        .await;
        let nas = FnosClient::connect(options(&sim.url(), "admin"))
            .await
            .unwrap();
        let late = nas
            .request_with_timeout(
                "appcgi.sysinfo.getHostName",
                None,
                Duration::from_millis(20),
            )
            .await;
        assert!(matches!(late, Err(FnosError::TimedOut)), "{late:?}");
        let ok = nas
            .request("appcgi.sysinfo.getHostName", None)
            .await
            .unwrap();
        assert_eq!(
            ok.get("hostName").and_then(|v| v.as_str()),
            Some("fnos-sim")
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn dropping_a_request_future_leaves_the_connection_usable() {
    bounded(async {
        let sim = emulator(Config {
            faults: Faults {
                answer_delay: Duration::from_millis(100),
                ..Faults::default()
            },
            ..Config::default()
        })
        .await;
        let nas = FnosClient::connect(options(&sim.url(), "admin"))
            .await
            .unwrap();
        for _ in 0..8 {
            let abandoned = nas.request("file.ls", None);
            let _ = tokio::time::timeout(Duration::from_millis(5), abandoned).await;
        }
        // The late answers to the abandoned reqids arrive and are ignored.
        let ok = nas
            .request("appcgi.sysinfo.getHostName", None)
            .await
            .unwrap();
        assert_eq!(
            ok.get("hostName").and_then(|v| v.as_str()),
            Some("fnos-sim")
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_dropped_connection_fails_requests_in_flight_then_logs_in_again_with_the_token() {
    bounded(async {
        let sim = emulator(Config {
            faults: Faults {
                answer_delay: Duration::from_millis(500),
                ..Faults::default()
            },
            ..Config::default()
        })
        .await;
        let relay = Relay::start(sim.addr()).await;
        let nas = FnosClient::connect(options(&relay.url, "admin"))
            .await
            .unwrap();
        let mut events = Box::pin(nas.events());
        let in_flight = {
            let nas = nas.clone();
            tokio::spawn(async move { nas.request("appcgi.sysinfo.getHostName", None).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        relay.cut();
        let failed = in_flight.await.unwrap();
        assert!(
            matches!(failed, Err(FnosError::ConnectionLost)),
            "{failed:?}"
        );
        let mut saw_disconnect = false;
        loop {
            match events.next().await.expect("events continue") {
                FnosEvent::Disconnected { .. } => saw_disconnect = true,
                FnosEvent::LoggedIn { method } => {
                    assert_eq!(method, LoginMethod::AuthToken);
                    break;
                }
                _ => {}
            }
        }
        assert!(saw_disconnect);
        let ok = nas
            .request("appcgi.sysinfo.getHostName", None)
            .await
            .unwrap();
        assert_eq!(
            ok.get("hostName").and_then(|v| v.as_str()),
            Some("fnos-sim")
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn pushes_arrive_on_the_event_stream() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&sim.url(), "admin"))
            .await
            .unwrap();
        let mut events = Box::pin(nas.events());
        sim.push(Push::StorageChanged);
        loop {
            if let FnosEvent::Push(p) = events.next().await.unwrap() {
                assert_eq!(p["sysNotify"], "storageChanged");
                break;
            }
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_token_expired_push_is_followed_by_a_fresh_login_on_the_same_connection() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&sim.url(), "admin"))
            .await
            .unwrap();
        let mut events = Box::pin(nas.events());
        sim.push(Push::TokenExpired);
        loop {
            match events.next().await.expect("events continue") {
                FnosEvent::LoggedIn { method } => {
                    assert_eq!(method, LoginMethod::TokenLogin);
                    break;
                }
                FnosEvent::Disconnected { reason } => panic!("no reconnect needed: {reason}"),
                _ => {}
            }
        }
        // Signed, login-only: works only once logged in again.
        let ok = nas.request("appcgi.sysinfo.getUptime", None).await.unwrap();
        assert!(ok.get("uptime").and_then(|v| v.as_u64()).is_some());
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_kicked_push_stops_the_client_without_reconnecting() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&sim.url(), "admin"))
            .await
            .unwrap();
        let mut events = Box::pin(nas.events());
        sim.push(Push::Kicked);
        loop {
            match events.next().await.expect("events continue") {
                FnosEvent::LoginFailed(why) => {
                    assert!(why.contains("kicked"), "{why}");
                    break;
                }
                FnosEvent::Reconnecting { .. } | FnosEvent::LoggedIn { .. } => {
                    panic!("a kicked client must not log in again")
                }
                _ => {}
            }
        }
        let after = nas.request("appcgi.sysinfo.getHostName", None).await;
        assert!(after.is_err(), "{after:?}");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_its_errno() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let refused = FnosClient::connect(options(&sim.url(), "nope")).await;
        match refused {
            Err(FnosError::LoginRefused { errno }) => {
                assert_eq!(errno, Some(Errno::WrongUserOrPassword));
            }
            other => panic!("{other:?}"),
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_host_is_a_connect_error() {
    bounded(async {
        // Port 1 is privileged and outside the ephemeral range that the
        // emulators of tests running alongside bind: nothing listens there.
        let url = "ws://127.0.0.1:1/websocket?type=main".to_owned();
        // Refused connections may be passing: tried `first_attempts` times.
        match FnosClient::connect(options(&url, "admin")).await {
            Err(e @ FnosError::ConnectFailed { attempts: 3, .. }) => {
                assert!(e.to_string().contains("cannot connect"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn the_https_redirect_is_reported_with_its_location() {
    bounded(async {
        let sim = emulator(Config {
            https_redirect: Some(Redirect::default()),
            ..Config::default()
        })
        .await;
        let failed = FnosClient::connect(options(&sim.url(), "admin")).await;
        match failed {
            Err(FnosError::Connect(ConnectError::Redirected { status, location })) => {
                assert_eq!(status, 301);
                assert!(location.starts_with("https://"), "{location}");
            }
            other => panic!("{other:?}"),
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_access_code_gate_is_passed_with_the_code_and_refused_without() {
    bounded(async {
        let sim = emulator(Config {
            access_code: Some("1234".into()),
            ..Config::default()
        })
        .await;
        let refused = FnosClient::connect(options(&sim.url(), "admin")).await;
        assert!(
            matches!(
                refused,
                Err(FnosError::Connect(ConnectError::AccessCodeRequired))
            ),
            "{refused:?}"
        );
        let mut with_code = options(&sim.url(), "admin");
        with_code.link.access_code = Some("1234".into());
        let nas = FnosClient::connect(with_code).await.unwrap();
        nas.request("appcgi.sysinfo.getHostName", None)
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn two_factor_logins_ask_the_source_again_after_a_wrong_code() {
    use naslink_tokio::TwoFactor;
    bounded(async {
        let sim = emulator(Config {
            two_factor_code: Some("246810".into()),
            ..Config::default()
        })
        .await;

        // No source: the login says what it needs.
        let none = FnosClient::connect(options(&sim.url(), "admin")).await;
        assert!(
            matches!(none, Err(FnosError::TwoFactorRequired)),
            "{none:?}"
        );

        // A fixed wrong code is offered once, and its refusal is the error.
        let mut wrong = options(&sim.url(), "admin");
        wrong.two_factor = Some(TwoFactor::fixed("000000"));
        let refused = FnosClient::connect(wrong).await;
        assert!(
            matches!(
                refused,
                Err(FnosError::LoginRefused {
                    errno: Some(Errno::WrongTwoFactorCode)
                })
            ),
            "{refused:?}"
        );

        // A person who mistypes once: asked again, then logged in.
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        let mut typed = options(&sim.url(), "admin");
        typed.two_factor = Some(TwoFactor::from_fn(move |attempt| {
            log.lock().unwrap().push(attempt);
            async move { Some(if attempt == 1 { "135791" } else { "246810" }.to_owned()) }
        }));
        let nas = FnosClient::connect(typed).await.unwrap();
        assert_eq!(*asked.lock().unwrap(), [1, 2]);
        nas.request("user.info", None).await.unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_idempotent_request_is_sent_again_after_the_reconnect_others_fail() {
    bounded(async {
        let sim = emulator(Config {
            faults: Faults {
                // Long enough that both requests are surely written and
                // still unanswered when the link is cut, even on a busy
                // machine; short enough for the re-login (each frame waits).
                answer_delay: Duration::from_millis(500),
                ..Faults::default()
            },
            ..Config::default()
        })
        .await;
        let relay = Relay::start(sim.addr()).await;
        let nas = FnosClient::connect(options(&relay.url, "admin"))
            .await
            .unwrap();
        let read = {
            let nas = nas.clone();
            tokio::spawn(async move {
                nas.request_idempotent("appcgi.sysinfo.getHostName", None)
                    .await
            })
        };
        let plain = {
            let nas = nas.clone();
            tokio::spawn(async move { nas.request("appcgi.sysinfo.getHostName", None).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        relay.cut();
        let plain = plain.await.unwrap();
        assert!(matches!(plain, Err(FnosError::ConnectionLost)), "{plain:?}");
        let read = read.await.unwrap().expect("answered on the new connection");
        assert_eq!(
            read.get("hostName").and_then(|v| v.as_str()),
            Some("fnos-sim")
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn time_spent_typing_a_two_factor_code_does_not_count_against_the_connect_timeout() {
    use naslink_tokio::TwoFactor;
    bounded(async {
        let sim = emulator(Config {
            two_factor_code: Some("246810".into()),
            ..Config::default()
        })
        .await;
        let mut slow = options(&sim.url(), "admin");
        slow.connect_timeout = Duration::from_secs(1);
        slow.two_factor = Some(TwoFactor::from_fn(|_| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Some("246810".to_owned())
        }));
        let nas = FnosClient::connect(slow).await.unwrap();
        nas.request("user.info", None).await.unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_device_token_logs_in_without_the_password_until_it_is_revoked() {
    bounded(async {
        let server = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&server.url(), "admin"))
            .await
            .unwrap();
        let token = nas.device_token().await.unwrap();
        assert_eq!(token.user(), "admin");

        let mut with_token = FnosOptions::with_device_token(&server.url(), token.clone());
        with_token.request_timeout = Duration::from_secs(5);
        assert!(with_token.password.is_empty(), "no password at all");
        let device = FnosClient::connect(with_token.clone()).await.unwrap();
        let info = device.request("user.info", None).await.unwrap();
        assert_eq!(info.last()["result"], "succ");

        assert_eq!(server.revoke_long_tokens(), 1);
        match FnosClient::connect(with_token).await {
            Err(FnosError::DeviceTokenRefused { errno }) => {
                assert_eq!(errno, Some(Errno::InvalidCredential));
            }
            other => panic!("expected DeviceTokenRefused, got {other:?}"),
        }
    })
    .await;
}
