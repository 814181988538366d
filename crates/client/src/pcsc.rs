//! The PC/SC transport (`--reader NAME`): a card in a reader managed by pcscd (or the Windows/macOS
//! smart card service), reached through the `pcsc` crate.
//!
//! The card may be a real My Number card or ours, plugged in as a virtual card through vpcd
//! ([`crate::vpcd`]); both look the same from here.

use std::ffi::{CStr, CString};
use std::fmt;

use pcsc::{Card, Context, Disposition, Error as PcscError, Protocols, Scope, ShareMode};

use crate::{ClientError, Transport};

/// Size of the receive buffer: the longest response an extended-length APDU can bring back
/// (65,536 data bytes and SW1 SW2).
const RECEIVE_BUFFER: usize = 65_536 + 2;

/// A connection to the card in one PC/SC reader.
pub struct PcscTransport {
    card: Card,
    reader: String,
    buffer: Vec<u8>,
}

impl fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl PcscTransport {
    /// Connects to the card in `reader`.
    ///
    /// `reader` is either a reader's exact name or a part of it (compared without regard to case)
    /// that names exactly one of the readers present, so `--reader "virtual pcd 00 00"` or
    /// `--reader sony` work. The connection is shared with other programs.
    pub fn connect(reader: &str) -> Result<Self, ClientError> {
        let context = establish()?;
        let names = list(&context)?;
        let name = choose_reader(reader, &names)?.to_owned();
        let c_name =
            CString::new(name.clone()).map_err(|_| reader_error("reader name contains a NUL byte"))?;
        let card = context
            .connect(&c_name, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| describe(e, &name))?;
        Ok(Self {
            card,
            reader: name,
            buffer: vec![0; RECEIVE_BUFFER],
        })
    }

    /// The name of the reader this transport is connected to.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card's answer to reset, as the reader reports it.
    pub fn atr(&self) -> Result<Vec<u8>, ClientError> {
        let status = self.card.status2_owned().map_err(|e| describe(e, &self.reader))?;
        Ok(status.atr().to_vec())
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        let response = self
            .card
            .transmit(apdu, &mut self.buffer)
            .map_err(|e| describe(e, &self.reader))?;
        Ok(response.to_vec())
    }

    fn reset(&mut self) -> Result<(), ClientError> {
        self.card
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
            .map_err(|e| describe(e, &self.reader))
    }
}

/// The names of the PC/SC readers present now (an empty list when there are none).
pub fn readers() -> Result<Vec<String>, ClientError> {
    let context = establish()?;
    list(&context)
}

/// Opens a user-scope context with the PC/SC service.
fn establish() -> Result<Context, ClientError> {
    Context::establish(Scope::User).map_err(|e| match e {
        PcscError::NoService | PcscError::ServiceStopped => {
            reader_error("no PC/SC service (is pcscd running?)")
        }
        other => reader_error(format!("cannot reach the PC/SC service: {other}")),
    })
}

/// Lists the readers through an open context.
fn list(context: &Context) -> Result<Vec<String>, ClientError> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names.iter().map(|n| cstr_to_string(n)).collect()),
        Err(PcscError::NoReadersAvailable) => Ok(Vec::new()),
        Err(PcscError::NoService | PcscError::ServiceStopped) => {
            Err(reader_error("no PC/SC service (is pcscd running?)"))
        }
        Err(other) => Err(reader_error(format!("cannot list the readers: {other}"))),
    }
}

fn cstr_to_string(name: &CStr) -> String {
    name.to_string_lossy().into_owned()
}

/// Picks the reader `wanted` names among `names`: the exact name first, else the only name that
/// contains `wanted` regardless of case.
fn choose_reader<'a>(wanted: &str, names: &'a [String]) -> Result<&'a str, ClientError> {
    if let Some(exact) = names.iter().find(|n| *n == wanted) {
        return Ok(exact);
    }
    let needle = wanted.to_lowercase();
    let matches: Vec<&String> = if needle.is_empty() {
        Vec::new()
    } else {
        names
            .iter()
            .filter(|n| n.to_lowercase().contains(&needle))
            .collect()
    };
    match matches.as_slice() {
        [one] => Ok(one.as_str()),
        [] if names.is_empty() => Err(reader_error(format!(
            "no reader matches \"{wanted}\": no readers present"
        ))),
        [] => Err(reader_error(format!(
            "no reader matches \"{wanted}\"; readers present: {}",
            quoted_list(names.iter())
        ))),
        many => Err(reader_error(format!(
            "\"{wanted}\" matches more than one reader ({}); give more of the name",
            quoted_list(many.iter().copied())
        ))),
    }
}

