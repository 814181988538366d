//! The vpcd bridge against a test listener that plays pcscd's vpcd driver: no pcscd needed.
//!
//! The `#[ignore]`d end-to-end test needs a running pcscd with the vpcd driver listening on
//! 127.0.0.1:35963 (`pcscd -f -a`); run it with `cargo test -p jpki-client --test vpcd -- --ignored`.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use jpki_client::ClientError;
use jpki_client::vpcd::{PlugEvent, PlugOptions, VirtualCard, plug};

const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];

/// Echoes every APDU with 9000 appended; counts resets and power cycles.
#[derive(Default)]
struct EchoCard {
    resets: Arc<AtomicUsize>,
    power_ons: Arc<AtomicUsize>,
    power_offs: Arc<AtomicUsize>,
}

impl VirtualCard for EchoCard {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }
    fn power_off(&mut self) {
        self.power_offs.fetch_add(1, Ordering::SeqCst);
    }
    fn power_on(&mut self) {
        self.power_ons.fetch_add(1, Ordering::SeqCst);
    }
    fn reset(&mut self) {
        self.resets.fetch_add(1, Ordering::SeqCst);
    }
    fn apdu(&mut self, command: &[u8]) -> Vec<u8> {
        let mut response = command.to_vec();
        response.extend_from_slice(&[0x90, 0x00]);
        response
    }
}

fn send(stream: &mut TcpStream, payload: &[u8]) {
    let mut message = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    message.extend_from_slice(payload);
    stream.write_all(&message).unwrap();
}

fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).unwrap();
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(header))];
    stream.read_exact(&mut payload).unwrap();
    payload
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
}

/// The events `plug` reported, in order.
type Events = Arc<Mutex<Vec<PlugEvent>>>;

/// Runs `plug` on a thread; returns the join handle and the events it reports, in order.
fn spawn_plug(card: EchoCard, opts: PlugOptions) -> (thread::JoinHandle<Result<(), ClientError>>, Events) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let handle = thread::spawn(move || {
        let mut card = card;
        plug(&mut card, &opts, &mut |e| sink.lock().unwrap().push(e))
    });
    (handle, events)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serves_pcscd_and_reconnects_after_a_drop() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let card = EchoCard::default();
    let (resets, power_ons) = (Arc::clone(&card.resets), Arc::clone(&card.power_ons));
    let mut opts = PlugOptions::new(addr);
    opts.retry = Duration::from_millis(50);
    opts.max_wait = Some(Duration::from_secs(10));
    let stop = Arc::clone(&opts.stop);
    let (bridge, events) = spawn_plug(card, opts);

    let mut pcscd = accept(&listener);
    send(&mut pcscd, &[4]);
    assert_eq!(receive(&mut pcscd), ATR);
    send(&mut pcscd, &[1]);

    // SELECT the JPKI AP, split across two writes with a pause longer than the bridge's read
    // timeout in between: the length and the first bytes, then the rest.
    let select = [
        0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
    ];
    let mut message = u16::try_from(select.len()).unwrap().to_be_bytes().to_vec();
    message.extend_from_slice(&select);
    pcscd.write_all(&message[..1]).unwrap();
    pcscd.flush().unwrap();
    thread::sleep(Duration::from_millis(150));
    pcscd.write_all(&message[1..6]).unwrap();
    pcscd.flush().unwrap();
    thread::sleep(Duration::from_millis(350));
    pcscd.write_all(&message[6..]).unwrap();
    let mut expected = select.to_vec();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(receive(&mut pcscd), expected);

    // Control codes get no answer: the next thing that comes back is the answer to get-ATR.
    send(&mut pcscd, &[2]);
    send(&mut pcscd, &[0]);
    send(&mut pcscd, &[4]);
    assert_eq!(receive(&mut pcscd), ATR);
    assert_eq!(resets.load(Ordering::SeqCst), 1);
    assert_eq!(power_ons.load(Ordering::SeqCst), 1);

    // pcscd goes away; the bridge comes back to the same listener.
    drop(pcscd);
    let mut pcscd = accept(&listener);
    send(&mut pcscd, &[4]);
    assert_eq!(receive(&mut pcscd), ATR);
    send(&mut pcscd, &[0x80, 0xCA]);
    assert_eq!(receive(&mut pcscd), [0x80, 0xCA, 0x90, 0x00]);

    let stopped_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    wait_for("plug to return", || bridge.is_finished());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(1),
        "took {:?}",
        stopped_at.elapsed()
    );
    bridge.join().unwrap().unwrap();

    // The bridge noticed the stop and hung up.
    let mut rest = Vec::new();
    pcscd.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            PlugEvent::Connected,
            PlugEvent::PowerOn,
            PlugEvent::Apdu {
                command_len: select.len(),
                sw: 0x9000
            },
            PlugEvent::Reset,
            PlugEvent::PowerOff,
            PlugEvent::Disconnected,
            PlugEvent::Connected,
            PlugEvent::Apdu {
                command_len: 2,
                sw: 0x9000
            },
            PlugEvent::Disconnected,
        ]
    );
}

