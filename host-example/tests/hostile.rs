//! The `naslink` binary against the hostile server of `naslink-sim`, one
//! scenario per mode: the exit status (3, or 0 where the command can
//! still succeed), a message naming the cause, done within `--timeout`
//! plus a few seconds, at most 64 MiB of memory, and for downloads nothing
//! left beside the target and the target unchanged. Then SIGINT in the
//! middle of downloads and uploads (fnOS and CFMS, over a throttled
//! relay): exit 130, no temporary file, target unchanged.
//!
//! The scenarios of one protocol run several at a time, each with its own
//! server, so the suite stays short.

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use naslink_sim::hostile::{
    CFMS_SAMPLE_TITLE, Config, FNOS_SAMPLE_PATH, Handle, Mode, SAMPLE_SIZE, Server, Upstream,
    sample,
};
use support::{Interrupt, MEMORY_LIMIT, Outcome, measured, naslink, run, strangers, target_dir};

/// `--timeout` of the scenarios.
const TIMEOUT: u32 = 3;
/// What a run may take beyond its `--timeout`.
const SLACK: Duration = Duration::from_secs(5);
/// A run still going after this is killed (and the scenario fails).
const KILL_AFTER: Duration = Duration::from_secs(25);

/// A hostile server and the runtime it runs on.
struct Hostile {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

impl Hostile {
    fn start(mode: Mode, upstream: Upstream) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime
            .block_on(Server::start(Config::new(mode, upstream)))
            .unwrap();
        Hostile { runtime, handle }
    }

    fn stop(self) {
        self.runtime.block_on(self.handle.shutdown());
    }
}

/// What the scenario asks the CLI to do.
#[derive(Clone, Copy)]
enum Action {
    Info,
    Ls(Option<&'static str>),
    /// Download the sample file onto a target holding `original`.
    Get,
    /// Upload an 80 MiB (sparse) file to the CFMS root.
    PutBig,
}

struct Scenario {
    mode: Mode,
    upstream: Upstream,
    action: Action,
    /// The exit statuses allowed (0 only where the command can still
    /// succeed, with the right result).
    codes: &'static [i32],
    /// Words of which stderr must hold one (case-insensitive) on failure.
    causes: &'static [&'static str],
    timeout: u32,
}

const fn fails(
    mode: Mode,
    upstream: Upstream,
    action: Action,
    causes: &'static [&'static str],
) -> Scenario {
    Scenario {
        mode,
        upstream,
        action,
        codes: &[3],
        causes,
        timeout: TIMEOUT,
    }
}

const LENGTH: &[&str] = &["too large", "too long", "too big", "length", "1009"];
const LENGTH63: &[&str] = &["length", "1002", "most significant"];
const MASKED: &[&str] = &["masked"];
const CONTINUATIONS: &[&str] = &["too large", "too long", "too big", "1009"];
const UTF8: &[&str] = &["utf-8", "utf8", "1007"];
const GARBAGE: &[&str] = &["reserved", "rsv", "opcode", "1002"];
const SLOW: &[&str] = &["handshake", "no answer", "timed out", "within"];
const SILENCE: &[&str] = &["no answer", "timed out", "within", "deadline"];
const BROKEN: &[&str] = &["attempts", "closed", "gave up"];
const TOO_LARGE: &[&str] = &["too large", "larger", "too many", "max_answer"];
const BODY: &[&str] = &["length", "size", "larger", "bytes", "incomplete", "short"];
const READY: &[&str] = &["ready", "4294967295"];
const FIELD: &[&str] = &["too long", "field", "digits"];

/// The modes that act right after the upgrade, for either protocol.
fn after_upgrade(upstream: Upstream) -> Vec<Scenario> {
    vec![
        fails(Mode::Length62, upstream, Action::Info, LENGTH),
        fails(Mode::Length63, upstream, Action::Info, LENGTH63),
        fails(Mode::MaskedFrame, upstream, Action::Info, MASKED),
        fails(
            Mode::ContinuationFlood,
            upstream,
            Action::Info,
            CONTINUATIONS,
        ),
        fails(Mode::BadUtf8, upstream, Action::Info, UTF8),
        fails(Mode::GarbageAfterUpgrade, upstream, Action::Info, GARBAGE),
        fails(Mode::SlowHandshake, upstream, Action::Info, SLOW),
        fails(Mode::Silence, upstream, Action::Info, SILENCE),
        fails(Mode::BreakAfterUpgrade, upstream, Action::Info, BROKEN),
        // 100 PINGs and then a faithful relay: nothing to fail about.
        Scenario {
            codes: &[0],
            ..fails(Mode::PingBurst, upstream, Action::Info, &[])
        },
        // The relay still works under the flood: the command may succeed,
        // or give up in time, naming the missing answer.
        Scenario {
            codes: &[0, 3],
            ..fails(Mode::PingFlood, upstream, Action::Ls(None), SILENCE)
        },
    ]
}

