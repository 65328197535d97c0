//! `FnosClient` against servers that break the rules: a small WebSocket
//! server written here completes the upgrade and then misbehaves (masked
//! frames, a 2^63 length, text that is not UTF-8, garbage after the 101,
//! silence, a cut after every upgrade), and the emulator answers with more
//! frames than the client accepts. Each must end `connect` or the request
//! quickly with an error that names the cause, never a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use naslink_sim::fnos::Config;
use naslink_tokio::fnos::{FnosClient, FnosError, FnosOptions};
use naslink_tokio::link::ConnectError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod fnos_support;
use fnos_support::{bounded, emulator, options};

/// What the hostile server does once the upgrade request arrived.
#[derive(Clone, Copy)]
enum Mode {
    /// Answer 101 followed, in the same write, by these bytes; then keep
    /// the connection open, reading and never answering.
    After(&'static [u8]),
    /// Answer 101 and close the TCP connection at once.
    Cut,
    /// Answer the upgrade with a 301 to this location.
    Redirect(&'static str),
    /// Answer these bytes instead of a 101, then hold the connection open.
    Instead(&'static [u8]),
}

/// A hostile server on loopback; returns its URL and how many
/// connections it accepted.
async fn hostile(mode: Mode) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "ws://{}/websocket?type=main",
        listener.local_addr().unwrap()
    );
    let accepted = Arc::new(AtomicU32::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Some(key) = read_upgrade(&mut socket).await else {
                    return;
                };
                if let Mode::Instead(bytes) = mode {
                    let _ = socket.write_all(bytes).await;
                    let mut sink = [0u8; 4096];
                    while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
                if let Mode::Redirect(location) = mode {
                    let answer = format!(
                        "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\n\
                         Content-Length: 0\r\n\r\n"
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    return;
                }
                let accept = naslink_core::ws::handshake::accept_for_key(key.as_bytes());
                let mut answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    std::str::from_utf8(&accept).unwrap()
                )
                .into_bytes();
                match mode {
                    Mode::Cut | Mode::Redirect(_) | Mode::Instead(_) => {
                        let _ = socket.write_all(&answer).await;
                    }
                    Mode::After(bytes) => {
                        answer.extend_from_slice(bytes);
                        if socket.write_all(&answer).await.is_err() {
                            return;
                        }
                        let mut sink = [0u8; 4096];
                        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                    }
                }
            });
        }
    });
    (url, accepted)
}

/// Read the upgrade request and return its `Sec-WebSocket-Key`.
async fn read_upgrade(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || socket.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    })
}

/// Options whose own deadlines are long (30 s), so that a quick failure
/// can only come from noticing the fault, not from a timer.
fn patient(url: &str, attempts: u32) -> FnosOptions {
    let mut options = options(url, "admin");
    options.connect_timeout = Duration::from_secs(30);
    options.first_attempts = attempts;
    options
}

