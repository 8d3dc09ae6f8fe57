#!/usr/bin/env bash
# Bounded fuzzing: each fuzz target of the root package, then of ./yjs, one at
# a time, for FUZZTIME (default 20s) beyond its seeds (the f.Add seeds and the
# corpus in testdata/fuzz/<Target>/ of its package, which plain `go test`
# already runs). A failing input is written to that testdata/fuzz/<Target>/ and
# the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
fuzztime="${FUZZTIME:-20s}"

for pkg in . ./yjs; do
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | cut -d' ' -f2 | sort)
	if [ -z "$targets" ]; then echo "no fuzz targets found in $pkg"; exit 1; fi
	for t in $targets; do
		echo "== fuzz $pkg $t for $fuzztime"
		# New interesting inputs are minimized for at most 5s, so that the
		# bounded time goes to fuzzing.
		go test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" -fuzzminimizetime=5s "$pkg"
	done
done

# The cluster module (a module of its own): what other nodes send a node.
# (Its FuzzName stalled once under a bounded run, minimizing; its seeds still
# run with the module's tests.)
echo "== fuzz ./cluster FuzzDecode for $fuzztime"
(cd cluster && go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime="$fuzztime" -fuzzminimizetime=5s .)
