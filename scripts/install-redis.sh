#!/usr/bin/env bash
# Makes sure redis-server is available for the Redis team-tier tests (tests/redis_backend.rs),
# which run a real server on a free loopback port. Installs Debian's package when it is missing
# (CI runs as root) and prints the binary's path, which scripts/test.sh exports as
# REVIEW_LSP_REDIS_SERVER. apt's own output goes to stderr so stdout is only the path.
set -euo pipefail
if [ -n "${REVIEW_LSP_REDIS_SERVER:-}" ] && [ -x "$REVIEW_LSP_REDIS_SERVER" ]; then
  echo "$REVIEW_LSP_REDIS_SERVER"
  exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-redis.sh: redis-server is not on PATH and apt-get is unavailable;" \
      "install Redis (6 or later) by hand, or set REVIEW_LSP_REDIS_SERVER to its redis-server." >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-redis.sh: installing redis-server needs root (or sudo)." >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; only then is the update worth its time.
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends redis-server >&2; then
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" apt-get install -y -q --no-install-recommends redis-server >&2
  fi
fi
command -v redis-server
