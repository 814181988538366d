#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time each, and turns what it finds into
# regression inputs:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 s, every target)
#
# Needs nightly and cargo-fuzz (rustup toolchain install nightly && cargo install cargo-fuzz).
# Not part of scripts/test.sh; what it finds is: every crash, OOM or timeout libFuzzer writes to
# fuzz/artifacts/TARGET/ is copied into fuzz/regressions/TARGET/, which `cargo test -p jpki-fuzzing`
# (so scripts/test.sh) replays through the same function on stable. A crashing target does not stop
# the others; the exit status is non-zero if anything was found. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs == 0)); then
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
shift || true

all=$(cargo +nightly fuzz list)
if (($# > 0)); then
  targets=("$@")
  for t in "${targets[@]}"; do
    if ! grep -qx -- "$t" <<<"$all"; then
      echo "no fuzz target $t (targets: $(tr '\n' ' ' <<<"$all"))" >&2
      exit 2
    fi
  done
else
  mapfile -t targets <<<"$all"
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
found=0
rows=()
for t in "${targets[@]}"; do
  echo "== fuzz $t (${secs}s)"
  mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
  # Marks the start, so that only artifacts of this run count as new.
  stamp="$logs/$t.stamp"
  touch "$stamp"
  log="$logs/$t.log"
  status=0
  # corpus/TARGET collects what libFuzzer finds; regressions/TARGET is read as a second seed corpus.
  cargo +nightly fuzz run "$t" "corpus/$t" "regressions/$t" -- \
    -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  # The run's counts, and for a crash the panic or sanitizer report (awk: no SIGPIPE under pipefail).
  awk '/^stat::(number_of_executed_units|new_units_added)|^SUMMARY|ERROR: (libFuzzer|AddressSanitizer)/ { print }
       /panicked at/ { print; if ((getline line) > 0) print line }' "$log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [[ -z $runs ]]; then
    runs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
  fi
  crashes=0
  while IFS= read -r -d '' artifact; do
    known=""
    for f in "regressions/$t"/*; do
      if [[ -f $f ]] && cmp -s -- "$artifact" "$f"; then
        known=$f
        break
      fi
    done
    if [[ -n $known ]]; then
      echo "regression fuzz/$known still fails — fix the parser"
    else
      dest="regressions/$t/$(basename "$artifact")"
      cp -- "$artifact" "$dest"
      echo "new regression: fuzz/$dest — fix the parser, then commit it"
    fi
    crashes=$((crashes + 1))
  done < <(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) \
    -newer "$stamp" -print0)
  if ((status != 0 && crashes == 0)); then
    # libFuzzer failed without an artifact (a build error, a crash in set-up): show why.
    echo "fuzz $t failed (exit $status) without an artifact; its log:" >&2
    tail -n 30 "$log" >&2
    crashes=1
  fi
  found=$((found + crashes))
  rows+=("$(printf '%-20s %8s %14s %8s' "$t" "$secs" "${runs:-?}" "$crashes")")
done

echo
printf '%-20s %8s %14s %8s\n' target seconds runs crashes
printf '%s\n' "${rows[@]}"
if ((found > 0)); then
  echo "$found crash(es) found: see the regressions named above" >&2
  exit 1
fi
