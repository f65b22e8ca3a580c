"""A model's route as an operator edits it (``domain.routes``): what a change may not do, what
the catalog model of a route is, and its JSON kept in the database."""

from __future__ import annotations

import pytest

from hatchery.api.admin.routes import change_of
from hatchery.api.admin.schemas import RoutePatchIn
from hatchery.domain.catalog import Catalog, CatalogError, PriceRule
from hatchery.domain.routes import ProviderRoute, Route, RouteChange

CATALOG = """
[models.flux]
type = "image"
price_per_output = "0.04"
providers = ["fal", "replicate"]
synchronous = true
upstream = {fal = "fal-ai/flux"}
[[models.flux.prices]]
when = {resolution = "4k", provider = "replicate"}
price_per_output = "0.08"

[tools.upscale-image]
price_per_output = "0.01"
providers = ["local"]
"""


@pytest.fixture
def flux() -> Route:
    return Route.of(Catalog.parse(CATALOG).models["flux"])


def test_a_catalog_model_becomes_a_route_and_back(flux: Route) -> None:
    model = Catalog.parse(CATALOG).models["flux"]
    assert flux.kind == "model" and flux.where == "models.flux"
    assert flux.providers == (
        ProviderRoute("fal", True, "fal-ai/flux"),
        ProviderRoute("replicate", True, None),
    )
    assert flux.model() == model
    assert Route.from_json("model", "flux", flux.to_json()) == flux
    tool = Route.of(Catalog.parse(CATALOG).tools["upscale-image"])
    assert (tool.kind, tool.unit, tool.model().tool_unit) == ("tool", "output", "output")
    assert Route.from_json("tool", "upscale-image", tool.to_json()) == tool


def test_disabled_providers_and_absent_ones_are_left_out_of_the_model(flux: Route) -> None:
    changed = flux.changed(
        RouteChange(providers=(ProviderRoute("replicate"), ProviderRoute("fal", False, "x")))
    )
    assert changed.model().providers == ("replicate",)
    assert changed.model().routes == {}  # the disabled one's upstream goes with it
    assert flux.model(present=["replicate"]).providers == ("replicate",)


def test_a_change_keeps_what_it_does_not_name(flux: Route) -> None:
    changed = flux.changed(RouteChange(unit_price_micros=50_000))
    assert changed.unit_price_micros == 50_000
    assert (changed.providers, changed.price_rules, changed.synchronous) == (
        flux.providers,
        flux.price_rules,
        True,
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (RouteChange(), "nothing to change"),
        (RouteChange(providers=()), "cannot be empty"),
        (RouteChange(providers=(ProviderRoute("fal", False),)), "at least one provider"),
        (RouteChange(providers=(ProviderRoute("fal"),) * 2), "fal more than once"),
        (RouteChange(unit_price_micros=-1), "cannot be negative"),
        # the rule names replicate, which the new list lacks
        (RouteChange(providers=(ProviderRoute("fal"),)), "replicate is not one of"),
        (
            RouteChange(price_rules=(PriceRule((("prompt", "x"),), 1),)),
            "prices can depend on",
        ),
        (RouteChange(price_rules=(PriceRule((), 1),)), "must name request values"),
        (RouteChange(price_rules=(PriceRule((("duration", 4),), -5),)), "cannot be negative"),
    ],
)
def test_a_change_that_breaks_the_route_is_refused_with_why(
    flux: Route, change: RouteChange, reason: str
) -> None:
    with pytest.raises(CatalogError, match=reason):
        flux.changed(change)


def test_synchronous_is_for_models_only() -> None:
    tool = Route.of(Catalog.parse(CATALOG).tools["upscale-image"])
    with pytest.raises(CatalogError, match="models"):
        tool.changed(RouteChange(synchronous=True))


def test_a_reorder_through_the_api_keeps_each_providers_upstream_and_state(flux: Route) -> None:
    off = flux.changed(
        RouteChange(providers=(flux.providers[0], ProviderRoute("replicate", False)))
    )
    body = RoutePatchIn.model_validate({"providers": [{"name": "replicate"}, {"name": "fal"}]})
    assert off.changed(change_of(body, off)).providers == (
        ProviderRoute("replicate", False, None),
        ProviderRoute("fal", True, "fal-ai/flux"),
    )
    cleared = RoutePatchIn.model_validate(
        {"providers": [{"name": "fal", "upstream": None, "enabled": True}, {"name": "comfyui"}]}
    )
    assert change_of(cleared, off).providers == (
        ProviderRoute("fal", True, None),
        ProviderRoute("comfyui", True, None),
    )


def test_a_unit_price_is_at_most_a_thousand_dollars(flux: Route) -> None:
    with pytest.raises(CatalogError, match="at most"):
        flux.changed(RouteChange(unit_price_micros=10**9 + 1))
