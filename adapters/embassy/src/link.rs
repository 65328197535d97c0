//! The WebSocket under every session: the transport, the core's client,
//! and the read buffer, with the three moves every driver needs (write out
//! what is queued, feed what was read, wait for bytes or a deadline).
#![deny(clippy::indexing_slicing)]

use core::cell::RefCell;

use embassy_futures::select::{Either, select};
use embassy_time::Timer;
use embedded_io_async::{Read, Write};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, CloseCode, SendError, Url};

use crate::Error;
use crate::fmt::debug;
use crate::time::{now, to_embassy};

/// Extra handshake headers: neither fnOS nor CFMS checks any.
const NO_HEADERS: &[(&str, &str)] = &[];

/// A random source shared by the WebSocket (frame masks) and a session
/// (login keys, RSA padding): both are called from one task, one at a time.
pub(crate) struct SharedEntropy<'r, R>(pub(crate) &'r RefCell<R>);

impl<R: Entropy> Entropy for SharedEntropy<'_, R> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.borrow_mut().fill_bytes(dest);
    }
}

pub(crate) struct Link<'a, T, R> {
    io: T,
    pub(crate) ws: ws::Client<&'a mut [u8], SharedEntropy<'a, R>>,
    read: &'a mut [u8],
    /// Received bytes not yet taken by the WebSocket: `read[start..end]`.
    start: usize,
    end: usize,
}

impl<'a, T: Read + Write, R: Entropy> Link<'a, T, R> {
    /// Run the opening handshake.
    pub(crate) async fn open(
        io: T,
        url: &Url<'_>,
        config: ws::Config,
        rng: &'a RefCell<R>,
        rx: &'a mut [u8],
        tx: &'a mut [u8],
        read: &'a mut [u8],
    ) -> Result<Self, Error<T::Error>> {
        let ws = ws::Client::connect(now(), url, NO_HEADERS, config, SharedEntropy(rng), rx, tx)
            .map_err(Error::Connect)?;
        let mut link = Link {
            io,
            ws,
            read,
            start: 0,
            end: 0,
        };
        link.handshake().await?;
        debug!("websocket open");
        Ok(link)
    }

    async fn handshake(&mut self) -> Result<(), Error<T::Error>> {
        let mut rejected = None;
        loop {
            self.flush().await?;
            let progressed = self.take_input();
            while let Some(event) = self.ws.poll_event() {
                match event {
                    ws::Event::Connected => return Ok(()),
                    ws::Event::Rejected(response) => rejected = Some(response.status()),
                    ws::Event::Closed(closed) => {
                        return Err(match rejected {
                            Some(status) => Error::Rejected { status },
                            None => Error::Closed(closed),
                        });
                    }
                    _ => {}
                }
            }
            if !progressed {
                self.wait(self.ws.poll_timeout()).await?;
            }
        }
    }

    /// `true` while read bytes wait for the WebSocket.
    pub(crate) fn has_input(&self) -> bool {
        self.start < self.end
    }

    /// Feed buffered bytes to the WebSocket; `true` if it took any.
    pub(crate) fn take_input(&mut self) -> bool {
        if self.start >= self.end {
            return false;
        }
        let used = self.ws.handle_input(
            now(),
            self.read.get(self.start..self.end).unwrap_or_default(),
        );
        self.start += used;
        used > 0
    }

    /// Queue a message, writing out earlier frames first if the transmit
    /// buffer lacks room.
    pub(crate) async fn send(
        &mut self,
        kind: ws::MessageKind,
        message: &[u8],
    ) -> Result<(), Error<T::Error>> {
        for attempt in 0..2 {
            let queued = match kind {
                ws::MessageKind::Text => match core::str::from_utf8(message) {
                    Ok(text) => self.ws.send_text(text),
                    // Sessions write JSON; anything else is not sendable as text.
                    Err(_) => return Err(Error::NotText),
                },
                ws::MessageKind::Binary => self.ws.send_binary(message),
            };
            match queued {
                Err(SendError::InsufficientSize(_)) if attempt == 0 => self.flush().await?,
                other => return other.map_err(Error::Send),
            }
        }
        Ok(())
    }

    /// Write every queued byte.
    pub(crate) async fn flush(&mut self) -> Result<(), Error<T::Error>> {
        let mut wrote = false;
        while let Some(bytes) = self.ws.poll_transmit() {
            let n = self.io.write(bytes).await.map_err(Error::Io)?;
            if n == 0 {
                return Err(Error::WriteZero);
            }
            self.ws.advance_transmit(n);
            wrote = true;
        }
        if wrote {
            self.io.flush().await.map_err(Error::Io)?;
        }
        Ok(())
    }

    /// Wait for bytes (buffered into `read`) or for `deadline`, then
    /// advance the WebSocket's timers; the caller advances its session's.
    pub(crate) async fn wait(&mut self, deadline: Option<Instant>) -> Result<(), Error<T::Error>> {
        let timer = async {
            match deadline {
                Some(at) => Timer::at(to_embassy(at)).await,
                None => core::future::pending().await,
            }
        };
        match select(self.io.read(self.read), timer).await {
            Either::First(Ok(0)) => {
                debug!("transport ended");
                self.ws.handle_eof();
            }
            Either::First(Ok(n)) => {
                self.start = 0;
                self.end = n;
            }
            Either::First(Err(e)) => return Err(Error::Io(e)),
            Either::Second(()) => {}
        }
        self.ws.handle_timeout(now());
        Ok(())
    }

    /// Close politely, bounded by the client's close timeout.
    pub(crate) async fn close(&mut self) {
        if self.ws.close(now(), CloseCode::NORMAL, "").is_err() {
            return;
        }
        loop {
            if self.flush().await.is_err() {
                return;
            }
            let progressed = self.take_input();
            while let Some(event) = self.ws.poll_event() {
                if let ws::Event::Closed(_) = event {
                    return;
                }
            }
            if !progressed && self.wait(self.ws.poll_timeout()).await.is_err() {
                return;
            }
        }
    }
}
