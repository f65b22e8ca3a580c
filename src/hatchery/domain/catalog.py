"""The model catalog: each model's type, prices and ordered providers, loaded from TOML.

A model has a base price per unit (an output image, or a second of video per output) and may
have price rules: ``[[models.NAME.prices]]`` tables with ``when = {resolution = "4k"}`` and the
unit price that applies when every value in ``when`` equals the request's (or, for ``provider``,
names the provider asked first); the first rule that matches wins. Tools have the same
``[[tools.NAME.prices]]``. A task's quote (units, unit price, total) is taken at submit; the
total is reserved then and charged at completion, and its usage record says the same.

The built-in catalog routes by the vendors that have credentials: with none, every model is made
by the ``local`` renderer; with any, each model lists only the vendors (of its built-in list, in
order) that have credentials, and a model none of them serves is left out. ``local`` never stands
in for a vendor's model unless a catalog file says so: a tool is made by ``local`` only when no
vendor of its built-in list has credentials. A catalog file is used exactly as written.

What each provider runs for a model or tool (its *route*) may be set in an ``upstream`` table,
``upstream = {fal = "fal-ai/esrgan", comfyui = "workflows/sdxl.json"}``; a route ending in
``.json`` is a file, read relative to the catalog file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hatchery.domain.money import parse_dollars
from hatchery.domain.tasks import TaskType
from hatchery.domain.tools import TOOLS


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the model and the key."""


# The request values a price rule may depend on, and the provider that will be asked first (the
# first of the model's providers that can make the request): a fallback keeps the quoted price.
PRICED_BY = ("resolution", "aspect_ratio", "duration", "provider")


@dataclass(frozen=True)
class PriceRule:
    when: tuple[tuple[str, str | int], ...]  # (parameter, value) pairs that must all hold
    unit_price_micros: int

    def matches(self, params: Mapping[str, Any]) -> bool:
        return all(params.get(name) == value for name, value in self.when)


@dataclass(frozen=True)
class Quote:
    """What one task costs: ``units`` of ``unit`` at ``unit_price_micros`` each."""

    units: int
    unit: str  # "image" or "second"
    unit_price_micros: int

    @property
    def total_micros(self) -> int:
        return self.units * self.unit_price_micros


@dataclass(frozen=True)
class Model:
    name: str
    type: TaskType
    unit_price_micros: int
    providers: tuple[str, ...]
    synchronous: bool = False  # its submits wait for the result (up to a minute) by default
    price_rules: tuple[PriceRule, ...] = ()
    tool_unit: str | None = None  # a tool's: "output", "second" or "character"
    routes: Mapping[str, str] = field(default_factory=dict)  # what each provider runs

    @property
    def is_video(self) -> bool:
        return self.type is TaskType.VIDEO

    @property
    def unit(self) -> str:
        return self.tool_unit or self.type.unit

    def units(self, params: Mapping[str, Any]) -> int:
        """How many price units a task with these values is: per output, times its seconds
        (video, and tools priced by the second) or the characters of its text."""
        outputs = int(params.get("num_outputs", 1))
        if self.unit == "second":
            return outputs * max(int(params.get("duration", 1)), 1)
        if self.unit == "character":  # the text as spoken, when the request says
            spoken = int(params.get("characters") or 0) or len(str(params.get("prompt", "")))
            return outputs * max(spoken, 1)
        return outputs

    def quote(self, params: Mapping[str, Any]) -> Quote:
        """The price of one task with these request values: per output image, per second per
        output for video, per character (text to speech), at the first matching rule's unit
        price (else the base price)."""
        units = self.units(params)
        rule = next((r for r in self.price_rules if r.matches(params)), None)
        unit_price = rule.unit_price_micros if rule else self.unit_price_micros
        return Quote(units, self.unit, unit_price)

    def price(self, **params: Any) -> int:
        """Micro-dollars for one task with these request values."""
        return self.quote(params).total_micros


