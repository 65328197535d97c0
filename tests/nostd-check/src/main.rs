//! A `#![no_std]` host binary with its own panic handler and **no global
//! allocator** that links `naslink-core` and drives its code paths.
//!
//! If the core or any dependency pulls in `std`, the build fails with a
//! duplicate `panic_impl` lang item; if anything needs the allocator, it
//! fails with "no global memory allocator found". It also runs: `main`
//! returns 0 only when the exercised paths gave the expected results.
#![no_std]
#![no_main]

use naslink_core::cfms;
use naslink_core::connection;
use naslink_core::fnos::{self, Request, Session};
use naslink_core::random;
use naslink_core::time::{Duration, Instant};
use naslink_core::ws::{self, frame};

/// The shared test vectors' throwaway 2048-bit key, JSON-escaped as
/// `util.crypto.getRSAPub` sends it.
const RSA_PUB_JSON: &str = r#"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2Qx8QYu+XGnx4tKBcnRZ\nKcSKPJqWx2p92ZBvFsA0WPhEIorHsKXo3yQ1dQDUrJ4rDp5Bc8jBdOnzT0wcKuhL\n7uX/CKfhjbiZvW74+y6rX7vG9OS8ivhNAK1tXVY+Hi+T0FcZtBSAzCrp2Te87tOS\n3lqMztmzAidPaG5Zyr91OEpNCHtxq8bjZkNpNuM0L3gjdW5TbU8O2VLMLy7ngoMI\npckQTBtbwr0OcGM9+QQ4j7/5ejkkq4k2MGy9xte7T7XM/lhFRke9kKHmumzs3sx7\nGN/dJu2jwet3ifRa356IjPsmSSbnf2mwAx9FLDZGJgXTfgonmSLvuL2BfBRPE08K\n2QIDAQAB\n-----END PUBLIC KEY-----\n"#;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    unsafe extern "C" {
        fn abort() -> !;
    }
    // SAFETY: libc's abort has no preconditions.
    unsafe { abort() }
}

// The precompiled libcore references the unwinding personality even with
// panic = "abort"; nothing ever calls it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[link(name = "c")]
unsafe extern "C" {}

/// The C entry point: libc's start-up code calls it. The exit status has
/// bit `i` set when check `i` failed (0 = all passed).
#[unsafe(no_mangle)]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let checks = [
        time_arithmetic(),
        websocket_paths(),
        fnos_login_paths(),
        cfms_session_paths(),
        cfms_decrypt_paths(),
        cfms13_paths(),
        cfms13_download_paths(),
    ];
    checks
        .iter()
        .enumerate()
        .filter(|(_, ok)| !**ok)
        .map(|(i, _)| 1 << i)
        .sum()
}

fn time_arithmetic() -> bool {
    (Instant::from_secs(1) + Duration::from_millis(500)).total_millis() == 1500
}

/// Handshake request, a masked frame, a received frame.
fn websocket_paths() -> bool {
    let mut rx = [0u8; 512];
    let mut tx = [0u8; 512];
    let Ok(url) = ws::Url::parse("ws://nas.local:5666/websocket?type=main") else {
        return false;
    };
    let rng = random::from_fn(|buf: &mut [u8]| buf.fill(0x5a));
    let Ok(mut client) = ws::Client::connect(
        Instant::ZERO,
        &url,
        &[],
        ws::Config::default(),
        rng,
        &mut rx[..],
        &mut tx[..],
    ) else {
        return false;
    };
    let request_ok = client
        .poll_transmit()
        .is_some_and(|r| r.starts_with(b"GET /websocket?type=main HTTP/1.1"));
    let mut out = [0u8; 64];
    let framed = frame::encode_masked(
        frame::Opcode::Text,
        true,
        [1, 2, 3, 4],
        b"{\"req\":\"ping\"}",
        &mut out,
    );
    let decoded = match framed {
        Ok(n) => matches!(
            frame::decode_in_place(&mut out[..n]),
            Ok(frame::Status::Complete(_))
        ),
        Err(_) => false,
    };
    request_ok && decoded
}

