//! A full user authentication with the card, as a relying party's login does it: select the JPKI
//! AP, verify the PIN, sign a 32-byte challenge, read the authentication certificate.
//!
//! In-process over the card file (every PIN attempt fsync'd before its answer):
//!     cargo bench -p jpki-client --bench auth
//! Over PC/SC through vpcd (`scripts/bench-card.sh` starts pcscd and `jpki card plug`):
//!     JPKI_BENCH_READER="Virtual PCD 00 00" cargo bench -p jpki-client --bench auth
//! Prints p50/p95/max in milliseconds; the targets are p50 ≤ 5 ms in-process, ≤ 50 ms over vpcd.
// Benchmark code: a failed setup may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use jpki_card::{Ap, CardFile, DeviceKey, HolderSecrets, Personalization, VirtualCard};
use jpki_client::{CardSession, FileTransport, Transport};
use jpki_model::CertKind;

const ROUNDS: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn run<T: Transport>(label: &str, transport: T, pin: &[u8]) {
    let mut s = CardSession::new(transport).unwrap();
    let mut times = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + 10 {
        let challenge = jpki_card::sha256(&(i as u64).to_be_bytes());
        let t = Instant::now();
        // A fresh login each round: selecting the AP clears the PIN status.
        s.select_ap(Ap::Jpki).unwrap();
        let sig = s.sign_digest(CertKind::Authentication, pin, &challenge).unwrap();
        let cert = s.read_certificate(CertKind::Authentication, None).unwrap();
        let el = t.elapsed();
        assert_eq!(sig.len(), 256);
        assert!(cert.len() > 1000);
        if i >= 10 {
            times.push(el);
        }
    }
    times.sort();
    println!(
        "{label}: full authentication (select, verify PIN, sign 32 bytes, read auth cert) over {ROUNDS} rounds: \
         p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        percentile(&times, 1.0)
    );
}

fn main() {
    if let Ok(reader) = std::env::var("JPKI_BENCH_READER") {
        let pin = std::env::var("JPKI_BENCH_PIN").unwrap_or_else(|_| "1234".into());
        #[cfg(feature = "pcsc")]
        run(
            &format!("PC/SC {reader}"),
            jpki_client::pcsc::PcscTransport::connect(&reader).unwrap(),
            pin.as_bytes(),
        );
        #[cfg(not(feature = "pcsc"))]
        panic!("built without the pcsc feature ({reader}, {pin})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.card");
    let mut card = VirtualCard::manufacture(&HolderSecrets {
        auth_pin: b"1234",
        sign_password: b"ABCDEF12",
        assist_pin: None,
    })
    .unwrap();
    card.personalize(&Personalization::placeholder()).unwrap();
    // A certificate-sized EF: 30 82 04 B0 and 1,200 bytes, read in 256-byte chunks as clients do.
    let mut cert = vec![0x30, 0x82, 0x04, 0xB0];
    cert.resize(4 + 0x4B0, 0xA5);
    card.install_certificate(CertKind::Authentication, Some(&cert));
    let file = CardFile::create(&path, DeviceKey::from_bytes([9; 32]), card).unwrap();
    run("in-process card file", FileTransport::new(file), b"1234");
}