/// Run one scenario; the problems found, empty when it behaved.
fn play(scenario: &Scenario) -> (String, Vec<String>) {
    let hostile = Hostile::start(scenario.mode, scenario.upstream);
    let url = hostile.handle.url();
    let (dir, target) = target_dir();
    let mut cmd = naslink(&url, scenario.timeout);
    match scenario.action {
        Action::Info => cmd.arg("info"),
        Action::Ls(None) => cmd.arg("ls"),
        Action::Ls(Some(path)) => cmd.args(["ls", path]),
        Action::Get => {
            let remote = match scenario.upstream {
                Upstream::Fnos => FNOS_SAMPLE_PATH,
                Upstream::Cfms => CFMS_SAMPLE_TITLE,
            };
            cmd.args(["get", remote]).arg(&target)
        }
        Action::PutBig => {
            let big = dir.path().join("big.bin");
            File::create(&big).unwrap().set_len(80 << 20).unwrap();
            cmd.arg("put").arg(&big).arg("")
        }
    };
    let outcome = measured(&cmd, KILL_AFTER);
    hostile.stop();
    let mut problems = check(scenario, &outcome);
    if matches!(scenario.action, Action::Get) {
        // Only a complete, checked download may replace the target.
        let expected = match outcome.code {
            Some(0) => sample(),
            _ => b"original".to_vec(),
        };
        problems.extend(litter(dir.path(), &target, &expected));
    }
    let name = format!("{:?} {:?}", scenario.upstream, scenario.mode);
    let summary = format!(
        "{name}: exit {:?} in {:.1} s, {} MiB; {}",
        outcome.code,
        outcome.elapsed.as_secs_f64(),
        outcome.peak_rss >> 20,
        outcome.stderr.trim()
    );
    eprintln!("{summary}");
    (name, problems)
}

fn check(scenario: &Scenario, o: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if o.killed {
        problems.push(format!("still running after {KILL_AFTER:?}: killed"));
    }
    if !o.code.is_some_and(|c| scenario.codes.contains(&c)) {
        problems.push(format!(
            "exit {:?} (signal {:?}), wanted one of {:?}",
            o.code, o.signal, scenario.codes
        ));
    }
    let stderr = o.stderr.to_lowercase();
    if o.code != Some(0) && !scenario.causes.iter().any(|c| stderr.contains(c)) {
        problems.push(format!(
            "stderr names none of {:?}: {:?}",
            scenario.causes,
            o.stderr.trim()
        ));
    }
    let allowed = Duration::from_secs(scenario.timeout.into()) + SLACK;
    if o.elapsed > allowed {
        problems.push(format!("took {:?}, allowed {allowed:?}", o.elapsed));
    }
    if o.peak_rss >= MEMORY_LIMIT {
        problems.push(format!("peak memory {} MiB", o.peak_rss >> 20));
    }
    problems
}

/// Files beside the target other than the target, and a target that
/// does not hold `expected`.
fn litter(dir: &Path, target: &Path, expected: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let left = strangers(dir, &["target.bin", "big.bin"]);
    if !left.is_empty() {
        problems.push(format!("left {left:?} beside the target"));
    }
    let content = std::fs::read(target).unwrap_or_default();
    if content != expected {
        problems.push(format!(
            "the target holds {} bytes, not the {} expected",
            content.len(),
            expected.len()
        ));
    }
    problems
}

/// Scenarios of one test running at once: enough to keep the suite short,
/// few enough that on two cores a run is not starved into its deadline
/// (the two protocol tests run side by side).
const AT_ONCE: usize = 6;

/// Play every scenario, [`AT_ONCE`] at a time; fail naming each one that
/// misbehaved.
fn play_all(scenarios: Vec<Scenario>) {
    let queue = std::sync::Mutex::new(scenarios);
    let results = std::sync::Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..AT_ONCE {
            scope.spawn(|| {
                loop {
                    let Some(scenario) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let result = play(&scenario);
                    results.lock().unwrap().push(result);
                }
            });
        }
    });
    let failed: Vec<String> = results
        .into_inner()
        .unwrap()
        .into_iter()
        .filter(|(_, problems)| !problems.is_empty())
        .map(|(name, problems)| format!("{name}: {}", problems.join("; ")))
        .collect();
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
fn every_hostile_fnos_mode_fails_cleanly_and_in_time() {
    let fnos = Upstream::Fnos;
    let mut scenarios = after_upgrade(fnos);
    scenarios.extend([
        // Time enough to reach the answer cap on a busy machine (all the
        // scenarios run at once): the cap, not the deadline, must end it.
        Scenario {
            timeout: 10,
            ..fails(
                Mode::EndlessAnswer,
                fnos,
                Action::Ls(Some("vol1/1000")),
                TOO_LARGE,
            )
        },
        fails(Mode::DownloadLyingLength, fnos, Action::Get, BODY),
        fails(Mode::DownloadEndless, fnos, Action::Get, BODY),
        fails(Mode::DownloadNoLength, fnos, Action::Get, BODY),
    ]);
    play_all(scenarios);
}

