//! The core's CFMS errors in words a person reads: the core keeps them as
//! small `Copy` enums without text (it runs on devices); the messages live
//! here, once, instead of `Debug` strings scattered through the driver.

use naslink_core::cfms::{
    self, Desync, DownloadError, RequestError, TransferField, UploadError, UploadWriteError,
};

/// A session error (a request that could not be written, a message the
/// session refused).
pub(super) fn session_error(e: &cfms::Error) -> String {
    use cfms::Error as E;
    match e {
        E::BufferTooSmall { required } => {
            format!("the message needs {required} bytes, more than the buffer holds")
        }
        E::QueueFull { capacity } => format!("{capacity} requests are already waiting"),
        E::TransferActive => "a transfer is running".into(),
        E::ServerInfoFirst => "server_info has not been answered yet".into(),
        E::ProtocolUnsupported { version: Some(v) } => {
            format!("the server speaks CFMS protocol {v}, this client 3 to 5")
        }
        E::ProtocolUnsupported { version: None } => {
            "the server frames its messages as CFMS protocol 13 or later; this client speaks 3 to 5"
                .into()
        }
        E::NotLoggedIn => "not logged in".into(),
        E::NoTwoFactorPending => "no two-factor code was asked for".into(),
        E::Broken => "answers and requests are out of step".into(),
        E::TooLong { field, max } => format!("{field} is longer than {max} bytes"),
        E::InvalidData(j) => format!("data is not a JSON object: {j}"),
        E::EventsNotDrained => "events were not drained (a driver bug)".into(),
        E::Malformed(m) => format!("the server sent a message that is not CFMS 3-5: {m}"),
        E::Unsolicited => "the server sent a message nobody asked for".into(),
        E::Upload(UploadWriteError::NotSending) => "no upload is sending now".into(),
        E::Upload(UploadWriteError::BeyondAnnouncedSize) => {
            "the file grew beyond the size announced to the server".into()
        }
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Why a request got no answer.
pub(super) fn request_error(e: &RequestError) -> String {
    match e {
        RequestError::Timeout => "no answer in time".into(),
        RequestError::Disconnected => "the connection closed".into(),
        RequestError::ResponseTooLarge { capacity } => {
            format!("the answer is larger than the {capacity}-byte receive buffer")
        }
        RequestError::Malformed(m) => format!("the answer is not CFMS: {m}"),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Why the answers went out of step.
pub(super) fn desync(why: &Desync) -> String {
    match why {
        Desync::Timeout => "a request's deadline passed, a late answer would be misread".into(),
        Desync::Transfer => "a transfer message could not be followed".into(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// The core's download failure.
pub(super) fn download_error(e: &DownloadError) -> String {
    match e {
        DownloadError::Server(status) => format!("the server answered {}", status.code()),
        DownloadError::BadHeader => "the transfer header is missing fields or inconsistent".into(),
        DownloadError::TooManyChunks { total, capacity } => {
            format!("the file has {total} chunks, this client keeps at most {capacity}")
        }
        DownloadError::ChunkOutOfOrder { expected, got } => {
            format!("chunk {got} arrived where chunk {expected} was due")
        }
        DownloadError::ChunkLength {
            index,
            expected,
            got,
        } => format!("chunk {index} holds {got} bytes instead of {expected}"),
        DownloadError::BadChunkFields { index } => {
            format!("chunk {index} lacks a valid hash (or chunk 0 a valid iv)")
        }
        DownloadError::BadKey => "the AES key is missing, not 32 bytes, or early".into(),
        DownloadError::FieldTooLong { field, chunk } => format!(
            "{} in the message for chunk {chunk} is too long to be valid",
            transfer_field(field)
        ),
        DownloadError::Malformed => "a transfer message is not JSON or not base64".into(),
        DownloadError::MessageTooLarge => "a transfer message is too large".into(),
        DownloadError::Unexpected => "a message that has no place in a download".into(),
        DownloadError::Timeout => "no message in time".into(),
        DownloadError::Disconnected => "the connection closed".into(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// A transfer message's member, as the protocol names it.
fn transfer_field(field: &TransferField) -> &'static str {
    match field {
        TransferField::Action => "action",
        TransferField::Code => "code",
        TransferField::Index => "data.index",
        TransferField::Hash => "data.hash",
        TransferField::Iv => "data.iv",
        TransferField::Key => "data.key",
        TransferField::Other => "a number or literal",
        #[allow(unreachable_patterns)]
        _ => "a member",
    }
}

/// The core's upload failure.
pub(super) fn upload_error(e: &UploadError) -> String {
    match e {
        UploadError::Server(status) => format!("the server answered {}", status.code()),
        UploadError::SourceChanged { .. } => {
            "the file changed while it was being sent (its SHA-256 differs)".into()
        }
        UploadError::Unexpected => "the server answered out of the upload's order".into(),
        UploadError::BadThreshold(n) => {
            format!("the server asked for frames of {n} bytes, below the protocol's 512")
        }
        UploadError::ThresholdAboveAnnounced { announced, got } => format!(
            "the server asked for frames of {got} bytes, above the {announced} this client announced"
        ),
        UploadError::Timeout => "no answer in time".into(),
        UploadError::Disconnected => "the connection closed".into(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_field_names_the_member_and_the_chunk() {
        let e = DownloadError::FieldTooLong {
            field: TransferField::Key,
            chunk: 4,
        };
        assert_eq!(
            download_error(&e),
            "data.key in the message for chunk 4 is too long to be valid"
        );
    }

    #[test]
    fn a_frame_size_above_the_announced_one_names_both() {
        let e = UploadError::ThresholdAboveAnnounced {
            announced: 8192,
            got: u32::MAX,
        };
        assert_eq!(
            upload_error(&e),
            "the server asked for frames of 4294967295 bytes, above the 8192 this client announced"
        );
    }
}
