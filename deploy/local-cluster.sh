#!/usr/bin/env bash
# The main job: a whole local Sluice cluster on loopback.
#
#   deploy/local-cluster.sh          install what is missing, build, start a
#                                    coordinator and 3 nodes, import demo
#                                    segments, show who refused what and why,
#                                    keep serving (Ctrl-C stops everything)
#   deploy/local-cluster.sh --once   the same, then stop and exit
#
# Each node runs in its own memory cgroup (256M, 512M, 1G) where this machine
# lets us create one (cgroup v1 memory controller or v2), else unlimited.
# Environment: SLUICE_LOCAL_DIR (default ./local-cluster), SLUICE_COORD_PORT
# (default 7000), SLUICE_NODE_PORT_BASE (default 7100: nodes on 7101-7103).
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
case "${1:-}" in
--once) once=1 ;;
"") ;;
-h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
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

node_bin=$PWD/build/node/sluice-node
coord_bin=$PWD/build/coordinator/sluice-coord
dir=${SLUICE_LOCAL_DIR:-$PWD/local-cluster}
cport=${SLUICE_COORD_PORT:-7000}
nbase=${SLUICE_NODE_PORT_BASE:-7100}
export SLUICE_COORDINATOR=127.0.0.1:$cport
mkdir -p "$dir/storage"
# A fresh cluster every run: the previous run's catalog (its events) and node
# copies go; the demo segments in storage are kept (they take a while to write).
if [ -e "$dir/coord.db" ] || [ -d "$dir/node-1" ]; then
    echo "== starting fresh: removing the previous run's catalog and node data in $dir"
    rm -rf "$dir/coord.db" "$dir/coord.db-wal" "$dir/coord.db-shm" "$dir/coord.log" \
        "$dir/node-1" "$dir/node-2" "$dir/node-3"
fi
pids=()
cgroups=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for c in "${cgroups[@]}"; do rmdir "$c" 2>/dev/null || true; done
}
trap cleanup EXIT

# This process's memory cgroup directory (v1 memory controller, else v2), or "".
own_cgroup() {
    local v1 v2
    v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
    v2=$(awk -F: '$1 == "0" && $2 == "" {print $3}' /proc/self/cgroup)
    if [ -n "$v1" ] && [ -d /sys/fs/cgroup/memory ]; then
        echo "/sys/fs/cgroup/memory${v1%/}"
    elif [ -n "$v2" ] && [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        echo "/sys/fs/cgroup${v2%/}"
    fi
}

# Demo segments whose row_count misleads: the same 32 MiB, 250x apart in rows.
echo "== writing demo segments into $dir/storage"
for i in $(seq -w 1 12); do
    [ -f "$dir/storage/narrow-$i.seg" ] ||
        "$node_bin" mkseg --rows 2000000 --row-bytes 16 --seed "1$i" --out "$dir/storage/narrow-$i.seg" >/dev/null
    [ -f "$dir/storage/wide-$i.seg" ] ||
        "$node_bin" mkseg --rows 8000 --row-bytes 4096 --seed "2$i" --out "$dir/storage/wide-$i.seg" >/dev/null
done
echo "   12 narrow (2,000,000 rows x 16 B) + 12 wide (8,000 rows x 4 KiB) = 768 MiB"

echo "== starting sluice-coord on 127.0.0.1:$cport"
"$coord_bin" serve --listen "127.0.0.1:$cport" --db "$dir/coord.db" --node-timeout 5s \
    2>>"$dir/coord.log" &
pids+=($!)

base=$(own_cgroup)
limits=(256M 512M 1G)
bytes=($((256 << 20)) $((512 << 20)) $((1 << 30)))
for n in 1 2 3; do
    data="$dir/node-$n"
    mkdir -p "$data"
    cg=""
    if [ -n "$base" ]; then
        cand="$base/sluice-local-node-$n"
        if mkdir -p "$cand" 2>/dev/null &&
            { echo "${bytes[$((n - 1))]}" >"$cand/memory.limit_in_bytes" ||
                echo "${bytes[$((n - 1))]}" >"$cand/memory.max"; } 2>/dev/null; then
            cg=$cand
            cgroups+=("$cg")
        fi
    fi
    if [ -n "$cg" ]; then
        echo "== starting node-$n on 127.0.0.1:$((nbase + n)) in cgroup $cg, memory limit ${limits[$((n - 1))]}"
    else
        echo "== starting node-$n on 127.0.0.1:$((nbase + n)), no memory limit (no writable cgroup here)"
    fi
    if [ -n "$cg" ]; then
        sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
            "$node_bin" serve --listen "127.0.0.1:$((nbase + n))" --node-id "node-$n" \
            --storage-root "$dir/storage" --data-dir "$data" \
            --coordinator "$SLUICE_COORDINATOR" 2>>"$data/node.log" &
    else
        "$node_bin" serve --listen "127.0.0.1:$((nbase + n))" --node-id "node-$n" \
            --storage-root "$dir/storage" --data-dir "$data" \
            --coordinator "$SLUICE_COORDINATOR" 2>>"$data/node.log" &
    fi
    pids+=($!)
done

for _ in $(seq 1 100); do
    up=$("$coord_bin" status --json 2>/dev/null | sed -n 's/.*"nodes_up":\([0-9]*\).*/\1/p')
    [ "${up:-0}" -ge 3 ] && break
    sleep 0.1
done

echo "== importing"
"$coord_bin" import "$dir/storage"
"$coord_bin" wait --for 120s || true
sleep 1.5 # one more report, with every node's residency measured

echo
echo "== nodes"
"$coord_bin" nodes
echo
echo "== refusals by node and reason (sluice-coord events)"
"$coord_bin" events --limit 100000 --json |
    tr '{' '\n' | grep '"kind":"refused"' |
    sed -n 's/.*"node_id":"\([^"]*\)".*"reason":"\([^"]*\)".*"count":\([0-9]*\).*/\1 \2 \3/p' |
    awk '{n[$1 " " $2] += $3} END {for (k in n) {split(k, f, " ");
        printf "  %-8s refused %4d x %s\n", f[1], n[k], f[2]}; if (NR == 0) print "  none"}' | sort
echo
"$coord_bin" status | sed -n 's/^placed: */  /p'
echo
echo "== placement"
"$coord_bin" segments | awk 'NR > 1 {split($6, a, "("); n[a[1]]++; r[a[1]] += $3 * $4}
    END {for (k in n) printf "  %-8s %3d segments, %6.0f MiB estimated\n", k, n[k], r[k] / 1048576}' | sort
echo
if [ "$once" -eq 1 ]; then
    echo "(--once: the cluster stops now; run without --once to keep it serving and try it)"
    exit 0
fi
# A segment node-1 really holds, for the query suggestion.
seg=$("$coord_bin" segments | awk 'NR > 1 && $6 ~ /^node-1\(LOADED/ {print $1; exit}')
echo "Try: SLUICE_COORDINATOR=$SLUICE_COORDINATOR $coord_bin explain wide-01"
if [ -n "$seg" ]; then
    echo "     $node_bin query --node 127.0.0.1:$((nbase + 1)) --agg count --column value $seg"
fi
echo "== serving; metrics at http://127.0.0.1:$cport/metrics and http://127.0.0.1:$((nbase + 1))/metrics. Ctrl-C stops."
wait "${pids[0]}"
