//! `CfmsClient` against the protocol-13 emulator's replay protection
//! (`cfms-13.md` §3 step 5, code 1001): a stale timestamp after the
//! server's clock was stepped is recovered by one resend with the clock
//! learnt from the refusal; a duplicate nonce is reported by name and not
//! resent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use naslink_sim::cfms::{Clock, Config, Handle, Server};
use naslink_tokio::cfms::{CfmsClient, CfmsError, CfmsOptions};
use naslink_tokio::core::cfms::p13::Replay;
use serde_json::json;

async fn emulator(clock: Clock) -> Handle {
    Server::start(Config {
        protocol_version: 13,
        bad_password_delay: Duration::from_millis(50),
        clock,
        ..Config::default()
    })
    .await
    .expect("emulator starts")
}

fn options(sim: &Handle) -> CfmsOptions {
    let mut options = CfmsOptions::new(&sim.url(), "admin", "admin");
    options.request_timeout = Duration::from_secs(5);
    options
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test finished in time")
}

async fn list_root(nas: &CfmsClient) -> Result<serde_json::Value, CfmsError> {
    nas.request("list_directory", &json!({ "folder_id": null }))
        .await
}

#[tokio::test]
async fn a_stale_timestamp_is_sent_again_once_with_the_servers_clock() {
    bounded(async {
        let clock = Clock::manual(unix_now());
        let sim = emulator(clock.clone()).await;
        let nas = CfmsClient::connect(options(&sim)).await.unwrap();
        list_root(&nas).await.unwrap();
        assert_eq!(sim.replay_refusals(), 0);
        // The server's clock is stepped a minute ahead (or this host slept
        // while its monotonic clock stood still): the client's stamps,
        // carried forward from the last answer, are now a minute behind.
        clock.advance(60.0);
        let answer = list_root(&nas).await.unwrap();
        assert_eq!(answer["code"], 200);
        assert_eq!(sim.replay_refusals(), 1, "refused once, then served");
        // The clock learnt from the refusal stamps what follows.
        list_root(&nas).await.unwrap();
        assert_eq!(sim.replay_refusals(), 1);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_nonce_fails_by_name_and_is_not_resent() {
    bounded(async {
        let sim = emulator(Clock::system()).await;
        let nas = CfmsClient::connect(options(&sim)).await.unwrap();
        sim.reject_next_nonce();
        let error = list_root(&nas).await.unwrap_err();
        assert!(
            matches!(
                error,
                CfmsError::Replay {
                    kind: Replay::DuplicateNonce,
                    ..
                }
            ),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(text.contains("nonce") && text.contains("1001"), "{text}");
        assert_eq!(sim.replay_refusals(), 1, "not sent again");
        // The connection serves the next request.
        list_root(&nas).await.unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_timestamp_stale_again_after_the_resend_fails_by_name_without_a_loop() {
    bounded(async {
        let clock = Clock::manual(unix_now());
        let sim = emulator(clock.clone()).await;
        let nas = CfmsClient::connect(options(&sim)).await.unwrap();
        // The server holds each listing 300 ms before its replay check (as
        // the real one does when its database pool stalls) while its clock
        // races ahead: every stamp is stale by the time it is checked.
        sim.set_action_delay("list_directory", Some(Duration::from_millis(300)));
        let racing = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                clock.advance(20.0);
            }
        });
        let error = list_root(&nas).await.unwrap_err();
        racing.abort();
        assert!(
            matches!(
                error,
                CfmsError::Replay {
                    kind: Replay::StaleTimestamp,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("timestamp"), "{error}");
        assert_eq!(sim.replay_refusals(), 2, "sent again once, not more");
        sim.shutdown().await;
    })
    .await;
}
