//! End to end: the core's WebSocket client and fnOS session over a real TCP
//! socket against the fnOS emulator of `naslink-sim` (which shares no code
//! with the core). Login key exchange, signed requests, a multi-frame
//! `file.ls`, a push, the heartbeat, a forced disconnect and the token
//! re-login afterwards.

mod support;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use naslink_core::connection::Event;
use naslink_core::fnos::heartbeat::HeartbeatConfig;
use naslink_core::fnos::{self, LoginMethod, Request, Session, Status};
use naslink_core::random::Entropy;
use naslink_core::time::Duration;
use naslink_core::ws;
use naslink_sim::fnos::{Config as SimConfig, Handle, KeySource, Push as SimPush, Server};
use support::{Clock, ConnLink, os_entropy, unix_secs};

/// What the session reported, owned so tests can keep it.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    LoggedIn(LoginMethod),
    Reply {
        reqid: String,
        ok: bool,
        last: bool,
        json: String,
    },
    Push(String),
    Aborted(String),
    Dead,
    Other(String),
    Disconnected,
}

struct FnosLink<E: Entropy + Clone> {
    clock: Clock,
    url: String,
    link: Option<ConnLink<Session<'static>, E>>,
    /// The session between connections (a connection holds it while open).
    session: Option<Session<'static>>,
    entropy: E,
}

impl<E: Entropy + Clone> FnosLink<E> {
    fn connect(url: &str, config: fnos::Config<'static>, entropy: E) -> Self {
        let clock = Clock::start();
        let mut session = Session::new(config);
        session.set_unix_time(clock.now(), unix_secs());
        let mut me = FnosLink {
            clock,
            url: url.to_owned(),
            link: None,
            session: Some(session),
            entropy,
        };
        me.reconnect();
        me
    }

    fn reconnect(&mut self) {
        let session = self.session.take().expect("not connected");
        let link = ConnLink::connect(
            &self.clock,
            &self.url,
            ws::Config::default(),
            self.entropy.clone(),
            64 * 1024,
            session,
        );
        self.link = Some(link);
    }

    /// The session, connected or not.
    fn session(&self) -> &Session<'static> {
        match &self.link {
            Some(link) => link.conn.session(),
            None => self.session.as_ref().expect("session"),
        }
    }

    fn send(&mut self, request: &Request<'_>) -> String {
        let link = self.link.as_mut().expect("connected");
        let reqid = link.send(&self.clock, request).expect("request fits");
        reqid.to_string()
    }

    /// One round of I/O and timers; returns what the session reported.
    fn pump(&mut self, wait: StdDuration) -> Vec<Seen> {
        let mut seen = Vec::new();
        let Some(link) = self.link.as_mut() else {
            return seen;
        };
        link.poll_once(&self.clock, wait, |event, text| match event {
            Event::Session(event) => seen.push(describe(event, text.unwrap_or_default())),
            Event::Closed(_) => seen.push(Seen::Disconnected),
            Event::Connected => {}
            other => seen.push(Seen::Other(format!("{other:?}"))),
        });
        if link.is_closed()
            && let Some(link) = self.link.take()
        {
            self.session = Some(link.into_session());
        }
        seen
    }

    /// Pump until `pred` matches something seen, or panic after `limit`.
    fn wait_for(
        &mut self,
        limit: StdDuration,
        mut pred: impl FnMut(&Seen) -> bool,
    ) -> (Seen, Vec<Seen>) {
        let deadline = std::time::Instant::now() + limit;
        let mut all = Vec::new();
        while std::time::Instant::now() < deadline {
            // Keep the whole batch: events after the match matter too.
            let batch = self.pump(StdDuration::from_millis(20));
            let hit = batch.iter().find(|s| pred(s)).cloned();
            all.extend(batch);
            if let Some(hit) = hit {
                return (hit, all);
            }
        }
        panic!("timed out; saw {all:#?}");
    }

    fn login(&mut self) -> LoginMethod {
        match self
            .wait_for(StdDuration::from_secs(10), |s| {
                matches!(s, Seen::LoggedIn(_))
            })
            .0
        {
            Seen::LoggedIn(m) => m,
            _ => unreachable!(),
        }
    }

    fn final_reply(&mut self, reqid: &str) -> (Seen, Vec<Seen>) {
        self.wait_for(
            StdDuration::from_secs(10),
            |s| matches!(s, Seen::Reply { reqid: r, last: true, .. } if r == reqid),
        )
    }
}

