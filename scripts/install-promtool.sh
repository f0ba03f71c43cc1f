#!/usr/bin/env bash
# Makes sure promtool is available for the deploy-file checks (tests/deploy_files.rs), which run
# `promtool check rules` and `promtool test rules` over deploy/prometheus/. Installs Debian's
# `prometheus` package when promtool is missing (CI runs as root) and prints promtool's path,
# which scripts/test.sh exports as REVIEW_LSP_PROMTOOL. apt's own output goes to stderr so stdout
# is only the path. The package's service is never started: a policy-rc.d that denies every
# action is in place for the install, and a failing start would not fail this script anyway.
set -euo pipefail
if [ -n "${REVIEW_LSP_PROMTOOL:-}" ] && [ -x "$REVIEW_LSP_PROMTOOL" ]; then
  echo "$REVIEW_LSP_PROMTOOL"
  exit 0
fi
if ! command -v promtool >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-promtool.sh: promtool is not on PATH and apt-get is unavailable;" \
      "install Prometheus's promtool by hand, or set REVIEW_LSP_PROMTOOL to it." >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-promtool.sh: installing promtool (Debian's prometheus package) needs root (or sudo)." >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's postinst from starting the prometheus service: invoke-rc.d asks
  # /usr/sbin/policy-rc.d, and exit status 101 means "action forbidden". An existing policy
  # (a container image often ships one) is left alone.
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=true
  fi
  cleanup() { if [ "$own_policy" = true ]; then "${sudo[@]}" rm -f "$policy"; fi; }
  trap cleanup EXIT
  apt_install() { "${sudo[@]}" apt-get install -y -q --no-install-recommends prometheus >&2; }
  # A fresh machine may have no package lists yet; only then is the update worth its time.
  if ! apt_install; then
    "${sudo[@]}" apt-get update -q >&2 || true
    if ! apt_install; then
      # A postinst that still failed (say, it could not reach systemd) leaves the package
      # half-configured, but promtool itself is unpacked and usable; that is all we need.
      if ! command -v promtool >/dev/null 2>&1; then
        echo "install-promtool.sh: could not install Debian's prometheus package (see apt's output above);" \
          "install promtool by hand, or set REVIEW_LSP_PROMTOOL to it." >&2
        exit 1
      fi
    fi
  fi
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "install-promtool.sh: promtool is still not on PATH after installing the prometheus package." >&2
  exit 1
fi
command -v promtool
