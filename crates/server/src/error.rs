//! The one error type of the server crate, in the operator's terms.
use std::io;
use std::net::SocketAddr;

/// What went wrong, as one line a person can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be opened (port in use, privileged port, address not on this
    /// machine …).
    #[error("cannot listen on {addr}: {}", describe_io(.source))]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The async runtime could not be started.
    #[error("cannot start the server: {}", describe_io(.0))]
    Runtime(#[source] io::Error),
    /// Serving stopped on an I/O error.
    #[error("server stopped: {}", describe_io(.0))]
    Serve(#[source] io::Error),
    /// The time-stamp authority could not be reached or did not answer over HTTP: connection
    /// refused, host not found, timeout, TLS failure, not a usable URL.
    #[error("time-stamp authority {url}: {problem}")]
    TsaUnreachable {
        /// The URL as given (any user:password part hidden).
        url: String,
        /// What happened, in a few words.
        problem: String,
    },
    /// The time-stamp authority answered with an HTTP status other than 200.
    #[error("time-stamp authority {url}: HTTP {status} ({detail})")]
    TsaStatus {
        /// The URL as given (any user:password part hidden).
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The first line of a plain-text answer, where the redirect points, or the status's name.
        detail: String,
    },
    /// The answer was not `application/timestamp-reply`.
    #[error("time-stamp authority {url}: answered {content_type}, not application/timestamp-reply")]
    TsaContentType {
        /// The URL as given (any user:password part hidden).
        url: String,
        /// The Content-Type received, or "no Content-Type".
        content_type: String,
    },
    /// The answer was empty, larger than [`MAX_REPLY_BYTES`](crate::MAX_REPLY_BYTES), or cut off.
    #[error("time-stamp authority {url}: {problem}")]
    TsaBadReply {
        /// The URL as given (any user:password part hidden).
        url: String,
        /// What was wrong with the body.
        problem: String,
    },
}

/// An I/O error in a few lowercase words ("permission denied", "address already in use"), without
/// the "(os error N)" tail.
pub(crate) fn describe_io(e: &io::Error) -> String {
    use io::ErrorKind as K;
    let words = match e.kind() {
        K::PermissionDenied => "permission denied",
        K::AddrInUse => "address already in use",
        K::AddrNotAvailable => "address not available on this machine",
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::NotConnected => "not connected",
        K::TimedOut => "timed out",
        K::UnexpectedEof => "connection closed before the answer was complete",
        K::BrokenPipe => "connection closed while sending",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        K::OutOfMemory => "out of memory",
        _ => {
            let text = e.to_string();
            // "Foo bar (os error 12)" → "foo bar".
            let text = match text.find(" (os error ") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
            return lowercase_first(&text);
        }
    };
    words.to_owned()
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        // Only lower a capital that starts a word ("Too many open files"), not an acronym ("TLS").
        Some(c) if c.is_uppercase() && !chars.clone().next().is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_words() {
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(describe_io(&e), "permission denied");
        let e = io::Error::from_raw_os_error(24); // EMFILE on Linux
        if cfg!(target_os = "linux") {
            assert_eq!(describe_io(&e), "too many open files");
        }
        let e = io::Error::other("TLS went wrong");
        assert_eq!(describe_io(&e), "TLS went wrong");
    }

    #[test]
    fn listen_error_is_one_line() {
        let e = ServerError::Listen {
            addr: "127.0.0.1:80".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(e.to_string(), "cannot listen on 127.0.0.1:80: permission denied");
    }
}
