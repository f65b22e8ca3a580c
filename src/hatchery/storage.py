"""Output files on local disk, under ``DATA_DIR/outputs/<token>/<n>.<ext>``.

Each task gets an unguessable token at submit, so its files' URLs cannot be guessed and a task
that is run again after a crash overwrites its own files instead of leaving orphans. Writes are
atomic (temporary file, fsync, rename).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_NAME = re.compile(r"^[0-9]{1,3}\.(png|jpg|webp|mp4)$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
}


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, token: str, index: int, extension: str, data: bytes) -> str:
        """Write one output file; returns its path relative to the public files root."""
        name = f"{index}.{extension}"
        if not (_TOKEN.match(token) and _NAME.match(name)):
            raise ValueError(f"bad output file name {token}/{name}")
        folder = self.root / token
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f"{token}/{name}"

    def locate(self, token: str, name: str) -> Path | None:
        """The file behind a public URL, or None for anything that is not one of ours."""
        if not (_TOKEN.match(token) and _NAME.match(name)):
            return None
        path = self.root / token / name
        return path if path.is_file() else None
