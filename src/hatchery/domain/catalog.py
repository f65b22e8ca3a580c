"""The model catalog: each model's type, price and ordered providers, loaded from TOML.

The built-in catalog routes by the vendors that have credentials: with none, every model is made
by the ``local`` renderer; with any, each model lists only the vendors (of its built-in list, in
order) that have credentials, and a model none of them serves is left out. ``local`` never stands
in for a vendor's model unless a catalog file says so. A catalog file is used exactly as written.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hatchery.domain.money import parse_dollars
from hatchery.domain.tasks import TaskType


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the model and the key."""


@dataclass(frozen=True)
class Model:
    name: str
    type: TaskType
    unit_price_micros: int
    providers: tuple[str, ...]
    synchronous: bool = False  # its submits wait for the result (up to a minute) by default

    @property
    def is_video(self) -> bool:
        return self.type is TaskType.VIDEO

    def price(self, *, num_outputs: int, duration: int) -> int:
        """Micro-dollars for one task: per output for images, per second per output for video."""
        units = num_outputs * duration if self.is_video else num_outputs
        return self.unit_price_micros * units


@dataclass(frozen=True)
class Catalog:
    models: dict[str, Model]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    def get(self, name: str) -> Model | None:
        return self.models.get(name)

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
        return cls.parse(text)

    def routed(self, vendors: set[str]) -> Catalog:
        if not vendors:
            return Catalog({n: replace(m, providers=("local",)) for n, m in self.models.items()})
        models = {}
        for name, model in self.models.items():
            chosen = tuple(p for p in model.providers if p in vendors)
            if chosen:
                models[name] = replace(model, providers=chosen)
        return Catalog(models)

    def check_providers(
        self, available: set[str], missing: Mapping[str, str] | None = None
    ) -> None:
        """Refuse a catalog that names a provider this server does not have; ``missing`` says
        what a known provider without credentials needs (``{"fal": "HATCHERY_FAL_KEY"}``)."""
        missing = missing or {}
        for model in self.models.values():
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
    def parse(cls, text: str) -> Catalog:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"catalog is not valid TOML: {exc}") from None
        entries = data.get("models")
        if not isinstance(entries, dict) or not entries:
            raise CatalogError("catalog has no [models.NAME] tables")
        return cls({name: _model(name, spec) for name, spec in entries.items()})


def _model(name: str, spec: Any) -> Model:
    if not isinstance(spec, dict):
        raise CatalogError(f"models.{name} must be a table")
    kinds = {"image": TaskType.IMAGE, "video": TaskType.VIDEO}
    raw_type = spec.get("type")
    kind = kinds.get(raw_type) if isinstance(raw_type, str) else None
    if kind is None:
        raise CatalogError(f'models.{name}.type must be "image" or "video"')
    price_key = "price_per_second" if kind is TaskType.VIDEO else "price_per_output"
    try:
        price = parse_dollars(str(spec[price_key]))
    except (KeyError, ValueError) as exc:
        raise CatalogError(f"models.{name}.{price_key} must be a dollar amount: {exc}") from None
    if price < 0:
        raise CatalogError(f"models.{name}.{price_key} cannot be negative")
    providers = spec.get("providers", ["local"])
    if (
        not isinstance(providers, list)
        or not providers
        or not all(isinstance(p, str) for p in providers)
    ):
        raise CatalogError(f"models.{name}.providers must be a non-empty list of names")
    synchronous = spec.get("synchronous", False)
    if not isinstance(synchronous, bool):
        raise CatalogError(f"models.{name}.synchronous must be true or false")
    return Model(name, kind, price, tuple(providers), synchronous)
