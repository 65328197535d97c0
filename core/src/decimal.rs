//! Unsigned integers in decimal, without `core::fmt` (its machinery costs
//! flash on a microcontroller and a formatter per call): the one integer
//! writer the WebSocket handshake and both JSON writers share.

/// Digits of the largest `u64` (18446744073709551615).
pub(crate) const U64_DIGITS: usize = 20;

/// `v` in decimal, written at the end of `digits`; returns the written part.
pub(crate) fn decimal(mut v: u64, digits: &mut [u8; U64_DIGITS]) -> &[u8] {
    let mut start = digits.len();
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
        start -= 1;
        if v == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_zero_extremes_and_round_numbers() {
        let mut d = [0; U64_DIGITS];
        assert_eq!(decimal(0, &mut d), b"0");
        assert_eq!(decimal(7, &mut d), b"7");
        assert_eq!(decimal(10, &mut d), b"10");
        assert_eq!(decimal(65535, &mut d), b"65535");
        assert_eq!(decimal(u64::MAX, &mut d), b"18446744073709551615");
    }
}
