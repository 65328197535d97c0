//! One client connection: the receive loop with PING/PONG supervision and
//! listener pushes, and the in-order request loop on top of it.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::actions;
use super::server::{Control, Shared};

/// How long a closing connection waits for the client's close reply.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A byte stream a WebSocket runs over (plain TCP or TLS).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The boxed transport of every connection.
pub(crate) type Io = Box<dyn Stream>;

/// A data message from the client.
#[derive(Debug)]
pub(crate) enum Incoming {
    Text(String),
    Binary(Vec<u8>),
}

/// The server side of one WebSocket.
pub(crate) struct Conn {
    ws: WebSocketStream<Io>,
    pub shared: Arc<Shared>,
    control: broadcast::Receiver<Control>,
    /// Sent `register_listener`: gets lockdown pushes.
    pub listener: bool,
    ping_sent: Option<Instant>,
    ping_every: tokio::time::Interval,
}

impl Conn {
    /// The next data message, answering PINGs, supervising PONGs and
    /// forwarding lockdown pushes meanwhile. `None`: the connection is over
    /// (closed by the client, PONG overdue, dropped by the server).
    pub async fn recv(&mut self) -> Option<Incoming> {
        let pong_timeout = self.shared.config.pong_timeout;
        loop {
            let pong_deadline = self.ping_sent.map(|t| t + pong_timeout);
            tokio::select! {
                message = self.ws.next() => match message? {
                    Ok(Message::Text(text)) => return Some(Incoming::Text(text.to_string())),
                    Ok(Message::Binary(bytes)) => return Some(Incoming::Binary(bytes.to_vec())),
                    // tungstenite queued the PONG; flushing sends it now.
                    Ok(Message::Ping(_)) => self.ws.flush().await.ok()?,
                    Ok(Message::Pong(_)) => self.ping_sent = None,
                    Ok(Message::Close(_)) | Err(_) => {
                        let _ = self.ws.flush().await;
                        return None;
                    }
                    Ok(Message::Frame(_)) => {}
                },
                _ = self.ping_every.tick() => self.ping().await?,
                _ = sleep_until(pong_deadline.unwrap_or_else(Instant::now)), if pong_deadline.is_some() => {
                    return None;
                }
                control = self.control.recv() => self.obey(control).await?,
            }
        }
    }

    /// Wait `duration` before answering (the bad-password delay), still
    /// sending PINGs and lockdown pushes — a push can thus arrive between a
    /// request and its answer, as on the real server. Client messages stay
    /// queued until the next [`recv`](Self::recv).
    pub async fn pause(&mut self, duration: std::time::Duration) -> Option<()> {
        let until = Instant::now() + duration;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return Some(()),
                _ = self.ping_every.tick() => self.ping().await?,
                control = self.control.recv() => self.obey(control).await?,
            }
        }
    }

    /// Send a text message; `None` when the connection is gone.
    pub async fn send_text(&mut self, text: String) -> Option<()> {
        self.ws.send(Message::Text(text.into())).await.ok()
    }

    /// Close with `code` and no reason, as after malformed JSON.
    pub async fn close(&mut self, code: CloseCode) {
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        // Let the client's close reply arrive before the socket goes away,
        // but do not wait for a client that never answers.
        let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }

    /// PING unless one is still unanswered.
    async fn ping(&mut self) -> Option<()> {
        if self.ping_sent.is_none() {
            self.ws.send(Message::Ping(Vec::new().into())).await.ok()?;
            self.ping_sent = Some(Instant::now());
        }
        Some(())
    }

    /// Act on a control message; `None` when it ends the connection.
    async fn obey(&mut self, control: Result<Control, broadcast::error::RecvError>) -> Option<()> {
        match control {
            Ok(Control::Lockdown(on)) => self.push_lockdown(on).await,
            Ok(Control::Drop) | Err(broadcast::error::RecvError::Closed) => None,
            Err(broadcast::error::RecvError::Lagged(_)) => Some(()),
        }
    }

    async fn push_lockdown(&mut self, on: bool) -> Option<()> {
        if !self.listener {
            return Some(());
        }
        // Byte for byte what the real server sends (Python's json.dumps).
        let push = format!(r#"{{"action": "lockdown", "status": {on}}}"#);
        self.ws
            .send(Message::Binary(push.into_bytes().into()))
            .await
            .ok()
    }
}

/// Serve one connection until it ends.
pub(crate) async fn serve(ws: WebSocketStream<Io>, shared: Arc<Shared>) {
    let every = shared.config.ping_interval;
    let mut ping_every = interval_at(Instant::now() + every, every);
    ping_every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut conn = Conn {
        ws,
        control: shared.subscribe(),
        shared,
        listener: false,
        ping_sent: None,
        ping_every,
    };
    while let Some(message) = conn.recv().await {
        let bytes = match message {
            Incoming::Text(text) => text.into_bytes(),
            Incoming::Binary(bytes) => bytes,
        };
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(request)) => {
                if actions::handle(&mut conn, request).await.is_none() {
                    return;
                }
            }
            _ => {
                conn.close(CloseCode::Normal).await;
                return;
            }
        }
    }
}
