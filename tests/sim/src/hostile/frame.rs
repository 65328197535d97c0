//! The few WebSocket frame pieces the proxy needs (RFC 6455 5.2): read one
//! frame with its bytes as they were on the wire, and write unmasked server
//! frames. The proxy relays frames verbatim, so it never re-encodes what it
//! does not change.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Continuation frame.
pub(crate) const OP_CONTINUATION: u8 = 0x0;
/// Text frame.
pub(crate) const OP_TEXT: u8 = 0x1;
/// Binary frame.
pub(crate) const OP_BINARY: u8 = 0x2;
/// Ping frame.
pub(crate) const OP_PING: u8 = 0x9;
/// Pong frame.
pub(crate) const OP_PONG: u8 = 0xA;

/// The largest frame the proxy relays: a client that sends more in one
/// frame (a whole file gathered into one upload frame) still gets through
/// up to here, so its own memory use is what a test measures; beyond it
/// the proxy drops the connection instead of buffering without bound.
pub(crate) const MAX_RELAYED_FRAME: u64 = 256 << 20;

/// The largest text or control payload the proxy unmasks to look into.
const MAX_INSPECTED: u64 = 1 << 20;

/// One frame as read.
pub(crate) struct Frame {
    /// Header and payload exactly as received (still masked from a client).
    pub raw: Vec<u8>,
    /// The opcode (low four bits of the first byte).
    pub opcode: u8,
    /// The unmasked payload of a text or control frame up to
    /// [`MAX_INSPECTED`] bytes; empty otherwise.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The payload as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

/// Read one frame; `None` at a clean end of stream before a frame starts.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 2];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let [first, second] = head;
    let mut raw = head.to_vec();
    let len = match second & 0x7f {
        126 => u64::from(u16::from_be_bytes(read_array::<_, 2>(r, &mut raw).await?)),
        127 => u64::from_be_bytes(read_array::<_, 8>(r, &mut raw).await?),
        n => u64::from(n),
    };
    if len > MAX_RELAYED_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is more than the proxy relays"),
        ));
    }
    let mask = if second & 0x80 != 0 {
        Some(read_array::<_, 4>(r, &mut raw).await?)
    } else {
        None
    };
    let start = raw.len();
    // In range: len <= MAX_RELAYED_FRAME, checked above.
    raw.resize(start + len as usize, 0);
    r.read_exact(&mut raw[start..]).await?;
    let opcode = first & 0x0f;
    let inspect = opcode != OP_BINARY && opcode != OP_CONTINUATION && len <= MAX_INSPECTED;
    let mut payload = if inspect {
        raw[start..].to_vec()
    } else {
        Vec::new()
    };
    if let Some(mask) = mask {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
    }
    Ok(Some(Frame {
        raw,
        opcode,
        payload,
    }))
}

async fn read_array<R: AsyncRead + Unpin, const N: usize>(
    r: &mut R,
    raw: &mut Vec<u8>,
) -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    r.read_exact(&mut bytes).await?;
    raw.extend_from_slice(&bytes);
    Ok(bytes)
}

/// The header of an unmasked frame announcing `len` payload bytes, whatever
/// `len` is (the hostile modes announce lengths no peer should accept).
pub(crate) fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let first = if fin { 0x80 } else { 0 } | (opcode & 0x0f);
    let mut out = vec![first];
    match len {
        0..=125 => out.push(len as u8),
        126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out
}

/// An unmasked frame (as a server sends it).
pub(crate) fn encode(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, opcode, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_masked_frame_reads_back_unmasked_with_its_raw_bytes() {
        let mask = [1u8, 2, 3, 4];
        let mut wire = vec![0x81, 0x85];
        wire.extend_from_slice(&mask);
        wire.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let frame = read_frame(&mut wire.as_slice()).await.unwrap().unwrap();
        assert_eq!(frame.raw, wire);
        assert_eq!(frame.opcode, OP_TEXT);
        assert_eq!(frame.text(), Some("hello"));
    }

    #[tokio::test]
    async fn extended_lengths_round_trip() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let frame = encode(true, OP_BINARY, &vec![7u8; len]);
            let read = read_frame(&mut frame.as_slice()).await.unwrap().unwrap();
            assert_eq!(read.raw.len(), frame.len(), "length {len}");
        }
    }

    #[tokio::test]
    async fn a_frame_over_the_relay_limit_is_refused_before_allocation() {
        let wire = header(true, OP_BINARY, 1 << 62);
        let err = read_frame(&mut wire.as_slice()).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn end_of_stream_between_frames_is_none() {
        assert!(
            read_frame(&mut [0u8; 0].as_slice())
                .await
                .unwrap()
                .is_none()
        );
    }
}
