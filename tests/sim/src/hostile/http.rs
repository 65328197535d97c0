//! The download modes' answers to fnOS `GET /multiple-download`.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep};

use super::{HOLD, Mode};

/// Body bytes per piece of the endless bodies.
const PIECE: usize = 64 * 1024;
/// Pause between two pieces: about 6.4 MB/s, enough to notice, little
/// enough for a disk.
const PACE: Duration = Duration::from_millis(10);
/// The body [`Mode::DownloadNoLength`] sends before closing.
const SHORT_BODY: usize = 100 * 1024;

/// Answer the download request on `client` as `mode` says, then close.
pub(crate) async fn answer_download(mut client: TcpStream, mode: Mode) -> std::io::Result<()> {
    let head = match mode {
        Mode::DownloadLyingLength => {
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1099511627776\r\n\r\n"
        }
        Mode::DownloadEndless => {
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        }
        _ => {
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        }
    };
    client.write_all(head.as_bytes()).await?;
    if mode == Mode::DownloadNoLength {
        client.write_all(&[0u8; SHORT_BODY]).await?;
        return client.shutdown().await;
    }
    let body = vec![0u8; PIECE];
    let until = Instant::now() + HOLD;
    while Instant::now() < until {
        if mode == Mode::DownloadEndless {
            client
                .write_all(format!("{PIECE:x}\r\n").as_bytes())
                .await?;
            client.write_all(&body).await?;
            client.write_all(b"\r\n").await?;
        } else {
            client.write_all(&body).await?;
        }
        sleep(PACE).await;
    }
    client.shutdown().await
}
