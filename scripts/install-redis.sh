#!/usr/bin/env bash
# Makes sure redis-server is available for the Redis team-tier tests (tests/redis_backend.rs),
# which run a real server on a free loopback port. Installs Debian's package when it is missing
# (CI runs as root) and prints the binary's path, which scripts/test.sh exports as
# REVIEW_LSP_REDIS_SERVER. Stdout is only the path.
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"
if [ -n "${REVIEW_LSP_REDIS_SERVER:-}" ] && [ -x "$REVIEW_LSP_REDIS_SERVER" ]; then
  echo "$REVIEW_LSP_REDIS_SERVER"
  exit 0
fi
command -v redis-server >/dev/null 2>&1 || apt_install install-redis.sh redis-server
if ! command -v redis-server >/dev/null 2>&1; then
  echo "install-redis.sh: no redis-server after installing Debian's package; install Redis (6 or" \
    "later) by hand, or set REVIEW_LSP_REDIS_SERVER to its redis-server." >&2
  exit 1
fi
command -v redis-server
