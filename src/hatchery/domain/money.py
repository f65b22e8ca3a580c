"""Money is an integer number of micro-dollars (1 USD = 1_000_000). Formatting lives here only."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

MICROS_PER_DOLLAR = 1_000_000
# The most an operator may put in (or take from) a balance at once, or hold in one: a billion
# dollars; and the most one unit of a model may cost, a thousand. Both keep every sum the
# database makes (a balance, a reservation of units x unit price) far inside a 64-bit integer.
MAX_BALANCE_MICROS = 10**15
MAX_DIGITS = 30  # an amount's exponent, either way: more is no amount of dollars
MAX_UNIT_PRICE_MICROS = 10**9


def parse_dollars(text: str) -> int:
    """``"10.00"``, ``"$0.0160"`` or ``"5"`` to micro-dollars; ValueError on anything else."""
    cleaned = text.strip().removeprefix("$")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount of dollars: {text!r}") from None
    if not value.is_finite() or (value and abs(value.adjusted()) > MAX_DIGITS):
        raise ValueError(f"not an amount of dollars: {text!r}")
    with localcontext() as ctx:
        ctx.prec = len(cleaned) + 10  # exact: no digit of the input is rounded away
        micros = value * MICROS_PER_DOLLAR
        if micros != micros.to_integral_value():
            raise ValueError(f"{text!r} has more than 6 decimal places")
        return int(micros)


def _dollars(micros: int, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return str((Decimal(micros) / MICROS_PER_DOLLAR).quantize(quantum, rounding=ROUND_HALF_UP))


def format_cost(micros: int) -> str:
    """A task's ``cost``: ``"$0.00"`` while zero, four decimals otherwise (``"$0.0100"``)."""
    return "$0.00" if micros == 0 else "$" + _dollars(micros, 4)


def format_balance(micros: int) -> str:
    """An account balance, ``"$9.9900"``."""
    shown = _dollars(abs(micros), 4)
    sign = "-" if micros < 0 and Decimal(shown) != 0 else ""
    return f"{sign}${shown}"


def format_webhook_cost(micros: int) -> str:
    """The webhook payload's ``cost``: six decimals, no sign (``"0.016000"``)."""
    return _dollars(micros, 6)
