//! A JSON lookup for C programs, which have no JSON reader of their own:
//! the core's checked, borrowed view behind one function.

use core::ffi::c_char;

use naslink_core::json::Value;

use crate::conn::check;
use crate::result::{code, naslink_result};

/// Find the value at `path` in the JSON text `json` (`len` bytes, such as
/// an event's `json`/`json_len`): members separated by dots, array
/// elements by their index, as in `"data.item.cpuBusy"` or `"stor.0.fssize"`;
/// an empty path is the whole document. `*value`/`*value_len` receive the
/// value's JSON text as received (strings keep their quotes and escapes),
/// pointing into `json`.
///
/// # Safety
/// `json` points to `len` readable bytes; `path` is NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_json_get(
    json: *const u8,
    len: usize,
    path: *const c_char,
    value: *mut *const u8,
    value_len: *mut usize,
) -> naslink_result {
    code((|| {
        check(json)?;
        check(path)?;
        check(value)?;
        check(value_len)?;
        // SAFETY: the caller's contract.
        let json = unsafe { core::slice::from_raw_parts(json, len) };
        // SAFETY: the caller's contract.
        let path = unsafe { core::ffi::CStr::from_ptr(path) }
            .to_str()
            .map_err(|_| naslink_result::NASLINK_ERR_INVALID_UTF8)?;
        let found = lookup(json, path)?;
        // SAFETY: checked not NULL and aligned; writable by contract.
        unsafe {
            value.write(found.as_ptr());
            value_len.write(found.len());
        }
        Ok(())
    })())
}

/// The raw text at `path` in `json`.
pub(crate) fn lookup<'a>(json: &'a [u8], path: &str) -> Result<&'a [u8], naslink_result> {
    let mut at = Value::parse(json).map_err(|_| naslink_result::NASLINK_ERR_INVALID_JSON)?;
    for step in path.split('.').filter(|s| !s.is_empty()) {
        let next = match (at.as_object(), at.as_array()) {
            (Some(o), _) => o.get(step),
            (None, Some(a)) => step
                .parse::<usize>()
                .ok()
                .and_then(|i| a.into_iter().nth(i)),
            (None, None) => None,
        };
        at = next.ok_or(naslink_result::NASLINK_ERR_NOT_FOUND)?;
    }
    Ok(at.raw())
}

#[cfg(test)]
mod tests {
    use super::lookup;
    use crate::result::naslink_result;

    #[test]
    fn paths_walk_members_and_array_indexes() {
        let doc = br#"{"data":{"item":{"cpuBusy":12.5}},"stor":[{"fssize":9},{"name":"b\"x"}]}"#;
        assert_eq!(lookup(doc, "data.item.cpuBusy"), Ok(&b"12.5"[..]));
        assert_eq!(lookup(doc, "stor.0.fssize"), Ok(&b"9"[..]));
        assert_eq!(lookup(doc, "stor.1.name"), Ok(&br#""b\"x""#[..]));
        assert_eq!(lookup(doc, ""), Ok(&doc[..]));
        assert_eq!(
            lookup(doc, "stor.2"),
            Err(naslink_result::NASLINK_ERR_NOT_FOUND)
        );
        assert_eq!(
            lookup(doc, "data.x"),
            Err(naslink_result::NASLINK_ERR_NOT_FOUND)
        );
        assert_eq!(
            lookup(b"{", "a"),
            Err(naslink_result::NASLINK_ERR_INVALID_JSON)
        );
    }
}
