//! RFC 6455 frame layer, in two levels (as smoltcp's `wire` does):
//!
//! - [`Frame`] is a checked view over bytes: [`Frame::new_checked`] makes
//!   sure the whole header is present, after which no accessor can panic.
//! - [`FrameHeader`] is the compact meaning of a header, with
//!   [`FrameHeader::parse`], [`FrameHeader::emit`] and
//!   [`FrameHeader::buffer_len`].
//!
//! Around them sit the two hot paths the client and the benchmarks use:
//! [`encode_masked`] (header + copy + mask in one pass) and
//! [`decode_in_place`] (header + unmask in place), both built on
//! [`apply_mask`]/[`copy_masked`], which XOR eight bytes at a time and carry
//! the mask phase across chunk boundaries so a payload can be masked in
//! pieces as it arrives or leaves.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               | Masking-key, if MASK set to 1 |
//! +-------------------------------+-------------------------------+
//! ```
#![deny(clippy::indexing_slicing)]

use core::fmt;

/// The longest possible header: 2 fixed bytes, 8 length bytes, 4 mask bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// The longest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The frame kinds RFC 6455 defines. The reserved opcodes (3–7, 11–15) have
/// no variant: [`FrameHeader::parse`] rejects them with
/// [`FrameError::ReservedOpcode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// A further fragment of the message in progress.
    Continuation = 0x0,
    /// First frame of a UTF-8 text message.
    Text = 0x1,
    /// First frame of a binary message.
    Binary = 0x2,
    /// Close handshake.
    Close = 0x8,
    /// Keep-alive request; answered with a pong carrying the same payload.
    Ping = 0x9,
    /// Answer to a ping (or an unsolicited heartbeat).
    Pong = 0xA,
}

impl Opcode {
    /// The opcode for a wire value, `None` for a reserved one.
    pub const fn from_u8(value: u8) -> Option<Opcode> {
        Some(match value {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Control frames (close, ping, pong) may interleave with fragments but
    /// must be final and short.
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Why bytes do not form a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The opcode is one RFC 6455 reserves for future use.
    ReservedOpcode(u8),
    /// A 64-bit payload length with its most significant bit set, which
    /// RFC 6455 §5.2 forbids.
    LengthMsbSet,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            FrameError::LengthMsbSet => f.write_str("64-bit payload length has its top bit set"),
        }
    }
}

pub use crate::InsufficientSize;

/// The result of parsing input that may be cut short: either a value, or
/// "give me more bytes" (nothing is guessed from a prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// Enough bytes were there.
    Complete(T),
    /// The input ends before the item does.
    Partial,
}

