#!/usr/bin/env bash
# The whole check, as CI runs it: installs what the tests need when it is missing, then
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. cargo test --workspace   (JPKI_REQUIRE_INTEROP=1: the openssl and pkilint tests must run)
#
# Needs a Rust toolchain (rustup, with rustfmt and clippy). Installs, only when missing:
#   apt (as root, or with passwordless sudo): openssl, python3, python3-venv, a C compiler;
#   .venv/ (repo root, gitignored): pkilint==$PKILINT_VERSION from PyPI.
# As a non-root user without sudo, missing system packages are reported and the script fails.
# Idempotent: a second run installs nothing. Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PKILINT_VERSION=0.13.3
VENV="$ROOT/.venv"
START=$(date +%s)
SECTION="setup"

section() {
    SECTION=$1
    printf '\n=== %s ===\n' "$1"
}

finish() {
    local rc=$?
    local secs=$(($(date +%s) - START))
    if [ "$rc" -eq 0 ]; then
        printf '\ntest.sh: OK — fmt, clippy and all tests passed in %ss\n' "$secs"
    else
        printf '\ntest.sh: FAILED in section "%s" (exit %s) after %ss\n' "$SECTION" "$rc" "$secs" >&2
    fi
}
trap finish EXIT

# --- system packages -------------------------------------------------------------------------

APT_UPDATED=""
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "missing system packages: $* — install them (apt-get install $*) or run as root" >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "missing system packages: $* — and no apt-get to install them with" >&2
        return 1
    fi
    if [ -z "$APT_UPDATED" ]; then
        "${sudo[@]}" apt-get update -q
        APT_UPDATED=1
    fi
    echo "installing: $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

section "setup"
command -v cargo >/dev/null 2>&1 || {
    echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
}
for component in rustfmt clippy; do
    sub=${component/rustfmt/fmt}
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            rustup component add "$component"
        else
            echo "cargo $sub not available and no rustup to add $component" >&2
            exit 1
        fi
    fi
done

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# --- pkilint in .venv --------------------------------------------------------------------------

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}
pkilint_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pkilint"))' 2>/dev/null || true
}

if ! venv_ok; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
fi
if [ "$(pkilint_version)" != "$PKILINT_VERSION" ]; then
    echo "installing pkilint==$PKILINT_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "pkilint==$PKILINT_VERSION"
fi
for exe in lint_pkix_cert lint_crl; do
    [ -x "$VENV/bin/$exe" ] || {
        echo "$VENV/bin/$exe missing after installing pkilint" >&2
        exit 1
    }
done
echo "cargo:   $(cargo --version)"
echo "openssl: $(openssl version)"
echo "pkilint: $(pkilint_version) ($VENV)"

# --- the checks ----------------------------------------------------------------------------------

section "cargo fmt --all --check"
cargo fmt --all --check

section "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

section "cargo test --workspace"
TARGET_TMP="${CARGO_TARGET_DIR:-$ROOT/target}/tmp"
rm -f "$TARGET_TMP"/pkilint-warnings-*.txt
JPKI_REQUIRE_INTEROP=1 JPKI_VENV="$VENV" cargo test --workspace "$@"

SECTION="report"
shopt -s nullglob
reports=("$TARGET_TMP"/pkilint-warnings-*.txt)
if [ ${#reports[@]} -gt 0 ]; then
    section "pkilint findings at WARNING level (kept; ERROR and FATAL fail the tests)"
    cat "${reports[@]}"
fi
