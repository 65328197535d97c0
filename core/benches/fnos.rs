//! fnOS request cost: build + sign one `file.ls` request through a logged-in
//! `Session`, the same through a `Connection` up to the framed, masked bytes
//! an adapter writes, and parse + match one reply, beside a bare HMAC-SHA256
//! of the same request bytes (keyed from scratch, as a plain signing call
//! does) in the same run.
//!
//! The session logs in once during setup: the benchmark plays the server
//! with the shared vectors' throwaway RSA key (decrypting the envelope with
//! the `rsa` crate, dev-only) and grants a 16-byte secret.
//!
//! Run: `cargo bench -p naslink-core --bench fnos`.

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use naslink_core::fnos::envelope::LoginKey;
use naslink_core::fnos::{Config, Event, Request, Session};
use naslink_core::time::{Duration, Instant};
use naslink_core::{Connection, random, ws};
use rsa::pkcs8::DecodePrivateKey;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/vectors/fnos.json"
));
const SECRET: [u8; 16] = *b"0123456789abcdef";
const PATH: &str = "vol1/1000/Documents";

fn rng() -> impl random::Entropy {
    let mut state = 0x2545_f491_u32;
    random::from_fn(move |buf: &mut [u8]| {
        for b in buf {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *b = state as u8;
        }
    })
}

fn reqid_of(json: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(json).expect("JSON");
    v["reqid"].as_str().expect("reqid").to_owned()
}

/// A session at `Ready`, logged in with the password against a scripted
/// server that grants [`SECRET`]. Requests may stay in flight for an hour.
fn logged_in() -> Session<'static, 64> {
    let v: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors");
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(
        v["rsa_test_key"]["private_pem_pkcs8"]
            .as_str()
            .expect("pem"),
    )
    .expect("private key");
    let mut config = Config::new("admin", "admin");
    config.request_timeout = Duration::from_secs(3600);
    let mut s = Session::new(config);
    let now = Instant::from_secs(1_763_017_756);
    let mut buf = [0u8; 4096];
    s.handle_connect(now);

    let n = s
        .poll_transmit(now, &mut rng(), &mut buf)
        .expect("fits")
        .expect("getRSAPub");
    let mut reply: serde_json::Value = serde_json::from_str(
        v["frames"]["getRSAPub_response_example"]
            .as_str()
            .expect("frame"),
    )
    .expect("JSON");
    reply["reqid"] = reqid_of(&buf[..n]).into();
    reply["si"] = "72057615512764624".into();
    s.handle_text(now, reply.to_string().as_bytes())
        .expect("accepted");

    let n = s
        .poll_transmit(now, &mut rng(), &mut buf)
        .expect("fits")
        .expect("envelope");
    let env: serde_json::Value = serde_json::from_slice(&buf[..n]).expect("envelope JSON");
    let b64 = |k: &str| {
        let mut out = vec![0u8; 1024];
        let n = STANDARD
            .decode_slice(env[k].as_str().expect("field"), &mut out)
            .expect("base64");
        out.truncate(n);
        out
    };
    let key: [u8; 32] = private
        .decrypt(rsa::Pkcs1v15Encrypt, &b64("rsa"))
        .expect("rsa")
        .try_into()
        .expect("32");
    let key = LoginKey::new(key, b64("iv").try_into().expect("16"));
    let mut inner = b64("aes");
    let m = key.decrypt_in_place(&mut inner).expect("aes");
    let reqid = reqid_of(&inner[..m]);

    let mut secret = [0u8; 32];
    secret[..16].copy_from_slice(&SECRET);
    let c = key.encrypt_in_place(&mut secret, 16).expect("pad");
    let mut b64_secret = [0u8; 64];
    let e = STANDARD
        .encode_slice(&secret[..c], &mut b64_secret)
        .expect("fits");
    let granted = format!(
        r#"{{"uid":1000,"admin":true,"token":"t","longToken":"l","secret":"{}","backId":"6915841b00000044","result":"succ","reqid":"{reqid}"}}"#,
        std::str::from_utf8(&b64_secret[..e]).expect("base64 is ASCII")
    );
    match s.handle_text(now, granted.as_bytes()) {
        Ok(Some(Event::LoggedIn { .. })) => s,
        other => panic!("login failed: {other:?}"),
    }
}

