#!/usr/bin/env bash
# "Add it to your app", literally: runs the README's steps in a fresh
# directory beside this checkout (reached through a symlink named party),
# writes the README's guide server as main.go where the steps say so, runs
# the app as the last step says (in the background), then has two
# partysocket clients chat through it. Needs interop/node_modules (npm ci in
# interop), Go and the module proxy.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"

# The fenced block after a heading of README.md.
block() { awk -v h="$1" -v fence="$2" '$0 == h {f=1; next} f && $0 == fence {b=1; next} b && /^```/ {exit} b {print}' "$repo/README.md"; }
steps=$(block "## Add it to your app" '```sh')
guide=$(block "## The guide's server, in Go" '```go')
[ -n "$steps" ] && [ -n "$guide" ] || { echo "newapp: README sections not found"; exit 1; }
if (exec 3<>/dev/tcp/127.0.0.1/1999) 2>/dev/null; then echo "newapp: something already listens on port 1999"; exit 1; fi

work=$(mktemp -d)
app=""
# The app runs in a process group of its own (set -m), so that stopping it
# stops what go run started too.
cleanup() { if [ -n "$app" ]; then kill -- "-$app" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
ln -s "$repo" "$work/party"
cd "$work"
set -m
while IFS= read -r line; do
  case "$line" in
    "#"*main.go*) echo "+ (write the README's guide server to main.go)"; printf '%s\n' "$guide" > main.go ;;
    "go run ."*) echo "+ $line &"; eval "$line" & app=$! ;;
    "" | "#"*) ;;
    *) echo "+ $line"; eval "$line" ;;
  esac
done <<< "$steps"
[ -n "$app" ] || { echo "newapp: the steps never run the app"; exit 1; }

for _ in $(seq 1 300); do  # go run builds first: up to 60 s
  if (exec 3<>/dev/tcp/127.0.0.1/1999) 2>/dev/null; then break; fi
  kill -0 "$app" 2>/dev/null || { echo "newapp: the app exited"; exit 1; }
  sleep 0.2
done
(cd "$repo/interop" && node newapp/client.mjs localhost:1999)
echo "newapp: the README's steps build an app that chats"
