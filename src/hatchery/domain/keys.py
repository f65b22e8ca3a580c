"""API keys and webhook secrets. Keys are shown once and stored only as SHA-256 hashes; a key's
first characters (its prefix) find the row, and the hash is compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

KEY_PREFIX = "hk_"
PREFIX_LENGTH = len(KEY_PREFIX) + 10
_ALPHABET = string.ascii_letters + string.digits


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def new_api_key() -> str:
    return KEY_PREFIX + _random(40)


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX) and len(token) > PREFIX_LENGTH


def new_webhook_secret() -> str:
    return "whsec_" + _random(40)


def new_id(prefix: str, length: int = 20) -> str:
    return prefix + "".join(
        secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length)
    )


def new_token() -> str:
    """A bearer secret for a browser (a dashboard session's cookie, an invite link): 256 bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, in hex (the row's id)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