fn describe(event: fnos::Event<'_>, text: &str) -> Seen {
    match event {
        fnos::Event::LoggedIn { method, .. } => Seen::LoggedIn(method),
        fnos::Event::Reply(reply) => Seen::Reply {
            reqid: reply
                .reqid_text()
                .as_unescaped()
                .unwrap_or_default()
                .to_owned(),
            ok: reply.status() == Status::Success,
            last: reply.is_final(),
            json: text.to_owned(),
        },
        fnos::Event::Push(push) => Seen::Push(format!("{push:?}")),
        fnos::Event::RequestAborted(reqid) => Seen::Aborted(reqid.to_string()),
        fnos::Event::ConnectionDead { .. } => Seen::Dead,
        other => Seen::Other(format!("{other:?}")),
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("reply is JSON")
}

async fn emulator(config: SimConfig) -> Arc<Handle> {
    Arc::new(
        Server::start(SimConfig {
            key: KeySource::Fixture,
            ..config
        })
        .await
        .expect("emulator starts"),
    )
}

fn quick_heartbeat(interval_ms: u64, limit: u8) -> fnos::Config<'static> {
    let mut config = fnos::Config::new("admin", "admin");
    config.heartbeat = HeartbeatConfig {
        interval: Duration::from_millis(interval_ms),
        missed_pong_limit: limit,
    };
    config
}

