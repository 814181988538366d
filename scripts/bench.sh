#!/usr/bin/env bash
# Runs openjpki's performance benchmarks in release mode and prints their figures.
#
#   scripts/bench.sh            # all three benchmarks
#   scripts/bench.sh issuance   # certificate issuance vs raw signing (jpki-pki)
#   scripts/bench.sh crl        # CRL publication for 1,000,000 revoked entries (jpki-authority)
#   scripts/bench.sh authority  # cards through Authority::issue_run / issue_cards / issue_card, registry included
#   scripts/bench.sh verify     # CAdES-B-B verification vs raw RSA-2048 verification (jpki-sig)
#   scripts/bench.sh ocsp       # OCSP over HTTP: jpki serve's responder vs openssl ocsp -multi 2, via wrk
#   scripts/bench.sh serve      # the real `jpki serve` binary: validity checks via wrk, access records written
#   scripts/bench.sh login      # complete logins with the card: jpki serve + jpki card agent + Authlib (JPKI_BENCH_LOGINS=200)
#
# Knobs (environment):
#   JPKI_BENCH_SECS=5           seconds per issuance phase (split into JPKI_BENCH_ROUNDS rounds)
#   JPKI_BENCH_ROUNDS=3         interleaved rounds; the best round of each phase is kept
#   JPKI_BENCH_THREADS=<nproc>  threads for the whole-machine figures
#   JPKI_BENCH_KEYS=32          pre-generated subject keys
#   JPKI_BENCH_KEY_TYPES=rsa2048,p384
#   JPKI_BENCH_N=10000          signatures in the verification benchmark (JPKI_BENCH_CRL_ENTRIES=100000)
#   JPKI_BENCH_CRL_N=1000000    revoked certificates in the CRL benchmark
#   JPKI_BENCH_CRL_SHARDS=16    CRL shards
#   JPKI_BENCH_KEY_TYPE=rsa2048 CA key type of the CRL benchmark
#   JPKI_BENCH_OCSP_N=1000000   certificates in the OCSP benchmark (one in ten revoked)
#   JPKI_BENCH_DIR=$TMPDIR      where the authority benchmarks build their registry (CRL: ~200 MB +
#                               ~100 MB of CRLs); /dev/shm takes fsync out of the picture
#
# The figures are only as good as the machine is quiet: the issuance benchmark prints the share of
# CPU other processes used during each phase.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
echo "machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "toolchain: $(rustc --version)"

if [[ "$what" == all || "$what" == issuance ]]; then
    echo
    echo "== cargo bench -p jpki-pki --bench issuance"
    cargo bench -q -p jpki-pki --bench issuance
fi
if [[ "$what" == all || "$what" == crl ]]; then
    echo
    echo "== cargo bench -p jpki-authority --bench crl"
    cargo bench -q -p jpki-authority --bench crl
fi
if [[ "$what" == all || "$what" == authority ]]; then
    echo
    echo "== cargo bench -p jpki-authority --bench issue"
    cargo bench -q -p jpki-authority --bench issue
fi
if [[ "$what" == all || "$what" == verify ]]; then
    echo
    echo "== cargo bench -p jpki-sig --bench verify"
    cargo bench -q -p jpki-sig --bench verify
fi
if [[ "$what" == all || "$what" == ocsp ]]; then
    echo
    for tool in wrk hey; do
        if ! command -v "$tool" >/dev/null; then
            echo "installing $tool (apt) for the OCSP benchmark"
            if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q "$tool" >/dev/null; else sudo apt-get install -y -q "$tool" >/dev/null; fi
        fi
    done
    echo "== cargo bench -p jpki-cli --bench ocsp (wrk $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f2), $(openssl version))"
    cargo bench -q -p jpki-cli --bench ocsp
