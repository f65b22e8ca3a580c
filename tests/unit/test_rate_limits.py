"""The rate limit and request limit settings (checked at start-up, naming the variable), the rate
limit notation, and the limiter in this process: counting, the tightest limit, the headers, and
failing open when its Redis cannot be reached."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from tests.helpers import free_port

from hatchery.api import ratelimit
from hatchery.api.ratelimit import Limiter, RequestLimits
from hatchery.cli.main import build_parser, main
from hatchery.cli.server import settings_from
from hatchery.domain.rates import describe, parse_rates
from hatchery.errors import RateLimited
from hatchery.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings()
    assert (s.rate_limit, s.rate_limit_ip, s.redis_url) == ("6000/minute", "30000/minute", "")
    assert (s.max_body_bytes, s.body_timeout) == (256 * 1024, 10.0)


@pytest.mark.parametrize(
    "text", ["100/second", "10/second;500/hour", "5 per 2 minutes", "1/day|2/hour", "off", "OFF"]
)
def test_rate_limit_settings_take_the_limits_notation_or_off(text: str) -> None:
    s = Settings.from_env({"HATCHERY_RATE_LIMIT": text, "HATCHERY_RATE_LIMIT_IP": text})
    assert s.rate_limit == s.rate_limit_ip == text


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("lots", "is not a rate limit: use e.g. 100/second"),
        ("100", "is not a rate limit"),
        ("10/fortnight", "is not a rate limit"),
        ("10/second;", "is not a rate limit"),
        ("0/second", "allows no request (0 per 1 second)"),
        ("-1/second", "is not a rate limit"),
        ("1/second;" * 8 + "1/second", "is longer than 64 characters"),
    ],
)
@pytest.mark.parametrize("name", ["HATCHERY_RATE_LIMIT", "HATCHERY_RATE_LIMIT_IP"])
def test_a_bad_rate_limit_is_refused_naming_the_variable(name: str, raw: str, why: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: raw})
    assert str(info.value).startswith(f"{name}={raw!r} {why}")


def test_the_whole_message_of_a_bad_rate_limit() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HATCHERY_RATE_LIMIT": "lots"})
    assert str(info.value) == (
        "HATCHERY_RATE_LIMIT='lots' is not a rate limit: use e.g. 100/second or "
        "10/second;500/hour (several separated by ';'), or off"
    )


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:secret@cache.internal:6380", "unix:///r.sock"]
)
def test_redis_urls_are_taken_and_kept_out_of_repr(url: str) -> None:
    s = Settings.from_env({"HATCHERY_REDIS_URL": url})
    assert s.redis_url == url
    assert "secret" not in repr(s)


@pytest.mark.parametrize("url", ["127.0.0.1:6379", "http://cache:6379", "async+redis://c:6379"])
def test_other_redis_urls_are_refused(url: str) -> None:
    with pytest.raises(SettingsError, match=r"^HATCHERY_REDIS_URL must start with one of redis://"):
        Settings.from_env({"HATCHERY_REDIS_URL": url})


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("HATCHERY_MAX_BODY_BYTES", "0", "HATCHERY_MAX_BODY_BYTES must be 1 or more"),
        ("HATCHERY_MAX_BODY_BYTES", "1k", "HATCHERY_MAX_BODY_BYTES='1k' is not a valid int"),
        ("HATCHERY_BODY_TIMEOUT", "0", "HATCHERY_BODY_TIMEOUT must be a positive number"),
        ("HATCHERY_BODY_TIMEOUT", "nan", "HATCHERY_BODY_TIMEOUT must be a positive number"),
        ("HATCHERY_BODY_TIMEOUT", "-1", "HATCHERY_BODY_TIMEOUT must be a positive number"),
    ],
)
def test_bad_body_limits_are_refused(name: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: raw})
    assert str(info.value) == message


def test_each_new_setting_is_also_a_flag() -> None:
    args = build_parser().parse_args(
        [
            *("serve", "--rate-limit", "5/second", "--rate-limit-ip", "off"),
            *("--redis-url", "redis://127.0.0.1:1/0", "--max-body-bytes", "1024"),
            *("--body-timeout", "2.5"),
        ]
    )
    s = settings_from(args)
    assert (s.rate_limit, s.rate_limit_ip, s.redis_url) == (
        "5/second",
        "off",
        "redis://127.0.0.1:1/0",
    )
    assert (s.max_body_bytes, s.body_timeout) == (1024, 2.5)


def test_serve_with_a_bad_flag_stops_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--rate-limit-ip", "fast"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: HATCHERY_RATE_LIMIT_IP='fast' is not a rate limit"
    )


def test_notation() -> None:
    items = parse_rates(" 10/second; 500 per 2 hours ")
    assert [(i.amount, i.get_expiry()) for i in items] == [(10, 1), (500, 7200)]
    assert describe(items) == "10 per 1 second; 500 per 2 hour"
    assert parse_rates("Off") == () and describe(()) == "off"


def limiter(key: str = "3/day", ip: str = "off") -> Limiter:
    return Limiter.from_settings(Settings(rate_limit=key, rate_limit_ip=ip))


async def test_counts_each_identity_on_its_own_and_refuses_past_the_limit() -> None:
    lim = limiter()
    items = lim.key_limits(None)
    quotas = [await lim.hit("key", "a", items) for _ in range(4)]
    assert [(q.remaining, q.exceeded) for q in quotas if q] == [
        (2, False),
        (1, False),
        (0, False),
        (0, True),
    ]
    other = await lim.hit("key", "b", items)
    assert other is not None and other.remaining == 2
    ip = await lim.hit("ip", "a", items)  # the same identity as another kind of limit
    assert ip is not None and ip.remaining == 2
    await lim.close()


async def test_the_tightest_limit_is_the_one_reported() -> None:
    lim = limiter("100/day;2/hour")
    first = await lim.hit("key", "k", lim.key_limits(None))
    assert first is not None and (first.item.amount, first.remaining) == (2, 1)
    assert first.reset == (int(time.time()) // 3600 + 1) * 3600
    await lim.close()


async def test_an_accounts_own_limit_and_a_broken_one() -> None:
    lim = limiter("3/day")
    assert [i.amount for i in lim.key_limits("7/minute")] == [7]
    assert lim.key_limits("off") == ()
    assert lim.key_limits("garbage") == lim.key_default
    assert await lim.hit("key", "k", lim.key_limits("off")) is None
    await lim.close()


async def test_request_limits_refuse_with_the_limit_and_report_it_in_headers() -> None:
    limits = RequestLimits(limiter("1/day", ip="5/day"))
    assert limits.headers() == []
    await limits.check("ip", "127.0.0.1", limits.limiter.per_ip)
    await limits.check("key", "hk_a", limits.limiter.key_default)
    with pytest.raises(RateLimited) as info:
        await limits.check("key", "hk_a", limits.limiter.key_default)
    wait = 86400 - int(time.time()) % 86400
    assert abs(info.value.retry_after - wait) <= 2
    assert info.value.message == (
        f"Rate limit exceeded: per API key 1 per 1 day; retry in {info.value.retry_after} s"
    )
    headers = dict(limits.headers())
    assert headers[b"ratelimit-limit"] == headers[b"x-ratelimit-limit"] == b"1"
    assert headers[b"ratelimit-remaining"] == headers[b"x-ratelimit-remaining"] == b"0"
    assert abs(int(headers[b"ratelimit-reset"]) - wait) <= 2
    assert int(headers[b"x-ratelimit-reset"]) % 86400 == 0
    await limits.limiter.close()


async def test_an_unreachable_redis_lets_requests_through_and_is_retried_later(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "RETRY_SECONDS", 0.3)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    lim = Limiter.from_settings(Settings(rate_limit="1/day", redis_url=nowhere))
    items = lim.key_limits(None)

    def tries() -> int:
        return sum("storage unreachable" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="hatchery.ratelimit"):
        assert [await lim.hit("key", "k", items) for _ in range(3)] == [None] * 3
        assert tries() == 1  # tried once, then left alone for RETRY_SECONDS
        await asyncio.sleep(0.35)
        assert await lim.hit("key", "k", items) is None
        assert tries() == 2
    await lim.close()


def test_memory_windows_count_per_key_and_sweep_ended_windows_now_and_then() -> None:
    windows = ratelimit.MemoryWindows()
    assert [windows.incr("a/1", 100.0, 10.0) for _ in range(3)] == [1, 2, 3]
    assert windows.incr("b/1", 100.0, 10.0) == 1  # another key counts on its own
    for n in range(50):
        windows.incr(f"short{n}", 10.5, 10.2)  # windows ending at 10.5
    windows.incr("a/1", 100.0, 10.9)
    assert len(windows.counts) == 52  # ended, but not swept: the last sweep was at 10.0
    assert windows.incr("a/1", 100.0, 11.1) == 5  # a second on: swept as it counts
    assert set(windows.counts) == set(windows.ends) == {"a/1", "b/1"}
    assert windows.incr("a/2", 160.0, 101.0) == 1  # the next window starts from nothing
    assert set(windows.counts) == {"a/2"}


async def test_a_limit_is_counted_in_its_clock_aligned_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lim = limiter("2/minute")
    items = lim.key_limits(None)
    now = [1_000_000 * 60 + 59.5]  # half a second before a minute ends
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    quotas = [await lim.hit("key", "k", items) for _ in range(3)]
    assert [(q.remaining, q.exceeded, q.reset) for q in quotas if q] == [
        (1, False, 1_000_001 * 60),
        (0, False, 1_000_001 * 60),
        (0, True, 1_000_001 * 60),
    ]
    now[0] += 1.0  # the next minute
    again = await lim.hit("key", "k", items)
    assert again is not None and (again.remaining, again.reset) == (1, 1_000_002 * 60)
    await lim.close()
