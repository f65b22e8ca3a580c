"""A model's or tool's route as the operator edits it: its providers in order, each enabled or
not (with what each runs upstream), its unit price and price rules, its synchronous flag.

The catalog (``domain.catalog``) is what tasks run by: a :class:`Route` becomes a catalog
``Model`` of its enabled providers only. Routes live in the database (``store.routes``) as
:meth:`Route.to_json`; a change is a :class:`RouteChange`, checked here for what any server would
refuse (no provider left enabled, a rule naming a provider the route lacks) and by the provider
registry for what this server has (``providers.registry.check_route``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from hatchery.domain.catalog import PRICED_BY, CatalogError, Model, PriceRule
from hatchery.domain.money import MAX_UNIT_PRICE_MICROS, format_cost
from hatchery.domain.tasks import TaskType

MAX_RULES = 50  # price rules of one route
MAX_VALUE = 64  # characters of a value a price rule matches

Kind = Literal["model", "tool"]
KINDS: tuple[Kind, ...] = ("model", "tool")
TYPES = {"image": TaskType.IMAGE, "video": TaskType.VIDEO, "tool": TaskType.TOOL}
TYPE_NAMES = {kind: name for name, kind in TYPES.items()}


@dataclass(frozen=True)
class ProviderRoute:
    name: str
    enabled: bool = True
    upstream: str | None = None  # what the provider runs for it, when not its default


@dataclass(frozen=True)
class RouteChange:
    """What an operator changes: each field left None stays as it was."""

    providers: tuple[ProviderRoute, ...] | None = None
    unit_price_micros: int | None = None
    price_rules: tuple[PriceRule, ...] | None = None
    synchronous: bool | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__dataclass_fields__)


@dataclass(frozen=True)
class Route:
    kind: Kind
    name: str
    type: TaskType
    unit: str  # what one price unit is: image, second, output, character
    unit_price_micros: int
    providers: tuple[ProviderRoute, ...]
    price_rules: tuple[PriceRule, ...] = ()
    synchronous: bool = False

    @property
    def where(self) -> str:
        """How messages name it: ``models.flux`` or ``tools.upscale``, as a catalog file does."""
        return f"{self.kind}s.{self.name}"

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers if p.enabled)

    @classmethod
    def of(cls, model: Model) -> Route:
        """A catalog model's route: every provider enabled."""
        return cls(
            "tool" if model.type is TaskType.TOOL else "model",
            model.name,
            model.type,
            model.unit,
            model.unit_price_micros,
            tuple(ProviderRoute(p, True, model.routes.get(p)) for p in model.providers),
            model.price_rules,
            model.synchronous,
        )

    def model(self, present: Sequence[str] | None = None) -> Model:
        """The catalog model tasks run by: the enabled providers (of ``present`` only, when
        given: those this process has)."""
        names = [p for p in self.enabled if present is None or p in present]
        upstream = {p.name: p.upstream for p in self.providers if p.upstream and p.name in names}
        return Model(
            self.name,
            self.type,
            self.unit_price_micros,
            tuple(names),
            self.synchronous,
            self.price_rules,
            tool_unit=self.unit if self.kind == "tool" else None,
            routes=upstream,
        )

    def changed(self, change: RouteChange) -> Route:
        """This route with ``change`` made, or :class:`CatalogError` saying what breaks it."""
        if change.is_empty():
            raise CatalogError(
                "nothing to change: give providers, unit_price_micros, price_rules or synchronous"
            )
        if change.synchronous is not None and self.kind == "tool":
            raise CatalogError(
                f"{self.where}: synchronous applies to models (POST /v1/generate) only"
            )
        updated = replace(
            self,
            providers=self.providers if change.providers is None else change.providers,
            unit_price_micros=(
                self.unit_price_micros
                if change.unit_price_micros is None
                else change.unit_price_micros
            ),
            price_rules=self.price_rules if change.price_rules is None else change.price_rules,
            synchronous=self.synchronous if change.synchronous is None else change.synchronous,
        )
        updated.check()
        return updated

    def check(self) -> None:
        """What no server could run: no provider, none enabled, a provider named twice, a
        negative price, a price rule on a value prices cannot depend on or naming a provider
        the route lacks."""
        names = [p.name for p in self.providers]
        if not names:
            raise CatalogError(f"{self.where}.providers cannot be empty")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise CatalogError(f"{self.where}.providers names {', '.join(twice)} more than once")
        if not self.enabled:
            raise CatalogError(
                f"{self.where}: at least one provider must stay enabled, or no task could run"
            )
        _check_price(self.unit_price_micros, f"{self.where}.unit_price_micros")
        if len(self.price_rules) > MAX_RULES:
            raise CatalogError(f"{self.where}.price_rules: at most {MAX_RULES} rules")
        for i, rule in enumerate(self.price_rules):
            _check_rule(rule, f"{self.where}.price_rules[{i}]", names)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": TYPE_NAMES[self.type],
            "unit": self.unit,
            "unit_price_micros": self.unit_price_micros,
            "providers": [
                {"name": p.name, "enabled": p.enabled, "upstream": p.upstream}
                for p in self.providers
            ],
            "price_rules": [
                {"when": dict(rule.when), "unit_price_micros": rule.unit_price_micros}
                for rule in self.price_rules
            ],
            "synchronous": self.synchronous,
        }

    @classmethod
    def from_json(cls, kind: Kind, name: str, spec: Mapping[str, Any]) -> Route:
        return cls(
            kind,
            name,
            TYPES[spec["type"]],
            spec["unit"],
            int(spec["unit_price_micros"]),
            tuple(
                ProviderRoute(p["name"], bool(p["enabled"]), p.get("upstream"))
                for p in spec["providers"]
            ),
            tuple(
                PriceRule(tuple(rule["when"].items()), int(rule["unit_price_micros"]))
                for rule in spec["price_rules"]
            ),
            bool(spec["synchronous"]),
        )


def _check_rule(rule: PriceRule, where: str, providers: Sequence[str]) -> None:
    if not rule.when:
        raise CatalogError(f'{where}.when must name request values, e.g. {{"resolution": "4k"}}')
    for param, value in rule.when:
        if param not in PRICED_BY:
            raise CatalogError(
                f"{where}.when.{param}: prices can depend on {', '.join(PRICED_BY)} only"
            )
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise CatalogError(f"{where}.when.{param} must be a string or a whole number")
        if len(str(value)) > MAX_VALUE:
            raise CatalogError(f"{where}.when.{param} is at most {MAX_VALUE} characters")
        if param == "provider" and value not in providers:
            raise CatalogError(f"{where}.when.provider: {value} is not one of the providers")
    _check_price(rule.unit_price_micros, f"{where}.unit_price_micros")


def _check_price(micros: int, where: str) -> None:
    if micros < 0:
        raise CatalogError(f"{where} cannot be negative")
    if micros > MAX_UNIT_PRICE_MICROS:
        raise CatalogError(
            f"{where} is at most {MAX_UNIT_PRICE_MICROS} ({format_cost(MAX_UNIT_PRICE_MICROS)})"
        )
