#!/usr/bin/env bash
# Makes sure promtool is available for the deploy-file checks (tests/deploy_files.rs), which run
# `promtool check rules` and `promtool test rules` over deploy/prometheus/. Installs Debian's
# `prometheus` package when promtool is missing (CI runs as root) and prints promtool's path,
# which scripts/test.sh exports as REVIEW_LSP_PROMTOOL. Stdout is only the path. The package's
# service is never started.
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"
if [ -n "${REVIEW_LSP_PROMTOOL:-}" ] && [ -x "$REVIEW_LSP_PROMTOOL" ]; then
  echo "$REVIEW_LSP_PROMTOOL"
  exit 0
fi
if ! command -v promtool >/dev/null 2>&1; then
  no_service_starts
  # A postinst that fails (say, it cannot reach systemd) leaves the package half-configured,
  # but promtool itself is unpacked and usable; that is all we need.
  apt_install install-promtool.sh prometheus
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "install-promtool.sh: no promtool after installing Debian's prometheus package;" \
    "install promtool by hand, or set REVIEW_LSP_PROMTOOL to it." >&2
  exit 1
fi
command -v promtool
