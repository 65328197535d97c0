//! The `naslink` binary end to end against the fnOS emulator (started in
//! the test process on an ephemeral loopback port, or as a `naslink sim`
//! child): every fnOS command, JSON output, exit statuses, TLS pins through
//! a TLS relay, and reconnect during `watch`.

use std::io::{BufRead, BufReader};
use std::process::{Command as StdCommand, Stdio};
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use naslink_sim::fnos::Config;
use serde_json::Value;

mod support;

use support::FnosSim as Sim;

fn naslink(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("naslink").unwrap();
    cmd.env_remove("NASLINK_URL")
        .env_remove("NASLINK_USER")
        .env("NASLINK_PASSWORD", "admin")
        .args(["--url", url, "--timeout", "10"])
        .timeout(Duration::from_secs(30));
    cmd
}

fn json_out(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

#[test]
fn demo_runs_without_arguments_and_finishes_by_itself() {
    let out = Command::cargo_bin("naslink")
        .unwrap()
        .arg("demo")
        .timeout(Duration::from_secs(30))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("login by AuthToken"), "{text}");
    assert!(text.contains("demo finished"), "{text}");
}

#[test]
fn info_reports_host_name_and_version() {
    let sim = Sim::start(Config::default());
    let info = json_out(naslink(&sim.url()).args(["--json", "info"]));
    assert_eq!(info["host"], "fnos-sim");
    assert_eq!(info["version"], "0.9.27");
    naslink(&sim.url())
        .arg("info")
        .assert()
        .success()
        .stdout("fnos-sim (fnOS 0.9.27)\n");
}

#[test]
fn status_json_has_the_front_panel_fields() {
    let sim = Sim::start(Config::default());
    let status = json_out(naslink(&sim.url()).args(["--json", "status"]));
    assert_eq!(status["host"], "fnos-sim");
    assert_eq!(status["version"], "0.9.27");
    assert!(status["uptime_s"].as_u64().unwrap() >= 259_200);
    assert!(status["cpu_percent"].is_number());
    assert!(status["mem_percent"].is_number());
    let volumes = status["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 2);
    for v in volumes {
        assert!(v["name"].is_string());
        assert!(v["total_bytes"].as_u64().unwrap() >= v["free_bytes"].as_u64().unwrap());
    }
    let table = naslink(&sim.url()).arg("status").assert().success();
    let text = String::from_utf8_lossy(&table.get_output().stdout).into_owned();
    assert!(text.contains("uptime    3d"), "{text}");
}

#[test]
fn ls_mkdir_rm_change_the_listing() {
    let sim = Sim::start(Config::default());
    let home = json_out(naslink(&sim.url()).args(["--json", "ls"]));
    let names: Vec<&str> = home
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Documents"), "{home}");
    for e in home.as_array().unwrap() {
        assert!(e["dir"].is_boolean() && e.get("size").is_some() && e.get("mtime").is_some());
    }
    let docs = "vol1/1000/Documents";
    let new = format!("{docs}/from-cli");
    naslink(&sim.url())
        .args(["mkdir", &new])
        .assert()
        .success()
        .stdout(format!("created {new}\n"));
    let listed = json_out(naslink(&sim.url()).args(["--json", "ls", docs]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "from-cli" && e["dir"] == true)
    );
    naslink(&sim.url()).args(["rm", &new]).assert().success();
    let listed = json_out(naslink(&sim.url()).args(["--json", "ls", docs]));
    assert!(
        !listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "from-cli")
    );
}

