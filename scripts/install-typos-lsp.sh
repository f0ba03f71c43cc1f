#!/usr/bin/env bash
# Installs typos-lsp, the language server that P1 of the side-by-side runner
# (benches/compare.rs) measures against, into .tools/typos-lsp with `cargo install` from
# crates.io, and prints its path, which scripts/test.sh exports as TYPOS_LSP. The version is
# pinned so the comparison does not move under us. Stdout is only the path.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.1.57
dest=.tools/typos-lsp
bin="$dest/bin/typos-lsp"
if [ -n "${TYPOS_LSP:-}" ] && [ -x "$TYPOS_LSP" ]; then
  echo "$TYPOS_LSP"
  exit 0
fi
if [ ! -x "$bin" ] || [ "$(cat "$dest/version" 2>/dev/null)" != "$version" ]; then
  # Its own target directory: sharing ours would rebuild our dependencies with its features.
  cargo install typos-lsp --locked --version "$version" --root "$dest" \
    --target-dir .tools/typos-lsp-build >&2
  rm -rf .tools/typos-lsp-build
  echo "$version" >"$dest/version"
fi
echo "$PWD/$bin"
