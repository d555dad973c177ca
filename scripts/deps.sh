#!/usr/bin/env bash
# Installs the Debian packages conch needs: scripts/deps.sh run|test
#
#   run    building and running: compiler, libraries, PostgreSQL 15's server
#          binaries (for the development database under var/), git
#   test   the run set, plus what the test suites use: Check, clang and its
#          fuzzer runtime, Node and npm, Chromium, wrk, promtool (in
#          Debian's prometheus package) for the alerting rules, and
#          pgbouncer (the suites that run behind a transaction pooler)
#   --list run|test   prints the set, one package a line, and installs nothing
#
# As root it runs apt-get; otherwise it prints the one line to run. Debian's
# postgresql package normally creates and starts a cluster on port 5432;
# conch runs its own clusters (scripts/devdb.sh, the tests), so before
# PostgreSQL is first installed this turns that off
# (create_main_cluster = false in /etc/postgresql-common/createcluster.conf).
set -euo pipefail

run_pkgs=(
	gcc make pkg-config git ca-certificates
	libmicrohttpd-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssl-dev
	postgresql-15
)
test_pkgs=(
	check clang libclang-rt-14-dev
	postgresql-contrib
	nodejs npm chromium wrk procps iproute2
	prometheus
	pgbouncer
)
# (The test of this script points it elsewhere.)
createcluster=${DEPS_CREATECLUSTER_CONF:-/etc/postgresql-common/createcluster.conf}

usage() {
	echo "usage: scripts/deps.sh [--list] run|test" >&2
	exit 2
}

list=0
if [[ ${1:-} == --list ]]; then
	list=1
	shift
fi
case ${1:-} in
run) pkgs=("${run_pkgs[@]}") ;;
test) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
*) usage ;;
esac
if [[ $list -eq 1 ]]; then
	printf '%s\n' "${pkgs[@]}"
	exit 0
fi

installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

missing=()
for p in "${pkgs[@]}"; do
	# Node may come from elsewhere than Debian; a working node and npm will do.
	if [[ $p == nodejs || $p == npm ]] && command -v "${p/nodejs/node}" >/dev/null; then
		continue
	fi
	installed "$p" || missing+=("$p")
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "conch needs these packages; run:" >&2
	if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
		echo "  sudo mkdir -p ${createcluster%/*} && echo 'create_main_cluster = false' | sudo tee -a $createcluster" >&2
	fi
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

# Before the first PostgreSQL install: no default cluster. A file written
# here stays ours (--force-confold keeps it when postgresql-common arrives).
if ! installed postgresql-15 && [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
	mkdir -p "${createcluster%/*}"
	if [[ ! -f $createcluster ]]; then
		cat >"$createcluster" <<-EOF
			# Written by conch's scripts/deps.sh: conch runs its own PostgreSQL
			# clusters, so installing PostgreSQL makes no default one on port 5432.
			create_main_cluster = false
			include_dir '/etc/postgresql-common/createcluster.d'
		EOF
	elif ! grep -Eq '^\s*create_main_cluster\s*=\s*(false|off)' "$createcluster"; then
		echo "create_main_cluster = false # added by conch's scripts/deps.sh" >>"$createcluster"
	fi
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${missing[@]}" >/dev/null
