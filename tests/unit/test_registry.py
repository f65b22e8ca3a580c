"""Choosing providers for a request's values: sizes a provider cannot make are made at the
nearest size it can, and the providers that make the size asked for are tried first."""

from __future__ import annotations

from typing import Any

import pytest

from hatchery.domain.catalog import Model
from hatchery.domain.tasks import TaskType
from hatchery.providers.base import Finished, Job, Running
from hatchery.providers.registry import fitted, nearest_size, servable


class Sized:
    """A provider that makes the given image sizes (and refuses videos of 5 seconds)."""

    def __init__(self, name: str, sizes: set[str]) -> None:
        self.name = name
        self.sizes = frozenset(sizes)

    def serves(self, model: str) -> bool:
        return True

    def unsupported(self, job: Job) -> str | None:
        return "no 5 s videos" if job.kind == "video" and job.duration == 5 else None

    def image_sizes(self, model: str) -> frozenset[str]:
        return self.sizes

    async def submit(self, job: Job) -> Finished | Running:
        raise NotImplementedError

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        raise NotImplementedError

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        raise NotImplementedError


def job(resolution: str, kind: str = "image", duration: int = 5) -> Job:
    params = {
        "prompt": "p",
        "num_outputs": 1,
        "duration": duration,
        "aspect_ratio": "16:9",
        "resolution": resolution,
    }
    return Job.from_params("gen_x", "pic", kind, params)


@pytest.mark.parametrize(
    ("wanted", "sizes", "made"),
    [
        ("2k", {"1k"}, "1k"),
        ("4k", {"1k", "2k"}, "2k"),
        ("1k", {"2k", "4k"}, "2k"),
        ("2k", {"1k", "4k"}, "1k"),  # a tie: the smaller
        ("4k", {"1k", "2k", "4k"}, "4k"),
    ],
)
def test_the_nearest_size(wanted: str, sizes: set[str], made: str) -> None:
    assert nearest_size(wanted, frozenset(sizes)) == made


def test_a_job_is_fitted_to_the_sizes_its_provider_makes() -> None:
    small = Sized("small", {"1k"})
    assert fitted(small, job("4k")).resolution == "1k"
    assert fitted(small, job("1k")) == job("1k")
    assert fitted(small, job("4k", "video", 8)) == job("4k", "video", 8)  # videos: as asked
    assert fitted(Sized("none", set()), job("2k")) == job("2k")


def test_providers_that_make_the_size_come_first_and_the_rest_stay_usable() -> None:
    providers = {
        "small": Sized("small", {"1k"}),
        "big": Sized("big", {"1k", "2k", "4k"}),
        "mid": Sized("mid", {"1k", "2k"}),
    }
    model = Model("pic", TaskType.IMAGE, 1, ("small", "big", "mid"))
    assert servable(model, providers, job("2k")) == (["big", "mid", "small"], "")
    assert servable(model, providers, job("4k")) == (["big", "small", "mid"], "")
    assert servable(model, providers, job("1k")) == (["small", "big", "mid"], "")
    video = Model("pic", TaskType.VIDEO, 1, ("small", "big"))
    assert servable(video, providers, job("1k", "video", 5)) == ([], "no 5 s videos (small, big)")


class Routed(Sized):
    """A provider that knows one route per model, and says which route a job came with."""

    def route_problem(self, model: str, route: str | None) -> str | None:
        return None if route in (None, "known/model") else f"unknown route {route!r}"

    def unsupported(self, job: Job) -> str | None:
        return None if job.route(self.name) == "known/model" else "only with its route"


def test_servable_gives_each_provider_its_catalog_route() -> None:
    model = Model("m", TaskType.IMAGE, 1, ("a", "b"), routes={"a": "known/model", "b": "other"})
    providers = {"a": Routed("a", {"1k"}), "b": Routed("b", {"1k"})}
    job = Job("t", "m", "image", "p", None, 1, 0, "1:1", "1k")
    usable, why = servable(model, providers, job)  # type: ignore[arg-type]
    assert usable == ["a"]
    assert why == "only with its route (b)"


def test_check_catalog_refuses_a_route_the_provider_cannot_run() -> None:
    from hatchery.domain.catalog import Catalog, CatalogError
    from hatchery.providers.registry import check_catalog

    text = (
        '[models.m]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["a"]\n'
        'upstream = { a = "nope" }\n'
    )
    providers = {"a": Routed("a", {"1k"})}
    with pytest.raises(CatalogError, match=r"models\.m\.upstream\.a: unknown route 'nope'"):
        check_catalog(Catalog.parse(text), providers)  # type: ignore[arg-type]
    good = text.replace('"nope"', '"known/model"')
    check_catalog(Catalog.parse(good), providers)  # type: ignore[arg-type]