#[test]
fn a_protocol_error_drops_the_connection_and_the_bridge_comes_back() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let card = EchoCard::default();
    let power_offs = Arc::clone(&card.power_offs);
    let mut opts = PlugOptions::new(listener.local_addr().unwrap().to_string());
    opts.retry = Duration::from_millis(20);
    let stop = Arc::clone(&opts.stop);
    let (bridge, _events) = spawn_plug(card, opts);

    let mut pcscd = accept(&listener);
    pcscd.write_all(&[0, 0]).unwrap();
    let mut rest = Vec::new();
    pcscd.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the bridge answered an empty message");
    // Losing the connection took the card's power.
    wait_for("the card to lose power", || {
        power_offs.load(Ordering::SeqCst) == 1
    });

    let mut pcscd = accept(&listener);
    send(&mut pcscd, &[4]);
    assert_eq!(receive(&mut pcscd), ATR);
    stop.store(true, Ordering::SeqCst);
    bridge.join().unwrap().unwrap();
}

#[test]
fn waits_for_pcscd_to_start() {
    // Take a free port, then free it again: nothing listens there until the test listens.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = PlugOptions::new(format!("127.0.0.1:{port}"));
    opts.retry = Duration::from_millis(50);
    opts.max_wait = Some(Duration::from_secs(10));
    let stop = Arc::clone(&opts.stop);
    let (bridge, _events) = spawn_plug(EchoCard::default(), opts);
    thread::sleep(Duration::from_millis(300));
    assert!(!bridge.is_finished());

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut pcscd = accept(&listener);
    send(&mut pcscd, &[4]);
    assert_eq!(receive(&mut pcscd), ATR);
    stop.store(true, Ordering::SeqCst);
    bridge.join().unwrap().unwrap();
}

#[test]
fn gives_up_when_nothing_listens_for_max_wait() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = PlugOptions::new(format!("127.0.0.1:{port}"));
    opts.retry = Duration::from_millis(50);
    opts.max_wait = Some(Duration::from_millis(300));
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let result = plug(&mut EchoCard::default(), &opts, &mut |_| {});
        tx.send(result).unwrap();
    });
    let result = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("plug did not give up");
    let elapsed = started.elapsed();
    match result {
        Err(ClientError::Vpcd { addr, reason }) => {
            assert_eq!(addr, format!("127.0.0.1:{port}"));
            assert!(reason.contains("unreachable"), "{reason}");
        }
        other => panic!("expected a vpcd error, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(300), "gave up after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "gave up only after {elapsed:?}");
}

#[test]
fn stop_ends_the_wait_for_pcscd() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = PlugOptions::new(format!("127.0.0.1:{port}"));
    opts.retry = Duration::from_secs(30);
    let stop = Arc::clone(&opts.stop);
    let (bridge, events) = spawn_plug(EchoCard::default(), opts);
    thread::sleep(Duration::from_millis(100));
    let stopped_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    bridge.join().unwrap().unwrap();
    assert!(stopped_at.elapsed() < Duration::from_secs(1));
    assert!(events.lock().unwrap().is_empty());
}

/// Manual end-to-end check: plugs the echo card into a running pcscd (vpcd on 127.0.0.1:35963)
/// and talks to it through PC/SC.
#[cfg(feature = "pcsc")]
#[test]
#[ignore = "needs a running pcscd with the vpcd driver"]
fn end_to_end_through_pcscd() {
    use jpki_client::Transport;
    use jpki_client::pcsc::{PcscTransport, readers};

    let opts = PlugOptions::new(jpki_client::vpcd::DEFAULT_ADDR);
    let stop = Arc::clone(&opts.stop);
    let started = Instant::now();
    let log = Arc::new(Mutex::new(Vec::<(Duration, PlugEvent)>::new()));
    let sink = Arc::clone(&log);
    let bridge = thread::spawn(move || {
        plug(&mut EchoCard::default(), &opts, &mut |e| {
            sink.lock().unwrap().push((started.elapsed(), e));
        })
    });

    eprintln!("readers: {:?}", readers().unwrap());
    let until = Instant::now() + Duration::from_secs(10);
    let mut transport = loop {
        match PcscTransport::connect("Virtual PCD 00 00") {
            Ok(t) => break t,
            Err(e) if Instant::now() < until => {
                eprintln!("{:?}: {e}", started.elapsed());
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    eprintln!("card usable after {:?}", started.elapsed());
    assert_eq!(transport.atr().unwrap(), ATR);
    let select = [
        0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
    ];
    let response = transport.transmit(&select).unwrap();
    assert_eq!(&response[..select.len()], select);
    assert_eq!(&response[select.len()..], [0x90, 0x00]);
    transport.reset().unwrap();
    assert_eq!(
        transport.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x04]).unwrap().len(),
        7
    );
    drop(transport);

    stop.store(true, Ordering::SeqCst);
    bridge.join().unwrap().unwrap();
    for (at, event) in log.lock().unwrap().iter() {
        eprintln!("{at:?} {event:?}");
    }
}
