//! `naslink-autobahn`: drives naslink-core's WebSocket client against the
//! Autobahn|Testsuite fuzzing server over plain `std::net::TcpStream`.
//!
//! ```text
//! naslink-autobahn ws://127.0.0.1:9001
//! ```
//!
//! It asks `/getCaseCount`, runs every case with `/runCase?case=N&agent=naslink`
//! echoing each text and binary message back, then asks
//! `/updateReports?agent=naslink` to write the report. Each case has a
//! watchdog; a failed connection drops TCP at once, since Autobahn counts a
//! connection that the server has to close after a client-side failure as
//! "failed by the wrong endpoint".

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use naslink_core::random::Entropy;
use naslink_core::time::{Duration, Instant};
use naslink_core::ws::{Client, Closed, Config, Event, MessageKind, SendError, Url};

const AGENT: &str = "naslink";

/// Autobahn 9.x sends messages up to 16 MiB; the echo must fit whole.
const MESSAGE_CAPACITY: usize = 16 * 1024 * 1024 + 1024;

/// A case that has not finished in this long is abandoned (9.x moves
/// 16 MiB messages many times; everything else takes milliseconds).
const CASE_WATCHDOG: StdDuration = StdDuration::from_secs(120);

/// How long socket reads block before timeouts are checked.
const READ_TICK: StdDuration = StdDuration::from_millis(20);

/// After a clean close the server should drop TCP first; wait this long.
const LINGER: StdDuration = StdDuration::from_secs(2);

/// xorshift64*: masks only need to be unpredictable to proxies, and a test
/// driver needs no CSPRNG.
struct XorShift(u64);

impl Entropy for XorShift {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
    }
}

struct Buffers {
    rx: Vec<u8>,
    tx: Vec<u8>,
    read: Vec<u8>,
    echo: Vec<u8>,
}

/// What a session did, for the summary.
#[derive(Debug)]
struct Session {
    last_text: Option<String>,
    closed: Option<Closed>,
}

