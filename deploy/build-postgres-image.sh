#!/usr/bin/env bash
# Builds an image of PostgreSQL 15 from Debian's `postgresql-15` package,
# FROM scratch (see deploy/Dockerfile.postgres), for the catalog of the
# compose file's two coordinators:
#
#   deploy/build-postgres-image.sh [--tag TAG]      # default sluice-postgres:dev
#
# It copies the installed package's files (the host must have it; tests/deps.sh
# installs postgresql and busybox-static), smoke-tests the tree with chroot
# where we are root (initdb and postgres --version), and prints the size.
# Environment: SLUICE_POSTGRES_IMAGE (tag), DOCKER (the docker client,
# default /usr/bin/docker if present).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/rootfs.sh

tag=${SLUICE_POSTGRES_IMAGE:-sluice-postgres:dev}
rootfs_image_args "$0" 12 "$@"
bash tests/deps.sh busybox-static

pg=/usr/lib/postgresql/15
share=/usr/share/postgresql/15
ctx=$(mktemp -d /tmp/sluice-postgres-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root$pg/bin" "$root$pg/lib" "$root/usr/share/postgresql" "$root/usr/share/zoneinfo/Etc" \
    "$root/usr/local/bin" "$root/bin" "$root/etc" "$root/tmp" "$ctx/data/var/lib/postgresql/data"
chmod 1777 "$root/tmp"
chmod 0700 "$ctx/data/var/lib/postgresql/data"
for b in postgres initdb pg_isready; do
    install -m 0755 -s "$pg/bin/$b" "$root$pg/bin/$b"
done
# The server's own loadable modules: PL/pgSQL and the snowball dictionaries
# (initdb creates both), the encoding conversions, streaming and logical
# replication. Not contrib, not the LLVM JIT (llvmjit.so alone pulls ~120 MB).
mods=("$pg"/lib/plpgsql.so "$pg"/lib/dict_snowball.so "$pg"/lib/*_and_*.so
      "$pg"/lib/libpqwalreceiver.so "$pg"/lib/pgoutput.so)
install -m 0644 -s "${mods[@]}" "$root$pg/lib/"
# Its share files, with only PL/pgSQL's extension scripts (contrib's have no
# modules here).
cp -r "$share" "$root/usr/share/postgresql/15"
find "$root$share/extension" -type f ! -name 'plpgsql*' -delete
rm -rf "$root$share/man"
cp /usr/share/zoneinfo/UTC "$root/usr/share/zoneinfo/UTC"
cp /usr/share/zoneinfo/UTC "$root/usr/share/zoneinfo/Etc/UTC"
rootfs_add_libs "$root" "$root$pg"/bin/* "${mods[@]}"
install -m 0755 /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 deploy/postgres-entrypoint.sh "$root/usr/local/bin/postgres-entrypoint"
cat >"$root/etc/passwd" <<'PW'
root:x:0:0:root:/nonexistent:/nonexistent
postgres:x:10002:10002:PostgreSQL:/var/lib/postgresql:/nonexistent
PW
cat >"$root/etc/group" <<'GR'
root:x:0:
postgres:x:10002:
GR
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

if [ "$(id -u)" -eq 0 ]; then
    chroot "$root" "$pg/bin/postgres" --version >/dev/null
    chroot "$root" "$pg/bin/initdb" --version >/dev/null
fi
echo "== postgres image contents: $(du -sk "$root" | cut -f1) KiB, $(find "$root" -type f | wc -l) files"
cp deploy/Dockerfile.postgres "$ctx/Dockerfile"
"$DOCKER" build -q -t "$tag" "$ctx" >/dev/null
size=$("$DOCKER" image inspect -f '{{.Size}}' "$tag")
echo "== built $tag: $size bytes ($((size / 1024)) KiB)"
