"""The dashboard: server-rendered pages at ``/dashboard`` where an account holder signs in, gets
API keys, tries models and tools, and sees tasks, files, usage and webhooks.

A dialect like the others, at the edge: its routes read and change through the same store and
services as the APIs, its errors become pages in one place (``errors``), and what every page
shares is in ``pages``. The session that signs a browser in also authorises its calls to the
Egg and VideoGen APIs (``api.session``): the playground and the file uploads are those calls.

Modules, one page each: ``signin`` (sign-in, sign-out, invites), ``overview``, ``playground``,
``tasks`` (tasks and tool executions), ``files``, ``keys``, ``webhooks``, ``usage``; and for
admins, the operator's pages (``admin``, a package: ``/dashboard/admin``). Templates are
in ``templates/``, the stylesheet and the scripts in ``static/`` (served at
``/dashboard/static/``), all shipped in the package: nothing to build, nothing from a CDN.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.staticfiles import StaticFiles

from hatchery.api.dashboard import (
    admin,
    files,
    keys,
    overview,
    playground,
    signin,
    tasks,
    usage,
    webhooks,
)
from hatchery.api.dashboard.pages import PREFIX, STATIC

router = APIRouter(include_in_schema=False)
for _page in (signin, overview, playground, tasks, files, keys, webhooks, usage, admin):
    router.include_router(_page.router, prefix=PREFIX)

static = StaticFiles(directory=STATIC)
STATIC_PATH = PREFIX + "/static"
