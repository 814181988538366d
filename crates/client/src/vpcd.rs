//! The virtual reader bridge (`jpki card plug`): puts a card into pcscd's vpcd reader, so that any
//! PC/SC program (OpenSC, pcsc_scan, our own `--reader`) sees it as a card in "Virtual PCD 00 00".
//!
//! pcscd's vpcd driver is the TCP server; the card connects to it as a client. Every message in
//! both directions is a 2-byte big-endian length followed by that many bytes. From pcscd, a 1-byte
//! message is a control code (0 power off, 1 power on, 2 reset, 4 "send your ATR"); anything longer
//! is a command APDU. The card answers "send your ATR" with its ATR and an APDU with the response
//! APDU, each as one message, and answers nothing else.
//!
//! Only `std::net` is used: one blocking socket with a short read timeout, so that the stop flag is
//! noticed promptly.
//!
//! What pcscd does (pcsc-lite 2 with vsmartcard's vpcd, observed): it asks for the ATR right after
//! the connection and then every 400 ms; it powers the card on before the first command of a
//! PC/SC client and powers it off again about half a second after the last client is gone, so the
//! card sees many power cycles. pcscd sends the length and the payload of a message in two TCP
//! segments without TCP_NODELAY, so each exchange waits about 40 ms for this side's delayed
//! acknowledgement; Linux's TCP_QUICKACK, which std cannot set, would remove that wait.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::ClientError;

/// Where pcscd's vpcd driver listens for the first virtual reader ("Virtual PCD 00 00").
pub const DEFAULT_ADDR: &str = "127.0.0.1:35963";

/// How long one read waits before the stop flag is looked at again.
const READ_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a reply may take to be accepted by pcscd before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest sleep between two looks at the stop flag while waiting to reconnect.
const STOP_POLL: Duration = Duration::from_millis(50);
/// The longest payload a 2-byte length can announce.
const MAX_PAYLOAD: usize = u16::MAX as usize;

/// The vpcd control codes (1-byte messages from pcscd).
const CTRL_OFF: u8 = 0;
const CTRL_ON: u8 = 1;
const CTRL_RESET: u8 = 2;
const CTRL_ATR: u8 = 4;

/// The status word sent in place of a response the card could not produce in a form vpcd can
/// carry (shorter than a status word, or longer than a message can be): "no precise diagnosis".
const SW_NO_DIAGNOSIS: [u8; 2] = [0x6F, 0x00];

/// What the bridge needs from a card.
pub trait VirtualCard {
    /// The answer to reset the card presents.
    fn atr(&self) -> Vec<u8>;
    /// The reader cut the power: the card forgets its session state (selected application,
    /// verified PINs).
    fn power_off(&mut self);
    /// The reader powered the card.
    fn power_on(&mut self);
    /// The reader reset the card (a warm reset): session state is cleared.
    fn reset(&mut self);
    /// One command APDU in, one response APDU out (data + SW). Must not fail: a card that cannot
    /// answer answers an error status word.
    fn apdu(&mut self, command: &[u8]) -> Vec<u8>;
}

/// How [`plug`] connects and when it gives up.
#[derive(Debug, Clone)]
pub struct PlugOptions {
    /// host:port of pcscd's vpcd driver, normally [`DEFAULT_ADDR`].
    pub addr: String,
    /// Set it (from another thread or a signal handler) to unplug the card; [`plug`] then returns
    /// `Ok` within a fraction of a second.
    pub stop: Arc<AtomicBool>,
    /// The wait between two connection attempts while pcscd is unreachable.
    pub retry: Duration,
    /// Give up when pcscd has been unreachable this long; `None` waits forever.
    pub max_wait: Option<Duration>,
}

impl PlugOptions {
    /// Options for `addr` with a fresh stop flag, a 1-second retry and no limit on waiting.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            stop: Arc::new(AtomicBool::new(false)),
            retry: Duration::from_secs(1),
            max_wait: None,
        }
    }
}

/// What happened on the virtual reader, reported to [`plug`]'s caller as it happens.
///
/// pcscd asks for the ATR many times a second while a card is present; those requests are
/// answered silently and reported as nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlugEvent {
    /// Connected to pcscd: the card is in the reader.
    Connected,
    /// The connection ended (pcscd went away, or the bridge was stopped): the card is out of the
    /// reader and has lost power.
    Disconnected,
    /// pcscd powered the card.
    PowerOn,
    /// pcscd cut the card's power.
    PowerOff,
    /// pcscd reset the card.
    Reset,
    /// The card answered a command APDU.
    Apdu {
        /// The length of the command APDU.
        command_len: usize,
        /// The status word of the response.
        sw: u16,
    },
}

