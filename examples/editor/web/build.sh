#!/usr/bin/env bash
# Rebuilds ../static/editor.js (and editor.licenses.txt) from main.js with the
# packages package-lock.json pins; `./build.sh --check` only checks that the
# committed files are what the build produces. Installs the packages first if
# node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
exec node build.mjs "$@"
