#!/usr/bin/env bash
# Installs, from Debian's archive, whatever the build and the test suites need
# and this machine lacks. It only runs apt-get when a package is missing, so a
# second run costs one dpkg query.
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc clang
      libevent-dev libprotobuf-c-dev protobuf-c-compiler
      libsqlite3-dev sqlite3 check liburing-dev
      libclang-rt-14-dev gnuplot-nox curl iproute2 iptables python3
      protobuf-compiler python3-protobuf libjansson-dev libxxhash-dev chromium prometheus
      libpq-dev postgresql busybox-static)
# Extra packages a caller asks for (for example docker.io for tests/compose).
pkgs+=("$@")

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