/// A checked read-only view over a frame's bytes: once
/// [`new_checked`](Frame::new_checked) accepted the buffer, the whole header
/// is present and every accessor is infallible. The payload may still be
/// incomplete; [`payload`](Frame::payload) returns what is there.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap `buffer` without checking it; accessors read bytes missing from
    /// a short buffer as zero. Prefer [`new_checked`](Frame::new_checked).
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wrap `buffer` once its header is complete, `Partial` before that.
    pub fn new_checked(buffer: T) -> Status<Frame<T>> {
        let frame = Frame { buffer };
        match frame.check_len() {
            Some(_) => Status::Complete(frame),
            None => Status::Partial,
        }
    }

    /// The header length if the buffer holds the whole header.
    fn check_len(&self) -> Option<usize> {
        let b = self.buffer.as_ref();
        let [b0, b1, ..] = *b else {
            return None;
        };
        let len = header_len_from(b0, b1);
        (b.len() >= len).then_some(len)
    }

    /// Byte `i` of the buffer; zero past its end (only an unchecked view
    /// can be that short).
    fn byte(&self, i: usize) -> u8 {
        self.buffer.as_ref().get(i).copied().unwrap_or(0)
    }

    /// `N` bytes from `at`; zeros past the buffer's end.
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        core::array::from_fn(|i| self.byte(at + i))
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// FIN: this frame ends its message.
    pub fn fin(&self) -> bool {
        self.byte(0) & 0x80 != 0
    }

    /// The three RSV bits, as the low bits of the result.
    pub fn rsv(&self) -> u8 {
        (self.byte(0) >> 4) & 0x7
    }

    /// The opcode as sent, reserved values included.
    pub fn opcode_raw(&self) -> u8 {
        self.byte(0) & 0x0F
    }

    /// MASK bit: the payload is XORed with a masking key.
    pub fn masked(&self) -> bool {
        self.byte(1) & 0x80 != 0
    }

    /// Header length: 2, plus 2 or 8 extended-length bytes, plus 4 mask bytes.
    pub fn header_len(&self) -> usize {
        header_len_from(self.byte(0), self.byte(1))
    }

    /// The payload length field, decoded from whichever encoding was used.
    pub fn payload_len(&self) -> u64 {
        match self.byte(1) & 0x7F {
            126 => u16::from_be_bytes(self.bytes(2)) as u64,
            127 => u64::from_be_bytes(self.bytes(2)),
            n => n as u64,
        }
    }

    /// The masking key, if the MASK bit is set.
    pub fn mask(&self) -> Option<[u8; 4]> {
        if !self.masked() {
            return None;
        }
        Some(self.bytes(self.header_len() - 4))
    }

    /// The payload bytes present in the buffer (still masked if masked), at
    /// most [`payload_len`](Frame::payload_len) of them.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let start = self.header_len();
        let end = usize::try_from(self.payload_len())
            .ok()
            .and_then(|len| start.checked_add(len))
            .map_or(b.len(), |end| end.min(b.len()));
        b.get(start..end).unwrap_or_default()
    }
}

