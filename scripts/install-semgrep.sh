#!/usr/bin/env bash
# Installs semgrep, which P7 of the side-by-side runner (benches/compare.rs) measures against,
# from PyPI into a virtual environment in .tools/semgrep, and prints its path, which
# scripts/test.sh exports as SEMGREP. A venv keeps semgrep's dependencies out of the system
# interpreter, whose standard library is P7's corpus. The version is pinned so the
# comparison does not move under us. Stdout is only the path.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/apt.sh
version=1.185.0
dest=.tools/semgrep
if [ -n "${SEMGREP:-}" ] && [ -x "$SEMGREP" ]; then
  echo "$SEMGREP"
  exit 0
fi
if [ ! -x "$dest/bin/semgrep" ] || [ "$(cat "$dest/version" 2>/dev/null)" != "$version" ]; then
  # Debian splits venv support (ensurepip) into python3-venv.
  python3 -c 'import ensurepip' 2>/dev/null || apt_install install-semgrep.sh python3-venv
  rm -rf "$dest"
  python3 -m venv "$dest" >&2
  "$dest/bin/pip" install --quiet --disable-pip-version-check "semgrep==$version" >&2
  echo "$version" >"$dest/version"
fi
echo "$PWD/$dest/bin/semgrep"
