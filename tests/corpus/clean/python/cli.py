"""Command-line entry point for the inventory tool."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("~/.config/inventory.yaml").expanduser()
TOKEN_ENV = "INVENTORY_TOKEN"


def load_config(path: Path) -> dict:
    """Read the YAML config, returning an empty dict when the file is missing."""
    if not path.exists():
        return {}
    with path.open() as fh:
        data = yaml.safe_load(fh)
    return data if data is not None else {}


def git_revision(repo: Path) -> str | None:
    """Return the current commit of `repo`, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Build the argument parser and parse `argv`."""
    parser = argparse.ArgumentParser(prog="inventory")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    show = sub.add_parser("show")
    show.add_argument("name")
    return parser.parse_args(argv)


def _render(items: list[dict], as_json: bool) -> str:
    if as_json:
        return json.dumps(items, indent=2, sort_keys=True)
    width = max((len(item["name"]) for item in items), default=0)
    return "\n".join(f"{item['name']:<{width}}  {item.get('count', 0)}" for item in items)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO)
    config = load_config(args.config)
    token = os.environ.get(TOKEN_ENV)
    if token is None:
        log.warning("no %s set; running read-only", TOKEN_ENV)

    items = config.get("items", [])
    if args.command == "list":
        print(_render(items, args.json))
        return 0

    matches = [item for item in items if item["name"] == args.name]
    if not matches:
        print(f"unknown item: {args.name}", file=sys.stderr)
        return 1
    print(_render(matches, args.json))
    revision = git_revision(Path.cwd())
    if revision is not None:
        log.debug("inventory at %s", revision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
