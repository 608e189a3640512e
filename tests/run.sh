#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing from Debian,
# builds with warnings as errors, runs every suite, then does it all again
# under ASan+UBSan, and runs the benchmarks in their short smoke form.
#
#   tests/run.sh            normal run (well under 15 minutes)
#   tests/run.sh --long     also the long soak, fuzz and simulation variants
#   tests/run.sh --quick    one build (no sanitizers), no benchmarks
#
# Build directories: build/ and build-asan/ at the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

long=0
quick=0
for arg in "$@"; do
    case "$arg" in
    --long) long=1 ;;
    --quick) quick=1 ;;
    -h | --help)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "tests/run.sh: unknown option $arg (try --help)" >&2
        exit 2
        ;;
    esac
done

# Wall-clock time per phase, printed as each phase ends and again as a
# table at the end, so that the next person sees where the time goes.
phase_name=
phase_t0=$SECONDS
phase_times=()
# Ends the running phase, if any (prints and keeps its time), and starts the
# one named, if named.
phase() {
    if [ -n "$phase_name" ]; then
        local took=$((SECONDS - phase_t0))
        echo "== $phase_name: ${took} s"
        phase_times+=("$(printf '%5d s  %s' "$took" "$phase_name")")
    fi
    phase_name=${1:-}
    phase_t0=$SECONDS
    if [ -n "$phase_name" ]; then
        echo "== $phase_name"
    fi
}

phase "dependencies (tests/deps.sh)"
bash tests/deps.sh

export SLUICE_LONG=$long
passed=0
failed=0
failed_names=()

# Configures (or reconfigures) a build directory with the given options.
configure() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

# Adds one meson test run's results to the totals (from testlog.json).
count_results() {
    local log=$1/meson-logs/testlog.json
    [ -f "$log" ] || return 0
    local p f
    p=$(grep -c '"result": "OK"' "$log" || true)
    f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        failed_names+=("$(grep -E '"result": "(FAIL|TIMEOUT|ERROR)"' "$log" |
            sed -E 's/.*"name": "([^"]*)".*/\1/' | tr '\n' ' ')")
    fi
}

run_suites() {
    local dir=$1
    shift
    phase "$dir: build"
    ninja -C "$dir"
    phase "$dir: tests"
    meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || true
    count_results "$dir"
}

phase "build: configure"
configure build -Dwerror=true -Dbuildtype=debugoptimized
run_suites build

if [ "$long" -eq 1 ]; then
    # The deterministic simulation's large seed sets (tests/sim, DESIGN.md
    # section 7): 200 seeds at the CI size, three at 1,000 nodes and 10^6
    # segments. A failure prints the command that reproduces it.
    phase "sim (long)"
    if build/tests/sim/sluice-sim --seeds 1-200 &&
        build/tests/sim/sluice-sim --seeds 1-3 --nodes 1000 --segments 1000000; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("sim-long")
    fi
fi

if [ "$quick" -eq 0 ]; then
    # ASan+UBSan: every suite again, with the daemons the harness starts
    # built the same way. Leaks fail the run; UBSan findings abort.
    # A small quarantine: daemons run in memory cgroups as small as 64 MiB,
    # which ASan's default 256 MiB of held-back frees would overrun.
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:quarantine_size_mb=16
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    phase "build-asan: configure"
    configure build-asan -Dwerror=true -Dbuildtype=debug -Db_sanitize=address,undefined \
        -Db_lundef=false
    run_suites build-asan --no-suite slow
    unset ASAN_OPTIONS UBSAN_OPTIONS

    # Fuzzing: every libFuzzer target over its committed corpus (clang,
    # build-fuzz/), one target per core at a time. Briefly in a normal run
    # (5 s each: the corpus replayed and a short search), ten minutes each
    # with --long.
    phase "fuzz"
    if SLUICE_FUZZ_SECONDS=$([ "$long" -eq 1 ] && echo 600 || echo 5) bash tests/fuzz/run.sh; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("fuzz")
    fi

    # Deployment: the Kubernetes manifests are validated offline, and the
    # compose cluster is built FROM scratch, started and tested for real
    # (it installs docker.io and starts dockerd if needed; it skips, loudly,
    # only where dockerd cannot start).
    for suite in tests/compose/validate-k8s.sh tests/compose/run.sh; do
        phase "$suite"
        if bash "$suite"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            failed_names+=("$suite")
        fi
    done

    # Benchmarks in smoke form, so that they cannot rot; figures are printed,
    # never asserted. The full runs: meson test -C build --benchmark.
    phase "benchmarks (smoke)"
    if SLUICE_BENCH_SMOKE=1 meson test -C build --benchmark --print-errorlogs --verbose; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("benchmarks")
    fi
fi

phase
echo
echo "== wall-clock time per phase"
printf '%s\n' "${phase_times[@]}"
printf '%5d s  total\n' "$SECONDS"
echo
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
