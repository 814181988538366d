//! The card file as a transport (`--card FILE`): the card runs in this process.

use std::path::Path;

use jpki_card::{CardFile, DeviceKey};

use crate::{ClientError, Transport};

/// A card file opened in-process.
#[derive(Debug)]
pub struct FileTransport {
    card: CardFile,
}

impl FileTransport {
    /// Opens the card file at `path` with the device key at `device_key`.
    pub fn open(path: &Path, device_key: &Path) -> Result<Self, ClientError> {
        let key = DeviceKey::load(device_key)?;
        Ok(Self {
            card: CardFile::open(path, key)?,
        })
    }

    /// Wraps an open card file.
    pub fn new(card: CardFile) -> Self {
        Self { card }
    }

    /// The card file.
    pub fn card_file(&mut self) -> &mut CardFile {
        &mut self.card
    }
}

impl Transport for FileTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        Ok(self.card.transmit(apdu))
    }

    fn reset(&mut self) -> Result<(), ClientError> {
        self.card.reset();
        Ok(())
    }
}
