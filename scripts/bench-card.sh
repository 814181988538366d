#!/usr/bin/env bash
# The card authentication benchmark, in-process and over PC/SC through vpcd:
# builds jpki, issues a card in a temporary authority, plugs it into pcscd's vpcd driver (starting
# pcscd if none runs), and runs `cargo bench -p jpki-client --bench auth` both ways.
# Needs pcscd, vsmartcard-vpcd and libpcsclite-dev (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

cargo build -q --release -p jpki-cli
J="$PWD/target/release/jpki"
export JPKI_DATA="$T/data" JPKI_DEVICE_KEY="$T/device.key"
"$J" init --demo --kdf-iterations 1000 >/dev/null
R=$("$J" --json resident add --name '山田　太郎' --address '東京都千代田区霞が関2-1-2' --birth 1980-02-17 --sex 1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["resident_id"])')
"$J" card issue --resident "$R" --out "$T/bench.card" --pin 1234 --sign-password ABCDEF12 >/dev/null

echo "== in-process"
cargo bench -q -p jpki-client --bench auth 2>/dev/null | grep -v '^$'

if ! pgrep -x pcscd >/dev/null; then
    pcscd -f -a >"$T/pcscd.log" 2>&1 &
    PIDS+=($!)
    sleep 1
fi
"$J" card plug --card "$T/bench.card" --max-wait 10 2>"$T/plug.log" &
PIDS+=($!)
for _ in $(seq 50); do
    opensc-tool -l 2>/dev/null | grep -q 'Yes.*Virtual PCD 00 00' && break
    sleep 0.2
done
echo "== over vpcd / PC/SC"
JPKI_BENCH_READER="Virtual PCD 00 00" cargo bench -q -p jpki-client --bench auth 2>/dev/null | grep -v '^$'
