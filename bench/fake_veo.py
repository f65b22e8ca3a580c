"""A fake Veo upstream for benchmarks: an asyncio server (Starlette on uvicorn) on 127.0.0.1 in
which every operation is done ``JOB_SECONDS`` after it was submitted. It answers as fast as it can,
so what is measured is the worker, not the fake.

    python bench/fake_veo.py PORT JOB_SECONDS
"""

from __future__ import annotations

import sys
import time
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hatchery.providers import render

JOB_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
VIDEO = render.render_mp4("benchmark", 1, 64, 36, [])
DONE_AT: dict[str, float] = {}
COUNTS = {"submits": 0, "polls": 0, "downloads": 0}


async def predict(request: Request) -> JSONResponse:
    await request.body()
    name = f"models/veo-3.1-generate-preview/operations/{uuid.uuid4().hex}"
    DONE_AT[name] = time.monotonic() + JOB_SECONDS
    COUNTS["submits"] += 1
    return JSONResponse({"name": name})


async def operation(request: Request) -> JSONResponse:
    name = f"models/veo-3.1-generate-preview/operations/{request.path_params['op']}"
    COUNTS["polls"] += 1
    if time.monotonic() < DONE_AT.get(name, 0):
        return JSONResponse({"name": name, "done": False})
    uri = f"http://127.0.0.1:{request.url.port}/v1beta/files/{request.path_params['op']}:download"
    samples = [{"video": {"uri": uri}}]
    return JSONResponse(
        {
            "name": name,
            "done": True,
            "response": {"generateVideoResponse": {"generatedSamples": samples}},
        }
    )


async def download(request: Request) -> Response:
    COUNTS["downloads"] += 1
    return Response(VIDEO, media_type="video/mp4")


async def counts(request: Request) -> JSONResponse:
    return JSONResponse(COUNTS)


app = Starlette(
    routes=[
        Route(
            "/v1beta/models/veo-3.1-generate-preview:predictLongRunning", predict, methods=["POST"]
        ),
        Route("/v1beta/models/veo-3.1-generate-preview/operations/{op}", operation),
        Route("/v1beta/files/{file}:download", download),
        Route("/counts", counts),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
