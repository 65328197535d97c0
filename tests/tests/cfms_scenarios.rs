//! The shared CFMS scenario list (`tests/scenarios/cfms.json`) through the
//! core's `Connection<cfms::Session>` over a blocking socket (the support
//! code's `CfmsConn`), each action sent through the generic
//! `Connection::request`. The Python package runs the same file, so a
//! behaviour difference between runtimes is a failing test.

mod cfms_support;
mod support;

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use cfms_support::conn::{CfmsConn, Got};
use clap::Parser;
use naslink_core::cfms::{Config, Credentials};
use naslink_core::random::Entropy;
use naslink_sim::cfms::{Args, Server};
use serde_json::Value;
use support::os_entropy;

/// The emulator's command-line flags, parsed as `naslink-sim cfms` does.
#[derive(Parser)]
struct SimFlags {
    #[command(flatten)]
    args: Args,
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

/// `arg` is an object whose keys are all in `known`.
fn only(arg: &Value, known: &[&str]) {
    for key in arg.as_object().expect("an object").keys() {
        assert!(
            known.contains(&key.as_str()),
            "unknown key `{key}` in {arg}"
        );
    }
}

const WAIT: StdDuration = StdDuration::from_secs(20);

fn run_step<E: Entropy>(nas: &mut CfmsConn<E>, step: &Value, ids: &mut HashMap<String, String>) {
    let step = step.as_object().expect("a step is an object");
    assert_eq!(step.len(), 1, "a step has one key: {step:?}");
    let (kind, arg) = step.iter().next().expect("one key");
    let ends = |g: &Got| g.is("ListenerRegistered") || g.is("LoginFailed");
    match kind.as_str() {
        "login_ok" => {
            only(arg, &[]);
            let got = nas.wait_for(WAIT, ends);
            assert!(got.is("ListenerRegistered { status: Ok }"), "{got:?}");
        }
        "login_failed" => {
            only(arg, &[]);
            let got = nas.wait_for(WAIT, ends);
            assert!(got.is("LoginFailed"), "{got:?}");
        }
        "request" => {
            only(arg, &["action", "data", "as"]);
            let data = arg.get("data").map_or("{}".to_owned(), Value::to_string);
            let now = nas.clock.now();
            let seq = nas
                .link
                .conn
                .request(now, text(arg, "action"), data.as_bytes())
                .expect("request queued");
            nas.flush();
            ids.insert(text(arg, "as").to_owned(), format!("seq: {seq:?},"));
        }
        "reply" => {
            only(arg, &["of", "code", "paths"]);
            let seq = ids[text(arg, "of")].clone();
            let got = nas.wait_for(WAIT, |g| {
                (g.is("Reply {") || g.is("RequestFailed {"))
                    && matches!(g, Got::Event { debug, .. } if debug.contains(&seq))
            });
            let Got::Event {
                body: Some(body), ..
            } = &got
            else {
                panic!("no reply body: {got:?}")
            };
            assert_eq!(body.get("code"), arg.get("code"), "{body}");
            for (path, want) in arg
                .get("paths")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                assert_eq!(at_path(body, path), Some(want), "{path} in {body}");
            }
        }
        other => panic!("unknown step `{other}`"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_cfms_scenario_passes_over_the_core() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/cfms.json");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    let all = file["scenarios"].as_array().expect("scenarios").clone();
    assert!(all.len() >= 4, "{} scenarios", all.len());
    for scenario in all {
        only(&scenario, &["name", "sim", "user", "password", "steps"]);
        let name = text(&scenario, "name").to_owned();
        let mut argv = vec![
            "cfms".to_owned(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--plain".into(),
            "--bad-password-delay-ms".into(),
            "50".into(),
        ];
        for flag in scenario["sim"].as_array().expect("sim") {
            argv.push(flag.as_str().expect("flag").to_owned());
        }
        let flags = SimFlags::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sim = Server::start(flags.args.config()).await.expect("emulator");
        let url = sim.url();
        let outcome = tokio::task::spawn_blocking(move || {
            let config = Config {
                login: Some(
                    Credentials::new(text(&scenario, "user"), text(&scenario, "password"))
                        .expect("credentials"),
                ),
                listener: true,
                ..Config::default()
            };
            let mut nas = CfmsConn::connect(&url, config, os_entropy());
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
