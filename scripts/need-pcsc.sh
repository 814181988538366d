# Sourced by scripts/demo.sh and scripts/serve.sh: installs pcsc-lite's development files and
# pkg-config when missing (the default build links libpcsclite for --reader), or says how to build
# without them.
if ! pkg-config --exists libpcsclite 2>/dev/null; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi
    if ! { "${sudo[@]}" apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            libpcsclite-dev pkg-config; }; then
        echo "${0##*/}: could not install libpcsclite-dev and pkg-config; install them, or run" \
            "cargo run --release --no-default-features -- ${JPKI_SUBCOMMAND:-demo} (no PC/SC readers)" >&2
        exit 1
    fi
fi