async fn connect_error(options: FnosOptions) -> String {
    match FnosClient::connect(options).await {
        Ok(_) => panic!("connect succeeded against a hostile server"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_masked_frame_fails_the_connect_at_once_naming_code_1002_and_rfc_6455_5_1() {
    bounded(10, async {
        // FIN text, MASK bit set, 1 byte, mask key, masked "x".
        let (url, _) = hostile(Mode::After(&[0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1])).await;
        let error = connect_error(patient(&url, 1)).await;
        assert!(error.contains("1002"), "{error}");
        assert!(error.contains("masked"), "{error}");
        assert!(error.contains("RFC 6455 5.1"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn a_length_with_its_top_bit_set_fails_the_connect_naming_rfc_6455_5_2() {
    bounded(10, async {
        let (url, _) = hostile(Mode::After(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0])).await;
        let error = connect_error(patient(&url, 1)).await;
        assert!(error.contains("1002"), "{error}");
        assert!(error.contains("RFC 6455 5.2"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn text_that_is_not_utf8_fails_the_connect_with_code_1007() {
    bounded(10, async {
        let (url, _) = hostile(Mode::After(&[0x81, 2, 0xC3, 0x28])).await;
        let error = connect_error(patient(&url, 1)).await;
        assert!(error.contains("1007"), "{error}");
        assert!(error.contains("UTF-8"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn garbage_after_the_101_is_noticed_without_waiting_for_more_bytes() {
    bounded(10, async {
        let (url, _) = hostile(Mode::After(b"HELLO, this is not a frame")).await;
        let error = connect_error(patient(&url, 1)).await;
        assert!(error.contains("broke the WebSocket protocol"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn silence_after_the_upgrade_fails_within_the_connect_timeout_naming_the_step() {
    bounded(10, async {
        let (url, accepted) = hostile(Mode::After(b"")).await;
        let mut options = patient(&url, 3);
        options.connect_timeout = Duration::from_secs(1);
        let error = connect_error(options).await;
        assert!(
            error.contains("no answer to the key exchange (util.crypto.getRSAPub) within 1 s"),
            "{error}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn a_cut_after_every_upgrade_gives_up_after_the_configured_attempts() {
    bounded(10, async {
        let (url, accepted) = hostile(Mode::Cut).await;
        let error = connect_error(patient(&url, 3)).await;
        assert!(error.starts_with("gave up after 3 attempts: "), "{error}");
        assert!(error.contains("connection was cut"), "{error}");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    })
    .await;
}

#[tokio::test]
async fn a_refused_tcp_connection_is_tried_the_configured_number_of_times() {
    bounded(10, async {
        // Port 1 is privileged and outside the ephemeral range that the
        // emulators of tests running alongside bind: nothing listens there.
        let url = "ws://127.0.0.1:1/websocket?type=main".to_owned();
        match FnosClient::connect(patient(&url, 2)).await {
            Err(e @ FnosError::ConnectFailed { attempts: 2, .. }) => {
                assert!(e.to_string().contains("cannot connect"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn an_answer_with_too_many_frames_fails_that_request_and_the_session_goes_on() {
    bounded(20, async {
        let sim = emulator(Config {
            entries_per_frame: 1,
            ..Config::default()
        })
        .await;
        let mut options = options(&sim.url(), "admin");
        options.max_answer_frames = 2;
        let nas = FnosClient::connect(options).await.unwrap();
        match nas.request("file.ls", None).await {
            Err(e @ FnosError::AnswerTooLarge { .. }) => {
                let text = e.to_string();
                assert!(text.contains("max_answer_frames = 2"), "{text}");
                assert!(text.contains("file.ls"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let host = nas.request("appcgi.sysinfo.getHostName", None).await;
        assert!(host.is_ok(), "{host:?}");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_answer_with_too_many_bytes_fails_that_request() {
    bounded(20, async {
        let sim = emulator(Config {
            entries_per_frame: 1,
            ..Config::default()
        })
        .await;
        let mut options = options(&sim.url(), "admin");
        options.max_answer_bytes = 600;
        let nas = FnosClient::connect(options).await.unwrap();
        match nas.request("file.ls", None).await {
            Err(FnosError::AnswerTooLarge { limit, value, .. }) => {
                assert_eq!((limit, value), ("max_answer_bytes", 600));
            }
            other => panic!("{other:?}"),
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_redirect_to_another_host_or_port_is_not_followed() {
    bounded(10, async {
        for location in [
            "https://evil.example:5667/websocket?type=main",
            "ws://127.0.0.1:1/websocket?type=main",
        ] {
            let (url, accepted) = hostile(Mode::Redirect(location)).await;
            let mut options = patient(&url, 3);
            options.link.follow_redirect = true;
            options.link.access_code = Some("1234".into());
            match FnosClient::connect(options).await {
                Err(FnosError::Connect(ConnectError::RedirectRefused { location: l, why })) => {
                    assert_eq!(l, location);
                    assert!(why.contains("another"), "{why}");
                }
                other => panic!("{location}: {other:?}"),
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 1);
        }
    })
    .await;
}

#[tokio::test]
async fn a_close_from_the_server_ends_the_connect_with_its_code_and_reason() {
    bounded(10, async {
        // Close 1008 with the reason "policy: no\n"; the server then keeps
        // the connection open.
        let (url, _) = hostile(Mode::After(b"\x88\x0d\x03\xf0policy: no\n")).await;
        let error = connect_error(patient(&url, 1)).await;
        assert_eq!(
            error,
            "the server closed the connection (WebSocket close 1008): \"policy: no\\n\""
        );
    })
    .await;
}

#[tokio::test]
async fn garbage_instead_of_the_101_names_the_malformed_answer() {
    bounded(10, async {
        let (url, accepted) = hostile(Mode::Instead(b"\x00\x01 hello, not HTTP\r\n\r\n")).await;
        let error = connect_error(patient(&url, 2)).await;
        assert!(error.starts_with("gave up after 2 attempts: "), "{error}");
        assert!(error.contains("malformed handshake response"), "{error}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    })
    .await;
}