/// Plugs `card` into pcscd's vpcd reader at `opts.addr` and serves it until `opts.stop` is set.
///
/// When the connection drops (pcscd restarted, or sent something that is not the vpcd
/// protocol), the card loses power and the bridge connects again every `opts.retry`. Returns
/// `Ok` once `opts.stop` is set, and [`ClientError::Vpcd`] when `opts.addr` is not an address or
/// pcscd stayed unreachable for `opts.max_wait`.
pub fn plug(
    card: &mut dyn VirtualCard,
    opts: &PlugOptions,
    on_event: &mut dyn FnMut(PlugEvent),
) -> Result<(), ClientError> {
    let addrs = resolve(&opts.addr)?;
    let mut unreachable_since = Instant::now();
    // Why the last connection ended, for the error message should pcscd not come back.
    let mut last_drop: Option<String> = None;
    loop {
        if stopped(opts) {
            return Ok(());
        }
        let error = match connect(&addrs) {
            Ok(stream) => {
                on_event(PlugEvent::Connected);
                let end = serve(card, stream, &opts.stop, on_event);
                card.power_off();
                on_event(PlugEvent::Disconnected);
                match end {
                    End::Stopped => return Ok(()),
                    // The connection was there until now: the time without pcscd starts now.
                    End::Dropped(reason) => {
                        unreachable_since = Instant::now();
                        last_drop = Some(reason);
                    }
                }
                None
            }
            Err(e) => Some(e),
        };
        if let (Some(max_wait), Some(error)) = (opts.max_wait, &error)
            && unreachable_since.elapsed() >= max_wait
        {
            let since = match &last_drop {
                Some(reason) => format!(" since the connection ended ({reason})"),
                None => String::new(),
            };
            return Err(vpcd_error(
                opts,
                format!(
                    "pcscd's vpcd driver unreachable for {} s{since}: {error} (is pcscd running with vpcd installed?)",
                    max_wait.as_secs_f32()
                ),
            ));
        }
        // Wait before the next attempt, but not past the point where max_wait expires.
        let mut wait = opts.retry;
        if let Some(max_wait) = opts.max_wait {
            wait = wait.min(max_wait.saturating_sub(unreachable_since.elapsed()));
        }
        if sleep_unless_stopped(wait, &opts.stop) {
            return Ok(());
        }
    }
}

/// Why serving one connection ended.
enum End {
    /// The stop flag was set.
    Stopped,
    /// The connection closed, failed, or carried something that is not the vpcd protocol.
    Dropped(String),
}

/// Serves one connection: answers pcscd's messages until the connection ends or `stop` is set.
fn serve(
    card: &mut dyn VirtualCard,
    mut stream: TcpStream,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(PlugEvent),
) -> End {
    loop {
        let message = match read_message(&mut QuickAck(&mut stream), stop) {
            Ok(message) => message,
            Err(end) => return end,
        };
        match message.as_slice() {
            [CTRL_OFF] => {
                card.power_off();
                on_event(PlugEvent::PowerOff);
            }
            [CTRL_ON] => {
                card.power_on();
                on_event(PlugEvent::PowerOn);
            }
            [CTRL_RESET] => {
                card.reset();
                on_event(PlugEvent::Reset);
            }
            [CTRL_ATR] => {
                if let Err(end) = write_message(&mut stream, &card.atr()) {
                    return end;
                }
            }
            // Control codes this protocol version does not define expect no answer either.
            [_] => {}
            command => {
                let mut response = card.apdu(command);
                if response.len() < 2 || response.len() > MAX_PAYLOAD {
                    response = SW_NO_DIAGNOSIS.to_vec();
                }
                let sw = match response.as_slice() {
                    [.., sw1, sw2] => u16::from_be_bytes([*sw1, *sw2]),
                    _ => 0,
                };
                if let Err(end) = write_message(&mut stream, &response) {
                    return end;
                }
                on_event(PlugEvent::Apdu {
                    command_len: command.len(),
                    sw,
                });
            }
        }
    }
}

/// The socket, acknowledging every read at once. pcscd writes a message's length and payload in
/// two writes; with Linux's delayed ACK the payload then waits ~40 ms for our ACK of the length
/// (Nagle on pcscd's side), which made every APDU take 40 ms. TCP_QUICKACK is cleared by the
/// kernel after use, so it is set again after each read.
struct QuickAck<'a>(&'a mut TcpStream);

impl Read for QuickAck<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        #[cfg(target_os = "linux")]
        {
            // Only a latency hint: if the option is refused the bridge still works, slower.
            let _ = rustix::net::sockopt::set_tcp_quickack(&*self.0, true);
        }
        Ok(n)
    }
}

/// Reads one whole message (its 2-byte length, then exactly that many bytes).
fn read_message(stream: &mut impl Read, stop: &AtomicBool) -> Result<Vec<u8>, End> {
    let mut header = [0u8; 2];
    read_full(stream, &mut header, stop)?;
    let len = usize::from(u16::from_be_bytes(header));
    // A 2-byte length cannot exceed MAX_PAYLOAD, so only an empty message is out of protocol.
    if len == 0 {
        return Err(End::Dropped("pcscd sent an empty message".to_owned()));
    }
    let mut payload = vec![0u8; len];
    read_full(stream, &mut payload, stop)?;
    Ok(payload)
}

