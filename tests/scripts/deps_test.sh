#!/usr/bin/env bash
# shellcheck disable=SC2016 # single quotes hand $0 and $1 to bash -c, and quote backticks
# scripts/deps.sh: the run set holds no test tool, the test set holds the run
# set, `make run` installs the run set only, and the first PostgreSQL
# install is told to make no default cluster (apt-get and dpkg-query are
# stand-ins on PATH here, so nothing is installed).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok; else bad "$what"; fi
}

run_set=$(scripts/deps.sh --list run)
test_set=$(scripts/deps.sh --list test)
for tool in check clang libclang-rt-14-dev chromium wrk nodejs npm prometheus pgbouncer; do
	check "run set has no $tool" bash -c "! grep -qx '$tool' <<<\"\$0\"" "$run_set"
	check "test set has $tool" grep -qx "$tool" <<<"$test_set"
done
for need in gcc make pkg-config libmicrohttpd-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssl-dev postgresql-15; do
	check "run set has $need" grep -qx "$need" <<<"$run_set"
done
check "test set holds the run set" bash -c 'comm -23 <(sort <<<"$0") <(sort <<<"$1") | grep -q . && exit 1 || exit 0' "$run_set" "$test_set"
check "an unknown set is a usage error" bash -c 'scripts/deps.sh nope 2>/dev/null; [[ $? -eq 2 ]]'

# The Makefile: run installs the run set; test and bench the test set.
check "make run installs the run set" bash -c 'make -n run 2>/dev/null | grep -q "scripts/deps.sh run"'
check "make run does not install the test set" bash -c '! make -n run 2>/dev/null | grep -q "scripts/deps.sh test"'
check "make test installs the test set" bash -c 'make -n test 2>/dev/null | grep -q "scripts/deps.sh test"'

# As root with nothing installed: createcluster.conf is written before
# apt-get runs, and apt-get keeps it (--force-confold).
if [[ $(id -u) -eq 0 ]]; then
	tmp=$(mktemp -d)
	mkdir -p "$tmp/bin"
	cat >"$tmp/bin/dpkg-query" <<-'SCRIPT'
		#!/bin/sh
		echo not-installed
	SCRIPT
	cat >"$tmp/bin/apt-get" <<-SCRIPT
		#!/bin/sh
		[ "\$1" = update ] && exit 0
		{ echo "args: \$*"; cat "$tmp/createcluster.conf" 2>/dev/null || echo "no createcluster.conf"; } >>"$tmp/apt.log"
	SCRIPT
	chmod +x "$tmp/bin/"*
	PATH=$tmp/bin:$PATH DEPS_CREATECLUSTER_CONF=$tmp/createcluster.conf scripts/deps.sh run 2>/dev/null
	check "apt-get ran" test -f "$tmp/apt.log"
	check "createcluster.conf existed when apt-get ran" grep -q '^create_main_cluster = false' "$tmp/apt.log"
	check "apt-get keeps our createcluster.conf" grep -q -- '--force-confold' "$tmp/apt.log"
	check "only the run set was asked for" bash -c '! grep -Eq "chromium|clang|wrk" "$0"' "$tmp/apt.log"
	check "pg_conftool reads it as off" bash -c '! command -v pg_conftool >/dev/null || [[ $(pg_conftool "$0" show -bs create_main_cluster) == off ]]' "$tmp/createcluster.conf"

	# An existing file without the setting gets it appended, once.
	printf 'ssl = on\n' >"$tmp/createcluster.conf"
	rm -f "$tmp/apt.log"
	PATH=$tmp/bin:$PATH DEPS_CREATECLUSTER_CONF=$tmp/createcluster.conf scripts/deps.sh run 2>/dev/null
	PATH=$tmp/bin:$PATH DEPS_CREATECLUSTER_CONF=$tmp/createcluster.conf scripts/deps.sh run 2>/dev/null
	check "existing settings kept" grep -q '^ssl = on' "$tmp/createcluster.conf"
	check "the setting appended once" test "$(grep -c create_main_cluster "$tmp/createcluster.conf")" -eq 1
	rm -rf "$tmp"
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
