#!/usr/bin/env bash
# The main job: `cargo run --release -- serve`, the platform on the embedded registry (SQLite) at
# http://127.0.0.1:7700. The first run initialises ./jpki-data (a sandbox authority whose passphrase
# is generated into jpki-data/authority-passphrase, unless JPKI_AUTHORITY_PASSPHRASE is set) and
# publishes its CRLs. Arguments go to `jpki serve` (e.g. --data DIR, --listen ADDR, --public-revocation).
set -euo pipefail
cd "$(dirname "$0")/.."
JPKI_SUBCOMMAND=serve
# shellcheck source=scripts/need-pcsc.sh
. scripts/need-pcsc.sh
exec cargo run --release -- serve "$@"
