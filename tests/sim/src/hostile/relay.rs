//! One proxied connection: the HTTP head, the upgrade relayed to the
//! emulator, then either the hostile bytes or a frame relay with the
//! mode's rewrites.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use super::frame::{OP_PONG, OP_TEXT, read_frame};
use super::{CONNECTION_LIMIT, HOLD, Mode, Stats, http, inject};

/// The longest HTTP head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client or the emulator may take to send its HTTP head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued for the client before the relay waits for it.
const CLIENT_QUEUE: usize = 64;
/// Pause between two bytes of [`Mode::SlowHandshake`].
const TRICKLE: Duration = Duration::from_millis(200);
/// How long the last frames of a closing relay may take.
const GRACE: Duration = Duration::from_secs(2);
/// Pieces of plain relays and of throttled writes.
const PIECE: usize = 16 * 1024;

/// What every connection of one proxy shares.
pub(crate) struct Context {
    pub mode: Mode,
    pub upstream: SocketAddr,
    /// Bytes per second each way, when throttled.
    pub throttle: Option<u64>,
    pub stats: Arc<Stats>,
}

/// Serve one client connection, for at most [`CONNECTION_LIMIT`].
pub(crate) async fn serve(client: TcpStream, context: Arc<Context>) {
    let _ = timeout(CONNECTION_LIMIT, serve_inner(client, &context)).await;
}

async fn serve_inner(mut client: TcpStream, context: &Context) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    if !is_upgrade(&head) {
        if context.mode.answers_downloads() && request_path(&head).starts_with("/multiple-download")
        {
            return http::answer_download(client, context.mode).await;
        }
        let upstream = TcpStream::connect(context.upstream).await?;
        return relay_plain(client, upstream, [head, rest].concat(), context).await;
    }
    let mut upstream = TcpStream::connect(context.upstream).await?;
    upstream.write_all(&head).await?;
    upstream.write_all(&rest).await?;
    let (response, early) = read_head(&mut upstream).await?;
    if !response.starts_with(b"HTTP/1.1 101") {
        client.write_all(&response).await?;
        return relay_plain(client, upstream, early, context).await;
    }
    upgraded(client, upstream, response, early, context).await
}

/// After the emulator's 101: act as the mode says.
async fn upgraded(
    mut client: TcpStream,
    upstream: TcpStream,
    response: Vec<u8>,
    early: Vec<u8>,
    context: &Context,
) -> std::io::Result<()> {
    match context.mode {
        Mode::SlowHandshake => trickle(&mut client, &response).await?,
        Mode::GarbageAfterUpgrade => {
            // One write: the garbage arrives with the 101.
            let garbage = inject::after_upgrade(context.mode).unwrap_or_default();
            client.write_all(&[response, garbage].concat()).await?;
            return hold(client).await;
        }
        _ => client.write_all(&response).await?,
    }
    match context.mode {
        Mode::BreakAfterUpgrade => return Ok(()),
        Mode::Silence => return hold(client).await,
        Mode::ContinuationFlood => {
            for index in 0..inject::CONTINUATION_FRAMES {
                client.write_all(&inject::continuation(index)).await?;
            }
            return hold(client).await;
        }
        mode => {
            if let Some(bytes) = inject::after_upgrade(mode) {
                client.write_all(&bytes).await?;
                return hold(client).await;
            }
        }
    }
    relay_frames(client, upstream, early, context).await
}

/// Read (and discard) what the client sends for at most [`HOLD`], keeping
/// the connection open: the client has to notice the fault by itself.
async fn hold(mut client: TcpStream) -> std::io::Result<()> {
    let drain = async {
        let mut buf = vec![0u8; PIECE];
        while client.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = timeout(HOLD, drain).await;
    Ok(())
}

async fn trickle(client: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    for byte in bytes {
        client.write_all(std::slice::from_ref(byte)).await?;
        sleep(TRICKLE).await;
    }
    Ok(())
}

/// The HTTP head (through the blank line) and whatever followed it in the
/// same reads.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let read = async {
        let mut buf = Vec::new();
        let mut piece = [0u8; 2048];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = buf.split_off(end + 4);
                return Ok((buf, rest));
            }
            if buf.len() > MAX_HEAD {
                return Err(invalid("HTTP head too long"));
            }
            let n = stream.read(&mut piece).await?;
            if n == 0 {
                return Err(invalid("connection closed inside the HTTP head"));
            }
            buf.extend_from_slice(&piece[..n]);
        }
    };
    timeout(HEAD_TIMEOUT, read)
        .await
        .map_err(|_| invalid("no HTTP head in time"))?
}

fn invalid(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned())
}

fn is_upgrade(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines()
        .any(|l| l.starts_with("upgrade:") && l.contains("websocket"))
}

fn request_path(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or("");
    line.split(' ').nth(1).unwrap_or("").to_owned()
}

/// Relay bytes both ways unchanged (throttled in [`Mode::Throttle`]);
/// `first` goes to the upstream first.
async fn relay_plain(
    client: TcpStream,
    upstream: TcpStream,
    first: Vec<u8>,
    context: &Context,
) -> std::io::Result<()> {
    let (cr, cw) = client.into_split();
    let (ur, mut uw) = upstream.into_split();
    uw.write_all(&first).await?;
    count(context, first.len());
    let up = copy(cr, uw, context, true);
    let down = copy(ur, cw, context, false);
    let _ = tokio::join!(up, down);
    Ok(())
}

