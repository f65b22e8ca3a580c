"""The VideoGen API dialect (seed 004; contract ``shared/docs/videogen-api.md``): its routes,
request schemas, presenters, error mapping (``errors``) and rate-limit groups (``auth``). It runs
on the same engine as the Egg API: the store, the queue, the workers and the file library know
no wire format."""

from __future__ import annotations

from fastapi import APIRouter

from hatchery.api.videogen import files, resources, tools, webhooks

router = APIRouter()
router.include_router(files.router)
router.include_router(tools.router)
router.include_router(resources.router)
router.include_router(webhooks.router)
