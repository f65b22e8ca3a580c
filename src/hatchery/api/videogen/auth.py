"""Authentication and rate limits for the VideoGen API: the same keys as every Hatchery API
(``Authorization: Bearer <key>``), and, on top of the key's own limit, the contract's hourly limit
per key and endpoint group. The groups and their limits are the contract's table, each of which
``HATCHERY_VIDEOGEN_RATE_LIMITS`` may change; an endpoint the table leaves out shares the group
nearest to it (written down in ``docs/videogen.md``)."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any

from starlette.requests import Request

from hatchery.api import ratelimit, session
from hatchery.api.auth import authenticate_key
from hatchery.api.videogen.errors import MissingKey
from hatchery.domain.rates import parse_rates
from hatchery.services import Services
from hatchery.settings import SettingsError
from hatchery.store.accounts import Account


class Group(StrEnum):
    TOOLS = "tools"
    EXECUTION = "execution"
    CANCEL = "cancel"
    FILES_READ = "files-read"
    FILES_HYDRATE = "files-hydrate"
    FILES_UPLOAD = "files-upload"
    FILES_SEARCH = "files-search"
    FILES_CHANGE = "files-change"  # archive and public preview: not in the contract's table
    RESOURCES = "resources"
    WEBHOOKS_READ = "webhooks-read"
    WEBHOOKS_CHANGE = "webhooks-change"
    WEBHOOKS_SEND = "webhooks-send"  # redelivery and test events: not in the contract's table


LIMITS = {
    Group.TOOLS: "500/hour",
    Group.EXECUTION: "5000/hour",
    Group.CANCEL: "250/hour",
    Group.FILES_READ: "50000/hour",
    Group.FILES_HYDRATE: "2500/hour",
    Group.FILES_UPLOAD: "500/hour",
    Group.FILES_SEARCH: "500/hour",
    Group.FILES_CHANGE: "2500/hour",
    Group.RESOURCES: "2500/hour",
    Group.WEBHOOKS_READ: "500/hour",
    Group.WEBHOOKS_CHANGE: "10/hour",
    Group.WEBHOOKS_SEND: "500/hour",
}


@functools.lru_cache(maxsize=4)
def group_limits(overrides: str) -> dict[Group, Any]:
    """Each group's limits: the contract's, but those ``HATCHERY_VIDEOGEN_RATE_LIMITS`` names
    (``"tools=1000/hour,execution=20000/hour"``). SettingsError names a bad entry."""
    given = dict(LIMITS)
    for entry in filter(None, (part.strip() for part in overrides.split(","))):
        name, _, limit = entry.partition("=")
        try:
            given[Group(name.strip())] = limit.strip()
        except ValueError:
            raise SettingsError(
                f"HATCHERY_VIDEOGEN_RATE_LIMITS: no group {name.strip()!r}; the groups are "
                f"{', '.join(g.value for g in Group)}"
            ) from None
    try:
        return {group: parse_rates(limit) for group, limit in given.items()}
    except ValueError as exc:
        raise SettingsError(f"HATCHERY_VIDEOGEN_RATE_LIMITS: {exc}") from None


async def caller(services: Services, request: Request, group: Group) -> Account:
    """The account behind the request's key, once the request is counted against its limits;
    ``missing_api_key`` with no key, ``invalid_api_key`` with a bad one."""
    if not request.headers.get("authorization") and not session.has_cookie(request):
        raise MissingKey("Missing API key: send it as 'Authorization: Bearer <key>'")
    record = await authenticate_key(services, request)
    limits = group_limits(services.settings.videogen_rate_limits)[group]
    await ratelimit.check_group(request.scope, record.prefix, group.value, limits)
    return record.account
