"""The operator's pages, under ``/dashboard/admin``: what the admin API (``/admin/v1``) offers,
for an admin signed in to the dashboard. Anyone else gets the 403 page on every one of them, and
the navigation shows the section to admins only (``pages.navigation_of``).

Each page reads and changes through the same operator actions and services as the admin API
(``hatchery.admin``, ``services.routes``, ``hatchery.admin.health``, ``store.operator``,
``store.audit``), and each change is audited with the admin's session as its actor.

Modules, one group of pages each: ``health`` (the summary, providers, the queue, the webhook
outbox), ``accounts``, ``keys``, ``routes`` (model and tool routes), ``audit``; what they share
(the admin check, forms of dollars, page positions) is in ``common``. Templates are in
``templates/admin/``.
"""

from fastapi import APIRouter

from hatchery.api.dashboard.admin import accounts, audit, health, keys, routes

router = APIRouter()
for _page in (health, accounts, keys, routes, audit):
    router.include_router(_page.router)

__all__ = ["router"]
