//! PDF signatures of untrusted documents (`signatures`), and preparing untrusted documents for
//! signing: whatever `prepare` accepts must, once finished, show the new signature as covering the
//! whole new revision.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use jpki_sig::pdf::{Coverage, SignOptions, prepare, signatures};
    if let Ok(sigs) = signatures(data) {
        for s in sigs {
            if let Coverage::WholeRevision { revision_end, .. } = s.coverage {
                assert!(revision_end <= data.len());
                assert!(s.digest_sha256.is_some());
            }
        }
    }
    let mut opts = SignOptions::new(time::OffsetDateTime::UNIX_EPOCH);
    opts.reserved = 64;
    if let Ok(p) = prepare(data, &opts) {
        let name = p.field_name().to_owned();
        let out = p
            .finish(&[0x30, 0x03, 0x02, 0x01, 0x05])
            .expect("a 5-byte CMS fits in 64");
        let sigs = signatures(&out).expect("our update of a readable PDF is readable");
        let ours = sigs
            .iter()
            .find(|s| s.field_name == name)
            .expect("the new field is found");
        assert!(
            matches!(
                ours.coverage,
                Coverage::WholeRevision {
                    later_revisions: false,
                    ..
                }
            ),
            "{:?}",
            ours.coverage
        );
    }
});
