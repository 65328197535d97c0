//! The error type of the test files' `embedded-io-async` adapters over a
//! tokio `TcpStream`.

/// A socket error, as `embedded-io-async` sees it.
#[derive(Debug, PartialEq)]
pub struct IoError;

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("socket error")
    }
}

impl std::error::Error for IoError {}

impl embedded_io_async::Error for IoError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::Other
    }
}
