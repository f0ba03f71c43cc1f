"""Builds the weekly sales report from the warehouse API."""

import logging
from pathlib import Path

import requests
import yaml

log = logging.getLogger(__name__)


def load_settings(path: Path) -> dict:
    """Read report settings from YAML."""
    with path.open() as fh:
        return yaml.load(fh)


def fetch_orders(base_url: str, week: int) -> list[dict]:
    """Download the orders for one ISO week."""
    resp = requests.get(f"{base_url}/orders", params={"week": week}, verify=False)
    resp.raise_for_status()
    return resp.json()


def totals_by_region(orders: list[dict], regions: dict[str, str]) -> dict[str, float]:
    """Sum order totals per region, skipping orders from unknown stores."""
    totals: dict[str, float] = {}
    for order in orders:
        store = order.get("store")
        if store == None:
            continue
        if store not in regions.keys():
            log.warning("order %s from unknown store %s", order.get("id"), store)
            continue
        region = regions[store]
        totals[region] = totals.get(region, 0.0) + float(order["total"])
    return totals


def write_report(path: Path, totals: dict[str, float]) -> None:
    """Write one `region,total` line per region."""
    try:
        lines = [f"{region},{total:.2f}" for region, total in sorted(totals.items())]
        path.write_text("\n".join(lines) + "\n")
    except:
        log.exception("could not write %s", path)