/// The fnOS login key exchange: RSA PKCS#1 v1.5 without an allocator, AES-CBC,
/// base64 and the JSON writer, driven through the session.
fn fnos_login_paths() -> bool {
    let mut session: Session<'_, 4> = Session::new(fnos::Config::new("admin", "admin"));
    let mut rng = random::from_fn(|buf: &mut [u8]| buf.fill(0x33));
    let mut tx = [0u8; fnos::session::TRANSMIT_CAPACITY];
    let now = Instant::from_secs(1_763_017_756);
    session.handle_connect(now);
    let Ok(Some(_)) = session.poll_transmit(now, &mut rng, &mut tx) else {
        return false;
    };
    // Answer getRSAPub with the reqid the session used.
    let mut reply = [0u8; 1024];
    let Some(reqid) = find_reqid(&tx) else {
        return false;
    };
    let Some(n) = concat(
        &mut reply,
        &[
            b"{\"pub\":\"",
            RSA_PUB_JSON.as_bytes(),
            b"\",\"si\":\"72057615512764624\",\"result\":\"succ\",\"reqid\":\"",
            reqid,
            b"\"}",
        ],
    ) else {
        return false;
    };
    if session.handle_text(now, &reply[..n]).is_err() {
        return false;
    }
    let envelope = match session.poll_transmit(now, &mut rng, &mut tx) {
        Ok(Some(n)) => &tx[..n],
        _ => return false,
    };
    let mut request = [0u8; 128];
    let signed_ok = Request::get_host_name()
        .write(None, &mut request, 0)
        .is_ok();
    envelope.starts_with(b"{\"req\":\"encrypted\"") && signed_ok
}

/// The CFMS envelope writer, response parser and FIFO queue.
fn cfms_session_paths() -> bool {
    let (mut rx, mut hashes) = ([0u8; 1024], [[0u8; 32]; 2]);
    let mut session: cfms::Session<'_, 4> = cfms::Session::new(
        cfms::Config::default(),
        cfms::Buffers {
            rx: &mut rx,
            chunk_hashes: &mut hashes,
        },
    );
    let now = Instant::from_secs(1);
    let mut tx = [0u8; 256];
    let mut rng = random::from_fn(|b: &mut [u8]| b.fill(7));
    connection::Session::handle_connect(&mut session, now);
    match connection::Session::poll_transmit(&mut session, now, &mut rng, &mut tx) {
        Ok(Some(_)) => {}
        _ => return false,
    }
    let answer = br#"{"code":200,"data":{"server_name":"CFMS","version":"0.1.0","protocol_version":3,"lockdown":false},"message":"ok","timestamp":1.5}"#;
    let message = connection::Message {
        kind: ws::MessageKind::Text,
        data: answer,
        first: true,
        last: true,
    };
    if !connection::Session::handle_message(&mut session, now, message) {
        return false;
    }
    let info = matches!(
        connection::Session::poll_event(&mut session, Some(message)),
        Some(cfms::ConnectionEvent::ServerInfo {
            protocol_version: 3,
            ..
        })
    );
    info && session.state() == cfms::State::Ready
}

/// AES-256-CFB8 and SHA-256 over a download: an empty file verifies, and a
/// chunk whose plaintext does not hash to the announced value is refused.
fn cfms_decrypt_paths() -> bool {
    let mut key = cfms::DownloadKey {
        key: [7; 32],
        iv: [9; 16],
        sha256: None,
        file_size: 0,
        chunk_size: 2 * 1024 * 1024,
        total_chunks: 0,
    };
    let empty_ok = match cfms::FileDecryptor::new(&key, &[]) {
        Ok(d) => d.finish().is_ok(),
        Err(_) => false,
    };
    key.file_size = 16;
    key.total_chunks = 1;
    key.sha256 = Some([0; 32]);
    let hashes = [[0u8; 32]];
    let mut ciphertext = [0x42u8; 16];
    let corrupt_refused = match cfms::FileDecryptor::new(&key, &hashes) {
        Ok(mut d) => d.decrypt(&mut ciphertext).is_err() || d.finish().is_err(),
        Err(_) => false,
    };
    empty_ok && corrupt_refused
}

fn find_reqid(message: &[u8]) -> Option<&[u8]> {
    let key = b"\"reqid\":\"";
    let start = message.windows(key.len()).position(|w| w == key)? + key.len();
    message.get(start..start + 28)
}

