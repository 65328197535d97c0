//! The shared fnOS scenario list (`tests/scenarios/fnos.json`) through the
//! core's `Connection` and fnOS `Session` over a blocking socket (the support
//! code's `ConnLink`). The C ABI and the Python package run the same file, so
//! a behaviour difference between runtimes is a failing test.

mod support;

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use clap::Parser;
use naslink_core::connection::Event;
use naslink_core::fnos::{self, LoginFailure, Request, Session, Status};
use naslink_core::random::Entropy;
use naslink_core::ws;
use naslink_sim::fnos::{Args, KeySource, Server};
use serde_json::Value;
use support::{Clock, ConnLink, os_entropy, unix_secs};

/// The emulator's command-line flags, parsed as `naslink-sim fnos` does.
#[derive(Parser)]
struct SimFlags {
    #[command(flatten)]
    args: Args,
}

/// What the session reported, owned.
#[derive(Debug)]
enum Seen {
    LoggedIn,
    LoginFailed(Option<i64>),
    Reply {
        reqid: String,
        status: Status,
        errno: Option<i64>,
        json: Value,
    },
    Push(Value),
    Aborted(String),
    Closed,
    Other(String),
}

fn describe(event: fnos::Event<'_>, text: Option<&str>) -> Seen {
    let json = || serde_json::from_str(text.unwrap_or("null")).unwrap_or(Value::Null);
    let errno = |e: Option<fnos::Errno>| e.map(|e| i64::from(e.code()));
    match event {
        fnos::Event::LoggedIn { .. } => Seen::LoggedIn,
        fnos::Event::LoginFailed(LoginFailure::Rejected { errno: n, .. }) => {
            Seen::LoginFailed(errno(n))
        }
        fnos::Event::LoginFailed(other) => Seen::Other(format!("{other:?}")),
        fnos::Event::Reply(reply) => Seen::Reply {
            reqid: reply
                .reqid_text()
                .as_unescaped()
                .unwrap_or_default()
                .to_owned(),
            status: reply.status(),
            errno: errno(reply.errno()),
            json: json(),
        },
        fnos::Event::Push(_) => Seen::Push(json()),
        fnos::Event::RequestAborted(reqid) => Seen::Aborted(reqid.to_string()),
        other => Seen::Other(format!("{other:?}")),
    }
}

struct Nas<E: Entropy> {
    clock: Clock,
    link: ConnLink<Session<'static>, E>,
    queue: std::collections::VecDeque<Seen>,
}

impl<E: Entropy> Nas<E> {
    /// Events until one `wanted` accepts (returned); panics after 20 s.
    fn until(&mut self, mut wanted: impl FnMut(&Seen) -> bool) -> Seen {
        let give_up = std::time::Instant::now() + StdDuration::from_secs(20);
        let mut other = Vec::new();
        loop {
            while let Some(seen) = self.queue.pop_front() {
                if wanted(&seen) {
                    return seen;
                }
                if let Seen::Other(what) = seen {
                    other.push(what);
                }
            }
            assert!(
                std::time::Instant::now() < give_up,
                "no matching event; other events: {other:?}"
            );
            assert!(
                !self.link.is_closed(),
                "the connection ended; other events: {other:?}"
            );
            let queue = &mut self.queue;
            self.link
                .poll_once(&self.clock, StdDuration::from_millis(20), |event, text| {
                    queue.push_back(match event {
                        Event::Session(event) => describe(event, text),
                        Event::Closed(_) => Seen::Closed,
                        other => Seen::Other(format!("{other:?}")),
                    })
                });
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("`{key}` in {v}"))
}

fn at_path<'a>(mut v: &'a Value, path: &str) -> Option<&'a Value> {
    for part in path.split('.') {
        v = match v {
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            other => other.get(part)?,
        };
    }
    Some(v)
}

