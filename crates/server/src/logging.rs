//! A ready-made `tracing` subscriber for programs that have none.
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` (`info` when unset or unreadable),
/// coloured only when stderr is a terminal. Does nothing if a global subscriber is already set, so
/// it is safe to call more than once.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Err only when a subscriber is already installed: keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
