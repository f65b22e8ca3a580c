"""Tests for hatchery.admin.parse_duration (the ``--expires-in`` of API keys)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hatchery.admin import parse_duration
from hatchery.errors import BadRequest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("3600s", timedelta(hours=1)),
        ("2w", timedelta(weeks=2)),
        ("1s", timedelta(seconds=1)),
        ("007d", timedelta(days=7)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["0d", "00h", "10", "d", "1y", "", "-1d", "1.5h", "30 d", "30D", "1d2h", "h12"]
)
def test_bad_durations_raise_bad_request(text: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_duration(text)
    assert info.value.code == "BAD_REQUEST"
    assert repr(text) in info.value.message
    assert "30d" in info.value.message  # shows an example of the accepted form