fn run_step<E: Entropy>(nas: &mut Nas<E>, step: &Value, ids: &mut HashMap<String, String>) {
    let step = step.as_object().expect("a step is an object");
    assert_eq!(step.len(), 1, "a step has one key: {step:?}");
    let (kind, arg) = step.iter().next().expect("one key");
    match kind.as_str() {
        "login_ok" | "login_failed" => {
            let e = nas.until(|e| matches!(e, Seen::LoggedIn | Seen::LoginFailed(_)));
            match (kind.as_str(), e) {
                ("login_ok", Seen::LoggedIn) => {}
                ("login_failed", Seen::LoginFailed(n)) => {
                    assert_eq!(n, arg["errno"].as_i64());
                }
                (_, e) => panic!("{kind}: got {e:?}"),
            }
        }
        "request" => {
            let params = arg.get("params").map(Value::to_string);
            let mut request = Request::new(text(arg, "name"));
            if let Some(params) = &params {
                request = request.with_object(params);
            }
            let id = nas
                .link
                .send(&nas.clock, &request)
                .expect("request fits")
                .to_string();
            ids.insert(text(arg, "as").to_owned(), id);
        }
        "reply" => {
            let id = ids[text(arg, "of")].clone();
            let mut seen = 0u64;
            let last = nas.until(|e| match e {
                Seen::Reply { reqid, status, .. } if *reqid == id => {
                    seen += 1;
                    *status != Status::Partial
                }
                _ => false,
            });
            let Seen::Reply {
                status,
                errno,
                json,
                ..
            } = last
            else {
                unreachable!()
            };
            assert_eq!(
                Some(status == Status::Success),
                arg["ok"].as_bool(),
                "{json}"
            );
            if let Some(want) = arg.get("errno") {
                assert_eq!(errno, want.as_i64(), "{json}");
            }
            for (path, want) in arg
                .get("paths")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                assert_eq!(at_path(&json, path), Some(want), "{path} in {json}");
            }
            let min = arg.get("min_frames").and_then(Value::as_u64).unwrap_or(1);
            assert!(seen >= min, "{seen} frames, wanted {min}");
        }
        "push" => {
            let Seen::Push(json) = nas.until(|e| matches!(e, Seen::Push(_))) else {
                unreachable!()
            };
            assert_eq!(json.get("sysNotify"), Some(&arg["kind"]), "{json}");
        }
        "aborted" => {
            let id = ids[text(arg, "of")].clone();
            let e = nas.until(|e| match e {
                Seen::Aborted(r) => *r == id,
                Seen::Reply { reqid, status, .. } => *reqid == id && *status != Status::Partial,
                _ => false,
            });
            assert!(matches!(e, Seen::Aborted(_)), "{e:?}");
        }
        other => panic!("unknown step `{other}`"),
    }
}

fn run(url: &str, scenario: &Value) {
    // The session borrows its credentials for its whole life.
    let user: &'static str = Box::leak(text(scenario, "user").to_owned().into_boxed_str());
    let password: &'static str = Box::leak(text(scenario, "password").to_owned().into_boxed_str());
    let clock = Clock::start();
    let mut session = Session::new(fnos::Config::new(user, password));
    session.set_unix_time(clock.now(), unix_secs());
    let link = ConnLink::connect(
        &clock,
        url,
        ws::Config::default(),
        os_entropy(),
        64 * 1024,
        session,
    );
    let mut nas = Nas {
        clock,
        link,
        queue: Default::default(),
    };
    let mut ids = HashMap::new();
    for step in scenario["steps"].as_array().expect("steps") {
        run_step(&mut nas, step, &mut ids);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_fnos_scenario_passes_over_the_core() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/fnos.json");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    let all = file["scenarios"].as_array().expect("scenarios").clone();
    assert!(all.len() >= 6, "{} scenarios", all.len());
    for scenario in all {
        let keys = ["name", "sim", "user", "password", "steps"];
        for key in scenario.as_object().expect("object").keys() {
            assert!(keys.contains(&key.as_str()), "unknown scenario key `{key}`");
        }
        let name = text(&scenario, "name").to_owned();
        let mut argv = vec!["fnos".to_owned(), "--listen".into(), "127.0.0.1:0".into()];
        for flag in scenario["sim"].as_array().expect("sim") {
            argv.push(flag.as_str().expect("flag").to_owned());
        }
        let flags = SimFlags::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut config = flags.args.config().expect("config");
        config.key = KeySource::Fixture;
        let sim = Server::start(config).await.expect("emulator");
        let url = sim.url();
        let outcome = tokio::task::spawn_blocking(move || run(&url, &scenario)).await;
        sim.shutdown().await;
        if let Err(e) = outcome {
            panic!("scenario `{name}` failed: {e}");
        }
    }
}
