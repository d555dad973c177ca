#!/usr/bin/env bash
# shellcheck disable=SC2016 # single quotes hand $0 and $1 to bash -c, and quote backticks
# The README and docs/ stand alone and follow the code:
#  - no file of the repository points at documents outside it;
#  - every configuration key of src/conf.c's table is a row of the README's
#    configuration table and appears in conf/conch.conf.example;
#  - every route of src/routes.c is in the README (as `METHOD /path`);
#  - every verb of the /dibs and /lunch help texts is a row of the README's
#    table for that command;
#  - the Stripe events docs/stripe.md tells operators to subscribe are
#    exactly the handlers[] table of src/billing/apply.c.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
pass=0
fail=0
bad() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}

# Written in pieces so that this file does not match itself.
outside='\.\./shar''ed|/work/shar''ed|CONTR''ACT section|CONTR''ACT\.md|PROTO''COLS\.md'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git ls-files --cached --others --exclude-standard)
else
	mapfile -t files < <(find . -type f -not -path './node_modules/*' -not -path './.git/*' | sed 's|^\./||')
fi
checked=0
for f in "${files[@]}"; do
	# Applied migrations are never edited.
	[[ $f == migrations/00[1-8]_*.sql || ! -f $f ]] && continue
	checked=$((checked + 1))
	if hits=$(grep -nE "$outside" "$f"); then
		bad "$f points outside the repository: $hits"
	else
		pass=$((pass + 1))
	fi
done
[[ $checked -gt 50 ]] || bad "only $checked files checked"
for must in README.md docs src; do
	[[ -e $must ]] || bad "$must is missing"
done

# The keys: KEY(name, ...) rows of the table in src/conf.c.
mapfile -t keys < <(sed -n 's/^[[:space:]]*KEY(\([a-z_0-9]*\),.*/\1/p' src/conf.c)
[[ ${#keys[@]} -gt 15 ]] || bad "found only ${#keys[@]} keys in src/conf.c"
# The README's configuration table: the rows under "## Configuration".
table=$(awk '/^## /{on = ($0 ~ /^## Configuration/)} on && /^\|/' README.md)
for k in "${keys[@]}"; do
	if grep -Eq "^\| *([^|]*, *)?\`$k\`" <<<"$table"; then
		pass=$((pass + 1))
	else
		bad "$k is not a row of the README's configuration table"
	fi
	if grep -Eq "^#? *$k( |$)" conf/conch.conf.example; then
		pass=$((pass + 1))
	else
		bad "$k is not in conf/conch.conf.example"
	fi
done
# And no row documents a key that does not exist.
while read -r k; do
	if printf '%s\n' "${keys[@]}" | grep -qx "$k"; then
		pass=$((pass + 1))
	else
		bad "the README's configuration table has $k, which src/conf.c does not know"
	fi
done < <(sed -n 's/^| *`\([a-z_0-9]*\)`.*/\1/p' <<<"$table")

# The routes: {"METHOD", "/path", ...} rows of src/routes.c (those ending
# in / are prefixes of the API and operator pages, documented on their own).
while read -r method route; do
	[[ $route == */ && $route != / ]] && continue
	if grep -Fq "\`$method $route" README.md; then
		pass=$((pass + 1))
	else
		bad "route $method $route is not in the README"
	fi
done < <(sed -n 's/^[[:space:]]*{"\([A-Z]*\)", "\([^"]*\)".*/\1 \2/p' src/routes.c)

# The verbs: lines of the help texts that start with `/dibs VERB or `/lunch VERB.
for cmd in dibs lunch; do
	section=$(awk -v h="### /$cmd" '/^##/{on = ($0 == h)} on && /^\|/' README.md)
	mapfile -t verbs < <(grep -ohE "^[[:space:]]*\"\`/$cmd [a-z]+" "src/$cmd"/*.c | sed 's/.* //' | sort -u)
	[[ ${#verbs[@]} -gt 3 ]] || bad "found only ${#verbs[@]} /$cmd verbs in the help text of src/$cmd/"
	for v in "${verbs[@]}"; do
		if grep -Eq "^\| *\`$v( |\`)" <<<"$section"; then
			pass=$((pass + 1))
		else
			bad "/$cmd $v is not a row of the README's /$cmd table"
		fi
	done
done

# The Stripe events: {"type", fn} rows of handlers[] in src/billing/apply.c
# against the rows of docs/stripe.md's event table (section 2).
mapfile -t handled < <(awk '/handlers\[\] = \{/{on = 1; next} on && /^\};/{on = 0} on' src/billing/apply.c |
	sed -n 's/^[[:space:]]*{"\([a-z_.]*\)",.*/\1/p' | sort -u)
[[ ${#handled[@]} -gt 3 ]] || bad "found only ${#handled[@]} Stripe events in src/billing/apply.c"
mapfile -t documented < <(awk '/^## /{on = ($0 ~ /^## 2\. The webhook endpoint/)} on' docs/stripe.md |
	sed -n 's/^| `\([a-z_.]*\)` |.*/\1/p' | sort -u)
if [[ "${handled[*]}" == "${documented[*]}" ]]; then
	pass=$((pass + 1))
else
	bad "docs/stripe.md subscribes to (${documented[*]}), src/billing/apply.c handles (${handled[*]})"
fi
# The stripe listen line of the test-mode section names the same events.
listen=$(grep -o -- '--events [a-z_.,]*' docs/stripe.md | sed 's/--events //' | tr ',' '\n' | sort -u | xargs)
if [[ "$listen" == "${handled[*]}" ]]; then
	pass=$((pass + 1))
else
	bad "docs/stripe.md's stripe listen --events ($listen) differs from src/billing/apply.c (${handled[*]})"
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
