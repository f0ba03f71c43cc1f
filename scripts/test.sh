#!/usr/bin/env bash
# The full test suite: installs what the tests need (Neovim 0.11 for the headless-client
# test, redis-server for the team tier, promtool for the alert rules, typos-lsp and semgrep
# for the side-by-side runner), then runs every test against the real binary. The VS Code
# extension is built, linted and packaged first.
set -euo pipefail
cd "$(dirname "$0")/.."
REVIEW_LSP_NVIM="$(scripts/install-nvim.sh)"
export REVIEW_LSP_NVIM
REVIEW_LSP_REDIS_SERVER="$(scripts/install-redis.sh)"
export REVIEW_LSP_REDIS_SERVER
REVIEW_LSP_PROMTOOL="$(scripts/install-promtool.sh)"; export REVIEW_LSP_PROMTOOL
# The side-by-side runner (benches/compare.rs) measures against these two; in CI a missing
# one is an error, not a "not installed" row.
TYPOS_LSP="$(scripts/install-typos-lsp.sh)"; export TYPOS_LSP
SEMGREP="$(scripts/install-semgrep.sh)"; export SEMGREP
export COMPARE_REQUIRE_TOOLS=1
bash scripts/check-vscode.sh
cargo test --locked --all-targets
# The fuzz targets run on demand (fuzz/README.md), but they must keep compiling against the
# crate they fuzz; a type check is enough for that and needs no nightly.
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