async fn copy<R, W>(
    mut from: R,
    mut to: W,
    context: &Context,
    from_client: bool,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; PIECE];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        if from_client {
            count(context, n);
        }
        pace(context, n).await;
    }
}

fn count(context: &Context, bytes: usize) {
    context
        .stats
        .client_bytes
        .fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Sleep as long as `bytes` take at the throttled rate.
async fn pace(context: &Context, bytes: usize) {
    if let Some(rate) = context.throttle {
        let nanos = (bytes as u128 * 1_000_000_000 / u128::from(rate)).min(u128::from(u64::MAX));
        sleep(Duration::from_nanos(nanos as u64)).await;
    }
}

/// Relay frames both ways, with the mode's rewrites and floods. Every
/// frame to the client goes through one queue, so floods, rewrites and
/// relayed frames interleave.
async fn relay_frames(
    client: TcpStream,
    upstream: TcpStream,
    early: Vec<u8>,
    context: &Context,
) -> std::io::Result<()> {
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE);
    let mode = context.mode;
    let throttle = context.throttle;
    let mut tasks = JoinSet::new();
    tasks.spawn(write_client(rx, cw, throttle));
    let flood = match mode {
        Mode::PingFlood => Some(tasks.spawn(ping_flood(tx.clone(), inject::FLOOD_PINGS))),
        Mode::PingBurst => Some(tasks.spawn(ping_flood(tx.clone(), inject::BURST_PINGS))),
        _ => None,
    };
    let mut downstream = Box::pin(upstream_to_client(
        Cursor::new(early).chain(ur),
        tx.clone(),
        mode,
    ));
    tokio::select! {
        _ = client_to_upstream(cr, uw, tx, context) => {
            // The client is done sending; let the emulator's last frames through.
            let _ = timeout(GRACE, &mut downstream).await;
        }
        // The emulator closed: so does the client's side, as a cut would.
        _ = &mut downstream => {}
    }
    drop(downstream);
    if let Some(flood) = flood {
        flood.abort();
    }
    // No sender is left: the writer sends what is queued and closes.
    let _ = timeout(GRACE, async { while tasks.join_next().await.is_some() {} }).await;
    Ok(())
}

async fn write_client(
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut cw: OwnedWriteHalf,
    throttle: Option<u64>,
) -> std::io::Result<()> {
    while let Some(bytes) = rx.recv().await {
        match throttle {
            Some(rate) => {
                for piece in bytes.chunks(PIECE) {
                    cw.write_all(piece).await?;
                    let nanos = piece.len() as u64 * 1_000_000_000 / rate;
                    sleep(Duration::from_nanos(nanos)).await;
                }
            }
            None => cw.write_all(&bytes).await?,
        }
    }
    cw.shutdown().await
}

async fn upstream_to_client<R: AsyncRead + Unpin>(
    mut from: R,
    tx: mpsc::Sender<Vec<u8>>,
    mode: Mode,
) -> std::io::Result<()> {
    let mut rewritten = false;
    while let Some(frame) = read_frame(&mut from).await? {
        let replacement = match frame.text() {
            Some(text) if frame.opcode == OP_TEXT => {
                inject::cfms_rewrite(mode, text, &mut rewritten)
            }
            _ => None,
        };
        let bytes = replacement.unwrap_or(frame.raw);
        if tx.send(bytes).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn client_to_upstream(
    mut cr: OwnedReadHalf,
    mut uw: OwnedWriteHalf,
    tx: mpsc::Sender<Vec<u8>>,
    context: &Context,
) -> std::io::Result<()> {
    while let Some(frame) = read_frame(&mut cr).await? {
        count(context, frame.raw.len());
        let flooding = matches!(context.mode, Mode::PingFlood | Mode::PingBurst);
        if flooding && frame.opcode == OP_PONG {
            continue;
        }
        if context.mode == Mode::EndlessAnswer && frame.opcode == OP_TEXT {
            let request = frame.text().and_then(inject::fnos_request);
            if let Some((_, reqid)) = request.filter(|(req, _)| req == "file.ls") {
                return endless_answer(&reqid, &tx).await;
            }
        }
        uw.write_all(&frame.raw).await?;
        pace(context, frame.raw.len()).await;
    }
    uw.shutdown().await
}

/// Partial answer frames to `reqid` until the client stops reading, the
/// count runs out or [`HOLD`] has passed.
async fn endless_answer(
    reqid: &serde_json::Value,
    tx: &mpsc::Sender<Vec<u8>>,
) -> std::io::Result<()> {
    let part = inject::endless_part(reqid);
    let until = Instant::now() + HOLD;
    for _ in 0..inject::ENDLESS_FRAMES {
        if Instant::now() > until || tx.send(part.clone()).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// `count` PINGs, or as many as [`HOLD`] allows.
async fn ping_flood(tx: mpsc::Sender<Vec<u8>>, count: u32) -> std::io::Result<()> {
    let ping = inject::ping();
    let until = Instant::now() + HOLD;
    for _ in 0..count {
        if Instant::now() > until || tx.send(ping.clone()).await.is_err() {
            break;
        }
    }
    Ok(())
}
