//! Result codes: one integer enum for every entry point, as rustls-ffi and
//! quiche do; `naslink_strerror` names each.

use core::ffi::c_char;

/// What an entry point did: `NASLINK_OK` (0) or a negative error code.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum naslink_result {
    /// Success.
    NASLINK_OK = 0,
    /// A required pointer argument was NULL.
    NASLINK_ERR_NULL = -1,
    /// A pointer was not aligned as its type requires (the connection
    /// memory: `naslink_fnos_align`).
    NASLINK_ERR_MISALIGNED = -2,
    /// The memory given to an init function is shorter than its size
    /// function says.
    NASLINK_ERR_MEMORY_TOO_SMALL = -3,
    /// A string is not valid UTF-8.
    NASLINK_ERR_INVALID_UTF8 = -4,
    /// The URL is not `ws://HOST[:PORT]/PATH` (`wss://` needs TLS below,
    /// which the caller runs).
    NASLINK_ERR_INVALID_URL = -5,
    /// A configured string is longer than its capacity
    /// (`NASLINK_FNOS_STRINGS`).
    NASLINK_ERR_STRING_TOO_LONG = -6,
    /// The connection memory was not initialized by an init function of
    /// this protocol (or was deinitialized).
    NASLINK_ERR_WRONG_CONNECTION = -7,
    /// The WebSocket is not open yet (wait for `NASLINK_EVENT_CONNECTED`).
    NASLINK_ERR_NOT_OPEN = -8,
    /// The connection is closing or closed.
    NASLINK_ERR_CLOSING = -9,
    /// The table of requests in flight is full, or a message is half
    /// written: drain `naslink_poll_transmit` and events, then retry.
    NASLINK_ERR_BUSY = -10,
    /// The request has too many parameters.
    NASLINK_ERR_TOO_MANY_PARAMS = -11,
    /// The request's parameters are not one JSON object.
    NASLINK_ERR_PARAMS_NOT_AN_OBJECT = -12,
    /// The message does not fit the transmit buffer
    /// (`NASLINK_TRANSMIT_BUFFER`).
    NASLINK_ERR_TRANSMIT_BUFFER_TOO_SMALL = -13,
    /// An argument is out of range (an unknown enum value, say).
    NASLINK_ERR_INVALID_ARGUMENT = -14,
    /// The JSON path names nothing in the document.
    NASLINK_ERR_NOT_FOUND = -15,
    /// The text is not valid JSON.
    NASLINK_ERR_INVALID_JSON = -16,
    /// No two-factor code is being asked for (wait for
    /// `NASLINK_EVENT_TWO_FACTOR_REQUIRED`).
    NASLINK_ERR_NO_CODE_REQUESTED = -17,
    /// The configured CFMS `protocol_version` is not one this library
    /// speaks: 0 (negotiate), 3, 4, 5 or 13. Versions 6 to 12 and above 13
    /// change the protocol in ways this library does not follow.
    NASLINK_ERR_PROTOCOL_UNSUPPORTED = -18,
}

impl naslink_result {
    const ALL: [naslink_result; 19] = [
        Self::NASLINK_OK,
        Self::NASLINK_ERR_NULL,
        Self::NASLINK_ERR_MISALIGNED,
        Self::NASLINK_ERR_MEMORY_TOO_SMALL,
        Self::NASLINK_ERR_INVALID_UTF8,
        Self::NASLINK_ERR_INVALID_URL,
        Self::NASLINK_ERR_STRING_TOO_LONG,
        Self::NASLINK_ERR_WRONG_CONNECTION,
        Self::NASLINK_ERR_NOT_OPEN,
        Self::NASLINK_ERR_CLOSING,
        Self::NASLINK_ERR_BUSY,
        Self::NASLINK_ERR_TOO_MANY_PARAMS,
        Self::NASLINK_ERR_PARAMS_NOT_AN_OBJECT,
        Self::NASLINK_ERR_TRANSMIT_BUFFER_TOO_SMALL,
        Self::NASLINK_ERR_INVALID_ARGUMENT,
        Self::NASLINK_ERR_NOT_FOUND,
        Self::NASLINK_ERR_INVALID_JSON,
        Self::NASLINK_ERR_NO_CODE_REQUESTED,
        Self::NASLINK_ERR_PROTOCOL_UNSUPPORTED,
    ];

    /// The description, NUL-terminated.
    const fn text(self) -> &'static core::ffi::CStr {
        match self {
            Self::NASLINK_OK => c"success",
            Self::NASLINK_ERR_NULL => c"a required pointer is NULL",
            Self::NASLINK_ERR_MISALIGNED => c"a pointer is misaligned",
            Self::NASLINK_ERR_MEMORY_TOO_SMALL => c"the connection memory is too small",
            Self::NASLINK_ERR_INVALID_UTF8 => c"a string is not valid UTF-8",
            Self::NASLINK_ERR_INVALID_URL => c"the URL is not a ws:// or wss:// URL",
            Self::NASLINK_ERR_STRING_TOO_LONG => c"a configured string exceeds its capacity",
            Self::NASLINK_ERR_WRONG_CONNECTION => {
                c"the memory does not hold a connection of this protocol"
            }
            Self::NASLINK_ERR_NOT_OPEN => c"the connection is not open yet",
            Self::NASLINK_ERR_CLOSING => c"the connection is closing or closed",
            Self::NASLINK_ERR_BUSY => c"too many requests in flight, or output is pending",
            Self::NASLINK_ERR_TOO_MANY_PARAMS => c"the request has too many parameters",
            Self::NASLINK_ERR_PARAMS_NOT_AN_OBJECT => c"the parameters are not a JSON object",
            Self::NASLINK_ERR_TRANSMIT_BUFFER_TOO_SMALL => {
                c"the message does not fit the transmit buffer"
            }
            Self::NASLINK_ERR_INVALID_ARGUMENT => c"an argument is out of range",
            Self::NASLINK_ERR_NOT_FOUND => c"the JSON path names nothing",
            Self::NASLINK_ERR_INVALID_JSON => c"the text is not valid JSON",
            Self::NASLINK_ERR_NO_CODE_REQUESTED => c"no two-factor code is being asked for",
            Self::NASLINK_ERR_PROTOCOL_UNSUPPORTED => {
                c"the CFMS protocol version is not 3, 4, 5 or 13 (0 negotiates)"
            }
        }
    }
}

/// A static, NUL-terminated English description of `code` (a
/// `naslink_result`); unknown codes give "unknown error". Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn naslink_strerror(code: i32) -> *const c_char {
    naslink_result::ALL
        .iter()
        .find(|r| **r as i32 == code)
        .map_or(c"unknown error", |r| r.text())
        .as_ptr()
}

/// `Ok(())` → `NASLINK_OK`, `Err(e)` → `e`.
pub(crate) fn code(r: Result<(), naslink_result>) -> naslink_result {
    match r {
        Ok(()) => naslink_result::NASLINK_OK,
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_description_and_unknown_codes_have_one_too() {
        let mut seen = std::collections::HashSet::new();
        for r in naslink_result::ALL {
            // SAFETY: naslink_strerror returns a static C string.
            let text = unsafe { core::ffi::CStr::from_ptr(naslink_strerror(r as i32)) };
            assert!(seen.insert(text.to_owned()), "{r:?} repeats a description");
        }
        // SAFETY: as above.
        let unknown = unsafe { core::ffi::CStr::from_ptr(naslink_strerror(12345)) };
        assert_eq!(unknown, c"unknown error");
    }
}