/// A WebSocket client past its handshake (the session, already logged
/// in, is composed with it afterwards, so it is not restarted).
fn open_ws<'a>(
    rx: &'a mut [u8],
    tx: &'a mut [u8],
) -> ws::Client<&'a mut [u8], impl random::Entropy> {
    let url = ws::Url::parse("ws://127.0.0.1:9/websocket").expect("url");
    let mut client = ws::Client::connect(
        Instant::ZERO,
        &url,
        &[],
        ws::Config::default(),
        rng(),
        rx,
        tx,
    )
    .expect("client");
    let request =
        String::from_utf8(client.poll_transmit().expect("upgrade").to_vec()).expect("ascii");
    client.advance_transmit(request.len());
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("key header");
    let accept = ws::handshake::accept_for_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        std::str::from_utf8(&accept).expect("base64")
    );
    assert_eq!(
        client.handle_input(Instant::ZERO, response.as_bytes()),
        response.len()
    );
    assert_eq!(client.poll_event(), Some(ws::Event::Connected));
    client
}

fn build_and_sign(c: &mut Criterion) {
    let mut group = c.benchmark_group("fnos file.ls");
    let mut session = logged_in();
    let now = Instant::from_secs(1_763_017_756);
    let mut tx = [0u8; 512];
    let request = Request::file_ls(Some(PATH));

    // The exact JSON the session signs, for the bare HMAC baseline.
    let (reqid, n) = session.send(now, &request, &mut tx).expect("send");
    let json = tx[44..n].to_vec();
    let reply = format!(
        r#"{{"files":[{{"name":"report.pdf","uid":1000,"size":48213,"mtim":1763017000,"btim":1763016000}},{{"name":"photos","uid":1000,"mtim":1763017001,"btim":1763016001,"dir":1}}],"uver":3,"result":"succ","reqid":"{reqid}"}}"#
    );
    // Leave that one answered so the table does not fill up.
    session.handle_text(now, reply.as_bytes()).expect("matched");

    group.bench_function("bare HMAC-SHA256", |b| {
        b.iter(|| {
            let mut mac =
                Hmac::<sha2::Sha256>::new_from_slice(black_box(&SECRET)).expect("any key length");
            mac.update(black_box(&json));
            black_box(mac.finalize().into_bytes())
        })
    });

    group.bench_function("build+sign (Session::send)", |b| {
        b.iter(|| {
            let (reqid, n) = session
                .send(now, black_box(&request), &mut tx)
                .expect("send");
            black_box(&tx[..n]);
            // Free the slot again without measuring a reply parse.
            session.cancel(&reqid)
        });
    });

    // The same request through the composition: written by the session
    // straight into the WebSocket transmit buffer, framed and masked, up to
    // the bytes an adapter writes to its socket.
    let mut rx = vec![0u8; 4096];
    let mut ws_tx = vec![0u8; 4096];
    let mut conn = Connection::new(open_ws(&mut rx, &mut ws_tx), &mut session);
    group.bench_function("send to frame bytes (Connection::send)", |b| {
        b.iter(|| {
            let reqid = conn.send(now, black_box(&request)).expect("send");
            let frame = conn.poll_transmit(now).expect("queued");
            let n = black_box(frame).len();
            conn.advance_transmit(n);
            conn.session_mut().cancel(&reqid)
        });
    });
    drop(conn);

    // Each iteration sends one request and answers it: parse + match.
    let replies: Vec<u8> = reply.into_bytes();
    group.bench_function("send + parse+match reply", |b| {
        b.iter(|| {
            let (reqid, _) = session.send(now, &request, &mut tx).expect("send");
            let mut text = replies.clone();
            let at = text.len() - 30;
            text[at..at + 28].copy_from_slice(reqid.as_str().as_bytes());
            match session.handle_text(now, black_box(&text)) {
                Ok(Some(Event::Reply(r))) => black_box(r.is_final()),
                other => panic!("no reply: {other:?}"),
            }
        });
    });
    group.finish();
}

criterion_group!(benches, build_and_sign);
criterion_main!(benches);
