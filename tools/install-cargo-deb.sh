#!/usr/bin/env bash
# Installs cargo-deb, at one pinned version, from crates.io into a cache shared by
# every checkout of this machine, and prints the path of the binary. Idempotent:
# a second run only prints the path (cold: a few minutes of compiling; warm: < 1 s).
#
#   tools/install-cargo-deb.sh            # prints .../bin/cargo-deb
#
# Pinned so every machine builds the same package layout; --locked uses
# cargo-deb's own Cargo.lock. The cache is outside the work tree (target dirs
# and worktrees come and go; the tool does not change with them).
set -euo pipefail

version=3.8.0
cache="${HEATSCALER_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heatscaler-tools}/cargo-deb-$version"
bin="$cache/bin/cargo-deb"

if [ ! -x "$bin" ]; then
    echo "install-cargo-deb: building cargo-deb $version into $cache" >&2
    # lzma (default): .deb data members compressed with xz, as Debian's own packages are.
    nice -n 10 cargo install --locked --quiet --version "$version" --root "$cache.partial" cargo-deb >&2
    rm -rf "$cache"
    mv "$cache.partial" "$cache"
fi
echo "$bin"
