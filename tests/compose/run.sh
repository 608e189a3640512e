#!/usr/bin/env bash
# The deployment test: a real Sluice cluster in containers (deploy/
# docker-compose.yml: PostgreSQL, two coordinators, a broker, three nodes),
# checked from the host.
#
#   tests/compose/run.sh
#
#  1. installs docker.io and docker-compose from Debian if missing;
#  2. uses the running dockerd, or starts one in the background (log in a
#     temp file) and stops that one, by its PID, at the end. Flags tried in
#     order until one answers: none; --iptables=false; --iptables=false
#     --storage-driver=vfs. If none starts: prints "compose: SKIPPED:
#     <reason>" and exits 0 (the only skip);
#  3. builds the images (deploy/build-image.sh, deploy/build-postgres-image.sh)
#     and brings the cluster up under the compose project "sluicetest", ports
#     on 127.0.0.1 only (free ports picked at start, or SLUICE_COORD_PORT,
#     SLUICE_COORD2_PORT, SLUICE_BROKER_PORT, SLUICE_NODE{1,2,3}_PORT); on a
#     hybrid cgroup host with a v1 dockerd it adds tests/compose/hybrid-psi.yml
#     so that each node reads its own container's PSI, not the host's;
#  4. seeds 24 demo segments (12 narrow: 3,000,000 rows x 16 B, 12 wide:
#     12,000 rows x 4 KiB; ~46 MiB each, 1112 MiB in all: 4.3 x the smallest
#     node's 256m, so its round-robin share alone (~370 MiB) overflows its
#     217 MiB admit limit) with one `docker-compose run --rm seed sluice-node
#     mkseg` per file, because the image has no shell to loop in, then one
#     `docker-compose run --rm seed sluice-coord import /srv/segments`;
#  5. checks, with the host-built sluice-coord through 127.0.0.1: exactly one
#     coordinator leads (coordinator logs `leading`, coordinator2 `standby`;
#     coordinator2 answers 503 naming coordinator:7000 in X-Sluice-Leader,
#     and /readyz is 200 on coordinator, 503 on coordinator2);
#     every segment LOADED; a count through the broker is the rows of all 24
#     segments; each node reports its container's memory limit; node1
#     (256m) refused at least one segment with a MEM_* reason; no container
#     was OOM-killed; after `docker kill` of node1 every segment it held is
#     LOADED elsewhere (coordinator --node-timeout 5s), and the broker's count
#     is unchanged;
#  6. always ends with `docker-compose down -v`.
#
# DOCKERD overrides the daemon binary (default /usr/sbin/dockerd), DOCKER
# the client. SLUICE_COMPOSE_KEEP=DIR keeps the events, the nodes' last answers and every
# container's log there (the cluster itself is always removed).
#
# Prints the figures (image sizes, seeding time, time to all LOADED, recovery
# time after the kill, refusals by node and reason, each node's signal
# sources) and ends with "compose: N passed, N failed"; exits 1 on a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

project=sluicetest
# Free loopback ports unless given (other clusters may run on this machine).
read -r p0 p1 p2 p3 p4 p5 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
cport=${SLUICE_COORD_PORT:-$p0}
c2port=${SLUICE_COORD2_PORT:-$p4}
bport=${SLUICE_BROKER_PORT:-$p5}
nports=("${SLUICE_NODE1_PORT:-$p1}" "${SLUICE_NODE2_PORT:-$p2}" "${SLUICE_NODE3_PORT:-$p3}")
image=${SLUICE_IMAGE:-sluice:dev}
pgimage=${SLUICE_POSTGRES_IMAGE:-sluice-postgres:dev}
bdir=${SLUICE_IMAGE_BUILD_DIR:-/tmp/sluice-image-build}
# Debian's python3 (docker-compose's own); clusterq.py needs only its stdlib.
if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py=python3; fi
q="$py $repo/tests/compose/clusterq.py"

passed=0
failed=0
tmp=$(mktemp -d /tmp/sluice-compose.XXXXXX)
dockerd_pid=""
compose_up=0

ok() {
    passed=$((passed + 1))
    echo "   ok: $*"
}
bad() {
    failed=$((failed + 1))
    echo "   FAIL: $*"
}
now_ms() {
    date +%s%3N
}
secs() { # elapsed milliseconds -> "12.3 s"
    awk -v ms="$1" 'BEGIN {printf "%.1f s", ms / 1000}'
}

