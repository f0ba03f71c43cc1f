"""Concurrent fetching of JSON resources with retries."""

import asyncio
import contextlib
import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


class FetchError(Exception):
    """Raised when a resource could not be fetched after all retries."""


async def fetch_json(client: httpx.AsyncClient, url: str, retries: int = 3) -> Any:
    """GET `url` and decode JSON, retrying transient failures with backoff."""
    delay = 0.5
    for attempt in range(1, retries + 1):
        try:
            response = await client.get(url, timeout=10.0)
            response.raise_for_status()
            return response.json()
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            if attempt == retries:
                raise FetchError(url) from exc
            log.info("retrying %s after %s (attempt %d)", url, exc, attempt)
            await asyncio.sleep(delay)
            delay *= 2
    return None


async def fetch_all(urls: list[str], limit: int = 8) -> dict[str, Any]:
    """Fetch every URL with at most `limit` requests in flight."""
    semaphore = asyncio.Semaphore(limit)
    results: dict[str, Any] = {}

    async def worker(client: httpx.AsyncClient, url: str) -> None:
        async with semaphore:
            try:
                results[url] = await fetch_json(client, url)
            except FetchError:
                log.warning("giving up on %s", url)

    async with httpx.AsyncClient(verify=True, follow_redirects=True) as client:
        await asyncio.gather(*(worker(client, url) for url in urls))
    return results


async def watch(queue: asyncio.Queue, stop: asyncio.Event) -> int:
    """Drain `queue` until `stop` is set, returning how many items were handled."""
    handled = 0
    while not stop.is_set():
        try:
            item = await asyncio.wait_for(queue.get(), timeout=1.0)
        except asyncio.TimeoutError:
            continue
        try:
            log.debug("handling %r", item)
            handled += 1
        finally:
            queue.task_done()
    return handled


def run(urls: list[str]) -> dict[str, Any]:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(fetch_all(urls))
    return {}
