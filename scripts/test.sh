#!/usr/bin/env bash
# The whole check, as CI runs it: installs what the tests need when it is missing, then
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. cargo test --workspace   (JPKI_REQUIRE_INTEROP=1: the openssl, pkilint and smart-card
#      interop tests must run)
#
# Needs a Rust toolchain (rustup, with rustfmt and clippy). Installs, only when missing:
#   apt (as root, or with passwordless sudo): openssl, python3, python3-venv, a C compiler;
#     libpcsclite-dev and pkg-config (the workspace links libpcsclite: needed to build at all);
#     pcscd, vsmartcard-vpcd, opensc, pcsc-tools (the card interop test), swig and python3-dev
#     (to build pyscard); chromium, chromium-driver and fonts-ipafont-gothic (the portal's browser test); postgresql (the
#     storage conformance suite runs on SQLite and on a
#     throwaway PostgreSQL cluster: scripts/pg.sh, 127.0.0.1, a temporary directory, stopped on exit);
#   .venv/ (repo root, gitignored): pkilint==$PKILINT_VERSION, pyscard==$PYSCARD_VERSION,
#     pyHanko[pkcs11]==$PYHANKO_VERSION and pyhanko-cli==$PYHANKO_CLI_VERSION, schemathesis,
#     prometheus-client, authlib==$AUTHLIB_VERSION with joserfc from PyPI.
# As a non-root user without sudo, missing system packages are reported and the script fails.
# Idempotent: a second run installs nothing. Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PKILINT_VERSION=0.13.3
PYSCARD_VERSION=2.3.1
PYHANKO_VERSION=0.38.0
PYHANKO_CLI_VERSION=0.6.0
PROMETHEUS_CLIENT_VERSION=0.26.0
SCHEMATHESIS_VERSION=4.32.5
AUTHLIB_VERSION=1.9.8
JOSERFC_VERSION=1.8.0
SELENIUM_VERSION=4.50.0
VENV="$ROOT/.venv"
START=$(date +%s)
SECTION="setup"

section() {
    SECTION=$1
    printf '\n=== %s ===\n' "$1"
}

PG_DIR=""
finish() {
    local rc=$?
    if [ -n "$PG_DIR" ]; then
        scripts/pg.sh stop "$PG_DIR" || true
        rm -rf "$PG_DIR"
    fi
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

# Before any cargo build: the pcsc crate links libpcsclite, found with pkg-config.
# pcscd lives in /usr/sbin, which not every user's PATH has (the tests look there too).
PATH="$PATH:/usr/sbin:/sbin"
have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg -s "$1" >/dev/null 2>&1; }
python_headers() {
    python3 -c 'import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
        >/dev/null 2>&1
}
PKCS11_MODULE=""
find_pkcs11_module() {
    local m
    for m in /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so /usr/lib/aarch64-linux-gnu/opensc-pkcs11.so \
        /usr/lib64/opensc-pkcs11.so /usr/lib/opensc-pkcs11.so; do
        if [ -e "$m" ]; then
            PKCS11_MODULE=$m
            return 0
        fi
    done
    return 1
}

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
have pkg-config || missing+=(pkg-config)
if have pkg-config; then
    pkg-config --exists libpcsclite || missing+=(libpcsclite-dev)
else
    pkg_installed libpcsclite-dev || missing+=(libpcsclite-dev)
fi
have pcscd || missing+=(pcscd)
[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || pkg_installed vsmartcard-vpcd || missing+=(vsmartcard-vpcd)
{ have pkcs11-tool && have pkcs15-tool && have opensc-tool && find_pkcs11_module; } || missing+=(opensc)
have pcsc_scan || missing+=(pcsc-tools)
have swig || missing+=(swig)
python_headers || missing+=(python3-dev)
pg_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || have initdb; }
pg_server || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
pkg_installed fonts-ipafont-gothic || missing+=(fonts-ipafont-gothic)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi
find_pkcs11_module || {
    echo "opensc-pkcs11.so not found after installing opensc" >&2
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

# --- pkilint and pyscard in .venv ----------------------------------------------------------------

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}
py_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" \
        2>/dev/null || true
}
pkilint_version() { py_version pkilint; }
pyscard_ok() {
    [ "$(py_version pyscard)" = "$PYSCARD_VERSION" ] && "$VENV/bin/python" -c 'import smartcard' >/dev/null 2>&1
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
if ! pyscard_ok; then
    # Built from source when no wheel fits (swig, libpcsclite-dev, python3-dev, gcc).
    echo "installing pyscard==$PYSCARD_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "pyscard==$PYSCARD_VERSION"
    pyscard_ok || {
        echo "pyscard==$PYSCARD_VERSION does not import in $VENV after installing it" >&2
        exit 1
    }
fi
pyhanko_ok() {
    [ "$(py_version pyhanko)" = "$PYHANKO_VERSION" ] && [ "$(py_version pyhanko-cli)" = "$PYHANKO_CLI_VERSION" ] &&
        "$VENV/bin/python" -c 'import pkcs11, pyhanko.sign.validation.ades' >/dev/null 2>&1
}
if ! pyhanko_ok; then
    echo "installing pyHanko==$PYHANKO_VERSION (with PKCS#11) and pyhanko-cli==$PYHANKO_CLI_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        "pyHanko[pkcs11]==$PYHANKO_VERSION" "pyhanko-cli==$PYHANKO_CLI_VERSION"
    pyhanko_ok || {
        echo "pyHanko==$PYHANKO_VERSION does not import in $VENV after installing it" >&2
        exit 1
    }
fi
if [ "$(py_version schemathesis)" != "$SCHEMATHESIS_VERSION" ]; then
    echo "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV (it tests the API against /openapi.json)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
if [ "$(py_version prometheus-client)" != "$PROMETHEUS_CLIENT_VERSION" ]; then
    echo "installing prometheus-client==$PROMETHEUS_CLIENT_VERSION into $VENV (its parser checks /metrics)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
fi
if [ "$(py_version authlib)" != "$AUTHLIB_VERSION" ] || [ "$(py_version joserfc)" != "$JOSERFC_VERSION" ]; then
    echo "installing authlib==$AUTHLIB_VERSION and joserfc==$JOSERFC_VERSION into $VENV (a real OpenID Connect relying party)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "authlib==$AUTHLIB_VERSION" "joserfc==$JOSERFC_VERSION"
fi
if [ "$(py_version selenium)" != "$SELENIUM_VERSION" ]; then
    echo "installing selenium==$SELENIUM_VERSION into $VENV (it drives headless Chromium through the portal)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "selenium==$SELENIUM_VERSION"
fi
pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
echo "cargo:   $(cargo --version)"
echo "openssl: $(openssl version)"
echo "pkilint: $(pkilint_version) ($VENV)"
echo "pyscard: $(py_version pyscard) ($VENV)"
echo "pyHanko: $(py_version pyhanko), pyhanko-cli $(py_version pyhanko-cli), certvalidator $(py_version pyhanko-certvalidator) ($VENV)"
echo "prometheus-client: $(py_version prometheus-client), schemathesis $(py_version schemathesis) ($VENV)"
echo "authlib: $(py_version authlib), joserfc $(py_version joserfc) ($VENV)"
echo "pcscd:   $(pcscd --version 2>/dev/null | head -n 1)"
echo "pcsclite: $(pkg-config --modversion libpcsclite) (libpcsclite-dev, via pkg-config $(pkg-config --version))"
echo "vpcd:    vsmartcard-vpcd $(pkg_version vsmartcard-vpcd)"
echo "opensc:  $(opensc-tool --info 2>/dev/null | head -n 1) ($PKCS11_MODULE)"
echo "chromium: $(pkg_version chromium), chromedriver $(pkg_version chromium-driver), selenium $(py_version selenium) ($VENV)"
echo "pcsc-tools: $(pkg_version pcsc-tools); swig: $(swig -version | awk '/SWIG Version/ {print $3}')"

# --- the checks ----------------------------------------------------------------------------------

section "cargo fmt --all --check"
cargo fmt --all --check

section "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

section "PostgreSQL (throwaway cluster)"
PG_DIR=$(mktemp -d /tmp/jpki-test-pg.XXXXXX)
PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
JPKI_TEST_POSTGRES=$(scripts/pg.sh start "$PG_DIR" "$PG_PORT")
export JPKI_TEST_POSTGRES
echo "postgres: $JPKI_TEST_POSTGRES ($("$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/postgres" --version 2>/dev/null || echo "?"))"

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