/// Fills `buf` from `stream`. A read timeout, even in the middle of `buf`, only means "nothing
/// yet": the bytes read so far are kept and reading goes on unless `stop` is set.
fn read_full(stream: &mut impl Read, buf: &mut [u8], stop: &AtomicBool) -> Result<(), End> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Err(End::Stopped);
        }
        let Some(rest) = buf.get_mut(filled..) else { break };
        match stream.read(rest) {
            Ok(0) => return Err(End::Dropped("pcscd closed the connection".to_owned())),
            Ok(n) => filled += n,
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(End::Dropped(format!("read failed: {e}"))),
        }
    }
    Ok(())
}

/// Sends `payload` as one message.
fn write_message(stream: &mut impl Write, payload: &[u8]) -> Result<(), End> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        End::Dropped(format!(
            "a {}-byte reply does not fit in a message",
            payload.len()
        ))
    })?;
    let mut message = Vec::with_capacity(2 + payload.len());
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(payload);
    stream
        .write_all(&message)
        .and_then(|()| stream.flush())
        .map_err(|e| End::Dropped(format!("write failed: {e}")))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn resolve(addr: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let bad = |reason: String| ClientError::Vpcd {
        addr: addr.to_owned(),
        reason,
    };
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| bad(format!("not a usable host:port address: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(bad("the host name has no address".to_owned()));
    }
    Ok(addrs)
}

/// Opens a connection to the first of `addrs` that accepts, set up for the bridge.
fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                return setup(&stream)
                    .map(|()| stream)
                    .map_err(|e| format!("socket setup failed: {e}"));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

fn setup(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))
}

fn stopped(opts: &PlugOptions) -> bool {
    opts.stop.load(Ordering::Relaxed)
}

/// Sleeps for `duration` in short steps; returns true as soon as `stop` is set.
fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + duration;
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        thread::sleep(left.min(STOP_POLL));
    }
}

fn vpcd_error(opts: &PlugOptions, reason: String) -> ClientError {
    ClientError::Vpcd {
        addr: opts.addr.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

    use super::*;

    /// A reader that hands out its bytes in the given pieces, with a timeout between pieces.
    struct Trickle {
        pieces: Vec<Vec<u8>>,
        timeout_next: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.timeout_next {
                self.timeout_next = false;
                return Err(io::Error::from(ErrorKind::WouldBlock));
            }
            self.timeout_next = true;
            if self.pieces.is_empty() {
                return Ok(0);
            }
            let piece = self.pieces.remove(0);
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                self.pieces.insert(0, piece[n..].to_vec());
            }
            Ok(n)
        }
    }

    #[test]
    fn a_message_in_pieces_with_timeouts_between_is_one_message() {
        let stop = AtomicBool::new(false);
        let mut r = Trickle {
            pieces: vec![vec![0], vec![5, 0xA0], vec![0xB0, 0], vec![0, 0x01]],
            timeout_next: true,
        };
        assert_eq!(
            read_message(&mut r, &stop).ok().unwrap(),
            vec![0xA0, 0xB0, 0, 0, 0x01]
        );
        assert!(matches!(read_message(&mut r, &stop), Err(End::Dropped(_))));
    }

    #[test]
    fn an_empty_message_is_a_protocol_error() {
        let stop = AtomicBool::new(false);
        let mut r = Trickle {
            pieces: vec![vec![0, 0, 0, 1, 4]],
            timeout_next: false,
        };
        assert!(matches!(read_message(&mut r, &stop), Err(End::Dropped(_))));
    }

    #[test]
    fn stop_interrupts_a_waiting_read() {
        let stop = AtomicBool::new(true);
        let mut r = Trickle {
            pieces: vec![vec![0]],
            timeout_next: true,
        };
        assert!(matches!(read_message(&mut r, &stop), Err(End::Stopped)));
    }

    #[test]
    fn a_reply_is_framed_with_its_length() {
        let mut out = Vec::new();
        write_message(&mut out, &[0x90, 0x00]).ok().unwrap();
        assert_eq!(out, [0, 2, 0x90, 0x00]);
        assert!(write_message(&mut out, &vec![0; MAX_PAYLOAD + 1]).is_err());
    }

    #[test]
    fn a_bad_address_fails_at_once() {
        let opts = PlugOptions::new("no port here");
        struct Dead;
        impl VirtualCard for Dead {
            fn atr(&self) -> Vec<u8> {
                Vec::new()
            }
            fn power_off(&mut self) {}
            fn power_on(&mut self) {}
            fn reset(&mut self) {}
            fn apdu(&mut self, _: &[u8]) -> Vec<u8> {
                vec![0x6D, 0x00]
            }
        }
        let err = plug(&mut Dead, &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, ClientError::Vpcd { .. }), "{err}");
    }
}