#[test]
fn raw_prints_the_answer_and_a_refusal_exits_1_with_its_errno() {
    let sim = Sim::start(Config::default());
    let answer =
        json_out(naslink(&sim.url()).args(["raw", "appcgi.resmon.gen", r#"{"item":["cpuBusy"]}"#]));
    assert_eq!(answer["result"], "succ");
    assert!(answer["data"]["item"]["cpuBusy"].is_number());
    naslink(&sim.url())
        .args(["raw", "no.such.command"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("unknown method (errno 10000002)"));
    naslink(&sim.url())
        .args(["raw", "file.ls", "[1]"])
        .assert()
        .code(2);
}

#[test]
fn a_wrong_password_exits_1_and_names_the_cause() {
    let sim = Sim::start(Config::default());
    naslink(&sim.url())
        .env("NASLINK_PASSWORD", "wrong")
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("wrong user name or password"));
}

#[test]
fn the_password_can_come_from_stdin_or_a_named_variable() {
    let sim = Sim::start(Config::default());
    naslink(&sim.url())
        .env_remove("NASLINK_PASSWORD")
        .args(["--password-stdin", "info"])
        .write_stdin("admin\n")
        .assert()
        .success();
    naslink(&sim.url())
        .env_remove("NASLINK_PASSWORD")
        .env("MY_NAS_PW", "admin")
        .args(["--password-env", "MY_NAS_PW", "info"])
        .assert()
        .success();
    naslink(&sim.url())
        .env_remove("NASLINK_PASSWORD")
        .arg("info")
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no password"));
}

#[test]
fn an_unreachable_host_exits_3() {
    // Port 1 (tcpmux) is privileged and never in the ephemeral range the
    // emulators of tests running alongside bind: nothing listens there. (A
    // port freed by a listener just dropped could be taken by one of them.)
    naslink("ws://127.0.0.1:1/websocket?type=main")
        .arg("info")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("cannot connect"));
}

#[test]
fn usage_errors_exit_2() {
    Command::cargo_bin("naslink")
        .unwrap()
        .env_remove("NASLINK_URL")
        .arg("info")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--url"));
    Command::cargo_bin("naslink")
        .unwrap()
        .arg("frobnicate")
        .assert()
        .code(2);
    naslink("http://nas/").arg("info").assert().code(2);
}

#[test]
fn an_https_redirect_is_reported_and_exits_3() {
    let sim = Sim::start(Config {
        https_redirect: Some(naslink_sim::fnos::Redirect::default()),
        ..Config::default()
    });
    naslink(&sim.url())
        .arg("info")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("redirects to https://"));
}

/// A TLS front for the emulator with a fresh self-signed certificate.
fn tls_front(sim: &Sim) -> (String, String) {
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::crypto::ring;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().to_vec();
    let pin: String = sha256_hex(&der);
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let upstream = sim.handle.addr();
    let listener = sim
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    sim.runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    (format!("wss://localhost:{port}/websocket?type=main"), pin)
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn tls_with_the_right_pin_works_and_a_wrong_pin_exits_3() {
    let sim = Sim::start(Config::default());
    let (url, pin) = tls_front(&sim);
    let info = json_out(naslink(&url).args(["--pin-sha256", &pin, "--json", "info"]));
    assert_eq!(info["host"], "fnos-sim");
    let wrong = format!("00{}", &pin[2..]);
    naslink(&url)
        .args(["--pin-sha256", &wrong, "info"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("does not match the pinned"));
    // Without a pin the self-signed certificate is refused too.
    naslink(&url).arg("info").assert().code(3);
    naslink(&url)
        .args(["--insecure", "info"])
        .assert()
        .success();
}

#[test]
fn watch_refreshes_prints_pushes_and_reconnects_by_itself() {
    let sim = Sim::start(Config::default());
    let exe = assert_cmd::cargo::cargo_bin("naslink");
    let mut child = StdCommand::new(exe)
        .env("NASLINK_PASSWORD", "admin")
        .args([
            "--url",
            &sim.url(),
            "--json",
            "watch",
            "--every",
            "0.2",
            "--count",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let mut dropped = false;
    let mut pushed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while let Some(Ok(line)) = lines.next() {
        assert!(std::time::Instant::now() < deadline, "watch took too long");
        let doc: Value = serde_json::from_str(&line).unwrap();
        let statuses = seen
            .iter()
            .filter(|d: &&Value| d.get("status").is_some())
            .count();
        if statuses == 2 && !pushed {
            sim.handle.push(naslink_sim::fnos::Push::StorageChanged);
            pushed = true;
        }
        if statuses == 3 && !dropped {
            sim.handle.drop_connections();
            dropped = true;
        }
        seen.push(doc);
    }
    assert!(child.wait().unwrap().success());
    let events: Vec<&str> = seen.iter().filter_map(|d| d["event"].as_str()).collect();
    assert!(events.contains(&"push"), "{seen:?}");
    assert!(events.contains(&"disconnected"), "{seen:?}");
    assert!(events.contains(&"logged_in"), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|d| d.get("status").is_some()).count(),
        10
    );
}

#[test]
fn sim_subcommand_serves_the_fnos_emulator() {
    let exe = assert_cmd::cargo::cargo_bin("naslink");
    let mut child = StdCommand::new(exe)
        .args(["sim", "fnos", "--listen", "127.0.0.1:0", "--fixed-key"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first.trim().strip_prefix("listening ").unwrap().to_owned();
    let result = std::panic::catch_unwind(|| {
        let info = json_out(naslink(&url).args(["--json", "info"]));
        assert_eq!(info["host"], "fnos-sim");
    });
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
}

#[test]
fn put_then_get_round_trips_a_file_over_http() {
    let sim = Sim::start(Config::default());
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let local = dir.path().join("photo.raw");
    std::fs::write(&local, &content).unwrap();

    // `folder/` keeps the local name.
    let put = json_out(naslink(&sim.url()).args([
        "--json",
        "put",
        local.to_str().unwrap(),
        "vol1/1000/Documents/",
    ]));
    assert_eq!(put["ok"], true);
    assert_eq!(put["remote"], "vol1/1000/Documents/photo.raw");
    assert_eq!(
        sim.handle
            .file_content("vol1/1000/Documents/photo.raw")
            .unwrap(),
        content
    );

    // Again: kept beside the first unless --replace.
    let again = json_out(naslink(&sim.url()).args([
        "--json",
        "put",
        local.to_str().unwrap(),
        "vol1/1000/Documents/photo.raw",
    ]));
    assert_ne!(again["remote"], "vol1/1000/Documents/photo.raw");
    std::fs::write(&local, b"replaced").unwrap();
    naslink(&sim.url())
        .args([
            "put",
            "--replace",
            local.to_str().unwrap(),
            "vol1/1000/Documents/photo.raw",
        ])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "to vol1/1000/Documents/photo.raw",
        ));

    let back = dir.path().join("back.raw");
    let get = json_out(naslink(&sim.url()).args([
        "--json",
        "get",
        "vol1/1000/Documents/photo.raw",
        back.to_str().unwrap(),
    ]));
    assert_eq!(get["bytes"], 8);
    assert_eq!(std::fs::read(&back).unwrap(), b"replaced");
}

#[test]
fn get_of_a_missing_file_exits_1_and_put_without_a_full_path_exits_2() {
    let sim = Sim::start(Config::default());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.bin");
    naslink(&sim.url())
        .args([
            "get",
            "vol1/1000/Documents/absent.bin",
            target.to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("4100"));
    assert!(!target.exists());

    let local = dir.path().join("a.txt");
    std::fs::write(&local, b"a").unwrap();
    naslink(&sim.url())
        .args(["put", local.to_str().unwrap(), "a.txt"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("full remote path"));
}

#[test]
fn a_download_cut_mid_body_exits_3_and_leaves_no_file() {
    let sim = Sim::start(Config {
        faults: naslink_sim::fnos::Faults {
            cut_download_after: Some(200_000),
            ..Default::default()
        },
        ..Config::default()
    });
    sim.handle
        .put_file("vol1/1000/Documents/big.bin", vec![42u8; 1_000_000])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big.bin");
    naslink(&sim.url())
        .args([
            "get",
            "vol1/1000/Documents/big.bin",
            target.to_str().unwrap(),
        ])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("middle of the response body"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn two_factor_code_comes_from_the_flag_or_the_environment() {
    let sim = Sim::start(Config {
        two_factor_code: Some("246810".into()),
        ..Config::default()
    });
    naslink(&sim.url())
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--2fa-code"));
    naslink(&sim.url())
        .args(["--2fa-code", "246810", "info"])
        .assert()
        .success()
        .stdout(predicates::str::contains("fnos-sim"));
    naslink(&sim.url())
        .env("NASLINK_2FA_CODE", "111111")
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("wrong two-factor"));
}
