#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/meson.build) with clang in
# build-fuzz/ and runs each one for SLUICE_FUZZ_SECONDS seconds (default 20)
# over a copy of its committed seed corpus, so that a run never changes the
# repository. Prints one line per target (executions, final corpus) and exits
# non-zero if any target crashed, leaked, timed out or ran out of memory; the
# input that did it is kept and its path printed.
#
#   tests/fuzz/run.sh                          every target, 20 s each
#   SLUICE_FUZZ_SECONDS=600 tests/fuzz/run.sh  the --long variant
#   tests/fuzz/run.sh fuzz_uri fuzz_config     only these targets
#
# Environment: SLUICE_FUZZ_SECONDS, SLUICE_FUZZ_JOBS (targets fuzzed at
# once, default the number of CPUs: each target is one process),
# SLUICE_FUZZ_BUILD (build directory, default build-fuzz). Crash inputs:
# <build>/fuzz-artifacts/<target>/; working corpora and logs:
# <build>/fuzz-work/<target>{,.log}. Replay a crash
# with: <build>/tests/fuzz/<target> <crash-file>
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${SLUICE_FUZZ_SECONDS:-20}
jobs=${SLUICE_FUZZ_JOBS:-$(nproc)}
build=${SLUICE_FUZZ_BUILD:-build-fuzz}

# target:max_len. Wire messages are capped at 4 MiB, but 64 KiB reaches every
# field; a segment header is at most 6208 bytes; an argv is short.
all_targets=(
    fuzz_wire_assign:65536
    fuzz_wire_query:65536
    fuzz_wire_node_status:65536
    fuzz_wire_node_report:65536
    fuzz_wire_segment_batch:65536
    fuzz_wire_claim:65536
    fuzz_wire_responses:65536
    fuzz_segment_header:8192
    fuzz_config:4096
    fuzz_uri:8192
    fuzz_framer:16384
)

case "$seconds" in
'' | *[!0-9]*)
    echo "fuzz: SLUICE_FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac
case "$jobs" in
'' | *[!0-9]* | 0)
    echo "fuzz: SLUICE_FUZZ_JOBS must be a whole number of processes from 1, not '$jobs'" >&2
    exit 2
    ;;
esac

targets=()
if [ "$#" -eq 0 ]; then
    targets=("${all_targets[@]}")
else
    for want in "$@"; do
        found=
        for t in "${all_targets[@]}"; do
            [ "${t%%:*}" = "$want" ] && found=$t
        done
        if [ -z "$found" ]; then
            echo "fuzz: unknown target $want" >&2
            exit 2
        fi
        targets+=("$found")
    done
fi

bash tests/deps.sh

# Configure only when needed: a new directory, or one without -Dfuzz=true.
fuzz_option() {
    meson introspect --buildoptions "$build" 2>/dev/null |
        python3 -c 'import json, sys
print(next((str(o["value"]).lower() for o in json.load(sys.stdin) if o["name"] == "fuzz"), ""))'
}
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=true -Db_lundef=false \
        -Dbuildtype=debugoptimized >/dev/null
elif [ "$(fuzz_option)" != "true" ]; then
    meson configure "$build" -Dfuzz=true -Dtests=true -Db_lundef=false >/dev/null
fi
echo "== $build: build fuzz targets"
if ! ninja -C "$build" fuzz; then
    echo "fuzz: the build failed; $build must be configured with CC=clang" \
        "(remove it to start again)" >&2
    exit 1
fi
for t in "${targets[@]}"; do
    if [ ! -x "$build/tests/fuzz/${t%%:*}" ]; then
        echo "fuzz: $build/tests/fuzz/${t%%:*} was not built; $build must be configured" \
            "with CC=clang (remove it and run again)" >&2
        exit 1
    fi
done

# Sanitizer settings unless the caller chose their own. libFuzzer itself
# turns on leak detection under ASan.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

work=$build/fuzz-work
artifacts=$build/fuzz-artifacts

# Fuzzes one target (name:max_len) and writes its summary line to
# $work/<name>.line; exits non-zero if the target failed. Runs in the
# background, $jobs at a time.
fuzz_one() {
    local name=${1%%:*} max_len=${1#*:}
    local corpus=$work/$name log=$work/$name.log
    local rc=0 execs corp files line crash why
    rm -rf "$corpus"
    mkdir -p "$corpus" "$artifacts/$name"
    cp tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
    # The outer timeout only catches a fuzzer that stops answering;
    # -timeout catches a slow input and keeps it as an artifact.
    timeout -k 10 $((seconds + 300)) "$build/tests/fuzz/$name" \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$name/" \
        "$corpus" >"$log" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then
        execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    fi
    corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9]*[kMG]*b\).*/\1/p' "$log" | tail -n 1)
    files=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        line=$(printf '%-26s ok     execs %10s  corpus %4s files (%s)' "$name" "${execs:-?}" \
            "$files" "${corp:-?}")
    else
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        why=$(grep -m 1 -E '^SUMMARY: |ERROR: libFuzzer: |fuzz check failed' "$log" || true)
        {
            echo "---- $name failed (exit $rc); the end of $log:"
            tail -n 40 "$log"
        } >"$work/$name.failure"
        line=$(printf '%-26s FAILED execs %10s  exit %d  input %s  (%s)' "$name" "${execs:-?}" \
            "$rc" "${crash:-none written}" "${why:-see $log}")
    fi
    echo "$line" >"$work/$name.line"
    echo "$line"
    [ "$rc" -eq 0 ]
}

mkdir -p "$work"
echo "== ${#targets[@]} targets, ${seconds}s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
    rm -f "$work/${t%%:*}.line" "$work/${t%%:*}.failure"
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
wait || true

# The summary in the targets' order, from the lines each run left; a target
# that left none failed without getting that far.
failed=0
summary=()
for t in "${targets[@]}"; do
    name=${t%%:*}
    if [ -f "$work/$name.line" ]; then
        line=$(cat "$work/$name.line")
    else
        line=$(printf '%-26s FAILED (no result; see %s)' "$name" "$work/$name.log")
    fi
    if [ -f "$work/$name.failure" ] || [ ! -f "$work/$name.line" ]; then
        failed=$((failed + 1))
        cat "$work/$name.failure" 2>/dev/null || true
    fi
    summary+=("$line")
done

echo
echo "== fuzz summary (${seconds}s per target; logs in $work)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
    echo "fuzz: $failed of ${#targets[@]} targets failed"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ok"
