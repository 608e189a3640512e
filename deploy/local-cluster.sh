#!/usr/bin/env bash
# The main job: a local Sluice on loopback, with demo segments.
#
#   deploy/local-cluster.sh          install what is missing, build, start,
#                                    load demo segments, keep serving (Ctrl-C stops)
#   deploy/local-cluster.sh --once   the same, then stop and exit
#
# Environment: SLUICE_LOCAL_DIR (default ./local-cluster) holds the storage
# root, the node's data directory and logs; SLUICE_NODE_PORT (default 7100).
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
case "${1:-}" in
--once) once=1 ;;
"") ;;
-h | --help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "local-cluster.sh: unknown option $1 (try --help)" >&2
    exit 2
    ;;
esac

bash tests/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

bin=build/node/sluice-node
dir=${SLUICE_LOCAL_DIR:-$PWD/local-cluster}
port=${SLUICE_NODE_PORT:-7100}
addr=127.0.0.1:$port
mkdir -p "$dir/storage" "$dir/node-1"

# Demo segments whose row_count misleads: many narrow rows against few wide ones.
# narrow-*: 2,000,000 rows x 16 B = 32 MiB each; wide-*: 8,000 rows x 4 KiB = 32 MiB each.
echo "== writing demo segments into $dir/storage"
for i in 1 2 3; do
    [ -f "$dir/storage/narrow-$i.seg" ] ||
        "$bin" mkseg --rows 2000000 --row-bytes 16 --seed "$i" --out "$dir/storage/narrow-$i.seg"
    [ -f "$dir/storage/wide-$i.seg" ] ||
        "$bin" mkseg --rows 8000 --row-bytes 4096 --seed "$((10 + i))" --out "$dir/storage/wide-$i.seg"
done

echo "== starting sluice-node on $addr (log: $dir/node-1/node.log)"
rm -f "$dir/node-1/ready"
"$bin" serve --listen "$addr" --storage-root "$dir/storage" --data-dir "$dir/node-1" \
    --ready-file "$dir/node-1/ready" 2>>"$dir/node-1/node.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    [ -f "$dir/node-1/ready" ] && break
    kill -0 "$pid" 2>/dev/null || { tail -5 "$dir/node-1/node.log"; exit 1; }
    sleep 0.1
done

echo "== assigning the demo segments"
for i in 1 2 3; do
    "$bin" assign --node "$addr" --id "narrow-$i" --uri "file://$dir/storage/narrow-$i.seg" \
        --rows 2000000 --row-size 16
    "$bin" assign --node "$addr" --id "wide-$i" --uri "file://$dir/storage/wide-$i.seg" \
        --rows 8000 --row-size 4096
done
for _ in $(seq 1 300); do
    "$bin" status --node "$addr" | grep -q LOADING || break
    sleep 0.1
done
"$bin" status --node "$addr"

echo "== a query: sum(value) where key in [1000000, 5000000] over the narrow segments"
"$bin" query --node "$addr" --agg sum --column value --filter-column key \
    --lo 1000000 --hi 5000000 narrow-1 narrow-2 narrow-3

if [ "$once" -eq 1 ]; then
    exit 0
fi
echo "== serving on $addr; metrics at http://$addr/metrics. Ctrl-C stops."
wait "$pid"
