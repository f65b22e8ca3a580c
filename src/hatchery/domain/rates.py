"""Rate limit strings, as the operator writes them: the ``limits`` library's notation
(``100/second``, ``10 per 2 minutes``), several separated by ``;``, or ``off`` for none."""

from __future__ import annotations

from functools import lru_cache

from limits import RateLimitItem, parse_many

OFF = "off"
MAX_LENGTH = 64  # accounts.rate_limit is a String(64)
EXAMPLE = "use e.g. 100/second or 10/second;500/hour (several separated by ';'), or off"


@lru_cache(maxsize=1024)
def parse_rates(text: str) -> tuple[RateLimitItem, ...]:
    """The limits ``text`` names (``()`` for ``off``); ValueError saying why it is not one."""
    text = text.strip()
    if text.lower() == OFF:
        return ()
    if len(text) > MAX_LENGTH:
        raise ValueError(f"is longer than {MAX_LENGTH} characters")
    try:
        items = tuple(parse_many(text))
    except ValueError:
        raise ValueError(f"is not a rate limit: {EXAMPLE}") from None
    for item in items:
        if item.amount < 1 or item.get_expiry() < 1:
            raise ValueError(f"allows no request ({item}): each limit needs at least 1, or use off")
    return items


def describe(items: tuple[RateLimitItem, ...]) -> str:
    """``100 per 1 second; 5000 per 1 hour``, or ``off``."""
    return "; ".join(str(item) for item in items) or OFF
