#!/usr/bin/env bash
# Builds an image of Prometheus from Debian's `prometheus` package, FROM
# scratch (see deploy/Dockerfile.prometheus), for the compose file's
# `monitoring` profile:
#
#   deploy/build-prometheus-image.sh [--tag TAG]      # default sluice-prometheus:dev
#
# Grafana is not packaged by Debian, so there is no offline way to build its
# image here: the README ("Monitoring") says how to run it from an image you
# have, with deploy/grafana/provisioning and deploy/grafana/sluice.json.
# Environment: DOCKER (the docker client, default /usr/bin/docker if present).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/rootfs.sh

tag=sluice-prometheus:dev
rootfs_image_args "$0" 11 "$@"
bash tests/deps.sh prometheus

ctx=$(mktemp -d /tmp/sluice-prometheus-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root/usr/bin" "$root/etc/prometheus" "$root/tmp" "$ctx/data/var/lib/prometheus"
chmod 1777 "$root/tmp"
install -m 0755 /usr/bin/prometheus "$root/usr/bin/prometheus"
rootfs_add_libs "$root" /usr/bin/prometheus
echo 'nobody:x:65534:65534:nobody:/nonexistent:/nonexistent' >"$root/etc/passwd"
echo 'nogroup:x:65534:' >"$root/etc/group"
if [ "$(id -u)" -eq 0 ]; then
    chroot "$root" /usr/bin/prometheus --version >/dev/null
fi
cp deploy/Dockerfile.prometheus "$ctx/Dockerfile"
"$DOCKER" build -q -t "$tag" "$ctx" >/dev/null
echo "== built $tag: $("$DOCKER" image inspect -f '{{.Size}}' "$tag") bytes"
