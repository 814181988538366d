#!/usr/bin/env bash
# Runs openjpki's performance benchmarks in release mode and prints their figures.
#
#   scripts/bench.sh            # all three benchmarks
#   scripts/bench.sh issuance   # certificate issuance vs raw signing (jpki-pki)
#   scripts/bench.sh crl        # CRL publication for 1,000,000 revoked entries (jpki-authority)
#   scripts/bench.sh authority  # cards through Authority::issue_run / issue_cards / issue_card, registry included
#   scripts/bench.sh verify     # CAdES-B-B verification vs raw RSA-2048 verification (jpki-sig)
#   scripts/bench.sh ocsp       # OCSP over HTTP: jpki serve's responder vs openssl ocsp -multi 2, via wrk
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
    if ! command -v wrk >/dev/null; then
        echo "installing wrk (apt) for the OCSP benchmark"
        if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q wrk >/dev/null; else sudo apt-get install -y -q wrk >/dev/null; fi
    fi
    echo "== cargo bench -p jpki-cli --bench ocsp (wrk $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f2), $(openssl version))"
    cargo bench -q -p jpki-cli --bench ocsp
fi
