#!/usr/bin/env bash
# The main job on a fresh machine: installs what building needs when it is missing (pcsc-lite's
# development files and pkg-config, for `--reader`), then runs `jpki demo` from a release build.
# Arguments go to `jpki demo` (e.g. --data DIR, --key-type p384, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists libpcsclite 2>/dev/null; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi
    if ! { "${sudo[@]}" apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            libpcsclite-dev pkg-config; }; then
        echo "demo.sh: could not install libpcsclite-dev and pkg-config; install them, or run" \
            "cargo run --release --no-default-features -- demo (no PC/SC readers)" >&2
        exit 1
    fi
fi
exec cargo run --release -- demo "$@"
