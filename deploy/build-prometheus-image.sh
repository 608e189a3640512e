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

tag=sluice-prometheus:dev
while [ $# -gt 0 ]; do
    case "$1" in
    --tag) tag=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-prometheus-image.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
bash tests/deps.sh prometheus

ctx=$(mktemp -d /tmp/sluice-prometheus-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root/usr/bin" "$root/etc/prometheus" "$root/tmp" "$ctx/data/var/lib/prometheus"
chmod 1777 "$root/tmp"
install -m 0755 /usr/bin/prometheus "$root/usr/bin/prometheus"
libs=$(ldd /usr/bin/prometheus | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u)
for l in $libs; do
    mkdir -p "$root$(dirname "$l")"
    cp -L "$l" "$root$l"
done
echo 'nobody:x:65534:65534:nobody:/nonexistent:/nonexistent' >"$root/etc/passwd"
echo 'nogroup:x:65534:' >"$root/etc/group"
if [ "$(id -u)" -eq 0 ]; then
    chroot "$root" /usr/bin/prometheus --version >/dev/null
fi
cp deploy/Dockerfile.prometheus "$ctx/Dockerfile"
"$DOCKER" build -q -t "$tag" "$ctx" >/dev/null
echo "== built $tag: $("$DOCKER" image inspect -f '{{.Size}}' "$tag") bytes"
