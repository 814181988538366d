//! Replays `fuzz/regressions/TARGET/*` through the function the fuzz target `TARGET` calls, on the
//! stable toolchain: every input that once crashed a target (and the edge cases kept beside them)
//! stays a test. An unknown directory, a target without a directory and an empty directory fail, so
//! no regression is skipped silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    dir.canonicalize().unwrap_or(dir)
}

/// The `[[bin]]` names of fuzz/Cargo.toml.
fn fuzz_bins() -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut names = BTreeSet::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(value) = line.strip_prefix("name") {
            let name = value.trim().trim_start_matches('=').trim().trim_matches('"');
            names.insert(name.to_owned());
        }
    }
    names
}

fn regression_dirs() -> BTreeSet<String> {
    std::fs::read_dir(fuzz_dir().join("regressions"))
        .expect("fuzz/regressions")
        .map(|e| e.expect("directory entry"))
        .filter(|e| e.file_type().expect("file type").is_dir())
        .map(|e| e.file_name().into_string().expect("UTF-8 directory name"))
        .collect()
}

#[test]
fn every_fuzz_target_has_a_function_and_a_regressions_directory() {
    let bins = fuzz_bins();
    let functions: BTreeSet<String> = jpki_fuzzing::TARGETS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    assert!(!bins.is_empty(), "no [[bin]] in fuzz/Cargo.toml");
    assert_eq!(
        bins, functions,
        "fuzz/Cargo.toml [[bin]]s vs jpki_fuzzing::TARGETS"
    );
    assert_eq!(
        bins,
        regression_dirs(),
        "fuzz/Cargo.toml [[bin]]s vs fuzz/regressions/*"
    );
    for name in &bins {
        let source = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(
            source.contains(&format!("jpki_fuzzing::{name}(data)")),
            "fuzz/fuzz_targets/{name}.rs does not call jpki_fuzzing::{name}"
        );
    }
}

#[test]
fn every_regression_input_passes_its_target() {
    let mut replayed = 0;
    let mut failed = Vec::new();
    for name in regression_dirs() {
        let Some(run) = jpki_fuzzing::target(&name) else {
            panic!("fuzz/regressions/{name}: no fuzz target of that name");
        };
        let dir = fuzz_dir().join("regressions").join(&name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("regressions directory")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no inputs", dir.display());
        for file in files {
            let data = std::fs::read(&file).expect("regression input");
            // Every input is tried; the failures are named together at the end.
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failed.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0);
    assert!(failed.is_empty(), "inputs that fail their target: {failed:#?}");
}
