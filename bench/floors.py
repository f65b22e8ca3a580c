"""Floor servers: the framework's own cost per request, to set the Hatchery API's figures against.

Two tiny apps answer ``GET /floor`` and ``POST /floor`` with the same small JSON body as a bare
task endpoint (``{"success": true, "data": {"id": ..., "status": "pending"}}``) through
``JSONResponse``; ``POST`` reads and ``json.loads`` the request body, as a real submit does, and
answers 202. ``fastapi`` is the app on FastAPI, ``starlette`` the same routes on bare Starlette.
Both are served by uvicorn exactly as the Hatchery server is (default loop and HTTP parser, i.e.
uvloop and httptools; no access log; lifespan on), so the difference is the application's.

    .venv/bin/python bench/floors.py fastapi --port 8101
    .venv/bin/python bench/floors.py starlette --port 8102

then drive it with ``bench/loadgen.py``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def task_payload() -> dict[str, Any]:
    return {"success": True, "data": {"id": "task_0123456789abcdef", "status": "pending"}}


async def get_floor(request: Request) -> JSONResponse:
    return JSONResponse(task_payload())


async def post_floor(request: Request) -> JSONResponse:
    try:
        json.loads(await request.body())
    except ValueError:
        return JSONResponse({"success": False, "error": "invalid JSON body"}, status_code=400)
    return JSONResponse(task_payload(), status_code=202)


fastapi_app = FastAPI()


@fastapi_app.get("/floor")
async def fastapi_get_floor() -> JSONResponse:
    return JSONResponse(task_payload())


@fastapi_app.post("/floor")
async def fastapi_post_floor(request: Request) -> JSONResponse:
    return await post_floor(request)


starlette_app = Starlette(
    routes=[
        Route("/floor", get_floor, methods=["GET"]),
        Route("/floor", post_floor, methods=["POST"]),
    ]
)

APPS: dict[str, Any] = {"fastapi": fastapi_app, "starlette": starlette_app}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = uvicorn.Config(
        APPS[args.app],
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
