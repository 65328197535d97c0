//! Protocol 13 framing: every message is `u32 BE stream id | u8 type | payload`
//! (type 0 PROCESS, 1 CONCLUSION), many streams per connection, each request
//! served by its own task and answered when it finishes.
//!
//! The dispatcher follows the real server's `MultiplexConnection`:
//!
//! - a message shorter than 5 bytes, or with a type byte other than 0 or 1,
//!   is ignored; a text message is read as its UTF-8 bytes (so JSON text is
//!   dropped: its fifth byte is not 0 or 1);
//! - a frame on an unknown id opens a stream whose first payload is the
//!   request; a CONCLUSION received or sent forgets the id;
//! - an id whose handler ended without a CONCLUSION stays bound: frames on it
//!   are swallowed, and once 100 of them are queued nobody reads, the whole
//!   connection is wedged (data messages ignored, PINGs still answered);
//! - server-initiated streams (lockdown events) use even ids 2, 4, 6, …

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::actions::Reply;
use super::connection::Io;
use super::p13;
use super::server::{Control, Shared};

/// Frame type of every frame but the last one a side sends on a stream.
pub(crate) const PROCESS: u8 = 0;
/// Frame type of the last frame a side sends on a stream.
pub(crate) const CONCLUSION: u8 = 1;
/// Frames queued per stream before the dispatcher blocks (the real server's
/// `Stream._queue`).
const STREAM_QUEUE: usize = 100;

/// Split a message into `(stream id, type, payload)`; `None` for a message
/// the real server ignores (shorter than the header, or an unknown type).
pub(crate) fn parse(bytes: &[u8]) -> Option<(u32, u8, &[u8])> {
    let (header, payload) = bytes.split_at_checked(5)?;
    let (id, kind) = header.split_at_checked(4)?;
    let id = u32::from_be_bytes(id.try_into().ok()?);
    let kind = *kind.first()?;
    (kind == PROCESS || kind == CONCLUSION).then_some((id, kind, payload))
}

/// A frame as sent on the wire.
pub(crate) fn encode(id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.extend_from_slice(&id.to_be_bytes());
    frame.push(kind);
    frame.extend_from_slice(payload);
    frame
}

type Sink = SplitSink<WebSocketStream<Io>, Message>;

/// What the streams of one connection share: the sending half and the ids
/// still bound.
pub(crate) struct Out {
    sink: tokio::sync::Mutex<Sink>,
    /// Bound ids and their handler's queue (a closed queue: a dead stream).
    streams: Mutex<HashMap<u32, mpsc::Sender<Vec<u8>>>>,
    /// Frames swallowed by dead streams, per id.
    dead: Mutex<HashMap<u32, usize>>,
}

impl Out {
    async fn write(&self, frame: Vec<u8>) -> Option<()> {
        self.sink
            .lock()
            .await
            .send(Message::Binary(frame.into()))
            .await
            .ok()
    }

