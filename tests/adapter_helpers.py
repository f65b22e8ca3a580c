"""Driving one provider adapter against a fake upstream, as the runner drives it (without its
waits): what the adapter tests of every vendor share. The ``http`` client they use is the
``http`` fixture of ``tests/conftest.py``."""

from __future__ import annotations

from typing import Any

import httpx

from hatchery.providers.base import Finished, Job, Provider, Running
from hatchery.providers.upstream import Upstream
from tests.fake_upstreams import UPSTREAM_TIMEOUT

MAX_BYTES = 20 * 1024 * 1024


def upstream(
    http: httpx.AsyncClient,
    name: str,
    base: str,
    auth: dict[str, str],
    max_bytes: int = MAX_BYTES,
) -> Upstream:
    """A vendor's Upstream on a fake, with the tests' short timeout."""
    return Upstream(name, http, base, auth, timeout=UPSTREAM_TIMEOUT, max_bytes=max_bytes)


async def drive(provider: Provider, work: Job) -> tuple[Finished, list[dict[str, Any]]]:
    """Submit, then poll until finished; the result and every handle seen on the way."""
    step = await provider.submit(work)
    handles = []
    while isinstance(step, Running):
        handles.append(step.upstream)
        step = await provider.poll(work, step.upstream)
    return step, handles
