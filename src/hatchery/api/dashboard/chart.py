"""The overview's spend chart, as numbers a template draws: a stacked bar per UTC day (one
segment per model), the dollar scale on the left, a few day labels below, a legend with each
model's colour, and a sentence that says it all for those who cannot see it. Pure: no I/O.

The template (``overview.html``) draws it as an inline SVG with no script and no style
attribute: every coordinate is here, in the ``viewBox``'s units (``WIDTH`` by ``HEIGHT``),
colours are ``fill`` attributes.

- **Scale.** The tallest day is at most the top of the scale, which is a whole number (at most
  ``TICKS``) of a round step: 1, 2 or 5 times a power of ten micro-dollars, and never less than
  ``MIN_STEP`` ($0.0001, the smallest a cost shows). No spend at all still has a scale.
- **Stacking.** A day's segments sit on each other in the legend's order (the most spent on
  first, at the bottom); each starts where the one below ends, so the bar's top is its total.
- **Colours.** The ``len(PALETTE)`` models spent the most on over the range get a colour each,
  in that order; any others share ``OTHER_COLOUR`` under ``OTHER``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from hatchery.domain.money import format_cost

WIDTH = 640
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 60, 24, 12, 28  # margins: the scale's labels left, days' below
TICKS = 4
MIN_STEP = 100  # micro-dollars: $0.0001
BAR_SHARE = 0.7  # of a day's slot; the rest is the gap between bars
DAY_LABELS = 6  # about how many days are labelled below the bars
PALETTE = (
    "#3d5afe",
    "#e8710a",
    "#1b9e77",
    "#d63384",
    "#7b61ff",
    "#b58900",
    "#0b8ecf",
    "#8c564b",
)
OTHER = "other models"
OTHER_COLOUR = "#9aa3b2"


@dataclass(frozen=True)
class Segment:
    """One model's part of a day's bar."""

    model: str
    cost_micros: int
    y: float
    height: float
    colour: str
    title: str  # the tooltip: day, model, cost


@dataclass(frozen=True)
class Bar:
    day: date
    x: float
    width: float
    total_micros: int
    segments: tuple[Segment, ...]  # bottom first
    label: str | None  # the day's label below the bar, on some days only

    @property
    def centre(self) -> float:
        return round(self.x + self.width / 2, 2)


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class LegendEntry:
    model: str
    colour: str
    cost_micros: int


@dataclass(frozen=True)
class Chart:
    start: date
    end: date
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]  # from the baseline up
    legend: tuple[LegendEntry, ...]
    total_micros: int
    top_micros: int  # the top of the scale
    summary: str  # the chart in a sentence
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return self.total_micros == 0


def build(rows: Iterable[tuple[str, str, int]], start: date, end: date) -> Chart:
    """The chart of ``rows`` (``(day, model, cost_micros)``, days as ``YYYY-MM-DD``, as
    ``store.usage.by_day`` reads them) for every day from ``start`` to ``end``, both included;
    rows outside the range are left out."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    spend = _spend(rows, set(days))
    legend = _legend(spend)
    colours = {entry.model: entry.colour for entry in legend}
    top, step = scale(max((sum(by_model.values()) for by_model in spend.values()), default=0))
    bars = tuple(
        _bar(day, i, len(days), _folded(spend.get(day, {}), set(colours)), colours, top)
        for i, day in enumerate(days)
    )
    total = sum(entry.cost_micros for entry in legend)
    return Chart(
        start=start,
        end=end,
        bars=bars,
        ticks=_ticks(top, step),
        legend=legend,
        total_micros=total,
        top_micros=top,
        summary=_summary(start, end, total, legend),
    )


def _spend(rows: Iterable[tuple[str, str, int]], days: set[date]) -> dict[date, dict[str, int]]:
    spend: dict[date, dict[str, int]] = {}
    for raw_day, model, cost in rows:
        day = date.fromisoformat(raw_day)
        if day in days and cost > 0:
            by_model = spend.setdefault(day, {})
            by_model[model] = by_model.get(model, 0) + cost
    return spend


