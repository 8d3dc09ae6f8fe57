#!/usr/bin/env bash
# Real clients against the Go server: the partysocket suite (interop/test) on one
# server, then again with its clients spread over three nodes of a cluster
# (party/cluster, PARTY_INTEROP_NODES=3), the yjs checks and y-websocket tests
# (interop/yjs), the latter again over three cluster nodes, the chat example in Debian's Chromium
# (interop/browser), then the chat behind nginx with TLS, running
# docs/deployment/nginx.conf (interop/proxy). Installs what it
# needs on a clean machine: the npm packages from interop/package-lock.json, and
# Debian's chromium, nginx and openssl packages if missing (never a downloaded
# browser build).
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

# nginx for the reverse-proxy test, openssl for its certificate. The test runs
# its own nginx (its own config, temporary directory and free port): an nginx
# service the package may start is left alone.
nginx_bin="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
missing=()
[ -x "$nginx_bin" ] || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$nginx_bin" -v

echo "== npm ci (interop)"
(cd interop && npm ci --no-audit --no-fund)

echo "== interop suite: partysocket $(node -p 'require("./interop/node_modules/partysocket/package.json").version') against interop/server"
(cd interop && timeout 600 npm test)

echo "== interop suite over three cluster nodes"
(cd interop && timeout 600 npm run test:cluster)

echo "== yjs: the committed fixtures and our update operations checked by the npm yjs"
(cd interop && timeout 600 npm run test:yjs)

echo "== yjs over three cluster nodes"
(cd interop && timeout 600 npm run test:yjs:cluster)

echo "== examples/editor: the committed bundle is what web/build.sh produces"
(cd examples/editor/web && npm ci --no-audit --no-fund && node build.mjs --check)

echo "== browser tests: examples/chat, examples/editor and the inspector in Chromium"
(cd interop && timeout 600 npm run test:browser)

echo "== reverse proxy: examples/chat behind nginx with TLS (docs/deployment/nginx.conf)"
(cd interop && timeout 300 node --test --test-timeout=120000 --test-force-exit proxy/)