fi
if [[ "$what" == all || "$what" == serve ]]; then
    echo
    echo "== jpki serve end to end: POST /v1/certificates/validity via wrk (2 threads, 32 connections, ${JPKI_BENCH_SECS:-10} s)"
    command -v wrk >/dev/null || { echo "needs wrk (scripts/bench.sh ocsp installs it)"; exit 1; }
    cargo build -q --release -p jpki-cli
    jpki="$PWD/target/release/jpki"
    work=$(mktemp -d)
    trap 'pkill -TERM -f "jpki serve --listen 127.0.0.1:7791" 2>/dev/null; rm -rf "$work"' EXIT
    export JPKI_DATA="$work/data" JPKI_DEVICE_KEY="$work/device.key"
    "$jpki" init --demo --kdf-iterations 1000 >/dev/null
    "$jpki" resident add --name '山田 太郎' --address '東京都千代田区千代田1-1' --birth 1980-02-17 --sex 1 >/dev/null
    serial=$("$jpki" --json card issue --resident 1 --out "$work/taro.card" --pin 1234 --sign-password ABCDEF12 |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["auth_serial"])')
    "$jpki" cert export --serial "$serial" --out "$work/auth.pem" >/dev/null
    key=$("$jpki" --json rp add --name Bench --allow auth-status --purpose bench |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
    python3 -c 'import json, sys; print(json.dumps({"certificate": open(sys.argv[1]).read()}))' "$work/auth.pem" >"$work/body.json"
    printf "local f = io.open('%s', 'rb'); wrk.body = f:read('*a'); f:close()\nwrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.headers['Authorization'] = 'Bearer %s'\n" \
        "$work/body.json" "$key" >"$work/validity.lua"
    "$jpki" serve --listen 127.0.0.1:7791 >"$work/serve.log" 2>&1 &
    for _ in $(seq 50); do curl -sf http://127.0.0.1:7791/healthz >/dev/null && break; sleep 0.2; done
    wrk -t2 -c32 -d"${JPKI_BENCH_SECS:-10}s" --latency -s "$work/validity.lua" http://127.0.0.1:7791/v1/certificates/validity |
        grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors'
    sleep 1
    "$jpki" --json access-log --serial "$serial" |
        python3 -c 'import json, sys; d = json.load(sys.stdin); print("access records written: %d, intact: %s, held apart: %d" % (len(d["records"]), d["integrity"]["intact"], d["quarantined"]))'
fi
if [[ "$what" == all || "$what" == login ]]; then
    echo
    echo "== log in with the card: ${JPKI_BENCH_LOGINS:-200} complete logins (authorize, card agent signs with the card file, consent, code, token) by Authlib"
    python=.venv/bin/python
    "$python" -c 'import authlib, joserfc' 2>/dev/null || { echo "needs authlib and joserfc in .venv (scripts/test.sh installs them)"; exit 1; }
    cargo build -q --release -p jpki-cli
    jpki="$PWD/target/release/jpki"
    work=$(mktemp -d)
    trap 'kill %1 %2 2>/dev/null; rm -rf "$work"' EXIT
    export JPKI_DATA="$work/data" JPKI_DEVICE_KEY="$work/device.key"
    "$jpki" init --demo --kdf-iterations 1000 >/dev/null
    "$jpki" resident add --name '山田 太郎' --address '東京都千代田区千代田1-1' --birth 1980-02-17 --sex 1 >/dev/null
    "$jpki" card issue --resident 1 --out "$work/taro.card" --pin 1234 --sign-password ABCDEF12 >/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/rp.key" 2>/dev/null
    "$python" crates/cli/tests/oidc_rp.py jwks "$work/rp.key" "$work/rp.jwks"
    client=$("$jpki" --json rp add --name Bench --allow oidc --redirect-uri http://127.0.0.1:9/cb --jwks "$work/rp.jwks" --id-token-alg ES256 |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["client_id"])')
    "$jpki" card agent --card "$work/taro.card" --listen 127.0.0.1:7793 >"$work/agent.log" 2>&1 &
    "$jpki" serve --listen 127.0.0.1:7792 --card-agent http://127.0.0.1:7793 >"$work/serve.log" 2>&1 &
    for _ in $(seq 50); do curl -sf http://127.0.0.1:7792/healthz >/dev/null && curl -sf http://127.0.0.1:7793/ >/dev/null && break; sleep 0.2; done
    "$python" crates/cli/tests/oidc_rp.py bench http://127.0.0.1:7792/oidc/.well-known/openid-configuration "$client" "$work/rp.key" \
        http://127.0.0.1:9/cb 1234 "${JPKI_BENCH_LOGINS:-200}"
fi