cleanup() {
    local rc=$?
    set +e
    trap '' INT TERM # a second Ctrl-C must not leave the cluster behind
    if [ -n "${SLUICE_COMPOSE_KEEP:-}" ]; then
        mkdir -p "$SLUICE_COMPOSE_KEEP"
        cp "$tmp"/*.json "$tmp"/*.log "$SLUICE_COMPOSE_KEEP"/ 2>/dev/null
        [ "$compose_up" -eq 1 ] && $COMPOSE logs --no-color >"$SLUICE_COMPOSE_KEEP/containers.log" 2>&1
        echo "== kept events, logs and container logs in $SLUICE_COMPOSE_KEEP"
    fi
    if [ "$compose_up" -eq 1 ]; then
        echo "== docker-compose down -v"
        $COMPOSE --profile seed down -v --remove-orphans >"$tmp/down.log" 2>&1 ||
            { echo "   down failed:"; tail -5 "$tmp/down.log"; }
    fi
    if [ -n "$dockerd_pid" ]; then
        echo "== stopping the dockerd this script started (pid $dockerd_pid)"
        kill "$dockerd_pid" 2>/dev/null
        for _ in $(seq 1 60); do
            kill -0 "$dockerd_pid" 2>/dev/null || break
            sleep 0.5
        done
        wait "$dockerd_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

skip() {
    echo "compose: SKIPPED: $*"
    exit 0
}

echo "== dependencies"
bash tests/deps.sh docker.io docker-compose
# Debian's client matches Debian's daemon; a newer one earlier on PATH
# (/usr/local/bin/docker) would also do, but keep to one pair.
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER

echo "== dockerd"
if "$DOCKER" info >/dev/null 2>&1; then
    echo "   using the dockerd already running"
else
    dlog=$tmp/dockerd.log
    started=""
    for flags in "" "--iptables=false" "--iptables=false --storage-driver=vfs"; do
        echo "   starting dockerd ${flags:-(no extra flags)}, log $dlog"
        # shellcheck disable=SC2086
        "${DOCKERD:-/usr/sbin/dockerd}" $flags >>"$dlog" 2>&1 &
        dockerd_pid=$!
        for _ in $(seq 1 60); do
            kill -0 "$dockerd_pid" 2>/dev/null || break
            if "$DOCKER" info >/dev/null 2>&1; then
                started=${flags:-(no extra flags)}
                break
            fi
            sleep 0.5
        done
        [ -n "$started" ] && break
        kill "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
        dockerd_pid=""
    done
    if [ -z "$started" ]; then
        echo "   dockerd log (last lines):"
        tail -15 "$dlog" | sed 's/^/   | /'
        why=$(grep -m1 -E 'level=(fatal|error)|failed to start' "$dlog" || tail -1 "$dlog")
        skip "dockerd does not start on this machine (tried no flags, --iptables=false, --iptables=false --storage-driver=vfs): ${why:-it exited or did not answer within 30 s, and logged nothing}"
    fi
    echo "   dockerd started with $started, pid $dockerd_pid, storage driver $("$DOCKER" info -f '{{.Driver}}'), cgroup $("$DOCKER" info -f '{{.CgroupDriver}} v{{.CgroupVersion}}')"
fi

echo "== image"
SLUICE_IMAGE=$image SLUICE_IMAGE_BUILD_DIR=$bdir deploy/build-image.sh | grep -v '^   /'
image_size=$("$DOCKER" image inspect -f '{{.Size}}' "$image")
SLUICE_POSTGRES_IMAGE=$pgimage deploy/build-postgres-image.sh
pgimage_size=$("$DOCKER" image inspect -f '{{.Size}}' "$pgimage")
coord=$bdir/coordinator/sluice-coord
nodebin=$bdir/node/sluice-node

SLUICE_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SLUICE_TOKEN
SLUICE_PG_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SLUICE_PG_PASSWORD
export SLUICE_COORDINATOR=127.0.0.1:$cport
cat >"$tmp/env" <<EOF
SLUICE_IMAGE=$image
SLUICE_POSTGRES_IMAGE=$pgimage
SLUICE_COORD_PORT=$cport
SLUICE_COORD2_PORT=$c2port
SLUICE_BROKER_PORT=$bport
SLUICE_NODE1_PORT=${nports[0]}
SLUICE_NODE2_PORT=${nports[1]}
SLUICE_NODE3_PORT=${nports[2]}
EOF
# The token and the password go through the environment (exported above), the rest
# through --env-file; either works for both.
COMPOSE="docker-compose -p $project -f $repo/deploy/docker-compose.yml"
# Hybrid cgroup host (v1 memory controller + a cgroup2 tree for PSI) and a
# v1 dockerd: give the nodes their own container's PSI (see hybrid-psi.yml).
hybrid=0
if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
    [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] &&
    [ "$("$DOCKER" info -f '{{.CgroupVersion}}')" = 1 ]; then
    hybrid=1
    COMPOSE="$COMPOSE -f $repo/tests/compose/hybrid-psi.yml"
    echo "== hybrid cgroup host: nodes get /sys/fs/cgroup/unified (read-only) for their own PSI"
fi
COMPOSE="$COMPOSE --env-file $tmp/env"

echo "== docker-compose up -d (project $project)"
compose_up=1
$COMPOSE --profile seed down -v --remove-orphans >/dev/null 2>&1 || true
$COMPOSE up -d 2>&1 | sed 's/^/   /'
up_ms=$(now_ms)
nodes_up=0
for _ in $(seq 1 120); do
    nodes_up=$("$coord" status --json 2>/dev/null | sed -n 's/.*"nodes_up":\([0-9]*\).*/\1/p')
    [ "${nodes_up:-0}" -ge 3 ] && break
    sleep 0.5
done
if [ "${nodes_up:-0}" -ge 3 ]; then
    ok "3 nodes UP at the coordinator $(secs $(($(now_ms) - up_ms))) after up -d"
else
    bad "only ${nodes_up:-0} nodes UP after 60 s"
    $COMPOSE logs --tail 20 | sed 's/^/   | /'
fi

echo "== two coordinators on one PostgreSQL catalog"
# coordinator2 starts once coordinator is healthy, that is leading; give it
# a moment to try the lock.
lead_log=""
for _ in $(seq 1 50); do
    lead_log=$($COMPOSE logs --no-color coordinator coordinator2 2>/dev/null | grep -E 'event=(leading|standby)' || true)
    grep -q 'coordinator2.*event=standby' <<<"$lead_log" && break
    sleep 0.2
done
sed 's/^/   | /' <<<"$lead_log"
if grep -q '^coordinator_1 .*event=leading epoch=' <<<"$lead_log" &&
    grep -q '^coordinator2_1 .*event=standby' <<<"$lead_log" &&
    ! grep -q '^coordinator2_1 .*event=leading' <<<"$lead_log"; then
    ok "coordinator leads, coordinator2 waits as a standby (one advisory lock)"
else
    bad "not exactly one leader among coordinator and coordinator2"
fi
http_get() { # ADDR PATH -> "STATUS LEADER" (X-Sluice-Leader, - if none)
    curl -s -o /dev/null -D - -H "Authorization: Bearer $SLUICE_TOKEN" "http://$1$2" |
        awk 'NR == 1 {s = $2} tolower($1) == "x-sluice-leader:" {l = $2} END {sub(/\r$/, "", l); print s, (l == "" ? "-" : l)}'
}
ready1=$(http_get "127.0.0.1:$cport" /readyz)
ready2=$(http_get "127.0.0.1:$c2port" /readyz)
standby=$(http_get "127.0.0.1:$c2port" /v1/status)
echo "   /readyz: coordinator ${ready1%% *}, coordinator2 ${ready2%% *}; GET /v1/status on coordinator2: $standby"
if [ "${ready1%% *}" = 200 ] && [ "${ready2%% *}" = 503 ] && [ "$standby" = "503 coordinator:7000" ]; then
    ok "coordinator2 answers 503 naming the leader coordinator:7000; /readyz 200 on the leader only"
else
    bad "the standby should answer 503 with X-Sluice-Leader: coordinator:7000, and /readyz 200 on the leader only"
fi

echo "== seeding 24 demo segments into the segments volume (one container each)"
seed_one() {
    $COMPOSE run --rm -T seed sluice-node mkseg "$@" >/dev/null 2>>"$tmp/seed.log" ||
        echo "   mkseg $* failed (see below)"
}
seed_start=$(now_ms)
for i in $(seq -w 1 12); do
    # Two at a time: docker-compose's own start-up is most of the cost.
    # (wait for these two only: dockerd may be a background job of this shell)
    seed_one --rows 3000000 --row-bytes 16 --seed "1$i" --out "/srv/segments/narrow-$i.seg" &
    j1=$!
    seed_one --rows 12000 --row-bytes 4096 --seed "2$i" --out "/srv/segments/wide-$i.seg" &
    j2=$!
    wait "$j1" "$j2"
done
seed_ms=$(($(now_ms) - seed_start))
echo "   12 narrow (3,000,000 rows x 16 B) + 12 wide (12,000 rows x 4 KiB) = 1112 MiB in $(secs $seed_ms)"

echo "== import and wait"
import_start=$(now_ms)
imported=$($COMPOSE run --rm -T seed sluice-coord import /srv/segments 2>>"$tmp/seed.log" || true)
echo "   $imported"
if [ "$imported" = "imported /srv/segments into table segments: 24 registered, 0 already registered, 0 skipped, 0 refused" ]; then
    ok "24 segments written by mkseg containers and imported"
else
    bad "import did not register the 24 segments"
    sed 's/^/   | /' "$tmp/seed.log"
fi
loaded_ms=""
last=""
for _ in $(seq 1 900); do
    if line=$("$coord" status --json 2>/dev/null | $q status-done); then
        loaded_ms=$(($(now_ms) - import_start))
        break
    fi
    if [ "$line" != "$last" ]; then
        echo "   loaded/total pending up: $line"
        last=$line
    fi
    sleep 0.2
done
"$coord" wait --for 1s 2>&1 | tail -1 | sed 's/^/   /' || true
if [ -n "$loaded_ms" ]; then
    ok "every segment LOADED $(secs "$loaded_ms") after the import started ($line)"
else
    bad "not every segment LOADED within 180 s ($line)"
fi

# 12 x 3,000,000 + 12 x 12,000 rows: a segment missing from the fan-out, or
# counted twice, changes it. The broker follows the placement map every
# 250 ms, so it may refuse (exit 1, not LOADED yet) for a moment.
want_count=36144000
broker_count() { # $1: what the query is after
    local out=""
    for _ in $(seq 1 25); do
        out=$("$coord" query --broker "127.0.0.1:$bport" --table segments --agg count 2>&1) && break
        sleep 0.2
    done
    sed 's/^/   /' <<<"$out"
    if grep -qx "count = $want_count" <<<"$out" && grep -q '^table segments: 24 segments' <<<"$out"; then
        ok "the broker counts $want_count rows over the 24 segments ($1)"
    else
        bad "the broker's count is not $want_count over 24 segments ($1)"
    fi
}
echo "== a query through the broker"
broker_count "all LOADED"
sleep 1.5 # one more report per node
"$coord" nodes | sed 's/^/   /'

echo "== each node's view of its memory (limit reported to the coordinator)"
"$coord" nodes --json >"$tmp/nodes-loaded.json"
$q limits <"$tmp/nodes-loaded.json" >"$tmp/limits"
want=(node1:268435456 node2:536870912 node3:1073741824)
for w in "${want[@]}"; do
    n=${w%%:*}
    lim=$(awk -v n="$n" '$1 == n {print $3}' "$tmp/limits")
    if [ "$lim" = "${w#*:}" ]; then
        ok "$n reports limit $lim B = its container's mem_limit"
    else
        bad "$n reports limit ${lim:-?} B, its mem_limit is ${w#*:} B"
    fi
done
echo "   signal sources (GET /v1/status, signal_sources):"
for k in 0 1 2; do
    src=$($q sources "127.0.0.1:${nports[$k]}" "$SLUICE_TOKEN" 2>&1 || true)
    echo "   node$((k + 1)): $src"
    printf '%s\n' "$src" >"$tmp/sources$((k + 1))"
done
if "$nodebin" status --node "127.0.0.1:${nports[0]}" 2>&1 | grep -q 'cgroup='; then
    ok "sluice-node status shows the signal sources"
else
    echo "   note: \`sluice-node status --node 127.0.0.1:${nports[0]}\` does not print signal_sources"
    echo "         (it is in the /v1/status answer; shown above by decoding it directly)"
fi
if [ "$hybrid" -eq 1 ]; then
    if grep -q 'cgroup=hybrid' "$tmp/sources1" && ! grep -q 'host-wide' "$tmp/sources1"; then
        ok "node1 reads its own memory cgroup and its own container's PSI (cgroup=hybrid)"
    else
        bad "node1 should read cgroup=hybrid with its container's PSI: $(cat "$tmp/sources1")"
    fi
elif grep -q 'cgroup=v1' "$tmp/sources1"; then
    ok "node1 reads its own memory cgroup ($(grep -o 'cgroup=[a-z0-9]*' "$tmp/sources1"))"
elif grep -q 'cgroup=v2' "$tmp/sources1"; then
    ok "node1 reads its own memory cgroup (cgroup=v2)"
else
    bad "node1's signal sources name no memory cgroup: $(cat "$tmp/sources1")"
fi

echo "== refusals by node and reason (sluice-coord events --json)"
"$coord" events --limit 100000 --json >"$tmp/events.json"
$q refusals <"$tmp/events.json" | awk '{printf "   %-6s refused %4d x %s\n", $1, $3, $2} END {if (NR == 0) print "   none"}'
if mem=$($q mem-refusals node1 <"$tmp/events.json"); then
    ok "node1 (256m) refused $mem times with a MEM_* reason"
else
    bad "node1 (256m) never refused with a MEM_* reason"
fi

check_oom() {
    local id name oom any=0
    for id in $($COMPOSE ps -q); do
        read -r name oom < <("$DOCKER" inspect -f '{{.Name}} {{.State.OOMKilled}}' "$id")
        if [ "$oom" != "false" ]; then
            bad "container $name was OOM-killed ($1)"
            any=1
        fi
    done
    [ "$any" -eq 0 ] && ok "no container OOM-killed ($1)"
    return 0
}
check_oom "after the load"

victim_node=node1
echo "== docker kill $victim_node, wait for its segments to be LOADED elsewhere"
# node1 (256m): node2 and node3 have 435 + 870 MiB of admit budget for the
# 1112 MiB in all. Killing node3 (1g) would strand segments for want of room:
# not a failure of Sluice, but not what this measures.
"$coord" segments --limit 100000 --json | $q held "$victim_node" >"$tmp/held"
nheld=$(wc -l <"$tmp/held")
echo "   $victim_node holds $nheld LOADED segments"
victim=$($COMPOSE ps -q "$victim_node")
kill_start=$(now_ms)
"$DOCKER" kill "$victim" >/dev/null
recovered_ms=""
down_ms=""
moved=""
for _ in $(seq 1 600); do
    if [ -z "$down_ms" ] &&
        "$coord" nodes --json | $q limits | awk -v n="$victim_node" '$1 == n && $2 == "DOWN" {f = 1} END {exit !f}'; then
        down_ms=$(($(now_ms) - kill_start))
        echo "   $victim_node DOWN at the coordinator after $(secs "$down_ms")"
    fi
    # shellcheck disable=SC2046
    if moved=$("$coord" segments --limit 100000 --json | $q moved "$victim_node" $(cat "$tmp/held")); then
        recovered_ms=$(($(now_ms) - kill_start))
        break
    fi
    sleep 0.2
done
if [ "$nheld" -eq 0 ]; then
    bad "$victim_node held no segment, nothing to recover"
elif [ -n "$recovered_ms" ]; then
    ok "all $nheld of $victim_node's segments LOADED elsewhere $(secs "$recovered_ms") after docker kill"
else
    bad "$victim_node's segments not all LOADED elsewhere within 120 s ($moved)"
fi
echo "   $victim_node container after the kill: $("$DOCKER" inspect -f 'status={{.State.Status}} restarts={{.RestartCount}} exit={{.State.ExitCode}}' "$victim")"
if "$coord" status --json | $q status-done >/dev/null; then
    ok "every segment LOADED on the two remaining nodes"
else
    bad "not every segment LOADED after the kill: $("$coord" status --json | $q status-done)"
fi
"$coord" nodes | sed 's/^/   /'
broker_count "after node1's segments moved"
"$coord" nodes --json >"$tmp/nodes-after-kill.json"
"$coord" events --limit 100000 --json >"$tmp/events-after-kill.json"
check_oom "after the kill"

echo
echo "== figures"
fig() {
    printf '   %-28s %s\n' "$1" "$2"
}
by_reason() {
    awk '{n[$2] += $3} END {for (r in n) printf "%s=%d\n", r, n[r]}' | sort | tr '\n' ' '
}
fig "image size:" "$image_size bytes ($((image_size / 1024)) KiB)"
fig "postgres image size:" "$pgimage_size bytes ($((pgimage_size / 1024)) KiB)"
fig "seeding (24 containers):" "$(secs "$seed_ms")"
fig "import -> all LOADED:" "$([ -n "$loaded_ms" ] && secs "$loaded_ms" || echo "not reached")"
fig "kill -> $victim_node DOWN:" "$([ -n "$down_ms" ] && secs "$down_ms" || echo "not seen")"
fig "kill -> all LOADED again:" "$([ -n "$recovered_ms" ] && secs "$recovered_ms" || echo "not reached")"
fig "refusals until all LOADED:" "$($q refusals <"$tmp/events.json" | by_reason)"
fig "refusals after the kill:" "$($q refusals "$kill_start" <"$tmp/events-after-kill.json" | by_reason)"
echo
echo "compose: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
