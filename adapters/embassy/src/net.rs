//! Resolve a host name and open the TCP connection on an embassy-net
//! [`Stack`].
//!
//! ```text
//! open_tcp: dns_query(host, A) ──► first address ──► TcpSocket::connect(addr:port)
//! ```
//!
//! An IPv4 literal skips DNS. The socket's buffers come from the caller, so
//! one pair serves every reconnect.
#![deny(clippy::indexing_slicing)]

use embassy_net::dns::{self, DnsQueryType};
use embassy_net::tcp::{self, TcpSocket};
use embassy_net::{IpAddress, Stack};
use embassy_time::Duration;

use crate::fmt::debug;

/// Why the TCP connection could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectError {
    /// The DNS query failed.
    Dns(dns::Error),
    /// The name resolved to no IPv4 address.
    NoAddress,
    /// The TCP connection was refused, reset or timed out.
    Tcp(tcp::ConnectError),
}

/// The first IPv4 address of `host` (an address literal is returned as is).
pub async fn resolve(stack: Stack<'_>, host: &str) -> Result<IpAddress, ConnectError> {
    let addresses = stack
        .dns_query(host, DnsQueryType::A)
        .await
        .map_err(ConnectError::Dns)?;
    addresses.first().copied().ok_or(ConnectError::NoAddress)
}

/// Resolve `host` and connect a TCP socket to it on `port`, using the
/// caller's buffers. `timeout` bounds the connect and later idle periods;
/// the session's heartbeat notices a dead peer sooner.
pub async fn open_tcp<'b>(
    stack: Stack<'b>,
    host: &str,
    port: u16,
    rx_buffer: &'b mut [u8],
    tx_buffer: &'b mut [u8],
    timeout: Duration,
) -> Result<TcpSocket<'b>, ConnectError> {
    let address = resolve(stack, host).await?;
    let mut socket = TcpSocket::new(stack, rx_buffer, tx_buffer);
    socket.set_timeout(Some(timeout));
    debug!("tcp: connecting to port {}", port);
    match socket.connect((address, port)).await {
        Ok(()) => Ok(socket),
        Err(e) => {
            socket.abort();
            Err(ConnectError::Tcp(e))
        }
    }
}