    fn forget(&self, id: u32) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// One stream as its handler sees it.
pub(crate) struct StreamCtx {
    pub id: u32,
    pub shared: Arc<Shared>,
    out: Arc<Out>,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl StreamCtx {
    /// Send a PROCESS frame; `None` when the connection is gone.
    pub async fn process(&self, payload: &[u8]) -> Option<()> {
        self.out.write(encode(self.id, PROCESS, payload)).await
    }

    /// Send a PROCESS frame carrying `value` as JSON.
    pub async fn process_json(&self, value: &Value) -> Option<()> {
        self.process(value.to_string().as_bytes()).await
    }

    /// Send the answer envelope as the stream's CONCLUSION (the id is
    /// forgotten first, so the client may not reuse it meanwhile).
    pub async fn conclude(&self, reply: Reply) -> Option<()> {
        let message = json!({
            "code": reply.code,
            "data": reply.data,
            "message": reply.message,
            "timestamp": self.shared.now(),
        });
        self.out.forget(self.id);
        let frame = encode(self.id, CONCLUSION, message.to_string().as_bytes());
        self.out.write(frame).await
    }

    /// The next payload the client sends on this stream; `None` when the
    /// client concluded it or the connection is over.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }
}

/// Serve one protocol-13 connection until it ends.
pub(crate) async fn serve(ws: WebSocketStream<Io>, shared: Arc<Shared>) {
    let (sink, mut incoming) = ws.split();
    let out = Arc::new(Out {
        sink: tokio::sync::Mutex::new(sink),
        streams: Mutex::new(HashMap::new()),
        dead: Mutex::new(HashMap::new()),
    });
    // Dropping the set when the connection ends aborts its handlers.
    let mut handlers = JoinSet::new();
    let mut control = shared.subscribe();
    let every = shared.config.ping_interval;
    let pong_timeout = shared.config.pong_timeout;
    let mut ping_every = interval_at(Instant::now() + every, every);
    ping_every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ping_sent: Option<Instant> = None;
    let mut next_event_id: u32 = 2;
    let mut wedged = false;
    loop {
        let pong_deadline = ping_sent.map(|t| t + pong_timeout);
        tokio::select! {
            message = incoming.next() => {
                let bytes = match message {
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Pong(_))) => {
                        ping_sent = None;
                        continue;
                    }
                    // tungstenite queued the PONG; a flush sends it.
                    Some(Ok(Message::Ping(_))) => {
                        let _ = out.sink.lock().await.flush().await;
                        continue;
                    }
                    Some(Ok(Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        let _ = out.sink.lock().await.flush().await;
                        return;
                    }
                };
                if wedged {
                    continue;
                }
                if shared.ip_blocked.load(Ordering::Relaxed)
                    && let Some((id, _, _)) = parse(&bytes)
                {
                    refuse_blocked(&out, &shared, id).await;
                    return;
                }
                wedged = dispatch(&out, &shared, &mut handlers, &bytes).await;
            }
            _ = ping_every.tick() => {
                if ping_sent.is_none() {
                    let sent = out.sink.lock().await.send(Message::Ping(Vec::new().into())).await;
                    if sent.is_err() {
                        return;
                    }
                    ping_sent = Some(Instant::now());
                }
            }
            _ = sleep_until(pong_deadline.unwrap_or_else(Instant::now)), if pong_deadline.is_some() => {
                return;
            }
            Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
            control = control.recv() => match control {
                Ok(Control::Lockdown(on)) => {
                    let id = next_event_id;
                    next_event_id = next_event_id.wrapping_add(2);
                    let event = json!({"event": "lockdown", "data": {"status": on}});
                    if out.write(encode(id, CONCLUSION, event.to_string().as_bytes())).await.is_none() {
                        return;
                    }
                }
                Ok(Control::Drop) | Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
            },
        }
    }
}

/// A blocked IP's request (`cfms-13.md` §3 step 1): 403 without `data`,
/// then close 1008. (The document cuts the message after its first words;
/// the rest is not recorded and left out.)
async fn refuse_blocked(out: &Arc<Out>, shared: &Arc<Shared>, id: u32) {
    let reply = json!({
        "code": 403,
        "message": "Your IP has been temporarily blocked",
        "timestamp": shared.now(),
    });
    if out
        .write(encode(id, CONCLUSION, reply.to_string().as_bytes()))
        .await
        .is_none()
    {
        return;
    }
    let close = CloseFrame {
        code: CloseCode::Policy,
        reason: "".into(),
    };
    let mut sink = out.sink.lock().await;
    let _ = sink.send(Message::Close(Some(close))).await;
    let _ = sink.flush().await;
}

/// Route one client message; answers whether the connection is now wedged.
async fn dispatch(
    out: &Arc<Out>,
    shared: &Arc<Shared>,
    handlers: &mut JoinSet<()>,
    bytes: &[u8],
) -> bool {
    let Some((id, kind, payload)) = parse(bytes) else {
        return false;
    };
    let known = {
        let streams = out.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.get(&id).cloned()
    };
    match known {
        Some(tx) if tx.is_closed() => {
            // Nobody reads this queue any more: it fills, then blocks the
            // dispatcher for good.
            let mut dead = out.dead.lock().unwrap_or_else(|e| e.into_inner());
            let count = dead.entry(id).or_default();
            *count += 1;
            if kind == CONCLUSION {
                drop(dead);
                out.forget(id);
                return false;
            }
            *count > STREAM_QUEUE
        }
        Some(tx) => {
            if kind == CONCLUSION {
                out.forget(id);
            }
            // A full queue blocks the dispatcher, as on the real server.
            let _ = tx.send(payload.to_vec()).await;
            false
        }
        None => {
            let (tx, rx) = mpsc::channel(STREAM_QUEUE);
            if kind != CONCLUSION {
                out.streams
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, tx);
            }
            out.dead
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            let ctx = StreamCtx {
                id,
                shared: shared.clone(),
                out: out.clone(),
                rx,
            };
            let request = payload.to_vec();
            handlers.spawn(p13::handle(ctx, request));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: no panic; a frame is exactly what was encoded.
        #[test]
        fn parse_never_panics_and_inverts_encode(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some((id, kind, payload)) = parse(&bytes) {
                prop_assert!(kind <= CONCLUSION);
                prop_assert_eq!(encode(id, kind, payload), bytes);
            } else {
                prop_assert!(bytes.len() < 5 || bytes[4] > CONCLUSION);
            }
        }
    }

    #[test]
    fn parse_takes_the_header_apart_and_ignores_what_the_server_ignores() {
        assert_eq!(
            parse(&[0, 0, 0, 7, 1, b'x']),
            Some((7, CONCLUSION, &b"x"[..]))
        );
        assert_eq!(parse(&[0, 0, 1, 0, 0]), Some((256, PROCESS, &b""[..])));
        assert_eq!(parse(&[0, 0, 0, 1]), None);
        assert_eq!(parse(&[0, 0, 0, 1, 2, b'{']), None);
        assert_eq!(parse(b"{\"action\""), None);
        assert_eq!(encode(258, PROCESS, b"ok"), vec![0, 0, 1, 2, 0, b'o', b'k']);
    }
}
