"""Dashboard passwords (argon2) and how a session's expiry is renewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hatchery.domain import keys, passwords
from hatchery.store.sessions import MAX_AGE, Session

SIGNED_IN = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
IDLE = timedelta(hours=12)


def _session(expires_at: datetime) -> Session:
    return Session("id", "acct_1", "csrf", SIGNED_IN, expires_at)


def test_a_password_verifies_against_its_hash_only() -> None:
    hashed = passwords.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "a long enough password")
    assert not passwords.verify(hashed, "a long enough passworD")
    assert not passwords.needs_rehash(hashed)


@pytest.mark.parametrize("stored", [None, "", "not a hash"])
def test_no_hash_or_a_broken_one_verifies_nothing(stored: str | None) -> None:
    assert not passwords.verify(stored, "an account that does not exist")


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 10"),
        ("x" * 1025, "at most 1024"),
        ("Me@Example.com", "other than your email"),
        ("ten chars!", None),
    ],
)
def test_what_a_password_must_be(password: str, problem: str | None) -> None:
    found = passwords.problem(password, "me@example.com")
    assert (found is None) if problem is None else (problem in (found or ""))


def test_a_session_used_early_is_not_renewed() -> None:
    session = _session(SIGNED_IN + IDLE)
    assert session.renewal(IDLE, SIGNED_IN + timedelta(hours=1)) is None


def test_a_session_used_past_half_its_idle_time_is_renewed_from_now() -> None:
    session = _session(SIGNED_IN + IDLE)
    now = SIGNED_IN + timedelta(hours=7)
    assert session.renewal(IDLE, now) == now + IDLE


def test_no_renewal_reaches_past_the_maximum_age() -> None:
    late = SIGNED_IN + MAX_AGE - timedelta(hours=2)
    session = _session(late + timedelta(hours=1))
    assert session.renewal(IDLE, late) == SIGNED_IN + MAX_AGE
    at_cap = _session(SIGNED_IN + MAX_AGE)
    assert at_cap.renewal(IDLE, SIGNED_IN + MAX_AGE - timedelta(hours=1)) is None


def test_tokens_are_random_and_stored_as_their_hash() -> None:
    first, second = keys.new_token(), keys.new_token()
    assert first != second and len(first) >= 43
    assert keys.token_hash(first) != first and len(keys.token_hash(first)) == 64