@dataclass
class Catalog:
    """The models and tools this server runs. One object per process, shared by everything
    that prices or routes a task; the operator's route changes (``admin.routes``) replace its
    contents in place (:meth:`update`), and ``version`` counts them."""

    models: dict[str, Model]
    tools: dict[str, Model] = field(default_factory=dict)  # ``[tools.NAME]``: tool executions
    version: int = 0

    def update(self, models: dict[str, Model], tools: dict[str, Model]) -> None:
        """Run by these from now on (each a whole new dict: a reader holding the old one
        finishes with it)."""
        self.models = models
        self.tools = tools
        self.version += 1

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    def get(self, name: str) -> Model | None:
        return self.models.get(name)

    def for_task(self, model: str, kind: TaskType) -> Model | None:
        """The model, or tool, that a task of this type names."""
        return (self.tools if kind is TaskType.TOOL else self.models).get(model)

    def everything(self) -> list[Model]:
        return [*self.models.values(), *self.tools.values()]

    @classmethod
    def load(cls, path: Path | None = None, vendors: Iterable[str] = ()) -> Catalog:
        """A catalog file, or the built-in catalog routed by ``vendors`` (those with keys)."""
        if path is None:
            text = resources.files("hatchery").joinpath("catalog.toml").read_text("utf-8")
            return cls.parse(text).routed(set(vendors))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"cannot read the catalog file {path}: {exc}") from None
        catalog = cls.parse(text, base=path.parent)
        if catalog.tools:
            return catalog
        # a file written before tools existed: the built-in tools, as routed without a file
        return replace(catalog, tools=cls.load(None, vendors).tools)

    def routed(self, vendors: set[str]) -> Catalog:
        """The built-in catalog for these vendors: each model and tool with the providers of its
        list that have credentials; ``local`` for all the models when none of their vendors has
        (a self-hosted provider is named in a catalog file only), and for a tool when none of
        its vendors has."""
        if not vendors & {p for model in self.models.values() for p in model.providers}:
            models = {n: replace(m, providers=("local",)) for n, m in self.models.items()}
        else:
            models = _routed(self.models, vendors)
        tools = {
            name: replace(tool, providers=_tool_providers(tool.providers, vendors))
            for name, tool in self.tools.items()
        }
        return Catalog(models, tools)

    def check_providers(
        self, available: set[str], missing: Mapping[str, str] | None = None
    ) -> None:
        """Refuse a catalog that names a provider this server does not have; ``missing`` says
        what a known provider without credentials needs (``{"fal": "HATCHERY_FAL_KEY"}``)."""
        missing = missing or {}
        for model in self.everything():
            unknown = [p for p in model.providers if p not in available]
            needs = [f"{p} needs {missing[p]}" for p in unknown if p in missing]
            if needs:
                raise CatalogError(
                    f"models.{model.name}.providers names a provider without credentials: "
                    f"{'; '.join(needs)}"
                )
            if unknown:
                raise CatalogError(
                    f"models.{model.name}.providers names unknown provider(s) "
                    f"{', '.join(unknown)}; available: {', '.join(sorted(available))}"
                )

    @classmethod
    def parse(cls, text: str, base: Path | None = None) -> Catalog:
        """A catalog's text; ``base`` is the folder its routes' file paths are relative to."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"catalog is not valid TOML: {exc}") from None
        entries = data.get("models")
        if not isinstance(entries, dict) or not entries:
            raise CatalogError("catalog has no [models.NAME] tables")
        tools = data.get("tools", {})
        if not isinstance(tools, dict):
            raise CatalogError("tools must be tables: [tools.NAME]")
        here = base or Path(".")
        return cls(
            {name: _model(name, spec, here) for name, spec in entries.items()},
            {name: _tool(name, spec, here) for name, spec in tools.items()},
        )


def _routed(models: dict[str, Model], vendors: set[str]) -> dict[str, Model]:
    routed = {}
    for name, model in models.items():
        chosen = tuple(p for p in model.providers if p in vendors)
        if chosen:
            routed[name] = replace(model, providers=chosen)
    return routed


def _tool_providers(listed: tuple[str, ...], vendors: set[str]) -> tuple[str, ...]:
    """A built-in tool's providers: its vendors with credentials, else ``local``."""
    chosen = tuple(p for p in listed if p in vendors and p != "local")
    return chosen or ("local",)


def _routes(
    spec: dict[str, Any], where: str, providers: tuple[str, ...], base: Path
) -> dict[str, str]:
    """``upstream = {provider = "route"}``: only for providers the entry lists; a ``.json``
    route is a file path, made absolute against the catalog's folder."""
    table = spec.get("upstream", {})
    if not isinstance(table, dict):
        raise CatalogError(f'{where}.upstream must be a table, e.g. {{fal = "fal-ai/esrgan"}}')
    routes = {}
    for provider, route in table.items():
        if not isinstance(route, str) or not route.strip():
            raise CatalogError(f"{where}.upstream.{provider} must be a non-empty string")
        if provider not in providers:
            raise CatalogError(
                f"{where}.upstream.{provider}: {provider} is not in {where}.providers"
            )
        routes[provider] = str(base / route) if route.endswith(".json") else route
    return routes


