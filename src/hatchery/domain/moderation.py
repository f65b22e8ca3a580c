"""Prompt moderation by a deny-list file: one entry a line.

An entry is a word or phrase, matched case-insensitively on word boundaries, or ``/regex/``
(matched case-insensitively). Blank lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

MODERATION_ERROR = "Content moderation: prompt contains prohibited content"


class DenyList:
    def __init__(self, patterns: list[re.Pattern[str]]) -> None:
        self._patterns = patterns

    @classmethod
    def empty(cls) -> DenyList:
        return cls([])

    @classmethod
    def parse(cls, text: str) -> DenyList:
        return cls([_compile(line) for line in _entries(text)])

    @classmethod
    def load(cls, path: Path | None) -> DenyList:
        if path is None:
            return cls.empty()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the moderation deny-list {path}: {exc}") from None
        return cls.parse(text)

    def __len__(self) -> int:
        return len(self._patterns)

    def matches(self, *texts: str | None) -> bool:
        return any(p.search(t) for t in texts if t for p in self._patterns)


def _entries(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _compile(entry: str) -> re.Pattern[str]:
    if len(entry) > 2 and entry.startswith("/") and entry.endswith("/"):
        try:
            return re.compile(entry[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"invalid deny-list regex {entry!r}: {exc}") from None
    words = r"\s+".join(re.escape(word) for word in entry.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
