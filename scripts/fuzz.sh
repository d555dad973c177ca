#!/usr/bin/env bash
# Runs libFuzzer targets: scripts/fuzz.sh SECONDS BIN...
#
# Each target fuzzes for SECONDS over a temporary copy of its committed seed
# corpus tests/fuzz/corpus/<name>/, so new inputs never land in the tree.
# A crash, leak or timeout leaves its input as tests/fuzz/crash-* (ignored by
# git; keep it as a seed once fixed) and fails the run.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

if [[ $# -lt 2 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: scripts/fuzz.sh SECONDS BIN..." >&2
	exit 2
fi
seconds=$1
shift

root=$PWD
logdir=$root/tests/output/fuzz
mkdir -p "$logdir"
work=$(mktemp -d "${TMPDIR:-/tmp}/conch-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
passed=0
for bin in "$@"; do
	name=$(basename "$bin")
	seeds=$root/tests/fuzz/corpus/$name
	log=$logdir/$name.log
	if [[ ! -x $bin ]]; then
		echo "fuzz $name: FAIL: $bin is not an executable (build it with make $bin)" >&2
		failed=$((failed + 1))
		continue
	fi
	if [[ ! -d $seeds ]] || [[ -z $(ls -A "$seeds") ]]; then
		echo "fuzz $name: FAIL: no seed corpus at tests/fuzz/corpus/$name/ (commit a few seeds)" >&2
		failed=$((failed + 1))
		continue
	fi
	corpus=$work/$name
	mkdir -p "$corpus"
	cp -R "$seeds"/. "$corpus"/
	nseeds=$(find "$corpus" -type f | wc -l)
	# -timeout: one input may not take more than 10 s; the whole run is
	# bounded by max_total_time plus the seed pass, hence the outer timeout.
	timeout --kill-after=10 $((seconds + 120)) "$bin" \
		-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$root/tests/fuzz/" "$corpus" >"$log" 2>&1
	rc=$?
	runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
	if [[ $rc -ne 0 ]]; then
		echo "fuzz $name: FAIL (exit $rc) after ${runs:-?} runs; last lines of $log:" >&2
		tail -n 40 "$log" | sed 's/^/    /' >&2
		grep -o "Test unit written to [^ ]*" "$log" | sed 's/^/    /' >&2
		failed=$((failed + 1))
	else
		echo "fuzz $name: ok, ${runs:-?} runs in ${seconds}s from $nseeds seeds"
		passed=$((passed + 1))
	fi
done

echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
