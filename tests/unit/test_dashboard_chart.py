"""The overview's spend chart as numbers (``api.dashboard.chart``): one bar a day, stacked per
model in the legend's order, on a round scale, with colours per model and a summary."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from hatchery.api.dashboard import chart

START = date(2026, 5, 1)
END = date(2026, 5, 30)


def test_one_bar_a_day_in_order_each_inside_the_plot() -> None:
    built = chart.build([], START, END)
    assert [b.day for b in built.bars] == [START + timedelta(days=i) for i in range(30)]
    xs = [b.x for b in built.bars]
    assert xs == sorted(xs) and xs[0] >= built.left
    assert built.bars[-1].x + built.bars[-1].width <= built.right
    assert all(b.width > 0 for b in built.bars)


def test_no_spend_is_an_empty_chart_with_a_scale() -> None:
    built = chart.build([], START, END)
    assert built.empty and built.total_micros == 0 and built.legend == ()
    assert all(b.segments == () and b.total_micros == 0 for b in built.bars)
    assert built.top_micros > 0
    assert built.ticks[0].y == built.baseline and built.ticks[0].label == "$0.00"
    assert "nothing spent" in built.summary


def test_a_days_models_stack_from_the_baseline_to_its_total() -> None:
    rows = [("2026-05-10", "nanobanana", 39_000), ("2026-05-10", "veo3.1", 400_000)]
    built = chart.build(rows, START, END)
    bar = next(b for b in built.bars if b.day == date(2026, 5, 10))
    assert bar.total_micros == 439_000
    veo, nano = bar.segments  # most spent first, at the bottom
    assert (veo.model, nano.model) == ("veo3.1", "nanobanana")
    assert veo.y + veo.height == pytest.approx(built.baseline, abs=0.02)
    assert nano.y + nano.height == pytest.approx(veo.y, abs=0.02)  # each on the one below
    assert veo.height / nano.height == pytest.approx(400_000 / 39_000, rel=0.01)
    assert veo.colour != nano.colour
    assert nano.title == "2026-05-10: nanobanana $0.0390"


def test_the_tallest_day_fits_under_a_round_top_of_the_scale() -> None:
    rows = [("2026-05-02", "a", 300_000), ("2026-05-03", "a", 700_000), ("2026-05-03", "b", 80_000)]
    built = chart.build(rows, START, END)
    assert built.top_micros == 800_000  # 780_000 in steps of 200_000 ($0.20)
    assert [t.label for t in built.ticks] == ["$0.00", "$0.20", "$0.40", "$0.60", "$0.80"]
    tallest = next(b for b in built.bars if b.day == date(2026, 5, 3))
    top_y = min(s.y for s in tallest.segments)
    plot = built.baseline - built.ticks[-1].y
    assert built.baseline - top_y == pytest.approx(plot * 780_000 / 800_000, abs=0.02)
    assert built.ticks[-1].y < top_y  # under the top


@pytest.mark.parametrize(
    ("highest", "top", "step"),
    [
        (0, 100, 100),
        (1, 100, 100),
        (400, 400, 100),
        (401, 600, 200),
        (39_000, 40_000, 10_000),
        (10_000_000, 10_000_000, 5_000_000),
        (12_345_678, 15_000_000, 5_000_000),
    ],
)
def test_scale_steps_are_one_two_or_five_times_a_power_of_ten(
    highest: int, top: int, step: int
) -> None:
    assert chart.scale(highest) == (top, step)
    assert top >= highest and top // step <= chart.TICKS


def test_axis_labels_keep_the_decimals_they_need() -> None:
    assert chart.axis_dollars(0) == "$0.00"
    assert chart.axis_dollars(10_000) == "$0.01"
    assert chart.axis_dollars(5_000) == "$0.005"
    assert chart.axis_dollars(20_000_000) == "$20.00"


def test_colours_go_to_the_models_spent_most_on_and_the_rest_share_one() -> None:
    models = [f"m{i:02d}" for i in range(len(chart.PALETTE) + 2)]
    rows = [("2026-05-05", m, 1_000 * (100 - i)) for i, m in enumerate(models)]
    built = chart.build(rows, START, END)
    named = built.legend[: len(chart.PALETTE)]
    assert [e.model for e in named] == models[: len(chart.PALETTE)]
    assert [e.colour for e in named] == list(chart.PALETTE)
    other = built.legend[-1]
    assert (other.model, other.colour) == (chart.OTHER, chart.OTHER_COLOUR)
    assert other.cost_micros == 1_000 * (100 - 8) + 1_000 * (100 - 9)
    bar = next(b for b in built.bars if b.day == date(2026, 5, 5))
    assert [s.model for s in bar.segments] == [e.model for e in built.legend]
    assert built.total_micros == sum(cost for _, _, cost in rows)


def test_a_models_colour_is_the_same_on_every_day_and_in_the_legend() -> None:
    rows = [
        ("2026-05-01", "nanobanana", 10_000),
        ("2026-05-02", "veo3.1", 50_000),
        ("2026-05-02", "nanobanana", 20_000),
    ]
    built = chart.build(rows, START, END)
    colours = {e.model: e.colour for e in built.legend}
    for bar in built.bars:
        for segment in bar.segments:
            assert segment.colour == colours[segment.model]
    assert "$0.0800 in total" in built.summary and "nanobanana $0.0300" in built.summary


def test_rows_outside_the_range_and_free_ones_are_left_out() -> None:
    rows = [
        ("2026-04-30", "nanobanana", 10_000),
        ("2026-05-31", "nanobanana", 10_000),
        ("2026-05-15", "free-tool", 0),
    ]
    built = chart.build(rows, START, END)
    assert built.empty and built.legend == ()


def test_some_days_are_labelled_the_last_always() -> None:
    built = chart.build([], START, END)
    labels = [b.label for b in built.bars if b.label]
    assert built.bars[-1].label == "May 30"
    assert 3 <= len(labels) <= chart.DAY_LABELS + 1