/// Run blocking client code beside the emulator's runtime.
async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_then_signed_front_panel_requests_succeed() {
    let sim = emulator(SimConfig {
        host_name: "panel-nas".into(),
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = FnosLink::connect(&url, fnos::Config::new("admin", "admin"), os_entropy());
        assert_eq!(nas.login(), LoginMethod::Password);
        assert_eq!(nas.session().state(), fnos::State::Ready);

        let id = nas.send(&Request::get_host_name());
        let (reply, _) = nas.final_reply(&id);
        let Seen::Reply {
            ok: true,
            json: text,
            ..
        } = reply
        else {
            panic!("host name failed: {reply:?}")
        };
        assert_eq!(json(&text)["data"]["hostName"], "panel-nas");

        // Admin-only live figures go through the signature check.
        let items = ["cpuBusy", "memPercent", "netSpeed", "storeSpeed"];
        let id = nas.send(&Request::resmon_gen(&items));
        let (reply, _) = nas.final_reply(&id);
        let Seen::Reply {
            ok: true,
            json: text,
            ..
        } = reply
        else {
            panic!("resmon.gen failed: {reply:?}")
        };
        let cpu = json(&text)["data"]["item"]["cpuBusy"]
            .as_f64()
            .expect("cpuBusy is a number");
        assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");

        let id = nas.send(&Request::get_user_storage());
        let (reply, _) = nas.final_reply(&id);
        let Seen::Reply {
            ok: true,
            json: text,
            ..
        } = reply
        else {
            panic!("storage failed: {reply:?}")
        };
        let stor = json(&text)["stor"].as_array().expect("stor array").clone();
        assert!(!stor.is_empty());
        assert!(
            stor[0]["fssize"].as_u64().expect("fssize")
                >= stor[0]["frsize"].as_u64().expect("frsize")
        );
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_frame_file_listing_arrives_as_partial_replies_then_a_final_one() {
    let sim = emulator(SimConfig {
        entries_per_frame: 1,
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = FnosLink::connect(&url, fnos::Config::new("admin", "admin"), os_entropy());
        nas.login();
        let id = nas.send(&Request::file_ls(Some("vol1/1000")));
        let (_, seen) = nas.final_reply(&id);
        let frames: Vec<_> = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Reply {
                    reqid,
                    last,
                    json: text,
                    ..
                } if *reqid == id => Some((*last, json(text))),
                _ => None,
            })
            .collect();
        assert!(
            frames.len() >= 3,
            "expected several frames, got {}",
            frames.len()
        );
        assert!(frames[..frames.len() - 1].iter().all(|(last, _)| !last));
        let names: Vec<_> = frames
            .iter()
            .flat_map(|(_, v)| v["files"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect();
        assert!(names.iter().any(|n| n == "Documents"), "listing {names:?}");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_push_reaches_the_application_as_an_event() {
    let sim = emulator(SimConfig::default()).await;
    let url = sim.url();
    let sim_for_push = Arc::clone(&sim);
    client(move || {
        let mut nas = FnosLink::connect(&url, fnos::Config::new("admin", "admin"), os_entropy());
        nas.login();
        sim_for_push.push(SimPush::StorageChanged);
        let (push, _) = nas.wait_for(StdDuration::from_secs(5), |s| matches!(s, Seen::Push(_)));
        assert_eq!(push, Seen::Push("StorageChanged".into()));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_pongs_keep_the_connection_and_missing_pongs_declare_it_dead() {
    let sim = emulator(SimConfig::default()).await;
    let url = sim.url();
    client(move || {
        let mut nas = FnosLink::connect(&url, quick_heartbeat(100, 2), os_entropy());
        nas.login();
        // Ten intervals with pongs answered: never dead.
        let deadline = std::time::Instant::now() + StdDuration::from_millis(1000);
        while std::time::Instant::now() < deadline {
            let seen = nas.pump(StdDuration::from_millis(20));
            assert!(
                !seen.contains(&Seen::Dead),
                "declared dead although pongs came: {seen:?}"
            );
        }
    })
    .await;
    sim.shutdown().await;

    let silent = emulator(SimConfig {
        pong: false,
        ..SimConfig::default()
    })
    .await;
    let url = silent.url();
    client(move || {
        let mut nas = FnosLink::connect(&url, quick_heartbeat(100, 2), os_entropy());
        nas.login();
        nas.wait_for(StdDuration::from_secs(5), |s| *s == Seen::Dead);
    })
    .await;
    silent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_disconnect_fails_pending_requests_and_reconnect_uses_the_stored_token() {
    let sim = emulator(SimConfig {
        faults: Default::default(),
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    let dropper = Arc::clone(&sim);
    client(move || {
        let mut nas = FnosLink::connect(&url, fnos::Config::new("admin", "admin"), os_entropy());
        assert_eq!(nas.login(), LoginMethod::Password);

        let id = nas.send(&Request::get_uptime());
        dropper.drop_connections();
        let (_, seen) = nas.wait_for(StdDuration::from_secs(5), |s| *s == Seen::Disconnected);
        // The request is either answered before the drop or aborted by it: never left hanging.
        let answered = seen
            .iter()
            .any(|s| matches!(s, Seen::Reply { reqid, last: true, .. } if *reqid == id));
        let aborted = seen.contains(&Seen::Aborted(id.clone()));
        assert!(
            answered ^ aborted,
            "request must be answered or aborted, once: {seen:?}"
        );
        assert_eq!(nas.session().state(), fnos::State::Disconnected);

        nas.reconnect();
        assert_eq!(
            nas.login(),
            LoginMethod::AuthToken,
            "re-login should use token + secret"
        );
        let id = nas.send(&Request::get_host_name());
        let (reply, _) = nas.final_reply(&id);
        assert!(
            matches!(reply, Seen::Reply { ok: true, .. }),
            "signed request after re-login: {reply:?}"
        );
    })
    .await;
    sim.shutdown().await;
}
