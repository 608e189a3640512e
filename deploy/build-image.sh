#!/usr/bin/env bash
# Builds the Sluice container image FROM scratch (see deploy/Dockerfile).
#
#   deploy/build-image.sh [--tag TAG] [--build-dir DIR]
#
# 1. meson release build in its own directory (default /tmp/sluice-image-build,
#    SLUICE_IMAGE_BUILD_DIR; never the shared build/), without the test suites;
# 2. a root filesystem: the two binaries (stripped), exactly the shared
#    libraries `ldd` lists for them plus the dynamic loader, /etc/passwd and
#    /etc/group with the unprivileged user sluice (uid/gid 10001),
#    /etc/nsswitch.conf (hosts: files dns, for compose service names), /tmp;
# 3. a smoke test of that tree with chroot (where we are root): the loader
#    finds every library and `--version` runs;
# 4. docker build, then prints the image's size.
#
# Environment: SLUICE_IMAGE (tag, default sluice:dev), DOCKER (the docker
# client, default Debian's /usr/bin/docker when present, which matches the
# daemon from docker.io). Needs a running dockerd (tests/compose/run.sh
# starts one if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/rootfs.sh

tag=${SLUICE_IMAGE:-sluice:dev}
bdir=${SLUICE_IMAGE_BUILD_DIR:-/tmp/sluice-image-build}
while [ $# -gt 0 ]; do
    case "$1" in
    --tag) tag=$2; shift 2 ;;
    --build-dir) bdir=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

bash tests/deps.sh
[ -f "$bdir/build.ninja" ] || meson setup "$bdir" --buildtype=release -Dtests=false >/dev/null
ninja -C "$bdir" node/sluice-node coordinator/sluice-coord >/dev/null
bins=("$bdir/node/sluice-node" "$bdir/coordinator/sluice-coord")

ctx=$(mktemp -d /tmp/sluice-image-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root/usr/bin" "$root/etc" "$root/tmp" \
    "$ctx/data/var/lib/sluice/coord" "$ctx/data/var/lib/sluice/node" "$ctx/data/srv/segments"
chmod 1777 "$root/tmp"
for b in "${bins[@]}"; do
    install -m 0755 -s "$b" "$root/usr/bin/$(basename "$b")"
done

# Every library and the loader, at the path the loader will look for it.
rootfs_add_libs "$root" "${bins[@]}"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/nonexistent:/nonexistent
sluice:x:10001:10001:sluice:/var/lib/sluice:/nonexistent
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
sluice:x:10001:
EOF
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

if [ "$(id -u)" -eq 0 ]; then
    chroot "$root" /usr/bin/sluice-node --version >/dev/null
    chroot "$root" /usr/bin/sluice-coord --version >/dev/null
fi
echo "== image contents ($(du -sk "$root" | cut -f1) KiB):"
(cd "$root" && find . -type f | sed 's|^\.|   |' | sort)

cp deploy/Dockerfile "$ctx/Dockerfile"
"$DOCKER" build -q -t "$tag" "$ctx" >/dev/null
size=$("$DOCKER" image inspect -f '{{.Size}}' "$tag")
echo "== built $tag: $size bytes ($((size / 1024)) KiB)"
