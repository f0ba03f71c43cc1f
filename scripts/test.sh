#!/usr/bin/env bash
# The full test suite: installs what the tests need (Neovim 0.11 for the headless-client
# test, redis-server for the team tier, promtool for the alert rules), then runs every test
# against the real binary. The VS Code extension is built, linted and packaged first.
set -euo pipefail
cd "$(dirname "$0")/.."
REVIEW_LSP_NVIM="$(scripts/install-nvim.sh)"
export REVIEW_LSP_NVIM
REVIEW_LSP_REDIS_SERVER="$(scripts/install-redis.sh)"
export REVIEW_LSP_REDIS_SERVER
REVIEW_LSP_PROMTOOL="$(scripts/install-promtool.sh)"; export REVIEW_LSP_PROMTOOL
# typos-lsp and semgrep, which the side-by-side runner (benches/compare.rs) measures
# against, are not installed here: they cost minutes and a gigabyte for a smoke-size table
# that asserts nothing. Run scripts/install-typos-lsp.sh and install-semgrep.sh before
# `cargo bench --bench compare` for the real table.
bash scripts/check-vscode.sh
cargo test --locked --all-targets
# The fuzz targets run on demand (fuzz/README.md), but they must keep compiling against the
# crate they fuzz; a type check is enough for that and needs no nightly.
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
