#!/usr/bin/env bash
# Installs the Debian packages conch needs to build, run and test.
# As root it runs apt-get; otherwise it prints the one line to run.
set -euo pipefail

pkgs=(
	gcc make pkg-config git ca-certificates
	libmicrohttpd-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssl-dev
	check clang libclang-rt-14-dev
	postgresql-15 postgresql-contrib
	nodejs npm chromium wrk procps iproute2
)

missing=()
for p in "${pkgs[@]}"; do
	# Node may come from elsewhere than Debian; a working node and npm will do.
	if [[ $p == nodejs || $p == npm ]] && command -v "${p/nodejs/node}" >/dev/null; then
		continue
	fi
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $st == installed ]] || missing+=("$p")
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "conch needs these packages; run:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