fn concat(out: &mut [u8], parts: &[&[u8]]) -> Option<usize> {
    let mut n = 0;
    for part in parts {
        out.get_mut(n..n + part.len())?.copy_from_slice(part);
        n += part.len();
    }
    Some(n)
}

/// CFMS protocol 13: a frame parsed, a probe written, and a chunk checked
/// with AES-256-GCM (a forged tag must be refused) without an allocator.
fn cfms13_paths() -> bool {
    use cfms::p13;
    let mut out = [0u8; 64];
    let probe = p13::negotiate::probe(&mut out).is_ok_and(|n| n > 5);
    let frame = p13::frame::Frame::parse(b"\x00\x00\x00\x02\x01{}")
        .is_ok_and(|f| f.header.stream.is_server());
    let key = p13::ChunkKey::new([1u8; 32]);
    let mut chunk = [0u8; 16];
    let forged = key.decrypt_chunk(0, &[0u8; 8], &[0u8; 16], &mut chunk)
        == Err(p13::TransferError::ForgedTag { index: 0 });
    probe && frame && forged
}

/// A protocol-13 download through the session without an allocator:
/// header, `ready` sent framed, one streamed chunk, the key; then the
/// stored chunk is opened and its (zero) tag refused as forged.
fn cfms13_download_paths() -> bool {
    use cfms::ConnectionEvent as Ev;
    use connection::Session as _;
    let (mut rx, mut seals) = ([0u8; 1024], [[0u8; 32]; 2]);
    let config = cfms::Config {
        protocol_version: Some(13),
        ..cfms::Config::default()
    };
    let mut session: cfms::Session<'_, 4> = cfms::Session::new(
        config,
        cfms::Buffers {
            rx: &mut rx,
            chunk_hashes: &mut seals,
        },
    );
    let now = Instant::from_secs(1);
    let mut tx = [0u8; 256];
    let mut rng = random::from_fn(|b: &mut [u8]| b.fill(7));
    session.handle_connect(now);
    if !matches!(session.poll_transmit(now, &mut rng, &mut tx), Ok(Some(_))) {
        return false;
    }
    let frames: [&[u8]; 4] = [
        b"\x00\x00\x00\x01\x01{\"code\":200,\"data\":{\"protocol_version\":13,\"lockdown\":false},\"message\":\"ok\",\"timestamp\":1.5}",
        b"\x00\x00\x00\x03\x00{\"action\":\"transfer_file\",\"data\":{\"file_size\":3,\"chunk_size\":3,\"total_chunks\":1}}",
        b"\x00\x00\x00\x03\x00{\"action\":\"file_chunk\",\"data\":{\"index\":0,\"chunk\":\"AAAA\",\"tag\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"prefix\":\"AAAAAAAAAAA=\"}}",
        b"\x00\x00\x00\x03\x00{\"action\":\"aes_key\",\"data\":{\"key\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"}}",
    ];
    let (mut ready_sent, mut data, mut key) = (false, 0usize, None);
    for (i, f) in frames.iter().enumerate() {
        let message = connection::Message {
            kind: ws::MessageKind::Binary,
            data: f,
            first: true,
            last: true,
        };
        if !session.handle_message(now, message) {
            return false;
        }
        while let Some(e) = session.poll_event(Some(message)) {
            match e {
                Ev::DownloadData { data: d, .. } => data += d.len(),
                Ev::DownloadFinished { key: k, .. } => key = Some(k),
                _ => {}
            }
        }
        if i == 0 && session.download_file_at(now, "t", 0, &mut tx).is_err() {
            return false;
        }
        if let Ok(Some(t)) = session.poll_transmit(now, &mut rng, &mut tx) {
            ready_sent |= tx.get(..t.len) == Some(b"\x00\x00\x00\x03\x00ready".as_slice());
        }
    }
    let Some(key) = key else {
        return false;
    };
    let mut chunk = [0u8; 3];
    let forged = session.chunk_hashes().first().is_some_and(|seal| {
        cfms::p13::transfer::open_chunk(&key, 0, seal, &mut chunk)
            == Err(cfms::p13::TransferError::ForgedTag { index: 0 })
    });
    ready_sent && data == 3 && forged
}