fn quoted_list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

fn reader_error(message: impl Into<String>) -> ClientError {
    ClientError::Reader(message.into())
}

/// Says what a PC/SC failure on `reader` means for the user.
fn describe(error: PcscError, reader: &str) -> ClientError {
    let message = match error {
        PcscError::NoSmartcard => format!("no card in reader \"{reader}\""),
        PcscError::RemovedCard => format!("the card was removed from reader \"{reader}\""),
        PcscError::UnknownReader => format!("reader \"{reader}\" not found"),
        PcscError::ReaderUnavailable | PcscError::NoReadersAvailable => {
            format!("reader \"{reader}\" is no longer available (unplugged?)")
        }
        PcscError::SharingViolation => {
            format!("the card in \"{reader}\" is held exclusively by another program")
        }
        PcscError::UnresponsiveCard => {
            format!("the card in \"{reader}\" does not respond (is it inserted the right way?)")
        }
        PcscError::UnpoweredCard => format!("the card in \"{reader}\" is not powered"),
        PcscError::ResetCard => format!("the card in \"{reader}\" was reset by another program; try again"),
        PcscError::UnsupportedCard | PcscError::CardUnsupported => {
            format!("the card in \"{reader}\" is not supported by the reader")
        }
        PcscError::ProtoMismatch => format!("the card in \"{reader}\" speaks neither T=0 nor T=1"),
        PcscError::NoService | PcscError::ServiceStopped | PcscError::Shutdown => {
            "the PC/SC service stopped (is pcscd running?)".to_owned()
        }
        PcscError::Timeout => format!("reader \"{reader}\" timed out"),
        PcscError::CommError | PcscError::CommDataLost => {
            format!("communication with the card in \"{reader}\" failed")
        }
        PcscError::InsufficientBuffer => format!("the card in \"{reader}\" sent a response too long to hold"),
        other => format!("reader \"{reader}\": {other}"),
    };
    ClientError::Reader(message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

    use super::*;

    fn names() -> Vec<String> {
        vec![
            "Virtual PCD 00 00".into(),
            "Virtual PCD 00 01".into(),
            "SONY FeliCa Port/PaSoRi 3.0 00 00".into(),
        ]
    }

    #[test]
    fn exact_name_wins() {
        assert_eq!(
            choose_reader("Virtual PCD 00 01", &names()).unwrap(),
            "Virtual PCD 00 01"
        );
    }

    #[test]
    fn unique_substring_ignoring_case() {
        assert_eq!(
            choose_reader("pasori", &names()).unwrap(),
            "SONY FeliCa Port/PaSoRi 3.0 00 00"
        );
        assert_eq!(choose_reader("pcd 00 00", &names()).unwrap(), "Virtual PCD 00 00");
    }

    #[test]
    fn ambiguous_and_missing_names_list_the_readers() {
        let err = choose_reader("virtual", &names()).unwrap_err().to_string();
        assert!(err.contains("more than one"), "{err}");
        assert!(
            err.contains("\"Virtual PCD 00 00\"") && err.contains("\"Virtual PCD 00 01\""),
            "{err}"
        );
        let err = choose_reader("gemalto", &names()).unwrap_err().to_string();
        assert!(err.contains("readers present") && err.contains("PaSoRi"), "{err}");
        let err = choose_reader("x", &[]).unwrap_err().to_string();
        assert!(err.contains("no readers present"), "{err}");
        assert!(choose_reader("", &names()).is_err());
    }

    #[test]
    fn errors_speak_the_users_language() {
        let msg = describe(PcscError::NoSmartcard, "R").to_string();
        assert_eq!(msg, "PC/SC: no card in reader \"R\"");
    }
}