def _legend(spend: dict[date, dict[str, int]]) -> tuple[LegendEntry, ...]:
    """The models by what was spent on them (most first, then by name), each with its colour;
    those past the palette together as ``OTHER``."""
    totals: dict[str, int] = {}
    for by_model in spend.values():
        for model, cost in by_model.items():
            totals[model] = totals.get(model, 0) + cost
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    named = ranked[: len(PALETTE)]
    entries = [LegendEntry(m, c, cost) for (m, cost), c in zip(named, PALETTE, strict=False)]
    rest = sum(cost for _, cost in ranked[len(PALETTE) :])
    if rest:
        entries.append(LegendEntry(OTHER, OTHER_COLOUR, rest))
    return tuple(entries)


def _folded(by_model: dict[str, int], named: set[str]) -> dict[str, int]:
    """A day's spend with the models that have no colour of their own summed as ``OTHER``."""
    folded: dict[str, int] = {}
    for model, cost in by_model.items():
        key = model if model in named else OTHER
        folded[key] = folded.get(key, 0) + cost
    return folded


def nice_step(raw: int) -> int:
    """The smallest of 1, 2 or 5 times a power of ten (micro-dollars, at least ``MIN_STEP``)
    that is at least ``raw``."""
    power = MIN_STEP
    while True:
        for multiple in (1, 2, 5):
            if power * multiple >= raw:
                return power * multiple
        power *= 10


def scale(highest: int) -> tuple[int, int]:
    """The top of the scale and its step for a tallest day of ``highest`` micro-dollars: the
    fewest steps (at least one, at most ``TICKS``) of the smallest round step that reach it."""
    step = nice_step(-(-highest // TICKS))
    return step * max(1, -(-highest // step)), step


def _ticks(top: int, step: int) -> tuple[Tick, ...]:
    return tuple(Tick(_y(step * i, top), axis_dollars(step * i)) for i in range(top // step + 1))


def _y(micros: int, top: int) -> float:
    """Where an amount is on the scale (SVG's y grows downwards)."""
    plot = HEIGHT - BOTTOM - TOP
    return round(HEIGHT - BOTTOM - plot * micros / top, 2)


def _bar(
    day: date, index: int, days: int, spend: dict[str, int], colours: dict[str, str], top: int
) -> Bar:
    slot = (WIDTH - RIGHT - LEFT) / days
    width = round(slot * BAR_SHARE, 2)
    x = round(LEFT + index * slot + (slot - width) / 2, 2)
    order = [model for model in colours if model in spend]  # the legend's order, bottom first
    segments, below = [], 0
    for model in order:
        cost = spend[model]
        y_top, y_bottom = _y(below + cost, top), _y(below, top)
        title = f"{day.isoformat()}: {model} {format_cost(cost)}"
        segments.append(
            Segment(model, cost, y_top, round(y_bottom - y_top, 2), colours[model], title)
        )
        below += cost
    every = max(1, -(-days // DAY_LABELS))
    label = _day_label(day) if (days - 1 - index) % every == 0 else None
    return Bar(day, x, width, below, tuple(segments), label)


def _day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def axis_dollars(micros: int) -> str:
    """An amount on the scale: a cost with no more decimals than it needs, but two
    (``$0.01``, ``$0.005``, ``$20.00``)."""
    whole, _, fraction = format_cost(micros).partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _summary(start: date, end: date, total: int, legend: tuple[LegendEntry, ...]) -> str:
    what = f"Spend per model per day from {start.isoformat()} to {end.isoformat()}"
    if not total:
        return f"{what}: nothing spent."
    parts = ", ".join(f"{entry.model} {format_cost(entry.cost_micros)}" for entry in legend)
    return f"{what}: {format_cost(total)} in total ({parts})."
