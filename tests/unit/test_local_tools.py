"""The local provider's tool jobs: every output or none, and a tool whose output depends on its
input alone made once for all its copies."""

from __future__ import annotations

import asyncio

import pytest

from hatchery.domain.tools import InputFile, ToolParams
from hatchery.providers import local_tools
from hatchery.providers.base import Artifact, Job, TerminalError
from hatchery.providers.local import LocalProvider


def _job(tool: str, outputs: int, inputs: tuple[tuple[str, InputFile], ...] = ()) -> Job:
    return Job.for_tool("vg_exec_test", ToolParams(tool=tool, num_outputs=outputs, inputs=inputs))


def _provider() -> LocalProvider:
    async def read(key: str) -> bytes:
        return b"input bytes of " + key.encode()

    async def fetch(url: str) -> bytes:  # never called by tools
        raise AssertionError(url)

    return LocalProvider(fetch, read, parallel=2)  # type: ignore[arg-type]


def test_one_failed_output_fails_the_job_and_the_rest_are_not_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[int] = []

    def maker(job: Job, inputs: local_tools.Inputs, index: int) -> Artifact:
        if index == 1:
            raise ValueError("this one cannot be made")
        made.append(index)
        return Artifact(b"x", "png", 1, 1)

    monkeypatch.setitem(local_tools.MAKERS, "generate-image", maker)
    with pytest.raises(TerminalError, match="this one cannot be made"):  # as the runner catches
        asyncio.run(_provider().submit(_job("generate-image", 40)))
    assert len(made) < 39  # the first failure cancelled outputs not yet started


def test_a_tool_of_its_input_alone_is_made_once_for_all_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []

    def maker(job: Job, inputs: local_tools.Inputs, index: int) -> Artifact:
        calls.append(inputs.one("image"))
        return Artifact(b"<svg/>", "svg", 1, 1)

    monkeypatch.setitem(local_tools.MAKERS, "vectorize-image", maker)
    source = InputFile("vg_file_a", "uploads/vg_file_a", "IMAGE", "image/png")
    done = asyncio.run(_provider().submit(_job("vectorize-image", 3, (("image", source),))))
    assert calls == [b"input bytes of uploads/vg_file_a"]
    assert len(done.artifacts) == 3 and len({id(a) for a in done.artifacts}) == 1  # type: ignore[union-attr]
