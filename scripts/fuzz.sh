#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each). Needs nightly and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Not part of scripts/test.sh. Every crash found becomes a regression test beside the parser.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
for t in $(cargo +nightly fuzz list); do
  echo "== fuzz $t (${secs}s)"
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs"
done