/// Header length implied by the first two bytes.
fn header_len_from(_b0: u8, b1: u8) -> usize {
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// The meaning of a frame header. Reserved opcodes are refused at parse time;
/// RSV bits are kept so the caller decides (the client refuses them as it
/// negotiates no extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// This frame ends its message.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits.
    pub rsv: u8,
    /// What the frame carries.
    pub opcode: Opcode,
    /// Masking key; clients must send one, servers must not.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Read the header of a checked frame view.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<FrameHeader, FrameError> {
        let raw = frame.opcode_raw();
        let opcode = Opcode::from_u8(raw).ok_or(FrameError::ReservedOpcode(raw))?;
        let payload_len = frame.payload_len();
        if payload_len >> 63 != 0 {
            return Err(FrameError::LengthMsbSet);
        }
        Ok(FrameHeader {
            fin: frame.fin(),
            rsv: frame.rsv(),
            opcode,
            mask: frame.mask(),
            payload_len,
        })
    }

    /// Parse a header from the start of `bytes`, `Partial` until it is all
    /// there. On success also returns the header length.
    ///
    /// This is the hot path of every received frame, so it reads the bytes
    /// directly instead of going through a [`Frame`] view (same checks).
    #[inline]
    pub fn parse_prefix(bytes: &[u8]) -> Result<Status<(FrameHeader, usize)>, FrameError> {
        let [b0, b1, rest @ ..] = bytes else {
            return Ok(Status::Partial);
        };
        let opcode = Opcode::from_u8(b0 & 0x0F).ok_or(FrameError::ReservedOpcode(b0 & 0x0F))?;
        let (payload_len, rest, ext) = match b1 & 0x7F {
            126 => match rest {
                [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]) as u64, rest, 2),
                _ => return Ok(Status::Partial),
            },
            127 => match rest.split_first_chunk::<8>() {
                Some((len, rest)) => (u64::from_be_bytes(*len), rest, 8),
                None => return Ok(Status::Partial),
            },
            n => (n as u64, rest, 0),
        };
        if payload_len >> 63 != 0 {
            return Err(FrameError::LengthMsbSet);
        }
        let mask = if b1 & 0x80 != 0 {
            match rest.first_chunk::<4>() {
                Some(mask) => Some(*mask),
                None => return Ok(Status::Partial),
            }
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode,
            mask,
            payload_len,
        };
        let len = 2 + ext + if mask.is_some() { 4 } else { 0 };
        Ok(Status::Complete((header, len)))
    }

    /// Length of this header on the wire, always using the minimal length
    /// encoding RFC 6455 §5.2 requires.
    pub const fn buffer_len(&self) -> usize {
        let ext = if self.payload_len <= 125 {
            0
        } else if self.payload_len <= 0xFFFF {
            2
        } else {
            8
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Write the header to the start of `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, InsufficientSize> {
        let len = self.buffer_len();
        let Some(out) = out.get_mut(..len) else {
            return Err(InsufficientSize { required: len });
        };
        let b0 = (self.fin as u8) << 7 | (self.rsv & 0x7) << 4 | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        // The length field is the last `ext_len` bytes of the 64-bit value.
        let (code, ext_len) = match self.payload_len {
            n @ 0..=125 => (n as u8, 0),
            126..=0xFFFF => (126, 2),
            _ => (127, 8),
        };
        let ext = self.payload_len.to_be_bytes();
        let mask = self.mask.unwrap_or_default();
        let header = [b0, mask_bit | code]
            .into_iter()
            .chain(ext.into_iter().skip(8 - ext_len))
            .chain(
                mask.into_iter()
                    .take(if self.mask.is_some() { 4 } else { 0 }),
            );
        for (o, b) in out.iter_mut().zip(header) {
            *o = b;
        }
        Ok(len)
    }
}

/// The mask repeated over eight bytes, starting `phase` bytes into it.
#[inline(always)]
fn mask_word(mask: [u8; 4], phase: usize) -> [u8; 8] {
    let mut word = [0u8; 8];
    for (w, m) in word.iter_mut().zip(mask.iter().cycle().skip(phase & 3)) {
        *w = *m;
    }
    word
}

/// XOR `buf` with `mask`, the first byte with `mask[phase % 4]`; returns the
/// phase for the byte after `buf`, so a payload masked in pieces gives the
/// same bytes as masked at once. Masking and unmasking are the same operation.
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], phase: usize) -> usize {
    let phase = phase & 3;
    let word_bytes = mask_word(mask, phase);
    let word = u64::from_ne_bytes(word_bytes);
    // 32-byte blocks of four u64 XORs: the compiler turns them into vector
    // instructions, which is what keeps unmasking near memcpy speed.
    let (blocks, rest) = buf.as_chunks_mut::<32>();
    for block in blocks {
        for w in block.as_chunks_mut::<8>().0 {
            *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
        }
    }
    let (words, tail) = rest.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
    }
    for (b, m) in tail.iter_mut().zip(word_bytes) {
        *b ^= m;
    }
    (phase + buf.len()) & 3
}

/// Copy `src` into the start of `dst` masked, in one pass (see
/// [`apply_mask`] for `phase`); returns the next phase.
///
/// # Panics
/// If `dst` is shorter than `src` (a caller bug, never a network input).
#[inline]
pub fn copy_masked(src: &[u8], dst: &mut [u8], mask: [u8; 4], phase: usize) -> usize {
    // The documented panic: both buffers are the caller's, never network input.
    #[allow(clippy::indexing_slicing)]
    let dst = &mut dst[..src.len()];
    // Loads that straddle cache lines are what slows a long copy down most
    // (measured here: aligning the source beat aligning the destination),
    // and a received payload starts after a 2–14 byte header: mask a few
    // bytes singly until the source sits on a cache-line boundary.
    let head = if src.len() >= 256 {
        src.as_ptr().align_offset(64).min(src.len())
    } else {
        0
    };
    let (src_head, src) = src.split_at(head);
    let (dst_head, dst) = dst.split_at_mut(head);
    let phase = phase & 3;
    let masks = mask.into_iter().cycle().skip(phase);
    for ((d, s), m) in dst_head.iter_mut().zip(src_head).zip(masks) {
        *d = s ^ m;
    }
    copy_masked_words(src, dst, mask, (phase + head) & 3)
}

#[inline(always)]
fn copy_masked_words(src: &[u8], dst: &mut [u8], mask: [u8; 4], phase: usize) -> usize {
    let word_bytes = mask_word(mask, phase);
    let word = u64::from_ne_bytes(word_bytes);
    // Equal lengths keep the block and word splits of both sides aligned.
    let Some(dst) = dst.get_mut(..src.len()) else {
        return phase;
    };
    let (src_blocks, src_rest) = src.as_chunks::<32>();
    let (dst_blocks, dst_rest) = dst.as_chunks_mut::<32>();
    for (d, s) in dst_blocks.iter_mut().zip(src_blocks) {
        let (dw, sw) = (d.as_chunks_mut::<8>().0, s.as_chunks::<8>().0);
        for (d, s) in dw.iter_mut().zip(sw) {
            *d = (u64::from_ne_bytes(*s) ^ word).to_ne_bytes();
        }
    }
    let (sw, src_tail) = src_rest.as_chunks::<8>();
    let (dw, dst_tail) = dst_rest.as_chunks_mut::<8>();
    for (d, s) in dw.iter_mut().zip(sw) {
        *d = (u64::from_ne_bytes(*s) ^ word).to_ne_bytes();
    }
    for ((d, s), m) in dst_tail.iter_mut().zip(src_tail).zip(word_bytes) {
        *d = s ^ m;
    }
    (phase + src.len()) & 3
}

/// Encode one masked frame carrying `payload` into `out`: header, then the
/// payload copied and masked in the same pass. Returns the frame length.
pub fn encode_masked(
    opcode: Opcode,
    fin: bool,
    mask: [u8; 4],
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, InsufficientSize> {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: Some(mask),
        payload_len: payload.len() as u64,
    };
    let header_len = header.buffer_len();
    let required = header_len + payload.len();
    if out.len() < required {
        return Err(InsufficientSize { required });
    }
    header.emit(out)?;
    let body = out
        .get_mut(header_len..)
        .ok_or(InsufficientSize { required })?;
    copy_masked(payload, body, mask, 0);
    Ok(required)
}

/// A frame found by [`decode_in_place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The frame's header (its `mask` as it was on the wire).
    pub header: FrameHeader,
    /// Where the now-unmasked payload lies in the buffer.
    pub payload: core::ops::Range<usize>,
}

impl Decoded {
    /// Bytes the whole frame occupied: the start of the next frame.
    pub fn frame_len(&self) -> usize {
        self.payload.end
    }
}

/// Decode the frame at the start of `buf`, unmasking its payload in place.
/// `Partial` until the whole frame (header and payload) is in `buf`.
pub fn decode_in_place(buf: &mut [u8]) -> Result<Status<Decoded>, FrameError> {
    let (header, header_len) = match FrameHeader::parse_prefix(buf)? {
        Status::Complete(found) => found,
        Status::Partial => return Ok(Status::Partial),
    };
    let available = (buf.len() - header_len) as u64;
    if header.payload_len > available {
        return Ok(Status::Partial);
    }
    let end = header_len + header.payload_len as usize;
    let Some(payload) = buf.get_mut(header_len..end) else {
        return Ok(Status::Partial);
    };
    if let Some(mask) = header.mask {
        apply_mask(payload, mask, 0);
    }
    Ok(Status::Complete(Decoded {
        header,
        payload: header_len..end,
    }))
}

/// Decode the frame at the start of `wire` into `out`: the payload is
/// copied and unmasked in one pass. `Partial` until the whole frame is in
/// `wire`; `Ok(Complete)` carries the header, the frame's length in `wire`
/// and the payload length written to `out`.
pub fn decode_into(wire: &[u8], out: &mut [u8]) -> Result<Status<DecodedInto>, DecodeIntoError> {
    let (header, header_len) =
        match FrameHeader::parse_prefix(wire).map_err(DecodeIntoError::Frame)? {
            Status::Complete(found) => found,
            Status::Partial => return Ok(Status::Partial),
        };
    let available = (wire.len() - header_len) as u64;
    if header.payload_len > available {
        return Ok(Status::Partial);
    }
    let len = header.payload_len as usize;
    let Some(out) = out.get_mut(..len) else {
        return Err(DecodeIntoError::InsufficientSize(InsufficientSize {
            required: len,
        }));
    };
    let Some(payload) = wire.get(header_len..header_len + len) else {
        return Ok(Status::Partial);
    };
    match header.mask {
        Some(mask) => {
            copy_masked(payload, out, mask, 0);
        }
        None => out.copy_from_slice(payload),
    }
    Ok(Status::Complete(DecodedInto {
        header,
        frame_len: header_len + len,
        payload_len: len,
    }))
}

/// A frame found by [`decode_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedInto {
    /// The frame's header.
    pub header: FrameHeader,
    /// Bytes the frame occupied in the input.
    pub frame_len: usize,
    /// Payload bytes written to the output.
    pub payload_len: usize,
}

