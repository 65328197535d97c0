//! The shared fnOS scenario list (`tests/scenarios/fnos.json`) through the
//! `extern "C"` functions. The Rust core and the Python package run the same
//! file, so a behaviour difference between runtimes is a failing test.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use clap::Parser;
use naslink_capi::*;
use naslink_sim::fnos::{Args, KeySource, Server};
use serde_json::Value;
use support::{Client, FnosConfig};

use naslink_event_kind as K;

/// The emulator's command-line flags, parsed as `naslink-sim fnos` does.
#[derive(Parser)]
struct SimFlags {
    #[command(flatten)]
    args: Args,
}

fn scenarios() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/scenarios/fnos.json"
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("scenario JSON");
    file["scenarios"].as_array().expect("scenarios").clone()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("`{key}` in {v}"))
}

/// Events until one `wanted` accepts (returned); panics after 20 s.
fn until(nas: &mut Client, mut wanted: impl FnMut(&support::Seen) -> bool) -> support::Seen {
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(std::time::Instant::now() < give_up, "no matching event");
        let e = nas.next_event(Duration::from_secs(20));
        if wanted(&e) {
            return e;
        }
    }
}

fn run_step(nas: &mut Client, step: &Value, ids: &mut HashMap<String, String>) {
    let step = step.as_object().expect("a step is an object");
    assert_eq!(step.len(), 1, "a step has one key: {step:?}");
    let (kind, arg) = step.iter().next().expect("one key");
    match kind.as_str() {
        "login_ok" | "login_failed" => {
            let e = until(nas, |e| {
                matches!(
                    e.kind,
                    K::NASLINK_EVENT_LOGGED_IN | K::NASLINK_EVENT_LOGIN_FAILED
                )
            });
            if kind == "login_ok" {
                assert_eq!(e.kind, K::NASLINK_EVENT_LOGGED_IN, "{e:?}");
            } else {
                assert_eq!(e.kind, K::NASLINK_EVENT_LOGIN_FAILED, "{e:?}");
                assert_eq!(Some(e.errno_code), arg["errno"].as_i64(), "{e:?}");
            }
        }
        "request" => {
            let params = arg.get("params").map(Value::to_string);
            let id = nas.request(text(arg, "name"), params.as_deref());
            ids.insert(text(arg, "as").to_owned(), id);
        }
        "reply" => {
            let id = ids[text(arg, "of")].clone();
            let mut seen = 0;
            let last = until(nas, |e| {
                let ours = e.kind == K::NASLINK_EVENT_REPLY && e.reqid == id;
                seen += usize::from(ours);
                ours && e.status != naslink_reply_status::NASLINK_STATUS_PARTIAL
            });
            let ok = last.status == naslink_reply_status::NASLINK_STATUS_SUCCESS;
            assert_eq!(Some(ok), arg["ok"].as_bool(), "{last:?}");
            if let Some(errno) = arg.get("errno") {
                assert_eq!(Some(last.errno_code), errno.as_i64(), "{last:?}");
            }
            for (path, want) in arg
                .get("paths")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let got: Value = serde_json::from_str(&last.get(path).expect(path)).expect("JSON");
                assert_eq!(&got, want, "{path} in {last:?}");
            }
            let min = arg.get("min_frames").and_then(Value::as_u64).unwrap_or(1);
            assert!(seen as u64 >= min, "{seen} frames, wanted {min}");
        }
        "push" => {
            let e = until(nas, |e| e.kind == K::NASLINK_EVENT_PUSH);
            let got: Value = serde_json::from_str(&e.get("sysNotify").expect("sysNotify")).unwrap();
            assert_eq!(got, arg["kind"], "{e:?}");
        }
        "aborted" => {
            let id = ids[text(arg, "of")].clone();
            let e = until(nas, |e| {
                e.reqid == id
                    && (e.kind == K::NASLINK_EVENT_REQUEST_ABORTED
                        || (e.kind == K::NASLINK_EVENT_REPLY
                            && e.status != naslink_reply_status::NASLINK_STATUS_PARTIAL))
            });
            assert_eq!(e.kind, K::NASLINK_EVENT_REQUEST_ABORTED, "{e:?}");
        }
        other => panic!("unknown step `{other}`"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_fnos_scenario_passes_over_the_c_abi() {
    let all = scenarios();
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
        let (user, password) = (
            text(&scenario, "user").to_owned(),
            text(&scenario, "password").to_owned(),
        );
        let steps = scenario["steps"].as_array().expect("steps").clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut nas = Client::connect(&FnosConfig::new(&url, &user, &password));
            let mut ids = HashMap::new();
            for step in &steps {
                run_step(&mut nas, step, &mut ids);
            }
        })
        .await;
        sim.shutdown().await;
        if let Err(e) = outcome {
            panic!("scenario `{name}` failed: {e}");
        }
    }
}
