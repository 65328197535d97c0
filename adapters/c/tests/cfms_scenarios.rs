//! The shared CFMS scenario list (`tests/scenarios/cfms.json`) through the
//! `extern "C"` functions (`naslink_cfms_request` with action + JSON data).
//! The Rust core and the Python package run the same file, so a behaviour
//! difference between runtimes is a failing test. The connection is
//! negotiated as a C program does it (`Client::negotiate_cfms`: the
//! emulator speaks 3, so the probe is closed and the client reconnects
//! speaking text); the list's expectations are protocol 3's (at 13 the
//! emulator seeds a document), protocol 13 is in `cfms_emulator.rs`.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use clap::Parser;
use naslink_capi::*;
use naslink_sim::cfms::{Args, Server};
use serde_json::Value;
use support::Client;

use naslink_event_kind as K;

/// The emulator's command-line flags, parsed as `naslink-sim cfms` does.
#[derive(Parser)]
struct SimFlags {
    #[command(flatten)]
    args: Args,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("`{key}` in {v}"))
}

/// `arg` is an object whose keys are all in `known`.
fn only(arg: &Value, known: &[&str]) {
    for key in arg.as_object().expect("an object").keys() {
        assert!(
            known.contains(&key.as_str()),
            "unknown key `{key}` in {arg}"
        );
    }
}

/// Events until one `wanted` accepts (returned); panics after 20 s.
fn until(nas: &mut Client, wanted: impl Fn(&support::Seen) -> bool) -> support::Seen {
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
    let ends = |e: &support::Seen| {
        matches!(
            e.kind,
            K::NASLINK_EVENT_LISTENER_REGISTERED | K::NASLINK_EVENT_LOGIN_FAILED
        )
    };
    match kind.as_str() {
        "login_ok" => {
            only(arg, &[]);
            let e = until(nas, ends);
            assert_eq!(e.kind, K::NASLINK_EVENT_LISTENER_REGISTERED, "{e:?}");
            assert_eq!(e.errno_code, 200, "{e:?}");
        }
        "login_failed" => {
            only(arg, &[]);
            let e = until(nas, ends);
            assert_eq!(e.kind, K::NASLINK_EVENT_LOGIN_FAILED, "{e:?}");
        }
        "request" => {
            only(arg, &["action", "data", "as"]);
            let data = arg.get("data").map(Value::to_string);
            let id = nas.cfms_request(text(arg, "action"), data.as_deref());
            ids.insert(text(arg, "as").to_owned(), id);
        }
        "reply" => {
            only(arg, &["of", "code", "paths"]);
            let id = ids[text(arg, "of")].clone();
            let e = until(nas, |e| e.reqid == id);
            assert_eq!(e.kind, K::NASLINK_EVENT_REPLY, "{e:?}");
            assert_eq!(Some(e.errno_code), arg["code"].as_i64(), "{e:?}");
            for (path, want) in arg
                .get("paths")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let got: Value = serde_json::from_str(&e.get(path).expect(path)).expect("JSON");
                assert_eq!(&got, want, "{path} in {e:?}");
            }
        }
        other => panic!("unknown step `{other}`"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_cfms_scenario_passes_over_the_c_abi() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/scenarios/cfms.json"
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    let all = file["scenarios"].as_array().expect("scenarios").clone();
    assert!(all.len() >= 4, "{} scenarios", all.len());
    for scenario in all {
        only(&scenario, &["name", "sim", "user", "password", "steps"]);
        let name = text(&scenario, "name").to_owned();
        let mut argv: Vec<String> = ["cfms", "--listen", "127.0.0.1:0", "--plain"]
            .into_iter()
            .chain(["--bad-password-delay-ms", "50"])
            .map(str::to_owned)
            .collect();
        for flag in scenario["sim"].as_array().expect("sim") {
            argv.push(flag.as_str().expect("flag").to_owned());
        }
        let flags = SimFlags::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sim = Server::start(flags.args.config()).await.expect("emulator");
        let url = sim.url();
        let outcome = tokio::task::spawn_blocking(move || {
            let (mut nas, pin) =
                Client::negotiate_cfms(&url, text(&scenario, "user"), text(&scenario, "password"));
            assert_eq!(pin, 3, "a text server closes the probe");
            let mut ids = HashMap::new();
            for step in scenario["steps"].as_array().expect("steps") {
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