/// Why [`decode_into`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeIntoError {
    /// The header is invalid.
    Frame(FrameError),
    /// The output is shorter than the payload.
    InsufficientSize(InsufficientSize),
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn header(len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode: Opcode::Binary,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn an_unchecked_view_of_a_short_buffer_reads_zeros_instead_of_panicking() {
        // A 127-length header with a mask announced but only three bytes there.
        let frame = Frame::new_unchecked(&[0x82u8, 0xFF, 0x01][..]);
        assert!(frame.fin() && frame.masked());
        assert_eq!(frame.header_len(), 14);
        assert_eq!(frame.payload_len(), 0x0100_0000_0000_0000);
        assert_eq!(frame.mask(), Some([0; 4]));
        assert!(frame.payload().is_empty());
        let empty = Frame::new_unchecked(&[][..]);
        assert_eq!((empty.opcode_raw(), empty.header_len()), (0, 2));
    }

    #[test]
    fn minimal_length_encoding_at_each_boundary() {
        let cases: [(u64, usize, u8); 5] = [
            (0, 2, 0),
            (125, 2, 125),
            (126, 4, 126),
            (65535, 4, 126),
            (65536, 10, 127),
        ];
        for (len, header_len, len7) in cases {
            let h = header(len, None);
            let mut out = [0u8; MAX_HEADER_LEN];
            assert_eq!(h.emit(&mut out), Ok(header_len), "length {len}");
            assert_eq!(out[1] & 0x7F, len7, "length {len}");
            let frame = match Frame::new_checked(&out[..header_len]) {
                Status::Complete(f) => f,
                Status::Partial => panic!("header of {len} reported partial"),
            };
            assert_eq!(FrameHeader::parse(&frame), Ok(h));
        }
    }

    #[test]
    fn emit_refuses_a_short_buffer_with_the_size_it_needs() {
        let h = header(65536, Some([1, 2, 3, 4]));
        assert_eq!(
            h.emit(&mut [0u8; 13]),
            Err(InsufficientSize { required: 14 })
        );
    }

    #[test]
    fn header_is_partial_at_every_cut() {
        let h = header(70_000, Some([9, 8, 7, 6]));
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = h.emit(&mut out).unwrap();
        for cut in 0..n {
            assert_eq!(
                FrameHeader::parse_prefix(&out[..cut]),
                Ok(Status::Partial),
                "cut {cut}"
            );
        }
        assert_eq!(
            FrameHeader::parse_prefix(&out[..n]),
            Ok(Status::Complete((h, n)))
        );
    }

    #[test]
    fn reserved_opcodes_are_refused() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            let bytes = [0x80 | op, 0];
            assert_eq!(
                FrameHeader::parse_prefix(&bytes),
                Err(FrameError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn length_with_most_significant_bit_is_refused() {
        let bytes = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::parse_prefix(&bytes),
            Err(FrameError::LengthMsbSet)
        );
    }

    #[test]
    fn rfc_masked_hello_example() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut out = [0u8; 11];
        let n = encode_masked(
            Opcode::Text,
            true,
            [0x37, 0xfa, 0x21, 0x3d],
            b"Hello",
            &mut out,
        );
        assert_eq!(n, Ok(11));
        assert_eq!(out, wire);
        let mut buf = wire;
        let Ok(Status::Complete(d)) = decode_in_place(&mut buf) else {
            panic!("example frame did not decode")
        };
        assert_eq!(&buf[d.payload.clone()], b"Hello");
        assert_eq!(d.frame_len(), 11);
    }

    #[test]
    fn decode_into_copies_and_unmasks_in_one_pass() {
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0xAA,
        ];
        let mut out = [0u8; 5];
        let Ok(Status::Complete(d)) = decode_into(&wire, &mut out) else {
            panic!("example frame did not decode")
        };
        assert_eq!((&out, d.frame_len, d.payload_len), (b"Hello", 11, 5));
        assert_eq!(decode_into(&wire[..10], &mut out), Ok(Status::Partial));
        assert_eq!(
            decode_into(&wire, &mut out[..4]),
            Err(DecodeIntoError::InsufficientSize(InsufficientSize {
                required: 5
            }))
        );
    }

    #[test]
    fn parse_prefix_agrees_with_the_checked_view() {
        for bytes in [
            &[0x81u8, 0x05][..],
            &[0x02, 0xFE, 0x01, 0x00, 1, 2, 3, 4],
            &[0x7A, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0],
        ] {
            let Status::Complete(frame) = Frame::new_checked(bytes) else {
                panic!("partial")
            };
            let (h, len) = match FrameHeader::parse_prefix(bytes) {
                Ok(Status::Complete(found)) => found,
                other => panic!("{other:?}"),
            };
            assert_eq!(FrameHeader::parse(&frame), Ok(h));
            assert_eq!(frame.header_len(), len);
        }
    }

    #[test]
    fn mask_phase_carries_across_chunks() {
        let mask = [0xA1, 0xB2, 0xC3, 0xD4];
        let original: [u8; 83] = core::array::from_fn(|i| (i as u8).wrapping_mul(7));
        let mut whole = original;
        apply_mask(&mut whole, mask, 0);
        for a in 0..original.len() {
            for b in a..original.len() {
                let mut pieces = original;
                let p = apply_mask(&mut pieces[..a], mask, 0);
                let p = apply_mask(&mut pieces[a..b], mask, p);
                let mut copied = [0u8; 83];
                copied[..b].copy_from_slice(&pieces[..b]);
                let p = copy_masked(&original[b..], &mut copied[b..], mask, p);
                assert_eq!(p, original.len() % 4);
                assert_eq!(copied, whole, "cuts {a} {b}");
            }
        }
    }

    #[test]
    fn long_copies_mask_like_the_byte_wise_definition_at_any_alignment() {
        // RFC 6455 §5.3: octet i is XORed with mask[i % 4]. Long copies take
        // the alignment path, so try every source offset within a line.
        let mask = [0x12, 0x34, 0x56, 0x78];
        let src: [u8; 400] = core::array::from_fn(|i| (i as u8).wrapping_mul(13));
        for offset in 0..64 {
            for phase in 0..4 {
                let input = &src[offset..offset + 300];
                let mut out = [0u8; 300];
                let next = copy_masked(input, &mut out, mask, phase);
                assert_eq!(next, (phase + 300) % 4);
                for (i, (o, s)) in out.iter().zip(input).enumerate() {
                    assert_eq!(
                        *o,
                        s ^ mask[(phase + i) % 4],
                        "offset {offset} phase {phase} byte {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn encode_masked_reports_required_size() {
        let mut out = [0u8; 10];
        assert_eq!(
            encode_masked(Opcode::Binary, true, [0; 4], &[0u8; 126], &mut out),
            Err(InsufficientSize {
                required: 4 + 4 + 126
            })
        );
    }

    #[test]
    fn decode_is_partial_until_the_payload_is_complete() {
        let mut out = [0u8; 64];
        let n = encode_masked(Opcode::Text, true, [1, 2, 3, 4], b"abcdefgh", &mut out).unwrap();
        for cut in 0..n {
            assert_eq!(decode_in_place(&mut { out }[..cut]), Ok(Status::Partial));
        }
    }
}
