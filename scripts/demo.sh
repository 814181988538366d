#!/usr/bin/env bash
# A narrated tour of the whole system on a fresh machine: installs what building needs when it is
# missing (pcsc-lite's development files and pkg-config, for `--reader`), then runs `jpki demo` from
# a release build. (The main job, the platform server, is scripts/serve.sh.)
# Arguments go to `jpki demo` (e.g. --data DIR, --key-type p384, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
JPKI_SUBCOMMAND=demo
# shellcheck source=scripts/need-pcsc.sh
. scripts/need-pcsc.sh
exec cargo run --release -- demo "$@"