#[test]
fn every_hostile_cfms_mode_fails_cleanly_and_in_time() {
    let cfms = Upstream::Cfms;
    let mut scenarios = after_upgrade(cfms);
    scenarios.extend([
        fails(Mode::HugeReady, cfms, Action::PutBig, READY),
        fails(Mode::ChunkIndexDigits, cfms, Action::Get, FIELD),
        fails(Mode::AesKeyDigits, cfms, Action::Get, FIELD),
        // An unknown key is valid JSON: skipping it is as right as
        // refusing it, provided the file then arrives intact.
        Scenario {
            codes: &[0, 3],
            ..fails(Mode::LongKeyEscape, cfms, Action::Get, FIELD)
        },
        fails(Mode::LongHashEscape, cfms, Action::Get, FIELD),
    ]);
    play_all(scenarios);
}

/// SIGINT once `ready` holds; the run must end with 130 (and the signal
/// must have gone out mid-transfer, not after the end).
fn interrupted(cmd: &mut std::process::Command, ready: &dyn Fn() -> bool) -> Outcome {
    signalled(cmd, ready, libc::SIGINT, 130)
}

/// `signal` once `ready` holds; the run must end with `code` and name the
/// signal.
fn signalled(
    cmd: &mut std::process::Command,
    ready: &dyn Fn() -> bool,
    signal: i32,
    code: i32,
) -> Outcome {
    let fired = std::cell::Cell::new(false);
    let when = || {
        let now = ready();
        fired.set(fired.get() || now);
        now
    };
    let outcome = run(
        cmd,
        KILL_AFTER,
        Some(Interrupt {
            signal,
            when: &when,
        }),
    );
    assert!(
        fired.get(),
        "the transfer ended before the interrupt: {outcome:?}"
    );
    assert_eq!(outcome.code, Some(code), "{outcome:?}");
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    assert!(outcome.stderr.contains(name), "{outcome:?}");
    outcome
}

fn interrupted_download(upstream: Upstream, remote: &str) {
    let hostile = Hostile::start(Mode::Throttle, upstream);
    let (dir, target) = target_dir();
    let mut cmd = naslink(&hostile.handle.url(), 10);
    cmd.args(["get", remote]).arg(&target);
    // A temporary file beside the target: the download is under way.
    let started = || !strangers(dir.path(), &["target.bin"]).is_empty();
    interrupted(&mut cmd, &started);
    let problems = litter(dir.path(), &target, b"original");
    assert!(problems.is_empty(), "{problems:?}");
    hostile.stop();
}

/// A local file of 2 MiB, 8 s at the throttled rate.
fn upload_source() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("up.bin");
    std::fs::write(&path, vec![7u8; 2 * SAMPLE_SIZE]).unwrap();
    (dir, path)
}

/// Past the login: 300 KiB of the upload went through.
fn uploading(hostile: &Hostile) -> impl Fn() -> bool + '_ {
    || hostile.handle.client_bytes() > 300 * 1024
}

#[test]
fn sigint_mid_fnos_download_exits_130_and_leaves_the_target_alone() {
    interrupted_download(Upstream::Fnos, FNOS_SAMPLE_PATH);
}

#[test]
fn sigint_mid_cfms_download_exits_130_and_leaves_the_target_alone() {
    interrupted_download(Upstream::Cfms, CFMS_SAMPLE_TITLE);
}

#[test]
fn sigint_mid_fnos_upload_exits_130_and_stores_nothing() {
    let hostile = Hostile::start(Mode::Throttle, Upstream::Fnos);
    let (_dir, source) = upload_source();
    let mut cmd = naslink(&hostile.handle.url(), 10);
    cmd.arg("put").arg(&source).arg("vol1/1000/up.bin");
    interrupted(&mut cmd, &uploading(&hostile));
    let fnos = hostile.handle.fnos().unwrap();
    assert_eq!(fnos.file_content("vol1/1000/up.bin"), None);
    assert_eq!(std::fs::read(&source).unwrap(), vec![7u8; 2 * SAMPLE_SIZE]);
    hostile.stop();
}

#[test]
fn sigint_mid_cfms_upload_exits_130_and_stores_no_content() {
    let hostile = Hostile::start(Mode::Throttle, Upstream::Cfms);
    let (_dir, source) = upload_source();
    let mut cmd = naslink(&hostile.handle.url(), 10);
    cmd.arg("put").arg(&source).arg("");
    interrupted(&mut cmd, &uploading(&hostile));
    let cfms = hostile.handle.cfms().unwrap();
    for id in cfms.find_documents("up.bin") {
        assert_eq!(
            cfms.document_content(&id),
            None,
            "document {id} got content"
        );
    }
    hostile.stop();
}

#[test]
fn sigterm_mid_cfms_upload_exits_143() {
    let hostile = Hostile::start(Mode::Throttle, Upstream::Cfms);
    let (_dir, source) = upload_source();
    let mut cmd = naslink(&hostile.handle.url(), 10);
    cmd.arg("put").arg(&source).arg("");
    signalled(&mut cmd, &uploading(&hostile), libc::SIGTERM, 143);
    hostile.stop();
}