TOOL_PRICES = {
    "price_per_output": "output",
    "price_per_second": "second",
    "price_per_character": "character",
}


def _tool(name: str, spec: Any, base: Path) -> Model:
    """One ``[tools.NAME]`` table: a tool of ``domain.tools``, one price key, its providers."""
    where = f"tools.{name}"
    if name not in TOOLS:
        raise CatalogError(f"{where}: no such tool; the tools are {', '.join(TOOLS)}")
    if not isinstance(spec, dict):
        raise CatalogError(f"{where} must be a table")
    keys = [key for key in TOOL_PRICES if key in spec]
    if len(keys) != 1:
        raise CatalogError(f"{where} needs exactly one of {', '.join(TOOL_PRICES)}")
    providers = _providers(spec, where)
    price = _price(spec, where, keys[0])
    return Model(
        name,
        TaskType.TOOL,
        price,
        providers,
        price_rules=_rules(spec, where, keys[0], providers),
        tool_unit=TOOL_PRICES[keys[0]],
        routes=_routes(spec, where, providers, base),
    )


def _rules(
    spec: dict[str, Any], where: str, price_key: str, providers: tuple[str, ...]
) -> tuple[PriceRule, ...]:
    rules = tuple(
        _rule(rule, f"{where}.prices[{i}]", price_key)
        for i, rule in enumerate(_list(spec.get("prices", []), f"{where}.prices"))
    )
    for i, rule in enumerate(rules):
        named = dict(rule.when).get("provider")
        if named is not None and named not in providers:
            raise CatalogError(
                f"{where}.prices[{i}].when.provider: {named} is not in {where}.providers"
            )
    return rules


def _providers(spec: dict[str, Any], where: str) -> tuple[str, ...]:
    providers = spec.get("providers", ["local"])
    if (
        not isinstance(providers, list)
        or not providers
        or not all(isinstance(p, str) for p in providers)
    ):
        raise CatalogError(f"{where}.providers must be a non-empty list of names")
    return tuple(providers)


def _model(name: str, spec: Any, base: Path) -> Model:
    if not isinstance(spec, dict):
        raise CatalogError(f"models.{name} must be a table")
    kinds = {"image": TaskType.IMAGE, "video": TaskType.VIDEO}
    raw_type = spec.get("type")
    kind = kinds.get(raw_type) if isinstance(raw_type, str) else None
    if kind is None:
        raise CatalogError(f'models.{name}.type must be "image" or "video"')
    price_key = "price_per_second" if kind is TaskType.VIDEO else "price_per_output"
    price = _price(spec, f"models.{name}", price_key)
    providers = _providers(spec, f"models.{name}")
    rules = _rules(spec, f"models.{name}", price_key, providers)
    synchronous = spec.get("synchronous", False)
    if not isinstance(synchronous, bool):
        raise CatalogError(f"models.{name}.synchronous must be true or false")
    routes = _routes(spec, f"models.{name}", providers, base)
    return Model(name, kind, price, providers, synchronous, rules, routes=routes)


def _price(spec: dict[str, Any], where: str, key: str) -> int:
    try:
        price = parse_dollars(str(spec[key]))
    except (KeyError, ValueError) as exc:
        raise CatalogError(f"{where}.{key} must be a dollar amount: {exc}") from None
    if price < 0:
        raise CatalogError(f"{where}.{key} cannot be negative")
    return price


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise CatalogError(f"{where} must be a list of tables ([[{where}]])")
    return value


def _rule(spec: Any, where: str, price_key: str) -> PriceRule:
    """One ``[[models.NAME.prices]]`` table: ``when = {resolution = "4k"}`` and the price."""
    when = spec.get("when") if isinstance(spec, dict) else None
    if not isinstance(when, dict) or not when:
        raise CatalogError(
            f'{where}.when must be a table of request values, e.g. {{resolution = "4k"}}'
        )
    for param, value in when.items():
        if param not in PRICED_BY:
            raise CatalogError(
                f"{where}.when.{param}: prices can depend on {', '.join(PRICED_BY)} only"
            )
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise CatalogError(f"{where}.when.{param} must be a string or a whole number")
    return PriceRule(tuple(when.items()), _price(spec, where, price_key))
