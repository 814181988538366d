//! The client side of the card: transports that carry APDUs, and the JPKI operations built on them.
//!
//! Every operation goes through [`Transport`], so the same code drives the card file in-process
//! (`--card FILE`) and a card in a PC/SC reader (`--reader NAME`) — ours plugged in through vpcd, or
//! a real My Number card.

mod error;
mod file;
pub mod jpki;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod vpcd;

pub use error::ClientError;
pub use file::FileTransport;
pub use jpki::{CardSession, PinState};

/// Carries command APDUs to a card and brings back its responses.
pub trait Transport {
    /// Sends one command APDU and returns the whole response APDU (data, then SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError>;
    /// Resets the card (a warm reset): no application selected, all security status cleared.
    fn reset(&mut self) -> Result<(), ClientError>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        (**self).transmit(apdu)
    }

    fn reset(&mut self) -> Result<(), ClientError> {
        (**self).reset()
    }
}
