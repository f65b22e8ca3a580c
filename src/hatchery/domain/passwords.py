"""Dashboard passwords: argon2id hashes (``argon2-cffi``, its default cost), what a password
must be, and the check that takes as long for an unknown email as for a wrong password.

Hashing costs tens of milliseconds of CPU and 64 MiB on purpose; callers on the event loop run
these functions in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 1024

_HASHER = PasswordHasher()


@functools.cache
def _decoy() -> str:
    """Checked against when the email is unknown, so that the answer takes as long either way
    (made on first use: an argon2 hash costs every process that imports this module)."""
    return _HASHER.hash("an account that does not exist")


def problem(password: str, email: str) -> str | None:
    """Why ``password`` cannot be used (a sentence that says what to do), or None."""
    if len(password) < MIN_LENGTH:
        return f"Use a password of at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"Use a password of at most {MAX_LENGTH} characters"
    if password.strip().lower() == email.strip().lower():
        return "Use a password other than your email address"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored_hash`` was made from; False (after as much work)
    when there is no hash."""
    try:
        return _HASHER.verify(stored_hash or _decoy(), password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash on sign-in)."""
    return _HASHER.check_needs_rehash(stored_hash)