fn main() -> ExitCode {
    let base = match std::env::args().nth(1) {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            eprintln!("usage: naslink-autobahn ws://127.0.0.1:9001");
            return ExitCode::from(2);
        }
    };
    let mut buffers = Buffers {
        rx: vec![0; MESSAGE_CAPACITY],
        tx: vec![0; MESSAGE_CAPACITY + 64 * 1024],
        read: vec![0; 256 * 1024],
        echo: Vec::with_capacity(MESSAGE_CAPACITY),
    };
    let start = StdInstant::now();
    let mut entropy = XorShift(0x9E37_79B9_7F4A_7C15 ^ start.elapsed().as_nanos() as u64 | 1);

    let count = match run(
        &format!("{base}/getCaseCount"),
        &mut buffers,
        &mut entropy,
        start,
    ) {
        Ok(Session {
            last_text: Some(text),
            ..
        }) => match text.trim().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("getCaseCount answered {text:?}");
                return ExitCode::FAILURE;
            }
        },
        other => {
            eprintln!("getCaseCount failed: {other:?}");
            return ExitCode::FAILURE;
        }
    };
    println!("naslink-autobahn: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        match run(&url, &mut buffers, &mut entropy, start) {
            Ok(s) => println!("case {case}: {:?}", s.closed),
            Err(e) => println!("case {case}: {e}"),
        }
    }
    match run(
        &format!("{base}/updateReports?agent={AGENT}"),
        &mut buffers,
        &mut entropy,
        start,
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("updateReports failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn now(start: StdInstant) -> Instant {
    Instant::from_millis(start.elapsed().as_millis() as u64)
}

/// One WebSocket session: connect, echo every message, end on close.
fn run(
    url: &str,
    b: &mut Buffers,
    entropy: &mut XorShift,
    start: StdInstant,
) -> Result<Session, String> {
    let parsed = Url::parse(url).map_err(|e| format!("bad url {url}: {e:?}"))?;
    let mut stream = TcpStream::connect((parsed.host, parsed.port))
        .map_err(|e| format!("connect {url}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(READ_TICK))
        .map_err(|e| e.to_string())?;
    let config = Config {
        close_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let mut client = Client::connect(
        now(start),
        &parsed,
        &[],
        config,
        &mut *entropy,
        &mut b.rx[..],
        &mut b.tx[..],
    )
    .map_err(|e| format!("connect: {e:?}"))?;
    let mut session = Session {
        last_text: None,
        closed: None,
    };
    let watchdog = StdInstant::now() + CASE_WATCHDOG;
    loop {
        flush(&mut client, &mut stream)?;
        if let Some(closed) = session.closed {
            end(stream, closed);
            return Ok(session);
        }
        if StdInstant::now() > watchdog {
            let _ = stream.shutdown(Shutdown::Both);
            return Err("watchdog: case took too long".into());
        }
        let n = match stream.read(&mut b.read) {
            Ok(0) => {
                client.handle_eof(now(start));
                drain_events(&mut client, &mut session, &mut b.echo)?;
                continue;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                client.handle_timeout(now(start));
                drain_events(&mut client, &mut session, &mut b.echo)?;
                continue;
            }
            Err(e) => {
                client.handle_eof(now(start));
                drain_events(&mut client, &mut session, &mut b.echo)?;
                if session.closed.is_none() {
                    return Err(format!("read: {e}"));
                }
                continue;
            }
        };
        let mut data = &b.read[..n];
        while !data.is_empty() && session.closed.is_none() {
            let used = client.handle_input(now(start), data);
            data = &data[used..];
            drain_events(&mut client, &mut session, &mut b.echo)?;
            flush(&mut client, &mut stream)?;
        }
    }
}

/// Take every event; echo messages back as they come.
fn drain_events(
    client: &mut Client<&mut [u8], &mut XorShift>,
    session: &mut Session,
    echo: &mut Vec<u8>,
) -> Result<(), String> {
    loop {
        let kind = match client.poll_event() {
            None => return Ok(()),
            Some(Event::Text(text)) => {
                session.last_text = Some(text.to_owned());
                echo.clear();
                echo.extend_from_slice(text.as_bytes());
                MessageKind::Text
            }
            Some(Event::Binary(data)) => {
                echo.clear();
                echo.extend_from_slice(data);
                MessageKind::Binary
            }
            Some(Event::Closed(closed)) => {
                session.closed = Some(closed);
                continue;
            }
            Some(Event::Rejected(response)) => return Err(format!("rejected: {response:?}")),
            Some(_) => continue,
        };
        let sent = match kind {
            MessageKind::Text => client.send_text(std::str::from_utf8(echo).unwrap_or_default()),
            MessageKind::Binary => client.send_binary(echo),
        };
        match sent {
            // The server may have closed meanwhile; the echo is moot then.
            Ok(()) | Err(SendError::Closing) => {}
            Err(e) => return Err(format!("echo: {e:?}")),
        }
    }
}

fn flush(
    client: &mut Client<&mut [u8], &mut XorShift>,
    stream: &mut TcpStream,
) -> Result<(), String> {
    while let Some(bytes) = client.poll_transmit() {
        match stream.write(bytes) {
            Ok(0) => return Err("write: connection closed".into()),
            Ok(n) => client.advance_transmit(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The server may drop TCP right after its Close (or on a
            // failure); what we could not write no longer matters.
            Err(_) => {
                client.handle_eof(Instant::ZERO);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Drop the transport: at once after a failure, after the server's EOF
/// (briefly awaited) after a clean close.
fn end(mut stream: TcpStream, closed: Closed) {
    if matches!(closed, Closed::Clean { .. }) {
        let deadline = StdInstant::now() + LINGER;
        let mut scratch = [0u8; 512];
        while StdInstant::now() < deadline {
            match stream.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
