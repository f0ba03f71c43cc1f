#!/usr/bin/env bash
# Builds, lints and packages the VS Code extension from a clean install:
#   npm ci && npm run compile && npm run lint && npm run package   (in editors/vscode)
# Needs Node.js >= 20.19 with npm, and the npm registry for `npm ci`. Exits non-zero on failure.
set -euo pipefail

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "check-vscode: node and npm are required (install Node.js >= 20.19 with npm)" >&2
  exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "check-vscode: Node.js >= 20.19 is required (found $(node --version))" >&2
  exit 1
fi
cd "$(dirname "$0")/../editors/vscode"

step() {
  local name=$1
  shift
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    echo "check-vscode: $name failed:" >&2
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  echo "check-vscode: $name ok"
}

started=$SECONDS
step "npm ci" npm ci --no-audit --no-fund --loglevel=error
step "compile (tsc)" npm run --silent compile
step "lint (eslint)" npm run --silent lint
rm -f ./*.vsix
step "package (vsce)" npm run --silent package
echo "check-vscode: built $(ls ./*.vsix) in $((SECONDS - started)) s"
