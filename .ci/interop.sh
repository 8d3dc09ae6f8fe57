#!/usr/bin/env bash
# Real clients against the Go server: the partysocket suite (interop/test), then
# the chat example in Debian's Chromium (interop/browser). Installs what it needs
# on a clean machine: the npm packages from interop/package-lock.json, and the
# chromium package if missing (never a downloaded browser build).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

chromium_bin="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
  echo "== apt-get install chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
"$chromium_bin" --version 2>/dev/null  # (its launcher script prints a harmless warning on stderr)

echo "== npm ci (interop)"
(cd interop && npm ci --no-audit --no-fund)

echo "== interop suite: partysocket $(node -p 'require("./interop/node_modules/partysocket/package.json").version') against interop/server"
(cd interop && timeout 600 npm test)

echo "== browser test: examples/chat in Chromium"
(cd interop && timeout 300 npm run test:browser)
